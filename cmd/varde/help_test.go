package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// commandsWithFlags are the commands that print their flags on --help,
// by the group whose usage names them.
var commandsWithFlags = map[string][][]string{
	"":         {{"serve"}, {"demo"}, {"bench"}, {"provider-sim"}, {"resilience"}},
	"config":   {{"config", "check"}},
	"clients":  {{"clients", "add"}, {"clients", "list"}, {"clients", "remove"}},
	"provider": {{"provider", "fault"}},
	"status": {
		{"status", "incidents"}, {"status", "note"}, {"status", "rca"}, {"status", "maintenance", "add"},
		{"status", "maintenance", "list"}, {"status", "maintenance", "cancel"}, {"status", "maintenance", "end"},
		{"status", "report"}, {"status", "export"}, {"status", "webhooks"},
	},
	"status maintenance": {
		{"status", "maintenance", "add"}, {"status", "maintenance", "list"}, {"status", "maintenance", "cancel"}, {"status", "maintenance", "end"},
	},
	"store":      {{"store", "backup"}, {"store", "verify"}},
	"keys":       {{"keys", "list"}, {"keys", "retire"}},
	"upstream":   {{"upstream", "jwks"}},
	"nodes":      {{"nodes", "list"}, {"nodes", "forget"}},
	"audit":      {{"audit", "events"}},
	"audit hold": {{"audit", "hold", "add"}, {"audit", "hold", "list"}, {"audit", "hold", "extend"}, {"audit", "hold", "release"}},
	"persons":    {{"persons", "show"}, {"persons", "block"}, {"persons", "unblock"}, {"persons", "recover"}, {"persons", "add-number"}, {"persons", "remove-number"}, {"persons", "export"}},
}

// flagLine is a flag in a flag set's usage: "  -name" and the word for
// its value, if it takes one.
var flagLine = regexp.MustCompile(`(?m)^  -([a-z-]+)(?: (.*))?$`)

// mentionedFlag is a flag named in prose: --config, --kill-primary.
var mentionedFlag = regexp.MustCompile(`--([a-z][a-z-]*)`)

// TestHelpNamesRealFlags: every command's --help shows each flag with
// one word for its value (a type or a placeholder such as FILE, never a
// phrase taken from the description), and every flag a usage text
// names in its prose (varde's, a group's) is one that a command it
// describes takes.
func TestHelpNamesRealFlags(t *testing.T) {
	all := map[string]bool{"help": true, "version": true} // varde --help, varde --version
	for group, cmds := range commandsWithFlags {
		has := map[string]bool{"help": true}
		for _, args := range cmds {
			var stdout, stderr bytes.Buffer
			if err := run(append(slices.Clone(args), "--help"), &stdout, &stderr); err != nil {
				t.Fatalf("varde %s --help: %v", strings.Join(args, " "), err)
			}
			for _, m := range flagLine.FindAllStringSubmatch(stdout.String(), -1) {
				has[m[1]], all[m[1]] = true, true
				if strings.Contains(m[2], " ") {
					t.Errorf("varde %s --help: -%s takes %q, not one word for its value", strings.Join(args, " "), m[1], m[2])
				}
			}
		}
		if group == "" {
			continue
		}
		var stdout, stderr bytes.Buffer
		if err := run(append(strings.Fields(group), "--help"), &stdout, &stderr); err != nil {
			t.Fatalf("varde %s --help: %v", group, err)
		}
		for _, m := range mentionedFlag.FindAllStringSubmatch(stdout.String(), -1) {
			if !has[m[1]] {
				t.Errorf("varde %s --help names --%s, which no %s command takes", group, m[1], group)
			}
		}
	}
	var stdout, stderr bytes.Buffer
	if err := run([]string{"--help"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, m := range mentionedFlag.FindAllStringSubmatch(stdout.String(), -1) {
		if !all[m[1]] {
			t.Errorf("varde --help names --%s, which no command takes", m[1])
		}
	}
}

// TestHelpNamesPositionalArguments: a command that takes an argument
// after its flags says so in its usage, asked for or shown for a
// mistake.
func TestHelpNamesPositionalArguments(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run([]string{"status", "export", "--help"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if want := "usage: varde status export [flags] DIR\n"; !strings.HasPrefix(stdout.String(), want) || !strings.Contains(stdout.String(), "  -config") {
		t.Errorf("status export --help:\n%s\nwant it to begin %q and list the flags", stdout.String(), want)
	}
	stdout.Reset()
	err := run([]string{"status", "export", "--frob"}, &stdout, &stderr)
	if code := exitStatus(err, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage: varde status export [flags] DIR") {
		t.Errorf("status export --frob: exit status %d, stderr %q", code, stderr.String())
	}
}

// docCommand is a varde command line in the documentation: the words
// after "varde" and the rest of the line or code span.
var docCommand = regexp.MustCompile("(?m)(?:^|[\\s`(])(?:\\./)?varde ([a-z][a-z-]*(?: [a-z][a-z-]*)*)([^`\\n]*)")

// TestDocumentedCommandsExist: every varde command that README.md and
// docs/ show names a command that exists, with flags it takes.
func TestDocumentedCommandsExist(t *testing.T) {
	flags := map[string]map[string]bool{} // "status maintenance add" → its flags
	for _, cmds := range commandsWithFlags {
		for _, args := range cmds {
			var stdout, stderr bytes.Buffer
			if err := run(append(slices.Clone(args), "--help"), &stdout, &stderr); err != nil {
				t.Fatalf("varde %s --help: %v", strings.Join(args, " "), err)
			}
			has := map[string]bool{"help": true}
			for _, m := range flagLine.FindAllStringSubmatch(stdout.String(), -1) {
				has[m[1]] = true
			}
			flags[strings.Join(args, " ")] = has
		}
	}
	groups := []string{"audit", "audit hold", "clients", "config", "keys", "nodes", "persons", "provider", "status", "status maintenance", "store", "version", "help"}
	files, err := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	adrs, err := filepath.Glob(filepath.Join("..", "..", "docs", "adr", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, file := range append(append([]string{filepath.Join("..", "..", "README.md")}, files...), adrs...) {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range docCommand.FindAllStringSubmatch(string(raw), -1) {
			words := strings.Fields(m[1])
			if words[0] == "varde" && len(words) > 1 {
				words = words[1:] // sudo -u varde varde ...: the first is the user
			}
			// The longest run of words that is a command.
			var cmd string
			for i := len(words); i > 0 && cmd == ""; i-- {
				if w := strings.Join(words[:i], " "); flags[w] != nil || slices.Contains(groups, w) {
					cmd = w
				}
			}
			if cmd == "" {
				// Words that merely follow "varde" in prose ("varde
				// node", a key label) name no command; one with flags
				// after it would.
				if strings.Contains(m[2], "--") {
					t.Errorf("%s: varde %s%s: no such command", file, m[1], m[2])
				}
				continue
			}
			checked++
			for _, f := range mentionedFlag.FindAllStringSubmatch(m[2], -1) {
				if !flags[cmd][f[1]] {
					t.Errorf("%s: varde %s%s: varde %s takes no --%s", file, m[1], m[2], cmd, f[1])
				}
			}
		}
	}
	if checked < 30 {
		t.Errorf("only %d varde commands found in the documentation", checked)
	}
}

// TestHelpCommand: varde help COMMAND prints what COMMAND --help
// prints, on stdout with status 0; help for a command that does not
// exist is a usage error; --version is version.
func TestHelpCommand(t *testing.T) {
	for _, args := range [][]string{{"status"}, {"status", "maintenance"}, {"serve"}, {"store", "verify"}, {"keys"}, {"audit"}, {"audit", "hold"}} {
		var want, got, stderr bytes.Buffer
		if err := run(append(slices.Clone(args), "--help"), &want, &stderr); err != nil {
			t.Fatal(err)
		}
		err := run(append([]string{"help"}, args...), &got, &stderr)
		if code := exitStatus(err, &stderr); code != 0 || got.String() != want.String() || stderr.Len() != 0 {
			t.Errorf("varde help %s: exit status %d, stdout %q, stderr %q; want 0 and %q", strings.Join(args, " "), code, got.String(), stderr.String(), want.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := exitStatus(run([]string{"help", "frob"}, &stdout, &stderr), &stderr); code != 2 || !strings.Contains(stderr.String(), `unknown command "frob"`) {
		t.Errorf("varde help frob: exit status %d, stderr %q", code, stderr.String())
	}
	stdout.Reset()
	if err := run([]string{"--version"}, &stdout, &stderr); err != nil || !strings.HasPrefix(stdout.String(), "varde ") {
		t.Errorf("varde --version: %v, %q", err, stdout.String())
	}
}

// TestMaintenanceUsage: varde status maintenance has a usage of its
// own, naming its commands, for --help and for a command it lacks.
func TestMaintenanceUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run([]string{"status", "maintenance", "--help"}, &stdout, &stderr); err != nil || !strings.HasPrefix(stdout.String(), "usage: varde status maintenance <add|list|cancel|end>") {
		t.Errorf("status maintenance --help: %v\n%s", err, stdout.String())
	}
	stdout.Reset()
	err := run([]string{"status", "maintenance", "frob"}, &stdout, &stderr)
	if code := exitStatus(err, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage: varde status maintenance") ||
		!strings.Contains(stderr.String(), `unknown status maintenance command "frob"; the status maintenance commands are add, list, cancel, end`) {
		t.Errorf("status maintenance frob: exit status %d, stderr %q", code, stderr.String())
	}
}

// TestClientsAddBadFlagValues: clients add with a flag value the node
// would refuse is a command called wrongly, exit status 2, as a bad
// value of any other command's flag is, naming the flag.
func TestClientsAddBadFlagValues(t *testing.T) {
	cfg := adminConfig(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--auth-method", "basic", "--redirect-uri", "https://x.example/cb"}, "--auth-method"},
		{[]string{"--auth-method", "none", "--redirect-uri", "http://x.example/cb"}, "--redirect-uri"},
		{[]string{"--auth-method", "none"}, "--redirect-uri"},
		{[]string{"--auth-method", "private_key_jwt", "--redirect-uri", "https://x.example/cb"}, "--jwks-file or --jwks-uri"},
		{[]string{"--auth-method", "none", "--redirect-uri", "https://x.example/cb", "--levels", "supreme"}, "--levels"},
	} {
		var stderr bytes.Buffer
		args := append([]string{"clients", "add", "--config", cfg, "--id", "x", "--name", "X"}, tc.args...)
		if code := exitStatus(run(args, io.Discard, &stderr), &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit status %d, %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

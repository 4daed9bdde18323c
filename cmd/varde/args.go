package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// usageError is a command called wrongly: an unknown command, a flag it
// does not have, or a word it does not expect. main exits with status 2
// for it, and 1 for everything else; usage asked for with -h or --help
// goes to stdout with status 0.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// helpRequest is -h or --help given to a command: its usage was asked
// for, so run prints it on stdout and the command succeeds.
type helpRequest struct{ usage string }

func (h *helpRequest) Error() string { return "help requested" }
func (h *helpRequest) Unwrap() error { return flag.ErrHelp }

// parseFlags parses args into fs and then wants exactly the positional
// arguments named in positional (e.g. "DIR") after the flags; the last
// ones may be optional, named in brackets ("[IDENTIFIER]"). Go's flag
// parser stops at the first word that is not a flag: a value with a
// space that was not quoted (--name Tax Portal) would leave its second
// word, and every flag after it, unread, and the command would go on
// without them. So a word left over is an error, naming the word.
func parseFlags(fs *flag.FlagSet, args []string, positional ...string) error {
	if len(positional) > 0 {
		// The usage says what comes after the flags, which the flag
		// package's own does not.
		fs.Usage = func() {
			fmt.Fprintf(fs.Output(), "usage: varde %s [flags] %s\n\nflags:\n", fs.Name(), strings.Join(positional, " "))
			fs.PrintDefaults()
		}
	}
	// The flag package writes its usage (and the error, if any) to the
	// flag set's output; hold it back until it is known whether the
	// usage was asked for (stdout) or the command called wrongly (stderr).
	out := fs.Output()
	var held bytes.Buffer
	fs.SetOutput(&held)
	err := fs.Parse(args)
	fs.SetOutput(out)
	if errors.Is(err, flag.ErrHelp) {
		return &helpRequest{usage: held.String()}
	}
	_, _ = held.WriteTo(out)
	if err != nil {
		return &usageError{fmt.Errorf("%s: %w", fs.Name(), err)}
	}
	required := len(positional)
	for required > 0 && strings.HasPrefix(positional[required-1], "[") {
		required--
	}
	if fs.NArg() < required {
		return usageErrorf("%s: missing %s", fs.Name(), strings.Join(positional[fs.NArg():required], " "))
	}
	if fs.NArg() <= len(positional) {
		return nil
	}
	extra := fs.Arg(len(positional))
	at := len(args) - fs.NArg() + len(positional) // extra is args[at]
	return usageErrorf("%s: unexpected argument %q: %s", fs.Name(), extra, leftoverHint(fs, args, at))
}

// leftoverHint guesses why args[at] was left over.
func leftoverHint(fs *flag.FlagSet, args []string, at int) string {
	switch {
	case strings.HasPrefix(args[at], "-"):
		return "flags go before any other argument"
	case at >= 1 && isBoolFlag(fs, args[at-1]):
		return fmt.Sprintf("%s takes no value: write %s alone, or %s=false", args[at-1], args[at-1], args[at-1])
	case at >= 2 && takesValue(fs, args[at-2]):
		return fmt.Sprintf("quote values with spaces: %s %q", args[at-2], args[at-1]+" "+args[at])
	}
	return "quote values with spaces, and put flags before any other argument"
}

// flagNamed returns the flag that arg sets, if arg is a flag without
// "=value".
func flagNamed(fs *flag.FlagSet, arg string) *flag.Flag {
	if !strings.HasPrefix(arg, "-") || strings.Contains(arg, "=") {
		return nil
	}
	return fs.Lookup(strings.TrimLeft(arg, "-"))
}

func isBoolFlag(fs *flag.FlagSet, arg string) bool {
	f := flagNamed(fs, arg)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// takesValue reports whether arg is a flag that takes the next word as
// its value.
func takesValue(fs *flag.FlagSet, arg string) bool {
	return flagNamed(fs, arg) != nil && !isBoolFlag(fs, arg)
}

// groupHelp handles the first word after a command group (varde
// clients, keys, nodes, store, status, provider): none prints the
// group's usage on stderr and returns flag.ErrHelp (exit status 2); -h,
// --help or help returns a helpRequest, so the usage goes to stdout and
// the command succeeds, as -h after a subcommand does. Otherwise nil.
func groupHelp(usage string, args []string, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		return &helpRequest{usage: usage}
	}
	return nil
}

// unknownSubcommand prints a group's usage on stderr and returns the
// usage error for a subcommand the group does not have, naming the
// valid ones.
func unknownSubcommand(group, usage, name string, stderr io.Writer, valid ...string) error {
	fmt.Fprint(stderr, usage)
	return usageErrorf("unknown %s command %q; the %s commands are %s", group, name, group, strings.Join(valid, ", "))
}

// adminFlags begins `varde GROUP NAME [flags]`, a command that works on
// a node's database: without NAME, or with -h, it answers as groupHelp
// does; otherwise a flag set named "GROUP NAME" that reports to stderr,
// with the --config flag every such command takes.
func adminFlags(group, usage string, args []string, stderr io.Writer) (fs *flag.FlagSet, config *string, err error) {
	if err := groupHelp(usage, args, stderr); err != nil {
		return nil, nil, err
	}
	fs = flag.NewFlagSet(group+" "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs, fs.String("config", "", "the node's configuration file"), nil
}

// maxJWKSFileSize bounds a JWK set read from a file named on the command
// line, like the configuration file: a JWK set larger than 1 MiB is a
// mistake (a wrong file), not keys.
const maxJWKSFileSize = 1 << 20

// readJWKSFile reads the JWK set file path given to flag, refusing a file
// over maxJWKSFileSize without reading past the limit.
func readJWKSFile(flag, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxJWKSFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	if len(raw) > maxJWKSFileSize {
		return nil, fmt.Errorf("%s: %s is larger than %d bytes (1 MiB), too large for a JWK set", flag, path, maxJWKSFileSize)
	}
	return raw, nil
}

package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// exampleKeyLine is a line of varde.example.yaml that sets a key, or
// shows one commented out: its indentation, its key and what follows.
// A comment at the start of the line ("# support:", "#   url: …") is
// indented after its "# "; one further in ("  # drain: 5s") where it
// stands.
var exampleKeyLine = regexp.MustCompile(`^( *)(?:# ?( *))?(?:- )?([a-z_]+):(.*)$`)

// exampleLine is one key of varde.example.yaml, with its dotted path
// (list elements' keys as parent.child) and the rest of its line.
type exampleLine struct{ path, rest string }

// readExample returns the keys varde.example.yaml sets or shows
// commented out, in order.
func readExample(t *testing.T) []exampleLine {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "varde.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	type level struct {
		indent int
		key    string
	}
	var stack []level
	var out []exampleLine
	for line := range strings.SplitSeq(string(raw), "\n") {
		m := exampleKeyLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		indent := len(m[1]) + len(m[2])
		if strings.Contains(line, "- "+m[3]+":") {
			indent += 2 // a list element's first key, "- id:"
		}
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		stack = append(stack, level{indent, m[3]})
		keys := make([]string, len(stack))
		for i, l := range stack {
			keys[i] = l.key
		}
		out = append(out, exampleLine{path: strings.Join(keys, "."), rest: m[4]})
	}
	return out
}

// configKeys returns the yaml keys of t's fields as dotted paths, those
// of nested sections and list elements included (a list element's keys
// as parent.child).
func configKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		keys = append(keys, prefix+name)
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft.PkgPath() == t.PkgPath() {
			keys = append(keys, configKeys(ft, prefix+name+".")...)
		}
	}
	return keys
}

// TestExampleDocumentsEveryKey: every setting the configuration file
// may hold is shown in varde.example.yaml, which says it documents
// every setting, set or commented out, under its own section.
func TestExampleDocumentsEveryKey(t *testing.T) {
	shown := map[string]bool{}
	for _, l := range readExample(t) {
		shown[l.path] = true
	}
	for _, key := range configKeys(reflect.TypeFor[Config](), "") {
		if !shown[key] {
			t.Errorf("varde.example.yaml does not show %s", key)
		}
	}
}

// exampleDefault is "# default V" after a value in varde.example.yaml.
var exampleDefault = regexp.MustCompile(`#\s*default ([^\s,:;()]+)`)

// TestExampleDefaults: where varde.example.yaml says what a setting's
// default is ("# default 10m" after it), a configuration that leaves
// the setting out gets that value.
func TestExampleDefaults(t *testing.T) {
	c, err := Parse([]byte("version: 1\nissuer: https://id.example.no\nkeys: {signing_key_file: /etc/varde/signing-key.pem}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, l := range readExample(t) {
		m := exampleDefault.FindStringSubmatch(l.rest)
		if m == nil || strings.Contains(l.path, "clients.") || strings.Contains(l.path, "upstreams.") {
			continue
		}
		v, ok := fieldByPath(reflect.ValueOf(*c), strings.Split(l.path, "."))
		if !ok {
			t.Errorf("%s: no such setting", l.path)
			continue
		}
		checked++
		want := strings.Trim(m[1], `".`)
		if got := formatSetting(v); got != want && !sameDuration(got, want) {
			t.Errorf("%s: varde.example.yaml says default %s, a node takes %s", l.path, want, got)
		}
	}
	if checked < 10 {
		t.Errorf("only %d defaults found in varde.example.yaml", checked)
	}
}

// fieldByPath finds the field of v at the yaml path.
func fieldByPath(v reflect.Value, path []string) (reflect.Value, bool) {
	for _, key := range path {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return v, false
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			return v, false
		}
		found := false
		for i := range v.NumField() {
			if name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ","); name == key {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return v, false
		}
	}
	return v, true
}

func formatSetting(v reflect.Value) string {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "unset"
		}
		v = v.Elem()
	}
	if d, ok := v.Interface().(time.Duration); ok {
		return d.String()
	}
	switch v.Kind() {
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int:
		return strconv.Itoa(int(v.Int()))
	}
	return v.String()
}

// sameDuration reports whether a and b are one duration written two
// ways (8h0m0s and 8h).
func sameDuration(a, b string) bool {
	da, errA := time.ParseDuration(a)
	db, errB := time.ParseDuration(b)
	return errA == nil && errB == nil && da == db
}

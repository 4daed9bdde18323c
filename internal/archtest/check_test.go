package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// pkg is the part of `go list -json` these checks read.
type pkg struct {
	ImportPath string
	Name       string
	Dir        string
	Doc        string
	GoFiles    []string
	CgoFiles   []string
	// Imports are the direct imports, Deps every transitive dependency,
	// of the non-test files.
	Imports []string
	Deps    []string
}

// listPackages runs `go list -e -json` for patterns in dir. Packages that
// do not compile are still listed (-e), with whatever imports parse.
func listPackages(t testing.TB, dir string, patterns ...string) []pkg {
	t.Helper()
	args := append([]string{"list", "-e", "-json=ImportPath,Name,Dir,Doc,GoFiles,CgoFiles,Imports,Deps"}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatalf("go list %s in %s found no packages", strings.Join(patterns, " "), dir)
	}
	return pkgs
}

// within reports whether path is prefix or a package under it.
func within(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func withinAny(path string, prefixes []string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return within(path, p) })
}

// missingDocs returns one line for each package that has no doc.go or
// whose doc comment is missing or, outside main packages, does not start
// "Package <name> " (Go doc comment convention).
func missingDocs(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		if len(p.GoFiles)+len(p.CgoFiles) == 0 {
			continue // test-only directory or build-constrained away
		}
		switch {
		case p.Doc == "":
			out = append(out, p.ImportPath+": no package doc comment")
		case p.Name != "main" && !strings.HasPrefix(p.Doc, "Package "+p.Name+" "):
			out = append(out, fmt.Sprintf("%s: doc comment does not start %q", p.ImportPath, "Package "+p.Name+" "))
		}
		if !slices.Contains(p.GoFiles, "doc.go") {
			out = append(out, p.ImportPath+": no doc.go")
		}
	}
	return out
}

// forbiddenDeps returns one line for each package matched by from that
// depends, directly or not, on a package matched by forbidden, naming
// the direct import it comes through. Packages matched by except are
// skipped.
func forbiddenDeps(pkgs []pkg, from, except, forbidden []string) []string {
	byPath := make(map[string]pkg, len(pkgs))
	for _, p := range pkgs {
		byPath[p.ImportPath] = p
	}
	var out []string
	for _, p := range pkgs {
		if !withinAny(p.ImportPath, from) || withinAny(p.ImportPath, except) {
			continue
		}
		for _, d := range p.Deps {
			if !withinAny(d, forbidden) {
				continue
			}
			if slices.Contains(p.Imports, d) {
				out = append(out, p.ImportPath+" imports "+d)
				continue
			}
			via := "?"
			for _, imp := range p.Imports {
				if q, ok := byPath[imp]; ok && (slices.Contains(q.Deps, d)) {
					via = imp
					break
				}
			}
			out = append(out, p.ImportPath+" depends on "+d+" through "+via)
		}
	}
	return out
}

// envFuncs returns the functions of the package at path that read or
// change the environment.
func envFuncs(path string) []string {
	switch path {
	case "os":
		return []string{"Getenv", "LookupEnv", "Environ", "ExpandEnv", "Setenv", "Unsetenv", "Clearenv"}
	case "syscall":
		return []string{"Getenv", "Environ", "Setenv", "Unsetenv", "Clearenv"}
	}
	return nil
}

// envUse is one use of an environment function in non-test code.
type envUse struct {
	Pkg  string // import path
	Pos  string // file:line
	Func string // e.g. "os.Getenv"
	// Called is false when the function is used as a value (passed on).
	Called bool
}

// envUses finds every use of an environment function in f, whatever name
// os or syscall is imported under.
func envUses(fset *token.FileSet, f *ast.File, pkgPath string) []envUse {
	local := map[string]string{} // local name -> "os" or "syscall"
	var out []envUse
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if envFuncs(path) == nil {
			continue
		}
		name := path
		if imp.Name != nil {
			name = imp.Name.Name
		}
		if name == "." {
			out = append(out, envUse{Pkg: pkgPath, Pos: fset.Position(imp.Pos()).String(), Func: path + ".*", Called: true})
			continue
		}
		local[name] = path
	}
	if len(local) == 0 {
		return out
	}
	called := map[ast.Expr]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok {
			called[c.Fun] = true
		}
		return true
	})
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		x, ok := sel.X.(*ast.Ident)
		if !ok {
			return true
		}
		path, ok := local[x.Name]
		if !ok || !slices.Contains(envFuncs(path), sel.Sel.Name) {
			return true
		}
		out = append(out, envUse{
			Pkg: pkgPath, Pos: fset.Position(sel.Pos()).String(),
			Func: path + "." + sel.Sel.Name, Called: called[sel],
		})
		return true
	})
	return out
}

// envReaders returns one line for each use of the environment in the
// non-test files of pkgs, except in the packages matched by free and,
// in the packages matched by passOn, os.Getenv and os.Environ used as
// values (passed to package config rather than called).
func envReaders(t testing.TB, pkgs []pkg, free, passOn []string) []string {
	t.Helper()
	var out []string
	fset := token.NewFileSet()
	for _, p := range pkgs {
		if withinAny(p.ImportPath, free) {
			continue
		}
		for _, name := range slices.Concat(p.GoFiles, p.CgoFiles) {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Errorf("parse %s: %v", name, err)
				continue
			}
			for _, u := range envUses(fset, f, p.ImportPath) {
				if (u.Func == "os.Getenv" || u.Func == "os.Environ") && !u.Called && withinAny(p.ImportPath, passOn) {
					continue
				}
				verb := "calls"
				if !u.Called {
					verb = "uses"
				}
				out = append(out, fmt.Sprintf("%s: %s %s %s", u.Pos, p.ImportPath, verb, u.Func))
			}
		}
	}
	return out
}

// TestCheckersCatchViolations runs each checker on testdata/mod, a module
// that breaks every rule once, so a checker that stopped finding anything
// fails here rather than passing everything silently.
func TestCheckersCatchViolations(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("testdata", "mod"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOWORK", "off")
	t.Setenv("GOFLAGS", "-mod=mod")
	pkgs := listPackages(t, dir, "./...")
	const m = "example.com/m/"

	wantDocs := []string{
		m + `internal/broker: doc comment does not start "Package broker "`,
		m + "internal/oidc: no package doc comment",
		m + "internal/oidc: no doc.go",
		m + "web: no doc.go",
	}
	if got := missingDocs(pkgs); !slices.Equal(got, wantDocs) {
		t.Errorf("missingDocs:\n got %q\nwant %q", got, wantDocs)
	}

	wantDeps := []string{
		m + "internal/keys depends on " + m + "internal/broker through " + m + "internal/helper",
		m + "internal/oidc imports " + m + "internal/session",
	}
	got := forbiddenDeps(pkgs, []string{m + "internal/oidc", m + "internal/keys"}, nil,
		[]string{m + "internal/session", m + "internal/broker"})
	if !slices.Equal(got, wantDeps) {
		t.Errorf("forbiddenDeps:\n got %q\nwant %q", got, wantDeps)
	}

	var gotEnv []string
	for _, line := range envReaders(t, pkgs, []string{m + "internal/config"}, []string{m + "cmd/varde"}) {
		_, rest, _ := strings.Cut(line, ": ") // drop the position
		gotEnv = append(gotEnv, rest)
	}
	wantEnv := []string{
		m + "cmd/tool calls os.Environ",
		m + "cmd/tool calls syscall.Getenv",
		m + "cmd/varde calls os.Getenv",
		m + "internal/session calls os.Getenv",
	}
	if !slices.Equal(gotEnv, wantEnv) {
		t.Errorf("envReaders:\n got %q\nwant %q", gotEnv, wantEnv)
	}
}

// TestForbiddenDeps runs the dependency check on fabricated package lists.
func TestForbiddenDeps(t *testing.T) {
	pkgs := []pkg{
		{ImportPath: "m/internal/oidc", Imports: []string{"m/internal/store", "net/http"}, Deps: []string{"m/internal/store", "net/http"}},
		{ImportPath: "m/internal/oidc/discovery", Imports: []string{"m/internal/broker"}, Deps: []string{"m/internal/broker", "m/internal/store"}},
		{ImportPath: "m/internal/keys", Imports: []string{"m/internal/util"}, Deps: []string{"m/internal/util", "modernc.org/sqlite", "modernc.org/sqlite/lib"}},
		{ImportPath: "m/internal/util", Imports: []string{"modernc.org/sqlite"}, Deps: []string{"modernc.org/sqlite", "modernc.org/sqlite/lib"}},
		{ImportPath: "m/internal/broker", Imports: []string{"m/internal/store/sqlstore"}, Deps: []string{"m/internal/store/sqlstore"}},
		{ImportPath: "m/internal/brokerage", Imports: []string{"m/internal/store"}, Deps: []string{"m/internal/store"}},
	}
	for _, tc := range []struct {
		name                    string
		from, except, forbidden []string
		want                    []string
	}{
		{"clean", []string{"m/internal/oidc"}, []string{"m/internal/oidc/discovery"}, []string{"m/internal/broker"}, nil},
		{"subpackage", []string{"m/internal/oidc"}, nil, []string{"m/internal/broker"},
			[]string{"m/internal/oidc/discovery imports m/internal/broker"}},
		{"driver through a helper", []string{"m/internal/keys"}, nil, []string{"modernc.org/sqlite"}, []string{
			"m/internal/keys depends on modernc.org/sqlite through m/internal/util",
			"m/internal/keys depends on modernc.org/sqlite/lib through m/internal/util",
		}},
		{"prefix is a path, not a string prefix", []string{"m/internal/broker"}, []string{"m/internal/broker"}, []string{"m/internal/store"}, nil},
		{"prefix is a path: brokerage is not broker", []string{"m/internal/brokerage"}, nil, []string{"m/internal/store/sqlstore"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := forbiddenDeps(pkgs, tc.from, tc.except, tc.forbidden); !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestMissingDocs runs the doc check on fabricated package lists.
func TestMissingDocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    pkg
		want []string
	}{
		{"documented", pkg{ImportPath: "m/a", Name: "a", Doc: "Package a does a.", GoFiles: []string{"a.go", "doc.go"}}, nil},
		{"main", pkg{ImportPath: "m/cmd/x", Name: "main", Doc: "Command x runs.", GoFiles: []string{"doc.go"}}, nil},
		{"test-only directory", pkg{ImportPath: "m/t", Name: "t"}, nil},
		{"no doc", pkg{ImportPath: "m/a", Name: "a", GoFiles: []string{"doc.go"}}, []string{"m/a: no package doc comment"}},
		{"wrong name", pkg{ImportPath: "m/a", Name: "a", Doc: "Package ab does b.", GoFiles: []string{"doc.go"}},
			[]string{`m/a: doc comment does not start "Package a "`}},
		{"no doc.go", pkg{ImportPath: "m/a", Name: "a", Doc: "Package a does a.", GoFiles: []string{"a.go"}}, []string{"m/a: no doc.go"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := missingDocs([]pkg{tc.p}); !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestEnvUses runs the environment check on source snippets.
func TestEnvUses(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"none", `package p; import "os"; var _ = os.Args`, nil},
		{"call", `package p; import "os"; var _ = os.Getenv("A")`, []string{"os.Getenv called"}},
		{"value", `package p; import "os"; var f = os.Getenv`, []string{"os.Getenv value"}},
		{"alias", `package p; import o "os"; func f() { o.Setenv("A", "b"); _, _ = o.LookupEnv("A") }`,
			[]string{"os.Setenv called", "os.LookupEnv called"}},
		{"syscall", `package p; import "syscall"; var _ = syscall.Environ()`, []string{"syscall.Environ called"}},
		{"dot import", `package p; import . "os"; var _ = Getenv("A")`, []string{"os.* called"}},
		{"other package named os", `package p; import os "example.com/fakeos"; var _ = os.Getenv("A")`, nil},
		{"expand", `package p; import "os"; var _ = os.ExpandEnv("$HOME")`, []string{"os.ExpandEnv called"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "p.go", tc.src, 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range envUses(fset, f, "m/p") {
				how := "value"
				if u.Called {
					how = "called"
				}
				got = append(got, u.Func+" "+how)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

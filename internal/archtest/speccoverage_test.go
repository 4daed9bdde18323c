package archtest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// specCoverageDoc maps normative requirements to code and tests
// (STYLE.md rule 13).
const specCoverageDoc = "docs/spec-coverage.md"

// TestSpecCoverage: every piece of code and every test that
// docs/spec-coverage.md cites exists, so the map cannot rot as code
// moves. A citation is `path/file.go:Name` in backticks, where Name is a
// top-level function, type, constant or variable, or Type.Method; a test
// citation may end in /case, a string literal (a table case name) inside
// that test function. In a table row, the next-to-last cell cites code
// (anything but a Test or Fuzz function) and the last cell tests (Test
// or Fuzz functions in _test.go files); a row that cites code must cite
// a test or say "no test yet".
func TestSpecCoverage(t *testing.T) {
	root := moduleRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, specCoverageDoc))
	if err != nil {
		t.Fatal(err)
	}
	refs, problems := citations(string(doc))
	problems = append(problems, resolveCitations(root, refs)...)
	report(t, specCoverageDoc+" cites what does not exist", problems)
	tests := 0
	for _, r := range refs {
		if r.test {
			tests++
		}
	}
	// A parser that finds nothing would pass everything.
	if len(refs) < 100 || tests < 50 {
		t.Errorf("%s: only %d citations (%d tests) found", specCoverageDoc, len(refs), tests)
	}
}

// TestSpecCoverageCatchesRot: the checker reports a missing file, a
// missing function, a method on the wrong type, a missing table case, a
// test cited as code, code cited as a test, and a row without a test.
func TestSpecCoverageCatchesRot(t *testing.T) {
	root := moduleRoot(t)
	doc := strings.Join([]string{
		"| § | requirement | code | tests |",
		"| --- | --- | --- | --- |",
		"| 1 | fine | `internal/archtest/speccoverage_test.go:citations` | `internal/archtest/speccoverage_test.go:TestSpecCoverage` |",
		"| 2 | gone file | `internal/nowhere/x.go:F` | `internal/archtest/speccoverage_test.go:TestSpecCoverage` |",
		"| 3 | gone func | `internal/archtest/speccoverage_test.go:noSuchFunc` | `internal/archtest/speccoverage_test.go:TestNoSuchTest` |",
		"| 4 | wrong receiver | `internal/archtest/speccoverage_test.go:other.resolve` | `internal/archtest/speccoverage_test.go:TestSpecCoverage/no such case` |",
		"| 5 | swapped | `internal/archtest/speccoverage_test.go:TestSpecCoverage` | `internal/archtest/check_test.go:listPackages` |",
		"| 6 | untested | `internal/archtest/check_test.go:listPackages` | none |",
		"| 7 | honest | `internal/archtest/check_test.go:listPackages` | no test yet |",
		"| 8 | case found | `internal/archtest/check_test.go:listPackages` | `internal/archtest/speccoverage_test.go:TestSpecCoverageCatchesRot/case found` |",
	}, "\n")
	refs, problems := citations(doc)
	problems = append(problems, resolveCitations(root, refs)...)
	want := []string{
		"internal/nowhere/x.go",
		"noSuchFunc",
		"TestNoSuchTest",
		"other.resolve",
		"no such case",
		"cites a test as code",
		"cites non-test code as a test",
		"| 6 | untested",
	}
	all := strings.Join(problems, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("checker missed %q; it reported:\n%s", w, all)
		}
	}
	for _, ok := range []string{"| 1 |", "| 7 |", "| 8 |", "case found"} {
		if strings.Contains(all, ok) {
			t.Errorf("checker wrongly reported %q:\n%s", ok, all)
		}
	}
}

// moduleRoot is the directory of the module's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("not inside the module")
	}
	return filepath.Dir(gomod)
}

// citation is one `file.go:Name[/case]` reference in the document.
type citation struct {
	line int
	file string // relative to the module root
	name string // Func, Type, Type.Method, TestXxx
	sub  string // table case inside a test, or ""
	test bool   // cited in a table's test cell
	code bool   // cited in a table's code cell
}

func (c citation) String() string {
	s := c.file + ":" + c.name
	if c.sub != "" {
		s += "/" + c.sub
	}
	return fmt.Sprintf("line %d: %s", c.line, s)
}

var citationRE = regexp.MustCompile("`([A-Za-z0-9_./-]+\\.go):([A-Za-z_][A-Za-z0-9_]*(?:\\.[A-Za-z_][A-Za-z0-9_]*)?)(?:/([^`]+))?`")

// citations finds every citation in doc, noting which table cell it is
// in, and reports table rows that cite code but no test.
func citations(doc string) ([]citation, []string) {
	var refs []citation
	var problems []string
	find := func(line int, s string, test, code bool) []citation {
		var out []citation
		for _, m := range citationRE.FindAllStringSubmatch(s, -1) {
			out = append(out, citation{line: line, file: m[1], name: m[2], sub: m[3], test: test, code: code})
		}
		return out
	}
	for i, l := range strings.Split(doc, "\n") {
		line := i + 1
		trimmed := strings.TrimSpace(l)
		if !strings.HasPrefix(trimmed, "|") {
			refs = append(refs, find(line, l, false, false)...)
			continue
		}
		cells := strings.Split(strings.Trim(trimmed, "|"), "|")
		if len(cells) < 4 {
			refs = append(refs, find(line, l, false, false)...)
			continue
		}
		n := len(cells)
		for _, c := range cells[:n-2] {
			refs = append(refs, find(line, c, false, false)...)
		}
		code := find(line, cells[n-2], false, true)
		tests := find(line, cells[n-1], true, false)
		refs = append(refs, code...)
		refs = append(refs, tests...)
		if len(code) > 0 && len(tests) == 0 && !strings.Contains(cells[n-1], "no test yet") {
			problems = append(problems, fmt.Sprintf("line %d: a row that cites code cites no test (nor says \"no test yet\"): %s", line, trimmed))
		}
	}
	return refs, problems
}

// resolveCitations checks each citation against the Go source under root.
func resolveCitations(root string, refs []citation) []string {
	var problems []string
	files := map[string]*ast.File{}
	fset := token.NewFileSet()
	for _, r := range refs {
		if r.code && strings.HasSuffix(r.file, "_test.go") && (strings.HasPrefix(r.name, "Test") || strings.HasPrefix(r.name, "Fuzz")) {
			problems = append(problems, fmt.Sprintf("%s: cites a test as code", r))
		}
		if r.test && (!strings.HasSuffix(r.file, "_test.go") || !(strings.HasPrefix(r.name, "Test") || strings.HasPrefix(r.name, "Fuzz"))) {
			problems = append(problems, fmt.Sprintf("%s: cites non-test code as a test", r))
		}
		path := filepath.Join(root, filepath.FromSlash(r.file))
		if rel, err := filepath.Rel(root, path); err != nil || strings.HasPrefix(rel, "..") {
			problems = append(problems, fmt.Sprintf("%s: outside the module", r))
			continue
		}
		f, ok := files[path]
		if !ok {
			var err error
			f, err = parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", r, err))
				continue
			}
			files[path] = f
		}
		decl, found := lookup(f, r.name)
		if !found {
			problems = append(problems, fmt.Sprintf("%s: %s is not declared in %s", r, r.name, r.file))
			continue
		}
		if r.sub != "" && !hasString(decl, r.sub) {
			problems = append(problems, fmt.Sprintf("%s: no case %q in %s", r, r.sub, r.name))
		}
	}
	return problems
}

// lookup finds the declaration of name (Ident or Recv.Method) in f.
func lookup(f *ast.File, name string) (ast.Node, bool) {
	recv, method, isMethod := strings.Cut(name, ".")
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if !isMethod && d.Recv == nil && d.Name.Name == name {
				return d, true
			}
			if isMethod && d.Recv != nil && d.Name.Name == method && receiverName(d.Recv) == recv {
				return d, true
			}
		case *ast.GenDecl:
			if isMethod {
				continue
			}
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if s.Name.Name == name {
						return s, true
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.Name == name {
							return s, true
						}
					}
				}
			}
		}
	}
	return nil, false
}

// receiverName is the type name of a method receiver, without * or type
// parameters.
func receiverName(fl *ast.FieldList) string {
	if fl == nil || len(fl.List) == 0 {
		return ""
	}
	e := fl.List[0].Type
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

// hasString reports whether a string literal with value s occurs in n.
func hasString(n ast.Node, s string) bool {
	found := false
	ast.Inspect(n, func(n ast.Node) bool {
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if v, err := strconv.Unquote(lit.Value); err == nil && v == s {
				found = true
			}
		}
		return !found
	})
	return found
}

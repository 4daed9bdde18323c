package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// auditReasonsDoc lists every reason an audit event can carry
// (store.AuditEvent.Reason), for the operators who read the log and the
// people who read their export.
const auditReasonsDoc = "docs/audit-reasons.md"

// notAuditPackages write reasons of their own that are not audit
// events': a component's health (health, status), its notice to
// relying parties (webhook).
var notAuditPackages = []string{"internal/health", "internal/status", "internal/webhook"}

// TestAuditReasonsDocumented: every reason the code can write into an
// audit event is listed in docs/audit-reasons.md, and the list names
// none the code cannot write, so a reason added without its line, or a
// line left after its reason went, fails.
func TestAuditReasonsDocumented(t *testing.T) {
	root := moduleRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, auditReasonsDoc))
	if err != nil {
		t.Fatal(err)
	}
	reasons := auditReasons(t, root)
	report(t, auditReasonsDoc+" is not the reasons the code writes", reasonProblems(string(doc), reasons))
	// A walk that finds nothing would pass everything.
	if len(reasons) < 50 {
		t.Errorf("only %d audit reasons found", len(reasons))
	}
}

// TestAuditReasonsCatchRot: the collector finds the reasons of the
// test module, written each way the code writes one, and the check
// reports the one its list leaves out and the one it lists that is
// not written.
func TestAuditReasonsCatchRot(t *testing.T) {
	reasons := auditReasons(t, filepath.Join("testdata", "mod"))
	want := []string{"by_assignment", "by_call", "by_const", "by_field", "by_return", "by_table"}
	if !slices.Equal(reasons, want) {
		t.Errorf("reasons %q, want %q", reasons, want)
	}
	doc := "| `by_assignment` | |\n| `by_call` | |\n| `by_const` | |\n| `by_field` | |\n| `by_return` | |\n| `gone` | |\n"
	got := reasonProblems(doc, reasons)
	wantProblems := []string{"by_table is written but not listed", "gone is listed but never written"}
	if !slices.Equal(got, wantProblems) {
		t.Errorf("problems %q, want %q", got, wantProblems)
	}
}

// reasonRowRE is a row of the list: the reason in code, first in its row.
var reasonRowRE = regexp.MustCompile("(?m)^\\| `([a-z0-9_]+)` \\|")

// reasonProblems are the reasons doc does not list, and those it lists
// that are not among reasons.
func reasonProblems(doc string, reasons []string) []string {
	listed := map[string]bool{}
	for _, m := range reasonRowRE.FindAllStringSubmatch(doc, -1) {
		listed[m[1]] = true
	}
	var problems []string
	for _, r := range reasons {
		if !listed[r] {
			problems = append(problems, r+" is written but not listed")
		}
		delete(listed, r)
	}
	for _, r := range slices.Sorted(maps.Keys(listed)) {
		problems = append(problems, r+" is listed but never written")
	}
	return problems
}

// reasonSource is the Go code of one package, read for reasons.
type reasonSource struct {
	files []*ast.File
	// consts are the package's string constants, by name.
	consts map[string]string
}

// auditReasons collects, from the Go files (not tests) under root's
// internal/ and cmd/, outside notAuditPackages, the reasons written
// into audit events, each the way the code writes one:
//   - a constant named Reason… or reason…;
//   - the Reason field of a store.AuditEvent literal, or a .Reason
//     assigned;
//   - an argument given for a parameter named reason, of any function
//     of those packages;
//   - a value assigned to a variable named reason, or returned as a
//     result named reason or by a function named …Reason;
//   - a field …Reason (lastReason) of a literal, and the reason field
//     of each struct of a table.
//
// A value is a string literal or a constant; a variable is followed no
// further, its values being written in one of these ways.
func auditReasons(t *testing.T, root string) []string {
	t.Helper()
	srcs := map[string]*reasonSource{} // by package name
	fset := token.NewFileSet()
	for _, top := range []string{"internal", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			// Test helpers (storetest, upstreamtest, …) write made-up
			// reasons of their own.
			if withinAny(filepath.ToSlash(rel), notAuditPackages) || strings.Contains(rel, "testdata") || strings.HasSuffix(rel, "test") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			s := srcs[f.Name.Name]
			if s == nil {
				s = &reasonSource{consts: map[string]string{}}
				srcs[f.Name.Name] = s
			}
			s.files = append(s.files, f)
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	// Constants first, so that any use can name one of another package.
	for _, s := range srcs {
		for _, f := range s.files {
			for _, decl := range f.Decls {
				if g, ok := decl.(*ast.GenDecl); ok && g.Tok == token.CONST {
					for _, spec := range g.Specs {
						vs := spec.(*ast.ValueSpec)
						for i, name := range vs.Names {
							if i < len(vs.Values) {
								if v, ok := stringLit(vs.Values[i]); ok {
									s.consts[name.Name] = v
								}
							}
						}
					}
				}
			}
		}
	}
	// The parameters named reason, by function name.
	reasonParam := map[string]int{}
	for _, s := range srcs {
		for _, f := range s.files {
			for _, decl := range f.Decls {
				if fd, ok := decl.(*ast.FuncDecl); ok {
					if i := paramIndex(fd.Type.Params, "reason"); i >= 0 {
						reasonParam[fd.Name.Name] = i
					}
				}
			}
		}
	}
	found := map[string]bool{}
	for _, s := range srcs {
		value := func(e ast.Expr) {
			if v, ok := constValue(e, s, srcs); ok && v != "" {
				found[v] = true
			}
		}
		for _, f := range s.files {
			for _, decl := range f.Decls {
				if g, ok := decl.(*ast.GenDecl); ok && g.Tok == token.CONST {
					for _, spec := range g.Specs {
						for _, name := range spec.(*ast.ValueSpec).Names {
							if isReasonName(name.Name) {
								if v, ok := s.consts[name.Name]; ok {
									found[v] = true
								}
							}
						}
					}
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CompositeLit:
					reasonsInLiteral(n, value)
				case *ast.AssignStmt:
					for i, lhs := range n.Lhs {
						if i < len(n.Rhs) && isReasonTarget(lhs) {
							value(n.Rhs[i])
						}
					}
				case *ast.CallExpr:
					if i, ok := reasonParam[lastName(n.Fun)]; ok && i < len(n.Args) {
						value(n.Args[i])
					}
				case *ast.FuncDecl:
					reasonsReturned(n, value)
					reasonsToFuncParams(n, value)
				}
				return true
			})
		}
	}
	return slices.Sorted(maps.Keys(found))
}

// isReasonName reports whether a constant's name says it is a reason.
func isReasonName(name string) bool {
	for _, p := range []string{"Reason", "reason"} {
		if rest, ok := strings.CutPrefix(name, p); ok && rest != "" && rest[0] >= 'A' && rest[0] <= 'Z' {
			return true
		}
	}
	return false
}

// isReasonTarget reports whether e, assigned to, holds a reason: a
// variable named reason, or a Reason field.
func isReasonTarget(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name == "reason"
	case *ast.SelectorExpr:
		return e.Sel.Name == "Reason"
	}
	return false
}

// reasonFieldRE is an unexported field that holds a reason for an
// event to be written with, as lastReason. A field named reason alone
// is not read: a struct's reason may be of anything (nodeKey's is of
// the node's readiness), and one that holds an audit reason is given
// it from a constant or a parameter named reason.
var reasonFieldRE = regexp.MustCompile(`^[a-z][A-Za-z]*Reason$`)

// reasonsInLiteral gives value the reasons of composite literal n: its
// Reason field if it is an AuditEvent, a field reasonFieldRE matches,
// and the reason field of each struct of a table whose element has one.
func reasonsInLiteral(n *ast.CompositeLit, value func(ast.Expr)) {
	typ := n.Type
	if u, ok := typ.(*ast.UnaryExpr); ok {
		typ = u.X
	}
	audit := lastName(typ) == "AuditEvent"
	for _, el := range n.Elts {
		if kv, ok := el.(*ast.KeyValueExpr); ok && (audit && keyName(kv.Key) == "Reason" || reasonFieldRE.MatchString(keyName(kv.Key))) {
			value(kv.Value)
		}
	}
	if audit {
		return
	}
	arr, ok := typ.(*ast.ArrayType)
	if !ok {
		return
	}
	st, ok := arr.Elt.(*ast.StructType)
	if !ok {
		return
	}
	i := paramIndex(st.Fields, "reason")
	if i < 0 {
		return
	}
	for _, el := range n.Elts {
		row, ok := el.(*ast.CompositeLit)
		if !ok {
			continue
		}
		for j, f := range row.Elts {
			if kv, ok := f.(*ast.KeyValueExpr); ok {
				if keyName(kv.Key) == "reason" {
					value(kv.Value)
				}
			} else if j == i {
				value(f)
			}
		}
	}
}

// reasonsReturned gives value what fd returns as a reason: the result
// named reason, or the one string result of a function named …Reason.
func reasonsReturned(fd *ast.FuncDecl, value func(ast.Expr)) {
	if fd.Body == nil || fd.Type.Results == nil {
		return
	}
	i := paramIndex(fd.Type.Results, "reason")
	if i < 0 && strings.HasSuffix(fd.Name.Name, "Reason") && fd.Type.Results.NumFields() == 1 {
		i = 0
	}
	if i < 0 {
		return
	}
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		if _, ok := n.(*ast.FuncLit); ok {
			return false
		}
		if r, ok := n.(*ast.ReturnStmt); ok && i < len(r.Results) {
			value(r.Results[i])
		}
		return true
	})
}

// reasonsToFuncParams gives value the arguments fd's body gives for a
// parameter named reason of a function fd takes as a parameter, as
// failed("not_stored") in a function taking failed func(reason string).
func reasonsToFuncParams(fd *ast.FuncDecl, value func(ast.Expr)) {
	if fd.Body == nil {
		return
	}
	takes := map[string]int{}
	for _, f := range fd.Type.Params.List {
		ft, ok := f.Type.(*ast.FuncType)
		if !ok {
			continue
		}
		if i := paramIndex(ft.Params, "reason"); i >= 0 {
			for _, n := range f.Names {
				takes[n.Name] = i
			}
		}
	}
	if len(takes) == 0 {
		return
	}
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok {
			if id, ok := c.Fun.(*ast.Ident); ok {
				if i, ok := takes[id.Name]; ok && i < len(c.Args) {
					value(c.Args[i])
				}
			}
		}
		return true
	})
}

// paramIndex is the position of the field named name in fl, counting
// each name of a field, or -1.
func paramIndex(fl *ast.FieldList, name string) int {
	if fl == nil {
		return -1
	}
	i := 0
	for _, f := range fl.List {
		if len(f.Names) == 0 {
			i++
			continue
		}
		for _, n := range f.Names {
			if n.Name == name {
				return i
			}
			i++
		}
	}
	return -1
}

// constValue is the string e stands for: a literal, or a constant of
// the package s or of the package its selector names.
func constValue(e ast.Expr, s *reasonSource, srcs map[string]*reasonSource) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		return stringLit(e)
	case *ast.Ident:
		v, ok := s.consts[e.Name]
		return v, ok
	case *ast.SelectorExpr:
		if pkg, ok := e.X.(*ast.Ident); ok && srcs[pkg.Name] != nil {
			v, ok := srcs[pkg.Name].consts[e.Sel.Name]
			return v, ok
		}
	}
	return "", false
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	v, err := strconv.Unquote(lit.Value)
	return v, err == nil
}

func keyName(e ast.Expr) string {
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

// lastName is the name an identifier or a selector ends in: the
// function a call calls, the type a literal is of.
func lastName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return e.Sel.Name
	}
	return ""
}

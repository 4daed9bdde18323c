package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// registeredMetrics returns the names of the Prometheus metrics that
// the code under dir defines: the Name of every prometheus.*Opts literal
// and the first argument of every prometheus.NewDesc, test files left
// out.
func registeredMetrics(t *testing.T, dir string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			var lit ast.Expr
			switch n := n.(type) {
			case *ast.CompositeLit:
				if sel, ok := n.Type.(*ast.SelectorExpr); ok && isPkg(sel.X, "prometheus") && strings.HasSuffix(sel.Sel.Name, "Opts") {
					for _, e := range n.Elts {
						if kv, ok := e.(*ast.KeyValueExpr); ok && isIdent(kv.Key, "Name") {
							lit = kv.Value
						}
					}
				}
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && isPkg(sel.X, "prometheus") && sel.Sel.Name == "NewDesc" && len(n.Args) > 0 {
					lit = n.Args[0]
				}
			}
			if b, ok := lit.(*ast.BasicLit); ok && b.Kind == token.STRING {
				name, err := strconv.Unquote(b.Value)
				if err != nil {
					t.Errorf("%s: %v", fset.Position(b.Pos()), err)
				}
				names[name] = true
			} else if lit != nil {
				t.Errorf("%s: a metric name that is not a string literal; this test cannot read it", fset.Position(lit.Pos()))
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func isPkg(e ast.Expr, name string) bool   { return isIdent(e, name) }
func isIdent(e ast.Expr, name string) bool { id, ok := e.(*ast.Ident); return ok && id.Name == name }

// documentedMetric is a metric's row in docs/monitoring.md's table.
var documentedMetric = regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|")

// TestMetricsDocumented: docs/monitoring.md's table lists every metric
// the code defines, and only those.
func TestMetricsDocumented(t *testing.T) {
	registered := registeredMetrics(t, filepath.Join("..", "..", "internal"))
	if len(registered) < 20 {
		t.Fatalf("only %d metrics found in the code: %v", len(registered), registered)
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "monitoring.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range documentedMetric.FindAllStringSubmatch(string(raw), -1) {
		documented[m[1]] = true
		if !registered[m[1]] {
			t.Errorf("docs/monitoring.md lists %s, which no node exports", m[1])
		}
	}
	for name := range registered {
		if !documented[name] {
			t.Errorf("docs/monitoring.md does not list %s", name)
		}
	}
}

// promQLName is a word in a PromQL expression that may be a metric
// name, once promQLNotNames are taken out.
var promQLName = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)

// promQLNotNames are the parts of a PromQL expression that hold no
// metric name: label matchers, ranges, strings and grouping labels.
var promQLNotNames = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]|"[^"]*"|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)

// promQLWords are PromQL's own words: functions, aggregations, keywords.
var promQLWords = []string{"sum", "count", "and", "or", "unless", "rate", "increase", "max", "min", "avg", "bool", "time"}

// TestAlertRulesUseRealMetrics: every metric docs/alerts.yml's rules
// ask for is one a node exports (or Prometheus's own up), and every
// alert is named on docs/monitoring.md; if promtool is installed, it
// finds the rules valid.
func TestAlertRulesUseRealMetrics(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "alerts.yml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	registered := registeredMetrics(t, filepath.Join("..", "..", "internal"))
	registered["up"] = true
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "monitoring.md"))
	if err != nil {
		t.Fatal(err)
	}
	rules := 0
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			rules++
			if !strings.Contains(string(doc), "**"+r.Alert+"**") {
				t.Errorf("docs/monitoring.md does not explain %s", r.Alert)
			}
			expr := promQLNotNames.ReplaceAllString(r.Expr, " ")
			for _, word := range promQLName.FindAllString(expr, -1) {
				if slices.Contains(promQLWords, word) {
					continue
				}
				if !registered[word] && !registered[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(word, "_bucket"), "_sum"), "_count")] {
					t.Errorf("%s: %s is no metric a node exports", r.Alert, word)
				}
			}
		}
	}
	if rules < 5 {
		t.Errorf("only %d rules read from %s", rules, path)
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
			t.Errorf("promtool check rules: %v\n%s", err, out)
		}
	}
}

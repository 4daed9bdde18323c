package statuspage

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func export(t *testing.T, src Source, dir string) error {
	t.Helper()
	return Export(context.Background(), src, newPages(t), dir, ExportOptions{BaseURL: "https://id.example.no", Now: func() time.Time { return now }})
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestExportWritesEveryFile(t *testing.T) {
	src := fixture()
	dir := filepath.Join(t.TempDir(), "status")
	if err := export(t, src, dir); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			got = append(got, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"index.html", "index.nb.html", "index.da.html", "feed.atom", "feed.nb.atom", "feed.da.atom",
		"api/v1/summary.json", "api/v1/components.json", "api/v1/incidents.json",
		"static/varde.css", "static/status.css",
	}
	// This quarter's report and the seven before it, so an export does
	// not drop the quarters a previous one published.
	for _, q := range []string{"2026-Q4", "2026-Q3", "2026-Q2", "2026-Q1", "2025-Q4", "2025-Q3", "2025-Q2", "2025-Q1"} {
		want = append(want, "reports/"+q+".html", "reports/"+q+".nb.html", "reports/"+q+".da.html", "reports/"+q+".json")
	}
	for id := range src.incidents {
		want = append(want, "incidents/"+id+".html", "incidents/"+id+".nb.html", "incidents/"+id+".da.html", "api/v1/incidents/"+id+".json")
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("files\n got %v\nwant %v", got, want)
	}

	// The JSON files are what the API answers for the same values.
	srv := server(t, src)
	same := map[string]string{
		"api/v1/summary.json":    "/status/api/v1/summary",
		"api/v1/components.json": "/status/api/v1/components",
		"api/v1/incidents.json":  "/status/api/v1/incidents",
		"reports/2026-Q4.json":   "/status/api/v1/reports?quarter=2026-Q4",
		"reports/2026-Q3.json":   "/status/api/v1/reports?quarter=2026-Q3",
	}
	for id := range src.incidents {
		same["api/v1/incidents/"+id+".json"] = "/status/api/v1/incidents/" + id
	}
	for file, path := range same {
		if api := get(t, srv.URL+path).body; readFile(t, dir, file) != api {
			t.Errorf("%s differs from %s", file, path)
		}
	}
	// Each exported report links to every exported quarter, in its
	// own language.
	for _, q := range []string{"2026-Q4", "2025-Q1"} {
		page := readFile(t, dir, "reports/"+q+".nb.html")
		for _, link := range []string{`href="2025-Q1.nb.html"`, `href="2026-Q3.nb.html"`, `href="2026-Q4.nb.html"`} {
			if !strings.Contains(page, link) {
				t.Errorf("reports/%s.nb.html has no %s", q, link)
			}
		}
	}
	if readFile(t, dir, "static/status.css") == "" {
		t.Error("empty stylesheet")
	}
}

var linkRE = regexp.MustCompile(`(?:href|src|action)="([^"]*)"`)

func TestExportedHTMLLinksResolveInTheExport(t *testing.T) {
	src := fixture()
	dir := filepath.Join(t.TempDir(), "status")
	if err := export(t, src, dir); err != nil {
		t.Fatal(err)
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "*.html"))
	more, _ := filepath.Glob(filepath.Join(dir, "*", "*.html"))
	pages = append(pages, more...)
	langs := len(newPages(t).Languages())
	if len(pages) != langs*(1+ExportQuarters+len(src.incidents)) {
		t.Fatalf("%d pages", len(pages))
	}
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		html := string(b)
		name, _ := filepath.Rel(dir, p)
		if strings.Contains(html, `href="/`) || strings.Contains(html, `src="/`) || strings.Contains(html, `action="/`) {
			t.Errorf("%s has an absolute link to the server", name)
		}
		if strings.Contains(html, "<form") {
			t.Errorf("%s has a form, which needs a server", name)
		}
		for _, m := range linkRE.FindAllStringSubmatch(html, -1) {
			link := m[1]
			if strings.HasPrefix(link, "#") {
				continue
			}
			if strings.Contains(link, "://") || strings.Contains(link, "?") {
				t.Errorf("%s links outside the export: %s", name, link)
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(p), filepath.FromSlash(link))); err != nil {
				t.Errorf("%s: broken link %s", name, link)
			}
		}
	}
	for _, l := range []struct{ file, lang, suffix, overdue string }{
		{"index.html", "en", "", "Root-cause analysis overdue"},
		{"index.nb.html", "nb", ".nb", "Årsaksanalysen er forsinket"},
		{"index.da.html", "da", ".da", "Årsagsanalysen er forsinket"},
	} {
		html := readFile(t, dir, l.file)
		for id, inc := range src.incidents {
			if !strings.Contains(html, `href="incidents/`+id+l.suffix+`.html"`) {
				t.Errorf("%s does not link incident %s", l.file, id)
			}
			if !strings.Contains(html, localized(inc.Title, l.lang, id)) {
				t.Errorf("%s lacks incident %s's title", l.file, id)
			}
		}
		if !strings.Contains(html, l.overdue) {
			t.Errorf("%s lacks the overdue RCA", l.file)
		}
	}
	if !strings.Contains(readFile(t, dir, "incidents/inc-0002.nb.html"), `href="inc-0002.html" hreflang="en"`) {
		t.Error("Norwegian incident page does not link its English version")
	}

	// The exported feed links incidents, and maintenance to the page,
	// relative to itself, with the same ids as the served one.
	f := parseFeed(t, readFile(t, dir, "feed.atom"))
	for _, e := range f.Entries {
		page := "incidents/"
		if strings.Contains(e.ID, ":status/maintenance/") {
			page = "index.html"
		}
		if len(e.Links) != 1 || !strings.HasPrefix(e.Links[0].Href, page) || !strings.HasPrefix(e.ID, "tag:id.example.no,") {
			t.Errorf("entry %q: %+v", e.ID, e.Links)
		}
		if _, err := os.Stat(filepath.Join(dir, e.Links[0].Href)); err != nil {
			t.Errorf("feed links a missing page: %v", err)
		}
	}
}

func TestExportReplacesOnlyWhenComplete(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "status")
	src := fixture()
	if err := export(t, src, dir); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, dir, "api/v1/summary.json")

	// A failing source leaves the previous export as it was.
	src.fail = errBroken
	if err := export(t, src, dir); err == nil {
		t.Fatal("export with a failing source succeeded")
	}
	if readFile(t, dir, "api/v1/summary.json") != before {
		t.Error("failed export changed the previous one")
	}
	// An incident whose id cannot name a file fails the export too.
	src = fixture()
	src.summary.Recent = append(src.summary.Recent, src.summary.Recent[0])
	src.summary.Recent[len(src.summary.Recent)-1].ID = "../escape"
	if err := export(t, src, dir); err == nil {
		t.Fatal("export with a path in an incident id succeeded")
	}
	if _, err := os.Stat(filepath.Join(parent, "escape.html")); err == nil {
		t.Error("export wrote outside its folder")
	}

	// A good export replaces it, and nothing is left beside it.
	src = fixture()
	src.summary.Node = "bergen-1"
	if err := export(t, src, dir); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(readFile(t, dir, "api/v1/summary.json"), `"bergen-1"`) {
		t.Error("second export did not replace the first")
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("left beside the export: %v", names)
	}
}

// TestExportStartsAtFirstData: quarters that ended before the node's
// first health record are neither exported nor linked; with no record
// at all only the current quarter is.
func TestExportStartsAtFirstData(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dataFrom time.Time
		want     []string
	}{
		{"since 2026-Q2", time.Date(2026, 5, 14, 9, 30, 0, 0, time.UTC), []string{"2026-Q2", "2026-Q3", "2026-Q4"}},
		{"first day of a quarter", time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), []string{"2026-Q3", "2026-Q4"}},
		{"no data", time.Time{}, []string{"2026-Q4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := fixture()
			src.report.DataFrom = tc.dataFrom
			dir := filepath.Join(t.TempDir(), "status")
			if err := export(t, src, dir); err != nil {
				t.Fatal(err)
			}
			ents, err := os.ReadDir(filepath.Join(dir, "reports"))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range ents {
				if q, ok := strings.CutSuffix(e.Name(), ".json"); ok {
					got = append(got, q)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("exported quarters %v, want %v", got, tc.want)
			}
			page := readFile(t, dir, "reports/2026-Q4.html")
			_, nav, _ := strings.Cut(page, `<ul class="quarters">`)
			nav, _, _ = strings.Cut(nav, `</ul>`)
			if n := strings.Count(nav, `<a `); n != len(tc.want) {
				t.Errorf("2026-Q4.html links %d quarters, want %d", n, len(tc.want))
			}
			for _, q := range []string{"2025-Q1", "2026-Q1"} {
				if !slices.Contains(tc.want, q) && strings.Contains(page, `href="`+q+`.html"`) {
					t.Errorf("2026-Q4.html links %s, not exported", q)
				}
			}
		})
	}
}

// TestReportSaysUnmeasured: a report of a period that ended before the
// node's first health record says its figures are not measured; one of
// a measured period does not.
func TestReportSaysUnmeasured(t *testing.T) {
	src := fixture()
	src.report.DataFrom = time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	srv := server(t, src)
	const sentence = "nothing was measured"
	if page := get(t, srv.URL+"/status/reports?quarter=2026-Q2&lang=en").body; !strings.Contains(page, sentence) {
		t.Error("the 2026-Q2 report does not say it is unmeasured")
	}
	if page := get(t, srv.URL+"/status/reports?quarter=2026-Q3&lang=en").body; strings.Contains(page, sentence) {
		t.Error("the 2026-Q3 report, measured from August, says it is unmeasured")
	}
}

// TestReportSaysMeasuredFrom: a report of a quarter whose first health
// record falls inside it says from when its figures are measured, and
// a component with no measured availability reads as not measured, not
// as a percentage.
func TestReportSaysMeasuredFrom(t *testing.T) {
	src := fixture()
	src.report.DataFrom = time.Date(2026, 8, 3, 9, 30, 0, 0, time.UTC)
	src.report.Components[0].AvailabilityPercent = nil
	srv := server(t, src)
	page := get(t, srv.URL+"/status/reports?quarter=2026-Q3&lang=en").body
	if !strings.Contains(page, "no recorded checks from before 3 Aug 2026, 09:30 UTC: the figures cover only the time since") {
		t.Error("the 2026-Q3 report, measured from 3 August, does not say so")
	}
	if !strings.Contains(page, "<td>not measured</td>") {
		t.Error("a component with no availability does not read as not measured")
	}
	if page := get(t, srv.URL+"/status/reports?quarter=2026-Q4&lang=en").body; strings.Contains(page, "the figures cover only the time since") {
		t.Error("the 2026-Q4 report, measured throughout, says it is measured from a time in it")
	}
}

// TestExportHasIncidentsOfOlderReports: an incident an exported report
// lists but the page no longer shows (resolved before its 90 days) has
// its page in the export too, so the report's link to it resolves.
func TestExportHasIncidentsOfOlderReports(t *testing.T) {
	src := fixture()
	old := *src.incidents["inc-0003"]
	old.ID = "inc-0000"
	old.Title = map[string]string{"en": "Demo BankID was down in the spring"}
	src.incidents[old.ID] = &old
	src.report.Incidents = append(src.report.Incidents, old)
	dir := filepath.Join(t.TempDir(), "status")
	if err := export(t, src, dir); err != nil {
		t.Fatal(err)
	}
	report := readFile(t, dir, "reports/2026-Q3.html")
	if !strings.Contains(report, `href="../incidents/inc-0000.html"`) {
		t.Fatal("the 2026-Q3 report does not link the older incident")
	}
	if page := readFile(t, dir, "incidents/inc-0000.html"); !strings.Contains(page, "Demo BankID was down in the spring") {
		t.Error("the older incident's page does not show it")
	}
	if _, err := os.Stat(filepath.Join(dir, "api", "v1", "incidents", "inc-0000.json")); err != nil {
		t.Error(err)
	}
}

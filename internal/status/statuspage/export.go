package statuspage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/status"
	"github.com/varde-eid/varde/web"
)

// ExportOptions tune Export.
type ExportOptions struct {
	// BaseURL is the public issuer URL; it makes the feed's ids (not its
	// links, which stay relative). Optional.
	BaseURL string
	// Now is the clock (default time.Now); the current quarter's report
	// covers it to Now.
	Now func() time.Time
	// Static holds the stylesheets under static/ (default web.Static).
	Static fs.FS
	Log    *slog.Logger
}

// ExportQuarters is how many quarters' reports Export writes: the
// current one and the seven before it, two years.
const ExportQuarters = 8

// staticFiles are the stylesheets the status pages link to.
var staticFiles = []string{"static/varde.css", "static/status.css"}

// Export writes a static copy of the status page, its API documents, the
// feed and the reports of the current quarter and the ExportQuarters-1
// before it into dir (see the package
// comment for the layout). It builds the copy beside dir and swaps it in
// only when complete.
func Export(ctx context.Context, src Source, pages *httpx.Pages, dir string, opts ExportOptions) error {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	static := opts.Static
	if static == nil {
		static = web.Static
	}
	files, err := exportFiles(ctx, src, pages, now(), opts.BaseURL, static)
	if err != nil {
		return fmt.Errorf("status export: %w", err)
	}
	if err := writeTree(dir, files); err != nil {
		return fmt.Errorf("status export: %w", err)
	}
	return nil
}

// exportFiles renders every file of the export, by slash path.
func exportFiles(ctx context.Context, src Source, pages *httpx.Pages, now time.Time, baseURL string, static fs.FS) (map[string][]byte, error) {
	s, err := src.Summary(ctx)
	if err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	// The current quarter and the ExportQuarters-1 before it, newest
	// first: each export replaces the whole directory, so a quarter it
	// left out would vanish from a published copy. Quarters that ended
	// before the node's first health record (Report.DataFrom) are left
	// out: nothing was measured in them.
	loc := pages.Location()
	quarter := QuarterOf(now, loc)
	type quarterReport struct {
		p   Period
		rep *status.Report
	}
	var reps []quarterReport
	for i, at := 0, now; i < ExportQuarters; i++ {
		p, err := ParsePeriod(map[string][]string{"quarter": {QuarterOf(at, loc)}}, now, loc)
		if err != nil {
			return nil, err
		}
		rep, err := src.Report(ctx, p.From, p.To, p.Title)
		if err != nil {
			return nil, fmt.Errorf("report %s: %w", p.Quarter, err)
		}
		reps = append(reps, quarterReport{p, rep})
		if rep.DataFrom.IsZero() || !rep.DataFrom.Before(p.From) {
			break
		}
		at = p.From.Add(-time.Nanosecond)
	}

	// The incidents on the page and in the feed, and those the exported
	// reports list, which may have been resolved before the page's 90
	// days: each report links its incidents' pages.
	incs := map[string]*status.Incident{}
	list := feedIncidents(s)
	for _, r := range reps {
		list = append(list, r.rep.Incidents...)
	}
	for _, x := range list {
		if incs[x.ID] != nil {
			continue
		}
		if !validID.MatchString(x.ID) {
			return nil, fmt.Errorf("incident id %q cannot name a file", x.ID)
		}
		inc, err := src.Incident(ctx, x.ID)
		if err != nil {
			return nil, fmt.Errorf("incident %s: %w", x.ID, err)
		}
		incs[x.ID] = inc
	}

	files := map[string][]byte{}
	addJSON := func(name string, v any) error {
		b, err := encodeJSON(v)
		if err != nil {
			return err
		}
		files[name] = b
		return nil
	}
	if err := errors.Join(
		addJSON("api/v1/summary.json", s),
		addJSON("api/v1/components.json", componentsOf(s)),
		addJSON("api/v1/incidents.json", incidentsOf(s)),
	); err != nil {
		return nil, err
	}
	for _, r := range reps {
		if err := addJSON("reports/"+r.p.Quarter+".json", r.rep); err != nil {
			return nil, err
		}
	}
	for id, inc := range incs {
		if err := addJSON("api/v1/incidents/"+id+".json", inc); err != nil {
			return nil, err
		}
	}

	suffix := func(lang string) string {
		if lang == defaultLang {
			return ""
		}
		return "." + lang
	}
	// langLinks link one exported page (at path, with the language
	// suffix before ext) in every language, relative to its folder.
	langLinks := func(lang, base, ext string) []langLink {
		var out []langLink
		for _, l := range pages.Languages() {
			out = append(out, langLink{Tag: l.Tag, Name: l.Name, URL: base + suffix(l.Tag) + ext, Current: l.Tag == lang})
		}
		return out
	}
	for _, l := range pages.Languages() {
		lang, sfx := l.Tag, suffix(l.Tag)
		top := linker{export: true, suffix: sfx, quarter: quarter}
		sub := linker{export: true, root: "../", suffix: sfx, quarter: quarter}

		v := newViewer(pages, lang, now, top)
		b, err := renderPage(pages, lang, v.homePage(s, langLinks(lang, "index", ".html")))
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", lang, err)
		}
		files["index"+sfx+".html"] = b

		for id, inc := range incs {
			v := newViewer(pages, lang, now, sub)
			b, err := renderPage(pages, lang, v.incidentPage(s, inc, langLinks(lang, id, ".html")))
			if err != nil {
				return nil, fmt.Errorf("incident %s %s: %w", id, lang, err)
			}
			files["incidents/"+id+sfx+".html"] = b
		}

		for _, r := range reps {
			q := r.p.Quarter
			v := newViewer(pages, lang, now, sub)
			b, err := renderPage(pages, lang, v.reportPage(s, r.rep, r.p, langLinks(lang, q, ".html")))
			if err != nil {
				return nil, fmt.Errorf("report %s %s: %w", q, lang, err)
			}
			files["reports/"+q+sfx+".html"] = b
		}

		v = newViewer(pages, lang, now, top)
		b, err = v.feed(s, baseURL, feedLinks{
			self:     "feed" + sfx + ".atom",
			page:     "index" + sfx + ".html",
			incident: func(id string) string { return "incidents/" + id + sfx + ".html" },
		})
		if err != nil {
			return nil, err
		}
		files["feed"+sfx+".atom"] = b
	}
	for _, name := range staticFiles {
		b, err := fs.ReadFile(static, name)
		if err != nil {
			return nil, fmt.Errorf("stylesheet: %w", err)
		}
		files[name] = b
	}
	return files, nil
}

// renderPage renders the "status" template through Pages, which writes
// only to an http.ResponseWriter, as a request in lang would see it.
func renderPage(pages *httpx.Pages, lang string, d pageData) ([]byte, error) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/status", nil)
	req.Header.Set("Accept-Language", lang)
	pages.Render(rec, req, http.StatusOK, "status", lang, d)
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("render: status %d", rec.Code)
	}
	return rec.Body.Bytes(), nil
}

// writeTree writes files into a new folder beside dir, then swaps it for
// dir: until the last rename, dir keeps its previous, complete content.
func writeTree(dir string, files map[string][]byte) (err error) {
	dir = filepath.Clean(dir)
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".new-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	for name, b := range files {
		p := filepath.Join(tmp, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	old := ""
	if _, statErr := os.Stat(dir); statErr == nil {
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("move previous export aside: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			_ = os.Rename(old, dir)
		}
		return fmt.Errorf("move export into place: %w", err)
	}
	if old != "" {
		if err := os.RemoveAll(old); err != nil {
			return fmt.Errorf("remove previous export: %w", err)
		}
	}
	return nil
}

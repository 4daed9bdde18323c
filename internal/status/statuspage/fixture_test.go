package statuspage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/status"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/web"
)

// now is the fixture's clock: late in 2026-Q4.
var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func at(day, hour, minute int) time.Time {
	return time.Date(2026, 11, day, hour, minute, 0, 0, time.UTC)
}

func ptr[T any](v T) *T { return &v }

// fakeSource returns fixed values; what is tested here is rendering.
type fakeSource struct {
	summary   *status.Summary
	incidents map[string]*status.Incident
	report    *status.Report
	fail      error
	// reportFail, if set, is what Report returns; incidentFail what
	// Incident returns.
	reportFail   error
	incidentFail error
	// asked records the last Report call.
	asked struct {
		from, to time.Time
		title    string
	}
}

func (f *fakeSource) Summary(context.Context) (*status.Summary, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	return f.summary, nil
}

func (f *fakeSource) Incident(_ context.Context, id string) (*status.Incident, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	if f.incidentFail != nil {
		return nil, f.incidentFail
	}
	inc, ok := f.incidents[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return inc, nil
}

func (f *fakeSource) Report(_ context.Context, from, to time.Time, title string) (*status.Report, error) {
	if err := cmp.Or(f.fail, f.reportFail); err != nil {
		return nil, err
	}
	f.asked.from, f.asked.to, f.asked.title = from, to, title
	r := *f.report
	r.From, r.To, r.Title = from, to, title
	if to.After(now) {
		r.To = now // to date, as status.Service.Report reports it
	}
	return &r, nil
}

// components of the fixture: one of each state worth showing.
var fixtureNames = []struct {
	id, kind, en, nb string
	state            status.State
}{
	{"node:oslo-1", status.KindNode, "Login server Oslo 1", "Innloggingstjener Oslo 1", status.Operational},
	{"store", status.KindStore, "Database", "Database", status.Operational},
	{"provider:passkey", status.KindProvider, "Passkey", "Passnøkkel", status.Degraded},
	{"provider:bankid", status.KindProvider, "BankID", "BankID", status.Down},
	{"provider:minid", status.KindProvider, "MinID", "MinID", status.InMaintenance},
}

func history(id string, bad map[int]status.State, incidents map[int][]string) status.History {
	h := status.History{Component: id}
	var probes, ok int64
	start := now.Truncate(24*time.Hour).AddDate(0, 0, -89)
	for i := 0; i < 90; i++ {
		d := status.Day{Date: start.AddDate(0, 0, i), Probes: 2880, OK: 2880, Worst: status.Operational, Incidents: incidents[i]}
		switch bad[i] {
		case status.Degraded:
			d.OK, d.Worst = 2700, status.Degraded
		case status.Down:
			d.OK, d.Worst = 2590, status.Down
		case status.Unknown:
			d.Probes, d.OK, d.Worst = 0, 0, status.Unknown
		}
		if d.Probes > 0 {
			d.Percent = ptr(100 * float64(d.OK) / float64(d.Probes))
		}
		probes += d.Probes
		ok += d.OK
		h.Days = append(h.Days, d)
	}
	h.Percent = ptr(100 * float64(ok) / float64(probes))
	return h
}

func fixture() *fakeSource {
	s := &status.Summary{Version: 1, GeneratedAt: now, Node: "oslo-1", Overall: status.Down}
	for _, c := range fixtureNames {
		s.Components = append(s.Components, status.Component{
			ID: c.id, Name: map[string]string{"en": c.en, "nb": c.nb}, Kind: c.kind, State: c.state,
			Since: ptr(at(25, 11, 2)), Reason: "probe", Uptime90: ptr(99.5),
		})
	}
	// A component with no Norwegian name falls back to English.
	s.Components = append(s.Components, status.Component{
		ID: "provider:eidas", Name: map[string]string{"en": "EU eID"}, Kind: status.KindProvider, State: status.Unknown,
	})
	s.History = []status.History{
		history("node:oslo-1", nil, nil),
		history("store", map[int]status.State{10: status.Unknown}, nil),
		history("provider:passkey", map[int]status.State{89: status.Degraded, 70: status.Degraded}, map[int][]string{70: {"inc-0002"}}),
		history("provider:bankid", map[int]status.State{89: status.Down, 80: status.Down}, map[int][]string{80: {"inc-0001", "inc-0003"}, 89: {"inc-0004"}}),
		history("provider:minid", nil, nil),
		history("provider:eidas", nil, nil),
	}
	open := status.Incident{
		ID: "inc-0004", Title: map[string]string{"en": "BankID login is not working", "nb": "Innlogging med BankID virker ikke"},
		Component: "provider:bankid", Components: []string{"provider:bankid"}, Severity: "down", Status: "open",
		StartedAt: at(25, 11, 0), OpenedAt: at(25, 11, 2), DurationSeconds: 3600, PeopleAffected: 12345, FailedAttempts: 20480,
		Rerouted: 9000, CountedAt: at(25, 12, 0),
		Timeline: []status.Update{
			{Seq: 1, Time: at(25, 11, 2), Kind: "opened", State: "down", Reason: "probe: timeout", Author: "oslo-1"},
			{Seq: 2, Time: at(25, 11, 30), Kind: "operator", Message: "We have contacted BankID.", Author: "Kari (operations)"},
		},
	}
	overdue := status.Incident{
		ID: "inc-0002", Title: map[string]string{"en": "Passkey logins were slow", "nb": "Innlogging med passnøkkel var treg"},
		Component: "provider:passkey", Components: []string{"provider:passkey", "store"}, Severity: "degraded", Status: "resolved",
		StartedAt: at(6, 8, 0), OpenedAt: at(6, 8, 1), RecoveredAt: ptr(at(6, 9, 30)), ResolvedAt: ptr(at(6, 9, 35)),
		DurationSeconds: 5400, PeopleAffected: 321, FailedAttempts: 400, Rerouted: 0, CountedAt: at(6, 9, 35),
		RCADueAt: ptr(at(9, 9, 35)), RCAOverdue: true,
		Timeline: []status.Update{
			{Seq: 1, Time: at(6, 8, 1), Kind: "opened", State: "degraded", Author: "oslo-1"},
			{Seq: 2, Time: at(6, 9, 30), Kind: "recovered", State: "operational", Author: "oslo-1"},
			{Seq: 3, Time: at(6, 9, 35), Kind: "resolved", Author: "oslo-1"},
		},
	}
	published := status.Incident{
		ID: "inc-0001", Title: map[string]string{"en": "BankID was down", "nb": "BankID var nede"},
		Component: "provider:bankid", Components: []string{"provider:bankid"}, Severity: "down", Status: "resolved",
		StartedAt: at(16, 22, 0), OpenedAt: at(16, 22, 1), RecoveredAt: ptr(at(17, 1, 5)), ResolvedAt: ptr(at(17, 1, 10)),
		DurationSeconds: 11100, PeopleAffected: 40, FailedAttempts: 77, Rerouted: 30, CountedAt: at(17, 1, 10),
		RCADueAt: ptr(at(20, 1, 10)), RCA: "A certificate expired at the provider.\nWe now alert 30 days before expiry.",
		RCAPublishedAt: ptr(at(18, 10, 0)), RCAOnTime: true,
		Timeline: []status.Update{
			{Seq: 1, Time: at(16, 22, 1), Kind: "opened", State: "down", Author: "oslo-1"},
			{Seq: 2, Time: at(17, 1, 5), Kind: "recovered", Author: "oslo-1"},
			{Seq: 3, Time: at(17, 1, 10), Kind: "resolved", Author: "oslo-1"},
			{Seq: 4, Time: at(18, 10, 0), Kind: "rca", Author: "Kari (operations)"},
		},
	}
	due := status.Incident{
		ID: "inc-0003", Title: map[string]string{"en": "BankID was slow"},
		Component: "provider:bankid", Components: []string{"provider:bankid"}, Severity: "degraded", Status: "resolved",
		StartedAt: at(23, 14, 0), OpenedAt: at(23, 14, 1), RecoveredAt: ptr(at(23, 14, 20)), ResolvedAt: ptr(at(23, 14, 25)),
		DurationSeconds: 1200, PeopleAffected: 3, FailedAttempts: 4, CountedAt: at(23, 14, 25),
		RCADueAt: ptr(at(26, 14, 25)),
		Timeline: []status.Update{
			{Seq: 1, Time: at(23, 14, 1), Kind: "opened", State: "degraded", Author: "oslo-1"},
			{Seq: 2, Time: at(23, 14, 25), Kind: "resolved", Author: "oslo-1"},
		},
	}
	s.Open = []status.Incident{open}
	s.Recent = []status.Incident{open, due, published, overdue}
	s.Maintenance = []status.Maintenance{
		{ID: "m-1", Components: []string{"provider:minid"}, Start: at(25, 10, 0), End: at(25, 14, 0), Title: "MinID upgrade", Message: "MinID is being upgraded.", Status: "in_progress"},
		{ID: "m-2", Components: []string{"store"}, Start: at(28, 2, 0), End: at(28, 3, 0), Title: "Database maintenance", Status: "scheduled"},
		{ID: "m-0", Components: []string{"store"}, Start: at(1, 2, 0), End: at(1, 3, 0), Title: "Old finished work", Status: "completed"},
	}
	incs := map[string]*status.Incident{}
	for _, inc := range []status.Incident{open, overdue, published, due} {
		incs[inc.ID] = &inc
	}
	rep := &status.Report{DataFrom: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC),
		Version: 1, GeneratedAt: now,
		Components: []status.ComponentReport{
			{Component: "node:oslo-1", AvailabilityPercent: ptr(100.0)},
			{Component: "provider:passkey", AvailabilityPercent: ptr(99.93), Incidents: 1, DowntimeMinutes: 0, DegradedMinutes: 90, MTTRMinutes: ptr(90.0), PeopleAffected: 321, FailedAttempts: 400, RCAsDue: 1, RCAsOnTime: 0, RCAOnTimePercent: ptr(0.0)},
			{Component: "provider:bankid", AvailabilityPercent: ptr(99.62), Incidents: 3, DowntimeMinutes: 245, MTTRMinutes: ptr(102.5), PeopleAffected: 12388, FailedAttempts: 20561, RCAsDue: 1, RCAsOnTime: 1, RCAOnTimePercent: ptr(100.0)},
		},
		Total:     status.ComponentReport{Component: "total", AvailabilityPercent: ptr(99.62), Incidents: 4, DowntimeMinutes: 245, DegradedMinutes: 110, MTTRMinutes: ptr(98.0), PeopleAffected: 12709, FailedAttempts: 20961, RCAsDue: 2, RCAsOnTime: 1, RCAOnTimePercent: ptr(50.0)},
		Incidents: []status.Incident{published, overdue, due, open},
	}
	return &fakeSource{summary: s, incidents: incs, report: rep}
}

func newPages(t testing.TB) *httpx.Pages {
	t.Helper()
	p, err := httpx.NewPages(web.Templates, web.Locales, []httpx.Language{{Tag: "en", Name: "English"}, {Tag: "nb", Name: "Norsk bokmål"}, {Tag: "da", Name: "Dansk"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// server serves src's status routes on a real listener.
func server(t testing.TB, src Source) *httptest.Server {
	t.Helper()
	return serverWith(t, src, newPages(t))
}

// serverWith is server rendering with pages.
func serverWith(t testing.TB, src Source, pages *httpx.Pages) *httptest.Server {
	t.Helper()
	h := &Handler{Source: src, Pages: pages, BaseURL: "https://id.example.no", Now: func() time.Time { return now }, Log: slog.New(slog.DiscardHandler)}
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	code   int
	header http.Header
	body   string
}

func get(t testing.TB, url string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{res.StatusCode, res.Header, string(b)}
}

var errBroken = errors.New("store unreachable")

func ExampleParseQuarter() {
	oslo, _ := time.LoadLocation("Europe/Oslo")
	from, to, _ := ParseQuarter("2026-Q3", oslo)
	fmt.Println(from.Format(time.RFC3339), to.Format(time.RFC3339))
	// Output: 2026-06-30T22:00:00Z 2026-09-30T22:00:00Z
}

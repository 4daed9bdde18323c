package statuspage

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/status"
	"github.com/varde-eid/varde/internal/store"
)

func TestPageShowsStateInEveryLanguage(t *testing.T) {
	srv := server(t, fixture())
	tests := []struct {
		lang  string
		want  []string
		never []string
	}{
		{"en", []string{
			`<html lang="en">`, "Some parts are not working",
			"Login server Oslo 1", "Passkey", "BankID", "MinID", "EU eID",
			"✓</span> Working", "▲</span> Slow or partly working", "✕</span> Not working", "◷</span> Planned maintenance", "?</span> Not known yet",
			"since <time datetime=\"2026-11-25T11:02:00Z\">25 Nov 2026, 11:02 UTC</time>",
			"Root-cause analysis overdue: it was due 9 Nov 2026, 09:35 UTC and has not been published.",
			"Root-cause analysis due 26 Nov 2026, 14:25 UTC.", "Published 18 Nov 2026, 10:00 UTC, on time.",
			"A certificate expired at the provider.",
			"BankID login is not working", "We have contacted BankID.", "12,345",
			"MinID upgrade", "Database maintenance",
			"25 Nov 2026: 89.93\u00a0% of checks succeeded, at worst not working, 1 incident",
			"7 Sep 2026: no checks recorded",
			"Days with problems: 2",
		}, []string{"Old finished work", "<script"}},
		{"nb", []string{
			`<html lang="nb">`, "Noen deler virker ikke",
			"Innloggingstjener Oslo 1", "Passnøkkel", "EU eID",
			"✓</span> Virker", "✕</span> Virker ikke",
			"Årsaksanalysen er forsinket: fristen var 09.11.2026 kl. 09:35 UTC, og den er ikke publisert.",
			"Innlogging med BankID virker ikke", "12\u00a0345",
			"BankID was slow", // no Norwegian title: English
			"89,93\u00a0% av kontrollene lyktes",
		}, []string{"Old finished work", "Root-cause analysis overdue", "<script"}},
		{"da-DK,da;q=0.9", []string{
			`<html lang="da">`, "Nogle dele virker ikke",
			"Login server Oslo 1", "EU eID", // no Danish names: English
			"✓</span> Virker", "▲</span> Langsom eller virker delvist", "✕</span> Virker ikke",
			"Årsagsanalysen er forsinket: fristen var 09.11.2026 kl. 09.35 UTC, og den er ikke offentliggjort.",
			"BankID login is not working", "12.345",
			"25.11.2026: 89,93\u00a0% af kontrollerne lykkedes, som værst virkede den ikke, 1 hændelse",
			"Dage med problemer: 2",
		}, []string{"Old finished work", "Root-cause analysis overdue", "Årsaksanalysen", "<script"}},
	}
	for _, tt := range tests {
		t.Run(tt.lang, func(t *testing.T) {
			res := get(t, srv.URL+"/status", "Accept-Language", tt.lang)
			if res.code != 200 {
				t.Fatalf("status %d: %s", res.code, res.body)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, n := range tt.never {
				if strings.Contains(res.body, n) {
					t.Errorf("page has %q", n)
				}
			}
			if !strings.Contains(res.body, `class="rca rca-overdue"`) {
				t.Error("overdue RCA is not marked")
			}
		})
	}
}

func TestPageOpenIncidentsFirst(t *testing.T) {
	body := get(t, fixtureServerURL(t)+"/status?lang=en").body
	open := strings.Index(body, "Problems right now")
	comps := strings.Index(body, "Parts of the service")
	recent := strings.Index(body, "Incidents in the past 90 days")
	if !(open > 0 && open < comps && comps < recent) {
		t.Errorf("order: open %d, components %d, recent %d", open, comps, recent)
	}
	// The open incident is not repeated among recent ones.
	if n := strings.Count(body, `href="/status/incidents/inc-0004"`); n != 1 {
		t.Errorf("open incident linked %d times", n)
	}
	for _, id := range []string{"inc-0001", "inc-0002", "inc-0003"} {
		if !strings.Contains(body, `href="/status/incidents/`+id+`"`) {
			t.Errorf("no link to %s", id)
		}
	}
}

func fixtureServerURL(t *testing.T) string { return server(t, fixture()).URL }

var (
	barRE  = regexp.MustCompile(`(?s)<ol class="uptime" aria-label="([^"]*)">(.*?)</ol>`)
	cellRE = regexp.MustCompile(`<li class="day-[a-z]+"><span class="vh">\d{1,2} [A-Z][a-z]{2} \d{4}: [^<]+</span></li>`)
)

func TestUptimeBarHas90LabelledCells(t *testing.T) {
	body := get(t, fixtureServerURL(t)+"/status?lang=en").body
	bars := barRE.FindAllStringSubmatch(body, -1)
	if len(bars) != 6 {
		t.Fatalf("%d bars, want 6", len(bars))
	}
	for _, b := range bars {
		if n := len(cellRE.FindAllString(b[2], -1)); n != 90 {
			t.Errorf("bar %q: %d labelled cells, want 90", b[1], n)
		}
		if strings.Count(b[2], "<li") != 90 {
			t.Errorf("bar %q: %d cells", b[1], strings.Count(b[2], "<li"))
		}
		if strings.Contains(b[2], "tabindex") || strings.Contains(b[2], "<a ") {
			t.Errorf("bar %q has focusable cells", b[1])
		}
	}
	if !strings.Contains(body, `aria-label="BankID, the past 90 days"`) {
		t.Error("bar has no accessible name")
	}
}

func TestPageHasNoServerNeedsBeyondCSS(t *testing.T) {
	body := get(t, fixtureServerURL(t)+"/status?lang=en").body
	for _, w := range []string{`href="/static/varde.css"`, `href="/static/status.css"`, `type="application/atom+xml" href="/status/feed.atom"`} {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %s", w)
		}
	}
	if strings.Contains(body, "<script") || strings.Contains(body, " style=") {
		t.Error("page has script or inline style (blocked by the CSP)")
	}
}

func TestIncidentPage(t *testing.T) {
	srv := server(t, fixture())
	tests := []struct {
		path string
		code int
		want []string
	}{
		{"/status/incidents/inc-0002?lang=en", 200, []string{"<h1>Passkey logins were slow</h1>", "Passkey, Database", "1 h 30 min", "Root-cause analysis overdue", "Incident opened", "Working again"}},
		{"/status/incidents/inc-0002?lang=nb", 200, []string{"<h1>Innlogging med passnøkkel var treg</h1>", "1 t 30 min", "Årsaksanalysen er forsinket"}},
		{"/status/incidents/inc-0004?lang=en", 200, []string{"1 h so far", "12,345", "9,000", "Note from the operators"}},
		{"/status/incidents/inc-0001?lang=en", 200, []string{"3 h 5 min", "We now alert 30 days before expiry.", "Root-cause analysis published"}},
		// An incident that is over says so first, and how bad it was
		// as its worst, not "Not working" as if it still were.
		{"/status/incidents/inc-0001?lang=en", 200, []string{`<p>Resolved · At worst: <span class="state st-down">`}},
		{"/status/incidents/inc-0001?lang=nb", 200, []string{`<p>Løst · Som verst: <span class="state st-down">`}},
		{"/status/incidents/inc-0001?lang=da", 200, []string{`<p>Løst · Da det var værst: <span class="state st-down">`}},
		{"/status/incidents/inc-0004?lang=en", 200, []string{`<p><span class="state st-down"><span class="icon" aria-hidden="true">✕</span> Not working</span> · Ongoing</p>`}},
		// Incidents are never deleted: an unknown ID is not an old one.
		{"/status/incidents/nope?lang=en", 404, []string{"We could not find that incident", "We keep every incident, however old."}},
		{"/status/incidents/nope?lang=nb", 404, []string{"Vi fant ikke den hendelsen", "Vi tar vare på alle hendelser"}},
		{"/status/incidents/nope?lang=da", 404, []string{"Vi gemmer alle hændelser"}},
		{"/status/incidents/..%2Fetc?lang=en", 404, []string{"We could not find that incident"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res := get(t, srv.URL+tt.path)
			if res.code != tt.code {
				t.Fatalf("status %d, want %d", res.code, tt.code)
			}
			if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("content type %q", ct)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
		})
	}
}

func TestSourceFailureIsPlainPage(t *testing.T) {
	src := fixture()
	src.fail = errBroken
	srv := server(t, src)
	res := get(t, srv.URL+"/status?lang=en")
	if res.code != 500 || !strings.Contains(res.body, "This does not mean that logging in is not working.") {
		t.Errorf("page: %d %s", res.code, res.body)
	}
	if strings.Contains(res.body, errBroken.Error()) {
		t.Error("internal error shown to people")
	}
	// The feed's reader is a person too, following the feed's address.
	res = get(t, srv.URL+"/status/feed.atom?lang=en")
	if res.code != 500 || !strings.HasPrefix(res.header.Get("Content-Type"), "text/html") || !strings.Contains(res.body, "This does not mean that logging in is not working.") {
		t.Errorf("feed: %d %s", res.code, res.body)
	}
	if strings.Contains(res.body, errBroken.Error()) {
		t.Error("internal error shown to people")
	}
	res = get(t, srv.URL+"/status/api/v1/summary")
	var e map[string]string
	if res.code != 500 || json.Unmarshal([]byte(res.body), &e) != nil || e["error"] != "server_error" {
		t.Errorf("api: %d %s", res.code, res.body)
	}
}

// TestBusyReportIs503: while the node computes as many reports as it may
// at once, a report it would have to start is refused with 503 and
// Retry-After, in plain language on the page and as JSON in the API.
func TestBusyReportIs503(t *testing.T) {
	src := fixture()
	src.reportFail = fmt.Errorf("report: %w", status.ErrBusy)
	srv := server(t, src)

	res := get(t, srv.URL+"/status/reports?quarter=2026-Q3&lang=en")
	if res.code != 503 || res.header.Get("Retry-After") != "10" || !strings.Contains(res.body, "We are busy making other reports") || !strings.Contains(res.body, "Try again in a few seconds.") {
		t.Errorf("page: %d, Retry-After %q: %s", res.code, res.header.Get("Retry-After"), res.body)
	}
	if strings.Contains(res.body, status.ErrBusy.Error()) {
		t.Error("internal error shown to people")
	}

	res = get(t, srv.URL+"/status/api/v1/reports?quarter=2026-Q3")
	checkAPIHeaders(t, res, 503)
	if e := decode[map[string]string](t, res); e["error"] != "temporarily_unavailable" || e["error_description"] == "" || res.header.Get("Retry-After") != "10" || res.header.Get("Cache-Control") != "no-store" {
		t.Errorf("api: Retry-After %q, Cache-Control %q: %s", res.header.Get("Retry-After"), res.header.Get("Cache-Control"), res.body)
	}
}

// TestBusyIncidentIs503: while the node looks up as many incidents as it
// may at once, an incident it would have to look up is refused with 503
// and Retry-After, in plain language on the page and as JSON in the
// API, not as a server error.
func TestBusyIncidentIs503(t *testing.T) {
	src := fixture()
	src.incidentFail = fmt.Errorf("incident: %w", status.ErrBusy)
	srv := server(t, src)

	res := get(t, srv.URL+"/status/incidents/made-up?lang=en")
	if res.code != 503 || res.header.Get("Retry-After") != "10" || !strings.Contains(res.body, "We are busy looking up other incidents") || !strings.Contains(res.body, "Try again in a few seconds.") {
		t.Errorf("page: %d, Retry-After %q: %s", res.code, res.header.Get("Retry-After"), res.body)
	}
	if strings.Contains(res.body, status.ErrBusy.Error()) {
		t.Error("internal error shown to people")
	}

	res = get(t, srv.URL+"/status/api/v1/incidents/made-up")
	checkAPIHeaders(t, res, 503)
	if e := decode[map[string]string](t, res); e["error"] != "temporarily_unavailable" || e["error_description"] == "" || res.header.Get("Retry-After") != "10" || res.header.Get("Cache-Control") != "no-store" {
		t.Errorf("api: Retry-After %q, Cache-Control %q: %s", res.header.Get("Retry-After"), res.header.Get("Cache-Control"), res.body)
	}
}

func decode[T any](t *testing.T, res response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(res.body), &v); err != nil {
		t.Fatalf("%v: %s", err, res.body)
	}
	return v
}

func checkAPIHeaders(t *testing.T, res response, code int) {
	t.Helper()
	if res.code != code {
		t.Fatalf("status %d, want %d: %s", res.code, code, res.body)
	}
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	if o := res.header.Get("Access-Control-Allow-Origin"); o != "*" {
		t.Errorf("CORS %q", o)
	}
	if code == 200 && res.header.Get("Cache-Control") != "public, max-age=10" {
		t.Errorf("cache %q", res.header.Get("Cache-Control"))
	}
}

func TestJSONRoundTrips(t *testing.T) {
	src := fixture()
	srv := server(t, src)
	s := src.summary

	res := get(t, srv.URL+"/status/api/v1/summary")
	checkAPIHeaders(t, res, 200)
	if got := decode[status.Summary](t, res); !reflect.DeepEqual(&got, s) {
		t.Errorf("summary differs:\n got %+v\nwant %+v", got, *s)
	}

	res = get(t, srv.URL+"/status/api/v1/components")
	checkAPIHeaders(t, res, 200)
	want := status.Summary{Version: s.Version, GeneratedAt: s.GeneratedAt, Node: s.Node, Overall: s.Overall, Components: s.Components}
	if got := decode[status.Summary](t, res); !reflect.DeepEqual(got, want) {
		t.Errorf("components differ:\n got %+v\nwant %+v", got, want)
	}

	res = get(t, srv.URL+"/status/api/v1/incidents")
	checkAPIHeaders(t, res, 200)
	want = status.Summary{Version: s.Version, GeneratedAt: s.GeneratedAt, Open: s.Open, Recent: s.Recent}
	if got := decode[status.Summary](t, res); !reflect.DeepEqual(got, want) {
		t.Errorf("incidents differ:\n got %+v\nwant %+v", got, want)
	}

	for id, inc := range src.incidents {
		res = get(t, srv.URL+"/status/api/v1/incidents/"+id)
		checkAPIHeaders(t, res, 200)
		if got := decode[status.Incident](t, res); !reflect.DeepEqual(&got, inc) {
			t.Errorf("incident %s differs:\n got %+v\nwant %+v", id, got, *inc)
		}
	}

	res = get(t, srv.URL+"/status/api/v1/reports?quarter=2026-Q3")
	checkAPIHeaders(t, res, 200)
	rep := decode[status.Report](t, res)
	if rep.Title != "2026-Q3" || !rep.From.Equal(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)) || !rep.To.Equal(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("report period %s %v %v", rep.Title, rep.From, rep.To)
	}
	if !reflect.DeepEqual(rep.Components, src.report.Components) || !reflect.DeepEqual(rep.Total, src.report.Total) {
		t.Error("report figures differ")
	}
}

func TestAPIErrors(t *testing.T) {
	srv := server(t, fixture())
	tests := []struct {
		path, code string
		status     int
	}{
		{"/status/api/v1/incidents/nope", "not_found", 404},
		{"/status/api/v1/incidents/.hidden", "not_found", 404},
		{"/status/api/v2/summary", "not_found", 404},
		{"/status/api/v1/reports?quarter=2026-Q5", "invalid_request", 400},
		{"/status/api/v1/reports?from=2026-07-01", "invalid_request", 400},
		{"/status/api/v1/reports?from=2026-08-01&to=2026-07-01", "invalid_request", 400},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res := get(t, srv.URL+tt.path)
			checkAPIHeaders(t, res, tt.status)
			e := decode[map[string]string](t, res)
			if e["error"] != tt.code || e["error_description"] == "" {
				t.Errorf("body %s", res.body)
			}
		})
	}
}

func TestReportPage(t *testing.T) {
	src := fixture()
	srv := server(t, src)

	res := get(t, srv.URL+"/status/reports?lang=en")
	if res.code != 200 {
		t.Fatalf("status %d", res.code)
	}
	// Default: the current quarter to date. The whole quarter is asked
	// for, so that every request for it names the same report.
	if src.asked.title != "2026-Q4" || !src.asked.from.Equal(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)) || !src.asked.to.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("asked for %s %v %v", src.asked.title, src.asked.from, src.asked.to)
	}
	for _, w := range []string{
		"<h1>Resilience report 2026-Q4</h1>", "From 2026-10-01 up to and including 2026-11-25.",
		`role="img" aria-label="Availability by part. The bars start at 99`,
		"Passkey 99.93\u00a0%; BankID 99.62\u00a0%",
		`<text x="388" y="42" class="chart-value">100`,
		"<th scope=\"row\">BankID</th><td>99.62\u00a0%</td><td>3</td><td>245</td><td>102.5 min</td><td>12,388</td><td>1 of 1 (100\u00a0%)</td>",
		"<th scope=\"row\">All parts</th><td>99.62\u00a0%</td><td>4</td>",
		`<td>none</td>`, `none due`,
		`href="/status/reports?quarter=2026-Q4" aria-current="page"`,
		// The total's people affected is person-incidents.
		"People affected is added up over the incidents: someone hit by two incidents is counted twice.",
	} {
		if !strings.Contains(res.body, w) {
			t.Errorf("report lacks %q", w)
		}
	}

	res = get(t, srv.URL+"/status/reports?lang=nb&from=2026-07-01&to=2026-08-01")
	if res.code != 200 || !strings.Contains(res.body, "Robusthetsrapport 2026-07-01 – 2026-07-31") || !strings.Contains(res.body, "99,62\u00a0%") || !strings.Contains(res.body, "den som ble rammet av to hendelser, telles to ganger") {
		t.Errorf("nb report: %d", res.code)
	}
	res = get(t, srv.URL+"/status/reports?lang=da&from=2026-07-01&to=2026-08-01")
	for _, w := range []string{"<h1>Robusthedsrapport 2026-07-01 – 2026-07-31</h1>", "<td>99,62\u00a0%</td>", "<td>102,5 min.</td><td>12.388</td>", "Passkey 99,93\u00a0%; BankID 99,62\u00a0%", "den, der blev ramt af to hændelser, tælles to gange"} {
		if res.code != 200 || !strings.Contains(res.body, w) {
			t.Errorf("da report: %d, lacks %q", res.code, w)
		}
	}
	if !src.asked.to.Equal(time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("to %v", src.asked.to)
	}
}

func TestBadReportPeriod(t *testing.T) {
	srv := server(t, fixture())
	for _, q := range []string{
		"quarter=2026-Q0", "quarter=26-Q1", "quarter=2026Q1", "quarter=2027-Q1",
		"from=2026-13-01&to=2026-14-01", "from=2026-07-01", "to=2026-07-01", "from=yesterday&to=today",
		"from=2026-08-01&to=2026-08-01", "from=2020-01-01&to=2026-01-01", "quarter=2026-Q1&from=2026-01-01&to=2026-02-01",
		"quarter=2026-Q1&quarter=2026-Q2",
	} {
		t.Run(q, func(t *testing.T) {
			for _, lang := range []string{"en", "nb"} {
				res := get(t, srv.URL+"/status/reports?lang="+lang+"&"+q)
				if res.code != 400 {
					t.Fatalf("%s: status %d", lang, res.code)
				}
				want := map[string]string{"en": "We could not read that period", "nb": "Vi kunne ikke lese den perioden"}[lang]
				if !strings.Contains(res.body, want) {
					t.Errorf("%s: no plain explanation", lang)
				}
			}
		})
	}
}

// TestRefusedPeriodComesBackToTheForm: a period the report form sent and
// ParsePeriod refused is answered with the report page and its form, the
// dates as typed, the field at fault marked invalid and described by the
// message (both when each is a date but the period is not right), the
// title starting "Error:".
func TestRefusedPeriodComesBackToTheForm(t *testing.T) {
	srv := server(t, fixture())
	for _, tc := range []struct {
		q              string
		badFrom, badTo bool
		fromVal, toVal string
	}{
		{"from=2026-07-01&to=", false, true, "2026-07-01", ""},
		{"from=1.7.2026&to=2026-08-01", true, false, "1.7.2026", "2026-08-01"},
		{"from=2026-08-01&to=2026-07-01", true, true, "2026-08-01", "2026-07-01"},
	} {
		t.Run(tc.q, func(t *testing.T) {
			res := get(t, srv.URL+"/status/reports?lang=en&"+tc.q)
			if res.code != http.StatusBadRequest {
				t.Fatalf("status %d", res.code)
			}
			for _, want := range []string{
				"<title>Error: ", `<form class="period"`, `id="period-error" role="alert" tabindex="-1" autofocus`,
				`id="from" name="from" value="` + tc.fromVal + `"`, `id="to" name="to" value="` + tc.toVal + `"`,
			} {
				if !strings.Contains(res.body, want) {
					t.Errorf("no %s in the page", want)
				}
			}
			from := strings.Contains(res.body, `value="`+tc.fromVal+`" aria-invalid="true" aria-describedby="period-error"`)
			to := strings.Contains(res.body, `aria-describedby="to-hint period-error" aria-invalid="true"`)
			if from != tc.badFrom || to != tc.badTo {
				t.Errorf("from marked invalid %v, to %v; want %v, %v", from, to, tc.badFrom, tc.badTo)
			}
		})
	}
}

func TestParseQuarter(t *testing.T) {
	d := func(y int, m time.Month) time.Time { return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		in       string
		from, to time.Time
		ok       bool
	}{
		{"2026-Q1", d(2026, 1), d(2026, 4), true},
		{"2026-Q2", d(2026, 4), d(2026, 7), true},
		{"2026-Q3", d(2026, 7), d(2026, 10), true},
		{"2026-Q4", d(2026, 10), d(2027, 1), true},
		{"2026-Q5", time.Time{}, time.Time{}, false},
		{"2026-Q0", time.Time{}, time.Time{}, false},
		{"2026-q3", time.Time{}, time.Time{}, false},
		{"+026-Q3", time.Time{}, time.Time{}, false},
		{"1999-Q3", time.Time{}, time.Time{}, false},
		{"2026-Q33", time.Time{}, time.Time{}, false},
		{"", time.Time{}, time.Time{}, false},
	}
	for _, tt := range tests {
		from, to, err := ParseQuarter(tt.in, time.UTC)
		if (err == nil) != tt.ok || !from.Equal(tt.from) || !to.Equal(tt.to) {
			t.Errorf("ParseQuarter(%q) = %v, %v, %v", tt.in, from, to, err)
		}
	}
}

func TestParsePeriod(t *testing.T) {
	tests := []struct {
		query, title string
		from, to     time.Time
	}{
		{"", "2026-Q4", time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"quarter=2026-Q2", "2026-Q2", time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)},
		{"from=2026-11-01&to=2027-01-01", "2026-11-01 – 2026-12-31", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"from=2025-01-01&to=2026-01-01", "2025-01-01 – 2025-12-31", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"from=2026-07-01&to=2026-07-02", "2026-07-01", time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 7, 2, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		p, err := ParsePeriod(q, now, time.UTC)
		if err != nil || p.Title != tt.title || !p.From.Equal(tt.from) || !p.To.Equal(tt.to) {
			t.Errorf("ParsePeriod(%q) = %+v, %v", tt.query, p, err)
		}
	}
}

// TestParsePeriodDefaultAtQuarterBoundary: with no query, the period is
// the quarter to date; at a quarter's first instant, when that would be
// empty, it is the quarter just ended, not an error.
func TestParsePeriodDefaultAtQuarterBoundary(t *testing.T) {
	tests := []struct {
		now   time.Time
		title string
	}{
		{time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), "2026-Q3"},
		{time.Date(2026, 10, 1, 0, 0, 0, 1000, time.UTC), "2026-Q4"},
		{time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "2026-Q4"},
		{time.Date(2026, 9, 30, 23, 59, 59, 999999999, time.UTC), "2026-Q3"},
	}
	for _, tt := range tests {
		p, err := ParsePeriod(url.Values{}, tt.now, time.UTC)
		if err != nil || p.Title != tt.title {
			t.Errorf("ParsePeriod of nothing at %s = %+v, %v; want %s", tt.now.Format(time.RFC3339Nano), p, err, tt.title)
		}
	}
}

// TestParsePeriodSaysWhatIsWrong: a period refused says why in words a
// person can act on.
func TestParsePeriodSaysWhatIsWrong(t *testing.T) {
	tests := []struct{ query, want string }{
		{"from=2024-01-01&to=2026-07-01", "the period is 912 days long, at most 732"},
		{"from=2026-12-01&to=2027-01-01", "the period has not started"},
		{"from=2026-07-01&to=2026-07-01", "from must be before to"},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		if _, err := ParsePeriod(q, now, time.UTC); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParsePeriod(%q) = %v, want %q", tt.query, err, tt.want)
		}
	}
}

// FuzzParseQuarter: no input panics, and an accepted quarter is three
// months starting on a quarter's first day and names itself.
func FuzzParseQuarter(f *testing.F) {
	for _, s := range []string{"2026-Q3", "2026-Q5", "0000-Q1", "9999-Q4", "2026-Q", "", "2026-Q\x00"} {
		f.Add(s)
	}
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, loc := range []*time.Location{time.UTC, oslo} {
			from, to, err := ParseQuarter(s, loc)
			if err != nil {
				return
			}
			lf, lt := from.In(loc), to.In(loc)
			if !lt.Equal(time.Date(lf.Year(), lf.Month()+3, 1, 0, 0, 0, 0, loc)) || lf.Day() != 1 || lf.Hour() != 0 || (lf.Month()-1)%3 != 0 || from.Location() != time.UTC {
				t.Fatalf("%q in %s → %v..%v", s, loc, from, to)
			}
			if QuarterOf(from, loc) != s {
				t.Fatalf("%q names itself %q in %s", s, QuarterOf(from, loc), loc)
			}
		}
	})
}

// FuzzParsePeriod: any query string either fails or gives a non-empty
// period, no longer than MaxPeriod, that starts before now.
func FuzzParsePeriod(f *testing.F) {
	for _, s := range []string{"", "quarter=2026-Q3", "from=2026-07-01&to=2026-08-01", "from=2026-02-30&to=2026-03-01", "quarter=2026-Q1&from=x", "from=0000-01-01&to=9999-12-31"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := url.ParseQuery(s)
		if err != nil {
			return
		}
		p, err := ParsePeriod(q, now, time.UTC)
		if err != nil {
			return
		}
		if !p.From.Before(p.To) || !p.From.Before(now) || p.To.Sub(p.From) > MaxPeriod || p.Title == "" {
			t.Fatalf("%q → %+v", s, p)
		}
	})
}

type feedDoc struct {
	XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string   `xml:"http://www.w3.org/2005/Atom id"`
	Title   string   `xml:"http://www.w3.org/2005/Atom title"`
	Updated string   `xml:"http://www.w3.org/2005/Atom updated"`
	Author  []struct {
		Name string `xml:"http://www.w3.org/2005/Atom name"`
	} `xml:"http://www.w3.org/2005/Atom author"`
	Links   []feedLink  `xml:"http://www.w3.org/2005/Atom link"`
	Entries []feedEntry `xml:"http://www.w3.org/2005/Atom entry"`
}

type feedEntry struct {
	ID      string `xml:"http://www.w3.org/2005/Atom id"`
	Title   string `xml:"http://www.w3.org/2005/Atom title"`
	Updated string `xml:"http://www.w3.org/2005/Atom updated"`
	Author  []struct {
		Name string `xml:"http://www.w3.org/2005/Atom name"`
	} `xml:"http://www.w3.org/2005/Atom author"`
	Links   []feedLink `xml:"http://www.w3.org/2005/Atom link"`
	Content struct {
		Type string `xml:"type,attr"`
		Text string `xml:",chardata"`
	} `xml:"http://www.w3.org/2005/Atom content"`
	Published string `xml:"http://www.w3.org/2005/Atom published"`
}

type feedLink struct {
	Rel  string `xml:"rel,attr"`
	Href string `xml:"href,attr"`
}

func parseFeed(t *testing.T, body string) feedDoc {
	t.Helper()
	var f feedDoc
	if err := xml.Unmarshal([]byte(body), &f); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	// RFC 4287 section 4.1.1: a feed has exactly one id, title and
	// updated, and an author unless every entry has one.
	if f.ID == "" || f.Title == "" || len(f.Author) != 1 || f.Author[0].Name == "" {
		t.Errorf("feed lacks id, title or author: %+v", f)
	}
	if _, err := time.Parse(time.RFC3339, f.Updated); err != nil {
		t.Errorf("feed updated: %v", err)
	}
	for _, e := range f.Entries {
		// Section 4.1.2: each entry has id, title, updated; ids are
		// absolute IRIs (section 4.2.6).
		if u, err := url.Parse(e.ID); err != nil || !u.IsAbs() || e.Title == "" || len(e.Author) != 1 {
			t.Errorf("entry %q lacks id, title or author", e.ID)
		}
		if _, err := time.Parse(time.RFC3339, e.Updated); err != nil {
			t.Errorf("entry updated: %v", err)
		}
	}
	return f
}

// TestFeed: each entry's updated is when it last changed (RFC 4287
// section 4.2.15): a count of people affected after the last timeline
// entry (inc-0004) or an RCA become overdue (inc-0002) changes it.
func TestFeed(t *testing.T) {
	src := fixture()
	srv := server(t, src)
	res := get(t, srv.URL+"/status/feed.atom?lang=en")
	if res.code != 200 || res.header.Get("Content-Type") != "application/atom+xml; charset=utf-8" {
		t.Fatalf("%d %q", res.code, res.header.Get("Content-Type"))
	}
	f := parseFeed(t, res.body)
	if f.Updated != "2026-11-25T12:00:00Z" {
		t.Errorf("feed updated %s", f.Updated)
	}
	want := map[string]struct{ id, updated, link, text string }{
		"BankID login is not working": {"tag:id.example.no,2026-11-25:status/incidents/inc-0004", "2026-11-25T12:00:00Z", "https://id.example.no/status/incidents/inc-0004?lang=en", "People affected: 12,345"},
		"BankID was slow":             {"tag:id.example.no,2026-11-23:status/incidents/inc-0003", "2026-11-23T14:25:00Z", "https://id.example.no/status/incidents/inc-0003?lang=en", "Root-cause analysis due 26 Nov 2026, 14:25 UTC."},
		"BankID was down":             {"tag:id.example.no,2026-11-16:status/incidents/inc-0001", "2026-11-18T10:00:00Z", "https://id.example.no/status/incidents/inc-0001?lang=en", "We now alert 30 days"},
		"Passkey logins were slow":    {"tag:id.example.no,2026-11-06:status/incidents/inc-0002", "2026-11-09T09:35:00Z", "https://id.example.no/status/incidents/inc-0002?lang=en", "Root-cause analysis overdue"},
	}
	f.Entries = slices.DeleteFunc(f.Entries, func(e feedEntry) bool { return strings.Contains(e.ID, ":status/maintenance/") })
	if len(f.Entries) != len(want) {
		t.Fatalf("%d incident entries, want %d", len(f.Entries), len(want))
	}
	for _, e := range f.Entries {
		w, ok := want[e.Title]
		if !ok {
			t.Errorf("unexpected entry %q", e.Title)
			continue
		}
		if e.ID != w.id || e.Updated != w.updated || len(e.Links) != 1 || e.Links[0].Href != w.link || e.Links[0].Rel != "alternate" {
			t.Errorf("entry %q: id %s updated %s links %+v", e.Title, e.ID, e.Updated, e.Links)
		}
		if e.Content.Type != "text" || !strings.Contains(e.Content.Text, w.text) || !strings.Contains(e.Content.Text, "Duration: ") {
			t.Errorf("entry %q content %q", e.Title, e.Content.Text)
		}
	}
	nb := parseFeed(t, get(t, srv.URL+"/status/feed.atom?lang=nb").body)
	if nb.ID != f.ID || nb.Entries[0].ID != f.Entries[0].ID || nb.Entries[0].Title != "Innlogging med BankID virker ikke" {
		t.Errorf("nb feed: %+v", nb.Entries[0])
	}
}

// TestEmptyFeedUpdated: a feed without entries gives the start of the
// data as its updated, so it stays the same from one summary to the
// next while nothing changes (RFC 4287 section 4.1.1).
func TestEmptyFeedUpdated(t *testing.T) {
	var got []string
	for _, gen := range []time.Time{now, now.Add(10 * time.Second)} {
		src := &fakeSource{summary: &status.Summary{Version: 1, GeneratedAt: gen, DataFrom: at(1, 8, 0), Node: "oslo-1", Overall: status.Operational}}
		f := parseFeed(t, get(t, server(t, src).URL+"/status/feed.atom?lang=en").body)
		if len(f.Entries) != 0 {
			t.Fatalf("%d entries, want none", len(f.Entries))
		}
		got = append(got, f.Updated)
	}
	if want := atomTime(at(1, 8, 0)); got[0] != want || got[1] != want {
		t.Errorf("empty feed updated %v, want %s each time", got, want)
	}
}

func TestEntryIDWithoutBaseURL(t *testing.T) {
	inc := fixture().incidents["inc-0001"]
	a, b := entryID("", inc), entryID("", inc)
	other := entryID("", fixture().incidents["inc-0002"])
	if a != b || a == other || !regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(a) {
		t.Errorf("ids %s %s %s", a, b, other)
	}
}

// TestFeedUpdatedWhenEntryLeaves: an incident that ages out of the
// window changes the feed, so the feed's updated moves to that moment
// rather than back to the newest entry left (RFC 4287 section 4.1.1).
func TestFeedUpdatedWhenEntryLeaves(t *testing.T) {
	older := status.Incident{ID: "inc-a", Components: []string{"bankid"}, Severity: "down", Status: "resolved",
		StartedAt: at(1, 8, 0), OpenedAt: at(1, 8, 5)}
	newer := older
	newer.ID, newer.StartedAt, newer.OpenedAt = "inc-b", at(3, 8, 0), at(3, 8, 5)
	feedUpdated := func(sum *status.Summary) string {
		return parseFeed(t, get(t, server(t, &fakeSource{summary: sum}).URL+"/status/feed.atom?lang=en").body).Updated
	}
	before := feedUpdated(&status.Summary{Version: 1, GeneratedAt: now, DataFrom: at(1, 0, 0), Recent: []status.Incident{older, newer}})
	left := at(20, 9, 0) // the newer incident's resolution plus the window
	after := feedUpdated(&status.Summary{Version: 1, GeneratedAt: now, DataFrom: at(1, 0, 0), AgedOut: left, Recent: []status.Incident{older}})
	empty := feedUpdated(&status.Summary{Version: 1, GeneratedAt: now, DataFrom: at(1, 0, 0), AgedOut: left})
	if before != atomTime(at(3, 8, 5)) || after != atomTime(left) || empty != atomTime(left) {
		t.Errorf("feed updated %s with both entries, %s and %s after they left, want %s, %s, %s",
			before, after, empty, atomTime(at(3, 8, 5)), atomTime(left), atomTime(left))
	}
}

// TestPageNamesHelpDesk: people who come to the status page because they
// cannot log in find the operator's help desk there, in their language,
// and a page with none configured names none.
func TestPageNamesHelpDesk(t *testing.T) {
	pages := newPages(t)
	pages.Support = &httpx.Support{URL: "https://help.example.no/", Phone: "+47 800 12 345",
		Hours: map[string]string{"nb": "hverdager 8–16", "en": "weekdays 8–16"}}
	h := &Handler{Source: fixture(), Pages: pages, BaseURL: "https://id.example.no", Now: func() time.Time { return now }, Log: slog.New(slog.DiscardHandler)}
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tests := []struct {
		lang  string
		want  []string
		never []string
	}{
		{"en", []string{`id="support"`, "Need help from a person?", `href="tel:&#43;4780012345"`, `href="https://help.example.no/"`, "weekdays 8–16"}, nil},
		{"nb", []string{`id="support"`, "Trenger du hjelp fra en person?", "hverdager 8–16"}, nil},
		{"da", []string{`id="support"`, "Har du brug for hjælp fra en person?"}, []string{`id="support-hours"`}},
	}
	for _, tt := range tests {
		t.Run(tt.lang, func(t *testing.T) {
			res := get(t, srv.URL+"/status", "Accept-Language", tt.lang)
			if res.code != 200 {
				t.Fatalf("status %d: %s", res.code, res.body)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, n := range tt.never {
				if strings.Contains(res.body, n) {
					t.Errorf("page has %q", n)
				}
			}
		})
	}
	if res := get(t, server(t, fixture()).URL+"/status"); strings.Contains(res.body, `id="support"`) {
		t.Error("a page with no help desk configured names one")
	}
}

// TestPageListsCompletedMaintenance: maintenance completed in the last
// 90 days stays on the page, in every language, with its start, the end
// it had, its components and, for a window ended early, the end it was
// announced with; the JSON API gives the same.
func TestPageListsCompletedMaintenance(t *testing.T) {
	src := fixture()
	src.summary.RecentMaintenance = []status.Maintenance{
		{ID: "m-9", Components: []string{"store"}, Start: at(20, 22, 0), End: at(20, 22, 40), AnnouncedEnd: at(21, 0, 0), Title: "Certificate rollover", Status: "completed"},
		{ID: "m-8", Components: []string{"provider:bankid"}, Start: at(3, 1, 0), End: at(3, 2, 0), Title: "BankID upgrade", Status: "completed"},
	}
	srv := server(t, src)
	tests := []struct {
		lang string
		want []string
	}{
		{"en", []string{"Maintenance completed in the last 90 days", "Certificate rollover",
			`<time datetime="2026-11-20T22:00:00Z">20 Nov 2026, 22:00 UTC</time> – <time datetime="2026-11-20T22:40:00Z">20 Nov 2026, 22:40 UTC</time>`,
			"Ended early; it was announced to last until <time datetime=\"2026-11-21T00:00:00Z\">", "BankID upgrade", "Affected: BankID"}},
		{"nb", []string{"Vedlikehold fullført de siste 90 dagene", "Avsluttet før tiden; det var varslet at det skulle vare til"}},
		{"da", []string{"Vedligeholdelse afsluttet de seneste 90 dage", "Afsluttet før tid; den var varslet til at vare til"}},
	}
	for _, tt := range tests {
		t.Run(tt.lang, func(t *testing.T) {
			res := get(t, srv.URL+"/status?lang="+tt.lang)
			for _, w := range tt.want {
				if !strings.Contains(res.body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			if strings.Contains(res.body, "Old finished work") {
				t.Error("a completed window given as current maintenance is on the page")
			}
		})
	}
	var got status.Summary
	if err := json.Unmarshal([]byte(get(t, srv.URL+"/status/api/v1/summary").body), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.RecentMaintenance, src.summary.RecentMaintenance) {
		t.Errorf("API recent_maintenance = %+v", got.RecentMaintenance)
	}
}

// TestCacheKeepsWhatIsLeft: an answer computed some seconds ago may be
// kept by a cache only for what is left of the 10 s the node shares it,
// so that behind a shared cache it is never older than that either.
func TestCacheKeepsWhatIsLeft(t *testing.T) {
	src := fixture()
	src.summary.GeneratedAt = now.Add(-4 * time.Second)
	src.report.GeneratedAt = now.Add(-7*time.Second - 300*time.Millisecond)
	for _, inc := range src.incidents {
		inc.ReadAt = now.Add(-9 * time.Second)
	}
	var id string
	for id = range src.incidents {
		break
	}
	srv := server(t, src)
	for _, c := range []struct{ path, want string }{
		{"/status/api/v1/summary", "public, max-age=6"},
		{"/status/api/v1/components", "public, max-age=6"},
		{"/status/api/v1/incidents", "public, max-age=6"},
		{"/status/feed.atom", "public, max-age=6"},
		{"/status/api/v1/reports?quarter=2026-Q3", "public, max-age=2"},
		{"/status/api/v1/incidents/" + id, "public, max-age=1"},
	} {
		res := get(t, srv.URL+c.path)
		if res.code != 200 || res.header.Get("Cache-Control") != c.want {
			t.Errorf("%s: %d, Cache-Control %q, want %q", c.path, res.code, res.header.Get("Cache-Control"), c.want)
		}
	}

	src.summary.GeneratedAt = now.Add(-time.Minute)
	if res := get(t, srv.URL+"/status/api/v1/summary"); res.header.Get("Cache-Control") != "public, max-age=0" {
		t.Errorf("summary a minute old: Cache-Control %q", res.header.Get("Cache-Control"))
	}
}

// TestFeedHasMaintenance: the feed tells its readers of maintenance as
// well as incidents: a window announced, in progress, ended early or
// cancelled is an entry, with a permanent id, updated at its last
// change that has happened (RFC 4287 section 4.2.15), in every language;
// a cancelled one's title says it is cancelled.
func TestFeedHasMaintenance(t *testing.T) {
	sum := &status.Summary{Version: 1, GeneratedAt: now, DataFrom: at(1, 0, 0), Node: "oslo-1", Overall: status.InMaintenance,
		Maintenance: []status.Maintenance{
			{ID: "m-soon", Components: []string{"store"}, Start: at(28, 2, 0), End: at(28, 3, 0), Title: "Database upgrade", Status: "scheduled", AnnouncedAt: at(20, 9, 0)},
			{ID: "m-now", Components: []string{"provider:minid"}, Start: at(25, 10, 0), End: at(25, 14, 0), Title: "MinID upgrade", Message: "MinID is being upgraded.", Status: "in_progress", AnnouncedAt: at(18, 9, 0)},
		},
		RecentMaintenance: []status.Maintenance{
			{ID: "m-early", Components: []string{"store"}, Start: at(22, 9, 0), End: at(22, 11, 0), AnnouncedEnd: at(22, 13, 0), Title: "Disk swap", Status: "completed", AnnouncedAt: at(15, 9, 0)},
		},
		CancelledMaintenance: []status.Maintenance{
			{ID: "m-off", Components: []string{"provider:bankid"}, Start: at(26, 22, 0), End: at(26, 23, 0), Title: "BankID certificate", Status: "cancelled", AnnouncedAt: at(19, 9, 0), CancelledAt: at(24, 8, 0)},
		},
	}
	srv := server(t, &fakeSource{summary: sum})
	f := parseFeed(t, get(t, srv.URL+"/status/feed.atom?lang=en").body)
	want := map[string]struct{ title, updated, published, text string }{
		"tag:id.example.no,2026-11-28:status/maintenance/m-soon":  {"Planned maintenance: Database upgrade", atomTime(at(20, 9, 0)), atomTime(at(20, 9, 0)), "Status: Planned\nAffected: store\nWindow: 28 Nov 2026, 02:00 UTC – 28 Nov 2026, 03:00 UTC"},
		"tag:id.example.no,2026-11-25:status/maintenance/m-now":   {"Planned maintenance: MinID upgrade", atomTime(at(25, 10, 0)), atomTime(at(18, 9, 0)), "Status: In progress now"},
		"tag:id.example.no,2026-11-22:status/maintenance/m-early": {"Planned maintenance: Disk swap", atomTime(at(22, 11, 0)), atomTime(at(15, 9, 0)), "Status: Completed"},
		"tag:id.example.no,2026-11-26:status/maintenance/m-off":   {"Cancelled maintenance: BankID certificate", atomTime(at(24, 8, 0)), atomTime(at(19, 9, 0)), "Status: Cancelled; it will not take place"},
	}
	if len(f.Entries) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(f.Entries), len(want), f.Entries)
	}
	for _, e := range f.Entries {
		w, ok := want[e.ID]
		if !ok {
			t.Errorf("unexpected entry %q", e.ID)
			continue
		}
		if e.Title != w.title || e.Updated != w.updated || e.Published != w.published || !strings.Contains(e.Content.Text, w.text) ||
			len(e.Links) != 1 || e.Links[0].Href != "https://id.example.no/status?lang=en" {
			t.Errorf("entry %s: title %q updated %s published %s links %+v content %q", e.ID, e.Title, e.Updated, e.Published, e.Links, e.Content.Text)
		}
	}
	if f.Updated != atomTime(at(25, 10, 0)) {
		t.Errorf("feed updated %s, want the window begun last", f.Updated)
	}
	nb := parseFeed(t, get(t, srv.URL+"/status/feed.atom?lang=nb").body)
	if len(nb.Entries) != 4 || nb.Entries[3].Title != "Avlyst vedlikehold: BankID certificate" || !strings.Contains(nb.Entries[3].Content.Text, "Avlyst") {
		t.Errorf("nb feed: %+v", nb.Entries)
	}
}

// TestReportPageListsMaintenance: a report's page names the windows
// behind its maintenance minutes, with when each was announced, in
// every language, and says so when there were none.
func TestReportPageListsMaintenance(t *testing.T) {
	src := fixture()
	src.report.Maintenance = []status.Maintenance{
		{ID: "m-9", Components: []string{"provider:bankid"}, Start: at(3, 2, 0), End: at(3, 3, 0), AnnouncedEnd: at(3, 4, 0), Title: "BankID certificate", Status: "completed", AnnouncedAt: at(1, 9, 30)},
	}
	srv := server(t, src)
	for lang, want := range map[string][]string{
		"en": {"<h2 id=\"rmaint-h\">Planned maintenance in this period</h2>", "<h3>BankID certificate</h3>", `<time datetime="2026-11-03T02:00:00Z">3 Nov 2026, 02:00 UTC</time>`, `Announced <time datetime="2026-11-01T09:30:00Z">1 Nov 2026, 09:30 UTC</time>.`, "Ended early; it was announced to last until", "Affected: BankID", `<span class="icon" aria-hidden="true">✓</span> Completed</span>`},
		"nb": {"Planlagt vedlikehold i perioden", "Varslet <time", "regnes ikke mot tilgjengeligheten", "✓</span> Fullført</span>"},
		"da": {"Planlagt vedligeholdelse i perioden", "Varslet <time", "tæller ikke mod tilgængeligheden", "✓</span> Afsluttet</span>"},
	} {
		res := get(t, srv.URL+"/status/reports?quarter=2026-Q4&lang="+lang)
		for _, w := range want {
			if res.code != 200 || !strings.Contains(res.body, w) {
				t.Errorf("%s report: %d, lacks %q", lang, res.code, w)
			}
		}
	}
	src.report.Maintenance = nil
	if res := get(t, srv.URL+"/status/reports?quarter=2026-Q4&lang=en"); !strings.Contains(res.body, "There was no planned maintenance in this period.") {
		t.Error("a report without maintenance does not say so")
	}
}

// TestDurationSoFarOnlyWhileOngoing: an incident not yet recovered has
// lasted its duration "so far" on its page; its feed entry, which
// readers keep until its updated moves, says only that it is not over,
// so its text does not change as the duration grows; a recovering one's
// duration ends at its recovery and is given as it is.
func TestDurationSoFarOnlyWhileOngoing(t *testing.T) {
	ongoing := status.Incident{ID: "inc-on", Title: map[string]string{"en": "BankID is down"}, Components: []string{"provider:bankid"}, Severity: "down", Status: "open",
		StartedAt: at(25, 11, 0), OpenedAt: at(25, 11, 5), DurationSeconds: 3600, Timeline: []status.Update{}}
	recovering := status.Incident{ID: "inc-rec", Title: map[string]string{"en": "MinID was down"}, Components: []string{"provider:minid"}, Severity: "down", Status: "recovering",
		StartedAt: at(25, 9, 0), OpenedAt: at(25, 9, 5), RecoveredAt: ptr(at(25, 9, 30)), DurationSeconds: 1800, Timeline: []status.Update{}}
	src := &fakeSource{
		summary:   &status.Summary{Version: 1, GeneratedAt: now, DataFrom: at(1, 0, 0), Node: "oslo-1", Overall: status.Down, Open: []status.Incident{ongoing, recovering}},
		incidents: map[string]*status.Incident{"inc-on": &ongoing, "inc-rec": &recovering},
	}
	srv := server(t, src)
	if body := get(t, srv.URL+"/status/incidents/inc-on?lang=en").body; !strings.Contains(body, "<dd>1 h so far</dd>") {
		t.Error("ongoing incident's page does not say its duration is so far")
	}
	if body := get(t, srv.URL+"/status/incidents/inc-rec?lang=en").body; !strings.Contains(body, "<dd>30 min</dd>") {
		t.Error("recovering incident's page does not give its duration as it is")
	}
	f := parseFeed(t, get(t, srv.URL+"/status/feed.atom?lang=en").body)
	texts := map[string]string{}
	for _, e := range f.Entries {
		texts[e.Title] = e.Content.Text
	}
	if !strings.Contains(texts["BankID is down"], "Duration: not over yet; the page gives how long so far\n") || !strings.Contains(texts["MinID was down"], "Duration: 30 min\n") {
		t.Errorf("feed durations: %q", texts)
	}

	// An hour later, with nothing new recorded, the ongoing incident's
	// entry is the same, text and updated alike.
	later := ongoing
	later.DurationSeconds = 7200
	src.summary.Open = []status.Incident{later, recovering}
	g := parseFeed(t, get(t, srv.URL+"/status/feed.atom?lang=en").body)
	for i := range f.Entries {
		if f.Entries[i].Title == "BankID is down" && (g.Entries[i].Content.Text != f.Entries[i].Content.Text || g.Entries[i].Updated != f.Entries[i].Updated) {
			t.Errorf("the ongoing incident's entry changed without a new updated:\n%q %s\n%q %s", f.Entries[i].Content.Text, f.Entries[i].Updated, g.Entries[i].Content.Text, g.Entries[i].Updated)
		}
	}
}

// TestLangLinksKeepOnlyPageParams: a status page's language links keep
// the parameters that choose the page (a report's period) and drop any
// other that came with the request, as httpx's language links do.
func TestLangLinksKeepOnlyPageParams(t *testing.T) {
	srv := server(t, fixture())
	tests := []struct {
		path, want string
	}{
		{"/status?lang=en&code=secret&utm_source=x", `href="/status?lang=nb"`},
		{"/status/incidents/inc-0002?lang=en&state=secret", `href="/status/incidents/inc-0002?lang=nb"`},
		{"/status/reports?lang=en&quarter=2026-Q3&token=secret", `href="/status/reports?lang=nb&amp;quarter=2026-Q3"`},
		{"/status/reports?lang=en&from=2026-07-01&to=2026-08-01&x=secret", `href="/status/reports?from=2026-07-01&amp;lang=nb&amp;to=2026-08-01"`},
	}
	for _, tt := range tests {
		res := get(t, srv.URL+tt.path)
		if res.code != 200 || !strings.Contains(res.body, tt.want) {
			t.Errorf("%s: %d, lacks %s", tt.path, res.code, tt.want)
		}
		for _, leak := range []string{"secret", "utm_source"} {
			if strings.Contains(res.body, leak) {
				t.Errorf("%s: page holds %q", tt.path, leak)
			}
		}
	}
}

// TestMaintenanceInProgressAndAnnounced: a window still in progress is
// shown as in progress in a report, not as done, and the home page says
// when each upcoming, ongoing or completed window was announced.
func TestMaintenanceInProgressAndAnnounced(t *testing.T) {
	src := fixture()
	ongoing := status.Maintenance{ID: "m-8", Components: []string{"provider:minid"}, Start: at(25, 10, 0), End: at(25, 14, 0), Title: "MinID upgrade", Status: "in_progress", AnnouncedAt: at(20, 8, 0)}
	upcoming := status.Maintenance{ID: "m-7", Components: []string{"store"}, Start: at(28, 2, 0), End: at(28, 3, 0), Title: "Database maintenance", Status: "scheduled", AnnouncedAt: at(24, 9, 15)}
	done := status.Maintenance{ID: "m-6", Components: []string{"store"}, Start: at(3, 2, 0), End: at(3, 3, 0), Title: "Old finished work", Status: "completed", AnnouncedAt: at(1, 7, 45)}
	src.summary.Maintenance = []status.Maintenance{ongoing, upcoming}
	src.summary.RecentMaintenance = []status.Maintenance{done}
	src.report.Maintenance = []status.Maintenance{done, ongoing}
	srv := server(t, src)

	rep := get(t, srv.URL+"/status/reports?quarter=2026-Q4&lang=en").body
	i := strings.Index(rep, "<h3>MinID upgrade</h3>")
	if i < 0 {
		t.Fatal("report lacks the window in progress")
	}
	li := rep[strings.LastIndex(rep[:i], "<li"):]
	if !strings.HasPrefix(li, `<li class="maintenance">`) || !strings.Contains(li[:strings.Index(li, "</li>")], "In progress now") {
		t.Errorf("window in progress shown as: %s", li[:strings.Index(li, "</li>")])
	}
	if j := strings.Index(rep, "<h3>Old finished work</h3>"); j < 0 || !strings.HasSuffix(rep[:j], "<li class=\"maintenance-done\">\n  ") {
		t.Error("completed window not shown as done in the report")
	}

	home := get(t, srv.URL+"/status?lang=en").body
	for _, w := range []string{
		`Announced <time datetime="2026-11-20T08:00:00Z">`,
		`Announced <time datetime="2026-11-24T09:15:00Z">`,
		`Announced <time datetime="2026-11-01T07:45:00Z">`,
	} {
		if !strings.Contains(home, w) {
			t.Errorf("home page lacks %q", w)
		}
	}
}

// TestCancelledMaintenanceShown: a window cancelled, which the feed
// tells of, is on the page in every language and in the API's summary
// too, so a reader following the feed's link finds it.
func TestCancelledMaintenanceShown(t *testing.T) {
	src := fixture()
	src.summary.CancelledMaintenance = []status.Maintenance{
		{ID: "m-5", Components: []string{"provider:bankid"}, Start: at(27, 2, 0), End: at(27, 3, 0), Title: "BankID certificate", Status: "cancelled", AnnouncedAt: at(20, 8, 0), CancelledAt: at(24, 16, 30)},
	}
	srv := server(t, src)
	for lang, want := range map[string][]string{
		"en": {"Cancelled maintenance", "<h3>BankID certificate</h3>", "Cancelled; it will not take place.", `It was planned for <time datetime="2026-11-27T02:00:00Z">`, `Cancelled <time datetime="2026-11-24T16:30:00Z">24 Nov 2026, 16:30 UTC</time>.`},
		"nb": {"Avlyst vedlikehold", "Avlyst; det blir ikke noe av.", "Det var planlagt <time", "Avlyst <time"},
		"da": {"Aflyst vedligeholdelse", "Aflyst; den bliver ikke til noget.", "Den var planlagt <time", "Aflyst <time"},
	} {
		res := get(t, srv.URL+"/status?lang="+lang)
		for _, w := range want {
			if res.code != 200 || !strings.Contains(res.body, w) {
				t.Errorf("%s page: %d, lacks %q", lang, res.code, w)
			}
		}
	}
	res := get(t, srv.URL+"/status/api/v1/summary")
	var sum struct {
		Cancelled []status.Maintenance `json:"cancelled_maintenance"`
	}
	if err := json.Unmarshal([]byte(res.body), &sum); err != nil || len(sum.Cancelled) != 1 || sum.Cancelled[0].ID != "m-5" || !sum.Cancelled[0].CancelledAt.Equal(at(24, 16, 30)) {
		t.Errorf("API summary's cancelled_maintenance: %v %+v", err, sum.Cancelled)
	}
}

// TestAPIServerErrorNamesRequestID: an API 500 gives the request's ID in
// its body, the same as its X-Request-Id header, for the caller to quote.
func TestAPIServerErrorNamesRequestID(t *testing.T) {
	src := fixture()
	src.fail = errBroken
	h := &Handler{Source: src, Pages: newPages(t), BaseURL: "https://id.example.no", Now: func() time.Time { return now }, Log: slog.New(slog.DiscardHandler)}
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(httpx.WithRequestID(mux))
	t.Cleanup(srv.Close)
	for _, path := range []string{"/status/api/v1/summary", "/status/api/v1/components", "/status/api/v1/incidents", "/status/api/v1/reports"} {
		res := get(t, srv.URL+path)
		var e map[string]string
		id := res.header.Get("X-Request-Id")
		if res.code != 500 || json.Unmarshal([]byte(res.body), &e) != nil || id == "" || e["request_id"] != id {
			t.Errorf("%s: %d X-Request-Id %q %s", path, res.code, id, res.body)
		}
	}
}

// TestStoreUnavailableIs503: a store that cannot be reached makes the
// API answer 503 temporarily_unavailable with Retry-After and the
// request ID, and the page 503 with Retry-After and the request ID, not
// a server error; a busy node's 503 names the request ID too.
func TestStoreUnavailableIs503(t *testing.T) {
	src := fixture()
	src.fail = fmt.Errorf("summary: %w", store.ErrUnavailable)
	src.incidentFail = fmt.Errorf("incident: %w", status.ErrBusy)
	h := &Handler{Source: src, Pages: newPages(t), BaseURL: "https://id.example.no", Now: func() time.Time { return now }, Log: slog.New(slog.DiscardHandler)}
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(httpx.WithRequestID(mux))
	t.Cleanup(srv.Close)
	for _, path := range []string{"/status/api/v1/summary", "/status/api/v1/components", "/status/api/v1/incidents", "/status/api/v1/reports"} {
		res := get(t, srv.URL+path)
		var e map[string]string
		id := res.header.Get("X-Request-Id")
		if res.code != 503 || json.Unmarshal([]byte(res.body), &e) != nil || e["error"] != "temporarily_unavailable" ||
			res.header.Get("Retry-After") != "30" || id == "" || e["request_id"] != id {
			t.Errorf("%s: %d Retry-After %q X-Request-Id %q %s", path, res.code, res.header.Get("Retry-After"), id, res.body)
		}
	}
	res := get(t, srv.URL+"/status/api/v1/incidents/made-up")
	var e map[string]string
	if id := res.header.Get("X-Request-Id"); res.code != 503 || json.Unmarshal([]byte(res.body), &e) != nil || id == "" || e["request_id"] != id {
		t.Errorf("busy incident: %d X-Request-Id %q %s", res.code, id, res.body)
	}
	res = get(t, srv.URL+"/status?lang=en")
	if id := res.header.Get("X-Request-Id"); res.code != 503 || res.header.Get("Retry-After") != "30" || id == "" || !strings.Contains(res.body, id) {
		t.Errorf("page: %d Retry-After %q X-Request-Id %q: %s", res.code, res.header.Get("Retry-After"), id, res.body)
	}
}

// TestCancelledMaintenanceNeverOngoing: a window cancelled or completed
// is not under way, even while now is within its planned time.
func TestCancelledMaintenanceNeverOngoing(t *testing.T) {
	v := newViewer(newPages(t), "en", now, linker{})
	for _, st := range []string{"cancelled", "completed"} {
		m := status.Maintenance{ID: "m", Components: []string{"provider:bankid"}, Start: now.Add(-time.Hour), End: now.Add(time.Hour), Title: "Window", Status: st, CancelledAt: now.Add(-2 * time.Hour)}
		if mv := v.maintenance(m); mv.Ongoing || mv.Status == "In progress now" {
			t.Errorf("%s window: Ongoing %v, status %q", st, mv.Ongoing, mv.Status)
		}
	}
}

// TestPageSaysWhyAnOldIncidentIsListed: an incident resolved before the
// 90 days stays listed while its root-cause analysis is owed, and the
// page says why, in each language; without one it says nothing more.
func TestPageSaysWhyAnOldIncidentIsListed(t *testing.T) {
	src := fixture()
	srv := server(t, src)
	want := map[string]string{
		"en": "Older incidents are listed too while their root-cause analysis is overdue.",
		"nb": "Eldre hendelser står også her så lenge årsaksanalysen deres er forsinket.",
		"da": "Ældre hændelser står også her, så længe deres årsagsanalyse er forsinket.",
	}
	for lang, w := range want {
		if body := get(t, srv.URL+"/status?lang="+lang).body; strings.Contains(body, w) {
			t.Errorf("%s: the page says %q with no old incident listed", lang, w)
		}
	}
	resolved := now.AddDate(0, 0, -200)
	src.summary.Recent = append(src.summary.Recent, status.Incident{
		ID: "inc-old", Title: map[string]string{"en": "BankID was down"}, Component: "provider:bankid", Components: []string{"provider:bankid"},
		Severity: "down", Status: "resolved", StartedAt: resolved.Add(-time.Hour), RecoveredAt: ptr(resolved.Add(-time.Minute)),
		ResolvedAt: ptr(resolved), RCADueAt: ptr(resolved.Add(status.RCADeadline)), RCAOverdue: true,
	})
	for lang, w := range want {
		if body := get(t, srv.URL+"/status?lang="+lang).body; !strings.Contains(body, w) {
			t.Errorf("%s: the page lacks %q", lang, w)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/health"
	"github.com/varde-eid/varde/internal/providersim"
	"github.com/varde-eid/varde/internal/status"
	"github.com/varde-eid/varde/internal/status/statuspage"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/webhook"
)

// browser returns the relying party with a browser of its own: a new
// cookie jar, so each person is a different browser.
func (f *fedRP) browser() *fedRP {
	jar, _ := cookiejar.New(nil)
	c := *f.http
	c.Jar = jar
	g := *f
	g.http = &c
	return &g
}

// setReceiver is a relying party's webhook endpoint: it verifies each
// Security Event Token against Varde's published JWKS (go-jose, not
// Varde's code) and keeps the component states it was told.
type setReceiver struct {
	t      *testing.T
	issuer string
	mu     sync.Mutex
	events []webhook.ComponentState
	// arrived has a value once an event arrives after the last look
	// (waitStates).
	arrived chan struct{}
}

func newSetReceiver(t *testing.T, issuer string) *setReceiver {
	return &setReceiver{t: t, issuer: issuer, arrived: make(chan struct{}, 1)}
}

func (rc *setReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("Content-Type") != webhook.ContentType {
		http.Error(w, `{"err":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	tok, err := jwt.ParseSigned(string(body), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		http.Error(w, `{"err":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	res, err := http.Get(rc.issuer + "/jwks")
	if err != nil {
		http.Error(w, "jwks", http.StatusServiceUnavailable)
		return
	}
	var set jose.JSONWebKeySet
	err = json.NewDecoder(res.Body).Decode(&set)
	res.Body.Close()
	if err != nil || len(tok.Headers) != 1 || len(set.Key(tok.Headers[0].KeyID)) != 1 {
		http.Error(w, `{"err":"invalid_key"}`, http.StatusBadRequest)
		return
	}
	var std jwt.Claims
	var claims struct {
		Events map[string]webhook.ComponentState `json:"events"`
	}
	if err := tok.Claims(set.Key(tok.Headers[0].KeyID)[0].Key, &std, &claims); err != nil || std.Issuer != rc.issuer {
		http.Error(w, `{"err":"authentication_failed"}`, http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.events = append(rc.events, claims.Events[webhook.ComponentStateEvent])
	rc.mu.Unlock()
	select {
	case rc.arrived <- struct{}{}:
	default: // a look is due already
	}
	w.WriteHeader(http.StatusAccepted)
}

// waitStates waits until the states component's events brought hold
// done, looking again as each event arrives, for at most within.
func (rc *setReceiver) waitStates(t *testing.T, component string, within time.Duration, done func([]string) bool) {
	t.Helper()
	timeout := time.NewTimer(within)
	defer timeout.Stop()
	for !done(rc.states(component)) {
		select {
		case <-rc.arrived:
		case <-timeout.C:
			t.Fatalf("%s: the webhook was told %v, not within %v", component, rc.states(component), within)
		}
	}
}

func (rc *setReceiver) states(component string) []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, e := range rc.events {
		if e.Component == component {
			out = append(out, e.State)
		}
	}
	return out
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStatusIncidentFromOutage: logins run, a simulated eID goes down,
// an incident opens by itself within the threshold, counts exactly the
// people who were rerouted or left without a way in, resolves after
// recovery, and its root-cause analysis is overdue once the clock passes
// 72 hours after resolution. The page, the JSON API, the Atom feed and
// the static export all say the same, and a relying party's webhook was
// told, with a token it verified against Varde's published keys.
func TestStatusIncidentFromOutage(t *testing.T) {
	const (
		interval  = 200 * time.Millisecond
		openAfter = time.Second
	)
	var offset atomic.Int64 // the injected clock runs ahead by this much
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	d, issuer := startTunedDemo(t, demoTuning{Now: now, Config: func(c *config.Config) {
		c.Health.Interval, c.Health.ProbeTimeout, c.Health.SlowProbe = interval, interval, interval/2
		c.Status.OpenAfter, c.Status.ResolveAfter = openAfter, time.Second
	}})
	ctx := context.Background()
	var bankid *providersim.Sim
	for _, s := range d.sims {
		if s.ID() == "bankid" {
			bankid = s
		}
	}
	rc := newSetReceiver(t, issuer)
	hook := httptest.NewServer(rc)
	t.Cleanup(hook.Close)
	err := d.app.Store.PutClient(ctx, &store.Client{ID: "news", Name: "Newsroom", AuthMethod: store.AuthNone,
		RedirectURIs: []string{"https://news.example/cb"}, StatusWebhook: hook.URL, StatusComponents: []string{"bankid"}, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	anyRP := newFedRPFor(t, d, issuer, "rp-any", nil)
	bankRP := newFedRPFor(t, d, issuer, "rp-bank", []string{"bankid"})
	persons := providersim.DefaultPersons()
	number := func(i int) string { return persons[i].Identifier.Value }

	waitFor(t, "bankid up", 10*time.Second, func() bool { return d.app.Health.State("bankid") == health.Up })
	anyRP.browser().login("bankid", number(0)) // before the outage: not affected

	faultAt := now()
	if _, err := bankid.SetFault(providersim.Fault{Mode: providersim.ModeDown}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bankid down", 5*time.Second, func() bool { return d.app.Health.State("bankid") == health.Down })

	// Person 1 picks BankID (a link from before it went down), is told
	// it is unavailable, and gets in with MinID.
	p1 := anyRP.browser()
	state, nonce, verifier := "s1-"+faultAt.Format("150405.000"), "n1", "v1-0123456789012345678901234567890123456789"
	req := p1.start(state, nonce, verifier)
	if res, _ := p1.get(issuer + "/login/start?" + url.Values{"req": {req}, "provider": {"bankid"}}.Encode()); res.Request.URL.Query().Get("err") != "unavailable" {
		t.Fatalf("choosing a down provider ended at %s", res.Request.URL)
	}
	if claims := p1.finish(p1.viaSim(req, "minid", number(1)), state, nonce, verifier); claims["provider"] != "minid" {
		t.Fatalf("person 1 logged in through %v", claims["provider"])
	}
	// Person 2 sees BankID listed as down and uses MinID: nothing shows
	// they wanted BankID, so they are not counted.
	anyRP.browser().login("minid", number(2))
	// Person 3's bank takes BankID only: the clear unavailable page,
	// reloaded once; they give up.
	p3 := bankRP.browser()
	req3 := p3.start("s3", "n3", "v3-0123456789012345678901234567890123456789")
	if res, body := p3.get(issuer + "/login?req=" + req3); res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "Demo BankID") {
		t.Fatalf("all-down page: %d", res.StatusCode)
	}

	inc := waitOpened(t, d, "bankid", openAfter+3*time.Second)
	if lag := inc.StartedAt.Sub(faultAt); lag < -interval || lag > 2*interval {
		t.Errorf("incident started %v after the fault, want within one probe interval", lag)
	}
	if opened := inc.OpenedAt.Sub(inc.StartedAt); opened < openAfter || opened > openAfter+4*interval+time.Second {
		t.Errorf("incident opened %v after the outage began; threshold %v", opened, openAfter)
	}
	if st, ok := d.app.Health.Status("bankid"); ok {
		t.Logf("detected down %v after the fault; incident opened %v after it began", st.Since.Sub(faultAt), inc.OpenedAt.Sub(inc.StartedAt))
	}
	// While it lasts, the page tells people the ways in that work (once
	// the summary it shares, for up to 10 s, has the incident).
	waitFor(t, "page names the other ways in", 15*time.Second, func() bool {
		_, body := anyRP.get(issuer + "/status?lang=nb")
		return strings.Contains(body, "I mellomtiden kan du logge inn på en annen måte, hvis tjenesten du kom fra, tilbyr den: Demo MinID eller Passnøkkel.")
	})

	if _, err := bankid.SetFault(providersim.Fault{Mode: providersim.ModeOK}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "incident resolved", 15*time.Second, func() bool {
		got, err := d.app.Store.GetIncident(ctx, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		inc = got
		return !got.ResolvedAt.IsZero()
	})
	if inc.PeopleAffected != 2 || inc.FailedAttempts != 1 || inc.Rerouted != 1 {
		t.Errorf("people %d, failed attempts %d, rerouted %d; want 2, 1, 1", inc.PeopleAffected, inc.FailedAttempts, inc.Rerouted)
	}
	// Told of down and back. A delivery goes out at the notifier's next
	// poll (1 s), and an attempt that failed on a loaded machine (each
	// may take up to 5 s, and the receiver fetches Varde's keys for
	// each) is tried again 5 s later, then 15 s after that
	// (webhook.Config): the bound leaves room for both retries, and the
	// wait ends as soon as the last state arrives. What comes after
	// "operational" is the machine's doing, not the outage's: a probe
	// slowed by a loaded machine may mark the eID degraded again.
	rc.waitStates(t, "bankid", 45*time.Second, func(st []string) bool {
		return len(st) >= 2 && st[0] == webhook.StateDown && slices.Contains(st[1:], webhook.StateOperational)
	})

	pub, err := d.app.Status.Incident(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.RCADueAt.Equal(inc.ResolvedAt.Add(72*time.Hour)) || pub.RCAOverdue {
		t.Fatalf("RCA due %v (resolved %v), overdue %v", pub.RCADueAt, inc.ResolvedAt, pub.RCAOverdue)
	}
	page := func() string {
		_, body := anyRP.get(issuer + "/status/incidents/" + inc.ID + "?lang=en")
		return body
	}
	if strings.Contains(page(), "Root-cause analysis overdue") {
		t.Error("page says overdue before the deadline")
	}
	offset.Store(int64(72*time.Hour + time.Minute)) // the deadline passes
	if !strings.Contains(page(), "Root-cause analysis overdue") {
		t.Error("page does not say the RCA is overdue after the deadline")
	}

	// The JSON API, the feed, the page and the static export agree.
	var sum status.Summary
	res, body := anyRP.get(issuer + "/status/api/v1/summary")
	if err := json.Unmarshal([]byte(body), &sum); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("summary: %d %v", res.StatusCode, err)
	}
	apiInc := findIncident(t, sum.Recent, inc.ID)
	if apiInc.PeopleAffected != 2 || !apiInc.RCAOverdue || apiInc.DurationSeconds != int64(inc.RecoveredAt.Sub(inc.StartedAt)/time.Second) {
		t.Errorf("API incident = %+v", apiInc)
	}
	_, home := anyRP.get(issuer + "/status?lang=en")
	for _, want := range []string{"incidents/" + inc.ID, "Root-cause analysis overdue"} {
		if !strings.Contains(home, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	_, feed := anyRP.get(issuer + "/status/feed.atom")
	var atom struct {
		Entries []struct {
			ID    string `xml:"id"`
			Links []struct {
				Href string `xml:"href,attr"`
			} `xml:"link"`
		} `xml:"entry"`
	}
	if err := xml.Unmarshal([]byte(feed), &atom); err != nil {
		t.Fatal(err)
	}
	if len(atom.Entries) != len(sum.Open)+len(sum.Recent) || !strings.Contains(atom.Entries[0].ID, inc.ID) || !strings.Contains(atom.Entries[0].Links[0].Href, "/status/incidents/"+inc.ID) {
		t.Errorf("feed entries = %+v", atom.Entries)
	}
	pages, err := app.NewPages(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "status")
	if err := statuspage.Export(ctx, d.app.Status, pages, dir, statuspage.ExportOptions{BaseURL: issuer, Now: now}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "api", "v1", "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exported status.Summary
	if err := json.Unmarshal(raw, &exported); err != nil {
		t.Fatal(err)
	}
	if got := findIncident(t, exported.Recent, inc.ID); !reflect.DeepEqual(got, apiInc) {
		t.Errorf("exported incident differs from the API's:\n%+v\n%+v", got, apiInc)
	}
	html, err := os.ReadFile(filepath.Join(dir, "incidents", inc.ID+".html"))
	if err != nil || !strings.Contains(string(html), "Root-cause analysis overdue") {
		t.Errorf("exported incident page: %v", err)
	}

	var disc map[string]any
	_, body = anyRP.get(issuer + "/.well-known/openid-configuration")
	if err := json.Unmarshal([]byte(body), &disc); err != nil || disc["status_endpoint"] != issuer+"/status/api/v1/summary" {
		t.Errorf("discovery status_endpoint = %v", disc["status_endpoint"])
	}
}

// waitOpened waits for component's open incident and returns it.
func waitOpened(t *testing.T, d *demoNode, component string, timeout time.Duration) *store.Incident {
	t.Helper()
	var inc *store.Incident
	waitFor(t, component+" incident opened", timeout, func() bool {
		open, err := d.app.Store.ListIncidents(context.Background(), store.IncidentQuery{Open: true, Component: component})
		if err != nil {
			t.Fatal(err)
		}
		if len(open) == 1 {
			inc = open[0]
		}
		return inc != nil
	})
	return inc
}

func findIncident(t *testing.T, list []status.Incident, id string) status.Incident {
	t.Helper()
	for _, in := range list {
		if in.ID == id {
			return in
		}
	}
	t.Fatalf("incident %s not in %d incidents", id, len(list))
	return status.Incident{}
}

// TestStatusReportBadPeriod: a report period that cannot be read is a
// usage error (exit status 2) that shows the forms a period takes, as is
// any other status command without a flag it needs, and the node's
// report is still given for a good period.
func TestStatusReportBadPeriod(t *testing.T) {
	cfgPath := adminConfig(t)
	for _, args := range [][]string{
		{"--quarter", "2026Q3"},
		{"--quarter", "2026-Q5"},
		{"--from", "2026-07-01"},
		{"--quarter", "2026-Q3", "--from", "2026-07-01", "--to", "2026-10-01"},
	} {
		_, err := runCmd(t, append([]string{"status", "report", "--config", cfgPath}, args...)...)
		var msg strings.Builder
		if code := exitStatus(err, &msg); code != 2 || !strings.Contains(msg.String(), "--quarter 2026-Q3, or --from 2026-07-01 --to 2026-10-01") {
			t.Errorf("status report %v: exit status %d, %q; want 2 and the forms a period takes", args, code, msg.String())
		}
	}
	for _, args := range [][]string{
		{"note", "--config", cfgPath},
		{"rca", "--config", cfgPath, "--incident", "x"},
		{"maintenance", "cancel", "--config", cfgPath},
		{"maintenance", "add", "--config", cfgPath, "--start", "tomorrow", "--end", "2026-12-01T23:00:00Z", "--components", "store", "--title", "t"},
	} {
		if _, err := runCmd(t, append([]string{"status"}, args...)...); exitStatus(err, &strings.Builder{}) != 2 {
			t.Errorf("status %v: %v, want exit status 2", args, err)
		}
	}
	// A required flag left out is named, not reported as empty text.
	for _, tt := range []struct {
		args []string
		flag string
	}{
		{[]string{"note", "--config", cfgPath, "--incident", "x", "--message", "We are on it."}, "--author"},
		{[]string{"note", "--config", cfgPath, "--incident", "x", "--author", "Operations"}, "--message"},
		{[]string{"rca", "--config", cfgPath, "--incident", "x", "--file", cfgPath}, "--author"},
		{[]string{"maintenance", "add", "--config", cfgPath, "--components", "store",
			"--start", "2026-12-01T22:00:00Z", "--end", "2026-12-01T23:00:00Z"}, "--title"},
	} {
		_, err := runCmd(t, append([]string{"status"}, tt.args...)...)
		var msg strings.Builder
		if code := exitStatus(err, &msg); code != 2 || !strings.Contains(msg.String(), tt.flag) {
			t.Errorf("status %v: exit status %d, %q; want 2, naming %s", tt.args, code, msg.String(), tt.flag)
		}
	}
	// A flag left out or a time that cannot be read is said before the
	// configuration is read: a wrong --config does not hide it.
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"maintenance", "cancel", "--config", missing}, "--id is required"},
		{[]string{"webhooks", "--config", missing}, "--client is required"},
		{[]string{"webhooks", "--config", missing, "--client", "bank", "--limit", "0"}, "--limit must be at least 1"},
		{[]string{"maintenance", "add", "--config", missing, "--components", "store", "--title", "t",
			"--start", "tomorrow", "--end", "2026-12-01T23:00:00Z"}, "RFC 3339"},
	} {
		_, err := runCmd(t, append([]string{"status"}, tt.args...)...)
		var msg strings.Builder
		if code := exitStatus(err, &msg); code != 2 || !strings.Contains(msg.String(), tt.want) {
			t.Errorf("status %v: exit status %d, %q; want 2 and %q", tt.args, code, msg.String(), tt.want)
		}
	}
	// A root-cause analysis file too large to be one is named, and not
	// read past the limit: --file /dev/zero ends at once.
	big := filepath.Join(t.TempDir(), "rca.txt")
	if err := os.WriteFile(big, bytes.Repeat([]byte("a"), 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{big, "/dev/zero"} {
		_, err := runCmd(t, "status", "rca", "--config", cfgPath, "--incident", "x", "--author", "Operations", "--file", f)
		if err == nil || !strings.Contains(err.Error(), "--file: "+f+" is larger than") {
			t.Errorf("status rca --file %s: %v, want the file named as too large", f, err)
		}
	}
	out, err := runCmd(t, "status", "report", "--config", cfgPath, "--quarter", "2026-Q1")
	if err != nil || !strings.Contains(out, "2026") {
		t.Errorf("status report --quarter 2026-Q1: %v\n%s", err, out)
	}
}

// TestStatusReportSaysMeasuredSpan: varde status report says in the
// page's words from when a quarter was measured, or that nothing of it
// was, and gives the measured span in its JSON.
func TestStatusReportSaysMeasuredSpan(t *testing.T) {
	cfgPath := adminConfig(t)
	first := time.Date(2026, 2, 10, 12, 0, 0, 0, time.UTC)
	inStore(t, filepath.Dir(cfgPath), func(ctx context.Context, st store.Store) error {
		return st.RecordProbes(ctx, []*store.ProbeRecord{{Component: "store", Node: "n1", Time: first, OK: true, State: store.HealthUp}})
	})
	rep, words := statusReport(t, cfgPath, "2026-Q1")
	if !rep.MeasuredFrom.Equal(first) {
		t.Errorf("measured_from %v, want %v", rep.MeasuredFrom, first)
	}
	if want := "no recorded checks from before 10 Feb 2026, 12:00 UTC: the figures cover only the time since"; !strings.Contains(words, want) {
		t.Errorf("stderr %q, want %q", words, want)
	}
	if _, words := statusReport(t, cfgPath, "2025-Q4"); !strings.Contains(words, "nothing was measured") {
		t.Errorf("2025-Q4: stderr %q, want %q", words, "nothing was measured")
	}
}

// TestStatusRCANamesTheBadInput: status rca refuses an empty author or
// a root-cause analysis that is empty or not text, saying which flag
// held it.
func TestStatusRCANamesTheBadInput(t *testing.T) {
	cfgPath := adminConfig(t)
	dir := t.TempDir()
	good, empty, binary := filepath.Join(dir, "good.txt"), filepath.Join(dir, "empty.txt"), filepath.Join(dir, "bin.txt")
	for f, b := range map[string][]byte{good: []byte("A certificate expired."), empty: []byte(" \n"), binary: {'a', 0, 'b'}} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		author, file string
		want, not    string
	}{
		{" ", good, "status rca: --author: the author is empty", "--file"},
		{"Operations", empty, "status rca: --file " + empty + ": the root-cause analysis is empty", "--author"},
		{"Operations", binary, "status rca: --file " + binary + ": the root-cause analysis is not UTF-8 text", "--author"},
		{"Op\x00s", binary, "--author: the author is not UTF-8", "--file " + good},
	} {
		_, err := runCmd(t, "status", "rca", "--config", cfgPath, "--incident", "x", "--author", tt.author, "--file", tt.file)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), tt.not) {
			t.Errorf("status rca --author %q --file %s: %v, want %q", tt.author, tt.file, err, tt.want)
		}
	}
}

// TestStatusIncidentsList: varde status incidents names every component
// an incident affected and says whether its root-cause analysis came on
// time, came late, is overdue or is still due.
func TestStatusIncidentsList(t *testing.T) {
	ctx := context.Background()
	cfgPath := adminConfig(t)
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(ctx, cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC().Truncate(time.Second)
	resolved := func(id string, comps []string, resolvedAgo time.Duration, rcaAfter time.Duration) time.Time {
		t.Helper()
		in := &store.Incident{ID: id, Component: comps[0], Components: comps, Severity: store.SeverityDown,
			StartedAt: now.Add(-resolvedAgo - time.Hour), OpenedAt: now.Add(-resolvedAgo - 50*time.Minute)}
		if err := st.OpenIncident(ctx, in); err != nil {
			t.Fatal(err)
		}
		in.RecoveredAt, in.ResolvedAt = now.Add(-resolvedAgo-5*time.Minute), now.Add(-resolvedAgo)
		if rcaAfter > 0 {
			in.RCA, in.RCAPublishedAt = "A certificate expired.", in.ResolvedAt.Add(rcaAfter)
		}
		if err := st.UpdateIncident(ctx, in); err != nil {
			t.Fatal(err)
		}
		return in.ResolvedAt.Add(status.RCADeadline)
	}
	resolved("on-time", []string{"bankid", "minid"}, 10*24*time.Hour, 24*time.Hour)
	lateDue := resolved("late", []string{"buypass"}, 20*24*time.Hour, 100*time.Hour)
	overdueDue := resolved("overdue", []string{"commfides"}, 5*24*time.Hour, 0)
	dueAt := resolved("due", []string{"store"}, time.Hour, 0)

	out, err := runCmd(t, "status", "incidents", "--config", cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			rows[f[0]] = l
		}
	}
	for id, want := range map[string][]string{
		"on-time": {" bankid,minid ", "published on time "},
		"late":    {" buypass ", "published LATE ", "due " + lateDue.Format(time.RFC3339)},
		"overdue": {" commfides ", "OVERDUE since " + overdueDue.Format(time.RFC3339)},
		"due":     {" store ", "due " + dueAt.Format(time.RFC3339)},
	} {
		for _, w := range want {
			if !strings.Contains(rows[id], w) {
				t.Errorf("incident %s: row %q lacks %q", id, rows[id], w)
			}
		}
	}
}

// TestStatusRCAOpenIncident: status rca for an incident still open names
// the incident and its components and says when the analysis can be
// published; one for an unknown incident names the ID.
func TestStatusRCAOpenIncident(t *testing.T) {
	ctx := context.Background()
	cfgPath := adminConfig(t)
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(ctx, cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	in := &store.Incident{ID: "inc-open", Component: "bankid", Components: []string{"bankid", "minid"}, Severity: store.SeverityDown,
		StartedAt: now.Add(-time.Hour), OpenedAt: now.Add(-50 * time.Minute)}
	if err := st.OpenIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	st.Close()
	file := filepath.Join(t.TempDir(), "rca.txt")
	if err := os.WriteFile(file, []byte("A certificate expired."), 0o600); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string][]string{
		"inc-open": {"incident inc-open (bankid, minid) is still open", "once it is resolved",
			"stayed up for 5m0s (status.resolve_after)", "due within 72 hours"},
		"inc-none": {`no incident "inc-none"`},
	} {
		_, err := runCmd(t, "status", "rca", "--config", cfgPath, "--incident", id, "--author", "Operations", "--file", file)
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("status rca --incident %s: %v, want %q", id, err, w)
			}
		}
	}
}

// TestStatusMaintenanceListWindow: status maintenance list shows the
// windows that end within status.HistoryDays before the clock it is
// given, and none that ended earlier.
func TestStatusMaintenanceListWindow(t *testing.T) {
	ctx := context.Background()
	cfgPath := adminConfig(t)
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(ctx, cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2031, 3, 1, 12, 0, 0, 0, time.UTC)
	edge := now.AddDate(0, 0, -status.HistoryDays)
	for id, end := range map[string]time.Time{"m-aged": edge, "m-kept": edge.Add(time.Second), "m-ahead": now.Add(48 * time.Hour)} {
		m := &store.Maintenance{ID: id, Components: []string{"bankid", "store"}, Start: end.Add(-time.Hour), End: end, Title: "Work " + id}
		if err := st.CreateMaintenance(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := listMaintenance(ctx, st, now, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "m-kept") || !strings.Contains(out.String(), "m-ahead") || strings.Contains(out.String(), "m-aged") {
		t.Errorf("status maintenance list at %s:\n%s", now.Format(time.RFC3339), out.String())
	}
	// Components are listed as --components takes them.
	if !strings.Contains(out.String(), " bankid,store ") {
		t.Errorf("status maintenance list does not list the components as bankid,store:\n%s", out.String())
	}
}

// TestStatusMaintenanceEnd: status maintenance end ends a window under
// way at the command's time, which maintenance list then shows; a window
// not yet begun is refused with the advice to cancel it, and cancel
// refuses the window once it has begun.
func TestStatusMaintenanceEnd(t *testing.T) {
	ctx := context.Background()
	cfgPath := adminConfig(t)
	at := time.Date(2031, 3, 1, 12, 0, 0, 0, time.UTC)
	cmd := func(args ...string) (string, error) {
		t.Helper()
		var out, errb bytes.Buffer
		err := statusCmd(ctx, append(args, "--config", cfgPath), &out, &errb, func() time.Time { return at })
		return out.String(), err
	}
	out, err := cmd("maintenance", "add", "--components", "node:n2", "--start", "2031-03-01T13:00:00+01:00",
		"--end", "2031-03-01T15:00:00Z", "--title", "Certificate rollover")
	if err != nil {
		t.Fatalf("maintenance add: %v", err)
	}
	id := strings.TrimSpace(strings.TrimPrefix(out, "announced maintenance "))
	if _, err := cmd("maintenance", "end", "--id", id); err == nil || !strings.Contains(err.Error(), "has not begun, it begins at 2031-03-01T12:00:00Z; cancel it instead") {
		t.Errorf("maintenance end before it begins: %v", err)
	}
	at = at.Add(90 * time.Minute)
	if _, err := cmd("maintenance", "cancel", "--id", id); err == nil || !strings.Contains(err.Error(), "under way") {
		t.Errorf("maintenance cancel under way: %v", err)
	}
	out, err = cmd("maintenance", "end", "--id", id)
	if err != nil {
		t.Fatalf("maintenance end under way: %v", err)
	}
	if want := "ended maintenance " + id + " at 2031-03-01T13:30:00Z; it began at 2031-03-01T12:00:00Z\n"; out != want {
		t.Errorf("maintenance end said %q, want %q", out, want)
	}
	at = at.Add(time.Minute)
	if _, err := cmd("maintenance", "end", "--id", id); err == nil || !strings.Contains(err.Error(), "ended at 2031-03-01T13:30:00Z") {
		t.Errorf("maintenance end once ended: %v", err)
	}
	if _, err := cmd("maintenance", "end", "--id", "nosuch"); err == nil || err.Error() != `no maintenance "nosuch"` {
		t.Errorf("maintenance end of an unknown ID: %v", err)
	}
	out, err = cmd("maintenance", "list")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "2031-03-01T12:00:00Z  ended early at 2031-03-01T13:30:00Z (announced to 2031-03-01T15:00:00Z)") {
		t.Errorf("maintenance list does not show the new end and the one announced:\n%s", out)
	}
}

// TestStatusExportNamesHelpDesk: the static copy written by status
// export names the configured help desk on its page, as the served page
// does.
func TestStatusExportNamesHelpDesk(t *testing.T) {
	cfgPath := adminConfig(t)
	appendFile(t, cfgPath, "support:\n  url: https://help.example.no/\n  phone: \"+47 800 12 345\"\n  hours:\n    en: weekdays 8–16\n")
	dir := filepath.Join(t.TempDir(), "status")
	var out, errb bytes.Buffer
	if err := statusCmd(context.Background(), []string{"export", "--config", cfgPath, dir}, &out, &errb, time.Now); err != nil {
		t.Fatalf("status export: %v\n%s", err, errb.String())
	}
	html, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`id="support"`, `href="https://help.example.no/"`, "weekdays 8–16"} {
		if !strings.Contains(string(html), w) {
			t.Errorf("exported page lacks %q", w)
		}
	}
}

// TestStatusChangesSayWhenNodesShowThem: a note, an RCA and a maintenance
// window announced, cancelled or ended from the command line are written
// to the store, and a running node shows them only when the page it
// keeps runs out; each command says so on stderr, with how long that is,
// and stdout keeps only what was done.
func TestStatusChangesSayWhenNodesShowThem(t *testing.T) {
	ctx := context.Background()
	cfgPath := adminConfig(t)
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(ctx, cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2031, 3, 1, 12, 0, 0, 0, time.UTC)
	in := &store.Incident{ID: "inc-1", Component: "bankid", Components: []string{"bankid"}, Severity: store.SeverityDown,
		StartedAt: at.Add(-2 * time.Hour), OpenedAt: at.Add(-2 * time.Hour)}
	if err := st.OpenIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	in.RecoveredAt, in.ResolvedAt = at.Add(-time.Hour), at.Add(-time.Hour)
	if err := st.UpdateIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	st.Close()
	rca := filepath.Join(t.TempDir(), "rca.txt")
	if err := os.WriteFile(rca, []byte("A certificate expired."), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := func(args ...string) (string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		if err := statusCmd(ctx, append(args, "--config", cfgPath), &out, &errb, func() time.Time { return at }); err != nil {
			t.Fatalf("status %s: %v", strings.Join(args, " "), err)
		}
		return out.String(), errb.String()
	}
	const note = "running nodes show it on their status page within 10s, the time each keeps the page it computed\n"
	check := func(what, stdout, stderr string) {
		t.Helper()
		if strings.Contains(stdout, "running nodes") {
			t.Errorf("%s: stdout has the note meant for stderr: %q", what, stdout)
		}
		if stderr != note {
			t.Errorf("%s: stderr = %q, want %q", what, stderr, note)
		}
	}
	out, errOut := cmd("note", "--incident", "inc-1", "--author", "Operations", "--message", "BankID is back.")
	check("note", out, errOut)
	out, errOut = cmd("rca", "--incident", "inc-1", "--author", "Operations", "--file", rca)
	check("rca", out, errOut)
	out, errOut = cmd("maintenance", "add", "--components", "store", "--start", "2031-03-02T12:00:00Z", "--end", "2031-03-02T13:00:00Z", "--title", "Upgrade")
	check("maintenance add", out, errOut)
	out, errOut = cmd("maintenance", "cancel", "--id", strings.TrimSpace(strings.TrimPrefix(out, "announced maintenance ")))
	check("maintenance cancel", out, errOut)
	out, errOut = cmd("maintenance", "add", "--components", "store", "--start", "2031-03-01T12:30:00Z", "--end", "2031-03-01T14:00:00Z", "--title", "Upgrade")
	check("maintenance add", out, errOut)
	at = at.Add(time.Hour)
	out, errOut = cmd("maintenance", "end", "--id", strings.TrimSpace(strings.TrimPrefix(out, "announced maintenance ")))
	check("maintenance end", out, errOut)
}

// TestStatusReportQuarterInThePagesZone: varde status report reads a
// quarter as the configured pages' zone's, from midnight there, gives
// its bounds in UTC and names the zone, and says its dates as the page
// does.
func TestStatusReportQuarterInThePagesZone(t *testing.T) {
	cfgPath := adminConfig(t)
	appendFile(t, cfgPath, "pages:\n  time_zone: Europe/Oslo\n")
	rep, words := statusReport(t, cfgPath, "2026-Q1")
	from, to := time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC), time.Date(2026, 3, 31, 22, 0, 0, 0, time.UTC)
	if !rep.From.Equal(from) || !rep.To.Equal(to) || rep.TimeZone != "Europe/Oslo" {
		t.Errorf("2026-Q1 from %v to %v in %q, want from %v to %v in Europe/Oslo", rep.From, rep.To, rep.TimeZone, from, to)
	}
	if want := "From 2026-01-01 up to and including 2026-03-31."; !strings.Contains(words, want) {
		t.Errorf("stderr %q, want %q", words, want)
	}
}

// statusReport runs varde status report for quarter and returns the
// report it wrote to stdout and its words on stderr.
func statusReport(t *testing.T, cfgPath, quarter string) (status.Report, string) {
	t.Helper()
	var out, words bytes.Buffer
	if err := run([]string{"status", "report", "--config", cfgPath, "--quarter", quarter}, &out, &words); err != nil {
		t.Fatal(err)
	}
	var rep status.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not the report's JSON: %v\n%s", err, out.String())
	}
	return rep, words.String()
}

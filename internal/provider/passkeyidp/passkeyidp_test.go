package passkeyidp_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/descope/virtualwebauthn"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/passkey"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/provider/passkeyidp"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/flowmem"
	"github.com/varde-eid/varde/internal/store/sqlstore"
	"github.com/varde-eid/varde/web"
)

// finisher stands in for the broker: it records results, starts a
// session like the broker does and returns where to go next.
type finisher struct {
	sessions *session.Manager
	mu       sync.Mutex
	results  []finished
	fails    []string
}

type finished struct {
	Attempt string
	Result  provider.Result
}

func (f *finisher) Finish(w http.ResponseWriter, r *http.Request, attemptID string, res provider.Result) (string, error) {
	f.mu.Lock()
	f.results = append(f.results, finished{attemptID, res})
	f.mu.Unlock()
	s := &store.Session{PersonID: res.PersonID, Provider: res.Provider, Level: res.Level.String(), AMR: res.AMR, AuthTime: res.AuthTime}
	if err := f.sessions.Start(r.Context(), w, r, s); err != nil {
		return "", err
	}
	if attemptID == "" {
		return "/account", nil
	}
	return "/resume?attempt=" + url.QueryEscape(attemptID), nil
}

func (f *finisher) Fail(w http.ResponseWriter, r *http.Request, attemptID, _, reason string) string {
	f.mu.Lock()
	f.fails = append(f.fails, reason)
	f.mu.Unlock()
	return "/login?" + url.Values{"req": {attemptID}, "err": {reason}}.Encode()
}

// Pending: the broker holds every attempt but those whose ID begins
// "unknown".
func (f *finisher) Pending(_ context.Context, attemptID string) (bool, error) {
	return !strings.HasPrefix(attemptID, "unknown"), nil
}

// Accepts: the broker takes every attempt it holds at any level, but
// those whose ID begins "high" only at high.
func (f *finisher) Accepts(r *http.Request, attemptID, _ string, level assurance.Level) (bool, error) {
	held, err := f.Pending(r.Context(), attemptID)
	return held && (!strings.HasPrefix(attemptID, "high") || level >= assurance.High), err
}

func (f *finisher) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.results)
}

func (f *finisher) last(t *testing.T) finished {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.results) == 0 {
		t.Fatal("no login finished")
	}
	return f.results[len(f.results)-1]
}

type harness struct {
	t  *testing.T
	db *sqlstore.DB
	// dbPath is the SQLite file db opened.
	dbPath string
	p      *passkeyidp.Provider
	fin    *finisher
	origin string
	addr   string
	rp     virtualwebauthn.RelyingParty
	now    time.Time
}

// pagesFS holds the layout, the error page and this provider's pages, so
// the test does not depend on other packages' templates.
func pagesFS(t *testing.T) fs.FS {
	m := fstest.MapFS{}
	for _, name := range []string{"layout", "error", "passkey_login", "recover", "enrol", "enrol_codes", "account", "account_activity", "account_codes", "account_confirm_removal", "account_rename", "account_newcodes"} {
		b, err := fs.ReadFile(web.Templates, "templates/"+name+".html")
		if err != nil {
			t.Fatal(err)
		}
		m["templates/"+name+".html"] = &fstest.MapFile{Data: b}
	}
	return m
}

func newHarness(t *testing.T, synthetic bool) *harness {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "varde.db")
	db, err := sqlstore.OpenSQLite(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := slog.New(slog.DiscardHandler)
	pages, err := httpx.NewPages(pagesFS(t), web.Locales, []httpx.Language{{Tag: "nb", Name: "Norsk bokmål"}, {Tag: "en", Name: "English"}, {Tag: "da", Name: "Dansk"}}, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	h := &harness{t: t, db: db, dbPath: dbPath, origin: fmt.Sprintf("http://localhost:%d", port), addr: ln.Addr().String(),
		now: time.Now().UTC().Truncate(time.Second)}
	h.rp = virtualwebauthn.RelyingParty{Name: "Varde", ID: "localhost", Origin: h.origin}
	now := func() time.Time { return h.now }
	// WebAuthn RP IDs cannot be IP addresses: the server listens on
	// 127.0.0.1 and is addressed as localhost.
	w, err := passkey.NewWebAuthn("localhost", "Varde", []string{h.origin})
	if err != nil {
		t.Fatal(err)
	}
	sessions := &session.Manager{Store: db, Lifetime: time.Hour, Now: now}
	h.fin = &finisher{sessions: sessions}
	h.p = &passkeyidp.Provider{
		WebAuthn: &passkey.Service{WebAuthn: w, Persons: db, Passkeys: db, Challenges: db, Now: now},
		Persons:  db, Passkeys: db, RecoveryCodes: db, DeskCodes: db, Challenges: db, Limits: db,
		BrowserKey: bytes.Repeat([]byte{7}, passkeyidp.MinBrowserKeySize),
		CursorKey:  bytes.Repeat([]byte{6}, passkeyidp.MinCursorKeySize),
		Sessions:   sessions, Finisher: h.fin, Pages: pages,
		Audit:              &audit.Log{Store: db, Log: log, Now: now},
		SyntheticEnrolment: synthetic, Now: now, Log: log,
	}
	mux := http.NewServeMux()
	h.p.Register(mux)
	// Where the finisher sends the browser, and the scripts.
	mux.HandleFunc("GET /resume", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>resumed</title><p id="resumed">resumed</p>`)
	})
	static, err := fs.Sub(web.Static, "static")
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	srv := httptest.NewUnstartedServer(httpx.SecurityHeaders(httpx.LimitBody(1<<20, mux)))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return h
}

// browser is one user agent with its own cookies.
type browser struct {
	h    *harness
	c    *http.Client
	lang string
}

func (h *harness) browser(lang string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	dial := &net.Dialer{}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dial.DialContext(ctx, network, h.addr)
	}}
	h.t.Cleanup(tr.CloseIdleConnections)
	return &browser{h: h, lang: lang, c: &http.Client{Jar: jar, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type reply struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (b *browser) do(req *http.Request) reply {
	b.h.t.Helper()
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.h.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return reply{status: res.StatusCode, body: string(body), location: res.Header.Get("Location"), header: res.Header}
}

func (b *browser) get(path string) reply {
	b.h.t.Helper()
	req, _ := http.NewRequest("GET", b.h.origin+path, nil)
	return b.do(req)
}

func (b *browser) form(path string, v url.Values) reply {
	b.h.t.Helper()
	req, _ := http.NewRequest("POST", b.h.origin+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *browser) json(path string, body any, csrf string) (reply, map[string]any) {
	b.h.t.Helper()
	var raw []byte
	switch v := body.(type) {
	case []byte:
		raw = v
	case string:
		raw = []byte(v)
	default:
		raw, _ = json.Marshal(v)
	}
	req, _ := http.NewRequest("POST", b.h.origin+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	r := b.do(req)
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		b.h.t.Fatalf("POST %s: %d, not JSON: %q", path, r.status, r.body)
	}
	return r, m
}

func field(t *testing.T, page, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no %s field in page", name)
	}
	return m[1]
}

func attr(t *testing.T, page, name string) string {
	t.Helper()
	m := regexp.MustCompile(name + `="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no %s attribute in page", name)
	}
	return m[1]
}

var codeRE = regexp.MustCompile(`<code class="codes">([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})</code>`)

func codesIn(page string) []string {
	var out []string
	for _, m := range codeRE.FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	return out
}

// device is a software authenticator with one credential.
type device struct {
	auth virtualwebauthn.Authenticator
	cred virtualwebauthn.Credential
}

func newDevice(synced bool) *device {
	return &device{
		auth: virtualwebauthn.NewAuthenticatorWithOptions(virtualwebauthn.AuthenticatorOptions{BackupEligible: synced, BackupState: synced}),
		cred: loadgen.NewCredential(),
	}
}

func options(t *testing.T, m map[string]any) (string, string) {
	t.Helper()
	id, _ := m["ceremony"].(string)
	opts, err := json.Marshal(m["options"])
	if id == "" || err != nil {
		t.Fatalf("begin reply %v", m)
	}
	return id, string(opts)
}

// create runs navigator.credentials.create on d for a begin reply.
func (h *harness) create(t *testing.T, d *device, begun map[string]any) (string, []byte) {
	t.Helper()
	id, opts := options(t, begun)
	o, err := virtualwebauthn.ParseAttestationOptions(opts)
	if err != nil {
		t.Fatal(err)
	}
	d.auth.Options.UserHandle = []byte(o.UserID)
	return id, []byte(virtualwebauthn.CreateAttestationResponse(h.rp, d.auth, d.cred, *o))
}

// get runs navigator.credentials.get on d for a begin reply, as if the
// page were at rp.
func (h *harness) get(t *testing.T, rp virtualwebauthn.RelyingParty, d *device, begun map[string]any) (string, []byte) {
	t.Helper()
	id, opts := options(t, begun)
	o, err := virtualwebauthn.ParseAssertionOptions(opts)
	if err != nil {
		t.Fatal(err)
	}
	d.cred.Counter++
	return id, []byte(virtualwebauthn.CreateAssertionResponse(rp, d.auth, d.cred, *o))
}

type enrolled struct {
	codes  []string
	number string
	next   string
	person string
}

// enrolCreate opens the enrol page, begins an enrolment and creates
// its passkey on d, and returns the ceremony and the credential for its
// finish.
func (b *browser) enrolCreate(d *device, attempt, kind string) (string, []byte) {
	t := b.h.t
	t.Helper()
	if r := b.get("/passkey/enrol?attempt=" + url.QueryEscape(attempt)); r.status != 200 {
		t.Fatalf("enrol page: %d", r.status)
	}
	r, begun := b.json("/passkey/enrol/begin", map[string]string{"attempt": attempt, "given_name": "Kari", "family_name": "Nordmann", "kind": kind}, "")
	if r.status != 200 {
		t.Fatalf("enrol begin: %d %v", r.status, begun)
	}
	return b.h.create(t, d, begun)
}

// enrolOnly creates a test person with a passkey on d and returns the
// page that shows the recovery codes and the Continue form.
func (b *browser) enrolOnly(d *device, attempt, kind string) reply {
	t := b.h.t
	t.Helper()
	id, body := b.enrolCreate(d, attempt, kind)
	r, done := b.json("/passkey/enrol/finish?ceremony="+url.QueryEscape(id), body, "")
	if r.status != 200 {
		t.Fatalf("enrol finish: %d %v", r.status, done)
	}
	view := done["redirect"].(string)
	page := b.get(view)
	if page.status != 200 || !strings.Contains(page.header.Get("Cache-Control"), "no-store") {
		t.Fatalf("enrolled page: %d %v", page.status, page.header)
	}
	// The page cannot be shown twice, so it has no language links, which
	// would ask for it again.
	if strings.Contains(page.body, "?lang=") {
		t.Fatal("the enrolled page links to itself in other languages")
	}
	if again := b.get(view); again.status != http.StatusGone {
		t.Fatalf("enrolled page shown twice: %d", again.status)
	}
	return page
}

// continueForm is the enrolled page's Continue form.
func continueForm(t *testing.T, page reply) url.Values {
	t.Helper()
	return url.Values{"ticket": {field(t, page.body, "ticket")}, "csrf": {field(t, page.body, "csrf")}}
}

// enrol creates a test person with a passkey on d and continues the login.
func (b *browser) enrol(d *device, attempt, kind string) enrolled {
	t := b.h.t
	t.Helper()
	page := b.enrolOnly(d, attempt, kind)
	e := enrolled{codes: codesIn(page.body)}
	if m := regexp.MustCompile(`<dd><code>(\d{11})</code></dd>`).FindStringSubmatch(page.body); m != nil {
		e.number = m[1]
	}
	form := continueForm(t, page)
	before := b.h.fin.count()
	cont := b.form("/passkey/enrolled/continue", form)
	if cont.status != http.StatusSeeOther {
		t.Fatalf("continue: %d %s", cont.status, cont.body)
	}
	e.next = cont.location
	e.person = b.h.fin.last(t).Result.PersonID
	// Nor can the login be continued twice.
	if again := b.form("/passkey/enrolled/continue", form); again.status != http.StatusBadRequest || b.h.fin.count() != before+1 {
		t.Fatalf("continued twice: %d, %d logins", again.status, b.h.fin.count())
	}
	return e
}

// login runs a passkey login for attempt with d at rp.
func (b *browser) login(d *device, rp virtualwebauthn.RelyingParty, attempt string) (reply, map[string]any) {
	t := b.h.t
	t.Helper()
	r, begun := b.json("/passkey/login/begin", map[string]string{"attempt": attempt}, "")
	if r.status != 200 {
		t.Fatalf("login begin: %d %v", r.status, begun)
	}
	id, body := b.h.get(t, rp, d, begun)
	return b.json("/passkey/login/finish?ceremony="+url.QueryEscape(id), body, "")
}

func (h *harness) auditEvents(t *testing.T) []*store.AuditEvent {
	t.Helper()
	ev, err := h.db.ListAudit(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func hasEvent(events []*store.AuditEvent, typ, result, reason string) bool {
	return slices.ContainsFunc(events, func(e *store.AuditEvent) bool {
		return e.Type == typ && e.Result == result && e.Reason == reason && e.Provider == "passkey"
	})
}

func TestEnrolThenLogin(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	tests := []struct {
		name   string
		synced bool
		kind   string
		level  assurance.Level
		amr    []string
	}{
		{"device-bound birth number", false, "fnr", assurance.High, []string{"hwk", "user", "mfa"}},
		{"synced D-number", true, "dnr", assurance.Substantial, []string{"swk", "user", "mfa"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.browser("en")
			d := newDevice(tt.synced)
			e := b.enrol(d, "att-enrol", tt.kind)
			if e.next != "/resume?attempt=att-enrol" {
				t.Fatalf("next = %q", e.next)
			}
			res := h.fin.last(t)
			if res.Attempt != "att-enrol" || res.Result.Level != tt.level || !slices.Equal(res.Result.AMR, tt.amr) ||
				res.Result.Method != "passkey" || res.Result.Provider != "passkey" || res.Result.AuthTime.IsZero() {
				t.Fatalf("enrolment login = %+v", res)
			}
			if len(e.codes) != passkeyidp.RecoveryCodeCount || len(slices.Compact(slices.Sorted(slices.Values(e.codes)))) != len(e.codes) {
				t.Fatalf("codes = %v", e.codes)
			}
			n, err := identity.ParseNO(e.number)
			if err != nil || !n.Synthetic() || n.Scheme != "no:"+tt.kind {
				t.Fatalf("number %q: %+v %v", e.number, n, err)
			}
			p, err := h.db.GetPerson(ctx, e.person)
			if err != nil || !p.Synthetic || p.ProofingLevel != "high" || p.ProofingMethod != "synthetic" ||
				len(p.WebAuthnID) != 32 || p.Identifiers[0].Value != e.number || p.BirthDate != n.BirthDate.Format(time.DateOnly) {
				t.Fatalf("person = %+v, %v", p, err)
			}
			if left, _ := h.db.CountRecoveryCodes(ctx, p.ID); left != passkeyidp.RecoveryCodeCount {
				t.Fatalf("%d codes stored", left)
			}

			// A later passkey login reaches the same level.
			r, m := b.login(d, h.rp, "att-login")
			if r.status != 200 || m["redirect"] != "/resume?attempt=att-login" {
				t.Fatalf("login: %d %v", r.status, m)
			}
			res = h.fin.last(t)
			if res.Attempt != "att-login" || res.Result.PersonID != p.ID || res.Result.Level != tt.level || !slices.Equal(res.Result.AMR, tt.amr) {
				t.Fatalf("login result = %+v", res)
			}
		})
	}
	if !hasEvent(h.auditEvents(t), "enrolment", store.ResultSuccess, "") {
		t.Fatal("no enrolment audit event")
	}
}

// The Continue button after an enrolment logs in only the browser that
// enrolled. Otherwise anyone could enrol a test person and have another
// person's browser post the ticket from a page of theirs, logging that
// person in as the test person (login CSRF).
func TestEnrolledContinueOnlyWhereEnrolled(t *testing.T) {
	h := newHarness(t, true)
	enroller := h.browser("en")
	form := continueForm(t, enroller.enrolOnly(newDevice(false), "", "fnr"))

	// Another browser with its own form cookie, posting its own token.
	other := h.browser("en")
	otherCSRF := field(t, other.get("/passkey/recover?attempt=").body, "csrf")
	tests := []struct {
		name string
		b    *browser
		form url.Values
	}{
		{"no form token", h.browser("en"), url.Values{"ticket": form["ticket"]}},
		{"the enroller's token without its cookie", h.browser("en"), form},
		{"the ticket alone from the enrolling browser", enroller, url.Values{"ticket": form["ticket"]}},
		{"another browser's own token", other, url.Values{"ticket": form["ticket"], "csrf": {otherCSRF}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.b.form("/passkey/enrolled/continue", tt.form)
			if r.status != http.StatusForbidden || !strings.Contains(r.body, "This page is out of date") {
				t.Fatalf("continue: %d %q", r.status, r.location)
			}
			if n := h.fin.count(); n != 0 {
				t.Fatalf("%d logins finished", n)
			}
		})
	}
	if r := other.get("/account"); r.status != http.StatusSeeOther {
		t.Fatalf("the other browser has a session: account page %d", r.status)
	}
	if !hasEvent(h.auditEvents(t), "authentication", store.ResultFailure, "wrong_browser") {
		t.Fatal("no audit event for the other browser")
	}

	// The other browsers' tries did not use the ticket up: Continue
	// still works where it was made, once.
	if r := enroller.form("/passkey/enrolled/continue", form); r.status != http.StatusSeeOther || r.location != "/account" {
		t.Fatalf("continue in the enrolling browser: %d %q", r.status, r.location)
	}
	if r := enroller.form("/passkey/enrolled/continue", form); r.status != http.StatusBadRequest {
		t.Fatalf("second continue in the enrolling browser: %d %q", r.status, r.location)
	}
}

// The page that shows a new test person's recovery codes shows them only
// in the browser that enrolled: a copied link opened elsewhere shows
// nothing and does not use them up.
func TestEnrolledCodesOnlyWhereEnrolled(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	id, body := b.enrolCreate(newDevice(false), "", "")
	r, done := b.json("/passkey/enrol/finish?ceremony="+url.QueryEscape(id), body, "")
	if r.status != http.StatusOK {
		t.Fatalf("enrol finish: %d %v", r.status, done)
	}
	view := done["redirect"].(string)
	other := h.browser("en")
	other.get("/passkey/recover?attempt=") // a form cookie of its own
	for name, o := range map[string]*browser{"without a form cookie": h.browser("en"), "with its own form cookie": other} {
		if r := o.get(view); r.status != http.StatusGone || len(codesIn(r.body)) != 0 {
			t.Fatalf("enrolled page in another browser %s: %d, %d codes", name, r.status, len(codesIn(r.body)))
		}
	}
	if r := b.get(view); r.status != http.StatusOK || len(codesIn(r.body)) != passkeyidp.RecoveryCodeCount {
		t.Fatalf("enrolled page in the enrolling browser: %d, %d codes", r.status, len(codesIn(r.body)))
	}
}

func TestLoginFailures(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	d := newDevice(false)
	b.enrol(d, "a", "fnr")
	logins := h.fin.count()

	// Phishing: the page was at another origin.
	evil := virtualwebauthn.RelyingParty{ID: "localhost", Origin: "https://evil.example"}
	r, m := b.login(d, evil, "a")
	if r.status != 400 || m["error"] != "wrong_origin" || !strings.Contains(m["message"].(string), "another website") {
		t.Fatalf("wrong origin: %d %v", r.status, m)
	}
	if !hasEvent(h.auditEvents(t), "authentication", store.ResultFailure, "wrong_origin") {
		t.Fatal("no audit event for the wrong origin")
	}

	// Replay of a good assertion.
	_, begun := b.json("/passkey/login/begin", map[string]string{"attempt": "a"}, "")
	id, body := h.get(t, h.rp, d, begun)
	if r, _ := b.json("/passkey/login/finish?ceremony="+id, body, ""); r.status != 200 {
		t.Fatalf("first use: %d", r.status)
	}
	r, m = b.json("/passkey/login/finish?ceremony="+id, body, "")
	if r.status != 400 || m["error"] != "replay" {
		t.Fatalf("replay: %d %v", r.status, m)
	}

	// Malformed and oversize bodies, wrong content type.
	_, begun = b.json("/passkey/login/begin", map[string]string{"attempt": "a"}, "")
	if r, m := b.json("/passkey/login/finish?ceremony="+begun["ceremony"].(string), "{not json", ""); r.status != 400 || m["error"] != "bad_input" {
		t.Fatalf("malformed: %d %v", r.status, m)
	}
	big := append([]byte(`{"id":"`), bytes.Repeat([]byte("A"), passkey.MaxResponseSize)...)
	if r, m := b.json("/passkey/login/finish?ceremony=x", big, ""); r.status != 400 || m["error"] != "bad_input" {
		t.Fatalf("oversize: %d %v", r.status, m)
	}
	// A response too large uses up its ceremony, as any other does.
	_, begun = b.json("/passkey/login/begin", map[string]string{"attempt": "a"}, "")
	id, body = h.get(t, h.rp, d, begun)
	if r, m := b.json("/passkey/login/finish?ceremony="+id, big, ""); r.status != 400 || m["error"] != "bad_input" {
		t.Fatalf("oversize: %d %v", r.status, m)
	}
	if r, m := b.json("/passkey/login/finish?ceremony="+id, body, ""); r.status != 400 || m["error"] != "replay" {
		t.Fatalf("good response after an oversize one: %d %v", r.status, m)
	}
	req, _ := http.NewRequest("POST", h.origin+"/passkey/login/begin", strings.NewReader(`{"attempt":"a"}`))
	req.Header.Set("Content-Type", "text/plain")
	if r := b.do(req); r.status != http.StatusUnsupportedMediaType || !strings.Contains(r.body, "bad_request") {
		t.Fatalf("text/plain begin: %d %s", r.status, r.body)
	}

	// A Norwegian page gets Norwegian messages.
	nb := h.browser("nb")
	r, m = nb.login(d, evil, "a")
	if r.status != 400 || !strings.Contains(m["message"].(string), "annet nettsted") {
		t.Fatalf("Norwegian message: %v", m)
	}
	if h.fin.count() != logins+1 {
		t.Fatalf("%d logins finished, want %d", h.fin.count(), logins+1)
	}
}

// When the node holds as many ceremonies as it may (a flood of begins,
// which need no login), begin says plainly that it is busy, with
// Retry-After, and the flow state still takes the other logins' records.
func TestBeginWhenCeremoniesAreFull(t *testing.T) {
	h := newHarness(t, true)
	mem := flowmem.New(flowmem.Options{MaxChallenges: 3, Now: func() time.Time { return h.now }})
	h.p.WebAuthn.Challenges = mem
	b := h.browser("en")
	for i := range 3 {
		if r, m := b.json("/passkey/login/begin", map[string]string{"attempt": "a"}, ""); r.status != 200 {
			t.Fatalf("begin %d: %d %v", i, r.status, m)
		}
	}
	begins := []struct {
		name, path, lang, message string
		body                      map[string]string
	}{
		{"login", "/passkey/login/begin", "en", "Too many people are logging in right now", map[string]string{"attempt": "a"}},
		{"enrol", "/passkey/enrol/begin", "en", "Too many people are logging in right now", map[string]string{"attempt": "a", "given_name": "A", "family_name": "B"}},
		{"login in Norwegian", "/passkey/login/begin", "nb", "for mange som logger inn", map[string]string{"attempt": "a"}},
	}
	for _, tt := range begins {
		t.Run(tt.name, func(t *testing.T) {
			r, m := h.browser(tt.lang).json(tt.path, tt.body, "")
			if r.status != http.StatusServiceUnavailable || m["error"] != "busy" || !strings.Contains(m["message"].(string), tt.message) ||
				r.header.Get("Retry-After") != "60" {
				t.Fatalf("%d %v, Retry-After %q", r.status, m, r.header.Get("Retry-After"))
			}
		})
	}
	if err := mem.CreateAuthRequest(context.Background(), &store.AuthRequest{ID: "r", ExpiresAt: h.now.Add(time.Minute)}); err != nil {
		t.Fatalf("an authorization request while ceremonies are full: %v", err)
	}
	// Once the flood's ceremonies expire, logins begin again.
	h.now = h.now.Add(passkey.DefaultLifetime)
	if r, m := b.json("/passkey/login/begin", map[string]string{"attempt": "a"}, ""); r.status != 200 {
		t.Fatalf("begin after expiry: %d %v", r.status, m)
	}
}

func TestRecoveryCodes(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	e := h.browser("en").enrol(newDevice(false), "a", "fnr")

	b := h.browser("en")
	page := b.get("/passkey/recover?attempt=r1")
	if page.status != 200 {
		t.Fatalf("recover page: %d", page.status)
	}
	csrf := field(t, page.body, "csrf")
	typed := strings.ToLower(strings.ReplaceAll(e.codes[0], "-", " "))
	r := b.form("/passkey/recover", url.Values{"attempt": {"r1"}, "csrf": {csrf}, "code": {typed}})
	if r.status != http.StatusSeeOther || r.location != "/resume?attempt=r1" {
		t.Fatalf("recovery: %d %q", r.status, r.location)
	}
	res := h.fin.last(t)
	if res.Result.PersonID != e.person || res.Result.Level != assurance.Low || !slices.Equal(res.Result.AMR, []string{"otp"}) || res.Result.Method != "recovery-code" {
		t.Fatalf("recovery result = %+v", res)
	}

	// The code works only once.
	r = b.form("/passkey/recover", url.Values{"attempt": {"r2"}, "csrf": {csrf}, "code": {e.codes[0]}})
	if r.status != 400 || !strings.Contains(r.body, "That code did not work") ||
		!strings.Contains(r.body, `aria-describedby="code-hint code-error"`) || !strings.Contains(r.body, `aria-invalid="true"`) {
		t.Fatalf("reused code: %d %s", r.status, r.body)
	}
	if !hasEvent(h.auditEvents(t), "authentication", store.ResultFailure, "invalid_recovery_code") {
		t.Fatal("no audit event for the reused code")
	}

	// Without the form token nothing happens.
	nocsrf := h.browser("en")
	if r := nocsrf.form("/passkey/recover", url.Values{"attempt": {"r3"}, "code": {e.codes[1]}}); r.status != http.StatusForbidden {
		t.Fatalf("no csrf: %d", r.status)
	}
	if r := b.form("/passkey/recover", url.Values{"attempt": {"r3"}, "csrf": {"wrong"}, "code": {e.codes[1]}}); r.status != http.StatusForbidden {
		t.Fatalf("wrong csrf: %d", r.status)
	}

	// MaxRecoveryTries per attempt, then even a good code is refused.
	for i := range passkeyidp.MaxRecoveryTries {
		if r := b.form("/passkey/recover", url.Values{"attempt": {"r4"}, "csrf": {csrf}, "code": {fmt.Sprintf("AAAA-BBBB-CCCC-%04d", i)}}); r.status != 400 {
			t.Fatalf("try %d: %d", i, r.status)
		}
	}
	r = b.form("/passkey/recover", url.Values{"attempt": {"r4"}, "csrf": {csrf}, "code": {e.codes[1]}})
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "Too many tries") {
		t.Fatalf("after the limit: %d", r.status)
	}
	if !hasEvent(h.auditEvents(t), "authentication", store.ResultFailure, "rate_limited") {
		t.Fatal("no audit event for the limit")
	}
	// The code was not spent, and works in another attempt.
	if r := b.form("/passkey/recover", url.Values{"attempt": {"r5"}, "csrf": {csrf}, "code": {e.codes[1]}}); r.status != http.StatusSeeOther {
		t.Fatalf("second code: %d", r.status)
	}
	if left, _ := h.db.CountRecoveryCodes(ctx, e.person); left != passkeyidp.RecoveryCodeCount-2 {
		t.Fatalf("%d codes left", left)
	}
	// A malformed code is explained.
	if r := b.form("/passkey/recover", url.Values{"attempt": {"r6"}, "csrf": {csrf}, "code": {"ABC"}}); r.status != 400 || !strings.Contains(r.body, "You typed 3 of the 16 letters and numbers") {
		t.Fatalf("malformed code: %d", r.status)
	}
}

// countingLimits counts the writes to the recovery tries' store.
type countingLimits struct {
	store.ReplayCache
	n atomic.Int64
}

func (c *countingLimits) Remember(ctx context.Context, key string, expiresAt, now time.Time) error {
	c.n.Add(1)
	return c.ReplayCache.Remember(ctx, key, expiresAt, now)
}

// Loading the account recovery form, which anyone can do as often as
// they like without logging in, writes nothing to the shared store: a
// flood of page loads neither grows it nor takes its writes from
// logins. The browser is known by a signed mark in a cookie instead.
func TestRecoveryFormWritesNothing(t *testing.T) {
	h := newHarness(t, true)
	limits := &countingLimits{ReplayCache: h.db}
	h.p.Limits = limits
	for i := range 20 {
		if r := h.browser("en").get("/passkey/recover?attempt="); r.status != http.StatusOK {
			t.Fatalf("load %d: %d", i, r.status)
		}
	}
	b := h.browser("en")
	for range 3 {
		b.get("/passkey/recover?attempt=")
	}
	if n := limits.n.Load(); n != 0 {
		t.Fatalf("%d writes to the shared store for loading the recovery form", n)
	}
}

// The mark of a browser given the account recovery form is good only
// for that browser's form cookie, under the provider's key, and for two
// hours: copied beside another form cookie, made under another key, or
// kept past its time, it is no mark, and the form comes back without
// a code being checked.
func TestRecoveryBrowserMarkIsBound(t *testing.T) {
	h := newHarness(t, true)
	e := h.browser("en").enrol(newDevice(false), "", "fnr")
	origin, _ := url.Parse(h.origin)
	cookie := func(b *browser, name string) *http.Cookie {
		for _, c := range b.c.Jar.Cookies(origin) {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("no cookie %s", name)
		return nil
	}
	refused := func(b *browser, csrf, what string) {
		t.Helper()
		r := b.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {csrf}, "code": {e.codes[0]}})
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, "This form had expired") {
			t.Fatalf("%s: %d %q", what, r.status, r.location)
		}
	}

	given := h.browser("en")
	given.get("/passkey/recover?attempt=")
	mark := cookie(given, "varde_recover")

	// Another browser's form cookie with the given browser's mark.
	other := h.browser("en")
	csrf := field(t, other.get("/passkey/recover?attempt=r1").body, "csrf") // a form cookie, unmarked
	other.c.Jar.SetCookies(origin, []*http.Cookie{{Name: "varde_recover", Value: mark.Value, Path: "/"}})
	refused(other, csrf, "a mark copied beside another form cookie")

	// A mark made under another key.
	forged := h.browser("en")
	fcsrf := field(t, forged.get("/passkey/recover?attempt=").body, "csrf")
	key := h.p.BrowserKey
	h.p.BrowserKey = bytes.Repeat([]byte{8}, passkeyidp.MinBrowserKeySize)
	refused(forged, fcsrf, "a mark made under another key")
	h.p.BrowserKey = key

	// A mark made by a node whose clock is a minute ahead is good.
	ahead := h.browser("en")
	h.now = h.now.Add(time.Minute)
	acsrf := field(t, ahead.get("/passkey/recover?attempt=").body, "csrf")
	h.now = h.now.Add(-time.Minute)
	if r := ahead.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {acsrf}, "code": {e.codes[1]}}); r.status != http.StatusSeeOther || r.location != "/account" {
		t.Fatalf("a mark made by a clock a minute ahead: %d %q", r.status, r.location)
	}

	// A mark past its two hours; the form that came back marks the
	// browser anew, and the code works.
	late := h.browser("en")
	lcsrf := field(t, late.get("/passkey/recover?attempt=").body, "csrf")
	h.now = h.now.Add(2 * time.Hour)
	refused(late, lcsrf, "a mark past its time")
	if r := late.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {lcsrf}, "code": {e.codes[0]}}); r.status != http.StatusSeeOther || r.location != "/account" {
		t.Fatalf("after the form came back: %d %q", r.status, r.location)
	}
	if left, _ := h.db.CountRecoveryCodes(context.Background(), e.person); left != passkeyidp.RecoveryCodeCount-2 {
		t.Fatalf("%d codes left, want two used", left)
	}
}

// Tries are counted only against a login the broker holds: a made-up or
// expired attempt would otherwise get fresh ones every time.
func TestRecoveryNeedsAnAttemptTheBrokerHolds(t *testing.T) {
	h := newHarness(t, true)
	e := h.browser("en").enrol(newDevice(false), "a", "fnr")
	limits := &countingLimits{ReplayCache: h.db}
	h.p.Limits = limits

	b := h.browser("en")
	csrf := field(t, b.get("/passkey/recover?attempt=r1").body, "csrf")
	for i := range 2 * passkeyidp.MaxRecoveryTries {
		r := b.form("/passkey/recover", url.Values{"attempt": {fmt.Sprintf("unknown-%d", i)}, "csrf": {csrf}, "code": {e.codes[0]}})
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, "We could not find this login") {
			t.Fatalf("unknown attempt %d: %d", i, r.status)
		}
	}
	if n := limits.n.Load(); n != 0 {
		t.Fatalf("%d tries counted for unknown attempts", n)
	}
	if left, _ := h.db.CountRecoveryCodes(context.Background(), e.person); left != passkeyidp.RecoveryCodeCount {
		t.Fatalf("%d codes left: a code was spent on an unknown attempt", left)
	}
	if r := b.form("/passkey/recover", url.Values{"attempt": {"r1"}, "csrf": {csrf}, "code": {e.codes[0]}}); r.status != http.StatusSeeOther {
		t.Fatalf("the code in a login the broker holds: %d", r.status)
	}
}

// A login or browser at the limit writes nothing more to the shared
// store, however often it tries.
func TestRecoveryAtTheLimitWritesNothing(t *testing.T) {
	h := newHarness(t, true)
	e := h.browser("en").enrol(newDevice(false), "a", "fnr")
	limits := &countingLimits{ReplayCache: h.db}
	h.p.Limits = limits

	b := h.browser("en")
	csrf := field(t, b.get("/passkey/recover?attempt=").body, "csrf")
	for _, attempt := range []string{"r1", ""} {
		for i := range passkeyidp.MaxRecoveryTries {
			if r := b.form("/passkey/recover", url.Values{"attempt": {attempt}, "csrf": {csrf}, "code": {fmt.Sprintf("AAAA-BBBB-CCCC-%04d", i)}}); r.status != 400 {
				t.Fatalf("attempt %q, try %d: %d", attempt, i, r.status)
			}
		}
		before := limits.n.Load()
		for range 3 {
			if r := b.form("/passkey/recover", url.Values{"attempt": {attempt}, "csrf": {csrf}, "code": {e.codes[0]}}); r.status != http.StatusTooManyRequests {
				t.Fatalf("attempt %q after the limit: %d", attempt, r.status)
			}
		}
		if n := limits.n.Load() - before; n != 0 {
			t.Fatalf("attempt %q: %d writes to the limits after the limit", attempt, n)
		}
	}
}

// A relying party that needs more than a recovery code gives gets no
// code form: the code would be used up and the login refused. The page
// says so and offers the ways that can help, and the codes stay.
func TestRecoveryCodeIsNotSpentOnALoginThatNeedsMore(t *testing.T) {
	h := newHarness(t, true)
	e := h.browser("en").enrol(newDevice(false), "", "fnr")
	limits := &countingLimits{ReplayCache: h.db}
	h.p.Limits = limits
	finished := h.fin.count() // the enrolment's

	b := h.browser("en")
	page := b.get("/passkey/recover?attempt=high-1")
	if page.status != http.StatusOK || strings.Contains(page.body, `name="code"`) ||
		!strings.Contains(page.body, "needs a more secure login than a recovery code gives") ||
		!strings.Contains(page.body, `href="/login?req=high-1"`) || !strings.Contains(page.body, `href="/passkey/recover?attempt="`) {
		t.Fatalf("recover page for a login that needs more: %d\n%s", page.status, page.body)
	}
	// Its title and heading say what the page is about, not that it
	// logs in with a code.
	if !strings.Contains(page.body, "<title>A recovery code is not enough here – Varde</title>") ||
		!strings.Contains(page.body, "<h1>A recovery code is not enough here</h1>") {
		t.Errorf("recover page for a login that needs more: title or heading offers a login with a code:\n%s", page.body)
	}
	// A form posted anyway (an old tab, or by hand) spends nothing.
	csrf := field(t, b.get("/passkey/recover?attempt=").body, "csrf")
	r := b.form("/passkey/recover", url.Values{"attempt": {"high-1"}, "csrf": {csrf}, "code": {e.codes[0]}})
	if r.status != http.StatusOK || !strings.Contains(r.body, "Your codes are still there") {
		t.Fatalf("code posted for a login that needs more: %d\n%s", r.status, r.body)
	}
	if left, _ := h.db.CountRecoveryCodes(context.Background(), e.person); left != passkeyidp.RecoveryCodeCount || limits.n.Load() != 0 || h.fin.count() != finished {
		t.Fatalf("%d codes left, %d tries counted, %d logins finished; want all codes, none", left, limits.n.Load(), h.fin.count()-finished)
	}
	// The same code gets the person into their account.
	if r := b.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {csrf}, "code": {e.codes[0]}}); r.status != http.StatusSeeOther || r.location != "/account" {
		t.Fatalf("the code for the account: %d %q", r.status, r.location)
	}
	// A passkey added there logs in no higher than the code did, so it
	// does not get the person into the service either, and the page
	// must not promise that it will.
	acsrf := attr(t, b.get("/account").body, "data-csrf")
	r, begun := b.json("/account/passkeys/begin", map[string]string{"name": "New"}, acsrf)
	if r.status != http.StatusOK {
		t.Fatalf("add begin: %d %v", r.status, begun)
	}
	d := newDevice(false)
	id, body := h.create(t, d, begun)
	if r, m := b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, acsrf); r.status != http.StatusOK {
		t.Fatalf("add finish: %d %v", r.status, m)
	}
	if r, m := h.browser("en").login(d, h.rp, "a1"); r.status != http.StatusOK {
		t.Fatalf("login with the added passkey: %d %v", r.status, m)
	}
	req := httptest.NewRequest("GET", "/", nil)
	if ok, _ := h.fin.Accepts(req, "high-1", passkeyidp.ID, h.fin.last(t).Result.Level); ok {
		t.Fatalf("the added passkey, at %v, would be taken for the login that needs more", h.fin.last(t).Result.Level)
	}
	page = b.get("/passkey/recover?attempt=high-1")
	if strings.Contains(page.body, "go back to the service and log in with it") ||
		!strings.Contains(page.body, "for this service you will still need another way to log in") {
		t.Fatalf("recover page promises the added passkey gets the person into the service:\n%s", page.body)
	}
}

// Over HTTPS the form cookie is a __Host- cookie, which a sibling
// subdomain cannot plant: with Path=/, Secure and no Domain.
func TestFormCookieIsAHostCookieOverHTTPS(t *testing.T) {
	h := newHarness(t, true)
	h.p.Sessions.Secure = true
	page := h.browser("en").get("/passkey/recover?attempt=r1")
	var set string
	for _, line := range page.header.Values("Set-Cookie") {
		if strings.Contains(line, "varde_form=") {
			set = line
		}
	}
	c, err := http.ParseSetCookie(set)
	if err != nil || c.Name != "__Host-varde_form" || c.Path != "/" || !c.Secure || c.Domain != "" || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("form cookie %q (%v), want a __Host- cookie", set, err)
	}
	// So is the mark of a browser given the account recovery form.
	page = h.browser("en").get("/passkey/recover?attempt=")
	set = ""
	for _, line := range page.header.Values("Set-Cookie") {
		if strings.Contains(line, "varde_recover=") {
			set = line
		}
	}
	c, err = http.ParseSetCookie(set)
	if err != nil || c.Name != "__Host-varde_recover" || c.Path != "/" || !c.Secure || !c.HttpOnly || c.Domain != "" ||
		c.SameSite != http.SameSiteStrictMode || c.MaxAge != 7200 {
		t.Fatalf("recovery browser mark %q (%v), want a __Host- cookie for two hours", set, err)
	}
}

// A code mistyped so that it cannot be one takes no try.
func TestMalformedRecoveryCodeTakesNoTry(t *testing.T) {
	h := newHarness(t, true)
	limits := &countingLimits{ReplayCache: h.db}
	h.p.Limits = limits
	b := h.browser("en")
	csrf := field(t, b.get("/passkey/recover?attempt=r1").body, "csrf")
	for i := range 2 * passkeyidp.MaxRecoveryTries {
		r := b.form("/passkey/recover", url.Values{"attempt": {"r1"}, "csrf": {csrf}, "code": {fmt.Sprint("ABC-", i)}})
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, "of the 16 letters and numbers") {
			t.Fatalf("malformed code %d: %d", i, r.status)
		}
	}
	if n := limits.n.Load(); n != 0 {
		t.Fatalf("%d tries counted for malformed codes", n)
	}
}

// An account login's tries are counted per browser, never per address:
// every browser here comes from 127.0.0.1, as everyone's would from a
// TLS proxy, and one browser's wrong codes must not lock out another.
func TestRecoveryTriesAreCountedPerBrowser(t *testing.T) {
	h := newHarness(t, true)
	e := h.browser("en").enrol(newDevice(false), "", "fnr")

	guesser := h.browser("en")
	csrf := field(t, guesser.get("/passkey/recover?attempt=").body, "csrf")
	for i := range passkeyidp.MaxRecoveryTries {
		if r := guesser.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {csrf}, "code": {fmt.Sprintf("AAAA-BBBB-CCCC-%04d", i)}}); r.status != 400 {
			t.Fatalf("try %d: %d", i, r.status)
		}
	}
	// The page says what is true of an account login: there is no
	// service to go back to, and starting again in this browser meets
	// the same limit until the hour is over.
	r := guesser.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {csrf}, "code": {e.codes[0]}})
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "cannot try more recovery codes for an hour") ||
		strings.Contains(r.body, "service you came from") || !strings.Contains(r.body, `href="/login"`) {
		t.Fatalf("the guesser after the limit: %d\n%s", r.status, r.body)
	}
	if got := r.header.Get("Retry-After"); got != "3600" {
		t.Errorf("Retry-After %q at the limit, want 3600, the hour the page names", got)
	}
	h.now = h.now.Add(time.Hour)
	if r := guesser.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {csrf}, "code": {e.codes[1]}}); r.status != http.StatusSeeOther || r.location != "/account" {
		t.Fatalf("the same browser an hour later: %d %q", r.status, r.location)
	}

	owner := h.browser("en")
	ocsrf := field(t, owner.get("/passkey/recover?attempt=").body, "csrf")
	if r := owner.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {ocsrf}, "code": {e.codes[0]}}); r.status != http.StatusSeeOther || r.location != "/account" {
		t.Fatalf("another browser's good code: %d %q", r.status, r.location)
	}
}

// A guesser at the limit who makes up a new form cookie, and posts the
// form with it, gets no fresh tries: only a browser that was given the
// recovery form has tries, and the code is not checked, nor spent.
func TestRecoveryTriesNeedABrowserGivenTheForm(t *testing.T) {
	h := newHarness(t, true)
	e := h.browser("en").enrol(newDevice(false), "", "fnr")

	guesser := h.browser("en")
	csrf := field(t, guesser.get("/passkey/recover?attempt=").body, "csrf")
	for i := range passkeyidp.MaxRecoveryTries {
		if r := guesser.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {csrf}, "code": {fmt.Sprintf("AAAA-BBBB-CCCC-%04d", i)}}); r.status != 400 {
			t.Fatalf("try %d: %d", i, r.status)
		}
	}
	made := strings.Repeat("A", 43)
	origin, _ := url.Parse(h.origin)
	guesser.c.Jar.SetCookies(origin, []*http.Cookie{{Name: "varde_form", Value: made, Path: "/"}})
	r := guesser.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {made}, "code": {e.codes[0]}})
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "This form had expired") {
		t.Fatalf("a made-up form cookie: %d %q\n%s", r.status, r.location, r.body)
	}
	// The code, not checked, comes back in its field (WCAG 3.3.7).
	if !strings.Contains(r.body, `value="`+e.codes[0]+`"`) {
		t.Errorf("the form that came back does not hold the code sent:\n%s", r.body)
	}
	if !hasEvent(h.auditEvents(t), "authentication", store.ResultFailure, "unknown_browser") {
		t.Fatal("no audit event for the made-up form cookie")
	}
	if left, _ := h.db.CountRecoveryCodes(context.Background(), e.person); left != passkeyidp.RecoveryCodeCount {
		t.Fatalf("%d codes left: a code was checked for a made-up form cookie", left)
	}
	// The form that came back has made the browser known: the code
	// works now.
	if r := guesser.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {made}, "code": {e.codes[0]}}); r.status != http.StatusSeeOther || r.location != "/account" {
		t.Fatalf("after the form came back: %d %q", r.status, r.location)
	}
}

func TestAccount(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()

	// Without a session the account page sends the person to log in.
	if r := h.browser("en").get("/account"); r.status != http.StatusSeeOther || r.location != "/login" {
		t.Fatalf("account without session: %d %q", r.status, r.location)
	}

	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	if e.next != "/account" {
		t.Fatalf("account enrolment next = %q", e.next)
	}
	page := b.get("/account")
	if page.status != 200 || !strings.Contains(page.body, "Kari Nordmann") || !strings.Contains(page.body, e.number[:6]+"•••••") ||
		strings.Contains(page.body, e.number) || !strings.Contains(page.body, "You have 10 unused recovery codes") {
		t.Fatalf("account page: %d\n%s", page.status, page.body)
	}
	csrf := attr(t, page.body, "data-csrf")
	// A full node's 503 "busy" is explained here too (ADR 10).
	if !strings.Contains(page.body, `data-msg-busy="Too many people`) {
		t.Error("the add-passkey form has no busy message")
	}

	// Add a passkey: the JSON endpoints need the token.
	if r, m := b.json("/account/passkeys/begin", map[string]string{"name": "Laptop"}, ""); r.status != 403 || m["error"] != "csrf" {
		t.Fatalf("begin without csrf: %d %v", r.status, m)
	}
	if r, m := h.browser("en").json("/account/passkeys/begin", map[string]string{}, csrf); r.status != 401 || m["error"] != "session" {
		t.Fatalf("begin without session: %d %v", r.status, m)
	}
	// A response too large uses up its ceremony, as any other does.
	r, begun := b.json("/account/passkeys/begin", map[string]string{"name": "Laptop"}, csrf)
	if r.status != 200 {
		t.Fatalf("add begin: %d %v", r.status, begun)
	}
	id, body := h.create(t, newDevice(true), begun)
	big := append([]byte(`{"id":"`), bytes.Repeat([]byte("A"), passkey.MaxResponseSize)...)
	if r, m := b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), big, csrf); r.status != 400 || m["error"] != "bad_input" {
		t.Fatalf("add finish oversize: %d %v", r.status, m)
	}
	if r, m := b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, csrf); r.status != 400 || m["error"] != "replay" {
		t.Fatalf("add finish after an oversize one: %d %v", r.status, m)
	}

	r, begun = b.json("/account/passkeys/begin", map[string]string{"name": "Laptop"}, csrf)
	if r.status != 200 {
		t.Fatalf("add begin: %d %v", r.status, begun)
	}
	laptop := newDevice(true)
	id, body = h.create(t, laptop, begun)
	r, m := b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, csrf)
	added, _ := m["redirect"].(string)
	if r.status != 200 || !strings.HasPrefix(added, "/account?n=") {
		t.Fatalf("add finish: %d %v", r.status, m)
	}
	keys, _ := h.db.ListPasskeys(ctx, e.person)
	if len(keys) != 2 || !slices.ContainsFunc(keys, func(k *store.Passkey) bool { return k.Name == "Laptop" && k.BackupEligible }) {
		t.Fatalf("passkeys after add: %d", len(keys))
	}
	page = b.get(added)
	if !strings.Contains(page.body, "The passkey was added.") || !strings.Contains(page.body, "Laptop") || !strings.Contains(page.body, "Can be synced") {
		t.Fatalf("account after add:\n%s", page.body)
	}
	if !hasEvent(h.auditEvents(t), "passkey_added", store.ResultSuccess, "") {
		t.Fatal("no audit event for the added passkey")
	}

	// Remove one: the form needs the session's token.
	cred := regexp.MustCompile(`action="/account/passkeys/remove">\s*<input type="hidden" name="credential" value="([^"]+)"`).FindAllStringSubmatch(page.body, -1)
	if len(cred) != 2 {
		t.Fatalf("%d remove forms", len(cred))
	}
	first := cred[0][1]
	if r := b.form("/account/passkeys/remove", url.Values{"confirm": {"yes"}, "credential": {first}}); r.status != http.StatusForbidden {
		t.Fatalf("remove without csrf: %d", r.status)
	}
	if r := b.form("/account/passkeys/remove", url.Values{"confirm": {"yes"}, "credential": {first}, "csrf": {csrf[:len(csrf)-2] + "xx"}}); r.status != http.StatusForbidden {
		t.Fatalf("remove with wrong csrf: %d", r.status)
	}
	other := h.browser("en")
	other.enrol(newDevice(false), "", "fnr")
	if r := other.form("/account/passkeys/remove", url.Values{"confirm": {"yes"}, "credential": {first}, "csrf": {csrf}}); r.status != http.StatusForbidden {
		t.Fatalf("remove with another session's csrf: %d", r.status)
	}
	if r := b.form("/account/passkeys/remove", url.Values{"confirm": {"yes"}, "credential": {first}, "csrf": {csrf}}); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/account?n=") {
		t.Fatalf("remove: %d %q", r.status, r.location)
	}
	if keys, _ := h.db.ListPasskeys(ctx, e.person); len(keys) != 1 {
		t.Fatalf("%d passkeys after remove", len(keys))
	}
	if !hasEvent(h.auditEvents(t), "passkey_removed", store.ResultSuccess, "") {
		t.Fatal("no audit event for the removed passkey")
	}
	// The same form again (a second click, another tab) finds the
	// passkey gone and says so on the account page, not "page not found".
	if r := b.form("/account/passkeys/remove", url.Values{"confirm": {"yes"}, "credential": {first}, "csrf": {csrf}}); r.status != http.StatusNotFound ||
		!strings.Contains(r.body, "That passkey was already removed") || !strings.Contains(r.body, `id="passkeys"`) {
		t.Fatalf("remove again: %d\n%s", r.status, r.body)
	}

	// The last passkey stays while there are no recovery codes.
	if err := h.db.ReplaceRecoveryCodes(ctx, e.person, nil, h.now); err != nil {
		t.Fatal(err)
	}
	last := cred[1][1]
	r = b.form("/account/passkeys/remove", url.Values{"confirm": {"yes"}, "credential": {last}, "csrf": {csrf}})
	if r.status != http.StatusConflict || !strings.Contains(r.body, "You cannot remove your only passkey") {
		t.Fatalf("remove last: %d", r.status)
	}
	if keys, _ := h.db.ListPasskeys(ctx, e.person); len(keys) != 1 {
		t.Fatal("last passkey removed")
	}

	// New recovery codes, shown once; then the last passkey may go.
	if r := b.form("/account/recovery-codes", url.Values{"confirm": {"yes"}}); r.status != http.StatusForbidden {
		t.Fatalf("new codes without csrf: %d", r.status)
	}
	// The codes are shown by a page the form redirects to
	// (Post/Redirect/Get), and only to the session that made them.
	r = b.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/account/recovery-codes?") || !strings.Contains(r.location, "t=") || len(codesIn(r.body)) != 0 {
		t.Fatalf("new codes: %d %q", r.status, r.location)
	}
	shown := r.location
	// Another session, or none, finds nothing there, and leaves the codes
	// to be shown to the session that made them.
	if r := other.get(shown); r.status != http.StatusGone || len(codesIn(r.body)) != 0 {
		t.Fatalf("new codes shown to another session: %d", r.status)
	}
	if r := h.browser("en").get(shown); r.status != http.StatusSeeOther || r.location != "/login" {
		t.Fatalf("new codes page without a session: %d %q", r.status, r.location)
	}
	r = b.get(shown)
	codes := codesIn(r.body)
	if r.status != 200 || len(codes) != passkeyidp.RecoveryCodeCount || !strings.Contains(r.header.Get("Cache-Control"), "no-store") ||
		strings.Contains(r.body, `hreflang="nb"`) {
		t.Fatalf("new codes page: %d %d\n%s", r.status, len(codes), r.body)
	}
	// A reload shows them no more and replaces nothing: the codes just
	// shown are the ones that work (the first logs in below).
	if r := b.get(shown); r.status != http.StatusGone || len(codesIn(r.body)) != 0 || !strings.Contains(r.body, "These codes can no longer be shown") {
		t.Fatalf("new codes page reloaded: %d\n%s", r.status, r.body)
	}
	if n, _ := h.db.CountRecoveryCodes(ctx, e.person); n != passkeyidp.RecoveryCodeCount {
		t.Fatalf("%d recovery codes after the page was reloaded", n)
	}
	if got := changeMethods(h.auditEvents(t)); len(got) != 1 {
		t.Fatalf("new codes audited %d times, want once", len(got))
	}
	if r := b.form("/account/passkeys/remove", url.Values{"confirm": {"yes"}, "credential": {last}, "csrf": {csrf}}); r.status != http.StatusSeeOther {
		t.Fatalf("remove last with codes: %d", r.status)
	}

	// The old codes are gone; a new one logs in to the account, and the
	// account page suggests adding a passkey.
	rb := h.browser("en")
	rcsrf := field(t, rb.get("/passkey/recover?attempt=").body, "csrf")
	if r := rb.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {rcsrf}, "code": {e.codes[3]}}); r.status != 400 {
		t.Fatalf("old code after regeneration: %d", r.status)
	}
	if r := rb.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {rcsrf}, "code": {codes[0]}}); r.status != http.StatusSeeOther || r.location != "/account" {
		t.Fatalf("new code: %d %q", r.status, r.location)
	}
	page = rb.get("/account")
	if !strings.Contains(page.body, "You logged in with a recovery code") || !strings.Contains(page.body, "You have no passkeys") {
		t.Fatalf("account after recovery:\n%s", page.body)
	}
}

// failingTickets is the real store that cannot store the tickets that
// show new recovery codes, as when the store refuses a write.
type failingTickets struct{ store.Challenges }

func (f failingTickets) PutChallenge(ctx context.Context, id string, data []byte, expiresAt time.Time) error {
	if strings.HasPrefix(id, "passkeyidp:codes:") {
		return errors.New("disk full")
	}
	return f.Challenges.PutChallenge(ctx, id, data, expiresAt)
}

// New recovery codes that cannot be shown are not stored: the person is
// told it failed and keeps the codes they have.
func TestNewCodesNotShownAreNotStored(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	h.p.Challenges = failingTickets{h.db}
	csrf := attr(t, b.get("/account").body, "data-csrf")
	if r := b.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}}); r.status != http.StatusInternalServerError {
		t.Fatalf("new codes with no ticket stored: %d %q", r.status, r.location)
	}
	if got := changeMethods(h.auditEvents(t)); len(got) != 0 {
		t.Fatalf("codes that were not replaced audited as replaced: %v", got)
	}
	rb := h.browser("en")
	rcsrf := field(t, rb.get("/passkey/recover?attempt=").body, "csrf")
	if r := rb.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {rcsrf}, "code": {e.codes[0]}}); r.status != http.StatusSeeOther || r.location != "/account" {
		t.Fatalf("a code the person was shown, after a failed replacement: %d %q", r.status, r.location)
	}
}

// New recovery codes asked for again and again in one session, as by
// someone holding a stolen session, keep one ticket for that session:
// they neither fill the flow state everyone's logins share nor stop
// another person making theirs. Only the newest codes are shown; an
// older page's link shows nothing and leaves them to be shown.
func TestNewCodesAgainAndAgainKeepOneTicket(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	b.enrol(newDevice(false), "", "fnr")
	other := h.browser("en")
	other.enrol(newDevice(false), "", "fnr")
	h.p.Challenges = flowmem.New(flowmem.Options{MaxChallenges: 4, Now: func() time.Time { return h.now }})
	var shown []string
	for i := range 20 {
		csrf := attr(t, b.get("/account").body, "data-csrf")
		r := b.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}})
		if r.status != http.StatusSeeOther {
			t.Fatalf("new codes, time %d: %d", i+1, r.status)
		}
		shown = append(shown, r.location)
	}
	csrf := attr(t, other.get("/account").body, "data-csrf")
	r := other.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("another person's new codes: %d", r.status)
	}
	if page := other.get(r.location); page.status != http.StatusOK || len(codesIn(page.body)) != passkeyidp.RecoveryCodeCount {
		t.Fatalf("another person's new codes page: %d\n%s", page.status, page.body)
	}
	if page := b.get(shown[0]); page.status != http.StatusGone {
		t.Fatalf("the first of codes since replaced: %d", page.status)
	}
	if page := b.get(shown[len(shown)-1]); page.status != http.StatusOK || len(codesIn(page.body)) != passkeyidp.RecoveryCodeCount {
		t.Fatalf("the newest codes after an older page's link: %d\n%s", page.status, page.body)
	}
}

// When the flow state is full, new recovery codes are refused as busy:
// 503 with Retry-After, in the person's language, and nothing changes.
func TestNewCodesWhenFlowStateIsFull(t *testing.T) {
	for _, tt := range []struct{ lang, title string }{
		{"en", "It is very busy right now"},
		{"nb", "Det er svært travelt akkurat nå"},
		{"da", "Der er meget travlt lige nu"},
	} {
		t.Run(tt.lang, func(t *testing.T) {
			h := newHarness(t, true)
			b := h.browser(tt.lang)
			b.enrol(newDevice(false), "", "fnr")
			h.fillFlowState(t, 2, 0)
			csrf := attr(t, b.get("/account").body, "data-csrf")
			r := b.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}})
			if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "60" || !strings.Contains(r.body, tt.title) {
				t.Fatalf("new codes with the flow state full: %d, Retry-After %q\n%s", r.status, r.header.Get("Retry-After"), r.body)
			}
			if got := changeMethods(h.auditEvents(t)); len(got) != 0 {
				t.Fatalf("codes that were not replaced audited as replaced: %v", got)
			}
		})
	}
}

// fillFlowState gives the provider's tickets a flow state that holds
// max challenges of theirs and has room for free more.
func (h *harness) fillFlowState(t *testing.T, max, free int) *flowmem.Mem {
	t.Helper()
	mem := flowmem.New(flowmem.Options{MaxChallenges: max, Now: func() time.Time { return h.now }})
	for i := range max - free {
		if err := mem.PutChallenge(t.Context(), fmt.Sprintf("passkeyidp:other:%d", i), []byte("x"), h.now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	h.p.Challenges = mem
	return mem
}

// filledOnTake is a flow state that another request fills the moment a
// challenge is taken from it, taking the place that take made.
type filledOnTake struct {
	*flowmem.Mem
	expires time.Time
}

func (m filledOnTake) TakeChallenge(ctx context.Context, id string, now time.Time) ([]byte, error) {
	data, err := m.Mem.TakeChallenge(ctx, id, now)
	if err == nil {
		err = m.Mem.PutChallenge(ctx, "passkeyidp:other:"+id, []byte("x"), m.expires)
	}
	return data, err
}

// When an older page's link takes the newer codes' ticket and another
// request fills the flow state before it is put back, the link is
// answered busy, as new codes are then: 503 with Retry-After, not 500.
func TestCodesPageWhenFlowStateFillsBeforePutBack(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	b.enrol(newDevice(false), "", "fnr")
	mem := h.fillFlowState(t, 2, 1)
	csrf := attr(t, b.get("/account").body, "data-csrf")
	var links []string
	for range 2 {
		r := b.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}})
		if r.status != http.StatusSeeOther {
			t.Fatalf("new codes: %d\n%s", r.status, r.body)
		}
		links = append(links, r.location)
	}
	h.p.Challenges = filledOnTake{mem, h.now.Add(time.Hour)}
	r := b.get(links[0])
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "60" || !strings.Contains(r.body, "It is very busy right now") {
		t.Fatalf("an older page's link with the flow state filled before put-back: %d, Retry-After %q\n%s", r.status, r.header.Get("Retry-After"), r.body)
	}
}

// When the flow state fills while an enrolment finishes, so that the
// tickets of its Continue form or of its enrolled page cannot be
// stored, the finish is refused as busy: 503 "busy" with Retry-After,
// in the person's language, as a begin is, not 500.
func TestEnrolFinishWhenFlowStateIsFull(t *testing.T) {
	for _, tt := range []struct {
		name, lang, message string
		free                int
	}{
		{"continue", "en", "Too many people are logging in right now", 0},
		{"enrolled", "en", "Too many people are logging in right now", 1},
		{"continue", "nb", "Det er for mange som logger inn akkurat nå", 0},
		{"enrolled", "da", "Der er for mange der logger ind lige nu", 1},
	} {
		t.Run(tt.name+"/"+tt.lang, func(t *testing.T) {
			h := newHarness(t, true)
			b := h.browser(tt.lang)
			id, body := b.enrolCreate(newDevice(false), "x", "")
			mem := h.fillFlowState(t, 2, tt.free)
			r, m := b.json("/passkey/enrol/finish?ceremony="+url.QueryEscape(id), body, "")
			if msg, _ := m["message"].(string); r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "60" || m["error"] != "busy" || !strings.Contains(msg, tt.message) {
				t.Fatalf("enrol finish with the flow state full: %d, Retry-After %q, %v", r.status, r.header.Get("Retry-After"), m)
			}
			// A Continue ticket stored for a page never shown holds no
			// place in the flow state.
			if tt.free > 0 {
				if err := mem.PutChallenge(t.Context(), "passkeyidp:other:next", []byte("x"), h.now.Add(time.Minute)); err != nil {
					t.Fatalf("flow state after the refused finish: %v", err)
				}
			}
		})
	}
}

// sessionsDown is the real store that cannot read sessions, as when the
// database does not answer.
type sessionsDown struct{ store.Sessions }

func (sessionsDown) GetSession(context.Context, string, time.Time) (*store.Session, error) {
	return nil, errors.New("connection refused")
}

// A session store that cannot be read is an error on the account pages,
// not a request to log in again, which would meet the same failure.
func TestAccountStoreDown(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	b.enrol(newDevice(false), "", "fnr")
	csrf := attr(t, b.get("/account").body, "data-csrf")
	h.p.Sessions.Store = sessionsDown{h.db}
	if r := b.get("/account"); r.status != http.StatusInternalServerError {
		t.Fatalf("account page, store down: %d %q", r.status, r.location)
	}
	if r, m := b.json("/account/passkeys/begin", map[string]string{"name": "Phone"}, csrf); r.status != http.StatusInternalServerError || m["error"] != "internal" {
		t.Fatalf("add begin, store down: %d %v", r.status, m)
	}
}

// TestPagesInEveryLanguage: each page speaks the browser's language;
// a Danish browser sends a regional tag first (da-DK).
func TestPagesInEveryLanguage(t *testing.T) {
	h := newHarness(t, true)
	pages := []struct {
		path       string
		en, nb, da string
	}{
		{"/passkey/login?attempt=x", "Log in with your passkey", "Logg inn med passnøkkelen din", "Log ind med din adgangsnøgle"},
		{"/passkey/recover?attempt=x", "Log in with a recovery code", "Logg inn med en gjenopprettingskode", "Log ind med en genoprettelseskode"},
		{"/passkey/enrol?attempt=x", "Create a test person", "Lag en testperson", "Opret en testperson"},
	}
	for _, p := range pages {
		for _, l := range []struct{ accept, lang, want string }{
			{"en", "en", p.en}, {"nb", "nb", p.nb}, {"da-DK,da;q=0.9", "da", p.da},
		} {
			r := h.browser(l.accept).get(p.path)
			if r.status != 200 || !strings.Contains(r.body, `<html lang="`+l.lang+`">`) || !strings.Contains(r.body, l.want) {
				t.Errorf("%s in %s: %d, want %q", p.path, l.accept, r.status, l.want)
			}
			// Scripts only from files (CSP script-src 'self').
			if n, m := strings.Count(r.body, "<script"), strings.Count(r.body, `<script src="/static/`); n != m {
				t.Errorf("%s: inline script", p.path)
			}
		}
	}
	login := h.browser("en").get("/passkey/login?attempt=x").body
	for _, s := range []string{`/passkey/recover?attempt=x`, `/passkey/enrol?attempt=x`, `<noscript>`, `aria-live="polite"`, `data-attempt="x"`, `action="/passkey/cancel"`, `data-msg-busy="Too many people`} {
		if !strings.Contains(login, s) {
			t.Errorf("login page lacks %s", s)
		}
	}
	// An account login may have no passkey behind it: the page offers
	// the broker's choice of every way in. A relying party's login has
	// its own way back there (cancel).
	if strings.Contains(login, `href="/login"`) {
		t.Error("a relying party's login page links to the account login")
	}
	for lang, want := range map[string]string{"en": "Log in another way", "nb": "Logg inn på en annen måte", "da": "Log ind på en anden måde"} {
		if account := h.browser(lang).get("/passkey/login?attempt=").body; !strings.Contains(account, `<a href="/login">`+want+`</a>`) {
			t.Errorf("account login in %s lacks a link to every way in", lang)
		}
	}
}

// TestUnknownAttempt: the pages of a login the broker does not hold
// (made up, expired or finished) say so, instead of offering forms that
// can only fail.
func TestUnknownAttempt(t *testing.T) {
	h := newHarness(t, true)
	for _, path := range []string{"/passkey/login", "/passkey/recover", "/passkey/enrol"} {
		for lang, want := range map[string]string{
			"en": "We could not find this login",
			"nb": "Vi fant ikke denne innloggingen",
			"da": "Vi kunne ikke finde dette login",
		} {
			r := h.browser(lang).get(path + "?attempt=unknown-1")
			if r.status != http.StatusBadRequest || !strings.Contains(r.body, want) || strings.Contains(r.body, "<form") {
				t.Errorf("%s in %s: %d, want 400 saying %q and no form", path, lang, r.status, want)
			}
		}
	}
}

func TestEnrolmentOff(t *testing.T) {
	h := newHarness(t, false)
	b := h.browser("en")
	if r := b.get("/passkey/enrol?attempt=x"); r.status != 404 {
		t.Fatalf("enrol page: %d", r.status)
	}
	if r, _ := b.json("/passkey/enrol/begin", map[string]string{"given_name": "A", "family_name": "B"}, ""); r.status != 404 {
		t.Fatalf("enrol begin: %d", r.status)
	}
	if strings.Contains(b.get("/passkey/login?attempt=x").body, "/passkey/enrol") {
		t.Fatal("login page offers enrolment")
	}
}

func TestEnrolValidation(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	// A name that would not show as itself (identity.HiddenRune) is
	// refused as a passkey name holding one is, saying why.
	const chars = "turn text around"
	tests := []struct {
		name string
		req  map[string]string
		code string
		msg  string
	}{
		{"no name", map[string]string{"given_name": " ", "family_name": "B"}, "enrol_name", "Write a given name and a family name."},
		{"control character", map[string]string{"given_name": "A\x00", "family_name": "B"}, "enrol_name", chars},
		{"a right-to-left override", map[string]string{"given_name": "\u202eirak", "family_name": "B"}, "enrol_name", chars},
		{"an isolate", map[string]string{"given_name": "A", "family_name": "\u2067Nordmann\u2069"}, "enrol_name", chars},
		{"a line separator", map[string]string{"given_name": "Kari\u2028Ola", "family_name": "B"}, "enrol_name", chars},
		{"future birth", map[string]string{"given_name": "A", "family_name": "B", "birth_date": "2030-01-01"}, "enrol_birth", ""},
		{"bad birth", map[string]string{"given_name": "A", "family_name": "B", "birth_date": "17.05.1990"}, "enrol_birth", ""},
		{"bad kind", map[string]string{"given_name": "A", "family_name": "B", "kind": "hnr"}, "bad_request", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, m := b.json("/passkey/enrol/begin", tt.req, "")
			msg, _ := m["message"].(string)
			if r.status != 400 || m["error"] != tt.code || msg == "" || !strings.Contains(msg, tt.msg) {
				t.Fatalf("%d %v, want %s saying %q", r.status, m, tt.code, tt.msg)
			}
		})
	}
	// A given birth date is used.
	r, begun := b.json("/passkey/enrol/begin", map[string]string{"given_name": "A", "family_name": "B", "birth_date": "1990-05-17"}, "")
	if r.status != 200 {
		t.Fatalf("%d %v", r.status, begun)
	}
	id, body := h.create(t, newDevice(false), begun)
	if r, _ := b.json("/passkey/enrol/finish?ceremony="+id, body, ""); r.status != 200 {
		t.Fatalf("finish: %d", r.status)
	}
	if p, err := h.db.GetPersonByWebAuthnID(context.Background(), mustOptionsUser(t, begun)); err != nil || p.BirthDate != "1990-05-17" || p.Identifiers[0].Value[:6] != "178590" {
		t.Fatalf("person %+v, %v", p, err)
	}
}

func mustOptionsUser(t *testing.T, begun map[string]any) []byte {
	_, opts := options(t, begun)
	o, err := virtualwebauthn.ParseAttestationOptions(opts)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(o.UserID)
}

func TestStartAndCancel(t *testing.T) {
	h := newHarness(t, true)
	rec := httptest.NewRecorder()
	h.p.Start(rec, httptest.NewRequest("GET", "/login/start", nil), provider.Attempt{ID: "req-1", Locale: "nb"})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/passkey/login?attempt=req-1&lang=nb" {
		t.Fatalf("Start: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	info := h.p.Info()
	if info.ID != "passkey" || info.MaxLevel != assurance.High || info.Name["nb"] != "Passnøkkel" || info.Name["en"] != "Passkey" {
		t.Fatalf("Info = %+v", info)
	}

	b := h.browser("en")
	csrf := field(t, b.get("/passkey/login?attempt=req-1").body, "csrf")
	if r := b.form("/passkey/cancel", url.Values{"attempt": {"req-1"}}); r.status != http.StatusForbidden {
		t.Fatalf("cancel without csrf: %d", r.status)
	}
	r := b.form("/passkey/cancel", url.Values{"attempt": {"req-1"}, "csrf": {csrf}})
	if r.status != http.StatusSeeOther || r.location != "/login?err=cancelled&req=req-1" {
		t.Fatalf("cancel: %d %q", r.status, r.location)
	}
}

// TestFormTooLarge: a form over the body limit is answered 413 with a
// page saying it was too large, not refused as a forgery for the token
// the unread form seemed to lack.
func TestFormTooLarge(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	csrf := field(t, b.get("/passkey/login?attempt=req-1").body, "csrf")
	pad := strings.Repeat("a", 1<<20)
	for _, path := range []string{"/passkey/cancel", "/passkey/recover", "/passkey/enrolled/continue"} {
		r := b.form(path, url.Values{"attempt": {"req-1"}, "csrf": {csrf}, "pad": {pad}})
		if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(r.body, "What you sent was too large") {
			t.Errorf("%s: %d, want 413 saying the form was too large:\n%s", path, r.status, r.body)
		}
	}
}

// TestAccountChangesNeedStrongRecentLogin: one recovery code in the
// wrong hands, or a session left open, cannot take an account over. A
// recovery-code login may add a passkey, which then logs in no higher
// than the code did, but may neither remove passkeys nor replace the
// codes; a login older than ReauthAfter may change nothing; and a change
// logs the person out everywhere else.
func TestAccountChangesNeedStrongRecentLogin(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	owner := h.browser("en")
	phone := newDevice(false)
	e := owner.enrol(phone, "", "fnr")
	ownerLevel := h.fin.last(t).Result.Level
	if ownerLevel <= assurance.Low {
		t.Fatalf("the enrolled passkey logs in at %v; the test needs more than low", ownerLevel)
	}
	ocsrf := attr(t, owner.get("/account").body, "data-csrf")

	// Someone else logs in with one of the codes.
	thief := h.browser("en")
	rcsrf := field(t, thief.get("/passkey/recover?attempt=").body, "csrf")
	if r := thief.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {rcsrf}, "code": {e.codes[0]}}); r.status != http.StatusSeeOther {
		t.Fatalf("recovery login: %d", r.status)
	}
	page := thief.get("/account")
	if strings.Contains(page.body, `action="/account/passkeys/remove"`) || strings.Contains(page.body, `action="/account/recovery-codes`) ||
		!strings.Contains(page.body, "log in again with an eID") || !strings.Contains(page.body, `href="/login"`) {
		t.Fatalf("account page after a recovery login offers changes it may not make:\n%s", page.body)
	}
	tcsrf := attr(t, page.body, "data-csrf")
	keys, err := h.db.ListPasskeys(ctx, e.person)
	if err != nil || len(keys) != 1 {
		t.Fatalf("passkeys: %d, %v", len(keys), err)
	}
	ownersKey := base64.RawURLEncoding.EncodeToString(keys[0].CredentialID)
	if r := thief.form("/account/passkeys/remove", url.Values{"confirm": {"yes"}, "credential": {ownersKey}, "csrf": {tcsrf}}); r.status != http.StatusForbidden ||
		!strings.Contains(r.body, "A login with a recovery code, or with a passkey added after one, cannot make that change") {
		t.Fatalf("remove after a recovery login: %d", r.status)
	}
	if r := thief.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {tcsrf}}); r.status != http.StatusForbidden || len(codesIn(r.body)) != 0 {
		t.Fatalf("new codes after a recovery login: %d", r.status)
	}
	if keys, _ := h.db.ListPasskeys(ctx, e.person); len(keys) != 1 {
		t.Fatalf("%d passkeys after refused removal", len(keys))
	}
	if n, _ := h.db.CountRecoveryCodes(ctx, e.person); n != passkeyidp.RecoveryCodeCount-1 {
		t.Fatalf("%d recovery codes after refused replacement", n)
	}
	events := h.auditEvents(t)
	if !hasEvent(events, "passkey_removed", store.ResultFailure, "reauth") || !hasEvent(events, "recovery_codes_regenerated", store.ResultFailure, "reauth") {
		t.Fatal("refused changes not audited")
	}

	// Adding a passkey works, as it must for a person who lost theirs,
	// but it logs in no higher than the recovery code.
	r, begun := thief.json("/account/passkeys/begin", map[string]string{"name": "Mine"}, tcsrf)
	if r.status != 200 {
		t.Fatalf("add begin after a recovery login: %d %v", r.status, begun)
	}
	theirs := newDevice(false)
	id, body := h.create(t, theirs, begun)
	if r, m := thief.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, tcsrf); r.status != 200 {
		t.Fatalf("add finish after a recovery login: %d %v", r.status, m)
	}
	// It does not log the owner out: a recovery code in the wrong hands
	// must not.
	if r := owner.get("/account"); r.status != http.StatusOK {
		t.Fatalf("the owner's session after a passkey added with a recovery code: %d %q", r.status, r.location)
	}
	if r, m := h.browser("en").login(theirs, h.rp, "a1"); r.status != 200 {
		t.Fatalf("login with the added passkey: %d %v", r.status, m)
	}
	if got := h.fin.last(t).Result.Level; got != assurance.Low {
		t.Fatalf("a passkey added after a recovery login logs in at %v, want low", got)
	}
	if r, m := h.browser("en").login(phone, h.rp, "a2"); r.status != 200 || h.fin.last(t).Result.Level != ownerLevel {
		t.Fatalf("the owner's passkey: %d %v, level %v", r.status, m, h.fin.last(t).Result.Level)
	}
	keys, _ = h.db.ListPasskeys(ctx, e.person)
	var theirsID string
	for _, k := range keys {
		if k.Name == "Mine" {
			theirsID = base64.RawURLEncoding.EncodeToString(k.CredentialID)
		}
	}

	// The owner's login, left open past ReauthAfter, changes nothing.
	h.now = h.now.Add(passkeyidp.ReauthAfter + time.Minute)
	page = owner.get("/account")
	if strings.Contains(page.body, `data-ceremony="add"`) || strings.Contains(page.body, `action="/account/passkeys/remove"`) ||
		!strings.Contains(page.body, "must have logged in within the last 15 minutes") {
		t.Fatalf("account page of an old login offers changes:\n%s", page.body)
	}
	if r, m := owner.json("/account/passkeys/begin", map[string]string{"name": "x"}, ocsrf); r.status != http.StatusForbidden || m["error"] != "reauth" {
		t.Fatalf("add begin in an old login: %d %v", r.status, m)
	}
	if r := owner.form("/account/passkeys/remove", url.Values{"confirm": {"yes"}, "credential": {theirsID}, "csrf": {ocsrf}}); r.status != http.StatusForbidden ||
		!strings.Contains(r.body, "That change needs a new login first") {
		t.Fatalf("remove in an old login: %d", r.status)
	}

	// Logged in again, the owner removes the other passkey, which logs
	// out whoever held the recovery-code session.
	if r, m := owner.login(phone, h.rp, ""); r.status != 200 {
		t.Fatalf("login again: %d %v", r.status, m)
	}
	ocsrf = attr(t, owner.get("/account").body, "data-csrf")
	if r := owner.form("/account/passkeys/remove", url.Values{"confirm": {"yes"}, "credential": {theirsID}, "csrf": {ocsrf}}); r.status != http.StatusSeeOther {
		t.Fatalf("remove after logging in again: %d %s", r.status, r.body)
	}
	if r := thief.get("/account"); r.status != http.StatusSeeOther || r.location != "/login" {
		t.Fatalf("the other session after a removal: %d %q", r.status, r.location)
	}
	if r := owner.get("/account"); r.status != http.StatusOK {
		t.Fatalf("the owner's own session after a removal: %d", r.status)
	}
	if !hasEvent(h.auditEvents(t), "sessions_ended", store.ResultSuccess, "") {
		t.Fatal("ending the other sessions not audited")
	}
}

// fillPasskeys stores passkeys for person, enrolled with one, until it
// holds one fewer than MaxPasskeys.
func (h *harness) fillPasskeys(t *testing.T, person string) {
	t.Helper()
	for i := 1; i < passkeyidp.MaxPasskeys-1; i++ {
		pk := &store.Passkey{CredentialID: []byte(fmt.Sprintf("credential-%02d", i)), PersonID: person, PublicKey: []byte{1}, CreatedAt: h.now}
		if err := h.db.CreatePasskey(context.Background(), pk, 0, ""); err != nil {
			t.Fatal(err)
		}
	}
}

// A person holds at most MaxPasskeys passkeys: the next is refused when
// it would begin, saying why in the page's language.
func TestPasskeyCap(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	h.fillPasskeys(t, e.person)
	csrf := attr(t, b.get("/account").body, "data-csrf")
	// One below the cap: the last one may be added.
	r, begun := b.json("/account/passkeys/begin", map[string]string{"name": "Last"}, csrf)
	if r.status != http.StatusOK {
		t.Fatalf("add begin below the cap: %d %v", r.status, begun)
	}
	id, body := h.create(t, newDevice(false), begun)
	if r, m := b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, csrf); r.status != http.StatusOK {
		t.Fatalf("add finish below the cap: %d %v", r.status, m)
	}
	if keys, _ := h.db.ListPasskeys(ctx, e.person); len(keys) != passkeyidp.MaxPasskeys {
		t.Fatalf("%d passkeys, want %d", len(keys), passkeyidp.MaxPasskeys)
	}
	// The account page says so instead of offering a form that would be
	// refused.
	page := b.get("/account").body
	if !strings.Contains(page, `id="passkeys-full"`) || strings.Contains(page, `data-ceremony="add"`) {
		t.Fatalf("account page at the cap offers to add a passkey, or does not say why not:\n%s", page)
	}
	r, m := b.json("/account/passkeys/begin", map[string]string{"name": "One more"}, csrf)
	if r.status != http.StatusConflict || m["error"] != "passkey_limit" ||
		!strings.Contains(m["message"].(string), fmt.Sprintf("You already have %d passkeys", passkeyidp.MaxPasskeys)) {
		t.Fatalf("add begin at the cap: %d %v", r.status, m)
	}
	if !hasEvent(h.auditEvents(t), "passkey_added", store.ResultFailure, "passkey_limit") {
		t.Fatal("no audit event for the refusal")
	}
	for lang, want := range map[string]string{"nb": "passnøkler", "da": "adgangsnøgler"} {
		b.lang = lang
		if _, m := b.json("/account/passkeys/begin", map[string]string{}, csrf); !strings.Contains(m["message"].(string), fmt.Sprintf("%d %s", passkeyidp.MaxPasskeys, want)) {
			t.Fatalf("%s message: %v", lang, m)
		}
	}
}

// Two ceremonies begun one below the cap cannot both add a passkey: the
// cap holds where the passkey is stored, and the second is refused as
// passkey_limit.
func TestPasskeyCapAtFinish(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	h.fillPasskeys(t, e.person)
	csrf := attr(t, b.get("/account").body, "data-csrf")
	var ids []string
	var bodies [][]byte
	for _, name := range []string{"First", "Second"} {
		r, begun := b.json("/account/passkeys/begin", map[string]string{"name": name}, csrf)
		if r.status != http.StatusOK {
			t.Fatalf("add begin %s below the cap: %d %v", name, r.status, begun)
		}
		id, body := h.create(t, newDevice(false), begun)
		ids, bodies = append(ids, id), append(bodies, body)
	}
	if r, m := b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(ids[0]), bodies[0], csrf); r.status != http.StatusOK {
		t.Fatalf("first add finish: %d %v", r.status, m)
	}
	r, m := b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(ids[1]), bodies[1], csrf)
	if r.status != http.StatusConflict || m["error"] != "passkey_limit" ||
		!strings.Contains(m["message"].(string), fmt.Sprintf("You already have %d passkeys", passkeyidp.MaxPasskeys)) {
		t.Fatalf("second add finish past the cap: %d %v", r.status, m)
	}
	if keys, _ := h.db.ListPasskeys(ctx, e.person); len(keys) != passkeyidp.MaxPasskeys {
		t.Fatalf("%d passkeys, want %d", len(keys), passkeyidp.MaxPasskeys)
	}
	if !hasEvent(h.auditEvents(t), "passkey_added", store.ResultFailure, "passkey_limit") {
		t.Fatal("no audit event for the refusal")
	}
}

// A used or expired ceremony is explained in the words of what the
// person was doing: logging in, adding a passkey or enrolling.
func TestReplayMessageNamesTheCeremony(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	b.enrol(newDevice(false), "", "fnr")
	csrf := attr(t, b.get("/account").body, "data-csrf")
	tests := []struct {
		lang, path, csrf, want string
	}{
		{"en", "/passkey/login/finish", "", "This login has expired"},
		{"en", "/account/passkeys/finish", csrf, "This attempt to add a passkey has expired"},
		{"en", "/passkey/enrol/finish", "", "This attempt to create a test person has expired"},
		{"nb", "/passkey/login/finish", "", "Denne innloggingen er utløpt"},
		{"nb", "/account/passkeys/finish", csrf, "legge til en passnøkkel er utløpt"},
		{"nb", "/passkey/enrol/finish", "", "lage en testperson er utløpt"},
		{"da", "/passkey/login/finish", "", "Dette login er udløbet"},
		{"da", "/account/passkeys/finish", csrf, "tilføje en adgangsnøgle er udløbet"},
		{"da", "/passkey/enrol/finish", "", "oprette en testperson er udløbet"},
	}
	for _, tt := range tests {
		b.lang = tt.lang
		r, m := b.json(tt.path+"?ceremony=used", "{}", tt.csrf)
		if r.status != http.StatusBadRequest || m["error"] != "replay" || !strings.Contains(m["message"].(string), tt.want) {
			t.Errorf("%s %s: %d %v, want a message with %q", tt.lang, tt.path, r.status, m, tt.want)
		}
	}
}

// A response for another ceremony, of the other kind or answering
// another challenge, is told apart from one used or expired: its own
// code and words, and audited as such.
func TestWrongCeremony(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	d := newDevice(false)
	b.enrol(d, "a", "fnr")

	// A captured assertion posted under a fresh login ceremony.
	_, begun := b.json("/passkey/login/begin", map[string]string{"attempt": "a"}, "")
	_, body := h.get(t, h.rp, d, begun)
	_, fresh := b.json("/passkey/login/begin", map[string]string{"attempt": "a"}, "")
	r, m := b.json("/passkey/login/finish?ceremony="+url.QueryEscape(fresh["ceremony"].(string)), body, "")
	if r.status != http.StatusBadRequest || m["error"] != "wrong_ceremony" || !strings.Contains(m["message"].(string), "another login attempt") {
		t.Fatalf("another challenge: %d %v", r.status, m)
	}
	if !hasEvent(h.auditEvents(t), "authentication", store.ResultFailure, "wrong_ceremony") {
		t.Fatal("no audit event for the response to another ceremony")
	}

	// A login ceremony finished as a test person's enrolment, in Danish.
	b.lang = "da"
	_, begun = b.json("/passkey/login/begin", map[string]string{"attempt": "a"}, "")
	r, m = b.json("/passkey/enrol/finish?ceremony="+url.QueryEscape(begun["ceremony"].(string)), body, "")
	if r.status != http.StatusBadRequest || m["error"] != "wrong_ceremony" || !strings.Contains(m["message"].(string), "ikke oprettet en testperson") {
		t.Fatalf("login ceremony at the enrolment's finish: %d %v", r.status, m)
	}
}

// unknownFormat returns the attestation response body with its
// attestation format changed from "packed" to one no relying party knows,
// so that it parses but does not verify.
func unknownFormat(t *testing.T, body []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	resp := m["response"].(map[string]any)
	obj, err := base64.RawURLEncoding.DecodeString(resp["attestationObject"].(string))
	if err != nil {
		t.Fatal(err)
	}
	packed := []byte("\x63fmt\x66packed")
	if !bytes.Contains(obj, packed) {
		t.Fatal("attestation object without format packed")
	}
	resp["attestationObject"] = base64.RawURLEncoding.EncodeToString(bytes.Replace(obj, packed, []byte("\x63fmt\x66xacked"), 1))
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A registration that fails says what was not done (a passkey added, a
// test person created) and what to do, not what to do about a login: a
// recovery code cannot help there.
func TestRegistrationFailureMessagesNameTheCeremony(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	b.enrol(newDevice(false), "", "fnr")
	csrf := attr(t, b.get("/account").body, "data-csrf")
	evil := virtualwebauthn.RelyingParty{Name: "Varde", ID: "localhost", Origin: "https://evil.example"}
	type ceremony struct {
		path, csrf string
		begin      any
	}
	add := ceremony{"/account/passkeys", csrf, map[string]string{"name": "Laptop"}}
	enrol := ceremony{"/passkey/enrol", "", map[string]string{"attempt": "", "given_name": "Ola", "family_name": "Nordmann"}}
	tests := []struct {
		lang string
		c    ceremony
		code string
		want string
	}{
		{"en", add, "wrong_origin", "The passkey was not added"},
		{"en", add, "invalid", "so it was not added"},
		{"en", enrol, "wrong_origin", "No test person was created"},
		{"en", enrol, "invalid", "so no test person was created"},
		{"nb", add, "wrong_origin", "Passnøkkelen ble ikke lagt til"},
		{"nb", add, "invalid", "så den ble ikke lagt til"},
		{"nb", enrol, "wrong_origin", "Ingen testperson ble laget"},
		{"nb", enrol, "invalid", "så ingen testperson ble laget"},
		{"da", add, "wrong_origin", "Adgangsnøglen blev ikke tilføjet"},
		{"da", add, "invalid", "så den blev ikke tilføjet"},
		{"da", enrol, "wrong_origin", "Der blev ikke oprettet nogen testperson"},
		{"da", enrol, "invalid", "så der blev ikke oprettet nogen testperson"},
	}
	recovery := map[string]string{"en": "recovery code", "nb": "gjenopprettingskode", "da": "genoprettelseskode"}
	for _, tt := range tests {
		b.lang = tt.lang
		r, begun := b.json(tt.c.path+"/begin", tt.c.begin, tt.c.csrf)
		if r.status != http.StatusOK {
			t.Fatalf("%s begin: %d %v", tt.c.path, r.status, begun)
		}
		id, opts := options(t, begun)
		o, err := virtualwebauthn.ParseAttestationOptions(opts)
		if err != nil {
			t.Fatal(err)
		}
		d := newDevice(false)
		d.auth.Options.UserHandle = []byte(o.UserID)
		rp := h.rp
		if tt.code == "wrong_origin" {
			rp = evil
		}
		body := []byte(virtualwebauthn.CreateAttestationResponse(rp, d.auth, d.cred, *o))
		if tt.code == "invalid" {
			body = unknownFormat(t, body)
		}
		r, m := b.json(tt.c.path+"/finish?ceremony="+url.QueryEscape(id), body, tt.c.csrf)
		msg, _ := m["message"].(string)
		if r.status != http.StatusBadRequest || m["error"] != tt.code || !strings.Contains(msg, tt.want) || strings.Contains(msg, recovery[tt.lang]) {
			t.Errorf("%s %s %s: %d %v, want %s with %q and no word of a recovery code", tt.lang, tt.c.path, tt.code, r.status, m, tt.code, tt.want)
		}
	}
}

// failingPersons fails the next person look-up, as a database that is
// briefly unreachable does.
type failingPersons struct {
	store.Persons
	fail atomic.Bool
}

func (f *failingPersons) GetPerson(ctx context.Context, id string) (*store.Person, error) {
	if f.fail.Swap(false) {
		return nil, errors.New("database unreachable")
	}
	return f.Persons.GetPerson(ctx, id)
}

// A recovery code whose person cannot be read logs nobody in and is not
// spent: the same code works once the store answers again, and only once.
func TestRecoveryCodeIsNotSpentWhenThePersonCannotBeRead(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	e := h.browser("en").enrol(newDevice(false), "a", "fnr")
	persons := &failingPersons{Persons: h.p.Persons}
	h.p.Persons = persons
	finished := h.fin.count()

	b := h.browser("en")
	csrf := field(t, b.get("/passkey/recover?attempt=r1").body, "csrf")
	persons.fail.Store(true)
	if r := b.form("/passkey/recover", url.Values{"attempt": {"r1"}, "csrf": {csrf}, "code": {e.codes[0]}}); r.status != http.StatusInternalServerError {
		t.Fatalf("recovery with the store down: %d", r.status)
	}
	if left, _ := h.db.CountRecoveryCodes(ctx, e.person); left != passkeyidp.RecoveryCodeCount || h.fin.count() != finished {
		t.Fatalf("%d codes left, %d logins finished; want all codes, none", left, h.fin.count()-finished)
	}
	if r := b.form("/passkey/recover", url.Values{"attempt": {"r2"}, "csrf": {csrf}, "code": {e.codes[0]}}); r.status != http.StatusSeeOther {
		t.Fatalf("the code again: %d", r.status)
	}
	if r := b.form("/passkey/recover", url.Values{"attempt": {"r3"}, "csrf": {csrf}, "code": {e.codes[0]}}); r.status != http.StatusBadRequest {
		t.Fatalf("the code a third time: %d", r.status)
	}
}

// failingCodes refuses to store recovery codes while fail is set.
type failingCodes struct {
	store.RecoveryCodes
	fail atomic.Bool
}

func (f *failingCodes) ReplaceRecoveryCodes(ctx context.Context, personID string, hashes [][]byte, now time.Time, events ...*store.AuditEvent) error {
	if f.fail.Load() {
		return errors.New("database unreachable")
	}
	return f.RecoveryCodes.ReplaceRecoveryCodes(ctx, personID, hashes, now, events...)
}

func (f *failingCodes) ReplaceRecoveryCodesEndingOthers(ctx context.Context, personID string, hashes [][]byte, except string, now time.Time, events func(int) []*store.AuditEvent) ([]*store.Session, error) {
	if f.fail.Load() {
		return nil, errors.New("database unreachable")
	}
	return f.RecoveryCodes.ReplaceRecoveryCodesEndingOthers(ctx, personID, hashes, except, now, events)
}

// An enrolment whose recovery codes cannot be stored still ends in the
// enrolled page, which says the codes are to be made on the account
// page, and the login continues.
func TestEnrolmentWithoutCodesSaysSo(t *testing.T) {
	h := newHarness(t, true)
	codes := &failingCodes{RecoveryCodes: h.p.RecoveryCodes}
	codes.fail.Store(true)
	h.p.RecoveryCodes = codes
	b := h.browser("en")
	page := b.enrolOnly(newDevice(false), "a", "fnr")
	if got := codesIn(page.body); len(got) != 0 || !strings.Contains(page.body, "make the codes on your account page") {
		t.Fatalf("enrolled page without codes: %v\n%s", got, page.body)
	}
	if r := b.form("/passkey/enrolled/continue", continueForm(t, page)); r.status != http.StatusSeeOther {
		t.Fatalf("continue: %d", r.status)
	}
	codes.fail.Store(false)
	page = h.browser("en").enrolOnly(newDevice(false), "b", "fnr")
	if strings.Contains(page.body, "make the codes on your account page") {
		t.Fatal("the notice shows with codes")
	}
}

// unansweredCodes is the real store whose writes of new recovery codes
// get no answer, as a COMMIT whose connection dropped: after they were
// stored, unless lost is set; a write of no codes is answered. With
// blind set, the store cannot be read either.
type unansweredCodes struct {
	store.RecoveryCodes
	lost, blind bool
}

func (u unansweredCodes) ReplaceRecoveryCodes(ctx context.Context, personID string, hashes [][]byte, now time.Time, events ...*store.AuditEvent) error {
	if len(hashes) == 0 {
		return u.RecoveryCodes.ReplaceRecoveryCodes(ctx, personID, hashes, now, events...)
	}
	if !u.lost {
		if err := u.RecoveryCodes.ReplaceRecoveryCodes(ctx, personID, hashes, now, events...); err != nil {
			return err
		}
	}
	return fmt.Errorf("replace recovery codes: %w", store.ErrOutcomeUnknown)
}

func (u unansweredCodes) HasRecoveryCode(ctx context.Context, personID string, hash []byte) (bool, error) {
	if u.blind {
		return false, errors.New("connection refused")
	}
	return u.RecoveryCodes.HasRecoveryCode(ctx, personID, hash)
}

// Enrolment codes whose write got no answer are shown if the store
// holds them, and their event says they were made; if it does not, none
// are shown and no event says they were made: the person's recent
// activity is true either way.
func TestEnrolmentCodesOutcomeUnknownReadBack(t *testing.T) {
	for _, lost := range []bool{false, true} {
		t.Run(fmt.Sprint("lost=", lost), func(t *testing.T) {
			h := newHarness(t, true)
			h.p.RecoveryCodes = unansweredCodes{RecoveryCodes: h.p.RecoveryCodes, lost: lost}
			page := h.browser("en").enrolOnly(newDevice(false), "", "fnr")
			var person string
			made := 0
			for _, ev := range h.auditEvents(t) {
				if ev.Type == "enrolment" && ev.Result == store.ResultSuccess {
					person = ev.PersonID
				}
				if ev.Type == "recovery_codes_regenerated" && ev.Result == store.ResultSuccess {
					made++
				}
			}
			n, err := h.db.CountRecoveryCodes(context.Background(), person)
			if err != nil {
				t.Fatal(err)
			}
			shown := len(codesIn(page.body))
			want := passkeyidp.RecoveryCodeCount
			if lost {
				want = 0
			}
			if shown != want || n != want || made != min(want, 1) {
				t.Fatalf("%d codes shown, %d stored, %d made events; want %d, %d, %d", shown, n, made, want, want, min(want, 1))
			}
		})
	}
}

// An enrolment whose codes may have been stored, where the store cannot
// say, shows none and leaves the person with none, as the enrolled page
// says: the account page then counts no codes and offers to make them,
// instead of counting codes the person never saw.
func TestEnrolmentCodesOutcomeUnknownLeavesNone(t *testing.T) {
	h := newHarness(t, true)
	h.p.RecoveryCodes = unansweredCodes{RecoveryCodes: h.p.RecoveryCodes, blind: true}
	b := h.browser("en")
	page := b.enrolOnly(newDevice(false), "", "fnr")
	if got := codesIn(page.body); len(got) != 0 || !strings.Contains(page.body, "make the codes on your account page") {
		t.Fatalf("enrolled page: %v\n%s", got, page.body)
	}
	var person string
	for _, ev := range h.auditEvents(t) {
		if ev.Type == "enrolment" && ev.Result == store.ResultSuccess {
			person = ev.PersonID
		}
	}
	if person == "" {
		t.Fatal("no enrolment")
	}
	if n, err := h.db.CountRecoveryCodes(context.Background(), person); err != nil || n != 0 {
		t.Fatalf("%d recovery codes, %v, after an enrolment that showed none; want none", n, err)
	}
}

// The recovery codes made at enrolment are recorded with them, so the
// person's recent activity shows every set of codes that was made; codes
// that could not be stored are recorded as made by nobody.
func TestEnrolmentCodesAudited(t *testing.T) {
	h := newHarness(t, true)
	codes := &failingCodes{RecoveryCodes: h.p.RecoveryCodes}
	h.p.RecoveryCodes = codes
	page := h.browser("en").enrolOnly(newDevice(false), "", "fnr")
	if len(codesIn(page.body)) != passkeyidp.RecoveryCodeCount {
		t.Fatalf("enrolled page shows %d codes", len(codesIn(page.body)))
	}
	var made []*store.AuditEvent
	for _, ev := range h.auditEvents(t) {
		if ev.Type == "recovery_codes_regenerated" {
			made = append(made, ev)
		}
	}
	if len(made) != 1 || made[0].Result != store.ResultSuccess || made[0].PersonID == "" || made[0].Provider != "passkey" ||
		made[0].Details["count"] != fmt.Sprint(passkeyidp.RecoveryCodeCount) || made[0].Details["method"] != "enrolment" {
		t.Fatalf("recovery codes made at enrolment recorded as %+v, want one success event for the person", made)
	}
	codes.fail.Store(true)
	h.browser("en").enrolOnly(newDevice(false), "", "fnr")
	n := 0
	for _, ev := range h.auditEvents(t) {
		if ev.Type == "recovery_codes_regenerated" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d recovery_codes_regenerated events after an enrolment whose codes were not stored, want still 1", n)
	}
}

// cannotEndOthers is the real store that cannot end a person's other
// sessions.
type cannotEndOthers struct{ store.Sessions }

func (cannotEndOthers) EndPersonSessions(context.Context, string, string, time.Time, func(int) []*store.AuditEvent) ([]*store.Session, error) {
	return nil, errors.New("connection refused")
}

// A passkey added at ChangeLevel ends the person's other sessions in
// its own write, with their event: a store that cannot end sessions by
// themselves does not leave one live, and the person is told.
func TestAddedPasskeyEndsOthersInItsWrite(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	other := h.browser("en")
	ocsrf := field(t, other.get("/passkey/recover?attempt=").body, "csrf")
	if r := other.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {ocsrf}, "code": {e.codes[0]}}); r.status != http.StatusSeeOther || r.location != "/account" {
		t.Fatalf("login with a recovery code: %d %q", r.status, r.location)
	}
	h.p.Sessions.Store = cannotEndOthers{h.db}
	page := b.get(addPasskey(t, b))
	if r := other.get("/account"); r.status != http.StatusSeeOther || r.location != "/login" {
		t.Fatalf("the other session, after a passkey was added: %d %q", r.status, r.location)
	}
	if !strings.Contains(page.body, "logged out everywhere else") {
		t.Errorf("the account page after adding a passkey does not say the other sessions ended:\n%s", page.body)
	}
	if !hasEvent(h.auditEvents(t), "sessions_ended", store.ResultSuccess, "") {
		t.Error("the end of the other sessions is not recorded")
	}
}

// addPasskey adds a new passkey named Laptop in b's session, from the
// account page, and returns where the page is sent next.
func addPasskey(t *testing.T, b *browser) string {
	t.Helper()
	return addNamedPasskey(t, b, "Laptop")
}

// addNamedPasskey is addPasskey with the name typed, "" for none.
func addNamedPasskey(t *testing.T, b *browser, name string) string {
	t.Helper()
	csrf := attr(t, b.get("/account").body, "data-csrf")
	r, begun := b.json("/account/passkeys/begin", map[string]string{"name": name}, csrf)
	if r.status != http.StatusOK {
		t.Fatalf("add begin: %d %v", r.status, begun)
	}
	id, body := b.h.create(t, newDevice(false), begun)
	r, m := b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, csrf)
	if r.status != http.StatusOK {
		t.Fatalf("add finish: %d %v", r.status, m)
	}
	next, _ := m["redirect"].(string)
	return next
}

// New recovery codes end the person's other sessions in the same write
// as they are stored, with its event: codes replaced because the old
// ones may be in the wrong hands never leave live a session those
// opened, whatever a separate end of sessions would have done.
func TestNewCodesEndOthersInTheirWrite(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	thief := h.browser("en")
	tcsrf := field(t, thief.get("/passkey/recover?attempt=").body, "csrf")
	if r := thief.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {tcsrf}, "code": {e.codes[0]}}); r.status != http.StatusSeeOther || r.location != "/account" {
		t.Fatalf("login with a recovery code: %d %q", r.status, r.location)
	}
	h.p.Sessions.Store = cannotEndOthers{h.db}
	csrf := attr(t, b.get("/account").body, "data-csrf")
	r := b.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/account/recovery-codes?") {
		t.Fatalf("new codes: %d %q", r.status, r.location)
	}
	if r := thief.get("/account"); r.status != http.StatusSeeOther || r.location != "/login" {
		t.Fatalf("the session opened with an old code, after new codes: %d %q", r.status, r.location)
	}
	if page := b.get(r.location); !strings.Contains(page.body, "logged out everywhere else") {
		t.Errorf("new codes page does not say the other sessions ended:\n%s", page.body)
	}
	events := h.auditEvents(t)
	if !hasEvent(events, "sessions_ended", store.ResultSuccess, "") || hasEvent(events, "sessions_ended", store.ResultFailure, "internal") {
		t.Error("the end of the other sessions is not recorded as done")
	}
}

// noLinks is a broker that can link nothing now, for why.
type noLinks struct {
	*finisher
	why   string
	level assurance.Level
}

func (noLinks) LinkOptions(*http.Request) ([]provider.Info, string) { return nil, "" }
func (n noLinks) LinkWhyNot(*http.Request) string                   { return n.why }
func (n noLinks) LinkLevel() assurance.Level                        { return n.level }

// When no eID can be linked now, the account page says why and what the
// person can do, in their language, instead of leaving the section out.
func TestAccountSaysWhyNoLink(t *testing.T) {
	h := newHarness(t, true)
	// The level a link needs is the broker's, named in the page's
	// language, not one written into the text.
	tests := []struct {
		why   string
		level assurance.Level
		lang  string
		want  string
	}{
		{"reauth", assurance.Substantial, "en", "log in again, then come back here"},
		{"level", assurance.Substantial, "nb", "logge inn igjen med passnøkkelen din eller med en e-ID på nivå betydelig eller høyere"},
		{"level", assurance.High, "en", "with an eID at the high level or higher"},
		{"level", assurance.High, "da", "med et eID på niveau højt eller højere"},
		{"down", assurance.Substantial, "da", "Prøv igen senere"},
		{"no-other", assurance.Substantial, "en", "the one you logged in with now, so there is nothing more to add"},
		{"no-other", assurance.Substantial, "nb", "den du logget inn med nå"},
		{"", assurance.Substantial, "en", ""},
	}
	for _, tt := range tests {
		b := h.browser(tt.lang)
		b.enrol(newDevice(false), "", "fnr")
		h.p.Finisher = noLinks{finisher: h.fin, why: tt.why, level: tt.level}
		body := b.get("/account").body
		if tt.want == "" {
			if strings.Contains(body, `id="link"`) {
				t.Errorf("link section with linking off:\n%s", body)
			}
			continue
		}
		if !strings.Contains(body, `id="link"`) || !strings.Contains(body, tt.want) {
			t.Errorf("%s at %s in %s: page does not say %q", tt.why, tt.level, tt.lang, tt.want)
		}
	}
	// A person whose passkeys are all capped below the level a link
	// needs (added after a recovery-code login) is not sent back to log
	// in with one: the page names what can reach it, an eID.
	for _, lang := range []string{"en", "nb", "da"} {
		b := h.browser(lang)
		e := b.enrol(newDevice(false), "", "fnr")
		h.p.Finisher = noLinks{finisher: h.fin, why: "level", level: assurance.Substantial}
		level := h.p.Pages.T(lang, "account.level.substantial")
		if body, want := b.get("/account").body, fmt.Sprintf(h.p.Pages.T(lang, "account.link.why.level"), level); !strings.Contains(body, html.EscapeString(want)) {
			t.Errorf("%s: the page of a person whose passkey reaches the level does not say %q:\n%s", lang, want, body)
		}
		if _, err := h.db.Pools()["write"].Exec(`UPDATE passkeys SET max_level = 'low' WHERE person_id = ?`, e.person); err != nil {
			t.Fatal(err)
		}
		body := b.get("/account").body
		want := fmt.Sprintf(h.p.Pages.T(lang, "account.link.why.level.eid"), level)
		if !strings.Contains(body, html.EscapeString(want)) {
			t.Errorf("%s: the page of a person whose passkeys reach only low does not say %q:\n%s", lang, want, body)
		}
	}
	// How recent a login must be is the code's, not written into the
	// texts that say it.
	for _, lang := range []string{"en", "nb", "da"} {
		for _, key := range []string{"account.link.why.reauth", "account.reauth.stale"} {
			if msg := h.p.Pages.T(lang, key); !strings.Contains(msg, "%d") {
				t.Errorf("%s: %s %q writes the time into the text", lang, key, msg)
			}
		}
	}
}

// someLinks is a broker that offers one eID to link, needing level.
type someLinks struct {
	*finisher
	level assurance.Level
}

func (someLinks) LinkOptions(*http.Request) ([]provider.Info, string) {
	return []provider.Info{{ID: "bankid", Name: map[string]string{"en": "BankID"}, MaxLevel: assurance.High}}, "token"
}
func (n someLinks) LinkLevel() assurance.Level { return n.level }

// The account page names the level a link needs as the broker holds it.
func TestAccountLinkHintNamesTheLinkLevel(t *testing.T) {
	h := newHarness(t, true)
	tests := []struct {
		level      assurance.Level
		lang, want string
	}{
		{assurance.Substantial, "en", "must be at least at the substantial level."},
		{assurance.High, "en", "must be at least at the high level."},
		{assurance.High, "nb", "må være minst på nivå høyt."},
	}
	for _, tt := range tests {
		b := h.browser(tt.lang)
		b.enrol(newDevice(false), "", "fnr")
		h.p.Finisher = someLinks{finisher: h.fin, level: tt.level}
		if body := b.get("/account").body; !strings.Contains(body, `id="link-bankid"`) || !strings.Contains(body, tt.want) {
			t.Errorf("%s in %s: page does not say %q:\n%s", tt.level, tt.lang, tt.want, body)
		}
	}
}

// A change to the account is audited with how the session making it was
// logged in: after a recovery code, as made with a recovery code, not
// with a passkey.
func TestAccountChangeAuditsSessionMethod(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	b.enrol(newDevice(false), "", "fnr")
	if got := changeMethods(h.auditEvents(t)); len(got) != 0 {
		t.Fatalf("changes audited before any: %v", got)
	}
	// With a passkey session.
	csrf := attr(t, b.get("/account").body, "data-csrf")
	r := b.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("new codes: %d", r.status)
	}
	codes := codesIn(b.get(r.location).body)
	if len(codes) == 0 {
		t.Fatal("no codes shown")
	}
	rb := h.browser("en")
	rcsrf := field(t, rb.get("/passkey/recover?attempt=").body, "csrf")
	if r := rb.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {rcsrf}, "code": {codes[0]}}); r.status != http.StatusSeeOther {
		t.Fatalf("recovery login: %d", r.status)
	}
	acsrf := attr(t, rb.get("/account").body, "data-csrf")
	rb.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {acsrf}})
	got := changeMethods(h.auditEvents(t))
	if len(got) != 2 || got[0] != "passkey passkey" || got[1] != "recovery-code passkey" {
		t.Fatalf("changes audited with methods %q, want the passkey session's then the recovery code session's", got)
	}
}

// changeMethods lists the method and session_provider of each
// recovery_codes_regenerated event made on the account page (not at
// enrolment), oldest first.
func changeMethods(evs []*store.AuditEvent) []string {
	var out []string
	for _, e := range evs {
		if e.Type == "recovery_codes_regenerated" && e.Details["method"] != "enrolment" {
			out = append(out, e.Details["method"]+" "+e.Details["session_provider"])
		}
	}
	slices.Sort(out)
	return out
}

// TestAddedPasskeyEndsOtherSessions: a passkey added from a login at
// ChangeLevel or higher is a new way in, as a linked eID is, and logs
// the person out everywhere else; the account page's recent activity
// says so. One added after a recovery-code login leaves the owner's
// sessions alone (TestAccountChangesNeedStrongRecentLogin).
func TestAddedPasskeyEndsOtherSessions(t *testing.T) {
	h := newHarness(t, true)
	h.p.History = h.db
	b, other := enrolledTwice(t, h)
	csrf := attr(t, b.get("/account").body, "data-csrf")
	r, begun := b.json("/account/passkeys/begin", map[string]string{"name": "Laptop"}, csrf)
	if r.status != http.StatusOK {
		t.Fatalf("add begin: %d %v", r.status, begun)
	}
	id, body := h.create(t, newDevice(false), begun)
	if r, m := b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, csrf); r.status != http.StatusOK {
		t.Fatalf("add finish: %d %v", r.status, m)
	}
	if r := other.get("/account"); r.status != http.StatusSeeOther || r.location != "/login" {
		t.Fatalf("the other session after adding a passkey: %d %q", r.status, r.location)
	}
	page := b.get("/account?done=added")
	if page.status != http.StatusOK {
		t.Fatalf("the session that added the passkey: %d", page.status)
	}
	rows := activityRows(t, page.body)
	if len(rows) < 2 || rows[0][1] != "You were logged out everywhere else" || rows[1][1] != "A passkey was added" {
		t.Errorf("activity rows %q, want the logout above the added passkey", rows)
	}
}

// A change refused to a recent login that is too weak for it says what
// helps, in each language: not to log in again the same way, but with a
// passkey from before or an eID.
func TestWeakLoginIsToldWhatHelps(t *testing.T) {
	for _, tc := range []struct{ lang, want, not string }{
		{"en", "Log in with a passkey you had before or with an eID, then try once more.", "That change needs a new login first"},
		{"nb", "Logg inn med en passnøkkel du hadde fra før, eller med en e-ID, og prøv en gang til.", "Den endringen krever at du logger inn på nytt først"},
		{"da", "Log ind med en adgangsnøgle du havde i forvejen, eller med et eID, og prøv så en gang til.", "Den ændring kræver at du logger ind igen først"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			h := newHarness(t, true)
			e := h.browser(tc.lang).enrol(newDevice(false), "", "fnr")
			b := h.browser(tc.lang)
			rcsrf := field(t, b.get("/passkey/recover?attempt=").body, "csrf")
			if r := b.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {rcsrf}, "code": {e.codes[0]}}); r.status != http.StatusSeeOther {
				t.Fatalf("recovery login: %d", r.status)
			}
			csrf := attr(t, b.get("/account").body, "data-csrf")
			r := b.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}})
			if r.status != http.StatusForbidden || !strings.Contains(r.body, tc.want) || strings.Contains(r.body, tc.not) {
				t.Fatalf("new codes after a recovery login: %d\n%s", r.status, r.body)
			}
		})
	}
}

// The notice after a change that logged the person out everywhere else
// says so, in each language; after one that ended no other session it
// does not.
func TestNoticeSaysOtherSessionsEnded(t *testing.T) {
	for _, tc := range []struct{ lang, added, removed, codes string }{
		{"en", "The passkey was added. You were logged out everywhere else", "The passkey was removed. You were logged out everywhere else", "You were logged out everywhere else"},
		{"nb", "Passnøkkelen ble lagt til. Du ble logget ut alle andre steder", "Passnøkkelen ble fjernet. Du ble logget ut alle andre steder", "Du ble logget ut alle andre steder"},
		{"da", "Adgangsnøglen blev tilføjet. Du blev logget ud alle andre steder", "Adgangsnøglen blev fjernet. Du blev logget ud alle andre steder", "Du blev logget ud alle andre steder"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			h := newHarness(t, true)
			phone := newDevice(false)
			laptop := h.browser(tc.lang)
			e := laptop.enrol(phone, "", "fnr")
			other := h.browser(tc.lang)
			if r, m := other.login(phone, h.rp, ""); r.status != 200 {
				t.Fatalf("login on the phone: %d %v", r.status, m)
			}
			csrf := attr(t, laptop.get("/account").body, "data-csrf")
			r, begun := laptop.json("/account/passkeys/begin", map[string]string{"name": "Laptop"}, csrf)
			if r.status != 200 {
				t.Fatalf("add begin: %d %v", r.status, begun)
			}
			laptopKey := newDevice(false)
			id, body := h.create(t, laptopKey, begun)
			r, m := laptop.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, csrf)
			next, _ := m["redirect"].(string)
			if r.status != 200 || !strings.HasPrefix(next, "/account?n=") {
				t.Fatalf("add finish: %d %v", r.status, m)
			}
			if page := laptop.get(next); !strings.Contains(page.body, tc.added) {
				t.Fatalf("notice after an add that ended a session:\n%s", page.body)
			}
			if r := other.get("/account"); r.status != http.StatusSeeOther {
				t.Fatalf("the phone's session after the add: %d", r.status)
			}

			// New recovery codes, with a session elsewhere again: the page
			// that shows them says it was ended.
			if r, m := other.login(phone, h.rp, ""); r.status != 200 {
				t.Fatalf("login on the phone again: %d %v", r.status, m)
			}
			r = laptop.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}})
			if r.status != http.StatusSeeOther || !strings.Contains(r.location, "n=") {
				t.Fatalf("new codes: %d %q", r.status, r.location)
			}
			if page := laptop.get(r.location); len(codesIn(page.body)) == 0 || !strings.Contains(page.body, tc.codes) {
				t.Fatalf("new codes page after ending a session:\n%s", page.body)
			}

			// No other session now: the removal's notice does not say so.
			keys, err := h.db.ListPasskeys(context.Background(), e.person)
			if err != nil || len(keys) != 2 {
				t.Fatalf("passkeys: %d, %v", len(keys), err)
			}
			phoneKey, laptopCred := keys[0].CredentialID, keys[1].CredentialID
			if keys[0].Name == "Laptop" {
				phoneKey, laptopCred = laptopCred, phoneKey
			}
			r = laptop.form("/account/passkeys/remove", url.Values{"confirm": {"yes"}, "credential": {base64.RawURLEncoding.EncodeToString(phoneKey)}, "csrf": {csrf}})
			if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/account?n=") {
				t.Fatalf("remove: %d %q", r.status, r.location)
			}
			if page := laptop.get(r.location); strings.Contains(page.body, tc.removed) {
				t.Fatalf("notice after a removal that ended no session says one was:\n%s", page.body)
			}
			// With another session again, the removal's notice says it ended.
			if r, m := other.login(laptopKey, h.rp, ""); r.status != 200 {
				t.Fatalf("login elsewhere again: %d %v", r.status, m)
			}
			r = laptop.form("/account/passkeys/remove", url.Values{"confirm": {"yes"}, "credential": {base64.RawURLEncoding.EncodeToString(laptopCred)}, "csrf": {csrf}})
			if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/account?n=") {
				t.Fatalf("second remove: %d %q", r.status, r.location)
			}
			if page := laptop.get(r.location); !strings.Contains(page.body, tc.removed) {
				t.Fatalf("notice after a removal that ended a session:\n%s", page.body)
			}
		})
	}
}

// auditDown is the real store that cannot append an event on its own.
type auditDown struct{ *sqlstore.DB }

func (auditDown) AppendAudit(context.Context, *store.AuditEvent) error {
	return errors.New("connection refused")
}

// The other sessions a change ends and the event saying so are one
// write: when events cannot be appended on their own, the sessions
// ended are audited all the same.
func TestSessionsEndedWithTheirEvent(t *testing.T) {
	h := newHarness(t, true)
	phone := newDevice(false)
	laptop := h.browser("en")
	e := laptop.enrol(phone, "", "fnr")
	other := h.browser("en")
	if r, m := other.login(phone, h.rp, ""); r.status != 200 {
		t.Fatalf("login on the phone: %d %v", r.status, m)
	}
	csrf := attr(t, laptop.get("/account").body, "data-csrf")
	h.p.Audit = &audit.Log{Store: auditDown{h.db}, Now: func() time.Time { return h.now }}
	r := laptop.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/account/recovery-codes?") {
		t.Fatalf("new codes: %d %q", r.status, r.location)
	}
	events, err := h.db.ListPersonAudit(context.Background(), e.person, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(events, func(ev *store.AuditEvent) bool {
		return ev.Type == "sessions_ended" && ev.Result == store.ResultSuccess && ev.Provider == "passkey" && ev.Details["count"] == "1"
	}) {
		t.Fatalf("no sessions_ended event stored with the sessions' end: %+v", events)
	}
}

// A passkey added, a passkey removed and recovery codes replaced are each
// stored in one write with their event: when events cannot be appended
// on their own, the person's audit trail, and so their recent activity,
// has all three.
func TestAccountChangesWithTheirEvents(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	page := b.get("/account")
	csrf := attr(t, page.body, "data-csrf")
	cred := regexp.MustCompile(`name="credential" value="([^"]+)"`).FindStringSubmatch(page.body)
	if cred == nil {
		t.Fatal("no remove form")
	}
	h.p.Audit = &audit.Log{Store: auditDown{h.db}, Now: func() time.Time { return h.now }}
	r, begun := b.json("/account/passkeys/begin", map[string]string{"name": "Laptop"}, csrf)
	if r.status != http.StatusOK {
		t.Fatalf("add begin: %d %v", r.status, begun)
	}
	id, body := h.create(t, newDevice(false), begun)
	if r, m := b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, csrf); r.status != http.StatusOK {
		t.Fatalf("add finish: %d %v", r.status, m)
	}
	if r := b.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}}); r.status != http.StatusSeeOther {
		t.Fatalf("new codes: %d %q", r.status, r.location)
	}
	if r := b.form("/account/passkeys/remove", url.Values{"confirm": {"yes"}, "credential": {cred[1]}, "csrf": {csrf}}); r.status != http.StatusSeeOther {
		t.Fatalf("remove: %d %q", r.status, r.location)
	}
	events, err := h.db.ListPersonAudit(context.Background(), e.person, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"passkey_added", "recovery_codes_regenerated", "passkey_removed"} {
		if !hasEvent(events, want, store.ResultSuccess, "") {
			t.Errorf("no %s event stored with the change", want)
		}
	}
	if _, err := (&audit.Log{Store: h.db}).Verify(context.Background()); err != nil {
		t.Errorf("chain: %v", err)
	}
}

// passkeysRefused is the real store that cannot add a passkey ending
// the person's other sessions.
type passkeysRefused struct{ store.Passkeys }

func (passkeysRefused) CreatePasskeyEndingOthers(context.Context, *store.Passkey, int, string, time.Time, func(int) []*store.AuditEvent) ([]*store.Session, error) {
	return nil, errors.New("connection refused")
}

// A passkey whose write, with the end of the other sessions, fails is
// not added and ends no session: the person is told it failed.
func TestAddPasskeyRefusedEndsNothing(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	other := h.browser("en")
	ocsrf := field(t, other.get("/passkey/recover?attempt=").body, "csrf")
	if r := other.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {ocsrf}, "code": {e.codes[0]}}); r.status != http.StatusSeeOther {
		t.Fatalf("login with a recovery code: %d %q", r.status, r.location)
	}
	h.p.WebAuthn.Passkeys = passkeysRefused{h.db}
	csrf := attr(t, b.get("/account").body, "data-csrf")
	r, begun := b.json("/account/passkeys/begin", map[string]string{"name": "Laptop"}, csrf)
	if r.status != http.StatusOK {
		t.Fatalf("begin: %d", r.status)
	}
	id, body := h.create(t, newDevice(false), begun)
	if r, _ := b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, csrf); r.status != http.StatusInternalServerError {
		t.Fatalf("finish with the store refusing: %d", r.status)
	}
	if r := other.get("/account"); r.status != http.StatusOK {
		t.Fatalf("the other session, after a passkey that was not added: %d %q", r.status, r.location)
	}
	if hasEvent(h.auditEvents(t), "passkey_added", store.ResultSuccess, "") {
		t.Error("a passkey that was not stored is recorded as added")
	}
}

// TestCraftedNoticeLinkShowsNoNotice: the account page says a passkey
// was added or removed, or that the person was logged out everywhere
// else, only after the session made that change: a link with made-up
// query values, or with another session's notice, shows no notice.
func TestCraftedNoticeLinkShowsNoNotice(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	b.enrol(newDevice(false), "", "fnr")
	for _, link := range []string{
		"/account?done=added", "/account?done=added&ended=1", "/account?done=removed&ended=1",
		"/account?n=" + strings.Repeat("A", 43),
	} {
		page := b.get(link)
		if page.status != http.StatusOK {
			t.Fatalf("%s: %d", link, page.status)
		}
		for _, s := range []string{"The passkey was added", "The passkey was removed", "You were logged out everywhere else.", `role="status"`} {
			if strings.Contains(page.body, s) {
				t.Errorf("%s shows %q", link, s)
			}
		}
	}

	// A notice is shown once, to the session that made the change.
	csrf := attr(t, b.get("/account").body, "data-csrf")
	r, begun := b.json("/account/passkeys/begin", map[string]string{"name": "Laptop"}, csrf)
	if r.status != http.StatusOK {
		t.Fatalf("add begin: %d %v", r.status, begun)
	}
	id, body := h.create(t, newDevice(false), begun)
	r, m := b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, csrf)
	next, _ := m["redirect"].(string)
	if r.status != http.StatusOK || next == "" {
		t.Fatalf("add finish: %d %v", r.status, m)
	}
	other := h.browser("en")
	other.enrol(newDevice(false), "", "fnr")
	if page := other.get(next); strings.Contains(page.body, "The passkey was added") {
		t.Errorf("another session's notice shown: %s", page.body)
	}
	if page := b.get(next); !strings.Contains(page.body, "The passkey was added") {
		t.Errorf("no notice after adding a passkey: %s", page.body)
	}
	if page := b.get(next); strings.Contains(page.body, "The passkey was added") {
		t.Errorf("notice shown again on reload: %s", page.body)
	}

	// The page of new recovery codes says other sessions were ended only
	// when they were.
	r = b.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("new codes: %d", r.status)
	}
	if page := b.get(r.location + "&ended=1"); len(codesIn(page.body)) == 0 || strings.Contains(page.body, "You were logged out everywhere else") {
		t.Errorf("codes page with a made-up ended=1:\n%s", page.body)
	}
}

// A test person is stored in one write with their enrolment event: when
// events cannot be appended on their own, the person still never exists
// without it.
func TestEnrolmentWithItsEvent(t *testing.T) {
	h := newHarness(t, true)
	h.p.Audit = &audit.Log{Store: auditDown{h.db}, Now: func() time.Time { return h.now }}
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	events, err := h.db.ListPersonAudit(context.Background(), e.person, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(events, func(ev *store.AuditEvent) bool {
		return ev.Type == "enrolment" && ev.Result == store.ResultSuccess && ev.Provider == "passkey" &&
			ev.Details["method"] == "synthetic" && ev.Details["credential"] != ""
	}) {
		t.Fatalf("no enrolment event stored with the person: %+v", events)
	}
	if _, err := (&audit.Log{Store: h.db}).Verify(context.Background()); err != nil {
		t.Errorf("chain: %v", err)
	}
}

// A failure of Varde's own on the account pages, or in the account's
// own login, sends nobody to a service they were not logging in to; in
// a login to a service it still names that service.
func TestInternalErrorNamesAServiceOnlyInAServicesLogin(t *testing.T) {
	h := newHarness(t, true)
	e := h.browser("en").enrol(newDevice(false), "a", "fnr")
	persons := &failingPersons{Persons: h.p.Persons}
	h.p.Persons = persons
	service := map[string]string{
		"en": "contact the service you were logging in to",
		"nb": "kontakt tjenesten du skulle logge inn på",
		"da": "kontakt den tjeneste du ville logge ind på",
	}
	account := map[string]string{
		"en": "If it keeps happening, try again later.",
		"nb": "Hvis det skjer igjen, prøv igjen senere.",
		"da": "Hvis det bliver ved med at ske, så prøv igen senere.",
	}
	for i, lang := range []string{"en", "nb", "da"} {
		for _, attempt := range []string{"", "r1"} {
			b := h.browser(lang)
			csrf := field(t, b.get("/passkey/recover?attempt="+attempt).body, "csrf")
			persons.fail.Store(true)
			r := b.form("/passkey/recover", url.Values{"attempt": {attempt}, "csrf": {csrf}, "code": {e.codes[i]}})
			want, not := service[lang], account[lang]
			if attempt == "" {
				want, not = not, want
			}
			if r.status != http.StatusInternalServerError || !strings.Contains(r.body, want) || strings.Contains(r.body, not) {
				t.Errorf("%s, attempt %q: %d, want a page saying %q, not %q:\n%s", lang, attempt, r.status, want, not, r.body)
			}
		}
	}
	b := h.browser("en")
	b.enrol(newDevice(false), "", "fnr")
	h.p.Sessions.Store = sessionsDown{h.db}
	if r := b.get("/account"); r.status != http.StatusInternalServerError || !strings.Contains(r.body, account["en"]) || strings.Contains(r.body, service["en"]) {
		t.Errorf("account page, store down: %d, want account words:\n%s", r.status, r.body)
	}
}

// A Continue pressed after the enrolled page was left open past its
// time says that the step expired, not that it was done already. Its
// time is ten minutes for an account login, and for a service's login
// as long as the request can be kept open (ADR 50): the page warns
// before the request ends and extends it, and the request bounds it.
func TestEnrolledContinueExpiredSaysSo(t *testing.T) {
	h := newHarness(t, true)
	for lang, want := range map[string]string{
		"en": "This step has expired",
		"nb": "Dette steget er utløpt",
		"da": "Dette trin er udløbet",
	} {
		b := h.browser(lang)
		page := b.enrolOnly(newDevice(false), "", "fnr")
		h.now = h.now.Add(11 * time.Minute)
		r := b.form("/passkey/enrolled/continue", continueForm(t, page))
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, want) {
			t.Errorf("%s: %d, want 400 saying %q:\n%s", lang, r.status, want, r.body)
		}
		if r := b.form("/passkey/enrolled/continue", continueForm(t, page)); r.status != http.StatusBadRequest || strings.Contains(r.body, want) {
			t.Errorf("%s, again: %d, want 400 as for a ticket used:\n%s", lang, r.status, r.body)
		}
		// A service's login: 11 minutes on, Continue still works...
		page = b.enrolOnly(newDevice(false), "a", "fnr")
		h.now = h.now.Add(11 * time.Minute)
		if r := b.form("/passkey/enrolled/continue", continueForm(t, page)); r.status != http.StatusSeeOther {
			t.Errorf("%s, a service's login 11 minutes on: %d, want 303 on to the service:\n%s", lang, r.status, r.body)
		}
		// ...and past the hour a login can be kept open, it has expired.
		page = b.enrolOnly(newDevice(false), "a", "fnr")
		h.now = h.now.Add(61 * time.Minute)
		if r := b.form("/passkey/enrolled/continue", continueForm(t, page)); r.status != http.StatusBadRequest || !strings.Contains(r.body, want) {
			t.Errorf("%s, a service's login 61 minutes on: %d, want 400 saying %q:\n%s", lang, r.status, want, r.body)
		}
	}
}

// TestRemovePasskeyEndsOthersInOneWrite: a passkey is removed together
// with the person's other sessions, which it may have opened, in one
// write. When the sessions cannot be ended (here the store refuses to
// delete a session), the passkey stays and the person is told to try
// again: a removed passkey never leaves a session it opened behind.
func TestRemovePasskeyEndsOthersInOneWrite(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	owner := h.browser("en")
	e := owner.enrol(newDevice(false), "", "fnr")
	csrf := attr(t, owner.get("/account").body, "data-csrf")
	other := h.browser("en")
	rcsrf := field(t, other.get("/passkey/recover?attempt=").body, "csrf")
	if r := other.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {rcsrf}, "code": {e.codes[0]}}); r.status != http.StatusSeeOther {
		t.Fatalf("recovery login: %d", r.status)
	}
	keys, err := h.db.ListPasskeys(ctx, e.person)
	if err != nil || len(keys) != 1 {
		t.Fatalf("passkeys %v, %v", keys, err)
	}
	cred := base64.RawURLEncoding.EncodeToString(keys[0].CredentialID)
	if _, err := h.db.Pools()["write"].Exec(`CREATE TRIGGER no_end BEFORE DELETE ON sessions BEGIN SELECT RAISE(ABORT, 'disk says no'); END`); err != nil {
		t.Fatal(err)
	}
	if r := owner.form("/account/passkeys/remove", url.Values{"confirm": {"yes"}, "credential": {cred}, "csrf": {csrf}}); r.status != http.StatusInternalServerError {
		t.Fatalf("remove while sessions cannot end: %d %q", r.status, r.location)
	}
	if keys, err := h.db.ListPasskeys(ctx, e.person); err != nil || len(keys) != 1 {
		t.Fatalf("passkeys after a removal whose sessions could not end: %d, %v; want the passkey kept", len(keys), err)
	}
	if hasEvent(h.auditEvents(t), "passkey_removed", store.ResultSuccess, "") {
		t.Fatal("a removal that was not stored is audited as done")
	}
	if _, err := h.db.Pools()["write"].Exec(`DROP TRIGGER no_end`); err != nil {
		t.Fatal(err)
	}
	r := owner.form("/account/passkeys/remove", url.Values{"confirm": {"yes"}, "credential": {cred}, "csrf": {csrf}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("remove: %d", r.status)
	}
	if page := owner.get(r.location); !strings.Contains(page.body, "The passkey was removed. You were logged out everywhere else") {
		t.Fatalf("account after removal:\n%s", page.body)
	}
	if r := other.get("/account"); r.status != http.StatusSeeOther || r.location != "/login" {
		t.Fatalf("the other session after the removal: %d %q", r.status, r.location)
	}
	var removed, ended *store.AuditEvent
	for _, ev := range h.auditEvents(t) {
		switch {
		case ev.Type == "passkey_removed" && ev.Result == store.ResultSuccess:
			removed = ev
		case ev.Type == "sessions_ended" && ev.Result == store.ResultSuccess:
			ended = ev
		}
	}
	if removed == nil || ended == nil || ended.Seq != removed.Seq+1 || ended.Details["count"] != "1" {
		t.Fatalf("events %+v and %+v; want the removal, then one session ended, in one write", removed, ended)
	}
}

// unansweredEndingCodes is the real store whose replacement of recovery
// codes ending the other sessions gets no answer: after it was stored
// when stored is set, else without storing anything.
type unansweredEndingCodes struct {
	store.RecoveryCodes
	stored bool
}

func (u unansweredEndingCodes) ReplaceRecoveryCodesEndingOthers(ctx context.Context, personID string, hashes [][]byte, except string, now time.Time, events func(int) []*store.AuditEvent) ([]*store.Session, error) {
	if u.stored {
		if _, err := u.RecoveryCodes.ReplaceRecoveryCodesEndingOthers(ctx, personID, hashes, except, now, events); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("commit: %w", store.ErrOutcomeUnknown)
}

// New recovery codes whose write got no answer are shown if the store
// holds them, for then the old ones are void and the sessions opened
// with them ended; if it does not, the person is told it failed and
// keeps the codes they have.
func TestNewCodesOutcomeUnknown(t *testing.T) {
	for _, stored := range []bool{true, false} {
		t.Run(fmt.Sprint("stored=", stored), func(t *testing.T) {
			h := newHarness(t, true)
			b := h.browser("en")
			e := b.enrol(newDevice(false), "", "fnr")
			thief := h.browser("en")
			tcsrf := field(t, thief.get("/passkey/recover?attempt=").body, "csrf")
			if r := thief.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {tcsrf}, "code": {e.codes[0]}}); r.status != http.StatusSeeOther {
				t.Fatalf("login with a recovery code: %d %q", r.status, r.location)
			}
			h.p.RecoveryCodes = unansweredEndingCodes{h.p.RecoveryCodes, stored}
			csrf := attr(t, b.get("/account").body, "data-csrf")
			r := b.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}})
			code := e.codes[1] // unused and, if nothing changed, still good
			if stored {
				if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/account/recovery-codes?") {
					t.Fatalf("new codes stored without an answer: %d %q", r.status, r.location)
				}
				codes := codesIn(b.get(r.location).body)
				if len(codes) == 0 {
					t.Fatal("the stored new codes are not shown")
				}
				code = codes[0]
				if r := thief.get("/account"); r.status != http.StatusSeeOther || r.location != "/login" {
					t.Fatalf("the session opened with an old code: %d %q", r.status, r.location)
				}
			} else if r.status != http.StatusInternalServerError {
				t.Fatalf("new codes not stored: %d %q", r.status, r.location)
			}
			rb := h.browser("en")
			rcsrf := field(t, rb.get("/passkey/recover?attempt=").body, "csrf")
			if r := rb.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {rcsrf}, "code": {code}}); r.status != http.StatusSeeOther || r.location != "/account" {
				t.Fatalf("a code the person was last shown: %d %q", r.status, r.location)
			}
		})
	}
}

// TestPageWrongMethod: a method an address of the passkey provider
// does not serve is answered 405 with Allow and a plain-language page
// in the person's language, not the mux's English text.
func TestPageWrongMethod(t *testing.T) {
	h := newHarness(t, false)
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodPost, "/passkey/login?attempt=a1", "GET, HEAD"},
		{http.MethodGet, "/passkey/login/begin", "POST"},
		{http.MethodGet, "/passkey/login/finish", "POST"},
		{http.MethodGet, "/passkey/cancel", "POST"},
		{http.MethodDelete, "/passkey/recover", "GET, POST, HEAD"},
		{http.MethodPost, "/passkey/enrol", "GET, HEAD"},
		{http.MethodGet, "/passkey/enrol/begin", "POST"},
		{http.MethodGet, "/passkey/enrol/finish", "POST"},
		{http.MethodPost, "/passkey/enrolled", "GET, HEAD"},
		{http.MethodGet, "/passkey/enrolled/continue", "POST"},
		{http.MethodPut, "/account", "GET, HEAD"},
		{http.MethodGet, "/account/passkeys/begin", "POST"},
		{http.MethodGet, "/account/passkeys/finish", "POST"},
		{http.MethodGet, "/account/passkeys/cancel", "POST"},
		{http.MethodPut, "/account/passkeys/remove", "GET, POST, HEAD"},
		{http.MethodDelete, "/account/recovery-codes", "GET, POST, HEAD"},
		{http.MethodPost, "/account/recovery-codes/new", "GET, HEAD"},
		{http.MethodDelete, "/account/eids/unlink", "GET, POST, HEAD"},
	} {
		req, err := http.NewRequest(tc.method, "http://"+h.addr+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept-Language", "da")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow ||
			!strings.Contains(string(body), "Siden kan ikke bruges sådan") {
			t.Errorf("%s %s: %d Allow %q %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), body)
		}
	}
}

// TestNewCodesPageSpeaksOfOldCodesOnlyWhenThereWere: the page showing
// new recovery codes says the old ones no longer work to a person who
// held some, and not to one who held none.
func TestNewCodesPageSpeaksOfOldCodesOnlyWhenThereWere(t *testing.T) {
	h := newHarness(t, true)
	for _, tt := range []struct {
		name string
		held bool
	}{{"held codes", true}, {"held none", false}} {
		t.Run(tt.name, func(t *testing.T) {
			b := h.browser("en")
			e := b.enrol(newDevice(false), "", "fnr")
			if !tt.held {
				if err := h.db.ReplaceRecoveryCodes(context.Background(), e.person, nil, h.now); err != nil {
					t.Fatal(err)
				}
			}
			csrf := attr(t, b.get("/account").body, "data-csrf")
			r := b.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}})
			if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/account/recovery-codes?") {
				t.Fatalf("new codes: %d %q", r.status, r.location)
			}
			page := b.get(r.location)
			if len(codesIn(page.body)) != passkeyidp.RecoveryCodeCount {
				t.Fatalf("new codes page: %d\n%s", page.status, page.body)
			}
			if says := strings.Contains(page.body, "Your old recovery codes no longer work"); says != tt.held {
				t.Errorf("page speaks of old codes: %v, want %v\n%s", says, tt.held, page.body)
			}
		})
	}
}

// TestRecoveryCodeOnceUnderConcurrency: the same code sent by several
// browsers at the same moment logs in one of them; the others are told
// it did not work, and the person has one code fewer.
func TestRecoveryCodeOnceUnderConcurrency(t *testing.T) {
	h := newHarness(t, true)
	e := h.browser("en").enrol(newDevice(false), "a", "fnr")
	const n = 8
	browsers := make([]*browser, n)
	tokens := make([]string, n)
	for i := range n {
		browsers[i] = h.browser("en")
		tokens[i] = field(t, browsers[i].get(fmt.Sprintf("/passkey/recover?attempt=c%d", i)).body, "csrf")
	}
	before := h.fin.count()
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			statuses[i] = browsers[i].form("/passkey/recover", url.Values{"attempt": {fmt.Sprintf("c%d", i)}, "csrf": {tokens[i]}, "code": {e.codes[0]}}).status
		})
	}
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		switch s {
		case http.StatusSeeOther:
			ok++
		case http.StatusBadRequest:
		default:
			t.Errorf("status %d", s)
		}
	}
	if ok != 1 || h.fin.count()-before != 1 {
		t.Fatalf("%d logins with one code (%v), %d finished", ok, statuses, h.fin.count()-before)
	}
	if left, _ := h.db.CountRecoveryCodes(context.Background(), e.person); left != passkeyidp.RecoveryCodeCount-1 {
		t.Fatalf("%d codes left", left)
	}
}

// TestAddedPasskeyEndsOtherSessionsWhenBegunInTime: a passkey added from
// a login at ChangeLevel or higher logs the person out everywhere else
// also when the add, begun while the login was recent, finishes after it
// no longer is: the passkey is stored at the login's level all the same.
func TestAddedPasskeyEndsOtherSessionsWhenBegunInTime(t *testing.T) {
	h := newHarness(t, true)
	b, other := enrolledTwice(t, h)
	h.now = h.now.Add(passkeyidp.ReauthAfter - time.Minute)
	csrf := attr(t, b.get("/account").body, "data-csrf")
	r, begun := b.json("/account/passkeys/begin", map[string]string{"name": "Laptop"}, csrf)
	if r.status != http.StatusOK {
		t.Fatalf("add begin: %d %v", r.status, begun)
	}
	id, body := h.create(t, newDevice(false), begun)
	h.now = h.now.Add(2 * time.Minute)
	if r, m := b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, csrf); r.status != http.StatusOK {
		t.Fatalf("add finish: %d %v", r.status, m)
	}
	if r := other.get("/account"); r.status != http.StatusSeeOther || r.location != "/login" {
		t.Fatalf("the other session after adding a passkey: %d %q", r.status, r.location)
	}
}

// enrolledTwice enrols a test person in one browser and logs them in
// with the same passkey in another, and returns both.
func enrolledTwice(t *testing.T, h *harness) (enrolled, other *browser) {
	t.Helper()
	enrolled = h.browser("en")
	phone := newDevice(false)
	enrolled.enrol(phone, "", "fnr")
	other = h.browser("en")
	if r, m := other.login(phone, h.rp, ""); r.status != 200 {
		t.Fatalf("second login: %d %v", r.status, m)
	}
	return enrolled, other
}

// TestAddPasskeyRefusedWithoutSessionLevel: a passkey is capped at the
// level of the session that adds it, so a session whose level is empty
// or unknown adds none (the person is asked to log in again): it would
// be stored without a cap, trusted at any level.
func TestAddPasskeyRefusedWithoutSessionLevel(t *testing.T) {
	for _, level := range []string{"", "very-high"} {
		t.Run(fmt.Sprintf("level %q", level), func(t *testing.T) {
			h := newHarness(t, true)
			b := h.browser("en")
			e := b.enrol(newDevice(false), "", "fnr")
			// A fresh session of the same person at that level, its
			// cookie in place of the enrolment's.
			w := httptest.NewRecorder()
			s := &store.Session{PersonID: e.person, Provider: passkeyidp.ID, Level: level, AuthTime: h.now}
			if err := h.fin.sessions.Start(context.Background(), w, httptest.NewRequest(http.MethodGet, h.origin+"/", nil), s); err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(h.origin)
			b.c.Jar.SetCookies(u, w.Result().Cookies())
			if page := b.get("/account"); page.status != http.StatusOK || strings.Contains(page.body, "data-csrf") {
				t.Errorf("the account page offers to add a passkey: %d", page.status)
			}
			req := httptest.NewRequest(http.MethodGet, h.origin+"/account", nil)
			for _, c := range b.c.Jar.Cookies(u) {
				req.AddCookie(c)
			}
			csrf := passkeyidp.SessionCSRF(h.p, req)
			r, begun := b.json("/account/passkeys/begin", map[string]string{"name": "Laptop"}, csrf)
			if r.status == http.StatusOK {
				id, body := h.create(t, newDevice(false), begun)
				b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, csrf)
			}
			if r.status != http.StatusForbidden || begun["error"] != "reauth" {
				t.Errorf("add begin: %d %v, want 403 reauth", r.status, begun)
			}
			keys, err := h.db.ListPasskeys(context.Background(), e.person)
			if err != nil || len(keys) != 1 {
				t.Fatalf("passkeys after the add: %d (%v), want the enrolled one alone", len(keys), err)
			}
			if !hasEvent(h.auditEvents(t), "passkey_added", store.ResultFailure, "reauth") {
				t.Error("the refused add is not audited")
			}
		})
	}
}

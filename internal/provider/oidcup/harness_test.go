package oidcup

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
	"github.com/varde-eid/varde/web"
)

// clock is a settable clock shared by Varde and fake upstreams.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// finisher stands in for the broker: it records every outcome.
type finisher struct {
	mu       sync.Mutex
	finishes []finished
	fails    []failed
	// failFinish, if set, is what Finish returns instead of a URL: the
	// broker's store failing it.
	failFinish func() error
}

type finished struct {
	attempt string
	res     provider.Result
}

// failed is a Fail, or a FailAccount with its account handle.
type failed struct{ attempt, reason, account string }

func (f *finisher) Finish(w http.ResponseWriter, r *http.Request, attemptID string, res provider.Result) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finishes = append(f.finishes, finished{attemptID, res})
	if f.failFinish != nil {
		return "", f.failFinish()
	}
	return "/finished?" + url.Values{"attempt": {attemptID}}.Encode(), nil
}

func (f *finisher) Fail(w http.ResponseWriter, r *http.Request, attemptID, _ string, reason string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails = append(f.fails, failed{attempt: attemptID, reason: reason})
	return "/failed?" + url.Values{"attempt": {attemptID}, "reason": {reason}}.Encode()
}

func (f *finisher) FailAccount(w http.ResponseWriter, r *http.Request, attemptID, _ string, account string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails = append(f.fails, failed{attemptID, provider.ReasonAccountRefused, account})
	return "/failed?" + url.Values{"attempt": {attemptID}, "reason": {provider.ReasonAccountRefused}}.Encode()
}

func (f *finisher) Pending(context.Context, string) (bool, error) { return true, nil }

func (f *finisher) Accepts(*http.Request, string, string, assurance.Level) (bool, error) {
	return true, nil
}

func (f *finisher) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.finishes), len(f.fails)
}

func (f *finisher) lastFinish(t *testing.T) finished {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.finishes) == 0 {
		t.Fatal("Finish was never called")
	}
	return f.finishes[len(f.finishes)-1]
}

// varde is the Varde side of the tests: a node's mux with upstream
// providers registered, a real store for login state and the audit log
// (SQLite, or PostgreSQL where nodes share it), and a recording Finisher
// in place of the broker.
type varde struct {
	t     testing.TB
	db    *sqlstore.DB
	srv   *httptest.Server
	mux   *http.ServeMux
	fin   *finisher
	audit *audit.Log
	pages *httpx.Pages
	clock *clock
	logs  *syncBuffer
	// chal is where providers keep login state: db unless a test puts
	// something in front of it. shared is their Deps.SharedChallenges.
	chal   store.Challenges
	shared bool

	mu        sync.Mutex
	providers map[string]*Provider
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newVarde(t testing.TB) *varde {
	t.Helper()
	db, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "varde.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return newVardeOn(t, db)
}

// newVardeOn is a Varde node over db.
func newVardeOn(t testing.TB, db *sqlstore.DB) *varde {
	t.Helper()
	return newNode(t, db, &finisher{}, &clock{t: time.Now().UTC().Truncate(time.Second)}, &syncBuffer{})
}

// node is another Varde node beside v over db, which is v's store or
// another handle on the same database, as nodes over one PostgreSQL
// database hold it: its own mux, server and providers, and v's clock,
// finisher (the broker's records are one) and log. Over v's own store
// it keeps login state where v does.
func (v *varde) node(db *sqlstore.DB) *varde {
	v.t.Helper()
	n := newNode(v.t, db, v.fin, v.clock, v.logs)
	if db == v.db {
		n.chal = v.chal
	}
	n.shared = v.shared
	return n
}

func newNode(t testing.TB, db *sqlstore.DB, fin *finisher, c *clock, logs *syncBuffer) *varde {
	t.Helper()
	v := &varde{t: t, db: db, chal: db, mux: http.NewServeMux(), fin: fin, clock: c, logs: logs, providers: map[string]*Provider{}}
	log := slog.New(slog.NewTextHandler(v.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	v.audit = &audit.Log{Store: db, Log: log, Now: v.clock.Now}
	var err error
	v.pages, err = httpx.NewPages(web.Templates, web.Locales, []httpx.Language{{Tag: "nb", Name: "Norsk bokmål"}, {Tag: "en", Name: "English"}}, log)
	if err != nil {
		t.Fatal(err)
	}
	// /start/{id}?attempt=&min=&locale=&hint= plays the broker's part of
	// handing an attempt to a provider.
	v.mux.HandleFunc("GET /start/{id}", func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		p := v.providers[r.PathValue("id")]
		v.mu.Unlock()
		q := r.URL.Query()
		min, _ := assurance.Parse(q.Get("min"))
		// Hinted, as when the relying party named the provider, unless
		// the test says otherwise: Start reads it only to look for a push
		// made early at another node.
		maxAge, _ := time.ParseDuration(q.Get("max_age"))
		p.Start(w, r, provider.Attempt{ID: q.Get("attempt"), Locale: q.Get("locale"), MinLevel: min, LoginHint: q.Get("hint"),
			Hinted: q.Get("unhinted") == "", Fresh: q.Get("fresh") != "", MaxAge: maxAge})
	})
	v.mux.HandleFunc("GET /finished", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "finished") })
	v.mux.HandleFunc("GET /failed", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "failed") })
	v.srv = httptest.NewServer(v.mux)
	t.Cleanup(v.srv.Close)
	return v
}

// overTLS serves v over HTTPS instead, as a node is served but on
// http://localhost; add providers after it, so that their redirect URIs
// are the HTTPS ones.
func (v *varde) overTLS() {
	v.t.Helper()
	v.srv.Close()
	v.srv = httptest.NewTLSServer(v.mux)
	v.t.Cleanup(v.srv.Close)
}

// newBrowser is a browser that trusts v's certificate.
func (v *varde) newBrowser() *browser {
	b := newBrowser(v.t)
	b.c.Transport = v.srv.Client().Transport
	return b
}

// redirectURI is the callback URI of provider id at this node.
func (v *varde) redirectURI(id string) string { return v.srv.URL + CallbackPath(id) }

// add builds and registers a provider.
func (v *varde) add(cfg Config) *Provider {
	v.t.Helper()
	p, err := New(cfg, Deps{
		HTTPClient: &http.Client{}, Challenges: v.chal, SharedChallenges: v.shared, Finisher: v.fin, Pages: v.pages, Audit: v.audit,
		Now: v.clock.Now, Log: slog.New(slog.NewTextHandler(v.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		v.t.Fatal(err)
	}
	p.Register(v.mux)
	v.mu.Lock()
	v.providers[cfg.ID] = p
	v.mu.Unlock()
	return p
}

// startURL starts a login through provider id.
func (v *varde) startURL(id, attempt string, min assurance.Level, locale, hint string) string {
	return v.srv.URL + "/start/" + id + "?" + url.Values{"attempt": {attempt}, "min": {min.String()}, "locale": {locale}, "hint": {hint}}.Encode()
}

// auditEvents returns every audit event, checking the chain.
func (v *varde) auditEvents() []*store.AuditEvent {
	v.t.Helper()
	if _, err := v.audit.Verify(context.Background()); err != nil {
		v.t.Fatal(err)
	}
	evs, err := v.db.ListAudit(context.Background(), 0, 1000)
	if err != nil {
		v.t.Fatal(err)
	}
	return evs
}

// reasons lists the Reason of every failure event in the audit log.
func (v *varde) reasons() []string {
	var out []string
	for _, e := range v.auditEvents() {
		if e.Result == store.ResultFailure {
			out = append(out, e.Reason)
		}
	}
	return out
}

// browser is a person's user agent with its own cookies. It follows
// redirects everywhere unless stop says to hand a redirect back.
type browser struct {
	t    testing.TB
	c    *http.Client
	stop func(*url.URL) bool
}

func newBrowser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t}
	b.c = &http.Client{Jar: jar, Timeout: 15 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) > 15 {
			return http.ErrUseLastResponse
		}
		if b.stop != nil && b.stop(req.URL) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// get visits u and returns the last response and its body.
func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// login runs a whole login and returns the final page's path and body.
func (b *browser) login(start string) (string, string) {
	b.t.Helper()
	resp, body := b.get(start)
	return resp.Request.URL.Path, body
}

// callbackURL runs a login up to the upstream's redirect back to Varde
// and returns that URL without visiting it.
func (b *browser) callbackURL(start string) string {
	b.t.Helper()
	b.stop = func(u *url.URL) bool { return strings.HasPrefix(u.Path, "/upstream/") }
	defer func() { b.stop = nil }()
	resp, _ := b.get(start)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound || !strings.Contains(loc, "/upstream/") {
		b.t.Fatalf("want a redirect to Varde's callback, got %d %q", resp.StatusCode, loc)
	}
	return loc
}

// fnr returns a valid synthetic Norwegian birth number.
func fnr(t testing.TB) string {
	t.Helper()
	n, err := identity.SyntheticNO(rand.Reader, identity.KindFnr, time.Date(1985, 5, 17, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// eidasACRs maps the eIDAS acr URIs, as Varde nodes send them.
func eidasACRs() map[string]assurance.Level {
	return map[string]assurance.Level{
		assurance.ACRLow: assurance.Low, assurance.ACRSubstantial: assurance.Substantial, assurance.ACRHigh: assurance.High,
	}
}

// checkNoLeaks fails if the log or the audit log holds a national
// identifier or anything shaped like a JWT.
func (v *varde) checkNoLeaks(secrets ...string) {
	v.t.Helper()
	logs := v.logs.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			v.t.Errorf("log output contains a secret or identifier")
		}
	}
	if strings.Contains(logs, "eyJ") {
		v.t.Errorf("log output contains something shaped like a JWT")
	}
	for _, e := range v.auditEvents() {
		all := e.Type + e.Reason + e.PersonID + e.Provider
		for k, val := range e.Details {
			all += k + val
			if val == audit.Redacted {
				v.t.Errorf("audit event %s/%s had a value redacted: %s", e.Type, e.Reason, k)
			}
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(all, s) {
				v.t.Errorf("audit event %s/%s contains a secret or identifier", e.Type, e.Reason)
			}
		}
	}
}

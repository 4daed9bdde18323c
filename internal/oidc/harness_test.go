package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
	"github.com/varde-eid/varde/web"
)

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

// storeAuditor appends audit events to the real store.
type storeAuditor struct {
	t  testing.TB
	db *sqlstore.DB
}

func (a storeAuditor) Record(ctx context.Context, e *store.AuditEvent) {
	if err := a.db.AppendAudit(ctx, e); err != nil {
		a.t.Errorf("audit: %v", err)
	}
}

func (a storeAuditor) Prepare(ctx context.Context, e *store.AuditEvent) {}

// Test clients.
const (
	bankID    = "bank"        // private_key_jwt, PAR required, sector bank.example, gets national_id
	mobileID  = "bank-mobile" // client_secret_basic, same sector as bank
	taxID     = "tax"         // client_secret_basic, own sector, substantial or high only
	publicID  = "kiosk"       // public client (none)
	bankCB    = "https://bank.example/cb"
	mobileCB  = "https://m.bank.example/cb"
	taxCB     = "https://tax.example/cb"
	taxCB2    = "https://tax.example/cb2"
	kioskCB   = "https://kiosk.example/cb"
	bankBye   = "https://bank.example/bye"
	secretLen = 40
)

type harness struct {
	t        testing.TB
	db       *sqlstore.DB
	srv      *httptest.Server
	issuer   string
	p        *Provider
	clock    *clock
	sessions *session.Manager
	reg      *prometheus.Registry
	person   *store.Person
	other    *store.Person
	bankKey  *ecdsa.PrivateKey
	secrets  map[string]string

	// The test login page: it logs in loginPerson at loginLevel through
	// loginProvider, unless autoLogin is false, in which case it just
	// shows a page.
	mu            sync.Mutex
	autoLogin     bool
	loginLevel    string
	loginPerson   string
	loginProvider string
	// loginDegraded marks the sessions the test login starts as let
	// through by a degraded-mode policy (as the broker would).
	loginDegraded bool
	// loginViaResume makes the test login send the browser back to
	// PathResume instead of ending the login with Continue.
	loginViaResume bool
	logins         atomic.Int64
}

// newHarness starts a provider over a fresh store; each of opts may
// change the provider (h.p) before it is checked and registered.
func newHarness(t testing.TB, opts ...func(h *harness)) *harness {
	t.Helper()
	db, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return newHarnessOver(t, db, opts...)
}

// newHarnessOver is newHarness over db, a fresh store.
func newHarnessOver(t testing.TB, db *sqlstore.DB, opts ...func(h *harness)) *harness {
	t.Helper()
	ctx := context.Background()
	h := &harness{
		t: t, db: db, clock: &clock{t: time.Now().UTC().Truncate(time.Second)},
		secrets: map[string]string{}, autoLogin: true, loginLevel: "substantial", loginProvider: "passkey", reg: prometheus.NewRegistry(),
	}
	mux := http.NewServeMux()
	h.srv = httptest.NewServer(httpx.WithRequestID(mux))
	t.Cleanup(h.srv.Close)
	h.issuer = h.srv.URL

	h.person = &store.Person{ID: "p-kari", WebAuthnID: randBytes(32), GivenName: "Kari", FamilyName: "Nordmann",
		BirthDate: "1970-01-01", Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "01017012345"}},
		ProofingLevel: "high", Synthetic: true, CreatedAt: h.clock.Now()}
	h.other = &store.Person{ID: "p-ola", WebAuthnID: randBytes(32), GivenName: "Ola", FamilyName: "Nordmann",
		ProofingLevel: "high", Synthetic: true, CreatedAt: h.clock.Now()}
	for _, p := range []*store.Person{h.person, h.other} {
		if err := db.CreatePerson(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	h.loginPerson = h.person.ID

	h.bankKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	bankJWKS, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: h.bankKey.Public(), KeyID: "bank-1", Algorithm: "ES256", Use: "sig"}}})
	for _, c := range []*store.Client{
		{ID: bankID, AuthMethod: store.AuthPrivateKeyJWT, JWKS: bankJWKS, RedirectURIs: []string{bankCB},
			PostLogoutRedirectURIs: []string{bankBye}, RequirePAR: true, SectorID: "bank.example", Claims: []string{"name", "national_id"}, RefreshTokens: true},
		{ID: mobileID, AuthMethod: store.AuthClientSecretBasic, SecretHash: h.secret(mobileID), RedirectURIs: []string{mobileCB},
			SectorID: "bank.example", Claims: []string{"name"}, RefreshTokens: true},
		{ID: taxID, AuthMethod: store.AuthClientSecretBasic, SecretHash: h.secret(taxID), RedirectURIs: []string{taxCB, taxCB2},
			AllowedLevels: []string{"substantial", "high"}, Claims: []string{"given_name", "family_name", "birthdate"}, RefreshTokens: true},
		{ID: publicID, AuthMethod: store.AuthNone, RedirectURIs: []string{kioskCB}, RefreshTokens: true},
	} {
		if err := db.AddClient(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
	}

	signer, err := keys.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keySet := &keys.Set{Store: db, Local: signer, Node: "n1", Now: h.clock.Now}
	if err := keySet.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	pages, err := httpx.NewPages(web.Templates, web.Locales, []httpx.Language{{Tag: "nb", Name: "Norsk bokmål"}, {Tag: "en", Name: "English"}}, log)
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := NewMetrics(h.reg)
	if err != nil {
		t.Fatal(err)
	}
	h.sessions = &session.Manager{Store: db, Lifetime: 8 * time.Hour, Now: h.clock.Now}
	h.p = &Provider{
		Issuer: h.issuer, Clients: db, AuthRequests: db, AuthCodes: db, Grants: db, Tokens: db, Persons: db,
		Sessions: h.sessions, SessionClients: db, LiveSessions: db, LogoutOutbox: db, Signer: signer, KeySet: keySet,
		ClientAuth:  &oauth2.ClientAuthenticator{Clients: db, Replay: db, Audiences: Audiences(h.issuer), Now: h.clock.Now},
		Audit:       storeAuditor{t, db},
		Pages:       pages,
		SubjectSalt: []byte(strings.Repeat("s", 32)),
		// As a node has it by default (config.DefaultRefreshReuseInterval).
		RefreshReuseInterval: 30 * time.Second,
		Now:                  h.clock.Now, Log: log, Metrics: metrics,
	}
	for _, o := range opts {
		o(h)
	}
	if err := h.p.Check(); err != nil {
		t.Fatal(err)
	}
	h.sessions.Ended = h.p.SessionsEnded
	h.p.Register(mux)
	mux.HandleFunc("GET /login", h.login)
	return h
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func (h *harness) secret(id string) []byte {
	s := rand.Text() + rand.Text()
	h.secrets[id] = s
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

// login is a stand-in for the broker: it starts a session for the
// configured person and ends the login as the broker does, with
// Continue (or, with loginViaResume, by sending the browser back to
// PathResume).
func (h *harness) login(w http.ResponseWriter, r *http.Request) {
	h.logins.Add(1)
	h.mu.Lock()
	auto, level, person, provider := h.autoLogin, h.loginLevel, h.loginPerson, h.loginProvider
	degraded, viaResume := h.loginDegraded, h.loginViaResume
	h.mu.Unlock()
	id := r.URL.Query().Get("req")
	if !auto {
		fmt.Fprint(w, "login page")
		return
	}
	s := &store.Session{PersonID: person, Provider: provider, Level: level, AMR: []string{"hwk", "user", "mfa"}, AuthTime: h.clock.Now(), Degraded: degraded}
	req, err := h.db.GetAuthRequest(r.Context(), id, h.clock.Now())
	if err != nil || viaResume {
		if err := h.sessions.Start(r.Context(), w, r, s); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		http.Redirect(w, r, PathResume+"?req="+url.QueryEscape(id), http.StatusSeeOther)
		return
	}
	c, err := h.db.GetClient(r.Context(), req.ClientID)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	n, err := h.sessions.New(r, s)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	next, err := h.p.Continue(r.Context(), c, req, s, func(events ...*store.AuditEvent) error {
		return h.sessions.Save(r.Context(), w, r, n, events...)
	})
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// waiting returns the stored request id that a login is for, and its
// client.
func (h *harness) waiting(id string) (*store.AuthRequest, *store.Client) {
	h.t.Helper()
	ctx := context.Background()
	req, err := h.db.GetAuthRequest(ctx, id, h.clock.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	c, err := h.db.GetClient(ctx, req.ClientID)
	if err != nil {
		h.t.Fatal(err)
	}
	return req, c
}

func (h *harness) setLogin(auto bool, level, person string) {
	h.mu.Lock()
	h.autoLogin, h.loginLevel, h.loginPerson = auto, level, person
	h.mu.Unlock()
}

// browser is a person's user agent: it keeps cookies and follows
// redirects within Varde, stopping at the first response that is not a
// redirect to Varde (a redirect to a relying party, or a page).
type browser struct {
	h *harness
	c *http.Client
}

func (h *harness) browser() *browser {
	jar, _ := cookiejar.New(nil)
	host := strings.TrimPrefix(h.issuer, "http://")
	return &browser{h: h, c: &http.Client{
		Jar: jar,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host != host || len(via) > 10 {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}}
}

// get visits u and returns the final response (body read into body).
func (b *browser) get(u string) (*http.Response, string) {
	b.h.t.Helper()
	resp, err := b.c.Get(u)
	if err != nil {
		b.h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) post(u string, form url.Values) (*http.Response, string) {
	b.h.t.Helper()
	resp, err := b.c.PostForm(u, form)
	if err != nil {
		b.h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// callback returns the query of a redirect to a relying party, failing
// if resp is not one.
func (h *harness) callback(resp *http.Response, prefix string) url.Values {
	h.t.Helper()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, prefix+"?") {
		h.t.Fatalf("want redirect to %s, got %d Location %q", prefix, resp.StatusCode, loc)
	}
	u, err := url.Parse(loc)
	if err != nil {
		h.t.Fatal(err)
	}
	q := u.Query()
	// RFC 9207: every authorization response carries iss.
	if q.Get("iss") != h.issuer {
		h.t.Fatalf("iss = %q, want %q", q.Get("iss"), h.issuer)
	}
	return q
}

// assertion is a private_key_jwt client assertion by the bank, for the
// issuer, changed by mutate if it is not nil.
func (h *harness) assertion(mutate func(*jwt.Claims)) string {
	h.t.Helper()
	return h.assertionWith(h.bankKey, jose.ES256, "bank-1", mutate)
}

func (h *harness) assertionWith(key any, alg jose.SignatureAlgorithm, kid string, mutate func(*jwt.Claims)) string {
	h.t.Helper()
	now := h.clock.Now()
	c := jwt.Claims{Issuer: bankID, Subject: bankID, Audience: jwt.Audience{h.issuer}, ID: rand.Text(),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}
	if mutate != nil {
		mutate(&c)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		h.t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

func (h *harness) bankAuth(form url.Values) url.Values {
	form.Set("client_assertion_type", oauth2.AssertionType)
	form.Set("client_assertion", h.assertion(nil))
	return form
}

// postForm posts a form to a Varde endpoint with optional Basic
// credentials and decodes the JSON reply.
func (h *harness) postForm(path string, form url.Values, basicID string) (int, http.Header, map[string]any) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(h.secrets[basicID]))
	}
	return h.do(req)
}

func (h *harness) do(req *http.Request) (int, http.Header, map[string]any) {
	h.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			h.t.Fatalf("%s: not JSON (%d): %s", req.URL.Path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, resp.Header, body
}

// auditEvents returns every audit event of type typ.
func (h *harness) auditEvents(typ string) []*store.AuditEvent {
	h.t.Helper()
	all, err := h.db.ListAudit(context.Background(), 0, 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []*store.AuditEvent
	for _, e := range all {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// counter returns a counter's value from the test registry.
func (h *harness) counter(name string, labels map[string]string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func newHarnessKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

package oidcup

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/oidc"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// vardeUpstream is a real OpenID provider: a Varde node's OpenID
// endpoints (package oidc) over their own SQLite store, with a stand-in
// login page that logs the configured person in at the configured level.
type vardeUpstream struct {
	t        *testing.T
	issuer   string
	db       *sqlstore.DB
	sessions *session.Manager
	mux      *http.ServeMux
	fnr      string

	mu     sync.Mutex
	level  string
	cancel bool // the person cancels instead of logging in
	// loggedIn is when the person last logged in at the upstream, by
	// the wall clock: the auth_time of the session the login starts.
	loggedIn time.Time
}

// Clients registered for Varde at the upstream.
const (
	jwtClient    = "varde-jwt"   // private_key_jwt
	basicClient  = "varde-basic" // client_secret_basic
	parClient    = "varde-par"   // private_key_jwt, PAR required
	upstreamName = "Demo BankID"
)

func newVardeUpstream(t *testing.T, v *varde, id string, clientKey jose.JSONWebKey, secret string) *vardeUpstream {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "upstream.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	u := &vardeUpstream{t: t, issuer: srv.URL, db: db, fnr: fnr(t), level: "substantial"}

	person := &store.Person{ID: "p-kari", WebAuthnID: make([]byte, 32), GivenName: "Kari", FamilyName: "Nordmann",
		Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: u.fnr}}, ProofingLevel: "high", Synthetic: true, CreatedAt: time.Now()}
	_, _ = rand.Read(person.WebAuthnID)
	if err := db.CreatePerson(ctx, person); err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{clientKey}})
	sum := sha256.Sum256([]byte(secret))
	redirect := v.redirectURI(id)
	for _, c := range []*store.Client{
		{ID: jwtClient, AuthMethod: store.AuthPrivateKeyJWT, JWKS: jwks, RedirectURIs: []string{redirect}, Claims: []string{"national_id"}},
		{ID: basicClient, AuthMethod: store.AuthClientSecretBasic, SecretHash: sum[:], RedirectURIs: []string{redirect}, Claims: []string{"national_id"}},
		{ID: parClient, AuthMethod: store.AuthPrivateKeyJWT, JWKS: jwks, RedirectURIs: []string{redirect}, Claims: []string{"national_id"}, RequirePAR: true},
	} {
		if err := db.AddClient(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	signer, err := keys.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keySet := &keys.Set{Store: db, Local: signer, Node: "up1"}
	if err := keySet.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	u.sessions = &session.Manager{Store: db, Lifetime: time.Hour, Now: time.Now}
	log := slog.New(slog.DiscardHandler)
	op := &oidc.Provider{
		Issuer: u.issuer, Clients: db, AuthRequests: db, AuthCodes: db, Grants: db, Tokens: db, Persons: db,
		Sessions: u.sessions, SessionClients: db, LiveSessions: db, Signer: signer, KeySet: keySet,
		ClientAuth:  &oauth2.ClientAuthenticator{Clients: db, Replay: db, Audiences: oidc.Audiences(u.issuer)},
		Audit:       &audit.Log{Store: db, Log: log},
		SubjectSalt: []byte(strings.Repeat("u", 32)), Log: log,
	}
	if err := op.Check(); err != nil {
		t.Fatal(err)
	}
	op.Register(mux)
	mux.HandleFunc("GET /login", u.login)
	u.mux = mux
	return u
}

// login stands in for the upstream's own login: it starts a session for
// the person and resumes the request, or cancels it.
func (u *vardeUpstream) login(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	level, cancel := u.level, u.cancel
	u.mu.Unlock()
	req := r.URL.Query().Get("req")
	if cancel {
		// The person presses Cancel: the login page's form posts to
		// PathCancel.
		c := r.Clone(r.Context())
		c.Method, c.URL.Path, c.URL.RawQuery = http.MethodPost, oidc.PathCancel, url.Values{"req": {req}}.Encode()
		c.Body = http.NoBody
		u.mux.ServeHTTP(w, c)
		return
	}
	s := &store.Session{PersonID: "p-kari", Provider: "passkey", Level: level, AMR: []string{"hwk", "user", "mfa"}, AuthTime: time.Now()}
	u.mu.Lock()
	u.loggedIn = s.AuthTime
	u.mu.Unlock()
	if err := u.sessions.Start(r.Context(), w, r, s); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, oidc.PathResume+"?req="+url.QueryEscape(req), http.StatusSeeOther)
}

// authTime is the auth_time the upstream sends for the person's last
// login there: its time in whole seconds (OIDC Core §2).
func (u *vardeUpstream) authTime() time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return time.Unix(u.loggedIn.Unix(), 0)
}

func (u *vardeUpstream) set(level string, cancel bool) {
	u.mu.Lock()
	u.level, u.cancel = level, cancel
	u.mu.Unlock()
}

// vardeConfig configures Varde to use a Varde upstream.
func vardeConfig(v *varde, u *vardeUpstream, id, clientID string) Config {
	return Config{
		ID: id, Name: map[string]string{"en": upstreamName}, Issuer: u.issuer, ClientID: clientID,
		RedirectURI: v.redirectURI(id), MaxLevel: assurance.High, ACRMap: eidasACRs(),
		IdentifierClaim: "national_id", IdentifierSchemes: []string{"no:fnr", "no:dnr"},
	}
}

func TestLoginAtVardeUpstream(t *testing.T) {
	v := newVarde(t)
	key := ecKey(t)
	secret := rand.Text() + rand.Text()
	clientJWK := jose.JSONWebKey{Key: key.Public(), KeyID: "varde-1", Algorithm: "ES256", Use: "sig"}
	u := newVardeUpstream(t, v, "bankid", clientJWK, secret)
	_ = u

	jwtCfg := vardeConfig(v, u, "bankid", jwtClient)
	jwtCfg.AuthMethod, jwtCfg.ClientKey, jwtCfg.KeyID = AuthPrivateKeyJWT, key, "varde-1"
	v.add(jwtCfg)

	// The same upstream under other IDs, so each registration is its own
	// provider; the upstream knows one redirect URI per client, so these
	// get their own upstream.
	v2 := newVarde(t)
	u2 := newVardeUpstream(t, v2, "minid", clientJWK, secret)
	basicCfg := vardeConfig(v2, u2, "minid", basicClient)
	basicCfg.AuthMethod, basicCfg.ClientSecret = AuthClientSecretBasic, secret
	v2.add(basicCfg)

	v3 := newVarde(t)
	u3 := newVardeUpstream(t, v3, "bankid", clientJWK, secret)
	parCfg := vardeConfig(v3, u3, "bankid", parClient)
	parCfg.AuthMethod, parCfg.ClientKey, parCfg.KeyID, parCfg.UsePAR = AuthPrivateKeyJWT, key, "varde-1", true
	v3.add(parCfg)

	// prompt=login with max_age=0: Varde's OP logs the person in afresh
	// and sends auth_time, which is then required.
	v4 := newVarde(t)
	u4 := newVardeUpstream(t, v4, "bankid", clientJWK, secret)
	freshCfg := vardeConfig(v4, u4, "bankid", jwtClient)
	freshCfg.AuthMethod, freshCfg.ClientKey, freshCfg.KeyID, freshCfg.PromptLogin = AuthPrivateKeyJWT, key, "varde-1", true
	v4.add(freshCfg)

	for _, tc := range []struct {
		name     string
		v        *varde
		u        *vardeUpstream
		id       string
		upLevel  string
		min      assurance.Level
		want     assurance.Level
		wantAMR  []string
		locale   string
		attempt  string
		fresh    bool // prompt=login is sent
		wantFail bool
	}{
		{name: "private_key_jwt", v: v, u: u, id: "bankid", upLevel: "substantial", min: assurance.Substantial, want: assurance.Substantial, locale: "nb", attempt: "a1"},
		{name: "private_key_jwt high", v: v, u: u, id: "bankid", upLevel: "high", min: assurance.High, want: assurance.High, locale: "en", attempt: "a2"},
		{name: "client_secret_basic", v: v2, u: u2, id: "minid", upLevel: "substantial", min: assurance.Low, want: assurance.Substantial, attempt: "a3"},
		{name: "pushed request", v: v3, u: u3, id: "bankid", upLevel: "high", min: assurance.Substantial, want: assurance.High, attempt: "a4"},
		{name: "fresh login", v: v4, u: u4, id: "bankid", upLevel: "substantial", min: assurance.Substantial, want: assurance.Substantial, attempt: "a5", fresh: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.u.set(tc.upLevel, false)
			// The node's clock stands where newVarde set it, seconds ago
			// on a busy machine; it goes to a whole second a little after
			// the wall clock, which the upstream logs in by, so that the
			// upstream's auth_time is before the node's now, as when the
			// clocks agree, and is passed on as it is.
			tc.v.clock.Add(time.Now().Truncate(time.Second).Add(5 * time.Second).Sub(tc.v.clock.Now()))
			before, _ := tc.v.fin.counts()
			path, body := newBrowser(t).login(tc.v.startURL(tc.id, tc.attempt, tc.min, tc.locale, ""))
			if path != "/finished" {
				t.Fatalf("login ended at %s: %.300s\nreasons %v", path, body, tc.v.reasons())
			}
			n, fails := tc.v.fin.counts()
			if n != before+1 || fails != 0 {
				t.Fatalf("Finish calls %d→%d, Fail calls %d", before, n, fails)
			}
			got := tc.v.fin.lastFinish(t)
			want := store.Identifier{Scheme: "no:fnr", Value: tc.u.fnr}
			if got.attempt != tc.attempt || got.res.Provider != tc.id || got.res.Method != Method || got.res.Level != tc.want ||
				len(got.res.Identifiers) != 1 || got.res.Identifiers[0] != want || got.res.PersonID != "" {
				t.Fatalf("Finish(%q, %+v), want attempt %q provider %s level %s identifier %v", got.attempt, got.res, tc.attempt, tc.id, tc.want, want)
			}
			if !slices.Equal(got.res.AMR, []string{"hwk", "user", "mfa"}) {
				t.Errorf("AMR = %v", got.res.AMR)
			}
			// The upstream's auth_time as it is (inOurTime), but for a
			// fresh login, whose auth_time the upstream dates within the
			// leeway before the request, which is reported as the
			// request's time, the node's now.
			wantTime := tc.u.authTime()
			if now := tc.v.clock.Now(); tc.fresh || wantTime.After(now) {
				wantTime = now
			}
			if !got.res.AuthTime.Equal(wantTime) {
				t.Errorf("AuthTime %v is not the upstream login's time %v (upstream's auth_time %v, node's now %v)",
					got.res.AuthTime, wantTime, tc.u.authTime(), tc.v.clock.Now())
			}
			tc.v.checkNoLeaks(tc.u.fnr, secret)
		})
	}
	if r := v.reasons(); len(r) != 0 {
		t.Errorf("audited failures %v", r)
	}
}

// TestLevelNeverRaised: an upstream configured for substantial that
// asserts high yields substantial.
func TestLevelNeverRaised(t *testing.T) {
	v := newVarde(t)
	key := ecKey(t)
	u := newVardeUpstream(t, v, "minid", jose.JSONWebKey{Key: key.Public(), KeyID: "k", Algorithm: "ES256", Use: "sig"}, "")
	cfg := vardeConfig(v, u, "minid", jwtClient)
	cfg.AuthMethod, cfg.ClientKey, cfg.KeyID, cfg.MaxLevel = AuthPrivateKeyJWT, key, "k", assurance.Substantial
	v.add(cfg)
	u.set("high", false)
	if path, body := newBrowser(t).login(v.startURL("minid", "a", assurance.Substantial, "", "")); path != "/finished" {
		t.Fatalf("login ended at %s: %.300s", path, body)
	}
	if got := v.fin.lastFinish(t).res.Level; got != assurance.Substantial {
		t.Fatalf("level %s, want substantial (the configured maximum)", got)
	}
}

// TestCancelAtUpstream: access_denied from the upstream is the person
// cancelling; the broker hears "cancelled".
func TestCancelAtUpstream(t *testing.T) {
	v := newVarde(t)
	key := ecKey(t)
	u := newVardeUpstream(t, v, "bankid", jose.JSONWebKey{Key: key.Public(), KeyID: "k", Algorithm: "ES256", Use: "sig"}, "")
	cfg := vardeConfig(v, u, "bankid", jwtClient)
	cfg.AuthMethod, cfg.ClientKey, cfg.KeyID = AuthPrivateKeyJWT, key, "k"
	v.add(cfg)
	u.set("substantial", true)
	path, _ := newBrowser(t).login(v.startURL("bankid", "a-cancel", assurance.Substantial, "", ""))
	if path != "/failed" {
		t.Fatalf("login ended at %s, want /failed", path)
	}
	n, fails := v.fin.counts()
	if n != 0 || fails != 1 || v.fin.fails[0] != (failed{attempt: "a-cancel", reason: "cancelled"}) {
		t.Fatalf("Finish %d, Fail %v", n, v.fin.fails)
	}
	if r := v.reasons(); !slices.Equal(r, []string{ReasonCancelled}) {
		t.Fatalf("audited %v", r)
	}
}

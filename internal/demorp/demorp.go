package demorp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/oauth2/dpopclient"
)

//go:embed templates/*.html static/*.css
var files embed.FS

// RP is Demo Bank.
type RP struct {
	Name     string
	ClientID string
	// Issuer is Varde's issuer URL.
	Issuer string
	// BaseURL is where this RP is served, e.g. http://localhost:8080/demo-bank.
	BaseURL string
	// Key signs client assertions (private_key_jwt); KeyID is its kid.
	Key   crypto.Signer
	KeyID string
	// DPoPKey, if set, is the key the bank's tokens are bound to (DPoP,
	// RFC 9449): a proof made with it goes with every token request and
	// every use of the access token. Proofs carry the nonce Varde last
	// handed out (§8, §9); a request refused with use_dpop_nonce is sent
	// once more, with the new one.
	DPoPKey *ecdsa.PrivateKey
	// ACRValues are offered on the home page, lowest first.
	ACRValues []string
	// ProviderNames names, by ID, the upstream providers Varde may log
	// people in with: the ID token's provider claim carries the ID only.
	// An ID not listed is shown as it is; "passkey" is Varde's own.
	ProviderNames map[string]string
	HTTPClient    *http.Client
	Log           *slog.Logger
	Now           func() time.Time

	tmpl *template.Template
	// prefix is BaseURL's path without its trailing slash.
	prefix string

	discoverMu sync.Mutex
	provider   *oidc.Provider
	par        string
	endSession string
	userinfo   string

	// dpop makes the proofs and keeps the nonce Varde last handed out;
	// tokenHTTP sends a proof with every token request. Both are nil
	// without DPoPKey; setup makes them.
	dpop      *dpopclient.Prover
	tokenHTTP *http.Client

	mu       sync.Mutex
	pending  map[string]pending // by state
	sessions map[string]*loggedIn
	// swept is when current last dropped every expired session and login.
	swept time.Time
	// logoutJTIs are the jti of the logout tokens taken, each kept until
	// its token could no longer be accepted.
	logoutJTIs map[string]time.Time
}

type pending struct {
	verifier, nonce string
	// acr is the level asked for, "" for none.
	acr     string
	expires time.Time
}

type loggedIn struct {
	IDToken string
	Claims  map[string]any
	Pretty  string
	// Bound: the access token is bound to DPoPKey, and Varde's UserInfo
	// endpoint, asked with a proof, named the same person.
	Bound   bool
	expires time.Time
}

const cookieName = "demobank_session"

// Handler returns the handler that serves Demo Bank under the path of
// BaseURL, or an error naming the problem when BaseURL is not an
// absolute http or https URL without query or fragment: the bank's
// paths, cookies and redirect URI all come from it, and a bank built on
// a wrong one could serve nothing it meant to.
func (rp *RP) Handler() (http.Handler, error) {
	u, err := url.Parse(rp.BaseURL)
	switch {
	case err != nil:
		return nil, fmt.Errorf("demo bank: BaseURL %q: %w", rp.BaseURL, err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return nil, fmt.Errorf("demo bank: BaseURL %q is not an absolute http or https URL", rp.BaseURL)
	case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(rp.BaseURL, "?") || strings.HasSuffix(rp.BaseURL, "#"):
		return nil, fmt.Errorf("demo bank: BaseURL %q has a query or fragment", rp.BaseURL)
	}
	rp.prefix = strings.TrimSuffix(u.Path, "/")
	rp.pending = map[string]pending{}
	rp.sessions = map[string]*loggedIn{}
	rp.logoutJTIs = map[string]time.Time{}
	rp.tmpl = template.Must(template.ParseFS(files, "templates/*.html"))
	static, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	prefix := rp.path()
	mux := http.NewServeMux()
	mux.Handle("GET "+prefix+"/static/", http.StripPrefix(prefix+"/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET "+prefix+"/{$}", rp.home)
	// The forms are refused when another site sends them (a request
	// whose Sec-Fetch-Site or Origin names another origin), so a page
	// elsewhere can neither log the person out nor begin a login in
	// their browser. The back-channel logout is Varde's server calling,
	// with neither header, and passes.
	crossOrigin := http.NewCrossOriginProtection()
	crossOrigin.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rp.Log.Warn("demo bank: cross-origin form refused", "path", r.URL.Path, "origin", r.Header.Get("Origin"))
		rp.render(w, r, http.StatusForbidden, "home.html", page{Error: texts[lang(r)].ErrCrossSite, Session: rp.current(r)})
	}))
	mux.Handle("POST "+prefix+"/login", crossOrigin.Handler(http.HandlerFunc(rp.login)))
	mux.HandleFunc("GET "+prefix+"/callback", rp.callback)
	mux.HandleFunc("GET "+prefix+"/account", rp.account)
	mux.Handle("POST "+prefix+"/logout", crossOrigin.Handler(http.HandlerFunc(rp.logout)))
	mux.HandleFunc("POST "+prefix+"/backchannel-logout", rp.backchannelLogout)
	// The forms' addresses asked for by GET (a bookmark, an address
	// typed or reloaded) go to the home page; any other address gets
	// Demo Bank's own page, never the mux's plain text.
	mux.HandleFunc("GET "+prefix+"/login", rp.toHome)
	mux.HandleFunc("GET "+prefix+"/logout", rp.toHome)
	mux.HandleFunc("GET "+prefix+"/logout/varde", rp.logoutVarde)
	mux.HandleFunc(prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		rp.render(w, r, http.StatusNotFound, "notfound.html", page{})
	})
	return mux, nil
}

func (rp *RP) toHome(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, rp.BaseURL+"/", http.StatusSeeOther)
}

// cookie is one of the bank's cookies, kept for maxAge seconds (-1
// deletes it): under the bank's path, out of reach of scripts, not sent
// with requests from other sites but a link followed (SameSite=Lax), and
// sent only over TLS when the bank is served over https (RFC 6265 §4.1.2.5):
// a session or state cookie sent in clear text can be read on the way.
// Over plain http, as on localhost in the demo, a browser may refuse a
// Secure cookie, so there it is sent without the attribute.
func (rp *RP) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: rp.path() + "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: strings.HasPrefix(rp.BaseURL, "https://")}
}

// path is BaseURL's path without its trailing slash, as Handler found it.
func (rp *RP) path() string {
	return rp.prefix
}

// setup discovers Varde lazily: in the demo both run in one process and
// Varde is not listening yet when Demo Bank is built. A failed discovery
// is tried again on the next request.
func (rp *RP) setup(ctx context.Context) error {
	rp.discoverMu.Lock()
	defer rp.discoverMu.Unlock()
	if rp.provider != nil {
		return nil
	}
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, rp.HTTPClient), rp.Issuer)
	if err != nil {
		return err
	}
	var meta struct {
		PAR        string `json:"pushed_authorization_request_endpoint"`
		EndSession string `json:"end_session_endpoint"`
		UserInfo   string `json:"userinfo_endpoint"`
	}
	if err := provider.Claims(&meta); err != nil {
		return err
	}
	if meta.PAR == "" {
		return errors.New("issuer has no PAR endpoint")
	}
	if rp.DPoPKey != nil {
		dpop, err := dpopclient.New(rp.DPoPKey, rp.Now)
		if err != nil {
			return err
		}
		tokenHTTP, err := dpop.Client(rp.HTTPClient, provider.Endpoint().TokenURL)
		if err != nil {
			return err
		}
		rp.dpop, rp.tokenHTTP = dpop, tokenHTTP
	}
	rp.provider, rp.par, rp.endSession, rp.userinfo = provider, meta.PAR, meta.EndSession, meta.UserInfo
	return nil
}

func (rp *RP) oauth() *oauth2.Config {
	return &oauth2.Config{
		ClientID:    rp.ClientID,
		Endpoint:    oauth2.Endpoint{AuthURL: rp.provider.Endpoint().AuthURL, TokenURL: rp.provider.Endpoint().TokenURL, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: rp.BaseURL + "/callback",
		Scopes:      []string{oidc.ScopeOpenID, "profile"},
	}
}

// assertion builds a private_key_jwt client assertion (RFC 7523 §3).
// Its audience is Varde's issuer identifier alone, which discovery
// checked against the metadata (go-oidc refuses a document naming
// another issuer), never an endpoint URL the metadata supplied
// (draft-ietf-oauth-rfc7523bis).
func (rp *RP) assertion() (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: rp.Key, KeyID: rp.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	now := rp.Now()
	return jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: rp.ClientID, Subject: rp.ClientID, Audience: jwt.Audience{rp.Issuer},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)), ID: random(16),
	}).Serialize()
}

// exchange redeems code with PKCE's verifier and a fresh client
// assertion, and a DPoP proof if the bank has a DPoP key. Asked for a
// DPoP nonce (RFC 9449 §8), it tries once more, with a proof that
// carries the nonce and a new assertion.
func (rp *RP) exchange(ctx context.Context, code, verifier string) (*oauth2.Token, error) {
	if rp.tokenHTTP != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, rp.tokenHTTP)
	}
	tok, err := rp.exchangeOnce(ctx, code, verifier)
	if rp.dpop != nil && dpopclient.ExchangeAsksNonce(err) {
		tok, err = rp.exchangeOnce(ctx, code, verifier)
	}
	return tok, err
}

// exchangeOnce is one token request, with a new client assertion.
func (rp *RP) exchangeOnce(ctx context.Context, code, verifier string) (*oauth2.Token, error) {
	assertion, err := rp.assertion()
	if err != nil {
		return nil, fmt.Errorf("client assertion: %w", err)
	}
	return rp.oauth().Exchange(ctx, code, oauth2.VerifierOption(verifier),
		oauth2.SetAuthURLParam("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
		oauth2.SetAuthURLParam("client_assertion", assertion))
}

// checkBound reports whether tok is bound to the bank's DPoP key: its
// type says so and Varde's UserInfo endpoint, asked with the DPoP scheme
// and a proof, answers for the person the ID token names (sub).
func (rp *RP) checkBound(ctx context.Context, tok *oauth2.Token, sub string) (bool, error) {
	if tok.TokenType != "DPoP" {
		return false, fmt.Errorf("token_type %q, want DPoP", tok.TokenType)
	}
	if rp.userinfo == "" {
		return false, errors.New("issuer has no UserInfo endpoint")
	}
	// RFC 9449 §9: asked for a nonce, the request goes once more, with
	// the nonce that came with the refusal.
	res, err := rp.dpop.Resource(ctx, rp.HTTPClient, http.MethodGet, rp.userinfo, tok.AccessToken)
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	var info struct {
		Sub string `json:"sub"`
	}
	if res.StatusCode != http.StatusOK {
		return false, fmt.Errorf("userinfo: %s", res.Status)
	}
	raw, err := readBounded(res.Body)
	if err != nil {
		return false, fmt.Errorf("userinfo: %w", err)
	}
	if err := json.Unmarshal(raw, &info); err != nil {
		return false, fmt.Errorf("userinfo: %w", err)
	}
	if info.Sub != sub {
		return false, errors.New("userinfo names another person than the ID token")
	}
	return true, nil
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

type page struct {
	Name, Lang string
	Title      string
	Stylesheet string
	Home       string // the home page's path
	T          *text
	Languages  []langLink
	Levels     []level
	// Chosen is the level the person chose in the form a page answers,
	// checked again there (WCAG 3.3.7); the first level when empty.
	Chosen   string
	Level    level
	Provider string
	Error    string
	// LevelError: Error is about the level chosen, and the fieldset of
	// levels names it in its description (WCAG 3.3.1, 1.3.1).
	LevelError bool
	// Retry, if set, is a link that tries again what Error says failed.
	Retry   string
	Session *loggedIn
}

type langLink struct {
	Tag, Name, URL string
	Current        bool
}

func (rp *RP) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.Name = rp.Name
	p.Lang = lang(r)
	p.T = texts[p.Lang]
	// WCAG 2.4.2: the title names the page; one that shows an error
	// says so first (3.3.1).
	switch {
	case name == "account.html":
		p.Title = p.T.AccountTitle + " – " + rp.Name
	case name == "notfound.html":
		p.Title = p.T.NotFound + " – " + rp.Name
	case p.Session != nil:
		p.Title = p.T.WelcomeBack + " – " + rp.Name
	default:
		p.Title = fmt.Sprintf(p.T.LoginTo, rp.Name)
	}
	if p.Error != "" {
		p.Title = p.T.ErrorTitle + ": " + p.Title
	}
	p.Stylesheet = rp.path() + "/static/demobank.css"
	p.Home = rp.path() + "/"
	if r.URL.Query().Get("lang") == p.Lang {
		http.SetCookie(w, rp.cookie(langCookie, p.Lang, 365*24*3600))
	}
	// The language links reload the account page, or else go to the home
	// page: a callback or a form's answer must not be loaded twice.
	here := rp.path() + "/"
	if r.Method == http.MethodGet && r.URL.Path == rp.path()+"/account" {
		here = r.URL.Path
	}
	for _, tag := range languages {
		p.Languages = append(p.Languages, langLink{Tag: tag, Name: texts[tag].LanguageName, URL: here + "?lang=" + tag, Current: tag == p.Lang})
	}
	for _, acr := range rp.ACRValues {
		p.Levels = append(p.Levels, describe(p.T, acr))
	}
	if p.Session != nil {
		acr, _ := p.Session.Claims["acr"].(string)
		p.Level = describe(p.T, acr)
		id, _ := p.Session.Claims["provider"].(string)
		p.Provider = rp.providerName(p.T, id)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Language", p.Lang)
	w.WriteHeader(status)
	if err := rp.tmpl.ExecuteTemplate(w, name, p); err != nil {
		rp.Log.Error("demo bank: render", "err", err)
	}
}

func (rp *RP) home(w http.ResponseWriter, r *http.Request) {
	rp.render(w, r, http.StatusOK, "home.html", page{Session: rp.current(r)})
}

func (rp *RP) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	t := texts[lang(r)]
	// The form has one short field; a body past maxFormBody is refused
	// before it is read, not parsed up to ParseForm's 10 MB.
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		status := http.StatusBadRequest
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			status = http.StatusRequestEntityTooLarge
		}
		rp.Log.Warn("demo bank: login form not readable", "err", err)
		rp.render(w, r, status, "home.html", page{Error: t.ErrForm})
		return
	}
	acr := r.PostFormValue("acr")
	if acr != "" && !slices.Contains(rp.ACRValues, acr) {
		rp.render(w, r, http.StatusBadRequest, "home.html", page{Error: t.ErrLevelUnknown, LevelError: true})
		return
	}
	if err := rp.setup(ctx); err != nil {
		rp.Log.Error("demo bank: discovery", "err", err)
		rp.render(w, r, http.StatusBadGateway, "home.html", page{Error: t.ErrUnreachable, Chosen: acr})
		return
	}
	if !rp.room(rp.Now()) {
		rp.Log.Warn("demo bank: too many logins in progress", "limit", maxPending)
		w.Header().Set("Retry-After", "60")
		rp.render(w, r, http.StatusServiceUnavailable, "home.html", page{Error: t.ErrBusy, Chosen: acr})
		return
	}
	state, nonce, verifier := random(16), random(16), oauth2.GenerateVerifier()
	form := url.Values{
		"response_type": {"code"}, "client_id": {rp.ClientID}, "redirect_uri": {rp.BaseURL + "/callback"},
		"scope": {"openid profile"}, "state": {state}, "nonce": {nonce},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
		// OIDC Core §3.1.2.1: the person's preferred languages, so Varde's
		// pages speak the language chosen here.
		"ui_locales":            {strings.TrimSpace(lang(r) + " " + uiLocales(r.Header.Get("Accept-Language")))},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
	}
	if acr != "" {
		form.Set("acr_values", acr)
	}
	assertion, err := rp.assertion()
	if err != nil {
		rp.Log.Error("demo bank: client assertion", "err", err)
		rp.render(w, r, http.StatusInternalServerError, "home.html", page{Error: t.ErrSign, Chosen: acr})
		return
	}
	form.Set("client_assertion", assertion)
	requestURI, err := rp.push(ctx, form)
	if err != nil {
		rp.Log.Error("demo bank: pushed authorization request", "err", err)
		rp.render(w, r, http.StatusBadGateway, "home.html", page{Error: t.ErrStart, Chosen: acr})
		return
	}
	now := rp.Now()
	rp.mu.Lock()
	rp.prune(now)
	full := len(rp.pending) >= maxPending
	if !full {
		rp.pending[state] = pending{verifier: verifier, nonce: nonce, acr: acr, expires: now.Add(pendingTTL)}
	}
	rp.mu.Unlock()
	if full {
		rp.Log.Warn("demo bank: too many logins in progress", "limit", maxPending)
		w.Header().Set("Retry-After", "60")
		rp.render(w, r, http.StatusServiceUnavailable, "home.html", page{Error: t.ErrBusy, Chosen: acr})
		return
	}
	// The cookie keeps the states of the logins begun in this browser
	// and not yet back, newest last, so a login begun in one tab still
	// finishes after another was begun in a second.
	states := []string{state}
	if c, err := r.Cookie("demobank_state"); err == nil && c.Value != "" {
		states = append(strings.Split(c.Value, "."), state)
		states = states[max(0, len(states)-maxStatesPerBrowser):]
	}
	http.SetCookie(w, rp.cookie("demobank_state", strings.Join(states, "."), int(pendingTTL/time.Second)))
	http.Redirect(w, r, rp.provider.Endpoint().AuthURL+"?"+url.Values{"client_id": {rp.ClientID}, "request_uri": {requestURI}}.Encode(), http.StatusSeeOther)
}

// maxFormBody bounds the body of the bank's forms, as the back-channel
// logout's is bounded.
const maxFormBody = 64 << 10

// maxStatesPerBrowser bounds the logins one browser may have begun and
// not yet finished, each in a tab of its own; past it, the oldest no
// longer finishes.
const maxStatesPerBrowser = 5

// maxPending bounds the logins begun and not yet back at the callback,
// each kept pendingTTL, so a stream of POST /login cannot grow memory
// without end.
const maxPending = 10000

// pendingTTL is how long the bank awaits a login it began: as long as
// Varde lets a person keep their login open by asking for more time
// (an hour from its start, ADR 50), so that a person who took it gets
// in rather than an error from the bank.
const pendingTTL = time.Hour

// maxSessions bounds the people logged in at once, each kept sessionTTL,
// so a stream of completed logins cannot grow memory without end.
const (
	maxSessions = 10000
	sessionTTL  = time.Hour
)

// room drops the logins that expired and reports whether another fits.
func (rp *RP) room(now time.Time) bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.prune(now)
	return len(rp.pending) < maxPending
}

// sweepEvery is how often a page served drops every expired session
// and login.
const sweepEvery = time.Minute

// prune drops the logins and the sessions that expired; rp.mu is held.
func (rp *RP) prune(now time.Time) {
	for k, p := range rp.pending {
		if now.After(p.expires) {
			delete(rp.pending, k)
		}
	}
	for k, s := range rp.sessions {
		if now.After(s.expires) {
			delete(rp.sessions, k)
		}
	}
}

// maxResponse bounds a response body the bank reads from Varde (the
// PAR and UserInfo responses), so an answer without end cannot fill its
// memory; the token response is bounded by golang.org/x/oauth2.
const maxResponse = 64 << 10

// readBounded reads body to its end, or fails naming maxResponse when
// the body is longer.
func readBounded(body io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(body, maxResponse+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxResponse {
		return nil, fmt.Errorf("larger than %d bytes", maxResponse)
	}
	return b, nil
}

// Accept-Language is read only so far: the first maxLocaleParts of its
// comma-separated entries, of which at most maxLocales tags of at most
// maxLocaleTag characters each (RFC 5646 §4.4.1: every tag an
// application must support fits in 35) are taken. A browser names a few
// languages; a header naming thousands would otherwise cost work on
// every page and make a ui_locales Varde refuses.
const (
	maxLocaleParts = 16
	maxLocales     = 8
	maxLocaleTag   = 35
)

// uiLocales turns Accept-Language into an OIDC ui_locales list.
func uiLocales(accept string) string {
	var tags []string
	for range maxLocaleParts {
		if accept == "" || len(tags) == maxLocales {
			break
		}
		var part string
		part, accept, _ = strings.Cut(accept, ",")
		tag, _, _ := strings.Cut(part, ";")
		tag = strings.TrimSpace(tag)
		if tag != "" && tag != "*" && len(tag) <= maxLocaleTag && !strings.ContainsFunc(tag, notTagChar) {
			tags = append(tags, tag)
		}
	}
	return strings.Join(tags, " ")
}

// notTagChar reports whether c cannot be part of a language tag (RFC
// 5646 §2.1: letters, digits and hyphens).
func notTagChar(c rune) bool {
	return !(c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9')
}

// push sends a pushed authorization request (RFC 9126 §2.1).
func (rp *RP) push(ctx context.Context, form url.Values) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rp.par, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := rp.HTTPClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	// The bank sends no proof here, but the nonce that comes back is
	// good for its token request too.
	if rp.dpop != nil {
		rp.dpop.KeepNonce(res)
	}
	var body struct {
		RequestURI  string `json:"request_uri"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	raw, err := readBounded(res.Body)
	if err != nil {
		return "", fmt.Errorf("PAR response %s: %w", res.Status, err)
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return "", fmt.Errorf("PAR response %s: %w", res.Status, err)
	}
	if res.StatusCode != http.StatusCreated || body.RequestURI == "" {
		return "", fmt.Errorf("PAR: %s: %s", body.Error, body.Description)
	}
	return body.RequestURI, nil
}

func (rp *RP) callback(w http.ResponseWriter, r *http.Request) {
	ctx := oidc.ClientContext(r.Context(), rp.HTTPClient)
	t := texts[lang(r)]
	// chosen is the level the login asked for, once its state names it:
	// every error page from there on keeps it checked (WCAG 3.3.7).
	chosen := ""
	fail := func(status int, msg string) {
		rp.render(w, r, status, "home.html", page{Error: msg, Chosen: chosen})
	}
	if err := rp.setup(ctx); err != nil {
		fail(http.StatusBadGateway, t.ErrUnreachable)
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	c, err := r.Cookie("demobank_state")
	if err != nil || state == "" {
		fail(http.StatusBadRequest, t.ErrState)
		return
	}
	states := strings.Split(c.Value, ".")
	i := slices.Index(states, state)
	if i < 0 {
		fail(http.StatusBadRequest, t.ErrState)
		return
	}
	if states = slices.Delete(states, i, i+1); len(states) == 0 {
		http.SetCookie(w, rp.cookie("demobank_state", "", -1))
	} else {
		http.SetCookie(w, rp.cookie("demobank_state", strings.Join(states, "."), int(pendingTTL/time.Second)))
	}
	rp.mu.Lock()
	p, ok := rp.pending[state]
	delete(rp.pending, state)
	rp.mu.Unlock()
	chosen = p.acr
	if !ok || rp.Now().After(p.expires) {
		fail(http.StatusBadRequest, t.ErrExpired)
		return
	}
	// RFC 9207 §2.4: the iss parameter must be the issuer we sent the person to.
	if q.Get("iss") != rp.Issuer {
		fail(http.StatusBadRequest, t.ErrIssuer)
		return
	}
	// RFC 6749 §4.1.2.1: error_description is for the client's
	// developer, so it goes to the log with the code; the page says in
	// plain words what happened.
	if e := q.Get("error"); e != "" {
		rp.Log.Warn("demo bank: Varde answered the login with an error", "error", e, "error_description", q.Get("error_description"))
		msg := t.ErrNotCompleted
		switch e {
		case "access_denied":
			msg = t.ErrCancelled
		case "temporarily_unavailable":
			msg = t.ErrUnavailable
		case "unmet_authentication_requirements":
			msg = t.ErrUnmet
		}
		fail(http.StatusOK, msg)
		return
	}
	tok, err := rp.exchange(ctx, q.Get("code"), p.verifier)
	if err != nil {
		rp.Log.Error("demo bank: token", "err", err)
		fail(http.StatusBadGateway, t.ErrCode)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier().Verify(ctx, raw)
	if err == nil {
		// A claim the bank reads present as null would read as one left
		// out: a null acr as no level asked of, a null sid or azp as
		// none. It is refused as a wrong value is.
		err = noNull(idt, idTokenClaims...)
	}
	if err == nil && idt.Nonce != p.nonce {
		err = errors.New("nonce is not the one this login sent")
	}
	if err == nil {
		err = rp.checkAZP(idt)
	}
	if err != nil {
		rp.Log.Error("demo bank: ID token", "err", err)
		fail(http.StatusBadGateway, t.ErrToken)
		return
	}
	// acr_values asks for a level; it does not promise one (OIDC Core
	// §3.1.2.1, §5.5.1.1). The bank lets the person in only if the level
	// reached is at least the one chosen.
	var level struct {
		ACR string `json:"acr"`
	}
	if err := idt.Claims(&level); err != nil || !rp.atLeast(level.ACR, p.acr) {
		rp.Log.Error("demo bank: login below the level asked for", "acr", level.ACR, "asked", p.acr, "err", err)
		// WCAG 3.3.7: the level the person chose stays checked.
		rp.render(w, r, http.StatusForbidden, "home.html", page{Error: t.ErrLevel, Chosen: p.acr, LevelError: true})
		return
	}
	bound := false
	if rp.dpop != nil {
		// RFC 9449 §5.1: a bound token says so; §7.1: it is used with the
		// DPoP scheme and a proof naming it.
		if bound, err = rp.checkBound(ctx, tok, idt.Subject); err != nil {
			rp.Log.Error("demo bank: DPoP-bound access token", "err", err)
			fail(http.StatusBadGateway, t.ErrToken)
			return
		}
	}
	claims := map[string]any{}
	_ = idt.Claims(&claims)
	pretty, _ := json.MarshalIndent(claims, "", "  ")
	sid := random(24)
	now := rp.Now()
	rp.mu.Lock()
	// A browser that logs in again gets a new session identifier, and
	// the one it held ends here, so it cannot be used after the new
	// login, by whoever else may know it, until it expires.
	if c, err := r.Cookie(cookieName); err == nil {
		delete(rp.sessions, c.Value)
	}
	rp.prune(now)
	full := len(rp.sessions) >= maxSessions
	if !full {
		rp.sessions[sid] = &loggedIn{IDToken: raw, Claims: claims, Pretty: string(pretty), Bound: bound, expires: now.Add(sessionTTL)}
	}
	rp.mu.Unlock()
	if full {
		rp.Log.Warn("demo bank: too many people logged in; a login that came back was refused", "limit", maxSessions)
		w.Header().Set("Retry-After", "60")
		fail(http.StatusServiceUnavailable, t.ErrFull)
		return
	}
	http.SetCookie(w, rp.cookie(cookieName, sid, int(sessionTTL/time.Second)))
	http.Redirect(w, r, rp.BaseURL+"/account", http.StatusSeeOther)
}

// idTokenClaims are the claims of an ID token the bank reads, and
// logoutTokenClaims those of a logout token: none of them may be null.
var (
	idTokenClaims     = []string{"iss", "sub", "aud", "exp", "iat", "nonce", "acr", "sid", "azp"}
	logoutTokenClaims = []string{"iss", "sub", "aud", "exp", "iat", "sid", "jti", "events"}
)

// noNull refuses tok if any of the claims named is present as JSON
// null. Read into a Go value, null is the zero value, so a check of
// the value alone would take a null claim for one left out.
func noNull(tok *oidc.IDToken, names ...string) error {
	claims, err := rawClaims(tok)
	if err != nil {
		return err
	}
	for _, name := range names {
		if v, ok := claims[name]; ok && string(v) == "null" {
			return fmt.Errorf("%s claim is null", name)
		}
	}
	return nil
}

// rawClaims is tok's claims, each as it was written.
func rawClaims(tok *oidc.IDToken) (map[string]json.RawMessage, error) {
	var claims map[string]json.RawMessage
	if err := tok.Claims(&claims); err != nil {
		return nil, fmt.Errorf("claims not readable: %w", err)
	}
	return claims, nil
}

// verifier checks Varde's ID tokens and logout tokens for the bank,
// their expiry by the bank's clock (Now), not go-oidc's own.
func (rp *RP) verifier() *oidc.IDTokenVerifier {
	return rp.provider.Verifier(&oidc.Config{ClientID: rp.ClientID, Now: rp.Now})
}

// checkAZP checks the ID token's authorized party (OIDC Core §3.1.3.7
// steps 4 and 5, which go-oidc leaves to the client): an ID token for
// more than one audience must name the bank in azp, and one that has an
// azp must name the bank there.
func (rp *RP) checkAZP(idt *oidc.IDToken) error {
	var c struct {
		AZP *string `json:"azp"`
	}
	if err := idt.Claims(&c); err != nil {
		return err
	}
	switch {
	case c.AZP == nil && len(idt.Audience) > 1:
		return fmt.Errorf("ID token for %d audiences names no azp", len(idt.Audience))
	case c.AZP != nil && *c.AZP != rp.ClientID:
		return fmt.Errorf("ID token's azp %q is not this client", *c.AZP)
	}
	return nil
}

// atLeast reports whether the level got is want or above it in
// ACRValues, which lists the levels lowest first. Any level will do
// when none was asked for.
func (rp *RP) atLeast(got, want string) bool {
	if want == "" {
		return true
	}
	g, w := slices.Index(rp.ACRValues, got), slices.Index(rp.ACRValues, want)
	return w >= 0 && g >= w
}

// current is the session the request's cookie names, nil when there is
// none or it expired. An expired session it finds is dropped, and once a
// sweepEvery every expired session and login goes, so that without new
// logins they do not stay in memory until the bank restarts.
func (rp *RP) current(r *http.Request) *loggedIn {
	now := rp.Now()
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if !now.Before(rp.swept.Add(sweepEvery)) {
		rp.prune(now)
		rp.swept = now
	}
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	s := rp.sessions[c.Value]
	if s != nil && now.After(s.expires) {
		delete(rp.sessions, c.Value)
		return nil
	}
	return s
}

func (rp *RP) account(w http.ResponseWriter, r *http.Request) {
	s := rp.current(r)
	if s == nil {
		http.Redirect(w, r, rp.BaseURL+"/", http.StatusSeeOther)
		return
	}
	rp.render(w, r, http.StatusOK, "account.html", page{Session: s})
}

// logout ends the bank's session, then Varde's through RP-initiated
// logout (OpenID Connect RP-Initiated Logout 1.0 §2), which sends the
// person back to the home page.
func (rp *RP) logout(w http.ResponseWriter, r *http.Request) {
	s := rp.current(r)
	if c, err := r.Cookie(cookieName); err == nil {
		rp.mu.Lock()
		delete(rp.sessions, c.Value)
		rp.mu.Unlock()
	}
	http.SetCookie(w, rp.cookie(cookieName, "", -1))
	if s == nil {
		http.Redirect(w, r, rp.BaseURL+"/", http.StatusSeeOther)
		return
	}
	rp.endVarde(w, r, url.Values{"id_token_hint": {s.IDToken}})
}

// logoutVarde asks Varde again to end its session, after the bank's
// ended and Varde could not be asked: without the ID token, which went
// with the bank's session, so Varde asks the person to confirm (RP-
// Initiated Logout §2, §6).
func (rp *RP) logoutVarde(w http.ResponseWriter, r *http.Request) {
	rp.endVarde(w, r, url.Values{})
}

// endVarde sends the person to Varde's end_session_endpoint with params,
// to come back to the home page. When Varde's metadata cannot be read,
// or names no such endpoint, the page says that the bank's session has
// ended but Varde's may not have, with a link to try again.
func (rp *RP) endVarde(w http.ResponseWriter, r *http.Request, params url.Values) {
	t := texts[lang(r)]
	if err := rp.setup(r.Context()); err != nil {
		rp.Log.Error("demo bank: discovery at logout", "err", err)
		rp.render(w, r, http.StatusBadGateway, "home.html", page{Error: t.ErrLogoutVarde, Retry: rp.path() + "/logout/varde"})
		return
	}
	if rp.endSession == "" {
		rp.Log.Error("demo bank: Varde names no end_session_endpoint")
		rp.render(w, r, http.StatusBadGateway, "home.html", page{Error: t.ErrLogoutVarde})
		return
	}
	params.Set("client_id", rp.ClientID)
	params.Set("post_logout_redirect_uri", rp.BaseURL+"/")
	params.Set("ui_locales", lang(r))
	http.Redirect(w, r, rp.endSession+"?"+params.Encode(), http.StatusSeeOther)
}

// backchannelEvent is the one member of a logout token's events claim
// (OpenID Connect Back-Channel Logout 1.0 §2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// backchannelLogout ends the bank's sessions that Varde says ended with
// it (OpenID Connect Back-Channel Logout 1.0 §2.5): Varde POSTs a logout
// token when the person logs out at Varde, at another service, or their
// session there is ended. The token is checked as §2.6 asks: signed by
// Varde, issued by it, for this bank, not expired, with its time of
// issue and the logout event, a sid or a sub, and no nonce. Every
// session of that sid (or, without one, of that sub) ends. A token that
// does not pass gets 400 with an OAuth error (§2.8), and ends nothing.
func (rp *RP) backchannelLogout(w http.ResponseWriter, r *http.Request) {
	ctx := oidc.ClientContext(r.Context(), rp.HTTPClient)
	w.Header().Set("Cache-Control", "no-store")
	refuse := func(status int, code, desc string, err error) {
		rp.Log.Warn("demo bank: logout token refused", "error", code, "reason", desc, "err", err)
		writeError(w, status, code, desc)
	}
	if err := rp.setup(ctx); err != nil {
		refuse(http.StatusServiceUnavailable, "temporarily_unavailable", "Varde's metadata could not be read", err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	raw := r.PostFormValue("logout_token")
	if raw == "" {
		refuse(http.StatusBadRequest, "invalid_request", "logout_token is missing", nil)
		return
	}
	// §2.6 step 3 and 4: iss, aud, exp and the signature, as for an ID
	// token (go-oidc checks them).
	tok, err := rp.verifier().Verify(ctx, raw)
	if err != nil {
		refuse(http.StatusBadRequest, "invalid_request", "logout token not valid", err)
		return
	}
	var c struct {
		SID    string                     `json:"sid"`
		JTI    string                     `json:"jti"`
		Events map[string]json.RawMessage `json:"events"`
	}
	if err := tok.Claims(&c); err != nil {
		refuse(http.StatusBadRequest, "invalid_request", "logout token claims not readable", err)
		return
	}
	claims, err := rawClaims(tok)
	if err != nil {
		refuse(http.StatusBadRequest, "invalid_request", "logout token claims not readable", err)
		return
	}
	if err := noNull(tok, logoutTokenClaims...); err != nil {
		refuse(http.StatusBadRequest, "invalid_request", "logout token has a null claim", err)
		return
	}
	_, nonce := claims["nonce"]
	// §2.6 steps 5 to 7.
	switch {
	case !jsonObject(c.Events[backchannelEvent]):
		// §2.4: the event's member is a JSON object; null or any
		// other value is no logout event.
		refuse(http.StatusBadRequest, "invalid_request", "logout token has no back-channel logout event", nil)
		return
	case tok.IssuedAt.IsZero():
		// §2.4: iat is required (go-oidc does not check it).
		refuse(http.StatusBadRequest, "invalid_request", "logout token has no iat", nil)
		return
	case c.SID == "" && tok.Subject == "":
		refuse(http.StatusBadRequest, "invalid_request", "logout token has neither sid nor sub", nil)
		return
	case nonce:
		// §2.4: a nonce MUST NOT be present; one of null is present.
		refuse(http.StatusBadRequest, "invalid_request", "logout token has a nonce", nil)
		return
	case c.JTI == "":
		// §2.4: jti is required.
		refuse(http.StatusBadRequest, "invalid_request", "logout token has no jti", nil)
		return
	}
	ended := 0
	rp.mu.Lock()
	// §2.6: a logout token whose jti was taken before ends nothing, so
	// one copied on the way cannot end the sessions of a later login
	// with the same sid. Varde sends a token again, with the same jti,
	// when it did not see the first answer (signed anew if the first has
	// expired), so a copy gets 200: what it asks was done.
	if rp.rememberLogout(c.JTI, tok.Expiry, rp.Now()) {
		rp.mu.Unlock()
		rp.Log.Info("demo bank: back-channel logout already taken", "jti", c.JTI)
		w.WriteHeader(http.StatusOK)
		return
	}
	for k, s := range rp.sessions {
		sid, _ := s.Claims["sid"].(string)
		sub, _ := s.Claims["sub"].(string)
		if (c.SID != "" && sid == c.SID) || (c.SID == "" && sub == tok.Subject) {
			delete(rp.sessions, k)
			ended++
		}
	}
	rp.mu.Unlock()
	rp.Log.Info("demo bank: back-channel logout", "sessions_ended", ended)
	w.WriteHeader(http.StatusOK)
}

// jsonObject reports whether raw is a JSON object.
func jsonObject(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(raw, &m) == nil && m != nil
}

// maxLogoutJTIs bounds the logout tokens' jti kept at once. Each is
// kept until a minute after its token's exp (tokens live two minutes),
// so only a flood of Varde's own tokens can fill it; past it, a logout
// token still ends its sessions, and its jti is not kept.
const maxLogoutJTIs = 10000

// rememberLogout reports whether a logout token with jti was taken
// before; if not, it keeps jti until a minute after exp, the token's
// expiry. A copy with a later exp (signed anew) keeps it longer. rp.mu
// is held.
func (rp *RP) rememberLogout(jti string, exp, now time.Time) bool {
	until := exp.Add(time.Minute)
	if seen, ok := rp.logoutJTIs[jti]; ok && now.Before(seen) {
		if until.After(seen) {
			rp.logoutJTIs[jti] = until
		}
		return true
	}
	for k, t := range rp.logoutJTIs {
		if !now.Before(t) {
			delete(rp.logoutJTIs, k)
		}
	}
	if len(rp.logoutJTIs) >= maxLogoutJTIs {
		rp.Log.Warn("demo bank: too many logout tokens to remember", "limit", maxLogoutJTIs)
		return false
	}
	rp.logoutJTIs[jti] = until
	return false
}

// writeError writes an OAuth error response (RFC 6749 §5.2).
func writeError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

package providersim

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/oidc"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/web"
)

// Store is what a sim keeps: its OpenID Provider's records, its persons
// and sessions. *sqlstore.DB implements it; the caller opens and closes
// it. A store that also implements store.Sweeper is swept every minute.
type Store interface {
	store.Clients
	store.Persons
	store.AuthRequests
	store.AuthCodes
	store.Grants
	store.Tokens
	store.Sessions
	store.ReplayCache
	store.PublicKeys
}

// Client is a relying party of the sim: in the demo, Varde's
// registration for this upstream. Give exactly one of JWKS, JWKSURI
// (private_key_jwt, RFC 7523) or Secret (client_secret_basic).
type Client struct {
	ID string
	// Name is shown on the login page ("You are logging in to Varde");
	// default the ID.
	Name string
	// RedirectURIs are matched exactly; Varde's is its issuer followed by
	// oidcup.CallbackPath(sim ID).
	RedirectURIs []string
	JWKS         json.RawMessage
	JWKSURI      string
	Secret       string
	// Claims the client receives beyond sub; default "name",
	// "given_name", "family_name", "birthdate" and "national_id"
	// ({"scheme","value"}).
	Claims     []string
	RequirePAR bool
}

// Config describes one simulated national identity provider.
type Config struct {
	// ID is short and URL-safe ("bankid"); Name is shown on its pages
	// ("Demo BankID").
	ID   string
	Name string
	// Level is the level of every login: its ID tokens carry this
	// level's acr (ADR 2).
	Level assurance.Level
	// AMR is the amr of every login (RFC 8176); default by level:
	// high hwk+pin+mfa, substantial pwd+otp+mfa, low pwd.
	AMR []string
	// Addr and AdminAddr are the issuer's and the admin API's listen
	// addresses; both must be on loopback ("localhost:0",
	// "127.0.0.1:9001"). Default "localhost:0".
	Addr      string
	AdminAddr string
	// IssuerHost is the host name in the issuer and admin URLs; default
	// "localhost".
	IssuerHost string
	Store      Store
	Clients    []Client
	// Persons are stored at start and offered on the login page; default
	// DefaultPersons().
	Persons []Person
	// Signer signs ID tokens; default a new key. SubjectSalt keys
	// pairwise subjects; default 32 random bytes.
	Signer      *keys.Signer
	SubjectSalt []byte
	// AdminToken protects the admin API; default 32 random bytes,
	// base64url.
	AdminToken string
	// Fault is the mode at start; default ModeOK. SlowDelay is the delay
	// of a slow fault that names none; default DefaultDelay.
	Fault     Fault
	SlowDelay time.Duration
	// ClientKeysCache is how long the sim uses a client's keys fetched
	// from its jwks_uri, also for an assertion whose kid they lack, as a
	// national eID that caches its clients' keys for hours does. Zero
	// keeps oauth2.ClientAuthenticator's defaults: fetched again after
	// 5 minutes, and at most every 30 seconds for an unknown kid.
	ClientKeysCache time.Duration
	// HTTPClient fetches clients' jwks_uri; default a 5 s timeout.
	HTTPClient *http.Client
	Log        *slog.Logger
	Now        func() time.Time
	Rand       io.Reader
}

// Paths of the sim's own endpoints on the issuer listener.
const (
	PathLogin   = "/sim/login"
	PathPersons = "/sim/persons"
)

// Admin API paths on the admin listener.
const (
	PathFault        = "/fault"
	PathAdminSession = "/session"
)

// Sim is a running simulated provider. Its methods are safe for
// concurrent use.
type Sim struct {
	cfg       Config
	issuer    string
	adminURL  string
	addr      string // the issuer listener's bound address, reused when it comes back up
	handler   http.Handler
	pages     *httpx.Pages
	sessions  *sessions
	personIDs map[string]Person // by Person.ID
	tokenHash [32]byte

	mu      sync.Mutex
	fault   Fault
	srv     *http.Server // nil while down
	admin   *http.Server
	closed  bool
	stop    chan struct{}
	serving sync.WaitGroup
}

// Start validates cfg, opens both listeners, stores the clients and
// persons and serves until Close. ctx bounds the start-up only.
func Start(ctx context.Context, cfg Config) (*Sim, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("sim %s: %w", cfg.ID, err)
	}
	adminLn, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("sim %s admin: %w", cfg.ID, err)
	}
	s := &Sim{
		cfg: cfg, addr: ln.Addr().String(), stop: make(chan struct{}),
		issuer:    "http://" + net.JoinHostPort(cfg.IssuerHost, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)),
		adminURL:  "http://" + net.JoinHostPort(cfg.IssuerHost, strconv.Itoa(adminLn.Addr().(*net.TCPAddr).Port)),
		tokenHash: sha256.Sum256([]byte(cfg.AdminToken)),
		personIDs: map[string]Person{},
	}
	if err := s.build(ctx); err != nil {
		ln.Close()
		adminLn.Close()
		return nil, err
	}
	s.fault = s.withDelay(cfg.Fault)
	s.admin = s.newServer(s.adminHandler())
	s.goServe(s.admin, adminLn)
	if s.fault.Mode == ModeDown {
		ln.Close()
	} else {
		s.srv = s.newServer(s.handler)
		s.goServe(s.srv, ln)
	}
	if sw, ok := cfg.Store.(store.Sweeper); ok {
		s.serving.Add(1)
		go s.sweep(sw)
	}
	cfg.Log.Info("provider sim started", "id", cfg.ID, "issuer", s.issuer, "admin", s.adminURL, "level", cfg.Level.String(), "fault", s.fault.String())
	return s, nil
}

func (c *Config) setDefaults() error {
	if c.Addr == "" {
		c.Addr = "localhost:0"
	}
	if c.AdminAddr == "" {
		c.AdminAddr = "localhost:0"
	}
	if c.IssuerHost == "" {
		c.IssuerHost = "localhost"
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	if c.Persons == nil {
		c.Persons = DefaultPersons()
	}
	c.Persons = slices.Clone(c.Persons)
	for i := range c.Persons {
		c.Persons[i].ID = personID(c.Persons[i].Identifier)
	}
	if c.AMR == nil {
		switch c.Level {
		case assurance.High:
			c.AMR = []string{"hwk", "pin", "mfa"}
		case assurance.Substantial:
			c.AMR = []string{"pwd", "otp", "mfa"}
		default:
			c.AMR = []string{"pwd"}
		}
	}
	if c.Fault.Mode == "" {
		c.Fault.Mode = ModeOK
	}
	if c.SlowDelay == 0 {
		c.SlowDelay = DefaultDelay
	}
	var err error
	if c.Signer == nil {
		if c.Signer, err = keys.Generate(c.Rand); err != nil {
			return fmt.Errorf("sim %s: signing key: %w", c.ID, err)
		}
	}
	if c.SubjectSalt == nil {
		c.SubjectSalt = make([]byte, 32)
		if _, err := io.ReadFull(c.Rand, c.SubjectSalt); err != nil {
			return fmt.Errorf("sim %s: subject salt: %w", c.ID, err)
		}
	}
	if c.AdminToken == "" {
		b := make([]byte, 32)
		if _, err := io.ReadFull(c.Rand, b); err != nil {
			return fmt.Errorf("sim %s: admin token: %w", c.ID, err)
		}
		c.AdminToken = base64.RawURLEncoding.EncodeToString(b)
	}
	return nil
}

// validate reports every problem with c at once.
func (c *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !validID(c.ID) {
		bad("id must be 1 to 32 lower-case letters, digits or '-'")
	}
	if strings.TrimSpace(c.Name) == "" {
		bad("name is required")
	}
	if c.Level < assurance.Low || c.Level > assurance.High {
		bad("level must be low, substantial or high")
	}
	if c.Store == nil {
		bad("a store is required")
	}
	for _, a := range []struct{ name, addr string }{{"addr", c.Addr}, {"admin addr", c.AdminAddr}} {
		if err := loopbackAddr(a.addr); err != nil {
			bad("%s: %w", a.name, err)
		}
	}
	if !httpx.LoopbackHost(c.IssuerHost) {
		bad("issuer host must be localhost or a loopback address")
	}
	if len(c.SubjectSalt) < 32 {
		bad("subject salt must be at least 32 bytes")
	}
	if len(c.AdminToken) < 16 {
		bad("admin token must be at least 16 characters")
	}
	if !validMode(c.Fault.Mode) {
		bad("fault mode must be ok, down, slow or failing")
	}
	if c.SlowDelay < 0 || c.SlowDelay > MaxDelay || c.Fault.Delay < 0 || c.Fault.Delay > MaxDelay {
		bad("delays must be above 0 and at most %s", MaxDelay)
	}
	if len(c.Persons) == 0 {
		bad("at least one person is required")
	}
	if c.ClientKeysCache < 0 {
		bad("the client keys' cache time must not be negative")
	}
	for _, p := range c.Persons {
		// Only synthetic Norwegian numbers: a sim never asserts a real
		// person's identifier.
		n, err := identity.Parse(p.Identifier.Scheme, p.Identifier.Value)
		switch {
		case p.Identifier.Scheme != identity.SchemeNOFnr && p.Identifier.Scheme != identity.SchemeNODnr:
			bad("person %q: identifier must be no:fnr or no:dnr", p.Name())
		case err != nil:
			bad("person %q: %w", p.Name(), err)
		case !n.Synthetic() || n.Value != p.Identifier.Value:
			bad("person %q: identifier must be a synthetic number in canonical form", p.Name())
		}
	}
	seen := map[string]bool{}
	for _, cl := range c.Clients {
		if cl.ID == "" || seen[cl.ID] {
			bad("client IDs must be set and distinct")
		}
		seen[cl.ID] = true
		n := 0
		for _, set := range []bool{len(cl.JWKS) > 0, cl.JWKSURI != "", cl.Secret != ""} {
			if set {
				n++
			}
		}
		if n != 1 {
			bad("client %q: give exactly one of a JWKS, a JWKS URI or a secret", cl.ID)
		}
		if len(cl.RedirectURIs) == 0 {
			bad("client %q: a redirect URI is required", cl.ID)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sim %q: %w", c.ID, err)
	}
	return nil
}

func validID(id string) bool {
	if id == "" || len(id) > 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// loopbackAddr accepts host:port with a loopback host: a sim is a test
// and demo tool and never listens on a network.
func loopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("not host:port")
	}
	if !httpx.LoopbackHost(host) {
		return errors.New("host must be localhost or a loopback address")
	}
	return nil
}

// build stores clients and persons and assembles the OpenID Provider and
// the issuer listener's handler.
func (s *Sim) build(ctx context.Context) error {
	cfg := s.cfg
	now := cfg.Now()
	for _, c := range cfg.Clients {
		sc := &store.Client{
			ID: c.ID, Name: cmp.Or(c.Name, c.ID), RedirectURIs: c.RedirectURIs, RequirePAR: c.RequirePAR,
			Claims: c.Claims, Source: "sim", CreatedAt: now,
		}
		if sc.Claims == nil {
			sc.Claims = []string{"name", "given_name", "family_name", "birthdate", "national_id"}
		}
		switch {
		case c.Secret != "":
			sum := sha256.Sum256([]byte(c.Secret))
			sc.AuthMethod, sc.SecretHash = store.AuthClientSecretBasic, sum[:]
		case c.JWKSURI != "":
			sc.AuthMethod, sc.JWKSURI = store.AuthPrivateKeyJWT, c.JWKSURI
		default:
			sc.AuthMethod, sc.JWKS = store.AuthPrivateKeyJWT, c.JWKS
		}
		if err := cfg.Store.PutClient(ctx, sc); err != nil {
			return fmt.Errorf("sim %s: client %s: %w", cfg.ID, c.ID, err)
		}
	}
	for _, p := range cfg.Persons {
		if _, err := ensurePerson(ctx, cfg.Store, p, cfg.Level.String(), now, cfg.Rand); err != nil {
			return fmt.Errorf("sim %s: %w", cfg.ID, err)
		}
		s.personIDs[p.ID] = p
	}
	keySet := &keys.Set{Store: cfg.Store, Local: cfg.Signer, Node: cfg.ID, Now: cfg.Now}
	if err := keySet.Publish(ctx); err != nil {
		return fmt.Errorf("sim %s: %w", cfg.ID, err)
	}
	pages, err := newPages(cfg.Log)
	if err != nil {
		return fmt.Errorf("sim %s: pages: %w", cfg.ID, err)
	}
	s.pages = pages
	s.sessions = &sessions{
		m:      &session.Manager{Store: cfg.Store, Lifetime: time.Hour, Now: cfg.Now},
		cookie: "varde_sim_" + cfg.ID,
	}
	op := &oidc.Provider{
		Issuer: s.issuer, Clients: cfg.Store, AuthRequests: cfg.Store, AuthCodes: cfg.Store, Grants: cfg.Store,
		Tokens: cfg.Store, Persons: cfg.Store, Sessions: s.sessions, SessionClients: cfg.Store, LiveSessions: cfg.Store,
		Signer: cfg.Signer, KeySet: keySet,
		ClientAuth: &oauth2.ClientAuthenticator{
			Clients: cfg.Store, Replay: cfg.Store, Audiences: oidc.Audiences(s.issuer),
			HTTPClient: cfg.HTTPClient, Now: cfg.Now,
			JWKSCacheTTL: cfg.ClientKeysCache, JWKSRefetch: cfg.ClientKeysCache,
		},
		Pages:       pages,
		LoginURL:    func(id string) string { return PathLogin + "?req=" + id },
		SubjectSalt: cfg.SubjectSalt,
		Now:         cfg.Now, Rand: cfg.Rand, Log: cfg.Log,
	}
	if err := op.Check(); err != nil {
		return fmt.Errorf("sim %s: %w", cfg.ID, err)
	}
	staticFS, err := fs.Sub(web.Static, "static")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	op.Register(mux)
	mux.HandleFunc("GET "+PathLogin, s.loginPage)
	mux.HandleFunc("POST "+PathLogin, s.login)
	mux.HandleFunc("GET "+PathPersons, s.personsJSON)
	mux.HandleFunc("GET /{$}", s.home)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS)))
	mux.HandleFunc("/", s.notFound)
	var h http.Handler = mux
	h = s.faults(h)
	h = httpx.LimitBody(1<<20, h)
	h = httpx.SecurityHeaders(h)
	h = httpx.AccessLog(cfg.Log, h)
	s.handler = httpx.WithRequestID(h)
	return nil
}

func (s *Sim) newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      MaxDelay + 30*time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.Log.Handler(), slog.LevelWarn),
	}
}

func (s *Sim) goServe(srv *http.Server, ln net.Listener) {
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Log.Warn("provider sim listener", "id", s.cfg.ID, "err", err)
		}
	}()
}

func (s *Sim) sweep(sw store.Sweeper) {
	defer s.serving.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if _, err := sw.DeleteExpired(ctx, s.cfg.Now()); err != nil {
				s.cfg.Log.Warn("provider sim sweep", "id", s.cfg.ID, "err", err)
			}
			cancel()
		}
	}
}

// ID returns the sim's ID.
func (s *Sim) ID() string { return s.cfg.ID }

// Name returns the sim's display name.
func (s *Sim) Name() string { return s.cfg.Name }

// Issuer returns the issuer URL ("http://localhost:PORT").
func (s *Sim) Issuer() string { return s.issuer }

// Addr returns the issuer listener's address ("127.0.0.1:PORT"), also
// while it is down.
func (s *Sim) Addr() string { return s.addr }

// AdminURL returns the admin listener's base URL.
func (s *Sim) AdminURL() string { return s.adminURL }

// AdminToken returns the bearer token of the admin API.
func (s *Sim) AdminToken() string { return s.cfg.AdminToken }

// Persons returns the persons offered on the login page.
func (s *Sim) Persons() []Person { return slices.Clone(s.cfg.Persons) }

// Fault returns the current fault.
func (s *Sim) Fault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fault
}

func (s *Sim) withDelay(f Fault) Fault {
	if f.Mode == ModeSlow && f.Delay == 0 {
		f.Delay = s.cfg.SlowDelay
	}
	if f.Mode != ModeSlow {
		f.Delay = 0
	}
	return f
}

// ErrClosed means the sim was closed.
var ErrClosed = errors.New("provider sim is closed")

// SetFault switches the sim's behaviour at once. Switching to ModeDown
// closes the issuer listener and every open connection on it; switching
// from it listens again on the same address. If that fails (another
// process took the port) the sim stays down and the error says so.
func (s *Sim) SetFault(f Fault) (Fault, error) {
	if !validMode(f.Mode) || f.Delay < 0 || f.Delay > MaxDelay {
		return Fault{}, fmt.Errorf("%w: mode must be ok, down, slow or failing, delay at most %s", ErrFault, MaxDelay)
	}
	f = s.withDelay(f)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.fault, ErrClosed
	}
	switch {
	case f.Mode == ModeDown && s.srv != nil:
		_ = s.srv.Close()
		s.srv = nil
	case f.Mode != ModeDown && s.srv == nil:
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			return s.fault, fmt.Errorf("sim %s: listen again on %s: %w", s.cfg.ID, s.addr, err)
		}
		s.srv = s.newServer(s.handler)
		s.goServe(s.srv, ln)
	}
	if s.fault != f {
		s.cfg.Log.Info("provider sim fault", "id", s.cfg.ID, "from", s.fault.String(), "to", f.String())
	}
	s.fault = f
	return f, nil
}

// Close stops both listeners, closing open connections, and waits for
// the servers to return. It does not close the store.
func (s *Sim) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	var errs []error
	if s.srv != nil {
		errs = append(errs, s.srv.Close())
		s.srv = nil
	}
	errs = append(errs, s.admin.Close())
	s.mu.Unlock()
	s.serving.Wait()
	return errors.Join(errs...)
}

package app

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/broker"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/health"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/oidc"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/provider/passkeyidp"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/status"
	"github.com/varde-eid/varde/internal/status/statuspage"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/flowmem"
	"github.com/varde-eid/varde/internal/store/sqlstore"
	"github.com/varde-eid/varde/internal/webhook"
	"github.com/varde-eid/varde/web"
)

// accountURL is the person's own account pages (package passkeyidp).
const accountURL = "/account"

// Options are the things a node takes from its caller rather than from
// its configuration: the clock, randomness, keys generated for a demo,
// and extra handlers (Demo Bank).
type Options struct {
	Log  *slog.Logger
	Now  func() time.Time
	Rand io.Reader
	// Signer overrides cfg.Keys.SigningKeyFile (demo and tests).
	Signer *keys.Signer
	// RSASigner overrides cfg.Keys.RSASigningKeyFile (demo and tests).
	// A node given Signer makes up no RSA key: without RSASigner or the
	// file it signs no RS256.
	RSASigner *keys.Signer
	// SubjectSalt overrides cfg.Keys.SubjectSaltFile (demo and tests).
	SubjectSalt []byte
	// Mount adds handlers to the node's mux (Demo Bank in the demo).
	Mount func(mux *http.ServeMux)
	// MetricsListener, if set, is the listener of cfg.Metrics.Listen,
	// bound by the caller before New touched the store; Serve serves
	// /metrics on it instead of binding the address itself.
	MetricsListener net.Listener
	// PprofListener, if set, is the listener of cfg.Debug.PprofListen,
	// bound by the caller before New touched the store; Serve serves
	// the runtime profiles on it instead of binding the address itself.
	PprofListener net.Listener
	// NodeLock, if set, is the lock on cfg.Store.DSN (SQLite) the caller
	// took before binding its listeners, so that a second node on the
	// file is refused naming the holder; New takes it over.
	NodeLock *sqlstore.NodeLock
	// Store, if set, is cfg.Store opened already (WaitForStore), which
	// New takes over: it closes it if it fails.
	Store store.Store
}

// App is one running node.
type App struct {
	Config *config.Config
	Store  store.Store
	Signer *keys.Signer
	// RSASigner signs the ID tokens of clients registered for RS256;
	// nil if the node has no RSA key (ADR 32).
	RSASigner *keys.Signer
	Audit     *audit.Log
	// Health watches the node, the store and every provider.
	Health *health.Monitor
	// Status publishes their state, incidents and reports.
	Status    *status.Service
	incidents *status.Engine
	webhooks  *webhook.Notifier
	now       func() time.Time
	handler   http.Handler
	// metrics serves /metrics: on the public handler, or on a listener
	// of its own when metrics.listen is set (serveMetrics).
	metrics http.Handler
	// metricsLn is Options.MetricsListener.
	metricsLn net.Listener
	// pprofLn is Options.PprofListener.
	pprofLn net.Listener
	log     *slog.Logger
	// clients is Store's Clients with lookups cached (clientcache.go).
	clients store.Clients
	// keys is the cluster's key set; the node keeps its key published.
	keys *keys.Set
	// rsaKeys is the key set of RSASigner, nil without one: the same
	// store, and the node keeps that key published too (signingKeys).
	rsaKeys *keys.Set
	// rs256 are the clients that want RS256 ID tokens of a node
	// without an RSA key; nil on a node with one.
	rs256 *rs256Clients
	// op is the OpenID provider; housekeeping settles the session ends
	// it left pending (oidc.Provider.SettleLeftoverEnds).
	op *oidc.Provider
	// serving is set when Serve starts: /readyz then waits for the
	// first health round.
	serving atomic.Bool
	// draining is set when Serve is stopping: /readyz answers 503.
	draining atomic.Bool
	// unready is why /readyz last failed for a reason it logs, "" once
	// it is ready again (readyzLog).
	unready readiness
	// lock is this node's hold on its database, released by Close.
	lock *sqlstore.NodeLock
	// anchored is when housekeep last logged the audit log's head.
	anchored time.Time
	// sweepFailures counts the tables whose sweep of expired records
	// failed, one a round each (sweepExpired).
	sweepFailures prometheus.Counter
	// addrsDeleted counts the audit events' addresses housekeeping
	// deleted after audit.address_retention (forgetAddresses).
	addrsDeleted prometheus.Counter
	// addrsHeld is how many addresses past audit.address_retention a
	// hold kept at the last housekeeping round (ADR 45).
	addrsHeld prometheus.Gauge
	// settleEndsFor bounds each housekeeping round's settling of pending
	// session ends (settleEndsRound).
	settleEndsFor time.Duration
	// sameName holds the kids of keys another process published under
	// this node's name that the node has logged (noteSameName).
	sameName sync.Map
}

// anchorEvery is how often a node logs the audit log's head;
// settleEndsRound, how long a housekeeping round settles pending session
// ends at most, so a backlog of them holds up neither the audit anchor
// nor the next round: the ends left go to the next round.
const (
	anchorEvery     = time.Hour
	settleEndsRound = 20 * time.Second
)

// Languages Varde's pages speak; the first is the fallback.
var Languages = []httpx.Language{{Tag: "nb", Name: "Norsk bokmål"}, {Tag: "en", Name: "English"}, {Tag: "da", Name: "Dansk"}}

// NewPages loads the people-facing pages in every language; a nil log
// discards template warnings.
func NewPages(log *slog.Logger) (*httpx.Pages, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return httpx.NewPages(web.Templates, web.Locales, Languages, log)
}

// nodePages are the people-facing pages as cfg has them served: under
// the issuer's path, in its time zone, naming its help desk.
func nodePages(cfg *config.Config, log *slog.Logger) (*httpx.Pages, error) {
	pages, err := NewPages(log)
	if err != nil {
		return nil, err
	}
	pages.Secure = *cfg.Session.SecureCookie
	pages.Base = cfg.BasePath()
	pages.TimeZone = cfg.Pages.Location()
	if sp := cfg.Support; sp.URL != "" || sp.Phone != "" {
		pages.Support = &httpx.Support{URL: sp.URL, Phone: sp.Phone, Hours: sp.Hours}
	}
	return pages, nil
}

// staticFiles are the pages' assets, served at /static/.
func staticFiles() (fs.FS, error) { return fs.Sub(web.Static, "static") }

// OpenStore opens the configured backend, creating the database if it
// does not exist yet (a node's first start).
func OpenStore(ctx context.Context, cfg config.Store) (store.Store, error) {
	switch cfg.Driver {
	case "", "sqlite":
		return sqlstore.OpenSQLite(ctx, cfg.DSN)
	case "postgres":
		return sqlstore.OpenPostgres(ctx, cfg.DSN)
	}
	return nil, fmt.Errorf("unknown store driver %q", cfg.Driver)
}

// ErrNoStore means OpenExistingStore found no database.
var ErrNoStore = sqlstore.ErrNoDatabase

// OpenExistingStore is OpenStore for tools that work on a node's store
// (varde clients, keys, status, store): it creates nothing, and fails
// with an error wrapping ErrNoStore if the database does not exist, so
// that a wrong path cannot send their writes to a database no node
// reads. It migrates nothing either: a schema older or newer than this
// build's is refused (*sqlstore.SchemaError), since upgrading it is the
// nodes' to do when they start.
func OpenExistingStore(ctx context.Context, cfg config.Store) (store.Store, error) {
	switch cfg.Driver {
	case "", "sqlite":
		return sqlstore.OpenExistingSQLite(ctx, cfg.DSN)
	case "postgres":
		return sqlstore.OpenExistingPostgres(ctx, cfg.DSN)
	}
	return nil, fmt.Errorf("unknown store driver %q", cfg.Driver)
}

// durable returns the part of st that outlives the process, for what
// must survive a restart even though it is a replay cache: the rate
// limits on recovery codes.
func durable(st store.Store) store.Store {
	if f, ok := st.(*flowmem.Store); ok {
		return f.Durable()
	}
	return st
}

// New builds a node. The caller owns ctx only for start-up work.
func New(ctx context.Context, cfg *config.Config, opt Options) (*App, error) {
	if opt.Log == nil {
		opt.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Rand == nil {
		opt.Rand = rand.Reader
	}
	log := opt.Log
	sec, err := secrets(cfg, opt)
	if err != nil {
		if opt.Store != nil {
			_ = opt.Store.Close()
		}
		return nil, err
	}
	salt := sec.salt
	if cfg.Passkey.SyntheticEnrolment {
		log.Warn("synthetic enrolment is on: anyone can create an unproofed test person who logs in at level high; "+
			"for demos and test environments only", "issuer", cfg.Issuer)
	}
	// ADR 5 and 7: one node writes a SQLite file; a second fails here,
	// before it touches the database. Nodes share a PostgreSQL database.
	lock := opt.NodeLock
	if lock == nil && !cfg.Store.Shared() {
		if lock, err = sqlstore.LockNode(cfg.Store.DSN); err != nil {
			return nil, err
		}
	}
	st := opt.Store
	if st == nil {
		if st, err = OpenStore(ctx, cfg.Store); err != nil {
			_ = lock.Unlock()
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	if db, ok := st.(*sqlstore.DB); ok {
		db.SetLogger(log)
		logUpgrade(log, db.Migrated())
	}
	if err := checkSalt(ctx, st, salt, opt.Now()); err != nil {
		_ = st.Close()
		_ = lock.Unlock()
		return nil, err
	}
	if cfg.Store.FlowState == config.FlowStateMemory {
		// ADR 7: one node writes the SQLite file, so login flow state
		// can live with it.
		st = flowmem.Over(st, flowmem.New(flowmem.Options{Now: opt.Now}))
	}
	a := &App{Config: cfg, Store: st, Signer: sec.signer, RSASigner: sec.rsa, log: log, now: opt.Now, lock: lock, metricsLn: opt.MetricsListener, pprofLn: opt.PprofListener}
	if err := a.build(ctx, opt, salt); err != nil {
		_ = a.Close()
		return nil, err
	}
	return a, nil
}

// logUpgrade logs what the node's open of its store migrated, if
// anything: the admin commands of the version before refuse the schema
// from then on, and an upgrade that went wrong is found by when it ran.
func logUpgrade(log *slog.Logger, up sqlstore.SchemaUpgrade) {
	if len(up.Applied) == 0 {
		return
	}
	log.Info("store schema migrated", "from", up.From, "to", up.To, "migrations", len(up.Applied),
		"first", up.Applied[0], "last", up.Applied[len(up.Applied)-1])
}

// CheckFiles reads every key and secret file cfg names, with the code
// New reads them with, and checks what they hold as New does: the
// signing keys, the subject salt, each client's secret_file and each
// upstream's client key files (current, next and previous) or
// client_secret_file. It returns every
// problem at once, each naming its setting, and keeps nothing it read.
// It makes up no key a node would make up at start, and opens no store:
// that the salt is the one the store was first used with, and that the
// file's clients agree with the store's, New checks at start.
func CheckFiles(cfg *config.Config) error {
	var errs []error
	if _, err := secretFiles(cfg, Options{}); err != nil {
		errs = append(errs, err)
	}
	for _, c := range cfg.Clients {
		if _, err := c.ToStore(time.Time{}); err != nil {
			errs = append(errs, err)
		}
	}
	for _, u := range cfg.Upstreams {
		if _, err := upstreamConfig(cfg.Issuer, u); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// nodeSecrets are what a node reads from its key and salt files.
type nodeSecrets struct {
	signer *keys.Signer
	// rsa is nil for a node without an RSA key.
	rsa  *keys.Signer
	salt []byte
}

// secrets loads the signing keys and subject salt (secretFiles) and
// makes up the keys of a node that has no key file: one on localhost
// without keys.signing_key_file makes up its ES256 key and, unless
// keys.rsa_signing_key_file names one, its RSA key.
func secrets(cfg *config.Config, opt Options) (nodeSecrets, error) {
	sec, err := secretFiles(cfg, opt)
	if err != nil || sec.signer != nil {
		return sec, err
	}
	if sec.signer, err = keys.Generate(opt.Rand); err != nil {
		return nodeSecrets{}, fmt.Errorf("signing key: %w", err)
	}
	if sec.rsa == nil {
		if sec.rsa, err = keys.GenerateRSA(opt.Rand); err != nil {
			return nodeSecrets{}, fmt.Errorf("RSA signing key: %w", err)
		}
	}
	return sec, nil
}

// secretFiles takes the keys and salt opt gives and reads the others
// from the files cfg names, reporting the problems with all at once. A
// key neither gives is nil.
func secretFiles(cfg *config.Config, opt Options) (nodeSecrets, error) {
	sec := nodeSecrets{signer: opt.Signer, rsa: opt.RSASigner, salt: opt.SubjectSalt}
	var keyErr, rsaErr, saltErr error
	if sec.signer == nil && cfg.Keys.SigningKeyFile != "" {
		sec.signer, keyErr = loadSigningKey("keys.signing_key_file", cfg.Keys.SigningKeyFile, keys.Algorithm)
	}
	if sec.rsa == nil && cfg.Keys.RSASigningKeyFile != "" {
		sec.rsa, rsaErr = loadSigningKey("keys.rsa_signing_key_file", cfg.Keys.RSASigningKeyFile, keys.RS256)
	}
	if sec.salt == nil {
		sec.salt, saltErr = loadSalt(cfg.Keys.SubjectSaltFile)
	} else if len(sec.salt) < minSaltSize {
		saltErr = fmt.Errorf("subject salt: %d bytes, fewer than %d", len(sec.salt), minSaltSize)
	}
	if err := errors.Join(keyErr, rsaErr, saltErr); err != nil {
		return nodeSecrets{}, err
	}
	return sec, nil
}

// loadSalt reads the subject salt file at path, refusing a file others
// may read (config.ReadSecretFile) and a salt too short.
func loadSalt(path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("keys.subject_salt_file (env %s) is required: pairwise subject identifiers need a secret salt; %s",
			config.EnvSubjectSaltFile, makeSalt)
	}
	salt, err := config.ReadSecretFile("keys.subject_salt_file", path)
	if err != nil {
		return nil, err
	}
	if len(salt) < minSaltSize {
		return nil, fmt.Errorf("keys.subject_salt_file: %s holds %d bytes, fewer than the %d a subject salt needs; %s",
			path, len(salt), minSaltSize, makeSalt)
	}
	return salt, nil
}

// minSaltSize is the shortest subject salt a node accepts, and makeSalt
// says how to make one. A salt already in use must not be replaced
// (checkSalt).
const (
	minSaltSize = 32
	makeSalt    = "make one with: head -c 32 /dev/urandom > FILE && chmod 600 FILE (a node that has served must keep its salt)"
)

// loadSigningKey reads the PEM signing key at path, the setting field,
// refusing a file others may read (config.ReadSecretFile) and a key
// that does not sign alg.
func loadSigningKey(field, path string, alg jose.SignatureAlgorithm) (*keys.Signer, error) {
	raw, err := config.ReadSecretFile(field, path)
	if err != nil {
		return nil, err
	}
	s, err := keys.ParsePEM(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", field, path, err)
	}
	if s.Alg() != alg {
		how := config.SigningKeyHowTo
		if alg == keys.RS256 {
			how = config.RSASigningKeyHowTo
		}
		return nil, fmt.Errorf("%s: %s holds a key that signs %s, and this setting is for a key that signs %s; create one with `%s`",
			field, path, s.Alg(), alg, how)
	}
	return s, nil
}

// saltPin names the subject salt's fingerprint in store.Pins.
const saltPin = "subject_salt"

// ErrSaltChanged means the subject salt is not the one the store's
// subject identifiers were made with.
var ErrSaltChanged = errors.New("the subject salt differs from the one this store was first used with")

// checkSalt pins a fingerprint of salt in the store at the first start,
// and refuses a salt whose fingerprint differs from the pinned one: with
// another salt every relying party would see every person as someone
// new, and nodes of one cluster would disagree about who is who. The
// fingerprint is an HMAC of a fixed text under the salt, which tells
// nothing about the salt.
func checkSalt(ctx context.Context, st store.Pins, salt []byte, now time.Time) error {
	fp := saltFingerprint(salt)
	held, err := st.Pin(ctx, saltPin, fp, now)
	if err != nil {
		return fmt.Errorf("check the subject salt: %w", err)
	}
	if !hmac.Equal(held, fp) {
		return fmt.Errorf("%w: keys.subject_salt_file must hold the salt every node of this store has used "+
			"(changing it would give every person new subject identifiers at every service)", ErrSaltChanged)
	}
	return nil
}

// saltFingerprint is what the store pins of a subject salt.
func saltFingerprint(salt []byte) []byte {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte("varde subject salt fingerprint v1"))
	return m.Sum(nil)
}

// CheckStoreSalt compares the subject salt cfg names with the
// fingerprint its store holds, as New does at start, but reading the
// store only: it creates, migrates and writes nothing. pinned is false,
// with no error, if the store holds no fingerprint yet (its first node
// pins the salt it starts with). An error wrapping ErrSaltChanged means
// the salt is not the store's; any other error, one wrapping ErrNoStore
// or *sqlstore.SchemaError among them, means the store was not checked;
// one the store could not be opened with is an *OpenError.
func CheckStoreSalt(ctx context.Context, cfg *config.Config) (pinned bool, err error) {
	salt, err := loadSalt(cfg.Keys.SubjectSaltFile)
	if err != nil {
		return false, err
	}
	st, err := OpenExistingStore(ctx, cfg.Store)
	if err != nil {
		return false, &OpenError{Err: err}
	}
	defer st.Close()
	return matchPinnedSalt(ctx, st, salt)
}

// OpenError is CheckStoreSalt's failure to open the store at all, as
// opposed to reading the salt from a store it opened: its text is
// Err's, and it unwraps to Err (ErrNoStore, a *sqlstore.SchemaError, a
// store.Unavailable error, or one that would stop a node at start).
type OpenError struct{ Err error }

func (e *OpenError) Error() string { return e.Err.Error() }
func (e *OpenError) Unwrap() error { return e.Err }

// matchPinnedSalt compares salt with the fingerprint st holds, reading
// only: pinned is false, with no error, if st holds none yet.
func matchPinnedSalt(ctx context.Context, st store.Pins, salt []byte) (pinned bool, err error) {
	held, err := st.Pinned(ctx, saltPin)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !hmac.Equal(held, saltFingerprint(salt)) {
		return true, fmt.Errorf("%w: keys.subject_salt_file must hold the salt every node of this store has used "+
			"(changing it would give every person new subject identifiers at every service)", ErrSaltChanged)
	}
	return true, nil
}

// StoreSubjectSalt reads the subject salt cfg names, for an operator's
// command that works out the subject identifiers services got (varde
// persons export), and returns it only if it is the one st's nodes use:
// an error wrapping ErrSaltChanged if st pins another. A store no node
// has started on pins none, and its people have no subject identifiers
// yet; the salt is returned.
func StoreSubjectSalt(ctx context.Context, cfg *config.Config, st store.Pins) ([]byte, error) {
	salt, err := loadSalt(cfg.Keys.SubjectSaltFile)
	if err != nil {
		return nil, err
	}
	if _, err := matchPinnedSalt(ctx, st, salt); err != nil {
		return nil, err
	}
	return salt, nil
}

// checkSectors refuses a configured client that would share pairwise
// subject identifiers with a client added at run time (varde clients
// add) without both naming the sector (config.SectorClash), or learn
// them by introspection across sectors (config.ForeignResourceServer). The
// configuration's own clients were checked when it was loaded, and
// varde clients add checks against the store, but a client added to the
// file later meets the store's clients only here.
func checkSectors(ctx context.Context, st store.Clients, clients []config.Client) error {
	stored, err := st.ListClients(ctx)
	if err != nil {
		return fmt.Errorf("check the configured clients against those added with varde clients add: %w", err)
	}
	return sectorClashes(stored, clients)
}

// sectorClashes is checkSectors over the stored clients.
func sectorClashes(stored []*store.Client, clients []config.Client) error {
	for _, c := range clients {
		for _, o := range stored {
			if o.ID == c.ID {
				continue // the configured client replaces it
			}
			if config.SectorClash(c.ID, c.SectorID, o.ID, o.SectorID) || config.SectorClash(o.ID, o.SectorID, c.ID, c.SectorID) {
				return fmt.Errorf("client %q in the configuration and client %q in the store would get the same subject identifiers: "+
					"give one of them another sector_id, or the same sector_id on both if they belong to one organisation "+
					"(varde clients remove %s, then add it again with --sector)", c.ID, o.ID, o.ID)
			}
			if config.ForeignResourceServer(c.ID, c.SectorID, c.IntrospectTokensOf, o.ID, o.SectorID) ||
				config.ForeignResourceServer(o.ID, o.SectorID, o.IntrospectTokensOf, c.ID, c.SectorID) {
				return fmt.Errorf("clients %q (in the configuration) and %q (in the store): one may introspect the other's tokens "+
					"(introspect_tokens_of), but they have different pairwise sectors, so it would learn the other's subject identifiers; "+
					"give both the same sector_id if they belong to one organisation", c.ID, o.ID)
			}
		}
	}
	return nil
}

func (a *App) build(ctx context.Context, opt Options, salt []byte) error {
	cfg, st, log := a.Config, a.Store, a.log
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The store's connection pools (go_sql_* with db_name "write",
	// "read" and, on SQLite, "checkpoint"): on PostgreSQL, waits for a connection are the first sign
	// of a database that cannot keep up.
	if p, ok := durable(st).(interface{ Pools() map[string]*sql.DB }); ok {
		for name, pool := range p.Pools() {
			reg.MustRegister(collectors.NewDBStatsCollector(pool, name))
		}
	}
	if db, ok := durable(st).(*sqlstore.DB); ok {
		// A count that keeps rising: the SQLite WAL file is growing (a
		// full disk, an I/O error); the log says why.
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "varde_store_checkpoint_failures_total",
			Help: "Background WAL checkpoints of the SQLite store that failed.",
		}, func() float64 { return float64(db.CheckpointFailures()) }))
	}
	if f, ok := st.(*flowmem.Store); ok {
		reg.MustRegister(newFlowMetrics(f.Mem()))
	}
	a.addrsDeleted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "varde_audit_addresses_deleted_total",
		Help: "Client addresses of audit events this node deleted after audit.address_retention (the events stay).",
	})
	a.addrsHeld = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "varde_audit_addresses_held",
		Help: "Client addresses of audit events past audit.address_retention that a hold (varde audit hold) kept at this node's last housekeeping round.",
	})
	// A count that keeps rising: some expired records are not deleted
	// and pile up; the log names the table and says why.
	a.sweepFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "varde_store_sweep_failures_total",
		Help: "Sweeps of one table's expired records that failed, one a housekeeping round for each table.",
	})
	reg.MustRegister(a.addrsDeleted, a.addrsHeld, a.sweepFailures)

	// Clients taken out of the file go first, so that none of them
	// stands in the way of the file's clients below.
	if err := removeUndeclared(ctx, st, cfg.Clients, cfg.Store.Shared(), opt.Now(), log); err != nil {
		return err
	}
	if err := checkSectors(ctx, st, cfg.Clients); err != nil {
		return err
	}
	// A client's sector changes only on purpose: its people's subject
	// identifiers change with it.
	if err := applySectorChanges(ctx, st, cfg.Clients, opt.Now(), log); err != nil {
		return err
	}
	if a.RSASigner == nil {
		stored, err := st.ListClients(ctx)
		if err != nil {
			return fmt.Errorf("check that no client wants RS256 ID tokens from a node without an RSA key: %w", err)
		}
		if err := needRSA(stored); err != nil {
			return err
		}
	}

	if err := a.publishKeys(ctx, opt); err != nil {
		return err
	}
	keySet := a.keys
	staticFS, err := staticFiles()
	if err != nil {
		return err
	}
	pages, err := nodePages(cfg, log)
	if err != nil {
		return err
	}
	a.Audit = &audit.Log{Store: st, Log: log, Now: opt.Now}
	cache := newClientCache(st, clientCacheTTL, opt.Now)
	if a.RSASigner == nil {
		a.rs256 = newRS256Clients(log)
		cache.watch = a.rs256.saw
	}
	a.clients = cache
	sessions := &session.Manager{Store: st, Lifetime: cfg.Session.Lifetime, IdleTimeout: cfg.Session.IdleTimeout, Secure: *cfg.Session.SecureCookie, Path: pages.CookiePath(), Now: opt.Now, Log: log}
	st.SetSessionIdleTimeout(cfg.Session.IdleTimeout)

	mux := http.NewServeMux()
	brk := &broker.Broker{
		AuthRequests: st, Clients: a.clients, Persons: st, Sessions: sessions, Challenges: st, Audit: a.Audit, Pages: pages,
		AccountURL: accountURL, RequestLifetime: cfg.OIDC.AuthRequestLifetime, KeepPages: passkeyidp.LoginPages,
		Metrics: broker.NewMetrics(reg), Now: opt.Now, Log: log,
	}
	providers, err := a.providers(cfg, opt, st, sessions, pages, brk, salt, log)
	if err != nil {
		return err
	}
	brk.Providers = providers
	for _, p := range providers {
		if r, ok := p.(provider.Router); ok {
			r.Register(mux)
		}
	}
	if a.Health, err = a.monitor(providers, reg, opt); err != nil {
		return err
	}
	brk.Health = a.Health
	if err := a.addNodeComponent(mux); err != nil {
		return err
	}
	a.Status = a.statusService(opt)
	reg.MustRegister(a.Status.RCACollector())
	a.incidents = status.NewEngine(a.Status)
	a.Health.Subscribe(a.incidents.Observe)
	if a.webhooks, err = a.notifier(providers, reg, opt); err != nil {
		return err
	}
	brk.Register(mux)
	op, err := a.openID(cfg, opt, st, sessions, keySet, pages, salt, reg, log)
	if err != nil {
		return err
	}
	a.op = op
	a.settleEndsFor = settleEndsRound
	(&statuspage.Handler{Source: a.Status, Pages: pages, BaseURL: cfg.Issuer, Now: opt.Now, Log: log}).Register(mux)
	op.StatusAPIPath, op.StatusPagePath = statusAPIPath, statusPagePath
	// The OpenID side hands logins to the broker and takes them back.
	op.Login, op.Pushed, op.DegradedNow, brk.Continue = brk.Begin, brk.Pushed, brk.DegradedNow, op.Continue
	op.WaysIn = brk.WaysIn
	// A login for a relying party finishes only in the browser that
	// began it at the authorization endpoint (ADR 47).
	op.Browsers = brk.BrowserMarks()
	op.Register(mux)

	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS)))
	a.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if cfg.Metrics.Listen == "" {
		mux.Handle("GET /metrics", a.metrics)
		if cfg.PublicIssuer() {
			log.Warn("metrics are served to anyone on the public listener; set metrics.listen to serve them on an internal address",
				"issuer", cfg.Issuer)
		}
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := st.Ping(ctx); err != nil {
			if a.unready.set("store") != "store" {
				log.Warn("not ready: store", "err", err)
			}
			http.Error(w, "store unavailable\n", http.StatusServiceUnavailable)
			return
		}
		if a.draining.Load() {
			http.Error(w, "stopping\n", http.StatusServiceUnavailable)
			return
		}
		for _, k := range a.signingKeys() {
			if a.keyUnready(ctx, w, r, k) {
				return
			}
		}
		if a.rs256Unready(ctx, w) {
			return
		}
		// A serving node takes traffic once its first probe round has
		// ended, not while every provider is Unknown and so offered
		// (a cold fleet has no probes to seed from).
		if a.serving.Load() && r.Context().Value(selfProbe{}) == nil && !closed(a.Health.Probed()) {
			http.Error(w, "health of the providers not yet probed\n", http.StatusServiceUnavailable)
			return
		}
		if was := a.unready.set(""); was != "" {
			log.Info("ready again", "was", was)
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, accountURL, http.StatusSeeOther)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		pages.Error(w, r, http.StatusNotFound, pages.Locale(r, nil), httpx.NotFoundPage())
	})
	if opt.Mount != nil {
		opt.Mount(mux)
	}
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "varde_http_request_duration_seconds",
		Help:    "HTTP request latency by route pattern.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route", "method"})
	reg.MustRegister(latency)
	var h http.Handler = mux
	h = instrument(mux, latency)
	h = httpx.LimitBody(1<<20, h)
	h = httpx.SecurityHeaders(h)
	if strings.HasPrefix(cfg.Issuer, "https://") {
		h = httpx.StrictTransport(h)
	}
	h = httpx.Recover(log, panicAnswer, h)
	// An issuer with a path: everything is served under it, and nothing
	// elsewhere on the host (ADR 25).
	notFound := httpx.SecurityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pages.Error(w, r, http.StatusNotFound, pages.Locale(r, nil), httpx.NotFoundPage())
	}))
	h = httpx.Under(pages.Base, h, metadataOutside(pages.Base, h, notFound))
	accessLevel := slog.LevelDebug
	if cfg.Log.AccessAtInfo() {
		accessLevel = slog.LevelInfo
	}
	// Logs never hold a national identity number, and anyone can put
	// one in a path.
	h = httpx.AccessLogAt(log, accessLevel, audit.LooksLikeNationalID, h)
	trusted, err := cfg.Server.TrustedPrefixes()
	if err != nil {
		return err
	}
	h = httpx.ClientAddress(trusted, h)
	h = httpx.WithRequestID(h)
	a.handler = h
	return nil
}

// metadataOutside answers the one address outside base, the issuer's
// path, that a node with such an issuer serves: RFC 8414 §3.1 puts the
// authorization server metadata before the issuer's path
// ("/.well-known/oauth-authorization-server/eid"). It is the document
// served under base (oidc.PathAuthorizationServer). Anything else gets
// notFound.
func metadataOutside(base string, h, notFound http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != oidc.PathAuthorizationServer+base {
			notFound.ServeHTTP(w, r)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path, r2.URL.RawPath = oidc.PathAuthorizationServer, ""
		h.ServeHTTP(w, r2)
	})
}

// panicAnswer answers a request whose handler panicked at an endpoint
// relying parties call from their servers or scripts with an OAuth JSON
// server_error (RFC 6749 §5.2), which their libraries read, naming only
// the request ID; anywhere else it leaves the answer to httpx.Recover's
// plain text, which people read.
func panicAnswer(w http.ResponseWriter, r *http.Request, id string) bool {
	if !protocolPath(r.URL.Path) {
		return false
	}
	oauth2.WriteError(w, oauth2.NewError(oauth2.CodeServerError, "the server failed; reference %s", id))
	return true
}

// protocolPath reports whether path is an endpoint relying parties call
// from their servers or scripts, whose libraries read OAuth JSON errors.
func protocolPath(path string) bool {
	switch path {
	case oidc.PathDiscovery, oidc.PathAuthorizationServer, oidc.PathJWKS, oidc.PathPAR, oidc.PathToken,
		oidc.PathRevocation, oidc.PathIntrospection, oidc.PathUserinfo:
		return true
	}
	return false
}

// counted is the node's handler with each request counted in running;
// one that comes once running lets none in is refused (answerStopping).
func (a *App) counted(running *inflight) http.Handler {
	// Under an issuer's path, answerStopping sees the path taken off, as
	// the node's handlers do, to tell the protocol endpoints apart.
	stopping := httpx.WithRequestID(httpx.Under(a.Config.BasePath(), http.HandlerFunc(answerStopping), http.HandlerFunc(answerStopping)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !running.enter() {
			stopping.ServeHTTP(w, r)
			return
		}
		defer running.leave()
		a.handler.ServeHTTP(w, r)
	})
}

// stoppingRetryAfter is the Retry-After of a request refused because
// the node is stopping: by then the load balancer has had the drain to
// take the node out, so a retry soon reaches another node.
const stoppingRetryAfter = "1"

// answerStopping refuses a request that reached a node which has
// stopped taking requests, on a connection opened before: 503 with
// Retry-After (RFC 9110 §10.2.3) and the request's ID, as an OAuth JSON
// temporarily_unavailable (RFC 6749 §5.2) at the endpoints relying
// parties call, plain text elsewhere. The connection is then closed.
// It goes inside httpx.WithRequestID.
func answerStopping(w http.ResponseWriter, r *http.Request) {
	id := httpx.RequestID(r.Context())
	h := w.Header()
	h.Set("Connection", "close")
	h.Set("Retry-After", stoppingRetryAfter)
	h.Set("Cache-Control", "no-store")
	if protocolPath(r.URL.Path) {
		oauth2.WriteError(w, oauth2.NewError(oauth2.CodeTemporarilyUnavailable, "the server is stopping; try again; reference %s", id))
		return
	}
	http.Error(w, "The server is stopping. Please try again in a moment. Reference: "+id, http.StatusServiceUnavailable)
}

// instrument observes latency per mux pattern, so label cardinality stays
// bounded whatever paths clients send.
func instrument(mux *http.ServeMux, h *prometheus.HistogramVec) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		mux.ServeHTTP(w, r)
		_, pattern := mux.Handler(r)
		if i := strings.IndexByte(pattern, ' '); i >= 0 {
			pattern = pattern[i+1:]
		}
		h.WithLabelValues(pattern, methodLabel(r.Method)).Observe(time.Since(start).Seconds())
	})
}

// methodLabel keeps the method label to a fixed set: a client may send
// any token as a method, and each would otherwise be a new series kept
// for the life of the process.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// drain is how long Serve keeps serving, unready, after its context
// ends (config Shutdown.Drain).
func (a *App) drain() time.Duration {
	if d := a.Config.Shutdown.Drain; d != nil {
		return *d
	}
	return 0
}

// Handler is the node's whole HTTP handler.
func (a *App) Handler() http.Handler { return a.handler }

// Serve serves on ln until ctx ends, then shuts down gracefully. If the
// listener fails first, Serve returns its error once the node's
// background work has stopped, as it does at a shutdown.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	// The background work runs until Serve returns, not only until the
	// caller's ctx ends: a node whose listener failed must stop, so that
	// its process exits and its supervisor starts it again.
	caller := ctx
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	// Requests run under a context of their own, not ctx, so that they
	// go on while the node drains, and are counted, so that Serve
	// returns only when none runs (shutdown.grace).
	reqs, cutOff := context.WithCancel(context.Background())
	defer cutOff()
	running := &inflight{}
	srv := &http.Server{
		Handler:           a.counted(running),
		BaseContext:       func(net.Listener) context.Context { return reqs },
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	// Metrics on a listener of their own, if configured: a node the
	// operator cannot monitor should not start as if it could.
	if _, err := a.serveMetrics(ctx); err != nil {
		return err
	}
	// Profiles, if debug.pprof_listen is set (debug.go): a node asked
	// to serve them on a busy address is refused, as for metrics.
	if _, err := a.servePprof(ctx); err != nil {
		return err
	}
	// Serve at once, so /healthz and /readyz answer however slow the
	// store is. The first login must not find Unknown a provider the
	// other nodes find Down: the monitor's first round seeds the states
	// from their probes before probing (each step within
	// health.probe_timeout), and /readyz answers 503 until it ends.
	a.serving.Store(true)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	go a.sweep(ctx)
	monitorDone := make(chan struct{})
	go func() {
		defer close(monitorDone)
		if err := a.Health.Run(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("health monitor stopped", "err", err)
		}
	}()
	background := make(chan struct{}, 2)
	go func() {
		defer func() { background <- struct{}{} }()
		_ = a.incidents.Run(ctx)
	}()
	go func() {
		defer func() { background <- struct{}{} }()
		if err := a.webhooks.Run(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("webhook notifier stopped", "err", err)
		}
	}()
	// However Serve returns, the background work ends first; the
	// monitor writes what it still holds when ctx ends, so let it finish
	// before the caller closes the store. Then, if the node is stopping
	// (the caller's ctx ended; its listener did not fail), say so, after
	// its last probe result.
	defer func() {
		stop()
		<-background
		<-background
		<-monitorDone
		if caller.Err() != nil {
			a.leave()
		}
	}()
	// However Serve returns, it waits for the requests still running
	// (a listener that failed leaves them running too), cancelling them
	// first if the grace ran out, so that the caller never closes the
	// store under one.
	defer func() {
		cutOff()
		running.wait()
	}()
	select {
	case err := <-errc:
		_ = a.shutdown(srv, cutOff, running)
		return err
	case <-ctx.Done():
	}
	d := a.drain()
	if d <= 0 {
		a.log.Info("stopping: the listener closes, and the requests held have shutdown.grace to finish", "grace", a.grace())
		return a.shutdown(srv, cutOff, running)
	}
	// Load balancers see /readyz fail and send new requests elsewhere
	// before the listener closes (Shutdown.Drain).
	a.draining.Store(true)
	a.log.Info("stopping: /readyz answers 503 while load balancers move away, then the listener closes", "drain", d)
	select {
	case <-time.After(d):
	case err := <-errc:
		_ = a.shutdown(srv, cutOff, running)
		return err
	}
	return a.shutdown(srv, cutOff, running)
}

// Listen opens a TCP listener on addr, the value of the setting named
// (and of its environment variable env, if any). An error names the
// setting and the address, and says what to do.
func Listen(addr, setting, env string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	from := setting
	if env != "" {
		from += " (env " + env + ")"
	}
	var hint string
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		hint = "another process is listening there: stop it, or set " + setting + " to a free address"
	case errors.Is(err, syscall.EACCES):
		hint = "ports below 1024 need privileges: set " + setting + " to a higher port, or give the process CAP_NET_BIND_SERVICE"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		hint = "this host has no such address: set " + setting + " to one of its own addresses, or leave the host out to listen on all"
	default:
		hint = "set " + setting + " to an address this host can listen on, such as :8080"
	}
	return nil, fmt.Errorf("%s: cannot listen on %q: %w; %s", from, addr, err, hint)
}

// shutdown closes srv's listeners and waits for the requests it holds,
// for shutdown.grace at most; then it cancels those still running
// (cutOff), logs how many were cut off, and closes their connections.
// Serve then waits for them to return.
func (a *App) shutdown(srv *http.Server, cutOff context.CancelFunc, running *inflight) error {
	grace := a.grace()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	a.log.Warn("stopping: requests still running after shutdown.grace are cut off",
		"requests", running.count(), "grace", grace)
	cutOff()
	_ = srv.Close()
	return nil
}

// readiness is why the node was last not ready, for /readyz to log a
// change once rather than each probe: a load balancer probes every few
// seconds, and a store down for an hour would fill the log.
type readiness struct {
	mu  sync.Mutex
	why string
}

// set records why ("" for ready) and returns what it was before.
func (s *readiness) set(why string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.why
	s.why = why
	return was
}

// inflight counts the requests a server is handling. Once wait is
// called it lets no new one in, and wait returns when none is left.
type inflight struct {
	mu     sync.Mutex
	n      int
	closed bool
	done   chan struct{}
}

// enter counts a request in; false if wait was called, and the request
// must not run.
func (f *inflight) enter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.n++
	return true
}

func (f *inflight) leave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.closed && f.n == 0 {
		close(f.done)
	}
}

func (f *inflight) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// wait lets no new request in and returns when none is running.
func (f *inflight) wait() {
	f.mu.Lock()
	f.closed = true
	f.done = make(chan struct{})
	if f.n == 0 {
		close(f.done)
	}
	done := f.done
	f.mu.Unlock()
	<-done
}

// grace is how long Serve waits for the requests it holds once its
// listener is closed (config Shutdown.Grace).
func (a *App) grace() time.Duration {
	if d := a.Config.Shutdown.Grace; d != nil {
		return *d
	}
	return config.DefaultShutdownGrace
}

// leave records that this node stopped cleanly, so that the other
// nodes stop listing it on the status page at once instead of finding it
// silent and down (package status). Its first probe result after a
// restart lists it again.
func (a *App) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := &store.NodeDeparture{Node: a.Config.Node, LeftAt: a.now(), Reason: store.NodeStopped}
	if err := a.Store.RecordNodeLeft(ctx, d, nil); err != nil {
		a.log.Warn("record that this node stopped; the others will find it silent", "err", err)
	}
}

// prober is a provider that can check its own dependencies (an upstream
// provider fetches its discovery document and keys).
type prober interface {
	Probe(ctx context.Context) error
}

// monitor watches the store and every provider: upstream providers by
// their own probe, the built-in ones through the store they depend on.
func (a *App) monitor(providers []provider.Provider, reg prometheus.Registerer, opt Options) (*health.Monitor, error) {
	mon, err := health.NewMonitor(health.Options{Config: a.Config.Health.Monitor(), Node: a.Config.Node, Store: a.Store, Registerer: reg, Now: opt.Now, Log: a.log})
	if err != nil {
		return nil, err
	}
	if err := mon.Add("store", health.PingProber(a.Store.Ping)); err != nil {
		return nil, err
	}
	for _, p := range providers {
		probe := health.PingProber(a.Store.Ping)
		if pr, ok := p.(prober); ok {
			probe = pr.Probe
		}
		if err := mon.Add(p.Info().ID, probe); err != nil {
			return nil, err
		}
	}
	return mon, nil
}

// keyOwner explains a refusal to claim the signing key (keys.Set's
// first Publish): another node publishes it and has not left (it did
// not stop cleanly, and no operator forgot it, since it last published
// the key). One key file shared by two nodes would be credited to
// whichever published last, so `varde keys list` and `keys retire`
// would take the other's key for an older one. A node renamed with its
// key file starts once its old name has left. The store decides in one
// write, so of two nodes started at once with one key file one starts.
func keyOwner(err error, field, node string) error {
	var held *store.KeyHeldError
	if !errors.As(err, &held) {
		return err
	}
	other := held.Key
	return fmt.Errorf("%s: its key (kid %s) is node %q's signing key, which it last published at %s, "+
		"and this node is %q: each node needs its own key file, so give this node a new one; "+
		"if %q was renamed %q, stop %q first, or, if it crashed and will not come back, run varde nodes forget --node %s",
		field, other.KID, other.Node, other.CreatedAt.UTC().Format(time.RFC3339), node, other.Node, node, other.Node, other.Node)
}

// closed reports whether c is closed.
func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// sweep runs housekeep every minute.
func (a *App) sweep(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.housekeep(ctx)
		}
	}
}

// housekeep deletes expired short-lived records and the audit events'
// addresses past their retention, keeps the node's signing key
// published, so other nodes keep serving and accepting it, on a node
// without an RSA key finds the clients that want RS256 ID tokens
// (rs256Clients), queues the logout tokens of sessions whose end was
// left pending (by a node that stopped, or a write that failed) for at
// most settleEndsRound, and logs the audit log's head every
// anchorEvery.
func (a *App) housekeep(ctx context.Context) {
	now := a.now()
	a.sweepExpired(ctx, now)
	a.forgetAddresses(ctx, now)
	for _, k := range a.signingKeys() {
		a.keepPublished(ctx, k)
	}
	if err := a.rs256.scan(ctx, a.Store); err != nil {
		a.log.Warn("find the clients that want RS256 ID tokens of this node, which has no RSA key", "err", err)
	}
	sctx, cancel := context.WithTimeout(ctx, a.settleEndsFor)
	_, err := a.op.SettleLeftoverEnds(sctx, now)
	cancel()
	if err != nil {
		a.log.Warn("queue the logout tokens of ended sessions", "err", err)
	}
	if now.Sub(a.anchored) >= anchorEvery {
		a.logAnchor(ctx, now)
	}
}

// sweepExpired deletes the expired short-lived records, logging and
// counting (sweepFailures) each kind that could not be swept (the others
// were): each error names its table.
func (a *App) sweepExpired(ctx context.Context, now time.Time) {
	n, err := a.Store.DeleteExpired(ctx, now)
	for _, err := range unjoin(err) {
		a.sweepFailures.Inc()
		a.log.Warn("sweep expired records", "err", err)
	}
	if n > 0 {
		a.log.Debug("swept expired records", "n", n)
	}
}

// unjoin is the errors errors.Join joined into err, or err alone; none
// if err is nil.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// forgetAddresses deletes the client addresses of audit events older
// than audit.address_retention (ADR 38), but for those a live hold
// covers (ADR 45): the events stay and verify. Every node does it each
// round; nodes that do it at once delete each address once. A
// retention that is not set deletes nothing.
func (a *App) forgetAddresses(ctx context.Context, now time.Time) {
	keep := a.Config.Audit.AddressRetention
	if keep <= 0 {
		return
	}
	sweep, err := a.Store.DeleteAuditAddresses(ctx, now.Add(-keep), now)
	a.addrsDeleted.Add(float64(sweep.Deleted))
	switch {
	case err != nil:
		a.log.Warn("delete audit addresses past their retention", "deleted", sweep.Deleted, "err", err)
	default:
		a.addrsHeld.Set(float64(sweep.Held))
		if sweep.Deleted > 0 {
			a.log.Info("deleted audit addresses past their retention", "deleted", sweep.Deleted, "held", sweep.Held,
				"retention", keep.String())
		}
	}
}

// logAnchor logs the audit log's head as an anchor (audit.Head). Logs
// are shipped away from the node, so they hold anchors that whoever can
// change the database cannot: `varde store verify --anchor` with any of
// them shows whether the log up to it was rewritten since.
func (a *App) logAnchor(ctx context.Context, now time.Time) {
	e, err := a.Store.LastAudit(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return // nothing to anchor yet
	case err != nil:
		a.log.Warn("read the audit log's head", "err", err)
		return
	}
	a.anchored = now
	a.log.Info("audit log head", "anchor", audit.Head{Seq: e.Seq, Hash: e.Hash}.AnchorString(),
		"event_time", e.Time.UTC().Format(time.RFC3339))
}

// Close releases the store, then the node's lock on it; it may be
// called more than once.
func (a *App) Close() error { return errors.Join(a.Store.Close(), a.lock.Unlock()) }

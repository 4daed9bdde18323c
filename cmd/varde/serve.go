package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	return serveWith(ctx, args, stderr, serveOptions{})
}

// serveOptions are what tests change in serve: the pauses between tries
// to open a store that is not there yet (app.StoreWait's First and Max;
// zero for the defaults).
type serveOptions struct {
	waitFirst, waitMax time.Duration
}

func serveWith(ctx context.Context, args []string, stderr io.Writer, so serveOptions) (err error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML); VARDE_* environment variables override some settings (see varde.example.yaml), and an unknown one is an error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadNodeConfig(*path)
	if err != nil {
		return &refusal{err}
	}
	// The store's user is checked where it is opened: as the lock is
	// taken, and by app.New.
	defer func() {
		if errors.Is(err, sqlstore.ErrWrongUser) {
			err = &refusal{err}
		}
	}()
	log := newLogger(stderr, cfg.Log)
	// A node on SQLite takes the file's lock first (ADR 11), so that a
	// second node on it is refused naming the holder. The listeners are
	// bound before the store is opened: a node started on a busy port is
	// refused before it migrates the store or writes the configured
	// clients.
	var lock *sqlstore.NodeLock
	if !cfg.Store.Shared() {
		if lock, err = sqlstore.LockNode(cfg.Store.DSN); err != nil {
			return err
		}
	}
	// Until the node holds it (app.New), the lock is released on the
	// way out.
	held := false
	defer func() {
		if !held {
			_ = lock.Unlock()
		}
	}()
	ln, err := app.Listen(cfg.Listen, "listen", config.EnvListen)
	if err != nil {
		return err
	}
	defer ln.Close()
	metricsLn, err := listenIfSet(cfg.Metrics.Listen, "metrics.listen", config.EnvMetricsListen)
	if err != nil {
		return err
	}
	defer closeAll(metricsLn)
	pprofLn, err := listenIfSet(cfg.Debug.PprofListen, "debug.pprof_listen", config.EnvPprofListen)
	if err != nil {
		return err
	}
	defer closeAll(pprofLn)
	opts := app.Options{Log: log, MetricsListener: metricsLn, PprofListener: pprofLn, NodeLock: lock}
	// A shared store may be failing over as the node starts: the node
	// waits for a server that takes writes, answering /readyz 503 on its
	// listener meanwhile, rather than exiting into its supervisor's
	// restart limit and staying down once the database is back.
	if cfg.Store.Shared() {
		opts.Store, err = app.WaitForStore(ctx, cfg, ln, app.StoreWait{First: so.waitFirst, Max: so.waitMax,
			Timeout: cfg.Store.StartTimeout, Log: log})
		if err != nil && ctx.Err() != nil {
			log.Info("stopped while waiting for the database")
			return nil
		}
		if err != nil {
			return err
		}
	}
	a, err := app.New(ctx, cfg, opts)
	if err != nil {
		return err
	}
	held = true
	defer a.Close()
	log.Info("varde serving", "issuer", cfg.Issuer, "listen", ln.Addr().String(), "node", cfg.Node, "version", version,
		"store", cfg.Store.Driver+": "+sqlstore.DescribeDSN(cfg.Store.Driver, cfg.Store.DSN))
	if err := a.Serve(ctx, ln); err != nil {
		return err
	}
	// The journal shows a stop asked for apart from a crash.
	log.Info("varde stopped serving", "node", cfg.Node)
	return nil
}

// listenIfSet binds addr, the setting key (env names its variable), as
// app.Listen does; nothing, and no error, if addr is empty.
func listenIfSet(addr, key, env string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	return app.Listen(addr, key, env)
}

// closeAll closes the listeners that are not nil.
func closeAll(ls ...net.Listener) {
	for _, l := range ls {
		if l != nil {
			_ = l.Close()
		}
	}
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(c.Format, "text") {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// withoutConfigHint returns err, the configuration at path found wanting;
// if no file was given (path is empty) and the VARDE_* environment is
// not a configuration by itself, a usage error saying to give one.
func withoutConfigHint(path string, err error) error {
	if path != "" {
		return err
	}
	return usageErrorf("no --config given, and the VARDE_* environment alone is no node's configuration: "+
		"give the node's configuration file with --config FILE (%w)", err)
}

// storeMissing says what a store that OpenExistingStore did not find
// lacks: its SQLite file, or, in its PostgreSQL database, which must
// exist before any node starts, the tables a node creates.
func storeMissing(s config.Store) string {
	where := sqlstore.DescribeDSN(s.Driver, s.DSN)
	if s.Shared() {
		return where + " holds no Varde store"
	}
	return "no database at " + where
}

// openNodeStore reads the node's configuration at path and opens its
// store for the admin commands. The store must exist: a node creates it
// at its first start, and one these commands made up at a wrong path
// would take writes that no node ever reads. When the configuration
// loads but the store does not open, cfg is returned with the error.
func openNodeStore(ctx context.Context, path string) (*config.Config, store.Store, error) {
	cfg, err := loadAdminConfig(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := app.OpenExistingStore(ctx, cfg.Store)
	if err != nil {
		return cfg, nil, noNodeStore(cfg, path, err)
	}
	return cfg, st, nil
}

// loadAdminConfig reads the node's configuration at path, or, if path
// is empty, from the environment, for the admin commands.
func loadAdminConfig(path string) (*config.Config, error) {
	cfg, err := config.LoadEnviron(path, os.Environ)
	if err != nil {
		return nil, withoutConfigHint(path, err)
	}
	return cfg, nil
}

// noNodeStore is err, an admin command's failure to open cfg's store
// read from path, saying where to look if the store was not there
// (app.ErrNoStore).
func noNodeStore(cfg *config.Config, path string, err error) error {
	if !errors.Is(err, app.ErrNoStore) {
		return err
	}
	from := "the configuration file " + path
	if path == "" {
		from = "the environment (no --config given)"
	}
	return fmt.Errorf("%s, the store.dsn from %s: start the node once to create it, "+
		"or give the node's own configuration file with --config", storeMissing(cfg.Store), from)
}

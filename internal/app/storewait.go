package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// Pauses between a starting node's tries to open its shared store
// (StoreWait): the first, then doubled after each failure up to the
// last, so that a failover of a few seconds costs about a second, and a
// longer outage one try every 15 s from each node.
const (
	StoreWaitFirst = 500 * time.Millisecond
	StoreWaitMax   = 15 * time.Second
)

// StoreWait is how a starting node waits for a shared store (postgres)
// that cannot be written yet: its server does not answer, is starting
// up, or is a standby that a failover has not yet made the primary.
type StoreWait struct {
	// First and Max bound the pause between tries (StoreWaitFirst and
	// StoreWaitMax if zero). Each pause is drawn between half and all of
	// its bound, so that nodes started together do not try together.
	First, Max time.Duration
	// Timeout is how long to wait at most: config.Store.StartTimeout,
	// 0 for as long as it takes.
	Timeout time.Duration
	// Log takes a warning at each failed try.
	Log *slog.Logger
}

// WaitForStore opens cfg.Store as OpenStore does, and tries again
// while it fails for a reason that waiting may fix (store.Unavailable),
// logging each failure with what it means. Any other error (a wrong
// password, a database that does not exist, a server certificate that
// does not verify) is returned at once, as is ctx's end. A schema newer
// than this build is none: a node serves on it while the others are
// upgraded. While it waits, it
// answers on ln, if not nil (WaitingHandler), and gives ln back open.
func WaitForStore(ctx context.Context, cfg *config.Config, ln net.Listener, w StoreWait) (store.Store, error) {
	w.First = cmp0(w.First, StoreWaitFirst)
	w.Max = cmp0(w.Max, StoreWaitMax)
	if w.Log == nil {
		w.Log = slog.New(slog.DiscardHandler)
	}
	where := sqlstore.DescribeDSN(cfg.Store.Driver, cfg.Store.DSN)
	start := time.Now()
	stop := func() {}
	defer func() { stop() }()
	bound := w.First
	for try := 1; ; try++ {
		st, err := OpenStore(ctx, cfg.Store)
		if err == nil {
			if try > 1 {
				w.Log.Info("the database takes writes: starting", "store", where, "waited", time.Since(start).Round(time.Millisecond))
			}
			return st, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !store.Unavailable(err) {
			return nil, fmt.Errorf("open store: %w", err)
		}
		pause := bound/2 + rand.N(bound/2+1)
		if w.Timeout > 0 {
			// The last try is at the timeout, not a pause before it.
			left := w.Timeout - time.Since(start)
			if left <= 0 {
				return nil, fmt.Errorf("open store: gave up after waiting %v (store.start_timeout) for %s: %w",
					w.Timeout, where, err)
			}
			pause = min(pause, left)
		}
		w.Log.Warn(storeWaitReason(where, err), "try", try, "retry_in", pause.Round(time.Millisecond), "err", err)
		if try == 1 && ln != nil {
			h, herr := WaitingHandler(cfg, w.Log)
			if herr != nil {
				return nil, herr
			}
			stop = serveWaiting(ln, h, w.Log)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause):
		}
		bound = min(2*bound, w.Max)
	}
}

// storeWaitReason says, for the operator, why a node waits for the
// store at where and what it waits for.
func storeWaitReason(where string, err error) string {
	if errors.Is(err, sqlstore.ErrReadOnly) {
		return where + " is read-only (a standby, or set read-only): waiting for a primary that takes writes"
	}
	return where + " cannot be reached or cannot serve yet: waiting for it"
}

// cmp0 is v, or def if v is zero.
func cmp0(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// waitingReadyz is /readyz's answer while the node waits for its
// store.
const waitingReadyz = "waiting for the database"

// WaitingHandler answers for a node that waits for its store
// (WaitForStore), none of whose handlers is built yet: /healthz 200 (the
// process runs), /readyz 503 (send it nothing), the pages' static assets,
// and every other request 503 with Retry-After: an OAuth JSON
// temporarily_unavailable (RFC 6749 §5.2) at the endpoints relying
// parties call, and elsewhere the page saying the records cannot be
// reached, in the person's language.
func WaitingHandler(cfg *config.Config, log *slog.Logger) (http.Handler, error) {
	pages, err := nodePages(cfg, log)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, waitingReadyz, http.StatusServiceUnavailable)
	})
	static, err := staticFiles()
	if err != nil {
		return nil, err
	}
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	unavailable := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if protocolPath(r.URL.Path) {
			w.Header().Set("Retry-After", strconv.Itoa(httpx.UnavailableRetry))
			oauth2.WriteError(w, oauth2.NewError(oauth2.CodeTemporarilyUnavailable, "the server is starting and waits for its database; try again"))
			return
		}
		pages.Unavailable(w, r, pages.Locale(r, nil), httpx.UnavailablePage())
	})
	mux.Handle("/", unavailable)
	return httpx.SecurityHeaders(httpx.Under(pages.Base, mux, unavailable)), nil
}

// serveWaiting serves h on ln until the returned stop is called, and
// then leaves ln open for the node to serve on: an http.Server closes
// its listeners when it shuts down, so it is given ln behind keepOpen,
// whose Close only ends the Accept under way. A listener without
// deadlines (none that Listen returns) is not served.
func serveWaiting(ln net.Listener, h http.Handler, log *slog.Logger) (stop func()) {
	dl, ok := ln.(deadliner)
	if !ok {
		return func() {}
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(keepOpen{ln, dl})
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
		<-done
		_ = dl.SetDeadline(time.Time{})
	}
}

// deadliner is a listener whose Accept can be given a deadline
// (*net.TCPListener).
type deadliner interface{ SetDeadline(time.Time) error }

// keepOpen is a listener whose Close ends the Accept under way, and
// any later one, without closing it.
type keepOpen struct {
	net.Listener
	dl deadliner
}

func (k keepOpen) Close() error { return k.dl.SetDeadline(time.Now()) }

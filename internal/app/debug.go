package app

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/httpx"
)

// pprofHandler serves Go's runtime profiles under /debug/pprof/ on a mux
// of its own. (Importing net/http/pprof also registers these handlers on
// http.DefaultServeMux; no Varde listener serves that mux.)
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return localOnly(mux)
}

// localOnly serves only requests made by a loopback name and from no
// other site. The listener is on a loopback address, but a browser on
// the node's host can still reach it for a web page: a page whose name
// a DNS rebinding points at 127.0.0.1 sends its own name as Host and
// reads the answers as its own (421), and a page of any site can make
// the browser GET a CPU profile or trace that runs for minutes
// (Sec-Fetch-Site cross-site or same-site, 403). go tool pprof and curl
// send neither; a browser sends "none" for an address typed in and
// "same-origin" for the index page's links.
func localOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackName(r.Host) {
			http.Error(w, "profiles are served only to a loopback address or localhost\n", http.StatusMisdirectedRequest)
			return
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "none" && site != "same-origin" {
			http.Error(w, "profiles are not served to other sites' pages\n", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackName reports whether host (a Host header, with or without a
// port) is localhost or a loopback IP address.
func loopbackName(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return httpx.LoopbackHost(host)
}

// servePprof serves profiles on cfg.Debug.PprofListen (validated to be a
// loopback address) until ctx ends, on Options.PprofListener if the
// caller bound it. It returns the bound address, or "" when profiling is
// off. A listener that cannot be opened is an error naming the setting:
// an operator who asked for profiles finds out at start, not when they
// are needed.
func (a *App) servePprof(ctx context.Context) (string, error) {
	addr := a.Config.Debug.PprofListen
	if addr == "" {
		return "", nil
	}
	ln := a.pprofLn
	if ln == nil {
		var err error
		if ln, err = Listen(addr, "debug.pprof_listen", config.EnvPprofListen); err != nil {
			return "", err
		}
	}
	// A CPU profile or trace streams for as long as it was asked to.
	srv := a.internalServer(pprofHandler(), 5*time.Minute)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Warn("pprof listener", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	a.log.Info("serving runtime profiles", "addr", ln.Addr().String(), "path", "/debug/pprof/")
	return ln.Addr().String(), nil
}

// internalIdle is how long the metrics and profile listeners keep a
// connection that asks for nothing more open: less than any scrape
// interval, so an idle connection is never reused anyway, and without it
// every connection left open would be kept for as long as the node runs.
const internalIdle = 5 * time.Second

// internalServer is the server of the metrics or profile listener: it
// waits at most 10 seconds for a request's header and internalIdle for
// the next request, takes write to answer, and logs through the node's
// log.
func (a *App) internalServer(h http.Handler, write time.Duration) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      write,
		IdleTimeout:       internalIdle,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
}

// serveMetrics serves /metrics on cfg.Metrics.Listen until ctx ends and
// returns the bound address; "" when metrics are on the public listener
// instead. Unlike profiles, metrics the operator asked for are not
// optional: a listener that cannot be opened is an error.
func (a *App) serveMetrics(ctx context.Context) (string, error) {
	addr := a.Config.Metrics.Listen
	if addr == "" {
		return "", nil
	}
	ln := a.metricsLn
	if ln == nil {
		var err error
		if ln, err = Listen(addr, "metrics.listen", config.EnvMetricsListen); err != nil {
			return "", err
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics)
	srv := a.internalServer(mux, 30*time.Second)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("metrics listener", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	a.log.Info("serving metrics", "addr", ln.Addr().String(), "path", "/metrics")
	return ln.Addr().String(), nil
}

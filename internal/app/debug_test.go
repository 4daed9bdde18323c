package app

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/health"
	"github.com/varde-eid/varde/internal/store"
)

// TestPprofListener: profiles are served on their own loopback listener
// when debug.pprof_listen is set, never on the node's public handler, and
// not at all when it is unset.
func TestPprofListener(t *testing.T) {
	for _, tc := range []struct {
		name, listen string
		want         bool
	}{
		{"off", "", false},
		{"on", "127.0.0.1:0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, a := listenerTestApp(t, config.EnvPprofListen, tc.listen)

			// The public handler never serves profiles.
			rec := httptest.NewRecorder()
			a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/pprof/cmdline", nil))
			if rec.Code != http.StatusNotFound {
				t.Errorf("public handler: /debug/pprof/cmdline answered %d, want 404", rec.Code)
			}

			addr, err := a.servePprof(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if (addr != "") != tc.want {
				t.Fatalf("servePprof = %q, want a listener: %v", addr, tc.want)
			}
			if addr == "" {
				return
			}
			res, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || !strings.Contains(string(body), ".test") {
				t.Errorf("cmdline: %d %q", res.StatusCode, body)
			}
		})
	}
}

// TestMetricsListener: with metrics.listen set, /metrics is served there
// and the public handler answers 404 for it; without, the public handler
// serves it. A listener that cannot be opened stops Serve.
func TestMetricsListener(t *testing.T) {
	for _, tc := range []struct {
		name, listen string
	}{
		{"public", ""},
		{"own listener", "127.0.0.1:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, a := listenerTestApp(t, config.EnvMetricsListen, tc.listen)

			rec := httptest.NewRecorder()
			a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			public := rec.Code == http.StatusOK && strings.Contains(rec.Body.String(), "go_goroutines")
			if public != (tc.listen == "") {
				t.Errorf("public handler /metrics: %d, want it served: %v", rec.Code, tc.listen == "")
			}
			addr, err := a.serveMetrics(ctx)
			if err != nil || (addr != "") != (tc.listen != "") {
				t.Fatalf("serveMetrics = %q, %v", addr, err)
			}
			if addr == "" {
				return
			}
			res, err := http.Get("http://" + addr + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "go_goroutines") {
				t.Errorf("metrics listener: %d", res.StatusCode)
			}
			// The address is taken now: a second node's Serve fails.
			a.Config.Metrics.Listen = addr
			if _, err := a.serveMetrics(ctx); err == nil || !strings.Contains(err.Error(), "metrics.listen (env VARDE_METRICS_LISTEN): cannot listen on \""+addr+"\"") ||
				!strings.Contains(err.Error(), "set metrics.listen to a free address") {
				t.Errorf("serveMetrics on a taken address: %v", err)
			}
		})
	}
}

// TestPprofOnlyForLocalRequests: the profile listener answers only a
// request made to it by a loopback name, from no other site. A web page
// whose name a DNS rebinding points at 127.0.0.1 reaches the listener
// with its own name as Host, and reads profiles as its own; a page of
// any site can make the browser GET a 5-minute CPU profile or trace
// (Sec-Fetch-Site: cross-site). The tools an operator uses (go tool
// pprof, curl) send neither; a browser where the operator typed the
// address sends Sec-Fetch-Site: none.
func TestPprofOnlyForLocalRequests(t *testing.T) {
	ctx, a := listenerTestApp(t, config.EnvPprofListen, "127.0.0.1:0")
	addr, err := a.servePprof(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	for _, tc := range []struct {
		name, host, site string
		want             int
	}{
		{"by its address", addr, "", http.StatusOK},
		{"as localhost", "localhost:" + port, "", http.StatusOK},
		{"as [::1]", "[::1]:" + port, "", http.StatusOK},
		{"typed in a browser", addr, "none", http.StatusOK},
		{"a link on its own page", addr, "same-origin", http.StatusOK},
		{"by a rebound name", "rebind.example:" + port, "", http.StatusMisdirectedRequest},
		{"by a rebound name from its page", "rebind.example:" + port, "same-origin", http.StatusMisdirectedRequest},
		{"by the node's public name", "varde.example", "", http.StatusMisdirectedRequest},
		{"from another site", addr, "cross-site", http.StatusForbidden},
		{"from another port of localhost", addr, "same-site", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/debug/pprof/cmdline", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tc.host
			if tc.site != "" {
				req.Header.Set("Sec-Fetch-Site", tc.site)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Fatalf("Host %q, Sec-Fetch-Site %q: %d %q, want %d", tc.host, tc.site, res.StatusCode, body, tc.want)
			}
			if tc.want != http.StatusOK && strings.Contains(string(body), ".test") {
				t.Errorf("a refused request got the command line: %q", body)
			}
		})
	}
}

// listenerTestApp builds a node on localhost whose environment sets
// variable to listen, and closes it when the test ends.
func listenerTestApp(t *testing.T, variable, listen string) (context.Context, *App) {
	t.Helper()
	env := map[string]string{
		config.EnvIssuer:   "http://localhost:8080",
		config.EnvNode:     "test",
		config.EnvStoreDSN: filepath.Join(t.TempDir(), "varde.db"),
		variable:           listen,
	}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	salt := make([]byte, 32)
	_, _ = rand.Read(salt)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a, err := New(ctx, cfg, Options{SubjectSalt: salt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return ctx, a
}

// TestStorePoolMetrics: /metrics reports the use of the store's
// connection pools, each by name, and of the flow state in memory.
func TestStorePoolMetrics(t *testing.T) {
	_, a := listenerTestApp(t, config.EnvMetricsListen, "")
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{
		`go_sql_open_connections{db_name="write"}`,
		`go_sql_open_connections{db_name="read"}`,
		`go_sql_wait_duration_seconds_total{db_name="read"}`,
		// The flow state in memory, beside SQLite (ADR 7, 10).
		`varde_flow_state_records{kind="front_requests"} 0`,
		`varde_flow_state_max_front_request_bytes 1.34217728e+08`,
		`varde_flow_state_refused_total{bound="front_requests"} 0`,
		`varde_flow_state_refused_total{bound="pushed_requests"} 0`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestDrainBeforeShutdown: a stopping node answers 503 at /readyz while
// it still serves other requests, for shutdown.drain, and only then
// closes its listener.
func TestDrainBeforeShutdown(t *testing.T) {
	ctx, a := listenerTestApp(t, config.EnvMetricsListen, "")
	ctx, stop := context.WithCancel(ctx)
	drain := 2 * time.Second
	a.Config.Shutdown.Drain = &drain
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()
	get := func(path string) int {
		res, err := http.Get(base + path)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	// Ready once the first health round has ended.
	for end := time.Now().Add(10 * time.Second); get("/readyz") != http.StatusOK; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("/readyz while serving = %d", get("/readyz"))
		}
	}
	stopped := time.Now()
	stop()
	time.Sleep(300 * time.Millisecond)
	if got := get("/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining = %d, want 503", got)
	}
	if got := get("/healthz"); got != http.StatusOK {
		t.Errorf("/healthz while draining = %d, want 200: the node still serves", got)
	}
	select {
	case err := <-served:
		if took := time.Since(stopped); took < drain {
			t.Errorf("Serve returned %v after the stop, before the drain of %v", took, drain)
		}
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(drain + 15*time.Second):
		t.Fatal("Serve did not return")
	}
	if got := get("/healthz"); got != 0 {
		t.Errorf("after Serve returned, /healthz answered %d", got)
	}
}

// TestShutdownWaitsForRequests: a stopping node waits shutdown.grace for
// a request it holds, then cancels it, and Serve returns only once the
// request's handler has returned, so that the store is never closed
// under it; the cut-off is logged.
func TestShutdownWaitsForRequests(t *testing.T) {
	ctx, a := listenerTestApp(t, config.EnvMetricsListen, "")
	var logs syncBuffer
	a.log = slog.New(slog.NewTextHandler(&logs, nil))
	ctx, stop := context.WithCancel(ctx)
	grace := time.Second
	a.Config.Shutdown.Grace = &grace
	started := make(chan struct{})
	var returned atomic.Bool
	next := a.handler
	a.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slow" {
			next.ServeHTTP(w, r)
			return
		}
		defer returned.Store(true)
		close(started)
		select {
		case <-r.Context().Done():
			// A store call under a cancelled request ends at once.
			if err := a.Store.Ping(r.Context()); err == nil {
				t.Error("Ping under a cancelled request succeeded")
			}
		case <-time.After(30 * time.Second):
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err == nil {
			res.Body.Close()
		}
	}()
	<-started
	stopped := time.Now()
	stop()
	select {
	case err := <-served:
		took := time.Since(stopped)
		if !returned.Load() {
			t.Errorf("Serve returned after %v while a request's handler still ran", took)
		}
		if took < grace {
			t.Errorf("Serve returned %v after the stop, before the grace of %v", took, grace)
		}
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(grace + 15*time.Second):
		t.Fatal("Serve did not return")
	}
	if !strings.Contains(logs.String(), "cut off") || !strings.Contains(logs.String(), "requests=1") {
		t.Errorf("log does not say one request was cut off:\n%s", logs.String())
	}
}

// TestReadyzLogsChanges: /readyz logs that the node is not ready once
// when it becomes so, and once when it is ready again, not at every
// probe of a load balancer.
func TestReadyzLogsChanges(t *testing.T) {
	env := map[string]string{
		config.EnvIssuer:   "http://localhost:8080",
		config.EnvNode:     "test",
		config.EnvStoreDSN: filepath.Join(t.TempDir(), "varde.db"),
	}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	salt := make([]byte, 32)
	_, _ = rand.Read(salt)
	var logs syncBuffer
	a, err := New(context.Background(), cfg, Options{SubjectSalt: salt, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	probe := func(ctx context.Context, want int) {
		t.Helper()
		w := httptest.NewRecorder()
		a.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil).WithContext(ctx))
		if w.Code != want {
			t.Fatalf("/readyz = %d, want %d", w.Code, want)
		}
	}
	// A request whose context has ended cannot reach the store.
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for range 3 {
		probe(context.Background(), http.StatusOK)
	}
	for range 5 {
		probe(gone, http.StatusServiceUnavailable)
	}
	for range 5 {
		probe(context.Background(), http.StatusOK)
	}
	probe(gone, http.StatusServiceUnavailable)
	out := logs.String()
	if n := strings.Count(out, "not ready: store"); n != 2 {
		t.Errorf("%d warnings that the store is down in 2 spells of it, want 2:\n%s", n, out)
	}
	if n := strings.Count(out, "ready again"); n != 1 {
		t.Errorf("%d notes that the node is ready again, want 1:\n%s", n, out)
	}
}

// TestStoppingAnswer: a request that reaches a node after it stopped
// taking requests is refused 503 with Retry-After and a request ID, as
// an OAuth JSON temporarily_unavailable at the endpoints relying parties
// call, so that their libraries read it, and as plain text naming the
// ID elsewhere; at a node whose issuer has a path, under it.
func TestStoppingAnswer(t *testing.T) {
	for _, base := range []string{"", "/eid"} {
		t.Run("issuer path "+cmp.Or(base, "none"), func(t *testing.T) { stoppingAnswer(t, base) })
	}
}

func stoppingAnswer(t *testing.T, base string) {
	_, a := listenerTestApp(t, config.EnvIssuer, "http://localhost:8080"+base)
	running := &inflight{}
	running.wait()
	h := a.counted(running)
	for _, tt := range []struct {
		path, contentType string
	}{
		{"/token", "application/json"},
		{"/.well-known/openid-configuration", "application/json"},
		{"/login", "text/plain"},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, base+tt.path, nil))
		id := w.Header().Get("X-Request-Id")
		if w.Code != http.StatusServiceUnavailable || id == "" || w.Header().Get("Retry-After") == "" ||
			!strings.HasPrefix(w.Header().Get("Content-Type"), tt.contentType) || !strings.Contains(w.Body.String(), id) {
			t.Errorf("%s: %d %v %q", tt.path, w.Code, w.Header(), w.Body.String())
		}
		if tt.contentType == "application/json" {
			var body struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error != "temporarily_unavailable" {
				t.Errorf("%s: %q %v", tt.path, w.Body.String(), err)
			}
		}
	}
}

// failingListener is a listener whose Accept fails for good, as one
// whose socket was closed under it does.
type failingListener struct{ net.Listener }

var errAcceptFailed = errors.New("accept failed")

func (failingListener) Accept() (net.Conn, error) { return nil, errAcceptFailed }

// TestServeReturnsWhenListenerFails: a listener that fails ends Serve
// with its error, though nobody cancelled Serve's context, so that the
// process exits and its supervisor starts it again.
func TestServeReturnsWhenListenerFails(t *testing.T) {
	ctx, a := listenerTestApp(t, config.EnvMetricsListen, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, failingListener{ln}) }()
	select {
	case err := <-served:
		if !errors.Is(err, errAcceptFailed) {
			t.Errorf("Serve = %v, want the listener's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its listener failed")
	}
}

// syncBuffer is a bytes.Buffer that a logger and a test can share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestPanicAnsweredAndLoggedOnce: a handler that panics gets the client
// a 500 naming the request ID and nothing of the panic, and the node's
// log one error line with that ID and the panic's stack.
func TestPanicAnsweredAndLoggedOnce(t *testing.T) {
	env := map[string]string{
		config.EnvIssuer:   "http://localhost:8080",
		config.EnvNode:     "test",
		config.EnvStoreDSN: filepath.Join(t.TempDir(), "varde.db"),
	}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	salt := make([]byte, 32)
	_, _ = rand.Read(salt)
	var logs syncBuffer
	a, err := New(context.Background(), cfg, Options{
		SubjectSalt: salt,
		Log:         slog.New(slog.NewTextHandler(&logs, nil)),
		Mount: func(mux *http.ServeMux) {
			mux.HandleFunc("GET /boom", func(w http.ResponseWriter, r *http.Request) {
				http.SetCookie(w, &http.Cookie{Name: "half", Value: "set"})
				panic("secret internal state")
			})
			mux.HandleFunc("PUT /token", func(http.ResponseWriter, *http.Request) { panic("secret internal state") })
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	res, err := http.Get(srv.URL + "/boom")
	if err != nil {
		t.Fatalf("no answer to a request whose handler panicked: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	body := string(b)
	id := res.Header.Get("X-Request-Id")
	if res.StatusCode != http.StatusInternalServerError || id == "" || !strings.Contains(body, id) {
		t.Errorf("status %d, request ID %q, body %q: want 500 naming the request ID", res.StatusCode, id, body)
	}
	if strings.Contains(body, "secret") || strings.Contains(body, "goroutine") || res.Header.Get("Set-Cookie") != "" {
		t.Errorf("answer shows internals: body %q, Set-Cookie %q", body, res.Header.Get("Set-Cookie"))
	}
	if res.Header.Get("Content-Security-Policy") == "" || res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v: want the security headers and no-store", res.Header)
	}
	log := logs.String()
	if n := strings.Count(log, "handler panicked"); n != 1 || !strings.Contains(log, "req="+id) ||
		!strings.Contains(log, "level=ERROR") || !strings.Contains(log, "debug_test.go") {
		t.Errorf("log %q: want one error line with the request ID and the stack", log)
	}

	// Relying parties' libraries read the token endpoint's errors as
	// JSON (RFC 6749 §5.2).
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/token", nil)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	err = json.NewDecoder(res.Body).Decode(&e)
	res.Body.Close()
	id = res.Header.Get("X-Request-Id")
	if err != nil || res.StatusCode != http.StatusInternalServerError || e.Error != "server_error" ||
		!strings.Contains(e.Description, id) || strings.Contains(e.Description, "secret") {
		t.Errorf("token endpoint: status %d, %+v, %v: want a server_error naming request ID %q", res.StatusCode, e, err, id)
	}
}

// TestMetricsListenerClosesIdleConnections: a connection to the metrics
// listener that asks for nothing more after an answer is closed after
// internalIdle, not kept for as long as the node runs.
func TestMetricsListenerClosesIdleConnections(t *testing.T) {
	ctx, a := listenerTestApp(t, config.EnvMetricsListen, "127.0.0.1:0")
	addr, err := a.serveMetrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /metrics HTTP/1.1\r\nHost: metrics\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Close {
		t.Fatalf("status %d, closed %v: want 200 on a connection kept alive", res.StatusCode, res.Close)
	}
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(internalIdle + 5*time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection after %v: %v, want it closed (EOF)", time.Since(start).Round(time.Second), err)
	}
}

// TestServeSeedsHealthFirst: a node that starts while the other nodes
// find a component down has taken their view by the time /readyz first
// answers 200, so no login a load balancer sends it sees the component
// Unknown.
func TestServeSeedsHealthFirst(t *testing.T) {
	ctx, a := listenerTestApp(t, config.EnvMetricsListen, "")
	now := time.Now()
	if err := a.Store.RecordProbes(ctx, []*store.ProbeRecord{
		{Component: "store", Node: "other", Time: now.Add(-time.Second), Duration: time.Millisecond, Reason: health.FailureConnect, State: string(health.Down)},
	}); err != nil {
		t.Fatal(err)
	}
	ln := serveTestApp(t, ctx, a)
	for end := time.Now().Add(30 * time.Second); readyzCode(t, ln) != http.StatusOK; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("/readyz never answered 200")
		}
	}
	if got := a.Health.State("store"); got != health.Down {
		t.Errorf("store's state when the node is first ready: %s, want down as the other node found it", got)
	}
}

// hangingProbes is a store whose reading of the probe results hangs
// until release is closed.
type hangingProbes struct {
	store.Store
	release chan struct{}
}

func (h hangingProbes) ListProbes(ctx context.Context, q store.HealthQuery) ([]*store.ProbeRecord, error) {
	select {
	case <-h.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return h.Store.ListProbes(ctx, q)
}

// TestServeAnswersWhileStoreHangs: a node whose store hangs as it
// starts answers /healthz 200 and /readyz 503 at once, not after the
// seeding of its health states gives up on the store, and is ready once
// the store answers.
func TestServeAnswersWhileStoreHangs(t *testing.T) {
	ctx, a := listenerTestApp(t, config.EnvMetricsListen, "")
	release := make(chan struct{})
	mon, err := health.NewMonitor(health.Options{Config: health.Config{ProbeTimeout: time.Hour, Interval: time.Hour},
		Node: "test", Store: hangingProbes{Store: a.Store, release: release}})
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.Add("store", health.PingProber(a.Store.Ping)); err != nil {
		t.Fatal(err)
	}
	a.Health = mon
	ln := serveTestApp(t, ctx, a)
	c := &http.Client{Timeout: 30 * time.Second}
	res, err := c.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("/healthz while the store hangs = %d, want 200", res.StatusCode)
	}
	if code := readyzCode(t, ln); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while the store hangs = %d, want 503", code)
	}
	close(release)
	for end := time.Now().Add(30 * time.Second); readyzCode(t, ln) != http.StatusOK; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("/readyz never answered 200 once the store answered")
		}
	}
}

// serveTestApp serves a on a loopback listener until the test ends.
func serveTestApp(t *testing.T, ctx context.Context, a *App) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- a.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		<-served
	})
	return ln
}

// readyzCode is the status /readyz answers on ln, within a generous
// limit.
func readyzCode(t *testing.T, ln net.Listener) int {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	res, err := c.Get("http://" + ln.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestReadyzWaitsForFirstProbes: a serving node answers 503 at /readyz
// until its first health round has probed every component, so a load
// balancer sends no login to it while every provider is Unknown.
func TestReadyzWaitsForFirstProbes(t *testing.T) {
	ctx, a := listenerTestApp(t, config.EnvMetricsListen, "")
	release := make(chan struct{})
	if err := a.Health.Add("slow", health.PingProber(func(ctx context.Context) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- a.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		<-served
	})
	get := func() (int, string) {
		res, err := http.Get("http://" + ln.Addr().String() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "not yet probed") {
		t.Errorf("/readyz during the first health round = %d %q, want 503 saying the providers are not yet probed", code, body)
	}
	close(release)
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, body := get()
		if code == http.StatusOK {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("/readyz after the first health round = %d %q, want 200", code, body)
		}
	}
}

package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/varde-eid/varde/internal/health"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

const issuer = "https://id.example.no"

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func openStore(t *testing.T) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "webhook.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// setClaims is how a relying party reads a SET, independently of this
// package's types.
type setClaims struct {
	jwt.Claims
	Txn    string                    `json:"txn"`
	Events map[string]map[string]any `json:"events"`
}

// hit is one verified POST the receiver got.
type hit struct {
	claims      setClaims
	body        string
	contentType string
	accept      string
}

// receiver is a relying party's SET endpoint on 127.0.0.1. It verifies
// every SET with go-jose against the signer's public key and answers
// with respond(n), n counting its POSTs from 1.
type receiver struct {
	t       *testing.T
	srv     *httptest.Server
	key     jose.JSONWebKey
	respond func(n int, w http.ResponseWriter, r *http.Request)

	mu   sync.Mutex
	hits []hit
}

func newReceiver(t *testing.T, key jose.JSONWebKey, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{t: t, key: key, respond: respond}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) url() string { return rc.srv.URL + "/events" }

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h := hit{body: string(body), contentType: r.Header.Get("Content-Type"), accept: r.Header.Get("Accept")}
	if r.Method != http.MethodPost || r.URL.Path != "/events" {
		rc.t.Errorf("receiver: %s %s", r.Method, r.URL.Path)
	}
	tok, err := jwt.ParseSigned(string(body), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		rc.t.Errorf("receiver: parse SET: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if typ := tok.Headers[0].ExtraHeaders[jose.HeaderType]; typ != "secevent+jwt" {
		rc.t.Errorf("receiver: typ %v, want secevent+jwt", typ)
	}
	if kid := tok.Headers[0].KeyID; kid != rc.key.KeyID {
		rc.t.Errorf("receiver: kid %q, want %q", kid, rc.key.KeyID)
	}
	if err := tok.Claims(rc.key.Key, &h.claims); err != nil {
		rc.t.Errorf("receiver: verify SET: %v", err)
	}
	rc.mu.Lock()
	rc.hits = append(rc.hits, h)
	n := len(rc.hits)
	rc.mu.Unlock()
	if rc.respond == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	rc.respond(n, w, r)
}

func (rc *receiver) got() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.hits)
}

// statuses answers the n-th POST with codes[n-1], then 202.
func statuses(codes ...int) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= len(codes) {
			w.WriteHeader(codes[n-1])
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}
}

type fixture struct {
	st     *sqlstore.DB
	signer *keys.Signer
	clock  *fakeClock
	reg    *prometheus.Registry
	n      *Notifier
}

func newFixture(t *testing.T, cfg Config, edit func(*Options)) *fixture {
	t.Helper()
	signer, err := keys.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: openStore(t), signer: signer, clock: &fakeClock{t: t0}, reg: prometheus.NewRegistry()}
	o := Options{
		Config: cfg, Issuer: issuer, Node: "node-a", Signer: signer, Clients: f.st, Outbox: f.st,
		Providers:  []string{"passkey", "bankid", "buypass"},
		StatusURL:  func(c string) string { return issuer + "/status/api/components/" + c },
		Registerer: f.reg, Now: f.clock.Now,
	}
	if edit != nil {
		edit(&o)
	}
	f.n, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// set is a status SET as Notify queues it, with jti id for client aud.
func (f *fixture) set(t *testing.T, id, aud string) []byte {
	t.Helper()
	s, err := f.signer.SignTyped(Claims{Issuer: issuer, IssuedAt: t0.Unix(), ID: id, Audience: aud, Txn: "txn",
		Events: map[string]ComponentState{ComponentStateEvent: {Component: "bankid", State: StateDown, PreviousState: StateOperational, Node: "node-a"}}}, Typ)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(s)
}

func (f *fixture) addClient(t *testing.T, c *store.Client) {
	t.Helper()
	if c.AuthMethod == "" {
		c.AuthMethod, c.RedirectURIs, c.Name = store.AuthNone, []string{"https://" + c.ID + ".example/cb"}, c.ID
	}
	if err := f.st.AddClient(context.Background(), c, nil); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) notify(t *testing.T, ev Event) int {
	t.Helper()
	n, err := f.n.Notify(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *fixture) deliver(t *testing.T) int {
	t.Helper()
	n, err := f.n.DeliverDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *fixture) deliveries(t *testing.T, client string) []*store.WebhookDelivery {
	t.Helper()
	ds, err := f.st.ListWebhookDeliveries(context.Background(), client, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func (f *fixture) only(t *testing.T, client string) *store.WebhookDelivery {
	t.Helper()
	ds := f.deliveries(t, client)
	if len(ds) != 1 {
		t.Fatalf("%s has %d deliveries, want 1", client, len(ds))
	}
	return ds[0]
}

var bankidDown = Event{Component: "bankid", From: "up", To: "down", Reason: "probe timeout", Since: t0.Add(-12 * time.Second)}

// TestDeliversSignedSET: one change becomes one SET per interested
// client, which a receiver verifies with the node's public key alone.
func TestDeliversSignedSET(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	rc := newReceiver(t, f.signer.PublicJWK(), nil)
	f.addClient(t, &store.Client{ID: "bank", Providers: []string{"bankid", "passkey"}, StatusWebhook: rc.url()})
	if got := f.notify(t, bankidDown); got != 1 {
		t.Fatalf("Notify wrote %d deliveries, want 1", got)
	}
	d := f.only(t, "bank")
	if d.Event != EventName || d.ContentType != ContentType || d.URL != rc.url() || !d.NextAttemptAt.Equal(t0) || d.Attempts != 0 {
		t.Errorf("queued delivery: %+v", d)
	}
	if got := f.deliver(t); got != 1 {
		t.Fatalf("DeliverDue claimed %d, want 1", got)
	}
	hits := rc.got()
	if len(hits) != 1 {
		t.Fatalf("receiver got %d POSTs, want 1", len(hits))
	}
	h := hits[0]
	if h.contentType != "application/secevent+jwt" || h.accept != "application/json" {
		t.Errorf("headers: Content-Type %q Accept %q", h.contentType, h.accept)
	}
	c := h.claims
	if c.Issuer != issuer || !slices.Equal([]string(c.Audience), []string{"bank"}) || c.IssuedAt == nil || !c.IssuedAt.Time().Equal(t0) {
		t.Errorf("claims: iss %q aud %q iat %v", c.Issuer, c.Audience, c.IssuedAt)
	}
	if len(c.ID) != 22 || c.ID != d.ID || c.Txn == "" || c.Expiry != nil || c.Subject != "" {
		t.Errorf("claims: jti %q (delivery %q) txn %q exp %v sub %q", c.ID, d.ID, c.Txn, c.Expiry, c.Subject)
	}
	want := map[string]any{
		"component": "bankid", "state": "down", "previous_state": "operational", "reason": "probe timeout",
		"since": float64(t0.Add(-12 * time.Second).Unix()), "node": "node-a",
		"status_url": "https://id.example.no/status/api/components/bankid",
	}
	if len(c.Events) != 1 || fmt.Sprint(c.Events[ComponentStateEvent]) != fmt.Sprint(want) {
		t.Errorf("events = %v\nwant %s: %v", c.Events, ComponentStateEvent, want)
	}
	d = f.only(t, "bank")
	if !d.DeliveredAt.Equal(t0) || d.Attempts != 1 || d.LastError != "" || !d.AbandonedAt.IsZero() {
		t.Errorf("after delivery: %+v", d)
	}
	if got := f.deliver(t); got != 0 {
		t.Errorf("a delivered SET was claimed again (%d)", got)
	}
	if v := metric(t, f.reg, "varde_webhook_deliveries_total", "delivered"); v != 1 {
		t.Errorf("delivered metric = %v", v)
	}
	if v := metric(t, f.reg, "varde_webhook_enqueued_total", ""); v != 1 {
		t.Errorf("enqueued metric = %v", v)
	}
	if v := metric(t, f.reg, "varde_webhook_deliveries_total", "retry"); v != 0 {
		t.Errorf("retry metric = %v", v)
	}
}

// TestRetryBackoff: 503 twice, then 202: delivered on the third round,
// 5 s and 15 s after the failures (no jitter), resending the same SET
// signed again.
func TestRetryBackoff(t *testing.T) {
	f := newFixture(t, Config{Jitter: -1}, nil)
	rc := newReceiver(t, f.signer.PublicJWK(), statuses(503, 503))
	f.addClient(t, &store.Client{ID: "bank", StatusWebhook: rc.url()})
	f.notify(t, bankidDown)

	steps := []struct {
		at       time.Time
		claimed  int
		attempts int
		next     time.Time
		lastErr  string
	}{
		{t0, 1, 1, t0.Add(5 * time.Second), "status 503"},
		{t0.Add(4 * time.Second), 0, 1, t0.Add(5 * time.Second), "status 503"},
		{t0.Add(5 * time.Second), 1, 2, t0.Add(20 * time.Second), "status 503"},
		{t0.Add(19*time.Second + 999*time.Millisecond), 0, 2, t0.Add(20 * time.Second), "status 503"},
		{t0.Add(20 * time.Second), 1, 3, t0.Add(20 * time.Second), ""},
	}
	for i, s := range steps {
		f.clock.Set(s.at)
		if got := f.deliver(t); got != s.claimed {
			t.Fatalf("step %d: claimed %d, want %d", i, got, s.claimed)
		}
		d := f.only(t, "bank")
		if d.Attempts != s.attempts || !d.NextAttemptAt.Equal(s.next) || d.LastError != s.lastErr || !d.AbandonedAt.IsZero() {
			t.Fatalf("step %d: attempts %d next %v err %q, want %d %v %q", i, d.Attempts, d.NextAttemptAt, d.LastError, s.attempts, s.next, s.lastErr)
		}
	}
	d := f.only(t, "bank")
	if !d.DeliveredAt.Equal(t0.Add(20 * time.Second)) {
		t.Errorf("delivered at %v", d.DeliveredAt)
	}
	// Each attempt is signed afresh: the same jti, txn and events, iat
	// the time of the attempt, so a receiver that checks freshness takes
	// a retry as readily as the first POST.
	hits := rc.got()
	if len(hits) != 3 {
		t.Fatalf("receiver got %d POSTs, want 3", len(hits))
	}
	for i, at := range []time.Time{t0, t0.Add(5 * time.Second), t0.Add(20 * time.Second)} {
		c := hits[i].claims
		if c.ID != d.ID || c.Txn != hits[0].claims.Txn || fmt.Sprint(c.Events) != fmt.Sprint(hits[0].claims.Events) {
			t.Errorf("POST %d: jti %q txn %q events %v; want the first POST's jti %q, txn and events", i, c.ID, c.Txn, c.Events, d.ID)
		}
		if c.IssuedAt == nil || !c.IssuedAt.Time().Equal(at) {
			t.Errorf("POST %d: iat %v, want %v", i, c.IssuedAt, at)
		}
	}
	if v := metric(t, f.reg, "varde_webhook_deliveries_total", "retry"); v != 2 {
		t.Errorf("retry metric = %v", v)
	}
}

// TestRetryAfter: a 429 or 503 whose Retry-After asks for longer than
// the schedule's next delay is tried again no sooner than it asks
// (RFC 9110 §10.2.3: delay-seconds or an HTTP-date), and no later than
// MaxDelay; one asking for less, or for nothing readable, or sent with
// another status, leaves the schedule as it is.
func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter string
		next       time.Duration
		lastErr    string
	}{
		{"503 seconds", 503, "120", 2 * time.Minute, "status 503 (retry after 2m0s)"},
		{"429 date", 429, t0.Add(10 * time.Minute).UTC().Format(http.TimeFormat), 10 * time.Minute, "status 429 (retry after 10m0s)"},
		{"shorter than the schedule", 503, "1", 5 * time.Second, "status 503 (retry after 1s)"},
		{"beyond MaxDelay", 503, "86400", 30 * time.Minute, "status 503 (retry after 30m0s)"},
		{"more digits than a duration holds", 429, "99999999999999999999999", 30 * time.Minute, "status 429 (retry after 30m0s)"},
		{"date past", 503, t0.Add(-time.Minute).UTC().Format(http.TimeFormat), 5 * time.Second, "status 503"},
		{"neither", 503, "soon", 5 * time.Second, "status 503"},
		{"negative", 503, "-60", 5 * time.Second, "status 503"},
		{"other status", 500, "120", 5 * time.Second, "status 500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Config{Jitter: -1}, nil)
			rc := newReceiver(t, f.signer.PublicJWK(), func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", tc.retryAfter)
				w.WriteHeader(tc.status)
			})
			f.addClient(t, &store.Client{ID: "bank", StatusWebhook: rc.url()})
			f.notify(t, bankidDown)
			f.deliver(t)
			d := f.only(t, "bank")
			if d.Attempts != 1 || !d.NextAttemptAt.Equal(t0.Add(tc.next)) || d.LastError != tc.lastErr {
				t.Errorf("attempts %d, next in %v, error %q; want 1, %v, %q", d.Attempts, d.NextAttemptAt.Sub(t0), d.LastError, tc.next, tc.lastErr)
			}
		})
	}
}

// TestBackoffSchedule: the documented schedule.
func TestBackoffSchedule(t *testing.T) {
	cfg := Config{}.WithDefaults()
	for _, tc := range []struct {
		failed int
		want   time.Duration
	}{
		{1, 5 * time.Second},
		{2, 15 * time.Second},
		{3, 45 * time.Second},
		{4, 2*time.Minute + 15*time.Second},
		{5, 6*time.Minute + 45*time.Second},
		{6, 20*time.Minute + 15*time.Second},
		{7, 30 * time.Minute},
		{12, 30 * time.Minute},
		{1000, 30 * time.Minute},
	} {
		if got := cfg.Backoff(tc.failed); got != tc.want {
			t.Errorf("Backoff(%d) = %v, want %v", tc.failed, got, tc.want)
		}
	}
}

// TestJitter: with the default jitter a retry comes up to 20 % early,
// never late.
func TestJitter(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	rc := newReceiver(t, f.signer.PublicJWK(), statuses(500, 500, 500, 500, 500, 500, 500, 500))
	var nexts []time.Time
	for i := range 8 {
		f.addClient(t, &store.Client{ID: fmt.Sprintf("rp%d", i), StatusWebhook: rc.url()})
	}
	f.notify(t, bankidDown)
	for f.deliver(t) > 0 {
	}
	for i := range 8 {
		d := f.only(t, fmt.Sprintf("rp%d", i))
		if d.Attempts != 1 || d.NextAttemptAt.Before(t0.Add(4*time.Second)) || d.NextAttemptAt.After(t0.Add(5*time.Second)) {
			t.Errorf("rp%d: attempts %d next %v, want in [+4s, +5s]", i, d.Attempts, d.NextAttemptAt.Sub(t0))
		}
		nexts = append(nexts, d.NextAttemptAt)
	}
	slices.SortFunc(nexts, time.Time.Compare)
	if nexts[0].Equal(nexts[len(nexts)-1]) {
		t.Error("eight retries at the same moment: no jitter")
	}
}

// TestBadRequestAbandons: a 400 with the RFC 8935 error is final.
func TestBadRequestAbandons(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	rc := newReceiver(t, f.signer.PublicJWK(), func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"err":"invalid_audience","description":"not for us\u0007"}`)
	})
	f.addClient(t, &store.Client{ID: "bank", StatusWebhook: rc.url()})
	f.notify(t, bankidDown)
	f.deliver(t)
	d := f.only(t, "bank")
	if d.Attempts != 1 || !d.AbandonedAt.Equal(t0) || !d.DeliveredAt.IsZero() || d.LastError != "status 400 invalid_audience: not for us" {
		t.Errorf("after 400: %+v", d)
	}
	f.clock.Set(t0.Add(24 * time.Hour))
	if got := f.deliver(t); got != 0 || len(rc.got()) != 1 {
		t.Errorf("an abandoned SET was sent again")
	}
	if v := metric(t, f.reg, "varde_webhook_deliveries_total", "abandoned"); v != 1 {
		t.Errorf("abandoned metric = %v", v)
	}
}

// TestRetryRefused: for an event registered with RetryRefused, a 400
// is a failed attempt retried on the schedule, its error kept, and
// abandoned only after MaxAttempts; a status SET's 400 stays final
// (TestBadRequestAbandons).
func TestRetryRefused(t *testing.T) {
	f := newFixture(t, Config{Jitter: -1, MaxAttempts: 3}, nil)
	rp := newBodyRecorder(t, http.StatusBadRequest)
	f.addClient(t, &store.Client{ID: "bank", BackchannelLogoutURI: rp.URL})
	f.n.SendTo("logout", logoutURI)
	f.n.RetryRefused("logout")
	err := f.st.EnqueueWebhooks(context.Background(), []*store.WebhookDelivery{
		{ID: "d1", ClientID: "bank", URL: rp.URL, Event: "logout", Payload: []byte("token"), CreatedAt: t0, NextAttemptAt: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.deliver(t)
	if d := f.only(t, "bank"); d.Attempts != 1 || !d.AbandonedAt.IsZero() || !d.NextAttemptAt.Equal(t0.Add(5*time.Second)) || d.LastError != "status 400" {
		t.Errorf("after a 400: attempts %d, abandoned %v, next %v, error %q", d.Attempts, d.AbandonedAt, d.NextAttemptAt, d.LastError)
	}
	f.clock.Set(t0.Add(time.Hour))
	f.deliver(t)
	f.clock.Set(t0.Add(2 * time.Hour))
	f.deliver(t)
	if d := f.only(t, "bank"); d.Attempts != 3 || d.AbandonedAt.IsZero() || len(rp.got()) != 3 {
		t.Errorf("after MaxAttempts 400s: attempts %d, abandoned %v, POSTs %d", d.Attempts, d.AbandonedAt, len(rp.got()))
	}
}

// TestTimeoutRetried: a receiver slower than AttemptTimeout is retried.
func TestTimeoutRetried(t *testing.T) {
	f := newFixture(t, Config{AttemptTimeout: 100 * time.Millisecond, Lease: time.Second, Jitter: -1}, nil)
	rc := newReceiver(t, f.signer.PublicJWK(), func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	f.addClient(t, &store.Client{ID: "bank", StatusWebhook: rc.url()})
	f.notify(t, bankidDown)
	f.deliver(t)
	d := f.only(t, "bank")
	if d.Attempts != 1 || !strings.Contains(d.LastError, "timeout") || !d.NextAttemptAt.Equal(t0.Add(5*time.Second)) || !d.AbandonedAt.IsZero() {
		t.Fatalf("after a timeout: %+v", d)
	}
	f.clock.Set(t0.Add(5 * time.Second))
	f.deliver(t)
	if d := f.only(t, "bank"); d.Attempts != 2 || d.DeliveredAt.IsZero() {
		t.Errorf("after the retry: %+v", d)
	}
}

// TestGivesUp: after MaxAttempts failures the delivery is abandoned.
func TestGivesUp(t *testing.T) {
	f := newFixture(t, Config{MaxAttempts: 4, Jitter: -1}, nil)
	rc := newReceiver(t, f.signer.PublicJWK(), func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	f.addClient(t, &store.Client{ID: "bank", StatusWebhook: rc.url()})
	f.notify(t, bankidDown)
	at := t0
	for range 10 {
		f.clock.Set(at)
		f.deliver(t)
		d := f.only(t, "bank")
		if !d.AbandonedAt.IsZero() {
			break
		}
		at = d.NextAttemptAt
	}
	d := f.only(t, "bank")
	// 5 s, 15 s, 45 s after the first three failures.
	if want := t0.Add(65 * time.Second); d.Attempts != 4 || !d.AbandonedAt.Equal(want) || d.LastError != "status 500" {
		t.Errorf("attempts %d abandoned %v err %q, want 4 at %v", d.Attempts, d.AbandonedAt, d.LastError, want)
	}
	if len(rc.got()) != 4 {
		t.Errorf("receiver got %d POSTs, want 4", len(rc.got()))
	}
}

// TestRedirectNotFollowed: a 3xx is a failure, and its target is never
// contacted.
func TestRedirectNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		elsewhere.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer target.Close()
	f := newFixture(t, Config{}, func(o *Options) {
		// The node's client may follow redirects; the notifier's copy
		// must not.
		o.HTTPClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
	})
	rc := newReceiver(t, f.signer.PublicJWK(), func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/events", http.StatusTemporaryRedirect)
	})
	f.addClient(t, &store.Client{ID: "bank", StatusWebhook: rc.url()})
	f.notify(t, bankidDown)
	f.deliver(t)
	d := f.only(t, "bank")
	if d.Attempts != 1 || !d.DeliveredAt.IsZero() || !d.AbandonedAt.IsZero() || !strings.Contains(d.LastError, "status 307") {
		t.Errorf("after a redirect: %+v", d)
	}
	if elsewhere.Load() != 0 {
		t.Error("the redirect was followed")
	}
}

// TestInterest: who hears about what.
func TestInterest(t *testing.T) {
	const hook = "https://rp.example/events"
	clients := []*store.Client{
		{ID: "all", StatusWebhook: hook},
		{ID: "bankid-only", Providers: []string{"bankid"}, StatusWebhook: hook},
		{ID: "named", Providers: []string{"bankid"}, StatusComponents: []string{"passkey"}, StatusWebhook: hook},
		{ID: "no-webhook", Providers: []string{"bankid"}},
	}
	for _, tc := range []struct {
		component string
		want      []string
	}{
		{"bankid", []string{"all", "bankid-only"}},
		{"passkey", []string{"all", "named"}},
		{"store", []string{"all", "bankid-only"}},
		{"buypass", []string{"all"}},
		// Not a provider of this node: only named subscriptions reach it.
		{"node-b", nil},
	} {
		t.Run(tc.component, func(t *testing.T) {
			f := newFixture(t, Config{}, nil)
			for _, c := range clients {
				f.addClient(t, c)
			}
			f.notify(t, Event{Component: tc.component, From: "up", To: "degraded"})
			var got []string
			for _, c := range clients {
				if len(f.deliveries(t, c.ID)) > 0 {
					got = append(got, c.ID)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("notified %q, want %q", got, tc.want)
			}
		})
	}
}

// TestNoProvidersListMeansEveryComponent: without Options.Providers a
// client that accepts every provider hears about every component.
func TestNoProvidersListMeansEveryComponent(t *testing.T) {
	f := newFixture(t, Config{}, func(o *Options) { o.Providers = nil })
	f.addClient(t, &store.Client{ID: "all", StatusWebhook: "https://rp.example/events"})
	if got := f.notify(t, Event{Component: "anything", From: "up", To: "down"}); got != 1 {
		t.Errorf("Notify wrote %d, want 1", got)
	}
}

// TestNewsworthy: which changes are sent.
func TestNewsworthy(t *testing.T) {
	for _, tc := range []struct {
		from, to       string
		pubFrom, pubTo string
		ok             bool
	}{
		{"unknown", "up", "unknown", "operational", false},
		{"up", "up", "operational", "operational", false},
		{"up", "operational", "operational", "operational", false},
		{"unknown", "degraded", "unknown", "degraded", true},
		{"unknown", "down", "unknown", "down", true},
		{"up", "degraded", "operational", "degraded", true},
		{"degraded", "down", "degraded", "down", true},
		{"down", "up", "down", "operational", true},
		{"down", "unknown", "down", "unknown", true},
		// Maintenance is announced on the status API, never in a SET.
		{"up", "maintenance", "operational", "", false},
		{"maintenance", "up", "", "operational", false},
		{"up", "sideways", "operational", "", false},
		{"", "down", "", "down", false},
	} {
		f, to, ok := Newsworthy(tc.from, tc.to)
		if f != tc.pubFrom || to != tc.pubTo || ok != tc.ok {
			t.Errorf("Newsworthy(%q, %q) = %q, %q, %t; want %q, %q, %t", tc.from, tc.to, f, to, ok, tc.pubFrom, tc.pubTo, tc.ok)
		}
	}
}

// TestStartupNotSent: a node starting (unknown → up) notifies no one.
func TestStartupNotSent(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	f.addClient(t, &store.Client{ID: "bank", StatusWebhook: "https://bank.example/events"})
	for _, c := range []string{"store", "passkey", "bankid"} {
		if got := f.notify(t, Event{Component: c, From: "unknown", To: "up"}); got != 0 {
			t.Errorf("%s unknown → up wrote %d deliveries", c, got)
		}
	}
	if ds := f.deliveries(t, "bank"); len(ds) != 0 {
		t.Errorf("deliveries after start-up: %d", len(ds))
	}
}

// TestURLCheckedBeforeSending: a URL that breaks the rule is never
// contacted, whether it reaches the client list or the outbox.
func TestURLCheckedBeforeSending(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	f.addClient(t, &store.Client{ID: "plain", StatusWebhook: "http://192.0.2.1/events"})
	if got := f.notify(t, bankidDown); got != 0 {
		t.Errorf("Notify queued %d deliveries to a plain-http URL", got)
	}
	err := f.st.EnqueueWebhooks(context.Background(), []*store.WebhookDelivery{{
		ID: "x1", ClientID: "plain", URL: "http://192.0.2.1/events", Event: EventName, Payload: []byte("x"),
		ContentType: ContentType, CreatedAt: t0, NextAttemptAt: t0,
	}})
	if err != nil {
		t.Fatal(err)
	}
	f.deliver(t)
	d := f.only(t, "plain")
	if d.Attempts != 1 || d.AbandonedAt.IsZero() || !strings.HasPrefix(d.LastError, "refused: ") {
		t.Errorf("after a refused URL: %+v", d)
	}
}

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://bank.example/events", true},
		{"https://bank.example:8443/events?x=1", true},
		{"http://localhost:9000/events", true},
		{"http://LOCALHOST/events", true},
		{"http://127.0.0.1:9000/events", true},
		{"http://127.8.9.10/events", true},
		{"http://[::1]:9000/events", true},
		{"http://bank.example/events", false},
		{"http://10.0.0.1/events", false},
		{"http://localhost.bank.example/events", false},
		{"http://[::ffff:192.0.2.1]/events", false},
		{"ftp://bank.example/events", false},
		{"https://u:p@bank.example/events", false},
		{"https://bank.example/events#f", false},
		{"//bank.example/events", false},
		{"https:///events", false},
		{"", false},
	} {
		if err := CheckURL(tc.url); (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q) = %v, want ok %t", tc.url, err, tc.ok)
		}
	}
}

// TestTwoNodesNeverDoubleDeliver: two nodes working one outbox at once
// send each SET exactly once.
func TestTwoNodesNeverDoubleDeliver(t *testing.T) {
	st := openStore(t)
	signer, err := keys.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t, signer.PublicJWK(), func(_ int, w http.ResponseWriter, _ *http.Request) {
		time.Sleep(2 * time.Millisecond)
		w.WriteHeader(http.StatusAccepted)
	})
	const nClients, nEvents = 6, 5
	for i := range nClients {
		c := &store.Client{ID: fmt.Sprintf("rp%d", i), Name: "rp", AuthMethod: store.AuthNone,
			RedirectURIs: []string{"https://rp.example/cb"}, StatusWebhook: rc.url()}
		if err := st.AddClient(context.Background(), c, nil); err != nil {
			t.Fatal(err)
		}
	}
	var nodes []*Notifier
	for _, name := range []string{"node-a", "node-b"} {
		n, err := New(Options{Config: Config{Concurrency: 3}, Issuer: issuer, Node: name, Signer: signer, Clients: st, Outbox: st})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	for i := range nEvents {
		if _, err := nodes[i%2].Notify(context.Background(), Event{Component: "store", From: "up", To: "down", Reason: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := n.DeliverDue(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				if got == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for _, h := range rc.got() {
		seen[h.claims.ID]++
	}
	if len(seen) != nClients*nEvents {
		t.Errorf("receiver saw %d distinct SETs, want %d", len(seen), nClients*nEvents)
	}
	for jti, k := range seen {
		if k != 1 {
			t.Errorf("SET %s delivered %d times", jti, k)
		}
	}
	for i := range nClients {
		ds, err := st.ListWebhookDeliveries(context.Background(), fmt.Sprintf("rp%d", i), 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.DeliveredAt.IsZero() || d.Attempts != 1 {
				t.Errorf("delivery %s: %+v", d.ID, d)
			}
		}
	}
}

// TestShutdownReleasesUncounted: a POST cut short by shutdown is not
// counted against the receiver, and the delivery is free again at once.
func TestShutdownReleasesUncounted(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	arrived := make(chan struct{}, 1)
	rc := newReceiver(t, f.signer.PublicJWK(), func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			arrived <- struct{}{}
			<-r.Context().Done()
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	f.addClient(t, &store.Client{ID: "bank", StatusWebhook: rc.url()})
	f.notify(t, bankidDown)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-arrived; cancel() }()
	if _, err := f.n.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	if d := f.only(t, "bank"); d.Attempts != 0 || !d.NextAttemptAt.Equal(t0) {
		t.Fatalf("after shutdown: %+v", d)
	}
	if got := f.deliver(t); got != 1 {
		t.Fatalf("released delivery not claimable (%d)", got)
	}
	if d := f.only(t, "bank"); d.DeliveredAt.IsZero() || d.Attempts != 1 {
		t.Errorf("after the next round: %+v", d)
	}
}

// TestShutdownWritesHeldChanges: a state change handed over just before
// the node stops is written to the outbox before Run returns, not lost
// with the node's memory; the next node to run delivers it.
func TestShutdownWritesHeldChanges(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	f.addClient(t, &store.Client{ID: "bank", StatusWebhook: "https://bank.example/events"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	const changes = 8
	for i := range changes {
		from, to := health.Up, health.Down
		if i%2 == 1 {
			from, to = to, from
		}
		f.n.OnTransition(health.Transition{Component: "bankid", From: from, To: to})
		if err := f.n.Run(ctx); err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
	if ds := f.deliveries(t, "bank"); len(ds) != changes {
		t.Errorf("%d changes in the outbox after the node stopped, want %d", len(ds), changes)
	}
}

// TestOutboxOutageLoggedOnce: while the outbox cannot be reached, Run
// says so once, when it begins, not every round.
func TestOutboxOutageLoggedOnce(t *testing.T) {
	var logged bytes.Buffer
	f := newFixture(t, Config{PollInterval: 10 * time.Millisecond}, func(o *Options) {
		o.Log = slog.New(slog.NewTextHandler(&logged, nil))
	})
	f.st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := f.n.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := strings.Count(logged.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings in %v of outage, want 1:\n%s", n, 300*time.Millisecond, logged.String())
	}
}

// failingClients is the store's client list, failing while down is set,
// as a store that cannot be reached does.
type failingClients struct {
	Clients
	down atomic.Bool
}

func (c *failingClients) ListClients(ctx context.Context) ([]*store.Client, error) {
	if c.down.Load() {
		return nil, errors.New("store unreachable")
	}
	return c.Clients.ListClients(ctx)
}

// TestRunFromTransitions: transitions handed to OnTransition reach the
// receiver through Run, in order, even when the store was unreachable at
// the time of the change.
func TestRunFromTransitions(t *testing.T) {
	fc := &failingClients{}
	f := newFixture(t, Config{PollInterval: 10 * time.Millisecond}, func(o *Options) {
		fc.Clients = o.Clients
		o.Clients = fc
		o.Now = time.Now
	})
	rc := newReceiver(t, f.signer.PublicJWK(), nil)
	f.addClient(t, &store.Client{ID: "bank", StatusWebhook: rc.url()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.n.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	fc.down.Store(true)
	f.n.OnTransition(health.Transition{Component: "store", From: health.Up, To: health.Down, Reason: "ping failed", At: t0, Since: t0})
	f.n.OnTransition(health.Transition{Component: "bankid", From: health.Unknown, To: health.Up})
	f.n.OnTransition(health.Transition{Component: "store", From: health.Down, To: health.Up, Reason: "ping ok", At: t0, Since: t0})
	time.Sleep(50 * time.Millisecond)
	if n := len(rc.got()); n != 0 {
		t.Fatalf("receiver got %d POSTs while the store was unreachable", n)
	}
	fc.down.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for len(rc.got()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	hits := rc.got()
	if len(hits) != 2 {
		t.Fatalf("receiver got %d POSTs, want 2", len(hits))
	}
	var states []string
	for _, h := range hits {
		ev := h.claims.Events[ComponentStateEvent]
		states = append(states, fmt.Sprint(ev["component"], ":", ev["previous_state"], "→", ev["state"]))
	}
	// Both were written to the outbox in the same round and are due at
	// the same moment, so they may be sent in either order (receivers
	// order by iat); the unknown → up start-up change is not among them.
	slices.Sort(states)
	if want := []string{"store:down→operational", "store:operational→down"}; !slices.Equal(states, want) {
		t.Errorf("notified %q, want %q", states, want)
	}
}

// TestQueueFull: Submit never blocks, and a full queue keeps the latest
// change: waiting for Run, bankid goes down, degraded and back up in a
// queue of two, and relying parties hear of degraded and of the
// recovery, the first change merged into the second.
func TestQueueFull(t *testing.T) {
	f := newFixture(t, Config{QueueSize: 2, PollInterval: 10 * time.Millisecond}, func(o *Options) { o.Now = time.Now })
	rc := newReceiver(t, f.signer.PublicJWK(), nil)
	f.addClient(t, &store.Client{ID: "bank", StatusWebhook: rc.url()})
	f.n.Submit(Event{Component: "bankid", From: "up", To: "down"})
	f.n.Submit(Event{Component: "bankid", From: "down", To: "degraded"})
	f.n.Submit(Event{Component: "bankid", From: "degraded", To: "up", Reason: "recovered"})
	if v := metric(t, f.reg, "varde_webhook_events_dropped_total", ""); v != 1 {
		t.Errorf("dropped metric = %v", v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.n.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(rc.got()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	var states []string
	for _, h := range rc.got() {
		ev := h.claims.Events[ComponentStateEvent]
		states = append(states, fmt.Sprint(ev["previous_state"], "→", ev["state"]))
	}
	slices.Sort(states)
	if want := []string{"degraded→operational", "operational→degraded"}; !slices.Equal(states, want) {
		t.Errorf("notified %q, want %q", states, want)
	}
}

// TestMakeRoom: a full queue merges a component's oldest change into its
// next; only when every component has one change waiting is the oldest
// dropped.
func TestMakeRoom(t *testing.T) {
	ev := func(c, from, to string) Event { return Event{Component: c, From: from, To: to} }
	for _, tc := range []struct {
		name string
		in   []Event
		want []Event
		gone Event
	}{
		{
			"merged into the next change of its component",
			[]Event{ev("store", "up", "down"), ev("bankid", "up", "down"), ev("store", "down", "degraded"), ev("store", "degraded", "up")},
			[]Event{ev("bankid", "up", "down"), ev("store", "up", "degraded"), ev("store", "degraded", "up")},
			ev("store", "up", "down"),
		},
		{
			"a component's one change kept over another's older",
			[]Event{ev("store", "up", "down"), ev("bankid", "up", "down"), ev("bankid", "down", "up")},
			[]Event{ev("store", "up", "down"), ev("bankid", "up", "up")},
			ev("bankid", "up", "down"),
		},
		{
			"one change per component: the oldest dropped",
			[]Event{ev("store", "up", "down"), ev("bankid", "up", "down"), ev("buypass", "up", "down")},
			[]Event{ev("bankid", "up", "down"), ev("buypass", "up", "down")},
			ev("store", "up", "down"),
		},
	} {
		got, gone := makeRoom(slices.Clone(tc.in))
		if !slices.Equal(got, tc.want) || gone != tc.gone {
			t.Errorf("%s: makeRoom = %v, %v; want %v, %v", tc.name, got, gone, tc.want, tc.gone)
		}
	}
}

func TestConfig(t *testing.T) {
	d := Config{}.WithDefaults()
	if d != DefaultConfig() {
		t.Errorf("zero config with defaults = %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	if c := (Config{Jitter: -1}).WithDefaults(); c.Jitter != 0 {
		t.Errorf("negative jitter became %v", c.Jitter)
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		msg    string
	}{
		{"short lease", func(c *Config) { c.Lease = 9 * time.Second }, "lease"},
		{"jitter 1", func(c *Config) { c.Jitter = 1 }, "jitter"},
		{"factor under 1", func(c *Config) { c.Factor = 0.5 }, "factor"},
		{"max under first", func(c *Config) { c.MaxDelay = time.Second }, "max delay"},
		{"concurrency", func(c *Config) { c.Concurrency = 1000 }, "concurrency"},
		{"per endpoint", func(c *Config) { c.PerEndpoint = 5 }, "per endpoint 5"},
	} {
		c := DefaultConfig()
		tc.change(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.msg)
		}
	}
	if _, err := New(Options{Issuer: "id.example", Signer: nil}); err == nil ||
		!strings.Contains(err.Error(), "issuer") || !strings.Contains(err.Error(), "node") || !strings.Contains(err.Error(), "outbox") {
		t.Errorf("New with nothing: %v", err)
	}
}

func TestParseSETError(t *testing.T) {
	for _, tc := range []struct {
		body string
		want string
	}{
		{`{"err":"invalid_key","description":"kid unknown"}`, "invalid_key: kid unknown"},
		{`{"err":"access_denied"}`, "access_denied"},
		{`{"err":"x\u001b[31m","description":"a\nb"}`, "x[31m: ab"},
		{`{"err":"` + strings.Repeat("e", 100) + `"}`, strings.Repeat("e", 64) + "…"},
		// Back-Channel Logout 1.0 §2.8: a relying party refuses a logout
		// token with an OAuth error.
		{`{"error":"invalid_request","error_description":"sid unknown"}`, "invalid_request: sid unknown"},
		{`{"error":"invalid_request\u0007"}`, "invalid_request"},
		{`{"err":"invalid_key","error":"invalid_request"}`, "invalid_key"},
		{`not json`, ""},
		{``, ""},
		{`{"err":1}`, ""},
		{`{"err":"a"` + strings.Repeat(" ", maxErrorBody) + `}`, ""},
	} {
		if got := ParseSETError([]byte(tc.body)).String(); got != tc.want {
			t.Errorf("ParseSETError(%.40q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// FuzzParseSETError: a receiver's error body never panics the parser and
// never yields control characters or long strings.
func FuzzParseSETError(f *testing.F) {
	f.Add([]byte(`{"err":"invalid_request","description":"bad"}`))
	f.Add([]byte(`{"err":"\u0000\u202e"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"error":"invalid_request","error_description":"bad"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e := ParseSETError(body)
		for _, s := range []string{e.Err, e.Description} {
			if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				t.Fatalf("control character in %q", s)
			}
			if len([]rune(s)) > 201 {
				t.Fatalf("%d runes", len([]rune(s)))
			}
		}
	})
}

// metric returns the value of the counter name in reg, of the series
// whose only label has value label ("" for a counter without labels);
// it fails the test if there is no such series.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found, sum := false, 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var values []string
			for _, l := range m.GetLabel() {
				values = append(values, l.GetValue())
			}
			if hasAll(values, labels) {
				found = true
				sum += m.GetCounter().GetValue()
			}
		}
	}
	if !found {
		t.Fatalf("no series %s%q", name, labels)
	}
	return sum
}

// hasAll reports whether every non-empty want is among values.
func hasAll(values, want []string) bool {
	for _, w := range want {
		if w != "" && !slices.Contains(values, w) {
			return false
		}
	}
	return true
}

// bodyRecorder is an endpoint for payloads that are not SETs: it
// answers every POST with one status and keeps the bodies.
type bodyRecorder struct {
	URL string

	mu     sync.Mutex
	bodies []string
}

func newBodyRecorder(t *testing.T, status int) *bodyRecorder {
	b := &bodyRecorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.bodies = append(b.bodies, string(body))
		b.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	b.URL = srv.URL
	return b
}

func (b *bodyRecorder) got() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.bodies)
}

// renewed is what the tests' renewals make of payload at now.
func renewed(payload []byte, now time.Time) []byte {
	return fmt.Appendf(nil, "%s at %d", payload, now.Unix())
}

// logoutURI is where the tests' renewed deliveries go.
func logoutURI(c *store.Client) string { return c.BackchannelLogoutURI }

// errNotToken is what the tests' renewals return for a payload they
// cannot renew.
var errNotToken = errors.New("not a token")

// TestRenewBeforeEachAttempt: a renewal registered for an event makes
// each attempt send what it returns for the stored payload at that
// moment, which stays as queued; one that finds the payload malformed
// abandons the delivery without sending anything. Other events are sent
// as stored.
func TestRenewBeforeEachAttempt(t *testing.T) {
	f := newFixture(t, Config{Jitter: -1}, nil)
	rc := newReceiver(t, f.signer.PublicJWK(), nil)
	got := newBodyRecorder(t, http.StatusServiceUnavailable)
	f.addClient(t, &store.Client{ID: "bank", StatusWebhook: rc.url(), BackchannelLogoutURI: got.URL})
	f.n.SendTo("renewed", logoutURI)
	f.n.RenewWith("renewed", func(payload []byte, now time.Time) ([]byte, error) {
		if string(payload) == "broken" {
			return nil, errNotToken
		}
		return renewed(payload, now), nil
	}, errNotToken)
	ctx := context.Background()
	err := f.st.EnqueueWebhooks(ctx, []*store.WebhookDelivery{
		{ID: "d1", ClientID: "bank", URL: got.URL, Event: "renewed", Payload: []byte("token"), CreatedAt: t0, NextAttemptAt: t0},
		{ID: "d2", ClientID: "bank", URL: got.URL, Event: "renewed", Payload: []byte("broken"), CreatedAt: t0, NextAttemptAt: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.deliver(t)
	f.clock.Set(t0.Add(time.Hour))
	f.deliver(t)
	want := []string{fmt.Sprintf("token at %d", t0.Unix()), fmt.Sprintf("token at %d", t0.Add(time.Hour).Unix())}
	if !slices.Equal(got.got(), want) {
		t.Errorf("sent %q, want %q", got.got(), want)
	}
	for _, d := range f.deliveries(t, "bank") {
		switch d.ID {
		case "d1":
			if string(d.Payload) != "token" || d.Attempts != 2 || !d.AbandonedAt.IsZero() {
				t.Errorf("d1 after two attempts: payload %q, attempts %d, abandoned %v", d.Payload, d.Attempts, d.AbandonedAt)
			}
		case "d2":
			if d.Attempts != 1 || d.AbandonedAt.IsZero() || d.LastError != "renew: not a token" {
				t.Errorf("d2: attempts %d, abandoned %v, error %q", d.Attempts, d.AbandonedAt, d.LastError)
			}
		}
	}
	// A status SET, with no renewal registered, goes as stored.
	f.notify(t, bankidDown)
	f.deliver(t)
	if len(rc.got()) != 1 {
		t.Errorf("the status SET: %d deliveries", len(rc.got()))
	}
}

// TestDeliveriesCountedByEvent: an attempt is counted under its
// delivery's event, so a relying party's logout endpoint that fails is
// not read as a status webhook that fails, nor the other way round.
func TestDeliveriesCountedByEvent(t *testing.T) {
	f := newFixture(t, Config{Jitter: -1}, nil)
	rp := newBodyRecorder(t, http.StatusServiceUnavailable)
	f.addClient(t, &store.Client{ID: "bank", BackchannelLogoutURI: rp.URL})
	f.n.SendTo("logout", logoutURI)
	err := f.st.EnqueueWebhooks(context.Background(), []*store.WebhookDelivery{
		{ID: "d1", ClientID: "bank", URL: rp.URL, Event: "logout", Payload: []byte("token"), CreatedAt: t0, NextAttemptAt: t0},
		{ID: "d2", ClientID: "bank", URL: rp.URL, Event: "unknown", Payload: []byte("token"), CreatedAt: t0, NextAttemptAt: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.deliver(t)
	for _, c := range []struct {
		event, result string
		want          float64
	}{
		{"logout", resultRetry, 1},
		{EventName, resultRetry, 0},
		{otherEvent, resultAbandoned, 1},
		{EventName, resultAbandoned, 0},
	} {
		if v := metric(t, f.reg, "varde_webhook_deliveries_total", c.event, c.result); v != c.want {
			t.Errorf("deliveries{event=%q,result=%q} = %v, want %v", c.event, c.result, v, c.want)
		}
	}
}

// TestLostLeaseNotCounted: an attempt whose lease another node took
// over while it ran is not recorded, so it is not counted either: the
// delivery is sent again, and only that attempt, the one recorded, is
// counted. The counter agrees with the attempts the outbox holds.
func TestLostLeaseNotCounted(t *testing.T) {
	f := newFixture(t, Config{Jitter: -1}, nil)
	var posts atomic.Int32
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if posts.Add(1) > 1 {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		// The node took longer than its lease: another claims the
		// delivery, then stops before it records anything.
		later := t0.Add(time.Minute)
		f.clock.Set(later)
		if got, err := f.st.ClaimWebhooks(context.Background(), "node-b", later, later.Add(time.Minute), 10, 0); err != nil || len(got) != 1 {
			t.Errorf("node-b claims %d, %v; want the delivery", len(got), err)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer rp.Close()
	f.addClient(t, &store.Client{ID: "bank", StatusWebhook: rp.URL})
	err := f.st.EnqueueWebhooks(context.Background(), []*store.WebhookDelivery{
		{ID: "d1", ClientID: "bank", URL: rp.URL, Event: EventName, Payload: f.set(t, "d1", "bank"), CreatedAt: t0, NextAttemptAt: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.n.DeliverDue(context.Background()); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("DeliverDue with the lease lost = %v, want ErrConflict", err)
	}
	f.clock.Set(t0.Add(3 * time.Minute))
	f.deliver(t)
	if d := f.only(t, "bank"); d.Attempts != 1 || d.DeliveredAt.IsZero() {
		t.Errorf("delivery: attempts %d, delivered %v; want 1, delivered", d.Attempts, d.DeliveredAt)
	}
	for _, c := range []struct {
		result string
		want   float64
	}{{resultRetry, 0}, {resultDelivered, 1}} {
		if v := metric(t, f.reg, "varde_webhook_deliveries_total", EventName, c.result); v != c.want {
			t.Errorf("deliveries{result=%q} = %v, want %v", c.result, v, c.want)
		}
	}
}

// TestRenewFailureRetried: a renewal that fails for any reason but a
// malformed payload (a signing key in a hardware module out of reach for
// a moment) is a failed attempt, retried on the schedule, never the end
// of the delivery.
func TestRenewFailureRetried(t *testing.T) {
	f := newFixture(t, Config{Jitter: -1}, nil)
	rp := newBodyRecorder(t, http.StatusOK)
	f.addClient(t, &store.Client{ID: "bank", BackchannelLogoutURI: rp.URL})
	f.n.SendTo("renewed", logoutURI)
	var signerDown atomic.Bool
	signerDown.Store(true)
	f.n.RenewWith("renewed", func(payload []byte, now time.Time) ([]byte, error) {
		if signerDown.Load() {
			return nil, errors.New("sign: pkcs11: CKR_DEVICE_ERROR")
		}
		return renewed(payload, now), nil
	}, errNotToken)
	err := f.st.EnqueueWebhooks(context.Background(), []*store.WebhookDelivery{
		{ID: "d1", ClientID: "bank", URL: rp.URL, Event: "renewed", Payload: []byte("token"), CreatedAt: t0, NextAttemptAt: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.deliver(t)
	d := f.only(t, "bank")
	if d.Attempts != 1 || !d.AbandonedAt.IsZero() || !d.NextAttemptAt.Equal(t0.Add(5*time.Second)) ||
		d.LastError != "renew: sign: pkcs11: CKR_DEVICE_ERROR" || len(rp.got()) != 0 {
		t.Fatalf("after the signer failed: attempts %d, abandoned %v, next %v, error %q, %d POSTs",
			d.Attempts, d.AbandonedAt, d.NextAttemptAt, d.LastError, len(rp.got()))
	}
	if v := metric(t, f.reg, "varde_webhook_deliveries_total", "retry"); v != 1 {
		t.Errorf("retry metric = %v", v)
	}
	signerDown.Store(false)
	f.clock.Set(t0.Add(5 * time.Second))
	f.deliver(t)
	d = f.only(t, "bank")
	if want := fmt.Sprintf("token at %d", t0.Add(5*time.Second).Unix()); d.Attempts != 2 || d.DeliveredAt.IsZero() ||
		!slices.Equal(rp.got(), []string{want}) {
		t.Errorf("after the signer came back: attempts %d, delivered %v, sent %q", d.Attempts, d.DeliveredAt, rp.got())
	}
}

// TestRenewElsewhereIsNotAnAttempt: a renewal this node cannot make but
// another node may (its signing key is not this node's, RenewElsewhere)
// makes no attempt and counts none: the delivery stays due, its lease
// released, and the next node that can renew it delivers it. Counted,
// such renewals would use up the attempts of a delivery no node could
// have failed, and abandon it.
func TestRenewElsewhereIsNotAnAttempt(t *testing.T) {
	var keyless atomic.Bool
	keyless.Store(true)
	f, rp := elsewhereFixture(t, Config{Jitter: -1, MaxAttempts: 1}, keyless.Load)
	for range 3 {
		f.deliver(t)
	}
	d := f.only(t, "bank")
	if d.Attempts != 0 || !d.AbandonedAt.IsZero() || !d.NextAttemptAt.Equal(t0.Add(time.Second)) || len(rp.got()) != 0 {
		t.Fatalf("after renewals left to another node: attempts %d, abandoned %v, next %v, error %q, %d POSTs",
			d.Attempts, d.AbandonedAt, d.NextAttemptAt, d.LastError, len(rp.got()))
	}
	for _, result := range []string{resultRetry, resultAbandoned} {
		if v := metric(t, f.reg, "varde_webhook_deliveries_total", "renewed", result); v != 0 {
			t.Errorf("deliveries{result=%q} = %v, want 0", result, v)
		}
	}
	// A node that holds the key, claiming it at its next poll, delivers
	// it.
	keyless.Store(false)
	f.clock.Set(t0.Add(time.Second))
	f.deliver(t)
	d = f.only(t, "bank")
	if want := fmt.Sprintf("token at %d", t0.Unix()+1); d.Attempts != 1 || d.DeliveredAt.IsZero() || !slices.Equal(rp.got(), []string{want}) {
		t.Errorf("at a node with the key: attempts %d, delivered %v, sent %q", d.Attempts, d.DeliveredAt, rp.got())
	}
}

// TestSlowReceiverHoldsOneSlot: a receiver that never answers holds one
// of Run's slots while the other keeps delivering to everyone else; when
// Run stops, it waits for that attempt, which releases its delivery
// uncounted.
func TestSlowReceiverHoldsOneSlot(t *testing.T) {
	f := newFixture(t, Config{Concurrency: 2, PollInterval: 10 * time.Millisecond}, func(o *Options) { o.Now = time.Now })
	arrived := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read to the end, so the server notices the node hanging up.
		_, _ = io.ReadAll(r.Body)
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-r.Context().Done()
	}))
	defer slow.Close()
	fast := newBodyRecorder(t, http.StatusOK)
	f.addClient(t, &store.Client{ID: "slow", StatusWebhook: slow.URL})
	f.addClient(t, &store.Client{ID: "fast", StatusWebhook: fast.URL})
	now := time.Now()
	// The slow one is due first, so it is in the first claim.
	ds := []*store.WebhookDelivery{{ID: "s0", ClientID: "slow", URL: slow.URL, Event: EventName, Payload: f.set(t, "s0", "slow"),
		CreatedAt: now, NextAttemptAt: now.Add(-time.Minute)}}
	const nFast = 12
	for i := range nFast {
		ds = append(ds, &store.WebhookDelivery{ID: fmt.Sprintf("f%02d", i), ClientID: "fast", URL: fast.URL, Event: EventName,
			Payload: f.set(t, fmt.Sprintf("f%02d", i), "fast"), CreatedAt: now, NextAttemptAt: now.Add(-time.Second)})
	}
	if err := f.st.EnqueueWebhooks(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.n.Run(ctx) }()
	<-arrived
	// Well within the 5 s the slow receiver holds its slot.
	// Wait until each fast delivery is recorded as delivered, not only
	// received: one whose answer is still being read when Run stops is
	// released and sent again, as it should be.
	delivered := func() int {
		n := 0
		for _, d := range f.deliveries(t, "fast") {
			if !d.DeliveredAt.IsZero() {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(3 * time.Second)
	for delivered() < nFast && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := delivered(); n != nFast {
		t.Errorf("while one receiver hangs, the other got %d of %d deliveries", n, nFast)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	// Run returned after the attempt in flight released its delivery.
	if d := f.only(t, "slow"); d.Attempts != 0 || !d.DeliveredAt.IsZero() {
		t.Errorf("the slow delivery after shutdown: %+v", d)
	}
	if got, err := f.st.ClaimWebhooks(context.Background(), "node-b", time.Now(), time.Now().Add(time.Minute), 10, 0); err != nil ||
		len(got) != 1 || got[0].ID != "s0" {
		t.Errorf("after shutdown another node claims %d deliveries (%v), want s0 only", len(got), err)
	}
}

// TestHangingBacklogLeavesSlots: a receiver that does not answer, with
// a backlog queued while it was down and due before anyone else's,
// holds no more than PerEndpoint of Run's slots, and uses them; the
// deliveries of a receiver that answers go through at once, not after
// the hanging ones have each taken AttemptTimeout.
//
// The test waits for what it checks, not for a time: the fast
// deliveries all delivered, then PerEndpoint POSTs hanging at once. The
// second hanging POST is let into its handler only after the fast ones
// are through: on a loaded machine Run's second attempt can reach the
// receiver that late, and a test that stopped Run at the fast
// deliveries then saw one hanging POST.
func TestHangingBacklogLeavesSlots(t *testing.T) {
	f := newFixture(t, Config{PollInterval: 10 * time.Millisecond}, func(o *Options) { o.Now = time.Now })
	var arrived, inFlight, most, ended atomic.Int32
	fastDone := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if arrived.Add(1) == 2 {
			// Cut short before it was let in, it never hung here, as an
			// attempt Run's end stops before it is sent never does.
			select {
			case <-fastDone:
			case <-r.Context().Done():
				return
			}
		}
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-r.Context().Done()
		ended.Add(1)
	}))
	defer slow.Close()
	fast := newBodyRecorder(t, http.StatusOK)
	f.addClient(t, &store.Client{ID: "slow", StatusWebhook: slow.URL})
	f.addClient(t, &store.Client{ID: "fast", StatusWebhook: fast.URL})
	now := time.Now()
	var ds []*store.WebhookDelivery
	for i := range 40 {
		id := fmt.Sprintf("s%02d", i)
		ds = append(ds, &store.WebhookDelivery{ID: id, ClientID: "slow", URL: slow.URL, Event: EventName, Payload: f.set(t, id, "slow"),
			CreatedAt: now, NextAttemptAt: now.Add(-time.Hour + time.Duration(i)*time.Second)})
	}
	const nFast = 6
	for i := range nFast {
		id := fmt.Sprintf("f%02d", i)
		ds = append(ds, &store.WebhookDelivery{ID: id, ClientID: "fast", URL: fast.URL, Event: EventName, Payload: f.set(t, id, "fast"),
			CreatedAt: now, NextAttemptAt: now.Add(-time.Second)})
	}
	if err := f.st.EnqueueWebhooks(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.n.Run(ctx) }()
	delivered := func() bool {
		n := 0
		for _, d := range f.deliveries(t, "fast") {
			if !d.DeliveredAt.IsZero() {
				n++
			}
		}
		return n == nFast
	}
	// Room for a loaded machine: whether the fast deliveries went
	// through before any hanging attempt timed out is read from the
	// receiver, not from how long they took.
	if !waitFor(30*time.Second, delivered) {
		t.Errorf("while a receiver with a backlog hangs, the other's %d deliveries are not all delivered", nFast)
	}
	if n := ended.Load(); n != 0 {
		t.Errorf("the fast deliveries went through only after %d hanging attempts timed out", n)
	}
	close(fastDone)
	if !waitFor(30*time.Second, func() bool { return most.Load() >= 2 }) {
		t.Errorf("at most %d POSTs at once to the hanging receiver, want PerEndpoint (2)", most.Load())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if m := most.Load(); m != 2 {
		t.Errorf("at most %d POSTs at once to the hanging receiver, want PerEndpoint (2)", m)
	}
}

// TestRunBoundsConcurrency: Run never has more than Concurrency POSTs in
// flight, and keeps that many busy while deliveries are due.
func TestRunBoundsConcurrency(t *testing.T) {
	f := newFixture(t, Config{Concurrency: 3, PerEndpoint: 3, PollInterval: 10 * time.Millisecond}, func(o *Options) { o.Now = time.Now })
	var inFlight, most, posts atomic.Int32
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		n := inFlight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		// Held until Concurrency POSTs are in flight at once (or a
		// second passed), so how busy Run keeps the receiver does not
		// hang on how fast this machine signs.
		for held := time.Now().Add(time.Second); most.Load() < 3 && time.Now().Before(held); {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(5 * time.Millisecond)
		inFlight.Add(-1)
		posts.Add(1)
	}))
	defer rp.Close()
	f.addClient(t, &store.Client{ID: "bank", StatusWebhook: rp.URL})
	now := time.Now()
	var ds []*store.WebhookDelivery
	for i := range 15 {
		ds = append(ds, &store.WebhookDelivery{ID: fmt.Sprintf("d%02d", i), ClientID: "bank", URL: rp.URL, Event: EventName,
			Payload: f.set(t, fmt.Sprintf("d%02d", i), "bank"), CreatedAt: now, NextAttemptAt: now.Add(-time.Second)})
	}
	if err := f.st.EnqueueWebhooks(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.n.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for posts.Load() < 15 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if p, m := posts.Load(), most.Load(); p != 15 || m != 3 {
		t.Errorf("%d POSTs, at most %d at once; want 15, 3", p, m)
	}
}

// TestSentWhereTheClientIsNow: each attempt goes to the URL the client
// registers for the delivery's event at that moment, not the one it was
// queued with: a relying party that moved its endpoint gets the SET at
// the new one, and the old one, perhaps someone else's host by now, gets
// nothing. A delivery whose client no longer registers a URL for its
// event, no longer exists, or whose event has no URL is abandoned
// without a POST.
func TestSentWhereTheClientIsNow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client string // the delivery's client; only "bank" exists
		event  string
		// edit changes the bank's registration after the delivery was
		// queued; moved is a URL it did not have then.
		edit func(c *store.Client, moved string)
		// The POSTs to the old and the moved URL, where the delivery
		// says it went, and its LastError ("": delivered).
		toOld, toMoved int
		url, lastError string
	}{
		{"status webhook moved", "bank", EventName, func(c *store.Client, moved string) { c.StatusWebhook = moved },
			0, 1, "moved", ""},
		{"status webhook dropped", "bank", EventName, func(c *store.Client, _ string) { c.StatusWebhook = "" },
			0, 0, "old", URLUnregistered},
		{"only another URL moved", "bank", EventName, func(c *store.Client, moved string) { c.BackchannelLogoutURI = moved },
			1, 0, "old", ""},
		{"moved to plain http", "bank", EventName, func(c *store.Client, _ string) { c.StatusWebhook = "http://192.0.2.1/events" },
			0, 0, "old", `refused: "http://192.0.2.1/events" must use https (http only to localhost or a loopback address)`},
		{"client removed", "gone", EventName, func(*store.Client, string) {},
			0, 0, "old", store.DeliveryClientRemoved},
		{"event with no URL", "bank", "unknown", func(*store.Client, string) {},
			0, 0, "old", `no URL for event "unknown"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Config{}, nil)
			old, moved := newBodyRecorder(t, http.StatusAccepted), newBodyRecorder(t, http.StatusAccepted)
			c := &store.Client{ID: "bank", StatusWebhook: old.URL, BackchannelLogoutURI: old.URL}
			f.addClient(t, c)
			ctx := context.Background()
			err := f.st.EnqueueWebhooks(ctx, []*store.WebhookDelivery{{ID: "d1", ClientID: tc.client, URL: old.URL,
				Event: tc.event, Payload: f.set(t, "d1", tc.client), ContentType: ContentType, CreatedAt: t0, NextAttemptAt: t0}})
			if err != nil {
				t.Fatal(err)
			}
			tc.edit(c, moved.URL)
			if err := f.st.PutClient(ctx, c); err != nil {
				t.Fatal(err)
			}
			f.deliver(t)
			d := f.only(t, tc.client)
			urls := map[string]string{"old": old.URL, "moved": moved.URL}
			if len(old.got()) != tc.toOld || len(moved.got()) != tc.toMoved || d.URL != urls[tc.url] || d.Attempts != 1 ||
				d.LastError != tc.lastError || d.DeliveredAt.IsZero() != (tc.lastError != "") || d.AbandonedAt.IsZero() != (tc.lastError == "") {
				t.Errorf("POSTs to the old URL %d, to the moved one %d; delivery to %s, attempts %d, error %q, delivered %v, abandoned %v;\n"+
					"want %d, %d; to the %s URL, error %q",
					len(old.got()), len(moved.got()), d.URL, d.Attempts, d.LastError, d.DeliveredAt, d.AbandonedAt,
					tc.toOld, tc.toMoved, tc.url, tc.lastError)
			}
		})
	}
}

// TestHungRenewalsBounded: a renewal that hangs (a signer in a hardware
// module that stopped answering) fails its attempt when the attempt's
// time is up, as a retry, never an abandonment, and frees the slot.
// Renewals left hanging hold at most Concurrency goroutines: once they
// do, further attempts start no renewal, and fail in their time too.
// When the signer answers again, every delivery goes.
func TestHungRenewalsBounded(t *testing.T) {
	f := newFixture(t, Config{Concurrency: 2, PerEndpoint: 2, AttemptTimeout: 100 * time.Millisecond, Lease: time.Second, Jitter: -1}, nil)
	rp := newBodyRecorder(t, http.StatusOK)
	f.addClient(t, &store.Client{ID: "bank", BackchannelLogoutURI: rp.URL})
	f.n.SendTo("renewed", logoutURI)
	var (
		started atomic.Int32
		once    sync.Once
	)
	release := make(chan struct{})
	answer := func() { once.Do(func() { close(release) }) }
	defer answer()
	f.n.RenewWith("renewed", func(payload []byte, now time.Time) ([]byte, error) {
		started.Add(1)
		<-release
		return renewed(payload, now), nil
	}, errNotToken)
	var ds []*store.WebhookDelivery
	for i := range 3 {
		ds = append(ds, &store.WebhookDelivery{ID: fmt.Sprintf("d%d", i), ClientID: "bank", URL: rp.URL, Event: "renewed",
			Payload: fmt.Appendf(nil, "token%d", i), CreatedAt: t0, NextAttemptAt: t0.Add(time.Duration(i) * time.Millisecond)})
	}
	if err := f.st.EnqueueWebhooks(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	// round delivers what is due at, and fails the test if it waits for
	// the hung signer.
	round := func(at time.Time) {
		t.Helper()
		f.clock.Set(at)
		done := make(chan error, 1)
		go func() { _, err := f.n.DeliverDue(context.Background()); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("DeliverDue still waits for the hung renewals after 5 s")
		}
	}
	round(t0)
	round(t0.Add(time.Second)) // d2, and d0 on its way back (due at 5 s) is not
	round(t0.Add(5 * time.Second))
	for _, d := range f.deliveries(t, "bank") {
		if d.Attempts < 1 || !d.AbandonedAt.IsZero() || !d.DeliveredAt.IsZero() || d.LastError != "renew: timeout after 100ms" {
			t.Errorf("%s while the signer hangs: attempts %d, abandoned %v, delivered %v, error %q",
				d.ID, d.Attempts, d.AbandonedAt, d.DeliveredAt, d.LastError)
		}
	}
	if n := started.Load(); n != 2 {
		t.Errorf("%d renewals left hanging, want Concurrency (2)", n)
	}
	if v := metric(t, f.reg, "varde_webhook_deliveries_total", "abandoned"); v != 0 {
		t.Errorf("abandoned metric = %v", v)
	}
	answer()
	round(t0.Add(time.Hour))
	round(t0.Add(time.Hour))
	if got := rp.got(); len(got) != 3 {
		t.Errorf("after the signer came back: sent %q, want all three", got)
	}
}

// TestTransportErrorRedactsURL: a POST that fails before any answer
// (nothing listens) records and logs the error without the receiver's
// query, where a secret may sit, and without its user information.
func TestTransportErrorRedactsURL(t *testing.T) {
	gone := httptest.NewServer(http.NotFoundHandler())
	addr := gone.URL
	gone.Close()
	f := newFixture(t, Config{Jitter: -1}, nil)
	f.addClient(t, &store.Client{ID: "bank", StatusWebhook: addr + "/events?token=s3cret"})
	f.notify(t, bankidDown)
	f.deliver(t)
	d := f.only(t, "bank")
	if d.Attempts != 1 || !d.AbandonedAt.IsZero() || !strings.HasPrefix(d.LastError, "post: ") {
		t.Fatalf("after a refused connection: %+v", d)
	}
	if strings.Contains(d.LastError, "s3cret") || !strings.Contains(d.LastError, addr+"/events?redacted") {
		t.Errorf("LastError %q shows the query", d.LastError)
	}
	if err := CheckURL("https://u:s3cret@bank.example/events"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("CheckURL error %v shows the password", err)
	}
}

// FuzzRetryAfter: any Retry-After a receiver sends gives a wait that is
// never negative, and a date is never read as a wait longer than it
// asks for.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "0", "", "soon", "-1", " 5 ", t0.Add(time.Hour).UTC().Format(http.TimeFormat),
		"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d := retryAfter(v, t0)
		if d < 0 {
			t.Errorf("retryAfter(%q) = %v", v, d)
		}
		if at, err := http.ParseTime(strings.TrimSpace(v)); err == nil && d > 0 && at.Sub(t0) != d {
			t.Errorf("retryAfter(%q) = %v, want %v", v, d, at.Sub(t0))
		}
	})
}

// unrecordingOutbox is the outbox, failing every FinishWebhookAttempt as
// a store that went away after the claim does.
type unrecordingOutbox struct {
	store.Webhooks
}

func (unrecordingOutbox) FinishWebhookAttempt(context.Context, string, *store.WebhookDelivery) error {
	return errors.New("store unreachable")
}

// TestUnrecordedAttemptNotLoggedAsScheduled: an attempt the outbox did
// not record is not logged with a result and a next time it never
// stored; the error says it was not recorded and why the attempt failed.
func TestUnrecordedAttemptNotLoggedAsScheduled(t *testing.T) {
	var logged bytes.Buffer
	f := newFixture(t, Config{Jitter: -1}, func(o *Options) {
		o.Log = slog.New(slog.NewTextHandler(&logged, nil))
	})
	f.n.outbox = unrecordingOutbox{f.st}
	rp := newBodyRecorder(t, http.StatusServiceUnavailable)
	f.addClient(t, &store.Client{ID: "bank", StatusWebhook: rp.URL})
	err := f.st.EnqueueWebhooks(context.Background(), []*store.WebhookDelivery{
		{ID: "d1", ClientID: "bank", URL: rp.URL, Event: EventName, Payload: f.set(t, "d1", "bank"), CreatedAt: t0, NextAttemptAt: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.n.DeliverDue(context.Background())
	if err == nil || !strings.Contains(err.Error(), "attempt 1 of d1 not recorded (it failed: ") ||
		!strings.Contains(err.Error(), "store unreachable") {
		t.Errorf("DeliverDue = %v, want the attempt not recorded, with why it failed", err)
	}
	if strings.Contains(logged.String(), "webhook not delivered") {
		t.Errorf("logged an outcome the outbox does not hold:\n%s", logged.String())
	}
	if d := f.only(t, "bank"); d.Attempts != 0 || !d.NextAttemptAt.Equal(t0) {
		t.Errorf("stored: attempts %d, next %v; want as it was", d.Attempts, d.NextAttemptAt)
	}
}

// stuckSigner is a signer in a hardware module that stopped answering:
// SignTyped waits until release is closed.
type stuckSigner struct {
	Signer
	release chan struct{}
	calls   atomic.Int32
}

func (s *stuckSigner) SignTyped(claims any, typ string) (string, error) {
	s.calls.Add(1)
	<-s.release
	return s.Signer.SignTyped(claims, typ)
}

// TestStuckSignerKeepsDeliveries: while a change waits on a signer that
// does not answer, the deliveries already in the outbox (a logout token
// here) are still made, the signer is left with at most one signature
// nobody waits for, and Run stops when asked.
func TestStuckSignerKeepsDeliveries(t *testing.T) {
	stuck := &stuckSigner{release: make(chan struct{})}
	defer close(stuck.release)
	f := newFixture(t, Config{PollInterval: 10 * time.Millisecond, AttemptTimeout: 50 * time.Millisecond, Lease: time.Second},
		func(o *Options) {
			stuck.Signer = o.Signer
			o.Signer = stuck
			o.Now = time.Now
		})
	rp := newBodyRecorder(t, http.StatusOK)
	f.addClient(t, &store.Client{ID: "bank", StatusWebhook: "https://bank.example/events", BackchannelLogoutURI: rp.URL})
	f.n.SendTo("logout", logoutURI)
	f.n.OnTransition(health.Transition{Component: "bankid", From: health.Up, To: health.Down})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.n.Run(ctx) }()
	for stuck.calls.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	now := time.Now()
	err := f.st.EnqueueWebhooks(context.Background(), []*store.WebhookDelivery{
		{ID: "d1", ClientID: "bank", URL: rp.URL, Event: "logout", Payload: []byte("token"), CreatedAt: now, NextAttemptAt: now},
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(rp.got()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := rp.got(); !slices.Equal(got, []string{"token"}) {
		t.Errorf("logout receiver got %q while the signer was stuck, want the token", got)
	}
	time.Sleep(200 * time.Millisecond)
	if c := stuck.calls.Load(); c != 1 {
		t.Errorf("%d signatures started on a stuck signer, want 1", c)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop while the signer was stuck")
	}
	if ds := f.deliveries(t, "bank"); len(ds) != 1 {
		t.Errorf("%d deliveries for bank, want the logout token alone", len(ds))
	}
}

// slowSigner takes delay for each signature and pays no heed to any
// deadline, as a hardware module over a slow link does.
type slowSigner struct {
	Signer
	delay time.Duration
}

func (s slowSigner) SignTyped(claims any, typ string) (string, error) {
	time.Sleep(s.delay)
	return s.Signer.SignTyped(claims, typ)
}

// TestManyClientsSlowSigner: signing for many clients takes longer than
// the write's Lease, yet the change reaches the outbox, all of it in one
// write, since the write's time is its own.
func TestManyClientsSlowSigner(t *testing.T) {
	f := newFixture(t, Config{PollInterval: 10 * time.Millisecond, AttemptTimeout: 100 * time.Millisecond, Lease: 300 * time.Millisecond},
		func(o *Options) { o.Signer = slowSigner{Signer: o.Signer, delay: 10 * time.Millisecond} })
	const clients = 60
	for i := range clients {
		f.addClient(t, &store.Client{ID: fmt.Sprintf("rp%02d", i), StatusWebhook: "https://rp.example/events"})
	}
	f.n.OnTransition(health.Transition{Component: "store", From: health.Up, To: health.Down})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := f.n.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var got int
	for i := range clients {
		got += len(f.deliveries(t, fmt.Sprintf("rp%02d", i)))
	}
	if got != clients {
		t.Errorf("%d deliveries in the outbox, want %d", got, clients)
	}
}

// TestRenewElsewhereWaitsItsTurnAndEnds: a delivery this node left to
// another (RenewElsewhere) is not claimed again by it at once, which
// would make every free slot claim and release it without pause, but
// after a poll interval, when a node with the key has had its turn; each
// such pass is counted (result "elsewhere") and says why in the
// delivery's last error. Where no node can renew it, it is abandoned
// once it has waited as long as its attempts would have taken at most,
// counted and logged as any abandonment.
func TestRenewElsewhereWaitsItsTurnAndEnds(t *testing.T) {
	cfg := Config{Jitter: -1, MaxAttempts: 2, FirstRetry: 5 * time.Second, Factor: 3, PollInterval: time.Second}
	f, rp := elsewhereFixture(t, cfg, func() bool { return true })
	if n := f.deliver(t); n != 1 {
		t.Fatalf("first round claimed %d, want 1", n)
	}
	if n := f.deliver(t); n != 0 {
		t.Errorf("claimed again at once %d times, want 0: a slot would claim and release it without pause", n)
	}
	d := f.only(t, "bank")
	if d.Attempts != 0 || !d.NextAttemptAt.Equal(t0.Add(time.Second)) || !strings.Contains(d.LastError, "another node's") || !d.AbandonedAt.IsZero() {
		t.Errorf("after a pass left elsewhere: attempts %d, next %v, error %q, abandoned %v", d.Attempts, d.NextAttemptAt, d.LastError, d.AbandonedAt)
	}
	if v := metric(t, f.reg, "varde_webhook_deliveries_total", "renewed", resultElsewhere); v != 1 {
		t.Errorf("deliveries{result=elsewhere} = %v, want 1", v)
	}
	// Within the time its attempts would have taken (5 s + 15 s), it
	// waits; past it, nobody renewed it, and it is abandoned.
	f.clock.Set(t0.Add(19 * time.Second))
	f.deliver(t)
	if d := f.only(t, "bank"); !d.AbandonedAt.IsZero() {
		t.Fatalf("abandoned at %v, before its attempts' time was up", d.AbandonedAt)
	}
	f.clock.Set(t0.Add(21 * time.Second))
	f.deliver(t)
	d = f.only(t, "bank")
	if d.Attempts != 0 || d.AbandonedAt.IsZero() || !strings.Contains(d.LastError, "another node's") || len(rp.got()) != 0 {
		t.Errorf("past its attempts' time: attempts %d, abandoned %v, error %q, %d POSTs", d.Attempts, d.AbandonedAt, d.LastError, len(rp.got()))
	}
	if v := metric(t, f.reg, "varde_webhook_deliveries_total", "renewed", resultAbandoned); v != 1 {
		t.Errorf("deliveries{result=abandoned} = %v, want 1", v)
	}
	if n := f.deliver(t); n != 0 {
		t.Errorf("an abandoned delivery claimed again: %d", n)
	}
}

// elsewhereFixture is a fixture whose "renewed" deliveries this node
// renews only while keyless returns false, leaving them to another node
// (RenewElsewhere) otherwise, with one such delivery to client bank,
// queued at t0, and the receiver it goes to.
func elsewhereFixture(t *testing.T, cfg Config, keyless func() bool) (*fixture, *bodyRecorder) {
	t.Helper()
	f := newFixture(t, cfg, nil)
	rp := newBodyRecorder(t, http.StatusOK)
	f.addClient(t, &store.Client{ID: "bank", BackchannelLogoutURI: rp.URL})
	f.n.SendTo("renewed", logoutURI)
	errNotMine := errors.New("the key is another node's")
	f.n.RenewWith("renewed", func(payload []byte, now time.Time) ([]byte, error) {
		if keyless() {
			return nil, fmt.Errorf("renew: %w", errNotMine)
		}
		return renewed(payload, now), nil
	}, errNotToken)
	f.n.RenewElsewhere("renewed", errNotMine)
	err := f.st.EnqueueWebhooks(context.Background(), []*store.WebhookDelivery{
		{ID: "d1", ClientID: "bank", URL: rp.URL, Event: "renewed", Payload: []byte("token"), CreatedAt: t0, NextAttemptAt: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f, rp
}

// TestAnswerBounded: a receiver's answer is read only up to a bound, its
// header as its body. One that acknowledges with a header of a MiB has
// not been heard: the delivery is tried again, never marked delivered.
func TestAnswerBounded(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	rc := newReceiver(t, f.signer.PublicJWK(), func(_ int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Padding", strings.Repeat("a", 1<<20))
		w.WriteHeader(http.StatusAccepted)
	})
	f.addClient(t, &store.Client{ID: "bank", StatusWebhook: rc.url()})
	f.notify(t, bankidDown)
	f.deliver(t)
	d := f.only(t, "bank")
	if d.Attempts != 1 || !d.DeliveredAt.IsZero() || !d.AbandonedAt.IsZero() || !strings.Contains(d.LastError, "exceeded") {
		t.Errorf("after an answer with a header of a MiB: %+v", d)
	}
}

// waitFor polls cond until it holds or within has passed, and reports
// whether it held.
func waitFor(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

package providersim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/oidc"
)

func (h *harness) admin() *AdminClient {
	return &AdminClient{URL: h.sim.AdminURL(), Token: h.sim.AdminToken()}
}

func (h *harness) setFault(f Fault) Fault {
	h.t.Helper()
	got, err := h.admin().SetFault(context.Background(), f)
	if err != nil {
		h.t.Fatal(err)
	}
	return got
}

// discovery fetches the discovery document over a fresh connection.
func (h *harness) discovery() (int, time.Duration, error) {
	start := time.Now()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get(h.sim.Issuer() + oidc.PathDiscovery)
	if err != nil {
		return 0, time.Since(start), err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, time.Since(start), nil
}

// TestDown: down refuses connections on the issuer port and drops open
// ones, while the admin API answers; ok listens on the same port again.
func TestDown(t *testing.T) {
	h := newSim(t, "bankid", assurance.High, nil)
	// A connection opened before the switch is dropped by it.
	open, err := net.Dial("tcp", h.sim.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()

	if got := h.setFault(Fault{Mode: ModeDown}); got.Mode != ModeDown {
		t.Fatalf("SetFault = %v", got)
	}
	_ = open.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = open.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("open connection survived down: %v", err)
	}
	if _, err := net.DialTimeout("tcp", h.sim.Addr(), 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial while down: %v, want connection refused", err)
	}
	if _, _, err := h.discovery(); err == nil {
		t.Error("discovery answered while down")
	}
	if f, err := h.admin().Fault(context.Background()); err != nil || f.Mode != ModeDown {
		t.Errorf("admin while down: %v, %v", f, err)
	}
	// Down twice is still down.
	h.setFault(Fault{Mode: ModeDown})

	h.setFault(Fault{Mode: ModeOK})
	if status, _, err := h.discovery(); err != nil || status != http.StatusOK {
		t.Fatalf("discovery after ok: %d, %v", status, err)
	}
	// A whole login works again on the same issuer.
	c := h.rp(secretClient)
	b := h.browser()
	f, page, _ := c.start(b, "")
	resp, _ := h.loginAs(b, page, url.Values{"person": {DefaultPersons()[0].ID}})
	if _, _, err := c.exchange(c.code(resp, f), f); err != nil {
		t.Fatal(err)
	}
}

// TestSlow: every response waits at least the delay; ok makes it fast.
func TestSlow(t *testing.T) {
	h := newSim(t, "bankid", assurance.High, nil)
	const delay = 400 * time.Millisecond
	if got := h.setFault(Fault{Mode: ModeSlow, Delay: delay}); got.Delay != delay {
		t.Fatalf("SetFault = %v", got)
	}
	for _, path := range []string{oidc.PathDiscovery, oidc.PathJWKS, "/"} {
		start := time.Now()
		resp, _ := get(t, http.DefaultClient, h.sim.Issuer()+path)
		if took := time.Since(start); resp.StatusCode != http.StatusOK || took < delay {
			t.Errorf("%s: %d after %v, want 200 after at least %v", path, resp.StatusCode, took, delay)
		}
	}
	// The admin API is never slow.
	start := time.Now()
	if _, err := h.admin().Fault(context.Background()); err != nil || time.Since(start) >= delay {
		t.Errorf("admin while slow: %v after %v", err, time.Since(start))
	}
	h.setFault(Fault{Mode: ModeOK})
	if status, took, err := h.discovery(); err != nil || status != 200 || took >= delay {
		t.Errorf("after ok: %d in %v, %v", status, took, err)
	}
	// Slow without a delay takes the configured default.
	if got := h.setFault(Fault{Mode: ModeSlow}); got.Delay != DefaultDelay {
		t.Errorf("slow without delay = %v", got)
	}
}

// TestFailing: discovery and keys stay up; a code issued before the
// failure cannot be redeemed; new requests come straight back with
// server_error; PAR fails.
func TestFailing(t *testing.T) {
	h := newSim(t, "bankid", assurance.High, nil)
	c := h.rp(secretClient)
	b := h.browser()
	f, page, _ := c.start(b, "")
	resp, _ := h.loginAs(b, page, url.Values{"person": {DefaultPersons()[0].ID}})
	code := c.code(resp, f)

	h.setFault(Fault{Mode: ModeFailing})
	for _, path := range []string{oidc.PathDiscovery, oidc.PathJWKS} {
		if resp, _ := get(t, http.DefaultClient, h.sim.Issuer()+path); resp.StatusCode != http.StatusOK {
			t.Errorf("%s while failing: %d", path, resp.StatusCode)
		}
	}
	_, _, err := c.exchange(code, f)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "server_error" || re.Response.StatusCode != http.StatusInternalServerError {
		t.Errorf("token while failing: %v", err)
	}

	// A new authorization request is sent back with server_error and
	// iss, even though the browser has a session.
	f2, resp2, _ := c.start(b, "")
	if q := c.callback(resp2, f2); q.Get("error") != "server_error" || q.Get("code") != "" {
		t.Errorf("authorize while failing: %v", q)
	}
	// An unregistered redirect URI gets a page, not a redirect.
	bad := strings.Replace(c.conf.AuthCodeURL("s"), url.QueryEscape(callback), url.QueryEscape("http://evil.example/cb"), 1)
	if resp, _ := get(t, b, bad); resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Location") != "" {
		t.Errorf("unregistered redirect while failing: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	req, _ := http.NewRequest(http.MethodPost, h.sim.Issuer()+oidc.PathPAR, strings.NewReader("client_id="+secretClient))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(secretClient, h.secret)
	presp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e struct{ Error string }
	_ = json.NewDecoder(presp.Body).Decode(&e)
	presp.Body.Close()
	if presp.StatusCode != 500 || e.Error != "server_error" {
		t.Errorf("PAR while failing: %d %q", presp.StatusCode, e.Error)
	}

	// Back to ok: the next login completes.
	h.setFault(Fault{Mode: ModeOK})
	f3, resp3, _ := c.start(b, "")
	if _, _, err := c.exchange(c.code(resp3, f3), f3); err != nil {
		t.Errorf("after ok: %v", err)
	}
}

// TestStartDown: a sim can start down and come up later.
func TestStartDown(t *testing.T) {
	h := newSim(t, "bankid", assurance.High, func(c *Config) { c.Fault = Fault{Mode: ModeDown} })
	if _, err := net.DialTimeout("tcp", h.sim.Addr(), 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial a sim started down: %v", err)
	}
	h.setFault(Fault{Mode: ModeOK})
	if status, _, err := h.discovery(); err != nil || status != 200 {
		t.Errorf("after ok: %d %v", status, err)
	}
}

func TestParseFault(t *testing.T) {
	for _, tc := range []struct {
		mode, delay string
		want        Fault
		ok          bool
	}{
		{"ok", "", Fault{Mode: ModeOK}, true},
		{"down", "3s", Fault{Mode: ModeDown}, true},
		{"slow", "", Fault{Mode: ModeSlow}, true},
		{"slow", "2500ms", Fault{Mode: ModeSlow, Delay: 2500 * time.Millisecond}, true},
		{"failing", "", Fault{Mode: ModeFailing}, true},
		{"slow", "0s", Fault{}, false},
		{"slow", "-1s", Fault{}, false},
		{"slow", "61s", Fault{}, false},
		{"slow", "soon", Fault{}, false},
		{"", "", Fault{}, false},
		{"DOWN", "", Fault{}, false},
	} {
		got, err := ParseFault(tc.mode, tc.delay)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseFault(%q, %q) = %v, %v", tc.mode, tc.delay, got, err)
		}
		if err != nil && !errors.Is(err, ErrFault) {
			t.Errorf("ParseFault(%q, %q): error %v is not ErrFault", tc.mode, tc.delay, err)
		}
	}
	b, _ := json.Marshal(Fault{Mode: ModeSlow, Delay: 3 * time.Second})
	if string(b) != `{"mode":"slow","delay":"3s"}` {
		t.Errorf("JSON %s", b)
	}
	b, _ = json.Marshal(Fault{Mode: ModeDown})
	if string(b) != `{"mode":"down"}` {
		t.Errorf("JSON %s", b)
	}
}

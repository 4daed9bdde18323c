package passkeyidp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/broker"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
)

// tracingFinisher is the harness's finisher that names attempts and
// browsers in audit events as the broker does, by the broker's own
// Trace.
type tracingFinisher struct {
	*finisher
	b *broker.Broker
}

func (f tracingFinisher) Trace(r *http.Request, attemptID string, d map[string]string) map[string]string {
	return f.b.Trace(r, attemptID, d)
}

// TestLoginFailureNamesItsAttempt: the audit event of a passkey login
// that failed once its ceremony was found names the ceremony found and,
// through the broker, the login attempt it was begun for and the
// browser, so the status page counts the person once however often
// they retry; a finish for a ceremony not found (made up) names
// neither, and the ceremony as unknown, since anyone can send one.
func TestLoginFailureNamesItsAttempt(t *testing.T) {
	h := newHarness(t, true)
	h.p.Finisher = tracingFinisher{h.fin, &broker.Broker{}}
	d := newDevice(false)
	h.browser("en").enrol(d, "a", "fnr")
	b := h.browser("en")
	const cookie = "AAAAAAAAAAAAAAAAAAAAAA" // 128 bits, as the broker sets it
	origin, _ := url.Parse(h.origin)
	b.c.Jar.SetCookies(origin, []*http.Cookie{{Name: broker.BrowserCookie, Value: cookie}})

	h.p.WebAuthn.Passkeys = unansweredPasskeyUse{h.p.WebAuthn.Passkeys}
	if r, m := b.login(d, h.rp, "a5"); r.status != http.StatusInternalServerError {
		t.Fatalf("finish whose passkey use got no answer: %d %v", r.status, m)
	}
	if r, m := b.json("/passkey/login/finish?ceremony=made-up", `{}`, ""); r.status != http.StatusBadRequest {
		t.Fatalf("finish of a made-up ceremony: %d %v", r.status, m)
	}
	var found, unknown *store.AuditEvent
	for _, e := range h.auditEvents(t) {
		if e.Type == "authentication" && e.Result == store.ResultFailure {
			switch e.Details[provider.DetailCeremony] {
			case provider.CeremonyFound:
				found = e
			case provider.CeremonyUnknown:
				unknown = e
			}
		}
	}
	if found == nil || found.Reason != provider.ReasonOutcomeUnknown ||
		found.Details[broker.DetailAttempt] != broker.Handle("a5") || found.Details[broker.DetailBrowser] != broker.Handle(cookie) {
		t.Errorf("failure of a ceremony found: %+v, want outcome_unknown naming attempt a5 and the browser", found)
	}
	if unknown == nil || unknown.Details[broker.DetailAttempt] != "" || unknown.Details[broker.DetailBrowser] != "" {
		t.Errorf("failure of a made-up ceremony: %+v, want one naming no attempt or browser", unknown)
	}
}

// unreachableCodeUse is a store out of reach when a recovery code is
// used, as a database that does not answer is.
type unreachableCodeUse struct{ store.RecoveryCodes }

func (unreachableCodeUse) UseRecoveryCode(context.Context, []byte, time.Time) (string, error) {
	return "", fmt.Errorf("use recovery code: %w", store.ErrUnavailable)
}

// TestRecoveryFailureNamesItsAttempt: a recovery code typed for a login
// the broker holds that fails on Varde's side (the store out of reach)
// is audited as the ceremony found, naming through the broker the login
// attempt and the browser, so the status page counts the person once
// however often they retry; a code rejected for what was typed (one
// that cannot be a code, or a wrong one) names them too, with its own
// reason, which the status page counts as nobody's outage.
func TestRecoveryFailureNamesItsAttempt(t *testing.T) {
	h := newHarness(t, true)
	h.p.Finisher = tracingFinisher{h.fin, &broker.Broker{}}
	e := h.browser("en").enrol(newDevice(false), "a", "fnr")
	b := h.browser("en")
	const cookie = "AAAAAAAAAAAAAAAAAAAAAA" // 128 bits, as the broker sets it
	origin, _ := url.Parse(h.origin)
	b.c.Jar.SetCookies(origin, []*http.Cookie{{Name: broker.BrowserCookie, Value: cookie}})
	csrf := field(t, b.get("/passkey/recover?attempt=r1").body, "csrf")
	typed := func(code string, want int) {
		t.Helper()
		if r := b.form("/passkey/recover", url.Values{"attempt": {"r1"}, "csrf": {csrf}, "code": {code}}); r.status != want {
			t.Fatalf("code %q: %d, want %d: %s", code, r.status, want, r.body)
		}
	}
	codes := h.p.RecoveryCodes
	h.p.RecoveryCodes = unreachableCodeUse{codes}
	typed(e.codes[0], http.StatusServiceUnavailable)
	typed(e.codes[0], http.StatusServiceUnavailable)
	h.p.RecoveryCodes = codes
	typed("not a code", http.StatusBadRequest)
	typed(strings.Repeat("A", 16), http.StatusBadRequest)

	reasons := map[string]int{}
	for _, ev := range h.auditEvents(t) {
		if ev.Type != "authentication" || ev.Result != store.ResultFailure {
			continue
		}
		reasons[ev.Reason]++
		if ev.Details[provider.DetailCeremony] != provider.CeremonyFound ||
			ev.Details[broker.DetailAttempt] != broker.Handle("r1") || ev.Details[broker.DetailBrowser] != broker.Handle(cookie) {
			t.Errorf("recovery failure %s: %v, want the ceremony found naming attempt r1 and the browser", ev.Reason, ev.Details)
		}
	}
	same := map[string]int{provider.ReasonStoreUnavailable: 2, "malformed_recovery_code": 1, "invalid_recovery_code": 1}
	if fmt.Sprint(reasons) != fmt.Sprint(same) {
		t.Errorf("recovery failures audited %v, want %v", reasons, same)
	}
}

package passkeyidp_test

import (
	"net/http"
	"net/url"
	"testing"

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

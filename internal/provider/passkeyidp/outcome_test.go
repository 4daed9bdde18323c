package passkeyidp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
)

// unansweredPasskeyUse is the real store whose record of a passkey's
// use gets no answer, as a COMMIT whose connection closed does: it is
// stored, and the caller is told the outcome is unknown.
type unansweredPasskeyUse struct{ store.Passkeys }

func (u unansweredPasskeyUse) UpdatePasskeyUse(ctx context.Context, credentialID []byte, oldSignCount uint32, use store.PasskeyUse) error {
	if err := u.Passkeys.UpdatePasskeyUse(ctx, credentialID, oldSignCount, use); err != nil {
		return err
	}
	return fmt.Errorf("commit: %w", store.ErrOutcomeUnknown)
}

// A passkey login whose record of the passkey's use got no answer did
// not log the person in: the finish answers 500 "internal", whose
// message asks them to try again, which is safe (a new ceremony, whose
// counter the authenticator has raised either way), and the failure is
// audited as outcome_unknown, not as a defect ("internal"), so that
// operators see it for what it was.
func TestLoginFinishOutcomeUnknown(t *testing.T) {
	h := newHarness(t, true)
	d := newDevice(false)
	h.browser("en").enrol(d, "a", "fnr")
	b := h.browser("en")
	login := func(attempt string) (int, map[string]any) {
		t.Helper()
		r, begun := b.json("/passkey/login/begin", map[string]string{"attempt": attempt}, "")
		if r.status != http.StatusOK {
			t.Fatalf("login begin: %d %v", r.status, begun)
		}
		id, body := h.get(t, h.rp, d, begun)
		r, m := b.json("/passkey/login/finish?ceremony="+url.QueryEscape(id), body, "")
		return r.status, m
	}

	saved := h.p.WebAuthn.Passkeys
	h.p.WebAuthn.Passkeys = unansweredPasskeyUse{saved}
	status, m := login("a2")
	if status != http.StatusInternalServerError || m["error"] != "internal" || !strings.Contains(m["message"].(string), "try again") {
		t.Errorf("finish whose passkey use got no answer: %d %v, want 500 internal asking to try again", status, m)
	}
	if !hasEvent(h.auditEvents(t), "authentication", store.ResultFailure, provider.ReasonOutcomeUnknown) {
		for _, e := range h.auditEvents(t) {
			t.Logf("event %s %s %s", e.Type, e.Result, e.Reason)
		}
		t.Errorf("no authentication failure audited as %s", provider.ReasonOutcomeUnknown)
	}

	h.p.WebAuthn.Passkeys = saved
	if status, m := login("a3"); status != http.StatusOK || h.fin.last(t).Attempt != "a3" {
		t.Errorf("a new login after it: %d %v", status, m)
	}
}

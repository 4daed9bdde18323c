package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/broker"
	idp "github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
)

// choosePasskey starts a login of the relying party rp, registered on
// d, in a browser of its own, and chooses the passkey: it returns the
// browser and the login attempt at Varde's passkey page.
func choosePasskey(t *testing.T, d *demoNode, issuer, rp string) (*fedRP, string) {
	t.Helper()
	p := newFedRPFor(t, d, issuer, rp, nil).browser()
	req := p.start("s", "n", "v-0123456789012345678901234567890123456789012")
	res, _ := p.get(issuer + "/login/start?" + url.Values{"req": {req}, "provider": {"passkey"}}.Encode())
	attempt := res.Request.URL.Query().Get("attempt")
	if res.Request.URL.Path != "/passkey/login" || attempt == "" {
		t.Fatalf("choosing the passkey ended at %s", res.Request.URL)
	}
	return p, attempt
}

// TestPasskeyFailuresNameTheirAttempt: on a running node, a person who
// chose the passkey for a relying party's login and whose browser sent
// a response that does not verify, twice, is audited with their login
// attempt and browser (the broker's handles), the ceremony found; a
// finish for a made-up ceremony names neither. None of it is an error
// of Varde's, so the status page counts no one affected.
func TestPasskeyFailuresNameTheirAttempt(t *testing.T) {
	d, issuer := startTunedDemo(t, demoTuning{})
	ctx := context.Background()
	from := time.Now()
	p, attempt := choosePasskey(t, d, issuer, "rp-passkey")
	var post func(path string, body any) int
	post = func(path string, body any) int {
		t.Helper()
		raw, _ := json.Marshal(body)
		r, err := p.http.Post(issuer+path, "application/json", bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var reply struct{ Ceremony string }
		_ = json.NewDecoder(r.Body).Decode(&reply)
		if reply.Ceremony != "" {
			return post("/passkey/login/finish?ceremony="+url.QueryEscape(reply.Ceremony), map[string]string{})
		}
		return r.StatusCode
	}
	for range 2 {
		if code := post("/passkey/login/begin", map[string]string{"attempt": attempt}); code != http.StatusBadRequest {
			t.Fatalf("a response that does not verify: %d, want 400", code)
		}
	}
	if code := post("/passkey/login/finish?ceremony=made-up", map[string]string{}); code != http.StatusBadRequest {
		t.Fatalf("a made-up ceremony: %d, want 400", code)
	}

	evs, err := d.app.Store.ListAudit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	type traced struct{ ceremony, attempt, browser string }
	handles := map[traced]int{}
	for _, e := range evs {
		if e.Type == broker.EventAuthentication && e.Result == store.ResultFailure && e.Provider == "passkey" {
			handles[traced{e.Details[idp.DetailCeremony], e.Details[broker.DetailAttempt], e.Details[broker.DetailBrowser]}]++
		}
	}
	var tried traced
	for k := range handles {
		if k.ceremony == idp.CeremonyFound {
			tried = k
		}
	}
	if len(handles) != 2 || tried.attempt != broker.Handle(attempt) || tried.browser == "" || handles[tried] != 2 ||
		handles[traced{ceremony: idp.CeremonyUnknown}] != 1 {
		t.Errorf("passkey failures %v: want two of the ceremony found naming attempt %s and a browser, and one of none naming neither",
			handles, broker.Handle(attempt))
	}
	got, err := d.app.Status.Affected(ctx, []string{"passkey"}, from, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got.People != 0 || got.FailedAttempts != 0 {
		t.Errorf("affected %+v, want no one: nothing failed on Varde's side", got)
	}
}

// TestRecoveryCodeMistakesCountNoOne: on a running node, a person who
// chose the passkey for a relying party's login and typed recovery
// codes that are wrong, or cannot be codes at all, is audited with
// their login attempt and browser (the broker's handles), the ceremony
// found, each with its own reason. A code mistyped is the person's
// mistake, not an outage: the status page counts no one affected.
func TestRecoveryCodeMistakesCountNoOne(t *testing.T) {
	d, issuer := startTunedDemo(t, demoTuning{})
	ctx := context.Background()
	from := time.Now()
	p, attempt := choosePasskey(t, d, issuer, "rp-recovery")
	_, page := p.get(issuer + "/passkey/recover?" + url.Values{"attempt": {attempt}}.Encode())
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("the recovery page has no csrf field")
	}
	for _, code := range []string{strings.Repeat("A", 16), strings.Repeat("B", 16), "not a code"} {
		r, err := p.http.PostForm(issuer+"/passkey/recover", url.Values{"attempt": {attempt}, "csrf": {m[1]}, "code": {code}})
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusBadRequest {
			t.Fatalf("code %q: %d, want 400", code, r.StatusCode)
		}
	}

	evs, err := d.app.Store.ListAudit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]int{}
	for _, e := range evs {
		if e.Type != broker.EventAuthentication || e.Result != store.ResultFailure || e.Provider != "passkey" {
			continue
		}
		reasons[e.Reason]++
		if e.Details[idp.DetailCeremony] != idp.CeremonyFound || e.Details[broker.DetailAttempt] != broker.Handle(attempt) ||
			e.Details[broker.DetailBrowser] == "" {
			t.Errorf("recovery code failure %s: %v, want the ceremony found naming attempt %s and a browser",
				e.Reason, e.Details, broker.Handle(attempt))
		}
	}
	if reasons["invalid_recovery_code"] != 2 || reasons["malformed_recovery_code"] != 1 || len(reasons) != 2 {
		t.Errorf("recovery code failures %v: want two wrong codes and one that cannot be a code", reasons)
	}
	got, err := d.app.Status.Affected(ctx, []string{"passkey"}, from, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got.People != 0 || got.FailedAttempts != 0 {
		t.Errorf("affected %+v, want no one: a code mistyped is the person's mistake", got)
	}
}

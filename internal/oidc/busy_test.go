package oidc

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	xoauth2 "golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store/flowmem"
)

// withFlowMem keeps the provider's flow state in a small Mem.
func withFlowMem(opt flowmem.Options, mem **flowmem.Mem) func(*harness) {
	return func(h *harness) {
		opt.Now = h.clock.Now
		*mem = flowmem.New(opt)
		st := flowmem.Over(h.db, *mem)
		h.p.AuthRequests, h.p.AuthCodes, h.p.Grants, h.p.ClientAuth.Replay = st, st, st, st
	}
}

// A flood of authorization requests at the front channel, which anyone
// can make, fills only their own bound: the relying party is told
// temporarily_unavailable at its redirect URI, and pushed requests,
// codes and client authentication go on.
func TestFrontChannelFloodLeavesTheRest(t *testing.T) {
	var mem *flowmem.Mem
	h := newHarness(t, withFlowMem(flowmem.Options{MaxFrontBytes: 8 << 10}, &mem))
	h.setLogin(false, "substantial", h.person.ID)
	flood := h.browser()
	refused := 0
	for i := 0; i < 100 && refused == 0; i++ {
		resp, _ := flood.get(h.issuer + PathAuthorize + "?" + taxQuery(nil).Encode())
		if resp.StatusCode == http.StatusOK {
			continue // the login page: the request is kept
		}
		q := h.callback(resp, taxCB)
		if q.Get("error") != oauth2.CodeTemporarilyUnavailable || q.Get("state") != "st" || q.Get("error_description") == "" {
			t.Fatalf("callback when full = %v, want temporarily_unavailable with the state", q)
		}
		refused++
	}
	if refused == 0 {
		t.Fatal("100 front-channel requests all kept; want the bound to refuse some")
	}
	if st := mem.Stats(); st.FrontRequests < 5 || st.Refused[flowmem.BoundFront] != 1 {
		t.Fatalf("Stats = %+v, want the front bound full and refusing", st)
	}
	if n := h.counter("varde_oidc_errors_total", map[string]string{"endpoint": "authorize", "error": "temporarily_unavailable"}); n != 1 {
		t.Errorf("temporarily_unavailable counted %v times, want 1", n)
	}
	// A pushed request, its login, its code and the client's assertion
	// all fit beside the flood.
	h.setLogin(true, "substantial", h.person.ID)
	l := h.loginBank(h.rp(bankID, bankCB), h.browser())
	if l.claims.Sub == "" {
		t.Fatal("no sub in the bank's ID token")
	}
}

// A node whose flow state is full refuses as temporarily_unavailable,
// not server_error: with 503 and Retry-After at the PAR and token
// endpoints, at the redirect URI for a code it could not store.
func TestFullFlowStateIsTemporarilyUnavailable(t *testing.T) {
	var mem *flowmem.Mem
	h := newHarness(t, withFlowMem(flowmem.Options{MaxEntries: 64}, &mem))
	b := h.browser()
	bank := h.rp(bankID, bankCB)
	h.loginBank(bank, b) // a session for single sign-on

	// Now a pushed request and a code for the bank, then nothing more fits.
	verifier := xoauth2.GenerateVerifier()
	authURL, status, body := h.pushBank(bankForm("st", "n", verifier))
	if status != http.StatusCreated {
		t.Fatalf("PAR: %d %v", status, body)
	}
	resp, _ := b.get(authURL)
	code := h.callback(resp, bankCB).Get("code")
	now := h.clock.Now()
	for i := 0; ; i++ {
		err := mem.Remember(t.Context(), fmt.Sprint("filler-", i), now.Add(time.Second), now)
		if errors.Is(err, flowmem.ErrFull) {
			break
		}
		if err != nil || i > 64 {
			t.Fatalf("filling the flow state: %v after %d", err, i)
		}
	}

	status, hdr, body := h.postForm(PathPAR, h.bankAuth(bankForm("st", "n", verifier)), "")
	if status != http.StatusServiceUnavailable || body["error"] != oauth2.CodeTemporarilyUnavailable || hdr.Get("Retry-After") != "60" {
		t.Errorf("PAR when full: %d %v Retry-After %q, want 503 temporarily_unavailable, 60", status, body, hdr.Get("Retry-After"))
	}
	// The client assertion's jti cannot be remembered, so the code is
	// not redeemed, and stays for when there is room.
	form := h.bankAuth(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {bankCB}, "code_verifier": {verifier}})
	status, hdr, body = h.postForm(PathToken, form, "")
	if status != http.StatusServiceUnavailable || body["error"] != oauth2.CodeTemporarilyUnavailable || hdr.Get("Retry-After") != "60" {
		t.Errorf("token when full: %d %v Retry-After %q, want 503 temporarily_unavailable, 60", status, body, hdr.Get("Retry-After"))
	}
	// Single sign-on at the front channel needs no stored request, but
	// a code.
	resp, _ = b.get(h.issuer + PathAuthorize + "?" + taxQuery(func(q url.Values) { q.Set("client_id", mobileID); q.Set("redirect_uri", mobileCB) }).Encode())
	if q := h.callback(resp, mobileCB); q.Get("error") != oauth2.CodeTemporarilyUnavailable || q.Get("state") != "st" || q.Has("code") {
		t.Errorf("single sign-on when full: %v, want temporarily_unavailable", q)
	}
	if st := mem.Stats(); st.Refused[flowmem.BoundEntries] < 3 {
		t.Errorf("Stats.Refused = %v, want at least 3 by entries", st.Refused)
	}

	// Once the fillers have expired, the code is redeemed as usual.
	h.clock.Add(2 * time.Second)
	status, _, body = h.postForm(PathToken, h.bankAuth(url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {bankCB}, "code_verifier": {verifier}}), "")
	if status != http.StatusOK || body["id_token"] == nil {
		t.Errorf("token once there is room: %d %v", status, body)
	}
}

// One client pushing requests in a loop (its software gone wrong, or its
// credentials stolen) fills only its own bound: it is told
// temporarily_unavailable, with 503 and Retry-After, and other relying
// parties push and log people in as before.
func TestPushFloodOfOneClientLeavesTheOthers(t *testing.T) {
	var mem *flowmem.Mem
	h := newHarness(t, withFlowMem(flowmem.Options{MaxPushedBytes: 8 << 10}, &mem))
	refused := 0
	for i := 0; i < 100 && refused == 0; i++ {
		status, hdr, body := h.postForm(PathPAR, taxQuery(nil), taxID)
		if status == http.StatusCreated {
			continue
		}
		if status != http.StatusServiceUnavailable || body["error"] != oauth2.CodeTemporarilyUnavailable || hdr.Get("Retry-After") != "60" {
			t.Fatalf("push %d over the client's bound: %d %v Retry-After %q, want 503 temporarily_unavailable, 60", i, status, body, hdr.Get("Retry-After"))
		}
		refused++
	}
	if refused == 0 {
		t.Fatal("100 pushed requests of one client all kept; want its bound to refuse some")
	}
	if st := mem.Stats(); st.Requests < 5 || st.Refused[flowmem.BoundPushed] != 1 {
		t.Fatalf("Stats = %+v, want the client's pushed requests at their bound and refusing", st)
	}
	h.setLogin(true, "substantial", h.person.ID)
	l := h.loginBank(h.rp(bankID, bankCB), h.browser())
	if l.claims.Sub == "" {
		t.Fatal("no sub in the bank's ID token")
	}
}

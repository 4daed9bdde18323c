package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
	"github.com/varde-eid/varde/internal/webhook"
)

// Back-channel logout URIs of the test clients that register one.
const (
	bankBCL = "https://bank.example/backchannel-logout"
	taxBCL  = "https://tax.example/backchannel-logout"
)

// withBackchannel registers a back-channel logout URI for the bank and
// the tax office; the mobile bank registers none.
func (h *harness) withBackchannel() {
	h.t.Helper()
	h.setBackchannel(map[string]string{bankID: bankBCL, taxID: taxBCL})
}

// setBackchannel registers each client's back-channel logout URI
// anew, as a node that starts with an edited configuration file does
// ("" for none).
func (h *harness) setBackchannel(uris map[string]string) {
	h.t.Helper()
	ctx := context.Background()
	for id, uri := range uris {
		c, err := h.db.GetClient(ctx, id)
		if err != nil {
			h.t.Fatal(err)
		}
		c.BackchannelLogoutURI = uri
		if err := h.db.PutClient(ctx, c); err != nil {
			h.t.Fatal(err)
		}
	}
}

// deliveries returns the outbox's deliveries to clientID.
func (h *harness) deliveries(clientID string) []*store.WebhookDelivery {
	h.t.Helper()
	ds, err := h.db.ListWebhookDeliveries(context.Background(), clientID, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return ds
}

// logoutToken is a verified logout token: its typ header and claims, as
// raw JSON members so absent and extra claims show.
type logoutToken struct {
	typ    string
	claims map[string]json.RawMessage
}

// verifyLogoutToken checks the delivery's form body and the token's
// ES256 signature against the key the issuer's JWKS publishes under
// its kid.
func (h *harness) verifyLogoutToken(d *store.WebhookDelivery) logoutToken {
	h.t.Helper()
	form, err := url.ParseQuery(string(d.Payload))
	if err != nil || len(form) != 1 || len(form["logout_token"]) != 1 {
		h.t.Fatalf("payload %q is not the form logout_token=...: %v", d.Payload, err)
	}
	jws, err := jose.ParseSigned(form.Get("logout_token"), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		h.t.Fatalf("logout token: %v", err)
	}
	resp, err := http.Get(h.issuer + PathJWKS)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		h.t.Fatal(err)
	}
	hdr := jws.Signatures[0].Header
	keys := set.Key(hdr.KeyID)
	if len(keys) != 1 {
		h.t.Fatalf("kid %q names %d keys in the JWKS", hdr.KeyID, len(keys))
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		h.t.Fatalf("logout token signature: %v", err)
	}
	var lt logoutToken
	lt.typ, _ = hdr.ExtraHeaders[jose.HeaderType].(string)
	if err := json.Unmarshal(payload, &lt.claims); err != nil {
		h.t.Fatal(err)
	}
	return lt
}

func (lt logoutToken) str(t testing.TB, name string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(lt.claims[name], &s); err != nil {
		t.Fatalf("claim %s = %s: %v", name, lt.claims[name], err)
	}
	return s
}

func (lt logoutToken) num(t testing.TB, name string) int64 {
	t.Helper()
	var n int64
	if err := json.Unmarshal(lt.claims[name], &n); err != nil {
		t.Fatalf("claim %s = %s: %v", name, lt.claims[name], err)
	}
	return n
}

// TestBackchannelLogout: an RP-initiated logout of a single sign-on
// session queues one logout token for every client that got tokens in
// it and registered a back-channel logout URI, the one that asked
// included, and none for the others (Back-Channel Logout 1.0 §2.7).
// Each token is what §2.4 asks for.
func TestBackchannelLogout(t *testing.T) {
	h := newHarness(t)
	h.withBackchannel()
	bank, tax, mobile := h.rp(bankID, bankCB), h.rp(taxID, taxCB), h.rp(mobileID, mobileCB)
	b := h.browser()
	lBank := h.loginBank(bank, b)
	lTax := tax.loginFront(b, oauth2.SetAuthURLParam("acr_values", assurance.ACRSubstantial))
	mobile.loginFront(b, oauth2.SetAuthURLParam("acr_values", assurance.ACRSubstantial))
	if h.logins.Load() != 1 {
		t.Fatalf("logins = %d, want one single sign-on session", h.logins.Load())
	}
	for _, id := range []string{bankID, taxID, mobileID} {
		if n := len(h.deliveries(id)); n != 0 {
			t.Fatalf("%s has %d deliveries before logout", id, n)
		}
	}
	now := h.clock.Now()

	hint, _ := lBank.token.Extra("id_token").(string)
	resp, _ := b.get(h.issuer + PathLogout + "?" + url.Values{"id_token_hint": {hint}}.Encode())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if n := len(h.deliveries(mobileID)); n != 0 {
		t.Errorf("the mobile bank, without a back-channel logout URI, has %d deliveries", n)
	}
	for _, tc := range []struct {
		client, uri string
		idToken     idClaims
	}{
		{bankID, bankBCL, lBank.claims},
		{taxID, taxBCL, lTax.claims},
	} {
		t.Run(tc.client, func(t *testing.T) {
			ds := h.deliveries(tc.client)
			if len(ds) != 1 {
				t.Fatalf("%d deliveries, want 1", len(ds))
			}
			d := ds[0]
			if d.URL != tc.uri || d.Event != LogoutDeliveryEvent || d.ContentType != "application/x-www-form-urlencoded" ||
				!d.NextAttemptAt.Equal(now) || d.Attempts != 0 {
				t.Errorf("delivery to %s, event %q, type %q, due %v, attempts %d", d.URL, d.Event, d.ContentType, d.NextAttemptAt, d.Attempts)
			}
			lt := h.verifyLogoutToken(d)
			if lt.typ != "logout+jwt" {
				t.Errorf("typ = %q, want logout+jwt", lt.typ)
			}
			if got := lt.str(t, "iss"); got != h.issuer {
				t.Errorf("iss = %q", got)
			}
			if got := lt.str(t, "aud"); got != tc.client {
				t.Errorf("aud = %q", got)
			}
			// The pairwise sub and the sid of the client's own ID token.
			if got := lt.str(t, "sub"); got != tc.idToken.Sub {
				t.Errorf("sub = %q, want the ID token's %q", got, tc.idToken.Sub)
			}
			if got := lt.str(t, "sid"); got != tc.idToken.SID || got == "" {
				t.Errorf("sid = %q, want the ID token's %q", got, tc.idToken.SID)
			}
			if got := lt.str(t, "jti"); got != d.ID || len(got) < 22 {
				t.Errorf("jti = %q, delivery ID %q", got, d.ID)
			}
			if iat, exp := lt.num(t, "iat"), lt.num(t, "exp"); iat != now.Unix() || exp-iat != 120 {
				t.Errorf("iat = %d, exp = %d; want iat %d and two minutes", iat, exp, now.Unix())
			}
			if got := string(lt.claims["events"]); got != `{"http://schemas.openid.net/event/backchannel-logout":{}}` {
				t.Errorf("events = %s", got)
			}
			// §2.4: a logout token never holds a nonce.
			if _, ok := lt.claims["nonce"]; ok {
				t.Error("logout token has a nonce")
			}
			if len(lt.claims) != 8 {
				t.Errorf("claims %v, want exactly iss sub aud iat exp jti sid events", keysOf(lt.claims))
			}
		})
	}
	if lBank.claims.Sub == lTax.claims.Sub {
		t.Fatal("bank and tax office share a subject; the pairwise check above proves nothing")
	}
	// Nor a sid: two relying parties of different sectors in one single
	// sign-on session cannot join their records on it.
	if lBank.claims.SID == lTax.claims.SID {
		t.Error("bank and tax office got the same sid for one session")
	}
}

// TestBackchannelLogoutWithoutSession: a logout with no session at Varde
// ends nothing, so nobody is told.
func TestBackchannelLogoutWithoutSession(t *testing.T) {
	h := newHarness(t)
	h.withBackchannel()
	b := h.browser()
	resp, _ := b.post(h.issuer+PathLogout, url.Values{"confirm": {"yes"}, "client_id": {bankID}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if n := len(h.deliveries(bankID)); n != 0 {
		t.Errorf("%d deliveries without a session", n)
	}
}

// TestBackchannelLogoutAcrossLogins: a step-up (prompt=login) by the same
// person in the same browser continues the session: the client's ID
// token after it has the sid of the one before, and nobody is told of a
// logout. When another person then logs in in that browser, the session
// has ended for everyone who got tokens in it, before or after the
// step-up, under the sid they know.
func TestBackchannelLogoutAcrossLogins(t *testing.T) {
	h := newHarness(t)
	h.withBackchannel()
	bank, tax, mobile := h.rp(bankID, bankCB), h.rp(taxID, taxCB), h.rp(mobileID, mobileCB)
	b := h.browser()
	lBank := h.loginBank(bank, b)
	before := tax.loginFront(b, oauth2.SetAuthURLParam("acr_values", assurance.ACRSubstantial))
	h.setLogin(true, "high", h.person.ID)
	lTax := tax.loginFront(b, oauth2.SetAuthURLParam("acr_values", assurance.ACRHigh), oauth2.SetAuthURLParam("prompt", "login"))
	if h.logins.Load() != 2 {
		t.Fatalf("logins = %d, want two: prompt=login logs in again", h.logins.Load())
	}
	if lTax.claims.SID != before.claims.SID || lTax.claims.SID == "" {
		t.Errorf("sid after the step-up %q, before %q; want the same", lTax.claims.SID, before.claims.SID)
	}
	for _, id := range []string{bankID, taxID} {
		if n := len(h.deliveries(id)); n != 0 {
			t.Errorf("%s has %d deliveries after a step-up", id, n)
		}
	}

	// Someone else logs in in the same browser.
	h.setLogin(true, "substantial", h.other.ID)
	lOther := mobile.loginFront(b, oauth2.SetAuthURLParam("prompt", "login"))
	if lOther.claims.SID == lBank.claims.SID {
		t.Error("another person's session has the first person's sid")
	}
	h.toldOnce(bankID, lBank.claims.Sub, lBank.claims.SID)
	h.toldOnce(taxID, lTax.claims.Sub, lTax.claims.SID)
	if n := len(h.deliveries(mobileID)); n != 0 {
		t.Errorf("the mobile bank, without a back-channel logout URI, has %d deliveries", n)
	}
}

// toldOnce checks that client has exactly one delivery, a logout token
// for it naming sub and sid, and returns the token.
func (h *harness) toldOnce(client, sub, sid string) logoutToken {
	h.t.Helper()
	ds := h.deliveries(client)
	if len(ds) != 1 {
		h.t.Fatalf("%s has %d deliveries, want 1", client, len(ds))
	}
	lt := h.verifyLogoutToken(ds[0])
	if gotSub, gotSID, aud := lt.str(h.t, "sub"), lt.str(h.t, "sid"), lt.str(h.t, "aud"); gotSub != sub || gotSID != sid || aud != client {
		h.t.Errorf("%s told sub %q sid %q aud %q; want %q, %q", client, gotSub, gotSID, aud, sub, sid)
	}
	return lt
}

func keysOf(m map[string]json.RawMessage) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return strings.Join(ks, " ")
}

// backchannelRP is a relying party's back-channel logout endpoint: it
// answers each POST with the next status and keeps what it got.
type backchannelRP struct {
	srv      *httptest.Server
	mu       sync.Mutex
	statuses []int
	got      []bclPost
}

// bclPost is one POST a backchannelRP received.
type bclPost struct{ method, path, contentType, token string }

// posts returns what the endpoint has received so far.
func (rp *backchannelRP) posts() []bclPost {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return slices.Clone(rp.got)
}

func newBackchannelRP(t *testing.T, statuses ...int) *backchannelRP {
	rp := &backchannelRP{statuses: statuses}
	rp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rp.mu.Lock()
		defer rp.mu.Unlock()
		_ = r.ParseForm()
		rp.got = append(rp.got, bclPost{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.PostForm.Get("logout_token")})
		code := rp.statuses[min(len(rp.got), len(rp.statuses))-1]
		if code == http.StatusBadRequest {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_, _ = io.WriteString(w, `{"error":"invalid_request","error_description":"no such session"}`)
			return
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(rp.srv.Close)
	return rp
}

// logoutWorker is the outbox's worker (package webhook) wired as the
// app wires it: each logout token goes to its client's URI as
// registered at the attempt, signed anew if it is no longer fresh.
func (h *harness) logoutWorker(cfg webhook.Config) *webhook.Notifier {
	h.t.Helper()
	worker, err := webhook.New(webhook.Options{
		Config: cfg, Issuer: h.issuer, Node: "n1", Signer: h.p.Signer,
		Clients: h.db, Outbox: h.db, Now: h.clock.Now,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	worker.SendTo(LogoutDeliveryEvent, LogoutURI)
	worker.RenewWith(LogoutDeliveryEvent, h.p.RenewLogoutToken, ErrNotLogoutDelivery)
	worker.RetryRefused(LogoutDeliveryEvent)
	return worker
}

// TestBackchannelLogoutDelivered: the logout token queued at logout is
// POSTed by the outbox's worker (package webhook) as the form parameter
// logout_token (§2.5). A 500 is retried until the relying party answers
// 200 (§2.8); so is a 400, "the logout failed", which may pass (a key
// the relying party has not fetched yet), its error kept meanwhile.
func TestBackchannelLogoutDelivered(t *testing.T) {
	h := newHarness(t)
	bankRP := newBackchannelRP(t, http.StatusInternalServerError, http.StatusInternalServerError, http.StatusOK)
	taxRP := newBackchannelRP(t, http.StatusBadRequest, http.StatusOK)
	h.setBackchannel(map[string]string{bankID: bankRP.srv.URL + "/bcl", taxID: taxRP.srv.URL + "/bcl"})
	worker := h.logoutWorker(webhook.Config{Jitter: -1})
	deliver := func() {
		t.Helper()
		if _, err := worker.DeliverDue(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	h.logOutOfBankAndTax()

	deliver()
	bankGot, taxGot := bankRP.posts(), taxRP.posts()
	if len(bankGot) != 1 || len(taxGot) != 1 {
		t.Fatalf("first round: bank got %d, tax got %d POSTs", len(bankGot), len(taxGot))
	}
	if p := bankGot[0]; p.method != http.MethodPost || p.path != "/bcl" || p.contentType != "application/x-www-form-urlencoded" {
		t.Errorf("POST %s %s, Content-Type %q", p.method, p.path, p.contentType)
	}
	d := h.deliveries(bankID)[0]
	if lt := h.verifyLogoutToken(d); bankGot[0].token == "" || "logout_token="+url.QueryEscape(bankGot[0].token) != string(d.Payload) ||
		lt.str(t, "aud") != bankID {
		t.Errorf("the bank got logout_token %q, the outbox holds %q", bankGot[0].token, d.Payload)
	}
	if d.Attempts != 1 || !d.DeliveredAt.IsZero() || !d.AbandonedAt.IsZero() || d.LastError != "status 500" {
		t.Errorf("bank after a 500: attempts %d, delivered %v, abandoned %v, error %q", d.Attempts, d.DeliveredAt, d.AbandonedAt, d.LastError)
	}
	if d := h.deliveries(taxID)[0]; d.Attempts != 1 || !d.AbandonedAt.IsZero() ||
		d.LastError != "status 400 invalid_request: no such session" {
		t.Errorf("tax office after a 400: attempts %d, abandoned %v, error %q", d.Attempts, d.AbandonedAt, d.LastError)
	}

	// The retry is due after the first backoff, not before.
	h.clock.Add(worker.Config().FirstRetry - time.Second)
	deliver()
	if n := len(bankRP.posts()); n != 1 {
		t.Fatalf("retried before the backoff: %d POSTs", n)
	}
	h.clock.Add(time.Second)
	deliver()
	if got := bankRP.posts(); len(got) != 2 || got[1].token != got[0].token {
		t.Fatalf("retry: %d POSTs, want 2 with the same token", len(got))
	}

	// The bank is down for ten minutes, long past the token's two: the
	// attempt then sends it signed anew, valid now, the same logout.
	h.clock.Add(10 * time.Minute)
	deliver()
	got := bankRP.posts()
	if len(got) != 3 || got[2].token == got[0].token {
		t.Fatalf("late retry: %d POSTs; want 3, the last with the token signed anew", len(got))
	}
	renewed := h.verifyLogoutToken(&store.WebhookDelivery{Payload: []byte("logout_token=" + url.QueryEscape(got[2].token))})
	first := h.verifyLogoutToken(d)
	if iat, exp := renewed.num(t, "iat"), renewed.num(t, "exp"); iat != h.clock.Now().Unix() || exp != iat+120 {
		t.Errorf("renewed token: iat %d, exp %d; want %d and two minutes on", iat, exp, h.clock.Now().Unix())
	}
	for _, c := range []string{"iss", "aud", "sub", "sid", "jti"} {
		if renewed.str(t, c) != first.str(t, c) {
			t.Errorf("renewed %s = %q, first %q", c, renewed.str(t, c), first.str(t, c))
		}
	}
	if renewed.typ != "logout+jwt" || string(renewed.claims["events"]) != string(first.claims["events"]) || len(renewed.claims) != 8 {
		t.Errorf("renewed token typ %q, claims %v", renewed.typ, keysOf(renewed.claims))
	}
	if d := h.deliveries(bankID)[0]; d.Attempts != 3 || d.DeliveredAt.IsZero() || d.LastError != "" {
		t.Errorf("bank after a 200: attempts %d, delivered %v, error %q", d.Attempts, d.DeliveredAt, d.LastError)
	}
	// Delivered, the token (a pairwise sub and sid) is no longer kept.
	if d := h.deliveries(bankID)[0]; len(d.Payload) != 0 {
		t.Errorf("the outbox still holds the delivered token %q", d.Payload)
	}
	if d := h.deliveries(taxID)[0]; d.Attempts != 2 || d.DeliveredAt.IsZero() || d.LastError != "" {
		t.Errorf("tax office after a 400, then 200: attempts %d, delivered %v, error %q", d.Attempts, d.DeliveredAt, d.LastError)
	}
	// Neither is sent again once delivered.
	h.clock.Add(24 * time.Hour)
	deliver()
	if b, x := len(bankRP.posts()), len(taxRP.posts()); b != 3 || x != 2 {
		t.Errorf("sent again: bank %d, tax %d POSTs", b, x)
	}
}

// logOutOfBankAndTax logs a person in at the bank and the tax office in
// one single sign-on session and out again, which queues a logout token
// for each client that registers a back-channel logout URI.
func (h *harness) logOutOfBankAndTax() {
	h.t.Helper()
	b := h.browser()
	h.loginBank(h.rp(bankID, bankCB), b)
	h.rp(taxID, taxCB).loginFront(b, oauth2.SetAuthURLParam("acr_values", assurance.ACRSubstantial))
	resp, _ := b.confirmLogout(nil)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("logout: %d", resp.StatusCode)
	}
}

// TestBackchannelLogoutGoesWhereTheClientIsNow: a logout token queued
// before its client registered another back-channel logout URI goes to
// the new one, and the old endpoint, whose host may be someone else's
// by now, gets nothing; one queued before its client dropped its URI is
// abandoned unsent, saying why.
func TestBackchannelLogoutGoesWhereTheClientIsNow(t *testing.T) {
	h := newHarness(t)
	oldRP, movedRP, taxRP := newBackchannelRP(t, http.StatusOK), newBackchannelRP(t, http.StatusOK), newBackchannelRP(t, http.StatusOK)
	h.setBackchannel(map[string]string{bankID: oldRP.srv.URL + "/bcl", taxID: taxRP.srv.URL + "/bcl"})
	h.logOutOfBankAndTax()
	queued := h.deliveries(bankID)[0].Payload
	h.setBackchannel(map[string]string{bankID: movedRP.srv.URL + "/moved", taxID: ""})
	if _, err := h.logoutWorker(webhook.Config{}).DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}

	if n, m := len(oldRP.posts()), len(taxRP.posts()); n != 0 || m != 0 {
		t.Errorf("endpoints no longer registered got POSTs: the bank's old one %d, the tax office's %d", n, m)
	}
	got, d := movedRP.posts(), h.deliveries(bankID)[0]
	if len(got) != 1 || got[0].path != "/moved" || "logout_token="+url.QueryEscape(got[0].token) != string(queued) {
		t.Fatalf("the bank's new endpoint got %+v, want the queued token", got)
	}
	if d.DeliveredAt.IsZero() || d.Attempts != 1 || d.URL != movedRP.srv.URL+"/moved" {
		t.Errorf("bank: delivered %v, attempts %d, URL %s; want delivered once, to the new URI", d.DeliveredAt, d.Attempts, d.URL)
	}
	if d := h.deliveries(taxID)[0]; d.AbandonedAt.IsZero() || d.Attempts != 1 || d.LastError != webhook.URLUnregistered {
		t.Errorf("tax office: abandoned %v, attempts %d, error %q; want abandoned, %q", d.AbandonedAt, d.Attempts, d.LastError, webhook.URLUnregistered)
	}
}

// hungKey is a signing key in a hardware module that stops answering
// while hang is set: Sign then waits until release is closed.
type hungKey struct {
	*ecdsa.PrivateKey
	hang    *atomic.Bool
	release chan struct{}
}

func (k hungKey) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if k.hang.Load() {
		<-k.release
	}
	return k.PrivateKey.Sign(r, digest, opts)
}

// TestBackchannelLogoutSignerHangs: a logout token due to be signed anew
// while the signer hangs fails that attempt when the attempt's time is
// up, and is retried on the schedule: the worker is free to go on, and
// the logout is not dropped.
func TestBackchannelLogoutSignerHangs(t *testing.T) {
	h := newHarness(t)
	rp := newBackchannelRP(t, http.StatusOK)
	h.setBackchannel(map[string]string{bankID: rp.srv.URL, taxID: ""})
	h.logOutOfBankAndTax()

	k, err := newHarnessKey()
	if err != nil {
		t.Fatal(err)
	}
	var hang atomic.Bool
	release := make(chan struct{})
	// The module answers at last after 5 s, which an attempt bounded by
	// its timeout never waits for.
	time.AfterFunc(5*time.Second, func() { close(release) })
	if h.p.Signer, err = keys.New(hungKey{k, &hang, release}, nil); err != nil {
		t.Fatal(err)
	}
	hang.Store(true)
	h.clock.Add(time.Minute) // past 30 s: the attempt signs the token anew
	worker := h.logoutWorker(webhook.Config{AttemptTimeout: 200 * time.Millisecond, Lease: time.Second, Jitter: -1})
	deliver := func() {
		t.Helper()
		start := time.Now()
		if _, err := worker.DeliverDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("DeliverDue took %v: it waited for the hung signer", took.Round(time.Second))
		}
	}
	deliver()
	d := h.deliveries(bankID)[0]
	if d.Attempts != 1 || !d.AbandonedAt.IsZero() || !d.DeliveredAt.IsZero() || d.LastError != "renew: timeout after 200ms" ||
		!d.NextAttemptAt.Equal(h.clock.Now().Add(worker.Config().FirstRetry)) || len(rp.posts()) != 0 {
		t.Fatalf("after the signer hung: attempts %d, abandoned %v, delivered %v, error %q, next %v, %d POSTs",
			d.Attempts, d.AbandonedAt, d.DeliveredAt, d.LastError, d.NextAttemptAt, len(rp.posts()))
	}

	// The module answers again; the hung signature is still stuck, and
	// the retry signs on its own.
	hang.Store(false)
	h.clock.Add(worker.Config().FirstRetry)
	deliver()
	if e := h.deliveries(bankID)[0]; e.Attempts != 2 || e.DeliveredAt.IsZero() || len(rp.posts()) != 1 ||
		"logout_token="+url.QueryEscape(rp.posts()[0].token) == string(d.Payload) {
		t.Errorf("after the signer came back: attempts %d, delivered %v, %d POSTs (want one, with the token signed anew)",
			e.Attempts, e.DeliveredAt, len(rp.posts()))
	}
}

// TestRenewLogoutTokenRefusesWhatIsNotOne: a payload that is not a
// logout token form cannot be renewed, and says so with
// ErrNotLogoutDelivery; the outbox abandons such a delivery rather than
// send it.
func TestRenewLogoutTokenRefusesWhatIsNotOne(t *testing.T) {
	h := newHarness(t)
	for _, payload := range []string{"", "logout_token=", "logout_token=a.b.c", "x=1", "logout_token=a&logout_token=b", "%zz"} {
		if out, err := h.p.RenewLogoutToken([]byte(payload), h.clock.Now()); !errors.Is(err, ErrNotLogoutDelivery) {
			t.Errorf("RenewLogoutToken(%q) = %q, %v; want ErrNotLogoutDelivery", payload, out, err)
		}
	}
}

// failingKey is a signing key in a hardware module that fails while
// down is set.
type failingKey struct {
	*ecdsa.PrivateKey
	down *atomic.Bool
}

func (k failingKey) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if k.down.Load() {
		return nil, errors.New("pkcs11: CKR_DEVICE_ERROR")
	}
	return k.PrivateKey.Sign(r, digest, opts)
}

// TestRenewLogoutTokenSignerFails: a token that needs signing anew while
// the signer fails gives an error that is not ErrNotLogoutDelivery, so
// the outbox tries again later instead of dropping the logout; once the
// signer works, the same payload is renewed.
func TestRenewLogoutTokenSignerFails(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c, _ := h.db.GetClient(ctx, bankID)
	k, err := newHarnessKey()
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	signer, err := keys.New(failingKey{k, &down}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.p.Signer = signer
	_, toks, err := h.p.logoutTokens(context.Background(), []*store.Client{c}, &store.Session{ID: "s1", PersonID: h.person.ID}, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	payload := logoutForm(toks[0])
	down.Store(true)
	later := h.clock.Now().Add(time.Minute)
	if out, err := h.p.RenewLogoutToken(payload, later); err == nil || errors.Is(err, ErrNotLogoutDelivery) {
		t.Fatalf("RenewLogoutToken with the signer down = %q, %v; want an error other than ErrNotLogoutDelivery", out, err)
	}
	down.Store(false)
	if out, err := h.p.RenewLogoutToken(payload, later); err != nil || string(out) == string(payload) {
		t.Errorf("RenewLogoutToken with the signer back = %q, %v; want a renewed token", out, err)
	}
}

// failingSettle is the store as the logout outbox, except that settling
// an end fails while fail is set: a database that refuses the write that
// queues the logout tokens.
type failingSettle struct {
	LogoutOutbox
	fail atomic.Bool
}

func (f *failingSettle) SettleSessionEnd(ctx context.Context, id string, ds []*store.WebhookDelivery) (bool, error) {
	if f.fail.Load() {
		return false, errors.New("disk full")
	}
	return f.LogoutOutbox.SettleSessionEnd(ctx, id, ds)
}

// TestBackchannelLogoutLeftOver: a session ends in one write that also
// records its end, so a relying party is told of the logout even when the
// node that ended the session never queued the logout tokens: it stopped
// right after the write, or the write queueing them failed. Housekeeping
// (SettleLeftoverEnds) queues them once the end is LeftoverEndsAfter old,
// with the sub and sid the relying party knows, and only once, whichever
// node gets there.
func TestBackchannelLogoutLeftOver(t *testing.T) {
	for _, how := range []string{"node stopped", "write failed"} {
		t.Run(how, func(t *testing.T) {
			h := newHarness(t)
			h.withBackchannel()
			outbox := &failingSettle{LogoutOutbox: h.db}
			h.p.LogoutOutbox = outbox
			switch how {
			case "node stopped":
				h.sessions.Ended = nil // the hook never runs
			case "write failed":
				outbox.fail.Store(true)
			}
			b := h.browser()
			lBank := h.loginBank(h.rp(bankID, bankCB), b)
			lTax := h.rp(taxID, taxCB).loginFront(b, oauth2.SetAuthURLParam("acr_values", assurance.ACRSubstantial))
			resp, _ := b.confirmLogout(nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("logout: %d", resp.StatusCode)
			}
			if n := len(h.deliveries(bankID)) + len(h.deliveries(taxID)); n != 0 {
				t.Fatalf("%d deliveries queued at logout, want none in this failure", n)
			}
			outbox.fail.Store(false)
			ctx := context.Background()
			ended := h.clock.Now()

			// Too fresh: the node that ended it may be settling it now.
			h.clock.Add(LeftoverEndsAfter - time.Second)
			if n, err := h.p.SettleLeftoverEnds(ctx, h.clock.Now()); n != 0 || err != nil {
				t.Fatalf("SettleLeftoverEnds within %v of the end = %d, %v; want 0", LeftoverEndsAfter, n, err)
			}
			h.clock.Add(2 * time.Second)
			if n, err := h.p.SettleLeftoverEnds(ctx, h.clock.Now()); n != 1 || err != nil {
				t.Fatalf("SettleLeftoverEnds = %d, %v; want the one session", n, err)
			}
			for _, lt := range []logoutToken{
				h.toldOnce(bankID, lBank.claims.Sub, lBank.claims.SID),
				h.toldOnce(taxID, lTax.claims.Sub, lTax.claims.SID),
			} {
				if iat := lt.num(t, "iat"); iat < ended.Unix() {
					t.Errorf("%s: iat %d before the end", lt.str(t, "aud"), iat)
				}
			}
			ends := func(result string) float64 {
				return h.counter("varde_backchannel_logout_session_ends_total", map[string]string{"result": result})
			}
			wantFailed := map[string]float64{"node stopped": 0, "write failed": 1}[how]
			if ends("settled_late") != 1 || ends("failed") != wantFailed || ends("settled") != 0 {
				t.Errorf("session ends counted: settled %v, settled_late %v, failed %v; want 0, 1, %v",
					ends("settled"), ends("settled_late"), ends("failed"), wantFailed)
			}
			// Settled: the next round, or another node's, queues nothing.
			h.clock.Add(time.Minute)
			if n, err := h.p.SettleLeftoverEnds(ctx, h.clock.Now()); n != 0 || err != nil {
				t.Errorf("SettleLeftoverEnds again = %d, %v; want 0", n, err)
			}
			if n := len(h.deliveries(bankID)); n != 1 {
				t.Errorf("bank has %d deliveries after a second round, want 1", n)
			}
		})
	}
}

// TestBackchannelLogoutSettledOnce: the node that ended a session settles
// its end itself, so housekeeping later finds nothing left.
func TestBackchannelLogoutSettledOnce(t *testing.T) {
	h := newHarness(t)
	h.withBackchannel()
	b := h.browser()
	h.loginBank(h.rp(bankID, bankCB), b)
	resp, _ := b.confirmLogout(nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if n := len(h.deliveries(bankID)); n != 1 {
		t.Fatalf("%d deliveries at logout, want 1", n)
	}
	if n := h.counter("varde_backchannel_logout_session_ends_total", map[string]string{"result": "settled"}); n != 1 {
		t.Errorf("session ends settled at logout: %v, want 1", n)
	}
	h.clock.Add(time.Hour)
	if n, err := h.p.SettleLeftoverEnds(context.Background(), h.clock.Now()); n != 0 || err != nil {
		t.Errorf("SettleLeftoverEnds after a settled logout = %d, %v; want 0", n, err)
	}
	if n := len(h.deliveries(bankID)); n != 1 {
		t.Errorf("%d deliveries, want still 1", n)
	}
}

// TestBackchannelLogoutBrowserGone: a browser that hangs up right after
// the logout ended its session (the request's context is done when the
// relying parties are to be told) does not leave the logout tokens to
// housekeeping: they are queued at once all the same.
func TestBackchannelLogoutBrowserGone(t *testing.T) {
	h := newHarness(t)
	h.withBackchannel()
	ended := h.sessions.Ended
	h.sessions.Ended = func(ctx context.Context, why string, ss []*store.Session) {
		gone, hangUp := context.WithCancel(ctx)
		hangUp()
		ended(gone, why, ss)
	}
	b := h.browser()
	h.loginBank(h.rp(bankID, bankCB), b)
	resp, _ := b.confirmLogout(nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if n := len(h.deliveries(bankID)); n != 1 {
		t.Fatalf("%d deliveries at a logout whose browser hung up, want 1", n)
	}
	if n := h.counter("varde_backchannel_logout_session_ends_total", map[string]string{"result": "settled"}); n != 1 {
		t.Errorf("session ends settled at logout: %v, want 1", n)
	}
}

// endingFirst records a session's clients in the store, but ends the
// session first, as a logout in another tab at that moment would.
type endingFirst struct {
	db  *sqlstore.DB
	now func() time.Time
}

func (e endingFirst) AddSessionClient(ctx context.Context, id, clientID string, ev *store.AuditEvent) error {
	if _, err := e.db.EndSession(ctx, id, e.now()); err != nil {
		return err
	}
	return e.db.AddSessionClient(ctx, id, clientID, ev)
}

// TestNoCodeInASessionThatEnded: a session that ends between being read
// and listing the client it gives a code to (a logout in another tab)
// hands out no code: the client would never hear of the end, which its
// relying parties were told of already. The person is told to start
// again.
func TestNoCodeInASessionThatEnded(t *testing.T) {
	h := newHarness(t)
	tax, mobile := h.rp(taxID, taxCB), h.rp(mobileID, mobileCB)
	b := h.browser()
	tax.loginFront(b)
	h.p.SessionClients = endingFirst{h.db, h.clock.Now}
	resp, body := b.get(mobile.authorizeURL("s", "n", oauth2.GenerateVerifier()))
	if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, mobileCB) || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("SSO in a session that ended: %d, Location %q\n%s", resp.StatusCode, loc, body)
	}
	if !strings.Contains(body, "start again") && !strings.Contains(body, "start på nytt") {
		t.Errorf("page does not say to start again:\n%s", body)
	}
}

// TestNoConsentRecordedWhenNoCode: a code withheld because the session
// ended meanwhile leaves no consent event, since nothing was released to
// the client.
func TestNoConsentRecordedWhenNoCode(t *testing.T) {
	h := newHarness(t)
	tax, mobile := h.rp(taxID, taxCB), h.rp(mobileID, mobileCB)
	b := h.browser()
	tax.loginFront(b)
	h.p.SessionClients = endingFirst{h.db, h.clock.Now}
	resp, _ := b.get(mobile.authorizeURL("s", "n", oauth2.GenerateVerifier()))
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	for _, e := range h.auditEvents("consent") {
		if e.ClientID == mobileID {
			t.Errorf("consent to %s recorded, but no code was handed out: %+v", mobileID, e)
		}
	}
}

// TestBackchannelLogoutSignerHangsAtTheEnd: a signer that stops
// answering when a session ends holds up neither the logout nor
// housekeeping for longer than LogoutSignTimeout: the signature is given
// up on and counted, at most one is left running, and the end stays
// pending until the signer answers again, when housekeeping settles it.
func TestBackchannelLogoutSignerHangsAtTheEnd(t *testing.T) {
	h := newHarness(t)
	h.withBackchannel()
	h.p.LogoutSignTimeout = 200 * time.Millisecond
	k, err := newHarnessKey()
	if err != nil {
		t.Fatal(err)
	}
	var hang atomic.Bool
	release := make(chan struct{})
	released := sync.OnceFunc(func() { close(release) })
	t.Cleanup(released)
	// The module answers at last after 5 s, which nothing bounded waits
	// for.
	time.AfterFunc(5*time.Second, released)
	b := h.browser()
	lBank := h.loginBank(h.rp(bankID, bankCB), b)
	lTax := h.rp(taxID, taxCB).loginFront(b, oauth2.SetAuthURLParam("acr_values", assurance.ACRSubstantial))

	working := h.p.Signer
	if h.p.Signer, err = keys.New(hungKey{k, &hang, release}, nil); err != nil {
		t.Fatal(err)
	}
	hang.Store(true)
	start := time.Now()
	resp, _ := b.confirmLogout(nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("logout took %v: it waited for the hung signer", took.Round(time.Second))
	}
	if n := len(h.deliveries(bankID)) + len(h.deliveries(taxID)); n != 0 {
		t.Fatalf("%d deliveries queued with the signer hung, want none", n)
	}
	abandoned := func() float64 { return h.counter("varde_backchannel_logout_signatures_abandoned_total", nil) }
	if a := abandoned(); a != 1 {
		t.Errorf("signatures abandoned = %v, want 1", a)
	}

	// Housekeeping with the signer still hung waits for the one signature
	// left running, within the bound, and leaves the end pending.
	ctx := context.Background()
	h.clock.Add(LeftoverEndsAfter + time.Second)
	start = time.Now()
	if n, err := h.p.SettleLeftoverEnds(ctx, h.clock.Now()); n != 0 || err == nil {
		t.Errorf("SettleLeftoverEnds with the signer hung = %d, %v; want 0 and an error", n, err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("SettleLeftoverEnds took %v: it waited for the hung signer", took.Round(time.Second))
	}
	if a := abandoned(); a != 1 {
		t.Errorf("signatures abandoned = %v, want still 1: one is left running at most", a)
	}

	// The module answers again (the key set knows the working key).
	hang.Store(false)
	released()
	h.p.Signer = working
	if n, err := h.p.SettleLeftoverEnds(ctx, h.clock.Now()); n != 1 || err != nil {
		t.Fatalf("SettleLeftoverEnds with the signer back = %d, %v; want the one session", n, err)
	}
	h.toldOnce(bankID, lBank.claims.Sub, lBank.claims.SID)
	h.toldOnce(taxID, lTax.claims.Sub, lTax.claims.SID)
}

// refusingSettle is the store as the logout outbox, except that settling
// the ends of the sessions in refuse with logout tokens fails: ends the
// store keeps refusing to settle, whatever the reason, though it forgets
// them when told to.
type refusingSettle struct {
	LogoutOutbox
	refuse map[string]bool
}

func (f *refusingSettle) SettleSessionEnd(ctx context.Context, id string, ds []*store.WebhookDelivery) (bool, error) {
	if f.refuse[id] && len(ds) > 0 {
		return false, errors.New("disk full")
	}
	return f.LogoutOutbox.SettleSessionEnd(ctx, id, ds)
}

// TestBackchannelLogoutLeftOverPastFailures: ends that cannot be settled,
// more of them than housekeeping reads at a time, do not keep the newer
// ones behind them from being settled; they stay pending for the next
// round, counted, and the round says how many in one error.
func TestBackchannelLogoutLeftOverPastFailures(t *testing.T) {
	h := newHarness(t)
	h.withBackchannel()
	ctx := context.Background()
	outbox := &refusingSettle{LogoutOutbox: h.db, refuse: map[string]bool{}}
	h.p.LogoutOutbox = outbox
	end := func(id string) {
		t.Helper()
		now := h.clock.Now()
		s := &store.Session{ID: id, PersonID: h.person.ID, Provider: "passkey", Level: "substantial",
			AuthTime: now, Clients: []string{bankID}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := h.db.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		if _, err := h.db.EndSession(ctx, id, now); err != nil {
			t.Fatal(err)
		}
		h.clock.Add(time.Millisecond)
	}
	const bad, good = 2*settleEndsBatch + 10, 5
	for i := range bad {
		id := fmt.Sprintf("bad-%03d", i)
		outbox.refuse[id] = true
		end(id)
	}
	for i := range good {
		end(fmt.Sprintf("good-%d", i))
	}
	h.clock.Add(LeftoverEndsAfter + time.Second)
	n, err := h.p.SettleLeftoverEnds(ctx, h.clock.Now())
	if n != good || err == nil || !strings.Contains(err.Error(), fmt.Sprint(bad, " ended sessions")) {
		t.Errorf("SettleLeftoverEnds = %d, %v; want %d settled and an error naming %d left", n, err, good, bad)
	}
	if got := len(h.deliveries(bankID)); got != good {
		t.Errorf("%d logout tokens queued, want %d", got, good)
	}
	if f := h.counter("varde_backchannel_logout_session_ends_total", map[string]string{"result": "failed"}); f != bad {
		t.Errorf("failed ends counted %v, want %d", f, bad)
	}
	left, err := h.db.PendingSessionEnds(ctx, h.clock.Now().Add(time.Hour), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != bad {
		t.Errorf("%d ends still pending, want the %d that failed", len(left), bad)
	}
}

// TestBackchannelLogoutGivesUpOnEnd: an end that keeps failing is tried
// again a minute later, then two, doubling, not every round, and behind
// the newer ends; after maxEndAttempts failures it is given up on, with
// an error log and an audit event naming the session and its clients,
// and is no longer pending.
func TestBackchannelLogoutGivesUpOnEnd(t *testing.T) {
	var logs syncBuffer
	h := newHarness(t)
	h.withBackchannel()
	h.p.Log = slog.New(slog.NewTextHandler(&logs, nil))
	ctx := context.Background()
	outbox := &refusingSettle{LogoutOutbox: h.db, refuse: map[string]bool{"stuck": true}}
	h.p.LogoutOutbox = outbox
	now := h.clock.Now()
	s := &store.Session{ID: "stuck", PersonID: h.person.ID, Provider: "passkey", Level: "substantial",
		AuthTime: now, Clients: []string{bankID, taxID}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := h.db.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.EndSession(ctx, s.ID, now); err != nil {
		t.Fatal(err)
	}
	failed := func() float64 {
		return h.counter("varde_backchannel_logout_session_ends_total", map[string]string{"result": "failed"})
	}
	h.clock.Add(LeftoverEndsAfter + time.Second)
	for n := 1; n <= maxEndAttempts; n++ {
		if _, err := h.p.SettleLeftoverEnds(ctx, h.clock.Now()); err == nil {
			t.Fatalf("attempt %d: no error", n)
		}
		if f := failed(); f != float64(n) {
			t.Fatalf("after attempt %d: %v failures counted", n, f)
		}
		// Not tried again before its time.
		h.clock.Add(endRetryAfter(n) - time.Second)
		if _, err := h.p.SettleLeftoverEnds(ctx, h.clock.Now()); err != nil || failed() != float64(n) {
			t.Fatalf("attempt %d: tried again %v after it failed: %v", n, endRetryAfter(n)-time.Second, err)
		}
		h.clock.Add(2 * time.Second)
	}
	if left, err := h.db.PendingSessionEnds(ctx, h.clock.Now().Add(24*time.Hour), 10); err != nil || len(left) != 0 {
		t.Errorf("pending after %d failures: %d, %v; want none", maxEndAttempts, len(left), err)
	}
	if g := h.counter("varde_backchannel_logout_session_ends_total", map[string]string{"result": "given_up"}); g != 1 {
		t.Errorf("given up counted %v, want 1", g)
	}
	l := logs.String()
	if !strings.Contains(l, "back-channel logout given up") || !strings.Contains(l, "stuck") ||
		!strings.Contains(l, bankID) || !strings.Contains(l, taxID) {
		t.Errorf("no log naming the session given up on and its clients:\n%s", l)
	}
	ev := h.auditEvents("backchannel_logout")
	if len(ev) != 1 || ev[0].Result != store.ResultFailure || ev[0].Reason != "given_up" || ev[0].PersonID != h.person.ID ||
		ev[0].Details["session"] != "stuck" || ev[0].Details["clients"] != bankID+" "+taxID ||
		ev[0].Details["attempts"] != fmt.Sprint(maxEndAttempts) {
		t.Errorf("audit events for the end given up on: %+v; want one naming its person, session, clients and attempts", ev)
	}
	if _, err := h.p.SettleLeftoverEnds(ctx, h.clock.Now().Add(24*time.Hour)); err != nil || failed() != maxEndAttempts {
		t.Errorf("an end given up on is tried again: %v, %v failures", err, failed())
	}
}

// slowSettle is the real outbox whose SettleSessionEnd waits for its
// caller's context to end first, as a store does that is slow past a
// housekeeping round's deadline.
type slowSettle struct{ LogoutOutbox }

func (f slowSettle) SettleSessionEnd(ctx context.Context, id string, ds []*store.WebhookDelivery) (bool, error) {
	<-ctx.Done()
	return false, ctx.Err()
}

// TestBackchannelLogoutRoundCutShort: an end whose settling the round's
// deadline interrupts is not a failure of that end: it is neither
// counted as failed nor deferred (its attempts stay 0, and it is due at
// once in the next round).
func TestBackchannelLogoutRoundCutShort(t *testing.T) {
	h := newHarness(t)
	h.withBackchannel()
	ctx := context.Background()
	s := h.endedSession("cut", bankID)
	h.clock.Add(LeftoverEndsAfter + time.Second)
	h.p.LogoutOutbox = slowSettle{h.db}
	rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if n, err := h.p.SettleLeftoverEnds(rctx, h.clock.Now()); n != 0 || err == nil || !strings.Contains(err.Error(), "round stopped") {
		t.Errorf("SettleLeftoverEnds = %d, %v; want 0 and the round stopped", n, err)
	}
	if f := h.counter("varde_backchannel_logout_session_ends_total", map[string]string{"result": "failed"}); f != 0 {
		t.Errorf("the interrupted end was counted failed %v times", f)
	}
	left, err := h.db.PendingSessionEnds(ctx, h.clock.Now(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].ID != s.ID {
		t.Fatalf("pending now: %v; want the interrupted end due at once", left)
	}
	h.p.LogoutOutbox = h.db
	if n, err := h.p.SettleLeftoverEnds(ctx, h.clock.Now()); n != 1 || err != nil {
		t.Errorf("next round: %d, %v; want it settled", n, err)
	}
}

// gatheringKey signs only once want signatures are under way at the
// same time (or, once that happened, at once): a signer that is slow
// enough that one at a time would add up. Signed one at a time, the
// first gives up after a while, failing.
type gatheringKey struct {
	*ecdsa.PrivateKey
	want int

	mu       sync.Mutex
	inFlight int
	most     int
	gathered chan struct{}
}

func (k *gatheringKey) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	k.mu.Lock()
	k.inFlight++
	k.most = max(k.most, k.inFlight)
	if k.inFlight == k.want {
		select {
		case <-k.gathered:
		default:
			close(k.gathered)
		}
	}
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		k.inFlight--
		k.mu.Unlock()
	}()
	select {
	case <-k.gathered:
		return k.PrivateKey.Sign(r, digest, opts)
	case <-time.After(5 * time.Second):
		return nil, errors.New("signed one at a time")
	}
}

// TestBackchannelLogoutSignsAtOnce: the logout tokens of a session with
// many relying parties are signed several at once, never more than
// logoutSignConcurrency, so a slow signer's time is not paid once per
// relying party.
func TestBackchannelLogoutSignsAtOnce(t *testing.T) {
	h := newHarness(t)
	h.withBackchannel()
	h.p.LogoutSignTimeout = time.Minute
	ctx := context.Background()
	bank, err := h.db.GetClient(ctx, bankID)
	if err != nil {
		t.Fatal(err)
	}
	clients := []string{bankID, taxID}
	for i := range 2 * logoutSignConcurrency {
		c := *bank
		c.ID = fmt.Sprintf("rp-%d", i)
		if err := h.db.PutClient(ctx, &c); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c.ID)
	}
	k, err := newHarnessKey()
	if err != nil {
		t.Fatal(err)
	}
	key := &gatheringKey{PrivateKey: k, want: logoutSignConcurrency, gathered: make(chan struct{})}
	if h.p.Signer, err = keys.New(key, nil); err != nil {
		t.Fatal(err)
	}
	now := h.clock.Now()
	s := &store.Session{ID: "many", PersonID: h.person.ID, Provider: "passkey", Level: "substantial",
		AuthTime: now, Clients: clients, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := h.db.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.EndSession(ctx, s.ID, now); err != nil {
		t.Fatal(err)
	}
	n, settled, err := h.p.BackchannelLogout(ctx, s)
	if err != nil || !settled || n != len(clients) {
		t.Fatalf("BackchannelLogout = %d, %v, %v; want %d tokens queued", n, settled, err, len(clients))
	}
	if key.most != logoutSignConcurrency {
		t.Errorf("at most %d signatures at once, want %d", key.most, logoutSignConcurrency)
	}
	for _, id := range clients {
		if got := len(h.deliveries(id)); got != 1 {
			t.Errorf("%s: %d logout tokens queued, want 1", id, got)
		}
	}
}

// settledElsewhere is refusingSettle whose giving up on an end finds it
// settled already, as when another node gave up on it moments before.
type settledElsewhere struct{ *refusingSettle }

func (f settledElsewhere) SettleSessionEnd(ctx context.Context, id string, ds []*store.WebhookDelivery) (bool, error) {
	if len(ds) == 0 {
		if _, err := f.refusingSettle.SettleSessionEnd(ctx, id, nil); err != nil {
			return false, err
		}
		return false, nil
	}
	return f.refusingSettle.SettleSessionEnd(ctx, id, ds)
}

// TestBackchannelLogoutGivenUpOnElsewhere: an end another node gave up
// on first is neither counted nor audited as given up by this one, so
// the audit trail and the counter hold it once.
func TestBackchannelLogoutGivenUpOnElsewhere(t *testing.T) {
	h := newHarness(t)
	h.withBackchannel()
	ctx := context.Background()
	h.p.LogoutOutbox = settledElsewhere{&refusingSettle{LogoutOutbox: h.db, refuse: map[string]bool{"stuck": true}}}
	h.endedSession("stuck", bankID)
	h.clock.Add(LeftoverEndsAfter + time.Second)
	for n := 1; n <= maxEndAttempts; n++ {
		if _, err := h.p.SettleLeftoverEnds(ctx, h.clock.Now()); err == nil {
			t.Fatalf("attempt %d: no error", n)
		}
		h.clock.Add(endRetryAfter(n) + time.Second)
	}
	if left, err := h.db.PendingSessionEnds(ctx, h.clock.Now().Add(24*time.Hour), 10); err != nil || len(left) != 0 {
		t.Fatalf("pending after %d failures: %d, %v; want none", maxEndAttempts, len(left), err)
	}
	if g := h.counter("varde_backchannel_logout_session_ends_total", map[string]string{"result": "given_up"}); g != 0 {
		t.Errorf("given up counted %v here, want 0: another node gave up on it", g)
	}
	if ev := h.auditEvents("backchannel_logout"); len(ev) != 0 {
		t.Errorf("audited here as given up: %+v", ev)
	}
}

// endedSession stores a session of the harness's person with clients,
// ended now, its end pending.
func (h *harness) endedSession(id string, clients ...string) *store.Session {
	h.t.Helper()
	ctx := context.Background()
	now := h.clock.Now()
	s := &store.Session{ID: id, PersonID: h.person.ID, Provider: "passkey", Level: "substantial",
		AuthTime: now, Clients: clients, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := h.db.CreateSession(ctx, s); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.db.EndSession(ctx, s.ID, now); err != nil {
		h.t.Fatal(err)
	}
	return s
}

// TestBackchannelLogoutAtIdleTimeout: a single sign-on session left
// unused for the idle timeout ends for its relying parties too
// (Back-Channel Logout 1.0 §2.7: a session ended for any reason,
// expiry included). The sweep deletes it and records its end in one
// write, housekeeping queues the logout token, and the outbox's worker
// POSTs it to the bank's endpoint over loopback: signed with a key of
// the issuer's JWKS, with the iss, aud, sub and sid the bank knows, the
// back-channel logout event and no nonce. The tax office, which
// registered no URI, is not told. The person, back a moment later,
// finds no session: a new login begins a new one, with a sid of its
// own, and nobody is told twice.
func TestBackchannelLogoutAtIdleTimeout(t *testing.T) {
	h := newHarness(t)
	const idle = 30 * time.Minute
	h.sessions.IdleTimeout = idle
	h.db.SetSessionIdleTimeout(idle)
	bankRP := newBackchannelRP(t, http.StatusOK)
	h.setBackchannel(map[string]string{bankID: bankRP.srv.URL + "/bcl"})
	worker := h.logoutWorker(webhook.Config{Jitter: -1})
	ctx := context.Background()
	housekeep := func() {
		t.Helper()
		if _, err := h.db.DeleteExpired(ctx, h.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := h.p.SettleLeftoverEnds(ctx, h.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := worker.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
	}

	b := h.browser()
	lBank := h.loginBank(h.rp(bankID, bankCB), b)
	tax := h.rp(taxID, taxCB)
	lTax := tax.loginFront(b, oauth2.SetAuthURLParam("acr_values", assurance.ACRSubstantial))
	h.clock.Add(idle - time.Second)
	housekeep()
	if n := len(bankRP.posts()); n != 0 {
		t.Fatalf("the bank got %d logout tokens while the session was live", n)
	}
	h.clock.Add(time.Minute)
	housekeep()

	got := bankRP.posts()
	if len(got) != 1 || got[0].path != "/bcl" || got[0].contentType != LogoutContentType {
		t.Fatalf("the bank's endpoint got %+v, want one logout token", got)
	}
	lt := h.verifyLogoutToken(&store.WebhookDelivery{Payload: logoutForm(got[0].token)})
	if lt.typ != LogoutTokenTyp || lt.str(t, "iss") != h.issuer || lt.str(t, "aud") != bankID ||
		lt.str(t, "sub") != lBank.claims.Sub || lt.str(t, "sid") != lBank.claims.SID {
		t.Errorf("logout token typ %q, claims iss %s aud %s sub %s sid %s; want %s, %s, %s, %s", lt.typ,
			lt.claims["iss"], lt.claims["aud"], lt.claims["sub"], lt.claims["sid"], h.issuer, bankID, lBank.claims.Sub, lBank.claims.SID)
	}
	if _, ok := lt.claims["nonce"]; ok || string(lt.claims["events"]) != `{"`+BackchannelLogoutEvent+`":{}}` {
		t.Errorf("logout token claims %s, events %s", keysOf(lt.claims), lt.claims["events"])
	}
	if n := len(h.deliveries(taxID)); n != 0 {
		t.Errorf("%d deliveries to the tax office, which registered no URI", n)
	}
	ends := func(result string) float64 {
		return h.counter("varde_backchannel_logout_session_ends_total", map[string]string{"result": result})
	}
	if ends("settled_timed_out") != 1 || ends("settled_late") != 0 {
		t.Errorf("session ends counted: settled_timed_out %v, settled_late %v; want 1, 0", ends("settled_timed_out"), ends("settled_late"))
	}
	events := h.auditEvents(store.EventSessionExpired)
	if len(events) != 1 || events[0].Reason != store.EndIdle || events[0].PersonID != h.person.ID {
		t.Errorf("session_expired events %+v, want one, idle, of the person", events)
	}

	// The person comes back: a login, not the ended session.
	logins := h.logins.Load()
	again := tax.loginFront(b, oauth2.SetAuthURLParam("acr_values", assurance.ACRSubstantial))
	if h.logins.Load() != logins+1 || again.claims.SID == "" || again.claims.SID == lTax.claims.SID {
		t.Errorf("back after the idle timeout: %d new logins, sid %q (the ended session's %q)", h.logins.Load()-logins, again.claims.SID, lTax.claims.SID)
	}
	h.clock.Add(time.Minute)
	housekeep()
	if n := len(bankRP.posts()); n != 1 {
		t.Errorf("the bank got %d logout tokens in all, want 1", n)
	}
}

package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/providersim"
	"github.com/varde-eid/varde/internal/store"
)

// linkFormToken finds the token of the account page's form that links
// providerID.
func linkFormToken(t *testing.T, page, providerID string) string {
	t.Helper()
	re := regexp.MustCompile(`<form method="post" action="/account/link">\s*<input type="hidden" name="csrf" value="([^"]+)"><input type="hidden" name="provider" value="` +
		regexp.QuoteMeta(providerID) + `">`)
	m := re.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the account page offers no link to %s:\n%s", providerID, page)
	}
	return m[1]
}

// linkVia links providerID from the account page of the browser's
// session, logging in at the simulated eID as number; it returns where the
// browser ended and the page there.
func (f *fedRP) linkVia(providerID, number string) (*http.Response, string) {
	f.t.Helper()
	_, page := f.get(f.issuer + "/account")
	token := linkFormToken(f.t, page, providerID)
	res, err := f.http.PostForm(f.issuer+"/account/link", url.Values{"csrf": {token}, "provider": {providerID}})
	if err != nil {
		f.t.Fatal(err)
	}
	res.Body.Close()
	if res.Request.URL.Path != "/sim/login" {
		f.t.Fatalf("link start ended at %s (%d)", res.Request.URL, res.StatusCode)
	}
	simLogin := res.Request.URL
	res, err = f.http.PostForm(simLogin.Scheme+"://"+simLogin.Host+"/sim/login", url.Values{"req": {simLogin.Query().Get("req")}, "number": {number}})
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return res, string(body)
}

// TestLinkingProviders: a person who logged in through Demo MinID links
// Demo BankID, where the simulated person has another identifier; a
// later login through BankID alone is the same person, so the relying
// party gets the same sub. An identifier that is another person's is not
// linked.
func TestLinkingProviders(t *testing.T) {
	d, issuer := startFederatedDemo(t)
	rp := newFedRP(t, d, issuer)
	persons := providersim.DefaultPersons()
	a, b, other := persons[0].Identifier, persons[4].Identifier, persons[1].Identifier
	if b.Scheme == a.Scheme {
		t.Fatalf("the test wants two schemes, got %s twice", a.Scheme)
	}

	// Someone else is already a person at Varde through BankID.
	otherSub := rp.login("bankid", other.Value)["sub"]
	// The person logs in through MinID (substantial).
	viaMinID := rp.login("minid", a.Value)

	// Linking the other person's BankID is refused, plainly.
	res, page := rp.linkVia("bankid", other.Value)
	if res.Request.URL.Path != "/account/link/refused" || res.StatusCode != http.StatusConflict || !containsAny(page, "another person", "en annen person") {
		t.Fatalf("linking another person's identifier ended at %s (%d)", res.Request.URL, res.StatusCode)
	}
	// Linking their own BankID works and says so.
	res, page = rp.linkVia("bankid", b.Value)
	if res.Request.URL.Path != "/account" || res.Request.URL.Query().Get("done") != "linked" || !containsAny(page, "The new way to log in was added", "Den nye måten å logge inn på ble lagt til") {
		t.Fatalf("link ended at %s (%d)", res.Request.URL, res.StatusCode)
	}

	viaBankID := rp.login("bankid", b.Value)
	if viaBankID["sub"] != viaMinID["sub"] {
		t.Errorf("sub after linking: bankid %v, minid %v", viaBankID["sub"], viaMinID["sub"])
	}
	if viaBankID["sub"] == otherSub {
		t.Error("the linked person has the other person's sub")
	}
	if viaBankID["provider"] != "bankid" {
		t.Errorf("provider = %v", viaBankID["provider"])
	}
	// Linked from a substantial login, BankID (high) logs this person in
	// at substantial: the link proved no more.
	if viaBankID["acr"] != viaMinID["acr"] {
		t.Errorf("acr through the linked BankID = %v, want %v (the level of the login that linked it)", viaBankID["acr"], viaMinID["acr"])
	}

	ctx := context.Background()
	pa, err := d.app.Store.GetPersonByIdentifier(ctx, a.Scheme, a.Value)
	if err != nil {
		t.Fatal(err)
	}
	if pb, err := d.app.Store.GetPersonByIdentifier(ctx, b.Scheme, b.Value); err != nil || pb.ID != pa.ID {
		t.Errorf("the linked identifier belongs to %v (%v), want %s", pb, err, pa.ID)
	}
	events, err := d.app.Store.ListAudit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var linked, refused bool
	for _, e := range events {
		if e.Type != "link" {
			continue
		}
		for k, v := range e.Details {
			if strings.Contains(v, b.Value) || strings.Contains(v, other.Value) {
				t.Errorf("link audit detail %s holds an identifier", k)
			}
		}
		switch {
		case e.Result == store.ResultSuccess && e.PersonID == pa.ID && e.Provider == "bankid" && e.Level == "high" && e.Details["session_level"] == "substantial" && e.Details["scheme"] == b.Scheme:
			linked = true
		case e.Result == store.ResultFailure && e.Reason == "identifier_taken" && e.PersonID == pa.ID:
			refused = true
		}
	}
	if !linked || !refused {
		t.Errorf("audit: linked %v, refused %v", linked, refused)
	}
}

// containsAny: the demo's pages speak Norwegian or English, by the
// browser's preference.
func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

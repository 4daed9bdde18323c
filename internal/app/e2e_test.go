package app_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/loadgen"
)

// TestLoginEndToEnd runs the whole flow — discovery, PAR with
// private_key_jwt, authorization, a real WebAuthn assertion, the code
// with iss, the token with PKCE, userinfo, logout — against a real
// node, with go-oidc and x/oauth2 as the relying party, and checks what
// the ID token says: with the issuer at the root of its host, and with
// an issuer with a path, under which the node serves everything.
func TestLoginEndToEnd(t *testing.T) {
	for _, base := range []string{"", "/eid"} {
		t.Run("issuer path "+cmp.Or(base, "none"), func(t *testing.T) { loginEndToEnd(t, base) })
	}
}

func loginEndToEnd(t *testing.T, base string) {
	n := startNodeAtPath(t, base)
	ctx := context.Background()
	bank := n.addRP(t, "bank", "bank.example", "name", "national_id")
	tax := n.addRP(t, "tax", "tax.example")
	shop := n.addRP(t, "shop", "bank.example") // same sector as bank

	device := n.enrol(t, false)
	synced := n.enrol(t, true)

	first, err := bank.Login(ctx, device, loadgen.LoginOptions{ACRValues: assurance.ACRHigh})
	if err != nil {
		t.Fatal(err)
	}
	c := first.Claims
	if c["acr"] != assurance.ACRHigh {
		t.Errorf("acr = %v, want %s (device-bound passkey, synthetic person proofed high)", c["acr"], assurance.ACRHigh)
	}
	if amr, _ := c["amr"].([]any); len(amr) == 0 || amr[0] != "hwk" {
		t.Errorf("amr = %v, want hwk first", c["amr"])
	}
	if c["name"] != "Kari Nordmann" {
		t.Errorf("name = %v", c["name"])
	}
	nid, _ := c["national_id"].(map[string]any)
	if nid["scheme"] != "no:fnr" || len(nid["value"].(string)) != 11 {
		t.Errorf("national_id = %v", c["national_id"])
	}

	again, err := bank.Login(ctx, device, loadgen.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	atTax, err := tax.Login(ctx, device, loadgen.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	atShop, err := shop.Login(ctx, device, loadgen.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := bank.Login(ctx, synced, loadgen.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sub := first.IDToken.Subject
	switch {
	case again.IDToken.Subject != sub:
		t.Error("same person, same RP: sub changed between logins")
	case atShop.IDToken.Subject != sub:
		t.Error("same sector: sub differs")
	case atTax.IDToken.Subject == sub:
		t.Error("different sectors share a sub: relying parties could correlate the person")
	case other.IDToken.Subject == sub:
		t.Error("two persons share a sub")
	}
	if _, ok := atTax.Claims["national_id"]; ok {
		t.Error("national_id released to a client not configured for it")
	}
	if _, ok := atTax.Claims["name"]; ok {
		t.Error("name released to a client not configured for it")
	}
	if other.Claims["acr"] != assurance.ACRSubstantial {
		t.Errorf("synced passkey: acr = %v, want substantial", other.Claims["acr"])
	}

	// A synced passkey cannot reach high: the person is told, not let in.
	_, err = bank.Login(ctx, synced, loadgen.LoginOptions{ACRValues: assurance.ACRHigh})
	if err == nil {
		t.Error("synced passkey reached a login that required high")
	}

	// Userinfo answers with the same sub for the access token.
	req, _ := http.NewRequest(http.MethodGet, n.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+first.AccessToken)
	res, err := n.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var ui map[string]any
	if err := jsonDecode(res, &ui); err != nil || ui["sub"] != sub {
		t.Errorf("userinfo sub = %v (%v), want %s", ui["sub"], err, sub)
	}

	// Logout at the end_session_endpoint discovery names ends the
	// session the browser's cookie holds: the next login is not single
	// sign-on.
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, n.http), n.issuer)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := op.Claims(&meta); err != nil || meta.EndSession != n.issuer+"/logout" {
		t.Fatalf("end_session_endpoint = %q (%v), want %s/logout", meta.EndSession, err, n.issuer)
	}
	jar, _ := cookiejar.New(nil)
	in, err := bank.Login(ctx, device, loadgen.LoginOptions{Jar: jar})
	if err != nil {
		t.Fatal(err)
	}
	if sso, err := bank.Login(ctx, device, loadgen.LoginOptions{Jar: jar}); err != nil || !sso.SSO {
		t.Fatalf("second login in the same browser: sso %v, %v; want single sign-on", sso != nil && sso.SSO, err)
	}
	browser := &http.Client{Jar: jar}
	res, err = browser.Get(meta.EndSession + "?" + url.Values{"id_token_hint": {in.RawIDToken}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	if after, err := bank.Login(ctx, device, loadgen.LoginOptions{Jar: jar}); err != nil || after.SSO {
		t.Errorf("login after logout: sso %v, %v; want a new login", after != nil && after.SSO, err)
	}
}

// TestPhishedAssertionRejected: an assertion made for another origin (a
// look-alike site relaying the challenge) is refused and no code issued.
func TestPhishedAssertionRejected(t *testing.T) {
	n := startNode(t)
	bank := n.addRP(t, "bank", "")
	p := n.enrol(t, false)
	_, err := bank.Login(context.Background(), p, loadgen.LoginOptions{Origin: "https://varde-login.example"})
	var se *loadgen.StepError
	if !errors.As(err, &se) || se.Code != "wrong_origin" {
		t.Fatalf("err = %v, want wrong_origin", err)
	}
	// The genuine origin still works afterwards.
	if _, err := bank.Login(context.Background(), p, loadgen.LoginOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestOperationalEndpoints: health, readiness and metrics answer, and
// metrics count the logins.
func TestOperationalEndpoints(t *testing.T) {
	n := startNode(t)
	bank := n.addRP(t, "bank", "")
	p := n.enrol(t, false)
	if _, err := bank.Login(context.Background(), p, loadgen.LoginOptions{}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/readyz":  "ready",
		"/metrics": `varde_logins_total{acr="high",provider="passkey",result="success"} 1`,
	} {
		res, err := n.http.Get(n.issuer + path)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(res)
		if res.StatusCode != 200 || !strings.Contains(body, want) {
			t.Errorf("%s: %d, body lacks %q", path, res.StatusCode, want)
		}
	}
}

// TestNotFoundPage: an address Varde does not serve gets a page that
// says what to do next, in the person's language.
func TestNotFoundPage(t *testing.T) {
	n := startNode(t)
	for lang, want := range map[string]string{
		"en": "Check the address, or go back to the service you came from.",
		"nb": "Sjekk adressen, eller gå tilbake til tjenesten du kom fra.",
	} {
		req, _ := http.NewRequest(http.MethodGet, n.issuer+"/no-such-page", nil)
		req.Header.Set("Accept-Language", lang)
		res, err := n.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(res); res.StatusCode != http.StatusNotFound || !strings.Contains(body, want) {
			t.Errorf("%s: %d, body lacks %q", lang, res.StatusCode, want)
		}
	}
}

// TestMetricsMethodLabelBounded: a client may send any token as the
// HTTP method; the latency histogram's method label stays within a fixed
// set, so made-up methods cannot add series without end.
func TestMetricsMethodLabelBounded(t *testing.T) {
	n := startNode(t)
	for i := range 5 {
		req, err := http.NewRequest(fmt.Sprintf("X%dSECRET", i), n.issuer+"/nowhere", nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := n.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	res, err := n.http.Get(n.issuer + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(res)
	if strings.Contains(body, "SECRET") || !strings.Contains(body, `method="other"`) {
		t.Errorf("metrics after made-up methods:\n%s", grepLines(body, "varde_http_request_duration_seconds_count"))
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

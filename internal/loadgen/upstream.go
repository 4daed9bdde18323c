package loadgen

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
)

// An Authenticator is what a person does between the authorization
// endpoint's redirect to a login page and the URL that resumes the
// authorization flow at the relying party's provider: a passkey
// ceremony (*Person), a login at a simulated eID (SimLogin), or the
// choice of an upstream eID at Varde's login page and the login there
// (Brokered).
type Authenticator interface {
	// authenticate starts at login (the absolute URL the authorization
	// endpoint redirected to, with its req parameter) and returns where
	// the browser goes next: the relying party's redirect URI with the
	// code, or the provider's /authorize/resume.
	authenticate(ctx context.Context, b *browser, rp *RP, login *url.URL, o LoginOptions) (string, error)
}

var (
	_ Authenticator = (*Person)(nil)
	_ Authenticator = SimLogin{}
	_ Authenticator = Brokered{}
)

// simLoginPath is a simulated eID's login page (package providersim).
const simLoginPath = "/sim/login"

// maxHops bounds the redirects followed inside one authentication.
const maxHops = 10

// SimLogin logs in at a simulated eID (package providersim) directly:
// the relying party is a client of the sim, whose authorization endpoint
// redirects to /sim/login?req=ID; the person posts the synthetic
// national identity number there, as a program may (no Origin header).
type SimLogin struct {
	Number string
}

func (s SimLogin) authenticate(ctx context.Context, b *browser, _ *RP, login *url.URL, _ LoginOptions) (string, error) {
	if login.Path != simLoginPath {
		return "", fmt.Errorf("sim login: authorize redirected to %s, not %s", login.Path, simLoginPath)
	}
	loc, err := postSimLogin(ctx, b, login, s.Number)
	if err != nil {
		return "", err
	}
	return loc.String(), nil
}

// Brokered logs in through an upstream eID that Varde brokers: at
// Varde's login page the person picks Provider (GET
// /login/start?req=ID&provider=…), or the relying party named it in
// provider_hint (LoginOptions.ProviderHint) and Varde's authorization
// endpoint went there at once; Varde sends the browser to the
// upstream, which must be a simulated eID (package providersim); the
// person posts Number at its login page, and the browser follows the
// upstream's redirect back to Varde's callback, where Varde redeems the
// upstream's code and verifies its ID token, and on to the relying party
// with Varde's code.
type Brokered struct {
	Provider string
	Number   string
}

func (br Brokered) authenticate(ctx context.Context, b *browser, rp *RP, login *url.URL, _ LoginOptions) (string, error) {
	issuer, err := url.Parse(rp.Issuer)
	if err != nil {
		return "", err
	}
	start := login.String()
	if login.Host == issuer.Host {
		// Varde's login page, then the person's choice on it.
		res, body, err := b.get(ctx, login.String())
		if err != nil {
			return "", err
		}
		start = "/login/start?" + url.Values{"req": {login.Query().Get("req")}, "provider": {br.Provider}}.Encode()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), html.EscapeString(start)) {
			return "", &StepError{Step: "login page", Status: res.StatusCode, Code: "no choice", Message: "the page does not offer " + br.Provider}
		}
		start = rp.Issuer + start
	}
	// To the upstream's login page: Varde's redirect (after a PAR at the
	// upstream, when configured), then the upstream's authorization
	// endpoint.
	simLogin := login
	if login.Path != simLoginPath {
		simLogin, err = follow(ctx, b, "login start", start, func(u *url.URL) bool {
			return u.Host != issuer.Host && u.Path == simLoginPath
		})
		if err != nil {
			return "", err
		}
	}
	loc, err := postSimLogin(ctx, b, simLogin, br.Number)
	if err != nil {
		return "", err
	}
	// The upstream's /authorize/resume, then Varde's callback, which
	// answers with the relying party's redirect URI and Varde's code (or
	// Varde's /authorize/resume).
	next, err := follow(ctx, b, "upstream callback", loc.String(), func(u *url.URL) bool {
		return strings.HasPrefix(u.String(), rp.RedirectURI+"?") ||
			u.Host == issuer.Host && strings.HasSuffix(u.Path, "/authorize/resume")
	})
	if err != nil {
		return "", err
	}
	return next.String(), nil
}

// follow GETs u and follows redirects until one goes to a URL for which
// done is true, and returns that URL.
func follow(ctx context.Context, b *browser, step, u string, done func(*url.URL) bool) (*url.URL, error) {
	for range maxHops {
		res, body, err := b.get(ctx, u)
		if err != nil {
			return nil, err
		}
		loc, err := res.Location()
		if err != nil {
			return nil, &StepError{Step: step, Status: res.StatusCode, Code: "no redirect", Message: fmt.Sprintf("at %s: %.200s", res.Request.URL.Redacted(), body)}
		}
		if q := loc.Query(); q.Get("error") != "" {
			return nil, &StepError{Step: step, Status: res.StatusCode, Code: q.Get("error"), Message: q.Get("error_description")}
		}
		if done(loc) {
			return loc, nil
		}
		u = loc.String()
	}
	return nil, fmt.Errorf("%s: more than %d redirects", step, maxHops)
}

// postSimLogin posts the person's number at a simulated eID's login page
// and returns the redirect it answers with (its /authorize/resume).
func postSimLogin(ctx context.Context, b *browser, login *url.URL, number string) (*url.URL, error) {
	u := login.Scheme + "://" + login.Host + simLoginPath
	res, body, err := b.postForm(ctx, u, url.Values{"req": {login.Query().Get("req")}, "number": {number}})
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusSeeOther {
		return nil, &StepError{Step: "sim login", Status: res.StatusCode, Code: "refused", Message: fmt.Sprintf("%.200s", body)}
	}
	return res.Location()
}

package oidc

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/store"
)

// FuzzAuthorizeParams checks that no query string makes the shared
// authorization request validation panic or accept a request that breaks
// the rules it enforces.
func FuzzAuthorizeParams(f *testing.F) {
	f.Add(taxQuery(nil).Encode())
	f.Add(taxQuery(func(q url.Values) { q.Set("prompt", "none login"); q.Set("max_age", "99999999999999999999") }).Encode())
	f.Add("response_type=code&scope=openid&code_challenge=" + strings.Repeat("A", 43) + "&code_challenge_method=S256&acr_values=low%20high")
	f.Add("%zz=1&&=&scope=openid openid")
	p := &Provider{}
	c := &store.Client{ID: taxID, RedirectURIs: []string{taxCB, taxCB2}, AllowedLevels: []string{"substantial", "high"}}
	f.Fuzz(func(t *testing.T, query string) {
		form, _ := url.ParseQuery(query)
		target, err := resolveRedirect(c, form)
		if err == nil && !slices.Contains(c.RedirectURIs, target) {
			t.Fatalf("redirect %q is not registered", target)
		}
		req, err := p.validateAuthParams(c, form, target, false)
		if err != nil {
			return
		}
		if req.CodeChallengeMethod != "S256" || len(req.CodeChallenge) != 43 || !slices.Contains(req.Scope, "openid") {
			t.Fatalf("accepted %+v", req)
		}
		if slices.Contains(req.Prompt, "none") && len(req.Prompt) > 1 || req.MaxAge < -1 || len(req.ACRValues) == 0 {
			t.Fatalf("accepted %+v", req)
		}
	})
}

// FuzzTokenForm sends arbitrary bodies to the token endpoint of a real
// provider (SQLite store) as an authenticated client: the answer is
// always a JSON client error, never a 500 and never tokens.
func FuzzTokenForm(f *testing.F) {
	f.Add("grant_type=authorization_code&code=abc&redirect_uri=" + url.QueryEscape(taxCB) + "&code_verifier=" + oauth2.GenerateVerifier())
	f.Add("grant_type=refresh_token&refresh_token=x&scope=openid%20email")
	f.Add("grant_type=client_credentials")
	f.Add("grant_type=authorization_code&grant_type=refresh_token")
	f.Add("client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=a.b.c")
	f.Add("%%%&&&===")
	h := newHarness(f)
	handler := h.srv.Config.Handler
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(taxID, h.secrets[taxID])
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code == 200 || rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if !strings.Contains(rec.Body.String(), `"error"`) {
			t.Fatalf("no error in %s", rec.Body)
		}
	})
}

// FuzzLogoutParams sends arbitrary logout requests: never a 500, and a
// redirect only ever to a registered post-logout URI.
func FuzzLogoutParams(f *testing.F) {
	f.Add("id_token_hint=a.b.c&post_logout_redirect_uri=" + url.QueryEscape(bankBye) + "&client_id=" + bankID)
	f.Add("id_token_hint=eyJhbGciOiJub25lIn0.e30.&state=x")
	f.Add("client_id=" + bankID + "&post_logout_redirect_uri=" + url.QueryEscape(bankBye) + "&state=%zz")
	h := newHarness(f)
	handler := h.srv.Config.Handler
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest(http.MethodGet, PathLogout, nil)
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q", rec.Code, query)
		}
		if loc := rec.Header().Get("Location"); loc != "" && !strings.HasPrefix(loc, bankBye) {
			t.Fatalf("redirect to %q", loc)
		}
	})
}

// FuzzUserinfoHeader sends arbitrary Authorization headers to userinfo.
func FuzzUserinfoHeader(f *testing.F) {
	f.Add("Bearer abc")
	f.Add("bearer ")
	f.Add("Basic Zm9vOmJhcg==")
	f.Add("Bearer " + strings.Repeat("x", 600))
	h := newHarness(f)
	handler := h.srv.Config.Handler
	f.Fuzz(func(t *testing.T, header string) {
		req := httptest.NewRequest(http.MethodGet, PathUserinfo, nil)
		req.Header["Authorization"] = []string{header}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code == 200 || rec.Code >= 500 {
			t.Fatalf("status %d for %q", rec.Code, header)
		}
	})
}

// FuzzClientForms sends arbitrary bodies to the other endpoints a client
// posts forms to, as an authenticated client: PAR answers 201 with a
// request_uri only for a request the authorization endpoint would take,
// revocation 200 or a client error, introspection never finds an
// active token in made-up input; and no answer is a 500.
func FuzzClientForms(f *testing.F) {
	for _, path := range []string{PathPAR, PathRevocation, PathIntrospection} {
		f.Add(path, taxQuery(nil).Encode())
		f.Add(path, "token=abc&token_type_hint=refresh_token")
		f.Add(path, "token=abc&token=def")
		f.Add(path, "request_uri=urn:ietf:params:oauth:request_uri:x&client_id="+taxID)
		f.Add(path, "%%%&&&===")
	}
	h := newHarness(f)
	handler := h.srv.Config.Handler
	c := &store.Client{ID: taxID, RedirectURIs: []string{taxCB, taxCB2}, AllowedLevels: []string{"substantial", "high"}}
	f.Fuzz(func(t *testing.T, path, body string) {
		if path != PathPAR && path != PathRevocation && path != PathIntrospection {
			return
		}
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(taxID, h.secrets[taxID])
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		var answer struct {
			Error      string `json:"error"`
			RequestURI string `json:"request_uri"`
			ExpiresIn  int    `json:"expires_in"`
			Active     *bool  `json:"active"`
		}
		if rec.Code >= 500 || rec.Body.Len() > 0 && json.Unmarshal(rec.Body.Bytes(), &answer) != nil {
			t.Fatalf("%s %q: %d %s", path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			if answer.Error == "" {
				t.Fatalf("%s %q: %d without an error: %s", path, body, rec.Code, rec.Body)
			}
			return
		}
		switch path {
		case PathPAR:
			form, _ := url.ParseQuery(body)
			target, rerr := resolveRedirect(c, form)
			_, verr := (&Provider{}).validateAuthParams(c, form, target, true)
			if rec.Code != http.StatusCreated || answer.RequestURI == "" || answer.ExpiresIn <= 0 || rerr != nil || verr != nil {
				t.Fatalf("PAR took %q: %d %s (%v, %v)", body, rec.Code, rec.Body, rerr, verr)
			}
		case PathIntrospection:
			if rec.Code != http.StatusOK || answer.Active == nil || *answer.Active {
				t.Fatalf("introspection of %q: %d %s", body, rec.Code, rec.Body)
			}
		case PathRevocation:
			if rec.Code != http.StatusOK {
				t.Fatalf("revocation of %q: %d %s", body, rec.Code, rec.Body)
			}
		}
	})
}

// FuzzBrowserEndpoints sends any query, or form, to the endpoints a
// browser reaches (authorize, resume, cancel) from a browser that holds
// no cookie of Varde's: never a 500, and a redirect only to a
// registered redirect URI or to Varde's own pages.
func FuzzBrowserEndpoints(f *testing.F) {
	for _, path := range []string{PathAuthorize, PathResume, PathCancel} {
		f.Add(path, false, taxQuery(nil).Encode())
		f.Add(path, true, taxQuery(nil).Encode())
		f.Add(path, false, "req=abc")
		f.Add(path, true, "req=abc&req=def")
		f.Add(path, false, "client_id="+taxID+"&request_uri=urn:ietf:params:oauth:request_uri:x")
		f.Add(path, false, "client_id="+taxID+"&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&response_type=code")
	}
	h := newHarness(f)
	handler := h.srv.Config.Handler
	registered := []string{bankCB, mobileCB, taxCB, taxCB2, kioskCB}
	f.Fuzz(func(t *testing.T, path string, post bool, params string) {
		if path != PathAuthorize && path != PathResume && path != PathCancel {
			return
		}
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.URL.RawQuery = params
		if post {
			req = httptest.NewRequest(http.MethodPost, path, strings.NewReader(params))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Sec-Fetch-Site", "same-origin")
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: %d %s", path, params, rec.Code, rec.Body)
		}
		loc := rec.Header().Get("Location")
		if loc == "" {
			return
		}
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatalf("%s %q: Location %q: %v", path, params, loc, err)
		}
		target := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
		if u.Host == "" && strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") {
			return
		}
		if !slices.Contains(registered, target) {
			t.Fatalf("%s %q: redirect to %q", path, params, loc)
		}
	})
}

// FuzzUserinfoForm posts arbitrary bodies and queries to userinfo, the
// way RFC 6750 §2.2 lets a bearer token come: no made-up token is
// taken, no answer is a 500, and a refusal says why in
// WWW-Authenticate.
func FuzzUserinfoForm(f *testing.F) {
	f.Add("access_token=abc", "")
	f.Add("access_token=abc&access_token=def", "")
	f.Add("access_token=abc", "access_token=abc")
	f.Add("%zz", "")
	f.Add("", "access_token="+strings.Repeat("x", 600))
	h := newHarness(f)
	handler := h.srv.Config.Handler
	f.Fuzz(func(t *testing.T, body, query string) {
		req := httptest.NewRequest(http.MethodPost, PathUserinfo, strings.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code == 200 || rec.Code >= 500 {
			t.Fatalf("status %d for %q?%q", rec.Code, body, query)
		}
		if rec.Code == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
			t.Fatalf("401 without WWW-Authenticate for %q?%q", body, query)
		}
	})
}

package providersim

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/oidc"
)

// faults wraps the issuer listener's handler with the current fault:
// slow delays every response, failing breaks the endpoints a login
// needs. (Down needs no handler: the listener is closed.)
func (s *Sim) faults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := s.Fault()
		switch f.Mode {
		case ModeSlow:
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		case ModeFailing:
			if s.fail(w, r) {
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// fail answers the request as a failing provider would and reports
// whether it did. Discovery, the JWKS, the resume and cancel steps and
// the sim's own pages keep working, so active probes see the provider up
// and only logins fail.
func (s *Sim) fail(w http.ResponseWriter, r *http.Request) bool {
	switch r.URL.Path {
	case oidc.PathToken, oidc.PathPAR, oidc.PathUserinfo:
		s.cfg.Log.Debug("provider sim failing", "id", s.cfg.ID, "path", r.URL.Path)
		oauth2.WriteError(w, &oauth2.Error{Code: oauth2.CodeServerError, Description: "the provider is failing (simulated)"})
		return true
	case oidc.PathAuthorize:
		s.failAuthorize(w, r)
		return true
	}
	return false
}

// failAuthorize sends the browser back to the client with
// error=server_error (RFC 6749 §4.1.2.1) and iss (RFC 9207 §2), as a
// provider does when it cannot serve a login, so the client can offer
// another way in. As at the real endpoint, it redirects only to a
// redirect URI registered for the client (RFC 9700 §4.11); otherwise the
// person sees an error page.
func (s *Sim) failAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	lang := s.pages.Locale(r, nil)
	if err := r.ParseForm(); err != nil {
		s.pages.Error(w, r, http.StatusInternalServerError, lang, errorPage("internal"))
		return
	}
	c, err := s.cfg.Store.GetClient(ctx, r.Form.Get("client_id"))
	if err != nil {
		s.pages.Error(w, r, http.StatusInternalServerError, lang, errorPage("internal"))
		return
	}
	target, state := r.Form.Get("redirect_uri"), r.Form.Get("state")
	if id, ok := strings.CutPrefix(r.Form.Get("request_uri"), oidc.RequestURIPrefix); ok {
		req, err := s.cfg.Store.GetAuthRequest(ctx, id, s.cfg.Now())
		if err != nil || req.ClientID != c.ID {
			s.pages.Error(w, r, http.StatusInternalServerError, lang, errorPage("internal"))
			return
		}
		target, state = req.RedirectURI, req.State
	}
	if target == "" && len(c.RedirectURIs) == 1 {
		target = c.RedirectURIs[0]
	}
	if !slices.Contains(c.RedirectURIs, target) {
		s.pages.Error(w, r, http.StatusInternalServerError, lang, errorPage("internal"))
		return
	}
	q := url.Values{"error": {oauth2.CodeServerError}, "error_description": {"the provider is failing (simulated)"}, "iss": {s.issuer}}
	if state != "" {
		q.Set("state", state)
	}
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	http.Redirect(w, r, target+sep+q.Encode(), http.StatusSeeOther)
}

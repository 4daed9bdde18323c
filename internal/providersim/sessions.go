package providersim

import (
	"context"
	"net/http"

	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
)

// sessions is a session.Manager under the sim's own cookie name.
//
// Cookies are scoped by host, not port (RFC 6265 §8.5): a sim at
// localhost:9001 and Varde at localhost:8080 would overwrite each
// other's "varde_session" cookie, and logging in at the sim would log
// the person out of Varde. The sim therefore renames the cookie on the
// way out and back on the way in.
type sessions struct {
	m      *session.Manager
	cookie string
}

// Start starts s like session.Manager.Start, under the sim's cookie.
func (s *sessions) Start(ctx context.Context, w http.ResponseWriter, r *http.Request, sess *store.Session) error {
	cw := &cookieCatcher{h: http.Header{}}
	err := s.m.Start(ctx, cw, s.inbound(r), sess)
	s.outbound(w, r, cw)
	return err
}

// Current implements oidc.Sessions.
func (s *sessions) Current(r *http.Request) (*store.Session, error) {
	return s.m.Current(s.inbound(r))
}

// End implements oidc.Sessions.
func (s *sessions) End(w http.ResponseWriter, r *http.Request) (*store.Session, error) {
	cw := &cookieCatcher{h: http.Header{}}
	sess, err := s.m.End(cw, s.inbound(r))
	s.outbound(w, r, cw)
	return sess, err
}

// inbound returns r with the sim's cookie, if any, as the only cookie,
// under the manager's cookie name.
func (s *sessions) inbound(r *http.Request) *http.Request {
	r2 := r.Clone(r.Context())
	r2.Header.Del("Cookie")
	if c, err := r.Cookie(s.cookie); err == nil {
		r2.AddCookie(&http.Cookie{Name: s.m.CookieName(), Value: c.Value})
	}
	return r2
}

// outbound copies the cookies the manager set onto w, renamed, and
// Secure when the browser reached the sim over https (see overHTTPS).
func (s *sessions) outbound(w http.ResponseWriter, r *http.Request, cw *cookieCatcher) {
	for _, line := range cw.h.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			continue
		}
		if c.Name == s.m.CookieName() {
			c.Name = s.cookie
		}
		c.Secure = c.Secure || overHTTPS(r)
		http.SetCookie(w, c)
	}
}

// cookieCatcher is a ResponseWriter that only keeps headers.
type cookieCatcher struct{ h http.Header }

func (c *cookieCatcher) Header() http.Header         { return c.h }
func (c *cookieCatcher) Write(b []byte) (int, error) { return len(b), nil }
func (c *cookieCatcher) WriteHeader(int)             {}

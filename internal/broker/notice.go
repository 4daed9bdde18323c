package broker

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"time"

	"github.com/varde-eid/varde/internal/session"
)

// NoticeCookie is the cookie, before session.SecureName, that binds the
// notice a redirect carries (a login that failed, a person blocked, a
// link refused) to the browser the outcome happened in (ADR 48). The
// pages that show such a notice show it only when the cookie names the
// notice their URL carries, so a link sent from elsewhere (a phishing
// mail saying "Your Varde ID is blocked") opens the plain page.
const NoticeCookie = "varde_notice"

// NoticeLifetime is how long a notice stays shown to the browser it
// was sent to: long enough for the redirect and a reload, short enough
// that an old link shows nothing.
const NoticeLifetime = 2 * time.Minute

// noticeParams are the query parameters that together make a notice:
// the login page's reason, request and the provider that failed, the
// link refusal's reason and kind of number.
var noticeParams = []string{"err", "req", "from", "why", "scheme"}

// noticeOf is the notice q carries, in one spelling whatever the order
// of its parameters, or "" if it carries none.
func noticeOf(q url.Values) string {
	if q.Get("err") == "" && q.Get("why") == "" {
		return ""
	}
	v := url.Values{}
	for _, k := range noticeParams {
		if x := q.Get(k); x != "" {
			v.Set(k, x)
		}
	}
	return v.Encode()
}

// noticeValue is the cookie value binding notice: a digest, so the
// cookie stays short and holds only cookie-safe characters. It needs no
// key, so every node agrees on it; a site other than the node cannot
// set the prefixed cookie (session.SecureName), so knowing the value
// does not help it.
func noticeValue(notice string) string {
	sum := sha256.Sum256([]byte(notice))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

func (b *Broker) noticeCookieName() string {
	return session.SecureName(NoticeCookie, b.cookiePath(), b.secureCookies())
}

// bindNotice sets on w the cookie binding the notice the URL target
// carries, if it carries one, and returns target.
func (b *Broker) bindNotice(w http.ResponseWriter, target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return target
	}
	notice := noticeOf(u.Query())
	if notice == "" {
		return target
	}
	http.SetCookie(w, &http.Cookie{
		Name: b.noticeCookieName(), Value: noticeValue(notice), Path: b.cookiePath(),
		MaxAge: int(NoticeLifetime / time.Second), HttpOnly: true, Secure: b.secureCookies(),
		SameSite: http.SameSiteLaxMode,
	})
	return target
}

// noticeBound reports whether the notice r's URL carries was sent to
// this browser (bindNotice) in the last NoticeLifetime.
func (b *Broker) noticeBound(r *http.Request) bool {
	notice := noticeOf(r.URL.Query())
	if notice == "" {
		return false
	}
	want := []byte(noticeValue(notice))
	for _, c := range r.CookiesNamed(b.noticeCookieName()) {
		if subtle.ConstantTimeCompare([]byte(c.Value), want) == 1 {
			return true
		}
	}
	return false
}

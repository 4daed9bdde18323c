package broker

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/oidc"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
)

// A relying party's login request lives RequestLifetime (ADR 50). The
// login pages say until when, and, with script (web/static/timeout.js),
// warn before it and offer to extend it, which POST /login/keep does:
// the person is at the browser the request is bound to (ADR 47), so
// extending it invalidates nothing. Each keep moves the end to
// RequestLifetime from now, never past MaxLoginTime from the request's
// creation: a login left open is not kept open for ever.

const (
	// KeepPath is where the login pages' script asks for more time.
	KeepPath = "/login/keep"
	// MaxLoginTime bounds how long a login request may be kept open,
	// counted from its creation; config.MaxAuthRequestLifetime is the
	// same hour, so a configured lifetime never passes it.
	MaxLoginTime = provider.MaxLoginTime
	// maxLoginWarn is how long before the end the pages warn: two
	// minutes, or half the lifetime when that is shorter (a test's).
	// WCAG 2.2 SC 2.2.1 asks for at least 20 seconds to answer.
	maxLoginWarn   = 2 * time.Minute
	keepCSRFLabel  = "varde/broker/loginkeep/v1\x00"
	keepCSRFHeader = "X-CSRF-Token"
	maxKeepBody    = 1 << 10
)

var _ provider.Holder = (*Broker)(nil)

// lifetime is how long a request lives after each keep.
func (b *Broker) lifetime() time.Duration {
	if b.RequestLifetime > 0 {
		return b.RequestLifetime
	}
	return oidc.DefaultAuthRequestLifetime
}

// nextEnd is where a keep at now would move req's end: a lifetime from
// now, no later than MaxLoginTime after its creation.
func (b *Broker) nextEnd(req *store.AuthRequest, now time.Time) time.Time {
	end := now.Add(b.lifetime())
	if bound := req.CreatedAt.Add(MaxLoginTime); end.After(bound) {
		end = bound
	}
	return end
}

// extendable reports whether a keep can still move req's end: it has
// not reached MaxLoginTime from the request's creation. A request with
// no browser binding (ADR 47) is not extended: the keep could not tell
// who asks.
func extendable(req *store.AuthRequest) bool {
	return req.Browser != "" && req.ExpiresAt.Before(req.CreatedAt.Add(MaxLoginTime))
}

// Hold implements provider.Holder: what a provider's page for
// attemptID asks, from one read of its request, where Pending, Accepts
// and the page's time limit read it one after another, three times for
// the recovery code page. One read serves all three because they are
// answers to the same page at the same moment: nothing the page does
// between them changes the request. A link attempt is held by no page
// (Pending and Accepts are false for it), and the account login has
// no request to read.
func (b *Broker) Hold(r *http.Request, attemptID, providerID string, level assurance.Level, lang string) (provider.Hold, error) {
	if strings.HasPrefix(attemptID, linkPrefix) {
		return provider.Hold{}, nil
	}
	if attemptID == AccountAttempt {
		ok, err := b.Accepts(r, attemptID, providerID, level)
		return provider.Hold{Pending: true, Accepts: ok}, err
	}
	now := b.Now()
	req, err := oidc.LiveRequest(r.Context(), b.AuthRequests, attemptID, now)
	if errors.Is(err, store.ErrNotFound) {
		return provider.Hold{}, nil
	}
	if err != nil {
		return provider.Hold{}, err
	}
	h := provider.Hold{Pending: true, Finish: func(w http.ResponseWriter, r *http.Request, res provider.Result) (string, error) {
		next, err := b.finish(w, r, attemptID, res, req)
		return b.bindNotice(w, next), err
	}}
	if !oidc.InBrowser(req, b.requestBrowser(r)) {
		h.Elsewhere = true
		return h, nil
	}
	h.Timeout = b.loginTimeout(r, req, lang, now)
	a, err := b.attemptOf(r, req)
	if errors.Is(err, store.ErrNotFound) {
		// Its client is gone: nothing can finish it.
		return h, nil
	}
	if err != nil {
		return provider.Hold{}, err
	}
	info, known := b.info(providerID)
	h.Accepts = known && a.accepts(info, level)
	return h, nil
}

// loginTimeout is the view of req's time limit for a page in lang.
func (b *Broker) loginTimeout(r *http.Request, req *store.AuthRequest, lang string, now time.Time) *provider.LoginTimeout {
	body, _ := json.Marshal(keepRequest{Req: req.ID, Lang: lang})
	// At the latest: the bound, or, for a request no keep can move, its
	// end as it is.
	latest, canExtend := req.ExpiresAt, extendable(req)
	if canExtend {
		latest = req.CreatedAt.Add(MaxLoginTime)
	}
	return &provider.LoginTimeout{
		Ends: b.Pages.Time(lang, req.ExpiresAt).Text,
		TimeoutDialog: provider.TimeoutDialog{
			ID: "login-timeout", Keys: "timeout.request",
			Latest:     b.Pages.Time(lang, latest).Text,
			EndsIn:     provider.SecondsLeft(req.ExpiresAt.Sub(now)),
			Warn:       provider.SecondsLeft(min(maxLoginWarn, b.lifetime()/2)),
			Extendable: canExtend,
			KeepURL:    KeepPath, KeepBody: string(body),
			CSRF:    keepCSRF(b.requestBrowser(r), req.ID),
			KeepReq: req.ID, Back: loginPath + "?" + url.Values{"req": {req.ID}}.Encode(),
			Kept: provider.Kept(r),
		},
	}
}

// keepCSRF is the keep's token for the request id in the browser whose
// mark is browser: HMAC-SHA256 keyed with the mark, which is HttpOnly,
// so only a page this node rendered for that browser holds it. "" for a
// browser without a mark.
func keepCSRF(browser, id string) string {
	if browser == "" {
		return ""
	}
	m := hmac.New(sha256.New, []byte(browser))
	m.Write([]byte(keepCSRFLabel + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// keepRequest is a keep's JSON body, which the page's dialog sends as
// the page gave it: the request, and the page's language, in which the
// answer says the new end (provider.KeepAnswer Info).
type keepRequest struct {
	Req  string `json:"req"`
	Lang string `json:"lang,omitempty"`
}

type keepError struct {
	Error string `json:"error"`
}

// keepLogin: POST /login/keep {"req": "…"} (JSON, header X-CSRF-Token)
// moves the request's end on (nextEnd) and answers how long it has
// left. 401 "login" when it has ended, is unknown, or belongs to
// another browser: it is not brought back, and nothing changes. A plain
// form (keepLoginForm) does the same without script.
func (b *Broker) keepLogin(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/x-www-form-urlencoded" {
		b.keepLoginForm(w, r)
		return
	}
	if mt != "application/json" {
		writeKeep(w, http.StatusUnsupportedMediaType, keepError{"bad_request"})
		return
	}
	var in keepRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxKeepBody))
	if err := dec.Decode(&in); err != nil || in.Req == "" {
		writeKeep(w, http.StatusBadRequest, keepError{"bad_request"})
		return
	}
	browser := b.requestBrowser(r)
	if browser == "" {
		writeKeep(w, http.StatusUnauthorized, keepError{"login"})
		return
	}
	// Checked before the store is asked: a page on another site cannot
	// keep anyone's login open.
	if want := keepCSRF(browser, in.Req); subtle.ConstantTimeCompare([]byte(want), []byte(r.Header.Get(keepCSRFHeader))) != 1 {
		writeKeep(w, http.StatusForbidden, keepError{"csrf"})
		return
	}
	now := b.Now()
	req, err := b.keep(r, in.Req, browser, now)
	if errors.Is(err, store.ErrNotFound) {
		writeKeep(w, http.StatusUnauthorized, keepError{"login"})
		return
	}
	if err != nil {
		b.Log.ErrorContext(r.Context(), "keep login", "err", err)
		status, code := http.StatusInternalServerError, "internal"
		if errors.Is(err, store.ErrUnavailable) {
			status, code = http.StatusServiceUnavailable, "unavailable"
		}
		writeKeep(w, status, keepError{code})
		return
	}
	// Extendable until the end stops at MaxLoginTime after the request's
	// creation.
	writeKeep(w, http.StatusOK, provider.KeepAnswer{EndsIn: provider.SecondsLeft(req.ExpiresAt.Sub(now)), Extendable: extendable(req),
		Info: b.endsInfo(b.Pages.Locale(r, []string{in.Lang}), req)})
}

// endsInfo is the sentence a login page says of req's end, in lang
// (the template login-timeout's), so that a page kept by its dialog
// says the new end, not the one it was loaded with.
func (b *Broker) endsInfo(lang string, req *store.AuthRequest) string {
	return fmt.Sprintf(b.Pages.T(lang, "timeout.request.info"), b.Pages.Time(lang, req.ExpiresAt).Text)
}

// keep moves the end of request id, bound to the browser marked
// browser, on as far as nextEnd allows, and returns it as it now is;
// store.ErrNotFound if it has ended or is not this browser's.
func (b *Broker) keep(r *http.Request, id, browser string, now time.Time) (*store.AuthRequest, error) {
	ctx := r.Context()
	req, err := b.AuthRequests.GetAuthRequest(ctx, id, now)
	if err != nil {
		return nil, err
	}
	// A request with no binding is one no keep can tell the owner of.
	if req.Browser == "" || !oidc.InBrowser(req, browser) {
		return nil, errOtherBrowser
	}
	end := b.nextEnd(req, now)
	if !end.After(req.ExpiresAt) {
		return req, nil
	}
	err = b.AuthRequests.ExtendAuthRequest(ctx, id, req.Browser, end, now, MaxLoginTime)
	switch {
	case errors.Is(err, store.ErrConflict):
		// Another tab's keep moved it as far or further: read it again.
	case err != nil:
		return nil, err
	default:
		req.ExpiresAt = end
		return req, nil
	}
	return b.AuthRequests.GetAuthRequest(ctx, id, now)
}

func writeKeep(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// loginPath is the broker's page of ways to log in.
const loginPath = "/login"

// keepPages are the pages a keep without script may send the browser
// back to: the broker's own and the providers' (KeepPages).
func (b *Broker) keepPages() []string {
	return append([]string{loginPath}, b.KeepPages...)
}

// keepLoginForm: POST /login/keep as a plain form (req, csrf, back),
// the login pages' own button for a browser without script, keeps the
// request as the JSON keep does and sends the browser back to the page
// it came from (back, one of keepPages; provider.KeptParam added),
// which shows the new time. A back that is not one of those pages is
// refused before anything is kept, and so is a form whose token is not
// this browser's for the request. A request that has ended, or is not
// this browser's, stays as it is, and the browser goes back without
// KeptParam: the page says the login has ended.
func (b *Broker) keepLoginForm(w http.ResponseWriter, r *http.Request) {
	lang := b.Pages.Locale(r, nil)
	if !b.Pages.ReadForm(w, r, lang) {
		return
	}
	back, ok := httpx.BackTo(r.PostFormValue("back"), b.keepPages())
	id := r.PostFormValue("req")
	if !ok || id == "" {
		b.Pages.Error(w, r, http.StatusBadRequest, lang, httpx.BadRequestPage())
		return
	}
	browser := b.requestBrowser(r)
	if browser != "" && subtle.ConstantTimeCompare([]byte(keepCSRF(browser, id)), []byte(r.PostFormValue("csrf"))) != 1 {
		b.Pages.Error(w, r, http.StatusForbidden, lang, httpx.BadRequestPage())
		return
	}
	if browser == "" {
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	_, err := b.keep(r, id, browser, b.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Nothing kept: the page says the login has ended.
		http.Redirect(w, r, back, http.StatusSeeOther)
	case err != nil:
		b.internalError(w, r, "keep login", err)
	default:
		http.Redirect(w, r, provider.WithKept(back), http.StatusSeeOther)
	}
}

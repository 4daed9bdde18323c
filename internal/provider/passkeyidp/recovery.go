package passkeyidp

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
)

// Recovery codes are 16 symbols of Crockford's base32 alphabet (no I, L,
// O or U, so nothing looks alike): 80 random bits, shown as four groups
// of four ("7KQ3-M9XD-...") and stored only as SHA-256 hashes. At 80 bits,
// online guessing is hopeless even without the per-attempt limit.
const codeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newRecoveryCodes returns n codes for display and their hashes.
func newRecoveryCodes(r io.Reader, n int) (codes []string, hashes [][]byte, err error) {
	for range n {
		var b [10]byte // 80 bits = 16 symbols of 5 bits
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, nil, fmt.Errorf("recovery codes: %w", err)
		}
		var raw [16]byte
		var acc uint64
		bits := 0
		j := 0
		for _, x := range b {
			acc = acc<<8 | uint64(x)
			bits += 8
			for bits >= 5 {
				bits -= 5
				raw[j] = codeAlphabet[(acc>>bits)&31]
				j++
			}
		}
		s := string(raw[:])
		codes = append(codes, s[0:4]+"-"+s[4:8]+"-"+s[8:12]+"-"+s[12:16])
		hashes = append(hashes, hashCode(s))
	}
	return codes, hashes, nil
}

// DeskCodeLifetime is how long a code from the help desk is good (ADR
// 62): the rest of the day the person got it at the counter, and the
// next morning, and no longer, since a code on paper can be lost.
const DeskCodeLifetime = 24 * time.Hour

// NewDeskCode returns a code for the help desk to hand a person on
// paper, written as a recovery code is and typed where one is, and its
// hash, which is all the store keeps (store.DeskCodes).
func NewDeskCode(r io.Reader) (code string, hash []byte, err error) {
	codes, hashes, err := newRecoveryCodes(r, 1)
	if err != nil {
		return "", nil, fmt.Errorf("help desk code: %w", err)
	}
	return codes[0], hashes[0], nil
}

// normaliseCode returns the 16 symbols of the code typed as in, or
// false (readCode).
func normaliseCode(in string) (string, bool) {
	code, fault := readCode(in)
	return code, fault == nil
}

// codeFault is why what was typed cannot be a recovery code: the
// message key of the recover page's error, and what it names (how many
// symbols were typed, or the character no code has, as typed).
type codeFault struct {
	Key string
	Arg any
}

// readCode accepts what people type or paste: any case; spaces, dashes
// and line ends (a list copied one group a line), and characters that
// show nothing (a zero-width space from a document); the letters
// Crockford's alphabet reads as digits (I and L as 1, O as 0), and Ø,
// which a zero printed with a slash is typed as on a Nordic keyboard.
// It returns the 16 symbols, or what to fix: a character no code has
// (the first), or how many symbols there were.
func readCode(in string) (string, *codeFault) {
	var b strings.Builder
	n := 0
	for _, typed := range in {
		c := unicode.ToUpper(typed)
		switch {
		case unicode.IsSpace(c), unicode.Is(unicode.Cf, c), unicode.Is(unicode.Pd, c):
			continue
		case c == 'I', c == 'L':
			c = '1'
		case c == 'O', c == 'Ø':
			c = '0'
		}
		if c > 127 || !strings.ContainsRune(codeAlphabet, c) {
			return "", &codeFault{Key: "recover.err.char", Arg: string(typed)}
		}
		n++
		if n <= 16 {
			b.WriteRune(c)
		}
	}
	switch {
	case n == 0:
		return "", &codeFault{Key: "recover.err.empty"}
	case n < 16:
		return "", &codeFault{Key: "recover.err.short", Arg: n}
	case n > 16:
		return "", &codeFault{Key: "recover.err.long", Arg: n}
	}
	return b.String(), nil
}

// codesFile is codes as a text file in lang, for a link that saves
// them: a heading, what they are for, one code a line. A data: URL, so
// that the codes, shown once and stored only as hashes, are never
// served again; built here of codes and page texts, which hold nothing
// a URL could be made to do with.
func (p *Provider) codesFile(lang string, codes []string) template.URL {
	var b strings.Builder
	b.WriteString(p.Pages.T(lang, "codes.file.heading") + "\n\n" + p.Pages.T(lang, "codes.file.note") + "\n\n")
	for _, c := range codes {
		b.WriteString(c + "\n")
	}
	return template.URL("data:text/plain;charset=utf-8," + url.PathEscape(b.String()))
}

func hashCode(normalised string) []byte {
	h := sha256.Sum256([]byte(normalised))
	return h[:]
}

// replaceCodes makes a new set of codes for person at enrolment and
// returns them. The recovery_codes_regenerated event that records them
// is stored in the same write, so the person's recent activity shows
// every set of codes that was made. A write that got no answer is
// looked for in the store: codes found there, with their event, are
// returned as stored; codes not found there were not stored, and
// neither was their event.
func (p *Provider) replaceCodes(r *http.Request, personID string) ([]string, error) {
	ctx := r.Context()
	codes, hashes, err := newRecoveryCodes(p.rand(), RecoveryCodeCount)
	if err != nil {
		return nil, err
	}
	made := p.changeEvents(ctx, &store.AuditEvent{Type: "recovery_codes_regenerated", Result: store.ResultSuccess, PersonID: personID,
		Details: map[string]string{"count": fmt.Sprint(len(codes)), "method": "enrolment"}})
	err = p.RecoveryCodes.ReplaceRecoveryCodes(ctx, personID, hashes, p.now(), made...)
	if errors.Is(err, store.ErrOutcomeUnknown) {
		switch p.codesStored(ctx, personID, hashes) {
		case isStored:
			p.log().WarnContext(ctx, "enrolment recovery codes stored though their write got no answer", "err", err)
			return codes, nil
		case notStored:
			// Not stored: nothing is left to undo.
			return nil, fmt.Errorf("store recovery codes: not stored after a write with no answer (%v)", err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("store recovery codes: %w", err)
	}
	return codes, nil
}

// recoverData is the recover page.
type recoverData struct {
	Attempt string
	CSRF    string
	Error   string // message key
	// ErrorArg, when set, is what the error's message names.
	ErrorArg any
	// Left, after a wrong code, is the message key saying how many
	// tries are left, with the count, LeftCount, when it takes one.
	Left      string
	LeftCount int
	LoginURL  string
	// Code is what the person typed, shown again with an error so that
	// a slip is corrected rather than the code typed anew (WCAG 3.3.7).
	Code string
	// NotEnough: the relying party needs more than a recovery code gives,
	// so the page offers the ways that can still help instead of a form
	// that would use up a code for nothing. OtherWaysURL is the broker's
	// choice of ways in for the same login, which the page offers too
	// to a person without a code; AccountURL recovers the person's own
	// account, where they can add a new passkey.
	NotEnough    bool
	OtherWaysURL string
	AccountURL   string
	// Timeout says until when a service's login stays open, nil for an
	// account login.
	Timeout *provider.LoginTimeout
}

// recoveryCeiling is the most a recovery code can reach, whoever uses it.
var recoveryCeiling = assurance.FromEvidence(assurance.High, assurance.Authenticator{Kind: assurance.KindRecoveryCode})

// heldEnough is hold for the recovery code pages: the broker holds
// attempt, and a recovery code login could end it (the broker would
// take a result at recoveryCeiling for it). When it could not, it shows
// the page that says so; after that, or after an error page, ok is
// false. h.Timeout is what the page says of the login's end: read with
// the rest, at the start of this request, which nothing it does
// changes; h.Finish ends the login on that read.
func (p *Provider) heldEnough(w http.ResponseWriter, r *http.Request, attempt string) (h provider.Hold, ok bool) {
	h, ok = p.hold(w, r, attempt, recoveryCeiling)
	if !ok {
		return h, false
	}
	if !h.Accepts {
		p.renderRecover(w, r, http.StatusOK, recoverData{Attempt: attempt, NotEnough: true,
			AccountURL: "/passkey/recover?" + url.Values{"attempt": {""}}.Encode(),
			Timeout:    h.Timeout})
	}
	return h, h.Accepts
}

// typedCode is the code field as sent, cut to the field's 40 characters.
func typedCode(r *http.Request) string {
	c := []rune(strings.ToValidUTF8(r.PostFormValue("code"), ""))
	if len(c) > 40 {
		c = c[:40]
	}
	return string(c)
}

func (p *Provider) renderRecover(w http.ResponseWriter, r *http.Request, status int, d recoverData) {
	token, err := p.formToken(w, r)
	if err != nil {
		p.internalError(w, r, "form token", err)
		return
	}
	d.CSRF = token
	if d.Attempt == "" && !d.NotEnough {
		// An account login's tries are counted against this browser:
		// it is known from the form it was given here.
		if err := p.knowBrowser(w, token); err != nil {
			p.internalError(w, r, "recovery browser", err)
			return
		}
	}
	d.LoginURL = "/passkey/login?" + url.Values{"attempt": {d.Attempt}}.Encode()
	d.OtherWaysURL = otherWaysURL(d.Attempt)
	d.Timeout = withBack(d.Timeout, d.Attempt, recoverPath)
	p.Pages.Render(w, r, status, "recover", p.lang(r), d)
}

func (p *Provider) recoverPage(w http.ResponseWriter, r *http.Request) {
	attempt, ok := attemptParam(r.URL.Query().Get("attempt"))
	if !ok {
		p.badRequest(w, r)
		return
	}
	h, ok := p.heldEnough(w, r, attempt)
	if !ok {
		return
	}
	p.renderRecover(w, r, http.StatusOK, recoverData{Attempt: attempt, Timeout: h.Timeout})
}

// recoveryTryWindow is how long a recovery code try counts;
// browserKnownFor how long a browser given the account recovery form is
// known (knowBrowser).
const (
	recoveryTryWindow = time.Hour
	browserKnownFor   = 2 * time.Hour
)

// The mark a browser gets when it is given the form for an account
// login with a recovery code: its tries are counted against it
// (tryAllowed), and a form cookie without it takes no try. It is a
// cookie holding its expiry and an HMAC, under BrowserKey, of that
// expiry and the form cookie's formBinding, so that any node can check
// it and none stores anything for it: loading the form, which anyone
// can do as often as they like, writes nothing to the shared store.
const (
	knownLabel  = "varde/passkeyidp/recovery-browser/v1/"
	knownCookie = "varde_recover"
	// MinBrowserKeySize is the shortest BrowserKey a Provider takes.
	MinBrowserKeySize = 32
)

// knownCookieName is the mark's cookie name, with the __Host- prefix
// when Secure (__Secure- under an issuer's path), as formCookieName.
func (p *Provider) knownCookieName() string {
	return session.SecureName(knownCookie, p.cookiePath(), p.secure())
}

// knownMAC is the mark's HMAC for the form cookie cookie and the
// expiry exp (Unix seconds).
func (p *Provider) knownMAC(cookie, exp string) ([]byte, error) {
	if len(p.BrowserKey) < MinBrowserKeySize {
		return nil, fmt.Errorf("browser key: %d bytes, want at least %d", len(p.BrowserKey), MinBrowserKeySize)
	}
	m := hmac.New(sha256.New, p.BrowserKey)
	m.Write([]byte(knownLabel + formBinding(cookie) + "/" + exp))
	return m.Sum(nil), nil
}

// knowBrowser marks the browser whose form cookie is cookie as given
// the account recovery form, for browserKnownFor from now. Each form
// given marks it anew, so the mark outlasts the tries
// (recoveryTryWindow): a browser at the limit is still known when its
// hour is over.
func (p *Provider) knowBrowser(w http.ResponseWriter, cookie string) error {
	exp := strconv.FormatInt(p.now().Add(browserKnownFor).Unix(), 10)
	mac, err := p.knownMAC(cookie, exp)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: p.knownCookieName(), Value: exp + "." + base64.RawURLEncoding.EncodeToString(mac),
		Path: p.cookiePath(), MaxAge: int(browserKnownFor / time.Second), HttpOnly: true,
		Secure: p.secure(), SameSite: http.SameSiteStrictMode,
	})
	return nil
}

// browserKnown reports whether the request's form cookie was given the
// account recovery form by a server (knowBrowser) less than
// browserKnownFor ago (by a clock up to a minute ahead), not made up by
// the client. A mark made for another form cookie, past its expiry, or
// not made under BrowserKey is no mark.
func (p *Provider) browserKnown(r *http.Request) (bool, error) {
	c, err := r.Cookie(p.knownCookieName())
	if err != nil {
		return false, nil
	}
	exp, mac, ok := strings.Cut(c.Value, ".")
	if !ok {
		return false, nil
	}
	at, err := strconv.ParseInt(exp, 10, 64)
	now := p.now()
	// Another node's clock may be a minute ahead of this one's.
	if err != nil || at <= now.Unix() || at > now.Add(browserKnownFor+time.Minute).Unix() {
		return false, nil
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil {
		return false, nil
	}
	want, err := p.knownMAC(p.formCookieValue(r), exp)
	if err != nil {
		return false, err
	}
	return hmac.Equal(got, want), nil
}

// tryAllowed takes one of MaxRecoveryTries slots; false when all are
// used. The slots live in the shared replay cache, so the limit holds
// across nodes.
//
// The 80 random bits of a code are the real protection: guessing one
// online is hopeless with or without this limit. The limit is hygiene,
// so it must never lock out anyone but the one trying. A relying
// party's login counts against its attempt, which the caller has
// checked the broker holds (a made-up attempt would get fresh slots). An
// account login has no attempt and counts against the browser: its form
// cookie, which checkFormToken has required and the caller has checked
// a server gave the recovery form (browserKnown), so that a cookie the
// client makes up gets no slots of its own. Never the client address:
// behind a TLS proxy that is the proxy's, and five wrong tries would
// block everyone's recovery for an hour.
func (p *Provider) tryAllowed(r *http.Request, attempt string) (slot int, err error) {
	key := p.tryKey(r, attempt)
	// A slot is read before it is taken, so that a browser or login at
	// the limit, however often it tries, writes nothing to the shared
	// store: only a slot that looks free is written, and one taken in
	// between is refused and passed over.
	ctx, now := r.Context(), p.now()
	for i := 1; i <= MaxRecoveryTries; i++ {
		slot := key + "/" + strconv.Itoa(i)
		taken, err := p.Limits.Remembered(ctx, slot, now)
		if err != nil {
			return 0, err
		}
		if taken {
			continue
		}
		err = p.Limits.Remember(ctx, slot, now.Add(recoveryTryWindow), now)
		if err == nil {
			return i, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return 0, err
		}
	}
	return 0, nil
}

// tryKey is what the tries of a login with attempt count against
// (tryAllowed): the service's login, or for the account's, the browser.
func (p *Provider) tryKey(r *http.Request, attempt string) string {
	if attempt == "" {
		return "passkeyidp/recovery/browser/" + formBinding(p.formCookieValue(r))
	}
	return "passkeyidp/recovery/attempt/" + attempt
}

// triesLeft counts the slots after slot, the one this try took, that
// are still free, reading and writing nothing else: what a wrong code's
// message says is left, so that the limit does not come unannounced.
func (p *Provider) triesLeft(r *http.Request, attempt string, slot int) (int, error) {
	key, now, left := p.tryKey(r, attempt), p.now(), 0
	for i := slot + 1; i <= MaxRecoveryTries; i++ {
		taken, err := p.Limits.Remembered(r.Context(), key+"/"+strconv.Itoa(i), now)
		if err != nil {
			return 0, err
		}
		if !taken {
			left++
		}
	}
	return left, nil
}

// leftMessage is the message key, and the count it takes (0 for none),
// saying that left tries are left, for a service's login or, account,
// the account's.
func leftMessage(account bool, left int) (string, int) {
	suffix := ""
	if account {
		suffix = ".account"
	}
	switch left {
	case 0:
		return "recover.err.last" + suffix, 0
	case 1:
		return "recover.err.left.one" + suffix, 0
	}
	return "recover.err.left" + suffix, left
}

func (p *Provider) recoverSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !p.Pages.ReadForm(w, r, p.lang(r)) {
		return
	}
	attempt, ok := attemptParam(r.PostFormValue("attempt"))
	if !ok {
		p.badRequest(w, r)
		return
	}
	if !p.checkFormToken(r) {
		p.forbidden(w, r)
		return
	}
	// Only a login the broker holds may try codes: an unknown or
	// expired one is told to start again, and counts no try. Nor may a
	// login whose relying party needs more than a code gives: the code
	// would be used up and the login refused.
	h, ok := p.heldEnough(w, r, attempt)
	if !ok {
		return
	}
	timeout := h.Timeout
	// A code mistyped so that it cannot be one (a letter missing, a
	// stray character) says nothing about any code, and takes no try.
	code, fault := readCode(r.PostFormValue("code"))
	if fault != nil {
		p.codeFailed(r, attempt, "malformed_recovery_code", methodRecoveryCode)
		p.renderRecover(w, r, http.StatusBadRequest, recoverData{Attempt: attempt, Error: fault.Key, ErrorArg: fault.Arg, Code: typedCode(r), Timeout: timeout})
		return
	}
	if attempt == "" {
		// A form cookie no server gave the recovery form to is one the
		// client made up, perhaps to get fresh tries: it takes no try
		// and checks no code, and the form comes back, now for a
		// browser that is known.
		known, err := p.browserKnown(r)
		if err != nil {
			p.codeError(w, r, attempt, methodRecoveryCode, "recovery browser", err)
			return
		}
		if !known {
			p.codeFailed(r, attempt, "unknown_browser", methodRecoveryCode)
			p.renderRecover(w, r, http.StatusBadRequest, recoverData{Attempt: attempt, Error: "recover.err.again", Code: typedCode(r), Timeout: timeout})
			return
		}
	}
	slot, err := p.tryAllowed(r, attempt)
	if err != nil {
		p.codeError(w, r, attempt, methodRecoveryCode, "recovery rate limit", err)
		return
	}
	if slot == 0 {
		p.codeFailed(r, attempt, "rate_limited", methodRecoveryCode)
		// A relying party's login gets fresh tries when it starts again;
		// an account login's tries are this browser's for an hour, and
		// starting again would only meet this page once more.
		page := errorPage("recover.limit", p.loginAgainURL(attempt))
		if attempt == "" {
			page = errorPage("recover.limit.account", reauthURL)
			// The page says to try again in an hour: by then every
			// try this browser has taken has lapsed.
			w.Header().Set("Retry-After", strconv.Itoa(int(recoveryTryWindow/time.Second)))
		}
		p.Pages.Error(w, r, http.StatusTooManyRequests, p.lang(r), page)
		return
	}
	usedAt, hash := p.now(), hashCode(code)
	personID, desk, err := p.useCode(ctx, hash, usedAt)
	method := methodRecoveryCode
	if desk {
		method = methodDeskCode
	}
	if wrong := wrongCodeReason(err); wrong != "" {
		p.codeFailed(r, attempt, wrong, method)
		d := recoverData{Attempt: attempt, Error: wrongCodeMessage[wrong], Code: typedCode(r), Timeout: timeout}
		// What is left is said when it can be read; the page does
		// without it otherwise.
		if left, err := p.triesLeft(r, attempt, slot); err == nil {
			d.Left, d.LeftCount = leftMessage(attempt == "", left)
		} else {
			p.log().WarnContext(ctx, "recovery tries left unread", "err", err)
		}
		p.renderRecover(w, r, http.StatusBadRequest, d)
		return
	}
	if err != nil {
		p.codeError(w, r, attempt, method, "use recovery code", err)
		return
	}
	person, err := p.Persons.GetPerson(ctx, personID)
	if err != nil {
		// Nothing was granted: the code is given back. Past this point
		// a failure may come after the login was recorded, so the code
		// stays used: it is never good twice.
		if rerr := p.RecoveryCodes.RestoreRecoveryCode(ctx, hash, usedAt); rerr != nil {
			err = errors.Join(err, rerr)
		}
		p.codeError(w, r, attempt, method, "recovery code person", err)
		return
	}
	if person.Blocked() {
		// The broker refuses a blocked person, whatever the way in, and
		// says so: the code granted nothing, and is given back, so that
		// whoever holds the person's codes cannot use them up.
		if err := p.RecoveryCodes.RestoreRecoveryCode(ctx, hash, usedAt); err != nil {
			p.codeError(w, r, attempt, method, "give back a blocked person's recovery code", err)
			return
		}
	} else if desk {
		// The help desk gave the code to the person it saw, who has lost
		// their ways in: whatever sessions are left were opened with
		// them, and end (ADR 62). One that cannot be ended grants
		// nothing: the code is given back.
		if err := p.endForDeskCode(r, person.ID); err != nil {
			if rerr := p.RecoveryCodes.RestoreRecoveryCode(ctx, hash, usedAt); rerr != nil {
				err = errors.Join(err, rerr)
			}
			p.codeError(w, r, attempt, method, "end sessions for a help desk code", err)
			return
		}
	}
	res := recoveryResult(person, p.now(), desk)
	// The session is stored only if the person still holds this code,
	// used.
	res.WayIn = store.WayIn{RecoveryCode: hash}
	// Read just above, in this request: the broker checks the block on
	// it rather than reading the person again.
	res.Person = person
	// The login ends on the request as this request read it first
	// (h.Finish), not on a read of it again.
	p.finishHeld(w, r, h, attempt, res)
}

// codeFailed audits a recovery or help desk code (method) typed for
// attempt, a login the broker holds, that logged nobody in for reason:
// as the ceremony found, naming through the broker the attempt and the
// browser, so that the status page counts the person once however often
// they try again, and only when reason is an error of Varde's.
func (p *Provider) codeFailed(r *http.Request, attempt, reason, method string) {
	p.audit(r.Context(), &store.AuditEvent{Type: "authentication", Result: store.ResultFailure, Reason: reason,
		Details: p.traceFound(r, attempt, map[string]string{"method": method})})
}

// codeError answers a code typed for attempt that failed on Varde's
// side (internalError), audited as such (codeFailed): the person could
// not get in.
func (p *Provider) codeError(w http.ResponseWriter, r *http.Request, attempt, method, msg string, err error) {
	p.codeFailed(r, attempt, provider.ErrorReason(err), method)
	p.internalError(w, r, msg, err)
}

// useCode uses the code whose hash is hash at at: one of a person's
// recovery codes or, when it is none and DeskCodes is set, a code from
// the help desk (desk). Both are 16 symbols typed in the same field.
func (p *Provider) useCode(ctx context.Context, hash []byte, at time.Time) (personID string, desk bool, err error) {
	personID, err = p.RecoveryCodes.UseRecoveryCode(ctx, hash, at)
	if !errors.Is(err, store.ErrNotFound) || p.DeskCodes == nil {
		return personID, false, err
	}
	personID, err = p.DeskCodes.UseDeskCode(ctx, hash, at)
	if errors.Is(err, store.ErrNotFound) {
		return "", false, err
	}
	return personID, true, err
}

// wrongCodeReason is the audit reason of a code that logs nobody in (useCode's
// err): none that the person holds, or a help desk code used already or
// past its time; "" for any other outcome.
func wrongCodeReason(err error) string {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "invalid_recovery_code"
	case errors.Is(err, store.ErrUsed):
		return "used_desk_code"
	case errors.Is(err, store.ErrExpired):
		return "expired_desk_code"
	}
	return ""
}

// wrongCodeMessage is what the recover page says for each of wrongCodeReason's
// reasons: what happened, and what to do.
var wrongCodeMessage = map[string]string{
	"invalid_recovery_code": "recover.err.wrong",
	"used_desk_code":        "recover.err.desk.used",
	"expired_desk_code":     "recover.err.desk.expired",
}

// endForDeskCode ends every session of personID, audited as
// sessions_ended in the same write, before a login with a help desk code
// opens theirs.
func (p *Provider) endForDeskCode(r *http.Request, personID string) error {
	ctx := r.Context()
	_, err := p.Sessions.EndOthersBy(ctx, func(now time.Time) ([]*store.Session, error) {
		return p.Sessions.Store.EndPersonSessions(ctx, personID, "", now, func(n int) []*store.AuditEvent {
			if n == 0 || p.Audit == nil {
				return nil
			}
			e := &store.AuditEvent{Type: "sessions_ended", Result: store.ResultSuccess, PersonID: personID, Provider: ID,
				Time: now.UTC().Truncate(time.Microsecond), Details: map[string]string{"count": fmt.Sprint(n), "why": "desk_code"}}
			p.Audit.Prepare(ctx, e)
			return []*store.AuditEvent{e}
		})
	})
	return err
}

// otherWaysURL is the broker's choice of ways in: for a service's
// login, attempt, the same login; for an account login (""), the
// account's.
func otherWaysURL(attempt string) string {
	if attempt == "" {
		return reauthURL
	}
	return reauthURL + "?" + url.Values{"req": {attempt}}.Encode()
}

func (p *Provider) loginAgainURL(attempt string) string {
	return "/passkey/login?" + url.Values{"attempt": {attempt}}.Encode()
}

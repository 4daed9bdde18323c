package passkeyidp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/passkey"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
)

// Synthetic enrolment: a visitor makes up a test person with a synthetic
// Norwegian number (month+80, identity.SyntheticNO) and registers a
// passkey for them. The person is stored only when the registration
// finishes (passkey.RegistrationRequest.NewPerson). Test persons count
// as proofed at level high (ProofingMethod "synthetic"), so every path
// through the system can be tried with them; they are marked Synthetic.

type enrolData struct {
	Attempt  string
	LoginURL string
	// Timeout says until when a service's login stays open, nil for an
	// account login.
	Timeout *provider.LoginTimeout
}

func (p *Provider) enrolPage(w http.ResponseWriter, r *http.Request) {
	if !p.SyntheticEnrolment {
		p.notFound(w, r)
		return
	}
	attempt, ok := attemptParam(r.URL.Query().Get("attempt"))
	if !ok {
		p.badRequest(w, r)
		return
	}
	// One read of the login: whether it is held, and until when.
	h, ok := p.hold(w, r, attempt, assurance.High)
	if !ok {
		return
	}
	p.Pages.Render(w, r, http.StatusOK, "enrol", p.lang(r), enrolData{Attempt: attempt, LoginURL: p.loginAgainURL(attempt),
		Timeout: withBack(h.Timeout, attempt, enrolPath)})
}

type enrolRequest struct {
	Attempt    string `json:"attempt"`
	GivenName  string `json:"given_name"`
	FamilyName string `json:"family_name"`
	// BirthDate is YYYY-MM-DD, or empty for a random date.
	BirthDate string `json:"birth_date"`
	// Kind is "fnr" (default) or "dnr".
	Kind string `json:"kind"`
}

// birthDate parses the requested date, or draws one between 1940 and
// 2005 when none is given.
func (p *Provider) birthDate(s string) (time.Time, error) {
	if s == "" {
		var b [8]byte
		if _, err := io.ReadFull(p.rand(), b[:]); err != nil {
			return time.Time{}, err
		}
		start := time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC)
		days := int(time.Date(2005, 12, 31, 0, 0, 0, 0, time.UTC).Sub(start).Hours() / 24)
		return start.AddDate(0, 0, int(binary.BigEndian.Uint64(b[:])%uint64(days+1))), nil
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, err
	}
	if d.Year() < 1900 || d.Year() > 2039 || d.After(p.now()) {
		return time.Time{}, errors.New("birth date out of range")
	}
	return d, nil
}

// enrolBegin: POST /passkey/enrol/begin (JSON enrolRequest) →
// {"ceremony", "options"} for navigator.credentials.create.
func (p *Provider) enrolBegin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !p.SyntheticEnrolment {
		p.jsonError(w, r, http.StatusNotFound, "bad_request")
		return
	}
	if !isJSON(r) {
		p.jsonError(w, r, http.StatusUnsupportedMediaType, "bad_request")
		return
	}
	var req enrolRequest
	if err := decodeJSON(r, &req); err != nil {
		p.jsonError(w, r, http.StatusBadRequest, "bad_request")
		return
	}
	req.GivenName, req.FamilyName = strings.TrimSpace(req.GivenName), strings.TrimSpace(req.FamilyName)
	if _, ok := attemptParam(req.Attempt); !ok {
		p.jsonError(w, r, http.StatusBadRequest, "bad_request")
		return
	}
	if !identity.ValidName(req.GivenName) || !identity.ValidName(req.FamilyName) {
		// A name with characters that would not show as themselves is
		// told apart from one missing or too long: the person cannot
		// see what to take out.
		msg := "passkey.err.enrol_name"
		if strings.ContainsFunc(req.GivenName+req.FamilyName, identity.HiddenRune) {
			msg += ".chars"
		}
		writeJSON(w, http.StatusBadRequest, apiError{Error: "enrol_name", Message: p.Pages.T(p.lang(r), msg)})
		return
	}
	switch req.Kind {
	case "":
		req.Kind = identity.KindFnr
	case identity.KindFnr, identity.KindDnr:
	default:
		p.jsonError(w, r, http.StatusBadRequest, "bad_request")
		return
	}
	born, err := p.birthDate(req.BirthDate)
	if err != nil {
		p.jsonError(w, r, http.StatusBadRequest, "enrol_birth")
		return
	}
	person, err := p.newSyntheticPerson(r, req, born)
	if err != nil {
		p.log().ErrorContext(ctx, "synthetic person", "err", err)
		p.jsonError(w, r, http.StatusInternalServerError, "internal")
		return
	}
	id, opts, err := p.WebAuthn.BeginRegistration(ctx, passkey.RegistrationRequest{
		Person: person, NewPerson: true, Name: p.defaultName(r, nil), Attempt: req.Attempt,
	})
	if err != nil {
		p.beginFailed(w, r, "begin enrolment", err)
		return
	}
	writeJSON(w, http.StatusOK, ceremonyReply{Ceremony: id, Options: opts})
}

// newSyntheticPerson makes up the person, with a number nobody holds yet.
func (p *Provider) newSyntheticPerson(r *http.Request, req enrolRequest, born time.Time) (*store.Person, error) {
	scheme := "no:" + req.Kind
	for range 20 {
		number, err := identity.SyntheticNO(p.rand(), req.Kind, born)
		if err != nil {
			return nil, err
		}
		_, err = p.Persons.GetPersonByIdentifier(r.Context(), scheme, number)
		if err == nil {
			continue
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		id, err := p.randomID(16)
		if err != nil {
			return nil, err
		}
		handle := make([]byte, 32)
		if _, err := io.ReadFull(p.rand(), handle); err != nil {
			return nil, err
		}
		return &store.Person{
			ID: id, WebAuthnID: handle, GivenName: req.GivenName, FamilyName: req.FamilyName,
			BirthDate:      born.Format(time.DateOnly),
			Identifiers:    []store.Identifier{{Scheme: scheme, Value: number}},
			ProofingLevel:  "high",
			ProofingMethod: "synthetic",
			Synthetic:      true,
		}, nil
	}
	return nil, errors.New("no free synthetic number for that birth date")
}

// defaultName labels a new passkey of a person who holds others:
// "Passkey 21 Nov 2026", "Passnøkkel 21.11.2026", the date as the page's
// language writes dates on the other pages (httpx.FormatDate), in the
// pages' zone, as the person's own calendar has it; numbered, "Passkey
// 21 Nov 2026 (2)", when one of others already has that name
// (nameApart), so that two passkeys added on one day can be told apart
// on the account page. It is stored as it reads, and renamed, if ever,
// as typed.
func (p *Provider) defaultName(r *http.Request, others []*store.Passkey) string {
	lang := p.lang(r)
	name := fmt.Sprintf(p.Pages.T(lang, "passkey.default_name"), httpx.FormatDate(lang, p.now().In(p.Pages.Location())))
	taken := make([]string, 0, len(others))
	for _, k := range others {
		taken = append(taken, k.Name)
	}
	return nameApart(name, taken)
}

// nameApart is name, or, when it reads as one of taken
// (store.SamePasskeyName), name numbered with the lowest number from 2
// up that makes it read as none of them: "Laptop (2)".
func nameApart(name string, taken []string) string {
	for n := 1; ; n++ {
		try := name
		if n > 1 {
			try = fmt.Sprintf("%s (%d)", name, n)
		}
		if !slices.ContainsFunc(taken, func(t string) bool { return store.SamePasskeyName(t, try) }) {
			return try
		}
	}
}

// enrolledTicket is what the enrolled page shows, once.
type enrolledTicket struct {
	Codes      []string `json:"codes"`
	Scheme     string   `json:"scheme"`
	Number     string   `json:"number"`
	GivenName  string   `json:"given_name"`
	FamilyName string   `json:"family_name"`
	Continue   string   `json:"continue"`
	// Attempt is the login the enrolment was part of: the page says
	// until when a service's login stays open.
	Attempt string `json:"attempt"`
}

// continueTicket finishes the login that the enrolment was, in the
// browser that enrolled: Browser is its formBinding. Without it, anyone
// could enrol a test person and have someone else's browser post the
// ticket, logging them in as that person (login CSRF).
type continueTicket struct {
	Attempt  string    `json:"attempt"`
	PersonID string    `json:"person"`
	UV       bool      `json:"uv"`
	BE       bool      `json:"be"`
	At       time.Time `json:"at"`
	Browser  string    `json:"browser"`
}

// enrolFinish: POST /passkey/enrol/finish?ceremony=… with the credential
// JSON → stores person, passkey and recovery codes →
// {"redirect": "/passkey/enrolled?t=…"}.
func (p *Provider) enrolFinish(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !p.SyntheticEnrolment {
		p.jsonError(w, r, http.StatusNotFound, "bad_request")
		return
	}
	if !isJSON(r) {
		p.jsonError(w, r, http.StatusUnsupportedMediaType, "bad_request")
		return
	}
	// The person, their passkey and the enrolment event are one write:
	// a person never exists without the event that says how they came.
	enrolled := func(pk *store.Passkey) []*store.AuditEvent {
		return p.changeEvents(ctx, &store.AuditEvent{Type: "enrolment", Result: store.ResultSuccess, PersonID: pk.PersonID,
			Details: map[string]string{"method": "synthetic", "credential": credentialRef(pk.CredentialID)}})
	}
	reg, err := p.WebAuthn.FinishRegistration(ctx, r.URL.Query().Get("ceremony"), "", readResponse(r), enrolled)
	if errors.Is(err, store.ErrOutcomeUnknown) && reg != nil {
		// The write got no answer: the store says whether the person,
		// their passkey and the enrolment event are stored (one write).
		if err = p.readBackRegistration(w, r, reg, err, "enrolment", "enrol", func(reason string) {
			p.auditFailure(ctx, "enrolment", reason, "synthetic", "")
		}); err != nil {
			return
		}
	}
	if err != nil {
		reason := passkey.Reason(err)
		if reason == "internal" {
			p.log().ErrorContext(ctx, "finish enrolment", "err", err)
		}
		p.auditFailure(ctx, "enrolment", reason, "synthetic", "")
		p.ceremonyError(w, r, statusFor(err), reason, "enrol")
		return
	}
	person := reg.Person
	// The person and their passkey are stored: codes that cannot be
	// stored now do not undo that. The enrolled page says so, and the
	// account page makes them.
	codes, err := p.replaceCodes(r, person.ID)
	if errors.Is(err, store.ErrBlocked) {
		// Blocked as they enrolled, after their passkey's write and
		// before their codes' (ADR 42): no codes are stored, and the
		// login goes to the broker now, which says the Varde ID is
		// blocked, rather than to a page offering codes they do not hold.
		next, err := p.Finisher.Finish(w, r, reg.Attempt, passkeyResult(person, reg.UserVerified, reg.BackupEligible, "", p.now()))
		if err != nil {
			p.failed(w, r, "finish enrolment of a blocked person", err)
			return
		}
		p.writeRedirect(w, next)
		return
	}
	if err != nil {
		p.log().ErrorContext(ctx, "enrolment recovery codes", "err", err)
		codes = nil
		if errors.Is(err, store.ErrOutcomeUnknown) {
			// The store could not say whether they are stored (see
			// replaceCodes): they may be, but are never shown. The person
			// is left with none, as the page says, so that the account
			// page counts none and offers to make them rather than
			// counting codes nobody saw.
			if err := p.RecoveryCodes.ReplaceRecoveryCodes(ctx, person.ID, nil, p.now()); err != nil {
				p.log().ErrorContext(ctx, "drop enrolment recovery codes not shown", "err", err)
			}
		}
	}

	// The browser gets its form cookie now if it has none, so that the
	// Continue ticket can name it. A ticket that cannot be stored, as
	// when the flow state is full, is answered as a begin would be: the
	// test person is stored, but nobody is shown their codes or logged
	// in as them, and the person begins again.
	token, err := p.formToken(w, r)
	if err != nil {
		p.log().ErrorContext(ctx, "form token", "err", err)
		p.jsonError(w, r, http.StatusInternalServerError, "internal")
		return
	}
	cont, err := p.putTicket(ctx, "continue", "", continueTicket{
		Attempt: reg.Attempt, PersonID: person.ID, UV: reg.UserVerified, BE: reg.BackupEligible, At: p.now(),
		Browser: formBinding(token),
	}, continueLifetime(reg.Attempt))
	if err != nil {
		p.beginFailed(w, r, "enrolment ticket", err)
		return
	}
	t := enrolledTicket{Codes: codes, GivenName: person.GivenName, FamilyName: person.FamilyName, Continue: cont, Attempt: reg.Attempt}
	if len(person.Identifiers) > 0 {
		t.Scheme, t.Number = person.Identifiers[0].Scheme, person.Identifiers[0].Value
	}
	view, err := p.putTicket(ctx, "enrolled", formBinding(token), t, ticketLifetime)
	if err != nil {
		// The Continue ticket's token is never sent: it goes, rather than
		// hold a place in a flow state that may be full until it expires.
		if err := p.takeTicket(ctx, "continue", "", cont, &continueTicket{}); err != nil {
			p.log().ErrorContext(ctx, "drop continue ticket", "err", err)
		}
		p.beginFailed(w, r, "enrolment ticket", err)
		return
	}
	p.writeRedirect(w, "/passkey/enrolled?"+url.Values{"t": {view}}.Encode())
}

type enrolledData struct {
	Name        string
	SchemeLabel string
	Number      string
	Codes       []string
	// File is Codes as a file to save (codesFile).
	File     template.URL
	Continue string
	CSRF     string
	// Timeout says until when a service's login stays open, nil for an
	// account login. The page offers no keep without script: loaded
	// again, it would not show the codes, which are shown once.
	Timeout *provider.LoginTimeout
}

// enrolledPage shows the recovery codes once, in the browser that
// enrolled: the ticket is bound to its form cookie and taken, so a
// reload shows an explanation instead, and a copied link opened in
// another browser finds nothing and leaves the codes to their owner.
func (p *Provider) enrolledPage(w http.ResponseWriter, r *http.Request) {
	var t enrolledTicket
	err := errNoTicket
	if v := p.formCookieValue(r); v != "" {
		err = p.takeTicket(r.Context(), "enrolled", formBinding(v), r.URL.Query().Get("t"), &t)
	}
	if err != nil {
		if errors.Is(err, errNoTicket) {
			p.Pages.Error(w, r, http.StatusGone, p.lang(r), errorPage("enrol.gone", ""))
			return
		}
		p.internalError(w, r, "enrolled ticket", err)
		return
	}
	token, err := p.formToken(w, r)
	if err != nil {
		p.internalError(w, r, "form token", err)
		return
	}
	lang := p.lang(r)
	p.Pages.Render(w, httpx.Once(r), http.StatusOK, "enrol_codes", lang, enrolledData{
		Name: strings.TrimSpace(t.GivenName + " " + t.FamilyName), SchemeLabel: p.schemeLabel(lang, t.Scheme),
		Number: t.Number, Codes: t.Codes, File: p.codesFile(lang, t.Codes), Continue: t.Continue, CSRF: token,
		Timeout: p.loginTimeout(r, t.Attempt, ""),
	})
}

// enrolledContinue finishes the login with the new passkey, once, and
// only in the browser that enrolled: the form must carry that browser's
// form token, and the ticket must name it. A post from another browser
// leaves the ticket to the one that enrolled.
func (p *Provider) enrolledContinue(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !p.Pages.ReadForm(w, r, p.lang(r)) {
		return
	}
	if !p.checkFormToken(r) {
		p.forbidden(w, r)
		return
	}
	var t continueTicket
	if err := p.takeTicket(ctx, "continue", "", r.PostFormValue("ticket"), &t); err != nil {
		if errors.Is(err, errTicketExpired) {
			p.Pages.Error(w, r, http.StatusBadRequest, p.lang(r), errorPage("enrol.expired", ""))
			return
		}
		if errors.Is(err, errNoTicket) {
			p.Pages.Error(w, r, http.StatusBadRequest, p.lang(r), errorPage("enrol.used", ""))
			return
		}
		p.internalError(w, r, "continue ticket", err)
		return
	}
	if !p.checkFormBinding(r, t.Browser) {
		// Not the enrolling browser: the ticket goes back, so that a post
		// from elsewhere does not take the login from the one who
		// enrolled.
		if err := p.restoreTicket(ctx, "continue", "", r.PostFormValue("ticket"), t, t.At.Add(continueLifetime(t.Attempt))); err != nil {
			p.log().ErrorContext(ctx, "restore continue ticket", "err", err)
		}
		p.auditFailure(ctx, "authentication", "wrong_browser", "passkey", t.PersonID)
		p.forbidden(w, r)
		return
	}
	person, err := p.Persons.GetPerson(ctx, t.PersonID)
	if err != nil {
		p.internalError(w, r, "enrolled person", err)
		return
	}
	res := passkeyResult(person, t.UV, t.BE, "", t.At)
	// Read just above, in this request (not the ticket's): the broker
	// checks the block on it rather than reading the person again.
	res.Person = person
	p.finishRedirect(w, r, t.Attempt, res)
}

// continueLifetime is how long the enrolled page's Continue works for
// a login attempt: ticketLifetime for an account login; for a service's
// login, as long as its request can be kept open (provider.MaxLoginTime),
// since the page warns before the request ends and extends it (ADR 50).
// The request bounds it: a Continue after the request ended finds it
// ended, and the person is told to start again from the service.
func continueLifetime(attempt string) time.Duration {
	if attempt == "" {
		return ticketLifetime
	}
	return max(ticketLifetime, provider.MaxLoginTime)
}

// errorPage names the keys prefix.title, prefix.message, prefix.next.
func errorPage(prefix, back string) httpx.ErrorPage {
	return httpx.ErrorPage{Title: prefix + ".title", Message: prefix + ".message", Next: prefix + ".next", BackURL: back}
}

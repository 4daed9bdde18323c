package providersim

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/oidc"
	"github.com/varde-eid/varde/internal/store"
)

// maxNumberLen bounds the typed number before it is parsed.
const maxNumberLen = 32

// personView is a person as the pages show it.
type personView struct {
	ID, Name, BirthDate, Scheme, Number string
	Checked                             bool
}

func (s *Sim) personViews(checked string) []personView {
	out := make([]personView, 0, len(s.cfg.Persons))
	for _, p := range s.cfg.Persons {
		out = append(out, personView{
			ID: p.ID, Name: p.Name(), BirthDate: p.BirthDate, Scheme: "sim.scheme." + schemeKey(p.Identifier.Scheme),
			Number: p.Identifier.Value, Checked: p.ID == checked,
		})
	}
	return out
}

func schemeKey(scheme string) string {
	if scheme == identity.SchemeNODnr {
		return "dnr"
	}
	return "fnr"
}

// simInfo is what every sim page shows about the sim. Level names the
// level on its own, as a value; LevelSentence says it inside a sentence,
// where the glossary's names are lower case, so each language has the
// whole sentence.
type simInfo struct {
	Name, Issuer, Level, LevelSentence string
}

func (s *Sim) info() simInfo {
	level := s.cfg.Level.String()
	return simInfo{Name: s.cfg.Name, Issuer: s.issuer, Level: "sim.level." + level, LevelSentence: "sim.login.level." + level}
}

// homeData is the data of sim_home.
type homeData struct {
	Sim     simInfo
	Persons []personView
}

func (s *Sim) home(w http.ResponseWriter, r *http.Request) {
	s.pages.Render(w, r, http.StatusOK, "sim_home", s.pages.Locale(r, nil), homeData{Sim: s.info(), Persons: s.personViews("")})
}

func (s *Sim) notFound(w http.ResponseWriter, r *http.Request) {
	s.pages.Error(w, r, http.StatusNotFound, s.pages.Locale(r, nil), httpx.NotFoundPage())
}

// loginData is the data of sim_login.
type loginData struct {
	Sim        simInfo
	ClientName string
	Req        string
	Persons    []personView
	Number     string
	// Error is a message key; CannotMeet says the request asks for a
	// higher level than the sim gives.
	Error      string
	CannotMeet bool
	// NumberInvalid says Error is about the typed number: the field is
	// marked invalid and described by the message (WCAG 3.3.1, 4.1.2).
	NumberInvalid bool
	// ChoiceInvalid says Error is about the choice of person: the group
	// of choices is described by the message.
	ChoiceInvalid bool
	Action        string
	CancelURL     string
}

// pendingRequest loads the authorization request a login is for, or
// shows the page that says why it cannot continue.
func (s *Sim) pendingRequest(w http.ResponseWriter, r *http.Request, id string) (*store.AuthRequest, *store.Client, bool) {
	ctx := r.Context()
	lang := s.pages.Locale(r, nil)
	if id == "" {
		s.pages.Error(w, r, http.StatusBadRequest, lang, errorPage("badrequest"))
		return nil, nil, false
	}
	req, err := s.cfg.Store.GetAuthRequest(ctx, id, s.cfg.Now())
	if errors.Is(err, store.ErrNotFound) {
		s.pages.Error(w, r, http.StatusBadRequest, lang, errorPage("expired"))
		return nil, nil, false
	}
	if err != nil {
		s.cfg.Log.ErrorContext(ctx, "provider sim login", "id", s.cfg.ID, "err", err)
		s.pages.Error(w, r, http.StatusInternalServerError, lang, errorPage("internal"))
		return nil, nil, false
	}
	if req.Pushed && !req.Used {
		s.pages.Error(w, r, http.StatusBadRequest, lang, errorPage("badrequest"))
		return nil, nil, false
	}
	c, err := s.cfg.Store.GetClient(ctx, req.ClientID)
	if err != nil {
		s.pages.Error(w, r, http.StatusBadRequest, lang, errorPage("badrequest"))
		return nil, nil, false
	}
	return req, c, true
}

func errorPage(kind string) httpx.ErrorPage {
	return httpx.ErrorPage{Title: "error." + kind + ".title", Message: "error." + kind + ".message", Next: "error." + kind + ".next"}
}

func (s *Sim) loginData(req *store.AuthRequest, c *store.Client) loginData {
	d := loginData{
		Sim: s.info(), ClientName: c.Name, Req: req.ID, Persons: s.personViews(""),
		CannotMeet: !assurance.Satisfies(s.cfg.Level, req.ACRValues),
		Action:     PathLogin,
		CancelURL:  oidc.PathCancel + "?req=" + url.QueryEscape(req.ID),
	}
	// A login_hint that is a synthetic number fills in the number field.
	if n, err := identity.ParseNO(req.LoginHint); err == nil && n.Synthetic() {
		d.Number = n.Value
	}
	return d
}

// loginPage shows the simulated eID login: pick a person or type a
// synthetic number.
func (s *Sim) loginPage(w http.ResponseWriter, r *http.Request) {
	req, c, ok := s.pendingRequest(w, r, r.URL.Query().Get("req"))
	if !ok {
		return
	}
	d := s.loginData(req, c)
	s.pages.Render(w, r, http.StatusOK, "sim_login", s.pages.Locale(r, req.UILocales), d)
}

// login is POST /sim/login: form req, and person (a Person.ID) or number
// (a synthetic no:fnr or no:dnr). It starts the sim's session at its
// level and sends the browser to /authorize/resume?req=.
func (s *Sim) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		s.pages.Error(w, r, http.StatusBadRequest, s.pages.Locale(r, nil), errorPage("badrequest"))
		return
	}
	// A browser says where a form came from; it must be one of our
	// pages. Programs that drive the login send no such header.
	if foreignOrigin(r) {
		s.pages.Error(w, r, http.StatusForbidden, s.pages.Locale(r, nil), errorPage("badrequest"))
		return
	}
	req, c, ok := s.pendingRequest(w, r, r.PostForm.Get("req"))
	if !ok {
		return
	}
	d := s.loginData(req, c)
	d.Persons = s.personViews(r.PostForm.Get("person"))
	lang := s.pages.Locale(r, req.UILocales)
	again := func(status int, key string) {
		d.Error = key
		d.NumberInvalid = key == "sim.err.number" || key == "sim.err.notsynthetic"
		d.ChoiceInvalid = key == "sim.err.choose"
		s.pages.Render(w, r, status, "sim_login", lang, d)
	}
	if d.CannotMeet {
		again(http.StatusForbidden, "sim.err.level")
		return
	}
	var who Person
	switch number, pid := strings.TrimSpace(r.PostForm.Get("number")), r.PostForm.Get("person"); {
	case number != "":
		d.Number = number
		if len(number) > maxNumberLen {
			again(http.StatusBadRequest, "sim.err.number")
			return
		}
		n, err := identity.ParseNO(number)
		if err != nil {
			again(http.StatusBadRequest, "sim.err.number")
			return
		}
		if !n.Synthetic() {
			// Never a real person's number, even in a simulation.
			again(http.StatusBadRequest, "sim.err.notsynthetic")
			return
		}
		d.Number = n.Value
		who = typedPerson(n)
		for _, p := range s.cfg.Persons {
			if p.Identifier == who.Identifier {
				who = p
			}
		}
	case pid != "":
		p, ok := s.personIDs[pid]
		if !ok {
			again(http.StatusBadRequest, "sim.err.choose")
			return
		}
		who = p
	default:
		again(http.StatusBadRequest, "sim.err.choose")
		return
	}
	personKey, err := ensurePerson(ctx, s.cfg.Store, who, s.cfg.Level.String(), s.cfg.Now(), s.cfg.Rand)
	if err != nil {
		s.cfg.Log.ErrorContext(ctx, "provider sim login", "id", s.cfg.ID, "err", err)
		s.pages.Error(w, r, http.StatusInternalServerError, lang, errorPage("internal"))
		return
	}
	sess := &store.Session{
		PersonID: personKey, Provider: s.cfg.ID, Level: s.cfg.Level.String(),
		AMR: s.cfg.AMR, AuthTime: s.cfg.Now(),
	}
	if err := s.sessions.Start(ctx, w, r, sess); err != nil {
		s.cfg.Log.ErrorContext(ctx, "provider sim login", "id", s.cfg.ID, "err", err)
		s.pages.Error(w, r, http.StatusInternalServerError, lang, errorPage("internal"))
		return
	}
	http.Redirect(w, r, oidc.PathResume+"?req="+url.QueryEscape(req.ID), http.StatusSeeOther)
}

// personJSON is one entry of GET /sim/persons.
type personJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	GivenName  string `json:"given_name"`
	FamilyName string `json:"family_name"`
	BirthDate  string `json:"birthdate"`
	Scheme     string `json:"scheme"`
	Value      string `json:"value"`
}

// personsJSON lists the seeded persons for programs that drive logins.
func (s *Sim) personsJSON(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Persons []personJSON `json:"persons"`
	}{}
	for _, p := range s.cfg.Persons {
		out.Persons = append(out.Persons, personJSON{
			ID: p.ID, Name: p.Name(), GivenName: p.GivenName, FamilyName: p.FamilyName,
			BirthDate: p.BirthDate, Scheme: p.Identifier.Scheme, Value: p.Identifier.Value,
		})
	}
	oauth2.WriteJSON(w, http.StatusOK, out)
}

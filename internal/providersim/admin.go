package providersim

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"strings"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/web"
)

// maxAdminBody caps admin request bodies.
const maxAdminBody = 4 << 10

// adminHandler serves the admin listener: the JSON API under a bearer
// token and the HTML page under a cookie holding the same token.
func (s *Sim) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathFault, s.bearer(s.getFault))
	mux.HandleFunc("POST "+PathFault, s.bearer(s.postFault))
	mux.HandleFunc("GET /{$}", s.adminPage)
	mux.HandleFunc("POST /{$}", s.adminForm)
	mux.HandleFunc("POST "+PathAdminSession, s.adminSession)
	if staticFS, err := fs.Sub(web.Static, "static"); err == nil {
		mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS)))
	}
	mux.HandleFunc("/", s.notFound)
	var h http.Handler = mux
	h = httpx.LimitBody(maxAdminBody, h)
	h = httpx.SecurityHeaders(h)
	h = httpx.AccessLog(s.cfg.Log, h)
	return httpx.WithRequestID(h)
}

// tokenOK compares a presented token with the admin token in constant
// time.
func (s *Sim) tokenOK(t string) bool {
	sum := sha256.Sum256([]byte(t))
	return t != "" && subtle.ConstantTimeCompare(sum[:], s.tokenHash[:]) == 1
}

// bearer requires the admin token as a bearer token (RFC 6750 §2.1).
func (s *Sim) bearer(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		scheme, tok, _ := strings.Cut(auth, " ")
		if !strings.EqualFold(scheme, "Bearer") || !s.tokenOK(strings.TrimSpace(tok)) {
			oauth2.WriteError(w, oauth2.InvalidToken("the admin token is missing or wrong"))
			return
		}
		next(w, r)
	}
}

func (s *Sim) getFault(w http.ResponseWriter, r *http.Request) {
	oauth2.WriteJSON(w, http.StatusOK, s.Fault())
}

// postFault sets the fault from {"mode":…,"delay":…}.
func (s *Sim) postFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&f); err != nil {
		msg := "body must be {\"mode\": \"ok|down|slow|failing\", \"delay\": \"3s\"}"
		if errors.Is(err, ErrFault) {
			msg = err.Error()
		}
		oauth2.WriteError(w, oauth2.InvalidRequest("%s", msg))
		return
	}
	got, err := s.SetFault(f)
	if err != nil {
		s.cfg.Log.Error("provider sim fault", "id", s.cfg.ID, "err", err)
		oauth2.WriteError(w, &oauth2.Error{Code: oauth2.CodeServerError, Description: "the fault could not be switched; see the sim's log"})
		return
	}
	oauth2.WriteJSON(w, http.StatusOK, got)
}

// adminCookie names the admin page's cookie; per sim, since cookies do
// not separate ports.
func (s *Sim) adminCookie() string { return "varde_sim_admin_" + s.cfg.ID }

func (s *Sim) adminAuthed(r *http.Request) bool {
	c, err := r.Cookie(s.adminCookie())
	return err == nil && s.tokenOK(c.Value)
}

// setAdminCookie keeps the admin token in a cookie the page's scripts
// cannot read, sent only from the sim's own pages, and, when the page
// was reached over https, only over https, as Varde's session cookie is.
func (s *Sim) setAdminCookie(w http.ResponseWriter, r *http.Request, token string) {
	http.SetCookie(w, &http.Cookie{
		Name: s.adminCookie(), Value: token, Path: "/", HttpOnly: true, Secure: overHTTPS(r), SameSite: http.SameSiteStrictMode,
	})
}

// overHTTPS reports whether the browser reached r over https: directly,
// or through a TLS proxy in front of the loopback listener, which says so
// in X-Forwarded-Proto, or in the Origin of a form. A forged header can
// only make the cookie stricter.
func overHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	if strings.EqualFold(strings.TrimSpace(proto), "https") {
		return true
	}
	o, err := url.Parse(r.Header.Get("Origin"))
	return err == nil && o.Scheme == "https"
}

// sameOrigin reports positive evidence that a browser form comes from a
// page of this origin: Sec-Fetch-Site, or, from browsers that do not
// send it, Origin naming this host, over http or https (a sim behind a
// TLS proxy is served over https while it is reached over http).
// (Under Referrer-Policy: no-referrer browsers send "Origin: null" even
// for their own forms.) Localhost ports are one site, so SameSite
// cookies alone would let another local page (Varde, another sim) post
// here.
func sameOrigin(r *http.Request) bool {
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" {
		return sfs == "same-origin"
	}
	o, err := url.Parse(r.Header.Get("Origin"))
	return err == nil && (o.Scheme == "http" || o.Scheme == "https") && o.Host == r.Host
}

// crossOrigin is the check the OpenID provider's cancel makes.
var crossOrigin = http.NewCrossOriginProtection()

// foreignOrigin reports browser evidence that a form comes from a page
// of another origin (Sec-Fetch-Site, or Origin against Host, as
// net/http checks them). Programs send neither header and pass.
func foreignOrigin(r *http.Request) bool {
	return crossOrigin.Check(r) != nil
}

// modeView is one button of the admin page.
type modeView struct {
	Mode    string
	Label   string
	Current bool
}

// adminData is the data of sim_admin.
type adminData struct {
	Sim       simInfo
	NeedToken bool
	Mode      string // message key of the current mode
	Delay     string
	Modes     []modeView
	Error     string // message key
}

func (s *Sim) adminData() adminData {
	f := s.Fault()
	d := adminData{Sim: s.info(), Mode: "sim.mode." + string(f.Mode), Delay: s.cfg.SlowDelay.String()}
	if f.Mode == ModeSlow {
		d.Delay = f.Delay.String()
	}
	for _, m := range modes {
		d.Modes = append(d.Modes, modeView{Mode: string(m), Label: "sim.admin.set." + string(m), Current: m == f.Mode})
	}
	return d
}

// adminPage shows the current fault and a button per mode. Opened as
// /?token=…, it keeps the token in a cookie and drops it from the URL,
// keeping a language asked for with ?lang=.
func (s *Sim) adminPage(w http.ResponseWriter, r *http.Request) {
	lang := s.pages.Locale(r, nil)
	if t := r.URL.Query().Get("token"); t != "" {
		if !s.tokenOK(t) {
			d := s.adminData()
			d.NeedToken, d.Error = true, "sim.admin.err.token"
			s.pages.Render(w, r, http.StatusUnauthorized, "sim_admin", lang, d)
			return
		}
		s.setAdminCookie(w, r, t)
		next := "/"
		if r.URL.Query().Has("lang") {
			next += "?" + url.Values{"lang": {lang}}.Encode()
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	d := s.adminData()
	status := http.StatusOK
	if !s.adminAuthed(r) {
		d.NeedToken, status = true, http.StatusUnauthorized
	}
	s.pages.Render(w, r, status, "sim_admin", lang, d)
}

// adminFormRefused is the page for an admin form the sim does not take
// (unreadable, or posted from another origin): it leads back to the
// admin page, not to a login the person was not making.
func adminFormRefused() httpx.ErrorPage {
	return httpx.ErrorPage{Title: "error.badrequest.title", Message: "error.badrequest.message", Next: "sim.admin.err.form", BackURL: "/"}
}

// adminSession takes the token typed on the admin page.
func (s *Sim) adminSession(w http.ResponseWriter, r *http.Request) {
	lang := s.pages.Locale(r, nil)
	if err := r.ParseForm(); err != nil || !sameOrigin(r) {
		s.pages.Error(w, r, http.StatusBadRequest, lang, adminFormRefused())
		return
	}
	t := strings.TrimSpace(r.PostForm.Get("token"))
	if !s.tokenOK(t) {
		d := s.adminData()
		d.NeedToken, d.Error = true, "sim.admin.err.token"
		s.pages.Render(w, r, http.StatusUnauthorized, "sim_admin", lang, d)
		return
	}
	s.setAdminCookie(w, r, t)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// adminForm switches the fault from the admin page's buttons.
func (s *Sim) adminForm(w http.ResponseWriter, r *http.Request) {
	lang := s.pages.Locale(r, nil)
	if err := r.ParseForm(); err != nil || !sameOrigin(r) {
		s.pages.Error(w, r, http.StatusBadRequest, lang, adminFormRefused())
		return
	}
	if !s.adminAuthed(r) {
		d := s.adminData()
		d.NeedToken = true
		s.pages.Render(w, r, http.StatusUnauthorized, "sim_admin", lang, d)
		return
	}
	f, err := ParseFault(r.PostForm.Get("mode"), strings.TrimSpace(r.PostForm.Get("delay")))
	if err != nil {
		d := s.adminData()
		d.Error = "sim.admin.err.fault"
		s.pages.Render(w, r, http.StatusBadRequest, "sim_admin", lang, d)
		return
	}
	if _, err := s.SetFault(f); err != nil {
		s.cfg.Log.Error("provider sim fault", "id", s.cfg.ID, "err", err)
		d := s.adminData()
		d.Error = "sim.admin.err.switch"
		s.pages.Render(w, r, http.StatusInternalServerError, "sim_admin", lang, d)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

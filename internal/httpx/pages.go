package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/language"
)

// Language is one language people can choose.
type Language struct {
	Tag  string // "nb", "en", "da"
	Name string // in the language itself: "Norsk bokmål", "English", "Dansk"
}

// Pages renders people-facing HTML in the person's language.
type Pages struct {
	languages []Language
	matcher   language.Matcher
	catalogs  map[string]map[string]string
	pages     map[string]*template.Template
	log       *slog.Logger

	// Secure sets the Secure flag of the language cookie, by the rule the
	// session cookie follows (always, except on http://localhost), and
	// its name's prefix (SecureName).
	Secure bool
	// Base is the path the node is served under, the issuer's path
	// ("/eid"), or "" at the root of its host: the pages' links, forms
	// and assets, and the language cookie's Path, are under it (Under).
	Base string
	// Support, when set, is the operator's help desk, which error pages,
	// a login page showing an error, the account page and the status
	// page name (the
	// "support" template in layout.html); nil, no page names one.
	Support *Support
	// TimeZone is the zone the pages show times in (Time, ZonedTime);
	// nil, UTC.
	TimeZone *time.Location
}

// Support is the operator's help desk (config.Support).
type Support struct {
	URL, Phone string
	// Hours are the opening hours per page language.
	Hours map[string]string
}

// SupportInfo is the help desk as a page in one language shows it.
type SupportInfo struct {
	URL, Phone, Hours string
	// Tel is the number as a tel: link (RFC 3966), its digits and a
	// leading '+' only.
	Tel template.URL
}

// telURL is phone as a tel: URL; config.Support has checked that it
// holds nothing but digits, spaces, '+', '-', '(' and ')'.
func telURL(phone string) template.URL {
	var b strings.Builder
	for i, r := range phone {
		if r >= '0' && r <= '9' || r == '+' && i == 0 {
			b.WriteRune(r)
		}
	}
	return template.URL("tel:" + b.String())
}

// PageData is what every template receives.
type PageData struct {
	Lang      string
	Languages []LanguageLink
	RequestID string
	// Data is the page's own data.
	Data any
	// Support is the operator's help desk, nil if none is configured.
	Support *SupportInfo
}

// LanguageLink is a link to the same page in another language.
type LanguageLink struct {
	Tag, Name, URL string
	Current        bool
}

// NewPages loads every page in templates (except layout.html, which wraps
// them) and one catalogue per language from locales/<tag>.json. The first
// language is the fallback. Every key in any catalogue must exist in all.
func NewPages(templates, locales fs.FS, langs []Language, log *slog.Logger) (*Pages, error) {
	p := &Pages{languages: langs, catalogs: map[string]map[string]string{}, pages: map[string]*template.Template{}, log: log}
	var tags []language.Tag
	for _, l := range langs {
		cat, err := loadCatalog(locales, l.Tag)
		if err != nil {
			return nil, err
		}
		p.catalogs[l.Tag] = cat
		tags = append(tags, language.MustParse(l.Tag))
	}
	if err := p.checkCatalogs(); err != nil {
		return nil, err
	}
	p.matcher = language.NewMatcher(tags)
	files, err := fs.Glob(templates, "templates/*.html")
	if err != nil {
		return nil, err
	}
	funcs := template.FuncMap{"t": func(string) string { return "" }, "tf": func(string, ...any) string { return "" }, "url": p.urlFunc}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templates, "templates/layout.html", f)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		p.pages[name] = t
	}
	return p, nil
}

// loadCatalog merges locales/<tag>.json and any locales/<tag>.<part>.json,
// so each area of the product keeps its own file; a key defined twice is
// an error.
func loadCatalog(locales fs.FS, tag string) (map[string]string, error) {
	parts, err := fs.Glob(locales, "locales/"+tag+".*json")
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("locale %s: no catalogue", tag)
	}
	cat := map[string]string{}
	for _, f := range parts {
		raw, err := fs.ReadFile(locales, f)
		if err != nil {
			return nil, fmt.Errorf("locale %s: %w", tag, err)
		}
		part := map[string]string{}
		if err := json.Unmarshal(raw, &part); err != nil {
			return nil, fmt.Errorf("locale %s: %w", f, err)
		}
		for k, v := range part {
			if _, dup := cat[k]; dup {
				return nil, fmt.Errorf("locale %s: key %q defined twice", f, k)
			}
			cat[k] = v
		}
	}
	return cat, nil
}

func (p *Pages) checkCatalogs() error {
	var missing []string
	for tag, cat := range p.catalogs {
		for other, ocat := range p.catalogs {
			for k := range ocat {
				if _, ok := cat[k]; !ok {
					missing = append(missing, fmt.Sprintf("%s lacks %q (in %s)", tag, k, other))
				}
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("locales: %s", strings.Join(missing, "; "))
	}
	return nil
}

// Languages returns the supported languages.
func (p *Pages) Languages() []Language { return p.languages }

// Locale picks the page language: an explicit ?lang= choice, then the
// language cookie (LangCookie, named by SecureName), then preferred (for example OIDC ui_locales; the
// first maxPreferred of them, each at most maxTagLen long), then
// Accept-Language, then the first language.
func (p *Pages) Locale(r *http.Request, preferred []string) string {
	if l := r.URL.Query().Get("lang"); p.known(l) {
		return l
	}
	if c, err := r.Cookie(p.langCookieName()); err == nil && p.known(c.Value) {
		return c.Value
	}
	var prefs []language.Tag
	// Only the first few, and none too long: ui_locales comes from the
	// request, and parsing takes time that grows with the square of a
	// tag's length (seconds for a megabyte), besides a quarter of a second
	// to match a megabyte of short ones, on any page a request can ask for.
	for _, s := range preferred[:min(len(preferred), maxPreferred)] {
		if len(s) > maxTagLen {
			continue
		}
		if t, err := language.Parse(s); err == nil {
			prefs = append(prefs, t)
		}
	}
	if accept, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language")); err == nil {
		prefs = append(prefs, accept...)
	}
	if len(prefs) == 0 {
		return p.languages[0].Tag
	}
	_, i, conf := p.matcher.Match(prefs...)
	if conf == language.No {
		return p.languages[0].Tag
	}
	return p.languages[i].Tag
}

// maxPreferred is how many of the preferred languages given to Locale
// it considers, in order; the rest are ignored, as is one longer than
// maxTagLen (RFC 5646 §4.4.1: 35 characters hold any tag in use).
const (
	maxPreferred = 8
	maxTagLen    = 35
)

func (p *Pages) known(tag string) bool {
	_, ok := p.catalogs[tag]
	return ok
}

// T translates key into lang, falling back to the first language and then
// to the key itself.
func (p *Pages) T(lang, key string) string {
	if s, ok := p.catalogs[lang][key]; ok {
		return s
	}
	if s, ok := p.catalogs[p.languages[0].Tag][key]; ok {
		return s
	}
	return key
}

// URL is ref, a root-relative path on this node ("/account") or any
// other reference, as a browser must follow it: under Base (Prefixed).
func (p *Pages) URL(ref string) string {
	if p == nil {
		return ref
	}
	return Prefixed(p.Base, ref)
}

// CookiePath is the Path of the node's cookies: Base, or "/" at the
// root of the host.
func (p *Pages) CookiePath() string {
	if p == nil || p.Base == "" {
		return "/"
	}
	return p.Base
}

// urlFunc is the templates' "url": a link, form action or asset named
// by a root-relative path is put under Base. It keeps a template.URL
// (a tel: link) as it is.
func (p *Pages) urlFunc(ref any) any {
	if s, ok := ref.(string); ok {
		return p.URL(s)
	}
	return ref
}

// Render writes page name with status in lang. A "lang" query choice is
// remembered in a cookie.
func (p *Pages) Render(w http.ResponseWriter, r *http.Request, status int, name, lang string, data any) {
	t, ok := p.pages[name]
	if !ok {
		p.log.Error("unknown page template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if q := r.URL.Query().Get("lang"); q == lang {
		http.SetCookie(w, &http.Cookie{Name: p.langCookieName(), Value: lang, Path: p.CookiePath(), MaxAge: 365 * 24 * 3600, HttpOnly: true, Secure: p.Secure, SameSite: http.SameSiteLaxMode})
	}
	t, err := t.Clone()
	if err == nil {
		t = t.Funcs(template.FuncMap{
			"t":  func(key string) string { return p.T(lang, key) },
			"tf": func(key string, args ...any) string { return fmt.Sprintf(p.T(lang, key), args...) },
		})
	}
	pd := PageData{Lang: lang, RequestID: RequestID(r.Context()), Data: data}
	if sp := p.Support; sp != nil && (sp.URL != "" || sp.Phone != "") {
		pd.Support = &SupportInfo{URL: sp.URL, Phone: sp.Phone, Hours: sp.Hours[lang]}
		if sp.Phone != "" {
			pd.Support.Tel = telURL(sp.Phone)
		}
	}
	for _, l := range p.languages {
		if !switchable(r) {
			break
		}
		// Query only, relative to the page itself: a link built from the
		// request's path could name another host (a path of "/%2Fevil.example"
		// decodes to "//evil.example").
		q := linkQuery(r)
		q.Set("lang", l.Tag)
		pd.Languages = append(pd.Languages, LanguageLink{Tag: l.Tag, Name: l.Name, URL: "?" + q.Encode(), Current: l.Tag == lang})
	}
	var buf bytes.Buffer
	if err == nil {
		err = t.Execute(&buf, pd)
	}
	if err != nil {
		p.log.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Language", lang)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// linkParams are the query parameters the language links keep: those
// that name the step a page shows (a login's req, a provider's attempt,
// a message key, a report's period, the passkey a page asks whether to
// remove), which asking for the page again
// repeats harmlessly. The rest stay out: at a callback the query holds
// a code and a state meant for Varde alone and good once, which a link
// would put into what the person shares or bookmarks, and replay when
// followed; a notice or ticket in the query is single-use too.
var linkParams = [...]string{"req", "attempt", "err", "why", "done", "provider", "quarter", "from", "to", "credential"}

// linkQuery is the query of r that its page's language links keep.
func linkQuery(r *http.Request) url.Values {
	all := r.URL.Query()
	if keep, _ := r.Context().Value(keepQueryKey{}).(bool); keep {
		return all
	}
	q := url.Values{}
	for _, k := range linkParams {
		if v, ok := all[k]; ok {
			q[k] = v
		}
	}
	return q
}

type keepQueryKey struct{}

// KeepQuery marks r as a relying party's own request to an endpoint
// that answers with a page (authorization, logout): its language links
// keep the whole query, which is the request the page answers, as the
// relying party sent it.
func KeepQuery(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), keepQueryKey{}, true))
}

type onceKey struct{}

// Once marks r as asking for a page that cannot be shown twice, such as
// new recovery codes read from a single-use ticket: Render leaves out the
// language links, since following one would ask for the page again.
func Once(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), onceKey{}, true))
}

// switchable reports whether the page answering r can be asked for again
// in another language by a link to its own address with another lang: a
// GET that is not Once. A page that answers a form posted (a refusal, or
// what the form made) cannot: the link would ask for it by GET, without
// the form.
func switchable(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	once, _ := r.Context().Value(onceKey{}).(bool)
	return !once
}

// ErrorPage is the data of the "error" page: message keys, not text.
// MessageArg and NextArg, when set, are text (already in the page's
// language) that fills the message's, or the next step's, one %s.
type ErrorPage struct {
	Title, Message, Next string
	MessageArg, NextArg  string
	BackURL              string
	// Service and ServiceURL, when set, are the name of the service the
	// person came from and the address, as the service registered it, of
	// a link back to it.
	Service, ServiceURL string
	// CancelURL, when set, is where the page's button posts to end the
	// login, which sends the person back to the service (oidc.PathCancel:
	// a GET there only asks whether to).
	CancelURL string
}

// TooLargePage is the page for a form whose body was over the limit
// (413).
func TooLargePage() ErrorPage {
	return ErrorPage{Title: "error.toolarge.title", Message: "error.toolarge.message", Next: "error.toolarge.next"}
}

// ReadForm parses r's form. A body over its limit (LimitBody) is
// answered 413 with TooLargePage, and one that is malformed 400, in
// lang; ReadForm then reports false and the handler must stop. A
// handler that reads a posted form calls it first: PostFormValue hides
// the failure, and the form would look empty, a missing CSRF token
// refused as forged.
func (p *Pages) ReadForm(w http.ResponseWriter, r *http.Request, lang string) bool {
	err := r.ParseForm()
	if err == nil {
		return true
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		p.Error(w, r, http.StatusRequestEntityTooLarge, lang, TooLargePage())
		return false
	}
	p.Error(w, r, http.StatusBadRequest, lang, BadRequestPage())
	return false
}

// BadRequestPage is the page for a request that was not complete or was
// changed (400): the person goes back and starts again.
func BadRequestPage() ErrorPage {
	return ErrorPage{Title: "error.badrequest.title", Message: "error.badrequest.message", Next: "error.badrequest.next"}
}

// NotFoundPage is the page for an address Varde does not serve.
func NotFoundPage() ErrorPage {
	return ErrorPage{Title: "error.notfound.title", Message: "error.notfound.message", Next: "error.notfound.next"}
}

// WrongMethodPage is the page for a method an address does not serve
// (405).
func WrongMethodPage() ErrorPage {
	return ErrorPage{Title: "error.wrongmethod.title", Message: "error.wrongmethod.message", Next: "error.wrongmethod.next"}
}

// WrongMethod answers a method a page's address does not serve: 405
// with the methods it does, HEAD with GET, in Allow (RFC 9110 §15.5.6),
// and a plain-language page in the person's language, instead of the
// mux's English plain text. It is mounted at the path with no method, so
// the mux routes to it only the methods no other pattern serves.
func (p *Pages) WrongMethod(methods ...string) http.Handler {
	allow := slices.Clone(methods)
	if slices.Contains(allow, http.MethodGet) && !slices.Contains(allow, http.MethodHead) {
		allow = append(allow, http.MethodHead)
	}
	allowed := strings.Join(allow, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allowed)
		p.Error(w, r, http.StatusMethodNotAllowed, p.Locale(r, strings.Fields(r.URL.Query().Get("ui_locales"))), WrongMethodPage())
	})
}

// UnknownLoginPage is the page for a login that Varde does not hold:
// made up, expired, finished already, or removed with its client
// (store.Clients.DeleteClient deletes the client's logins in progress).
// Nothing says which, so the page names them all, and does not promise
// that starting again works.
func UnknownLoginPage() ErrorPage {
	return ErrorPage{Title: "error.unknownlogin.title", Message: "error.unknownlogin.message", Next: "error.unknownlogin.next"}
}

// UnavailablePage is the page for a request that could not be served
// because the store could not be reached or is overloaded
// (store.Unavailable): nothing was lost, and it was not the person's
// fault; they can try again in a minute. Pages.Unavailable answers with
// it.
func UnavailablePage() ErrorPage {
	return ErrorPage{Title: "error.unavailable.title", Message: "error.unavailable.message", Next: "error.unavailable.next"}
}

// BusyRetry is the Retry-After, in seconds, of an answer refused
// because the node's flow state is full (a flood of starts, or more
// logins and changes in progress than the node may hold).
const BusyRetry = 60

// BusyPage is the page for such an answer (503, Retry-After BusyRetry):
// too many people are logging in here; try again in a minute.
func BusyPage() ErrorPage {
	return ErrorPage{Title: "error.busy.title", Message: "error.unavailable.message", Next: "error.unavailable.next"}
}

// UnavailableRetry is the Retry-After, in seconds, of a page answered
// with Pages.Unavailable: long enough for a database restart or
// failover.
const UnavailableRetry = 30

// Unavailable answers 503 with Retry-After UnavailableRetry and e in
// lang: UnavailablePage, or that page with its next step or way back
// changed where trying again is not the whole answer.
func (p *Pages) Unavailable(w http.ResponseWriter, r *http.Request, lang string, e ErrorPage) {
	w.Header().Set("Retry-After", strconv.Itoa(UnavailableRetry))
	p.Error(w, r, http.StatusServiceUnavailable, lang, e)
}

// Error renders a plain-language error page.
func (p *Pages) Error(w http.ResponseWriter, r *http.Request, status int, lang string, e ErrorPage) {
	p.Render(w, r, status, "error", lang, e)
}

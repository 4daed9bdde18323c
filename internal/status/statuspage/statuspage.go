package statuspage

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/status"
	"github.com/varde-eid/varde/internal/store"
)

// Source is what the status page publishes; package status's service
// implements it.
type Source interface {
	Summary(ctx context.Context) (*status.Summary, error)
	// Incident returns store.ErrNotFound when id is unknown.
	Incident(ctx context.Context, id string) (*status.Incident, error)
	// Report covers [from, to); title names the period.
	Report(ctx context.Context, from, to time.Time, title string) (*status.Report, error)
}

// Handler serves the status page, its JSON API and its Atom feed.
type Handler struct {
	Source Source
	Pages  *httpx.Pages
	// BaseURL is the public issuer URL ("https://id.example.no"), for the
	// feed's absolute links and ids.
	BaseURL string
	Now     func() time.Time
	Log     *slog.Logger
}

// Register mounts the status routes on mux (see the package comment).
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /status", h.servePage)
	mux.HandleFunc("GET /status/incidents/{id}", h.serveIncident)
	mux.HandleFunc("GET /status/reports", h.serveReport)
	mux.HandleFunc("GET /status/feed.atom", h.serveFeed)
	mux.HandleFunc("GET /status/api/v1/summary", h.apiSummary)
	mux.HandleFunc("GET /status/api/v1/components", h.apiComponents)
	mux.HandleFunc("GET /status/api/v1/incidents", h.apiIncidents)
	mux.HandleFunc("GET /status/api/v1/incidents/{id}", h.apiIncident)
	mux.HandleFunc("GET /status/api/v1/reports", h.apiReport)
	mux.HandleFunc("GET /status/api/", h.apiNotFound)
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.New(slog.DiscardHandler)
}

// busyRetry is the Retry-After, in seconds, of a report or incident
// refused because the node is computing as many as it may at once
// (status.ErrBusy): about the time one takes, and the time for which the
// service then shares it. Not logged: a flood would fill the log too.
const busyRetry = 10

// storeRetry is the Retry-After, in seconds, of an answer refused because
// the store could not be reached or is overloaded (store.ErrUnavailable):
// long enough for a database restart or failover.
const storeRetry = 30

// validID is what an incident ID may look like: it names files in the
// export, so no separators and no leading dot.
var validID = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`)

func (h *Handler) servePage(w http.ResponseWriter, r *http.Request) {
	lang := h.Pages.Locale(r, nil)
	s, err := h.Source.Summary(r.Context())
	if err != nil {
		h.internalError(w, r, lang, "status summary", err)
		return
	}
	v := newViewer(h.Pages, lang, h.now(), servedLinks())
	h.Pages.Render(w, r, http.StatusOK, "status", lang, v.homePage(s, servedLangLinks(h.Pages, r, lang)))
}

func (h *Handler) serveIncident(w http.ResponseWriter, r *http.Request) {
	lang := h.Pages.Locale(r, nil)
	id := r.PathValue("id")
	inc, err := h.incident(r.Context(), id)
	if errors.Is(err, status.ErrBusy) {
		w.Header().Set("Retry-After", strconv.Itoa(busyRetry))
		h.Pages.Error(w, r, http.StatusServiceUnavailable, lang, httpx.ErrorPage{
			Title: "status.busyincident.title", Message: "status.busyincident.message", Next: "status.busy.next", BackURL: "/status",
		})
		return
	}
	if errors.Is(err, store.ErrNotFound) {
		h.Pages.Error(w, r, http.StatusNotFound, lang, httpx.ErrorPage{
			Title: "status.notfound.title", Message: "status.notfound.message", BackURL: "/status",
		})
		return
	}
	if err != nil {
		h.internalError(w, r, lang, "status incident", err)
		return
	}
	s, err := h.Source.Summary(r.Context())
	if err != nil {
		h.internalError(w, r, lang, "status summary", err)
		return
	}
	v := newViewer(h.Pages, lang, h.now(), servedLinks())
	h.Pages.Render(w, r, http.StatusOK, "status", lang, v.incidentPage(s, inc, servedLangLinks(h.Pages, r, lang)))
}

// incident looks id up, treating a malformed id as unknown.
func (h *Handler) incident(ctx context.Context, id string) (*status.Incident, error) {
	if !validID.MatchString(id) {
		return nil, store.ErrNotFound
	}
	return h.Source.Incident(ctx, id)
}

func (h *Handler) serveReport(w http.ResponseWriter, r *http.Request) {
	lang := h.Pages.Locale(r, nil)
	p, err := ParsePeriod(r.URL.Query(), h.now(), h.Pages.Location())
	if err != nil {
		form, fromForm := refusedForm(r.URL.Query(), h.Pages.Location())
		if !fromForm {
			h.Pages.Error(w, r, http.StatusBadRequest, lang, httpx.ErrorPage{
				Title: "status.badperiod.title", Message: "status.badperiod.message", Next: "status.badperiod.next", BackURL: "/status/reports",
			})
			return
		}
		// A period typed into the report form comes back to the form,
		// over the current quarter's report, as typed, the message tied
		// to the field at fault (WCAG 3.3.1, 3.3.3, 3.3.7).
		if p, err = ParsePeriod(url.Values{}, h.now(), h.Pages.Location()); err != nil {
			h.internalError(w, r, lang, "current quarter", err)
			return
		}
		h.renderReport(w, r, lang, p, form)
		return
	}
	h.renderReport(w, r, lang, p, nil)
}

// renderReport answers with the report for period p: 200, or, with the
// form of a period refused, 400 and that form.
func (h *Handler) renderReport(w http.ResponseWriter, r *http.Request, lang string, p Period, form *periodForm) {
	rep, err := h.Source.Report(r.Context(), p.From, p.To, p.Title)
	if errors.Is(err, status.ErrBusy) {
		w.Header().Set("Retry-After", strconv.Itoa(busyRetry))
		h.Pages.Error(w, r, http.StatusServiceUnavailable, lang, httpx.ErrorPage{
			Title: "status.busy.title", Message: "status.busy.message", Next: "status.busy.next", BackURL: "/status",
		})
		return
	}
	if err != nil {
		h.internalError(w, r, lang, "status report", err)
		return
	}
	s, err := h.Source.Summary(r.Context())
	if err != nil {
		h.internalError(w, r, lang, "status summary", err)
		return
	}
	v := newViewer(h.Pages, lang, h.now(), servedLinks())
	d := v.reportPage(s, rep, p, servedLangLinks(h.Pages, r, lang))
	code := http.StatusOK
	if form != nil {
		code = http.StatusBadRequest
		d.Report.Form = form
		d.Title = v.tf("layout.error", d.Title)
	}
	h.Pages.Render(w, r, code, "status", lang, d)
}

func (h *Handler) serveFeed(w http.ResponseWriter, r *http.Request) {
	lang := h.Pages.Locale(r, nil)
	s, err := h.Source.Summary(r.Context())
	if err != nil {
		h.internalError(w, r, lang, "status summary", err)
		return
	}
	v := newViewer(h.Pages, lang, h.now(), servedLinks())
	body, err := v.feed(s, h.BaseURL, feedLinks{
		self:     absURL(h.BaseURL, "/status/feed.atom", lang),
		page:     absURL(h.BaseURL, "/status", lang),
		incident: func(id string) string { return absURL(h.BaseURL, "/status/incidents/"+id, lang) },
	})
	if err != nil {
		h.internalError(w, r, lang, "status feed", err)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/atom+xml; charset=utf-8")
	hd.Set("Cache-Control", h.cacheControl(s.GeneratedAt))
	hd.Set("Access-Control-Allow-Origin", "*")
	hd.Set("Vary", "Accept-Language, Cookie")
	_, _ = w.Write(body)
}

// internalError tells people the status could not be shown: 503 with
// Retry-After when the store could not be reached (store.ErrUnavailable),
// 500 otherwise; the page shows the request ID either way.
func (h *Handler) internalError(w http.ResponseWriter, r *http.Request, lang, what string, err error) {
	code := http.StatusInternalServerError
	if store.Unavailable(err) {
		code = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", strconv.Itoa(storeRetry))
		h.log().Warn(what, "err", err, "req", httpx.RequestID(r.Context()))
	} else {
		h.log().Error(what, "err", err, "req", httpx.RequestID(r.Context()))
	}
	h.Pages.Error(w, r, code, lang, httpx.ErrorPage{
		Title: "status.unavailable.title", Message: "status.unavailable.message", Next: "status.unavailable.next",
	})
}

package statuspage

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/status"
	"github.com/varde-eid/varde/internal/store"
)

// componentsDoc is GET /status/api/v1/components: the summary's fields
// about components, under the summary's names.
type componentsDoc struct {
	Version     int                `json:"version"`
	GeneratedAt time.Time          `json:"generated_at"`
	Node        string             `json:"node"`
	Overall     status.State       `json:"overall"`
	Components  []status.Component `json:"components"`
}

// incidentsDoc is GET /status/api/v1/incidents.
type incidentsDoc struct {
	Version     int               `json:"version"`
	GeneratedAt time.Time         `json:"generated_at"`
	Open        []status.Incident `json:"open_incidents"`
	Recent      []status.Incident `json:"recent_incidents"`
}

func componentsOf(s *status.Summary) componentsDoc {
	return componentsDoc{Version: s.Version, GeneratedAt: s.GeneratedAt, Node: s.Node, Overall: s.Overall, Components: s.Components}
}

func incidentsOf(s *status.Summary) incidentsDoc {
	return incidentsDoc{Version: s.Version, GeneratedAt: s.GeneratedAt, Open: s.Open, Recent: s.Recent}
}

// encodeJSON is the one encoding of API documents, so the export's files
// are byte for byte what the API answers.
func encodeJSON(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	return append(b, '\n'), nil
}

// apiError is the body of an API error.
type apiError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	// RequestID is the request's X-Request-Id, for the caller to quote
	// to the operator, who finds the cause of a 500 or 503 logged under
	// it.
	RequestID string `json:"request_id,omitempty"`
}

// shareFor is how long the service shares a computed summary, report or
// incident (status.Config.CacheFor, 10 s by default), and so the longest
// an answer may be kept once computed.
const shareFor = 10 * time.Second

// cacheControl is the Cache-Control of an answer computed at computed:
// public, for what is left of shareFor (RFC 9111 section 5.2.2.1), so
// that a cache in front of the node keeps it no longer than the node
// would. A zero computed is taken as now.
func (h *Handler) cacheControl(computed time.Time) string {
	left := shareFor
	if !computed.IsZero() {
		left = min(shareFor, max(0, shareFor-h.now().Sub(computed)))
	}
	return "public, max-age=" + strconv.Itoa(int(left/time.Second))
}

// writeJSON writes v with status code; computed is when a 200's data was
// computed, for its Cache-Control. A v that cannot be encoded is a 500
// naming r's request ID, as every error of the API does.
func (h *Handler) writeJSON(w http.ResponseWriter, r *http.Request, code int, v any, computed time.Time) {
	b, err := encodeJSON(v)
	if err != nil {
		id := httpx.RequestID(r.Context())
		h.log().Error("status api", "err", err, "req", id)
		code = http.StatusInternalServerError
		b, _ = encodeJSON(apiError{Error: "server_error", Description: "the response could not be encoded", RequestID: id})
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Access-Control-Allow-Origin", "*")
	hd.Set("X-Content-Type-Options", "nosniff")
	if code == http.StatusOK {
		hd.Set("Cache-Control", h.cacheControl(computed))
	} else {
		hd.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// apiFail writes an API error with r's request ID.
func (h *Handler) apiFail(w http.ResponseWriter, r *http.Request, code int, errCode, desc string) {
	h.writeJSON(w, r, code, apiError{Error: errCode, Description: desc, RequestID: httpx.RequestID(r.Context())}, time.Time{})
}

// apiSourceError answers a source that failed: 503
// temporarily_unavailable with Retry-After when the store could not be
// reached or is overloaded (store.ErrUnavailable), which a client may
// try again, and 500 server_error otherwise.
func (h *Handler) apiSourceError(w http.ResponseWriter, r *http.Request, what string, err error) {
	id := httpx.RequestID(r.Context())
	if store.Unavailable(err) {
		h.log().Warn(what, "err", err, "req", id)
		w.Header().Set("Retry-After", strconv.Itoa(storeRetry))
		h.apiFail(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "the status service cannot reach its records just now; try again after Retry-After seconds")
		return
	}
	h.log().Error(what, "err", err, "req", id)
	h.apiFail(w, r, http.StatusInternalServerError, "server_error", "the status service could not answer; try again shortly")
}

func (h *Handler) apiSummary(w http.ResponseWriter, r *http.Request) {
	s, err := h.Source.Summary(r.Context())
	if err != nil {
		h.apiSourceError(w, r, "status summary", err)
		return
	}
	h.writeJSON(w, r, http.StatusOK, s, s.GeneratedAt)
}

func (h *Handler) apiComponents(w http.ResponseWriter, r *http.Request) {
	s, err := h.Source.Summary(r.Context())
	if err != nil {
		h.apiSourceError(w, r, "status summary", err)
		return
	}
	h.writeJSON(w, r, http.StatusOK, componentsOf(s), s.GeneratedAt)
}

func (h *Handler) apiIncidents(w http.ResponseWriter, r *http.Request) {
	s, err := h.Source.Summary(r.Context())
	if err != nil {
		h.apiSourceError(w, r, "status summary", err)
		return
	}
	h.writeJSON(w, r, http.StatusOK, incidentsOf(s), s.GeneratedAt)
}

func (h *Handler) apiIncident(w http.ResponseWriter, r *http.Request) {
	inc, err := h.incident(r.Context(), r.PathValue("id"))
	if errors.Is(err, status.ErrBusy) {
		w.Header().Set("Retry-After", strconv.Itoa(busyRetry))
		h.apiFail(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "the node is looking up as many incidents as it may at once; try again after Retry-After seconds")
		return
	}
	if errors.Is(err, store.ErrNotFound) {
		h.apiFail(w, r, http.StatusNotFound, "not_found", "no incident has that id")
		return
	}
	if err != nil {
		h.apiSourceError(w, r, "status incident", err)
		return
	}
	h.writeJSON(w, r, http.StatusOK, inc, inc.ReadAt)
}

func (h *Handler) apiReport(w http.ResponseWriter, r *http.Request) {
	p, err := ParsePeriod(r.URL.Query(), h.now(), h.Pages.Location())
	if err != nil {
		h.apiFail(w, r, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	rep, err := h.Source.Report(r.Context(), p.From, p.To, p.Title)
	if errors.Is(err, status.ErrBusy) {
		w.Header().Set("Retry-After", strconv.Itoa(busyRetry))
		h.apiFail(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "the node is computing as many reports as it may at once; try again after Retry-After seconds")
		return
	}
	if err != nil {
		h.apiSourceError(w, r, "status report", err)
		return
	}
	h.writeJSON(w, r, http.StatusOK, rep, rep.GeneratedAt)
}

func (h *Handler) apiNotFound(w http.ResponseWriter, r *http.Request) {
	h.apiFail(w, r, http.StatusNotFound, "not_found", "no such API resource")
}

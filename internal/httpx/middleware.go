package httpx

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"
)

type ctxKey int

const requestIDKey ctxKey = 0

// RequestID returns the request's ID set by the RequestID middleware.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// WithRequestID assigns each request a random ID (echoed as X-Request-Id)
// for correlating logs with what a person reports.
func WithRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [9]byte
		_, _ = rand.Read(b[:])
		id := base64.RawURLEncoding.EncodeToString(b[:])
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// SecurityHeaders sets headers every response carries: a strict CSP (no
// inline script; scripts only from /static), no framing, no sniffing, and
// no path or query in a Referer, where codes and login references are.
//
// The referrer policy is strict-origin rather than no-referrer: under
// no-referrer a browser sends "Origin: null" with every form POST, even
// to Varde's own origin (Fetch, "serializing a request origin"), and a
// browser that sends no Sec-Fetch-Site is told from another site only
// by Origin: Varde's own forms whose POST is checked for its site (the
// cancel of a login, the repost of ADR 58) were refused or sent round
// again (ADR 59). strict-origin sends the origin alone, and nothing from
// https to http.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self' http: https:; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "strict-origin")
		next.ServeHTTP(w, r)
	})
}

// HSTSMaxAge is the Strict-Transport-Security max-age StrictTransport
// sends: a year, as browsers' preload lists ask.
const HSTSMaxAge = 365 * 24 * time.Hour

// StrictTransport tells browsers to reach this host over HTTPS only,
// for HSTSMaxAge (RFC 6797), so that no one on the network can serve a
// person the login pages over plain HTTP after their first visit. It is
// for a node whose issuer is https: the header must not be sent over
// plain HTTP (RFC 6797 §7.2), and TLS usually ends at a proxy in front
// of the node, which r.TLS cannot tell. It names no subdomains: they
// are the operator's, not Varde's.
func StrictTransport(next http.Handler) http.Handler {
	value := "max-age=" + strconv.Itoa(int(HSTSMaxAge.Seconds()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", value)
		next.ServeHTTP(w, r)
	})
}

// LimitBody caps request bodies at n bytes; reading past it fails, which
// handlers report as a client error.
func LimitBody(n int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, n)
		}
		next.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// AccessLog logs one line per request at debug level: method, path
// (never the query, which can hold codes and tokens, nor the body),
// status, duration, the client's address (ClientAddr, or without
// ClientAddress in front the TCP peer's; empty if it has none) and
// request ID.
func AccessLog(log *slog.Logger, next http.Handler) http.Handler {
	return AccessLogAt(log, slog.LevelDebug, nil, next)
}

// AccessLogAt is AccessLog at level: info for a node that keeps a
// record of every request (log.access). A path for which private says
// true, such as one holding what looks like a national identity number
// (anyone can request any path), is written as "(redacted)"; private
// may be nil.
func AccessLogAt(log *slog.Logger, level slog.Level, private func(path string) bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		// Every request comes through here: a line the logger drops
		// costs no look at the path. The statusWriter stays, as Recover
		// reads it.
		if !log.Enabled(r.Context(), level) {
			return
		}
		path := r.URL.Path
		if private != nil && private(path) {
			path = "(redacted)"
		}
		log.LogAttrs(r.Context(), level, "http",
			slog.String("method", r.Method), slog.String("path", path),
			slog.Int("status", sw.status), slog.Duration("dur", time.Since(start)),
			slog.String("addr", logAddr(r)), slog.String("req", RequestID(r.Context())))
	})
}

// logAddr is r's client address as AccessLog writes it.
func logAddr(r *http.Request) string {
	a, ok := ClientAddr(r.Context())
	if !ok {
		a = peerAddr(r.RemoteAddr)
	}
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// Recover answers a request whose handler panicked with 500 and logs
// the panic once, at error level, with the request's ID, method, path
// and stack. The answer names only the request ID, for the person or
// client to quote: no panic value, no stack. answer, if not nil, may
// write it (for example as a protocol's JSON error where clients expect
// one) and report that it did; otherwise it is plain text. An answer
// already begun cannot be replaced, so its connection is cut instead
// (http.ErrAbortHandler), and the client does not take a truncated
// answer for a whole one. It goes inside AccessLog, which then logs the
// 500.
func Recover(log *slog.Logger, answer func(w http.ResponseWriter, r *http.Request, id string) bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			id := RequestID(r.Context())
			log.LogAttrs(r.Context(), slog.LevelError, "handler panicked",
				slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("req", id),
				slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			if sw, ok := w.(*statusWriter); ok && sw.status != 0 {
				panic(http.ErrAbortHandler)
			}
			h := w.Header()
			h.Del("Set-Cookie")
			h.Del("Location")
			h.Set("Cache-Control", "no-store")
			if answer != nil && answer(w, r, id) {
				return
			}
			http.Error(w, "Something went wrong on our side. Please try again. Reference: "+id, http.StatusInternalServerError)
		}()
		next.ServeHTTP(w, r)
	})
}

// Package api is the document service's HTTP surface: the JSON API under
// /v1, health and metrics endpoints, the embedded web page at /, and the
// API's OpenAPI document (docs/api/docsvc.openapi.json) at /openapi.json.
package api

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	apidoc "github.com/tetherhq/tether/docs/api"
	"github.com/tetherhq/tether/internal/auth"
	"github.com/tetherhq/tether/internal/blob"
	"github.com/tetherhq/tether/internal/document"
	"github.com/tetherhq/tether/internal/queue"
	"github.com/tetherhq/tether/internal/sqldb"
)

//go:embed web
var webFS embed.FS

// Upload pacing defaults: 8 KiB/s is slower than any link worth uploading
// over (a 32 MiB document at that rate takes 70 minutes), and a client
// that sends one byte a second is cut off 30 seconds in.
const (
	DefaultUploadMinRate = 8 << 10
	DefaultUploadGrace   = 30 * time.Second
)

// Server holds what the handlers need.
type Server struct {
	DB      *sqldb.DB
	Store   *document.Store
	Blobs   blob.Store
	Queue   queue.Queue
	Uploads *document.Uploads
	Auth    func(http.Handler) http.Handler // rejects unauthenticated requests with 401
	// SignIn serves the web page's sign-in under /auth/; nil answers that
	// sign-in is not configured (API tokens still work).
	SignIn   *auth.SignIn
	CORS     []string              // allowed origins; empty allows none
	Gate     func(time.Time) error // non-nil error refuses new uploads (license past grace)
	Registry *prometheus.Registry
	Version  string // the release, for docsvc_build_info
	Log      *slog.Logger
	Now      func() time.Time // default time.Now
	// SplitInternal serves /readyz and /metrics only from InternalHandler.
	SplitInternal bool
	// UploadMinRate is the slowest average, in bytes per second, an upload
	// may arrive at once UploadGrace has passed; a slower one is cut off
	// with 408 and nothing of it is kept. Zero means DefaultUploadMinRate.
	UploadMinRate int64
	// UploadGrace is how long an upload may take before its rate counts
	// (a slow start, a client that pauses). Zero means DefaultUploadGrace.
	UploadGrace time.Duration

	once     sync.Once
	requests *prometheus.CounterVec
	// served and failed (5xx) count every request for /metrics/summary.
	served, failed atomic.Int64
}

// router is what route registration needs of a mux; *http.ServeMux is one,
// and the route table test passes one that records the patterns.
type router interface {
	Handle(pattern string, h http.Handler)
	HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request))
}

// Handler returns the public routes: the API, the web page and /healthz,
// and also /readyz and /metrics unless SplitInternal moves them to
// InternalHandler.
func (s *Server) Handler() http.Handler {
	s.register()
	mux := http.NewServeMux()
	s.publicRoutes(mux)
	return secureHeaders(s.cors(s.observe(mux)))
}

// publicRoutes registers Handler's routes on mux. Each is described in
// docs/api/docsvc.openapi.json, which is served at /openapi.json.
func (s *Server) publicRoutes(mux router) {
	var paths []string
	allowed := map[string][]string{} // path → its methods, for 405's Allow
	authed := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, s.Auth(h))
		method, path, _ := strings.Cut(pattern, " ")
		if allowed[path] == nil {
			paths = append(paths, path)
		}
		allowed[path] = append(allowed[path], method)
	}
	authed("POST /v1/documents", s.upload)
	authed("GET /v1/documents", s.list)
	authed("GET /v1/documents/{id}", s.get)
	authed("DELETE /v1/documents/{id}", s.remove)
	authed("GET /v1/documents/{id}/result", s.result)
	// Any other method on those paths, and anything else under /v1/, still
	// answers 401 before 405 or 404, so the API's shape is not visible
	// without a token.
	for _, path := range paths {
		mux.Handle(path, s.Auth(methodNotAllowed(allowed[path])))
	}
	mux.Handle("/v1/", s.Auth(http.HandlerFunc(http.NotFound)))

	s.SignIn.Register(mux)
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /openapi.json", apidoc.Handler(apidoc.Docsvc))
	if !s.SplitInternal {
		s.internalRoutes(mux)
	}
	static, _ := fs.Sub(webFS, "web")
	files := http.FileServerFS(static)
	mux.Handle("GET /{$}", files)
	mux.Handle("GET /app.js", files)
	mux.Handle("GET /style.css", files)
}

// InternalHandler serves /healthz, /readyz and /metrics for the network
// inside the deployment (the agent, monitoring): exact counts and states
// that a public load balancer must not expose.
func (s *Server) InternalHandler() http.Handler {
	s.register()
	mux := http.NewServeMux()
	s.internalOnlyRoutes(mux)
	return secureHeaders(s.observe(mux))
}

// internalOnlyRoutes registers InternalHandler's routes on mux.
func (s *Server) internalOnlyRoutes(mux router) {
	mux.HandleFunc("GET /healthz", healthz)
	s.internalRoutes(mux)
}

func (s *Server) internalRoutes(mux router) {
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /metrics/summary", s.summary)
}

// methodNotAllowed answers 405 naming the methods a path has (and HEAD
// with GET, which net/http serves as GET without a body).
func methodNotAllowed(methods []string) http.HandlerFunc {
	allow := slices.Clone(methods)
	if slices.Contains(allow, http.MethodGet) {
		allow = append(allow, http.MethodHead)
	}
	slices.Sort(allow)
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "this path does not take that method; it takes "+strings.Join(allow, ", "))
	}
}

func healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// register creates and registers the server's own metrics, once.
func (s *Server) register() {
	s.once.Do(func() {
		if s.Now == nil {
			s.Now = time.Now
		}
		s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "docsvc_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"})
		s.Registry.MustRegister(s.requests, newStoreCollector(s.Store, s.DB, s.Version))
	})
}

// observe counts requests by route pattern (never by raw path, which holds IDs).
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		start := s.Now()
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		s.requests.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
		s.served.Add(1)
		if rec.code >= 500 {
			s.failed.Add(1)
		}
		if !strings.HasPrefix(r.URL.Path, "/healthz") && !strings.HasPrefix(r.URL.Path, "/metrics") {
			s.Log.Debug("request", "method", r.Method, "route", route, "code", rec.code, "ms", s.Now().Sub(start).Milliseconds())
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int)        { r.code = code; r.ResponseWriter.WriteHeader(code) }
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && slices.Contains(s.CORS, origin) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Vary", "Origin")
			// Not auth.CSRFHeader: another origin may send a bearer token,
			// never ride on the page's session cookie.
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
			if r.Method == http.MethodOptions {
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// readyz reports each dependency. The service is ready (200) when its own
// stores answer; a degraded AI provider is reported but does not make it
// unready, because uploads and reads still work and jobs wait.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	h := s.health(ctx)
	code := http.StatusOK
	if h.status == "down" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"status": h.status, "checks": h.checks, "queue": h.queue})
}

type check struct {
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

type queueCounts struct {
	Visible          int64 `json:"visible"`
	InFlight         int64 `json:"in_flight"`
	DeadLetter       int64 `json:"dead_letter"`
	OldestAgeSeconds int64 `json:"oldest_age_seconds"`
}

type health struct {
	status string // ok, degraded, or down when a store does not answer
	checks map[string]check
	queue  queueCounts
}

// health probes the stores and reads the workers' reports, for /readyz and
// /metrics/summary.
func (s *Server) health(ctx context.Context) health {
	h := health{status: "ok", checks: map[string]check{}}
	ready := true
	probe := func(name string, err error) {
		if err != nil {
			ready = false
			h.checks[name] = check{Status: "down", Detail: errorClass(err)}
			return
		}
		h.checks[name] = check{Status: "ok"}
	}
	probe("database", s.DB.PingContext(ctx))
	probe("blob", s.Blobs.Ping(ctx))
	qs, err := s.Queue.Stats(ctx)
	probe("queue", err)
	h.queue = queueCounts{int64(qs.Visible), int64(qs.InFlight), int64(qs.DeadLetter), int64(qs.OldestAge.Seconds())}
	healths, _ := s.Store.Healths(ctx)
	for _, r := range healths {
		c := check{Status: r.Status, Detail: strings.TrimSpace(r.Detail)}
		// A report older than a minute means its process stopped reporting.
		if s.Now().Sub(r.UpdatedAt) > time.Minute {
			c = check{Status: "unknown", Detail: "no report for " + s.Now().Sub(r.UpdatedAt).Round(time.Second).String()}
		}
		h.checks[r.Component] = c
	}
	for _, c := range h.checks {
		if c.Status != "ok" {
			h.status = "degraded"
		}
	}
	if !ready {
		h.status = "down"
	}
	return h
}

// summary is GET /metrics/summary: readiness and the figures the agent
// reports, as one JSON object, so the agent decodes one struct instead of
// parsing the Prometheus page. Checks carry statuses only (details are this
// service's text); the AI provider is named by kind. Totals are left out
// when the database cannot be read. Always 200: the status field says how
// the service is.
func (s *Server) summary(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	h := s.health(ctx)
	checks := map[string]string{}
	for name, c := range h.checks {
		checks[name] = c.Status
	}
	out := map[string]any{
		"version": s.Version, "status": h.status, "checks": checks, "queue": h.queue,
		"requests": s.served.Load(), "server_errors": s.failed.Load(),
	}
	// The worker reports "<kind> <error class>"; a stale report names none.
	if c := h.checks["ai_provider"]; c.Status != "unknown" && c.Detail != "" {
		out["ai_provider"], _, _ = strings.Cut(c.Detail, " ")
	}
	counts, err := s.Store.Counts(ctx)
	_, stored, err2 := s.Store.Totals(ctx)
	pages, err3 := s.Store.Pages(ctx)
	if err == nil && err2 == nil && err3 == nil {
		out["totals"] = map[string]int64{
			"queued": counts[document.Queued], "processing": counts[document.Processing],
			"succeeded": counts[document.Succeeded], "failed": counts[document.Failed],
			"stored_bytes": stored, "result_pages": pages,
		}
	}
	if cur, _, err := s.DB.SchemaVersion(ctx); err == nil {
		out["schema_version"] = cur
	}
	writeJSON(w, http.StatusOK, out)
}

// errorClass names what kind of failure err is without quoting it: driver
// errors can echo connection strings.
func errorClass(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	default:
		return "unreachable"
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// secureHeaders sets what every answer carries: the page loads only its own
// script and style, may not be framed, and no response is sniffed into
// another type.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

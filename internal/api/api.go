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
	type check struct {
		Status string `json:"status"`
		Detail string `json:"detail,omitempty"`
	}
	checks := map[string]check{}
	ready := true
	probe := func(name string, err error) {
		if err != nil {
			ready = false
			checks[name] = check{Status: "down", Detail: errorClass(err)}
			return
		}
		checks[name] = check{Status: "ok"}
	}
	probe("database", s.DB.PingContext(ctx))
	probe("blob", s.Blobs.Ping(ctx))
	qs, err := s.Queue.Stats(ctx)
	probe("queue", err)
	healths, _ := s.Store.Healths(ctx)
	for _, h := range healths {
		c := check{Status: h.Status, Detail: strings.TrimSpace(h.Detail)}
		// A report older than a minute means its process stopped reporting.
		if s.Now().Sub(h.UpdatedAt) > time.Minute {
			c = check{Status: "unknown", Detail: "no report for " + s.Now().Sub(h.UpdatedAt).Round(time.Second).String()}
		}
		checks[h.Component] = c
	}
	status, code := "ok", http.StatusOK
	for _, c := range checks {
		if c.Status != "ok" {
			status = "degraded"
		}
	}
	if !ready {
		status, code = "down", http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{
		"status": status, "checks": checks,
		"queue": map[string]any{"visible": qs.Visible, "in_flight": qs.InFlight, "dead_letter": qs.DeadLetter, "oldest_age_seconds": int64(qs.OldestAge.Seconds())},
	})
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

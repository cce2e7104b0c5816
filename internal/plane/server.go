package plane

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	apidoc "github.com/tetherhq/tether/docs/api"
	"github.com/tetherhq/tether/internal/blob"
	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/release/publish"
	"github.com/tetherhq/tether/internal/reqsign/reqverify"
)

// Config is what a Server needs; New validates it once.
type Config struct {
	Store  *planestore.Store
	Logger *slog.Logger
	Now    func() time.Time

	// DataDir holds uploaded diagnostic bundles (DataDir/bundles).
	DataDir string
	// RepoDir holds the per-channel TUF repositories served to agents
	// (RepoDir/<channel>/{metadata,targets}); empty serves none.
	RepoDir string
	// AdminToken is the break-glass credential for the admin API and the
	// dashboard; empty only with NoAdminToken.
	AdminToken string
	// NoAdminToken turns the break-glass token off: only staff and
	// automation tokens get in.
	NoAdminToken bool
	// LicenseKey verifies licenses registered through the admin API, so a
	// typo'd or forged file cannot become an activatable license.
	LicenseKey ed25519.PublicKey

	HeartbeatInterval time.Duration // told to agents; default 60s
	StaleAfter        int           // missed intervals before an install is stale; default 3
	MaxSkew           time.Duration // signed request clock tolerance; default 5m
	MaxBundleBytes    int64         // diagnostic bundle cap; default and ceiling reqverify.MaxBody (16 MiB)

	// Bundles stores uploaded diagnostic bundles; nil keeps them as files
	// in DataDir/bundles. Replicas share one (S3) store.
	Bundles blob.Store
	// Repo serves the per-channel TUF repositories
	// (<channel>/{metadata,targets}/…); nil serves RepoDir. Replicas share
	// one (S3) store, written through publish.Mirror.
	Repo publish.ObjectStore
	// TrustForwardedFor counts failed admin logins against the address the
	// load balancer appended to X-Forwarded-For instead of the peer's.
	TrustForwardedFor bool

	// OIDC signs staff in to the dashboard; nil offers only the admin token.
	OIDC *OIDCConfig
	// LicenseWarnDays is how many days before expiry a license is flagged
	// on the dashboard and alerted on (again at 7 and 1 days left);
	// default 30.
	LicenseWarnDays int
	// DashboardRefresh is how often the fleet page refreshes its table;
	// default 15s.
	DashboardRefresh time.Duration

	// AlertWebhook receives alert JSON; empty only logs alerts.
	AlertWebhook string
	// HTTPClient posts alerts; nil uses a client with a 10s timeout.
	HTTPClient *http.Client
}

// Server is the plane: agent API, admin API and dashboard on one handler,
// plus the background loops Run drives.
type Server struct {
	cfg     Config
	store   *planestore.Store
	log     *slog.Logger
	now     func() time.Time
	alerter *Alerter
	mux     *http.ServeMux
	signIn  *staffSignIn
	// sessionPrincipal, set only by tests (UseTestSessions), overrides
	// whose a session is.
	sessionPrincipal func(sessionID string) (planestore.Principal, bool)

	templates map[string]*template.Template
	keys      *keyCache
	releaseMu sync.Mutex // one pull into the release cache at a time
}

// Defaults for Config's zero values.
const (
	DefaultHeartbeatInterval = 60 * time.Second
	DefaultStaleAfter        = 3
	DefaultMaxSkew           = 5 * time.Minute
	DefaultMaxBundleBytes    = reqverify.MaxBody
	DefaultLicenseWarnDays   = 30
	DefaultDashboardRefresh  = 15 * time.Second
)

// New validates cfg and builds the server's routes.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("plane: config: Store is required")
	case cfg.Logger == nil:
		return nil, errors.New("plane: config: Logger is required")
	case cfg.Now == nil:
		return nil, errors.New("plane: config: Now is required")
	case cfg.DataDir == "":
		return nil, errors.New("plane: config: DataDir is required")
	case cfg.NoAdminToken && cfg.AdminToken != "":
		return nil, errors.New("plane: config: NoAdminToken with an AdminToken")
	case !cfg.NoAdminToken && len(cfg.AdminToken) < 32:
		return nil, errors.New("plane: config: AdminToken must be at least 32 characters")
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.StaleAfter == 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.LicenseWarnDays <= 0 {
		cfg.LicenseWarnDays = DefaultLicenseWarnDays
	}
	if cfg.DashboardRefresh <= 0 {
		cfg.DashboardRefresh = DefaultDashboardRefresh
	}
	if cfg.MaxSkew == 0 {
		cfg.MaxSkew = DefaultMaxSkew
	}
	if cfg.MaxBundleBytes == 0 || cfg.MaxBundleBytes > reqverify.MaxBody {
		cfg.MaxBundleBytes = DefaultMaxBundleBytes
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "bundles"), 0o700); err != nil {
		return nil, fmt.Errorf("plane: create bundle directory: %w", err)
	}
	if err := cfg.defaultStores(); err != nil {
		return nil, err
	}
	tmpl, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	s := &Server{
		templates: tmpl,
		cfg:       cfg,
		store:     cfg.Store,
		log:       cfg.Logger,
		now:       cfg.Now,
		alerter: &Alerter{Store: cfg.Store, WebhookURL: cfg.AlertWebhook, Client: cfg.HTTPClient,
			Logger: cfg.Logger, Now: cfg.Now},
	}
	if cfg.OIDC != nil {
		if s.signIn, err = newStaffSignIn(*cfg.OIDC); err != nil {
			return nil, err
		}
	}
	s.keys = &keyCache{ttl: keyCacheTTL, now: cfg.Now, lookup: s.installKey}
	s.routes()
	return s, nil
}

// Handler returns the plane's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Alerter exposes the alert deliverer so tests and operators can tune
// its backoff before Run starts.
func (s *Server) Alerter() *Alerter { return s.alerter }

// router is what route registration needs of a mux; *http.ServeMux is one,
// and the route table test passes one that records the patterns.
type router interface {
	Handle(pattern string, h http.Handler)
	HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request))
}

func (s *Server) routes() {
	m := http.NewServeMux()
	s.register(m)
	s.mux = m
}

// register adds every route to m. The admin API's routes, /healthz and
// /openapi.json are described in docs/api/plane-admin.openapi.json, which
// /openapi.json serves; the agent API's in docs/protocol.md.
func (s *Server) register(m router) {
	// Agent API (protocol.md). Activation is the one unsigned call.
	m.Handle("POST /v1/activate", s.limit(http.HandlerFunc(s.handleActivate), 64<<10))
	m.Handle("POST /v1/heartbeat", s.signedWrite(s.handleHeartbeat, 64<<10))
	m.Handle("POST /v1/rekey", s.signedWrite(s.handleRekey, 64<<10))
	m.Handle("POST /v1/telemetry", s.signed(s.handleTelemetry, 64<<10))
	m.Handle("GET /v1/diagnostics", s.signed(s.handleAgentDiagnostics, 0))
	m.Handle("POST /v1/diagnostics/{id}/bundle", s.signed(s.handleBundleUpload, s.cfg.MaxBundleBytes))
	m.Handle("GET /v1/tuf/{channel}/metadata/{file}", s.signed(s.handleTUF("metadata"), 0))
	m.Handle("GET /v1/tuf/{channel}/targets/{file...}", s.signed(s.handleTUF("targets"), 0))

	// Admin API: each route names the permission it needs (access.go).
	m.Handle("GET /v1/admin/installs", s.require(PermView, s.handleAdminInstalls))
	m.Handle("GET /v1/admin/installs/{id}", s.require(PermView, s.handleAdminInstall))
	m.Handle("POST /v1/admin/installs/{id}/revoke", s.require(PermInstallRevoke, s.handleAdminRevoke))
	m.Handle("POST /v1/admin/diagnostics", s.require(PermDiagRequest, s.handleAdminRequestDiag))
	m.Handle("GET /v1/admin/diagnostics", s.require(PermView, s.handleAdminDiagnostics))
	m.Handle("GET /v1/admin/diagnostics/{id}/bundle", s.require(PermDiagDownload, s.handleAdminBundle))
	m.Handle("GET /v1/admin/releases", s.require(PermView, s.handleAdminReleases))
	m.Handle("GET /v1/admin/licenses", s.require(PermView, s.handleAdminLicenses))
	m.Handle("POST /v1/admin/licenses", s.require(PermLicenseManage, s.handleAdminRegisterLicense))
	m.Handle("GET /v1/admin/staff", s.require(PermStaffManage, s.handleAdminStaff))
	m.Handle("POST /v1/admin/staff", s.require(PermStaffManage, s.handleAdminAddStaff))
	m.Handle("POST /v1/admin/staff/{id}/role", s.require(PermStaffManage, s.handleAdminSetStaffRole))
	m.Handle("DELETE /v1/admin/staff/{id}", s.require(PermStaffManage, s.handleAdminRemoveStaff))
	m.Handle("GET /v1/admin/tokens", s.require(PermStaffManage, s.handleAdminTokens))
	m.Handle("POST /v1/admin/tokens", s.require(PermStaffManage, s.handleAdminCreateToken))
	m.Handle("POST /v1/admin/tokens/{id}/revoke", s.require(PermStaffManage, s.handleAdminRevokeToken))
	m.Handle("GET /v1/admin/audit", s.require(PermView, s.handleAdminAudit))
	m.Handle("POST /v1/admin/audit/releases", s.require(PermReleaseManage, s.handleAdminAuditRelease))

	// Dashboard: every page needs a session whose role allows what it
	// shows; actions also need the session's CSRF token
	// (dashboard_actions.go).
	m.HandleFunc("GET /{$}", s.see(PermView, s.handleDashboard))
	m.HandleFunc("GET /fleet/rows", s.see(PermView, s.handleFleetRows))
	m.HandleFunc("GET /static/fleet.js", s.handleStatic)
	m.HandleFunc("GET /installs/{id}", s.see(PermView, s.handleDashboardInstall))
	m.HandleFunc("POST /installs/{id}/diagnostics", s.act(PermDiagRequest, s.handleDashRequestDiag))
	m.HandleFunc("GET /installs/{id}/revoke", s.see(PermInstallRevoke, s.handleDashRevokeForm))
	m.HandleFunc("POST /installs/{id}/revoke", s.act(PermInstallRevoke, s.handleDashRevoke))
	m.HandleFunc("GET /diagnostics/{id}/bundle", s.see(PermDiagDownload, s.handleDashBundle))
	m.HandleFunc("GET /licenses", s.see(PermView, s.handleLicensesPage))
	m.HandleFunc("POST /licenses", s.act(PermLicenseManage, s.handleDashRegisterLicense))
	m.HandleFunc("GET /login", s.handleLoginForm)
	m.HandleFunc("POST /login", s.handleLogin)
	m.HandleFunc("POST /logout", s.handleLogout)
	m.HandleFunc("GET /login/oidc", s.handleSignInStart)
	m.HandleFunc("GET "+CallbackPath, s.handleSignInCallback)
	m.HandleFunc("GET /audit", s.see(PermView, s.handleDashboardAudit))

	m.HandleFunc("GET /healthz", s.handleHealthz)
	m.HandleFunc("GET /openapi.json", apidoc.Handler(apidoc.PlaneAdmin))
}

// limit caps a request body; the signature check reads the whole body, so
// the cap has to sit in front of it.
func (s *Server) limit(h http.Handler, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, max)
		h.ServeHTTP(w, r)
	})
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	if err := s.store.DB().PingContext(r.Context()); err != nil {
		s.log.Error("healthz: database unreachable", "err", err)
		writeError(w, http.StatusServiceUnavailable, "database unreachable")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// Run drives the background work until ctx ends: flagging stale installs,
// delivering alerts and pruning expired nonces. tick sets how often; zero
// means every 5 seconds.
func (s *Server) Run(ctx context.Context, tick time.Duration) error {
	if tick == 0 {
		tick = 5 * time.Second
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	lastPrune := time.Time{}
	for {
		s.Sweep(ctx)
		if now := s.now(); now.Sub(lastPrune) > time.Minute {
			if n, err := s.store.PruneNonces(ctx); err != nil {
				s.log.Error("prune nonces", "err", err)
			} else if n > 0 {
				s.log.Debug("pruned nonces", "count", n)
			}
			if err := s.store.PruneRateLimits(ctx, time.Hour); err != nil {
				s.log.Error("prune rate limits", "err", err)
			}
			lastPrune = now
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sweep flags newly stale installs and delivers due alerts once.
func (s *Server) Sweep(ctx context.Context) {
	ids, err := s.store.MarkStale(ctx, int64(s.cfg.StaleAfter))
	if err != nil {
		s.log.Error("mark stale", "err", err)
	}
	for _, id := range ids {
		s.log.Warn("install stale", "install_id", id)
	}
	if _, err := s.store.QueueLicenseAlerts(ctx, s.licenseThresholds()); err != nil {
		s.log.Error("license alerts", "err", err)
	}
	if _, err := s.alerter.DeliverDue(ctx); err != nil {
		s.log.Error("deliver alerts", "err", err)
	}
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError answers with a JSON error. msg must be safe to show: it is
// built from IDs and rules, never from request content.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

package planecmd

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/plane"
	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/release/publish"
	"github.com/tetherhq/tether/internal/sqldb"
)

func runServe(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "serve", "--data-dir DIR [--addr HOST:PORT] [flags]",
		"Runs the vendor plane: the signed agent API, the admin API and the dashboard at /.\n"+
			"State lives in SQLite at <data-dir>/plane.db unless --database-url names PostgreSQL.\n"+
			"The admin token is created at <data-dir>/admin-token (mode 0600) on first start; it is\n"+
			"the break-glass credential, flagged on every use. Staff sign in to the dashboard through\n"+
			"the vendor's identity provider (--oidc-issuer) once added with staff add; scripts use\n"+
			"tokens made with tokens create.\n"+
			"Logs are JSON on stderr and carry IDs and counts only.")
	dataDir := fs.String("data-dir", "", "directory for the database, admin token and diagnostic bundles (required)")
	addr := fs.String("addr", "127.0.0.1:8443", "address to listen on; put TLS in front (a load balancer) in production")
	dbURL := fs.String("database-url", "", "postgres://... to use PostgreSQL (or env TETHER_PLANE_DATABASE_URL); default SQLite in the data dir")
	repo := fs.String("repo", "", "release repository directory to serve to agents (per channel TUF repositories)")
	keys := fs.String("keys", "", "keys directory: its license.pub verifies registered licenses, and its online keys re-sign expiring TUF metadata hourly")
	licensePub := fs.String("license-pub", "", "license public key (PEM) when --keys is not given")
	webhook := fs.String("alert-webhook", "", "URL that receives alert JSON (or env TETHER_PLANE_ALERT_WEBHOOK); it is treated as a secret")
	objects := fs.String("objects", "", "shared object store for bundles and release repositories, s3://bucket[/prefix] (or env TETHER_PLANE_OBJECTS); needed to run more than one replica; replaces --repo")
	objectsKMS := fs.String("objects-kms-key", "", "KMS key for SSE-KMS on --objects (or env TETHER_PLANE_OBJECTS_KMS_KEY); default SSE-S3")
	behindLB := fs.Bool("behind-load-balancer", false, "count failed admin logins against the address the load balancer appends to X-Forwarded-For")
	interval := fs.Duration("heartbeat-interval", plane.DefaultHeartbeatInterval, "heartbeat interval told to agents; stale after 3 missed")
	warnDays := fs.Int("license-warn-days", plane.DefaultLicenseWarnDays, "days before a license's expiry that the dashboard flags it and the first alert goes out (again at 7 and 1 days left)")
	refresh := fs.Duration("dashboard-refresh", plane.DefaultDashboardRefresh, "how often an open fleet page refreshes its table")
	noAdminToken := fs.Bool("no-admin-token", false, "turn the break-glass admin token off; needs --oidc-issuer and a staff member with the administrator role (staff add)")
	oidcIssuer := fs.String("oidc-issuer", "", "staff sign-in: the vendor's OpenID Connect issuer URL (or env TETHER_PLANE_OIDC_ISSUER); without it the dashboard takes only the admin token")
	oidcClient := fs.String("oidc-client-id", "", "staff sign-in: the plane's client ID at the provider (or env TETHER_PLANE_OIDC_CLIENT_ID)")
	oidcSecretFile := fs.String("oidc-client-secret-file", "", "staff sign-in: file holding the client secret (or env TETHER_PLANE_OIDC_CLIENT_SECRET); never a flag value")
	oidcRedirect := fs.String("oidc-redirect-url", "", "staff sign-in: the plane's public URL ending in "+plane.CallbackPath+", registered with the provider (or env TETHER_PLANE_OIDC_REDIRECT_URL)")
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	if err := required(fs, "data-dir"); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if *interval < time.Second || *interval > 24*time.Hour {
		return fmt.Errorf("%w: --heartbeat-interval %s: must be between 1s and 24h", errUsage, *interval)
	}
	if *warnDays < 1 || *warnDays > 365 {
		return fmt.Errorf("%w: --license-warn-days %d: must be between 1 and 365", errUsage, *warnDays)
	}
	if *refresh < time.Second || *refresh > 10*time.Minute {
		return fmt.Errorf("%w: --dashboard-refresh %s: must be between 1s and 10m", errUsage, *refresh)
	}
	if *dbURL == "" {
		*dbURL = env.Getenv("TETHER_PLANE_DATABASE_URL")
	}
	if *webhook == "" {
		*webhook = env.Getenv("TETHER_PLANE_ALERT_WEBHOOK")
	}
	*objects = cmp.Or(*objects, env.Getenv("TETHER_PLANE_OBJECTS"))
	*objectsKMS = cmp.Or(*objectsKMS, env.Getenv("TETHER_PLANE_OBJECTS_KMS_KEY"))
	oidc, err := oidcConfig(env, *oidcIssuer, *oidcClient, *oidcSecretFile, *oidcRedirect)
	if err != nil {
		return err
	}
	if *noAdminToken && oidc == nil {
		return fmt.Errorf("%w: --no-admin-token needs --oidc-issuer: without the admin token, staff sign in through it", errUsage)
	}
	if *objects != "" && *repo != "" {
		return fmt.Errorf("%w: --objects holds the release repositories; drop --repo", errUsage)
	}
	log := jsonLogger(env.Stderr)
	abs, err := filepath.Abs(*dataDir)
	if err != nil {
		return fmt.Errorf("serve: --data-dir: %w", err)
	}
	if *dbURL == "" {
		*dbURL = "sqlite://" + filepath.Join(abs, "plane.db")
	}
	var licKey ed25519.PublicKey
	switch {
	case *licensePub != "":
		if licKey, err = publish.LoadLicensePublicKey(*licensePub); err != nil {
			return fmt.Errorf("serve: --license-pub %s: %w", *licensePub, err)
		}
	case *keys != "":
		if licKey, err = publish.LoadLicensePublicKey(filepath.Join(*keys, "license.pub")); err != nil {
			return fmt.Errorf("serve: --keys %s: %w (run tether-plane keys init --dir %s first)", *keys, err, *keys)
		}
	default:
		log.Warn("no --keys or --license-pub: license registration is disabled until the plane has the license public key")
	}
	if *keys != "" && *repo == "" && *objects == "" {
		return fmt.Errorf("%w: --keys needs --repo (the repository whose metadata it keeps fresh)", errUsage)
	}

	var token string
	if !*noAdminToken {
		if token, err = adminToken(env, abs, log); err != nil {
			return err
		}
	}
	// A deployment injects the password from its secret apart from the URL.
	var dbOpts sqldb.Options
	if pw := env.Getenv("TETHER_PLANE_DATABASE_PASSWORD"); pw != "" {
		dbOpts.Password = func(context.Context, string) (string, error) { return pw, nil }
	}
	db, err := sqldb.OpenWith(ctx, *dbURL, dbOpts)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer db.Close()
	store, err := planestore.Open(ctx, db, env.Now)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if *noAdminToken {
		// Without an administrator nobody could add staff or tokens again.
		if n, err := store.Administrators(ctx); err != nil {
			return fmt.Errorf("serve: %w", err)
		} else if n == 0 {
			return fmt.Errorf("%w: --no-admin-token: no staff member has the administrator role yet; add one with tether-plane staff add --role administrator first", errUsage)
		}
		log.Info("break-glass admin token turned off (--no-admin-token)")
	}
	cfg := plane.Config{Store: store, Logger: log, Now: env.Now, DataDir: abs, RepoDir: *repo,
		AdminToken: token, NoAdminToken: *noAdminToken, LicenseKey: licKey, HeartbeatInterval: *interval, AlertWebhook: *webhook,
		TrustForwardedFor: *behindLB, OIDC: oidc, LicenseWarnDays: *warnDays, DashboardRefresh: *refresh}
	if *objects != "" {
		if cfg.Bundles, cfg.Repo, err = objectStores(ctx, env, *objects, *objectsKMS); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	srv, err := plane.New(cfg)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("serve: listen on --addr %s: %w", *addr, err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute,
		WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Run(ctx, 5*time.Second)
	}()
	switch {
	case *keys != "" && *objects != "":
		go sharedRefreshLoop(ctx, env, store, cfg.Repo, filepath.Join(abs, "release-work"), *keys, log)
	case *keys != "":
		go refreshLoop(ctx, env, *repo, *keys, log)
	}
	go func() {
		<-ctx.Done()
		shutdown, cancelShutdown := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancelShutdown()
		_ = hs.Shutdown(shutdown)
	}()
	log.Info("plane listening", "addr", ln.Addr().String(), "dialect", string(db.Dialect), "repo", *repo != "", "objects", *objects != "")
	err = hs.Serve(ln)
	cancel()
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("serve: %w", err)
}

// refreshLoop keeps every channel's timestamp (1 day) and snapshot (7 days)
// signatures from expiring; publish.Refresh only re-signs what is due.
func refreshLoop(ctx context.Context, env Env, repo, keys string, log interface {
	Error(string, ...any)
}) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := publish.Refresh(ctx, repo, keys, env.Now()); err != nil {
			log.Error("refresh release metadata", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// adminToken is TETHER_PLANE_ADMIN_TOKEN when set, so every replica of a
// plane accepts the same token (the deployment injects it from a secret);
// otherwise <data-dir>/admin-token, created on first start.
func adminToken(env Env, dataDir string, log interface{ Info(string, ...any) }) (string, error) {
	if tok := env.Getenv("TETHER_PLANE_ADMIN_TOKEN"); tok != "" {
		if len(tok) < 32 {
			return "", fmt.Errorf("%w: TETHER_PLANE_ADMIN_TOKEN is %d characters; it must be at least 32 (e.g. openssl rand -hex 32)", errUsage, len(tok))
		}
		return tok, nil
	}
	token, created, err := plane.LoadOrCreateAdminToken(dataDir)
	if err != nil {
		return "", err
	}
	if created {
		log.Info("admin token created", "path", filepath.Join(dataDir, plane.AdminTokenFile))
	}
	return token, nil
}

// sharedRefreshLoop keeps the shared release store's metadata fresh. Every
// replica runs it; the release lease lets one at a time re-sign, and the
// others skip that round.
func sharedRefreshLoop(ctx context.Context, env Env, store *planestore.Store, repo publish.ObjectStore, workDir, keys string,
	log interface {
		Error(string, ...any)
		Debug(string, ...any)
	}) {
	holder := writerID()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		round, cancel := context.WithTimeout(ctx, 10*time.Minute)
		err := plane.WriteReleases(round, store, holder, repo, workDir, nil, func(ctx context.Context, dir string) error {
			return publish.Refresh(ctx, dir, keys, env.Now())
		})
		cancel()
		switch {
		case errors.Is(err, planestore.ErrLeaseHeld):
			log.Debug("release metadata refresh: another replica holds the lease")
		case err != nil:
			log.Error("refresh release metadata", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// oidcConfig is staff sign-in's configuration from flags, else environment;
// nil when no issuer is given. The client secret comes from a file or the
// environment, never a flag, which ps and shell history would show.
func oidcConfig(env Env, issuer, clientID, secretFile, redirect string) (*plane.OIDCConfig, error) {
	c := &plane.OIDCConfig{
		Issuer:      cmp.Or(issuer, env.Getenv("TETHER_PLANE_OIDC_ISSUER")),
		ClientID:    cmp.Or(clientID, env.Getenv("TETHER_PLANE_OIDC_CLIENT_ID")),
		RedirectURL: cmp.Or(redirect, env.Getenv("TETHER_PLANE_OIDC_REDIRECT_URL")),
	}
	if c.Issuer == "" {
		if c.ClientID != "" || c.RedirectURL != "" || secretFile != "" {
			return nil, fmt.Errorf("%w: staff sign-in needs --oidc-issuer too", errUsage)
		}
		return nil, nil
	}
	if c.ClientID == "" || c.RedirectURL == "" {
		return nil, fmt.Errorf("%w: --oidc-issuer needs --oidc-client-id and --oidc-redirect-url (https://plane.example.com%s)", errUsage, plane.CallbackPath)
	}
	c.ClientSecret = env.Getenv("TETHER_PLANE_OIDC_CLIENT_SECRET")
	if secretFile != "" {
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return nil, fmt.Errorf("serve: --oidc-client-secret-file: %w", err)
		}
		c.ClientSecret = strings.TrimSpace(string(b))
		if c.ClientSecret == "" {
			return nil, fmt.Errorf("serve: --oidc-client-secret-file %s is empty", secretFile)
		}
	}
	return c, nil
}

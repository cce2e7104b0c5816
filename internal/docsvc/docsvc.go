// Package docsvc is the document service's command line: one binary with the
// roles api, worker and migrate, and the operator's token, dead-letter and
// config commands.
package docsvc

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tetherhq/tether/internal/analyze"
	"github.com/tetherhq/tether/internal/api"
	"github.com/tetherhq/tether/internal/apitoken"
	"github.com/tetherhq/tether/internal/auth"
	"github.com/tetherhq/tether/internal/blob"
	"github.com/tetherhq/tether/internal/config"
	"github.com/tetherhq/tether/internal/document"
	"github.com/tetherhq/tether/internal/extract"
	"github.com/tetherhq/tether/internal/queue"
	"github.com/tetherhq/tether/internal/sqldb"
	"github.com/tetherhq/tether/internal/worker"
)

// Version is the release this binary belongs to, set at link time.
var Version = "0.1.0-dev"

const usage = `docsvc — the document service

Usage:
  docsvc api               serve the HTTP API and web page
  docsvc worker            process queued documents
  docsvc migrate           apply database migrations (run before api and worker roll)
  docsvc tokens create --name NAME [--expires WHEN] [--output text|json]
  docsvc tokens add --name NAME --hash ID:SHA256 [--expires WHEN] [--output text|json]
  docsvc tokens list [--output text|json]
  docsvc tokens revoke ID
  docsvc jobs dead-letters [--max N] [--output text|json]
  docsvc jobs redrive (--all | ID...) [--output text|json]
  docsvc config check [--output text|json]
  docsvc version

Every command explains itself: 'docsvc COMMAND --help'.
Configuration comes from DOCSVC_* environment variables; 'docsvc config check'
prints the effective configuration with secrets redacted. See docs/configuration.md.
`

// ErrUsage is matched by command-line mistakes (an unknown command, a bad
// flag, a missing argument): docsvc exits 2 for them and 1 for failures.
var ErrUsage = errors.New("usage")

// Each command's help, printed to stdout for -h, --help or 'docsvc help
// COMMAND'. Flags, where a command has them, are listed after it.
const (
	helpAPI = `usage: docsvc api

Serves the HTTP API and web page on DOCSVC_ADDR until SIGTERM, and /readyz
and /metrics on DOCSVC_INTERNAL_ADDR when that is set. The database schema
must be migrated first ('docsvc migrate'). Configuration comes from DOCSVC_*
variables (docs/configuration.md; 'docsvc config check').
`
	helpWorker = `usage: docsvc worker

Takes jobs off the queue (extract, analyze, store the result) until SIGTERM.
The database schema must be migrated first ('docsvc migrate'). Configuration
comes from DOCSVC_* variables (docs/configuration.md; 'docsvc config check').
`
	helpMigrate = `usage: docsvc migrate

Applies the database migrations this release has and the database lacks, then
exits. Run it before the api and workers of a new release start.
`
	helpToken = `usage:
  docsvc tokens create --name NAME [--expires WHEN] [--output text|json]
  docsvc tokens add --name NAME --hash ID:SHA256 [--expires WHEN] [--output text|json]
  docsvc tokens list [--output text|json]
  docsvc tokens revoke ID

API tokens authenticate scripts to the API ('Authorization: Bearer TOKEN').
Only a hash is stored. 'create' makes one here and prints it once; 'add'
stores one made elsewhere (tetherctl tokens create), given only its hash, so
the token never reaches this machine or its logs. 'docsvc token ...' is the
same command.
`
	helpTokenCreate = `usage: docsvc tokens create --name NAME [--expires WHEN] [--output text|json]

Creates an API token and prints it (once: only its hash is stored).
`
	helpTokenAdd = `usage: docsvc tokens add --name NAME --hash ID:SHA256 [--expires WHEN] [--output text|json]

Stores an API token made elsewhere, given only its stored form: the token's
16-hex-character ID, a colon, and the 64-hex-character SHA-256 of its
secret (tetherctl tokens create prints it; a token "tt_<id>_<secret>" has
the form "<id>:" + sha256hex(<secret>)). The token itself is never given.
WHEN is an RFC 3339 time (2027-01-31T00:00:00Z) or a duration from now
(90d, 720h); without it the token lasts until revoked.
`
	helpTokenList = `usage: docsvc tokens list [--output text|json]

Lists API tokens: ID, name, when created, when it expires, when last used
(to the minute) and whether revoked. Never the tokens or their hashes.
`
	helpTokenRevoke = `usage: docsvc tokens revoke ID

Revokes the API token with ID (see 'docsvc tokens list'); requests with it
are refused from then on.
`
	helpConfig = `usage: docsvc config check [--output text|json]

'config check' prints the effective configuration, where each value came
from, secrets redacted; it exits 1 with one line per bad or missing value.
`
	helpConfigCheck = `usage: docsvc config check [--output text|json]

Prints the effective configuration from the DOCSVC_* variables, each value's
source (env, file, secretsmanager, default), secrets redacted. Exits 1 with
one line per bad or missing value, naming the variable and the fix.
`
	helpVersion = `usage: docsvc version

Prints the release this binary belongs to.
`
)

// invocation is a parsed command line.
type invocation struct {
	cmd     string   // "api", "token create", ...
	name    string   // tokens create|add --name
	hash    string   // tokens add --hash
	expires string   // tokens create|add --expires
	id      string   // tokens revoke ID
	output  string   // --output
	max     int      // jobs dead-letters --max
	all     bool     // jobs redrive --all
	ids     []string // jobs redrive ID...
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// wantsHelp reports whether any argument before "--" asks for help, so that
// 'docsvc token revoke ID --help' is help too.
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isHelp(a) {
			return true
		}
	}
	return false
}

func usageErr(cmd, format string, a ...any) error {
	return fmt.Errorf("%w: docsvc %s: %s (see 'docsvc %s --help')", ErrUsage, cmd, fmt.Sprintf(format, a...), cmd)
}

// parseCommand reads the command line without touching anything else. For
// help it prints the command's help to stdout and reports done.
func parseCommand(args []string, stdout io.Writer, now func() time.Time) (inv invocation, done bool, err error) {
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if args[0] == "help" && len(args) > 1 {
			return parseCommand(append(append([]string(nil), args[1:]...), "--help"), stdout, now)
		}
		fmt.Fprint(stdout, usage)
		return inv, true, nil
	case "api", "worker", "migrate", "version":
		help := map[string]string{"api": helpAPI, "worker": helpWorker, "migrate": helpMigrate, "version": helpVersion}[args[0]]
		inv.cmd = args[0]
		done, err := parseFlags(flag.NewFlagSet(inv.cmd, flag.ContinueOnError), args[1:], 0, help, stdout)
		return inv, done, err
	case "token", "tokens":
		if len(args) < 2 {
			return inv, false, usageErr("tokens", "want create, add, list or revoke")
		}
		if isHelp(args[1]) {
			fmt.Fprint(stdout, helpToken)
			return inv, true, nil
		}
		inv.cmd = "tokens " + args[1]
		fs := flag.NewFlagSet(inv.cmd, flag.ContinueOnError)
		switch args[1] {
		case "create", "add":
			help := map[string]string{"create": helpTokenCreate, "add": helpTokenAdd}[args[1]]
			fs.StringVar(&inv.name, "name", "", "a label for the token, e.g. the script or person that uses it (required)")
			fs.StringVar(&inv.expires, "expires", "", "when the token stops working: an RFC 3339 time or a duration from now (90d, 720h); default never")
			if args[1] == "add" {
				fs.StringVar(&inv.hash, "hash", "", "the token's stored form ID:SHA256 (required; tetherctl tokens create prints it)")
			}
			fs.StringVar(&inv.output, "output", "text", "text or json")
			if done, err := parseFlags(fs, args[2:], 0, help, stdout); done || err != nil {
				return inv, done, err
			}
			if inv.name == "" {
				return inv, false, usageErr(inv.cmd, "--name is required (a label for who uses the token)")
			}
			if args[1] == "add" && inv.hash == "" {
				return inv, false, usageErr(inv.cmd, "--hash is required (the token's ID:SHA256, from tetherctl tokens create)")
			}
			if _, err := apitoken.ParseExpiry(inv.expires, now()); err != nil {
				return inv, false, usageErr(inv.cmd, "%v", err)
			}
		case "list":
			fs.StringVar(&inv.output, "output", "text", "text or json")
			if done, err := parseFlags(fs, args[2:], 0, helpTokenList, stdout); done || err != nil {
				return inv, done, err
			}
		case "revoke":
			if done, err := parseFlags(fs, args[2:], 1, helpTokenRevoke, stdout); done || err != nil {
				return inv, done, err
			}
			if fs.NArg() != 1 {
				return inv, false, usageErr(inv.cmd, "give the token ID (see 'docsvc tokens list')")
			}
			inv.id = fs.Arg(0)
		default:
			return inv, false, usageErr("tokens", "unknown subcommand %q (want create, add, list or revoke)", args[1])
		}
	case "jobs":
		if done, err := parseJobs(args, &inv, stdout); done || err != nil {
			return inv, done, err
		}
	case "config":
		if len(args) < 2 {
			return inv, false, usageErr("config", "want 'config check'")
		}
		if isHelp(args[1]) {
			fmt.Fprint(stdout, helpConfig)
			return inv, true, nil
		}
		if args[1] != "check" {
			return inv, false, usageErr("config", "unknown subcommand %q (want check)", args[1])
		}
		inv.cmd = "config check"
		fs := flag.NewFlagSet(inv.cmd, flag.ContinueOnError)
		fs.StringVar(&inv.output, "output", "text", "text or json")
		if done, err := parseFlags(fs, args[2:], 0, helpConfigCheck, stdout); done || err != nil {
			return inv, done, err
		}
	default:
		return inv, false, fmt.Errorf("%w: docsvc: unknown command %q (see 'docsvc --help')", ErrUsage, args[0])
	}
	if inv.output != "" && inv.output != "text" && inv.output != "json" {
		return inv, false, usageErr(inv.cmd, "--output must be text or json, not %q", inv.output)
	}
	return inv, false, nil
}

// parseFlags parses a command's flags and allows at most maxArgs arguments.
// Help goes to stdout, with the flags listed; a mistake is an ErrUsage.
func parseFlags(fs *flag.FlagSet, args []string, maxArgs int, help string, stdout io.Writer) (done bool, err error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if wantsHelp(args) {
		fmt.Fprint(stdout, help)
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(stdout, "\nFlags:")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
		}
		return true, nil
	}
	if err := fs.Parse(args); err != nil {
		return false, usageErr(fs.Name(), "%v", err)
	}
	if fs.NArg() > maxArgs {
		return false, usageErr(fs.Name(), "unexpected argument %q", fs.Arg(maxArgs))
	}
	return false, nil
}

// Run is the whole program; main only supplies the process's environment.
// Its errors match ErrUsage for command-line mistakes.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: docsvc: no command given", ErrUsage)
	}
	now := time.Now // the program's one clock: every part below reads it
	inv, done, err := parseCommand(args, stdout, now)
	if done || err != nil {
		return err
	}
	if inv.cmd == "version" {
		fmt.Fprintln(stdout, Version)
		return nil
	}
	resolver := newResolver()
	cfg, err := config.Load(ctx, getenv, resolver)
	if inv.cmd == "config check" {
		if err != nil {
			return err
		}
		return config.WriteCheck(stdout, cfg, inv.output)
	}
	if err != nil {
		return err
	}
	role, _, _ := strings.Cut(inv.cmd, " ")
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel})).With("role", role)

	db, err := sqldb.OpenWith(ctx, cfg.DatabaseURL, sqldb.Options{
		Password:        cfg.DatabasePasswordFunc(resolver),
		ConnMaxLifetime: cfg.DatabaseConnLifetime,
	})
	if err != nil {
		return err
	}
	defer db.Close()

	switch role {
	case "migrate":
		n, err := db.Migrate(ctx)
		if err != nil {
			return err
		}
		cur, _, _ := db.SchemaVersion(ctx)
		log.Info("migrations applied", "applied", n, "schema_version", cur)
		owners, err := auth.MigrateOwners(ctx, db, cfg.OIDC.Issuer)
		if err != nil {
			return err
		}
		log.Info("document owners migrated to issuer and subject", "documents", owners)
		return nil
	}
	// Every other command reads tables: on a database that was never
	// migrated the driver's "no such table" would be all it said.
	if err := requireSchema(ctx, db); err != nil {
		return err
	}
	if role == "tokens" {
		return tokenCmd(ctx, db, inv, stdout, now())
	}
	if role == "jobs" {
		return jobsCmd(ctx, cfg, db, inv, stdout, now)
	}
	if role == "api" {
		return runAPI(ctx, cfg, db, getenv, log, now)
	}
	return runWorker(ctx, cfg, db, getenv, log, now)
}

// requireSchema refuses to work on a schema older than this binary knows:
// migrations run as their own step, before services roll.
func requireSchema(ctx context.Context, db *sqldb.DB) error {
	cur, latest, err := db.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("docsvc: read the database schema version: %w", err)
	}
	switch {
	case cur == 0 && latest > 0:
		return fmt.Errorf("docsvc: the database schema is not migrated (it has no tables yet): run 'docsvc migrate' first, with the same DOCSVC_DATABASE_URL")
	case cur < latest:
		return fmt.Errorf("docsvc: the database schema is at version %d and this release needs %d: run 'docsvc migrate' first", cur, latest)
	}
	return nil
}

type stores struct {
	store *document.Store
	blobs blob.Store
	queue queue.Queue
}

func openStores(ctx context.Context, cfg *config.Config, db *sqldb.DB, now func() time.Time) (stores, error) {
	awsCfg, err := awsConfig(ctx, cfg)
	if err != nil {
		return stores{}, err
	}
	blobs, err := blob.Open(ctx, cfg.BlobURL, blob.Options{AWS: awsCfg, KMSKeyID: cfg.S3KMSKeyID, Endpoint: cfg.S3Endpoint, UsePathStyle: cfg.S3PathStyle})
	if err != nil {
		return stores{}, err
	}
	q, err := queue.Open(ctx, cfg.QueueURL, db, queue.Options{AWS: awsCfg, DeadLetterURL: cfg.DeadLetterQueueURL, MaxReceives: cfg.MaxReceives, Endpoint: cfg.SQSEndpoint, Clock: now})
	if err != nil {
		return stores{}, err
	}
	return stores{store: document.NewStore(db, now), blobs: blobs, queue: q}, nil
}

func runAPI(ctx context.Context, cfg *config.Config, db *sqldb.DB, getenv func(string) string, log *slog.Logger, now func() time.Time) error {
	inherited, err := inheritedListeners(getenv(ListenFDsEnv))
	if err != nil {
		return err
	}
	st, err := openStores(ctx, cfg, db, now)
	if err != nil {
		return err
	}
	authn, err := auth.NewAuthenticator(ctx, db, auth.OIDC{Issuer: cfg.OIDC.Issuer, Audience: cfg.OIDC.Audience, ClientID: cfg.OIDC.ClientID,
		GroupsClaim: cfg.OIDC.GroupsClaim, SharedGroups: cfg.OIDC.SharedGroups}, http.DefaultClient)
	if err != nil {
		return err
	}
	authn.Now = now
	var signIn *auth.SignIn
	if cfg.OIDC.CallbackURL != "" {
		signIn, err = authn.NewSignIn(auth.SignInOptions{
			CallbackURL: cfg.OIDC.CallbackURL, PostLogoutURL: cfg.PublicURL + "/",
			// openid only: docsvc needs the issuer and subject, and the
			// session cookie then carries no email address or name.
			ClientSecret: cfg.OIDC.ClientSecret, Log: log,
		})
		if err != nil {
			return err
		}
	}
	var gate func(time.Time) error
	if cfg.License != "" {
		g, err := newLicenseGate(cfg, log, now)
		if err != nil {
			return err
		}
		gate = g.Check
	} else {
		log.Warn("no license configured (DOCSVC_LICENSE): running unlicensed, for development only")
	}
	reg := newRegistry()
	srv := &api.Server{
		DB: db, Store: st.store, Blobs: st.blobs, Queue: st.queue,
		Uploads:  &document.Uploads{Store: st.store, Blobs: st.blobs, Queue: st.queue, MaxBytes: cfg.MaxUploadBytes, Log: log},
		Auth:     authn.Middleware,
		SignIn:   signIn,
		CORS:     cfg.CORSOrigins,
		Gate:     gate,
		Registry: reg, Version: Version, Log: log, Now: now,
		SplitInternal: cfg.InternalAddr != "",
		UploadMinRate: cfg.UploadMinRate,
	}
	// No ReadTimeout: a large upload on a slow link may take minutes; the
	// upload handler holds each body to DOCSVC_UPLOAD_MIN_RATE instead.
	// Headers must arrive promptly and idle keep-alive connections are closed.
	hs := &http.Server{Addr: cfg.Addr, Handler: withTestHandlers(srv.Handler(), db), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 3)
	servers := []*http.Server{hs}
	var shared *handover
	if len(inherited) > 0 {
		// A supervisor owns the socket (tetherctl dev's upgrades): serve on
		// the listener it handed over, beside the process it replaces.
		shared = newHandover(hs, inherited[0])
		go func() { errc <- hs.Serve(shared) }()
	} else {
		go func() { errc <- hs.ListenAndServe() }()
	}
	if len(inherited) > 1 {
		// This process's own /readyz and /metrics, so the supervisor can
		// tell a new process is ready before the old one stops.
		ps := &http.Server{Handler: withTestHandlers(srv.InternalHandler(), db), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		servers = append(servers, ps)
		go func() { errc <- ps.Serve(inherited[1]) }()
	}
	if cfg.InternalAddr != "" {
		is := &http.Server{Addr: cfg.InternalAddr, Handler: srv.InternalHandler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		servers = append(servers, is)
		go func() { errc <- is.ListenAndServe() }()
	}
	log.Info("api listening", "addr", cfg.Addr, "internal_addr", cfg.InternalAddr, "public_url", cfg.PublicURL, "version", Version)
	select {
	case err := <-errc:
		for _, s := range servers {
			s.Close()
		}
		return fmt.Errorf("docsvc: serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	log.Info("api stopping")
	if shared != nil {
		shared.drain(shutdown, 5*time.Second)
	}
	var errs []error
	for _, s := range servers {
		errs = append(errs, s.Shutdown(shutdown))
	}
	return errors.Join(errs...)
}

func runWorker(ctx context.Context, cfg *config.Config, db *sqldb.DB, getenv func(string) string, log *slog.Logger, now func() time.Time) error {
	goMemoryLimit(cfg, getenv)
	extract.SetCompileCache(pdfCacheDir(cfg), func(msg string) { log.Warn(msg) })
	st, err := openStores(ctx, cfg, db, now)
	if err != nil {
		return err
	}
	inner, err := analyze.New(ctx, analyze.Config{
		Provider: cfg.AI.Provider, Model: cfg.AI.Model, BaseURL: cfg.AI.BaseURL,
		APIKey: cfg.AI.APIKey, Region: cfg.AI.Region, Timeout: cfg.AI.Timeout,
	}, http.DefaultClient)
	if err != nil {
		return err
	}
	reg := newRegistry()
	w := &worker.Worker{
		Store: st.store, Blobs: st.blobs, Queue: st.queue,
		Analyzer:    analyze.NewResilient(inner, analyze.ResilientOptions{Logger: log, Clock: now}),
		Limits:      workerLimits(cfg),
		Concurrency: cfg.WorkerConcurrency, Visibility: cfg.Visibility, MaxReceives: cfg.MaxReceives,
		Metrics: worker.NewMetrics(reg), Log: log, Now: now,
	}
	// ECS names its agent's endpoint in every task; scale-in protection
	// while a job runs keeps a scale-in from cutting it short.
	if uri := getenv("ECS_AGENT_URI"); uri != "" {
		w.Protector = &worker.ECSProtector{AgentURI: uri, Expiry: 10 * time.Minute}
	}
	if cfg.InternalAddr != "" {
		go serveMetrics(ctx, cfg.InternalAddr, reg, log)
	}
	log.Info("worker started", "concurrency", cfg.WorkerConcurrency, "ai_provider", inner.Name(), "version", Version)
	err = w.Run(ctx)
	log.Info("worker stopped")
	return err
}

func workerLimits(cfg *config.Config) extract.Limits {
	l := extract.DefaultLimits()
	l.MaxInputBytes = cfg.MaxUploadBytes
	l.MaxMemoryBytes = cfg.Extract.MaxMemory
	l.MaxDuration = cfg.Extract.Timeout
	l.MaxPages = cfg.Extract.MaxPages
	l.MaxTextBytes = cfg.Extract.MaxText
	return l
}

// pdfCacheDir is DOCSVC_EXTRACT_CACHE_DIR, or by default the user's cache
// directory; empty when off or when there is no user cache directory.
func pdfCacheDir(cfg *config.Config) string {
	switch cfg.Extract.CacheDir {
	case "off":
		return ""
	case "":
		base, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		return filepath.Join(base, "tether-docsvc", "pdfium")
	}
	return cfg.Extract.CacheDir
}

// goMemoryLimit is the Go heap's share of the worker's memory: what the
// PDF engines' reservations leave (at least the 512MiB reserve, as config
// checks). As a soft limit it makes the runtime collect and return memory
// sooner as the heap nears it, instead of growing to twice the live heap.
// GOMEMLIMIT, when set, wins.
func goMemoryLimit(cfg *config.Config, getenv func(string) string) {
	if getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(cfg.WorkerMemory - int64(cfg.WorkerConcurrency)*cfg.Extract.MaxMemory)
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	hs := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); hs.Close() }()
	if err := hs.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("metrics listener", "addr", addr, "err", err)
	}
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func tokenCmd(ctx context.Context, db *sqldb.DB, inv invocation, stdout io.Writer, now time.Time) error {
	expires, err := apitoken.ParseExpiry(inv.expires, now)
	if err != nil {
		return err
	}
	switch inv.cmd {
	case "tokens create":
		tok, err := apitoken.New()
		if err != nil {
			return err
		}
		if err := auth.AddToken(ctx, db, inv.name, tok.Stored(), expires, now); err != nil {
			return err
		}
		if inv.output == "json" {
			return json.NewEncoder(stdout).Encode(map[string]any{"id": tok.ID, "name": inv.name, "token": tok.Plaintext, "expires_at": optTime(expires)})
		}
		fmt.Fprintln(stdout, tok.Plaintext)
		return nil
	case "tokens add":
		if err := auth.AddToken(ctx, db, inv.name, inv.hash, expires, now); err != nil {
			return err
		}
		id, _, _ := apitoken.ParseStored(inv.hash)
		if inv.output == "json" {
			return json.NewEncoder(stdout).Encode(map[string]any{"id": id, "name": strings.TrimSpace(inv.name), "expires_at": optTime(expires)})
		}
		fmt.Fprintf(stdout, "added token %s\n", id)
		return nil
	case "tokens list":
		toks, err := auth.ListTokens(ctx, db)
		if err != nil {
			return err
		}
		if inv.output == "json" {
			out := make([]apitoken.Listed, 0, len(toks))
			for _, t := range toks {
				out = append(out, apitoken.Listed{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, ExpiresAt: optTime(t.ExpiresAt), LastUsedAt: optTime(t.LastUsedAt), RevokedAt: optTime(t.RevokedAt)})
			}
			return json.NewEncoder(stdout).Encode(map[string]any{"tokens": out})
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
		at := func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.Format(time.RFC3339)
		}
		for _, t := range toks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\n", t.ID, t.Name, at(t.CreatedAt), at(t.ExpiresAt), at(t.LastUsedAt), t.Revoked())
		}
		return tw.Flush()
	default: // tokens revoke
		return auth.RevokeToken(ctx, db, inv.id, now)
	}
}

// newResolver resolves arn:aws:secretsmanager references with the default
// AWS credential chain, loaded only if a reference is actually present. It
// is used again after start, from several connections at once, when the
// database password rotates.
func newResolver() config.StagedResolver {
	return &lazyResolver{}
}

type lazyResolver struct {
	mu sync.Mutex
	r  config.StagedResolver
}

func (l *lazyResolver) Resolve(ctx context.Context, ref string) (string, error) {
	return l.ResolveStage(ctx, ref, "")
}

func (l *lazyResolver) ResolveStage(ctx context.Context, ref, stage string) (string, error) {
	l.mu.Lock()
	if l.r == nil {
		c, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			l.mu.Unlock()
			return "", fmt.Errorf("load AWS configuration to read %s: %w", ref, err)
		}
		l.r = config.NewSecretsManagerResolver(secretsmanager.NewFromConfig(c))
	}
	r := l.r
	l.mu.Unlock()
	return r.ResolveStage(ctx, ref, stage)
}

// awsConfig loads the AWS SDK's default configuration (task role credentials
// in ECS) only when a storage backend needs it; Bedrock loads its own.
func awsConfig(ctx context.Context, cfg *config.Config) (aws.Config, error) {
	if !cfg.UsesS3() && !cfg.UsesSQS() {
		return aws.Config{}, nil
	}
	var opts []func(*awsconfig.LoadOptions) error
	if cfg.AWSRegion != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.AWSRegion))
	}
	c, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("docsvc: load AWS configuration: %w", err)
	}
	return c, nil
}

// Package docsvc is the document service's command line: one binary with the
// roles api, worker and migrate, and the operator's token and config commands.
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
	"os/signal"
	"sync"
	"syscall"
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
  docsvc token create --name NAME [--output text|json]
  docsvc token list [--output text|json]
  docsvc token revoke ID
  docsvc config check [--output text|json]
  docsvc version

Configuration comes from DOCSVC_* environment variables; 'docsvc config check'
prints the effective configuration with secrets redacted. See docs/configuration.md.
`

// Run is the whole program; main only supplies the process's environment.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("docsvc: no command given")
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	case "version":
		fmt.Fprintln(stdout, Version)
		return nil
	}
	resolver := newResolver()
	cfg, err := config.Load(ctx, getenv, resolver)
	if args[0] == "config" {
		return configCmd(ctx, args[1:], cfg, err, stdout)
	}
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel})).With("role", args[0])
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	db, err := sqldb.OpenWith(ctx, cfg.DatabaseURL, sqldb.Options{
		Password:        cfg.DatabasePasswordFunc(resolver),
		ConnMaxLifetime: cfg.DatabaseConnLifetime,
	})
	if err != nil {
		return err
	}
	defer db.Close()

	switch args[0] {
	case "migrate":
		n, err := db.Migrate(ctx)
		if err != nil {
			return err
		}
		cur, _, _ := db.SchemaVersion(ctx)
		log.Info("migrations applied", "applied", n, "schema_version", cur)
		return nil
	case "token":
		return tokenCmd(ctx, db, args[1:], stdout)
	case "api", "worker":
		if err := requireSchema(ctx, db); err != nil {
			return err
		}
		if args[0] == "api" {
			return runAPI(ctx, cfg, db, log)
		}
		return runWorker(ctx, cfg, db, getenv, log)
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("docsvc: unknown command %q", args[0])
}

// requireSchema refuses to serve on a schema older than this binary knows:
// migrations run as their own step, before services roll.
func requireSchema(ctx context.Context, db *sqldb.DB) error {
	cur, latest, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if cur < latest {
		return fmt.Errorf("docsvc: database schema is at version %d, this release needs %d: run 'docsvc migrate' first", cur, latest)
	}
	return nil
}

type stores struct {
	store *document.Store
	blobs blob.Store
	queue queue.Queue
}

func openStores(ctx context.Context, cfg *config.Config, db *sqldb.DB) (stores, error) {
	awsCfg, err := awsConfig(ctx, cfg)
	if err != nil {
		return stores{}, err
	}
	blobs, err := blob.Open(ctx, cfg.BlobURL, blob.Options{AWS: awsCfg, KMSKeyID: cfg.S3KMSKeyID, Endpoint: cfg.S3Endpoint, UsePathStyle: cfg.S3PathStyle})
	if err != nil {
		return stores{}, err
	}
	q, err := queue.Open(ctx, cfg.QueueURL, db, queue.Options{AWS: awsCfg, DeadLetterURL: cfg.DeadLetterQueueURL, MaxReceives: cfg.MaxReceives, Endpoint: cfg.SQSEndpoint})
	if err != nil {
		return stores{}, err
	}
	return stores{store: document.NewStore(db, time.Now), blobs: blobs, queue: q}, nil
}

func runAPI(ctx context.Context, cfg *config.Config, db *sqldb.DB, log *slog.Logger) error {
	st, err := openStores(ctx, cfg, db)
	if err != nil {
		return err
	}
	authn, err := auth.NewAuthenticator(ctx, db, cfg.OIDC.Issuer, cfg.OIDC.Audience, http.DefaultClient)
	if err != nil {
		return err
	}
	var gate func(time.Time) error
	if cfg.License != "" {
		g, err := newLicenseGate(cfg, log)
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
		CORS:     cfg.CORSOrigins,
		Gate:     gate,
		Registry: reg, Version: Version, Log: log, Now: time.Now,
		SplitInternal: cfg.InternalAddr != "",
		UploadMinRate: cfg.UploadMinRate,
	}
	// No ReadTimeout: a large upload on a slow link may take minutes; the
	// upload handler holds each body to DOCSVC_UPLOAD_MIN_RATE instead.
	// Headers must arrive promptly and idle keep-alive connections are closed.
	hs := &http.Server{Addr: cfg.Addr, Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 2)
	go func() { errc <- hs.ListenAndServe() }()
	servers := []*http.Server{hs}
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
	var errs []error
	for _, s := range servers {
		errs = append(errs, s.Shutdown(shutdown))
	}
	return errors.Join(errs...)
}

func runWorker(ctx context.Context, cfg *config.Config, db *sqldb.DB, getenv func(string) string, log *slog.Logger) error {
	st, err := openStores(ctx, cfg, db)
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
		Analyzer:    analyze.NewResilient(inner, analyze.ResilientOptions{}),
		Limits:      workerLimits(cfg),
		Concurrency: cfg.WorkerConcurrency, Visibility: cfg.Visibility, MaxReceives: cfg.MaxReceives,
		Metrics: worker.NewMetrics(reg), Log: log,
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
	return l
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

func tokenCmd(ctx context.Context, db *sqldb.DB, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("docsvc token: want create, list or revoke")
	}
	fs := flag.NewFlagSet("token "+args[0], flag.ContinueOnError)
	name := fs.String("name", "", "a label for the token, e.g. the script or person that uses it")
	output := fs.String("output", "text", "text or json")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "create":
		if *name == "" {
			return errors.New("docsvc token create: --name is required (a label for who uses the token)")
		}
		plain, id, err := auth.CreateToken(ctx, db, *name)
		if err != nil {
			return err
		}
		if *output == "json" {
			return json.NewEncoder(stdout).Encode(map[string]string{"id": id, "name": *name, "token": plain})
		}
		fmt.Fprintln(stdout, plain)
		return nil
	case "list":
		toks, err := auth.ListTokens(ctx, db)
		if err != nil {
			return err
		}
		if *output == "json" {
			return json.NewEncoder(stdout).Encode(toks)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED\tREVOKED")
		for _, t := range toks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", t.ID, t.Name, t.CreatedAt.Format(time.RFC3339), t.Revoked())
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return errors.New("docsvc token revoke: give the token ID (see 'docsvc token list')")
		}
		return auth.RevokeToken(ctx, db, fs.Arg(0))
	}
	return fmt.Errorf("docsvc token: unknown subcommand %q (want create, list or revoke)", args[0])
}

func configCmd(ctx context.Context, args []string, cfg *config.Config, loadErr error, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		return errors.New("docsvc config: want 'config check'")
	}
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	output := fs.String("output", "text", "text or json")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if loadErr != nil {
		return loadErr
	}
	return config.WriteCheck(stdout, cfg, *output)
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

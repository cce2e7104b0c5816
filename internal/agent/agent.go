// Package agent is tether-agent, the customer-side coordination agent.
//
// It runs in the customer's account next to the document service and is the
// only component that talks to the vendor's plane. It opens every
// connection itself and listens on no public port. What it sends is limited
// to the typed payloads of internal/wire (activation, heartbeat, opt-in
// telemetry, approved diagnostics bundles) and signed GETs for releases and
// diagnostic requests; every payload is appended to the customer's egress
// ledger before it leaves.
//
// Its only view of the document service is docsvc's internal
// /metrics/summary (package collect). It imports no document, storage or queue code
// and no S3 or SQS client: tether-exchange, which never talks to the
// vendor, mirrors its data directory to the exchange bucket. cmd/tether-agent's
// dependency test enforces that.
// The files it keeps in its data directory are listed in docs/agent.md
// ("Where its state lives").
package agent

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwschemas "github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/tetherhq/tether/internal/agent/collect"
	"github.com/tetherhq/tether/internal/atomicfile"
	"github.com/tetherhq/tether/internal/diagspool"
	"github.com/tetherhq/tether/internal/ledger"
	"github.com/tetherhq/tether/internal/license"
	"github.com/tetherhq/tether/internal/updater"
	"github.com/tetherhq/tether/internal/wire"
)

// Version is this agent's release; the image build sets it to the release
// version (go build -ldflags -X, internal/imagebuild).
var Version = "0.1.0"

// ErrBadLicense is matched when the license file fails verification: the
// agent will not run on a license it cannot verify.
var ErrBadLicense = errors.New("agent: license does not verify")

// Options are the agent's injected dependencies; tests set them, the
// command leaves them zero.
type Options struct {
	Now        func() time.Time // default time.Now
	Logger     *slog.Logger     // default JSON to Stderr and D/logs/agent.log
	Stderr     io.Writer        // default os.Stderr
	HTTPClient *http.Client     // for the plane and docsvc; default 30s timeout
	AWSConfig  *aws.Config      // for --identity-secret, --release-record and --alarm-prefix; default the SDK's default chain
	Rand       func() float64   // backoff jitter; default math/rand/v2

	RetryBase    time.Duration // first retry after a failed heartbeat; default 1s
	RetryMax     time.Duration // retry cap; default 5m
	UpdateEvery  time.Duration // TUF refresh; default 1h
	LicenseEvery time.Duration // offline license re-check; default 24h
}

// Agent is one running agent.
type Agent struct {
	alarms *cloudwatch.Client // the capacity alarms' states (heartbeat.go); nil without --alarm-prefix
	cfg    Config
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	plane  *planeClient
	docsvc *collect.Client
	upd    *updater.Client
	keys   keyStore
	logs   *rotatingFile
	ssm    *ssm.Client // the release record's; nil on the local runtime

	licFile []byte // for the activation token

	mu            sync.Mutex // guards everything below
	key           ed25519.PrivateKey
	next          ed25519.PrivateKey // the pending key rekey moves to; nil when none
	install       Install
	lic           license.License
	prevSummary   *collect.Summary
	docsvcVersion string
	schemaVersion int64
	objects       int64
	bytes         int64
	providerKind  string
	status        Status
	history       []HealthRecord
	lastSnapshot  collect.Snapshot
	// startedAt is when Run started; sentSinceStart, whether a heartbeat
	// has reached the plane since (see holdFirst).
	startedAt      time.Time
	sentSinceStart bool
}

// Status is what the status page and /status.json show.
type Status struct {
	InstallID          string    `json:"install_id"`
	LicenseID          string    `json:"license_id"`
	LicenseState       string    `json:"license_state"`
	LicenseExpiresAt   time.Time `json:"license_expires_at"`
	LastHeartbeatAt    time.Time `json:"last_heartbeat_at"`
	LastHeartbeatOK    bool      `json:"last_heartbeat_ok"`
	LastHeartbeatError string    `json:"last_heartbeat_error,omitempty"`
	// LastHeartbeatErrorClass is why, in one word (plane.go).
	LastHeartbeatErrorClass string              `json:"last_heartbeat_error_class,omitempty"`
	PlaneReachable          bool                `json:"plane_reachable"`
	ConsecutiveFails        int                 `json:"consecutive_failures"`
	AvailableRelease        string              `json:"available_release,omitempty"`
	ReleaseCheckedAt        time.Time           `json:"release_checked_at"`
	ReleaseCheckError       string              `json:"release_check_error,omitempty"`
	Release                 string              `json:"release,omitempty"`
	LastUpgrade             wire.UpgradeAttempt `json:"last_upgrade,omitzero"`
	PendingDiagnostics      int                 `json:"pending_diagnostics"`
	LedgerEntries           uint64              `json:"ledger_entries"`
	Telemetry               bool                `json:"telemetry"`
	Channel                 string              `json:"channel"`
	AgentVersion            string              `json:"agent_version"`
	DocsvcVersion           string              `json:"docsvc_version"`
}

// HealthRecord is one heartbeat in the local health history.
type HealthRecord struct {
	Time       time.Time              `json:"time"`
	Components []wire.ComponentHealth `json:"components"`
	Queue      wire.QueueStats        `json:"queue"`
	ErrorRate  float64                `json:"error_rate"`
	AIProvider wire.ProviderHealth    `json:"ai_provider"`
	Sent       bool                   `json:"sent"`
}

// maxHistory bounds the health history: six hours at the default interval.
const maxHistory = 360

func (o *Options) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Stderr = cmp.Or(o.Stderr, io.Writer(os.Stderr))
	o.HTTPClient = cmp.Or(o.HTTPClient, &http.Client{Timeout: 30 * time.Second})
	// Never follow a redirect: the agent talks to the plane URL the customer
	// configured and nowhere else. Following one would let the plane send a
	// signed request (and its body) to any host, including inside the
	// customer's network, while the ledger named the configured destination.
	c := *o.HTTPClient
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	o.HTTPClient = &c
	o.RetryBase = cmp.Or(o.RetryBase, time.Second)
	o.RetryMax = cmp.Or(o.RetryMax, 5*time.Minute)
	o.UpdateEvery = cmp.Or(o.UpdateEvery, time.Hour)
	o.LicenseEvery = cmp.Or(o.LicenseEvery, 24*time.Hour)
}

func (a *Agent) path(name ...string) string {
	return filepath.Join(append([]string{a.cfg.DataDir}, name...)...)
}

// New checks everything that can be checked offline (license signature,
// ledger integrity, identity key, trusted root) and prepares the agent. It
// does not contact the plane.
func New(ctx context.Context, cfg Config, opts Options) (_ *Agent, err error) {
	opts.defaults()
	a := &Agent{cfg: cfg, opts: opts, now: opts.Now, providerKind: "local", docsvcVersion: unknownVersion}
	for _, dir := range []string{cfg.DataDir, a.path("logs"), a.path("diagnostics")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("agent: data dir: %w", err)
		}
	}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	a.log = opts.Logger
	if a.log == nil {
		if a.logs, err = openRotating(a.path("logs", "agent.log"), 1<<20); err != nil {
			return nil, fmt.Errorf("agent: log file: %w", err)
		}
		a.log = slog.New(slog.NewJSONHandler(io.MultiWriter(opts.Stderr, a.logs), nil))
	}
	if err := a.loadLicense(); err != nil {
		return nil, err
	}
	led, err := ledger.Open(a.path("egress.ledger"))
	if err != nil {
		if errors.Is(err, ledger.ErrTornTail) {
			return nil, fmt.Errorf("agent: %w (that entry was never sent; ledgerread.RepairTornTail removes it, see docs/protocol.md)", err)
		}
		return nil, fmt.Errorf("agent: %w", err)
	}
	a.plane = &planeClient{base: cfg.PlaneURL, http: opts.HTTPClient, ledger: led, now: a.now}
	a.docsvc = &collect.Client{BaseURL: cfg.DocsvcURL, HTTP: &http.Client{Timeout: 10 * time.Second, Transport: opts.HTTPClient.Transport}}

	if err := a.awsClients(ctx); err != nil {
		return nil, err
	}
	key, created, err := loadOrCreateKey(ctx, a.keys)
	if err != nil {
		return nil, err
	}
	if created {
		a.log.Info("identity key created", "store", a.keys.describe())
	}
	a.key = key
	in, ok, err := readInstall(a.path("install.json"))
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if a.next, _, err = a.keys.pending(ctx); err != nil {
		return nil, fmt.Errorf("agent: load pending identity key (%s): %w", a.keys.describe(), err)
	}
	if ok {
		// install.json names the pending key after a crash between saving it and promoting the key.
		if in.PublicKey != encodePub(key) && (a.next == nil || in.PublicKey != encodePub(a.next)) {
			return nil, ErrKeyMismatch
		}
		a.install = in
		a.plane.setIdentity(key, in.InstallID)
	}

	if err := a.initUpdater(); err != nil {
		return nil, err
	}
	a.status.Channel, a.status.AgentVersion, a.status.Telemetry = cfg.Channel, Version, cfg.Telemetry
	a.history = loadHistory(a.path("health-history.json"))
	return a, nil
}

// awsClients makes the AWS clients of the features configured, with
// Options.AWSConfig or the SDK's default chain (in ECS, the task role):
// the identity secret's, the release record's (SSM) and the alarms'
// (CloudWatch).
func (a *Agent) awsClients(ctx context.Context) error {
	a.keys = fileKeys{path: a.path("identity.key")}
	c := a.cfg
	if c.IdentitySecret == "" && c.ReleaseRecord == "" && c.AlarmPrefix == "" {
		return nil
	}
	var awsCfg aws.Config
	var err error
	if a.opts.AWSConfig != nil {
		awsCfg = *a.opts.AWSConfig
	} else if awsCfg, err = awsconfig.LoadDefaultConfig(ctx); err != nil {
		return fmt.Errorf("agent: AWS configuration: %w", err)
	}
	if c.IdentitySecret != "" {
		a.keys = secretKeys{client: secretsmanager.NewFromConfig(awsCfg), id: c.IdentitySecret}
	}
	if c.ReleaseRecord != "" {
		a.ssm = ssm.NewFromConfig(awsCfg)
	}
	if c.AlarmPrefix != "" {
		// The query protocol, which CloudWatch serves beside the SDK's
		// default and tetherctl uses too (docs/decisions/0007-aws-api-emulator.md).
		a.alarms = cloudwatch.NewFromConfig(awsCfg, func(o *cloudwatch.Options) {
			o.Protocol = awsquery.New(cwschemas.GraniteServiceVersion20100801)
		})
	}
	return nil
}

// loadLicense verifies the license offline. A file that does not verify
// stops the agent: running unlicensed, or on a forged license, is not a
// state to report but a configuration to fix.
func (a *Agent) loadLicense() error {
	pemKey, err := inlineOrFile(a.cfg.LicensePublicKey)
	if err != nil {
		return fmt.Errorf("agent: read license public key: %w", err)
	}
	pub, err := license.ParsePublicKey(pemKey)
	if err != nil {
		return fmt.Errorf("agent: license public key: %w", err)
	}
	file, err := inlineOrFile(a.cfg.LicenseFile)
	if err != nil {
		return fmt.Errorf("agent: read license: %w", err)
	}
	l, err := license.Verify(pub, file)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadLicense, err)
	}
	if !l.AllowsChannel(a.cfg.Channel) {
		return fmt.Errorf("agent: license %s does not allow channel %s (allowed: %v)", l.ID, a.cfg.Channel, l.Channels)
	}
	a.mu.Lock()
	a.lic, a.licFile = l, file
	st := l.StateAt(a.now())
	a.status.LicenseID, a.status.LicenseState, a.status.LicenseExpiresAt = l.ID, string(st), l.ExpiresAt
	a.mu.Unlock()
	return nil
}

// licenseStatus is the heartbeat's license field; a.mu is held.
func (a *Agent) licenseStatus(now time.Time) wire.LicenseStatus {
	st := a.lic.StateAt(now)
	a.status.LicenseState = string(st)
	return wire.LicenseStatus{State: string(st), ExpiresAt: a.lic.ExpiresAt.UTC()}
}

// Close releases the ledger and log file.
func (a *Agent) Close() {
	if a.plane != nil {
		a.plane.ledger.Close()
	}
	if a.logs != nil {
		a.logs.Close()
	}
}

// Run activates (once ever), then heartbeats, polls diagnostics, checks
// releases and re-verifies the license until ctx ends. It returns nil when
// ctx is cancelled and an error only for conditions an operator must fix.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.ensureActivated(ctx); err != nil {
		return err
	}
	if err := a.rekey(ctx); err != nil {
		a.log.Error("identity key not rotated", "err", err)
	}
	if a.cfg.StatusAddr != "" {
		stop, err := a.serveStatus(ctx)
		if err != nil {
			return err
		}
		defer stop()
	}
	a.log.Info("agent running", "install_id", a.install.InstallID, "channel", a.cfg.Channel,
		"heartbeat_seconds", a.cfg.Heartbeat.Seconds(), "telemetry", a.cfg.Telemetry, "auto_approve_diagnostics", a.cfg.AutoApprove)

	a.mu.Lock()
	a.startedAt = a.now()
	a.mu.Unlock()
	hbTimer := time.NewTimer(0)
	// The first release check waits until a scrape has named docsvc's
	// version, since which releases apply depends on it (or, if docsvc stays
	// silent, until firstCheckTicks rounds have passed).
	updTimer := time.NewTimer(a.opts.UpdateEvery)
	ticksBeforeCheck := firstCheckTicks
	licTimer := time.NewTimer(a.opts.LicenseEvery)
	defer hbTimer.Stop()
	defer updTimer.Stop()
	defer licTimer.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			a.log.Info("agent stopping")
			return nil
		case <-hbTimer.C:
			// The release record is read before every heartbeat (a file on
			// the local runtime, one SSM GetParameter on AWS), so an
			// upgrade's outcome reaches the plane on the next beat.
			a.refreshReleases(ctx)
			if err := a.tick(ctx); err == nil {
				failures = 0
				hbTimer.Reset(a.cfg.Heartbeat)
			} else if errors.Is(err, errHeld) {
				hbTimer.Reset(min(a.cfg.Heartbeat, 5*time.Second)) // a held heartbeat is tried again soon
			} else {
				failures++
				d := min(backoff(failures, a.opts.RetryBase, a.opts.RetryMax, a.opts.Rand), a.opts.RetryMax)
				// The class and the error's text (never the payload), so a
				// revoked install, a refused payload and a broken ledger
				// read differently.
				a.log.Warn("heartbeat failed; will retry", "attempt", failures, "retry_in_ms", d.Milliseconds(),
					"class", failureClass(err), "err", err.Error())
				a.mu.Lock()
				a.status.ConsecutiveFails = failures
				a.mu.Unlock()
				hbTimer.Reset(d)
			}
			if ticksBeforeCheck > 0 {
				ticksBeforeCheck--
				if a.knowsDocsvcVersion() || ticksBeforeCheck == 0 {
					ticksBeforeCheck = 0
					updTimer.Reset(0)
				}
			}
		case <-updTimer.C:
			a.checkUpdates(ctx)
			updTimer.Reset(a.opts.UpdateEvery)
		case <-licTimer.C:
			if err := a.loadLicense(); err != nil {
				a.log.Error("license re-check failed; stopping", "err", err)
				return err
			}
			licTimer.Reset(a.opts.LicenseEvery)
		}
	}
}

// firstCheckTicks bounds how many heartbeat rounds the first release check
// waits for docsvc to report its version.
const firstCheckTicks = 10

func (a *Agent) knowsDocsvcVersion() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.docsvcVersion != unknownVersion
}

// ensureActivated activates with the license's one-time token unless
// install.json says this agent already did. Network failures are retried
// with backoff; a refusal, or a request wire refuses, is final.
func (a *Agent) ensureActivated(ctx context.Context) error {
	if a.install.InstallID != "" {
		return nil
	}
	token, err := activationToken(a.licFile)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		in, err := a.activate(ctx, token)
		if err == nil {
			if err := atomicfile.WriteJSON(a.path("install.json"), in, 0o600); err != nil {
				// The token is spent; without this file the next start
				// cannot activate again, so say exactly what to keep.
				return fmt.Errorf("agent: activated as %s but could not save install.json: %w", in.InstallID, err)
			}
			a.mu.Lock()
			a.install = in
			a.mu.Unlock()
			a.plane.setIdentity(a.key, in.InstallID)
			a.log.Info("activated", "install_id", in.InstallID, "license_id", in.LicenseID)
			return nil
		}
		if errors.Is(err, ErrActivationRefused) || failureClass(err) == failInvalid {
			return err
		}
		d := backoff(attempt, a.opts.RetryBase, a.opts.RetryMax, a.opts.Rand)
		a.log.Warn("activation failed; will retry", "attempt", attempt, "retry_in_ms", d.Milliseconds(), "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

// tick is one heartbeat round: scrape docsvc, send the heartbeat, then
// (if the plane answered) handle diagnostics and telemetry. It returns why
// the heartbeat did not reach the plane, or nil.
func (a *Agent) tick(ctx context.Context) error {
	snap := a.docsvc.Scrape(ctx, a.now())
	if snap.Err != nil {
		a.log.Warn("docsvc summary unavailable", "err", snap.Err)
	}
	if a.holdFirst(snap) {
		a.log.Info("docsvc not ready yet; holding the first heartbeat",
			"grace_seconds", startupGrace(a.cfg.Heartbeat).Seconds())
		return errHeld
	}
	hb := a.buildHeartbeat(snap)
	hb.Warnings = a.warnings(ctx)
	resp, err := a.sendHeartbeat(ctx, hb)
	a.recordHeartbeat(snap, hb, err)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.sentSinceStart = true
	a.mu.Unlock()
	a.log.Info("heartbeat sent", "pending_diagnostics", resp.PendingDiagnostics, "ledger_seq", a.plane.ledgerEntries())
	a.pollDiagnostics(ctx)
	a.processDiagnostics(ctx)
	if a.cfg.Telemetry {
		a.telemetryTick(ctx, snap)
	}
	return nil
}

func (a *Agent) recordHeartbeat(snap collect.Snapshot, hb wire.Heartbeat, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastSnapshot = snap
	a.status.LastHeartbeatAt = hb.SentAt
	a.status.LastHeartbeatOK = err == nil
	a.status.PlaneReachable = err == nil
	a.status.LastHeartbeatError = ""
	a.status.LastHeartbeatErrorClass = failureClass(err)
	if err != nil {
		a.status.LastHeartbeatError = err.Error()
	} else {
		a.status.ConsecutiveFails = 0
	}
	a.status.DocsvcVersion = hb.Versions.Docsvc
	a.history = append(a.history, HealthRecord{Time: hb.SentAt, Components: hb.Components, Queue: hb.Queue,
		ErrorRate: hb.ErrorRate, AIProvider: hb.AIProvider, Sent: err == nil})
	if len(a.history) > maxHistory {
		a.history = append([]HealthRecord(nil), a.history[len(a.history)-maxHistory:]...)
	}
	if werr := atomicfile.WriteJSON(a.path("health-history.json"), a.history, 0o600); werr != nil {
		a.log.Warn("save health history", "err", werr)
	}
}

// Snapshot returns the current status (for the status page and tests).
func (a *Agent) Snapshot() Status {
	pending := countState(a.cfg.DataDir, diagspool.StatePending)
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.status
	st.InstallID = a.install.InstallID
	st.LedgerEntries = a.plane.ledgerEntries()
	st.PendingDiagnostics = pending
	return st
}

// loadHistory reads the saved health history; a missing or unreadable file
// just starts a new one (it is a diagnostic aid, not a record).
func loadHistory(path string) []HealthRecord {
	var h []HealthRecord
	if atomicfile.ReadJSON(path, &h) != nil || len(h) > maxHistory {
		return nil
	}
	return h
}

// rotatingFile is the agent's log file: appended to, and moved to ".1"
// (replacing the previous one) when it passes max bytes, so the agent's own
// logs never use more than twice max on disk.
type rotatingFile struct {
	mu   sync.Mutex
	path string
	max  int64
	f    *os.File
	size int64
}

func openRotating(path string, max int64) (*rotatingFile, error) {
	r := &rotatingFile{path: path, max: max}
	return r, r.open()
}

func (r *rotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size = f, fi.Size()
	return nil
}

func (r *rotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return len(p), nil // closed: stderr still has the line
	}
	if r.size+int64(len(p)) > r.max && r.size > 0 {
		r.f.Close()
		r.f = nil // until open succeeds
		if err := os.Rename(r.path, r.path+".1"); err != nil {
			return 0, err
		}
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *rotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

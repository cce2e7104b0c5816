package exchange

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tetherhq/tether/internal/cli"
	"github.com/tetherhq/tether/internal/ledger"
)

// ErrUsage is matched by command-line and configuration mistakes (exit 2).
var ErrUsage = errors.New("usage")

// Config is tether-exchange's configuration.
type Config struct {
	DataDir  string        // the agent's data dir
	Bucket   string        // the agent exchange bucket
	Interval time.Duration // between rounds
}

// DefaultInterval is the agent's default heartbeat: a decision reaches the
// agent's data dir within one interval, and its upload follows at the
// agent's next heartbeat.
const DefaultInterval = time.Minute

type setting struct {
	flag, env, def, help string
	v                    *string
}

func settings(dir, bucket, interval *string) []setting {
	return []setting{
		{"data-dir", "TETHER_DATA_DIR", "", "the agent's data directory (the agent's TETHER_DATA_DIR)", dir},
		{"exchange-bucket", "TETHER_EXCHANGE_BUCKET", "", "the agent exchange bucket's name", bucket},
		{"interval", "TETHER_EXCHANGE_INTERVAL", DefaultInterval.String(), "time between rounds, 1s to 1h", interval},
	}
}

const usage = `usage: tether-exchange [flags]

Mirrors the agent's data directory to the agent exchange bucket until
SIGTERM. Each round it copies what is new (each diagnostics request with its
bundle, each state change, the egress ledger's new entries and its head),
then applies the operator's decisions found there (tetherctl diag
approve|decline --config) as local approvals or declines. An approval that
does not name the manifest the agent built, or whose bundle changed, is
refused and logged; the agent uploads an approved bundle at its next
heartbeat. It talks to S3 only, never to the vendor; the agent, which talks
to the vendor, has no S3 permission (docs/security.md).

Every flag can come from its environment variable instead; a flag wins.
It logs a line only for a round that copied, decided or failed something.
Exit status: 0 stopped by a signal; 1 the data directory cannot be used;
2 a usage mistake.

Flags:
`

// Main is the tether-exchange command; cmd/tether-exchange exits with its
// result through internal/cli. awsCfg loads the AWS configuration (the
// SDK's default chain in the task), now is the clock.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, awsCfg func(context.Context) (aws.Config, error), now func() time.Time) error {
	if cli.WantsHelp(args) {
		fs, _ := flags(func(string) string { return "" })
		fmt.Fprint(stdout, usage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return nil
	}
	fs, cfg := flags(getenv)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w (see 'tether-exchange --help')", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (see 'tether-exchange --help')", ErrUsage, fs.Arg(0))
	}
	c, err := cfg()
	if err != nil {
		return err
	}
	if st, err := os.Stat(c.DataDir); err != nil || !st.IsDir() {
		return fmt.Errorf("--data-dir %s is not a directory: point it at the agent's data directory, which the agent creates", c.DataDir)
	}
	ac, err := awsCfg(ctx)
	if err != nil {
		return fmt.Errorf("AWS configuration: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	m := NewMirror(New(ac, c.Bucket, nil), c.DataDir, now)
	log.Info("tether-exchange started", "interval", c.Interval.String())
	for {
		m.Round(ctx, log)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.Interval):
		}
	}
}

// flags is the flag set, each default taken from its variable, and what
// checks the parsed values.
func flags(getenv func(string) string) (*flag.FlagSet, func() (Config, error)) {
	var dir, bucket, interval string
	fs := flag.NewFlagSet("tether-exchange", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, s := range settings(&dir, &bucket, &interval) {
		v := getenv(s.env)
		if v == "" {
			v = s.def
		}
		fs.StringVar(s.v, s.flag, v, s.help+" (env "+s.env+")")
	}
	return fs, func() (Config, error) { return NewConfig(dir, bucket, interval) }
}

// NewConfig checks the settings and reports every bad one on its own line.
func NewConfig(dir, bucket, interval string) (Config, error) {
	c := Config{DataDir: dir, Bucket: bucket}
	var problems []string
	for _, s := range settings(&dir, &bucket, &interval) {
		why := ""
		switch v := *s.v; {
		case v == "":
			why = "is required; the services stack sets it beside the agent's"
		case s.flag == "exchange-bucket":
			if err := CheckBucketName(v); err != nil {
				why = err.Error()
			}
		case s.flag == "interval":
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Second || d > time.Hour {
				why = fmt.Sprintf("%q must be a duration from 1s to 1h, such as 60s", v)
			}
			c.Interval = d
		}
		if why != "" {
			problems = append(problems, fmt.Sprintf("--%s (%s): %s", s.flag, s.env, why))
		}
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("%w: invalid configuration:\n  %s", ErrUsage, strings.Join(problems, "\n  "))
	}
	return c, nil
}

// roundTimeout bounds each half of a round.
const roundTimeout = time.Minute

// errBusy means another mirror holds the data dir's round lock.
var errBusy = errors.New("exchange: another tether-exchange is mirroring this data directory; skipped this round")

// Round copies what is new, then applies the decisions, and logs what it
// did: nothing for a round that found nothing to do. It holds the data
// dir's round lock, so two mirrors (a rolling deployment's old and new
// task) never interleave their writes to exchange.json; the diagnostics
// spool and the ledger have their own locks, shared with the agent.
func (m *Mirror) Round(ctx context.Context, log *slog.Logger) error {
	unlock, err := m.lock()
	if err != nil {
		log.Warn("exchange round skipped", "err", err)
		return err
	}
	defer unlock()
	cctx, cancel := context.WithTimeout(ctx, roundTimeout)
	copied, cerr := m.Copy(cctx)
	cancel()
	if len(copied.Requests) > 0 || copied.LedgerBytes > 0 {
		log.Info("copied to the exchange bucket", "requests", copied.Requests, "ledger_bytes", copied.LedgerBytes)
	}
	if cerr != nil && ctx.Err() == nil { // not a stop's cancelled calls
		log.Warn("copy to the exchange bucket; will retry", "err", cerr)
	}
	dctx, cancel := context.WithTimeout(ctx, roundTimeout)
	out, derr := m.Decide(dctx)
	cancel()
	for _, o := range out {
		// Never who decided: these logs carry no one's identity.
		if o.Applied {
			log.Info("diagnostic request decided in the exchange bucket", "diagnostic_id", o.ID, "decision", o.Decision)
		} else {
			log.Warn("decision in the exchange bucket not applied", "diagnostic_id", o.ID, "decision", o.Decision, "why", o.Why)
		}
	}
	if derr != nil && ctx.Err() == nil {
		log.Warn("read decisions from the exchange bucket; will retry", "err", derr)
	}
	return errors.Join(cerr, derr)
}

// lock takes D/exchange.lock without waiting.
func (m *Mirror) lock() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(m.dataDir, "exchange.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("exchange: %w", err)
	}
	if err := ledger.Flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errBusy
		}
		return nil, fmt.Errorf("exchange: lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/cli"
	"github.com/tetherhq/tether/internal/releasestate"
	"github.com/tetherhq/tether/internal/wire"
)

// ErrUsage is matched by command-line and configuration mistakes; the
// command exits 2 for them.
var ErrUsage = errors.New("usage")

// Config is the agent's configuration, parsed once at start from flags and
// the environment (a flag wins over its variable).
type Config struct {
	DataDir          string        // --data-dir, TETHER_DATA_DIR
	PlaneURL         string        // --plane-url, TETHER_PLANE_URL
	LicenseFile      string        // --license, TETHER_LICENSE_FILE
	LicensePublicKey string        // --license-public-key, TETHER_LICENSE_PUBLIC_KEY (PEM)
	TrustedRoot      string        // --trusted-root, TETHER_TRUSTED_ROOT (TUF root.json)
	Channel          string        // --channel, TETHER_CHANNEL
	DocsvcURL        string        // --docsvc-url, TETHER_DOCSVC_URL
	StatusAddr       string        // --status-addr, TETHER_STATUS_ADDR; empty: no status page
	Heartbeat        time.Duration // --heartbeat, TETHER_HEARTBEAT
	Telemetry        bool          // --telemetry, TETHER_TELEMETRY
	AutoApprove      bool          // --auto-approve-diagnostics, TETHER_AUTO_APPROVE_DIAGNOSTICS
	IdentitySecret   string        // --identity-secret, TETHER_AGENT_IDENTITY_SECRET
	AlarmPrefix      string        // --alarm-prefix, TETHER_ALARM_PREFIX; empty: no warnings
	ReleaseRecord    string        // --release-record, TETHER_RELEASE_RECORD; empty: DATA_DIR/state/releases.json
}

// setting is one configuration value: its flag, its variable and where it
// goes. The table is the single list the parser, the help text and the
// redacted config in diagnostics bundles are built from.
type setting struct {
	flag, env, help, def string
	str                  *string
	dur                  *time.Duration
	boolean              *bool
}

func (c *Config) settings() []setting {
	return []setting{
		{flag: "data-dir", env: "TETHER_DATA_DIR", help: "directory for the agent's identity, ledger, TUF metadata and diagnostics", str: &c.DataDir},
		{flag: "plane-url", env: "TETHER_PLANE_URL", help: "the vendor plane's base URL (https, or http on loopback)", str: &c.PlaneURL},
		{flag: "license", env: "TETHER_LICENSE_FILE", help: "license file from the vendor (or, in the environment only, the license itself as TETHER_LICENSE, as ECS injects a secret)", str: &c.LicenseFile},
		{flag: "license-public-key", env: "TETHER_LICENSE_PUBLIC_KEY", help: "the vendor's license public key: a PEM file, or the PEM itself", str: &c.LicensePublicKey},
		{flag: "trusted-root", env: "TETHER_TRUSTED_ROOT", help: "the TUF root.json shipped with the agent: a file, or the JSON itself", str: &c.TrustedRoot},
		{flag: "channel", env: "TETHER_CHANNEL", help: "release channel", def: "stable", str: &c.Channel},
		{flag: "docsvc-url", env: "TETHER_DOCSVC_URL", help: "the document service's internal base URL", def: "http://127.0.0.1:8080", str: &c.DocsvcURL},
		{flag: "status-addr", env: "TETHER_STATUS_ADDR", help: "loopback or private address for the status page (empty: none)", str: &c.StatusAddr},
		{flag: "heartbeat", env: "TETHER_HEARTBEAT", help: "heartbeat interval", def: "60s", dur: &c.Heartbeat},
		{flag: "telemetry", env: "TETHER_TELEMETRY", help: "send daily aggregate usage counts", def: "false", boolean: &c.Telemetry},
		{flag: "auto-approve-diagnostics", env: "TETHER_AUTO_APPROVE_DIAGNOSTICS", help: "upload diagnostics bundles without operator approval", def: "false", boolean: &c.AutoApprove},
		{flag: "identity-secret", env: "TETHER_AGENT_IDENTITY_SECRET", help: "Secrets Manager secret (name or ARN) holding the agent's key instead of DATA_DIR/identity.key", str: &c.IdentitySecret},
		{flag: "alarm-prefix", env: "TETHER_ALARM_PREFIX", help: "the deployment's CloudWatch alarm names' prefix, tether-<name>-: the heartbeat names which capacity alarms are in ALARM (empty: none)", str: &c.AlarmPrefix},
		{flag: "release-record", env: "TETHER_RELEASE_RECORD", help: "SSM parameter /tether/<name>/state/releases with the install's upgrades (empty: DATA_DIR/state/releases.json)", str: &c.ReleaseRecord},
	}
}

// ParseConfig reads the run command's flags and the environment, then
// validates everything, reporting every bad value on its own line.
func ParseConfig(args []string, getenv func(string) string) (Config, error) {
	var c Config
	fs, raw := runFlags(getenv)
	// The flag package would print every flag with its value from the
	// environment (the license's activation token among them); the error
	// names the mistake and points to the help instead.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("%w: %w (see 'tether-agent run --help')", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	var problems []string
	bad := func(s setting, why string) {
		problems = append(problems, fmt.Sprintf("--%s (%s): %s", s.flag, s.env, why))
	}
	for _, s := range c.settings() {
		v := *raw[s.flag]
		var err error
		switch {
		case s.str != nil:
			*s.str = v
		case s.dur != nil:
			if *s.dur, err = time.ParseDuration(v); err != nil {
				bad(s, "must be a duration such as 60s or 5m")
				continue
			}
		case s.boolean != nil:
			if *s.boolean, err = strconv.ParseBool(v); err != nil {
				bad(s, "must be true or false")
				continue
			}
		}
		switch s.flag {
		case "data-dir", "license", "license-public-key", "trusted-root":
			if v == "" {
				bad(s, "is required")
			}
		case "plane-url":
			if err := checkPlaneURL(v); err != nil {
				bad(s, err.Error())
			}
		case "docsvc-url":
			if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
				bad(s, "must be an http(s) URL without credentials, such as http://127.0.0.1:8080")
			}
		case "channel":
			if !wire.ValidChannel(v) {
				bad(s, "must be 1-32 characters of a-z 0-9 -")
			}
		case "status-addr":
			if err := CheckStatusAddr(v); v != "" && err != nil {
				bad(s, err.Error())
			}
		case "heartbeat":
			if c.Heartbeat < time.Second || c.Heartbeat > 24*time.Hour {
				bad(s, "must be between 1s and 24h")
			}
		case "identity-secret":
			if v != "" && (len(v) > 2048 || strings.ContainsAny(v, " \t\n")) {
				bad(s, "must be a Secrets Manager secret name or ARN")
			}
		case "alarm-prefix":
			if v != "" && !alarmPrefixRE.MatchString(v) {
				bad(s, "must be tether-<deployment name>-")
			}
		case "release-record":
			if v != "" && !releasestate.RecordRE.MatchString(v) {
				bad(s, "must be the SSM parameter /tether/<name>/state/releases")
			}
		}
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("%w: invalid configuration:\n  %s", ErrUsage, strings.Join(problems, "\n  "))
	}
	return c, nil
}

var alarmPrefixRE = regexp.MustCompile(`^tether-[a-z][a-z0-9-]{0,40}-$`)

// checkPlaneURL allows https anywhere and plain http only to a loopback
// address: signatures protect integrity, but heartbeats are still the
// customer's operational data and deserve TLS on any real network.
func checkPlaneURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must be a base URL such as https://plane.example.com, without credentials or query")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return errors.New("must use https unless the plane is on loopback")
	}
	return errors.New("must be an https URL")
}

// Redacted is the effective configuration as it goes into a diagnostics
// bundle: every setting by flag name, with the identity secret's name
// replaced (it names a resource in the account), a license given inline
// (TETHER_LICENSE, which carries the one-time activation token) replaced,
// and URLs stripped to scheme and host.
func (c Config) Redacted() map[string]string {
	out := map[string]string{}
	for _, s := range c.settings() {
		var v string
		switch {
		case s.str != nil:
			v = *s.str
		case s.dur != nil:
			v = s.dur.String()
		case s.boolean != nil:
			v = strconv.FormatBool(*s.boolean)
		}
		switch s.flag {
		case "identity-secret":
			if v != "" {
				v = "(set)"
			}
		case "license":
			if strings.HasPrefix(strings.TrimSpace(v), "{") {
				v = "(inline)"
			}
		case "plane-url", "docsvc-url":
			if u, err := url.Parse(v); err == nil {
				v = u.Scheme + "://" + u.Host
			}
		}
		out[s.flag] = v
	}
	return out
}

// inlineOrFile returns a setting's content: the value itself when it is a
// PEM block or a JSON document (as ECS injects secrets and parameters), or
// else the file it names.
func inlineOrFile(v string) ([]byte, error) {
	t := strings.TrimSpace(v)
	if strings.HasPrefix(t, "-----BEGIN ") || strings.HasPrefix(t, "{") {
		return []byte(t), nil
	}
	return os.ReadFile(v)
}

const usage = `tether-agent — the customer-side, outbound-only coordination agent

usage:
  tether-agent run [flags]          run the agent
  tether-agent version              print the agent's version

Every command explains itself: 'tether-agent COMMAND --help'. See docs/agent.md.
`

const helpRun = `usage: tether-agent run [flags]

Runs the agent: activates once with the license's token, then heartbeats,
polls diagnostics requests, checks releases and re-verifies the license until
SIGTERM. Every flag can come from its environment variable instead; a flag
wins over its variable. Bad values are reported together, one per line
(exit status 2).
`

const helpVersion = `usage: tether-agent version

Prints the agent's version.
`

// Main is the tether-agent command; cmd/tether-agent exits 2 for errors
// matching ErrUsage, 1 for the rest. Help goes to stdout and does nothing
// else.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command given\n%s", ErrUsage, usage)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if args[0] == "help" && len(args) > 1 {
			return Main(ctx, append(append([]string(nil), args[1:2]...), "--help"), getenv, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	case "run":
		if cli.WantsHelp(args[1:]) {
			return writeRunHelp(stdout)
		}
		cfg, err := ParseConfig(args[1:], getenv)
		if err != nil {
			return err
		}
		a, err := New(ctx, cfg, Options{Stderr: stderr})
		if err != nil {
			return err
		}
		defer a.Close()
		return a.Run(ctx)
	case "version":
		if cli.WantsHelp(args[1:]) {
			fmt.Fprint(stdout, helpVersion)
			return nil
		}
		if len(args) > 1 {
			return fmt.Errorf("%w: version takes no arguments", ErrUsage)
		}
		fmt.Fprintln(stdout, Version)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q (see 'tether-agent --help')", ErrUsage, args[0])
}

// writeRunHelp prints run's help with every flag, its variable and its
// built-in default; never a value from the environment (TETHER_LICENSE
// holds the one-time activation token).
func writeRunHelp(w io.Writer) error {
	fs, _ := runFlags(func(string) string { return "" })
	fmt.Fprint(w, helpRun+"\nFlags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	return nil
}

// runFlags is run's flag set, each flag's default taken from its variable
// (getenv) or else the built-in one; raw holds each flag's text by name.
func runFlags(getenv func(string) string) (*flag.FlagSet, map[string]*string) {
	var c Config
	fs := flag.NewFlagSet("tether-agent run", flag.ContinueOnError)
	raw := map[string]*string{}
	for _, s := range c.settings() {
		v := s.def
		if e := getenv(s.env); e != "" {
			v = e
		} else if s.flag == "license" {
			// The license's content, never a flag: it holds the one-time
			// activation token, and argv is visible to every local user.
			v = getenv("TETHER_LICENSE")
		}
		p := &v
		raw[s.flag] = p
		if s.boolean != nil {
			// "--telemetry" alone means true, as for a bool flag, while the
			// raw text waits for the one validation pass.
			fs.BoolFunc(s.flag, s.help+" (env "+s.env+")", func(t string) error { *p = t; return nil })
			continue
		}
		fs.StringVar(p, s.flag, v, s.help+" (env "+s.env+")")
	}
	return fs, raw
}

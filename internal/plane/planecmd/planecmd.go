// Package planecmd is the tether-plane command line: the plane server
// (serve) and the vendor's admin commands for keys, licenses, releases,
// installs and diagnostics. cmd/tether-plane is a thin main around Run.
package planecmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"
)

// Env is what a command may use from its surroundings; tests pass their own.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Now            func() time.Time
}

// errUsage marks an error whose message is the usage text already printed;
// main exits 2 for it.
var errUsage = errors.New("usage")

// IsUsage reports whether err came from bad command-line usage.
func IsUsage(err error) bool { return errors.Is(err, errUsage) }

type command struct {
	name    string // "license issue"
	summary string
	run     func(ctx context.Context, env Env, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "run the coordination plane (agent API, admin API, dashboard)", runServe},
		{"keys init", "create the release and license keys and the initial TUF root", runKeysInit},
		{"keys use-kms", "move the online snapshot/timestamp keys to AWS KMS (a root rotation)", runKeysUseKMS},
		{"license issue", "sign a license for a customer (and register it with the plane)", runLicenseIssue},
		{"license register", "register an issued license file with the plane", runLicenseRegister},
		{"license list", "list the licenses the plane knows", runLicenseList},
		{"release publish", "sign and publish a release to a channel", runReleasePublish},
		{"release list", "list a channel's releases", runReleaseList},
		{"release promote", "publish a channel's release on another channel (beta to stable)", runReleasePromote},
		{"release revoke", "withdraw a published release from its channel", runReleaseRevoke},
		{"release refresh", "re-sign expiring timestamp/snapshot metadata (run from cron if serve has no --keys)", runReleaseRefresh},
		{"release export", "write a channel's signed metadata and targets to a file for air-gapped installs", runReleaseExport},
		{"installs list", "list installs with version, health and license state", runInstallsList},
		{"installs show", "show one install with its health history", runInstallsShow},
		{"installs revoke", "revoke an install: its signed requests fail from now on", runInstallsRevoke},
		{"diag request", "ask an install for a diagnostics bundle", runDiagRequest},
		{"diag list", "list diagnostics requests", runDiagList},
		{"diag download", "download an uploaded diagnostics bundle", runDiagDownload},
		{"staff add", "let a member of staff sign in to the dashboard with a role", runStaffAdd},
		{"staff list", "list the staff and their roles", runStaffList},
		{"staff set-role", "change a staff member's role", runStaffSetRole},
		{"staff remove", "remove a staff member and end their sessions", runStaffRemove},
		{"tokens create", "make an automation token limited to a role (printed once)", runTokensCreate},
		{"tokens list", "list automation tokens with their last use", runTokensList},
		{"tokens revoke", "revoke an automation token", runTokensRevoke},
		{"audit", "show the audit log: who did what, to which customer, and why", runAudit},
	}
}

// Run executes one tether-plane command.
func Run(ctx context.Context, args []string, env Env) error {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stdout, cmds)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	// Longest match first: "license issue" before a hypothetical "license".
	sort.Slice(cmds, func(i, j int) bool { return len(cmds[i].name) > len(cmds[j].name) })
	for _, c := range cmds {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c.run(ctx, env, args[len(words):])
		}
	}
	usage(env.Stderr, commands())
	return fmt.Errorf("%w: unknown command %q; the commands are listed above", errUsage, strings.Join(args[:min(2, len(args))], " "))
}

func usage(w io.Writer, cmds []command) {
	fmt.Fprintln(w, "tether-plane: the vendor's coordination plane and admin commands.")
	fmt.Fprintln(w, "\nUsage: tether-plane <command> [flags]   (each command takes --help)\n\nCommands:")
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-17s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nAdmin commands reach the plane with --plane-url and --admin-token-file (an automation")
	fmt.Fprintln(w, "token, or the break-glass <data-dir>/admin-token), or the environment variables")
	fmt.Fprintln(w, "TETHER_PLANE_URL and TETHER_ADMIN_TOKEN.")
}

// newFlags makes a flag set whose --help prints what the command does.
func newFlags(env Env, name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("tether-plane "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tether-plane %s %s\n\n%s\n\nFlags:\n", name, synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags; --help is success, anything else wrong is a usage error.
func parse(fs *flag.FlagSet, args []string) (help bool, err error) {
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(nil)
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: %w", errUsage, err)
	}
	return false, nil
}

// required names the first empty required flag.
func required(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		if f := fs.Lookup(n); f != nil && f.Value.String() == "" {
			return fmt.Errorf("%w: --%s is required (see tether-plane %s --help)", errUsage, n, strings.TrimPrefix(fs.Name(), "tether-plane "))
		}
	}
	return nil
}

// noArgs refuses stray positional arguments, which are usually a forgotten
// "--" or a value for a flag that takes none.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (flags go before nothing else here; see --help)", errUsage, fs.Arg(0))
	}
	return nil
}

// multiFlag collects repeated name=value flags.
type multiFlag struct {
	values map[string]string
	what   string // "artifact", "image", "entitlement"
}

func (m *multiFlag) String() string { return "" }

func (m *multiFlag) Set(v string) error {
	name, val, ok := strings.Cut(v, "=")
	if !ok || name == "" || val == "" {
		return fmt.Errorf("%s %q: want NAME=VALUE", m.what, v)
	}
	if m.values == nil {
		m.values = map[string]string{}
	}
	if _, dup := m.values[name]; dup {
		return fmt.Errorf("%s %q given twice", m.what, name)
	}
	m.values[name] = val
	return nil
}

func jsonLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, nil))
}

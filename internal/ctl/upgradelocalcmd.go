package ctl

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/tetherhq/tether/internal/devstack"
	"github.com/tetherhq/tether/internal/release"
)

// localFlags select the local runtime: the data dir of a running tetherctl
// dev, the root its releases are verified against, and the channel.
type localFlags struct {
	dataDir     string
	trustedRoot string
	channel     string
}

func (l *localFlags) register(fs *flag.FlagSet, verifies bool) {
	fs.StringVar(&l.dataDir, "local", "", "act on the local runtime: the `DATA_DIR` of a running tetherctl dev (deployment.yaml and AWS are not used)")
	if verifies {
		fs.StringVar(&l.trustedRoot, "trusted-root", "", "with --local: the vendor's root.json `FILE` releases are verified against (default DATA_DIR/plane/keys/root.json, the root tetherctl dev's agent trusts)")
		fs.StringVar(&l.channel, "channel", "stable", "with --local: the release `channel` the stack follows")
	}
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// open checks the flags and the data dir.
func (l localFlags) open(env Env, output string) (*localRuntime, error) {
	if output != "text" && output != "json" {
		return nil, fmt.Errorf("%w: --output %q: want text or json", errUsage, output)
	}
	dir, err := filepath.Abs(l.dataDir)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%w: --local %s is not a directory: pass the --data-dir of a running tetherctl dev", errUsage, l.dataDir)
	}
	return &localRuntime{dataDir: dir, c: devstack.Dial(dir), w: progressWriter(env, output), http: &http.Client{Timeout: 10 * time.Second}, now: env.Now}, nil
}

// status asks the data dir's supervisor what runs.
func (rt *localRuntime) status(ctx context.Context) (devstack.Status, error) {
	cctx, cancel := callCtx(ctx)
	defer cancel()
	return rt.c.Status(cctx)
}

// verified verifies the export against the trusted root and keeps the
// releases' binaries in the data dir.
func (l localFlags) verified(ctx context.Context, rt *localRuntime, bundle string) ([]release.Manifest, error) {
	rootFile := l.trustedRoot
	if rootFile == "" {
		rootFile = filepath.Join(rt.dataDir, "plane", "keys", "root.json")
	}
	root, err := os.ReadFile(rootFile)
	if err != nil {
		return nil, fmt.Errorf("--trusted-root: %w (pass the vendor's root.json that came with the install)", err)
	}
	state := filepath.Join(rt.dataDir, "releases")
	if err := os.MkdirAll(state, 0o700); err != nil {
		return nil, err
	}
	return verifyExport(ctx, root, "--trusted-root "+rootFile, l.channel, "--channel", state, bundle, rt.now(), keepArtifacts(rt.dataDir))
}

// load opens the data dir, verifies the export when there is one (before
// the supervisor is asked anything) and asks the supervisor what runs.
func (l localFlags) load(ctx context.Context, env Env, output, bundle string) (*localRuntime, []release.Manifest, devstack.Status, error) {
	var st devstack.Status
	rt, err := l.open(env, output)
	if err != nil {
		return nil, nil, st, err
	}
	var ms []release.Manifest
	if bundle != "" {
		if ms, err = l.verified(ctx, rt, bundle); err != nil {
			return nil, nil, st, err
		}
	}
	st, err = rt.status(ctx)
	return rt, ms, st, err
}

func localUpgradeCmd(ctx context.Context, env Env, u upgradeFlags) error {
	fail := func(err error) error { return fmt.Errorf("tetherctl upgrade --local: %w", err) }
	rt, ms, st, err := u.local.load(ctx, env, u.df.output, u.bundle)
	if err != nil {
		return fail(err)
	}
	target, err := chooseRelease(ms, st.Version, u.local.channel, u.to)
	if err != nil {
		return fail(err)
	}
	to, err := localBinaries(rt.dataDir, target)
	if err != nil {
		return fail(err)
	}
	p := &localPlan{Action: "upgrade", From: st.Running, To: to, Settle: u.settle}
	return confirmAndRunLocal(ctx, env, rt, p, u)
}

func localRollbackCmd(ctx context.Context, env Env, u upgradeFlags) error {
	fail := func(err error) error { return fmt.Errorf("tetherctl rollback --local: %w", err) }
	rt, _, st, err := u.local.load(ctx, env, u.df.output, "")
	if err != nil {
		return fail(err)
	}
	h, err := rt.history()
	if err != nil {
		return fail(err)
	}
	prev, ok := previousLocal(h, st.Running)
	if !ok {
		return fail(fmt.Errorf("no recorded upgrade or rollback installed what the stack runs now (%s), so there is no previous release to return to; use tetherctl upgrade --local %s --to VERSION", st.Version, u.local.dataDir))
	}
	p := &localPlan{Action: "rollback", From: st.Running, To: prev.FromBinaries, Settle: u.settle}
	return confirmAndRunLocal(ctx, env, rt, p, u)
}

// previousLocal is what a rollback returns to: what the newest successful
// upgrade or rollback replaced, when the stack still runs what it installed.
func previousLocal(h []localRecord, cur devstack.Running) (localRecord, bool) {
	for _, o := range h {
		if o.Outcome != "succeeded" {
			continue
		}
		return o, o.ToBinaries == cur
	}
	return localRecord{}, false
}

func confirmAndRunLocal(ctx context.Context, env Env, rt *localRuntime, p *localPlan, u upgradeFlags) error {
	fmt.Fprintf(env.Stderr, "On the local runtime in %s, this will:\n", rt.dataDir)
	for _, s := range p.steps(rt.dataDir) {
		fmt.Fprintf(env.Stderr, "  - %s\n", s)
	}
	if !u.yes {
		if err := proceed(env); err != nil {
			return fmt.Errorf("tetherctl %s --local: %w", p.Action, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	err := rt.run(ctx, p)
	if u.df.output == "json" {
		if jerr := writeJSON(env.Stdout, p); jerr != nil {
			return jerr
		}
	} else if err == nil {
		fmt.Fprintf(env.Stdout, "%s to %s succeeded: the stack runs %s (backup %s)\n", p.Action, p.To.Version, p.To.Docsvc, p.Backup)
	}
	if err != nil {
		return fmt.Errorf("tetherctl %s --local: %w", p.Action, err)
	}
	return nil
}

type localReleasesReport struct {
	Channel   string           `json:"channel"`
	Current   devstack.Running `json:"current"`
	Previous  *localRecord     `json:"previous,omitempty"`
	Available []availableEntry `json:"available"`
}

func localReleasesCmd(ctx context.Context, env Env, output string, l localFlags, bundle string) error {
	fail := func(err error) error { return fmt.Errorf("tetherctl releases --local: %w", err) }
	rt, ms, st, err := l.load(ctx, env, output, bundle)
	if err != nil {
		return fail(err)
	}
	h, err := rt.history()
	if err != nil {
		return fail(err)
	}
	rep := localReleasesReport{Channel: l.channel, Current: st.Running, Available: []availableEntry{}}
	if prev, ok := previousLocal(h, st.Running); ok {
		rep.Previous = &prev
	}
	for _, m := range ms {
		e := availableEntry{Version: m.Version, MinFrom: m.MinFrom, Notes: m.Notes}
		_, err := localBinaries(rt.dataDir, m)
		if err == nil {
			err = checkApplies(m, st.Version, l.channel, false)
		}
		if err != nil {
			e.Why = err.Error()
		}
		e.Applies = err == nil
		rep.Available = append(rep.Available, e)
	}
	if output == "json" {
		return writeJSON(env.Stdout, rep)
	}
	w := env.Stdout
	fmt.Fprintf(w, "channel   %s\n", rep.Channel)
	fmt.Fprintf(w, "current   %s (%s)\n", rep.Current.Version, rep.Current.Docsvc)
	if rep.Previous != nil {
		fmt.Fprintf(w, "previous  %s (%s)\n", rep.Previous.From, rep.Previous.FromBinaries.Docsvc)
	} else {
		fmt.Fprintln(w, "previous  none recorded")
	}
	printAvailable(w, rep.Available)
	return nil
}

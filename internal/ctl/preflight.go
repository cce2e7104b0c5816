package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tetherhq/tether/internal/deployconfig"
)

const preflightUsage = `tetherctl preflight — check that an AWS account, this machine and the vendor plane are ready for the deployment

Usage:
  tetherctl preflight [--config deployment.yaml] [--profile P] [--region R] [--output text|json] [--timeout 10s] [--tools-dir tools]

Runs every check at once, each under its own time limit, and prints a
checklist: PASS, WARN or FAIL, with a one-line fix under each WARN and FAIL.
The checks cover the AWS credentials and account, the region and its
availability zones, an existing VPC's subnets and route tables, the service
quotas the stacks need, the CDK bootstrap, the certificate or hosted zone,
access to the Bedrock model, the deployment's secrets (judged without
printing them), the vendor plane over HTTPS, the release's images in the
vendor registry, and Node.js and the pinned CDK CLI on this machine. docs/preflight.md lists each check and its fix.

It only reads: nothing in the account or on this machine is changed.
--output json prints the same as an array of {id, title, status, detail, fix}.
The exit status is 0 when no check FAILs (WARNs included), 1 otherwise.

Flags:
`

// Time limits. Checks run concurrently, so the whole run takes about as
// long as its slowest check: with the largest --timeout, still under 30s.
const (
	defaultCheckTimeout = 10 * time.Second
	maxCheckTimeout     = 25 * time.Second
	// checkGrace is how long a check that ran out of time has to report
	// its own reason (usually the AWS SDK's) before a generic one is used.
	checkGrace = 250 * time.Millisecond
)

// check is one item of the checklist. ID, Title, What, When and Fix are
// also what docs/preflight.md is generated from.
type check struct {
	ID    string
	Title string
	What  string // what it checks
	When  string // when it runs, if not always
	Fix   string // the usual fix; a result may give a more specific one
	AWS   bool   // it calls AWS, so it fails when AWS cannot be reached
	// applies says whether the deployment needs this check; nil means always.
	applies func(*deployconfig.Config) bool
	run     func(context.Context, *preflight) verdict
}

// result is one line of the checklist, and one element of --output json.
type result struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Status status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix"`
}

// preflight is one run's shared, read-only context. The only thing checks
// share beyond it is whether the data stack exists, looked up once.
type preflight struct {
	dc       *deployconfig.Config
	aws      *awsSession
	awsErr   error // why the AWS configuration could not be loaded
	env      Env
	toolsDir string
	now      time.Time

	dataStackOnce sync.Once
	dataStack     bool
	dataStackErr  error
}

func preflightCmd(ctx context.Context, args []string, env Env) error {
	var df deployFlags
	fs := flag.NewFlagSet("preflight", flag.ContinueOnError)
	df.register(fs)
	timeout := fs.Duration("timeout", defaultCheckTimeout, "the time limit of each check (at most 25s)")
	toolsDir := fs.String("tools-dir", "tools", "the `directory` with the package.json that pins the CDK CLI, and its node_modules")
	positional, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(env.Stdout, preflightUsage+flagHelp(fs))
		return nil
	}
	if err != nil {
		return err
	}
	if len(positional) > 0 {
		return fmt.Errorf("%w: tetherctl preflight takes no arguments, got %q", errUsage, positional[0])
	}
	if *timeout < time.Second || *timeout > maxCheckTimeout {
		return fmt.Errorf("%w: --timeout %s: want 1s to %s", errUsage, *timeout, maxCheckTimeout)
	}
	dc, err := df.load()
	if err != nil {
		return err
	}
	// Everything, loading the AWS configuration included, ends by this
	// deadline whatever an endpoint does.
	ctx, cancel := context.WithTimeout(ctx, *timeout+2*checkGrace+time.Second)
	defer cancel()

	p := &preflight{dc: dc, env: env, toolsDir: *toolsDir, now: env.Now()}
	p.aws, p.awsErr = loadAWS(ctx, env, df.aws, dc)
	results := runChecks(ctx, p, preflightChecks(), *timeout)

	if df.output == "json" {
		if err := writeJSON(env.Stdout, results); err != nil {
			return err
		}
	} else {
		writeChecklist(env.Stdout, dc, results, *timeout)
	}
	failed := 0
	for _, r := range results {
		if r.Status == statusFail {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("tetherctl preflight: %d of %d checks failed", failed, len(results))
	}
	return nil
}

// runChecks runs the checks that apply to the deployment concurrently,
// each under its own timeout, and returns their results in list order.
// A check that overruns is reported as failed even if it never returns.
func runChecks(ctx context.Context, p *preflight, checks []check, timeout time.Duration) []result {
	var todo []check
	for _, c := range checks {
		if c.applies == nil || c.applies(p.dc) {
			todo = append(todo, c)
		}
	}
	results := make([]result, len(todo))
	var wg sync.WaitGroup
	for i, c := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := runOne(ctx, p, c, timeout)
			fix := v.Fix
			if v.Status != statusPass && fix == "" {
				fix = c.Fix
			}
			if v.Status == statusPass {
				fix = ""
			}
			results[i] = result{ID: c.ID, Title: c.Title, Status: v.Status, Detail: oneLine(v.Detail), Fix: oneLine(fix)}
		}()
	}
	wg.Wait()
	return results
}

func runOne(ctx context.Context, p *preflight, c check, timeout time.Duration) verdict {
	if c.AWS && p.awsErr != nil {
		return fail("fix the AWS configuration (aws configure list shows what the AWS CLI would use)",
			"the AWS configuration could not be loaded: %v", p.awsErr)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan verdict, 1) // buffered: an overrunning check never blocks on it
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fail("report this to the vendor", "the check itself failed: %v", r)
			}
		}()
		done <- c.run(cctx, p)
	}()
	overran := fail("", "did not finish within %s", timeout)
	select {
	case v := <-done:
		return v
	case <-cctx.Done():
		select {
		case v := <-done:
			if v.Status == statusPass {
				return overran
			}
			return v
		case <-time.After(checkGrace):
			return overran
		}
	}
}

func writeChecklist(w io.Writer, dc *deployconfig.Config, results []result, timeout time.Duration) {
	fmt.Fprintf(w, "Preflight for %s: account %s, region %s (%d checks, at most %s each)\n\n",
		dc.Name, dc.Account, dc.Region, len(results), timeout)
	width := 0
	for _, r := range results {
		width = max(width, len(r.ID))
	}
	counts := map[status]int{}
	for _, r := range results {
		counts[r.Status]++
		fmt.Fprintf(w, "%-4s  %-*s  %s: %s\n", r.Status, width, r.ID, r.Title, r.Detail)
		if r.Fix != "" {
			fmt.Fprintf(w, "%s  fix: %s\n", strings.Repeat(" ", 4+2+width), r.Fix)
		}
	}
	fmt.Fprintf(w, "\n%d passed, %d warnings, %d failed\n", counts[statusPass], counts[statusWarn], counts[statusFail])
}

// dataStackDeployed reports whether the <name>-data stack exists, which
// decides whether a missing secret is expected (not deployed yet) or wrong.
// Checks ask concurrently; the stack is looked up once.
func (p *preflight) dataStackDeployed(ctx context.Context) (bool, error) {
	p.dataStackOnce.Do(func() { p.dataStack, p.dataStackErr = stackExists(ctx, p.aws, p.dc.Name+"-data") })
	return p.dataStack, p.dataStackErr
}

// transport is the HTTP transport for the plane check.
func (p *preflight) transport() http.RoundTripper { return p.env.transport() }

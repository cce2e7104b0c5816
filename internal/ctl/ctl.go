// Package ctl is tetherctl, the customer operator's command line.
package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"

	"golang.org/x/net/http/httpproxy"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/tetherhq/tether/internal/cli"
	"github.com/tetherhq/tether/internal/devstack"
)

const usage = `tetherctl — install and operate Tether in your own AWS account

Usage:
  tetherctl dev [--data-dir DIR] [--api-addr HOST:PORT] [--plane-addr HOST:PORT]
      run the whole stack on this machine on embedded defaults: the document
      service, a local vendor plane, and the agent between them
  tetherctl egress show|verify [--data-dir DIR | --config deployment.yaml]
      see and check everything the agent ever sent to the vendor
  tetherctl diag list|preview|approve|decline [ID] [--data-dir DIR | --config deployment.yaml]
      review the vendor's diagnostics requests; nothing leaves without approval
      (--config: a deployment's agent in AWS, through its exchange bucket)
  tetherctl diag export --out FILE [--agent-status-addr HOST:PORT]
      the bundle a request would get, from the running agent, previewed and
      written to FILE for you to send yourself
  tetherctl jobs dead-letters|redrive [--all | ID...] [--data-dir DIR | --config deployment.yaml]
      list the document jobs that failed for good (IDs and reason codes,
      never content) and send them back to the queue
  tetherctl backup --out DIR [--data-dir DIR]
  tetherctl restore --from DIR [--data-dir DIR] [--yes]
      back up the local runtime's database and documents, consistent and
      checked by SHA-256, while it runs; restore one while it is stopped
  tetherctl airgap import FILE [--data-dir DIR]
      verify and import signed releases exported for an install without network
  tetherctl init [--config deployment.yaml] [--yes] [--force] [--name N ...]
      write deployment.yaml: asks each setting on a terminal, checking each
      answer as it is typed, or takes them all from flags
  tetherctl preflight [--config deployment.yaml] [--profile P] [--region R]
      check the AWS account, region, quotas, CDK bootstrap, certificate or
      zone, secrets, the vendor plane and local tools before deploying
  tetherctl secrets list|show|set|rotate [NAME] [--config deployment.yaml]
      see which secrets the deployment uses and whether each is set and
      valid (never their values); set the license or the AI provider key;
      rotate the AI key with a rolling restart of the services that read it
  tetherctl bootstrap [--config deployment.yaml] [--yes]
      prepare the account and region for the stacks (the CDK bootstrap,
      with deployment.yaml's qualifier); does nothing when already done
  tetherctl deploy [--config deployment.yaml] [--cdk-out DIR] [--yes]
      preflight, synthesize, show the plan, then deploy the stacks in order,
      push the images, migrate the database, start the services and print
      the URL; run it again to continue or to update
  tetherctl status [--config deployment.yaml] [--output json]
      the deployment on one screen: release, stacks, services, queues,
      storage, AI provider, certificate, agent and license, alarms firing,
      warnings at deployment.yaml's thresholds; exit 1 when unhealthy
  tetherctl scale workers --min N --max M | scale api --count N [--yes]
      change how many tasks run through the services stack's parameters
      (change set shown first); a later deploy keeps the counts
  tetherctl destroy [--config deployment.yaml] [--yes]
      delete the stacks newest first after you type the deployment's name,
      keeping (and listing) the documents, database, keys and logs
  tetherctl images push [--config deployment.yaml] [--source-bundle FILE]
      copy the release's images by digest from the vendor registry into
      your ECR (or build them there), verify them by digest, and record
      the verified agent image
  tetherctl migrate [--config deployment.yaml] [--digest sha256:...]
      check the secrets and the image, run the database migration task,
      and record the migrated image the services may run
  tetherctl tokens create|list|revoke [--config deployment.yaml]
      manage docsvc's API tokens through a one-off task: a new token is
      made here and only its hash reaches the deployment
  tetherctl releases --bundle FILE [--config deployment.yaml]
      verify the vendor's signed release export and list the releases on
      your channel, the one running and the one a rollback returns to
  tetherctl upgrade --bundle FILE [--to VERSION] [--yes]
      install a newer verified release: health check, database snapshot,
      images, migration, services (change sets shown first), settle, and
      back to the previous images by itself if the rollout fails
  tetherctl rollback [--yes]
      return the services to the release before the last upgrade (no
      migration is undone: migrations only add)

Run 'tetherctl COMMAND --help' for a command's flags.

Exit status: 0 on success, 1 when something failed (for preflight: any
check FAILed; for status: the deployment is unhealthy), 2 for a usage or
deployment.yaml mistake.
`

// errUsage marks a mistake in the command line or in deployment.yaml; the
// message says what to change. main exits 2 for it, 1 for other failures.
var errUsage = errors.New("usage")

// IsUsage reports whether err is a usage or configuration mistake.
func IsUsage(err error) bool { return errors.Is(err, errUsage) }

// Env is what tetherctl takes from its surroundings. main passes the
// process's own; tests pass their own, so that tests running in parallel
// each have theirs.
type Env struct {
	Stdin  io.Reader // a terminal is prompted without echo; anything else is read to its end
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads the environment: the AWS variables (credentials,
	// AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL and its per-service forms,
	// the shared config file locations), PATH and the proxy variables. What
	// it supplies is passed to the AWS SDK explicitly and wins; the SDK
	// still reads the process environment itself for anything left unset.
	Getenv func(string) string
	// HTTPTransport carries preflight's request to the vendor plane and
	// images push's registry requests (the vendor registry and ECR). Nil
	// means a standard HTTPS transport using HTTPS_PROXY and NO_PROXY from
	// Getenv. (Tests point it at local servers.)
	HTTPTransport http.RoundTripper
	// Now is the clock: expiry checks, deadlines and the times tetherctl
	// records. RunEnv sets it to time.Now when nil; tests pin it.
	Now func() time.Time
}

// transport is HTTPTransport, or a standard one that honours the proxy
// variables as read through Getenv.
func (env Env) transport() http.RoundTripper {
	if env.HTTPTransport != nil {
		return env.HTTPTransport
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	proxy := (&httpproxy.Config{
		HTTPProxy:  firstEnv(env.Getenv, "HTTP_PROXY", "http_proxy"),
		HTTPSProxy: firstEnv(env.Getenv, "HTTPS_PROXY", "https_proxy"),
		NoProxy:    firstEnv(env.Getenv, "NO_PROXY", "no_proxy"),
	}).ProxyFunc()
	t.Proxy = func(r *http.Request) (*url.URL, error) { return proxy(r.URL) }
	return t
}

// Run is RunEnv with the process's standard input.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return RunEnv(ctx, args, Env{Stdin: os.Stdin, Stdout: stdout, Stderr: stderr, Getenv: getenv, Now: time.Now})
}

// RunEnv is the whole program.
func RunEnv(ctx context.Context, args []string, env Env) error {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	stdout, stderr := env.Stdout, env.Stderr
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: tetherctl: no command given", errUsage)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	case "secrets":
		return secretsCmd(ctx, args[1:], env)
	case "init":
		return initCmd(ctx, args[1:], env)
	case "status":
		return statusCmd(ctx, args[1:], env)
	case "destroy":
		return destroyCmd(ctx, args[1:], env)
	case "scale":
		return scaleCmd(ctx, args[1:], env)
	case "preflight":
		return preflightCmd(ctx, args[1:], env)
	case "bootstrap":
		return bootstrapCmd(ctx, args[1:], env)
	case "deploy":
		return deployCmd(ctx, args[1:], env)
	case "releases":
		return releasesCmd(ctx, args[1:], env)
	case "upgrade":
		return upgradeCmd(ctx, args[1:], env)
	case "rollback":
		return rollbackCmd(ctx, args[1:], env)
	case "images":
		return imagesCmd(ctx, args[1:], env)
	case "migrate":
		return migrateCmd(ctx, args[1:], env)
	case "tokens":
		return tokensCmd(ctx, args[1:], env)
	case "diag":
		return diagCmd(ctx, args[1:], env)
	case "jobs":
		return jobsCmd(ctx, args[1:], env)
	case "backup", "restore":
		return backupCmd(ctx, args[0], args[1:], env)
	case "airgap":
		return airgapCmd(ctx, args[1:], env)
	case "egress":
		return egressCmd(ctx, args[1:], env)
	case "dev":
		fs := flag.NewFlagSet("dev", flag.ContinueOnError)
		fs.SetOutput(stderr)
		o := devstack.Options{Now: env.Now}
		fs.StringVar(&o.DataDir, "data-dir", "./.tether-dev", "where the stack keeps its database, documents and keys")
		fs.StringVar(&o.APIAddr, "api-addr", "127.0.0.1:8080", "the document service's listen address")
		fs.StringVar(&o.PlaneAddr, "plane-addr", "127.0.0.1:8090", "the local vendor plane's listen address (its dashboard is at /)")
		fs.StringVar(&o.AgentStatusAddr, "agent-status-addr", "127.0.0.1:8091", "the agent's status page (loopback only)")
		fs.DurationVar(&o.Heartbeat, "heartbeat", 10*time.Second, "how often the agent reports health to the plane")
		fs.BoolVar(&o.Telemetry, "telemetry", false, "opt the agent in to daily aggregate usage counts")
		fs.StringVar(&o.AgentPlaneURL, "agent-plane-url", "", "the URL the agent uses to reach the plane (default: the local plane); point it at a proxy to watch every byte that leaves")
		fs.Usage = func() {
			fmt.Fprint(stderr, "tetherctl dev: run the document service's api and worker as child processes on\nSQLite, a local documents directory, a database-backed queue and the offline\nanalyzer; a local vendor plane with development keys, a license and a signed\nrelease; and the agent, activated against that plane. Ctrl-C stops them all;\nrunning again with the same --data-dir resumes.\n\nThe supervisor owns the API's socket: tetherctl upgrade --local DATA_DIR (and\nrollback --local) swaps api, worker and agent to a verified release while it\nruns, with no failed request, through the control socket DATA_DIR/supervisor.sock.\nAfter that, DATA_DIR/releases/running.json names what runs, and a restart runs\nit instead of this checkout's build (remove the file to go back).\n\nFlags:\n")
			fs.PrintDefaults()
		}
		if err := fs.Parse(args[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return fmt.Errorf("%w: tetherctl dev: %w", errUsage, err)
		}
		ctx, stop := cli.Interruptible(ctx)
		defer stop()
		if foregroundTerminal(env.Stdin) {
			o.Stdin = env.Stdin
		}
		return devstack.Run(ctx, o, stdout, log)
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("%w: tetherctl: unknown command %q (the commands are listed above)", errUsage, args[0])
}

// foregroundTerminal reports whether in is a terminal this process may
// read: reading one from a background job (tetherctl dev &) would stop the
// process with SIGTTIN.
func foregroundTerminal(in io.Reader) bool {
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false
	}
	pgrp, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}

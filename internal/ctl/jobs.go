package ctl

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/devstack"
)

const jobsUsage = `tetherctl jobs — see and redrive the document jobs that failed for good

Usage:
  tetherctl jobs dead-letters [--data-dir DIR | --config deployment.yaml] [--max N] [--output text|json]
  tetherctl jobs redrive (--all | ID...) [--data-dir DIR | --config deployment.yaml] [--yes] [--output text|json]

A job the queue delivered the maximum number of times (5) without the worker
finishing it is dead-lettered. 'dead-letters' lists each one: its queue
message ID, its document ID, a fixed reason code and its delivery count,
never a document's content, filename or recorded error text. 'redrive' sends
them back for another try once the cause is fixed (the AI provider is back,
the worker no longer crashes): every one with --all, or those named by
document or message ID. Each document goes back to queued, and the worker
processes it again. Without --yes, redrive lists what it would send back and
asks first.

Reason codes: worker_stopped, ai_provider_unavailable, stored_bytes_missing,
internal_error, document_unreadable, not_started, already_succeeded,
document_deleted, malformed_job (docs/runbooks/dead-letters.md says what
each means and what to do).

--data-dir is the local runtime's data directory (tetherctl dev's); the
commands run its docsvc (DIR/bin/docsvc) on its database, whether the stack
is running or not. --config works on a deployment in AWS: the same docsvc
commands run as a one-off Fargate task of the worker service's task
definition (its image, its role, which may read and move the dead-letter
queue's messages, its subnets and security groups), and their answer is
read back from the task's log; each task takes a minute or two to start.
On SQS a redriven message gets a new message ID.

Flags:
`

func jobsCmd(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 || isHelp(args[0]) {
		return helpOrUsage(env, jobsUsage, args, "tetherctl jobs: want dead-letters or redrive")
	}
	sub := args[0]
	fs := flag.NewFlagSet("jobs "+sub, flag.ContinueOnError)
	dataDir := fs.String("data-dir", "./.tether-dev", "the local runtime's data `directory`")
	var df deployFlags
	fs.StringVar(&df.configPath, "config", "", "work on the deployment in AWS: its `deployment.yaml`")
	fs.StringVar(&df.aws.Profile, "profile", "", "with --config: the AWS `profile` to use, as the AWS CLI's --profile")
	fs.StringVar(&df.aws.Region, "region", "", "with --config: the AWS `region`, as the AWS CLI's --region (it must be deployment.yaml's)")
	output := fs.String("output", "text", "`text` or json")
	var max int
	var all, yes bool
	switch sub {
	case "dead-letters":
		fs.IntVar(&max, "max", 100, "list at most `N` dead letters (1 to 1000)")
	case "redrive":
		fs.BoolVar(&all, "all", false, "redrive every dead-lettered job")
		fs.BoolVar(&yes, "yes", false, "do not ask for confirmation")
	default:
		return fmt.Errorf("%w: tetherctl jobs: unknown subcommand %q (want dead-letters or redrive)", errUsage, sub)
	}
	positional, err := parseArgs(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(env.Stdout, jobsUsage+flagHelp(fs))
		return nil
	}
	if err != nil {
		return err
	}
	if *output != "text" && *output != "json" {
		return fmt.Errorf("%w: tetherctl jobs %s: --output %q: want text or json", errUsage, sub, *output)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case set["config"] && set["data-dir"]:
		return fmt.Errorf("%w: tetherctl jobs %s: give --data-dir (the local runtime) or --config (a deployment in AWS), not both", errUsage, sub)
	case !set["config"] && (set["profile"] || set["region"]):
		return fmt.Errorf("%w: tetherctl jobs %s: --profile and --region are for --config (a deployment in AWS); add --config deployment.yaml", errUsage, sub)
	}
	docsvcArgs := []string{"jobs", sub, "--output", *output}
	switch {
	case sub == "dead-letters" && len(positional) > 0:
		return fmt.Errorf("%w: tetherctl jobs dead-letters takes no arguments, got %q", errUsage, positional[0])
	case sub == "dead-letters" && (max < 1 || max > 1000):
		return fmt.Errorf("%w: tetherctl jobs dead-letters: --max %d: want 1 to 1000", errUsage, max)
	case sub == "dead-letters":
		docsvcArgs = append(docsvcArgs, "--max", fmt.Sprint(max))
	case all == (len(positional) > 0):
		return fmt.Errorf("%w: tetherctl jobs redrive: give --all or the document or message IDs to redrive (from 'tetherctl jobs dead-letters'), not both or neither", errUsage)
	case all:
		docsvcArgs = append(docsvcArgs, "--all")
	default:
		for _, id := range positional {
			if !jobIDPattern(id) {
				return fmt.Errorf("%w: tetherctl jobs redrive: %q is not a document or message ID: want the IDs 'tetherctl jobs dead-letters' shows", errUsage, truncateText(id, 40))
			}
		}
		docsvcArgs = append(docsvcArgs, positional...)
	}
	if set["config"] {
		df.output = *output
		// Each one-off task takes a minute or two to start on Fargate; a
		// redrive without --yes runs two.
		ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
		defer cancel()
		return jobsRemote(ctx, env, df, sub, docsvcArgs, yes)
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	bin, err := devstack.DocsvcBinary(dir)
	if err != nil {
		return fmt.Errorf("tetherctl jobs %s: %w", sub, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if sub == "redrive" && !yes {
		plan, err := localDocsvc(ctx, env, bin, dir, "jobs", "dead-letters", "--max", "1000")
		if err != nil {
			return fmt.Errorf("tetherctl jobs redrive: %w", err)
		}
		what := "every dead-lettered job below"
		if !all {
			what = "the dead-lettered jobs of " + strings.Join(positional, ", ") + ", from those below"
		}
		fmt.Fprintf(env.Stderr, "In %s, this will send %s back to the queue, each document back to queued:\n%s", dir, what, plan)
		if err := proceed(env); err != nil {
			return fmt.Errorf("tetherctl jobs redrive: %w", err)
		}
	}
	out, err := localDocsvc(ctx, env, bin, dir, docsvcArgs...)
	fmt.Fprint(env.Stdout, out)
	if err != nil {
		return fmt.Errorf("tetherctl jobs %s: %w", sub, err)
	}
	return nil
}

// jobIDPattern is docsvc's check of a document or message ID, made here
// too so that a mistake is a usage error before docsvc starts.
func jobIDPattern(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// localDocsvc runs the local runtime's docsvc with args on the data in
// dir, with only the storage settings in its environment, and returns its
// standard output. Its log goes to stderr, marked as docsvc's.
func localDocsvc(ctx context.Context, env Env, bin, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(devstack.DocsvcStorageEnv(dir), "PATH="+env.Getenv("PATH"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if stderr.Len() > 0 {
		prefixed{env.Stderr}.Write(stderr.Bytes())
	}
	if err != nil {
		if last := strings.TrimSpace(stderr.String()); last != "" {
			lines := strings.Split(last, "\n")
			return stdout.String(), fmt.Errorf("docsvc %s: %w: %s", strings.Join(args[:2], " "), err, lines[len(lines)-1])
		}
		return stdout.String(), fmt.Errorf("docsvc %s: %w", strings.Join(args[:2], " "), err)
	}
	return stdout.String(), nil
}

package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/tetherhq/tether/internal/apitoken"
	"github.com/tetherhq/tether/internal/deployconfig"
)

const tokensUsage = `tetherctl tokens — manage docsvc's API tokens without a shell in a container

Usage:
  tetherctl tokens create --name NAME [--expires WHEN] [--config deployment.yaml]
      [--profile P] [--region R] [--timeout 10m] [--output text|json] [--yes]
  tetherctl tokens list [--config deployment.yaml] [--profile P] [--region R]
      [--timeout 10m] [--output text|json]
  tetherctl tokens revoke ID [--config deployment.yaml] [--profile P] [--region R]
      [--timeout 10m] [--output text|json] [--yes]

Each runs docsvc's own token command as a one-off Fargate task of the
<name>-cluster stack's migrate task definition (its image, its database
access; private subnets, no public IP), with the command overridden, and
waits for it to exit 0. Its log lines come from CloudWatch.

create makes the token here, on this machine, and sends the deployment only
its ID and the SHA-256 of its secret (docsvc tokens add --hash ID:SHA256):
the token never reaches the task, its log or AWS. It is printed once, on
standard output, after the task stored it. WHEN is an RFC 3339 time or a
duration from now (90d, 720h); without it the token lasts until revoked.

list prints each token's ID, name, creation, expiry, last use (to the
minute) and revocation; never tokens or hashes. revoke ID stops the token
with that ID (16 hex characters, from list) from authenticating.

Without --yes, create and revoke show the plan and ask for confirmation.
--output json prints create's {id, name, token, expires_at}, list's
{tokens: [...]} and revoke's {id, revoked}.

Flags:
`

func tokensCmd(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		return helpOrUsage(env, tokensUsage, args, "tetherctl tokens: want create, list or revoke")
	}
	sub := args[0]
	if isHelp(sub) {
		fmt.Fprint(env.Stdout, tokensUsage)
		return nil
	}
	var df deployFlags
	var name, expires string
	var yes bool
	fs := flag.NewFlagSet("tokens "+sub, flag.ContinueOnError)
	df.register(fs)
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the task")
	switch sub {
	case "create":
		fs.StringVar(&name, "name", "", "a `label` for the token: the script or person that uses it (required)")
		fs.StringVar(&expires, "expires", "", "`when` the token stops working: an RFC 3339 time or a duration from now (90d, 720h); default never")
		fs.BoolVar(&yes, "yes", false, "do not ask for confirmation")
	case "revoke":
		fs.BoolVar(&yes, "yes", false, "do not ask for confirmation")
	case "list":
	default:
		return fmt.Errorf("%w: tetherctl tokens: unknown subcommand %q (want create, list or revoke)", errUsage, sub)
	}
	help := tokensUsage + flagHelp(fs)
	positional, err := parseArgs(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(env.Stdout, help)
		return nil
	}
	if err != nil {
		return err
	}
	want := map[string]int{"create": 0, "list": 0, "revoke": 1}[sub]
	if len(positional) != want {
		if sub == "revoke" {
			return fmt.Errorf("%w: tetherctl tokens revoke: give one token ID (see tetherctl tokens list)", errUsage)
		}
		return fmt.Errorf("%w: tetherctl tokens %s takes no arguments, got %q", errUsage, sub, positional[0])
	}
	if *timeout < time.Minute || *timeout > time.Hour {
		return fmt.Errorf("%w: --timeout %s: want 1m to 1h", errUsage, *timeout)
	}
	var docsvcArgs, plan []string
	var tok apitoken.Token
	var expiry time.Time
	switch sub {
	case "create":
		if strings.TrimSpace(name) == "" || len(name) > 100 || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return fmt.Errorf("%w: tetherctl tokens create: --name must be 1 to 100 printable characters (a label for who uses the token)", errUsage)
		}
		if expiry, err = apitoken.ParseExpiry(expires, env.Now()); err != nil {
			return fmt.Errorf("%w: tetherctl tokens create: %v", errUsage, err)
		}
		if tok, err = apitoken.New(); err != nil {
			return err
		}
		docsvcArgs = []string{"tokens", "add", "--name", name, "--hash", tok.Stored()}
		if !expiry.IsZero() {
			docsvcArgs = append(docsvcArgs, "--expires", expiry.UTC().Format(time.RFC3339))
		}
		plan = []string{fmt.Sprintf("store a new API token %s named %q (made on this machine; only its hash is sent)", tok.ID, name)}
	case "list":
		docsvcArgs = []string{"tokens", "list", "--output", "json"}
	case "revoke":
		if !apitoken.ValidID(positional[0]) {
			return fmt.Errorf("%w: tetherctl tokens revoke: %q is not a token ID: want the 16 lowercase hex characters tetherctl tokens list shows (not the token itself)", errUsage, clipped(positional[0]))
		}
		docsvcArgs = []string{"tokens", "revoke", positional[0]}
		plan = []string{"revoke the API token " + positional[0] + "; requests with it are refused from then on"}
	}
	dc, err := df.load()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	sess, err := connect(ctx, env, dc, df)
	if err != nil {
		return fmt.Errorf("tetherctl tokens %s: %w", sub, err)
	}
	if plan != nil {
		plan = append(plan, "by running docsvc "+strings.Join(redactHash(docsvcArgs), " ")+" as a one-off task of the "+dc.Name+"-cluster stack's migrate task definition")
		if err := confirm(env, dc, plan, yes); err != nil {
			return fmt.Errorf("tetherctl tokens %s: %w", sub, err)
		}
	}
	// list's output is read from the log, so it is not also printed.
	var logTo io.Writer = env.Stderr
	if sub == "list" {
		logTo = io.Discard
	}
	lines, err := runDocsvcTask(ctx, env, sess, dc, docsvcArgs, logTo)
	if err != nil {
		return fmt.Errorf("tetherctl tokens %s: %w", sub, err)
	}
	switch sub {
	case "create":
		out := map[string]any{"id": tok.ID, "name": name, "token": tok.Plaintext, "expires_at": nil}
		if !expiry.IsZero() {
			out["expires_at"] = expiry.UTC()
		}
		if df.output == "json" {
			return writeJSON(env.Stdout, out)
		}
		fmt.Fprintf(env.Stderr, "stored API token %s; it is shown once, below, and cannot be shown again:\n", tok.ID)
		fmt.Fprintln(env.Stdout, tok.Plaintext)
		return nil
	case "revoke":
		if df.output == "json" {
			return writeJSON(env.Stdout, map[string]any{"id": positional[0], "revoked": true})
		}
		fmt.Fprintf(env.Stdout, "revoked API token %s\n", positional[0])
		return nil
	}
	rows, err := tokenList(lines)
	if err != nil {
		return fmt.Errorf("tetherctl tokens list: %w", err)
	}
	if df.output == "json" {
		return writeJSON(env.Stdout, map[string]any{"tokens": rows})
	}
	at := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(env.Stdout, "%-16s  %-20s  %-20s  %-20s  %-20s  %s\n", "ID", "CREATED", "EXPIRES", "LAST USED", "REVOKED", "NAME")
	for _, r := range rows {
		fmt.Fprintf(env.Stdout, "%-16s  %-20s  %-20s  %-20s  %-20s  %s\n", r.ID, at(&r.CreatedAt), at(r.ExpiresAt), at(r.LastUsedAt), at(r.RevokedAt), r.Name)
	}
	return nil
}

// clipped keeps a bad argument short in an error: it may be a pasted token.
func clipped(s string) string {
	if strings.HasPrefix(s, apitoken.Prefix) {
		return apitoken.Prefix + "…"
	}
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// redactHash shortens the hash in a docsvc command line shown in a plan.
func redactHash(args []string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if i > 0 && out[i-1] == "--hash" {
			out[i] = out[i][:strings.IndexByte(out[i], ':')+1] + "<sha256>"
		}
	}
	return out
}

// runDocsvcTask runs docsvc with args as a one-off task of the cluster
// stack's migrate task definition, streams its log lines to logTo, waits
// for it to stop, and requires the docsvc container's exit code 0. It
// returns every log line.
func runDocsvcTask(ctx context.Context, env Env, a *awsSession, cfg *deployconfig.Config, args []string, logTo io.Writer) ([]string, error) {
	stack, err := readStack(ctx, a, cfg, "cluster")
	if err != nil {
		return nil, err
	}
	// Any image the stack runs will do: docsvc's token commands exist in
	// every release that has this command.
	digest := stack.Parameters["MigrateImageDigest"]
	plan, err := migratePlanFrom(stack, digest)
	if err != nil {
		return nil, err
	}
	prefix, err := checkTaskDefinition(ctx, a, plan, digest)
	if err != nil {
		return nil, err
	}
	plan.job = "tokens"
	return runOneOff(ctx, env, a, plan, prefix, "tetherctl-tokens", args, logTo)
}

// runOneOff runs docsvc with args as a one-off task of plan, streams its
// log lines (awslogs stream prefix prefix) to logTo, waits for it to stop,
// and requires the container's exit code 0. It returns every log line.
func runOneOff(ctx context.Context, env Env, a *awsSession, plan migratePlan, prefix, startedBy string, args []string, logTo io.Writer) ([]string, error) {
	arn, err := startTask(ctx, a, plan, startedBy, args)
	if err != nil {
		return nil, err
	}
	var all bytes.Buffer
	tail := &logTail{client: a.Logs(), group: plan.logGroup, stream: taskLogStream(prefix, plan, arn), w: io.MultiWriter(&all, prefixed{logTo}), prefix: ""}
	fmt.Fprintf(env.Stderr, "docsvc %s: task %s on cluster %s (log: %s %s)\n", args[0]+" "+args[1], arn, plan.cluster, tail.group, tail.stream)
	task, err := waitTask(ctx, env, a, plan, arn, tail)
	if err != nil {
		return nil, err
	}
	// migrateOutcome's verdict, in this command's words: no migration ran.
	if code, err := migrateOutcome(task, plan.container); err != nil {
		what := "docsvc " + strings.Join(args[:min(2, len(args))], " ")
		if code != nil {
			err = fmt.Errorf("%s exited with code %d in task %s", what, *code, arn)
		} else {
			err = fmt.Errorf("the %s task %s stopped without %s finishing (%s)", plan.noun(), arn, what, orNone(aws.ToString(task.StoppedReason)))
		}
		return nil, fmt.Errorf("%w; %s", err, tail.lastLines())
	}
	return strings.Split(strings.TrimRight(all.String(), "\n"), "\n"), nil
}

// prefixed marks the task's log lines as docsvc's on the operator's terminal.
type prefixed struct{ w io.Writer }

func (p prefixed) Write(b []byte) (int, error) {
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l != "" {
			if _, err := io.WriteString(p.w, "  docsvc| "+l); err != nil {
				return 0, err
			}
		}
	}
	return len(b), nil
}

// tokenList finds docsvc tokens list's JSON among the task's log lines.
func tokenList(lines []string) ([]apitoken.Listed, error) {
	var out struct {
		Tokens []apitoken.Listed `json:"tokens"`
	}
	if !jsonFromLog(lines, `{"tokens":`, &out) {
		return nil, errors.New("the task exited 0 but its log holds no token list (a docsvc release without 'docsvc tokens list --output json'?)")
	}
	return out.Tokens, nil
}

// jsonFromLog decodes into v the first JSON object among a task's log
// lines that starts with prefix. The awslogs driver splits a line longer
// than 16 KiB into several events, so following lines are joined until
// the JSON is whole. It reports whether one was found.
func jsonFromLog(lines []string, prefix string, v any) bool {
	for i, l := range lines {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		joined := l
		for j := i + 1; ; j++ {
			if err := json.Unmarshal([]byte(joined), v); err == nil {
				return true
			}
			if j == len(lines) {
				break
			}
			joined += lines[j]
		}
	}
	return false
}

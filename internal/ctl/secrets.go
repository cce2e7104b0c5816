package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"golang.org/x/term"

	"github.com/tetherhq/tether/internal/deployconfig"
)

const secretsUsage = `tetherctl secrets — the deployment's secrets: which exist, which are set, whether they are valid

Usage:
  tetherctl secrets list [flags]
  tetherctl secrets show NAME [flags]
  tetherctl secrets set NAME [--from-file PATH] [flags]
  tetherctl secrets rotate NAME [--from-file PATH] [--yes] [flags]

NAME is one of:
  license         the vendor's license file; you set it
  ai              the AI provider's API key (ai.provider openai or anthropic only); you set it
  agent-identity  tether-agent's identity key; the agent creates it on its first start
  database        the database credentials; RDS generates them and rotates them every 30 days

Each lives in Secrets Manager as tether/<name>/<NAME>, <name> being
deployment.yaml's name. No command prints a secret's value.

list    every secret deployment.yaml implies: its Secrets Manager name, whether
        it exists and has a value, when it last changed and who sets it. It
        reads metadata only (DescribeSecret), never a value.
show    the same for one secret, and a verdict: a license is verified against
        deployment.yaml's license.public_key (signature, customer, expiry and
        grace, release channel); an AI key is checked for the provider's
        shape; the agent identity is empty until the agent's first start. To
        judge a value, show reads it and prints only the verdict. The
        database password is never read. show exits 1 when the check FAILs.
set     reads the value from --from-file, or from standard input (a terminal
        is prompted without echo; a pipe is read to its end), removes
        surrounding whitespace such as a final newline, and checks it before
        anything is written: a license must verify against license.public_key
        and not be expired past its grace; an AI key must be one token with
        no whitespace, of the provider's shape. A rejected value changes
        nothing. An accepted one becomes the secret's current version
        (PutSecretValue). A secret that does not exist yet is not created:
        the data stack creates it, under its own key, so deploy that stack
        first. agent-identity and database are refused: they are not the
        operator's to set.
rotate  set, then restart the services that read the secret one task at a
        time and wait for them (tetherctl secrets rotate --help;
        docs/runbooks/secret-rotation.md). For the AI key, and for the
        agent's identity (rotate agent: a new key the agent registers with
        the vendor's plane at its restart).

Every command first checks that the AWS credentials are for deployment.yaml's
account, and the AWS region its region.

Flags:
`

// secretsTimeout bounds each secrets command's AWS calls.
const secretsTimeout = 30 * time.Second

func secretsCmd(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fs := secretsFlags("secrets", new(deployFlags), new(string))
		if len(args) == 0 {
			fmt.Fprint(env.Stderr, secretsUsage+flagHelp(fs))
			return fmt.Errorf("%w: tetherctl secrets: want list, show NAME or set NAME", errUsage)
		}
		fmt.Fprint(env.Stdout, secretsUsage+flagHelp(fs))
		return nil
	}
	sub := args[0]
	if sub == "rotate" {
		return secretsRotate(ctx, args[1:], env)
	}
	if sub != "list" && sub != "show" && sub != "set" {
		return fmt.Errorf("%w: tetherctl secrets: unknown subcommand %q (want list, show NAME, set NAME or rotate NAME)", errUsage, sub)
	}
	var df deployFlags
	var fromFile string
	fs := secretsFlags("secrets "+sub, &df, &fromFile)
	positional, err := parseArgs(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(env.Stdout, secretsUsage+flagHelp(fs))
		return nil
	}
	if err != nil {
		return err
	}
	var name string
	switch {
	case sub == "list" && len(positional) > 0:
		return fmt.Errorf("%w: tetherctl secrets list takes no arguments, got %q", errUsage, positional[0])
	case sub != "list" && len(positional) != 1:
		return fmt.Errorf("%w: tetherctl secrets %s: give one secret NAME (license, ai, agent-identity or database)", errUsage, sub)
	case sub != "list":
		name = positional[0]
	}
	if fromFile != "" && sub != "set" {
		return fmt.Errorf("%w: tetherctl secrets %s: --from-file is only for set", errUsage, sub)
	}
	dc, err := df.load()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, secretsTimeout)
	defer cancel()
	switch sub {
	case "list":
		return secretsList(ctx, env, dc, df)
	case "show":
		return secretsShow(ctx, env, dc, df, name)
	default:
		return secretsSet(ctx, env, dc, df, name, fromFile)
	}
}

func secretsFlags(name string, df *deployFlags, fromFile *string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	df.register(fs)
	fs.StringVar(fromFile, "from-file", "", "set only: read the value from this `file` instead of standard input")
	return fs
}

// connect loads the AWS configuration and confirms it addresses
// deployment.yaml's account and region before anything is touched.
func connect(ctx context.Context, env Env, dc *deployconfig.Config, df deployFlags) (*awsSession, error) {
	sess, _, err := connectAs(ctx, env, dc, df)
	return sess, err
}

// connectAs is connect that also returns the caller's ARN.
func connectAs(ctx context.Context, env Env, dc *deployconfig.Config, df deployFlags) (*awsSession, string, error) {
	sess, err := loadAWS(ctx, env, df.aws, dc)
	if err != nil {
		return nil, "", err
	}
	if why := sess.regionMismatch(dc); why != "" {
		return nil, "", fmt.Errorf("%s; the deployment is in %s: pass --region %s (or change %s)", why, dc.Region, dc.Region, sess.RegionSource)
	}
	arn, err := sess.checkAccount(ctx, dc)
	if err != nil {
		return nil, "", err
	}
	return sess, arn, nil
}

func secretsList(ctx context.Context, env Env, dc *deployconfig.Config, df deployFlags) error {
	sess, err := connect(ctx, env, dc, df)
	if err != nil {
		return fmt.Errorf("tetherctl secrets list: %w", err)
	}
	var states []secretState
	for _, k := range usedSecretKinds(dc) {
		st, err := describeKind(ctx, sess, dc, k)
		if err != nil {
			return fmt.Errorf("tetherctl secrets list: %w", err)
		}
		states = append(states, st)
	}
	if df.output == "json" {
		return writeJSON(env.Stdout, states)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSECRETS MANAGER NAME\tEXISTS\tVALUE\tLAST CHANGED\tSET BY")
	for _, st := range states {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", st.Name, st.SecretName, yesNo(st.Exists), valueText(st), timeText(st.LastChanged), st.SetBy)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "\nAccount %s, region %s. 'tetherctl secrets show NAME' checks a value without printing it.\n", dc.Account, dc.Region)
	return nil
}

func secretsShow(ctx context.Context, env Env, dc *deployconfig.Config, df deployFlags, name string) error {
	k, err := lookupSecretKind(dc, name)
	if err != nil {
		return err
	}
	sess, err := connect(ctx, env, dc, df)
	if err != nil {
		return fmt.Errorf("tetherctl secrets show %s: %w", name, err)
	}
	sm := sess.SecretsManager()
	st, err := describeKind(ctx, sess, dc, k)
	if err == nil {
		err = judgeSecret(ctx, sm, dc, &st, env.Now())
	}
	if err != nil {
		return fmt.Errorf("tetherctl secrets show %s: %w", name, err)
	}
	if err := writeShow(env.Stdout, st, df.output); err != nil {
		return err
	}
	if st.Verdict.Status == statusFail {
		return fmt.Errorf("tetherctl secrets show %s: the check failed: %s", name, st.Verdict.Detail)
	}
	return nil
}

func writeShow(w io.Writer, st secretState, output string) error {
	if output == "json" {
		return writeJSON(w, st)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "secret\t%s\n", st.Name)
	fmt.Fprintf(tw, "secrets manager name\t%s\n", st.SecretName)
	if st.ARN != "" {
		fmt.Fprintf(tw, "arn\t%s\n", st.ARN)
	}
	fmt.Fprintf(tw, "exists\t%s\n", yesNo(st.Exists))
	fmt.Fprintf(tw, "value\t%s\n", valueText(st))
	fmt.Fprintf(tw, "last changed\t%s\n", timeText(st.LastChanged))
	fmt.Fprintf(tw, "set by\t%s\n", st.SetBy)
	fmt.Fprintf(tw, "check\t%s  %s\n", st.Verdict.Status, st.Verdict.Detail)
	if st.Verdict.Fix != "" {
		fmt.Fprintf(tw, "fix\t%s\n", st.Verdict.Fix)
	}
	return tw.Flush()
}

// setResult is what set reports: never the value.
type setResult struct {
	Name       string  `json:"name"`
	SecretName string  `json:"secret_name"`
	ARN        string  `json:"arn"`
	VersionID  string  `json:"version_id"`
	Verdict    verdict `json:"verdict"`
}

func secretsSet(ctx context.Context, env Env, dc *deployconfig.Config, df deployFlags, name, fromFile string) error {
	k, err := lookupSecretKind(dc, name)
	if err != nil {
		return err
	}
	if k.Refusal != "" {
		return fmt.Errorf("%w: tetherctl secrets set %s: refused: %s. 'tetherctl secrets show %s' says whether it is in order",
			errUsage, name, k.Refusal, name)
	}
	secretName := dc.SecretName(name)
	value, v, err := readCheckedSecret(env, dc, name, fromFile, "set")
	if err != nil {
		return err
	}

	sess, err := connect(ctx, env, dc, df)
	if err != nil {
		return fmt.Errorf("tetherctl secrets set %s: nothing was written: %w", name, err)
	}
	res := setResult{Name: name, SecretName: secretName, Verdict: v}
	sm := sess.SecretsManager()
	out, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(secretName), SecretString: aws.String(value),
	})
	var nf *smtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		// Not created here: the data stack creates it, under its own KMS
		// key, and a secret made first would make that stack's first deploy
		// fail on the name.
		return fmt.Errorf("tetherctl secrets set %s: %s does not exist yet, nothing was written. The %s-data stack creates it (empty, encrypted with the deployment's own key): deploy that stack first, then set the value", name, secretName, dc.Name)
	case err != nil:
		return fmt.Errorf("tetherctl secrets set %s: writing %s (Secrets Manager PutSecretValue): %s", name, secretName, describeAWSError(err))
	default:
		res.ARN, res.VersionID = aws.ToString(out.ARN), aws.ToString(out.VersionId)
	}

	if v.Status == statusWarn {
		fmt.Fprintf(env.Stderr, "warning: %s. Fix: %s\n", v.Detail, v.Fix)
	}
	if df.output == "json" {
		return writeJSON(env.Stdout, res)
	}
	fmt.Fprintf(env.Stdout, "updated %s (version %s) in account %s, %s\ncheck: %s  %s\n",
		secretName, res.VersionID, dc.Account, dc.Region, v.Status, v.Detail)
	return nil
}

// readCheckedSecret reads a value set or rotate was given and judges it
// before anything touches AWS: a rejected value cannot change the stored one.
func readCheckedSecret(env Env, dc *deployconfig.Config, name, fromFile, sub string) (string, verdict, error) {
	raw, err := readSecretInput(env, fromFile, name, dc.SecretName(name), sub)
	if err != nil {
		return "", verdict{}, err
	}
	value := normalizeSecretInput(raw)
	if value == "" {
		return "", verdict{}, fmt.Errorf("%w: tetherctl secrets %s %s: the value is empty; give it with --from-file PATH or on standard input", errUsage, sub, name)
	}
	var v verdict
	switch name {
	case kindLicense:
		v = checkLicense(dc, []byte(value), env.Now())
	case kindAI:
		v = checkAIKey(dc, value)
	}
	if v.Status == statusFail {
		return "", v, fmt.Errorf("tetherctl secrets %s %s: refused, nothing was written: %s. Fix: %s", sub, name, v.Detail, v.Fix)
	}
	return value, v, nil
}

// readSecretInput reads the value from --from-file, from a terminal
// without echo, or from whatever else standard input is, up to Secrets
// Manager's size limit.
func readSecretInput(env Env, fromFile, name, secretName, sub string) ([]byte, error) {
	limited := func(r io.Reader, what string) ([]byte, error) {
		b, err := io.ReadAll(io.LimitReader(r, maxSecretValue+1))
		if err != nil {
			return nil, fmt.Errorf("tetherctl secrets %s %s: reading %s: %w", sub, name, what, err)
		}
		if len(b) > maxSecretValue {
			return nil, fmt.Errorf("%w: tetherctl secrets %s %s: %s is larger than Secrets Manager's %d-byte limit; is it the right file?", errUsage, sub, name, what, maxSecretValue)
		}
		return b, nil
	}
	if fromFile != "" {
		f, err := os.Open(fromFile)
		if err != nil {
			return nil, fmt.Errorf("%w: tetherctl secrets %s %s: --from-file: %w", errUsage, sub, name, err)
		}
		defer f.Close()
		return limited(f, fromFile)
	}
	if env.Stdin == nil {
		return nil, fmt.Errorf("%w: tetherctl secrets %s %s: no standard input; give the value with --from-file PATH", errUsage, sub, name)
	}
	if f, ok := env.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		what := "the license file's content"
		if name == kindAI {
			what = "the API key"
		}
		fmt.Fprintf(env.Stderr, "Paste %s for %s (it is not shown), then press Enter: ", what, secretName)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.Stderr)
		if err != nil {
			return nil, fmt.Errorf("tetherctl secrets %s %s: reading the terminal: %w", sub, name, err)
		}
		if len(b) > maxSecretValue {
			return nil, fmt.Errorf("%w: tetherctl secrets %s %s: the value is larger than Secrets Manager's %d-byte limit", errUsage, sub, name, maxSecretValue)
		}
		return b, nil
	}
	return limited(env.Stdin, "standard input")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func valueText(st secretState) string {
	switch {
	case !st.Exists:
		return "-"
	case st.DeletionDate != nil:
		return "scheduled for deletion"
	case st.HasValue:
		return "set"
	}
	return "empty"
}

func timeText(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

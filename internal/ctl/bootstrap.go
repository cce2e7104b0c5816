package ctl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/tetherhq/tether/internal/deployconfig"
)

const bootstrapUsage = `tetherctl bootstrap — prepare the AWS account and region for the deployment's stacks (the CDK bootstrap)

Usage:
  tetherctl bootstrap [--config deployment.yaml] [--profile P] [--region R] [--yes] [--output text|json] [--tools-dir tools]

The stacks deploy through the CDK bootstrap: the CDKToolkit stack with its
assets bucket (cdk-<qualifier>-assets-<account>-<region>) and the role
CloudFormation deploys as (cdk-<qualifier>-cfn-exec-role-<account>-<region>).
bootstrap reads the SSM parameter /cdk-bootstrap/<qualifier>/version, the
qualifier being deployment.yaml's cdk.qualifier or the CDK's default
hnb659fds. When it exists at version 6 or later, nothing is done ("already
bootstrapped"). Otherwise it shows the command and, once confirmed (or with
--yes), runs the pinned CDK CLI:

  cdk bootstrap aws://<account>/<region> --qualifier <qualifier>
      [--custom-permissions-boundary=<iam.permissions_boundary>] [--profile=P]

The CLI is tools/node_modules/.bin/cdk (npm ci --prefix tools installs it), or
a cdk on PATH of exactly the version tools/package.json pins; it needs
Node.js. It gets this command's AWS settings: the AWS_* variables, the proxy
variables, HOME and PATH. Running bootstrap again is safe.

The deployment's secrets are not part of the bootstrap: the data stack
creates them (empty), so they are set after it, when tetherctl deploy stops
and names them.

Flags:
`

// bootstrapEnvVars are the variables the CDK CLI gets from this command's
// environment: what the AWS SDK for JavaScript and Node.js read.
var bootstrapEnvVars = []string{
	"PATH", "HOME", "TMPDIR", "USER",
	"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CA_BUNDLE",
	"AWS_EC2_METADATA_DISABLED", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
	"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDFORMATION", "AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_S3",
	"AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL_KMS",
	"AWS_STS_REGIONAL_ENDPOINTS", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME",
	"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
	"NODE_EXTRA_CA_CERTS",
}

// defaultBootstrapTimeout bounds a bootstrap: the CDKToolkit stack takes a
// minute or two.
const defaultBootstrapTimeout = 20 * time.Minute

// bootstrapReport is bootstrap's --output json.
type bootstrapReport struct {
	Account   string   `json:"account"`
	Region    string   `json:"region"`
	Qualifier string   `json:"qualifier"`
	Action    string   `json:"action"` // already-bootstrapped or bootstrapped
	Version   int      `json:"version"`
	Command   []string `json:"command,omitempty"`
}

func bootstrapCmd(ctx context.Context, args []string, env Env) error {
	var df deployFlags
	fs := flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	df.register(fs)
	yes := fs.Bool("yes", false, "run without asking for confirmation")
	toolsDir := fs.String("tools-dir", "tools", "the `directory` with the package.json that pins the CDK CLI, and its node_modules")
	timeout := fs.Duration("timeout", defaultBootstrapTimeout, "the time limit of the whole command")
	positional, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(env.Stdout, bootstrapUsage+flagHelp(fs))
		return nil
	}
	if err != nil {
		return err
	}
	if len(positional) > 0 {
		return fmt.Errorf("%w: tetherctl bootstrap takes no arguments, got %q", errUsage, positional[0])
	}
	if *timeout <= 0 {
		return fmt.Errorf("%w: --timeout %s: want a positive duration such as 20m", errUsage, *timeout)
	}
	dc, err := df.load()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	progress := progressWriter(env, df.output)
	sess, err := connect(ctx, env, dc, df)
	if err != nil {
		return fmt.Errorf("tetherctl bootstrap: %w", err)
	}
	q := qualifierOf(dc)
	rep := bootstrapReport{Account: dc.Account, Region: dc.Region, Qualifier: q}
	version, found, err := bootstrapVersion(ctx, sess, bootstrapParameter(q))
	if err != nil {
		return fmt.Errorf("tetherctl bootstrap: %w", err)
	}
	if found && version >= minBootstrapVersion {
		rep.Action, rep.Version = "already-bootstrapped", version
		if df.output == "json" {
			return writeJSON(env.Stdout, rep)
		}
		fmt.Fprintf(env.Stdout, "aws://%s/%s is already bootstrapped, version %d (qualifier %s); nothing to do\n", dc.Account, dc.Region, version, q)
		return nil
	}

	cli, err := findCDK(env, *toolsDir)
	if err != nil {
		return fmt.Errorf("tetherctl bootstrap: %w", err)
	}
	argv := bootstrapArgs(dc, df.aws.Profile)
	rep.Command = append([]string{cli}, argv...)
	switch {
	case found:
		fmt.Fprintf(progress, "aws://%s/%s has CDK bootstrap version %d (qualifier %s); the stacks need %d or later. This upgrades it:\n", dc.Account, dc.Region, version, q, minBootstrapVersion)
	default:
		fmt.Fprintf(progress, "aws://%s/%s is not bootstrapped with qualifier %s. This creates the CDKToolkit stack:\n", dc.Account, dc.Region, q)
	}
	if err := confirm(env, dc, []string{"run " + strings.Join(rep.Command, " ")}, *yes); err != nil {
		return fmt.Errorf("tetherctl bootstrap: %w", err)
	}
	cmd := exec.CommandContext(ctx, cli, argv...)
	cmd.Env = childEnv(env.Getenv, bootstrapEnvVars)
	cmd.Stdout, cmd.Stderr = progress, progress
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("tetherctl bootstrap: cdk bootstrap did not finish within --timeout %s; it may go on in CloudFormation (aws cloudformation describe-stacks --stack-name CDKToolkit): run tetherctl bootstrap again once it settles", *timeout)
		}
		return fmt.Errorf("tetherctl bootstrap: %s failed (%v); its output above says why", filepath.Base(cli)+" bootstrap", err)
	}
	version, found, err = bootstrapVersion(ctx, sess, bootstrapParameter(q))
	switch {
	case err != nil:
		return fmt.Errorf("tetherctl bootstrap: %w", err)
	case !found || version < minBootstrapVersion:
		return fmt.Errorf("tetherctl bootstrap: cdk bootstrap ended, but %s does not hold version %d or later; see the CDKToolkit stack's events (aws cloudformation describe-stack-events --stack-name CDKToolkit)", bootstrapParameter(q), minBootstrapVersion)
	}
	rep.Action, rep.Version = "bootstrapped", version
	if df.output == "json" {
		return writeJSON(env.Stdout, rep)
	}
	fmt.Fprintf(env.Stdout, "aws://%s/%s bootstrapped, version %d (qualifier %s). Next: tetherctl deploy\n", dc.Account, dc.Region, version, q)
	return nil
}

// qualifierOf is the CDK bootstrap qualifier the stacks deploy with.
func qualifierOf(dc *deployconfig.Config) string {
	if dc.CDK.Qualifier != "" {
		return dc.CDK.Qualifier
	}
	return defaultQualifier
}

// bootstrapParameter is the SSM parameter holding the bootstrap's version.
func bootstrapParameter(qualifier string) string {
	return "/cdk-bootstrap/" + qualifier + "/version"
}

// bootstrapVersion reads the bootstrap's version; found is false when the
// parameter does not exist (not bootstrapped with that qualifier).
func bootstrapVersion(ctx context.Context, a *awsSession, param string) (version int, found bool, err error) {
	cctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.SSM().GetParameter(cctx, &ssm.GetParameterInput{Name: aws.String(param)})
	var nf *ssmtypes.ParameterNotFound
	switch {
	case errors.As(err, &nf):
		return 0, false, nil
	case err != nil:
		return 0, false, &awsCallError{call: "SSM GetParameter " + param, err: err}
	}
	raw := strings.TrimSpace(aws.ToString(out.Parameter.Value))
	version, err = strconv.Atoi(raw)
	if err != nil || version < 0 {
		return 0, true, fmt.Errorf("%s holds %q, not a version number: the CDKToolkit stack writes it; run tetherctl bootstrap to repair it", param, truncateText(raw, 20))
	}
	return version, true, nil
}

// awsCallError is an AWS call that failed, named, keeping the SDK's error.
type awsCallError struct {
	call string
	err  error
}

func (e *awsCallError) Error() string { return e.call + ": " + describeAWSError(e.err) }
func (e *awsCallError) Unwrap() error { return e.err }

// bootstrapArgs is the CDK CLI's command line, after the program name.
func bootstrapArgs(dc *deployconfig.Config, profile string) []string {
	args := []string{"bootstrap", "aws://" + dc.Account + "/" + dc.Region, "--qualifier", qualifierOf(dc)}
	// Values that may start with a dash are joined to their option, so
	// that none can read as an option of its own.
	if dc.IAM.PermissionsBoundary != "" {
		args = append(args, "--custom-permissions-boundary="+dc.IAM.PermissionsBoundary)
	}
	if profile != "" {
		args = append(args, "--profile="+profile)
	}
	return args
}

// findCDK finds the CDK CLI tools/package.json pins: installed in
// tools/node_modules, else a cdk on PATH of that version. Either needs
// Node.js on PATH.
func findCDK(env Env, toolsDir string) (string, error) {
	path := env.Getenv("PATH")
	if _, err := lookPath(path, "node"); err != nil {
		return "", fmt.Errorf("the CDK CLI needs Node.js, and node is not on PATH: install Node.js %d or newer (https://nodejs.org/en/download, or your package manager), then npm ci --prefix %s, and run this again", minNodeMajor, toolsDir)
	}
	pin, err := cdkPin(toolsDir)
	if err != nil {
		return "", err
	}
	local := filepath.Join(toolsDir, "node_modules", ".bin", "cdk")
	if fi, err := os.Stat(local); err == nil && fi.Mode().Perm()&0o111 != 0 {
		abs, err := filepath.Abs(local)
		if err != nil {
			return "", err
		}
		return abs, nil
	}
	onPath, err := lookPath(path, "cdk")
	if err != nil {
		return "", fmt.Errorf("the CDK CLI %s is not installed: from the repository root run npm ci --prefix %s (or npm install -g aws-cdk@%s)", pin, toolsDir, pin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, onPath, "--version")
	cmd.Env = childEnv(env.Getenv, []string{"PATH", "HOME"})
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s --version failed (%v): install the pinned CLI with npm ci --prefix %s", onPath, err, toolsDir)
	}
	got, _, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if got != pin {
		return "", fmt.Errorf("the cdk on PATH (%s) is version %s, but %s pins %s: run npm ci --prefix %s (tetherctl then uses %s)",
			onPath, truncateText(got, 30), filepath.Join(toolsDir, "package.json"), pin, toolsDir, local)
	}
	return onPath, nil
}

// cdkPin is the aws-cdk version tools/package.json pins.
func cdkPin(toolsDir string) (string, error) {
	file := filepath.Join(toolsDir, "package.json")
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	data, err := readLimited(file, maxManifestBytes)
	if err == nil {
		err = json.Unmarshal(data, &pkg)
	}
	if err != nil {
		return "", fmt.Errorf("cannot read the CDK CLI pin: %v; run tetherctl from the repository root, or pass --tools-dir with the directory holding the tools package.json", err)
	}
	pin := pkg.Dependencies["aws-cdk"]
	if pin == "" {
		return "", fmt.Errorf("%s pins no aws-cdk; pass --tools-dir with the directory whose package.json does", file)
	}
	return pin, nil
}

// childEnv is the environment a child process gets: the named variables
// that are set.
func childEnv(getenv func(string) string, names []string) []string {
	var out []string
	for _, n := range names {
		if v := getenv(n); v != "" {
			out = append(out, n+"="+v)
		}
	}
	return out
}

// progressWriter is where a command's progress goes: standard output,
// unless that carries --output json.
func progressWriter(env Env, output string) io.Writer {
	if output == "json" {
		return env.Stderr
	}
	return env.Stdout
}

// askToProceed asks a yes/no question on standard error and reads the
// answer's line from standard input. Only y or yes (any case) is yes;
// none, or anything else, is no.
func askToProceed(env Env, question string) (bool, error) {
	if env.Stdin == nil {
		return false, fmt.Errorf("%w: no standard input to confirm on; pass --yes to run without confirming", errUsage)
	}
	fmt.Fprintf(env.Stderr, "%s [y/N] ", question)
	line, err := bufio.NewReader(io.LimitReader(env.Stdin, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("reading the answer: %w", err)
	}
	fmt.Fprintln(env.Stderr)
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

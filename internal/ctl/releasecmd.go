package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/deployconfig"
)

const imagesUsage = `tetherctl images push — put a release's container images into your own ECR

Usage:
  tetherctl images push [--config deployment.yaml] [--profile P] [--region R]
      [--docsvc-digest sha256:...] [--agent-digest sha256:...] [--version V]
      [--source-bundle FILE] [--output text|json] [--yes]

The services only ever run images from the deployment's own ECR
repositories, <name>/docsvc and <name>/agent (the <name>-images stack
creates them), and only by digest.

With images.source vendor, each image is copied by digest from
images.vendor_registry (<vendor_registry>/docsvc@sha256:..., .../agent@...)
into ECR, logging in to ECR with the AWS credentials (ecr:GetAuthorizationToken)
and to the vendor registry with your docker login, if it needs one. An image
ECR already holds by that digest is not copied again. Every copy is read
back from ECR by digest: content that does not hash to the digest is
refused. Progress goes to standard error.

With images.source build, the vendor's source bundle (--source-bundle) is
uploaded to the images stack's bucket (with the AWS CLI, aws s3api
put-object, which must be on PATH) and its CodeBuild project builds both
images inside your account, tagged with --version; the build's log is shown
as it runs, and the digests are read back from ECR by that tag (and must
equal --docsvc-digest and --agent-digest when those are given).

Then the SSM parameter /tether/<name>/verified/agent/sha256-<hex> is written:
the services stack runs only an agent image recorded there.

The digests default to deployment.yaml's images.docsvc_digest and
images.agent_digest. Without --yes the plan is shown and must be confirmed.
--output json prints {version, source, images: [{name, digest, repository,
action: copied|present|built, source, bytes_copied}], build, agent_marker}.

Flags:
`

const migrateUsage = `tetherctl migrate — migrate the database schema to a release's docsvc image

Usage:
  tetherctl migrate [--config deployment.yaml] [--profile P] [--region R]
      [--digest sha256:...] [--timeout 30m] [--output text|json] [--yes]

Before anything runs it checks that:
  - the license secret is set and verifies against license.public_key, and
    the AI provider key is set when ai.provider uses one (tetherctl secrets);
  - ECR repository <name>/docsvc holds the image with that digest
    (tetherctl images push puts it there);
  - the <name>-cluster stack's MigrateImageDigest is that digest, and its
    migrate task definition runs that image (tetherctl deploy moves it).
Then it runs the cluster stack's migrate task on Fargate (private subnets,
no public IP), shows the task's state changes and its log lines as they
reach CloudWatch, and waits until it stops. Only when the migrate container
exits with code 0 does it write the SSM parameter
/tether/<name>/migrated/sha256-<hex>: the services stack runs only a docsvc
image recorded there, so the services never start on an unmigrated schema.

--digest defaults to deployment.yaml's images.docsvc_digest. --timeout bounds
the whole command; a task still running then is left running, and the error
says where to watch it. Without --yes the plan is shown and must be
confirmed. --output json prints {digest, cluster, task_arn, exit_code,
log_group, log_stream, marker}.

Flags:
`

func imagesCmd(ctx context.Context, args []string, env Env) error {
	var df deployFlags
	var rel releaseImages
	var opt imageOptions
	var yes bool
	fs := flag.NewFlagSet("images push", flag.ContinueOnError)
	df.register(fs)
	fs.StringVar(&rel.DocsvcDigest, "docsvc-digest", "", "the docsvc image's `digest` (default images.docsvc_digest)")
	fs.StringVar(&rel.AgentDigest, "agent-digest", "", "the agent image's `digest` (default images.agent_digest)")
	fs.StringVar(&rel.Version, "version", "", "the release `version`; images.source build tags the images with it")
	fs.StringVar(&opt.SourceBundle, "source-bundle", "", "images.source build: the vendor's source bundle `file`")
	fs.BoolVar(&yes, "yes", false, "do not ask for confirmation")
	help := imagesUsage + flagHelp(fs)
	if len(args) == 0 || isHelp(args[0]) {
		return helpOrUsage(env, help, args, "tetherctl images: want push")
	}
	if args[0] != "push" {
		return fmt.Errorf("%w: tetherctl images: unknown subcommand %q (want push)", errUsage, args[0])
	}
	if helped, err := parseFlagsOnly(env, fs, args[1:], help); helped || err != nil {
		return err
	}
	dc, err := df.load()
	if err != nil {
		return err
	}
	rel.DocsvcDigest = orDefault(rel.DocsvcDigest, dc.Images.DocsvcDigest)
	rel.AgentDigest = orDefault(rel.AgentDigest, dc.Images.AgentDigest)
	build := dc.Images.Source == deployconfig.ImagesBuild
	for _, d := range []struct{ flag, yaml, v string }{{"--docsvc-digest", "images.docsvc_digest", rel.DocsvcDigest}, {"--agent-digest", "images.agent_digest", rel.AgentDigest}} {
		switch {
		case d.v == "" && !build:
			return fmt.Errorf("%w: tetherctl images push: no digest for the %s image: pass %s or set %s in deployment.yaml, as the release names it",
				errUsage, strings.TrimSuffix(strings.TrimPrefix(d.flag, "--"), "-digest"), d.flag, d.yaml)
		case d.v != "":
			if err := checkDigest(d.flag, d.v); err != nil {
				return err
			}
		}
	}
	switch {
	case build && (opt.SourceBundle == "" || rel.Version == ""):
		return fmt.Errorf("%w: tetherctl images push: images.source is build: pass --source-bundle FILE and --version V (the release the bundle is)", errUsage)
	case !build && opt.SourceBundle != "":
		return fmt.Errorf("%w: tetherctl images push: --source-bundle is for images.source build; deployment.yaml's images.source is %s", errUsage, dc.Images.Source)
	}

	cctx, cancel := callCtx(ctx)
	sess, err := connect(cctx, env, dc, df)
	cancel()
	if err != nil {
		return fmt.Errorf("tetherctl images push: %w", err)
	}
	var plan []string
	if build {
		plan = append(plan, fmt.Sprintf("upload %s and build release %s with CodeBuild project tether-%s-images into ECR %s/docsvc and %s/agent", opt.SourceBundle, rel.Version, dc.Name, dc.Name, dc.Name))
	} else {
		plan = append(plan,
			fmt.Sprintf("copy %s/docsvc@%s into ECR %s/docsvc", dc.Images.VendorRegistry, rel.DocsvcDigest, dc.Name),
			fmt.Sprintf("copy %s/agent@%s into ECR %s/agent", dc.Images.VendorRegistry, rel.AgentDigest, dc.Name))
	}
	plan = append(plan, "write the SSM parameter "+agentMarkerPath(dc, orDefault(rel.AgentDigest, "sha256:<the built agent's digest>")))
	if err := confirm(env, dc, plan, yes); err != nil {
		return fmt.Errorf("tetherctl images push: %w", err)
	}
	rep, err := pushImagesReport(ctx, env, sess, dc, rel, opt)
	if err != nil {
		return fmt.Errorf("tetherctl images push: %w", err)
	}
	if df.output == "json" {
		return writeJSON(env.Stdout, rep)
	}
	for _, img := range rep.Images {
		fmt.Fprintf(env.Stdout, "%-7s %s  %s in %s\n", img.Name, img.Digest, img.Action, img.Repository)
	}
	fmt.Fprintf(env.Stdout, "recorded %s\n", rep.AgentMarker)
	return nil
}

func migrateCmd(ctx context.Context, args []string, env Env) error {
	var df deployFlags
	var digest string
	var yes bool
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	df.register(fs)
	fs.StringVar(&digest, "digest", "", "the docsvc image `digest` to migrate to (default images.docsvc_digest)")
	timeout := fs.Duration("timeout", migrateTimeout, "how long to wait for the migration, checks included")
	fs.BoolVar(&yes, "yes", false, "do not ask for confirmation")
	help := migrateUsage + flagHelp(fs)
	if helped, err := parseFlagsOnly(env, fs, args, help); helped || err != nil {
		return err
	}
	if *timeout < time.Minute || *timeout > 6*time.Hour {
		return fmt.Errorf("%w: --timeout %s: want 1m to 6h", errUsage, *timeout)
	}
	dc, err := df.load()
	if err != nil {
		return err
	}
	digest = orDefault(digest, dc.Images.DocsvcDigest)
	if digest == "" {
		return fmt.Errorf("%w: tetherctl migrate: no digest: pass --digest sha256:... or set images.docsvc_digest in deployment.yaml", errUsage)
	}
	if err := checkDigest("--digest", digest); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	sess, err := connect(ctx, env, dc, df)
	if err != nil {
		return fmt.Errorf("tetherctl migrate: %w", err)
	}
	plan := []string{
		"check the license" + map[bool]string{true: " and AI provider key", false: ""}[dc.WorkerNeedsInternet()] + " secrets, ECR " + dc.Name + "/docsvc@" + digest + " and the " + dc.Name + "-cluster stack",
		"run the " + dc.Name + "-cluster stack's migrate task (docsvc migrate) and wait for it, up to " + timeout.String(),
		"on exit code 0, write the SSM parameter " + migratedMarkerPath(dc, digest),
	}
	if err := confirm(env, dc, plan, yes); err != nil {
		return fmt.Errorf("tetherctl migrate: %w", err)
	}
	rep, err := runMigrationReport(ctx, env, sess, dc, digest)
	if err != nil {
		return fmt.Errorf("tetherctl migrate: %w", err)
	}
	if df.output == "json" {
		return writeJSON(env.Stdout, rep)
	}
	fmt.Fprintf(env.Stdout, "migrated to docsvc %s (task %s, exit code 0)\nrecorded %s\n", digest, rep.TaskARN, rep.Marker)
	return nil
}

// confirm shows the plan on standard error and, without --yes, asks for
// "yes" on standard input; anything else, or none, changes nothing.
func confirm(env Env, dc *deployconfig.Config, plan []string, yes bool) error {
	fmt.Fprintf(env.Stderr, "In account %s, %s, this will:\n", dc.Account, dc.Region)
	for _, p := range plan {
		fmt.Fprintf(env.Stderr, "  - %s\n", p)
	}
	if yes {
		return nil
	}
	return proceed(env)
}

// proceed asks whether to go ahead (askToProceed); anything but yes is a
// refusal that says nothing was changed.
func proceed(env Env) error {
	ok, err := askToProceed(env, "Proceed?")
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("not confirmed, nothing was changed; pass --yes to run without asking")
	}
	return nil
}

// parseFlagsOnly parses a command that takes flags and no arguments;
// helped is true when it printed the help asked for.
func parseFlagsOnly(env Env, fs *flag.FlagSet, args []string, help string) (helped bool, err error) {
	positional, err := parseArgs(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(env.Stdout, help)
		return true, nil
	case err != nil:
		return false, err
	case len(positional) > 0:
		return false, fmt.Errorf("%w: tetherctl %s takes no arguments, got %q", errUsage, fs.Name(), positional[0])
	}
	return false, nil
}

func isHelp(s string) bool { return s == "-h" || s == "--help" || s == "help" }

// helpOrUsage prints a command's help: on standard output when asked for,
// else on standard error with a usage error.
func helpOrUsage(env Env, help string, args []string, missing string) error {
	if len(args) > 0 {
		fmt.Fprint(env.Stdout, help)
		return nil
	}
	fmt.Fprint(env.Stderr, help)
	return fmt.Errorf("%w: %s", errUsage, missing)
}

func orDefault(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

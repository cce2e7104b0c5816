package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"

	"github.com/tetherhq/tether/internal/diagspool"
	"github.com/tetherhq/tether/internal/diagspool/diagreview"
	"github.com/tetherhq/tether/internal/exchange"
	"github.com/tetherhq/tether/internal/exchange/operator"
)

// In AWS the agent's data dir is on a file system only its task mounts;
// with --config, tetherctl diag and egress work on the deployment's agent
// exchange bucket instead (internal/exchange), through the operator's own
// IAM permissions.

// exchangeTimeout bounds all the AWS calls of one diag or egress command
// on the exchange bucket.
const exchangeTimeout = 2 * time.Minute

// ExchangeBucketOutput is the data stack's output naming the exchange
// bucket (deploy/cdk/stacks/support.go).
const ExchangeBucketOutput = "ExchangeBucketName"

// supportPolicyHint points an operator refused by IAM at the policy that
// grants what the support commands need.
const supportPolicyHint = "the support policy in docs/support.md (\"Review from your workstation\") grants what these commands need"

// target is where diag and egress work: the agent's data dir, or with
// --config the deployment's exchange bucket.
type target struct {
	dataDir string
	df      deployFlags
	yes     bool
	remote  bool
}

// register adds --data-dir and the remote flags (--config, --profile,
// --region, and --yes when confirm).
func (tg *target) register(fs *flag.FlagSet, confirm bool) {
	fs.StringVar(&tg.dataDir, "data-dir", "./.tether-dev", "the tetherctl dev data dir, or the agent's own data dir")
	fs.StringVar(&tg.df.configPath, "config", "", "work on the deployment's agent exchange bucket in AWS: its `deployment.yaml`")
	fs.StringVar(&tg.df.aws.Profile, "profile", "", "with --config: the AWS `profile` to use, as the AWS CLI's --profile")
	fs.StringVar(&tg.df.aws.Region, "region", "", "with --config: the AWS `region`, as the AWS CLI's --region (it must be deployment.yaml's)")
	if confirm {
		fs.BoolVar(&tg.yes, "yes", false, "with --config: do not ask for confirmation (for automation)")
	}
}

// resolve decides local or remote once the flags are parsed.
func (tg *target) resolve(fs *flag.FlagSet, cmd string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["config"] && set["data-dir"] {
		return fmt.Errorf("%w: tetherctl %s: give --data-dir (an agent data dir on this machine) or --config (the deployment's exchange bucket in AWS), not both", errUsage, cmd)
	}
	if !set["config"] {
		for _, name := range []string{"profile", "region", "yes"} {
			if set[name] {
				return fmt.Errorf("%w: tetherctl %s: --%s is for --config (the deployment's exchange bucket); add --config deployment.yaml", errUsage, cmd, name)
			}
		}
	}
	tg.remote = set["config"]
	return nil
}

// exchangeSession is a connection to one deployment's exchange bucket,
// with a private scratch dir for what is read from it; close removes it.
type exchangeSession struct {
	client *exchange.Client
	caller string // the caller's ARN
	dir    string
}

func (ex *exchangeSession) close() { os.RemoveAll(ex.dir) }

// openExchange reads deployment.yaml, checks the credentials are for its
// account and region, and finds the exchange bucket in the data stack's
// outputs. Its errors name the command cmd.
func openExchange(ctx context.Context, env Env, df deployFlags, cmd string) (*exchangeSession, error) {
	ex, err := connectExchange(ctx, env, df)
	if err != nil {
		return nil, fmt.Errorf("tetherctl %s: %w", cmd, err)
	}
	if ex.dir, err = os.MkdirTemp("", "tetherctl-exchange-"); err != nil {
		return nil, err
	}
	return ex, nil
}

func connectExchange(ctx context.Context, env Env, df deployFlags) (*exchangeSession, error) {
	df.output = "text"
	dc, err := df.load()
	if err != nil {
		return nil, err
	}
	sess, caller, err := connectAs(ctx, env, dc, df)
	if err != nil {
		return nil, err
	}
	stack := dc.Name + "-data"
	out, err := sess.CloudFormation().DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
	if err != nil {
		why := describeAWSError(err)
		switch {
		case strings.Contains(why, "does not exist"):
			return nil, fmt.Errorf("the %s stack does not exist in account %s, %s: the exchange bucket is part of it; deploy it first (see deploy/cdk/README.md)", stack, dc.Account, dc.Region)
		case strings.Contains(why, "AccessDenied"):
			return nil, fmt.Errorf("access denied: cloudformation:DescribeStacks on stack %s was refused (%s); %s", stack, why, supportPolicyHint)
		}
		return nil, fmt.Errorf("finding the exchange bucket (CloudFormation DescribeStacks %s): %s", stack, why)
	}
	var bucket string
	for _, s := range out.Stacks {
		for _, o := range s.Outputs {
			if aws.ToString(o.OutputKey) == ExchangeBucketOutput {
				bucket = aws.ToString(o.OutputValue)
			}
		}
	}
	if bucket == "" {
		return nil, fmt.Errorf("the %s stack has no %s output: it predates the exchange bucket; deploy the data stack again (cdk deploy %s)", stack, ExchangeBucketOutput, stack)
	}
	if err := exchange.CheckBucketName(bucket); err != nil {
		return nil, fmt.Errorf("the %s stack's %s output: %w", stack, ExchangeBucketOutput, err)
	}
	return &exchangeSession{client: exchange.New(sess.cfg, bucket, sess.serviceEndpoint("S3")), caller: caller}, nil
}

// exchangeError says in the operator's terms why a call on the bucket
// failed: the permission missing, or what is not there.
func exchangeError(cmd string, err error) error {
	var denied *exchange.DeniedError
	if errors.As(err, &denied) {
		return fmt.Errorf("tetherctl %s: %w; your AWS identity needs %s on %s: %s", cmd, err, denied.Action, denied.Resource, supportPolicyHint)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("tetherctl %s: no answer from S3 within %s: %w", cmd, exchangeTimeout, err)
	}
	return fmt.Errorf("tetherctl %s: %w", cmd, err)
}

// diagRemote is tetherctl diag with --config: the requests in the
// deployment's exchange bucket. The bucket's copy is read into a private
// scratch dir laid out as the agent's own, so listing and previewing (and
// refusing a bundle file that no longer matches its manifest) are
// diagspool's, exactly as on the agent's data dir.
func diagRemote(ctx context.Context, env Env, tg target, sub, id, output string) error {
	cmd := "diag " + sub
	ex, err := openExchange(ctx, env, tg.df, cmd)
	if err != nil {
		return err
	}
	defer ex.close()
	dir := ex.dir
	where := "s3://" + ex.client.Bucket() + "/" + exchange.DiagnosticsPrefix
	if err := operator.Fetch(ctx, ex.client, dir, id, sub != "list"); err != nil {
		if errors.Is(err, exchange.ErrNotFound) {
			return fmt.Errorf("tetherctl %s %s: there is no request %s in %s; 'tetherctl diag list --config %s' shows the requests there (the exchange task copies a new one within a minute of the agent recording it); nothing was changed",
				sub, id, id, where, tg.df.configPath)
		}
		return exchangeError(cmd, err)
	}
	switch sub {
	case "list":
		rows, err := diagRows(dir, true)
		if err != nil {
			return err
		}
		return writeDiagnostics(env.Stdout, rows, output)
	case "preview":
		files, err := diagreview.Preview(dir, id)
		if err != nil {
			return diagError("preview", id, where, err)
		}
		return writePreview(env.Stdout, files, id, output)
	}

	// approve or decline: only a pending request without a decision.
	d, err := diagspool.Read(dir, id)
	if err != nil {
		return diagError(sub, id, where, err)
	}
	if d.State != diagspool.StatePending {
		return diagError(sub, id, where, fmt.Errorf("%w (it is %s)", diagspool.ErrNotPending, d.State))
	}
	// A request is decided once; but an approval the exchange task has not applied
	// (it refuses one that names another manifest) may still be declined.
	prev, decided, _ := operator.LocalDecision(dir, id)
	replace := decided && sub == "decline" && prev.Decision == exchange.Approve
	if decided && !replace {
		return fmt.Errorf("tetherctl %s %s: it was already decided: %s by %s at %s, and the exchange task applies that within a minute; a request is decided once; nothing was changed",
			cmd, id, prev.Decision, prev.By, prev.At.Local().Format(time.RFC3339))
	}
	dec := exchange.Decision{Decision: exchange.Decline, By: ex.caller, At: env.Now().UTC()}
	plan := fmt.Sprintf("Decline request %s (%q) in %s as %s: nothing will ever be sent for it.", id, d.Reason, where, ex.caller)
	if sub == "approve" {
		files, err := diagreview.Preview(dir, id)
		if err != nil {
			return diagError(sub, id, where, err)
		}
		if dec.ManifestSHA256, err = exchange.ManifestSHA256(dir, id); err != nil {
			return diagError(sub, id, where, err)
		}
		dec.Decision = exchange.Approve
		var names []string
		for _, f := range files {
			names = append(names, fmt.Sprintf("%s (%d bytes)", f.Name, f.Size))
		}
		plan = fmt.Sprintf("Approve request %s (%q) in %s as %s: the agent will upload these %d files to the vendor, as 'tetherctl diag preview %s' shows them:\n  %s",
			id, d.Reason, where, ex.caller, len(files), id, strings.Join(names, "\n  "))
	} else if sum, err := exchange.ManifestSHA256(dir, id); err == nil {
		dec.ManifestSHA256 = sum
	}
	if replace {
		plan += fmt.Sprintf("\nThis replaces the approval by %s at %s, which the exchange task has not applied (its log says why).", prev.By, prev.At.Local().Format(time.RFC3339))
	}
	fmt.Fprintln(env.Stderr, plan)
	if !tg.yes {
		if err := proceed(env); err != nil {
			return fmt.Errorf("tetherctl %s %s: %w", cmd, id, err)
		}
	}
	if err := operator.PutDecision(ctx, ex.client, id, dec, replace); err != nil {
		if errors.Is(err, exchange.ErrDecided) {
			return fmt.Errorf("tetherctl %s %s: someone decided it just now (see 'tetherctl diag list --config %s'); a request is decided once; nothing was changed", cmd, id, tg.df.configPath)
		}
		return exchangeError(cmd, err)
	}
	if sub == "approve" {
		fmt.Fprintf(env.Stdout, "approved %s; the exchange task applies it within a minute and the agent uploads exactly the previewed files at its next heartbeat (see 'tetherctl diag list --config %s', then 'tetherctl egress show --config %s')\n", id, tg.df.configPath, tg.df.configPath)
	} else {
		fmt.Fprintf(env.Stdout, "declined %s; nothing will be sent for it\n", id)
	}
	return nil
}

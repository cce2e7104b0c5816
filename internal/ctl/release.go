package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// This file holds what the release steps (images.go, migrate.go) share:
// digests and the SSM markers named after them, reading a stack, asking
// ECR whether it holds an image, polling, and following a CloudWatch log.

// awsCallTimeout bounds each control-plane call of the release steps.
const awsCallTimeout = 30 * time.Second

// callCtx is ctx bounded for one AWS call.
func callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, awsCallTimeout)
}

// digestShape is an image digest as the release names it, the only form
// tetherctl accepts: images are pulled and run by digest, never by tag.
var digestShape = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// checkDigest rejects anything but sha256:<64 lower-case hex>.
func checkDigest(what, d string) error {
	if digestShape.MatchString(d) {
		return nil
	}
	shown := d
	if len(shown) > 80 {
		shown = shown[:80] + "..."
	}
	return fmt.Errorf("%w: %s %q is not an image digest: want sha256: followed by 64 lower-case hex digits, exactly as the release names it (for example sha256:%s)",
		errUsage, what, shown, strings.Repeat("0", 64))
}

// markerName is the last element of a marker's path: the digest with its
// colon, which SSM does not allow in names, made a dash.
func markerName(digest string) string { return strings.Replace(digest, ":", "-", 1) }

// agentMarkerPath is the SSM parameter that says the agent image with this
// digest is in the deployment's ECR (contract: the services stack's
// AgentImage parameter defaults to it).
func agentMarkerPath(cfg *deployconfig.Config, digest string) string {
	return "/tether/" + cfg.Name + "/verified/agent/" + markerName(digest)
}

// migratedMarkerPath is the SSM parameter that says the database schema
// was migrated by the docsvc image with this digest (the services stack's
// DocsvcImage parameter defaults to it).
func migratedMarkerPath(cfg *deployconfig.Config, digest string) string {
	return "/tether/" + cfg.Name + "/migrated/" + markerName(digest)
}

// putMarker writes a marker: a Standard String parameter whose value is
// exactly the digest, described with what wrote it and when.
func putMarker(ctx context.Context, a *awsSession, path, digest, why string) error {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	_, err := a.SSM().PutParameter(ctx, &ssm.PutParameterInput{
		Name:        aws.String(path),
		Value:       aws.String(digest),
		Type:        ssmtypes.ParameterTypeString,
		Tier:        ssmtypes.ParameterTierStandard,
		Overwrite:   aws.Bool(true),
		Description: aws.String(fmt.Sprintf("Written by tetherctl at %s: %s", a.now().UTC().Format(time.RFC3339), why)),
	})
	if err != nil {
		return fmt.Errorf("writing the SSM parameter %s (SSM PutParameter): %s", path, describeAWSError(err))
	}
	return nil
}

// stackInfo is what the release steps read from a deployed stack.
type stackInfo struct {
	Name       string
	Status     string
	Outputs    map[string]string
	Parameters map[string]string
}

// readStack reads one of the deployment's stacks (suffix "images",
// "cluster") and refuses one that is missing, failed or mid-change, since
// its outputs would not describe what is deployed.
func readStack(ctx context.Context, a *awsSession, cfg *deployconfig.Config, suffix string) (stackInfo, error) {
	name := cfg.Name + "-" + suffix
	cctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.CloudFormation().DescribeStacks(cctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	var apiErr smithy.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.ErrorCode() == "ValidationError" && strings.Contains(apiErr.ErrorMessage(), "does not exist"):
		return stackInfo{}, fmt.Errorf("the %s stack does not exist in account %s, %s: deploy it first (tetherctl deploy)", name, cfg.Account, cfg.Region)
	case err != nil:
		return stackInfo{}, fmt.Errorf("reading the %s stack (CloudFormation DescribeStacks): %s", name, describeAWSError(err))
	case len(out.Stacks) == 0:
		return stackInfo{}, fmt.Errorf("the %s stack does not exist in account %s, %s: deploy it first (tetherctl deploy)", name, cfg.Account, cfg.Region)
	}
	st := out.Stacks[0]
	info := stackInfo{Name: name, Status: string(st.StackStatus), Outputs: map[string]string{}, Parameters: map[string]string{}}
	switch st.StackStatus {
	case cftypes.StackStatusCreateComplete, cftypes.StackStatusUpdateComplete, cftypes.StackStatusUpdateRollbackComplete, cftypes.StackStatusImportComplete:
	default:
		return info, fmt.Errorf("the %s stack is %s, so its outputs may not describe what is deployed: wait for it to finish, or fix it in the CloudFormation console and run tetherctl deploy", name, st.StackStatus)
	}
	for _, o := range st.Outputs {
		info.Outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	for _, p := range st.Parameters {
		v := aws.ToString(p.ParameterValue)
		if p.ResolvedValue != nil {
			v = aws.ToString(p.ResolvedValue)
		}
		info.Parameters[aws.ToString(p.ParameterKey)] = v
	}
	return info, nil
}

// output is one of the stack's outputs; a missing one means the stack was
// deployed by another version of tetherctl.
func (s stackInfo) output(key string) (string, error) {
	if v := s.Outputs[key]; v != "" {
		return v, nil
	}
	return "", fmt.Errorf("the %s stack has no output %s: it was deployed by another version of tetherctl; run tetherctl deploy with this one", s.Name, key)
}

// ecrImagePresent asks ECR whether repository holds an image with exactly
// this digest (DescribeImages by digest).
func ecrImagePresent(ctx context.Context, a *awsSession, cfg *deployconfig.Config, repository, digest string) (bool, error) {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.ECR().DescribeImages(ctx, &ecr.DescribeImagesInput{
		RepositoryName: aws.String(repository),
		ImageIds:       []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(digest)}},
	})
	var notFound *ecrtypes.ImageNotFoundException
	var noRepo *ecrtypes.RepositoryNotFoundException
	switch {
	case errors.As(err, &notFound):
		return false, nil
	case errors.As(err, &noRepo):
		return false, fmt.Errorf("the ECR repository %s does not exist in account %s, %s: the %s-images stack creates it; deploy that stack first (tetherctl deploy)", repository, cfg.Account, cfg.Region, cfg.Name)
	case err != nil:
		return false, fmt.Errorf("looking for %s in the ECR repository %s (ECR DescribeImages): %s", digest, repository, describeAWSError(err))
	}
	for _, d := range out.ImageDetails {
		if aws.ToString(d.ImageDigest) == digest {
			return true, nil
		}
	}
	return false, nil
}

// Polling: quickly at first, then every few seconds.
const (
	firstPoll = 250 * time.Millisecond
	maxPoll   = 5 * time.Second
)

func nextPoll(d time.Duration) time.Duration {
	if d < firstPoll {
		return firstPoll
	}
	return min(2*d, maxPoll)
}

// sleep waits d, or less when ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// logTail follows one CloudWatch log stream, printing each new line to w
// with a prefix and keeping the last few for an error message. A stream
// that does not exist yet is not an error: the task or build has not
// written anything.
type logTail struct {
	client        *cloudwatchlogs.Client
	group, stream string
	w             io.Writer
	prefix        string
	token         *string
	last          []string
}

// keptLines is how many of the last lines a logTail keeps.
const keptLines = 20

// poll prints whatever the stream holds beyond what was printed before.
func (l *logTail) poll(ctx context.Context) error {
	for range 100 { // at most 100 pages per poll; the next poll continues
		cctx, cancel := callCtx(ctx)
		out, err := l.client.GetLogEvents(cctx, &cloudwatchlogs.GetLogEventsInput{
			LogGroupName:  aws.String(l.group),
			LogStreamName: aws.String(l.stream),
			StartFromHead: aws.Bool(true),
			NextToken:     l.token,
		})
		cancel()
		var notFound *logtypes.ResourceNotFoundException
		switch {
		case errors.As(err, &notFound):
			return nil
		case err != nil:
			return fmt.Errorf("reading the log stream %s in %s (CloudWatch Logs GetLogEvents): %s", l.stream, l.group, describeAWSError(err))
		}
		for _, e := range out.Events {
			line := strings.TrimRight(aws.ToString(e.Message), "\r\n")
			fmt.Fprintf(l.w, "%s%s\n", l.prefix, line)
			l.last = append(l.last, line)
			if len(l.last) > keptLines {
				l.last = l.last[len(l.last)-keptLines:]
			}
		}
		same := out.NextForwardToken == nil || (l.token != nil && aws.ToString(out.NextForwardToken) == aws.ToString(l.token))
		l.token = out.NextForwardToken
		if same || len(out.Events) == 0 {
			return nil
		}
	}
	return nil
}

// lastLines is the end of the log, for an error message.
func (l *logTail) lastLines() string {
	if len(l.last) == 0 {
		return "(the log stream " + l.stream + " in " + l.group + " has no lines)"
	}
	return "its last log lines:\n  " + strings.Join(l.last, "\n  ")
}

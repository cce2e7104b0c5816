package ctl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/smithy-go"
)

// This file deploys one synthesized stack the way `cdk deploy` does, with
// the AWS SDK instead of the CDK CLI: it checks the CDK bootstrap, puts a
// large template in the bootstrap bucket, creates a change set (run as the
// bootstrap's CloudFormation execution role), treats an empty change set as
// "no changes", executes it, prints the stack's events as they happen until
// the stack settles, and returns its outputs.

// maxTemplateBody is the largest template CloudFormation takes inline; a
// larger one is uploaded and passed by URL.
const maxTemplateBody = 51200

// stackPoll is how often a change set or a stack in progress is asked
// about. Tests set it lower.
var stackPoll = 2 * time.Second

// stackResult is what deploying one stack did.
type stackResult struct {
	Stack   string            `json:"stack"`
	Action  string            `json:"action"` // created, updated or unchanged
	Status  string            `json:"status"`
	Outputs map[string]string `json:"outputs,omitempty"`
}

const (
	actionCreated   = "created"
	actionUpdated   = "updated"
	actionUnchanged = "unchanged"
)

// stackDeploy is one stack deployment's settings.
type stackDeploy struct {
	Stack      *stackArtifact
	Qualifier  string
	Parameters map[string]string // values tetherctl gives; others keep their previous value or default
	Progress   io.Writer         // event lines and outputs
	Dir        string            // the cloud assembly's directory, where the template's file is
	Direct     bool              // CreateStack/UpdateStack instead of a change set
}

// preparedStack is what both ways of deploying a stack send CloudFormation.
type preparedStack struct {
	existing     *cfntypes.Stack // nil for a new stack
	create       bool
	templateBody *string
	templateURL  *string
	roleARN      *string
	tags         []cfntypes.Tag
	parameters   []cfntypes.Parameter
	capabilities []cfntypes.Capability
}

// prepareStack checks the bootstrap and the stack's state, and puts the
// request together (uploading a large template).
func prepareStack(ctx context.Context, a *awsSession, d stackDeploy) (*preparedStack, error) {
	st := d.Stack
	if err := requireBootstrap(ctx, a, d.Qualifier, st); err != nil {
		return nil, err
	}
	existing, err := describeStack(ctx, a.CloudFormation(), st.StackName)
	if err != nil {
		return nil, err
	}
	p := &preparedStack{existing: existing, create: true,
		// No CAPABILITY_AUTO_EXPAND: no stack has a Transform or nested
		// application, whose roles the permissions boundary could not reach.
		capabilities: []cfntypes.Capability{cfntypes.CapabilityCapabilityIam, cfntypes.CapabilityCapabilityNamedIam}}
	if existing != nil {
		switch status := string(existing.StackStatus); {
		case status == string(cfntypes.StackStatusReviewInProgress):
			// A change set was created but never executed: still a create.
		case status == string(cfntypes.StackStatusRollbackComplete):
			return nil, fmt.Errorf("stack %s is in ROLLBACK_COMPLETE: its first deployment failed and nothing of it remains. Delete it (aws cloudformation delete-stack --stack-name %s; turn off termination protection first if it is on), then run tetherctl deploy again", st.StackName, st.StackName)
		case strings.HasSuffix(status, "_IN_PROGRESS"):
			return nil, fmt.Errorf("stack %s is busy (%s): another deployment is running. Wait until it ends (aws cloudformation describe-stacks --stack-name %s), then run tetherctl deploy again", st.StackName, status, st.StackName)
		default:
			p.create = false
		}
	}
	if st.ExecRoleARN != "" {
		p.roleARN = aws.String(strings.ReplaceAll(st.ExecRoleARN, "${AWS::Partition}", partitionOf(st.Region)))
	}
	for _, k := range sortedKeys(st.Tags) {
		p.tags = append(p.tags, cfntypes.Tag{Key: aws.String(k), Value: aws.String(st.Tags[k])})
	}
	previous := existing
	if p.create {
		previous = nil
	}
	if p.parameters, err = changeSetParameters(st, d.Parameters, previous); err != nil {
		return nil, err
	}
	if len(st.Template) > maxTemplateBody {
		u, err := uploadTemplate(ctx, a, d.Qualifier, d.Dir, st)
		if err != nil {
			return nil, err
		}
		p.templateURL = aws.String(u)
	} else {
		p.templateBody = aws.String(string(st.Template))
	}
	return p, nil
}

// deployStack deploys one stack and returns what it did: through a change
// set, or with CreateStack/UpdateStack when d.Direct. An error says which
// step failed and why; for a failed deployment, it quotes the first
// resource that failed.
func deployStack(ctx context.Context, a *awsSession, d stackDeploy) (stackResult, error) {
	res := stackResult{Stack: d.Stack.StackName}
	p, err := prepareStack(ctx, a, d)
	if err != nil {
		return res, err
	}
	if d.Direct {
		return deployDirect(ctx, a.CloudFormation(), d, p, res)
	}
	return deployChangeSet(ctx, a.CloudFormation(), d, p, res, a.now())
}

// deployChangeSet makes a change set, skips it when it has no changes, and
// executes it.
func deployChangeSet(ctx context.Context, cfn *cloudformation.Client, d stackDeploy, p *preparedStack, res stackResult, now time.Time) (stackResult, error) {
	st := d.Stack
	csType := cfntypes.ChangeSetTypeUpdate
	if p.create {
		csType = cfntypes.ChangeSetTypeCreate
	}
	cctx, cancel := callCtx(ctx)
	cs, err := cfn.CreateChangeSet(cctx, &cloudformation.CreateChangeSetInput{
		StackName:     aws.String(st.StackName),
		ChangeSetName: aws.String("tetherctl-" + now.UTC().Format("20060102T150405Z")),
		ChangeSetType: csType,
		Description:   aws.String("tetherctl deploy"),
		Capabilities:  p.capabilities,
		RoleARN:       p.roleARN,
		Tags:          p.tags,
		Parameters:    p.parameters,
		TemplateBody:  p.templateBody,
		TemplateURL:   p.templateURL,
	})
	cancel()
	if err != nil {
		if noChanges(err.Error()) {
			return unchanged(ctx, cfn, d, res)
		}
		return res, fmt.Errorf("creating a change set for %s (CloudFormation CreateChangeSet): %s; %s", st.StackName, describeAWSError(err), refusedFix)
	}
	empty, err := waitChangeSet(ctx, cfn, st.StackName, aws.ToString(cs.Id))
	if err != nil {
		return res, err
	}
	if empty {
		return unchanged(ctx, cfn, d, res)
	}
	// The events before this deployment are not printed.
	seen, err := eventIDs(ctx, cfn, st.StackName)
	if err != nil {
		return res, err
	}
	cctx, cancel = callCtx(ctx)
	_, err = cfn.ExecuteChangeSet(cctx, &cloudformation.ExecuteChangeSetInput{
		ChangeSetName: cs.Id, StackName: aws.String(st.StackName),
	})
	cancel()
	if err != nil {
		return res, fmt.Errorf("executing the change set for %s (CloudFormation ExecuteChangeSet): %s; %s", st.StackName, describeAWSError(err), refusedFix)
	}
	return finish(ctx, cfn, d, res, p.create, seen)
}

// deployDirect deploys one stack with CreateStack or UpdateStack, as cdk
// deploy --method=direct: no change set to review, and an update with no
// changes is reported by UpdateStack itself.
func deployDirect(ctx context.Context, cfn *cloudformation.Client, d stackDeploy, p *preparedStack, res stackResult) (stackResult, error) {
	st := d.Stack
	seen, err := eventIDs(ctx, cfn, st.StackName)
	if err != nil {
		return res, err
	}
	cctx, cancel := callCtx(ctx)
	call := "UpdateStack"
	if p.create {
		call = "CreateStack"
		_, err = cfn.CreateStack(cctx, &cloudformation.CreateStackInput{
			StackName: aws.String(st.StackName), Capabilities: p.capabilities, RoleARN: p.roleARN, Tags: p.tags,
			Parameters: p.parameters, TemplateBody: p.templateBody, TemplateURL: p.templateURL,
			EnableTerminationProtection: aws.Bool(st.TerminationProtection),
		})
	} else {
		_, err = cfn.UpdateStack(cctx, &cloudformation.UpdateStackInput{
			StackName: aws.String(st.StackName), Capabilities: p.capabilities, RoleARN: p.roleARN, Tags: p.tags,
			Parameters: p.parameters, TemplateBody: p.templateBody, TemplateURL: p.templateURL,
		})
	}
	cancel()
	if err != nil {
		if noChanges(err.Error()) {
			return unchanged(ctx, cfn, d, res)
		}
		return res, fmt.Errorf("deploying %s (CloudFormation %s): %s; %s", st.StackName, call, describeAWSError(err), refusedFix)
	}
	return finish(ctx, cfn, d, res, p.create, seen)
}

// finish follows a started deployment to its end, then sets termination
// protection and reads the outputs.
func finish(ctx context.Context, cfn *cloudformation.Client, d stackDeploy, res stackResult, created bool, seen map[string]bool) (stackResult, error) {
	st := d.Stack
	final, events, err := followStack(ctx, cfn, st.StackName, seen, d.Progress)
	if err != nil {
		return res, err
	}
	res.Status = string(final.StackStatus)
	if !stackSucceeded(final.StackStatus) {
		return res, deployFailure(st.StackName, final, events)
	}
	res.Action = actionUpdated
	if created {
		res.Action = actionCreated
	}
	if err := setTerminationProtection(ctx, cfn, final, st); err != nil {
		return res, err
	}
	res.Outputs = stackOutputs(final)
	printOutputs(d.Progress, st.StackName, res.Outputs)
	return res, nil
}

// unchanged finishes a deployment that had nothing to change.
func unchanged(ctx context.Context, cfn *cloudformation.Client, d stackDeploy, res stackResult) (stackResult, error) {
	res.Action = actionUnchanged
	fmt.Fprintf(d.Progress, "%s: no changes\n", d.Stack.StackName)
	s, err := describeStack(ctx, cfn, d.Stack.StackName)
	if err != nil {
		return res, err
	}
	if s == nil {
		return res, fmt.Errorf("stack %s disappeared while it was being deployed", d.Stack.StackName)
	}
	res.Status = string(s.StackStatus)
	if err := setTerminationProtection(ctx, cfn, s, d.Stack); err != nil {
		return res, err
	}
	res.Outputs = stackOutputs(s)
	printOutputs(d.Progress, d.Stack.StackName, res.Outputs)
	return res, nil
}

// requireBootstrap checks the CDK bootstrap the stack needs is there.
func requireBootstrap(ctx context.Context, a *awsSession, qualifier string, st *stackArtifact) error {
	param := st.BootstrapVersionParameter
	if param == "" {
		param = bootstrapParameter(qualifier)
	}
	cctx, cancel := callCtx(ctx)
	defer cancel()
	version, found, err := bootstrapVersion(cctx, a, param)
	switch {
	case err != nil:
		return err
	case !found:
		return fmt.Errorf("the account is not bootstrapped for the CDK with qualifier %s (there is no SSM parameter %s): run tetherctl bootstrap, then tetherctl deploy again", qualifier, param)
	case version < st.RequiresBootstrapVersion:
		return fmt.Errorf("the CDK bootstrap (qualifier %s) is version %d, but %s needs %d or later: run tetherctl bootstrap to upgrade it, then tetherctl deploy again", qualifier, version, st.StackName, st.RequiresBootstrapVersion)
	}
	return nil
}

// describeStack returns the stack, or nil when there is none.
func describeStack(ctx context.Context, cfn *cloudformation.Client, name string) (*cfntypes.Stack, error) {
	cctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := cfn.DescribeStacks(cctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if isStackMissing(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading stack %s (CloudFormation DescribeStacks): %s", name, describeAWSError(err))
	}
	if len(out.Stacks) == 0 {
		return nil, nil
	}
	return &out.Stacks[0], nil
}

// changeSetParameters gives the template's parameters their values: the
// ones tetherctl gives; on an update, the previous value of the others
// that had one; else the template's default. Parameters whose type is an
// SSM parameter name take the template's default unless given: their
// default names the parameter for this synthesis, the previous value the
// one for an earlier.
func changeSetParameters(st *stackArtifact, given map[string]string, existing *cfntypes.Stack) ([]cfntypes.Parameter, error) {
	for k := range given {
		if _, ok := st.Parameters[k]; !ok {
			return nil, fmt.Errorf("stack %s has no parameter %s (is the cdk.out from another version of Tether?)", st.StackName, k)
		}
	}
	previous := map[string]bool{}
	if existing != nil && existing.StackStatus != cfntypes.StackStatusReviewInProgress {
		for _, p := range existing.Parameters {
			previous[aws.ToString(p.ParameterKey)] = true
		}
	}
	var out []cfntypes.Parameter
	for _, name := range sortedKeys(st.Parameters) {
		p := st.Parameters[name]
		switch v, ok := given[name]; {
		case ok:
			out = append(out, cfntypes.Parameter{ParameterKey: aws.String(name), ParameterValue: aws.String(v)})
		case previous[name] && !strings.HasPrefix(p.Type, "AWS::SSM::Parameter::"):
			out = append(out, cfntypes.Parameter{ParameterKey: aws.String(name), UsePreviousValue: aws.Bool(true)})
		case p.Default == nil:
			return nil, fmt.Errorf("stack %s's parameter %s has no default and no value", st.StackName, name)
		}
	}
	return out, nil
}

// uploadTemplate puts the template in the bootstrap bucket under its
// SHA-256, as the CDK's asset publishing does, and returns its URL. The
// AWS CLI uploads it (see putObjectWithCLI).
func uploadTemplate(ctx context.Context, a *awsSession, qualifier, dir string, st *stackArtifact) (string, error) {
	bucket := fmt.Sprintf("cdk-%s-assets-%s-%s", qualifier, st.Account, st.Region)
	sum := sha256.Sum256(st.Template)
	key := hex.EncodeToString(sum[:]) + ".json"
	path, err := filepath.Abs(filepath.Join(dir, st.TemplateFile))
	if err != nil {
		return "", err
	}
	what := fmt.Sprintf("%s's template (%d bytes, over CloudFormation's %d-byte inline limit)", st.StackName, len(st.Template), maxTemplateBody)
	if _, err := putObjectWithCLI(ctx, a, st.Region, path, bucket, key, "tetherctl deploy uploads templates over 51,200 bytes", what); err != nil {
		fix := "check that the credentials may write to the CDK bootstrap's bucket (s3:PutObject); if the bucket is missing, run tetherctl bootstrap again"
		return "", fmt.Errorf("%w; %s", err, fix)
	}
	return fmt.Sprintf("https://s3.%s.%s/%s/%s", st.Region, urlSuffix(st.Region), bucket, key), nil
}

// refusedFix is what to do when CloudFormation refuses a deployment.
const refusedFix = "fix what CloudFormation names (a permission, a quota, or a value from deployment.yaml), then run tetherctl deploy again"

// noChanges recognizes CloudFormation's ways of saying a change set or an
// update would change nothing.
func noChanges(reason string) bool {
	return strings.Contains(reason, "didn't contain changes") || strings.Contains(reason, "No updates are to be performed")
}

// waitChangeSet waits until the change set is ready; empty reports a
// change set with no changes, which is then deleted.
func waitChangeSet(ctx context.Context, cfn *cloudformation.Client, stack, id string) (empty bool, err error) {
	for {
		cctx, cancel := callCtx(ctx)
		out, err := cfn.DescribeChangeSet(cctx, &cloudformation.DescribeChangeSetInput{ChangeSetName: aws.String(id), StackName: aws.String(stack)})
		cancel()
		if err != nil {
			return false, fmt.Errorf("waiting for %s's change set (CloudFormation DescribeChangeSet): %s", stack, describeAWSError(err))
		}
		switch out.Status {
		case cfntypes.ChangeSetStatusCreateComplete:
			return false, nil
		case cfntypes.ChangeSetStatusFailed:
			reason := aws.ToString(out.StatusReason)
			cctx, cancel := callCtx(ctx)
			_, _ = cfn.DeleteChangeSet(cctx, &cloudformation.DeleteChangeSetInput{ChangeSetName: aws.String(id), StackName: aws.String(stack)})
			cancel()
			if noChanges(reason) {
				return true, nil
			}
			return false, fmt.Errorf("CloudFormation could not make a change set for %s: %s", stack, oneLine(reason))
		}
		if err := sleep(ctx, stackPoll); err != nil {
			return false, fmt.Errorf("waiting for %s's change set: %s", stack, describeAWSError(err))
		}
	}
}

// eventIDs lists the stack's events so far (none for a new stack).
func eventIDs(ctx context.Context, cfn *cloudformation.Client, stack string) (map[string]bool, error) {
	seen := map[string]bool{}
	events, err := newEvents(ctx, cfn, stack, seen)
	for _, e := range events {
		seen[aws.ToString(e.EventId)] = true
	}
	return seen, err
}

// newEvents returns the stack's events not in seen, oldest first. It reads
// CloudFormation's newest-first pages only until it reaches a seen event.
func newEvents(ctx context.Context, cfn *cloudformation.Client, stack string, seen map[string]bool) ([]cfntypes.StackEvent, error) {
	var fresh []cfntypes.StackEvent
	var token *string
	for {
		cctx, cancel := callCtx(ctx)
		out, err := cfn.DescribeStackEvents(cctx, &cloudformation.DescribeStackEventsInput{StackName: aws.String(stack), NextToken: token})
		cancel()
		if err != nil {
			var apiErr smithy.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode() == "ValidationError" && strings.Contains(apiErr.ErrorMessage(), "does not exist") {
				return nil, nil
			}
			return nil, fmt.Errorf("reading %s's events (CloudFormation DescribeStackEvents): %s", stack, describeAWSError(err))
		}
		for _, e := range out.StackEvents {
			if seen[aws.ToString(e.EventId)] {
				slices.Reverse(fresh)
				return fresh, nil
			}
			fresh = append(fresh, e)
		}
		if out.NextToken == nil {
			slices.Reverse(fresh)
			return fresh, nil
		}
		token = out.NextToken
	}
}

// followStack prints the stack's new events until the stack is no longer
// in progress, and returns its final state and every event it printed.
func followStack(ctx context.Context, cfn *cloudformation.Client, stack string, seen map[string]bool, w io.Writer) (*cfntypes.Stack, []cfntypes.StackEvent, error) {
	var all []cfntypes.StackEvent
	for {
		s, err := describeStack(ctx, cfn, stack)
		if err != nil {
			return nil, all, err
		}
		if s == nil {
			return nil, all, fmt.Errorf("stack %s disappeared while it was being deployed", stack)
		}
		// Events are read after the status, so the events that led to a
		// final status are all printed before it is returned.
		events, err := newEvents(ctx, cfn, stack, seen)
		if err != nil {
			return nil, all, err
		}
		for _, e := range events {
			seen[aws.ToString(e.EventId)] = true
			fmt.Fprintln(w, eventLine(e))
		}
		all = append(all, events...)
		if !strings.HasSuffix(string(s.StackStatus), "_IN_PROGRESS") {
			return s, all, nil
		}
		if err := sleep(ctx, stackPoll); err != nil {
			return nil, all, fmt.Errorf("stack %s was still %s when the time limit (--timeout) ran out; it goes on in CloudFormation: follow it with aws cloudformation describe-stack-events --stack-name %s, then run tetherctl deploy again",
				stack, s.StackStatus, stack)
		}
	}
}

// eventLine is one event as printed: time, logical id, type, status, reason.
func eventLine(e cfntypes.StackEvent) string {
	line := fmt.Sprintf("%s  %-40s %-42s %s", aws.ToTime(e.Timestamp).UTC().Format("15:04:05"),
		aws.ToString(e.LogicalResourceId), aws.ToString(e.ResourceType), e.ResourceStatus)
	if r := aws.ToString(e.ResourceStatusReason); r != "" {
		line += "  " + oneLine(r)
	}
	return line
}

func stackSucceeded(s cfntypes.StackStatus) bool {
	return s == cfntypes.StackStatusCreateComplete || s == cfntypes.StackStatusUpdateComplete
}

// firstFailure picks, from events in time order, the first resource that
// failed for a reason of its own: CloudFormation then cancels the others
// ("Resource creation cancelled") and rolls back, and those later events
// do not say why.
func firstFailure(events []cfntypes.StackEvent) (cfntypes.StackEvent, bool) {
	var fallback *cfntypes.StackEvent
	for i, e := range events {
		if !strings.HasSuffix(string(e.ResourceStatus), "_FAILED") {
			continue
		}
		reason := aws.ToString(e.ResourceStatusReason)
		if strings.Contains(reason, "cancelled") || strings.Contains(reason, "canceled") {
			if fallback == nil {
				fallback = &events[i]
			}
			continue
		}
		if aws.ToString(e.ResourceType) == "AWS::CloudFormation::Stack" && fallback == nil {
			fallback = &events[i]
			continue
		}
		if aws.ToString(e.ResourceType) != "AWS::CloudFormation::Stack" {
			return e, true
		}
	}
	if fallback != nil {
		return *fallback, true
	}
	return cfntypes.StackEvent{}, false
}

// deployFailure explains a deployment that ended in a failure or rollback.
func deployFailure(stack string, final *cfntypes.Stack, events []cfntypes.StackEvent) error {
	what := fmt.Sprintf("stack %s ended in %s", stack, final.StackStatus)
	if e, ok := firstFailure(events); ok {
		what += fmt.Sprintf(": %s (%s) %s: %s", aws.ToString(e.LogicalResourceId), aws.ToString(e.ResourceType),
			e.ResourceStatus, oneLine(aws.ToString(e.ResourceStatusReason)))
	} else if r := aws.ToString(final.StackStatusReason); r != "" {
		what += ": " + oneLine(r)
	}
	fix := "fix what the reason names, then run tetherctl deploy again"
	if final.StackStatus == cfntypes.StackStatusRollbackComplete {
		fix = fmt.Sprintf("fix what the reason names, delete the empty stack (aws cloudformation delete-stack --stack-name %s), then run tetherctl deploy again", stack)
	}
	return fmt.Errorf("%s. %s", what, fix)
}

// setTerminationProtection turns the stack's termination protection on or
// off as its manifest says, when it differs.
func setTerminationProtection(ctx context.Context, cfn *cloudformation.Client, s *cfntypes.Stack, st *stackArtifact) error {
	if aws.ToBool(s.EnableTerminationProtection) == st.TerminationProtection {
		return nil
	}
	cctx, cancel := callCtx(ctx)
	defer cancel()
	_, err := cfn.UpdateTerminationProtection(cctx, &cloudformation.UpdateTerminationProtectionInput{
		StackName: aws.String(st.StackName), EnableTerminationProtection: aws.Bool(st.TerminationProtection),
	})
	if err != nil {
		return fmt.Errorf("setting %s's termination protection to %t (CloudFormation UpdateTerminationProtection): %s", st.StackName, st.TerminationProtection, describeAWSError(err))
	}
	return nil
}

func stackOutputs(s *cfntypes.Stack) map[string]string {
	out := map[string]string{}
	for _, o := range s.Outputs {
		out[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	return out
}

// printOutputs prints a stack's outputs, leaving out the exports the CDK
// makes for references between stacks.
func printOutputs(w io.Writer, stack string, outputs map[string]string) {
	var keys []string
	for k := range outputs {
		if !strings.HasPrefix(k, "ExportsOutput") {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "%s outputs:\n", stack)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s = %s\n", k, outputs[k])
	}
}

// partitionOf and urlSuffix are the AWS partition of a region and its
// domain.
func partitionOf(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

func urlSuffix(region string) string {
	if strings.HasPrefix(region, "cn-") {
		return "amazonaws.com.cn"
	}
	return "amazonaws.com"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

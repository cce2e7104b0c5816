package ctl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// migrateTimeout is how long runMigration waits for the migrate task when
// its context sets no deadline.
const migrateTimeout = 30 * time.Minute

// migrationReport is the result of tetherctl migrate.
type migrationReport struct {
	Digest   string `json:"digest"`
	Cluster  string `json:"cluster"`
	TaskARN  string `json:"task_arn,omitempty"`
	ExitCode *int32 `json:"exit_code,omitempty"`
	LogGroup string `json:"log_group,omitempty"`
	// LogStream is the migrate container's stream: <prefix>/<container>/<task id>.
	LogStream string `json:"log_stream,omitempty"`
	Marker    string `json:"marker,omitempty"` // the SSM parameter written
}

// runMigration checks the required secrets, verifies the docsvc image is in ECR, checks the
// `<name>-cluster` stack's MigrateImageDigest equals digest (else an error saying to run
// tetherctl deploy), runs the migrate task from the cluster stack's outputs, streams its log
// lines, waits for STOPPED, requires exit code 0 of container `migrate`, then writes the
// migrated marker (migratedMarkerPath).
//
// It waits for the task until ctx's deadline, or 30 minutes when ctx has none.
func runMigration(ctx context.Context, env Env, a *awsSession, cfg *deployconfig.Config, docsvcDigest string) error {
	_, err := runMigrationReport(ctx, env, a, cfg, docsvcDigest)
	return err
}

// runMigrationReport is runMigration, saying what it did.
func runMigrationReport(ctx context.Context, env Env, a *awsSession, cfg *deployconfig.Config, digest string) (migrationReport, error) {
	rep := migrationReport{Digest: digest}
	if err := checkDigest("the docsvc digest", digest); err != nil {
		return rep, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, migrateTimeout)
		defer cancel()
	}

	// (1) The secrets the migrated service needs are well-formed.
	if err := checkReleaseSecrets(ctx, env, a, cfg); err != nil {
		return rep, err
	}
	// (2) The image is in the deployment's ECR by that digest.
	repo := cfg.Name + "/docsvc"
	present, err := ecrImagePresent(ctx, a, cfg, repo, digest)
	if err != nil {
		return rep, err
	}
	if !present {
		return rep, fmt.Errorf("the ECR repository %s has no image with digest %s: run tetherctl images push for this release first", repo, digest)
	}
	// (3) The cluster stack's migrate task runs that digest.
	stack, err := readStack(ctx, a, cfg, "cluster")
	if err != nil {
		return rep, err
	}
	plan, err := migratePlanFrom(stack, digest)
	if err != nil {
		return rep, err
	}
	rep.Cluster, rep.LogGroup = plan.cluster, plan.logGroup
	prefix, err := checkTaskDefinition(ctx, a, plan, digest)
	if err != nil {
		return rep, err
	}

	// (4) The task runs to STOPPED with exit code 0.
	arn, err := startTask(ctx, a, plan, "tetherctl-migrate", nil)
	if err != nil {
		return rep, err
	}
	rep.TaskARN = arn
	rep.LogStream = taskLogStream(prefix, plan, arn)
	fmt.Fprintf(env.Stderr, "migrate task %s started on cluster %s (log: %s %s)\n", rep.TaskARN, plan.cluster, plan.logGroup, rep.LogStream)

	tail := &logTail{client: a.Logs(), group: plan.logGroup, stream: rep.LogStream, w: env.Stderr, prefix: "  migrate| "}
	task, err := waitTask(ctx, env, a, plan, rep.TaskARN, tail)
	if err != nil {
		return rep, err
	}
	code, err := migrateOutcome(task, plan.container)
	rep.ExitCode = code
	if err != nil {
		return rep, fmt.Errorf("%w; %s", err, tail.lastLines())
	}

	marker := migratedMarkerPath(cfg, digest)
	why := fmt.Sprintf("the migrate task %s of docsvc %s stopped with exit code 0", rep.TaskARN, digest)
	if err := putMarker(ctx, a, marker, digest, why); err != nil {
		return rep, fmt.Errorf("the migration succeeded, but its marker was not written: %w; run tetherctl migrate again (migrating an up-to-date schema changes nothing)", err)
	}
	rep.Marker = marker
	fmt.Fprintf(env.Stderr, "migrated: %s = %s\n", marker, digest)
	return rep, nil
}

// startTask runs one task of the cluster stack's migrate task definition,
// in its subnets and security group, with no public IP; command, when
// given, replaces the migrate container's command (docsvc's arguments).
func startTask(ctx context.Context, a *awsSession, plan migratePlan, startedBy string, command []string) (arn string, err error) {
	in := &ecs.RunTaskInput{
		Cluster:        aws.String(plan.cluster),
		TaskDefinition: aws.String(plan.taskDefinition),
		LaunchType:     ecstypes.LaunchTypeFargate,
		Count:          aws.Int32(1),
		StartedBy:      aws.String(startedBy),
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{
			Subnets:        plan.subnets,
			SecurityGroups: plan.securityGroups,
			AssignPublicIp: ecstypes.AssignPublicIpDisabled,
		}},
	}
	if command != nil {
		in.Overrides = &ecstypes.TaskOverride{ContainerOverrides: []ecstypes.ContainerOverride{{Name: aws.String(plan.container), Command: command}}}
	}
	rctx, cancel := callCtx(ctx)
	run, err := a.ECS().RunTask(rctx, in)
	cancel()
	if err != nil {
		return "", fmt.Errorf("starting a task of %s (ECS RunTask on cluster %s): %s", plan.taskDefinition, plan.cluster, describeAWSError(err))
	}
	if len(run.Tasks) == 0 {
		var why []string
		for _, f := range run.Failures {
			why = append(why, aws.ToString(f.Arn)+": "+aws.ToString(f.Reason)+" "+aws.ToString(f.Detail))
		}
		return "", fmt.Errorf("ECS did not start a task of %s on cluster %s: %s", plan.taskDefinition, plan.cluster, strings.Join(why, "; "))
	}
	return aws.ToString(run.Tasks[0].TaskArn), nil
}

// taskLogStream is the awslogs stream of the migrate container of task arn.
func taskLogStream(prefix string, plan migratePlan, arn string) string {
	return prefix + "/" + plan.container + "/" + arn[strings.LastIndex(arn, "/")+1:]
}

// checkReleaseSecrets refuses to migrate while a secret the service needs
// is missing or malformed: the license, and the AI key for key-based
// providers. A warning (a license in grace) is printed and passes.
func checkReleaseSecrets(ctx context.Context, env Env, a *awsSession, cfg *deployconfig.Config) error {
	sm := a.SecretsManager()
	for _, k := range usedSecretKinds(cfg) {
		if k.Name != kindLicense && k.Name != kindAI {
			continue
		}
		cctx, cancel := callCtx(ctx)
		st, err := describeSecret(cctx, sm, cfg, k)
		var v verdict
		if err == nil {
			v, err = secretVerdict(cctx, sm, cfg, st, env.Now())
		}
		cancel()
		if err != nil {
			return fmt.Errorf("checking the %s secret before migrating: %w", k.Name, err)
		}
		switch v.Status {
		case statusFail:
			return fmt.Errorf("the %s secret (%s) is not ready, so nothing was migrated: %s. Fix: %s", k.Name, st.SecretName, v.Detail, v.Fix)
		case statusWarn:
			fmt.Fprintf(env.Stderr, "warning: the %s secret (%s): %s. Fix: %s\n", k.Name, st.SecretName, v.Detail, v.Fix)
		}
	}
	return nil
}

// migratePlan is what the cluster stack says about the migrate task.
type migratePlan struct {
	cluster, taskDefinition, logGroup, container string
	subnets, securityGroups                      []string
	// job is the tetherctl command a one-off docsvc task runs for (tokens,
	// jobs), for its messages; empty for the migration itself.
	job string
}

// noun names the task in messages: "migrate", or the command's.
func (p migratePlan) noun() string {
	if p.job == "" {
		return "migrate"
	}
	return "tetherctl " + p.job
}

// migratePlanFrom reads the cluster stack's outputs and refuses a stack
// whose MigrateImageDigest is not the digest to migrate to.
func migratePlanFrom(stack stackInfo, digest string) (migratePlan, error) {
	if got := stack.Parameters["MigrateImageDigest"]; got != digest {
		if got == "" {
			got = "not set"
		}
		return migratePlan{}, fmt.Errorf("the %s stack's MigrateImageDigest is %s, not %s: run tetherctl deploy, which moves the cluster stack to the release's image before migrating", stack.Name, got, digest)
	}
	var p migratePlan
	var subnets, group string
	for _, o := range []struct {
		key string
		dst *string
	}{
		{"ClusterName", &p.cluster}, {"MigrateTaskDefinitionArn", &p.taskDefinition}, {"MigrateSecurityGroupId", &group},
		{"MigrateSubnets", &subnets}, {"MigrateLogGroupName", &p.logGroup}, {"MigrateContainerName", &p.container},
	} {
		v, err := stack.output(o.key)
		if err != nil {
			return p, err
		}
		*o.dst = v
	}
	p.securityGroups = []string{group}
	for _, s := range strings.Split(subnets, ",") {
		if s = strings.TrimSpace(s); s != "" {
			p.subnets = append(p.subnets, s)
		}
	}
	if len(p.subnets) == 0 {
		return p, fmt.Errorf("the %s stack's MigrateSubnets output names no subnet: run tetherctl deploy", stack.Name)
	}
	return p, nil
}

// checkTaskDefinition confirms the migrate task definition runs exactly
// this digest in its migrate container, and returns the container's
// awslogs stream prefix.
func checkTaskDefinition(ctx context.Context, a *awsSession, p migratePlan, digest string) (streamPrefix string, err error) {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.ECS().DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(p.taskDefinition)})
	if err != nil {
		return "", fmt.Errorf("reading the migrate task definition %s (ECS DescribeTaskDefinition): %s", p.taskDefinition, describeAWSError(err))
	}
	for _, c := range out.TaskDefinition.ContainerDefinitions {
		if aws.ToString(c.Name) != p.container {
			continue
		}
		if img := aws.ToString(c.Image); !strings.HasSuffix(img, "@"+digest) {
			return "", fmt.Errorf("the migrate task definition %s runs %s, not the image with digest %s: run tetherctl deploy", p.taskDefinition, img, digest)
		}
		if c.LogConfiguration == nil || c.LogConfiguration.LogDriver != ecstypes.LogDriverAwslogs {
			return "", fmt.Errorf("the migrate task definition %s does not log to CloudWatch (awslogs): run tetherctl deploy", p.taskDefinition)
		}
		prefix := c.LogConfiguration.Options["awslogs-stream-prefix"]
		if prefix == "" {
			return "", fmt.Errorf("the migrate task definition %s sets no awslogs-stream-prefix, so its log cannot be found: run tetherctl deploy", p.taskDefinition)
		}
		return prefix, nil
	}
	return "", fmt.Errorf("the migrate task definition %s has no container named %s: run tetherctl deploy", p.taskDefinition, p.container)
}

// waitTask polls the task until it is STOPPED or ctx ends, printing each
// change of state and the task's log lines.
func waitTask(ctx context.Context, env Env, a *awsSession, p migratePlan, arn string, tail *logTail) (ecstypes.Task, error) {
	ecsc := a.ECS()
	state := ""
	for delay := time.Duration(0); ; {
		if err := sleep(ctx, delay); err != nil {
			return ecstypes.Task{}, migrateTimedOut(p, arn, tail, state)
		}
		delay = nextPoll(delay)
		cctx, cancel := callCtx(ctx)
		out, err := ecsc.DescribeTasks(cctx, &ecs.DescribeTasksInput{Cluster: aws.String(p.cluster), Tasks: []string{arn}})
		cancel()
		switch {
		case ctx.Err() != nil:
			return ecstypes.Task{}, migrateTimedOut(p, arn, tail, state)
		case err != nil:
			return ecstypes.Task{}, fmt.Errorf("following the %s task %s (ECS DescribeTasks): %s; it may still be running: check it in the ECS console (cluster %s) before running %s again",
				p.noun(), arn, describeAWSError(err), p.cluster, strings.Replace(p.noun(), "migrate", "tetherctl migrate", 1))
		case len(out.Tasks) == 0:
			return ecstypes.Task{}, fmt.Errorf("following the %s task %s (ECS DescribeTasks): ECS does not know it (stopped tasks are forgotten after about an hour); check its log in %s %s", p.noun(), arn, tail.group, tail.stream)
		}
		t := out.Tasks[0]
		if s := aws.ToString(t.LastStatus); s != state {
			fmt.Fprintf(env.Stderr, "%s task: %s\n", p.noun(), s)
			state = s
		}
		if err := tail.poll(ctx); err != nil {
			fmt.Fprintf(env.Stderr, "warning: %v\n", err)
		}
		if state == "STOPPED" {
			// CloudWatch may receive the last lines after ECS reports the
			// stop; read once more.
			if err := tail.poll(ctx); err != nil {
				fmt.Fprintf(env.Stderr, "warning: %v\n", err)
			}
			return t, nil
		}
	}
}

func migrateTimedOut(p migratePlan, arn string, tail *logTail, state string) error {
	if state == "" {
		state = "not yet reported"
	}
	if p.job != "" {
		return fmt.Errorf("the %s task %s did not stop in time (last state: %s), so what it did is not known here. It may still be running: check it in the ECS console (cluster %s) and its log in CloudWatch (%s, stream %s)",
			p.noun(), arn, state, p.cluster, tail.group, tail.stream)
	}
	return fmt.Errorf("the migrate task %s did not stop in time (last state: %s), so nothing was recorded. It may still be running: check it in the ECS console (cluster %s) and its log in CloudWatch (%s, stream %s); when it has stopped, run tetherctl migrate again (its --timeout gives it longer)",
		arn, state, p.cluster, tail.group, tail.stream)
}

// migrateOutcome judges a STOPPED migrate task: its container must have
// exited with code 0. Anything else (another exit code, no exit code
// because the container never ran, no such container) is a failure that
// says why.
func migrateOutcome(t ecstypes.Task, container string) (*int32, error) {
	arn := aws.ToString(t.TaskArn)
	if s := aws.ToString(t.LastStatus); s != "STOPPED" {
		return nil, fmt.Errorf("the migrate task %s is %s, not STOPPED", arn, s)
	}
	reason := aws.ToString(t.StoppedReason)
	if t.StopCode != "" {
		reason = string(t.StopCode) + ": " + reason
	}
	for _, c := range t.Containers {
		if aws.ToString(c.Name) != container {
			continue
		}
		switch {
		case c.ExitCode == nil:
			why := aws.ToString(c.Reason)
			if why == "" {
				why = "none given"
			}
			return nil, fmt.Errorf("the migrate task %s stopped without the %s container exiting (task: %s; container: %s): the migration did not run, or did not finish; nothing was recorded",
				arn, container, orNone(reason), why)
		case *c.ExitCode != 0:
			return c.ExitCode, fmt.Errorf("the migration failed: the %s container of task %s exited with code %d (task stopped: %s); nothing was recorded",
				container, arn, *c.ExitCode, orNone(reason))
		}
		return c.ExitCode, nil
	}
	return nil, errors.New("the migrate task " + arn + " has no container named " + container + ": run tetherctl deploy")
}

func orNone(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}

package ctl

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/tetherhq/tether/internal/deadletter"
	"github.com/tetherhq/tether/internal/deployconfig"
)

// workerTaskPlan is a one-off task of the worker service as it runs now:
// its task definition (docsvc's image, the worker's role, which may read
// and move dead letters), its subnets and security groups, and its
// container's log. Its role and network are what reach the queues and the
// database, so docsvc jobs runs there.
func workerTaskPlan(ctx context.Context, a *awsSession, dc *deployconfig.Config) (migratePlan, string, error) {
	stack, err := readStack(ctx, a, dc, "cluster")
	if err != nil {
		return migratePlan{}, "", err
	}
	var p migratePlan
	if p.cluster, err = stack.output("ClusterName"); err != nil {
		return p, "", err
	}
	service := ecsServiceName(dc, "worker")
	cctx, cancel := callCtx(ctx)
	out, err := a.ECS().DescribeServices(cctx, &ecs.DescribeServicesInput{Cluster: aws.String(p.cluster), Services: []string{service}})
	cancel()
	if err != nil {
		return p, "", fmt.Errorf("reading the worker service %s (ECS DescribeServices on cluster %s): %s", service, p.cluster, describeAWSError(err))
	}
	if len(out.Services) == 0 || aws.ToString(out.Services[0].Status) != "ACTIVE" {
		return p, "", fmt.Errorf("the worker service %s is not running on cluster %s: run tetherctl deploy", service, p.cluster)
	}
	svc := out.Services[0]
	if svc.NetworkConfiguration == nil || svc.NetworkConfiguration.AwsvpcConfiguration == nil || len(svc.NetworkConfiguration.AwsvpcConfiguration.Subnets) == 0 {
		return p, "", fmt.Errorf("the worker service %s has no awsvpc subnets to run a task in: run tetherctl deploy", service)
	}
	p.subnets = svc.NetworkConfiguration.AwsvpcConfiguration.Subnets
	p.securityGroups = svc.NetworkConfiguration.AwsvpcConfiguration.SecurityGroups
	p.taskDefinition = aws.ToString(svc.TaskDefinition)
	cctx, cancel = callCtx(ctx)
	td, err := a.ECS().DescribeTaskDefinition(cctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(p.taskDefinition)})
	cancel()
	if err != nil {
		return p, "", fmt.Errorf("reading the worker's task definition %s (ECS DescribeTaskDefinition): %s", p.taskDefinition, describeAWSError(err))
	}
	for _, c := range td.TaskDefinition.ContainerDefinitions {
		if aws.ToString(c.Name) != "worker" {
			continue
		}
		if c.LogConfiguration == nil || c.LogConfiguration.LogDriver != ecstypes.LogDriverAwslogs ||
			c.LogConfiguration.Options["awslogs-group"] == "" || c.LogConfiguration.Options["awslogs-stream-prefix"] == "" {
			return p, "", fmt.Errorf("the worker's task definition %s does not log to CloudWatch with a stream prefix (awslogs), so the task's answer cannot be read: run tetherctl deploy", p.taskDefinition)
		}
		p.container, p.logGroup = "worker", c.LogConfiguration.Options["awslogs-group"]
		return p, c.LogConfiguration.Options["awslogs-stream-prefix"], nil
	}
	return p, "", fmt.Errorf("the worker's task definition %s has no container named worker: run tetherctl deploy", p.taskDefinition)
}

// jobsRemote runs docsvc jobs as a one-off task of the worker's task
// definition and prints its answer, read back from the task's log. A
// redrive without --yes first runs dead-letters, shows them and asks.
func jobsRemote(ctx context.Context, env Env, df deployFlags, sub string, docsvcArgs []string, yes bool) error {
	dc, err := df.load()
	if err != nil {
		return err
	}
	sess, err := connect(ctx, env, dc, df)
	if err != nil {
		return fmt.Errorf("tetherctl jobs %s: %w", sub, err)
	}
	plan, prefix, err := workerTaskPlan(ctx, sess, dc)
	if err != nil {
		return fmt.Errorf("tetherctl jobs %s: %w", sub, err)
	}
	plan.job = "jobs"
	run := func(args []string, prefixJSON string, v any) error {
		lines, err := runOneOff(ctx, env, sess, plan, prefix, "tetherctl-jobs", args, io.Discard)
		if err != nil {
			return fmt.Errorf("docsvc %s: %w", strings.Join(args[:2], " "), err)
		}
		if !jsonFromLog(lines, prefixJSON, v) {
			return fmt.Errorf("docsvc %s exited 0 but its log holds no answer (a docsvc release without 'docsvc jobs'?)", strings.Join(args[:2], " "))
		}
		return nil
	}
	args := append(docsvcArgs[:2:2], "--output", "json")
	args = append(args, docsvcArgs[4:]...) // after "jobs SUB --output X"
	if sub == "dead-letters" {
		var list deadletter.List
		if err := run(args, `{"dead_letters":`, &list); err != nil {
			return fmt.Errorf("tetherctl jobs dead-letters: %w", err)
		}
		return deadletter.WriteList(env.Stdout, list.DeadLetters, df.output)
	}
	if !yes {
		var list deadletter.List
		if err := run([]string{"jobs", "dead-letters", "--output", "json", "--max", "1000"}, `{"dead_letters":`, &list); err != nil {
			return fmt.Errorf("tetherctl jobs redrive: %w", err)
		}
		if err := deadletter.WriteList(env.Stderr, list.DeadLetters, "text"); err != nil {
			return err
		}
		what := "the dead-lettered jobs above"
		if ids := args[4:]; len(ids) > 0 && ids[0] != "--all" {
			what = "the dead-lettered jobs of " + strings.Join(ids, ", ") + " (above)"
		}
		if err := confirm(env, dc, []string{"send " + what + " back to the jobs queue, each document back to queued, by running docsvc " + strings.Join(args, " ") + " as a one-off task of the " + plan.taskDefinition + " task definition"}, false); err != nil {
			return fmt.Errorf("tetherctl jobs redrive: %w", err)
		}
	}
	var done deadletter.Redriven
	if err := run(args, `{"redriven":`, &done); err != nil {
		return fmt.Errorf("tetherctl jobs redrive: %w", err)
	}
	return deadletter.WriteRedriven(env.Stdout, done.Redriven, df.output)
}

package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/tetherhq/tether/internal/awstest"
)

const workerLogGroup = "/tether/acme-docs/worker"

// runWorkerService creates the worker service as the services stack runs
// it: its task definition (container worker, awslogs with prefix worker)
// in the cluster stack's cluster, subnets and a security group.
func runWorkerService(t *testing.T, f *migrateFixture) (subnets, groups []string) {
	t.Helper()
	ctx := context.Background()
	cfn := cloudformation.NewFromConfig(f.srv.AWSConfig())
	resource := func(logical string) string {
		out, err := cfn.DescribeStackResource(ctx, &cloudformation.DescribeStackResourceInput{StackName: aws.String("acme-docs-cluster"), LogicalResourceId: aws.String(logical)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.StackResourceDetail.PhysicalResourceId)
	}
	subnets, groups = []string{resource("SubnetA"), resource("SubnetB")}, []string{resource("MigrateS")}
	if _, err := cloudwatchlogs.NewFromConfig(f.srv.AWSConfig()).CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(workerLogGroup)}); err != nil {
		t.Fatal(err)
	}
	c := ecs.NewFromConfig(f.srv.AWSConfig())
	// No NetworkMode or compatibilities (moto takes FARGATE for awsvpc):
	// moto 5.2's RunTask fails (AttributeError: 'NetworkInterface' object
	// has no attribute 'private_dns_name') for a task definition whose
	// network mode is awsvpc. The RunTask
	// request still carries the awsvpc configuration, which is what is
	// checked.
	td, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("tether-acme-docs-worker"), Cpu: aws.String("512"), Memory: aws.String("1024"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("worker"), Image: aws.String(ecrHost + "/acme-docs/docsvc@" + f.digest), Memory: aws.Int32(1024),
			Command: []string{"worker"},
			LogConfiguration: &ecstypes.LogConfiguration{LogDriver: ecstypes.LogDriverAwslogs, Options: map[string]string{
				"awslogs-group": workerLogGroup, "awslogs-region": awstest.Region, "awslogs-stream-prefix": "worker"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateService(ctx, &ecs.CreateServiceInput{
		Cluster: aws.String(clusterName), ServiceName: aws.String("tether-acme-docs-worker"), TaskDefinition: td.TaskDefinition.TaskDefinitionArn,
		DesiredCount: aws.Int32(0), LaunchType: ecstypes.LaunchTypeFargate,
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{Subnets: subnets, SecurityGroups: groups}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return subnets, groups
}

// runTaskRequest is the one RunTask call made.
type runTaskRequest struct {
	TaskDefinition, StartedBy string
	NetworkConfiguration      struct {
		AwsvpcConfiguration struct{ Subnets, SecurityGroups []string }
	}
	Overrides struct {
		ContainerOverrides []struct {
			Name    string
			Command []string
		}
	}
}

func runTaskRequests(t *testing.T, srv *awstest.Server) []runTaskRequest {
	t.Helper()
	var out []runTaskRequest
	for _, r := range srv.Requests() {
		if strings.HasSuffix(r.Target, ".RunTask") {
			var run runTaskRequest
			if err := json.Unmarshal(r.Body, &run); err != nil {
				t.Fatal(err)
			}
			out = append(out, run)
		}
	}
	return out
}

// tetherctl jobs --config runs docsvc jobs as a one-off task of the worker
// service's task definition, in its subnets and security groups, and reads
// docsvc's JSON answer back from the task's log (moto runs no container:
// the test writes the log lines docsvc would and stops the task).
func TestJobsOnAWS(t *testing.T) {
	t.Parallel()
	f := newMigrateFixture(t)
	subnets, groups := runWorkerService(t, f)
	holdTasks(t, f.srv)
	config := writeDeploymentYAML(t, f.dc)
	const doc = "doc_0123456789abcdef0123456789"
	answer := `{"dead_letters":[{"message_id":"5fa85f64-5717-4562-b3fc-2c963f66afa6","document_id":"` + doc + `","reason":"worker_stopped","receive_count":5,"sent_at":"2026-12-01T10:00:00Z"}]}`
	done := finishTaskLogging(releaseContext(t), f.srv, workerLogGroup, "worker/worker/", []string{`{"level":"INFO","msg":"starting"}`, answer})
	var stdout, stderr bytes.Buffer
	if err := runCmd(t, f.srv, Env{Stdout: &stdout, Stderr: &stderr}, "jobs", "dead-letters", "--config", config); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if out := stdout.String(); !strings.Contains(out, doc) || !strings.Contains(out, "worker_stopped") || !strings.Contains(out, "5fa85f64-5717-4562-b3fc-2c963f66afa6") {
		t.Fatalf("jobs dead-letters --config printed %q", out)
	}
	runs := runTaskRequests(t, f.srv)
	if len(runs) != 1 {
		t.Fatalf("%d RunTask calls, want 1", len(runs))
	}
	r := runs[0]
	if o := r.Overrides.ContainerOverrides; len(o) != 1 || o[0].Name != "worker" || !slices.Equal(o[0].Command, []string{"jobs", "dead-letters", "--output", "json", "--max", "100"}) ||
		r.StartedBy != "tetherctl-jobs" || !strings.Contains(r.TaskDefinition, "tether-acme-docs-worker") ||
		!slices.Equal(r.NetworkConfiguration.AwsvpcConfiguration.Subnets, subnets) || !slices.Equal(r.NetworkConfiguration.AwsvpcConfiguration.SecurityGroups, groups) {
		t.Fatalf("RunTask = %+v; want docsvc jobs dead-letters in the worker's task definition, subnets and groups", r)
	}

	// Redrive with --yes: one task, its answer printed as JSON.
	done = finishTaskLogging(releaseContext(t), f.srv, workerLogGroup, "worker/worker/", []string{`{"redriven":[{"message_id":"5fa85f64-5717-4562-b3fc-2c963f66afa6","document_id":"` + doc + `","reason":"worker_stopped","receive_count":5,"sent_at":"2026-12-01T10:00:00Z"}]}`})
	stdout.Reset()
	if err := runCmd(t, f.srv, Env{Stdout: &stdout, Stderr: &stderr}, "jobs", "redrive", doc, "--config", config, "--yes", "--output", "json"); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), `"redriven":[{"message_id"`) {
		t.Fatalf("jobs redrive --output json printed %q", stdout.String())
	}
	if runs = runTaskRequests(t, f.srv); len(runs) != 2 || !slices.Equal(runs[1].Overrides.ContainerOverrides[0].Command, []string{"jobs", "redrive", "--output", "json", doc}) {
		t.Fatalf("redrive's RunTask = %+v", runs[len(runs)-1])
	}
}

// A deployment without the worker service says what to do.
func TestJobsOnAWSWithoutWorker(t *testing.T) {
	t.Parallel()
	f := newMigrateFixture(t)
	config := writeDeploymentYAML(t, f.dc)
	var stdout, stderr bytes.Buffer
	err := runCmd(t, f.srv, Env{Stdout: &stdout, Stderr: &stderr}, "jobs", "dead-letters", "--config", config)
	if err == nil || !strings.Contains(err.Error(), "tether-acme-docs-worker is not running") || !strings.Contains(err.Error(), "tetherctl deploy") {
		t.Fatalf("jobs dead-letters with no worker service = %v", err)
	}
}

// The answer is found among the task's log lines even when awslogs split
// it into several events, and nothing else is taken for it.
func FuzzJSONFromLog(f *testing.F) {
	f.Add(`{"level":"INFO"}`, `{"dead_letters":[{"message_id":"a","reason":"worker_stopped"`, `,"receive_count":1}]}`)
	f.Add(`{"dead_letters":`, `null}`, ``)
	f.Fuzz(func(t *testing.T, a, b, c string) {
		var list struct {
			DeadLetters []map[string]any `json:"dead_letters"`
		}
		if jsonFromLog([]string{a, b, c}, `{"dead_letters":`, &list) {
			for _, l := range []string{a, b, c} {
				if strings.HasPrefix(l, `{"dead_letters":`) {
					return
				}
			}
			t.Fatalf("found an answer in lines none of which starts it: %q %q %q", a, b, c)
		}
	})
}

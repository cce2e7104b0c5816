package ctl

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/deployconfig"
)

// What moto's ECS does with a migrate task, and how these tests use it:
//   - RunTask (FARGATE, awsvpc) makes a task, but nothing runs: no
//     container starts and nothing is written to CloudWatch Logs.
//   - A task's state advances through moto's state manager (ecs::task:
//     RUNNING ... STOPPED); by default it is STOPPED at the first
//     DescribeTasks. The tests set the manual progression so a task stays
//     RUNNING, write its log lines as the awslogs driver would, and stop it
//     with StopTask, as the container's exit stops it on AWS.
//   - RunTask fails (a Python TypeError) for a container definition without
//     memory or memoryReservation, which Fargate does not need; the test's
//     task definition sets memory.
//   - Every container's exitCode is 0 (moto's ecs Container hard-codes
//     it), and never absent. A failed migration (exit code 1) and a task
//     that stopped before its container ran (no exit code) are therefore
//     tested on ecs types.Task values, in TestMigrateOutcome.

// migrateFixture is a deployment whose images and cluster stacks exist in
// moto, whose docsvc image is in ECR and whose license is set.
type migrateFixture struct {
	srv    *awstest.Server
	a      *awsSession
	dc     *deployconfig.Config
	priv   ed25519.PrivateKey
	digest string
}

const (
	clusterName     = "tether-acme-docs"
	migrateLogGroup = "/tether/acme-docs/migrate"
)

func newMigrateFixture(t *testing.T) *migrateFixture {
	t.Helper()
	f := &migrateFixture{srv: awstest.Start(t)}
	f.dc, f.priv = testDeployment(t, deployconfig.ImagesVendor)
	f.a = testSession(t, f.srv, f.dc)
	createStack(t, f.a, "acme-docs-images", imagesStackTemplate(f.dc, nil), nil)
	f.digest = f.putDocsvc(t)
	f.srv.CreateSecret(t, f.dc.SecretName(kindLicense), string(issue(t, f.priv, time.Now().AddDate(1, 0, 0), "stable")))
	createStack(t, f.a, "acme-docs-cluster", clusterStackTemplate(), map[string]string{"MigrateImageDigest": f.digest})
	return f
}

// putDocsvc records a docsvc image in moto's ECR and returns its digest.
func (f *migrateFixture) putDocsvc(t *testing.T) string {
	t.Helper()
	d, _, _ := recordInECR(t, f.srv, "acme-docs/docsvc", "")
	return d
}

// clusterStackTemplate is the cluster stack's migrate task and outputs,
// as the contract names them.
func clusterStackTemplate() map[string]any {
	ref := func(n string) map[string]any { return map[string]any{"Ref": n} }
	subnet := func(cidr, az string) map[string]any {
		return map[string]any{"Type": "AWS::EC2::Subnet", "Properties": map[string]any{"VpcId": ref("Vpc"), "CidrBlock": cidr, "AvailabilityZone": az}}
	}
	return map[string]any{
		"Parameters": map[string]any{"MigrateImageDigest": map[string]any{"Type": "String"}},
		"Resources": map[string]any{
			"Vpc":      map[string]any{"Type": "AWS::EC2::VPC", "Properties": map[string]any{"CidrBlock": "10.0.0.0/16"}},
			"SubnetA":  subnet("10.0.1.0/24", "us-east-1a"),
			"SubnetB":  subnet("10.0.2.0/24", "us-east-1b"),
			"MigrateS": map[string]any{"Type": "AWS::EC2::SecurityGroup", "Properties": map[string]any{"GroupDescription": "migrate", "VpcId": ref("Vpc")}},
			"Cluster":  map[string]any{"Type": "AWS::ECS::Cluster", "Properties": map[string]any{"ClusterName": clusterName}},
			"Logs":     map[string]any{"Type": "AWS::Logs::LogGroup", "Properties": map[string]any{"LogGroupName": migrateLogGroup}},
			"MigrateTask": map[string]any{"Type": "AWS::ECS::TaskDefinition", "Properties": map[string]any{
				"Family": "tether-acme-docs-migrate", "NetworkMode": "awsvpc", "RequiresCompatibilities": []string{"FARGATE"},
				"Cpu": "256", "Memory": "512",
				"ContainerDefinitions": []any{map[string]any{
					"Name":    "migrate",
					"Image":   map[string]any{"Fn::Join": []any{"", []any{ecrHost + "/acme-docs/docsvc@", ref("MigrateImageDigest")}}},
					"Command": []string{"migrate"},
					// moto's RunTask fails on a container without memory or
					// memoryReservation; Fargate takes the task's (above).
					"Memory": 512,
					"LogConfiguration": map[string]any{"LogDriver": "awslogs", "Options": map[string]any{
						"awslogs-group": migrateLogGroup, "awslogs-region": awstest.Region, "awslogs-stream-prefix": "migrate"}},
				}},
			}},
		},
		"Outputs": map[string]any{
			"ClusterName":              map[string]any{"Value": clusterName},
			"MigrateTaskDefinitionArn": map[string]any{"Value": ref("MigrateTask")},
			"MigrateSecurityGroupId":   map[string]any{"Value": map[string]any{"Fn::GetAtt": []string{"MigrateS", "GroupId"}}},
			"MigrateSubnets":           map[string]any{"Value": map[string]any{"Fn::Join": []any{",", []any{ref("SubnetA"), ref("SubnetB")}}}},
			"MigrateLogGroupName":      map[string]any{"Value": migrateLogGroup},
			"MigrateContainerName":     map[string]any{"Value": "migrate"},
		},
	}
}

// holdTasks makes moto keep ECS tasks RUNNING until StopTask, for the
// rest of the test (moto's state manager, manual progression).
func holdTasks(t *testing.T, srv *awstest.Server) {
	t.Helper()
	post := func(path string, body any) {
		b, _ := json.Marshal(body)
		resp, err := http.Post(srv.Endpoint()+"/moto-api/state-manager/"+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
			t.Fatalf("moto state manager %s: %s", path, resp.Status)
		}
	}
	post("set-transition", map[string]any{"model_name": "ecs::task", "transition": map[string]any{"progression": "manual", "times": 1 << 30}})
	t.Cleanup(func() { post("unset-transition", map[string]any{"model_name": "ecs::task"}) })
}

// finishTask plays the migrate container: once the task exists it writes
// lines to the task's awslogs stream, then stops the task.
func finishTask(ctx context.Context, t *testing.T, srv *awstest.Server, lines []string) <-chan error {
	return finishTaskLogging(ctx, srv, migrateLogGroup, "migrate/migrate/", lines)
}

// finishTaskLogging plays a task's container whose awslogs stream is
// streamPrefix followed by the task's ID, in group.
func finishTaskLogging(ctx context.Context, srv *awstest.Server, group, streamPrefix string, lines []string) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			ecsc := ecs.NewFromConfig(srv.AWSConfig())
			logs := cloudwatchlogs.NewFromConfig(srv.AWSConfig())
			for {
				out, err := ecsc.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(clusterName), DesiredStatus: ecstypes.DesiredStatusRunning})
				if err != nil {
					return err
				}
				if len(out.TaskArns) > 0 {
					arn := out.TaskArns[0]
					stream := streamPrefix + arn[strings.LastIndex(arn, "/")+1:]
					if _, err := logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream)}); err != nil {
						return err
					}
					var events []logtypes.InputLogEvent
					for _, l := range lines {
						events = append(events, logtypes.InputLogEvent{Message: aws.String(l), Timestamp: aws.Int64(time.Now().UnixMilli())})
					}
					if _, err := logs.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream), LogEvents: events}); err != nil {
						return err
					}
					_, err := ecsc.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(clusterName), Task: aws.String(arn), Reason: aws.String("Essential container in task exited")})
					return err
				}
				if err := sleep(ctx, 50*time.Millisecond); err != nil {
					return err
				}
			}
		}()
	}()
	return done
}

func (f *migrateFixture) noMarker(t *testing.T) {
	t.Helper()
	if p, ok := parameter(t, f.a, migratedMarkerPath(f.dc, f.digest)); ok {
		t.Errorf("the migrated marker was written: %s", aws.ToString(p.Value))
	}
	if called(f.srv, ".PutParameter") {
		t.Error("PutParameter was called")
	}
}

func TestRunMigration(t *testing.T) {
	t.Parallel()
	f := newMigrateFixture(t)
	holdTasks(t, f.srv)
	ctx := releaseContext(t)
	done := finishTask(ctx, t, f.srv, []string{"goose: applying 0007_tags.sql", "migrated to version 7"})
	env, _, stderr := testEnv()
	rep, err := runMigrationReport(ctx, env, f.a, f.dc, f.digest)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	marker := "/tether/acme-docs/migrated/sha256-" + strings.TrimPrefix(f.digest, "sha256:")
	p, ok := parameter(t, f.a, marker)
	if !ok || aws.ToString(p.Value) != f.digest || p.Type != "String" {
		t.Fatalf("marker: %v %+v", ok, p)
	}
	if rep.Marker != marker || rep.ExitCode == nil || *rep.ExitCode != 0 || !strings.HasPrefix(rep.TaskARN, "arn:aws:ecs:") ||
		!strings.HasPrefix(rep.LogStream, "migrate/migrate/") {
		t.Errorf("report %+v", rep)
	}
	for _, want := range []string{"migrate task: RUNNING", "migrate task: STOPPED", "  migrate| goose: applying 0007_tags.sql\n  migrate| migrated to version 7\n"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	var run struct {
		Cluster, TaskDefinition, LaunchType string
		NetworkConfiguration                struct {
			AwsvpcConfiguration struct {
				Subnets, SecurityGroups []string
				AssignPublicIp          string
			}
		}
	}
	for _, r := range f.srv.Requests() {
		if strings.HasSuffix(r.Target, ".RunTask") {
			if err := json.Unmarshal(r.Body, &run); err != nil {
				t.Fatal(err)
			}
		}
	}
	vpc := run.NetworkConfiguration.AwsvpcConfiguration
	if run.Cluster != clusterName || !strings.Contains(run.TaskDefinition, "task-definition/tether-acme-docs-migrate") || run.LaunchType != "FARGATE" ||
		len(vpc.Subnets) != 2 || len(vpc.SecurityGroups) != 1 || !strings.HasPrefix(vpc.SecurityGroups[0], "sg-") || vpc.AssignPublicIp != "DISABLED" {
		t.Errorf("RunTask sent %+v", run)
	}
}

// Each refusal happens before the task runs and writes no marker.
func TestRunMigrationRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(*testing.T, *migrateFixture) string // returns the digest to migrate to
		want  []string
	}{
		{"the cluster stack names another image", func(t *testing.T, f *migrateFixture) string {
			return f.putDocsvc(t)
		}, []string{"the acme-docs-cluster stack's MigrateImageDigest is sha256:", ": run tetherctl deploy"}},
		{"the image is not in ECR", func(t *testing.T, f *migrateFixture) string {
			return "sha256:" + strings.Repeat("e", 64)
		}, []string{"ECR repository acme-docs/docsvc has no image with digest sha256:eeee", "tetherctl images push"}},
		{"the license is not a license", func(t *testing.T, f *migrateFixture) string {
			if _, err := f.a.SecretsManager().PutSecretValue(context.Background(), secretValue(f.dc.SecretName(kindLicense), "{not a license}")); err != nil {
				t.Fatal(err)
			}
			return f.digest
		}, []string{"the license secret (tether/acme-docs/license) is not ready", "tetherctl secrets set license"}},
		{"the AI key is missing", func(t *testing.T, f *migrateFixture) string {
			f.dc.AI.Provider = deployconfig.AIOpenAI
			f.dc.AI.Model = "gpt-4o-mini"
			return f.digest
		}, []string{"the ai secret (tether/acme-docs/ai) is not ready", "does not exist", "tetherctl secrets set ai"}},
		{"no cluster stack", func(t *testing.T, f *migrateFixture) string {
			f.dc.Name = "other"
			f.srv.CreateSecret(t, f.dc.SecretName(kindLicense), string(issue(t, f.priv, time.Now().AddDate(1, 0, 0), "stable")))
			if _, err := ecr.NewFromConfig(f.srv.AWSConfig()).CreateRepository(context.Background(), &ecr.CreateRepositoryInput{RepositoryName: aws.String("other/docsvc")}); err != nil {
				t.Fatal(err)
			}
			putECRImage(t, f.srv, "other/docsvc", "", []byte(`{"schemaVersion":2,"layers":[]}`), "application/vnd.oci.image.manifest.v1+json", f.digest)
			return f.digest
		}, []string{"the other-cluster stack does not exist in account " + awstest.Account + ", us-east-1: deploy it first (tetherctl deploy)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newMigrateFixture(t)
			digest := tc.setup(t, f)
			env, _, _ := testEnv()
			err := runMigration(releaseContext(t), env, f.a, f.dc, digest)
			for _, want := range tc.want {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want it to contain %q", err, want)
				}
			}
			if called(f.srv, ".RunTask") {
				t.Error("the migrate task was started")
			}
			f.noMarker(t)
		})
	}
}

// A task that does not stop in time is reported with what to check, and
// records nothing.
func TestRunMigrationTimesOut(t *testing.T) {
	t.Parallel()
	f := newMigrateFixture(t)
	holdTasks(t, f.srv)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	env, _, stderr := testEnv()
	err := runMigration(ctx, env, f.a, f.dc, f.digest)
	for _, want := range []string{"did not stop in time (last state: RUNNING)", "cluster " + clusterName, migrateLogGroup + ", stream migrate/migrate/", "--timeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q\n%s", err, want, stderr)
		}
	}
	f.noMarker(t)
}

func TestMigrateOutcome(t *testing.T) {
	t.Parallel()
	arn := "arn:aws:ecs:us-east-1:123456789012:task/tether-acme-docs/0123456789abcdef"
	task := func(status string, stopCode ecstypes.TaskStopCode, reason string, containers ...ecstypes.Container) ecstypes.Task {
		return ecstypes.Task{TaskArn: aws.String(arn), LastStatus: aws.String(status), StopCode: stopCode, StoppedReason: aws.String(reason), Containers: containers}
	}
	migrate := func(code *int32, reason string) ecstypes.Container {
		c := ecstypes.Container{Name: aws.String("migrate"), ExitCode: code}
		if reason != "" {
			c.Reason = aws.String(reason)
		}
		return c
	}
	for _, tc := range []struct {
		name     string
		task     ecstypes.Task
		wantCode *int32
		wantErr  []string
	}{
		{"exit 0", task("STOPPED", ecstypes.TaskStopCodeEssentialContainerExited, "Essential container in task exited", migrate(aws.Int32(0), "")), aws.Int32(0), nil},
		{"exit 1", task("STOPPED", ecstypes.TaskStopCodeEssentialContainerExited, "Essential container in task exited", migrate(aws.Int32(1), "")), aws.Int32(1),
			[]string{"the migration failed", "exited with code 1", "EssentialContainerExited: Essential container in task exited", "nothing was recorded"}},
		{"no exit code", task("STOPPED", ecstypes.TaskStopCodeTaskFailedToStart, "CannotPullContainerError: pull access denied", migrate(nil, "CannotPullContainerError")), nil,
			[]string{"stopped without the migrate container exiting", "TaskFailedToStart: CannotPullContainerError: pull access denied", "container: CannotPullContainerError"}},
		{"no such container", task("STOPPED", "", "", ecstypes.Container{Name: aws.String("other"), ExitCode: aws.Int32(0)}), nil,
			[]string{"has no container named migrate"}},
		{"not stopped", task("RUNNING", "", "", migrate(nil, "")), nil, []string{"is RUNNING, not STOPPED"}},
	} {
		code, err := migrateOutcome(tc.task, "migrate")
		if (code == nil) != (tc.wantCode == nil) || (code != nil && *code != *tc.wantCode) {
			t.Errorf("%s: code %v", tc.name, code)
		}
		if len(tc.wantErr) == 0 && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		for _, want := range tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, want)
			}
		}
	}
}

func secretValue(id, value string) *secretsmanager.PutSecretValueInput {
	return &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(value)}
}

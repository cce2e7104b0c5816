package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/deployconfig"
)

// upgradeWorld is a deployment in moto reduced to what an upgrade touches:
// the data stack's database (a real RDS instance in moto, for the
// snapshot), the cluster stack's MigrateImageDigest and the services
// stack's DocsvcImage/AgentImage, each parameter copied into an SSM
// parameter by the stack so a test can see what the stack was given. The
// real stacks' templates are deployed in deploy_test.go; here only their
// parameters matter.
type upgradeWorld struct {
	srv   *awstest.Server
	a     *awsSession
	dc    *deployconfig.Config
	from  releaseImages
	to    releaseImages
	calls []string
	// health answers the health step in turn (the last repeats): moto's
	// ECS has no rollout state and its CloudWatch evaluates no alarms.
	health [][]any
}

func newUpgradeWorld(t *testing.T) *upgradeWorld {
	t.Helper()
	w := &upgradeWorld{srv: awstest.Start(t), dc: upgradeDeployment("")}
	w.a = testSession(t, w.srv, w.dc)
	w.from = releaseImages{Version: "1.0.0", DocsvcDigest: "sha256:" + hex64("a"), AgentDigest: "sha256:" + hex64("b")}
	w.to = releaseImages{Version: "1.1.0", DocsvcDigest: "sha256:" + hex64("c"), AgentDigest: "sha256:" + hex64("d")}
	ctx := context.Background()
	mk := func(stack, body string, params map[string]string) {
		var ps []cfntypes.Parameter
		for k, v := range params {
			ps = append(ps, cfntypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(v)})
		}
		if _, err := w.a.CloudFormation().CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(stack), TemplateBody: aws.String(body), Parameters: ps}); err != nil {
			t.Fatalf("creating %s in moto: %v", stack, err)
		}
	}
	mk("acme-docs-data", `{"Resources":{"DatabaseB269D8BB":{"Type":"AWS::RDS::DBInstance","Properties":{"DBInstanceClass":"db.t4g.micro","Engine":"postgres","AllocatedStorage":"20","MasterUsername":"tether","MasterUserPassword":"not-a-secret-1"}}}}`, nil)
	mk("acme-docs-cluster", `{"Parameters":{"MigrateImageDigest":{"Type":"String"}},"Resources":{"Seen":{"Type":"AWS::SSM::Parameter","Properties":{"Name":"/test/cluster","Type":"String","Value":{"Ref":"MigrateImageDigest"}}}}}`,
		map[string]string{"MigrateImageDigest": w.from.DocsvcDigest})
	// moto gap: ExecuteChangeSet applies the new parameters to the
	// resources but keeps the stack's recorded parameters at their
	// CreateStack values, and CreateChangeSet calls a change set to those
	// values "no changes". So the services stack is created with other
	// markers and set to release 1.0.0's through a change set: a later
	// change set back to 1.0.0 then differs from what moto recorded, as it
	// does in CloudFormation.
	mk("acme-docs-services", `{"Parameters":{"DocsvcImage":{"Type":"String"},"AgentImage":{"Type":"String"}},"Resources":{"Seen":{"Type":"AWS::SSM::Parameter","Properties":{"Name":"/test/services","Type":"String","Value":{"Fn::Join":["|",[{"Ref":"DocsvcImage"},{"Ref":"AgentImage"}]]}}}}}`,
		map[string]string{"DocsvcImage": migratedMarkerPath(w.dc, "sha256:"+hex64("9")), "AgentImage": agentMarkerPath(w.dc, "sha256:"+hex64("9"))})
	env := Env{Now: time.Now, Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}
	if err := setStackParameters(ctx, env, w.a, "acme-docs-services", map[string]string{"DocsvcImage": migratedMarkerPath(w.dc, w.from.DocsvcDigest), "AgentImage": agentMarkerPath(w.dc, w.from.AgentDigest)}, true, io.Discard); err != nil {
		t.Fatal(err)
	}
	return w
}

var (
	healthy = []any{ecstypes.Service{ServiceName: aws.String("api"), RunningCount: 2, DesiredCount: 2,
		Deployments: []ecstypes.Deployment{{Id: aws.String("d1"), RolloutState: ecstypes.DeploymentRolloutStateCompleted}}}}
	rollingOut = []any{ecstypes.Service{ServiceName: aws.String("api"), RunningCount: 1, DesiredCount: 2,
		Deployments: []ecstypes.Deployment{{Id: aws.String("d2"), RolloutState: ecstypes.DeploymentRolloutStateInProgress}, {Id: aws.String("d1"), RolloutState: ecstypes.DeploymentRolloutStateCompleted}}}}
	circuitBroken = []any{ecstypes.Service{ServiceName: aws.String("api"), RunningCount: 0, DesiredCount: 2,
		Deployments: []ecstypes.Deployment{{Id: aws.String("d2"), RolloutState: ecstypes.DeploymentRolloutStateFailed, RolloutStateReason: aws.String("ECS deployment circuit breaker: tasks failed to start.")}}},
		cwtypes.MetricAlarm{AlarmName: aws.String("acme-docs api 5xx rate"), StateValue: cwtypes.StateValueAlarm, StateReason: aws.String("Threshold Crossed")}}
)

func (w *upgradeWorld) steps(migrateErr error) upgradeSteps {
	s := defaultUpgradeSteps()
	s.push = func(_ context.Context, _ Env, _ *awsSession, _ *deployconfig.Config, rel releaseImages, _ imageOptions) error {
		w.calls = append(w.calls, "push "+rel.Version)
		return nil
	}
	s.migrate = func(_ context.Context, _ Env, _ *awsSession, _ *deployconfig.Config, d string) error {
		w.calls = append(w.calls, "migrate "+d)
		return migrateErr
	}
	s.health = func(context.Context, *awsSession, *deployconfig.Config) (bool, []string, error) {
		answer := w.health[0]
		if len(w.health) > 1 {
			w.health = w.health[1:]
		}
		var svcs []ecstypes.Service
		var alarms []cwtypes.MetricAlarm
		for _, x := range answer {
			switch v := x.(type) {
			case ecstypes.Service:
				svcs = append(svcs, v)
			case cwtypes.MetricAlarm:
				alarms = append(alarms, v)
			}
		}
		settled, problems := healthProblems(svcs, alarms)
		return settled, problems, nil
	}
	return s
}

func (w *upgradeWorld) seen(t *testing.T, name string) string {
	t.Helper()
	out, err := w.a.SSM().GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		t.Fatalf("SSM parameter %s: %v", name, err)
	}
	return aws.ToString(out.Parameter.Value)
}

func (w *upgradeWorld) run(t *testing.T, action string, to releaseImages, migrateErr error) (*upgradePlan, string, error) {
	return w.runPlan(t, &upgradePlan{Action: action, To: to}, migrateErr)
}

func (w *upgradeWorld) runPlan(t *testing.T, p *upgradePlan, migrateErr error) (*upgradePlan, string, error) {
	t.Helper()
	cur, err := currentRelease(context.Background(), w.a, w.dc, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.From = cur
	var out bytes.Buffer
	env := Env{Now: time.Now, Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}
	err = runUpgrade(context.Background(), env, w.a, w.dc, p, w.steps(migrateErr), imageOptions{}, true, &out)
	return p, out.String(), err
}

// checkPushedAndMigrated: release 1.1.0 was pushed and migrated, in that order.
func (w *upgradeWorld) checkPushedAndMigrated(t *testing.T) {
	t.Helper()
	if got := strings.Join(w.calls, ", "); got != "push 1.1.0, migrate "+w.to.DocsvcDigest {
		t.Errorf("steps: %s", got)
	}
	if got := w.seen(t, "/test/cluster"); got != w.to.DocsvcDigest {
		t.Errorf("cluster MigrateImageDigest = %s, want the release's", got)
	}
}

func TestUpgradeSucceeds(t *testing.T) {
	w := newUpgradeWorld(t)
	w.health = [][]any{healthy, rollingOut, healthy}
	p, out, err := w.run(t, "upgrade", w.to, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	w.checkPushedAndMigrated(t)
	if got, want := w.seen(t, "/test/services"), migratedMarkerPath(w.dc, w.to.DocsvcDigest)+"|"+agentMarkerPath(w.dc, w.to.AgentDigest); got != want {
		t.Errorf("services stack given %s, want %s", got, want)
	}
	snaps, err := w.a.RDS().
		DescribeDBSnapshots(context.Background(), &rds.DescribeDBSnapshotsInput{DBSnapshotIdentifier: aws.String(p.Snapshot)})
	if err != nil || len(snaps.DBSnapshots) != 1 {
		t.Errorf("snapshot %q in moto's RDS: %v", p.Snapshot, err)
	}
	h, err := readHistory(context.Background(), w.a, w.dc)
	if err != nil || len(h) != 1 || h[0].Outcome != "succeeded" || h[0].To != "1.1.0" || h[0].FromDocsvc != w.from.DocsvcDigest {
		t.Fatalf("history %+v, %v", h, err)
	}

	// Then a rollback: no push, no migration, the previous markers back.
	cur, _ := currentRelease(context.Background(), w.a, w.dc, nil)
	prev, ok := previousRelease(h, cur)
	if !ok {
		t.Fatal("no previous release after a successful upgrade")
	}
	w.calls = nil
	w.health = [][]any{healthy}
	if _, out, err := w.run(t, "rollback", releaseImages{Version: prev.From, DocsvcDigest: prev.FromDocsvc, AgentDigest: prev.FromAgent}, nil); err != nil {
		t.Fatalf("rollback: %v\n%s", err, out)
	}
	if len(w.calls) != 0 {
		t.Errorf("a rollback ran %v", w.calls)
	}
	if got, want := w.seen(t, "/test/services"), migratedMarkerPath(w.dc, w.from.DocsvcDigest)+"|"+agentMarkerPath(w.dc, w.from.AgentDigest); got != want {
		t.Errorf("after the rollback the services stack has %s, want %s", got, want)
	}
}

// --stage: verify, check, snapshot, push, migrate (the markers), record
// "staged", and leave the services as they are for the agent.
func TestUpgradeStageLeavesTheServices(t *testing.T) {
	w := newUpgradeWorld(t)
	w.health = [][]any{healthy, circuitBroken} // a second health read would fail the test below
	p, out, err := w.runPlan(t, &upgradePlan{Action: "upgrade", To: w.to, Stage: true}, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	w.checkPushedAndMigrated(t)
	if got, want := w.seen(t, "/test/services"), migratedMarkerPath(w.dc, w.from.DocsvcDigest)+"|"+agentMarkerPath(w.dc, w.from.AgentDigest); got != want {
		t.Errorf("staging changed the services stack to %s", got)
	}
	if p.Outcome != "staged" || p.Snapshot == "" || strings.Contains(out, "Rolling") {
		t.Errorf("plan %+v\n%s", p, out)
	}
	h, err := readHistory(context.Background(), w.a, w.dc)
	if err != nil || len(h) != 1 || h[0].Outcome != "staged" || h[0].To != "1.1.0" || h[0].By != "tetherctl" || h[0].AgentDigest != w.to.AgentDigest {
		t.Fatalf("history %+v, %v", h, err)
	}
	if steps := strings.Join(p.steps(w.dc), "\n"); strings.Contains(steps, "DocsvcImage") || !strings.Contains(steps, "staged") {
		t.Errorf("the plan shown for --stage:\n%s", steps)
	}
}

func TestUpgradeMigrationFailureStopsBeforeServices(t *testing.T) {
	w := newUpgradeWorld(t)
	w.health = [][]any{healthy}
	_, out, err := w.run(t, "upgrade", w.to, errors.New("migrate task exited 1"))
	if err == nil || !strings.Contains(err.Error(), "the migration failed, the services were not changed") {
		t.Fatalf("%v\n%s", err, out)
	}
	if got, want := w.seen(t, "/test/services"), migratedMarkerPath(w.dc, w.from.DocsvcDigest)+"|"+agentMarkerPath(w.dc, w.from.AgentDigest); got != want {
		t.Errorf("the services stack changed after a failed migration: %s", got)
	}
	if h, _ := readHistory(context.Background(), w.a, w.dc); len(h) != 1 || h[0].Outcome != "failed" || h[0].Code != "migration-failed" {
		t.Errorf("history %+v", h)
	}
}

func TestUpgradeFailedRolloutRollsBack(t *testing.T) {
	w := newUpgradeWorld(t)
	w.health = [][]any{healthy, rollingOut, circuitBroken}
	p, out, err := w.run(t, "upgrade", w.to, nil)
	if err == nil || !strings.Contains(err.Error(), "was rolled back") || !strings.Contains(err.Error(), "circuit breaker") || !strings.Contains(err.Error(), "api 5xx rate is in ALARM") {
		t.Fatalf("%v\n%s", err, out)
	}
	if got, want := w.seen(t, "/test/services"), migratedMarkerPath(w.dc, w.from.DocsvcDigest)+"|"+agentMarkerPath(w.dc, w.from.AgentDigest); got != want {
		t.Errorf("after the failed rollout the services stack has %s, want the previous %s\n%s", got, want, out)
	}
	if !strings.Contains(out, "Rolling the services back") || p.Outcome != "rolled-back" {
		t.Errorf("outcome %q; output:\n%s", p.Outcome, out)
	}
	if h, _ := readHistory(context.Background(), w.a, w.dc); len(h) != 1 || h[0].Outcome != "rolled-back" || h[0].Code != "alarm" || !strings.Contains(h[0].Reason, "circuit breaker") {
		t.Errorf("history %+v", h)
	}
}

func TestUpgradeRefusedWhenUnhealthy(t *testing.T) {
	w := newUpgradeWorld(t)
	w.health = [][]any{circuitBroken}
	_, _, err := w.run(t, "upgrade", w.to, nil)
	if err == nil || !strings.Contains(err.Error(), "not healthy now, so nothing was changed") || len(w.calls) != 0 {
		t.Fatalf("%v, steps %v", err, w.calls)
	}
}

// The commands, in process against moto: releases lists what the verified
// export holds against what the services stack runs; upgrade refuses a
// missing or unsigned export before anything in AWS is touched.
func TestReleasesAndUpgradeCommands(t *testing.T) {
	w := newUpgradeWorld(t)
	now := time.Now().UTC().Truncate(time.Second)
	v := newVendorRepo(t, now)
	v.publish(now, "1.0.0", "", "a", "b")
	v.publish(now, "1.1.0", "1.0.0", "c", "d")
	bundle := v.export()
	base, _ := testDeployment(t, deployconfig.ImagesBuild)
	config := writeDeploymentYAML(t, base)
	raw, _ := os.ReadFile(config)
	yaml := strings.Replace(string(raw), `trusted_root: '{"signed":{"_type":"root"},"signatures":[]}'`, "trusted_root: '"+v.root+"'", 1)
	if yaml == string(raw) || strings.Contains(v.root, "'") {
		t.Fatal("could not put the vendor's root into deployment.yaml")
	}
	os.WriteFile(config, []byte(yaml), 0o600)

	var stdout, stderr bytes.Buffer
	env := Env{Now: time.Now, Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr}
	if err := runCmd(t, w.srv, env, "releases", "--config", config, "--bundle", bundle, "--output", "json"); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var rep releasesReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	if rep.Current.Version != "1.0.0" || len(rep.Available) != 2 || !rep.Available[0].Applies || rep.Available[0].Version != "1.1.0" ||
		rep.Available[1].Applies || !strings.Contains(rep.Available[1].Why, "is the one running") {
		t.Fatalf("releases: %s", stdout.String())
	}

	err := runCmd(t, w.srv, env, "upgrade", "--config", config)
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--bundle") {
		t.Fatalf("upgrade without --bundle: %v", err)
	}
	before := len(w.srv.Requests())
	err = runCmd(t, w.srv, env, "upgrade", "--config", config, "--bundle", unsign(t, bundle), "--yes")
	if err == nil || !strings.Contains(err.Error(), "refused, nothing was changed") {
		t.Fatalf("upgrade with an unsigned export: %v", err)
	}
	if after := len(w.srv.Requests()); after != before {
		t.Fatalf("an unsigned export reached AWS: %d calls", after-before)
	}
}

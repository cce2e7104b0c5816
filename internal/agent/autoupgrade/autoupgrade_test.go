package autoupgrade

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/releasestate"
	"github.com/tetherhq/tether/internal/upgradewindow"
	"github.com/tetherhq/tether/internal/wire"
)

const record = "/tether/acme-docs/state/releases"

func d(c string) string { return "sha256:" + strings.Repeat(c, 64) }

var (
	sunday = time.Date(2026, 12, 6, 2, 30, 0, 0, time.UTC) // inside the window
	from   = Target{Version: "1.0.0", DocsvcDigest: d("a"), AgentDigest: d("b")}
	to     = Target{Version: "1.1.0", DocsvcDigest: d("c"), AgentDigest: d("e")}
)

type world struct {
	srv *awstest.Server
	cfg aws.Config
	m   *Manager
	now time.Time
}

// newWorld is a services stack in moto with the two image parameters, a
// third parameter, and a resource that shows what the parameters are (moto
// gap: moto's CloudFormation does not create AWS::CloudWatch::Alarm
// resources, so the stack has none and the rollback triggers are tested
// with Triggers on SDK types); a record saying 1.0.0 was installed; and, when
// staged, the markers tetherctl upgrade --stage writes for 1.1.0.
func newWorld(t *testing.T, staged bool) *world {
	t.Helper()
	w := &world{srv: awstest.Start(t), now: sunday}
	w.cfg = w.srv.AWSConfig()
	ctx := context.Background()
	tmpl := `{"Parameters":{"DocsvcImage":{"Type":"String"},"AgentImage":{"Type":"String"},"ApiTasks":{"Type":"String"}},"Resources":{
		"Seen":{"Type":"AWS::SSM::Parameter","Properties":{"Name":"/test/services","Type":"String","Value":{"Fn::Join":["|",[{"Ref":"DocsvcImage"},{"Ref":"AgentImage"},{"Ref":"ApiTasks"}]]}}}}}`
	docsvc, agent := (&Manager{cfg: Config{Record: record}}).markers()
	_, err := cloudformation.NewFromConfig(w.cfg).CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String("acme-docs-services"), TemplateBody: aws.String(tmpl),
		Parameters: []cfntypes.Parameter{
			{ParameterKey: aws.String("DocsvcImage"), ParameterValue: aws.String(docsvc(from.DocsvcDigest))},
			{ParameterKey: aws.String("AgentImage"), ParameterValue: aws.String(agent(from.AgentDigest))},
			{ParameterKey: aws.String("ApiTasks"), ParameterValue: aws.String("2")},
		}})
	if err != nil {
		t.Fatalf("creating the services stack in moto: %v", err)
	}
	h, _ := json.Marshal([]releasestate.Outcome{{Action: "upgrade", From: "0.9.0", To: "1.0.0", DocsvcDigest: from.DocsvcDigest, AgentDigest: from.AgentDigest,
		Outcome: "succeeded", By: "tetherctl", At: sunday.Add(-7 * 24 * time.Hour)}})
	w.srv.PutParameter(t, record, string(h), false)
	if staged {
		w.srv.PutParameter(t, docsvc(to.DocsvcDigest), to.DocsvcDigest, false)
		w.srv.PutParameter(t, agent(to.AgentDigest), to.AgentDigest, false)
	}
	win, err := upgradewindow.Parse("Sun 02:00-04:00")
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConfig(t.TempDir(), record, win.String(), "acme-docs-services", "arn:aws:iam::"+awstest.Account+":role/acme-docs-upgrade")
	if err != nil {
		t.Fatal(err)
	}
	w.m = New(c, &w.cfg, func() time.Time { return w.now }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.m.poll = time.Millisecond
	return w
}

func (w *world) updates() []url.Values {
	var out []url.Values
	for _, r := range w.srv.Requests() {
		if r.Target == "UpdateStack" {
			v, _ := url.ParseQuery(string(r.Body))
			out = append(out, v)
		}
	}
	return out
}

func (w *world) seen(t *testing.T) string {
	t.Helper()
	out, err := ssm.NewFromConfig(w.cfg).GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String("/test/services")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Parameter.Value)
}

// Inside the window, a staged release is applied through the real SDK:
// one UpdateStack with the previous template, only the image parameters
// changed, the upgrade role, and the services' alarms as rollback
// triggers; the outcome is recorded and reported.
func TestAppliesAStagedReleaseInTheWindow(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	if err := w.m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if rel, last := w.m.Report(); rel != "1.0.0" || last.Outcome != "succeeded" {
		t.Fatalf("before: %q %+v", rel, last)
	}
	w.m.Apply(ctx, to)
	ups := w.updates()
	if len(ups) != 1 {
		t.Fatalf("%d UpdateStack calls, want 1", len(ups))
	}
	u := ups[0]
	docsvc, agent := w.m.markers()
	for k, want := range map[string]string{
		"StackName":           "acme-docs-services",
		"UsePreviousTemplate": "true",
		"RoleARN":             "arn:aws:iam::" + awstest.Account + ":role/acme-docs-upgrade",
		"RollbackConfiguration.MonitoringTimeInMinutes": "10",
		"Parameters.member.1.ParameterValue":            docsvc(to.DocsvcDigest),
		"Parameters.member.2.ParameterValue":            agent(to.AgentDigest),
		"Parameters.member.3.ParameterKey":              "ApiTasks",
		"Parameters.member.3.UsePreviousValue":          "true",
		"Parameters.member.3.ParameterValue":            "",
	} {
		if got := u.Get(k); got != want {
			t.Errorf("UpdateStack %s = %q, want %q", k, got, want)
		}
	}
	if got, want := w.seen(t), docsvc(to.DocsvcDigest)+"|"+agent(to.AgentDigest)+"|2"; got != want {
		t.Errorf("the stack's resources see %s, want %s", got, want)
	}
	rel, last := w.m.Report()
	if rel != "1.1.0" || last != (wire.UpgradeAttempt{Version: "1.1.0", Action: "upgrade", Outcome: "succeeded", At: sunday}) {
		t.Fatalf("after: %q %+v", rel, last)
	}
	h, err := w.m.read(ctx)
	if err != nil || len(h) != 2 || h[0].By != "agent" || h[0].FromDocsvc != from.DocsvcDigest || h[0].AgentDigest != to.AgentDigest || h[0].From != "1.0.0" {
		t.Fatalf("record %+v, %v", h, err)
	}
	// Running now, it is not applied again.
	w.m.Apply(ctx, to)
	if n := len(w.updates()); n != 1 {
		t.Errorf("applied a release the services run: %d updates", n)
	}
}

func TestDoesNotApplyOutsideTheWindowOrUnstaged(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	w.m.Apply(ctx, to) // not staged
	w.now = sunday.Add(2 * time.Hour)
	w.srv.PutParameter(t, "/tether/acme-docs/migrated/sha256-"+strings.Repeat("c", 64), to.DocsvcDigest, false)
	w.srv.PutParameter(t, "/tether/acme-docs/verified/agent/sha256-"+strings.Repeat("e", 64), to.AgentDigest, false)
	w.m.Apply(ctx, to) // staged, but 04:30 is past the window
	if n := len(w.updates()); n != 0 {
		t.Fatalf("%d UpdateStack calls, want none", n)
	}
	w.now = sunday
	w.m.Apply(ctx, to)
	if n := len(w.updates()); n != 1 {
		t.Fatalf("in the window, staged: %d UpdateStack calls, want 1", n)
	}
}

// The agent that started an update is usually replaced before it ends: the
// next one settles the in-progress outcome on its first Refresh.
func TestTheNextAgentSettlesAnInterruptedAttempt(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	cfn := cloudformation.NewFromConfig(w.cfg)
	docsvc, agent := w.m.markers()
	// What the replaced agent did: record in-progress, then UpdateStack.
	h, _ := w.m.read(ctx)
	h = releasestate.Prepend(h, releasestate.Outcome{Action: "upgrade", From: "1.0.0", To: "1.1.0", FromDocsvc: from.DocsvcDigest, FromAgent: from.AgentDigest,
		DocsvcDigest: to.DocsvcDigest, AgentDigest: to.AgentDigest, Outcome: "in-progress", By: "agent", At: sunday})
	if err := w.m.write(ctx, h); err != nil {
		t.Fatal(err)
	}
	st, _ := w.m.stack(ctx)
	params := []cfntypes.Parameter{{ParameterKey: aws.String("DocsvcImage"), ParameterValue: aws.String(docsvc(to.DocsvcDigest))},
		{ParameterKey: aws.String("AgentImage"), ParameterValue: aws.String(agent(to.AgentDigest))}, {ParameterKey: aws.String("ApiTasks"), UsePreviousValue: aws.Bool(true)}}
	if _, err := cfn.UpdateStack(ctx, UpdateInput(w.m.cfg, st, params, nil)); err != nil {
		t.Fatal(err)
	}
	next := New(w.m.cfg, &w.cfg, func() time.Time { return sunday.Add(time.Hour) }, w.m.log)
	if err := next.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if rel, last := next.Report(); rel != "1.1.0" || last.Outcome != "succeeded" || last.At != sunday {
		t.Fatalf("settled: %q %+v", rel, last)
	}
	if h, _ := next.read(ctx); len(h) != 2 || h[0].Outcome != "succeeded" {
		t.Fatalf("record %+v", h)
	}
}

// moto gap: moto accepts UpdateStack's RollbackConfiguration but never
// watches the triggers or rolls an update back (nor fails a rollout), so
// the stack never reaches UPDATE_ROLLBACK_COMPLETE there. The decisions on
// those states are tested on the SDK's types.
func TestSettledAndDecideOnSDKTypes(t *testing.T) {
	docsvc, _ := (&Manager{cfg: Config{Record: record}}).markers()
	o := releasestate.Outcome{Action: "upgrade", From: "1.0.0", To: "1.1.0", DocsvcDigest: to.DocsvcDigest, Outcome: "in-progress", At: sunday}
	stack := func(s cfntypes.StackStatus, docsvcDigest string) *cfntypes.Stack {
		return &cfntypes.Stack{StackStatus: s, StackStatusReason: aws.String("The following resource(s) failed to update: [Api].\nAlarm triggered"),
			Parameters: []cfntypes.Parameter{{ParameterKey: aws.String("DocsvcImage"), ParameterValue: aws.String(docsvc(docsvcDigest))}}}
	}
	for _, tt := range []struct {
		st                 *cfntypes.Stack
		done               bool
		outcome, code, has string
	}{
		{stack(cfntypes.StackStatusUpdateInProgress, to.DocsvcDigest), false, "in-progress", "", ""},
		{stack(cfntypes.StackStatusUpdateRollbackInProgress, from.DocsvcDigest), false, "in-progress", "", ""},
		{stack(cfntypes.StackStatusUpdateCompleteCleanupInProgress, to.DocsvcDigest), false, "in-progress", "", ""},
		{stack(cfntypes.StackStatusUpdateComplete, to.DocsvcDigest), true, "succeeded", "", ""},
		{stack(cfntypes.StackStatusUpdateComplete, d("9")), true, "failed", "interrupted", "other images"},
		{stack(cfntypes.StackStatusUpdateRollbackComplete, from.DocsvcDigest), true, "rolled-back", "stack-failed", "failed to update: [Api]. Alarm"},
		{stack(cfntypes.StackStatusUpdateRollbackFailed, from.DocsvcDigest), true, "failed", "stack-failed", "UPDATE_ROLLBACK_FAILED"},
	} {
		got, done := Settled(o, tt.st)
		if done != tt.done || got.Outcome != tt.outcome || got.Code != tt.code || !strings.Contains(got.Reason, tt.has) || strings.Contains(got.Reason, "\n") {
			t.Errorf("%s: %v %+v", tt.st.StackStatus, done, got)
		}
	}

	w, _ := upgradewindow.Parse("Sun 02:00-04:00")
	ok := stack(cfntypes.StackStatusUpdateComplete, from.DocsvcDigest)
	failed := releasestate.Outcome{Action: "upgrade", To: "1.1.0", Outcome: "rolled-back", At: sunday.Add(-7 * 24 * time.Hour)}
	for _, tt := range []struct {
		name   string
		now    time.Time
		h      []releasestate.Outcome
		st     *cfntypes.Stack
		t      Target
		staged bool
		want   string
	}{
		{"applies", sunday, nil, ok, to, true, ""},
		{"after a rollback of another stack update", sunday, nil, stack(cfntypes.StackStatusUpdateRollbackComplete, from.DocsvcDigest), to, true, ""},
		{"outside", sunday.Add(-time.Hour), nil, ok, to, true, "outside the upgrade window Sun 02:00-04:00"},
		{"not staged", sunday, nil, ok, to, false, "tetherctl upgrade --stage"},
		{"stack busy", sunday, nil, stack(cfntypes.StackStatusUpdateInProgress, from.DocsvcDigest), to, true, "UPDATE_IN_PROGRESS"},
		{"running", sunday, nil, stack(cfntypes.StackStatusUpdateComplete, to.DocsvcDigest), to, true, "the services run it"},
		{"failed before", sunday, []releasestate.Outcome{failed}, ok, to, true, "only tetherctl upgrade tries it again"},
		{"unsettled", sunday, []releasestate.Outcome{o}, ok, to, true, "in progress"},
		{"no digests", sunday, nil, ok, Target{Version: "1.1.0", DocsvcDigest: "latest"}, true, "no docsvc and agent image digests"},
	} {
		if got := Decide(w, tt.now, tt.h, tt.st, tt.t, tt.staged); tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
			t.Errorf("%s: Decide = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestTriggers(t *testing.T) {
	alarm := func(logical, name string) cfntypes.StackResource {
		return cfntypes.StackResource{ResourceType: aws.String("AWS::CloudWatch::Alarm"), LogicalResourceId: aws.String(logical), PhysicalResourceId: aws.String(name)}
	}
	res := []cfntypes.StackResource{
		alarm("AlarmApi5xx1234", "tether-acme-docs-api-5xx"),
		alarm("AlarmDatabaseCpu99", "tether-acme-docs-database-cpu"),
		alarm("WorkerScalingLowerAlarm", "acme-docs-services-WorkerScalingLower"),
		{ResourceType: aws.String("AWS::SNS::Topic"), LogicalResourceId: aws.String("Alarms"), PhysicalResourceId: aws.String("arn:aws:sns:x")},
		alarm("AlarmWorkerErrors", "tether-acme-docs-worker-errors"),
	}
	for i := range 5 {
		res = append(res, alarm("AlarmMore", "tether-acme-docs-more-"+string(rune('a'+i))))
	}
	got := Triggers("arn:aws-cn:cloudformation:cn-north-1:111122223333:stack/acme-docs-services/abc", res)
	want := []string{"arn:aws-cn:cloudwatch:cn-north-1:111122223333:alarm:tether-acme-docs-api-5xx", "arn:aws-cn:cloudwatch:cn-north-1:111122223333:alarm:tether-acme-docs-worker-errors",
		"arn:aws-cn:cloudwatch:cn-north-1:111122223333:alarm:tether-acme-docs-more-a", "arn:aws-cn:cloudwatch:cn-north-1:111122223333:alarm:tether-acme-docs-more-b",
		"arn:aws-cn:cloudwatch:cn-north-1:111122223333:alarm:tether-acme-docs-more-c"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Triggers = %v\nwant %v", got, want)
	}
	in := UpdateInput(Config{Stack: "s", RoleARN: "r", Monitor: 10 * time.Minute}, &cfntypes.Stack{}, nil, got)
	if rc := in.RollbackConfiguration; aws.ToInt32(rc.MonitoringTimeInMinutes) != 10 || len(rc.RollbackTriggers) != 5 ||
		aws.ToString(rc.RollbackTriggers[0].Type) != "AWS::CloudWatch::Alarm" || aws.ToString(rc.RollbackTriggers[0].Arn) != want[0] {
		t.Errorf("rollback configuration %+v", rc)
	}
}

func TestNewConfig(t *testing.T) {
	if c, err := NewConfig("/d", "", "", "", ""); err != nil || len(c.Window) != 0 {
		t.Fatalf("report only: %+v %v", c, err)
	}
	for _, bad := range [][4]string{
		{"/tether/x/state/other", "", "", ""},
		{record, "Sun 02:00-04:00", "", ""},
		{record, "Sun 02:00-04:00", "acme-docs-services", "role/x"},
		{record, "Sunday", "acme-docs-services", "arn:aws:iam::111122223333:role/x"},
		{"", "Sun 02:00-04:00", "acme-docs-services", "arn:aws:iam::111122223333:role/x"},
	} {
		if _, err := NewConfig("/d", bad[0], bad[1], bad[2], bad[3]); err == nil || !strings.Contains(err.Error(), "--") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

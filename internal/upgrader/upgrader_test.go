package upgrader

import (
	"context"
	"encoding/json"
	"errors"
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
	u   *Upgrader
	now time.Time
}

// newWorld is a services stack in moto with the two image parameters, a
// third parameter, and a resource that shows what the parameters are (moto
// gap: moto's CloudFormation does not create AWS::CloudWatch::Alarm
// resources, so the stack has none and the rollback triggers are tested
// with Triggers on SDK types); a record saying 1.0.0 was installed and
// tetherctl staged 1.1.0; and, when markers, the markers tetherctl upgrade
// --stage writes for 1.1.0.
func newWorld(t *testing.T, markers bool) *world {
	t.Helper()
	w := &world{srv: awstest.Start(t), now: sunday}
	w.cfg = w.srv.AWSConfig()
	ctx := context.Background()
	tmpl := `{"Parameters":{"DocsvcImage":{"Type":"String"},"AgentImage":{"Type":"String"},"ApiTasks":{"Type":"String"}},"Resources":{
		"Seen":{"Type":"AWS::SSM::Parameter","Properties":{"Name":"/test/services","Type":"String","Value":{"Fn::Join":["|",[{"Ref":"DocsvcImage"},{"Ref":"AgentImage"},{"Ref":"ApiTasks"}]]}}}}}`
	docsvc, agent := (&Upgrader{cfg: Config{Record: record}}).markers()
	_, err := cloudformation.NewFromConfig(w.cfg).CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String("acme-docs-services"), TemplateBody: aws.String(tmpl),
		Parameters: []cfntypes.Parameter{
			{ParameterKey: aws.String("DocsvcImage"), ParameterValue: aws.String(docsvc(from.DocsvcDigest))},
			{ParameterKey: aws.String("AgentImage"), ParameterValue: aws.String(agent(from.AgentDigest))},
			{ParameterKey: aws.String("ApiTasks"), ParameterValue: aws.String("2")},
		}})
	if err != nil {
		t.Fatalf("creating the services stack in moto: %v", err)
	}
	h, _ := json.Marshal([]releasestate.Outcome{stagedTo,
		{Action: "upgrade", From: "0.9.0", To: "1.0.0", DocsvcDigest: from.DocsvcDigest, AgentDigest: from.AgentDigest,
			Outcome: "succeeded", By: "tetherctl", At: sunday.Add(-7 * 24 * time.Hour)}})
	w.srv.PutParameter(t, record, string(h), false)
	if markers {
		w.srv.PutParameter(t, docsvc(to.DocsvcDigest), to.DocsvcDigest, false)
		w.srv.PutParameter(t, agent(to.AgentDigest), to.AgentDigest, false)
	}
	c, err := NewConfig(record, "Sun 02:00-04:00", "acme-docs-services", "arn:aws:iam::"+awstest.Account+":role/acme-docs-upgrade")
	if err != nil {
		t.Fatal(err)
	}
	w.u = New(c, w.cfg, func() time.Time { return w.now }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.u.poll = time.Millisecond
	return w
}

// stagedTo is what tetherctl upgrade --stage records for 1.1.0.
var stagedTo = releasestate.Outcome{Action: "upgrade", From: "1.0.0", To: to.Version, FromDocsvc: from.DocsvcDigest, FromAgent: from.AgentDigest,
	DocsvcDigest: to.DocsvcDigest, AgentDigest: to.AgentDigest, Outcome: "staged", By: "tetherctl", At: sunday.Add(-24 * time.Hour)}

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
// triggers; the outcome is recorded, and the next run has nothing to do.
func TestAppliesAStagedReleaseInTheWindow(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	if err := w.u.Run(ctx); err != nil {
		t.Fatal(err)
	}
	ups := w.updates()
	if len(ups) != 1 {
		t.Fatalf("%d UpdateStack calls, want 1", len(ups))
	}
	u := ups[0]
	docsvc, agent := w.u.markers()
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
	h, err := w.u.read(ctx)
	if err != nil || len(h) != 3 || h[0].By != By || h[0].Outcome != "succeeded" || h[0].FromDocsvc != from.DocsvcDigest || h[0].AgentDigest != to.AgentDigest || h[0].From != "1.0.0" {
		t.Fatalf("record %+v, %v", h, err)
	}
	if rel, last := releasestate.Report(h); rel != "1.1.0" || last != (wire.UpgradeAttempt{Version: "1.1.0", Action: "upgrade", Outcome: "succeeded", At: sunday}) {
		t.Fatalf("reported: %q %+v", rel, last)
	}
	// The staging is no longer the newest outcome: nothing to do.
	if err := w.u.Run(ctx); err != nil || len(w.updates()) != 1 {
		t.Errorf("second run: %v, %d updates", err, len(w.updates()))
	}
}

// A late start (past the window) changes nothing; a staged release whose
// markers are gone is not applied, and the run says why with exit status 1.
func TestDoesNotApplyOutsideTheWindowOrWithoutMarkers(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	if err := w.u.Run(ctx); err == nil || !strings.Contains(err.Error(), "markers are missing: run tetherctl upgrade --stage") {
		t.Fatalf("without markers: %v", err)
	}
	w.now = sunday.Add(2 * time.Hour)
	w.srv.PutParameter(t, "/tether/acme-docs/migrated/sha256-"+strings.Repeat("c", 64), to.DocsvcDigest, false)
	w.srv.PutParameter(t, "/tether/acme-docs/verified/agent/sha256-"+strings.Repeat("e", 64), to.AgentDigest, false)
	if err := w.u.Run(ctx); err != nil { // 04:30 is past the window
		t.Fatal(err)
	}
	if n := len(w.updates()); n != 0 {
		t.Fatalf("%d UpdateStack calls, want none", n)
	}
	if h, _ := w.u.read(ctx); len(h) != 2 || h[0].Outcome != "staged" {
		t.Fatalf("the record changed: %+v", h)
	}
	w.now = sunday
	if err := w.u.Run(ctx); err != nil || len(w.updates()) != 1 {
		t.Fatalf("in the window, with markers: %v, %d UpdateStack calls, want 1", err, len(w.updates()))
	}
}

// A run stopped before its update ended leaves in-progress: the next run
// settles it, even outside the window, and applies nothing.
func TestTheNextRunSettlesAnInterruptedAttempt(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	cfn := cloudformation.NewFromConfig(w.cfg)
	docsvc, agent := w.u.markers()
	// What the stopped run did: record in-progress, then UpdateStack.
	h, _ := w.u.read(ctx)
	h = releasestate.Prepend(h, releasestate.Outcome{Action: "upgrade", From: "1.0.0", To: "1.1.0", FromDocsvc: from.DocsvcDigest, FromAgent: from.AgentDigest,
		DocsvcDigest: to.DocsvcDigest, AgentDigest: to.AgentDigest, Outcome: "in-progress", By: By, At: sunday})
	if err := w.u.write(ctx, h); err != nil {
		t.Fatal(err)
	}
	st, _ := w.u.stack(ctx)
	params := []cfntypes.Parameter{{ParameterKey: aws.String("DocsvcImage"), ParameterValue: aws.String(docsvc(to.DocsvcDigest))},
		{ParameterKey: aws.String("AgentImage"), ParameterValue: aws.String(agent(to.AgentDigest))}, {ParameterKey: aws.String("ApiTasks"), UsePreviousValue: aws.Bool(true)}}
	if _, err := cfn.UpdateStack(ctx, UpdateInput(w.u.cfg, st, params, nil)); err != nil {
		t.Fatal(err)
	}
	w.now = sunday.Add(24 * time.Hour)
	if err := w.u.Run(ctx); err != nil {
		t.Fatal(err)
	}
	h, _ = w.u.read(ctx)
	if len(h) != 3 || h[0].Outcome != "succeeded" || h[0].At != sunday {
		t.Fatalf("record %+v", h)
	}
	if n := len(w.updates()); n != 1 {
		t.Errorf("%d UpdateStack calls, want only the stopped run's", n)
	}
}

// moto gap: moto accepts UpdateStack's RollbackConfiguration but never
// watches the triggers or rolls an update back (nor fails a rollout), so
// the stack never reaches UPDATE_ROLLBACK_COMPLETE there; and it completes
// an update within the UpdateStack call, so a second run never finds the
// first one's update under way (apply leaves the record to that run when
// Settled says not done). The decisions on those states are tested on the
// SDK's types.
func TestSettledAndDecideOnSDKTypes(t *testing.T) {
	docsvc, _ := (&Upgrader{cfg: Config{Record: record}}).markers()
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
		{"markers missing", sunday, nil, ok, to, false, "markers are missing: run tetherctl upgrade --stage"},
		{"stack busy", sunday, nil, stack(cfntypes.StackStatusUpdateInProgress, from.DocsvcDigest), to, true, "UPDATE_IN_PROGRESS"},
		{"running", sunday, nil, stack(cfntypes.StackStatusUpdateComplete, to.DocsvcDigest), to, true, "the services run it"},
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

// Staged is the newest outcome only when it is a staging: a later upgrade,
// rollback or attempt supersedes it.
func TestStaged(t *testing.T) {
	tried := stagedTo
	tried.Outcome, tried.By = "rolled-back", By
	for _, tt := range []struct {
		h    []releasestate.Outcome
		want bool
	}{
		{nil, false},
		{[]releasestate.Outcome{stagedTo}, true},
		{[]releasestate.Outcome{tried, stagedTo}, false},
		{[]releasestate.Outcome{{Action: "rollback", Outcome: "staged"}}, false},
	} {
		if got, ok := Staged(tt.h); ok != tt.want || ok && got != to {
			t.Errorf("Staged(%+v) = %+v, %v", tt.h, got, ok)
		}
	}
}

func TestNewConfig(t *testing.T) {
	c, err := NewConfig(record, "Sun 02:00-04:00", "acme-docs-services", "arn:aws:iam::111122223333:role/x")
	if err != nil || len(c.Window) != 1 || c.Monitor != 10*time.Minute {
		t.Fatalf("%+v %v", c, err)
	}
	for _, tt := range []struct {
		v    [4]string
		want string
	}{
		{[4]string{"/tether/x/state/other", "Sun 02:00-04:00", "acme-docs-services", "arn:aws:iam::111122223333:role/x"}, "--release-record (TETHER_RELEASE_RECORD): must be"},
		{[4]string{record, "", "acme-docs-services", "arn:aws:iam::111122223333:role/x"}, "--upgrade-window (TETHER_UPGRADE_WINDOW): is required"},
		{[4]string{record, "Sunday", "acme-docs-services", "arn:aws:iam::111122223333:role/x"}, `--upgrade-window (TETHER_UPGRADE_WINDOW): upgrade window range "Sunday"`},
		{[4]string{record, "Sun 02:00-04:00", "acme docs", "arn:aws:iam::111122223333:role/x"}, "--services-stack (TETHER_SERVICES_STACK): must be"},
		{[4]string{record, "Sun 02:00-04:00", "acme-docs-services", "role/x"}, "--upgrade-role (TETHER_UPGRADE_ROLE_ARN): must be an IAM role ARN"},
	} {
		if _, err := NewConfig(tt.v[0], tt.v[1], tt.v[2], tt.v[3]); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.v, err, tt.want)
		}
	}
}

// The command line: a flag wins over its variable, every bad value is
// reported, help goes to stdout without a value from the environment.
func TestMainParses(t *testing.T) {
	getenv := func(k string) string {
		return map[string]string{"TETHER_RELEASE_RECORD": record, "TETHER_UPGRADE_WINDOW": "Sun 02:00-04:00",
			"TETHER_SERVICES_STACK": "acme-docs-services", "TETHER_UPGRADE_ROLE_ARN": "arn:aws:iam::111122223333:role/x"}[k]
	}
	noAWS := func(context.Context) (aws.Config, error) { return aws.Config{}, errors.New("no AWS here") }
	var out strings.Builder
	if err := Main(context.Background(), []string{"--help"}, getenv, &out, io.Discard, noAWS); err != nil ||
		!strings.Contains(out.String(), "-upgrade-window string") || strings.Contains(out.String(), "acme-docs-services") {
		t.Fatalf("--help: %v\n%s", err, out.String())
	}
	if err := Main(context.Background(), []string{"--upgrade-window", "Sunday"}, getenv, io.Discard, io.Discard, noAWS); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), `"Sunday"`) {
		t.Errorf("bad flag: %v", err)
	}
	if err := Main(context.Background(), []string{"now"}, getenv, io.Discard, io.Discard, noAWS); !errors.Is(err, ErrUsage) {
		t.Errorf("an argument: %v", err)
	}
	if err := Main(context.Background(), nil, getenv, io.Discard, io.Discard, noAWS); err == nil || errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "no AWS here") {
		t.Errorf("valid settings go on to AWS: %v", err)
	}
}

func FuzzNewConfig(f *testing.F) {
	f.Add(record, "Sun 02:00-04:00", "acme-docs-services", "arn:aws:iam::111122223333:role/x")
	f.Add("/tether/a/state/releases", "Sat 23:00-24:00; Sun 00:00-01:00", "a", "arn:aws-cn:iam::111122223333:role/p/q")
	f.Fuzz(func(t *testing.T, rec, window, stack, role string) {
		c, err := NewConfig(rec, window, stack, role)
		if err != nil {
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("error does not match ErrUsage: %v", err)
			}
			return
		}
		if len(c.Window) == 0 || !releasestate.RecordRE.MatchString(c.Record) || c.Stack == "" || c.RoleARN == "" {
			t.Fatalf("accepted %+v", c)
		}
	})
}

package ctl_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/ctl"
)

// scaleServicesTemplate is the services stack reduced to what scale
// touches: the image parameters (kept as they are) and the three task
// counts, which the stack copies into an SSM parameter so the test sees
// what CloudFormation was given. moto gap: on UsePreviousValue for an
// AWS::SSM::Parameter::Value<String> parameter, moto's ExecuteChangeSet
// looks up the resolved value (the digest) as a parameter name and fails,
// where CloudFormation keeps the name; so the images are String parameters
// here, and the change set's request shows they are kept.
const scaleServicesTemplate = `{"Parameters":{
  "DocsvcImage":{"Type":"String","Default":"/tether/acme-docs/migrated/sha256-` + docsvcHex + `"},
  "AgentImage":{"Type":"String","Default":"/tether/acme-docs/verified/agent/sha256-` + agentHex + `"},
  "ApiTaskCount":{"Type":"Number","Default":2,"MinValue":1,"MaxValue":50},
  "WorkerMinTasks":{"Type":"Number","Default":1,"MinValue":0,"MaxValue":200},
  "WorkerMaxTasks":{"Type":"Number","Default":4,"MinValue":1,"MaxValue":200}},
 "Resources":{"Seen":{"Type":"AWS::SSM::Parameter","Properties":{"Name":"/test/scale","Type":"String",
  "Value":{"Fn::Join":["|",[{"Ref":"ApiTaskCount"},{"Ref":"WorkerMinTasks"},{"Ref":"WorkerMaxTasks"},{"Ref":"DocsvcImage"}]]}}}}}`

func scaleFixture(t *testing.T, template string) (*awstest.Server, invocation, string) {
	t.Helper()
	srv := awstest.Start(t)
	config := defaultDeployment(newVendor(t)).write(t)
	srv.PutParameter(t, "/tether/acme-docs/migrated/sha256-"+docsvcHex, "sha256:"+docsvcHex, false)
	srv.PutParameter(t, "/tether/acme-docs/verified/agent/sha256-"+agentHex, "sha256:"+agentHex, false)
	_, err := cloudformation.NewFromConfig(srv.AWSConfig()).CreateStack(context.Background(), &cloudformation.CreateStackInput{
		StackName: aws.String("acme-docs-services"), TemplateBody: aws.String(template),
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv, invocation{env: envOf(srv.Env())}, config
}

func seenCounts(t *testing.T, srv *awstest.Server) string {
	t.Helper()
	out, err := ssm.NewFromConfig(srv.AWSConfig()).GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String("/test/scale")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Parameter.Value)
}

// changeSetParams is what the last CreateChangeSet asked for: each
// parameter's new value, or "previous".
func changeSetParams(t *testing.T, srv *awstest.Server) map[string]string {
	t.Helper()
	var form string
	for _, r := range srv.Requests() {
		if r.Target == "CreateChangeSet" {
			form = string(r.Body)
		}
	}
	if form == "" {
		t.Fatal("no CreateChangeSet call")
	}
	vals, err := url.ParseQuery(form)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for i := 1; ; i++ {
		k := vals.Get("Parameters.member." + strconv.Itoa(i) + ".ParameterKey")
		if k == "" {
			return got
		}
		if vals.Get("Parameters.member."+strconv.Itoa(i)+".UsePreviousValue") == "true" {
			got[k] = "previous"
		} else {
			got[k] = vals.Get("Parameters.member." + strconv.Itoa(i) + ".ParameterValue")
		}
	}
}

// Scaling changes only the counts asked for, through a change set on the
// previous template; every other parameter (the images) keeps its value.
func TestScale(t *testing.T) {
	t.Parallel()
	srv, in, config := scaleFixture(t, scaleServicesTemplate)
	ctx := testContext(t)
	image := "|/tether/acme-docs/migrated/sha256-" + docsvcHex
	if got := seenCounts(t, srv); got != "2|1|4"+image {
		t.Fatalf("before: %s", got)
	}

	out := in.run(ctx, "scale", "api", "--count", "5", "--yes", "--config", config, "--output", "json")
	if out.err != nil {
		t.Fatalf("scale api: %v\n%s", out.err, out.all())
	}
	var rep struct {
		Stack, Service string
		From, To       map[string]string
		Changed        bool
	}
	if err := json.Unmarshal([]byte(out.stdout), &rep); err != nil {
		t.Fatalf("--output json printed no JSON: %v\n%s", err, out.stdout)
	}
	if rep.Stack != "acme-docs-services" || rep.Service != "api" || !rep.Changed || rep.From["ApiTaskCount"] != "2" || rep.To["ApiTaskCount"] != "5" {
		t.Errorf("report: %+v", rep)
	}
	if !strings.Contains(out.stderr, "parameter ApiTaskCount = 5") {
		t.Errorf("the change set is not shown:\n%s", out.stderr)
	}
	if got := seenCounts(t, srv); got != "5|1|4"+image {
		t.Errorf("after scale api: the stack was given %s, want 5|1|4%s", got, image)
	}
	want := map[string]string{"ApiTaskCount": "5", "WorkerMinTasks": "previous", "WorkerMaxTasks": "previous", "DocsvcImage": "previous", "AgentImage": "previous"}
	if got := changeSetParams(t, srv); !maps.Equal(got, want) {
		t.Errorf("change set parameters = %v, want %v", got, want)
	}

	out = in.run(ctx, "scale", "workers", "--min", "2", "--max", "10", "--yes", "--config", config)
	if out.err != nil {
		t.Fatalf("scale workers: %v\n%s", out.err, out.all())
	}
	if !strings.Contains(out.stdout, "WorkerMaxTasks=10, WorkerMinTasks=2 (was WorkerMaxTasks=4, WorkerMinTasks=1)") {
		t.Errorf("scale workers says:\n%s", out.stdout)
	}
	// moto gap: ExecuteChangeSet leaves the stack's recorded parameters at
	// their CreateStack values, so UsePreviousValue brings ApiTaskCount back
	// to 2 here, where CloudFormation keeps 5; the workers' counts are what
	// this step is about.
	if got := seenCounts(t, srv); !strings.HasSuffix(got, "|2|10"+image) {
		t.Errorf("after scale workers: the stack was given %s, want workers 2..10", got)
	}
	if got := changeSetParams(t, srv); got["WorkerMinTasks"] != "2" || got["WorkerMaxTasks"] != "10" || got["ApiTaskCount"] != "previous" {
		t.Errorf("change set parameters = %v", got)
	}
}

// Without --yes the change set is shown and nothing changes unless the
// operator says yes.
func TestScaleNotConfirmed(t *testing.T) {
	t.Parallel()
	srv, in, config := scaleFixture(t, scaleServicesTemplate)
	in.stdin = strings.NewReader("n\n")
	out := in.run(testContext(t), "scale", "workers", "--max", "6", "--config", config)
	if out.err == nil || ctl.IsUsage(out.err) || !strings.Contains(out.err.Error(), "not confirmed: acme-docs-services was not changed") {
		t.Fatalf("want exit 1, not confirmed: %v\n%s", out.err, out.all())
	}
	if !strings.Contains(out.stdout, "parameter WorkerMaxTasks = 6") || !strings.Contains(out.stderr, "Apply this change set?") {
		t.Errorf("the change set and the question are not shown:\n%s", out.all())
	}
	if got := seenCounts(t, srv); got != "2|1|4|/tether/acme-docs/migrated/sha256-"+docsvcHex {
		t.Errorf("the stack changed without confirmation: %s", got)
	}
	for _, r := range srv.Requests() {
		if r.Target == "ExecuteChangeSet" {
			t.Error("ExecuteChangeSet was called")
		}
	}
}

// Bad counts are usage mistakes (exit 2) named with the fix, found before
// anything is read or changed in AWS.
func TestScaleRejectsBadCounts(t *testing.T) {
	t.Parallel()
	srv, in, config := scaleFixture(t, scaleServicesTemplate)
	ctx := testContext(t)
	before := len(srv.Requests()) // the fixture's CreateStack
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"api"}, "pass --count N"},
		{[]string{"api", "--count", "0"}, "--count 0 is out of range: want 1 to 50"},
		{[]string{"api", "--count", "51"}, "--count 51 is out of range: want 1 to 50"},
		{[]string{"api", "--count", "two"}, `"two" is not a whole number`},
		{[]string{"api", "--min", "1"}, "flag provided but not defined: -min"},
		{[]string{"workers"}, "pass --min N, --max M or both"},
		{[]string{"workers", "--min", "5", "--max", "3"}, "--min 5 is above --max 3"},
		{[]string{"workers", "--max", "0"}, "--max 0 is out of range: want 1 to 200"},
		{[]string{"workers", "--min", "-1"}, "--min -1 is out of range: want 0 to 200"},
		{[]string{"workers", "--min", "201"}, "--min 201 is out of range"},
		{[]string{"database", "--count", "2"}, `"database" is not something to scale: want workers or api`},
	} {
		out := in.run(ctx, append(append([]string{"scale"}, c.args...), "--config", config, "--yes")...)
		if !ctl.IsUsage(out.err) || !strings.Contains(out.err.Error(), c.want) {
			t.Errorf("scale %v: want a usage error saying %q, got %v", c.args, c.want, out.err)
		}
	}
	if n := len(srv.Requests()) - before; n != 0 {
		t.Errorf("bad counts reached AWS: %d calls", n)
	}
	// A bound known only from the stack: the workers' minimum is 1, their
	// maximum cannot go below it.
	out := in.run(ctx, "scale", "workers", "--min", "6", "--config", config, "--yes")
	if !ctl.IsUsage(out.err) || !strings.Contains(out.err.Error(), "--min 6 would leave the workers' minimum above their maximum (the stack's maximum is 4)") {
		t.Errorf("min above the stack's max: %v", out.err)
	}
	if got := seenCounts(t, srv); got != "2|1|4|/tether/acme-docs/migrated/sha256-"+docsvcHex {
		t.Errorf("the stack changed: %s", got)
	}
	multiAZ := defaultDeployment(newVendor(t))
	multiAZ.MultiAZ = true
	out = in.run(ctx, "scale", "api", "--count", "1", "--config", multiAZ.write(t), "--yes")
	if !ctl.IsUsage(out.err) || !strings.Contains(out.err.Error(), "sizing.multi_az needs at least 2 API tasks") {
		t.Errorf("one API task with multi_az: %v", out.err)
	}
	help := in.run(ctx, "scale", "--help")
	if help.err != nil || !strings.Contains(help.stdout, "tetherctl scale workers") || !strings.Contains(help.stdout, "1 to 50") {
		t.Errorf("scale --help: %v\n%s", help.err, help.stdout)
	}
}

// A services stack deployed before the counts were parameters is named,
// with what to do.
func TestScaleOldStack(t *testing.T) {
	t.Parallel()
	srv, in, config := scaleFixture(t, `{"Resources":{"Handle":{"Type":"AWS::CloudFormation::WaitConditionHandle"}}}`)
	out := in.run(testContext(t), "scale", "api", "--count", "3", "--config", config, "--yes")
	if out.err == nil || ctl.IsUsage(out.err) || !strings.Contains(out.err.Error(), "the acme-docs-services stack has no ApiTaskCount parameter: it was deployed by an earlier tetherctl; run tetherctl deploy") {
		t.Fatalf("got %v", out.err)
	}
	for _, r := range srv.Requests() {
		if r.Target == "CreateChangeSet" {
			t.Error("a change set was made")
		}
	}
}

package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/deployconfig"
)

// The deploy tests poll moto, which answers at once, so they poll often.
func init() { stackPoll = 20 * time.Millisecond }

// bootstrapMoto makes moto look bootstrapped as cdk bootstrap leaves an
// account: the version parameter and the assets bucket.
// (TestBootstrapRunsTheCDKCLI runs the real CDK CLI against moto.)
func bootstrapMoto(t testing.TB, srv *awstest.Server, version string) {
	t.Helper()
	srv.PutParameter(t, "/cdk-bootstrap/hnb659fds/version", version, false)
	_, err := srv.S3().CreateBucket(context.Background(), &s3.CreateBucketInput{
		Bucket: aws.String("cdk-hnb659fds-assets-" + awstest.Account + "-" + awstest.Region)})
	if err != nil {
		t.Fatal(err)
	}
}

// bootstrappedMoto is an emulator bootstrapped at version (none when
// empty) and a session for a deployment in it.
func bootstrappedMoto(t testing.TB, version string) (*awstest.Server, *awsSession) {
	t.Helper()
	srv := awstest.Start(t)
	dc, _ := testDeployment(t, deployconfig.ImagesVendor)
	if version != "" {
		bootstrapMoto(t, srv, version)
	}
	return srv, testSession(t, srv, dc)
}

func readTestAssembly(t testing.TB, m *motoAssembly) *assembly {
	t.Helper()
	asm, err := readAssembly(m.Dir, awstest.Account, awstest.Region)
	if err != nil {
		t.Fatal(err)
	}
	return asm
}

// targets lists the operations the code sent moto, in order.
func targets(srv *awstest.Server) []string {
	var out []string
	for _, r := range srv.Requests() {
		if r.Target != "" {
			out = append(out, r.Target)
		}
	}
	return out
}

// requestForm is the form of the last query-protocol call of an operation.
func requestForm(t testing.TB, srv *awstest.Server, target string) url.Values {
	t.Helper()
	var form url.Values
	for _, r := range srv.Requests() {
		if r.Target == target {
			f, err := url.ParseQuery(string(r.Body))
			if err != nil {
				t.Fatal(err)
			}
			form = f
		}
	}
	if form == nil {
		t.Fatalf("no %s call", target)
	}
	return form
}

// Two real stacks (network, images) go through change sets as cdk deploy
// sends them; a second run finds nothing to change.
func TestDeployStackThroughChangeSets(t *testing.T) {
	t.Parallel()
	srv, a := bootstrappedMoto(t, "21")
	// moto has no UpdateTerminationProtection: the manifest asks for none.
	m := newMotoAssembly(t, assemblyOptions{unprotected: true, only: []string{"network", "images"}})
	m.logSwapped(t)
	asm := readTestAssembly(t, m)
	ctx := releaseContext(t)

	for _, st := range asm.Stacks {
		var out bytes.Buffer
		res, err := deployStack(ctx, a, stackDeploy{Stack: st, Qualifier: "hnb659fds", Progress: &out, Dir: m.Dir})
		if err != nil {
			t.Fatalf("%s: %v\n%s", st.StackName, err, out.String())
		}
		if res.Action != actionCreated || res.Status != "CREATE_COMPLETE" {
			t.Errorf("%s: %+v", st.StackName, res)
		}
		// One line per event: time, logical id, type, status.
		line := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d  ` + st.StackName + ` +AWS::CloudFormation::Stack +CREATE_COMPLETE`)
		if !line.MatchString(out.String()) {
			t.Errorf("%s: no event line for the stack's CREATE_COMPLETE:\n%s", st.StackName, out.String())
		}
		form := requestForm(t, srv, "CreateChangeSet")
		want := map[string]string{
			"ChangeSetType":                    "CREATE",
			"RoleARN":                          "arn:aws:iam::" + awstest.Account + ":role/cdk-hnb659fds-cfn-exec-role-" + awstest.Account + "-" + awstest.Region,
			"Capabilities.member.1":            "CAPABILITY_IAM",
			"Capabilities.member.2":            "CAPABILITY_NAMED_IAM",
			"Capabilities.member.3":            "", // no CAPABILITY_AUTO_EXPAND: no macros
			"Tags.member.1.Key":                "tether:deployment",
			"Parameters.member.1.ParameterKey": "",
		}
		for k, v := range want {
			if got := form.Get(k); got != v {
				t.Errorf("%s: CreateChangeSet %s = %q, want %q", st.StackName, k, got, v)
			}
		}
	}
	m.checkNothingSkipped(t, ctx, a)

	for _, st := range asm.Stacks {
		var out bytes.Buffer
		res, err := deployStack(ctx, a, stackDeploy{Stack: st, Qualifier: "hnb659fds", Progress: &out, Dir: m.Dir})
		if err != nil {
			t.Fatalf("second run of %s: %v", st.StackName, err)
		}
		if res.Action != actionUnchanged || !strings.Contains(out.String(), st.StackName+": no changes") {
			t.Errorf("second run of %s: %+v\n%s", st.StackName, res, out.String())
		}
	}
	if n := strings.Count(strings.Join(targets(srv), " "), "ExecuteChangeSet"); n != 2 {
		t.Errorf("%d change sets executed, want 2 (the second run changes nothing)", n)
	}
}

// A template over CloudFormation's inline limit goes through the bootstrap
// bucket, under its SHA-256, and is passed by URL.
func TestDeployStackUploadsLargeTemplates(t *testing.T) {
	t.Parallel()
	srv, a := bootstrappedMoto(t, "21")
	m := newMotoAssembly(t, assemblyOptions{unprotected: true, only: []string{"images"}, edit: func(_ string, tpl map[string]any) {
		tpl["Metadata"] = map[string]any{"padding": strings.Repeat("x", maxTemplateBody)}
	}})
	st := readTestAssembly(t, m).Stacks[0]
	if len(st.Template) <= maxTemplateBody {
		t.Fatalf("the template is %d bytes, not over the limit", len(st.Template))
	}
	var out bytes.Buffer
	if _, err := deployStack(releaseContext(t), a, stackDeploy{Stack: st, Qualifier: "hnb659fds", Progress: &out, Dir: m.Dir}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	form := requestForm(t, srv, "CreateChangeSet")
	u := form.Get("TemplateURL")
	want := "https://s3." + awstest.Region + ".amazonaws.com/cdk-hnb659fds-assets-" + awstest.Account + "-" + awstest.Region + "/"
	if !strings.HasPrefix(u, want) || form.Get("TemplateBody") != "" {
		t.Fatalf("TemplateURL %q, TemplateBody %d bytes; want a URL under %s and no body", u, len(form.Get("TemplateBody")), want)
	}
	key := strings.TrimPrefix(u, want)
	obj, err := srv.S3().GetObject(context.Background(), &s3.GetObjectInput{
		Bucket: aws.String("cdk-hnb659fds-assets-" + awstest.Account + "-" + awstest.Region), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("the template is not in the bootstrap bucket: %v", err)
	}
	var got bytes.Buffer
	_, _ = got.ReadFrom(obj.Body)
	if !bytes.Equal(got.Bytes(), st.Template) {
		t.Error("the uploaded template differs from the synthesized one")
	}
}

// Without the bootstrap, or with one too old, nothing reaches
// CloudFormation and the error names tetherctl bootstrap.
func TestDeployStackNeedsTheBootstrap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ version, want string }{
		{"", "not bootstrapped for the CDK with qualifier hnb659fds"},
		{"5", "is version 5, but acme-docs-images needs 6 or later"},
	} {
		srv, a := bootstrappedMoto(t, tc.version)
		m := newMotoAssembly(t, assemblyOptions{only: []string{"images"}})
		st := readTestAssembly(t, m).Stacks[0]
		_, err := deployStack(releaseContext(t), a, stackDeploy{Stack: st, Qualifier: "hnb659fds", Progress: &bytes.Buffer{}, Dir: m.Dir})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "tetherctl bootstrap") {
			t.Errorf("bootstrap version %q: %v; want %q and the fix", tc.version, err, tc.want)
		}
		for _, op := range targets(srv) {
			if strings.Contains(op, "ChangeSet") {
				t.Errorf("bootstrap version %q: %s was called", tc.version, op)
			}
		}
	}
}

// A template moto refuses fails the stack with moto's reason, and nothing
// is reported as deployed.
func TestDeployStackFailureSaysWhy(t *testing.T) {
	t.Parallel()
	_, a := bootstrappedMoto(t, "21")
	m := newMotoAssembly(t, assemblyOptions{unprotected: true, only: []string{"images"}, edit: func(_ string, tpl map[string]any) {
		res := tpl["Resources"].(map[string]any)
		res["BrokenRole"] = map[string]any{
			"Type": "AWS::IAM::Role",
			"Properties": map[string]any{
				"AssumeRolePolicyDocument": map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
					"Effect": "Allow", "Principal": map[string]any{"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}}},
			},
		}
		res["BrokenPolicy"] = map[string]any{
			"Type": "AWS::IAM::Policy",
			"Properties": map[string]any{
				"PolicyName": "broken", "Roles": []any{map[string]any{"Ref": "BrokenRole"}},
				"PolicyDocument": map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
					"Effect": "Allow", "Action": "s3:GetObject", "Resource": "not-an-arn"}}},
			},
		}
	}})
	st := readTestAssembly(t, m).Stacks[0]
	res, err := deployStack(releaseContext(t), a, stackDeploy{Stack: st, Qualifier: "hnb659fds", Progress: &bytes.Buffer{}, Dir: m.Dir})
	if err == nil || !strings.Contains(err.Error(), "acme-docs-images") || !strings.Contains(err.Error(), "not-an-arn") {
		t.Fatalf("got %v; want the stack and moto's reason (the policy's bad resource)", err)
	}
	if res.Action != "" {
		t.Errorf("reported as %s", res.Action)
	}
	t.Logf("the failure: %v", err)
}

// moto's CloudFormation creates or fails resources synchronously and never
// reports a resource event in a FAILED state or a rollback, so the choice
// of the reason to quote is tested on the SDK's event types, in the order
// CloudFormation reports a failed create.
func TestFirstFailureQuotesTheCause(t *testing.T) {
	t.Parallel()
	ev := func(id, typ, status, reason string) cfntypes.StackEvent {
		return cfntypes.StackEvent{LogicalResourceId: aws.String(id), ResourceType: aws.String(typ),
			ResourceStatus: cfntypes.ResourceStatus(status), ResourceStatusReason: aws.String(reason), Timestamp: aws.Time(time.Now())}
	}
	events := []cfntypes.StackEvent{
		ev("acme-docs-data", "AWS::CloudFormation::Stack", "CREATE_IN_PROGRESS", "User Initiated"),
		ev("Documents", "AWS::S3::Bucket", "CREATE_IN_PROGRESS", ""),
		ev("Database", "AWS::RDS::DBInstance", "CREATE_FAILED", "Resource handler returned message: \"Cannot find version 16.1 for postgres\""),
		ev("Documents", "AWS::S3::Bucket", "CREATE_FAILED", "Resource creation cancelled"),
		ev("acme-docs-data", "AWS::CloudFormation::Stack", "ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create: [Database, Documents]."),
		ev("acme-docs-data", "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE", ""),
	}
	e, ok := firstFailure(events)
	if !ok || aws.ToString(e.LogicalResourceId) != "Database" {
		t.Fatalf("first failure: %v %v", aws.ToString(e.LogicalResourceId), ok)
	}
	err := deployFailure("acme-docs-data", &cfntypes.Stack{StackStatus: cfntypes.StackStatusRollbackComplete}, events)
	for _, want := range []string{"acme-docs-data ended in ROLLBACK_COMPLETE", "Database (AWS::RDS::DBInstance) CREATE_FAILED", "Cannot find version 16.1", "delete-stack --stack-name acme-docs-data"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nlacks %q", err, want)
		}
	}
	// Only cancellations: one of them is better than nothing.
	if e, ok := firstFailure(events[3:4]); !ok || aws.ToString(e.LogicalResourceId) != "Documents" {
		t.Errorf("cancellation only: %v", ok)
	}
	if _, ok := firstFailure(events[:2]); ok {
		t.Error("a failure found where there is none")
	}
}

// The parameters of a change set: given values win; on an update, the
// others keep their previous value, except SSM-typed ones, whose template
// default names the parameter of this synthesis.
func TestChangeSetParameters(t *testing.T) {
	t.Parallel()
	def := "x"
	st := &stackArtifact{StackName: "acme-docs-services", Parameters: map[string]templateParameter{
		"DocsvcImage":      {Type: "AWS::SSM::Parameter::Value<String>", Default: &def},
		"BootstrapVersion": {Type: "AWS::SSM::Parameter::Value<String>", Default: &def},
		"Plain":            {Type: "String", Default: &def},
		"Required":         {Type: "String"},
	}}
	prev := &cfntypes.Stack{StackStatus: cfntypes.StackStatusUpdateComplete, Parameters: []cfntypes.Parameter{
		{ParameterKey: aws.String("BootstrapVersion")}, {ParameterKey: aws.String("Plain")}, {ParameterKey: aws.String("Required")}}}
	got, err := changeSetParameters(st, map[string]string{"DocsvcImage": "/tether/acme-docs/migrated/sha256-1"}, prev)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	want := `[{"ParameterKey":"DocsvcImage","ParameterValue":"/tether/acme-docs/migrated/sha256-1","ResolvedValue":null,"UsePreviousValue":null},` +
		`{"ParameterKey":"Plain","ParameterValue":null,"ResolvedValue":null,"UsePreviousValue":true},` +
		`{"ParameterKey":"Required","ParameterValue":null,"ResolvedValue":null,"UsePreviousValue":true}]`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	if _, err := changeSetParameters(st, nil, nil); err == nil || !strings.Contains(err.Error(), "Required has no default") {
		t.Errorf("a new stack without Required: %v", err)
	}
	if _, err := changeSetParameters(st, map[string]string{"Nope": "1"}, nil); err == nil || !strings.Contains(err.Error(), "no parameter Nope") {
		t.Errorf("an unknown parameter: %v", err)
	}
}

// Stability is judged as the AWS CLI's services-stable waiter does, and
// the rollout must be COMPLETED. moto's services never reach it (their
// running count is fixed when they are created and their rollout stays
// IN_PROGRESS), so the decision is tested on the SDK's types.
func TestServiceStable(t *testing.T) {
	t.Parallel()
	dep := func(status string, state ecstypes.DeploymentRolloutState) ecstypes.Deployment {
		return ecstypes.Deployment{Status: aws.String(status), RolloutState: state}
	}
	for _, tc := range []struct {
		name string
		s    ecstypes.Service
		want bool
	}{
		{"steady", ecstypes.Service{DesiredCount: 2, RunningCount: 2, Deployments: []ecstypes.Deployment{dep("PRIMARY", "COMPLETED")}}, true},
		{"starting", ecstypes.Service{DesiredCount: 2, RunningCount: 1, Deployments: []ecstypes.Deployment{dep("PRIMARY", "IN_PROGRESS")}}, false},
		{"rolling", ecstypes.Service{DesiredCount: 2, RunningCount: 2, Deployments: []ecstypes.Deployment{dep("PRIMARY", "IN_PROGRESS"), dep("ACTIVE", "COMPLETED")}}, false},
		{"counts match, rollout not done", ecstypes.Service{DesiredCount: 1, RunningCount: 1, Deployments: []ecstypes.Deployment{dep("PRIMARY", "IN_PROGRESS")}}, false},
		{"failed", ecstypes.Service{DesiredCount: 1, RunningCount: 0, Deployments: []ecstypes.Deployment{dep("PRIMARY", "FAILED")},
			Events: []ecstypes.ServiceEvent{{Message: aws.String("(service api) failed to launch a task: CannotPullContainerError")}}}, false},
	} {
		ok, state := serviceStable(tc.s)
		if ok != tc.want {
			t.Errorf("%s: stable = %t (%s)", tc.name, ok, state)
		}
		if tc.name == "failed" && !strings.Contains(state, "CannotPullContainerError") {
			t.Errorf("the failed service's state does not say why: %s", state)
		}
	}
}

// Services that never become stable fail the wait when its time runs out,
// saying where each stands.
func TestWaitServicesReportsWhatIsNotStable(t *testing.T) {
	t.Parallel()
	srv, a := bootstrappedMoto(t, "")
	client := ecs.NewFromConfig(srv.AWSConfig())
	ctx := releaseContext(t)
	if _, err := client.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("tether-acme-docs")}); err != nil {
		t.Fatal(err)
	}
	td, err := client.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("api"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("api"), Image: aws.String("x"), Memory: aws.Int32(512)}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("tether-acme-docs"), ServiceName: aws.String("api"),
		TaskDefinition: td.TaskDefinition.TaskDefinitionArn, DesiredCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err = waitServices(wctx, a, "tether-acme-docs", &out)
	if err == nil || !strings.Contains(err.Error(), "api (0/2 tasks running, deployment IN_PROGRESS") || !strings.Contains(err.Error(), "tetherctl deploy again") {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(out.String(), "api: 0/2 tasks running") {
		t.Errorf("progress: %s", out.String())
	}
}

// The swap list can only shrink: each listed type must still be one moto
// cannot create as the templates use it.
func TestMotoSwappedTypesStillNeeded(t *testing.T) {
	t.Parallel()
	srv := awstest.Start(t)
	// One attempt each: moto answers 500 for what it fails on, and a
	// retry would meet the half-made stack.
	cfn := cloudformation.NewFromConfig(srv.AWSConfig(), func(o *cloudformation.Options) { o.RetryMaxAttempts = 1 })
	ctx := releaseContext(t)
	listed := map[string]bool{}
	for _, s := range readSwappedTypes(t) {
		listed[s.Type] = true
	}
	// What moto fails on, for the types it has a model for.
	fails := map[string]map[string]any{
		"AWS::KMS::Key": {"K": map[string]any{"Type": "AWS::KMS::Key", "Properties": map[string]any{
			"KeyPolicy": map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{"Effect": "Allow",
				"Principal": map[string]any{"AWS": "arn:aws:iam::" + awstest.Account + ":root"}, "Action": "kms:*", "Resource": "*"}}},
			"Tags": []any{map[string]any{"Key": "tether:deployment", "Value": "acme-docs"}}}}},
		"AWS::SSM::Parameter": {"P": map[string]any{"Type": "AWS::SSM::Parameter", "Properties": map[string]any{
			"Type": "String", "Value": "v", "Tags": map[string]any{"tether:deployment": "acme-docs"}}}},
		"AWS::RDS::DBInstance": {
			"G": map[string]any{"Type": "AWS::RDS::DBParameterGroup", "Properties": map[string]any{"Family": "postgres16", "Description": "d", "Parameters": map[string]any{"rds.force_ssl": "1"}}},
			"D": map[string]any{"Type": "AWS::RDS::DBInstance", "Properties": map[string]any{"Engine": "postgres", "DBInstanceClass": "db.t4g.medium",
				"AllocatedStorage": "50", "MasterUsername": "tether", "MasterUserPassword": "password123", "DBParameterGroupName": map[string]any{"Ref": "G"}}}},
		"AWS::EFS::FileSystem": {
			"F": map[string]any{"Type": "AWS::EFS::FileSystem", "Properties": map[string]any{"Encrypted": true}},
			"S": map[string]any{"Type": "AWS::SQS::Queue", "Properties": map[string]any{"QueueName": map[string]any{"Fn::Join": []any{"-", []any{"q", map[string]any{"Fn::Select": []any{5, map[string]any{"Fn::Split": []any{":", map[string]any{"Fn::GetAtt": []any{"F", "Arn"}}}}}}}}}}}},
	}
	for i, s := range readSwappedTypes(t) {
		name := "probe-" + strings.NewReplacer("::", "-").Replace(s.Type)
		switch {
		case strings.HasPrefix(s.Why, "its "):
			// Swapped because its target is: needed while the target is listed.
			target := s.Why[strings.LastIndex(s.Why, " ")+1:]
			if !listed[target] {
				t.Errorf("%s is listed because of %s, which no longer is: remove it from testdata/moto-swapped-types.txt", s.Type, target)
			}
		case s.Why == "no moto model":
			body, _ := json.Marshal(map[string]any{"Resources": map[string]any{"R": map[string]any{"Type": s.Type, "Properties": map[string]any{}}}})
			_, err := cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(string(body))})
			if err != nil {
				t.Errorf("moto now tries to create %s (%v): it has a model for it; see whether the deploy test passes with it removed from testdata/moto-swapped-types.txt", s.Type, err)
				continue
			}
			res, err := cfn.ListStackResources(ctx, &cloudformation.ListStackResourcesInput{StackName: aws.String(name)})
			if err != nil {
				t.Fatal(err)
			}
			// moto lists a resource it skipped with an empty type.
			created := slices.ContainsFunc(res.StackResourceSummaries, func(r cfntypes.StackResourceSummary) bool {
				return aws.ToString(r.ResourceType) == s.Type
			})
			if created {
				t.Errorf("moto now creates %s: remove it from testdata/moto-swapped-types.txt", s.Type)
			}
		default:
			probe, ok := fails[s.Type]
			if !ok {
				t.Errorf("line %d: no probe for %s (%s): add one to this test", i+1, s.Type, s.Why)
				continue
			}
			body, _ := json.Marshal(map[string]any{"Resources": probe})
			_, err := cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(string(body))})
			if err == nil {
				t.Errorf("moto now creates %s as the templates use it: remove it from testdata/moto-swapped-types.txt", s.Type)
			} else {
				t.Logf("%s still fails in moto: %s", s.Type, describeAWSError(err))
			}
		}
	}
}

package ctl

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/deployconfig"
)

// moto does not implement SimulatePrincipalPolicy (HTTP 500; see
// docs/decisions/0007-aws-api-emulator.md), so what the check concludes
// from the simulator's answer is tested here on iam's output types, as
// AWS documents them: per-resource results when ResourceArns are given,
// an overall decision otherwise.
func TestPermissionsDecision(t *testing.T) {
	allowed, implicit, explicit := iamtypes.PolicyEvaluationDecisionTypeAllowed, iamtypes.PolicyEvaluationDecisionTypeImplicitDeny, iamtypes.PolicyEvaluationDecisionTypeExplicitDeny
	results := []iamtypes.EvaluationResult{
		{EvalActionName: aws.String("ecs:RunTask"), EvalDecision: allowed, ResourceSpecificResults: []iamtypes.ResourceSpecificResult{
			{EvalResourceName: aws.String("arn:aws:ecs:eu-west-1:012345678901:task-definition/tether-acme-migrate:x"), EvalResourceDecision: allowed}}},
		// One resource of two denied: the overall decision can read
		// "allowed" only for the first; each resource counts.
		{EvalActionName: aws.String("logs:GetLogEvents"), EvalDecision: implicit, ResourceSpecificResults: []iamtypes.ResourceSpecificResult{
			{EvalResourceName: aws.String("arn:aws:logs:eu-west-1:012345678901:log-group:acme-x"), EvalResourceDecision: allowed},
			{EvalResourceName: aws.String("arn:aws:logs:eu-west-1:012345678901:log-group:/tether/acme/x"), EvalResourceDecision: implicit}}},
		{EvalActionName: aws.String("ecr:GetAuthorizationToken"), EvalResourceName: aws.String("*"), EvalDecision: explicit},
		{EvalActionName: aws.String("sts:GetCallerIdentity"), EvalResourceName: aws.String("*"), EvalDecision: allowed},
	}
	got := deniedIn(results)
	if len(got) != 2 || got[0].Action != "logs:GetLogEvents" || got[0].Resource != "arn:aws:logs:eu-west-1:012345678901:log-group:/tether/acme/x" ||
		got[0].Decision != "implicitDeny" || got[1].Action != "ecr:GetAuthorizationToken" || got[1].Decision != "explicitDeny" {
		t.Errorf("denied: %+v", got)
	}

	for caller, want := range map[string][2]string{
		"arn:aws:iam::012345678901:user/ops/alice":                   {"arn:aws:iam::012345678901:user/ops/alice", ""},
		"arn:aws:sts::012345678901:assumed-role/Deployer/alice@corp": {"arn:aws:iam::012345678901:role/Deployer", ""},
		"arn:aws-cn:sts::012345678901:assumed-role/Deployer/s":       {"arn:aws-cn:iam::012345678901:role/Deployer", ""},
		"arn:aws:iam::012345678901:root":                             {"", "root user"},
		"arn:aws:sts::012345678901:federated-user/bob":               {"", "federated user"},
		"not an arn": {"", "not one IAM can simulate"},
		"arn:aws:sts::012345678901:something/else": {"", "not an IAM user or role"},
	} {
		arn, why := simulationARN(context.Background(), nil, caller)
		if arn != want[0] || (want[1] == "") != (why == "") || !strings.Contains(why, want[1]) {
			t.Errorf("%s: simulated as %q (%q), want %q (%q)", caller, arn, why, want[0], want[1])
		}
	}
}

// An assumed role's session is simulated as its role, path included (read
// with iam:GetRole), and the simulator's failure is a WARN with its reason.
func TestPermissionsCheckSimulatesTheRole(t *testing.T) {
	t.Parallel()
	srv := awstest.Start(t)
	ctx := context.Background()
	role, err := iam.NewFromConfig(srv.AWSConfig()).CreateRole(ctx, &iam.CreateRoleInput{
		RoleName: aws.String("deployer"), Path: aws.String("/ops/"),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := sts.NewFromConfig(srv.AWSConfig()).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: role.Role.Arn, RoleSessionName: aws.String("alice")})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"] =
		aws.ToString(creds.Credentials.AccessKeyId), aws.ToString(creds.Credentials.SecretAccessKey), aws.ToString(creds.Credentials.SessionToken)
	dc := &deployconfig.Config{Name: "acme-docs", Account: awstest.Account, Region: awstest.Region, Images: deployconfig.Images{Source: deployconfig.ImagesVendor}}
	sess, err := loadAWS(ctx, Env{Getenv: func(k string) string { return env[k] }, Now: time.Now}, awsSettings{}, dc)
	if err != nil {
		t.Fatal(err)
	}
	v := checkPermissions(ctx, &preflight{dc: dc, aws: sess})
	want := "arn:aws:iam::" + awstest.Account + ":role/ops/deployer"
	if v.Status != statusWarn || !strings.Contains(v.Detail, "did not judge "+want) {
		t.Errorf("verdict %+v, want a WARN naming %s", v, want)
	}
	simulated := 0
	for _, r := range srv.Requests() {
		if r.Target == "SimulatePrincipalPolicy" {
			form, _ := url.ParseQuery(string(r.Body))
			if form.Get("PolicySourceArn") != want {
				t.Errorf("simulated %q, want %q", form.Get("PolicySourceArn"), want)
			}
			// A role passed only to one service is simulated being passed to it.
			if form.Get("ActionNames.member.1") == "iam:PassRole" &&
				(form.Get("ContextEntries.member.1.ContextKeyName") != "iam:PassedToService" || form.Get("ContextEntries.member.1.ContextKeyValues.member.1") == "") {
				t.Errorf("iam:PassRole simulated without the service it is passed to: %v", form)
			}
			simulated++
		}
	}
	if simulated == 0 {
		t.Error("the simulator was not asked")
	}
}

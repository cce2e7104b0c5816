package ctl_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/ctl"
)

// databaseResource is the data stack's database as deploy/cdk/stacks/data.go
// declares it, in the few properties moto needs: kept as a final snapshot,
// with deletion protection.
const databaseResource = `"DatabaseB269D8BB":{"Type":"AWS::RDS::DBInstance","DeletionPolicy":"Snapshot","UpdateReplacePolicy":"Snapshot",
  "Properties":{"DBInstanceClass":"db.t4g.micro","Engine":"postgres","AllocatedStorage":"20","MasterUsername":"tether",
  "MasterUserPassword":"not-a-secret-1","DeletionProtection":true}},`

// protectedDatabaseFixture is a network stack and a data stack whose
// database has deletion protection on; it returns the instance's ID.
func protectedDatabaseFixture(t *testing.T) (*awstest.Server, string, string) {
	t.Helper()
	srv := awstest.Start(t)
	config := defaultDeployment(newVendor(t)).write(t)
	deployStacks(t, srv, "acme-docs", "network")
	body := strings.Replace(strings.ReplaceAll(stackTemplates["data"], "NAME", "acme-docs"), `{"Resources":{`, `{"Resources":{`+databaseResource, 1)
	_, err := cloudformation.NewFromConfig(srv.AWSConfig()).CreateStack(context.Background(), &cloudformation.CreateStackInput{
		StackName: aws.String("acme-docs-data"), TemplateBody: aws.String(body)})
	if err != nil {
		t.Fatal(err)
	}
	id := stackResource(t, srv, "acme-docs-data", "DatabaseB269D8BB")
	// moto's CloudFormation ignores the DBInstance's DeletionProtection
	// property (docs/decisions/0007-aws-api-emulator.md, RDS), so it is
	// turned on the way RDS itself does.
	_, err = rds.NewFromConfig(srv.AWSConfig()).ModifyDBInstance(context.Background(), &rds.ModifyDBInstanceInput{
		DBInstanceIdentifier: aws.String(id), DeletionProtection: aws.Bool(true), ApplyImmediately: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if protected, ok := deletionProtection(t, srv, id); !ok || !protected {
		t.Fatalf("the fixture's database %s: exists %v, protected %v", id, ok, protected)
	}
	return srv, config, id
}

// deletionProtection is what RDS says of an instance's deletion protection,
// and whether RDS knows the instance.
func deletionProtection(t *testing.T, srv *awstest.Server, id string) (protected, exists bool) {
	t.Helper()
	out, err := rds.NewFromConfig(srv.AWSConfig()).DescribeDBInstances(context.Background(), &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(id)})
	var notFound *rdstypes.DBInstanceNotFoundFault
	if errors.As(err, &notFound) {
		return false, false
	}
	if err != nil || len(out.DBInstances) != 1 {
		t.Fatalf("describe DB instance %s: %v", id, err)
	}
	return aws.ToBool(out.DBInstances[0].DeletionProtection), true
}

// targets are the operations the code sent, after the first skip requests.
func targets(srv *awstest.Server, skip int) []string {
	var out []string
	for _, r := range srv.Requests()[skip:] {
		out = append(out, r.Target)
	}
	return out
}

// Confirmed, destroy turns the database's deletion protection off before it
// deletes anything, and the data stack then deletes (moto's stack deletion
// fails on a protected instance, as CloudFormation's does).
func TestDestroyLiftsDatabaseProtection(t *testing.T) {
	t.Parallel()
	srv, config, id := protectedDatabaseFixture(t)
	before := len(srv.Requests())
	out := invocation{env: envOf(srv.Env())}.run(testContext(t), "destroy", "--config", config, "--yes")
	if out.err != nil {
		t.Fatalf("destroy: %v\n%s", out.err, out.all())
	}
	want := "DB instance " + id + " of acme-docs-data has deletion protection: it is turned off first, then CloudFormation takes the final snapshot of DB instance " + id + " and deletes it."
	if !strings.Contains(out.stdout, want) || !strings.Contains(out.stdout, "adopt.database_snapshot: the final snapshot of DB instance "+id) {
		t.Errorf("the plan does not say %q, nor name the snapshot as adopt does:\n%s", want, out.stdout)
	}
	if !strings.Contains(out.stderr, "Turned off deletion protection on DB instance "+id+".") {
		t.Errorf("the conversation:\n%s", out.stderr)
	}
	calls := targets(srv, before)
	modify, firstDelete := slices.Index(calls, "ModifyDBInstance"), slices.Index(calls, "DeleteStack")
	if modify < 0 || firstDelete < 0 || modify > firstDelete || slices.Index(calls[modify:], "DescribeDBInstances") < 0 {
		t.Errorf("want ModifyDBInstance, then DescribeDBInstances, before the first DeleteStack; calls: %v", calls)
	}
	for _, s := range []string{"acme-docs-data", "acme-docs-network"} {
		if st := stackStatus(t, srv, s); st != "" && st != "DELETE_COMPLETE" {
			t.Errorf("stack %s is %s", s, st)
		}
	}
	// moto deletes an instance whose DeletionPolicy is Snapshot without
	// taking the final snapshot (docs/decisions/0007-aws-api-emulator.md,
	// RDS), so the test sees the instance gone, not the snapshot.
	if _, exists := deletionProtection(t, srv, id); exists {
		t.Errorf("DB instance %s is still there", id)
	}
}

// Without the name typed back, the database keeps its deletion protection.
func TestDestroyNotConfirmedKeepsDatabaseProtection(t *testing.T) {
	t.Parallel()
	srv, config, id := protectedDatabaseFixture(t)
	before := len(srv.Requests())
	out := invocation{env: envOf(srv.Env()), stdin: strings.NewReader("acme\n")}.run(testContext(t), "destroy", "--config", config)
	if out.err == nil || !strings.Contains(out.err.Error(), "nothing was deleted") {
		t.Fatalf("want a refusal, got %v\n%s", out.err, out.all())
	}
	if !strings.Contains(out.stdout, "DB instance "+id+" of acme-docs-data has deletion protection: it is turned off first") {
		t.Errorf("the plan does not say the protection is turned off:\n%s", out.stdout)
	}
	if calls := targets(srv, before); slices.Contains(calls, "ModifyDBInstance") || deleteCalls(srv) != 0 {
		t.Errorf("changes without confirmation: %v", calls)
	}
	if protected, _ := deletionProtection(t, srv, id); !protected {
		t.Error("the database lost its deletion protection")
	}
}

// An instance the stack names but RDS does not know is nothing to unprotect
// or snapshot, and the plan says so. (Deleting such a stack is not run here:
// moto's stack deletion fails on the missing instance, where CloudFormation
// takes a resource already gone as deleted: docs/decisions/0007, RDS.)
func TestDestroyPlanDatabaseGone(t *testing.T) {
	t.Parallel()
	srv, config, id := protectedDatabaseFixture(t)
	client := rds.NewFromConfig(srv.AWSConfig())
	ctx := context.Background()
	if _, err := client.ModifyDBInstance(ctx, &rds.ModifyDBInstanceInput{DBInstanceIdentifier: aws.String(id), DeletionProtection: aws.Bool(false), ApplyImmediately: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.DeleteDBInstance(ctx, &rds.DeleteDBInstanceInput{DBInstanceIdentifier: aws.String(id), SkipFinalSnapshot: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	before := len(srv.Requests())
	out := invocation{env: envOf(srv.Env()), stdin: strings.NewReader("no\n")}.run(testContext(t), "destroy", "--config", config, "--output", "json")
	if out.err == nil || !strings.Contains(out.stderr, "DB instance "+id+" of acme-docs-data is not in RDS (deleted already?): there is nothing to snapshot.") {
		t.Errorf("the plan does not say the instance is gone: %v\n%s", out.err, out.all())
	}
	var res struct {
		Plan struct {
			Databases []struct {
				Stack, Instance    string
				Exists             bool
				DeletionProtection bool `json:"deletion_protection"`
			}
		}
	}
	if err := json.Unmarshal([]byte(out.stdout), &res); err != nil {
		t.Fatalf("no JSON: %v\n%s", err, out.stdout)
	}
	if d := res.Plan.Databases; len(d) != 1 || d[0].Stack != "acme-docs-data" || d[0].Instance != id || d[0].Exists || d[0].DeletionProtection {
		t.Errorf("the JSON plan's databases: %+v", d)
	}
	if calls := targets(srv, before); slices.Contains(calls, "ModifyDBInstance") {
		t.Errorf("modified a missing instance: %v", calls)
	}
}

// When RDS cannot be asked (here it cannot be reached; moto's server does
// not enforce IAM, so an AccessDenied answer cannot be had from it:
// docs/decisions/0007, RDS), destroy
// stops before it changes anything, naming the instance, the call and the
// permissions to check.
func TestDestroyDatabaseUnreadable(t *testing.T) {
	t.Parallel()
	srv, config, id := protectedDatabaseFixture(t)
	env := envOf(srv.Env(), []string{"AWS_ENDPOINT_URL_RDS=http://127.0.0.1:1"})
	out := invocation{env: env}.run(testContext(t), "destroy", "--config", config, "--yes")
	if out.err == nil || ctl.IsUsage(out.err) {
		t.Fatalf("want exit 1, got %v\n%s", out.err, out.all())
	}
	for _, want := range []string{"reading DB instance " + id + " of stack acme-docs-data (RDS DescribeDBInstances)", "cannot reach", "rds:ModifyDBInstance", "docs/iam.md", "nothing was deleted"} {
		if !strings.Contains(out.err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, out.err)
		}
	}
	if n := deleteCalls(srv); n != 0 {
		t.Errorf("%d delete calls after RDS could not be read", n)
	}
	if protected, _ := deletionProtection(t, srv, id); !protected {
		t.Error("the database lost its deletion protection")
	}
}

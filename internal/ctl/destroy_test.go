package ctl_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/ctl"
)

// destroyFixture is a whole deployment, its markers, a marker of another
// deployment and a config parameter of this one (neither of which is
// destroy's to delete).
func destroyFixture(t *testing.T) (*awstest.Server, invocation, string) {
	t.Helper()
	srv := awstest.Start(t)
	config := defaultDeployment(newVendor(t)).write(t)
	deployStacks(t, srv, "acme-docs", allStacks...)
	srv.PutParameter(t, "/tether/acme-docs/migrated/sha256-"+strings.Repeat("3", 64), "sha256:"+strings.Repeat("3", 64), false)
	srv.PutParameter(t, "/tether/acme-docs2/migrated/sha256-"+docsvcHex, "sha256:"+docsvcHex, false)
	srv.PutParameter(t, "/tether/acme-docs/config/plane_url", "https://plane.vendor.example", false)
	srv.PutParameter(t, "/tether/acme-docs/state/releases", "[]", false)
	return srv, invocation{env: envOf(srv.Env())}, config
}

func parameterExists(t *testing.T, srv *awstest.Server, name string) bool {
	t.Helper()
	_, err := ssm.NewFromConfig(srv.AWSConfig()).GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil && !strings.Contains(err.Error(), "ParameterNotFound") {
		t.Fatal(err)
	}
	return err == nil
}

func deleteCalls(srv *awstest.Server) (n int) {
	for _, r := range srv.Requests() {
		if r.Target == "DeleteStack" || r.Target == "AmazonSSM.DeleteParameters" || r.Target == "UpdateTerminationProtection" {
			n++
		}
	}
	return n
}

// Confirmed by name, destroy deletes the stacks newest first and the
// markers, keeps what the templates retain, and says how to take it back.
func TestDestroy(t *testing.T) {
	t.Parallel()
	srv, in, config := destroyFixture(t)
	bucket := stackResource(t, srv, "acme-docs-data", "Documents7E5B2978")
	jobs := stackResource(t, srv, "acme-docs-data", "JobsDF1CC2D4")
	scratch := stackResource(t, srv, "acme-docs-data", "Scratch")
	in.stdin = strings.NewReader("acme-docs\n")
	out := in.run(testContext(t), "destroy", "--config", config)
	if out.err != nil {
		t.Fatalf("destroy: %v\n%s", out.err, out.all())
	}
	plan := out.stdout
	order := []string{"1. acme-docs-services", "2. acme-docs-cluster", "3. acme-docs-images", "4. acme-docs-data", "5. acme-docs-network"}
	last := -1
	for _, s := range order {
		i := strings.Index(plan, s)
		if i < last {
			t.Errorf("the plan does not list %q after the stacks before it:\n%s", s, plan)
		}
		last = i
	}
	for _, want := range []string{"Markers to delete", ": 4 under /tether/acme-docs/migrated/, /verified/ and /state/", "AWS::S3::Bucket", bucket, "AWS::KMS::Key",
		"AWS::Logs::LogGroup", "/tether/acme-docs/database", "[acme-docs-data Documents7E5B2978]", "docs/deployment-config.md",
		"adopt.documents_bucket: " + bucket, "adopt.keys.data: arn:aws:kms:" + awstest.Region + ":" + awstest.Account + ":key/"} {
		if !strings.Contains(plan, want) {
			t.Errorf("the output does not show %q:\n%s", want, plan)
		}
	}
	if strings.Contains(plan, scratch) {
		t.Errorf("a resource deleted with its stack is listed as kept:\n%s", plan)
	}
	if !strings.Contains(out.stderr, "Type the deployment's name (acme-docs)") || !strings.Contains(out.stderr, "Deleted 5 stacks and 4 markers") {
		t.Errorf("the conversation:\n%s", out.stderr)
	}

	// The stacks went in reverse order.
	var deleted []string
	for _, r := range srv.Requests() {
		if r.Target == "DeleteStack" {
			for _, s := range allStacks {
				if strings.Contains(string(r.Body), "acme-docs-"+s) {
					deleted = append(deleted, s)
				}
			}
		}
	}
	if strings.Join(deleted, ",") != "services,cluster,images,data,network" {
		t.Errorf("stacks deleted in the order %v", deleted)
	}
	for _, s := range allStacks {
		if st := stackStatus(t, srv, "acme-docs-"+s); st != "" && st != "DELETE_COMPLETE" {
			t.Errorf("stack %s is %s", s, st)
		}
	}
	if parameterExists(t, srv, "/tether/acme-docs/migrated/sha256-"+docsvcHex) || parameterExists(t, srv, "/tether/acme-docs/verified/agent/sha256-"+agentHex) {
		t.Error("a marker is left")
	}
	if parameterExists(t, srv, "/tether/acme-docs/state/releases") {
		t.Error("the release history is left: a deployment re-created under the name would inherit its previous release")
	}
	if !parameterExists(t, srv, "/tether/acme-docs2/migrated/sha256-"+docsvcHex) || !parameterExists(t, srv, "/tether/acme-docs/config/plane_url") {
		t.Error("destroy deleted a parameter that is not one of its markers")
	}
	// What the template retains is still there; what it does not is gone.
	if _, err := srv.S3().HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Errorf("the documents bucket is gone: %v", err)
	}
	if _, err := srv.SQS().GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(jobs)}); err != nil {
		t.Errorf("the retained jobs queue is gone: %v", err)
	}
	if _, err := srv.SQS().GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(scratch)}); err == nil {
		t.Error("the stack's unretained queue was not deleted with it")
	}

	// Again: nothing left to do.
	again := invocation{env: in.env}.run(testContext(t), "destroy", "--config", config, "--yes")
	if again.err != nil || !strings.Contains(again.stdout, "nothing to delete") {
		t.Errorf("a second destroy: %v\n%s", again.err, again.all())
	}
}

// Anything but the name typed back deletes nothing.
func TestDestroyNotConfirmed(t *testing.T) {
	t.Parallel()
	srv, in, config := destroyFixture(t)
	for _, stdin := range []string{"acme\n", "", "yes\n"} {
		in.stdin = strings.NewReader(stdin)
		out := in.run(testContext(t), "destroy", "--config", config)
		if out.err == nil || ctl.IsUsage(out.err) || !strings.Contains(out.err.Error(), "nothing was deleted") {
			t.Errorf("stdin %q: want exit 1 saying nothing was deleted, got %v", stdin, out.err)
		}
	}
	if n := deleteCalls(srv); n != 0 {
		t.Fatalf("%d delete calls without confirmation", n)
	}
	if st := stackStatus(t, srv, "acme-docs-data"); st != "CREATE_COMPLETE" {
		t.Errorf("the data stack is %s", st)
	}
}

// --yes --output json deletes without asking and prints plan and outcome.
func TestDestroyYesJSON(t *testing.T) {
	t.Parallel()
	srv, in, config := destroyFixture(t)
	bucket := stackResource(t, srv, "acme-docs-data", "Documents7E5B2978")
	out := in.run(testContext(t), "destroy", "--config", config, "--yes", "--output", "json")
	if out.err != nil {
		t.Fatalf("destroy: %v\n%s", out.err, out.all())
	}
	var res struct {
		Plan struct {
			Stacks   []struct{ Name string }
			Retained []struct {
				Type       string
				PhysicalID string `json:"physical_id"`
				Policy     string
			}
			Markers []string
		}
		Confirmed      bool
		DeletedStacks  []string `json:"deleted_stacks"`
		DeletedMarkers []string `json:"deleted_markers"`
	}
	if err := json.Unmarshal([]byte(out.stdout), &res); err != nil {
		t.Fatalf("no JSON: %v\n%s", err, out.stdout)
	}
	if !res.Confirmed || len(res.DeletedStacks) != 5 || res.DeletedStacks[0] != "acme-docs-services" || len(res.DeletedMarkers) != 4 {
		t.Errorf("outcome: %+v", res)
	}
	found := false
	for _, r := range res.Plan.Retained {
		if r.Type == "AWS::S3::Bucket" && r.PhysicalID == bucket && r.Policy == "Retain" {
			found = true
		}
	}
	if !found {
		t.Errorf("the bucket is not among the retained: %+v", res.Plan.Retained)
	}
}

package ctl

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
)

// moto does not implement termination protection (CreateStack's
// EnableTerminationProtection is not enforced and UpdateTerminationProtection
// is missing; docs/decisions/0007-aws-api-emulator.md), so which stacks
// destroy unprotects is decided here on DescribeStacks' output, as AWS
// reports the data and images stacks the CDK app deploys protected.
func TestStacksToUnprotect(t *testing.T) {
	described := map[string]*cfntypes.Stack{
		"acme-services": {StackId: aws.String("id-s"), StackStatus: cfntypes.StackStatusUpdateComplete, EnableTerminationProtection: aws.Bool(false)},
		"acme-images":   {StackId: aws.String("id-i"), StackStatus: cfntypes.StackStatusUpdateComplete, EnableTerminationProtection: aws.Bool(true)},
		"acme-data":     {StackId: aws.String("id-d"), StackStatus: cfntypes.StackStatusCreateComplete, EnableTerminationProtection: aws.Bool(true)},
		"acme-network":  {StackId: aws.String("id-n"), StackStatus: cfntypes.StackStatusCreateComplete},
	}
	plan := &destroyPlan{}
	for _, name := range []string{"acme-services", "acme-images", "acme-data", "acme-network"} {
		plan.Stacks = append(plan.Stacks, plannedFrom(name, described[name]))
	}
	if got := stacksToUnprotect(plan); !slices.Equal(got, []string{"acme-images", "acme-data"}) {
		t.Errorf("unprotects %v", got)
	}
	var b strings.Builder
	writeDestroyPlan(&b, plan)
	if !strings.Contains(b.String(), "acme-data  CREATE_COMPLETE (termination protection is turned off first)") {
		t.Errorf("the plan does not say protection is turned off:\n%s", b.String())
	}
}

func TestRetentionPolicies(t *testing.T) {
	yamlTemplate := `
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    DeletionPolicy: Retain
    Properties:
      BucketName: !Sub "${AWS::StackName}-docs"
  Db:
    Type: AWS::RDS::DBInstance
    DeletionPolicy: Snapshot
  Topic:
    Type: AWS::SNS::Topic
  Gone:
    Type: AWS::SQS::Queue
    DeletionPolicy: Delete
  Maybe:
    Type: AWS::SQS::Queue
    DeletionPolicy: {"Fn::If": ["Prod", "Retain", "Delete"]}
`
	got, err := retentionPolicies([]byte(yamlTemplate))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"Bucket": "Retain", "Db": "Snapshot", "Maybe": "conditional"}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	for _, bad := range []string{`{"Resources":{"X":{"DeletionPolicy":"Keep"}}}`, "[1,", "Resources: 3"} {
		if _, err := retentionPolicies([]byte(bad)); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

// Whatever GetTemplate returns, reading it ends in policies or an error.
func FuzzRetentionPolicies(f *testing.F) {
	f.Add([]byte(`{"Resources":{"B":{"Type":"AWS::S3::Bucket","DeletionPolicy":"Retain"}}}`))
	f.Add([]byte("Resources:\n  A:\n    DeletionPolicy: !If [c, Retain, Delete]\n"))
	f.Add([]byte(`{"Resources":{"X":{"DeletionPolicy":"Keep"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := retentionPolicies(body)
		if err != nil {
			if got != nil {
				t.Fatal("policies returned with an error")
			}
			return
		}
		for id, p := range got {
			if p != "Retain" && p != "Snapshot" && p != "RetainExceptOnCreate" && p != "conditional" {
				t.Fatalf("%s: policy %q", id, p)
			}
		}
	})
}

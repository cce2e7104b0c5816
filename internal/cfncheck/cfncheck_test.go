package cfncheck

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The same runs on a small hand-written template with known problems must
// report them, or a clean result above proves nothing.
func TestLintersReportFindings(t *testing.T) {
	lint, ck := Tool(t, "cfn-lint"), Tool(t, "checkov")
	dir := t.TempDir()
	const control = `{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Parameters": {"Unused": {"Type": "String"}},
  "Resources": {
    "Broken": {"Type": "AWS::SQS::Queue", "Properties": {"NotAProperty": true}},
    "OpenSsh": {"Type": "AWS::EC2::SecurityGroup", "Properties": {
      "GroupDescription": "ssh from anywhere",
      "SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"}]}},
    "ExcusedSsh": {"Type": "AWS::EC2::SecurityGroup",
      "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_24", "comment": "a control: this skip must be honoured and reported as skipped"}]}},
      "Properties": {
      "GroupDescription": "ssh from anywhere, excused",
      "SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"}]}}
  }
}`
	if err := os.WriteFile(filepath.Join(dir, "control.template.json"), []byte(control), 0o644); err != nil {
		t.Fatal(err)
	}
	has := func(fs []Finding, rule, resource string) bool {
		return slices.ContainsFunc(fs, func(f Finding) bool {
			return strings.HasPrefix(f.Rule, rule) && f.Resource == resource && f.Template == "control.template.json"
		})
	}

	findings, err := CfnLint(lint, dir, "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	if !has(findings, "E3002 (Error)", "Resources/Broken") || !has(findings, "W2001 (Warning)", "Parameters/Unused") {
		t.Errorf("cfn-lint did not report the unknown property (E3002) and the unused parameter (W2001); got %v", findings)
	}

	failed, skipped, err := Checkov(ck, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !has(failed, "CKV_AWS_24", "AWS::EC2::SecurityGroup.OpenSsh") {
		t.Errorf("checkov did not fail SSH open to the world (CKV_AWS_24); failed: %v", failed)
	}
	if has(failed, "CKV_AWS_24", "AWS::EC2::SecurityGroup.ExcusedSsh") || !has(skipped, "CKV_AWS_24", "AWS::EC2::SecurityGroup.ExcusedSsh") {
		t.Errorf("checkov did not honour the Metadata skip; failed %v, skipped %v", failed, skipped)
	}

	// And exceptions without a reason, or on an error, are refused.
	bad := `{
  "Metadata": {"cfn-lint": {"config": {"ignore_checks": ["E3002", "W2001", "W3005"]}, "reasons": {"W3005": "too short"}}},
  "Resources": {"R": {"Type": "AWS::SQS::Queue", "Metadata": {
    "checkov": {"skip": [{"id": "CKV_AWS_27"}, {"id": "CKV_AWS_*", "comment": "a wildcard is not one check, whatever the reason says"}]}},
    "Properties": {"QueueName": "checkov:skip=CKV_AWS_27"}}}
}`
	problems := ExceptionProblems("bad.template.json", []byte(bad))
	for _, want := range []string{"inline checkov:skip", "rule E3002", "W2001 without", "W3005 without", "CKV_AWS_27 without", "CKV_AWS_*"} {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) }) {
			t.Errorf("no problem mentioning %q in %q", want, problems)
		}
	}
	if len(problems) != 6 {
		t.Errorf("%d problems, want 6: %q", len(problems), problems)
	}
}

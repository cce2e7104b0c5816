package stacks

import (
	"strings"
	"testing"
)

// A deployment created again after destroy uses what deployment.yaml's
// adopt block names, everywhere the first deployment used its own.
func TestAdoption(t *testing.T) {
	s := synth(t, "recreate")
	a := s.cfg.Adopt
	template := func(stack string) string { return asJSON(s.json[stack]) }

	if n := len(resources(s, "data", "AWS::KMS::Key")); n != 0 {
		t.Errorf("%d new KMS keys in the data stack; all three are adopted", n)
	}
	aliases := map[string]string{}
	for _, r := range resources(s, "data", "AWS::KMS::Alias") {
		aliases[props(r)["AliasName"].(string)] = asJSON(props(r)["TargetKeyId"])
	}
	for alias, arn := range map[string]string{"data": a.Keys.Data, "docsvc-secrets": a.Keys.DocsvcSecrets, "agent-secrets": a.Keys.AgentSecrets} {
		if got := aliases[keyAlias(s.cfg, alias)]; !strings.Contains(got, arn) {
			t.Errorf("alias %s targets %s, want the adopted key %s", keyAlias(s.cfg, alias), got, arn)
		}
	}

	var bucketPolicy string
	for _, r := range resources(s, "data", "AWS::S3::BucketPolicy") {
		if props(r)["Bucket"] == a.DocumentsBucket {
			bucketPolicy = asJSON(props(r)["PolicyDocument"])
		}
	}
	for _, want := range []string{`"aws:SecureTransport":"false"`, `"s3:TlsVersion":1.2`, s.cfg.AgentRoleName()} {
		if !strings.Contains(bucketPolicy, want) {
			t.Errorf("the adopted bucket's policy lacks %s: %q", want, bucketPolicy)
		}
	}

	dbs := resources(s, "data", "AWS::RDS::DBInstance")
	if len(dbs) != 1 {
		t.Fatalf("%d database instances, want 1", len(dbs))
	}
	for id, r := range dbs {
		p := props(r)
		if p["DBSnapshotIdentifier"] != a.DatabaseSnapshot {
			t.Errorf("%s restores from %v, want %s", id, p["DBSnapshotIdentifier"], a.DatabaseSnapshot)
		}
		if pw := asJSON(p["MasterUserPassword"]); !strings.Contains(pw, a.Secrets.Database) {
			t.Errorf("%s password %s, want the adopted database secret's", id, pw)
		}
		for _, gone := range []string{"DBName", "MasterUsername", "StorageEncrypted", "KmsKeyId"} {
			if p[gone] != nil {
				t.Errorf("%s sets %s, which a restore takes from the snapshot", id, gone)
			}
		}
	}
	// The adopted secret is attached to the instance; its rotation, its
	// policy and the tasks reach it through that attachment (whose Ref is
	// the secret's ARN).
	attachments := resources(s, "data", "AWS::SecretsManager::SecretTargetAttachment")
	if len(attachments) != 1 {
		t.Fatalf("%d secret attachments, want 1", len(attachments))
	}
	for attachment, r := range attachments {
		if got := props(r)["SecretId"]; got != a.Secrets.Database {
			t.Errorf("the database secret attachment is on %v, want the adopted %s", got, a.Secrets.Database)
		}
		for _, typ := range []string{"AWS::SecretsManager::RotationSchedule", "AWS::SecretsManager::ResourcePolicy"} {
			if n := len(resources(s, "data", typ)); n != 1 {
				t.Errorf("%d %s, want 1", n, typ)
			}
			for id, r := range resources(s, "data", typ) {
				if got := asJSON(props(r)["SecretId"]); got != asJSON(map[string]any{"Ref": attachment}) {
					t.Errorf("%s %s is on %s, want the adopted database secret", typ, id, got)
				}
			}
		}
		if !strings.Contains(template("services"), attachment) {
			t.Error("the services stack does not read the adopted database secret")
		}
	}

	// docsvc's configuration is the cluster stack's, its tasks the services'.
	services := template("cluster") + template("services")
	for what, want := range map[string]string{
		"the documents bucket":                   "s3://" + a.DocumentsBucket + "/",
		"the data key (DOCSVC_S3_KMS_KEY_ID)":    a.Keys.Data,
		"the license secret":                     a.Secrets.License,
		"the agent's identity secret":            a.Secrets.AgentIdentity,
		"the agent-secrets key (agent's grants)": a.Keys.AgentSecrets,
		"the docsvc-secrets key (docsvc grants)": a.Keys.DocsvcSecrets,
	} {
		if !strings.Contains(services, want) {
			t.Errorf("the services stack does not use %s (%s)", what, want)
		}
	}
	if n := len(resources(s, "images", "AWS::ECR::Repository")); n != 0 {
		t.Errorf("%d new ECR repositories; both are adopted", n)
	}
	if images := template("images"); !strings.Contains(images, RepositoryName(s.cfg, "docsvc")) || !strings.Contains(images, RepositoryName(s.cfg, "agent")) {
		t.Error("the images stack's outputs do not name the adopted repositories")
	}
}

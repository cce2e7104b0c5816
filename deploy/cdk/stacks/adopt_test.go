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

	// The exchange bucket and its key are not adopted: a deployment created
	// again starts a new, empty exchange (the old one, retained, keeps the
	// ledger's copy up to the destroy). Every other key is the adopted one.
	for _, k := range resources(s, "data", "AWS::KMS::Key") {
		if desc, _ := props(k)["Description"].(string); !strings.Contains(desc, "agent exchange") {
			t.Errorf("a new KMS key in the data stack (%s); the data, docsvc-secrets and agent-secrets keys are adopted", desc)
		}
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
		// The restored instance's user gets a new password that RDS
		// manages, as a new instance's: no secret outlives an instance.
		if p["ManageMasterUserPassword"] != true {
			t.Errorf("%s ManageMasterUserPassword = %v, want true", id, p["ManageMasterUserPassword"])
		}
		if got := asJSON(p["MasterUserSecret"]); !strings.Contains(got, a.Keys.DocsvcSecrets) {
			t.Errorf("%s MasterUserSecret %s, want it encrypted with the adopted docsvc-secrets key %s", id, got, a.Keys.DocsvcSecrets)
		}
		for _, gone := range []string{"DBName", "MasterUsername", "MasterUserPassword", "StorageEncrypted", "KmsKeyId"} {
			if p[gone] != nil {
				t.Errorf("%s sets %s, which a restore takes from the snapshot", id, gone)
			}
		}
	}
	// The restored instance's managed secret: its policy and the tasks
	// reach it through the instance's MasterUserSecret.SecretArn.
	for db := range dbs {
		managed := asJSON(map[string]any{"Fn::GetAtt": []any{db, "MasterUserSecret.SecretArn"}})
		for id, r := range resources(s, "data", "AWS::SecretsManager::ResourcePolicy") {
			if got := asJSON(props(r)["SecretId"]); got != managed {
				t.Errorf("resource policy %s is on %s, want the database's managed secret %s", id, got, managed)
			}
		}
		if !strings.Contains(template("services"), db+"MasterUserSecretSecretArn") {
			t.Error("the services stack does not read the database's managed secret")
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

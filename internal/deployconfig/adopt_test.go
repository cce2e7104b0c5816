package deployconfig

import (
	"strings"
	"testing"
)

func TestParseAdopt(t *testing.T) {
	cfg, err := Parse(readExample(t, "recreate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Adopt
	if !a.Repositories || a.DocumentsBucket == "" || a.DatabaseSnapshot == "" || a.Keys.Data == "" {
		t.Errorf("recreate.yaml adopt: %+v", a)
	}
	if got := a.Secrets.ByKind()["agent-identity"]; !strings.Contains(got, ":secret:tether/initech-docs/agent-identity-") {
		t.Errorf("ByKind()[agent-identity] = %q", got)
	}
	minimal, err := Parse(readExample(t, "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if minimal.Adopt != (Adopt{}) || minimal.Adopt.Secrets.ByKind() != nil {
		t.Errorf("minimal.yaml adopts %+v", minimal.Adopt)
	}
}

func TestParseRejectsAdopt(t *testing.T) {
	const (
		dataKey = "    data: arn:aws:kms:eu-central-1:777788889999:key/1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d"
		license = "    license: arn:aws:secretsmanager:eu-central-1:777788889999:secret:tether/initech-docs/license-Ab12Cd"
	)
	tests := []rejectCase{
		{"key alias", editRecreate(t, dataKey, "    data: arn:aws:kms:eu-central-1:777788889999:alias/tether/initech-docs/data"), "adopt.keys.data: \"arn:aws:kms:eu-central-1:777788889999:alias/tether/initech-docs/data\" is not valid: want a KMS key ARN"},
		{"key other account", editRecreate(t, dataKey, "    data: arn:aws:kms:eu-central-1:111122223333:key/1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d"), "adopt.keys.data: is in 111122223333, eu-central-1: adopt only what is in the deployment's account and region"},
		{"one key twice", editRecreate(t, "    agent_secrets:", strings.Replace(dataKey, "data:", "agent_secrets:", 1)), "adopt.keys: one key is given for two roles"},
		{"bucket without data key", editRecreate(t, dataKey, ""), "adopt.documents_bucket: needs adopt.keys.data"},
		{"snapshot without data key", editRecreate(t, dataKey, ""), "adopt.database_snapshot: needs adopt.keys.data"},
		{"bucket arn", editRecreate(t, "  documents_bucket:", "  documents_bucket: arn:aws:s3:::initech-docs"), "adopt.documents_bucket: \"arn:aws:s3:::initech-docs\" is not valid"},
		{"bucket ip", editRecreate(t, "  documents_bucket:", "  documents_bucket: 10.1.2.3"), "adopt.documents_bucket: \"10.1.2.3\" is not valid"},
		{"snapshot uppercase", editRecreate(t, "  database_snapshot:", "  database_snapshot: Final_Snapshot"), "adopt.database_snapshot: \"Final_Snapshot\" is not valid"},
		{"snapshot other region", editRecreate(t, "  database_snapshot:", "  database_snapshot: arn:aws:rds:eu-west-1:777788889999:snapshot:final"), "adopt.database_snapshot: is in 777788889999, eu-west-1"},
		{"snapshot cluster arn", editRecreate(t, "  database_snapshot:", "  database_snapshot: arn:aws:rds:eu-central-1:777788889999:cluster-snapshot:final"), "adopt.database_snapshot: \"arn:aws:rds:eu-central-1:777788889999:cluster-snapshot:final\" is not valid"},
		{"secret missing", editRecreate(t, license, ""), "adopt.secrets.license: required when any secret is adopted"},
		{"secret partial arn", editRecreate(t, license, "    license: arn:aws:secretsmanager:eu-central-1:777788889999:secret:tether/initech-docs/license"), "want the secret's complete ARN, ending in -XXXXXX"},
		{"secret by name", editRecreate(t, license, "    license: tether/initech-docs/license"), "adopt.secrets.license: \"tether/initech-docs/license\" is not valid: want the secret's complete ARN"},
		{"secret of another deployment", editRecreate(t, license, "    license: arn:aws:secretsmanager:eu-central-1:777788889999:secret:tether/acme-docs/license-Ab12Cd"), "adopt.secrets.license: names secret \"tether/acme-docs/license\", want \"tether/initech-docs/license\""},
		{"database secret", editRecreate(t, "    ai:", "    ai: arn:aws:secretsmanager:eu-central-1:777788889999:secret:tether/initech-docs/ai-Ij56Kl\n    database: arn:aws:secretsmanager:eu-central-1:777788889999:secret:tether/initech-docs/database-Mn78Op"), "adopt.secrets.database: is no longer used: RDS manages the database password"},
		{"secrets without their keys", editRecreate(t, "    docsvc_secrets:", ""), "adopt.secrets: needs adopt.keys.docsvc_secrets and adopt.keys.agent_secrets"},
		{"repositories not bool", editRecreate(t, "  repositories:", "  repositories: both"), "adopt.repositories: got a str value"},
	}
	expectRejects(t, tests)
	// A restore into a fresh account adopts only a snapshot and its key.
	in := editRecreate(t, "  secrets:", "  secrets: {}")
	for _, l := range []string{"    license:", "    agent_identity:", "    ai:", "  documents_bucket:", "  repositories:"} {
		in = []byte(strings.Join(dropLine(strings.Split(string(in), "\n"), l), "\n"))
	}
	if _, err := Parse(in); err != nil {
		t.Errorf("snapshot and key only: %v", err)
	}
}

// editRecreate edits recreate.yaml as editExample does.
func editRecreate(t *testing.T, linePrefix, repl string) []byte {
	t.Helper()
	return editExample(t, "recreate.yaml", linePrefix, repl)
}

func dropLine(lines []string, prefix string) []string {
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return append(lines[:i], lines[i+1:]...)
		}
	}
	return lines
}

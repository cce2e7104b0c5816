package ctl

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docs/iam.md is generated from the permissions list; this fails when the
// checked-in file is stale. Regenerate:
//
//	go test ./internal/ctl -run TestIAMDoc -update
func TestIAMDoc(t *testing.T) {
	checkGeneratedDoc(t, "iam.md", iamDoc(), "TestIAMDoc")
}

// checkGeneratedDoc compares docs/name with what generates it, and with
// -update rewrites it.
func checkGeneratedDoc(t *testing.T, name, want, test string) {
	t.Helper()
	path := filepath.Join("..", "..", "docs", name)
	regenerate := "go test ./internal/ctl -run " + test + " -update"
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it: %s)", err, regenerate)
	}
	if string(got) != want {
		t.Fatalf("%s is stale: regenerate it with %s", path, regenerate)
	}
}

var (
	actionRE   = regexp.MustCompile(`^[a-z0-9-]+:[A-Z][A-Za-z]+$`)
	sidRE      = regexp.MustCompile(`^[A-Za-z0-9]+$`)
	resourceRE = regexp.MustCompile(`^(\*|arn:aws:[a-z0-9-]+:(REGION)?:(ACCOUNT)?:\S+)$`)
)

// The policy is one IAM accepts: Sids unique and alphanumeric, actions
// service:Action, resources ARNs with only the documented placeholders,
// each statement's actions applying to all its resources (the simulation
// pairs them all), and within the managed-policy size limit.
func TestDeployerPolicy(t *testing.T) {
	sids := map[string]bool{}
	for _, p := range deployerPermissions() {
		if !sidRE.MatchString(p.Sid) || sids[p.Sid] {
			t.Errorf("Sid %q: not alphanumeric or used twice", p.Sid)
		}
		sids[p.Sid] = true
		if p.PassedTo != "" && !slices.Equal(p.Actions, []string{"iam:PassRole"}) {
			t.Errorf("%s: iam:PassedToService applies to iam:PassRole alone, not %v", p.Sid, p.Actions)
		}
		if slices.Contains(p.Actions, "iam:PassRole") && p.PassedTo == "" {
			t.Errorf("%s: a role passed to any service", p.Sid)
		}
		if p.For == "" || len(p.Actions) == 0 || len(p.Resources) == 0 {
			t.Errorf("%s: lacks a reason, actions or resources", p.Sid)
		}
		for _, a := range p.Actions {
			if !actionRE.MatchString(a) {
				t.Errorf("%s: action %q", p.Sid, a)
			}
		}
		for _, r := range p.Resources {
			if !resourceRE.MatchString(r) {
				t.Errorf("%s: resource %q", p.Sid, r)
				continue
			}
			if unknown := regexp.MustCompile(`[A-Z]{4,}`).FindString(strings.NewReplacer("ACCOUNT", "", "REGION", "", "NAME", "", "QUALIFIER", "", "CDKToolkit", "").Replace(r)); unknown != "" {
				t.Errorf("%s: resource %q has an unknown placeholder %s", p.Sid, r, unknown)
			}
			if r == "*" {
				continue
			}
			svc := strings.Split(r, ":")[2]
			for _, a := range p.Actions {
				// sts:AssumeRole is granted on IAM role ARNs.
				if as := strings.Split(a, ":")[0]; as != svc && !(a == "sts:AssumeRole" && svc == "iam") {
					t.Errorf("%s: %s does not apply to %s", p.Sid, a, r)
				}
			}
		}
	}
	// The deployer never gets the database password, nor writes the secret
	// RDS owns (RDS names it itself). The agent identity's secret it may
	// write: secrets rotate agent puts a new key there as AWSPENDING, which
	// the agent re-keys with and promotes (it could already read the key to
	// check it, SecretsCheck).
	dbSecret := "arn:aws:secretsmanager:REGION:ACCOUNT:secret:rds!db-3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b-AbCdEf"
	agentSecret := "arn:aws:secretsmanager:REGION:ACCOUNT:secret:tether/NAME/agent-identity-AbCdEf"
	writesAgent := false
	for _, p := range deployerPermissions() {
		for _, r := range p.Resources {
			glob := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(r), `\*`, ".*") + "$")
			for _, a := range p.Actions {
				if a == "secretsmanager:GetSecretValue" && glob.MatchString(dbSecret) {
					t.Errorf("%s lets the deployer read the database secret (%s)", p.Sid, r)
				}
				if a == "secretsmanager:PutSecretValue" && glob.MatchString(dbSecret) {
					t.Errorf("%s lets the deployer write a secret it does not own (%s)", p.Sid, r)
				}
				writesAgent = writesAgent || a == "secretsmanager:PutSecretValue" && glob.MatchString(agentSecret)
			}
		}
	}
	if !writesAgent {
		t.Error("the deployer may not put the agent identity's pending key: tetherctl secrets rotate agent cannot work")
	}
	doc, err := policyDocument(deployerPermissions())
	if err != nil {
		t.Fatal(err)
	}
	var compact strings.Builder
	for _, r := range string(doc) {
		if r != ' ' && r != '\n' && r != '\t' {
			compact.WriteRune(r)
		}
	}
	if compact.Len() > 6144 {
		t.Errorf("the policy is %d characters without whitespace; a managed policy holds 6144", compact.Len())
	}
	var back map[string]any
	if err := json.Unmarshal(doc, &back); err != nil || back["Version"] != "2012-10-17" {
		t.Errorf("the policy does not read back: %v", err)
	}
}

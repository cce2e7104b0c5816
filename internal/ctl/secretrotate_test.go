package ctl_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/ctl"
)

// rotateFixture is an OpenAI-compatible deployment whose AI key is set, and
// its cluster's three services (moto runs no task: desired 0, so a
// restarted service is stable at once, its deployment COMPLETED).
func rotateFixture(t *testing.T) (*awstest.Server, invocation, string) {
	t.Helper()
	srv := awstest.Start(t)
	d := defaultDeployment(newVendor(t))
	d.AIProvider, d.AIModel, d.AIBaseURL = "openai", "llama-3", "https://llm.acme.example/v1"
	srv.CreateSecret(t, "tether/acme-docs/ai", "old-key-123")
	runServices(t, srv, "acme-docs", 0)
	return srv, invocation{env: envOf(srv.Env())}, d.write(t)
}

// restarted lists the services the code under test asked ECS to redeploy.
func restarted(t *testing.T, srv *awstest.Server) []string {
	t.Helper()
	var got []string
	for _, r := range srv.Requests() {
		if !strings.HasSuffix(r.Target, ".UpdateService") {
			continue
		}
		var in struct {
			Cluster, Service   string
			ForceNewDeployment bool `json:"forceNewDeployment"`
		}
		if err := json.Unmarshal(r.Body, &in); err != nil {
			t.Fatal(err)
		}
		if !in.ForceNewDeployment || in.Cluster != "tether-acme-docs" {
			t.Errorf("UpdateService without a forced deployment in the cluster: %s", r.Body)
		}
		got = append(got, in.Service)
	}
	return got
}

func TestSecretsRotateAIKey(t *testing.T) {
	t.Parallel()
	srv, in, config := rotateFixture(t)
	in.stdin = strings.NewReader("new-key-456\n")
	out := in.run(testContext(t), "secrets", "rotate", "ai", "--yes", "--output", "json", "--config", config)
	if out.err != nil {
		t.Fatalf("rotate: %v\n%s", out.err, out.all())
	}
	if v, _ := srv.SecretValue(t, "tether/acme-docs/ai"); v != "new-key-456" {
		t.Errorf("stored %q, want the new key", v)
	}
	var res struct {
		SecretName        string   `json:"secret_name"`
		VersionID         string   `json:"version_id"`
		PreviousVersionID string   `json:"previous_version_id"`
		Restarted         []string `json:"restarted"`
	}
	if err := json.Unmarshal([]byte(out.stdout), &res); err != nil {
		t.Fatalf("--output json: %v\n%s", err, out.stdout)
	}
	want := []string{"tether-acme-docs-api", "tether-acme-docs-worker"}
	if res.SecretName != "tether/acme-docs/ai" || res.VersionID == "" || res.PreviousVersionID == "" || res.VersionID == res.PreviousVersionID || !slices.Equal(res.Restarted, want) {
		t.Errorf("result: %+v", res)
	}
	// Only the services that read the key, never the agent.
	if got := restarted(t, srv); !slices.Equal(got, want) {
		t.Errorf("restarted %v, want %v", got, want)
	}
	for _, step := range []string{"put the new value into tether/acme-docs/ai", "restart ECS service tether-acme-docs-worker", "wait until the services of cluster tether-acme-docs are stable"} {
		if !strings.Contains(out.stderr, step) {
			t.Errorf("the plan does not say %q:\n%s", step, out.stderr)
		}
	}
	if strings.Contains(out.all(), "new-key-456") || strings.Contains(out.all(), "old-key-123") {
		t.Errorf("a key was printed:\n%s", out.all())
	}
}

// Unconfirmed, rejected or impossible rotations change nothing and restart
// nothing.
func TestSecretsRotateChangesNothingWhenRefused(t *testing.T) {
	t.Parallel()
	srv, in, config := rotateFixture(t)
	ctx := testContext(t)
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("new-key-456\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in.stdin = strings.NewReader("n\n")
	out := in.run(ctx, "secrets", "rotate", "ai", "--from-file", keyFile, "--config", config)
	if out.err == nil || !strings.Contains(out.err.Error(), "not confirmed, nothing was changed") {
		t.Errorf("unconfirmed: %v", out.err)
	}

	in.stdin = strings.NewReader("two words")
	out = in.run(ctx, "secrets", "rotate", "ai", "--yes", "--config", config)
	if out.err == nil || !strings.Contains(out.err.Error(), "refused, nothing was written") || !strings.Contains(out.err.Error(), "whitespace") {
		t.Errorf("bad key: %v", out.err)
	}
	for _, c := range []struct{ args, want string }{
		{"license", "tetherctl secrets set license"},
		{"database", "RDS manages the database password"},
		{"", "give one secret NAME"},
	} {
		args := []string{"secrets", "rotate", "--yes", "--config", config}
		if c.args != "" {
			args = append(args, c.args)
		}
		out := in.run(ctx, args...)
		if !ctl.IsUsage(out.err) || !strings.Contains(out.err.Error(), c.want) {
			t.Errorf("rotate %s: want a usage error saying %q, got %v", c.args, c.want, out.err)
		}
	}
	if v, _ := srv.SecretValue(t, "tether/acme-docs/ai"); v != "old-key-123" {
		t.Errorf("the key changed: %q", v)
	}
	if got := restarted(t, srv); len(got) != 0 {
		t.Errorf("services were restarted: %v", got)
	}
	local := defaultDeployment(newVendor(t))
	out = in.run(ctx, "secrets", "rotate", "ai", "--yes", "--from-file", keyFile, "--config", local.write(t))
	if !ctl.IsUsage(out.err) || !strings.Contains(out.err.Error(), "uses no key") {
		t.Errorf("local analyzer: %v", out.err)
	}
}

// A key that was never set is not rotated: set it first.
func TestSecretsRotateUnsetKey(t *testing.T) {
	t.Parallel()
	srv := awstest.Start(t)
	d := defaultDeployment(newVendor(t))
	d.AIProvider, d.AIModel, d.AIBaseURL = "openai", "llama-3", "https://llm.acme.example/v1"
	srv.CreateSecret(t, "tether/acme-docs/ai", "")
	in := invocation{env: envOf(srv.Env()), stdin: strings.NewReader("new-key-456")}
	out := in.run(testContext(t), "secrets", "rotate", "ai", "--yes", "--config", d.write(t))
	if out.err == nil || !strings.Contains(out.err.Error(), "has no value yet, so there is nothing to rotate") {
		t.Fatalf("got %v", out.err)
	}
	if requested(srv, "secretsmanager.PutSecretValue") || len(restarted(t, srv)) != 0 {
		t.Error("something was changed")
	}
}

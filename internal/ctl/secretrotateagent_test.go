package ctl_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/ctl"
)

const identitySecret = "tether/acme-docs/agent-identity"

func identityValue(t *testing.T) string {
	t.Helper()
	_, k, _ := ed25519.GenerateKey(nil)
	return base64.RawURLEncoding.EncodeToString(k.Seed())
}

// validIdentity reports whether v is a key as the agent stores it.
func validIdentity(v string) bool {
	seed, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimSpace(v))
	return err == nil && len(seed) == ed25519.SeedSize
}

func stages(t *testing.T, sm *secretsmanager.Client) map[string][]string {
	t.Helper()
	d, err := sm.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(identitySecret)})
	if err != nil {
		t.Fatal(err)
	}
	return d.VersionIdsToStages
}

func versionWith(m map[string][]string, stage string) string {
	for id, st := range m {
		if slices.Contains(st, stage) {
			return id
		}
	}
	return ""
}

// promoteWhenPending stands in for the restarted agent on the emulator
// (internal/agent's TestRekeyInSecretsManager runs the real one against a
// plane): once the agent service was restarted and a pending version is
// there, it checks it is a key and moves
// AWSCURRENT to it with UpdateSecretVersionStage, as the agent does after
// the plane accepted the key. It returns the pending value it saw.
func promoteWhenPending(t *testing.T, srv *awstest.Server) <-chan string {
	sm := secretsmanager.NewFromConfig(srv.AWSConfig())
	seen := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		defer close(seen)
		poll := time.NewTicker(10 * time.Millisecond)
		defer poll.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-poll.C:
			}
			restarted := slices.ContainsFunc(srv.Requests(), func(r awstest.Request) bool { return strings.HasSuffix(r.Target, ".UpdateService") })
			if !restarted {
				continue
			}
			d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(identitySecret)})
			if err == nil {
				cur, pend := versionWith(d.VersionIdsToStages, "AWSCURRENT"), versionWith(d.VersionIdsToStages, "AWSPENDING")
				if pend != "" && pend != cur {
					v, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(identitySecret), VersionStage: aws.String("AWSPENDING")})
					if err != nil || !validIdentity(aws.ToString(v.SecretString)) {
						return
					}
					if _, err := sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(identitySecret),
						VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(pend), RemoveFromVersionId: aws.String(cur)}); err == nil {
						seen <- aws.ToString(v.SecretString)
					}
					return
				}
			}
		}
	}()
	return seen
}

func agentRotateFixture(t *testing.T) (*awstest.Server, invocation, string, string) {
	t.Helper()
	srv := awstest.Start(t)
	d := defaultDeployment(newVendor(t))
	d.PlaneURL = "https://plane.vendor.example"
	old := identityValue(t)
	srv.CreateSecret(t, identitySecret, old)
	runServices(t, srv, "acme-docs", 0)
	return srv, invocation{env: envOf(srv.Env())}, d.write(t), old
}

func TestSecretsRotateAgent(t *testing.T) {
	t.Parallel()
	srv, in, config, old := agentRotateFixture(t)
	seen := promoteWhenPending(t, srv)
	out := in.run(testContext(t), "secrets", "rotate", "agent", "--yes", "--output", "json", "--config", config)
	if out.err != nil {
		t.Fatalf("rotate agent: %v\n%s", out.err, out.all())
	}
	newKey := <-seen
	if newKey == "" || newKey == old {
		t.Fatalf("the pending key was not a fresh key")
	}
	if strings.Contains(out.all(), newKey) || strings.Contains(out.all(), old) {
		t.Fatal("the output shows a key")
	}
	var res struct {
		SecretName        string `json:"secret_name"`
		VersionID         string `json:"version_id"`
		PreviousVersionID string `json:"previous_version_id"`
		Resumed, Promoted bool
		Restarted         string `json:"restarted"`
	}
	if err := json.Unmarshal([]byte(out.stdout), &res); err != nil {
		t.Fatalf("--output json: %v\n%s", err, out.stdout)
	}
	sm := secretsmanager.NewFromConfig(srv.AWSConfig())
	if cur := versionWith(stages(t, sm), "AWSCURRENT"); res.VersionID != cur || res.PreviousVersionID == cur || !res.Promoted || res.Resumed ||
		res.SecretName != identitySecret || res.Restarted != "tether-acme-docs-agent" {
		t.Errorf("result %+v; AWSCURRENT is %s", res, cur)
	}
	if got := restarted(t, srv); !slices.Equal(got, []string{"tether-acme-docs-agent"}) {
		t.Errorf("restarted %v, want the agent only", got)
	}
	for _, step := range []string{"as its AWSPENDING version", "restart ECS service tether-acme-docs-agent", "AWSCURRENT is the new key"} {
		if !strings.Contains(out.stderr, step) {
			t.Errorf("plan does not say %q:\n%s", step, out.stderr)
		}
	}
}

// A pending key left by an unfinished rotation may be the one the plane
// already holds: it is kept, the agent restarted to finish.
func TestSecretsRotateAgentKeepsAPendingKey(t *testing.T) {
	t.Parallel()
	srv, in, config, _ := agentRotateFixture(t)
	sm := secretsmanager.NewFromConfig(srv.AWSConfig())
	pending := identityValue(t)
	put, err := sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(identitySecret),
		SecretString: aws.String(pending), VersionStages: []string{"AWSPENDING"}})
	if err != nil {
		t.Fatal(err)
	}
	seen := promoteWhenPending(t, srv)
	out := in.run(testContext(t), "secrets", "rotate", "agent-identity", "--yes", "--config", config)
	if out.err != nil {
		t.Fatalf("rotate agent: %v\n%s", out.err, out.all())
	}
	if v := <-seen; v != pending {
		t.Error("the pending key was replaced")
	}
	if n := countRequests(srv, "secretsmanager.PutSecretValue"); n != 1 {
		t.Errorf("%d PutSecretValue calls, want only the test's own", n)
	}
	if !strings.Contains(out.stderr, "keep the pending identity key of an unfinished rotation") || !strings.Contains(out.stdout, aws.ToString(put.VersionId)) {
		t.Errorf("output does not say the pending key was kept:\n%s", out.all())
	}
}

func countRequests(srv *awstest.Server, target string) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Target == target {
			n++
		}
	}
	return n
}

func TestSecretsRotateAgentRefusals(t *testing.T) {
	t.Parallel()
	srv, in, config, _ := agentRotateFixture(t)
	ctx := testContext(t)
	in.stdin = strings.NewReader("n\n")
	out := in.run(ctx, "secrets", "rotate", "agent", "--config", config)
	if out.err == nil || !strings.Contains(out.err.Error(), "not confirmed, nothing was changed") {
		t.Errorf("unconfirmed: %v", out.err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"agent", "--from-file", "key"}, "--from-file is not taken"},
		{[]string{"ai", "--local", t.TempDir()}, "--local is only for agent"},
		{[]string{"agent", "--local", t.TempDir(), "--output", "yaml"}, `--output "yaml"`},
	} {
		out := in.run(ctx, append([]string{"secrets", "rotate", "--yes", "--config", config}, c.args...)...)
		if !ctl.IsUsage(out.err) || !strings.Contains(out.err.Error(), c.want) {
			t.Errorf("rotate %v: want a usage error saying %q, got %v", c.args, c.want, out.err)
		}
	}
	// Air-gapped, the agent runs no task: there is nothing to re-key with.
	raw, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	airgapped := filepath.Join(t.TempDir(), "deployment.yaml")
	if err := os.WriteFile(airgapped, []byte(regexp.MustCompile(`(?m)^  url: .*\n`).ReplaceAllString(string(raw), "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := in.run(ctx, "secrets", "rotate", "agent", "--yes", "--config", airgapped); !ctl.IsUsage(out.err) || !strings.Contains(out.err.Error(), "air-gapped") {
		t.Errorf("air-gapped: want a usage error saying so, got %v", out.err)
	}
	if countRequests(srv, "secretsmanager.PutSecretValue") != 0 || len(restarted(t, srv)) != 0 {
		t.Error("something was changed")
	}

	// An agent that never started has no identity to rotate.
	empty := awstest.Start(t)
	empty.CreateSecret(t, identitySecret, "")
	runServices(t, empty, "acme-docs", 0)
	out = invocation{env: envOf(empty.Env())}.run(ctx, "secrets", "rotate", "agent", "--yes", "--config", config)
	if out.err == nil || !strings.Contains(out.err.Error(), "has no value yet") {
		t.Errorf("unset identity: %v", out.err)
	}
	if countRequests(empty, "secretsmanager.PutSecretValue") != 0 || len(restarted(t, empty)) != 0 {
		t.Error("something was changed for an unset identity")
	}
}

func TestSecretsRotateAgentLocal(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := t.TempDir()
	agentDir := filepath.Join(dir, "agent")
	out := invocation{}.run(ctx, "secrets", "rotate", "agent", "--local", dir, "--yes")
	if out.err == nil || !strings.Contains(out.err.Error(), "no identity.key") {
		t.Fatalf("no agent yet: %v", out.err)
	}
	if err := os.MkdirAll(agentDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(agentDir, "identity.key"), []byte(identityValue(t)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = invocation{}.run(ctx, "secrets", "rotate", "agent", "--local", dir, "--yes", "--output", "json")
	if out.err != nil {
		t.Fatalf("rotate --local: %v\n%s", out.err, out.all())
	}
	next := filepath.Join(agentDir, "identity.next")
	data, err := os.ReadFile(next)
	if err != nil || !validIdentity(string(data)) {
		t.Fatalf("identity.next: %v", err)
	}
	if fi, _ := os.Stat(next); fi.Mode().Perm() != 0o600 {
		t.Errorf("identity.next mode %v, want 0600", fi.Mode().Perm())
	}
	var res struct {
		PendingFile string `json:"pending_file"`
		Resumed     bool
	}
	if err := json.Unmarshal([]byte(out.stdout), &res); err != nil || res.PendingFile != next || res.Resumed || strings.Contains(out.all(), strings.TrimSpace(string(data))) {
		t.Fatalf("json %s: %v", out.stdout, err)
	}
	// Again before the agent restarted: the pending key is kept.
	out = invocation{}.run(ctx, "secrets", "rotate", "agent", "--local", dir, "--yes")
	if again, _ := os.ReadFile(next); out.err != nil || string(again) != string(data) || !strings.Contains(out.stderr, "keep "+next) {
		t.Fatalf("second run: %v, key kept %v\n%s", out.err, string(again) == string(data), out.all())
	}
}

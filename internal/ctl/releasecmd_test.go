package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/deployconfig"
)

// writeDeploymentYAML saves a deployment.yaml saying what dc says about
// the fields the release commands read, and checks deployconfig reads it
// back the same.
func writeDeploymentYAML(t *testing.T, dc *deployconfig.Config) string {
	t.Helper()
	images := "  source: build\n"
	if dc.Images.Source == deployconfig.ImagesVendor {
		images = "  source: vendor\n  vendor_registry: " + dc.Images.VendorRegistry + "\n"
	}
	if dc.Images.DocsvcDigest != "" {
		images += "  docsvc_digest: " + dc.Images.DocsvcDigest + "\n  agent_digest: " + dc.Images.AgentDigest + "\n"
	}
	yaml := fmt.Sprintf(`version: 1
name: %s
account: "%s"
region: %s
domain:
  name: docs.acme.example
  hosted_zone:
    id: Z0000000000000000TEST
    name: acme.example
auth:
  provider: oidc
  issuer: https://login.acme.example/realms/staff
  client_id: tether-docs
email_sender: noreply@acme.example
ai:
  provider: %s
images:
%splane:
  channel: stable
  trusted_root: '{"signed":{"_type":"root"},"signatures":[]}'
license:
  public_key: |
    %s
`, dc.Name, dc.Account, dc.Region, dc.AI.Provider, images, strings.ReplaceAll(strings.TrimSpace(dc.License.PublicKey), "\n", "\n    "))
	path := filepath.Join(t.TempDir(), "deployment.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := deployconfig.Load(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	if got.Name != dc.Name || got.Images != dc.Images || got.License.PublicKey != dc.License.PublicKey {
		t.Fatalf("deployment.yaml reads back as %+v", got)
	}
	return path
}

// runCmd runs tetherctl in process with srv's environment.
func runCmd(t *testing.T, srv *awstest.Server, env Env, args ...string) error {
	t.Helper()
	vars := testAWSEnv(t, srv)
	env.Getenv = func(k string) string { return vars[k] }
	return RunEnv(releaseContext(t), args, env)
}

func TestImagesPushCommand(t *testing.T) {
	t.Parallel()
	f := newImagesFixture(t)
	f.dc.Images.DocsvcDigest, f.dc.Images.AgentDigest = f.rel.DocsvcDigest, f.rel.AgentDigest
	config := writeDeploymentYAML(t, f.dc)

	// Not confirmed: the plan is shown and nothing happens.
	var stdout, stderr bytes.Buffer
	env := Env{Now: time.Now, Stdin: strings.NewReader("no\n"), Stdout: &stdout, Stderr: &stderr, HTTPTransport: f.opt.Transport}
	err := runCmd(t, f.srv, env, "images", "push", "--config", config)
	if err == nil || !strings.Contains(err.Error(), "not confirmed, nothing was changed") ||
		!strings.Contains(stderr.String(), "copy registry.vendor.example/tether/docsvc@"+f.rel.DocsvcDigest+" into ECR acme-docs/docsvc") {
		t.Fatalf("err = %v\n%s", err, stderr.String())
	}
	if f.ecr.requests() != 0 || called(f.srv, ".PutParameter") {
		t.Fatal("an unconfirmed push changed something")
	}

	stdout.Reset()
	env.Stdin = strings.NewReader("yes\n")
	if err := runCmd(t, f.srv, env, "images", "push", "--config", config, "--output", "json"); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var rep struct {
		Source string
		Images []struct {
			Name, Digest, Action string
			Bytes                int64 `json:"bytes_copied"`
		}
		AgentMarker string `json:"agent_marker"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if rep.Source != "vendor" || len(rep.Images) != 2 || rep.Images[0].Digest != f.rel.DocsvcDigest || rep.Images[1].Action != "copied" ||
		rep.Images[1].Bytes == 0 || rep.AgentMarker != agentMarkerPath(f.dc, f.rel.AgentDigest) {
		t.Errorf("json: %s", stdout.String())
	}
	if err := f.inECR("agent", f.rel.AgentDigest); err != nil {
		t.Error(err)
	}
	if all := stdout.String() + stderr.String(); strings.Contains(all, ecrPassword) || strings.Contains(all, "QVdTOj") { // base64 of "AWS:"
		t.Errorf("the ECR login was printed:\n%s", all)
	}
}

func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	f := newMigrateFixture(t)
	holdTasks(t, f.srv)
	done := finishTask(releaseContext(t), t, f.srv, []string{"migrated"})
	config := writeDeploymentYAML(t, f.dc)
	var stdout bytes.Buffer
	env := Env{Now: time.Now, Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: io.Discard}
	if err := runCmd(t, f.srv, env, "migrate", "--config", config, "--digest", f.digest, "--output", "json", "--yes"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Digest, Marker string
		TaskARN        string `json:"task_arn"`
		ExitCode       *int   `json:"exit_code"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if rep.Digest != f.digest || rep.ExitCode == nil || *rep.ExitCode != 0 || rep.Marker != migratedMarkerPath(f.dc, f.digest) || rep.TaskARN == "" {
		t.Errorf("json: %s", stdout.String())
	}
	if _, ok := parameter(t, f.a, rep.Marker); !ok {
		t.Error("no marker")
	}
}

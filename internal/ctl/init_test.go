package ctl_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/ctl"
	"github.com/tetherhq/tether/internal/deployconfig"
)

const testRoot = `{"signed":{"_type":"root","version":1},"signatures":[]}` + "\n"

// initFiles writes the vendor's root.json and license.pub for init to read.
func initFiles(t *testing.T) (dir, root, pub, pubPEM string) {
	t.Helper()
	dir = t.TempDir()
	v := newVendor(t)
	root, pub = filepath.Join(dir, "root.json"), filepath.Join(dir, "license.pub")
	mustWrite(t, root, testRoot, 0o644)
	mustWrite(t, pub, v.pubPEM, 0o644)
	return dir, root, pub, v.pubPEM
}

func initFlags(config, root, pub string) []string {
	return []string{"init", "--config", config,
		"--name", "acme-docs", "--account", "012345678901", "--region", "eu-west-1",
		"--domain", "docs.acme.example", "--hosted-zone-id", "Z0123456789ABCDEFGHIJ",
		"--oidc-issuer", "https://login.acme.example/realms/staff", "--oidc-client-id", "tether-docs",
		"--ai-provider", "openai", "--ai-model", "gpt-4o-mini", "--ai-base-url", "https://api.openai.com/v1",
		"--vendor-registry", "registry.vendor.example/tether",
		"--plane-url", "https://plane.vendor.example", "--telemetry", "yes",
		"--trusted-root", root, "--license-public-key", pub}
}

func loadWritten(t *testing.T, path string) *deployconfig.Config {
	t.Helper()
	cfg, err := deployconfig.Load(path)
	if err != nil {
		t.Fatalf("the file init wrote does not parse: %v", err)
	}
	return cfg
}

// Flags alone write a file deployconfig accepts, with the defaults filled
// in and the files' content (not their paths) in it.
func TestInitFromFlags(t *testing.T) {
	t.Parallel()
	dir, root, pub, pubPEM := initFiles(t)
	config := filepath.Join(dir, "deployment.yaml")
	out := invocation{}.run(testContext(t), initFlags(config, root, pub)...)
	if out.err != nil {
		t.Fatalf("init: %v\n%s", out.err, out.all())
	}
	cfg := loadWritten(t, config)
	if cfg.Name != "acme-docs" || cfg.Account != "012345678901" || cfg.Region != "eu-west-1" {
		t.Errorf("name/account/region: %q %q %q", cfg.Name, cfg.Account, cfg.Region)
	}
	if z := cfg.Domain.HostedZone; z == nil || z.ID != "Z0123456789ABCDEFGHIJ" || z.Name != "acme.example" {
		t.Errorf("hosted zone: %+v (want the zone name defaulted to the domain's parent)", z)
	}
	if cfg.EmailSender != "noreply@acme.example" || cfg.Auth.Provider != "oidc" || cfg.Images.Source != "vendor" || cfg.Plane.Channel != "stable" {
		t.Errorf("defaults: %+v", cfg)
	}
	if cfg.AI.Provider != "openai" || cfg.AI.Model != "gpt-4o-mini" || cfg.AI.BaseURL != "https://api.openai.com/v1" {
		t.Errorf("ai: %+v", cfg.AI)
	}
	if !cfg.Agent.Telemetry || cfg.Agent.DiagnosticsApproval != "manual" {
		t.Errorf("agent: %+v", cfg.Agent)
	}
	if cfg.Plane.TrustedRoot != testRoot || cfg.License.PublicKey != pubPEM {
		t.Errorf("the files' content was not written:\nroot %q\nkey %q", cfg.Plane.TrustedRoot, cfg.License.PublicKey)
	}
	if !strings.Contains(out.stdout, "tetherctl preflight --config "+config) {
		t.Errorf("no next step: %s", out.stdout)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("init left files behind: %v", entries)
	}
}

// Wrong or missing flags are all reported at once, each with its flag,
// and nothing is written.
func TestInitFlagProblems(t *testing.T) {
	t.Parallel()
	dir, root, pub, _ := initFiles(t)
	config := filepath.Join(dir, "deployment.yaml")
	args := initFlags(config, root, pub)
	for i, a := range args {
		switch a {
		case "--account":
			args[i+1] = "12345"
		case "--name":
			args[i+1] = "Acme"
		}
	}
	args = append(args, "--certificate-arn", "arn:aws:acm:us-east-1:012345678901:certificate/12345678-1234-1234-1234-123456789012")
	out := invocation{}.run(testContext(t), args...)
	if !ctl.IsUsage(out.err) {
		t.Fatalf("want a usage error, got %v\n%s", out.err, out.all())
	}
	for _, want := range []string{`name: "Acme" is not valid`, "(--name)", `account: "12345"`, "(--account)", "--hosted-zone-id: not used", "nothing was written"} {
		if !strings.Contains(out.err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, out.err)
		}
	}
	if _, err := os.Stat(config); !os.IsNotExist(err) {
		t.Errorf("a file was written: %v", err)
	}

	out = invocation{}.run(testContext(t), "init", "--config", config, "--trusted-root", filepath.Join(dir, "missing.json"))
	if !ctl.IsUsage(out.err) || !strings.Contains(out.err.Error(), "--trusted-root: plane.trusted_root") || !strings.Contains(out.err.Error(), "missing.json") {
		t.Errorf("an unreadable file is not named: %v", out.err)
	}
}

// An existing file is kept unless --force.
func TestInitRefusesToOverwrite(t *testing.T) {
	t.Parallel()
	dir, root, pub, _ := initFiles(t)
	config := filepath.Join(dir, "deployment.yaml")
	mustWrite(t, config, "version: 1\n# mine\n", 0o600)
	out := invocation{}.run(testContext(t), initFlags(config, root, pub)...)
	if !ctl.IsUsage(out.err) || !strings.Contains(out.err.Error(), "--force") {
		t.Fatalf("want a usage error naming --force, got %v", out.err)
	}
	if b, _ := os.ReadFile(config); string(b) != "version: 1\n# mine\n" {
		t.Fatalf("the existing file changed: %q", b)
	}
	out = invocation{}.run(testContext(t), append(initFlags(config, root, pub), "--force")...)
	if out.err != nil {
		t.Fatalf("--force: %v", out.err)
	}
	loadWritten(t, config)
}

// On a terminal, each question is asked with its default; a wrong answer
// is explained with deployconfig's words and asked again; the file written
// is the same as the flags would have written.
func TestInitInteractive(t *testing.T) {
	t.Parallel()
	dir, root, pub, _ := initFiles(t)
	master, slave := openPTY(t)
	script := []string{
		"Acme Docs", // name: wrong
		"acme-docs",
		"012345678901",
		"", // region: the default from AWS_REGION
		"docs.acme.example",
		"", // no certificate: a hosted zone
		"Z0123456789ABCDEFGHIJ",
		"",     // zone name: the default, acme.example
		"ldap", // auth provider: wrong
		"",     // oidc
		"https://login.acme.example/realms/staff",
		"tether-docs",
		"", // email sender
		"openai",
		"gpt-4o-mini",
		"http://api.openai.com/v1", // not https: wrong
		"https://api.openai.com/v1",
		"", // vendor
		"registry.vendor.example/tether",
		"sha256:abc", // wrong
		"",
		"",
		"https://plane.vendor.example",
		"",
		"perhaps", // telemetry: wrong
		"yes",
		"",                                // diagnostics: manual
		filepath.Join(dir, "nosuch.json"), // missing file
		pub,                               // not a root: wrong
		root,
		pub,
		"",
		"",
	}
	if _, err := master.WriteString(strings.Join(script, "\n") + "\n\x04"); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "deployment.yaml")
	out := invocation{env: map[string]string{"AWS_REGION": "eu-west-1"}, stdin: slave}.run(testContext(t), "init", "--config", config)
	if out.err != nil {
		t.Fatalf("init: %v\n%s", out.err, out.all())
	}
	for _, want := range []string{
		"AWS region [eu-west-1]: ",
		"That hosted zone's domain name [acme.example]: ",
		`name: "Acme Docs" is not valid: want 3–24 characters`,
		`auth.provider: must be "oidc"`,
		`ai.base_url: "http://api.openai.com/v1" is not valid`,
		"images.docsvc_digest: must be an image digest",
		"plane.trusted_root: open " + filepath.Join(dir, "nosuch.json"),
		"plane.trusted_root: not a JSON object",
		`agent.telemetry: "perhaps" is not yes or no`,
		"Diagnostics bundles: manual (you approve each) or automatic [manual]: ",
	} {
		if !strings.Contains(out.stderr, want) {
			t.Errorf("the conversation does not show %q:\n%s", want, out.stderr)
		}
	}
	if n := strings.Count(out.stderr, "Deployment name"); n != 2 {
		t.Errorf("the name was asked %d times, want 2 (once more after the wrong answer)", n)
	}
	interactive, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	loadWritten(t, config)

	flagged := filepath.Join(dir, "flags.yaml")
	if out := (invocation{}).run(testContext(t), initFlags(flagged, root, pub)...); out.err != nil {
		t.Fatalf("init from flags: %v", out.err)
	}
	want, _ := os.ReadFile(flagged)
	if string(interactive) != string(want) {
		t.Errorf("the answers typed wrote\n%s\nthe same answers as flags wrote\n%s", interactive, want)
	}
}

// The answers running out mid-way end init with nothing written.
func TestInitInteractiveEOF(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	master, slave := openPTY(t)
	if _, err := master.WriteString("acme-docs\n\x04"); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "deployment.yaml")
	out := invocation{stdin: slave}.run(testContext(t), "init", "--config", config)
	if out.err == nil || !strings.Contains(out.err.Error(), "no answer for account") {
		t.Fatalf("want an error naming the unanswered question, got %v", out.err)
	}
	if _, err := os.Stat(config); !os.IsNotExist(err) {
		t.Errorf("a file was written: %v", err)
	}
}

package ctl_test

import (
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/ctl"
)

// --help on every command and subcommand succeeds, explains, and touches
// nothing: no AWS call, no deployment.yaml needed.
func TestHelpHasNoSideEffects(t *testing.T) {
	t.Parallel()
	srv := awstest.Start(t)
	in := invocation{env: envOf(srv.Env())}
	for _, args := range [][]string{
		{"--help"}, {"help"},
		{"secrets", "--help"}, {"secrets", "help"},
		{"secrets", "list", "--help"}, {"secrets", "show", "--help"}, {"secrets", "show", "license", "-h"},
		{"secrets", "set", "--help"}, {"secrets", "set", "license", "--help", "--config", "/nonexistent.yaml"},
		{"preflight", "--help"}, {"preflight", "-h"},
		{"bootstrap", "--help"}, {"deploy", "--help"}, {"deploy", "-h", "--config", "/nonexistent.yaml"},
		{"init", "--help"}, {"status", "--help"}, {"destroy", "--help"}, {"destroy", "-h", "--yes"},
		{"images", "--help"}, {"images", "push", "--help"}, {"images", "push", "-h", "--config", "/nonexistent.yaml"},
		{"migrate", "--help"}, {"migrate", "-h", "--digest", "x"},
		{"tokens", "--help"}, {"tokens", "create", "--help"}, {"tokens", "list", "-h"}, {"tokens", "revoke", "--help", "--config", "/nonexistent.yaml"},
	} {
		out := in.run(testContext(t), args...)
		if out.err != nil || !strings.Contains(out.stdout, "Usage:") {
			t.Errorf("%q: %v\n%s", args, out.err, out.all())
		}
	}
	for _, want := range []string{"tetherctl preflight", "tetherctl secrets", "tetherctl bootstrap", "tetherctl deploy", "tetherctl images push", "tetherctl migrate", "tetherctl tokens", "tetherctl init", "tetherctl status", "tetherctl destroy"} {
		if out := in.run(testContext(t), "--help"); !strings.Contains(out.stdout, want) {
			t.Errorf("the top-level usage does not mention %s", want)
		}
	}
	if reqs := srv.Requests(); len(reqs) != 0 {
		t.Fatalf("--help called AWS: %+v", reqs)
	}
}

var testDigest = "sha256:" + strings.Repeat("0a", 32)

// Mistakes on the command line or in deployment.yaml are usage errors
// (exit 2) that name the bad value; main maps them.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	v := newVendor(t)
	config := defaultDeployment(v).write(t)
	bad := t.TempDir() + "/deployment.yaml"
	mustWrite(t, bad, "version: 1\nname: X\n", 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"nosuch"}, `"nosuch"`},
		{[]string{"secrets"}, "want list"},
		{[]string{"secrets", "frob"}, `"frob"`},
		{[]string{"secrets", "show", "--config", config}, "give one secret NAME"},
		{[]string{"secrets", "list", "extra", "--config", config}, `"extra"`},
		{[]string{"secrets", "list", "--output", "yaml", "--config", config}, `--output "yaml"`},
		{[]string{"secrets", "list", "--bogus"}, "-bogus"},
		{[]string{"secrets", "show", "license", "--from-file", "x", "--config", config}, "only for set"},
		{[]string{"secrets", "list", "--config", "/nonexistent/deployment.yaml"}, "/nonexistent/deployment.yaml"},
		{[]string{"secrets", "list", "--config", bad}, "name"},
		{[]string{"secrets", "show", "passwords", "--config", config}, `"passwords"`},
		{[]string{"secrets", "set", "license", "--from-file", "/nonexistent/license.json", "--config", config}, "/nonexistent/license.json"},
		{[]string{"preflight", "--timeout", "1m", "--config", config}, "--timeout 1m0s"},
		{[]string{"preflight", "extra"}, `"extra"`},
		{[]string{"bootstrap", "extra"}, `"extra"`},
		{[]string{"bootstrap", "--timeout", "0s", "--config", config}, "--timeout 0s"},
		{[]string{"deploy", "extra"}, `"extra"`},
		{[]string{"deploy", "--method", "cdk", "--config", config}, `--method "cdk"`},
		{[]string{"deploy", "--timeout", "-1s", "--config", config}, "--timeout -1s"},
		{[]string{"deploy", "--config", config}, "images.docsvc_digest"},
		{[]string{"deploy", "--output", "yaml", "--config", config}, `--output "yaml"`},
		{[]string{"status", "--timeout", "1h", "--config", config}, "--timeout 1h0m0s"},
		{[]string{"status", "extra"}, `"extra"`},
		{[]string{"status", "--output", "yaml", "--config", config}, `--output "yaml"`},
		{[]string{"destroy", "--wait", "5s", "--config", config}, "--wait 5s"},
		{[]string{"destroy", "--config", bad}, "name"},
		{[]string{"init", "--bogus"}, "-bogus"},
		{[]string{"init", "extra"}, `"extra"`},
		{[]string{"init", "--config", config}, "already exists"},
		{[]string{"images"}, "want push"},
		{[]string{"images", "pull"}, `"pull"`},
		{[]string{"images", "push", "extra", "--config", config}, `"extra"`},
		{[]string{"images", "push", "--config", config}, "--docsvc-digest or set images.docsvc_digest"},
		{[]string{"images", "push", "--config", config, "--docsvc-digest", "sha256:abc", "--agent-digest", "sha256:abc"}, `--docsvc-digest "sha256:abc"`},
		{[]string{"images", "push", "--config", config, "--docsvc-digest", testDigest, "--agent-digest", testDigest, "--source-bundle", "x.zip"}, "--source-bundle is for images.source build"},
		{[]string{"migrate", "--config", config}, "--digest sha256:... or set images.docsvc_digest"},
		{[]string{"migrate", "--config", config, "--digest", "sha256:ABC"}, `--digest "sha256:ABC"`},
		{[]string{"migrate", "--timeout", "10s", "--config", config}, "--timeout 10s"},
		{[]string{"migrate", "extra"}, `"extra"`},
	} {
		out := invocation{env: map[string]string{}}.run(testContext(t), tc.args...)
		if out.err == nil || !ctl.IsUsage(out.err) || !strings.Contains(out.err.Error(), tc.want) {
			t.Errorf("%q: %v, want a usage error naming %s", tc.args, out.err, tc.want)
		}
	}
}

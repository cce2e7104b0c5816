package ctl_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/awstest"
)

// recordingCDK makes a tools dir whose pinned cdk records its arguments
// and environment, one per line, into the returned file, and a PATH with a
// node on it.
func recordingCDK(t *testing.T) (pathDir, toolsDir, record string) {
	t.Helper()
	pathDir, toolsDir = fakeTools(t, "v20.11.0", "2.1148.1", "2.1148.1")
	record = filepath.Join(t.TempDir(), "cdk-args")
	mustWrite(t, filepath.Join(toolsDir, "node_modules", ".bin", "cdk"),
		"#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done > "+record+"\necho ENV >> "+record+"\n/usr/bin/env >> "+record+"\necho bootstrapping\n", 0o755)
	return pathDir, toolsDir, record
}

// The bootstrap is detected by its SSM version parameter: present and new
// enough means nothing to do (and no CDK CLI needed).
func TestBootstrapAlreadyDone(t *testing.T) {
	t.Parallel()
	srv := awstest.Start(t)
	srv.PutParameter(t, "/cdk-bootstrap/hnb659fds/version", "21", false)
	config := defaultDeployment(newVendor(t)).write(t)
	in := invocation{env: envOf(srv.Env())} // no PATH: the CLI must not be needed
	out := in.run(testContext(t), "bootstrap", "--config", config)
	if out.err != nil || !strings.Contains(out.stdout, "already bootstrapped, version 21 (qualifier hnb659fds)") {
		t.Fatalf("%s", out.all())
	}
	out = in.run(testContext(t), "bootstrap", "--config", config, "--output", "json")
	var rep struct {
		Action  string `json:"action"`
		Version int    `json:"version"`
	}
	if err := json.Unmarshal([]byte(out.stdout), &rep); err != nil || rep.Action != "already-bootstrapped" || rep.Version != 21 {
		t.Fatalf("json: %v %+v\n%s", err, rep, out.all())
	}
}

// Missing, too old, or unreadable: the pinned CLI is run with the
// deployment's account, region, qualifier and permissions boundary, and
// the AWS settings passed through.
func TestBootstrapRunsThePinnedCLI(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, version, want string }{
		{"missing", "", "is not bootstrapped with qualifier custom1"},
		{"too old", "5", "has CDK bootstrap version 5 (qualifier custom1); the stacks need 6 or later"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := awstest.Start(t)
			if tc.version != "" {
				srv.PutParameter(t, "/cdk-bootstrap/custom1/version", tc.version, false)
			}
			pathDir, toolsDir, record := recordingCDK(t)
			d := defaultDeployment(newVendor(t))
			d.Qualifier = "custom1"
			config := d.write(t)
			// The permissions boundary is added to deployment.yaml.
			data, _ := os.ReadFile(config)
			mustWrite(t, config, string(data)+"iam:\n  permissions_boundary: acme-boundary\n", 0o600)
			env := envOf(srv.Env(), []string{"PATH=" + pathDir, "HOME=/home/op", "HTTPS_PROXY=http://proxy.acme.example:3128", "SECRET_UNRELATED=x"})
			out := invocation{env: env, stdin: strings.NewReader("yes\n")}.run(testContext(t), "bootstrap", "--config", config, "--tools-dir", toolsDir)
			if !strings.Contains(out.stdout, tc.want) || !strings.Contains(out.stdout, "bootstrapping") {
				t.Errorf("output lacks %q and the CLI's output:\n%s", tc.want, out.all())
			}
			// The fake CLI wrote no bootstrap, which the command notices.
			if out.err == nil || !strings.Contains(out.err.Error(), "does not hold version 6 or later") {
				t.Errorf("err = %v", out.err)
			}
			raw, err := os.ReadFile(record)
			if err != nil {
				t.Fatalf("the CDK CLI was not run: %v\n%s", err, out.all())
			}
			args, envText, _ := strings.Cut(string(raw), "ENV\n")
			want := "bootstrap\naws://" + awstest.Account + "/" + awstest.Region + "\n--qualifier\ncustom1\n--custom-permissions-boundary=acme-boundary\n"
			if args != want {
				t.Errorf("cdk got\n%s\nwant\n%s", args, want)
			}
			for _, v := range []string{"AWS_ENDPOINT_URL=" + srv.Endpoint(), "AWS_ACCESS_KEY_ID=test", "HOME=/home/op", "HTTPS_PROXY=http://proxy.acme.example:3128"} {
				if !strings.Contains(envText, v+"\n") {
					t.Errorf("the CLI's environment lacks %s", v)
				}
			}
			if strings.Contains(envText, "SECRET_UNRELATED") {
				t.Error("an unrelated variable was passed to the CLI")
			}
		})
	}
}

// Without confirmation nothing runs; without Node.js the error says how
// to install it.
func TestBootstrapRefusals(t *testing.T) {
	t.Parallel()
	srv := awstest.Start(t)
	config := defaultDeployment(newVendor(t)).write(t)
	pathDir, toolsDir, record := recordingCDK(t)

	out := invocation{env: envOf(srv.Env(), []string{"PATH=" + pathDir}), stdin: strings.NewReader("n\n")}.
		run(testContext(t), "bootstrap", "--config", config, "--tools-dir", toolsDir)
	if out.err == nil || !strings.Contains(out.err.Error(), "not confirmed") {
		t.Errorf("declined: %v", out.err)
	}
	if _, err := os.Stat(record); err == nil {
		t.Error("the CLI ran without confirmation")
	}

	out = invocation{env: envOf(srv.Env(), []string{"PATH=" + t.TempDir()})}.
		run(testContext(t), "bootstrap", "--config", config, "--tools-dir", toolsDir, "--yes")
	if out.err == nil || !strings.Contains(out.err.Error(), "needs Node.js, and node is not on PATH: install Node.js 18 or newer") {
		t.Errorf("no node: %v", out.err)
	}
}

// The real, pinned CDK CLI bootstraps moto (its bootstrap template is
// within what moto's CloudFormation creates); a second run has nothing to do.
func TestBootstrapRunsTheCDKCLI(t *testing.T) {
	t.Parallel()
	toolsDir, err := filepath.Abs(filepath.Join("..", "..", "tools"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(toolsDir, "node_modules", ".bin", "cdk")); err != nil {
		t.Fatalf("the pinned CDK CLI is not installed (%v): run scripts/test-deps.sh, or npm ci --prefix tools", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("this test runs the CDK CLI, which needs Node.js on PATH: %v", err)
	}
	srv := awstest.Start(t)
	config := defaultDeployment(newVendor(t)).write(t)
	env := envOf(srv.Env(), []string{"PATH=" + filepath.Dir(node) + ":/usr/bin:/bin", "HOME=" + t.TempDir()})
	in := invocation{env: env}
	start := time.Now()
	out := in.run(testContext(t), "bootstrap", "--config", config, "--tools-dir", toolsDir, "--yes")
	if out.err != nil || !strings.Contains(out.stdout, "bootstrapped, version") {
		t.Fatalf("%s", out.all())
	}
	t.Logf("cdk bootstrap against moto took %s:\n%s", time.Since(start).Round(time.Millisecond), out.stdout)
	out = in.run(testContext(t), "bootstrap", "--config", config, "--tools-dir", toolsDir, "--yes")
	if out.err != nil || !strings.Contains(out.stdout, "already bootstrapped, version") {
		t.Fatalf("second run: %s", out.all())
	}
}

// An AWS endpoint that accepts connections and never answers fails
// bootstrap and deploy within their --timeout, naming what was asked.
func TestEndpointNeverAnswers(t *testing.T) {
	t.Parallel()
	d := defaultDeployment(newVendor(t))
	d.Digest = "sha256:" + strings.Repeat("1", 64)
	config := d.write(t)
	env := envOf([]string{"AWS_ENDPOINT_URL=" + silentListener(t), "AWS_REGION=" + awstest.Region, "AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true"})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bootstrap", "--config", config, "--timeout", "2s"}, "(STS GetCallerIdentity): no answer"},
		{[]string{"deploy", "--config", config, "--cdk-out", t.TempDir(), "--yes", "--timeout", "3s"}, "preflight"},
	} {
		start := time.Now()
		out := invocation{env: env}.run(testContext(t), tc.args...)
		if out.err == nil || !strings.Contains(out.err.Error(), tc.want) || !strings.Contains(out.all(), "no answer") {
			t.Errorf("%s: %s", tc.args[0], out.all())
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("%s took %s with %s", tc.args[0], d, strings.Join(tc.args[len(tc.args)-2:], " "))
		}
	}
}

// Without tools/node_modules, a cdk on PATH is used when it is the pinned
// version, and refused otherwise.
func TestBootstrapUsesThePinnedCDKOnPath(t *testing.T) {
	t.Parallel()
	srv := awstest.Start(t)
	config := defaultDeployment(newVendor(t)).write(t)
	for _, tc := range []struct{ version, want string }{
		{"2.1148.1 (build fcf5e34)", "bootstrapping from PATH"},
		{"2.1000.0 (build 0000000)", "is version 2.1000.0, but"},
	} {
		pathDir, toolsDir := fakeTools(t, "v20.11.0", "2.1148.1", "2.1148.1")
		if err := os.RemoveAll(filepath.Join(toolsDir, "node_modules")); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, filepath.Join(pathDir, "cdk"), "#!/bin/sh\nif [ \"$1\" = --version ]; then echo '"+tc.version+"'; else echo bootstrapping from PATH; fi\n", 0o755)
		out := invocation{env: envOf(srv.Env(), []string{"PATH=" + pathDir})}.
			run(testContext(t), "bootstrap", "--config", config, "--tools-dir", toolsDir, "--yes")
		if !strings.Contains(out.all(), tc.want) {
			t.Errorf("cdk %s on PATH: %s", tc.version, out.all())
		}
	}
}

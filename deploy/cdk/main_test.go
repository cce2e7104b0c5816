package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherhq/tether/deploy/cdk/internal/snapshot"
)

// update is the stacks package's flag, accepted here so `go test ./... -update`
// works: while snapshots are being rewritten there is nothing to compare to.
var update = flag.Bool("update", false, "snapshots are being rewritten (by ./stacks)")

// The tests run this program as a child process (the test binary itself,
// re-entered through TestMain), exactly as `cdk synth` or an operator would:
// the CDK reads CDK_OUTDIR when its runtime starts.
func TestMain(m *testing.M) {
	if os.Getenv("TETHER_CDK_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func runMain(t *testing.T, env ...string) (stderr string, err error) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), append(env, "TETHER_CDK_TEST_RUN_MAIN=1")...)
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	err = cmd.Run()
	return errBuf.String(), err
}

// Running the program directly with CDK_OUTDIR set (no CDK CLI) writes the
// same templates the stacks tests check in under testdata/.
func TestRunWritesTemplates(t *testing.T) {
	out := t.TempDir()
	if stderr, err := runMain(t, "CDK_OUTDIR="+out, "TETHER_DEPLOYMENT_CONFIG="+filepath.Join("examples", "minimal.yaml")); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	// Nothing may be left to look up in an AWS account: synth runs anywhere.
	manifest, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(manifest, []byte(`"missing"`)) {
		t.Errorf("the cloud assembly needs context lookups (AWS credentials): %s", manifest)
	}
	for _, stack := range []string{"network", "data", "images", "cluster", "services"} {
		name := "acme-docs-" + stack + ".template.json"
		raw, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := snapshot.Normalize(raw)
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			continue
		}
		want, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s written by the program differs from testdata/%s", name, name)
		}
	}
}

func TestRunRejectsMissingOrBadConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     []string
		wantErr string
	}{
		{"no config", nil, "pass -c config=PATH"},
		{"missing file", []string{"TETHER_DEPLOYMENT_CONFIG=" + filepath.Join(t.TempDir(), "nope.yaml")}, "no such file"},
		{"invalid", []string{"CDK_CONTEXT_JSON={\"config\":\"" + filepath.Join("testdata", "..", "cdk.json") + "\"}"}, "invalid deployment config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stderr, err := runMain(t, append(tt.env, "CDK_OUTDIR="+t.TempDir())...)
			if err == nil {
				t.Fatal("the program succeeded")
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.wantErr)
			}
		})
	}
}

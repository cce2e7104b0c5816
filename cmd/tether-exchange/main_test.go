package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/ledger"
	"github.com/tetherhq/tether/internal/maintest"
	"github.com/tetherhq/tether/internal/testtime"
)

const asMain = "TETHER_EXCHANGE_TEST_AS_MAIN"

func TestMain(m *testing.M) { maintest.Hook(m, asMain, main) }

// The real main: --help on stdout, 2 for a usage mistake, 1 for a data
// directory that is not there.
func TestExitStatus(t *testing.T) {
	env := []string{"TETHER_DATA_DIR=" + t.TempDir(), "TETHER_EXCHANGE_BUCKET=acme-docs-data-exchange"}
	run := func(args ...string) maintest.Result { return maintest.Run(t, asMain, env, args...) }
	if r := run("--help"); r.Code != 0 || !strings.Contains(r.Stdout, "usage: tether-exchange") || !strings.Contains(r.Stdout, "TETHER_EXCHANGE_INTERVAL") {
		t.Fatalf("--help: exit %d, stdout %q", r.Code, r.Stdout)
	}
	if r := run("--exchange-bucket", "arn:aws:s3:::acme"); r.Code != 2 || !strings.Contains(r.Stderr, "--exchange-bucket (TETHER_EXCHANGE_BUCKET)") {
		t.Fatalf("bad bucket: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if r := run("--interval", "0"); r.Code != 2 || !strings.Contains(r.Stderr, "--interval (TETHER_EXCHANGE_INTERVAL)") {
		t.Fatalf("bad interval: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if r := run("extra"); r.Code != 2 || !strings.Contains(r.Stderr, `unexpected argument "extra"`) {
		t.Fatalf("extra argument: exit %d, stderr %q", r.Code, r.Stderr)
	}
	missing := filepath.Join(t.TempDir(), "nowhere")
	if r := run("--data-dir", missing); r.Code != 1 || !strings.Contains(r.Stderr, missing) {
		t.Fatalf("missing data dir: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

// The real process against moto: it copies the agent's ledger to the
// bucket, logs the round, and exits 0 on SIGTERM.
func TestMirrorsUntilSIGTERM(t *testing.T) {
	srv := awstest.Start(t)
	const bucket = "acme-docs-data-exchange"
	srv.ExchangeStack(t, "acme-docs-data", bucket)
	dir := t.TempDir()
	led, err := ledger.Open(filepath.Join(dir, "egress.ledger"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := led.Append(ledger.KindHeartbeat, "POST https://plane.example/v1/heartbeat", []byte(`{"ok":true}`), time.Now()); err != nil {
		t.Fatal(err)
	}
	led.Close()

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), asMain+"=1", "TETHER_DATA_DIR="+dir, "TETHER_EXCHANGE_BUCKET="+bucket, "TETHER_EXCHANGE_INTERVAL=1s"), srv.Env()...)
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	logged := func() string { b, _ := os.ReadFile(stderr.Name()); return string(b) }
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	testtime.Until(t, time.Minute, "the ledger's head in the bucket", func() bool {
		_, err := srv.S3().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("ledger/egress.ledger.head")})
		return err == nil
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after SIGTERM: %v\n%s", err, logged())
		}
	case <-time.After(time.Minute): // bounds a hang only
		t.Fatalf("still running a minute after SIGTERM:\n%s", logged())
	}
	if out := logged(); strings.Count(out, "copied to the exchange bucket") != 1 {
		t.Fatalf("want one round's log line for the one copy, got:\n%s", out)
	}
}

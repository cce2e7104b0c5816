package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/ctl"
	"github.com/tetherhq/tether/internal/diagspool"
	"github.com/tetherhq/tether/internal/exchange"
	"github.com/tetherhq/tether/internal/ledger"
)

// exchangeSetup is an agent whose deployment (in moto) has an exchange
// bucket, tether-exchange's mirror on the same data dir, and a
// deployment.yaml for tetherctl to find the bucket.
type exchangeSetup struct {
	*bundle
	aws     *awstest.Server
	bucket  string
	config  string
	env     map[string]string
	mirror  *exchange.Mirror
	mirLogs string // the mirror's log file
}

func setupExchange(t *testing.T) *exchangeSetup {
	t.Helper()
	b := setup(t)
	srv := awstest.Start(t)
	x := &exchangeSetup{bundle: b, aws: srv, bucket: "acme-docs-data-exchange"}
	srv.ExchangeStack(t, "acme-docs-data", x.bucket)
	// The agent has no part in it: the mirror is its own process in a
	// deployment, with its own opens of the spool, the ledger and its state.
	x.mirror = exchange.NewMirror(exchange.New(srv.AWSConfig(), x.bucket, nil), b.cfg.DataDir, time.Now)
	// The example deployment, moved to moto's account and region.
	example, err := os.ReadFile("../../deploy/cdk/examples/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.NewReplacer("111122223333", awstest.Account, "eu-west-1", awstest.Region).Replace(string(example))
	x.config = filepath.Join(t.TempDir(), "deployment.yaml")
	if err := os.WriteFile(x.config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	x.env = map[string]string{}
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		x.env[k] = v
	}
	return x
}

// runMirror runs rounds as tether-exchange does, until stop or the test's
// end.
func (x *exchangeSetup) runMirror() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	x.mirLogs = filepath.Join(x.t.TempDir(), "exchange.log")
	f, err := os.Create(x.mirLogs)
	if err != nil {
		x.t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(f, nil))
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			x.mirror.Round(ctx, log)
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done; f.Close() }) }
	x.t.Cleanup(stop)
	return stop
}

// tetherctl runs tetherctl with --config on the deployment, as an operator
// at a workstation would.
func (x *exchangeSetup) tetherctl(args ...string) (string, error) {
	x.t.Helper()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := ctl.RunEnv(ctx, append(args, "--config", x.config), ctl.Env{
		Stdin: strings.NewReader(""), Stdout: &out, Stderr: io.Discard, Getenv: func(k string) string { return x.env[k] }})
	return out.String(), err
}

// inBucket waits until the mirror has copied request id to the bucket.
func (x *exchangeSetup) inBucket(id string) {
	x.t.Helper()
	waitFor(x.t, "request "+id+" in the exchange bucket", func() bool {
		out, err := x.tetherctl("diag", "list")
		return err == nil && strings.Contains(out, id)
	})
}

// logged reports whether the mirror logged msg about id.
func (x *exchangeSetup) logged(msg, id string) bool {
	data, _ := os.ReadFile(x.mirLogs)
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, msg) && strings.Contains(line, id) {
			return true
		}
	}
	return false
}

// End to end through the exchange bucket, the agent and the mirror each on
// its own: the agent records a request and the mirror copies it; tetherctl
// shows exactly the manifest's files and approves; the mirror applies the
// approval on the data dir and the agent uploads exactly those files to
// the plane; the copy of the ledger in the bucket verifies with tetherctl,
// holds the upload, and is the agent's ledger byte for byte, with no entry
// missing or copied twice.
func TestExchangeApproveEndToEnd(t *testing.T) {
	t.Parallel()
	x := setupExchange(t)
	r := x.start()
	stopMirror := x.runMirror()
	x.waitHeartbeats(1)
	id := x.requestDiagnostic(r, "queue stuck since Tuesday")
	x.inBucket(id)

	out, err := x.tetherctl("diag", "preview", id, "--output", "json")
	var previewed []diagspool.PreviewFile
	if err != nil || json.Unmarshal([]byte(out), &previewed) != nil {
		t.Fatalf("tetherctl diag preview --config: %v\n%s", err, out)
	}
	var manifest struct {
		Files []struct {
			Name string `json:"name"`
		} `json:"files"`
	}
	raw, _ := os.ReadFile(filepath.Join(x.cfg.DataDir, "diagnostics", id, "manifest.json"))
	if err := json.Unmarshal(raw, &manifest); err != nil || len(manifest.Files) != len(previewed) || len(previewed) == 0 {
		t.Fatalf("preview shows %d files, the manifest lists %d (%v)", len(previewed), len(manifest.Files), err)
	}
	want := map[string][]byte{}
	for _, f := range previewed {
		want[f.Name] = f.Content
	}
	for _, f := range manifest.Files {
		if _, ok := want[f.Name]; !ok {
			t.Errorf("the manifest lists %s, the preview does not show it", f.Name)
		}
	}
	if got := x.received("POST", "/v1/diagnostics/"); len(got) != 0 {
		t.Fatal("bundle uploaded before approval")
	}

	if out, err := x.tetherctl("diag", "approve", id, "--yes"); err != nil {
		t.Fatalf("tetherctl diag approve --config: %v\n%s", err, out)
	}
	waitFor(t, "the upload", func() bool {
		d, err := diagspool.Read(x.cfg.DataDir, id)
		return err == nil && d.State == diagspool.StateUploaded
	})
	status, zipped := x.plane.Admin(t, "GET", "/v1/admin/diagnostics/"+id+"/bundle", nil)
	if status != http.StatusOK {
		t.Fatalf("download bundle: %d", status)
	}
	uploaded := unzipped(t, zipped)
	if len(uploaded) != len(want) {
		t.Errorf("uploaded %d files, previewed %d", len(uploaded), len(want))
	}
	for name, got := range uploaded {
		if w, ok := want[name]; !ok || got != string(w) {
			t.Errorf("uploaded %s is not what the preview showed", name)
		}
	}

	// The bucket's ledger verifies and holds exactly the bytes uploaded.
	waitFor(t, "the upload in the bucket's ledger", func() bool {
		out, err := x.tetherctl("egress", "show", "--output", "json")
		var entries []ledger.Entry
		if err != nil || json.Unmarshal([]byte(out), &entries) != nil {
			return false
		}
		for _, e := range entries {
			if b, _ := e.Bytes(); e.Kind == ledger.KindDiagnostics && bytes.Equal(b, zipped) {
				return true
			}
		}
		return false
	})
	if out, err := x.tetherctl("egress", "verify"); err != nil || !strings.Contains(out, "ledger intact") {
		t.Fatalf("tetherctl egress verify --config: %v\n%s", err, out)
	}
	// The bucket's copy reaches the head the plane recorded (once copied
	// after the heartbeat that carried it), and not a different hash there.
	head := x.installOnPlane(r.Snapshot().InstallID).LedgerHead
	waitFor(t, "the bucket's ledger to reach the plane's head "+head, func() bool {
		out, err := x.tetherctl("egress", "verify", "--expect-head", head)
		return err == nil && strings.Contains(out, "reaches the expected head")
	})
	count, _, _ := strings.Cut(head, ":")
	if _, err := x.tetherctl("egress", "verify", "--expect-head", count+":"+strings.Repeat("ab", 32)); err == nil ||
		!strings.Contains(err.Error(), "rewritten from entry "+count) {
		t.Fatalf("verify --config --expect-head with another hash = %v; want it to name entry %s", err, count)
	}
	waitFor(t, "the uploaded state in the bucket", func() bool {
		out, err := x.tetherctl("diag", "list")
		return err == nil && strings.Contains(out, "uploaded")
	})

	// With the agent stopped, one more round copies the rest: the bucket's
	// segments, in key order, are the ledger file, each entry once.
	r.stop(t)
	stopMirror()
	if err := x.mirror.Round(context.Background(), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	var copied []byte
	list, err := x.aws.S3().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(x.bucket), Prefix: aws.String(exchange.SegmentPrefix)})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Contents {
		got, err := x.aws.S3().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(x.bucket), Key: o.Key})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(got.Body)
		got.Body.Close()
		copied = append(copied, b...)
	}
	local, _ := os.ReadFile(filepath.Join(x.cfg.DataDir, "egress.ledger"))
	if !bytes.Equal(copied, local) {
		t.Fatalf("the bucket's %d segments hold %d bytes, the agent's ledger %d: not the same bytes", len(list.Contents), len(copied), len(local))
	}
	if len(list.Contents) < 2 {
		t.Fatalf("%d segments: the test meant to copy the ledger while the agent appended", len(list.Contents))
	}
}

// A bundle changed in the bucket, manifest and all, previews fine but its
// approval names a manifest the agent never built: refused, not sent. A
// declined request is never sent.
func TestExchangeTamperedAndDeclined(t *testing.T) {
	t.Parallel()
	x := setupExchange(t)
	r := x.start()
	x.runMirror()
	x.waitHeartbeats(1)
	tampered := x.requestDiagnostic(r, "check the config")
	declined := x.requestDiagnostic(r, "and the logs")
	x.inBucket(tampered)
	x.inBucket(declined)

	put := func(key string, body []byte) {
		if _, err := x.aws.S3().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(x.bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	// One file is left, with a manifest to match: a consistent forgery.
	put("diagnostics/"+tampered+"/bundle/versions.json", []byte("{}\n"))
	put("diagnostics/"+tampered+"/manifest.json",
		[]byte(`{"files":[{"name":"versions.json","size":3,"sha256":"ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356"}]}`))
	if out, err := x.tetherctl("diag", "preview", tampered); err != nil || !strings.Contains(out, "These 1 files") {
		t.Fatalf("preview of the forged copy: %v\n%s", err, out)
	}
	if out, err := x.tetherctl("diag", "approve", tampered, "--yes"); err != nil {
		t.Fatalf("approve: %v\n%s", err, out)
	}
	if out, err := x.tetherctl("diag", "decline", declined, "--yes"); err != nil {
		t.Fatalf("decline: %v\n%s", err, out)
	}
	waitFor(t, "the decline", func() bool {
		d, err := diagspool.Read(x.cfg.DataDir, declined)
		return err == nil && d.State == diagspool.StateDeclined
	})
	waitFor(t, "the mirror to refuse the forged approval", func() bool {
		return x.logged("decision in the exchange bucket not applied", tampered)
	})
	if d, _ := diagspool.Read(x.cfg.DataDir, tampered); d.State != diagspool.StatePending {
		t.Fatalf("forged approval: state %s, want pending", d.State)
	}
	n := len(x.heartbeats())
	x.waitHeartbeats(n + 3)
	if got := x.received("POST", "/v1/diagnostics/"); len(got) != 0 {
		t.Fatalf("sent %d bundles; a forged approval and a decline send none", len(got))
	}
	// The refused request can still be declined from the workstation.
	if out, err := x.tetherctl("diag", "decline", tampered, "--yes"); err != nil {
		t.Fatalf("decline after a refused approval: %v\n%s", err, out)
	}
	waitFor(t, "the refused request declined", func() bool {
		d, err := diagspool.Read(x.cfg.DataDir, tampered)
		return err == nil && d.State == diagspool.StateDeclined
	})
	if got := x.received("POST", "/v1/diagnostics/"); len(got) != 0 {
		t.Fatalf("sent %d bundles", len(got))
	}
	// Who decided is in the bucket, never in what the agent or the mirror logs.
	data, _ := os.ReadFile(filepath.Join(x.cfg.DataDir, "logs", "agent.log"))
	mirrored, _ := os.ReadFile(x.mirLogs)
	data = append(data, mirrored...)
	if strings.Contains(string(data), "user/moto") {
		t.Error("the agent or the mirror logged who decided")
	}
}

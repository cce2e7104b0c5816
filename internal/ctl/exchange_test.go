package ctl_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/ctl"
	"github.com/tetherhq/tether/internal/diagspool"
	"github.com/tetherhq/tether/internal/diagspool/diagreview"
	"github.com/tetherhq/tether/internal/exchange"
	"github.com/tetherhq/tether/internal/ledger"
	"github.com/tetherhq/tether/internal/wire"
)

// exchangeFixture is a deployment whose data stack (in moto) made the
// exchange bucket and names it in its outputs, and an agent data dir
// mirrored there.
type exchangeFixture struct {
	srv     *awstest.Server
	config  string // deployment.yaml
	bucket  string
	dataDir string
	mirror  *exchange.Mirror
	ledger  *ledger.Ledger
	in      invocation
}

const exchangeBucket = "acme-docs-data-exchange"

func newExchangeFixture(t *testing.T, ids ...string) *exchangeFixture {
	t.Helper()
	srv := awstest.Start(t)
	f := &exchangeFixture{srv: srv, config: defaultDeployment(newVendor(t)).write(t), bucket: exchangeBucket, dataDir: t.TempDir()}
	srv.ExchangeStack(t, "acme-docs-data", exchangeBucket)
	for i, id := range ids {
		r := wire.DiagnosticRequest{ID: id, Reason: "queue stuck", RequestedAt: time.Date(2026, 12, 1, 9, i, 0, 0, time.UTC),
			RequestedBy: "ana@vendor.example", RequestedByKind: "staff"}
		files := []diagspool.PreviewFile{
			{Name: "versions.json", Content: []byte(`{"agent":"1.4.0"}` + "\n")},
			{Name: "agent-log.txt", Content: []byte(`{"msg":"heartbeat sent"}` + "\n")},
		}
		if err := diagspool.Record(f.dataDir, r, files, diagspool.StatePending, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if f.ledger, err = ledger.Open(filepath.Join(f.dataDir, "egress.ledger")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.ledger.Close() })
	for _, body := range []string{`{"n":1}`, `{"n":2}`, `{"n":3}`} {
		if _, err := f.ledger.Append(ledger.KindHeartbeat, "POST https://plane.example/v1/heartbeat", []byte(body), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	f.mirror = exchange.NewMirror(exchange.New(srv.AWSConfig(), exchangeBucket, nil), f.dataDir, time.Now)
	if _, err := f.mirror.Copy(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.in = invocation{env: envOf(srv.Env())}
	return f
}

func (f *exchangeFixture) run(t *testing.T, args ...string) output {
	t.Helper()
	return f.in.run(testContext(t), append(args, "--config", f.config)...)
}

func (f *exchangeFixture) put(t *testing.T, key string, body []byte) {
	t.Helper()
	if _, err := f.srv.S3().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

func (f *exchangeFixture) hasKey(t *testing.T, key string) bool {
	t.Helper()
	_, err := f.srv.S3().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(key)})
	return err == nil
}

func TestDiagRemoteListPreviewApprove(t *testing.T) {
	f := newExchangeFixture(t, "dg_remote")
	o := f.run(t, "diag", "list")
	if o.err != nil || !strings.Contains(o.stdout, "dg_remote") || !strings.Contains(o.stdout, "pending") || !strings.Contains(o.stdout, "queue stuck") ||
		!strings.Contains(o.stdout, "ana@vendor.example (staff)") {
		t.Fatalf("diag list --config:\n%s", o.all())
	}
	o = f.run(t, "diag", "preview", "dg_remote", "--output", "json")
	var files []diagspool.PreviewFile
	if o.err != nil || json.Unmarshal([]byte(o.stdout), &files) != nil {
		t.Fatalf("diag preview --config --output json:\n%s", o.all())
	}
	local, _ := diagreview.Preview(f.dataDir, "dg_remote")
	if len(files) != len(local) {
		t.Fatalf("remote preview shows %d files, the agent built %d", len(files), len(local))
	}
	for i := range local {
		if files[i].Name != local[i].Name || !bytes.Equal(files[i].Content, local[i].Content) {
			t.Errorf("remote preview of %s differs from the agent's bundle", files[i].Name)
		}
	}

	// Without --yes the plan is shown and only "y" goes ahead.
	f.in.stdin = strings.NewReader("n\n")
	o = f.run(t, "diag", "approve", "dg_remote")
	if o.err == nil || !strings.Contains(o.err.Error(), "not confirmed") || !strings.Contains(o.stderr, "agent-log.txt") || !strings.Contains(o.stderr, "user/moto") {
		t.Fatalf("approve answered n:\n%s", o.all())
	}
	if f.hasKey(t, "diagnostics/dg_remote/decision.json") {
		t.Fatal("decision.json written without confirmation")
	}
	f.in.stdin = strings.NewReader("y\n")
	if o = f.run(t, "diag", "approve", "dg_remote"); o.err != nil || !strings.Contains(o.stdout, "approved dg_remote") {
		t.Fatalf("approve answered y:\n%s", o.all())
	}
	o = f.run(t, "diag", "list", "--output", "json")
	var rows []struct {
		ID              string             `json:"id"`
		State           string             `json:"state"`
		Reason          string             `json:"reason"`
		RequestedBy     string             `json:"requested_by"`
		RequestedByKind string             `json:"requested_by_kind"`
		Decision        *exchange.Decision `json:"decision"`
	}
	if o.err != nil || json.Unmarshal([]byte(o.stdout), &rows) != nil || len(rows) != 1 || rows[0].Decision == nil ||
		rows[0].Reason != "queue stuck" || rows[0].RequestedBy != "ana@vendor.example" || rows[0].RequestedByKind != "staff" ||
		rows[0].Decision.Decision != exchange.Approve || !strings.HasSuffix(rows[0].Decision.By, "::"+awstest.Account+":user/moto") {
		t.Fatalf("list after approve:\n%s", o.all())
	}
	if o = f.run(t, "diag", "approve", "dg_remote", "--yes"); o.err == nil || !strings.Contains(o.err.Error(), "already decided") {
		t.Fatalf("approve after approve:\n%s", o.all())
	}

	// The agent applies it and copies the new state.
	out, err := f.mirror.Decide(context.Background())
	if err != nil || len(out) != 1 || !out[0].Applied {
		t.Fatalf("agent Decide = %+v, %v", out, err)
	}
	if _, err := f.mirror.Copy(context.Background()); err != nil {
		t.Fatal(err)
	}
	if o = f.run(t, "diag", "list"); o.err != nil || !strings.Contains(o.stdout, "approved") {
		t.Fatalf("list after the agent applied it:\n%s", o.all())
	}
}

func TestDiagRemoteRefusals(t *testing.T) {
	f := newExchangeFixture(t, "dg_changed", "dg_ok")
	f.put(t, "diagnostics/dg_changed/bundle/versions.json", []byte(`{"agent":"6.6.6"}`+"\n"))
	for _, args := range [][]string{{"preview"}, {"approve", "--yes"}} {
		sub := args[0]
		o := f.run(t, append([]string{"diag", sub, "dg_changed"}, args[1:]...)...)
		if o.err == nil || !strings.Contains(o.err.Error(), "changed after the agent built it") {
			t.Errorf("diag %s of a changed bucket file:\n%s", sub, o.all())
		}
	}
	if f.hasKey(t, "diagnostics/dg_changed/decision.json") {
		t.Fatal("a changed bundle was approved")
	}
	// A changed bundle can still be declined.
	if o := f.run(t, "diag", "decline", "dg_changed", "--yes"); o.err != nil {
		t.Fatalf("decline of a changed bundle:\n%s", o.all())
	}
	o := f.run(t, "diag", "preview", "dg_nope")
	if o.err == nil || !strings.Contains(o.err.Error(), "there is no request dg_nope in s3://"+exchangeBucket) || ctl.IsUsage(o.err) {
		t.Fatalf("preview of an unknown request:\n%s", o.all())
	}
	o = f.in.run(testContext(t), "diag", "list", "--config", f.config, "--data-dir", t.TempDir())
	if !ctl.IsUsage(o.err) || !strings.Contains(o.err.Error(), "not both") {
		t.Fatalf("--config with --data-dir: %v", o.err)
	}
	o = f.in.run(testContext(t), "diag", "approve", "dg_ok", "--yes", "--data-dir", t.TempDir())
	if !ctl.IsUsage(o.err) || !strings.Contains(o.err.Error(), "--yes is for --config") {
		t.Fatalf("--yes without --config: %v", o.err)
	}
}

func TestEgressRemoteShowVerify(t *testing.T) {
	f := newExchangeFixture(t)
	o := f.run(t, "egress", "verify")
	if o.err != nil || !strings.Contains(o.stdout, "ledger intact: 3 entries") || !strings.Contains(o.stdout, "s3://"+exchangeBucket+"/ledger/") {
		t.Fatalf("egress verify --config:\n%s", o.all())
	}
	o = f.run(t, "egress", "show", "--output", "json")
	var entries []ledger.Entry
	if o.err != nil || json.Unmarshal([]byte(o.stdout), &entries) != nil || len(entries) != 3 || entries[2].Seq != 3 || entries[2].PayloadSHA256 != sha256Hex(`{"n":3}`) {
		t.Fatalf("egress show --config --output json:\n%s", o.all())
	}
	if o = f.run(t, "egress", "repair"); !ctl.IsUsage(o.err) {
		t.Fatalf("egress repair --config: %v", o.err)
	}
	// An entry edited in the bucket fails verify.
	seg := exchange.SegmentKey(0)
	out, err := f.srv.S3().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(seg)})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(out.Body)
	out.Body.Close()
	f.put(t, seg, bytes.Replace(buf.Bytes(), []byte(`{"n":2}`), []byte(`{"n":7}`), 1))
	if o = f.run(t, "egress", "verify"); o.err == nil || !errors.Is(o.err, ledger.ErrTampered) {
		t.Fatalf("verify of an edited copy:\n%s", o.all())
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Without the data stack there is no bucket to read; the error says so.
func TestExchangeNeedsTheDataStack(t *testing.T) {
	srv := awstest.Start(t)
	in := invocation{env: envOf(srv.Env())}
	o := in.run(testContext(t), "diag", "list", "--config", defaultDeployment(newVendor(t)).write(t))
	if o.err == nil || !strings.Contains(o.err.Error(), "acme-docs-data stack does not exist") {
		t.Fatalf("diag list without the data stack:\n%s", o.all())
	}
}

package exchange_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/boundary"
	"github.com/tetherhq/tether/internal/diagspool"
	"github.com/tetherhq/tether/internal/diagspool/diagreview"
	"github.com/tetherhq/tether/internal/exchange"
	"github.com/tetherhq/tether/internal/exchange/operator"
	"github.com/tetherhq/tether/internal/ledger"
	"github.com/tetherhq/tether/internal/ledger/ledgerread"
	"github.com/tetherhq/tether/internal/wire"
)

const testARN = "arn:aws:iam::123456789012:user/operator"

// newBucket makes an exchange bucket on moto and a client of it.
func newBucket(t *testing.T) (*exchange.Client, *s3.Client) {
	t.Helper()
	srv := awstest.Start(t)
	raw := srv.S3()
	name := "tether-test-exchange"
	if _, err := raw.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	return exchange.New(srv.AWSConfig(), name, nil), raw
}

func keysIn(t *testing.T, raw *s3.Client, bucket string) []string {
	t.Helper()
	out, err := raw.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

func putRaw(t *testing.T, raw *s3.Client, bucket, key string, body []byte) {
	t.Helper()
	if _, err := raw.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

var bundleFiles = []diagspool.PreviewFile{
	{Name: "versions.json", Content: []byte(`{"agent":"1.0.0"}` + "\n")},
	{Name: "agent-log.txt", Content: []byte("{\"msg\":\"heartbeat sent\"}\n")},
}

// agentDir is an agent's data dir with one pending request and a ledger of
// n entries.
func agentDir(t *testing.T, ids []string, n int) (dir string, led *ledger.Ledger) {
	t.Helper()
	dir = t.TempDir()
	for i, id := range ids {
		r := wire.DiagnosticRequest{ID: id, Reason: "queue stuck", RequestedAt: time.Date(2026, 12, 1, 9, i, 0, 0, time.UTC)}
		if err := diagspool.Record(dir, r, bundleFiles, diagspool.StatePending, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	led, err := ledger.Open(filepath.Join(dir, "egress.ledger"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	appendN(t, led, n)
	return dir, led
}

func appendN(t *testing.T, led *ledger.Ledger, n int) {
	t.Helper()
	for range n {
		if _, err := led.Append(ledger.KindHeartbeat, "POST https://plane.example/v1/heartbeat", []byte(`{"ok":true}`), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

// approve is what tetherctl does: fetch, preview, name the manifest seen.
func approve(t *testing.T, c *exchange.Client, id string) {
	t.Helper()
	view := t.TempDir()
	if err := operator.Fetch(context.Background(), c, view, id, true); err != nil {
		t.Fatal(err)
	}
	if _, err := diagreview.Preview(view, id); err != nil {
		t.Fatalf("preview of the bucket's copy: %v", err)
	}
	sum, err := exchange.ManifestSHA256(view, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := operator.PutDecision(context.Background(), c, id, exchange.Decision{Decision: exchange.Approve, By: testARN, At: time.Now().UTC(), ManifestSHA256: sum}, false); err != nil {
		t.Fatal(err)
	}
}

func TestMirrorCopiesRecordsAndLedgerAndAppliesApproval(t *testing.T) {
	t.Parallel()
	c, raw := newBucket(t)
	ctx := context.Background()
	dir, led := agentDir(t, []string{"dg_one"}, 3)
	m := exchange.NewMirror(c, dir, time.Now)
	if _, err := m.Copy(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"diagnostics/dg_one/bundle/agent-log.txt", "diagnostics/dg_one/bundle/versions.json",
		"diagnostics/dg_one/manifest.json", "diagnostics/dg_one/request.json", "diagnostics/dg_one/state.json",
		"ledger/egress.ledger.head", exchange.SegmentKey(0),
	}
	if got := keysIn(t, raw, c.Bucket()); !slices.Equal(got, want) {
		t.Fatalf("bucket holds %v, want %v", got, want)
	}

	// The operator's view: the same requests and bundle as the agent's own.
	view := t.TempDir()
	if err := operator.Fetch(ctx, c, view, "", false); err != nil {
		t.Fatal(err)
	}
	ds, err := diagspool.List(view)
	if err != nil || len(ds) != 1 || ds[0].ID != "dg_one" || ds[0].State != diagspool.StatePending || ds[0].Reason != "queue stuck" {
		t.Fatalf("List of the bucket = %+v, %v", ds, err)
	}
	local, _ := diagreview.Preview(dir, "dg_one")
	if err := operator.Fetch(ctx, c, view, "dg_one", true); err != nil {
		t.Fatal(err)
	}
	remote, err := diagreview.Preview(view, "dg_one")
	if err != nil || len(remote) != len(local) {
		t.Fatalf("Preview of the bucket = %+v, %v", remote, err)
	}
	for i := range local {
		if remote[i].Name != local[i].Name || !bytes.Equal(remote[i].Content, local[i].Content) {
			t.Errorf("bucket's %s differs from the agent's", remote[i].Name)
		}
	}

	// Nothing happens before a decision.
	if out, err := m.Decide(ctx); err != nil || len(out) != 0 {
		t.Fatalf("Decide without a decision = %+v, %v", out, err)
	}
	approve(t, c, "dg_one")
	if err := operator.PutDecision(ctx, c, "dg_one", exchange.Decision{Decision: exchange.Decline, By: testARN, At: time.Now()}, false); !errors.Is(err, exchange.ErrDecided) {
		t.Fatalf("a second decision = %v, want exchange.ErrDecided", err)
	}
	out, err := m.Decide(ctx)
	if err != nil || len(out) != 1 || !out[0].Applied || out[0].Decision != exchange.Approve {
		t.Fatalf("Decide = %+v, %v", out, err)
	}
	if d, _ := diagspool.Read(dir, "dg_one"); d.State != diagspool.StateApproved {
		t.Fatalf("state after the approval = %s", d.State)
	}

	// The state change and new ledger entries reach the bucket; the ledger
	// there verifies, and so does each later copy.
	appendN(t, led, 2)
	if _, err := m.Copy(ctx); err != nil {
		t.Fatal(err)
	}
	if err := operator.Fetch(ctx, c, view, "", false); err != nil {
		t.Fatal(err)
	}
	if d, _ := diagspool.Read(view, "dg_one"); d.State != diagspool.StateApproved {
		t.Fatalf("bucket's state after the approval = %s", d.State)
	}
	path, err := operator.FetchLedger(ctx, c, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := ledgerread.Verify(path); err != nil || n != 5 {
		t.Fatalf("Verify of the bucket's ledger = %d, %v", n, err)
	}
	if got := keysIn(t, raw, c.Bucket()); !slices.Contains(got, exchange.SegmentKey(0)) || len(got) != len(want)+2 {
		t.Fatalf("after a second copy the bucket holds %v: want decision.json and one more segment", got)
	}

	// A copy with nothing new writes nothing.
	before := len(keysIn(t, raw, c.Bucket()))
	if _, err := m.Copy(ctx); err != nil || len(keysIn(t, raw, c.Bucket())) != before {
		t.Fatalf("idle Copy: %v", err)
	}
}

func TestTamperedBucketIsRefused(t *testing.T) {
	t.Parallel()
	c, raw := newBucket(t)
	ctx := context.Background()
	dir, _ := agentDir(t, []string{"dg_file", "dg_manifest"}, 1)
	m := exchange.NewMirror(c, dir, time.Now)
	if _, err := m.Copy(ctx); err != nil {
		t.Fatal(err)
	}
	// A bundle file changed in the bucket: the operator's preview refuses it.
	putRaw(t, raw, c.Bucket(), "diagnostics/dg_file/bundle/versions.json", []byte(`{"agent":"9.9.9"}`+"\n"))
	view := t.TempDir()
	if err := operator.Fetch(ctx, c, view, "dg_file", true); err != nil {
		t.Fatal(err)
	}
	if _, err := diagreview.Preview(view, "dg_file"); !errors.Is(err, diagspool.ErrBundleChanged) {
		t.Fatalf("preview of a changed bucket file = %v, want ErrBundleChanged", err)
	}

	// A file and the manifest changed together preview fine, but the
	// approval then names a manifest the agent never built: refused, the
	// request stays pending, and the refusal is reported once.
	putRaw(t, raw, c.Bucket(), "diagnostics/dg_manifest/bundle/versions.json", []byte("{}\n"))
	putRaw(t, raw, c.Bucket(), "diagnostics/dg_manifest/manifest.json",
		[]byte(`{"files":[{"name":"versions.json","size":3,"sha256":"ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356"}]}`))
	approve(t, c, "dg_manifest")
	out, err := m.Decide(ctx)
	if err != nil || len(out) != 1 || out[0].Applied || !strings.Contains(out[0].Why, "another manifest") {
		t.Fatalf("Decide on a tampered manifest = %+v, %v", out, err)
	}
	if d, _ := diagspool.Read(dir, "dg_manifest"); d.State != diagspool.StatePending {
		t.Fatalf("state after a refused approval = %s", d.State)
	}
	if out, err := m.Decide(ctx); err != nil || len(out) != 0 {
		t.Fatalf("second Decide reported again: %+v, %v", out, err)
	}

	// A decision.json that is not one is refused, never applied.
	putRaw(t, raw, c.Bucket(), "diagnostics/dg_file/decision.json", []byte(`{"decision":"approve"}`))
	out, err = m.Decide(ctx)
	if err != nil || len(out) != 1 || out[0].Applied || out[0].ID != "dg_file" {
		t.Fatalf("Decide on a malformed decision = %+v, %v", out, err)
	}
}

// A bundle built before manifests (no manifest.json) is not copied, and
// not reported as a failure every round.
func TestBundleWithoutManifestStaysLocal(t *testing.T) {
	t.Parallel()
	c, raw := newBucket(t)
	dir, _ := agentDir(t, []string{"dg_old"}, 0)
	if err := os.Remove(filepath.Join(dir, "diagnostics", "dg_old", "manifest.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := exchange.NewMirror(c, dir, time.Now).Copy(context.Background()); err != nil {
		t.Fatalf("Copy with a legacy bundle: %v", err)
	}
	for _, k := range keysIn(t, raw, c.Bucket()) {
		if strings.HasPrefix(k, exchange.DiagnosticsPrefix) {
			t.Errorf("copied %s of a bundle without a manifest", k)
		}
	}
}

func TestDeclineFromTheBucket(t *testing.T) {
	t.Parallel()
	c, _ := newBucket(t)
	ctx := context.Background()
	dir, _ := agentDir(t, []string{"dg_no"}, 0)
	m := exchange.NewMirror(c, dir, time.Now)
	if _, err := m.Copy(ctx); err != nil {
		t.Fatal(err)
	}
	if err := operator.PutDecision(ctx, c, "dg_no", exchange.Decision{Decision: exchange.Decline, By: testARN, At: time.Now().UTC()}, false); err != nil {
		t.Fatal(err)
	}
	out, err := m.Decide(ctx)
	if err != nil || len(out) != 1 || !out[0].Applied || out[0].Decision != exchange.Decline {
		t.Fatalf("Decide = %+v, %v", out, err)
	}
	if d, _ := diagspool.Read(dir, "dg_no"); d.State != diagspool.StateDeclined {
		t.Fatalf("state = %s, want declined", d.State)
	}
}

func TestLedgerInTheBucketCutOrChanged(t *testing.T) {
	t.Parallel()
	c, raw := newBucket(t)
	ctx := context.Background()
	dir, led := agentDir(t, nil, 2)
	m := exchange.NewMirror(c, dir, time.Now)
	if _, err := m.Copy(ctx); err != nil {
		t.Fatal(err)
	}
	appendN(t, led, 2)
	if _, err := m.Copy(ctx); err != nil {
		t.Fatal(err)
	}
	segs := keysIn(t, raw, c.Bucket())
	first, second := exchange.SegmentKey(0), segs[len(segs)-1]
	if !slices.Contains(segs, first) || second == first || !strings.HasPrefix(second, exchange.SegmentPrefix) {
		t.Fatalf("segments %v", segs)
	}
	get := func(key string) []byte {
		out, err := raw.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(c.Bucket()), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Body.Close()
		b, _ := io.ReadAll(out.Body)
		return b
	}
	orig := get(second)

	// An edited entry: the chain breaks there.
	putRaw(t, raw, c.Bucket(), second, bytes.Replace(orig, []byte(`"ok":true`), []byte(`"ok":fals`), 1))
	path, err := operator.FetchLedger(ctx, c, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledgerread.Verify(path); !errors.Is(err, ledger.ErrTampered) {
		t.Fatalf("Verify of an edited copy = %v, want ErrTampered", err)
	}
	// A missing segment: the copy has a gap.
	if _, err := raw.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(c.Bucket()), Key: aws.String(first)}); err != nil {
		t.Fatal(err)
	}
	if _, err := operator.FetchLedger(ctx, c, t.TempDir()); err == nil || !strings.Contains(err.Error(), "missing bytes 0 to") {
		t.Fatalf("FetchLedger with the first segment gone = %v", err)
	}

	// The agent lost its record of what it copied: it copies again from the
	// start, and the overlapping segments agree.
	putRaw(t, raw, c.Bucket(), second, orig)
	if err := os.Remove(filepath.Join(dir, "exchange.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Copy(ctx); err != nil {
		t.Fatal(err)
	}
	path, err = operator.FetchLedger(ctx, c, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := ledgerread.Verify(path); err != nil || n != 4 {
		t.Fatalf("Verify after a fresh copy = %d, %v", n, err)
	}
}

// The agent and tetherctl link this package: it may import S3 (it is S3's
// gateway), but nothing else that reads documents, nor the agent.
func TestImportsOnlyS3(t *testing.T) {
	t.Parallel()
	graph := boundary.MustDeps(t, ".")
	if v := graph.Violations(append(boundary.DocumentReaders(), boundary.AgentPackage)); len(v) > 0 {
		t.Fatalf("exchange: %v", v)
	}
	if !slices.Contains(graph.Imports(boundary.ExchangePackage), "github.com/aws/aws-sdk-go-v2/service/s3") {
		t.Fatal("the gateway test checks nothing: exchange no longer imports service/s3")
	}
}

package upgradetest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/ctl"
	"github.com/tetherhq/tether/internal/devstack"
	"github.com/tetherhq/tether/internal/devstack/releasetest"
	"github.com/tetherhq/tether/internal/releasestate"
	"github.com/tetherhq/tether/internal/testtime"
	"github.com/tetherhq/tether/internal/toolproc"
	"github.com/tetherhq/tether/internal/wire"
)

type world struct {
	t         *testing.T
	dataDir   string
	api       string
	token     string
	plane     string // tether-plane binary
	outMu     sync.Mutex
	devOutput bytes.Buffer
}

func (w *world) Write(p []byte) (int, error) {
	w.outMu.Lock()
	defer w.outMu.Unlock()
	return w.devOutput.Write(p)
}

// publish signs release version into the running plane's repository and
// returns the channel's export.
func (w *world) publish(version, minFrom string, bins map[string]string) string {
	w.t.Helper()
	keys, repo := filepath.Join(w.dataDir, "plane", "keys"), filepath.Join(w.dataDir, "plane", "repo")
	w.run(w.plane, "release", "publish", "--keys", keys, "--repo", repo, "--version", version, "--channel", "stable",
		"--min-from", minFrom, "--artifact", "docsvc="+bins["docsvc"], "--artifact", "tether-agent="+bins["tether-agent"])
	out := filepath.Join(w.t.TempDir(), "stable-"+version+".tar.gz")
	w.run(w.plane, "release", "export", "--repo", repo, "--channel", "stable", "--out", out)
	return out
}

func (w *world) run(bin string, args ...string) {
	w.t.Helper()
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		w.t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
}

// tetherctl runs a tetherctl command and returns its JSON plan/outcome.
func (w *world) tetherctl(args ...string) (map[string]any, string, error) {
	var stdout, stderr bytes.Buffer
	err := ctl.RunEnv(context.Background(), args, ctl.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: os.Getenv})
	var res map[string]any
	_ = json.Unmarshal(stdout.Bytes(), &res)
	return res, stderr.String(), err
}

func (w *world) running() devstack.Status {
	w.t.Helper()
	st, err := devstack.Dial(w.dataDir).Status(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return st
}

// readAll checks that every document the load uploaded reads back, and
// whether it carries release 1.1.0's extra field.
func readAll(t *testing.T, w *world, docs []releasetest.Doc, wantV2Field bool) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	for _, d := range docs {
		var got map[string]any
		if err := releasetest.GetJSON(context.Background(), c, w.api+"/v1/documents/"+d.ID, w.token, &got); err != nil {
			t.Fatalf("document %s lost: %v", d.ID, err)
		}
		if got["filename"] != d.Filename {
			t.Fatalf("document %s reads back as %v", d.ID, got)
		}
		if _, has := got["upgradetest_note"]; has != wantV2Field {
			t.Fatalf("document %s: upgradetest_note present %v, want %v (%v)", d.ID, has, wantV2Field, got)
		}
	}
}

// TestUpgradeUnderLoad is the local runtime's upgrade proof. A tetherctl dev
// stack runs release 1.0.0 while a load generator uploads and reads
// documents; tetherctl upgrade --local moves it to 1.1.0 (which adds a
// migration and a response field), then tries 1.2.0, whose api fails its
// health checks after the swap and is swapped back by itself; then tetherctl
// rollback --local returns to 1.0.0, whose binaries serve uploads and reads
// on 1.1.0's schema (expand/contract). No request fails and no document is
// lost at any point.
func TestUpgradeUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three releases and runs the whole stack")
	}
	start := time.Now()
	step := func(what string) { t.Logf("%s: %s", time.Since(start).Round(100*time.Millisecond), what) }
	w := &world{t: t, dataDir: t.TempDir()}
	v1 := releasetest.Build(t, filepath.Join(w.dataDir, "build", "1.0.0"), "1.0.0")
	v2 := releasetest.Build(t, t.TempDir(), "1.1.0", "upgradetest_v2")
	v3 := releasetest.Build(t, t.TempDir(), "1.2.0", "upgradetest_v2", "upgradetest_unhealthy")
	w.plane = v1["tether-plane"]
	step("built 1.0.0, 1.1.0 and 1.2.0")

	opts := devstack.Options{DataDir: w.dataDir, APIAddr: toolproc.FreeAddr(t), PlaneAddr: toolproc.FreeAddr(t), AgentStatusAddr: toolproc.FreeAddr(t),
		Heartbeat: 5 * time.Second, Binaries: v1}
	w.api = "http://" + opts.APIAddr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- devstack.Run(ctx, opts, w, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			w.outMu.Lock()
			t.Logf("tetherctl dev output:\n%s", w.devOutput.String())
			w.outMu.Unlock()
		}
	})
	testtime.Until(t, 2*time.Minute, "tetherctl dev to serve", func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("tetherctl dev exited: %v", err)
		default:
		}
		// The socket's file appears when it is bound, a moment before it
		// listens: ready is when it answers.
		_, err := devstack.Dial(w.dataDir).Status(context.Background())
		b, terr := os.ReadFile(filepath.Join(w.dataDir, "dev-token"))
		w.token = strings.TrimSpace(string(b))
		return err == nil && terr == nil
	})
	if st := w.running(); st.Version != "1.0.0" {
		t.Fatalf("the stack runs %+v, want 1.0.0", st)
	}

	step("the stack runs 1.0.0")
	load := releasetest.StartLoad(t, w.api, w.token, 4)
	waitDocs := func(n int) {
		testtime.Until(t, time.Minute, "the load to upload more documents", func() bool { return len(load.Docs()) >= n })
	}
	waitDocs(20)

	// 1.0.0 → 1.1.0 under load.
	bundle := w.publish("1.1.0", "1.0.0", v2)
	res, stderr, err := w.tetherctl("upgrade", "--local", w.dataDir, "--bundle", bundle, "--to", "1.1.0", "--settle", "3s", "--yes", "--output", "json")
	if err != nil || res["outcome"] != "succeeded" {
		t.Fatalf("upgrade to 1.1.0: %v %v\n%s", err, res, stderr)
	}
	if st := w.running(); st.Version != "1.1.0" {
		t.Fatalf("after the upgrade the stack runs %s", st.Version)
	}
	step("upgraded to 1.1.0")
	waitDocs(len(load.Docs()) + 20)
	readAll(t, w, load.Docs(), true)

	// Refused: a release older than the running one.
	if _, _, err := w.tetherctl("upgrade", "--local", w.dataDir, "--bundle", bundle, "--to", "0.1.0-dev", "--yes"); err == nil || !strings.Contains(err.Error(), "older than the running 1.1.0") {
		t.Fatalf("upgrade to an older release: %v", err)
	}

	// 1.1.0 → 1.2.0, whose api fails its health checks: swapped back.
	bundle = w.publish("1.2.0", "1.1.0", v3)
	res, stderr, err = w.tetherctl("upgrade", "--local", w.dataDir, "--bundle", bundle, "--to", "1.2.0", "--settle", "3s", "--yes", "--output", "json")
	if err == nil || res["outcome"] != "rolled-back" || !strings.Contains(err.Error(), "/readyz answered 503") {
		t.Fatalf("upgrade to the failing 1.2.0: %v %v\n%s", err, res, stderr)
	}
	step("1.2.0 swapped back")
	if st := w.running(); st.Version != "1.1.0" {
		t.Fatalf("after the failed upgrade the stack runs %s, want 1.1.0", st.Version)
	}
	recPath := filepath.Join(w.dataDir, ctl.AgentRecordFile)
	b, _ := os.ReadFile(recPath)
	rec, err := releasestate.Parse(recPath, b)
	if err != nil || len(rec) == 0 || rec[0].Outcome != "rolled-back" || rec[0].Code != "not-healthy" || rec[0].To != "1.2.0" || rec[0].From != "1.1.0" || !strings.Contains(rec[0].Reason, "/readyz answered 503") {
		t.Fatalf("the agent's release record: %s (%v)", b, err)
	}
	// The agent reads the record before each heartbeat: the plane shows the
	// failed attempt, as a fixed code, and the release that runs.
	adminToken, err := os.ReadFile(filepath.Join(w.dataDir, "plane-admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	var shown []struct {
		Release     string              `json:"release"`
		LastUpgrade wire.UpgradeAttempt `json:"last_upgrade"`
	}
	testtime.Until(t, time.Minute, "the plane to show the rolled-back attempt", func() bool {
		err := releasetest.GetJSON(context.Background(), &http.Client{Timeout: 10 * time.Second}, "http://"+opts.PlaneAddr+"/v1/admin/installs", strings.TrimSpace(string(adminToken)), &shown)
		return err == nil && len(shown) == 1 && shown[0].LastUpgrade.Version == "1.2.0"
	})
	if got := shown[0]; got.Release != "1.1.0" || got.LastUpgrade.Outcome != "rolled-back" || got.LastUpgrade.Reason != "not-healthy" || got.LastUpgrade.Action != "upgrade" {
		t.Fatalf("the plane shows %+v", got)
	}
	step("the plane shows the rolled-back attempt")
	waitDocs(len(load.Docs()) + 20)
	readAll(t, w, load.Docs(), true)

	// Expand/contract: rolling back runs 1.0.0's binaries on 1.1.0's
	// schema, and they serve uploads and reads.
	res, stderr, err = w.tetherctl("rollback", "--local", w.dataDir, "--settle", "3s", "--yes", "--output", "json")
	if err != nil || res["outcome"] != "succeeded" {
		t.Fatalf("rollback to 1.0.0: %v %v\n%s", err, res, stderr)
	}
	if st := w.running(); st.Version != "1.0.0" {
		t.Fatalf("after the rollback the stack runs %s", st.Version)
	}
	step("rolled back to 1.0.0")
	waitDocs(len(load.Docs()) + 20)

	requests, failures := load.Stop()
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed: %v", len(failures), requests, failures)
	}
	// Every document reads back from 1.0.0, and every job survived the
	// worker swaps: each document is processed.
	docs := load.Docs()
	readAll(t, w, docs, false)
	c := &http.Client{Timeout: 10 * time.Second}
	pending := docs
	testtime.Until(t, time.Minute, "every document to be processed", func() bool {
		var still []releasetest.Doc
		for _, d := range pending {
			var got struct {
				Status string `json:"status"`
			}
			if err := releasetest.GetJSON(context.Background(), c, w.api+"/v1/documents/"+d.ID, w.token, &got); err != nil || got.Status != "succeeded" {
				still = append(still, d)
			}
		}
		pending = still
		return len(pending) == 0
	})
	t.Logf("%d requests, %d documents, no failure", requests, len(docs))
}

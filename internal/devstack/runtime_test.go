package devstack

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/devstack/releasetest"
	"github.com/tetherhq/tether/internal/testtime"
	"github.com/tetherhq/tether/internal/toolproc"
)

// testStack runs api, worker and agent stand-ins on a fresh data dir with
// the stack's own socket handover; the agent slot runs docsvc's worker too
// (the handover does not involve the agent, which needs a plane).
func testStack(t *testing.T) (st *stack, api, token string, v1, v2 Running) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the document service")
	}
	dataDir := t.TempDir()
	b1 := releasetest.Build(t, filepath.Join(dataDir, "releases", "1.0.0"), "1.0.0")
	b2 := releasetest.Build(t, filepath.Join(dataDir, "releases", "1.0.1"), "1.0.1")
	v1 = Running{Version: "1.0.0", Docsvc: b1["docsvc"], Agent: b1["docsvc"]}
	v2 = Running{Version: "1.0.1", Docsvc: b2["docsvc"], Agent: b2["docsvc"]}

	ctx, cancel := context.WithCancel(context.Background())
	addr := toolproc.FreeAddr(t)
	var out bytes.Buffer
	lw := &lockedWriter{w: &out}
	st, err := newStack(ctx, dataDir, addr, lw, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	st.docsvcEnv = append(os.Environ(),
		"DOCSVC_ADDR="+addr, "DOCSVC_PUBLIC_URL=http://"+addr,
		"DOCSVC_DATABASE_URL=sqlite://"+filepath.Join(dataDir, "docsvc.db"),
		"DOCSVC_BLOB_URL=file://"+filepath.Join(dataDir, "blobs"),
		"DOCSVC_QUEUE_URL=db://jobs", "DOCSVC_AI_PROVIDER=local", "DOCSVC_EXTRACT_CACHE_DIR=off")
	st.agentEnv, st.agentArgs = st.docsvcEnv, []string{"worker"}
	if b, err := st.migrate(ctx, v1.Docsvc); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	cmd := exec.Command(v1.Docsvc, "tokens", "create", "--name", "load")
	cmd.Env = st.docsvcEnv
	tok, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.run(v1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		st.wait()
		if t.Failed() {
			lw.mu.Lock()
			t.Logf("supervisor output:\n%s", out.String())
			lw.mu.Unlock()
		}
	})
	if err := waitReady(ctx, st.api, time.Minute); err != nil {
		t.Fatalf("the first api never became ready: %v", err)
	}
	return st, "http://" + addr, strings.TrimSpace(string(tok)), v1, v2
}

// waitDocs waits (bounded) until the load has uploaded at least n documents.
func waitDocs(t *testing.T, l *releasetest.Load, n int) {
	t.Helper()
	if ok := testtime.Wait(time.Minute, func() bool { return len(l.Docs()) >= n }); !ok {
		_, f := l.Stop()
		t.Fatalf("the load uploaded %d documents in a minute, want %d; failures: %v", len(l.Docs()), n, f)
	}
}

// TestSwapUnderLoad: a request loop of uploads and reads sees no failed
// request while the supervisor swaps the api and worker to another build on
// the same socket, and a swap to a binary that never becomes ready leaves
// the running one serving.
func TestSwapUnderLoad(t *testing.T) {
	st, api, token, _, v2 := testStack(t)
	load := releasetest.StartLoad(t, api, token, 4)
	waitDocs(t, load, 20)
	oldPrivate := st.status().APIPrivateURL

	status, err := st.swap(v2, time.Minute)
	if err != nil {
		t.Fatalf("swap: %v", err)
	}
	if status.Version != "1.0.1" || status.APIPrivateURL == oldPrivate {
		t.Fatalf("after the swap the status is %+v; want 1.0.1 on a new api process", status)
	}
	before := len(load.Docs())
	waitDocs(t, load, before+20)

	// A release whose api exits at once: refused, the running one serves on.
	broken := filepath.Join(st.dataDir, "releases", "broken")
	if err := os.MkdirAll(broken, 0o700); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(broken, "docsvc")
	if err := os.WriteFile(bad, []byte("#!/bin/sh\necho broken release >&2\nexit 1\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := st.swap(Running{Version: "9.9.9", Docsvc: bad, Agent: bad}, 20*time.Second); err == nil || !strings.Contains(err.Error(), "kept serving") {
		t.Fatalf("swap to a broken release: %v, want a refusal saying the running api kept serving", err)
	}
	if got := st.status().Version; got != "1.0.1" {
		t.Fatalf("after the refused swap the stack runs %s, want 1.0.1", got)
	}
	before = len(load.Docs())
	waitDocs(t, load, before+20)

	requests, failures := load.Stop()
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed during the swaps: %v", len(failures), requests, failures)
	}
	for _, d := range load.Docs() {
		if err := load.Read(context.Background(), d); err != nil {
			t.Errorf("after the swaps: %v", err)
		}
	}
	rec, ok, err := readRunning(st.dataDir)
	if err != nil || !ok || rec != v2 {
		t.Fatalf("recorded running release %+v, %v, %v; want %+v", rec, ok, err, v2)
	}
	t.Logf("%d requests, %d documents, no failure", requests, len(load.Docs()))
}

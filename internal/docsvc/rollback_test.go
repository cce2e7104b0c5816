package docsvc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/docsvc"
	"github.com/tetherhq/tether/internal/testtime"
	"github.com/tetherhq/tether/internal/toolproc"
)

// TestPreviousReleaseOnNewSchema is the expand/contract promise a rollback
// relies on: release N−1's docsvc, built from the commit before the newest
// migration was added, serves and processes documents on the schema release
// N's migrate left behind, with no down-migration. The scenario is an upgrade
// and a rollback: N−1 migrates and stores a document; N migrates (the newest
// migration and its data step) and stores a document with a token that uses
// N's new columns; then N−1 comes back on N's schema and must read, list,
// upload, process and delete — its own documents and N's.
//
// N−1 is the real previous source tree (git archive of that commit, built
// with go build), not the current tree minus a file: the current code
// already expects the newest columns, so it would prove nothing about the
// binaries a rollback returns to. The test therefore needs the repository's
// history; in a shallow clone or outside git it skips and says why.
func TestPreviousReleaseOnNewSchema(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds release N−1's docsvc from git history")
	}
	// A shallow clone (a CI checkout with depth 1) has no earlier commit to
	// build; that is the checkout, not the code, so it skips and says so.
	if out, err := exec.Command("git", "-C", "../..", "rev-parse", "--is-shallow-repository").Output(); err != nil {
		t.Skipf("not a git checkout (%v): release N−1 cannot be built from history", err)
	} else if strings.TrimSpace(string(out)) == "true" {
		t.Skip("shallow clone: release N−1 cannot be built from history; run git fetch --unshallow to run this test")
	}
	oldBin, newBin := buildPreviousRelease(t), buildDocsvc(t)
	for name, dbURL := range dbURLs {
		t.Run(name, func(t *testing.T) {
			rollbackScenario(t, oldBin, newBin, dbURL(t))
		})
	}
}

// newestMigration is the file name of the newest docsvc migration.
func newestMigration(t *testing.T) string {
	t.Helper()
	entries, err := os.ReadDir("../sqldb/migrations")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			names = append(names, e.Name())
		}
	}
	if len(names) < 2 {
		t.Fatalf("%d migrations; an expand/contract test needs a previous release with migrations of its own", len(names))
	}
	sort.Strings(names)
	return names[len(names)-1]
}

func git(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", "../.."}, args...)...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("git %s: %v\n%s\nthis test builds the previous release from git history: run it in a full clone (git fetch --unshallow)", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// buildPreviousRelease builds docsvc from the parent of the commit that
// added the newest migration, after checking that tree really lacks it.
func buildPreviousRelease(t *testing.T) string {
	t.Helper()
	newest := newestMigration(t)
	path := "internal/sqldb/migrations/" + newest
	added := git(t, "log", "-n1", "--diff-filter=A", "--format=%H", "--", path)
	if added == "" {
		t.Fatalf("git log finds no commit adding %s: commit it, or run in a full clone (git fetch --unshallow)", path)
	}
	prev := git(t, "rev-parse", added+"^")
	files := git(t, "ls-tree", "--name-only", prev, "internal/sqldb/migrations/")
	if strings.Contains(files, newest) || !strings.Contains(files, ".sql") {
		t.Fatalf("commit %s (before %s) has migrations %q; want some, without %s", prev, added, files, newest)
	}
	t.Logf("release N−1 is commit %s (before %s added %s)", prev[:12], added[:12], newest)

	src := t.TempDir()
	archive := exec.Command("git", "-C", "../..", "archive", "--format=tar", prev)
	extract := exec.Command("tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	extract.Stdin = pipe
	if err := extract.Start(); err != nil {
		t.Fatal(err)
	}
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s: %v", prev, err)
	}
	if err := extract.Wait(); err != nil {
		t.Fatalf("extracting %s: %v", prev, err)
	}
	bin := filepath.Join(t.TempDir(), "docsvc-previous")
	build := exec.Command("go", "build", "-o", bin, "./cmd/docsvc")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building release N−1's docsvc (commit %s): %v\n%s", prev, err, out)
	}
	return bin
}

func rollbackScenario(t *testing.T, oldBin, newBin, dbURL string) {
	ctx := context.Background()
	dir := t.TempDir()
	base := map[string]string{
		"DOCSVC_DATABASE_URL": dbURL,
		"DOCSVC_BLOB_URL":     "file://" + filepath.Join(dir, "blobs"),
		"DOCSVC_QUEUE_URL":    "db://jobs",
		"DOCSVC_AI_PROVIDER":  "local",
	}
	var oldEnv []string
	for k, v := range base {
		oldEnv = append(oldEnv, k+"="+v)
	}
	oldEnv = append(oldEnv, "PATH="+os.Getenv("PATH"), "HOME="+dir)
	old := docsvcRunner(t, oldBin, oldEnv)

	// Release N−1, installed first.
	if err := old("migrate").Run(); err != nil {
		t.Fatalf("N−1 migrate: %v", err)
	}
	out, err := old("token", "create", "--name", "before upgrade").Output()
	if err != nil {
		t.Fatalf("N−1 token create: %v", err)
	}
	oldTok := strings.TrimSpace(string(out))
	stopOld := startRoles(t, old)
	docA := uploadAndProcess(t, stopOld.url, oldTok, "release N-1 wrote this before the upgrade")
	stopOld.stop()

	// Release N: its migrate (in this process: this tree's code), a token
	// with an expiry (N's new column), a document stored and processed by
	// N's api and worker binaries.
	newRun := func(args ...string) (string, error) {
		var stdout bytes.Buffer
		err := docsvc.Run(ctx, args, func(k string) string { return base[k] }, &stdout, io.Discard)
		return stdout.String(), err
	}
	if _, err := newRun("migrate"); err != nil {
		t.Fatalf("release N migrate: %v", err)
	}
	newTok, err := newRun("tokens", "create", "--name", "after upgrade", "--expires", "30d")
	if err != nil {
		t.Fatalf("release N tokens create: %v", err)
	}
	newTok = strings.TrimSpace(newTok)
	newProc := startRoles(t, docsvcRunner(t, newBin, oldEnv))
	docB := uploadAndProcess(t, newProc.url, newTok, "release N wrote this after the upgrade")
	newProc.stop()

	// Rollback: release N−1 again, on N's schema, with no down-migration.
	if err := old("migrate").Run(); err != nil {
		t.Fatalf("N−1 migrate on N's schema (a no-op): %v", err)
	}
	o := startRoles(t, old)
	defer o.stop()
	for _, c := range []struct{ tok, id, text string }{
		{oldTok, docA, "release N-1 wrote this before the upgrade"},
		{newTok, docB, "release N wrote this after the upgrade"},
	} {
		if got := resultText(t, o.url, c.tok, c.id); !strings.Contains(got, c.text) {
			t.Fatalf("N−1 reading %s on N's schema: text %q, want %q", c.id, got, c.text)
		}
		if ids := listIDs(t, o.url, c.tok); len(ids) != 1 || ids[0] != c.id {
			t.Fatalf("N−1 listing on N's schema: %v, want [%s]", ids, c.id)
		}
	}
	docC := uploadAndProcess(t, o.url, newTok, "release N-1 wrote this after the rollback")
	if ids := listIDs(t, o.url, newTok); len(ids) != 2 {
		t.Fatalf("N−1 listing after its upload: %v, want %s and %s", ids, docB, docC)
	}
	for _, c := range []struct{ tok, id string }{{oldTok, docA}, {newTok, docB}, {newTok, docC}} {
		if code := call(t, http.MethodDelete, o.url+"/v1/documents/"+c.id, c.tok, nil, "", nil); code != http.StatusNoContent {
			t.Fatalf("N−1 deleting %s: HTTP %d, want 204", c.id, code)
		}
		if code := call(t, http.MethodGet, o.url+"/v1/documents/"+c.id, c.tok, nil, "", nil); code != http.StatusNotFound {
			t.Fatalf("reading %s after N−1 deleted it: HTTP %d, want 404", c.id, code)
		}
	}
}

type proc struct {
	url  string
	stop func()
}

// startOld starts a docsvc binary's api and worker on a free port and
// waits for the api's /healthz.
func startRoles(t *testing.T, run func(args ...string) *exec.Cmd) proc {
	t.Helper()
	addr := toolproc.FreeAddr(t)
	var cmds []*exec.Cmd
	for _, role := range []string{"api", "worker"} {
		c := run(role)
		c.Env = append(c.Env, "DOCSVC_ADDR="+addr)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		for _, c := range cmds {
			c.Process.Signal(syscall.SIGTERM)
			c.Wait()
		}
	}
	t.Cleanup(stop)
	url := "http://" + addr
	waitHTTP(t, url+"/healthz")
	return proc{url: url, stop: stop}
}

// call makes one API request and decodes a JSON answer into into.
func call(t *testing.T, method, url, tok string, body io.Reader, contentType string, into any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if into != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, into); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, raw)
		}
	}
	return resp.StatusCode
}

// uploadAndProcess uploads text as a file and waits until the worker has
// processed it; it returns the document's ID.
func uploadAndProcess(t *testing.T, url, tok, text string) string {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "note.txt")
	fmt.Fprint(fw, text)
	mw.Close()
	var d struct{ ID, Status, Error string }
	if code := call(t, http.MethodPost, url+"/v1/documents", tok, &body, mw.FormDataContentType(), &d); code != http.StatusAccepted {
		t.Fatalf("upload: HTTP %d, want 202", code)
	}
	testtime.Until(t, 60*time.Second, "document "+d.ID+" to finish", func() bool {
		if code := call(t, http.MethodGet, url+"/v1/documents/"+d.ID, tok, nil, "", &d); code != http.StatusOK {
			t.Fatalf("reading %s: HTTP %d", d.ID, code)
		}
		return d.Status == "succeeded" || d.Status == "failed"
	})
	if d.Status != "succeeded" {
		t.Fatalf("document %s is %s (%s)", d.ID, d.Status, d.Error)
	}
	return d.ID
}

func resultText(t *testing.T, url, tok, id string) string {
	t.Helper()
	var r struct{ Text string }
	if code := call(t, http.MethodGet, url+"/v1/documents/"+id+"/result", tok, nil, "", &r); code != http.StatusOK {
		t.Fatalf("result of %s: HTTP %d", id, code)
	}
	return r.Text
}

func listIDs(t *testing.T, url, tok string) []string {
	t.Helper()
	var l struct {
		Documents []struct{ ID string }
	}
	if code := call(t, http.MethodGet, url+"/v1/documents", tok, nil, "", &l); code != http.StatusOK {
		t.Fatalf("list: HTTP %d", code)
	}
	var ids []string
	for _, d := range l.Documents {
		ids = append(ids, d.ID)
	}
	return ids
}

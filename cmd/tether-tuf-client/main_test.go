package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/release/publish"
)

// repo is a vendor repository made with internal/release/publish and served
// over HTTP the way the plane serves it; overrides replace a file's bytes,
// requests records what was asked for.
type repo struct {
	t                *testing.T
	keysDir, repoDir string
	srv              *httptest.Server

	mu        sync.Mutex
	overrides map[string][]byte // "stable/metadata/timestamp.json" -> bytes served instead
	requests  []string
}

func setup(t *testing.T) *repo {
	b := &repo{t: t, keysDir: filepath.Join(t.TempDir(), "keys"), repoDir: t.TempDir(), overrides: map[string][]byte{}}
	if _, err := publish.InitKeys(b.keysDir, publish.KeyOptions{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		channel, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/tuf/"), "/")
		area, name, _ := strings.Cut(rest, "/")
		b.mu.Lock()
		b.requests = append(b.requests, channel+"/"+area+"/"+name)
		data, ok := b.overrides[channel+"/"+area+"/"+name]
		b.mu.Unlock()
		if !ok {
			data = b.file(channel, area, name)
		}
		if data == nil {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(data)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// file is one of the repository's files, or nil.
func (b *repo) file(channel, area, name string) []byte {
	p, err := publish.RepoFile(b.repoDir, channel, area, name)
	if err != nil {
		return nil
	}
	data, _ := os.ReadFile(p)
	return data
}

func (b *repo) publish(channel, version string) {
	art := filepath.Join(b.t.TempDir(), "tether-agent")
	if err := os.WriteFile(art, []byte(version), 0o644); err != nil {
		b.t.Fatal(err)
	}
	if _, err := publish.Publish(context.Background(), b.repoDir, b.keysDir, publish.PublishOptions{
		Version: version, Channel: channel, Artifacts: map[string]string{"tether-agent": art}, SchemaMax: 1,
	}, time.Now()); err != nil {
		b.t.Fatal(err)
	}
}

func (b *repo) rootJSON() []byte {
	data, err := os.ReadFile(filepath.Join(b.keysDir, "root.json"))
	if err != nil {
		b.t.Fatal(err)
	}
	return data
}

func TestTUFClient(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	b.publish("stable", "1.0.0")
	rootPath := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(rootPath, b.rootJSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	mdDir := filepath.Join(t.TempDir(), "md")
	targetDir := filepath.Join(t.TempDir(), "targets")
	mdURL := b.srv.URL + "/tuf/stable/metadata"
	tgURL := b.srv.URL + "/tuf/stable/targets"
	run := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(ctx, args, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	download := []string{"--metadata-dir", mdDir, "--metadata-url", mdURL,
		"--target-name", "releases/1.0.0.json", "--target-base-url", tgURL, "--target-dir", targetDir, "download"}

	if code, out := run("--metadata-dir", mdDir, "--metadata-url", mdURL, "refresh"); code != 1 {
		t.Errorf("refresh before init: exit %d: %s", code, out)
	}
	if code, out := run("--metadata-dir", mdDir, "init", rootPath); code != 0 {
		t.Fatalf("init: exit %d: %s", code, out)
	}
	// The suite's own order (flags first) and flags after the command.
	if code, out := run("--metadata-dir", mdDir, "--metadata-url", mdURL, "refresh"); code != 0 {
		t.Fatalf("refresh: exit %d: %s", code, out)
	}
	if code, out := run("refresh", "--metadata-dir", mdDir, "--metadata-url", mdURL); code != 0 {
		t.Fatalf("refresh, flags last: exit %d: %s", code, out)
	}
	entries, _ := os.ReadDir(mdDir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, ","); got != "root.json,snapshot.json,targets.json,timestamp.json" {
		t.Errorf("metadata dir holds %s; the suite expects only unversioned top-level files", got)
	}

	if code, out := run(download...); code != 0 {
		t.Fatalf("download: exit %d: %s", code, out)
	}
	got, err := os.ReadFile(filepath.Join(targetDir, "releases%2F1.0.0.json"))
	if err != nil || !strings.Contains(string(got), `"version": "1.0.0"`) {
		t.Fatalf("downloaded %q, %v", got, err)
	}
	b.mu.Lock()
	before := countPrefix(b.requests, "stable/targets/")
	b.mu.Unlock()
	if code, out := run(download...); code != 0 {
		t.Fatalf("second download: exit %d: %s", code, out)
	}
	b.mu.Lock()
	after := countPrefix(b.requests, "stable/targets/")
	b.mu.Unlock()
	if after != before {
		t.Errorf("a cached, verified target was downloaded again")
	}

	missing := append([]string{}, download...)
	missing[5] = "releases/9.9.9.json"
	if code, _ := run(missing...); code != 1 {
		t.Errorf("download of an unknown target: exit %d", code)
	}
	if code, _ := run("--metadata-dir", mdDir, "frobnicate"); code != 1 {
		t.Errorf("unknown command: exit %d", code)
	}
	if code, _ := run("--metadata-dir", mdDir, "--metadata-url", mdURL, "download"); code != 1 {
		t.Errorf("download without target flags: exit %d", code)
	}

	// A tampered timestamp makes refresh fail with exit 1.
	ts := b.file("stable", "metadata", "timestamp.json")
	if !bytes.Contains(ts, []byte(`"version": 1`)) {
		t.Fatalf("timestamp.json is %q; the tampering below would not change it", ts)
	}
	b.mu.Lock()
	b.overrides["stable/metadata/timestamp.json"] = bytes.Replace(ts, []byte(`"version": 1`), []byte(`"version": 7`), 1)
	b.mu.Unlock()
	if code, out := run("--metadata-dir", mdDir, "--metadata-url", mdURL, "refresh"); code != 1 {
		t.Errorf("refresh with tampered timestamp: exit %d: %s", code, out)
	}
}

func countPrefix(ss []string, prefix string) int {
	n := 0
	for _, s := range ss {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// --help explains on stdout and succeeds; a bad flag fails with the usage
// on stderr.
func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "--metadata-dir") || errOut.Len() != 0 {
		t.Errorf("--help: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"--nosuch"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "usage: tether-tuf-client") || out.Len() != 0 {
		t.Errorf("--nosuch: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}

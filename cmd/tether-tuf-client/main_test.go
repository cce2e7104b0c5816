package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/release/publish/publishtest"
)

func TestTUFClient(t *testing.T) {
	b := publishtest.New(t)
	ctx := context.Background()
	b.Publish("stable", "1.0.0", "")
	rootPath := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(rootPath, b.RootJSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	mdDir := filepath.Join(t.TempDir(), "md")
	targetDir := filepath.Join(t.TempDir(), "targets")
	mdURL := b.URL + "/tuf/stable/metadata"
	tgURL := b.URL + "/tuf/stable/targets"
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
	before := countPrefix(b.Requests(), "stable/targets/")
	if code, out := run(download...); code != 0 {
		t.Fatalf("second download: exit %d: %s", code, out)
	}
	after := countPrefix(b.Requests(), "stable/targets/")
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
	ts := b.File("stable", "metadata", "timestamp.json")
	if !bytes.Contains(ts, []byte(`"version": 1`)) {
		t.Fatalf("timestamp.json is %q; the tampering below would not change it", ts)
	}
	b.ServeInstead("stable/metadata/timestamp.json", bytes.Replace(ts, []byte(`"version": 1`), []byte(`"version": 7`), 1))
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

// Each --target-name is downloaded, in order; a repeated flag used to keep
// only the last.
func TestRepeatedTargetNames(t *testing.T) {
	b := publishtest.New(t)
	b.Publish("stable", "1.0.0", "")
	b.Publish("stable", "1.1.0", "1.0.0")
	mdDir, targetDir := initClient(t, b)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"--metadata-dir", mdDir, "--metadata-url", b.URL + "/tuf/stable/metadata",
		"--target-name", "releases/1.0.0.json", "--target-name", "releases/1.1.0.json",
		"--target-base-url", b.URL + "/tuf/stable/targets", "--target-dir", targetDir, "download"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("download: exit %d: %s%s", code, out.String(), errOut.String())
	}
	for _, name := range []string{"releases%2F1.0.0.json", "releases%2F1.1.0.json"} {
		if _, err := os.Stat(filepath.Join(targetDir, name)); err != nil {
			t.Errorf("%s not downloaded: %v", name, err)
		}
	}
	if i, j := strings.Index(out.String(), "1.0.0.json"), strings.Index(out.String(), "1.1.0.json"); i < 0 || j < i {
		t.Errorf("targets not downloaded in the order given:\n%s", out.String())
	}
}

// The client judges expiry by the time date(1) reports, which the suite's
// libfaketime moves: a date far past the metadata's expiry fails refresh.
func TestReferenceTimeComesFromDate(t *testing.T) {
	b := publishtest.New(t)
	b.Publish("stable", "1.0.0", "")
	mdDir, _ := initClient(t, b)
	bin := t.TempDir()
	fakeDate := func(epoch string) {
		script := "#!/bin/sh\necho " + epoch + "\n"
		if err := os.WriteFile(filepath.Join(bin, "date"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	refresh := func() (int, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"--metadata-dir", mdDir, "--metadata-url", b.URL + "/tuf/stable/metadata", "refresh"}, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	fakeDate("4102444800") // 2100-01-01
	if code, out := refresh(); code != 1 || !strings.Contains(strings.ToLower(out), "expired") {
		t.Errorf("refresh at 2100: exit %d: %s; want an expiry failure", code, out)
	}
	fakeDate(strconv.FormatInt(time.Now().Unix(), 10))
	if code, out := refresh(); code != 0 {
		t.Errorf("refresh now: exit %d: %s", code, out)
	}
}

func initClient(t *testing.T, b *publishtest.Repo) (mdDir, targetDir string) {
	t.Helper()
	rootPath := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(rootPath, b.RootJSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	mdDir = filepath.Join(t.TempDir(), "md")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--metadata-dir", mdDir, "init", rootPath}, &out, &errOut); code != 0 {
		t.Fatalf("init: %s%s", out.String(), errOut.String())
	}
	return mdDir, filepath.Join(t.TempDir(), "targets")
}

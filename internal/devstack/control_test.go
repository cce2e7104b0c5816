package devstack

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseSwapRequest(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "releases", "1.0.0", "docsvc")
	if err := os.MkdirAll(filepath.Dir(bin), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	noexec := filepath.Join(dir, "plain")
	if err := os.WriteFile(noexec, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ok := `{"version":"1.0.0","docsvc":"` + bin + `","tether_agent":"` + bin + `","ready_timeout_seconds":30}`
	r, d, err := parseSwapRequest([]byte(ok), dir)
	if err != nil || r.Docsvc != bin || d != 30*time.Second {
		t.Fatalf("%+v %v %v", r, d, err)
	}
	for _, c := range []struct{ in, want string }{
		{`{"version":"1.0.0","docsvc":"/bin/sh","tether_agent":"` + bin + `","ready_timeout_seconds":30}`, "not inside the data dir"},
		{`{"version":"1.0.0","docsvc":"` + dir + `/../x","tether_agent":"` + bin + `","ready_timeout_seconds":30}`, "not a clean absolute path"},
		{`{"version":"1.0.0","docsvc":"` + noexec + `","tether_agent":"` + bin + `","ready_timeout_seconds":30}`, "not an executable file"},
		{`{"version":"","docsvc":"` + bin + `","tether_agent":"` + bin + `","ready_timeout_seconds":30}`, "not a release version"},
		{`{"version":"1.0.0","docsvc":"` + bin + `","tether_agent":"` + bin + `","ready_timeout_seconds":0}`, "ready_timeout_seconds 0"},
		{`{"version":"1.0.0","unknown":1}`, "not valid JSON"},
		{`{} {}`, "more than one JSON value"},
	} {
		if _, _, err := parseSwapRequest([]byte(c.in), dir); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.in, err, c.want)
		}
	}
}

func FuzzParseSwapRequest(f *testing.F) {
	dir := f.TempDir()
	f.Add([]byte(`{"version":"1.0.0","docsvc":"/x","tether_agent":"/x","ready_timeout_seconds":30}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, d, err := parseSwapRequest(b, dir)
		if err != nil {
			return
		}
		if d <= 0 || !strings.HasPrefix(r.Docsvc, dir) || !strings.HasPrefix(r.Agent, dir) {
			t.Fatalf("accepted %+v %v", r, d)
		}
	})
}

func TestBackup(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "docsvc.db")+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE documents (id TEXT, blob_key TEXT); INSERT INTO documents VALUES ('a', 'ab/a'), ('b', 'ab/b')`); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "ab"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(dir, "blobs", "ab", id), []byte("document "+id), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := backup(context.Background(), dir, "before-1.1.0", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(out) != "20260102T030405Z-before-1.1.0" || filepath.Dir(out) != BackupsDir(dir) {
		t.Fatalf("backup dir %s", out)
	}
	if b, err := os.ReadFile(filepath.Join(out, "blobs", "ab", "a")); err != nil || string(b) != "document a" {
		t.Fatalf("blob copy: %q %v", b, err)
	}
	cp, err := sql.Open("sqlite", "file:"+filepath.Join(out, "docsvc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	var n int
	if err := cp.QueryRow(`SELECT count(*) FROM documents`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("copied database has %d rows, %v; want 2", n, err)
	}
	if _, err := backup(context.Background(), dir, "../escape", time.Now()); err == nil || !strings.Contains(err.Error(), `"../escape"`) {
		t.Fatalf("a label with a path: %v", err)
	}
}

func FuzzParseRunning(f *testing.F) {
	dir := f.TempDir()
	f.Add([]byte(`{"version":"1.0.0","docsvc":"/x","tether_agent":"/x"}`))
	f.Add([]byte(`{"version":"1.0.0","docsvc":"` + dir + `/bin/docsvc","tether_agent":"` + dir + `/bin/docsvc"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRunning(b, dir)
		if err == nil && (!strings.HasPrefix(r.Docsvc, dir) || !strings.HasPrefix(r.Agent, dir)) {
			t.Fatalf("accepted %+v outside %s", r, dir)
		}
	})
}

func FuzzParseMigrateRequest(f *testing.F) {
	dir := f.TempDir()
	f.Add([]byte(`{"docsvc":"/x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseMigrateRequest(b, dir)
		if err == nil && !strings.HasPrefix(p, dir) {
			t.Fatalf("accepted %q outside %s", p, dir)
		}
	})
}

func TestReadRunningRefusesOutsideDataDir(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "releases"), 0o700)
	os.WriteFile(filepath.Join(dir, RunningFile), []byte(`{"version":"1.0.0","docsvc":"/bin/sh","tether_agent":"/bin/sh"}`), 0o600)
	if _, _, err := readRunning(dir); err == nil || !strings.Contains(err.Error(), "not inside the data dir") || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("running.json naming /bin/sh: %v", err)
	}
}

package atomicfile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/atomicfile"
)

func TestWriteReplacesWholeFileWithMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := atomicfile.Write(p, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(p, []byte("second, longer"), 0o640); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if err != nil || string(got) != "second, longer" || fi.Mode().Perm() != 0o640 {
		t.Fatalf("read %q (%v), mode %v", got, err, fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	if err := atomicfile.Write(filepath.Join(dir, "missing", "x"), nil, 0o600); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	type state struct{ Day string }
	if err := atomicfile.WriteJSON(path, state{Day: "2026-12-02"}, 0o600); err != nil {
		t.Fatal(err)
	}
	var got state
	if err := atomicfile.ReadJSON(path, &got); err != nil || got.Day != "2026-12-02" {
		t.Fatalf("read back %+v, %v", got, err)
	}
	if err := os.WriteFile(path, []byte(`{"Day": secret-text`), 0o600); err != nil {
		t.Fatal(err)
	}
	err := atomicfile.ReadJSON(path, &got)
	if err == nil || !strings.Contains(err.Error(), "state.json") || strings.Contains(err.Error(), "secret-text") {
		t.Fatalf("a broken file: %v; want its name, never its contents", err)
	}
}

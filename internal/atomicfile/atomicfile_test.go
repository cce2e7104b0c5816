package atomicfile_test

import (
	"os"
	"path/filepath"
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

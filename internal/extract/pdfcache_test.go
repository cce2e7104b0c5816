package extract

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/experimental"
)

// openWith checks that an engine reads hello.pdf: the engine it built works.
func openWith(t *testing.T, engine *pdfiumEngine) {
	t.Helper()
	var inst *pdfiumInstance
	mem, err := pdfMemory.claim(64<<20, func() (err error) {
		inst, err = engine.instantiate(experimental.WithMemoryAllocator(context.Background(), pdfMemory))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.release()
	defer inst.close()
	res, err := pdfText(inst, readFixture(t, "hello.pdf"), DefaultLimits())
	if err != nil || res.Pages != 1 {
		t.Fatalf("pages = %d, %v; want 1", res.Pages, err)
	}
}

func startPool(t *testing.T, dir string) []string {
	t.Helper()
	var warnings []string
	start := time.Now()
	engine, err := newPDFEngine(dir, func(s string) { warnings = append(warnings, s) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("engine ready in %s (warnings: %q)", time.Since(start).Round(time.Millisecond), warnings)
	openWith(t, engine)
	engine.Close()
	return warnings
}

// TestCompileCache: the first start fills the cache and seals it, the next
// uses it, and a damaged or foreign-writable cache is never used as is.
func TestCompileCache(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "cache")
	if w := startPool(t, dir); len(w) != 0 {
		t.Fatalf("first start warned: %q", w)
	}
	files, err := cacheFiles(dir)
	if err != nil || len(files) == 0 {
		t.Fatalf("cache holds %q (%v), want the compiled module", files, err)
	}
	if err := checkManifest(dir); err != nil {
		t.Fatalf("manifest after the first start: %v", err)
	}
	sealed, err := os.Stat(filepath.Join(dir, cacheManifest))
	if err != nil {
		t.Fatal(err)
	}
	if w := startPool(t, dir); len(w) != 0 {
		t.Fatalf("start from a sound cache warned: %q", w)
	}
	// A cache loaded as it stood is not written: it may be read-only.
	if again, err := os.Stat(filepath.Join(dir, cacheManifest)); err != nil || !again.ModTime().Equal(sealed.ModTime()) {
		t.Errorf("the manifest was rewritten on a start from a sound cache (%v)", err)
	}

	// One flipped byte in the compiled code: found, and the cache rebuilt.
	path := filepath.Join(dir, filepath.FromSlash(files[0]))
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 0xff
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	w := startPool(t, dir)
	if len(w) != 1 || !strings.Contains(w[0], "rebuilt") || !strings.Contains(w[0], files[0]) {
		t.Fatalf("damaged cache: warnings %q, want one naming the rebuilt file", w)
	}
	if err := checkManifest(dir); err != nil {
		t.Fatalf("manifest after the rebuild: %v", err)
	}
	if now, _ := os.ReadFile(path); bytes.Equal(now, bad) {
		t.Fatal("the damaged file is still in the cache")
	}

	// A directory others can write to is not used at all.
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	var w2 []string
	if c := openCompileCache(dir, func(s string) { w2 = append(w2, s) }); c != nil || len(w2) != 1 || !strings.Contains(w2[0], "others can write") {
		t.Fatalf("world-writable cache: used %v, warnings %q", c != nil, w2)
	}
}

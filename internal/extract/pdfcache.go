package extract

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
)

// Compiling PDFium takes seconds of CPU (20s or more on a busy two-core
// machine); loading the compiled code from disk takes well under one. The
// cache is machine code the process will run, so it is never trusted
// blindly: the directory must be private to this user, and every file in it
// must match the manifest of SHA-256 sums written when this process or an
// earlier one filled it. Anything else (a missing manifest, a changed,
// truncated or extra file) empties the directory and PDFium is compiled
// again, refilling it.

const cacheManifest = "tether-manifest.sha256"

var compileCache struct {
	sync.Mutex
	dir  string
	warn func(string)
}

// SetCompileCache keeps PDFium's compiled code in dir, so that a restarted
// process starts in under a second instead of compiling again. warn, if not
// nil, hears why the cache was not used or was rebuilt (the process then
// compiles, which is slower but correct). It has an effect only before the
// first PDF or Warm; an empty dir means no cache.
func SetCompileCache(dir string, warn func(string)) {
	compileCache.Lock()
	defer compileCache.Unlock()
	compileCache.dir, compileCache.warn = dir, warn
}

func cacheSettings() (string, func(string)) {
	compileCache.Lock()
	defer compileCache.Unlock()
	warn := compileCache.warn
	if warn == nil {
		warn = func(string) {}
	}
	return compileCache.dir, warn
}

// openCompileCache returns the cache to compile with, or nil (and why) to
// compile without one.
func openCompileCache(dir string, warn func(string)) wazero.CompilationCache {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		warn(fmt.Sprintf("PDF engine cache %s cannot be created (%v); compiling without it", dir, err))
		return nil
	}
	if err := privateDir(dir); err != nil {
		warn(fmt.Sprintf("PDF engine cache %s not used: %v", dir, err))
		return nil
	}
	if err := checkManifest(dir); err != nil {
		warn(fmt.Sprintf("PDF engine cache %s rebuilt: %v", dir, err))
		if err := emptyDir(dir); err != nil {
			warn(fmt.Sprintf("PDF engine cache %s cannot be emptied (%v); compiling without it", dir, err))
			return nil
		}
	}
	c, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		warn(fmt.Sprintf("PDF engine cache %s cannot be opened (%v); compiling without it", dir, err))
		return nil
	}
	return c
}

// cacheFiles lists the cache's files (not the manifest) by relative path.
func cacheFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err == nil && rel != cacheManifest {
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	slices.Sort(files)
	return files, err
}

// manifest is "<sha256>  <path>" per file, as sha256sum prints it.
func manifest(dir string) ([]byte, error) {
	files, err := cacheFiles(dir)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(sum[:]), f)
	}
	return b.Bytes(), nil
}

// checkManifest accepts a directory whose files are exactly those its
// manifest lists, with the same sums, or an empty one (before a first
// compile; after it, the new files lack a manifest).
func checkManifest(dir string) error {
	want, err := os.ReadFile(filepath.Join(dir, cacheManifest))
	if errors.Is(err, fs.ErrNotExist) {
		files, err := cacheFiles(dir)
		if err != nil {
			return err
		}
		if len(files) > 0 {
			return errors.New("files without a manifest")
		}
		return nil
	}
	if err != nil {
		return err
	}
	got, err := manifest(dir)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%s does not match the files (%s)", cacheManifest, firstDifference(want, got))
	}
	return nil
}

// firstDifference names the first file whose line differs, for the log.
func firstDifference(want, got []byte) string {
	w, g := bufio.NewScanner(bytes.NewReader(want)), bufio.NewScanner(bytes.NewReader(got))
	for {
		wok, gok := w.Scan(), g.Scan()
		if !wok && !gok {
			return "same"
		}
		if w.Text() != g.Text() {
			line := w.Text()
			if !wok {
				line = g.Text()
			}
			_, name, _ := strings.Cut(line, "  ")
			return "first at " + name
		}
	}
}

// sealCompileCache writes the manifest of what the cache now holds.
func sealCompileCache(dir string) error {
	m, err := manifest(dir)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, cacheManifest+".tmp")
	if err := os.WriteFile(tmp, m, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, cacheManifest))
}

func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// File stores each object as a file under a root directory: the embedded
// default's document store. Objects are written to a temporary file in the
// destination directory, synced, then renamed over the key, so a crash at
// any point leaves either the old object or the new one, never a partial one.
type File struct {
	root string
}

// tmpPrefix marks files being written. ValidateKey refuses segments that
// start with a dot, so no key can name one.
const tmpPrefix = ".tmp-"

// NewFile returns a store rooted at dir, creating it (mode 0700) if needed.
// dir must be absolute so the store does not depend on the working directory.
func NewFile(dir string) (*File, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("blob: file store directory %q is not absolute", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("blob: create file store directory: %w", err)
	}
	return &File{root: filepath.Clean(dir)}, nil
}

func (f *File) path(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return filepath.Join(f.root, filepath.FromSlash(key)), nil
}

// Put writes exactly size bytes from r under key.
func (f *File) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	dst, err := f.path(key)
	if err != nil {
		return fmt.Errorf("blob: put: %w", err)
	}
	if size < 0 {
		return fmt.Errorf("blob: put %s: negative size %d", key, size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	dir := filepath.Dir(dst)
	if err := f.mkdirs(dir); err != nil {
		return fmt.Errorf("blob: put %s: create directory: %w", key, err)
	}
	tmp, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	if err := writeAndSync(tmp, newExactReader(ctx, r, size)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	// The rename is durable only once the directory entry is on disk.
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	return nil
}

// mkdirs creates dir and any missing parents below the root, syncing each
// new directory's parent so the path to a new object survives a crash too.
func (f *File) mkdirs(dir string) error {
	rel, err := filepath.Rel(f.root, dir)
	if err != nil || rel == "." {
		return err
	}
	cur := f.root
	for _, seg := range strings.Split(rel, string(filepath.Separator)) {
		next := filepath.Join(cur, seg)
		err := os.Mkdir(next, 0o700)
		switch {
		case err == nil:
			if err := syncDir(cur); err != nil {
				return err
			}
		case !errors.Is(err, fs.ErrExist):
			return err
		}
		cur = next
	}
	return nil
}

func writeAndSync(tmp *os.File, r io.Reader) error {
	_, err := io.Copy(tmp, r)
	if err == nil {
		err = tmp.Sync()
	}
	return errors.Join(err, tmp.Close())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// Get opens the object under key, or returns ErrNotFound.
func (f *File) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := f.path(key)
	if err != nil {
		return nil, fmt.Errorf("blob: get: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blob: get %s: %w", key, err)
	}
	file, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, fmt.Errorf("blob: get %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blob: get %s: %w", key, err)
	}
	// A key that is a prefix of other keys ("a" when "a/b" exists) names a
	// directory, which holds no object.
	if st, err := file.Stat(); err != nil || !st.Mode().IsRegular() {
		file.Close()
		if err != nil {
			return nil, fmt.Errorf("blob: get %s: %w", key, err)
		}
		return nil, fmt.Errorf("blob: get %s: %w", key, ErrNotFound)
	}
	return file, nil
}

// Delete removes key; a missing key is not an error.
func (f *File) Delete(ctx context.Context, key string) error {
	p, err := f.path(key)
	if err != nil {
		return fmt.Errorf("blob: delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	if !st.Mode().IsRegular() {
		return nil // a directory of other keys, not an object
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	// Without this a power cut could bring a deleted document back.
	if err := syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	return nil
}

// Ping checks the root directory is still there and writable.
func (f *File) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: ping: %w", err)
	}
	tmp, err := os.CreateTemp(f.root, tmpPrefix+"ping-*")
	if err != nil {
		return fmt.Errorf("blob: ping: %w", err)
	}
	return errors.Join(tmp.Close(), os.Remove(tmp.Name()))
}

// Usage counts the objects under the root and their total size.
func (f *File) Usage(ctx context.Context) (objects, bytes int64, err error) {
	err = filepath.WalkDir(f.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		objects++
		bytes += info.Size()
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("blob: usage: %w", err)
	}
	return objects, bytes, nil
}

package devstack

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver docsvc uses
)

// BackupsDir holds the backups taken before each upgrade or rollback,
// relative to the data dir: backups/<UTC time>-<label>/ with docsvc.db (a
// consistent copy, SQLite's VACUUM INTO) and blobs/ (the documents).
//
// This is the local runtime's small, internal backup; tetherctl backup
// (with restore) is the operator's command for the same data.
const BackupsDir = "backups"

var backupLabelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$`)

// backup copies the database, then the blob directory, into a new
// directory and returns its path. The database copy is one transaction's
// view; every blob is written before the row naming it commits, so each
// document in the copied database has its blob in the copied blobs/.
func backup(ctx context.Context, dataDir, label string, now time.Time) (string, error) {
	if !backupLabelRE.MatchString(label) {
		return "", fmt.Errorf("backup label %q: want 1-64 letters, digits, '.', '+', '_' or '-'", label)
	}
	dir := filepath.Join(dataDir, BackupsDir, now.UTC().Format("20060102T150405Z")+"-"+label)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	fail := func(err error) (string, error) {
		os.RemoveAll(dir)
		return "", fmt.Errorf("backup into %s: %w", dir, err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "docsvc.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	dst := filepath.Join(dir, "docsvc.db")
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return fail(fmt.Errorf("copying the database: %w", err))
	}
	if err := copyTree(ctx, filepath.Join(dataDir, "blobs"), filepath.Join(dir, "blobs")); err != nil {
		return fail(fmt.Errorf("copying the documents: %w", err))
	}
	return dir, nil
}

// copyTree copies regular files and directories (nothing else) from src to
// dst; a missing src is an empty tree.
func copyTree(ctx context.Context, src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == src && os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil || strings.HasPrefix(rel, "..") {
			return fmt.Errorf("%s is outside %s", path, src)
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o700)
		case d.Type().IsRegular():
			return copyFile(path, target)
		}
		return nil // a socket or link in the blob dir is not a document
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		if os.IsNotExist(err) {
			return nil // deleted since the walk listed it
		}
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Package localbackup backs up and restores the local runtime's document
// service state: the SQLite database and the documents directory of a
// tetherctl dev data directory, consistent with each other.
//
// A backup is a directory: docsvc.db (an online, consistent copy made with
// SQLite's VACUUM INTO, so the stack may keep running), blobs/ (exactly the
// stored documents the copied database refers to, each one checked present)
// and manifest.json (every file's size and SHA-256). It is written beside
// its destination and renamed into place whole, so a directory with a
// manifest is a finished backup.
//
// Restore verifies a backup against its manifest before it touches
// anything, refuses while the stack runs, stages the copy inside the data
// directory, moves the current database and documents aside, moves the
// copy in, checks the restored database, and only then removes what it set
// aside; any failure puts the previous data back.
//
// The package copies files without reading documents: it links the SQLite
// driver to copy and check the database and to read which stored objects
// the database names, and nothing of docsvc's document, blob or queue
// packages, which tetherctl (its user, with the local upgrade) must not link.
package localbackup

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver docsvc uses
)

// The data directory's layout, which internal/devstack uses: devstack
// calls this package (a backup before a local upgrade), so this package
// does not import it.
const (
	DatabaseFile = "docsvc.db"
	BlobDir      = "blobs"
	ManifestFile = "manifest.json"
	// FormatVersion is the manifest format this package writes and reads.
	FormatVersion = 1
)

var (
	// ErrRunning means another process has the database open: the stack
	// (or a docsvc command) is running on the data directory.
	ErrRunning = errors.New("localbackup: the stack is running on this data directory")
	// ErrManifest means a backup's manifest or files do not match.
	ErrManifest = errors.New("localbackup: the backup does not match its manifest")
)

// Manifest describes one backup.
type Manifest struct {
	Format    int       `json:"format"`
	CreatedAt time.Time `json:"created_at"`
	Documents int       `json:"documents"` // rows in the copied database's documents table
	Files     []File    `json:"files"`     // docsvc.db first, then blobs/… sorted
}

// File is one file of a backup; Path is relative to the backup, with '/'.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Bytes is the backup's total size.
func (m Manifest) Bytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// Backup copies dataDir's database and the stored documents it refers to
// into dest, which must not exist yet, and returns the manifest it wrote.
// The stack may be running. now is the manifest's creation time.
func Backup(ctx context.Context, dataDir, dest string, now time.Time) (Manifest, error) {
	dataDir, dest, err := absPaths(dataDir, dest)
	if err != nil {
		return Manifest{}, err
	}
	src := filepath.Join(dataDir, DatabaseFile)
	if _, err := os.Stat(src); err != nil {
		return Manifest{}, fmt.Errorf("localbackup: no database at %s (is %s a tetherctl dev data directory?): %w", src, dataDir, err)
	}
	if _, err := os.Lstat(dest); err == nil {
		return Manifest{}, fmt.Errorf("localbackup: %s already exists; give a new directory for the backup", dest)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o700); err != nil {
		return Manifest{}, fmt.Errorf("localbackup: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".partial-")
	if err != nil {
		return Manifest{}, fmt.Errorf("localbackup: %w", err)
	}
	defer os.RemoveAll(tmp) // gone after the rename on success
	m, err := backupInto(ctx, dataDir, tmp, now)
	if err != nil {
		return Manifest{}, err
	}
	if err := os.Rename(tmp, dest); err != nil {
		return Manifest{}, fmt.Errorf("localbackup: %w", err)
	}
	return m, syncDir(filepath.Dir(dest))
}

func backupInto(ctx context.Context, dataDir, tmp string, now time.Time) (Manifest, error) {
	m := Manifest{Format: FormatVersion, CreatedAt: now.UTC()}
	dbCopy := filepath.Join(tmp, DatabaseFile)
	if err := vacuumInto(ctx, filepath.Join(dataDir, DatabaseFile), dbCopy); err != nil {
		return m, err
	}
	keys, err := blobKeys(ctx, dbCopy)
	if err != nil {
		return m, err
	}
	m.Documents = len(keys)
	f, err := hashFile(dbCopy, DatabaseFile)
	if err != nil {
		return m, err
	}
	m.Files = append(m.Files, f)
	// Every object the copy refers to was stored before its row was
	// written; one missing now was deleted after the copy was taken.
	for _, key := range keys {
		rel := BlobDir + "/" + key
		f, err := copyFile(ctx, filepath.Join(dataDir, filepath.FromSlash(rel)), filepath.Join(tmp, filepath.FromSlash(rel)), rel)
		if errors.Is(err, fs.ErrNotExist) {
			return m, fmt.Errorf("localbackup: the stored document %s, which the database copy refers to, is gone (deleted while the backup ran?); run the backup again: %w", key, err)
		}
		if err != nil {
			return m, err
		}
		m.Files = append(m.Files, f)
	}
	sort.Slice(m.Files[1:], func(i, j int) bool { return m.Files[1+i].Path < m.Files[1+j].Path })
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	if err := writeSynced(filepath.Join(tmp, ManifestFile), append(b, '\n')); err != nil {
		return m, err
	}
	return m, syncDir(tmp)
}

// openSQLite opens path with the settings docsvc uses, so a copy waits for
// a writer instead of failing.
func openSQLite(path string, readOnly bool) (*sql.DB, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)"
	if readOnly {
		dsn += "&mode=ro"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("localbackup: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// vacuumInto writes a consistent copy of the database at src to dst, in
// one read transaction: writers carry on (WAL), and the copy is the
// database as of one moment.
func vacuumInto(ctx context.Context, src, dst string) error {
	db, err := openSQLite(src, true)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		return fmt.Errorf("localbackup: copy the database %s: %w", src, err)
	}
	// The copy keeps the source's WAL mode, in which even a read-only open
	// makes -wal and -shm files beside it. A backup is one file; docsvc
	// sets WAL again when it opens the restored database.
	cp, err := openSQLite(dst, false)
	if err != nil {
		return err
	}
	defer cp.Close()
	if _, err := cp.ExecContext(ctx, `PRAGMA journal_mode=DELETE`); err != nil {
		return fmt.Errorf("localbackup: set the copy's journal mode: %w", err)
	}
	if err := cp.Close(); err != nil {
		return fmt.Errorf("localbackup: close the copy: %w", err)
	}
	return syncFile(dst)
}

// blobKey is a key docsvc's file store accepts: slash-separated segments
// of safe characters, none starting with a dot. A key from the database is
// checked before it becomes a path.
var blobKey = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$`)

// blobKeys lists the stored objects the database at path refers to.
func blobKeys(ctx context.Context, path string) ([]string, error) {
	db, err := openSQLite(path, true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := checkIntegrity(ctx, db, path); err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT blob_key FROM documents ORDER BY blob_key`)
	if err != nil {
		return nil, fmt.Errorf("localbackup: read the documents of %s: %w", path, err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("localbackup: read the documents of %s: %w", path, err)
		}
		if !blobKey.MatchString(k) || len(k) > 512 {
			return nil, fmt.Errorf("localbackup: the database %s names a stored object %q that is not a valid key", path, clip(k))
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

func checkIntegrity(ctx context.Context, db *sql.DB, path string) error {
	var res string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res); err != nil {
		return fmt.Errorf("localbackup: check the database %s: %w", path, err)
	}
	if res != "ok" {
		return fmt.Errorf("localbackup: the database %s is damaged: %s", path, clip(res))
	}
	return nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func absPaths(a, b string) (string, string, error) {
	a, err := filepath.Abs(a)
	if err != nil {
		return "", "", err
	}
	b, err = filepath.Abs(b)
	if err != nil {
		return "", "", err
	}
	if a == b || strings.HasPrefix(b, a+string(filepath.Separator)) || strings.HasPrefix(a, b+string(filepath.Separator)) {
		return "", "", fmt.Errorf("localbackup: the backup %s and the data directory %s must not contain each other", b, a)
	}
	return a, b, nil
}

// copyFile copies src to dst (creating its directory), syncs it, and
// returns its manifest entry under rel.
func copyFile(ctx context.Context, src, dst, rel string) (File, error) {
	if err := ctx.Err(); err != nil {
		return File{}, err
	}
	in, err := os.Open(src)
	if err != nil {
		return File{}, err
	}
	defer in.Close()
	if st, err := in.Stat(); err != nil || !st.Mode().IsRegular() {
		return File{}, fmt.Errorf("localbackup: %s is not a regular file", src)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return File{}, err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return File{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return File{}, fmt.Errorf("localbackup: copy %s: %w", rel, err)
	}
	return File{Path: rel, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func hashFile(p, rel string) (File, error) {
	f, err := os.Open(p)
	if err != nil {
		return File{}, fmt.Errorf("localbackup: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, fmt.Errorf("localbackup: read %s: %w", rel, err)
	}
	return File{Path: rel, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func writeSynced(p string, b []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("localbackup: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("localbackup: write %s: %w", p, err)
	}
	return nil
}

func syncFile(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("localbackup: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("localbackup: sync %s: %w", p, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("localbackup: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("localbackup: sync %s: %w", dir, err)
	}
	return nil
}

// ParseManifest reads a manifest and checks it describes a backup this
// package can restore: the format, a database first, and blob paths that
// stay inside the backup, each once, with a size and a SHA-256.
func ParseManifest(b []byte) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("%w: %s does not parse (%v); it must be the manifest.json tetherctl backup wrote", ErrManifest, ManifestFile, err)
	}
	if dec.More() {
		return Manifest{}, fmt.Errorf("%w: %s has data after its JSON object", ErrManifest, ManifestFile)
	}
	if m.Format != FormatVersion {
		return Manifest{}, fmt.Errorf("%w: format %d, this tetherctl reads format %d; restore it with the tetherctl that made it", ErrManifest, m.Format, FormatVersion)
	}
	if len(m.Files) == 0 || m.Files[0].Path != DatabaseFile {
		return Manifest{}, fmt.Errorf("%w: the first file must be %s", ErrManifest, DatabaseFile)
	}
	if m.Documents < 0 || m.Documents != len(m.Files)-1 {
		return Manifest{}, fmt.Errorf("%w: it counts %d documents but lists %d stored documents", ErrManifest, m.Documents, len(m.Files)-1)
	}
	seen := map[string]bool{}
	for i, f := range m.Files {
		if i > 0 {
			key, ok := strings.CutPrefix(f.Path, BlobDir+"/")
			if !ok || !blobKey.MatchString(key) || len(key) > 512 || path.Clean(f.Path) != f.Path {
				return Manifest{}, fmt.Errorf("%w: file %q is not %s/<stored document key>", ErrManifest, clip(f.Path), BlobDir)
			}
		}
		if seen[f.Path] {
			return Manifest{}, fmt.Errorf("%w: file %q is listed twice", ErrManifest, clip(f.Path))
		}
		seen[f.Path] = true
		if f.Size < 0 {
			return Manifest{}, fmt.Errorf("%w: file %s has size %d", ErrManifest, f.Path, f.Size)
		}
		if b, err := hex.DecodeString(f.SHA256); err != nil || len(b) != sha256.Size || strings.ToLower(f.SHA256) != f.SHA256 {
			return Manifest{}, fmt.Errorf("%w: file %s: %q is not a SHA-256 in lowercase hex", ErrManifest, f.Path, clip(f.SHA256))
		}
	}
	return m, nil
}

// Verify reads the backup in dir and checks every file against its
// manifest: each listed file present with its size and SHA-256, nothing
// else in the backup, and the database's documents exactly the listed ones.
func Verify(ctx context.Context, dir string) (Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return Manifest{}, fmt.Errorf("%w: %v (is %s a backup made by tetherctl backup?)", ErrManifest, err, dir)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return Manifest{}, err
	}
	if err := verifyFiles(ctx, dir, m); err != nil {
		return Manifest{}, err
	}
	keys, err := blobKeys(ctx, filepath.Join(dir, DatabaseFile))
	if err != nil {
		return Manifest{}, err
	}
	for i, k := range keys {
		if i+1 >= len(m.Files) || m.Files[i+1].Path != BlobDir+"/"+k {
			return Manifest{}, fmt.Errorf("%w: the database's stored documents are not the ones listed", ErrManifest)
		}
	}
	if len(keys) != len(m.Files)-1 {
		return Manifest{}, fmt.Errorf("%w: the database's stored documents are not the ones listed", ErrManifest)
	}
	return m, nil
}

// verifyFiles checks that dir holds exactly the manifest's files (and the
// manifest), each with its size and hash.
func verifyFiles(ctx context.Context, dir string, m Manifest) error {
	want := map[string]File{}
	for _, f := range m.Files {
		want[f.Path] = f
	}
	found := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return nil
		case rel == ManifestFile:
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("%w: %s is not a regular file", ErrManifest, rel)
		}
		w, ok := want[rel]
		if !ok {
			return fmt.Errorf("%w: %s is in the backup but not in its manifest", ErrManifest, clip(rel))
		}
		got, err := hashFile(p, rel)
		if err != nil {
			return err
		}
		if got.Size != w.Size || got.SHA256 != w.SHA256 {
			return fmt.Errorf("%w: %s is %d bytes with SHA-256 %s; the manifest says %d bytes, %s (the backup was changed or damaged)", ErrManifest, rel, got.Size, got.SHA256, w.Size, w.SHA256)
		}
		found++
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrManifest) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrManifest, err)
	}
	if found != len(want) {
		return fmt.Errorf("%w: %d of the %d files it lists are missing", ErrManifest, len(want)-found, len(want))
	}
	return nil
}

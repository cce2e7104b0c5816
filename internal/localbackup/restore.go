package localbackup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// ControlSocket is the running supervisor's control socket in the data
// directory (internal/devstack), one of the signs that the stack runs.
const ControlSocket = "supervisor.sock"

// sqliteDMSByte is the byte of a WAL database's -shm file that every
// connection holds a shared lock on for as long as it has the database
// open (SQLite's os_unix.c: UNIX_SHM_DMS, 120 + 8).
const sqliteDMSByte = 128

// Running reports whether the stack, or any docsvc process, is running on
// dataDir: the supervisor's control socket answers, or another process
// holds the database open (its lock on the -shm file, which SQLite's WAL
// mode keeps for each open connection).
func Running(dataDir string) (bool, string, error) {
	sock := filepath.Join(dataDir, ControlSocket)
	if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		c.Close()
		return true, "the supervisor's control socket " + sock + " answers", nil
	}
	return databaseOpen(dataDir)
}

// databaseOpen reports whether another process has the database open.
func databaseOpen(dataDir string) (bool, string, error) {
	shm := filepath.Join(dataDir, DatabaseFile+"-shm")
	f, err := os.OpenFile(shm, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("localbackup: %w", err)
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: sqliteDMSByte, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil {
		return false, "", fmt.Errorf("localbackup: check the locks on %s: %w", shm, err)
	}
	if lk.Type != unix.F_UNLCK {
		return true, fmt.Sprintf("process %d has the database %s open", lk.Pid, filepath.Join(dataDir, DatabaseFile)), nil
	}
	return false, "", nil
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	Manifest Manifest
	// Previous is where the data that was replaced was kept; empty unless
	// RestoreOptions.KeepPrevious.
	Previous string
}

// RestoreOptions tunes Restore.
type RestoreOptions struct {
	// KeepPrevious leaves the replaced database and documents in a
	// .before-restore-* directory of the data directory instead of
	// removing them once the restore succeeded.
	KeepPrevious bool
	// FromSupervisor is for the supervisor itself (a local upgrade's
	// rollback): it has stopped docsvc's processes but its control socket
	// still answers, so only the database's lock is checked.
	FromSupervisor bool
}

// movable are the data directory's entries a restore replaces: the
// database with its WAL files (a stale WAL beside a restored database would
// be replayed into it) and the documents directory.
var movable = []string{DatabaseFile, DatabaseFile + "-wal", DatabaseFile + "-shm", DatabaseFile + "-journal", BlobDir}

// Restore replaces dataDir's database and documents with the backup in src.
// It verifies the backup first, refuses (ErrRunning) while the stack runs,
// and keeps the current data aside until the restored database checks out;
// on any failure the current data is put back. now names the directory the
// current data is kept aside in.
func Restore(ctx context.Context, dataDir, src string, o RestoreOptions, now time.Time) (RestoreResult, error) {
	dataDir, src, err := absPaths(dataDir, src)
	if err != nil {
		return RestoreResult{}, err
	}
	m, err := Verify(ctx, src)
	if err != nil {
		return RestoreResult{}, err
	}
	check := NotRunning
	if o.FromSupervisor {
		check = notOpen
	}
	if err := check(dataDir); err != nil {
		return RestoreResult{}, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return RestoreResult{}, fmt.Errorf("localbackup: %w", err)
	}
	// Stage inside the data directory, so the moves below are renames on
	// one file system; each file is hashed again as it is copied.
	stage, err := os.MkdirTemp(dataDir, ".restore-")
	if err != nil {
		return RestoreResult{}, fmt.Errorf("localbackup: %w", err)
	}
	defer os.RemoveAll(stage)
	if err := os.Mkdir(filepath.Join(stage, BlobDir), 0o700); err != nil {
		return RestoreResult{}, fmt.Errorf("localbackup: %w", err)
	}
	for _, f := range m.Files {
		got, err := copyFile(ctx, filepath.Join(src, filepath.FromSlash(f.Path)), filepath.Join(stage, filepath.FromSlash(f.Path)), f.Path)
		if err != nil {
			return RestoreResult{}, err
		}
		if got != f {
			return RestoreResult{}, fmt.Errorf("%w: %s changed while it was being restored; nothing was changed", ErrManifest, f.Path)
		}
	}
	if err := syncDir(stage); err != nil {
		return RestoreResult{}, err
	}
	aside, err := os.MkdirTemp(dataDir, ".before-restore-"+now.UTC().Format("20060102T150405Z")+"-")
	if err != nil {
		return RestoreResult{}, fmt.Errorf("localbackup: %w", err)
	}
	// The stack might have started since the check above.
	if err := check(dataDir); err != nil {
		os.Remove(aside)
		return RestoreResult{}, err
	}
	var setAside []string
	putBack := func(cause error) error {
		for _, name := range movable {
			os.RemoveAll(filepath.Join(dataDir, name)) // what was moved in, if anything
		}
		for _, name := range setAside {
			if err := os.Rename(filepath.Join(aside, name), filepath.Join(dataDir, name)); err != nil {
				return fmt.Errorf("%w; and putting the previous data back failed (%v): it is in %s, move it back by hand", cause, err, aside)
			}
		}
		os.Remove(aside)
		return fmt.Errorf("%w; the previous data is back in place", cause)
	}
	for _, name := range movable {
		err := os.Rename(filepath.Join(dataDir, name), filepath.Join(aside, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return RestoreResult{}, putBack(fmt.Errorf("localbackup: set %s aside: %w", name, err))
		}
		setAside = append(setAside, name)
	}
	for _, name := range []string{DatabaseFile, BlobDir} {
		if err := os.Rename(filepath.Join(stage, name), filepath.Join(dataDir, name)); err != nil {
			return RestoreResult{}, putBack(fmt.Errorf("localbackup: move the restored %s in: %w", name, err))
		}
	}
	if err := syncDir(dataDir); err != nil {
		return RestoreResult{}, putBack(err)
	}
	if _, err := blobKeys(ctx, filepath.Join(dataDir, DatabaseFile)); err != nil {
		return RestoreResult{}, putBack(err)
	}
	res := RestoreResult{Manifest: m}
	if o.KeepPrevious {
		res.Previous = aside
	} else if err := os.RemoveAll(aside); err != nil {
		return res, fmt.Errorf("localbackup: restored, but removing the previous data in %s failed: %w", aside, err)
	}
	return res, nil
}

// NotRunning returns an ErrRunning that says why when the stack runs on
// dataDir, and nil when it does not.
func NotRunning(dataDir string) error { return refuse(Running(dataDir)) }

func notOpen(dataDir string) error { return refuse(databaseOpen(dataDir)) }

func refuse(running bool, why string, err error) error {
	if err != nil {
		return err
	}
	if running {
		return fmt.Errorf("%w (%s): stop tetherctl dev (Ctrl-C) and restore again; nothing was changed", ErrRunning, why)
	}
	return nil
}

package localbackup_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/blob"
	"github.com/tetherhq/tether/internal/document"
	"github.com/tetherhq/tether/internal/localbackup"
	"github.com/tetherhq/tether/internal/queue"
	"github.com/tetherhq/tether/internal/sqldb"
)

// holdEnv makes the test binary a process that keeps a database open, as
// the stack's docsvc does, until its standard input closes.
const holdEnv = "LOCALBACKUP_TEST_HOLD_DB"

func TestMain(m *testing.M) {
	if path := os.Getenv(holdEnv); path != "" {
		db, err := sqldb.Open(context.Background(), "sqlite://"+path)
		if err == nil {
			_, err = document.NewStore(db, time.Now).Counts(context.Background())
		}
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("open")
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// stack is the document service's storage in a data directory, used
// through docsvc's own packages: what the api and worker do to it.
type stack struct {
	dir     string
	db      *sqldb.DB
	store   *document.Store
	blobs   blob.Store
	uploads *document.Uploads
}

const owner = "oidc:https://issuer.example|alice"

func openStack(t *testing.T, dir string) *stack {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, "sqlite://"+filepath.Join(dir, localbackup.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.NewFile(filepath.Join(dir, localbackup.BlobDir))
	if err != nil {
		t.Fatal(err)
	}
	store := document.NewStore(db, time.Now)
	s := &stack{dir: dir, db: db, store: store, blobs: blobs, uploads: &document.Uploads{
		Store: store, Blobs: blobs, Queue: queue.NewDB(db, "jobs", queue.DBOptions{}), MaxBytes: 1 << 20, TempDir: t.TempDir(), Log: slog.New(slog.DiscardHandler),
	}}
	t.Cleanup(func() { db.Close() })
	return s
}

// upload stores a document and its result, as the api and worker would.
func (s *stack) upload(t *testing.T, n int) (id, content string) {
	t.Helper()
	ctx := context.Background()
	content = fmt.Sprintf("document number %d\nwith its own text %d\n", n, n*n)
	d, err := s.uploads.Upload(ctx, owner, fmt.Sprintf("notes-%d.txt", n), strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.Succeed(ctx, document.Result{DocumentID: d.ID, Text: content, Summary: fmt.Sprintf("summary %d", n), Keywords: []string{"k" + fmt.Sprint(n)}, Pages: 1, Provider: "local"}); err != nil {
		t.Fatal(err)
	}
	return d.ID, content
}

// check reads id back: its bytes and its result.
func (s *stack) check(t *testing.T, id, content string) {
	t.Helper()
	ctx := context.Background()
	d, err := s.store.Owned(ctx, owner, id)
	if err != nil {
		t.Fatalf("document %s: %v", id, err)
	}
	rc, err := document.Open(ctx, s.blobs, d)
	if err != nil {
		t.Fatalf("open %s: %v", id, err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != content {
		t.Fatalf("document %s reads %q, %v; want %q", id, b, err, content)
	}
	r, err := s.store.Result(ctx, owner, id)
	if err != nil || r.Text != content || !strings.HasPrefix(r.Summary, "summary ") {
		t.Fatalf("result of %s = %+v, %v", id, r, err)
	}
}

// TestRestoreDrill is the restore drill: documents uploaded and processed,
// backed up while the storage is in use, then more uploaded and some
// deleted; the restore is refused while another process has the database
// open, and afterwards every backed-up document reads back with its
// result, and nothing from after the backup is there.
func TestRestoreDrill(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStack(t, dir)
	want := map[string]string{}
	for i := range 5 {
		id, content := s.upload(t, i)
		want[id] = content
	}
	dest := filepath.Join(t.TempDir(), "backup-1")
	m, err := localbackup.Backup(ctx, dir, dest, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if m.Documents != 5 || len(m.Files) != 6 || m.Files[0].Path != localbackup.DatabaseFile {
		t.Fatalf("manifest = %+v; want the database and 5 documents", m)
	}
	if _, err := localbackup.Verify(ctx, dest); err != nil {
		t.Fatalf("Verify of a fresh backup: %v", err)
	}
	if _, err := localbackup.Backup(ctx, dir, dest, time.Now()); err == nil {
		t.Error("a second backup into the same directory succeeded")
	}

	// Life goes on after the backup.
	later, _ := s.upload(t, 99)
	var gone string
	for id := range want {
		gone = id
		break
	}
	if err := document.Remove(ctx, s.store, s.blobs, owner, gone); err != nil {
		t.Fatal(err)
	}

	// A process holding the database open is the stack running.
	hold := exec.Command(os.Args[0], "-test.run=^$")
	hold.Env = append(os.Environ(), holdEnv+"="+filepath.Join(dir, localbackup.DatabaseFile))
	stdin, err := hold.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := hold.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := hold.Start(); err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "open\n" {
		t.Fatalf("the holding process said %q", line)
	}
	if running, why, err := localbackup.Running(dir); err != nil || !running {
		t.Fatalf("Running with the database open elsewhere = %v, %q, %v", running, why, err)
	}
	if _, err := localbackup.Restore(ctx, dir, dest, localbackup.RestoreOptions{}, time.Now()); !errors.Is(err, localbackup.ErrRunning) || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("Restore while running = %v, want ErrRunning", err)
	}
	s.check(t, later, "document number 99\nwith its own text 9801\n")
	stdin.Close()
	if err := hold.Wait(); err != nil {
		t.Fatal(err)
	}

	// The stack stops; the restore goes ahead.
	s.db.Close()
	if running, why, err := localbackup.Running(dir); err != nil || running {
		t.Fatalf("Running with the stack stopped = %v, %q, %v", running, why, err)
	}
	res, err := localbackup.Restore(ctx, dir, dest, localbackup.RestoreOptions{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Previous != "" || res.Manifest.Documents != 5 {
		t.Errorf("RestoreResult = %+v", res)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("the restore left %v in the data directory", left)
	}
	r := openStack(t, dir)
	for id, content := range want {
		r.check(t, id, content)
	}
	if _, err := r.store.Get(ctx, later); !errors.Is(err, document.ErrNotFound) {
		t.Errorf("the document uploaded after the backup is still there: %v", err)
	}
	// The restored stack works on: a new upload, readable.
	id, content := r.upload(t, 7)
	r.check(t, id, content)
}

// A damaged or altered backup is refused before anything changes.
func TestRestoreRefusesABadBackup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStack(t, dir)
	id, content := s.upload(t, 1)
	backups := t.TempDir()
	fresh := func(name string) (string, localbackup.Manifest) {
		dest := filepath.Join(backups, name)
		m, err := localbackup.Backup(ctx, dir, dest, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return dest, m
	}
	current, _ := s.upload(t, 2)
	s.db.Close()

	for name, spoil := range map[string]func(dest string, m localbackup.Manifest) error{
		"changed document": func(dest string, m localbackup.Manifest) error {
			return os.WriteFile(filepath.Join(dest, filepath.FromSlash(m.Files[1].Path)), []byte("tampered"), 0o600)
		},
		"missing document": func(dest string, m localbackup.Manifest) error {
			return os.Remove(filepath.Join(dest, filepath.FromSlash(m.Files[1].Path)))
		},
		"extra file": func(dest string, m localbackup.Manifest) error {
			return os.WriteFile(filepath.Join(dest, "blobs", "documents", "doc_extra"), []byte("x"), 0o600)
		},
		"changed database": func(dest string, m localbackup.Manifest) error {
			f, err := os.OpenFile(filepath.Join(dest, localbackup.DatabaseFile), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write([]byte{0})
			return err
		},
		"no manifest": func(dest string, m localbackup.Manifest) error {
			return os.Remove(filepath.Join(dest, localbackup.ManifestFile))
		},
	} {
		t.Run(name, func(t *testing.T) {
			dest, m := fresh(strings.ReplaceAll(name, " ", "-"))
			if err := spoil(dest, m); err != nil {
				t.Fatal(err)
			}
			if _, err := localbackup.Restore(ctx, dir, dest, localbackup.RestoreOptions{}, time.Now()); !errors.Is(err, localbackup.ErrManifest) {
				t.Fatalf("Restore = %v, want ErrManifest", err)
			}
			r := openStack(t, dir)
			r.check(t, id, content)
			if _, err := r.store.Get(ctx, current); err != nil {
				t.Fatalf("the current data changed: %v", err)
			}
			r.db.Close()
		})
	}
}

// KeepPrevious leaves the replaced data where the operator can take it.
func TestRestoreKeepPrevious(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStack(t, dir)
	s.upload(t, 1)
	dest := filepath.Join(t.TempDir(), "b")
	if _, err := localbackup.Backup(ctx, dir, dest, time.Now()); err != nil {
		t.Fatal(err)
	}
	after, _ := s.upload(t, 2)
	s.db.Close()
	res, err := localbackup.Restore(ctx, dir, dest, localbackup.RestoreOptions{KeepPrevious: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(res.Previous, localbackup.BlobDir, "documents", after)); err != nil {
		t.Fatalf("the previous data is not kept in %q: %v", res.Previous, err)
	}
}

// A supervisor whose control socket answers is a running stack, unless the
// supervisor itself restores (its docsvc processes stopped): then only the
// database's lock counts.
func TestRestoreWithSupervisorSocket(t *testing.T) {
	ctx := context.Background()
	// A short path: a Unix socket's path is limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "lb-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s := openStack(t, dir)
	id, content := s.upload(t, 1)
	dest := filepath.Join(t.TempDir(), "b")
	if _, err := localbackup.Backup(ctx, dir, dest, time.Now()); err != nil {
		t.Fatal(err)
	}
	s.db.Close()
	l, err := net.Listen("unix", filepath.Join(dir, localbackup.ControlSocket))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := localbackup.Restore(ctx, dir, dest, localbackup.RestoreOptions{}, time.Now()); !errors.Is(err, localbackup.ErrRunning) || !strings.Contains(err.Error(), "control socket") {
		t.Fatalf("Restore with the supervisor running = %v, want ErrRunning naming its socket", err)
	}
	if _, err := localbackup.Restore(ctx, dir, dest, localbackup.RestoreOptions{FromSupervisor: true}, time.Now()); err != nil {
		t.Fatalf("Restore from the supervisor: %v", err)
	}
	openStack(t, dir).check(t, id, content)
}

package docsvc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/tetherhq/tether/internal/apitoken"
	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/blob"
	"github.com/tetherhq/tether/internal/docsvc"
	"github.com/tetherhq/tether/internal/document"
	"github.com/tetherhq/tether/internal/queue"
	"github.com/tetherhq/tether/internal/sqldb"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
	"github.com/tetherhq/tether/internal/testtime"
	"github.com/tetherhq/tether/internal/toolproc"
)

// docsvcRunner returns a func that makes a docsvc command with env, whose
// logs the test shows if it fails.
func docsvcRunner(t *testing.T, bin string, env []string) func(args ...string) *exec.Cmd {
	return func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var logs bytes.Buffer
		cmd.Stderr = &logs
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("docsvc %s logs:\n%s", args[0], logs.String())
			}
		})
		return cmd
	}
}

func buildDocsvc(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "docsvc")
	cmd := exec.Command("go", "build", "-o", bin, "../../cmd/docsvc")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build docsvc: %v\n%s", err, out)
	}
	return bin
}

// blockingProvider answers as an OpenAI-compatible API, but holds the first
// request open until release is closed: a job stuck mid-analysis.
type blockingProvider struct {
	once     sync.Once
	received chan struct{}
	release  chan struct{}
}

func (p *blockingProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	first := false
	p.once.Do(func() { first = true; close(p.received) })
	if first {
		select {
		case <-p.release:
		case <-r.Context().Done():
			return
		}
	}
	content, _ := json.Marshal(map[string]any{"summary": "Recovered after a crash.", "keywords": []string{"crash"}})
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
		"choices": []map[string]any{{"index": 0, "finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": string(content)}}},
	})
}

// TestWorkerKilledMidJobLosesNothing kills a worker process with SIGKILL
// while it is analyzing a document, starts another, and expects the job to be
// redelivered and finished.
func TestWorkerKilledMidJobLosesNothing(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the docsvc binary")
	}
	bin := buildDocsvc(t)
	dir := t.TempDir()
	p := &blockingProvider{received: make(chan struct{}), release: make(chan struct{})}
	provider := httptest.NewServer(p)
	defer provider.Close()
	env := append(os.Environ(),
		"DOCSVC_DATABASE_URL=sqlite://"+filepath.Join(dir, "docsvc.db"),
		"DOCSVC_BLOB_URL=file://"+filepath.Join(dir, "blobs"),
		"DOCSVC_QUEUE_URL=db://jobs",
		"DOCSVC_QUEUE_VISIBILITY=2s",
		"DOCSVC_AI_PROVIDER=openai", "DOCSVC_AI_MODEL=m", "DOCSVC_AI_BASE_URL="+provider.URL, "DOCSVC_AI_API_KEY=sk-test",
	)
	run := docsvcRunner(t, bin, env)
	if err := run("migrate").Run(); err != nil {
		t.Fatalf("migrate: %v", err)
	}

	// Upload in this process, on the same database and documents directory.
	ctx := context.Background()
	db, err := sqldb.Open(ctx, "sqlite://"+filepath.Join(dir, "docsvc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	blobs, _ := blob.NewFile(filepath.Join(dir, "blobs"))
	store := document.NewStore(db, time.Now)
	up := &document.Uploads{Store: store, Blobs: blobs, Queue: queue.NewDB(db, "jobs", queue.DBOptions{}), MaxBytes: 1 << 20,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	d, err := up.Upload(ctx, "token:test", "incident.txt", strings.NewReader("Incident report: the conveyor in hall 3 stopped twice on Monday."))
	if err != nil {
		t.Fatal(err)
	}

	first := run("worker")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.received:
	case <-time.After(60 * time.Second):
		first.Process.Kill()
		t.Fatal("the worker never called the provider")
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	if got, _ := store.Get(ctx, d.ID); got.Status != document.Processing {
		t.Fatalf("after the kill the document is %s, want processing", got.Status)
	}
	close(p.release)

	second := run("worker")
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { second.Process.Signal(syscall.SIGTERM); second.Wait() }()
	var got document.Document
	testtime.Until(t, 60*time.Second, "the redelivered job to finish", func() bool {
		if got, err = store.Get(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
		return got.Status.Terminal()
	})
	if got.Status != document.Succeeded {
		t.Fatalf("after redelivery the document is %s (%s)", got.Status, got.Error)
	}
	if got.Attempts < 2 {
		t.Fatalf("succeeded after %d attempts; the killed attempt was not counted", got.Attempts)
	}
	r, err := store.Result(ctx, "token:test", d.ID)
	if err != nil || r.Summary != "Recovered after a crash." {
		t.Fatalf("result = %+v, %v", r, err)
	}
}

func TestConfigCheck(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"DOCSVC_DATABASE_URL": "postgres://app:s3cret-pw@db.internal:5432/docs",
		"DOCSVC_BLOB_URL":     "file:///var/lib/docsvc/blobs",
		"DOCSVC_QUEUE_URL":    "db://jobs",
	}
	var out bytes.Buffer
	err := docsvc.Run(context.Background(), []string{"config", "check"}, func(k string) string { return env[k] }, &out, io.Discard)
	if err != nil {
		t.Fatalf("config check: %v", err)
	}
	if strings.Contains(out.String(), "s3cret-pw") || !strings.Contains(out.String(), "db.internal") {
		t.Fatalf("config check output leaks or lacks the database URL:\n%s", out.String())
	}
	delete(env, "DOCSVC_BLOB_URL")
	err = docsvc.Run(context.Background(), []string{"config", "check"}, func(k string) string { return env[k] }, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "DOCSVC_BLOB_URL") {
		t.Fatalf("missing blob URL: err = %v", err)
	}
}

// TestDatabasePasswordRotatesUnderLoad rotates the database password the way
// Secrets Manager's single-user rotation does (new version AWSPENDING, the
// server's password changed, AWSPENDING promoted to AWSCURRENT) under a
// running api taking requests, and expects not one of them to fail.
func TestDatabasePasswordRotatesUnderLoad(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the docsvc binary")
	}
	ctx := context.Background()
	bin := buildDocsvc(t)
	dir := t.TempDir()
	dbURL, setPassword := sqldbtest.PostgresRole(t, "pw-one")
	emu := awstest.Start(t)
	arn := emu.CreateSecret(t, "tether/test/database", `{"username":"docsvc","password":"pw-one"}`)
	sm := secretsmanager.NewFromConfig(emu.AWSConfig())

	addr := toolproc.FreeAddr(t)
	env := append(os.Environ(), emu.Env()...)
	env = append(env,
		"DOCSVC_ADDR="+addr,
		"DOCSVC_DATABASE_URL="+dbURL,
		"DOCSVC_DATABASE_PASSWORD="+arn+"#password",
		// Every connection re-authenticates within a second.
		"DOCSVC_DATABASE_CONN_LIFETIME=1s",
		"DOCSVC_BLOB_URL=file://"+filepath.Join(dir, "blobs"),
		"DOCSVC_QUEUE_URL=db://jobs",
	)
	run := docsvcRunner(t, bin, env)
	if run("migrate").Run() != nil {
		t.Fatal("migrate failed")
	}
	tokenCmd := run("token", "create", "--name", "rotation-test")
	out, err := tokenCmd.Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	token := strings.TrimSpace(string(out))
	api := run("api")
	if err := api.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { api.Process.Signal(syscall.SIGTERM); api.Wait() }()
	waitHTTP(t, "http://"+addr+"/healthz")

	// Load: two clients listing documents (each request authenticates its
	// token and lists, both in the database) until told to stop.
	var mu sync.Mutex
	var ok, failed int
	var failures []string
	succeeded := func() int { mu.Lock(); defer mu.Unlock(); return ok }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pace := time.NewTicker(20 * time.Millisecond) // a steady load, not a burst
			defer pace.Stop()
			for {
				select {
				case <-stop:
					return
				case <-pace.C:
				}
				req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/documents", nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := http.DefaultClient.Do(req)
				mu.Lock()
				switch {
				case err != nil:
					failed++
					failures = append(failures, err.Error())
				case resp.StatusCode != http.StatusOK:
					failed++
					b, _ := io.ReadAll(resp.Body)
					failures = append(failures, resp.Status+": "+string(b))
				default:
					ok++
				}
				mu.Unlock()
				if resp != nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	testtime.Until(t, 30*time.Second, "the load to get going", func() bool { return succeeded() >= 10 })

	// The rotation, as the rotation function does it.
	rotatedAt := time.Now()
	pending, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn),
		SecretString: aws.String(`{"username":"docsvc","password":"pw-two"}`), VersionStages: []string{"AWSPENDING"}})
	if err != nil {
		t.Fatalf("PutSecretValue AWSPENDING: %v", err)
	}
	setPassword("pw-two")

	// The proof the rotation is exercised: the api makes connections after
	// the old password stopped working. (Asked as the role itself, on one
	// connection: only a role's own sessions show their start times.)
	self, err := sqldb.OpenWith(ctx, dbURL, sqldb.Options{Password: func(context.Context, string) (string, error) { return "pw-two", nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	conn, err := self.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	reconnected := func(since time.Time, what string) {
		t.Helper()
		testtime.Until(t, 60*time.Second, what, func() bool {
			var fresh int
			if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE usename = current_user AND pid <> pg_backend_pid() AND backend_start > $1`, since).Scan(&fresh); err != nil {
				t.Fatal(err)
			}
			return fresh > 0
		})
	}
	// Connections recycle while only AWSPENDING is right.
	reconnected(rotatedAt, "the api to connect with the pending password")
	cur, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	var oldVersion string
	for id, stages := range cur.VersionIdsToStages {
		for _, s := range stages {
			if s == "AWSCURRENT" {
				oldVersion = id
			}
		}
	}
	if _, err := sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(arn),
		VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: pending.VersionId, RemoveFromVersionId: aws.String(oldVersion)}); err != nil {
		t.Fatalf("UpdateSecretVersionStage: %v", err)
	}
	promotedAt := time.Now()
	reconnected(promotedAt, "the api to connect once the new password is current")
	// And the load goes on across it.
	after := succeeded()
	testtime.Until(t, 30*time.Second, "requests to succeed after the rotation", func() bool { return succeeded() >= after+20 })
	close(stop)
	wg.Wait()
	if failed > 0 {
		t.Fatalf("%d of %d requests failed across the rotation; first: %s", failed, ok+failed, failures[0])
	}
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	testtime.Until(t, 30*time.Second, url+" to answer 200", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// dbURLs makes a fresh, unmigrated database of each kind.
var dbURLs = map[string]func(t *testing.T) string{
	"sqlite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "docsvc.db") },
	"postgres": func(t *testing.T) string { return sqldbtest.PostgresURL(t) },
}

// inProcess runs docsvc commands in this process against dbURL, and
// returns their standard output.
func inProcess(t *testing.T, dbURL string) func(args ...string) (string, error) {
	env := map[string]string{
		"DOCSVC_DATABASE_URL": dbURL,
		"DOCSVC_BLOB_URL":     "file://" + filepath.Join(t.TempDir(), "blobs"),
		"DOCSVC_QUEUE_URL":    "db://jobs",
	}
	return func(args ...string) (string, error) {
		var out bytes.Buffer
		err := docsvc.Run(context.Background(), args, func(k string) string { return env[k] }, &out, io.Discard)
		return out.String(), err
	}
}

// The token commands on a database that was never migrated say so and name
// the fix, on both databases, instead of the driver's "no such table".
func TestTokenBeforeMigrate(t *testing.T) {
	t.Parallel()
	for name, dbURL := range dbURLs {
		t.Run(name, func(t *testing.T) {
			docsvcRun := inProcess(t, dbURL(t))
			for _, args := range [][]string{
				{"token", "create", "--name", "ops"},
				{"token", "list"},
				{"token", "revoke", "tok_0123"},
			} {
				_, err := docsvcRun(args...)
				if err == nil || !strings.Contains(err.Error(), "not migrated") || !strings.Contains(err.Error(), "run 'docsvc migrate' first") ||
					strings.Contains(err.Error(), "no such table") || strings.Contains(err.Error(), "does not exist") {
					t.Errorf("docsvc %s before migrate: %v; want it to say the schema is not migrated and to run 'docsvc migrate'", strings.Join(args, " "), err)
				}
			}
			if _, err := docsvcRun("migrate"); err != nil {
				t.Fatal(err)
			}
			if out, err := docsvcRun("token", "create", "--name", "ops"); err != nil || !strings.HasPrefix(out, "tt_") {
				t.Fatalf("token create after migrate: %q, %v", out, err)
			}
		})
	}
}

// TestTokensAdd is what an operator's one-off task runs: a token made
// elsewhere is stored by its hash, listed without it, used, and revoked.
func TestTokensAdd(t *testing.T) {
	t.Parallel()
	for name, dbURL := range dbURLs {
		t.Run(name, func(t *testing.T) {
			docsvcRun := inProcess(t, dbURL(t))
			if _, err := docsvcRun("migrate"); err != nil {
				t.Fatal(err)
			}
			tok, err := apitoken.New() // on the operator's machine
			if err != nil {
				t.Fatal(err)
			}
			out, err := docsvcRun("tokens", "add", "--name", "nightly export", "--hash", tok.Stored(), "--expires", "90d", "--output", "json")
			if err != nil || !strings.Contains(out, `"id":"`+tok.ID+`"`) {
				t.Fatalf("tokens add: %q, %v", out, err)
			}
			if _, err := docsvcRun("tokens", "add", "--name", "again", "--hash", tok.Stored()); err == nil {
				t.Fatal("the same token added twice")
			}
			if _, err := docsvcRun("tokens", "add", "--name", "bad", "--hash", tok.ID+":"+tok.Hash[:10]); err == nil || strings.Contains(err.Error(), tok.Hash[:10]) {
				t.Fatalf("a malformed hash: %v", err)
			}
			var list struct {
				Tokens []struct {
					ID, Name  string
					CreatedAt time.Time  `json:"created_at"`
					ExpiresAt *time.Time `json:"expires_at"`
				} `json:"tokens"`
			}
			out, err = docsvcRun("tokens", "list", "--output", "json")
			if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Tokens) != 1 || list.Tokens[0].ID != tok.ID ||
				list.Tokens[0].Name != "nightly export" || list.Tokens[0].ExpiresAt == nil || time.Until(*list.Tokens[0].ExpiresAt) < 89*24*time.Hour {
				t.Fatalf("tokens list: %q, %v", out, err)
			}
			if strings.Contains(out, tok.Hash) || strings.Contains(out, "hash") {
				t.Fatalf("tokens list shows the hash: %s", out)
			}
			if _, err := docsvcRun("tokens", "revoke", tok.ID); err != nil {
				t.Fatal(err)
			}
			if out, err = docsvcRun("tokens", "list", "--output", "json"); err != nil || !strings.Contains(out, `"revoked_at":"`) {
				t.Fatalf("tokens list after revoke: %q, %v", out, err)
			}
		})
	}
}

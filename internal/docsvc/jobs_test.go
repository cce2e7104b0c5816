package docsvc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/docsvc"
	"github.com/tetherhq/tether/internal/document"
	"github.com/tetherhq/tether/internal/fauxqstest"
	"github.com/tetherhq/tether/internal/queue"
	"github.com/tetherhq/tether/internal/queue/queuetest"
	"github.com/tetherhq/tether/internal/sqldb"
)

// jobsBackend is one queue backend the jobs commands run on: the env
// docsvc gets and a queue the test dead-letters jobs through (the same
// queue the service uses, with a dead-letter threshold of one delivery).
type jobsBackend struct {
	env   map[string]string
	queue queue.Queue
}

// TestJobsDeadLettersAndRedrive dead-letters jobs through each backend's own
// mechanism (receive, lapse, receive again), lists them with 'docsvc jobs
// dead-letters', redrives them, and checks that the worker would get them
// back with their documents queued again. On SQS, redrive receives from the
// dead-letter queue, sends to the queue and deletes: neither moto 5.2 nor
// fauxqs implements StartMessageMoveTask (moto/sqs has no message-move
// handler; fauxqs's README lists it unsupported), so the command does not
// use it.
func TestJobsDeadLettersAndRedrive(t *testing.T) {
	backends := map[string]func(t *testing.T, dbURL string, db *sqldb.DB) jobsBackend{
		"table": func(t *testing.T, dbURL string, db *sqldb.DB) jobsBackend {
			return jobsBackend{
				env:   map[string]string{"DOCSVC_QUEUE_URL": "db://jobs", "DOCSVC_QUEUE_MAX_RECEIVES": "1"},
				queue: queue.NewDB(db, "jobs", queue.DBOptions{MaxReceives: 1}),
			}
		},
		"fauxqs": func(t *testing.T, dbURL string, db *sqldb.DB) jobsBackend {
			s := fauxqstest.Start(t)
			return sqsBackend(t, s.SQS(), s.Endpoint())
		},
		"moto": func(t *testing.T, dbURL string, db *sqldb.DB) jobsBackend {
			s := awstest.Start(t)
			return sqsBackend(t, s.SQS(), s.Endpoint())
		},
	}
	// docsvc reads AWS credentials the SDK's way, from the process
	// environment, so these subtests do not run in parallel.
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, dbName := range []string{"sqlite", "postgres"} {
		for qName, backend := range backends {
			if dbName == "postgres" && qName != "table" {
				continue // the SQS backends do not depend on the database
			}
			t.Run(dbName+"/"+qName, func(t *testing.T) {
				ctx := context.Background()
				dbURL := dbURLs[dbName](t)
				run := jobsRunner(t, dbURL, nil)
				if _, err := run("migrate"); err != nil {
					t.Fatal(err)
				}
				db, err := sqldb.Open(ctx, dbURL)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				b := backend(t, dbURL, db)
				run = jobsRunner(t, dbURL, b.env)
				testJobs(t, run, db, b.queue)
			})
		}
	}
}

func sqsBackend(t *testing.T, client *sqs.Client, endpoint string) jobsBackend {
	url, dlq := queuetest.NewSQSQueues(t, client, 1)
	return jobsBackend{
		env:   map[string]string{"DOCSVC_QUEUE_URL": url, "DOCSVC_DLQ_URL": dlq, "DOCSVC_SQS_ENDPOINT": endpoint, "DOCSVC_AWS_REGION": "us-east-1"},
		queue: queue.NewSQS(client, url, dlq),
	}
}

func jobsRunner(t *testing.T, dbURL string, extra map[string]string) func(args ...string) (string, error) {
	env := map[string]string{
		"DOCSVC_DATABASE_URL": dbURL,
		"DOCSVC_BLOB_URL":     "file://" + filepath.Join(t.TempDir(), "blobs"),
		"DOCSVC_QUEUE_URL":    "db://jobs",
	}
	for k, v := range extra {
		env[k] = v
	}
	return func(args ...string) (string, error) {
		var out bytes.Buffer
		err := docsvc.Run(context.Background(), args, func(k string) string { return env[k] }, &out, io.Discard)
		return out.String(), err
	}
}

// deadLetterJob sends body and takes it through its one allowed delivery:
// received, released at once, received again, which dead-letters it.
func deadLetterJob(t *testing.T, q queue.Queue, body string) {
	t.Helper()
	ctx := context.Background()
	before, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Send(ctx, []byte(body)); err != nil {
		t.Fatal(err)
	}
	msgs, err := q.Receive(ctx, 1, time.Minute, time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("receive %s: %v, %v", body, msgs, err)
	}
	if err := q.Extend(ctx, msgs[0].ReceiptHandle, 0); err != nil {
		t.Fatal(err)
	}
	if again, err := q.Receive(ctx, 1, time.Minute, time.Second); err != nil || len(again) != 0 {
		t.Fatalf("second receive of %s = %v, %v; want it dead-lettered", body, again, err)
	}
	if after, err := q.Stats(ctx); err != nil || after.DeadLetter != before.DeadLetter+1 {
		t.Fatalf("dead letters %d → %+v (%v); want one more", before.DeadLetter, after, err)
	}
}

func testJobs(t *testing.T, run func(args ...string) (string, error), db *sqldb.DB, q queue.Queue) {
	ctx := context.Background()
	store := document.NewStore(db, time.Now)
	const filename = "Quarterly-Salaries-CONFIDENTIAL.pdf"
	newDoc := func() string {
		id := document.NewID()
		if err := store.Create(ctx, document.Document{ID: id, Filename: filename, MediaType: "application/pdf", Size: 10}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	job := func(id string) string { return `{"document_id":"` + id + `"}` }

	crashed, provider, deleted := newDoc(), newDoc(), newDoc()
	if _, err := store.Start(ctx, crashed); err != nil {
		t.Fatal(err)
	}
	// The reasons the worker records (worker.go), with readers' text in them.
	if err := store.Fail(ctx, crashed, "gave up after 1 attempts: processing stopped each time (the worker was restarted or crashed on this document)"); err != nil {
		t.Fatal(err)
	}
	if err := store.Fail(ctx, provider, "gave up after 1 attempts: AI provider unavailable"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{crashed, provider, deleted} {
		deadLetterJob(t, q, job(id))
	}
	deadLetterJob(t, q, `{"not":"a job"}`)
	if _, err := db.ExecContext(ctx, `DELETE FROM documents WHERE id = $1`, deleted); err != nil {
		t.Fatal(err)
	}

	out, err := run("jobs", "dead-letters", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var listed struct {
		DeadLetters []struct {
			MessageID    string `json:"message_id"`
			DocumentID   string `json:"document_id"`
			Reason       string `json:"reason"`
			ReceiveCount int    `json:"receive_count"`
		} `json:"dead_letters"`
	}
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	want := map[string]string{crashed: "worker_stopped", provider: "ai_provider_unavailable", deleted: "document_deleted", "": "malformed_job"}
	got := map[string]string{}
	var malformedID string
	for _, l := range listed.DeadLetters {
		got[l.DocumentID] = l.Reason
		if l.DocumentID == "" {
			malformedID = l.MessageID
		}
	}
	if len(listed.DeadLetters) != 4 || len(got) != 4 {
		t.Fatalf("dead-letters listed %s; want the 4 dead-lettered jobs", out)
	}
	for id, reason := range want {
		if got[id] != reason {
			t.Errorf("dead letter of %q has reason %q, want %q", id, got[id], reason)
		}
	}
	text, err := run("jobs", "dead-letters")
	if err != nil || !strings.Contains(text, crashed) || !strings.Contains(text, "worker_stopped") {
		t.Fatalf("dead-letters (text) = %q, %v", text, err)
	}
	for _, o := range []string{out, text} {
		if strings.Contains(o, "Salaries") || strings.Contains(o, "gave up") || strings.Contains(o, "not") && strings.Contains(o, "a job") {
			t.Errorf("dead-letters shows a filename, a recorded reason or a message body:\n%s", o)
		}
	}

	// An unknown ID is refused before anything moves.
	if _, err := run("jobs", "redrive", crashed, document.NewID()); err == nil || !strings.Contains(err.Error(), "nothing was redriven") {
		t.Fatalf("redrive with an unknown ID: %v", err)
	}
	if s, _ := q.Stats(ctx); s.DeadLetter != 4 {
		t.Fatalf("after a refused redrive %d dead letters, want 4", s.DeadLetter)
	}
	for _, bad := range [][]string{{"jobs", "redrive"}, {"jobs", "redrive", "--all", crashed}, {"jobs", "redrive", "../x"}, {"jobs", "dead-letters", "--max", "0"}} {
		if _, err := run(bad...); !errors.Is(err, docsvc.ErrUsage) {
			t.Errorf("docsvc %s = %v, want a usage error", strings.Join(bad, " "), err)
		}
	}

	// Redrive one by document ID: its document is queued again, with no
	// attempts counted, and its job is the next the worker receives.
	if out, err := run("jobs", "redrive", crashed); err != nil || !strings.Contains(out, "1 job(s) back on the queue") {
		t.Fatalf("redrive %s = %q, %v", crashed, out, err)
	}
	d, err := store.Get(ctx, crashed)
	if err != nil || d.Status != document.Queued || d.Attempts != 0 || d.Error != "" {
		t.Fatalf("after redrive the document is %+v (%v); want queued, 0 attempts, no error", d, err)
	}
	msgs, err := q.Receive(ctx, 10, time.Minute, time.Second)
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != job(crashed) || msgs[0].ReceiveCount != 1 {
		t.Fatalf("after redrive received %+v, %v; want the job of %s on its first delivery", msgs, err, crashed)
	}

	// The rest, by message ID and with --all.
	if _, err := run("jobs", "redrive", malformedID); err != nil {
		t.Fatalf("redrive by message ID: %v", err)
	}
	out, err = run("jobs", "redrive", "--all", "--output", "json")
	if err != nil || strings.Count(out, `"message_id"`) != 2 {
		t.Fatalf("redrive --all = %s, %v; want the 2 left", out, err)
	}
	if d, _ := store.Get(ctx, provider); d.Status != document.Queued {
		t.Errorf("after redrive --all %s is %s, want queued", provider, d.Status)
	}
	if s, err := q.Stats(ctx); err != nil || s.DeadLetter != 0 || s.Visible != 3 {
		t.Errorf("after redriving everything: %+v, %v; want 0 dead letters and the 3 jobs visible", s, err)
	}
	if out, err := run("jobs", "dead-letters"); err != nil || !strings.Contains(out, "no dead-lettered jobs") {
		t.Errorf("dead-letters when empty = %q, %v", out, err)
	}
}

package worker_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherhq/tether/internal/analyze"
	"github.com/tetherhq/tether/internal/blob"
	"github.com/tetherhq/tether/internal/document"
	"github.com/tetherhq/tether/internal/extract"
	"github.com/tetherhq/tether/internal/queue"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
	"github.com/tetherhq/tether/internal/testtime"
	"github.com/tetherhq/tether/internal/worker"
)

// owner is the principal the tests upload as.
const owner = "token:worker-test"

type bundle struct {
	store   *document.Store
	uploads *document.Uploads
	queue   *queue.DB
	extends *countExtends // the worker's view of queue
	worker  *worker.Worker
}

// countExtends counts the visibility extensions that succeed.
type countExtends struct {
	queue.Queue
	n atomic.Int64
}

func (q *countExtends) Extend(ctx context.Context, handle string, d time.Duration) error {
	err := q.Queue.Extend(ctx, handle, d)
	if err == nil {
		q.n.Add(1)
	}
	return err
}

func setup(t *testing.T, a worker.Analyzer) *bundle { return setupClock(t, a, time.Now) }

// setupClock is setup with the queue on clock, which decides when an
// unextended job becomes visible again.
func setupClock(t *testing.T, a worker.Analyzer, clock func() time.Time) *bundle {
	t.Helper()
	db := sqldbtest.SQLite(t)
	blobs, err := blob.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	q := queue.NewDB(db, "jobs", queue.DBOptions{MaxReceives: 3, PollInterval: 20 * time.Millisecond, Clock: clock})
	counted := &countExtends{Queue: q}
	store := document.NewStore(db, time.Now)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &bundle{
		store: store, queue: q, extends: counted,
		uploads: &document.Uploads{Store: store, Blobs: blobs, Queue: q, MaxBytes: 1 << 20, TempDir: t.TempDir(), Log: log},
		worker: &worker.Worker{
			Store: store, Blobs: blobs, Queue: counted, Analyzer: a, Limits: extract.DefaultLimits(),
			Concurrency: 2, Visibility: 2 * time.Second, MaxReceives: 3,
			Metrics: worker.NewMetrics(prometheus.NewRegistry()), Log: log,
		},
	}
}

func (b *bundle) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.worker.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func (b *bundle) upload(t *testing.T, name, content string) string {
	t.Helper()
	d, err := b.uploads.Upload(context.Background(), owner, name, strings.NewReader(content))
	if err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
	return d.ID
}

// wait returns the document once it is in a terminal state, failing the
// test if it is not within the limit.
func (b *bundle) wait(t *testing.T, id string, limit time.Duration) document.Document {
	t.Helper()
	var d document.Document
	testtime.Until(t, limit, "document "+id+" to finish", func() bool {
		var err error
		if d, err = b.store.Get(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		return d.Status.Terminal()
	})
	return d
}

// fakeOpenAI answers chat completions as the OpenAI API does, failing with
// 503 while down is set.
func fakeOpenAI(t *testing.T, down *atomic.Bool, calls *atomic.Int64) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"message":"overloaded","type":"server_error","code":null}}`)
			return
		}
		content, _ := json.Marshal(map[string]any{"summary": "A shipping notice.", "keywords": []string{"shipping", "pallets"}})
		json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-1", "object": "chat.completion", "created": time.Now().Unix(), "model": "gpt-test",
			"choices": []map[string]any{{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": string(content)}}},
			"usage": map[string]any{"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
		})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestProviderOutageWaitsInsteadOfFailing(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	var calls atomic.Int64
	down.Store(true)
	url := fakeOpenAI(t, &down, &calls)
	inner, err := analyze.New(context.Background(), analyze.Config{Provider: "openai", Model: "gpt-test", BaseURL: url, APIKey: "sk-test", Timeout: 2 * time.Second}, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	a := analyze.NewResilient(inner, analyze.ResilientOptions{MaxAttempts: 2, BaseDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond, FailureThreshold: 2, Cooldown: 300 * time.Millisecond})
	clock := testtime.NewClock(time.Now())
	b := setupClock(t, a, clock.Now)
	b.worker.Visibility = time.Second // the queue's least; extended every third of it
	b.run(t)
	id := b.upload(t, "notice.txt", "Shipping notice. The pallets for order 4471 left the depot.")

	// Take the queue's clock well past the visibility timeout times the
	// receive limit, less than a timeout at a time and each step only once
	// the worker has extended the job since the last: an outage must
	// neither fail the job nor dead-letter it.
	vis, step := b.worker.Visibility, b.worker.Visibility*3/4
	for moved := time.Duration(0); moved <= vis*time.Duration(b.worker.MaxReceives+1); moved += step {
		before := b.extends.n.Load()
		testtime.Until(t, 10*time.Second, "the worker to extend the job's visibility", func() bool { return b.extends.n.Load() > before })
		clock.Advance(step)
	}
	testtime.Until(t, 10*time.Second, "the worker to publish the provider's health as not ok", func() bool {
		hs, _ := b.store.Healths(context.Background())
		for _, h := range hs {
			if h.Component == "ai_provider" {
				return h.Status != "ok"
			}
		}
		return false
	})
	d, _ := b.store.Get(context.Background(), id)
	if d.Status.Terminal() {
		t.Fatalf("during the outage the document became %s (%s)", d.Status, d.Error)
	}
	if st, _ := b.queue.Stats(context.Background()); st.DeadLetter != 0 {
		t.Fatalf("outage dead-lettered %d jobs", st.DeadLetter)
	}
	if st := a.State(); st.Status == "ok" {
		t.Fatalf("provider state during outage = %+v, want degraded or down", st)
	}
	if calls.Load() == 0 {
		t.Fatal("the provider was never called")
	}

	down.Store(false)
	if d = b.wait(t, id, 20*time.Second); d.Status != document.Succeeded {
		t.Fatalf("after recovery: %s (%s)", d.Status, d.Error)
	}
	r, err := b.store.Result(context.Background(), owner, id)
	if err != nil || r.Summary != "A shipping notice." || r.Provider != "openai" {
		t.Fatalf("result = %+v, %v", r, err)
	}
}

func TestBadInputFailsAndOthersContinue(t *testing.T) {
	t.Parallel()
	b := setup(t, analyze.NewResilient(analyze.NewLocal(), analyze.ResilientOptions{}))
	b.run(t)
	truncated := "%PDF-1.7\n1 0 obj\n<</Type/Catalog/Pages 2 0 R>>\nendobj\n2 0 obj\n<</Type/Pages/Kids[3 0 R]/Cou"
	bad := b.upload(t, "broken.pdf", truncated)
	good := b.upload(t, "fine.txt", "The quarterly maintenance report for the northern pumping station is complete.")
	if d := b.wait(t, bad, 20*time.Second); d.Status != document.Failed || d.Error == "" {
		t.Fatalf("truncated PDF ended %s with error %q", d.Status, d.Error)
	} else if strings.Contains(d.Error, "Catalog") {
		t.Fatalf("failure reason quotes document content: %q", d.Error)
	}
	if d := b.wait(t, good, 20*time.Second); d.Status != document.Succeeded {
		t.Fatalf("good document ended %s (%s)", d.Status, d.Error)
	}
}

// sendFails is a queue whose Send fails, as when the api loses its queue
// between storing a document and sending its job.
type sendFails struct{ queue.Queue }

func (sendFails) Send(context.Context, []byte) error { return io.ErrClosedPipe }

func TestUnsentJobIsSentByTheOutbox(t *testing.T) {
	t.Parallel()
	b := setup(t, analyze.NewResilient(analyze.NewLocal(), analyze.ResilientOptions{}))
	b.uploads.Queue = sendFails{b.queue}
	id := b.upload(t, "late.txt", "The job for this document was never sent by the api.")
	if st, _ := b.queue.Stats(context.Background()); st.Visible != 0 {
		t.Fatalf("a job was sent although Send failed: %+v", st)
	}
	b.worker.OutboxAge = time.Millisecond
	b.run(t)
	if d := b.wait(t, id, 20*time.Second); d.Status != document.Succeeded {
		t.Fatalf("unsent job: document ended %s (%s)", d.Status, d.Error)
	}
}

// A worker with a job in hand asks ECS (through the agent endpoint named in
// ECS_AGENT_URI) to protect its task from scale-in, and lifts it after.
func TestScaleInProtectionWhileBusy(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var states []bool
	ecsAgent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ProtectionEnabled bool
			ExpiresInMinutes  int
		}
		if r.Method != http.MethodPut || r.URL.Path != "/task-protection/v1/state" || json.NewDecoder(r.Body).Decode(&body) != nil || body.ExpiresInMinutes < 1 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		states = append(states, body.ProtectionEnabled)
		mu.Unlock()
		io.WriteString(w, `{"protection":{"ProtectionEnabled":true}}`)
	}))
	defer ecsAgent.Close()
	b := setup(t, analyze.NewResilient(analyze.NewLocal(), analyze.ResilientOptions{}))
	b.worker.Protector = &worker.ECSProtector{AgentURI: ecsAgent.URL, Expiry: 10 * time.Minute}
	b.run(t)
	id := b.upload(t, "note.txt", "A short note about the quarterly maintenance of the pumping station.")
	if d := b.wait(t, id, 20*time.Second); d.Status != document.Succeeded {
		t.Fatalf("document ended %s", d.Status)
	}
	testtime.Until(t, 5*time.Second, "protection calls on then off", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(states) >= 2 && states[0] && !states[len(states)-1]
	})
}

// A document over an extraction limit fails at once, with a reason that
// names the limit and the setting to raise. The time limit is injected
// already spent, so the test does not depend on how fast extraction runs.
func TestDocumentOverALimitFailsWithTheSetting(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		limit func(*extract.Limits)
		want  string
	}{
		{"time", func(l *extract.Limits) { l.MaxDuration = time.Nanosecond }, "time limit of 1ns (the operator can raise DOCSVC_EXTRACT_TIMEOUT)"},
		{"text", func(l *extract.Limits) { l.MaxTextBytes = 20 }, "limit 20 (the operator can raise DOCSVC_EXTRACT_MAX_TEXT)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, analyze.NewResilient(analyze.NewLocal(), analyze.ResilientOptions{}))
			tt.limit(&b.worker.Limits)
			b.run(t)
			id := b.upload(t, "report.txt", "The quarterly maintenance report for the northern pumping station.")
			d := b.wait(t, id, 20*time.Second)
			if d.Status != document.Failed || !strings.Contains(d.Error, "too large to process") || !strings.Contains(d.Error, tt.want) {
				t.Fatalf("ended %s with %q; want failed, naming %q", d.Status, d.Error, tt.want)
			}
			if d.Attempts != 1 {
				t.Errorf("attempted %d times; a limit failure is final", d.Attempts)
			}
		})
	}
}

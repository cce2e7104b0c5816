// Package worker takes document jobs off the queue and runs them: read the
// stored bytes, extract text, analyze it with the customer's AI provider, and
// store the result. It holds each job's message invisible while it works, so a
// worker killed mid-job loses nothing: the message becomes visible again and
// another delivery finishes the job.
package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tetherhq/tether/internal/analyze"
	"github.com/tetherhq/tether/internal/blob"
	"github.com/tetherhq/tether/internal/document"
	"github.com/tetherhq/tether/internal/extract"
	"github.com/tetherhq/tether/internal/queue"
)

// Analyzer is the worker's view of the AI provider: the resilient wrapper,
// whose breaker tells the worker when to stop taking jobs.
type Analyzer interface {
	analyze.Analyzer
	WaitUntilAvailable(ctx context.Context) error
	State() analyze.ProviderState
}

// Worker runs jobs.
type Worker struct {
	Store       *document.Store
	Blobs       blob.Store
	Queue       queue.Queue
	Analyzer    Analyzer
	Limits      extract.Limits
	Concurrency int
	Visibility  time.Duration // how long a received job stays invisible; extended every third of it
	MaxReceives int           // the queue's dead-letter threshold; the last delivery fails the job for good
	OutboxAge   time.Duration // a queued document whose job was never sent is sent after this; default 30s
	Metrics     *Metrics
	Log         *slog.Logger
	Protector   Protector        // optional: scale-in protection while jobs run (ECS)
	Now         func() time.Time // the clock for durations and protection renewal; default time.Now

	mu          sync.Mutex
	busy        int       // jobs in hand
	protectedAt time.Time // when protection was last set on; zero when off
}

// Run processes jobs until ctx is done, then waits for the jobs in hand to
// reach a safe point (each either finished or left for redelivery).
func (w *Worker) Run(ctx context.Context) error {
	if w.Now == nil {
		w.Now = time.Now
	}
	go func() {
		start := w.Now()
		if err := extract.Warm(); err != nil {
			w.Log.Error("the PDF engine failed to start; PDF jobs will be retried", "err", err)
			return
		}
		w.Log.Info("the PDF engine is ready", "took", w.Now().Sub(start).Round(time.Millisecond).String())
	}()
	var wg sync.WaitGroup
	for i := 0; i < max(w.Concurrency, 1); i++ {
		wg.Add(1)
		go func() { defer wg.Done(); w.loop(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); w.housekeeping(ctx) }()
	wg.Wait()
	return nil
}

func (w *Worker) loop(ctx context.Context) {
	for ctx.Err() == nil {
		// Taking a job while the provider is down would only burn a receive
		// count towards the dead-letter queue; wait for the breaker instead.
		if err := w.Analyzer.WaitUntilAvailable(ctx); err != nil {
			return
		}
		msgs, err := w.Queue.Receive(ctx, 1, w.Visibility, 10*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				w.Log.Error("receive jobs", "err", err)
				sleep(ctx, 2*time.Second)
			}
			continue
		}
		for _, m := range msgs {
			w.handle(ctx, m)
		}
	}
}

// handle runs one delivery. Whatever happens, it either deletes the message
// (the job reached a terminal state) or leaves it to become visible again.
func (w *Worker) handle(ctx context.Context, m queue.Message) {
	var job document.Job
	if err := json.Unmarshal(m.Body, &job); err != nil || !document.ValidID(job.DocumentID) {
		w.Log.Error("dropping a malformed job message", "message_id", m.ID)
		w.ack(m)
		return
	}
	log := w.Log.With("document_id", job.DocumentID, "receive_count", m.ReceiveCount)

	// Keep the message invisible while the job runs.
	jobCtx, stop := context.WithCancel(ctx)
	defer stop()
	go w.keepInvisible(jobCtx, m, job.DocumentID, log)

	w.jobStarted(ctx)
	defer w.jobEnded()
	start := w.Now()
	outcome, err := w.run(jobCtx, job.DocumentID, m.ReceiveCount, log)
	switch {
	case ctx.Err() != nil:
		log.Info("stopping mid-job; the job will be redelivered")
		return
	case err != nil:
		log.Error("job interrupted; it will be redelivered", "err", err)
		return
	}
	w.Metrics.observe(outcome, w.Now().Sub(start))
	w.ack(m)
}

func (w *Worker) ack(m queue.Message) {
	// Acknowledge even while shutting down: the work is done and durable.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Queue.Delete(ctx, m.ReceiptHandle); err != nil {
		w.Log.Warn("delete job message", "message_id", m.ID, "err", err)
	}
}

func (w *Worker) keepInvisible(ctx context.Context, m queue.Message, id string, log *slog.Logger) {
	t := time.NewTicker(w.Visibility / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := w.Queue.Extend(ctx, m.ReceiptHandle, w.Visibility); err != nil && ctx.Err() == nil {
				log.Warn("extend job visibility", "err", err)
			}
			if err := w.Store.Touch(ctx, id); err != nil && ctx.Err() == nil {
				log.Warn("touch document", "err", err)
			}
		}
	}
}

// run does the job. A nil error means the document reached a terminal state
// (outcome says which); an error means the job must be retried.
func (w *Worker) run(ctx context.Context, id string, receiveCount int, log *slog.Logger) (outcome string, err error) {
	d, err := w.Store.Start(ctx, id)
	if errors.Is(err, document.ErrNotFound) {
		log.Info("document was deleted; dropping its job")
		return "deleted", nil
	}
	if err != nil {
		return "", err
	}
	if d.Status.Terminal() {
		log.Info("job already done; dropping the redelivery")
		return "duplicate", nil
	}

	res, failure, err := w.process(ctx, d, log)
	if err != nil {
		if receiveCount < w.MaxReceives || ctx.Err() != nil {
			return "", err
		}
		// This was the last delivery the queue allows: fail the document
		// rather than leave it processing forever in the dead-letter queue.
		failure = fmt.Sprintf("gave up after %d attempts: %s", receiveCount, errorClass(err))
	}
	if failure != "" {
		log.Warn("document failed", "reason", failure)
		return "failed", w.Store.Fail(ctx, id, failure)
	}
	log.Info("document succeeded", "pages", res.Pages, "text_bytes", len(res.Text), "keywords", len(res.Keywords))
	return "succeeded", w.Store.Succeed(ctx, res)
}

// process extracts and analyzes. failure is a reason for a permanent failure
// (bad input); err is a transient problem to retry.
func (w *Worker) process(ctx context.Context, d document.Document, log *slog.Logger) (res document.Result, failure string, err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("panic while processing; failing the document", "panic", fmt.Sprintf("%T", p))
			failure, err = "internal error while processing this document", nil
		}
	}()
	rc, err := document.Open(ctx, w.Blobs, d)
	if err != nil {
		return res, "", fmt.Errorf("open stored bytes: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(rc, w.Limits.MaxInputBytes+1))
	rc.Close()
	if err != nil {
		return res, "", fmt.Errorf("read stored bytes: %w", err)
	}
	format, _, err := extract.Detect(data[:min(len(data), 8192)], d.Filename)
	if err != nil {
		return res, reason(err), nil
	}
	ex, err := extract.Extract(ctx, format, bytes.NewReader(data), int64(len(data)), w.Limits)
	if err != nil {
		if !badInput(err) {
			// Cancelled, or the extraction engine itself failed: not the
			// document's fault, so the job is retried.
			return res, "", fmt.Errorf("extract: %w", err)
		}
		return res, reason(err), nil
	}
	if len(bytes.TrimSpace([]byte(ex.Text))) == 0 {
		return res, noTextReason(format, ex), nil
	}
	a, err := w.analyze(ctx, d.ID, ex.Text, log)
	if err != nil {
		if errors.Is(err, analyze.ErrRejected) {
			return res, "the AI provider rejected this document", nil
		}
		return res, "", err
	}
	return document.Result{
		DocumentID: d.ID, Text: ex.Text, Summary: a.Summary, Keywords: a.Keywords,
		Pages: ex.Pages, Provider: a.Provider, Model: a.Model,
	}, "", nil
}

// analyze calls the provider. During an outage the job waits, holding its
// message invisible, instead of failing or being dead-lettered for it.
func (w *Worker) analyze(ctx context.Context, id, text string, log *slog.Logger) (analyze.Analysis, error) {
	waiting := false
	for {
		a, err := w.Analyzer.Analyze(ctx, text)
		if err == nil || errors.Is(err, analyze.ErrRejected) || ctx.Err() != nil {
			return a, err
		}
		if !waiting {
			log.Warn("AI provider unavailable; the job waits for it", "class", w.Analyzer.State().LastErrorClass)
			_ = w.Store.Requeue(ctx, id, "waiting for the AI provider")
			waiting = true
		}
		if err := w.Analyzer.WaitUntilAvailable(ctx); err != nil {
			return a, err
		}
		sleep(ctx, time.Second)
		if err := w.Store.Resume(ctx, id); err != nil {
			return a, err
		}
	}
}

// housekeeping sends jobs the api stored but could not send, and publishes
// the provider's health for the api's /readyz.
func (w *Worker) housekeeping(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		w.publishHealth(ctx)
		age := w.OutboxAge
		if age == 0 {
			age = 30 * time.Second
		}
		ids, err := w.Store.Unenqueued(ctx, age, 100)
		if err != nil && ctx.Err() == nil {
			w.Log.Warn("outbox sweep", "err", err)
		}
		for _, id := range ids {
			if err := document.Enqueue(ctx, w.Store, w.Queue, id); err != nil {
				w.Log.Warn("outbox send", "document_id", id, "err", err)
				break
			}
			w.Log.Info("sent a job the api had not sent", "document_id", id)
		}
		w.failAbandoned(ctx)
		w.renewProtection(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// failAbandoned fails documents whose worker died on their last allowed
// delivery: the queue dead-lettered the message, so without this they would
// show "processing" forever.
func (w *Worker) failAbandoned(ctx context.Context) {
	ids, err := w.Store.Abandoned(ctx, w.MaxReceives, 3*w.Visibility, 100)
	if err != nil {
		if ctx.Err() == nil {
			w.Log.Warn("abandoned sweep", "err", err)
		}
		return
	}
	for _, id := range ids {
		reason := fmt.Sprintf("gave up after %d attempts: %s (the worker was restarted or crashed on this document)", w.MaxReceives, gaveUpWorkerStopped)
		if err := w.Store.Fail(ctx, id, reason); err != nil {
			w.Log.Warn("fail abandoned document", "document_id", id, "err", err)
			continue
		}
		w.Log.Warn("document abandoned on its last attempt; marked failed", "document_id", id)
	}
}

func (w *Worker) publishHealth(ctx context.Context) {
	st := w.Analyzer.State()
	w.Metrics.setProvider(st)
	if err := w.Store.SetHealth(ctx, "ai_provider", st.Status, st.Provider+" "+st.LastErrorClass); err != nil && ctx.Err() == nil {
		w.Log.Warn("publish provider health", "err", err)
	}
	if err := w.Store.SetHealth(ctx, "worker", "ok", ""); err != nil && ctx.Err() == nil {
		w.Log.Warn("publish worker health", "err", err)
	}
	if s, err := w.Queue.Stats(ctx); err == nil {
		w.Metrics.setQueue(s)
	}
}

// badInput reports whether an extraction error is the document's fault.
func badInput(err error) bool {
	return errors.Is(err, extract.ErrMalformed) || errors.Is(err, extract.ErrEncrypted) ||
		errors.Is(err, extract.ErrTooLarge) || errors.Is(err, extract.ErrUnsupported)
}

// reason turns an extraction error into the message a reader sees. The
// extract package's errors name the problem, never the content.
func reason(err error) string {
	switch {
	case errors.Is(err, extract.ErrEncrypted):
		return "the document is encrypted; upload an unencrypted copy"
	case errors.Is(err, extract.ErrTooLarge):
		r := "the document is too large to process: " + err.Error()
		if le, ok := errors.AsType[*extract.LimitError](err); ok && limitSettings[le.Limit] != "" {
			r += " (the operator can raise " + limitSettings[le.Limit] + ")"
		}
		return r
	case errors.Is(err, extract.ErrUnsupported):
		return "unsupported document type; supported: " + extract.SupportedTypes()
	default:
		return "the document could not be read: " + err.Error()
	}
}

// limitSettings names the docsvc variable behind each extraction limit, so
// that a failed document tells the operator what to change.
var limitSettings = map[extract.Limit]string{
	extract.LimitInput:  "DOCSVC_MAX_UPLOAD_BYTES",
	extract.LimitText:   "DOCSVC_EXTRACT_MAX_TEXT",
	extract.LimitPages:  "DOCSVC_EXTRACT_MAX_PAGES",
	extract.LimitMemory: "DOCSVC_EXTRACT_MAX_MEMORY",
	extract.LimitTime:   "DOCSVC_EXTRACT_TIMEOUT",
}

func errorClass(err error) string {
	switch {
	case errors.Is(err, analyze.ErrUnavailable), errors.Is(err, analyze.ErrAuth):
		return gaveUpAIProvider
	case errors.Is(err, blob.ErrNotFound):
		return gaveUpBlobMissing
	default:
		return gaveUpInternal
	}
}

// What the worker records after "gave up after N attempts: " when it fails
// a document on its last delivery.
const (
	gaveUpAIProvider    = "AI provider unavailable"
	gaveUpBlobMissing   = "stored bytes missing"
	gaveUpInternal      = "internal error"
	gaveUpWorkerStopped = "processing stopped each time"
)

// The failure classes FailureClass returns: fixed codes, safe to show and
// to count anywhere, unlike a document's recorded reason, which is written
// for its readers.
const (
	ClassAIProvider    = "ai_provider_unavailable" // the provider failed or refused every attempt
	ClassBlobMissing   = "stored_bytes_missing"    // the document's stored bytes are gone
	ClassInternal      = "internal_error"          // another error on every attempt
	ClassWorkerStopped = "worker_stopped"          // the worker was restarted or crashed during every attempt
	ClassUnreadable    = "document_unreadable"     // the document itself could not be processed (bad input)
)

// FailureClass maps the reason the worker recorded for a failed document
// to its failure class.
func FailureClass(reason string) string {
	rest, ok := strings.CutPrefix(reason, "gave up after ")
	if !ok {
		return ClassUnreadable
	}
	_, rest, _ = strings.Cut(rest, ": ")
	for text, class := range map[string]string{
		gaveUpAIProvider: ClassAIProvider, gaveUpBlobMissing: ClassBlobMissing,
		gaveUpInternal: ClassInternal, gaveUpWorkerStopped: ClassWorkerStopped,
	} {
		if strings.HasPrefix(rest, text) {
			return class
		}
	}
	return ClassInternal
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// jobStarted protects the task from scale-in when its first job starts.
func (w *Worker) jobStarted(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.busy++
	if w.busy == 1 && w.Protector != nil {
		w.setProtection(ctx, true)
	}
}

// jobEnded lifts the protection when the last job in hand ends.
func (w *Worker) jobEnded() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.busy--
	if w.busy == 0 && w.Protector != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		w.setProtection(ctx, false)
	}
}

// renewProtection keeps a busy task protected past the protection's expiry.
func (w *Worker) renewProtection(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.busy > 0 && w.Protector != nil && w.Now().Sub(w.protectedAt) > time.Minute {
		w.setProtection(ctx, true)
	}
}

// setProtection is called with w.mu held. A failure is logged, not fatal:
// without protection a scale-in may interrupt a job, which is redelivered.
func (w *Worker) setProtection(ctx context.Context, on bool) {
	if err := w.Protector.Protect(ctx, on); err != nil {
		w.Log.Warn("scale-in protection", "on", on, "err", err)
		return
	}
	w.protectedAt = time.Time{}
	if on {
		w.protectedAt = w.Now()
	}
}

// noTextReason says why a document that extracted cleanly had no text.
func noTextReason(f extract.Format, ex extract.Result) string {
	switch {
	case f == extract.PDF:
		return "no text found in this document (is it a scanned image without a text layer?)"
	case ex.Graphics:
		return "no text found in this document: it shows only pictures (images or SVG graphics), and text inside pictures is not extracted"
	}
	return "no text found in this document: it is empty, or holds only markup or pictures"
}

package docsvc

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/config"
	"github.com/tetherhq/tether/internal/deadletter"
	"github.com/tetherhq/tether/internal/document"
	"github.com/tetherhq/tether/internal/queue"
	"github.com/tetherhq/tether/internal/sqldb"
	"github.com/tetherhq/tether/internal/worker"
)

const (
	helpJobs = `usage:
  docsvc jobs dead-letters [--max N] [--output text|json]
  docsvc jobs redrive (--all | ID...) [--output text|json]

A job the queue delivered DOCSVC_QUEUE_MAX_RECEIVES times without the worker
finishing it is dead-lettered: the jobs table's dead-letter state locally,
the dead-letter queue (DOCSVC_DLQ_URL) on SQS. 'dead-letters' lists them;
'redrive' sends them back to the queue for another try, after the cause is
fixed. Both show message IDs, document IDs and a fixed reason code, never a
document's content, filename or recorded error text.
` + reasonHelp
	helpJobsDeadLetters = `usage: docsvc jobs dead-letters [--max N] [--output text|json]

Lists up to N dead-lettered jobs, oldest first: the queue message's ID, the
document's ID, the reason code, how many times the job was delivered and when
it was first sent. Nothing is changed (on SQS each dead letter is received and
at once released, which raises its receive count on the dead-letter queue).
` + reasonHelp
	helpJobsRedrive = `usage: docsvc jobs redrive (--all | ID...) [--output text|json]

Sends dead-lettered jobs back to the queue: every one with --all, or those
named by ID (a document ID or a message ID, as 'docsvc jobs dead-letters'
shows them). The document goes back to queued with no attempts counted, so
the worker processes it again; a succeeded document is left as it is (its
job is then dropped as a duplicate). An ID that names no dead letter is
refused before anything changes. On SQS a redriven message gets a new ID.
`
	reasonHelp = `
Reasons (the document's state, as the worker recorded it):
  worker_stopped           the worker was restarted or crashed during every attempt
  ai_provider_unavailable  the AI provider failed or refused every attempt
  stored_bytes_missing     the document's stored bytes are gone
  internal_error           another error on every attempt (see the worker's log)
  document_unreadable      the document failed for a reason of its own
  not_started              the document is still queued: its attempts never started
  already_succeeded        the document succeeded after all; redriving is harmless
  document_deleted         the document was deleted; redriving is harmless
  malformed_job            the message is not a job this release reads
`
	// Reasons that are not a worker failure class.
	reasonNotStarted = "not_started"
	reasonSucceeded  = "already_succeeded"
	reasonDeleted    = "document_deleted"
	reasonMalformed  = "malformed_job"

	defaultDeadLetters = 100
	maxDeadLetters     = 1000
)

// jobID is a document ID or a queue message ID (hex on the jobs table, a
// UUID on SQS).
var jobID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

func parseJobs(args []string, inv *invocation, stdout io.Writer) (done bool, err error) {
	if len(args) < 2 {
		return false, usageErr("jobs", "want dead-letters or redrive")
	}
	if isHelp(args[1]) {
		fmt.Fprint(stdout, helpJobs)
		return true, nil
	}
	inv.cmd = "jobs " + args[1]
	fs := flag.NewFlagSet(inv.cmd, flag.ContinueOnError)
	fs.StringVar(&inv.output, "output", "text", "text or json")
	switch args[1] {
	case "dead-letters":
		fs.IntVar(&inv.max, "max", defaultDeadLetters, fmt.Sprintf("list at most N dead letters (1 to %d)", maxDeadLetters))
		if done, err := parseFlags(fs, args[2:], 0, helpJobsDeadLetters, stdout); done || err != nil {
			return done, err
		}
		if inv.max < 1 || inv.max > maxDeadLetters {
			return false, usageErr(inv.cmd, "--max %d: want 1 to %d", inv.max, maxDeadLetters)
		}
	case "redrive":
		fs.BoolVar(&inv.all, "all", false, "redrive every dead-lettered job")
		if done, err := parseFlags(fs, args[2:], maxDeadLetters, helpJobsRedrive, stdout); done || err != nil {
			return done, err
		}
		inv.ids = fs.Args()
		if inv.all == (len(inv.ids) > 0) {
			return false, usageErr(inv.cmd, "give --all or the IDs to redrive (from 'docsvc jobs dead-letters'), not both or neither")
		}
		for _, id := range inv.ids {
			if !jobID.MatchString(id) {
				return false, usageErr(inv.cmd, "%q is not a document or message ID: want the IDs 'docsvc jobs dead-letters' shows", clip(id))
			}
		}
	default:
		return false, usageErr("jobs", "unknown subcommand %q (want dead-letters or redrive)", args[1])
	}
	return false, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func jobsCmd(ctx context.Context, cfg *config.Config, db *sqldb.DB, inv invocation, stdout io.Writer, now func() time.Time) error {
	awsCfg, err := awsConfig(ctx, cfg)
	if err != nil {
		return err
	}
	q, err := queue.Open(ctx, cfg.QueueURL, db, queue.Options{AWS: awsCfg, DeadLetterURL: cfg.DeadLetterQueueURL, MaxReceives: cfg.MaxReceives, Endpoint: cfg.SQSEndpoint, Clock: now})
	if err != nil {
		return err
	}
	r, ok := q.(queue.Redriver)
	if !ok {
		return fmt.Errorf("docsvc %s: the queue %s cannot list its dead letters", inv.cmd, cfg.QueueURL)
	}
	store := document.NewStore(db, now)
	if inv.cmd == "jobs dead-letters" {
		letters, err := listDeadLetters(ctx, r, store, inv.max)
		if err != nil {
			return err
		}
		return deadletter.WriteList(stdout, letters, inv.output)
	}
	return redrive(ctx, r, store, inv, stdout)
}

// listDeadLetters reads up to max dead letters and gives each its reason.
func listDeadLetters(ctx context.Context, r queue.Redriver, store *document.Store, max int) ([]deadletter.Letter, error) {
	msgs, err := r.DeadLetters(ctx, max)
	if err != nil {
		return nil, err
	}
	letters := make([]deadletter.Letter, 0, len(msgs))
	for _, m := range msgs {
		l := deadletter.Letter{MessageID: m.ID, ReceiveCount: m.ReceiveCount, SentAt: m.SentAt.UTC()}
		var job document.Job
		if err := json.Unmarshal(m.Body, &job); err != nil || !document.ValidID(job.DocumentID) {
			l.Reason = reasonMalformed
			letters = append(letters, l)
			continue
		}
		l.DocumentID = job.DocumentID
		d, err := store.Get(ctx, job.DocumentID)
		switch {
		case errors.Is(err, document.ErrNotFound):
			l.Reason = reasonDeleted
		case err != nil:
			return nil, err
		case d.Status == document.Succeeded:
			l.Reason = reasonSucceeded
		case d.Status == document.Failed:
			l.Reason = worker.FailureClass(d.Error)
		case d.Status == document.Processing:
			// The worker died on the last delivery and the abandoned sweep
			// has not marked the document yet.
			l.Reason = worker.ClassWorkerStopped
		default:
			l.Reason = reasonNotStarted
		}
		letters = append(letters, l)
	}
	return letters, nil
}

// redrive sends the chosen dead letters back. Every ID is matched before
// anything changes; then each document is put back to queued before its
// message is moved, so the worker never receives the job while the
// document still reads failed (it would drop the job as done).
func redrive(ctx context.Context, r queue.Redriver, store *document.Store, inv invocation, stdout io.Writer) error {
	letters, err := listDeadLetters(ctx, r, store, maxDeadLetters)
	if err != nil {
		return err
	}
	chosen := letters
	if !inv.all {
		chosen = nil
		taken, asked := map[string]bool{}, map[string]bool{}
		var unknown []string
		for _, id := range inv.ids {
			if asked[id] {
				continue
			}
			asked[id] = true
			found := false
			for _, l := range letters {
				if l.MessageID != id && l.DocumentID != id {
					continue
				}
				found = true
				if !taken[l.MessageID] {
					chosen, taken[l.MessageID] = append(chosen, l), true
				}
			}
			if !found {
				unknown = append(unknown, id)
			}
		}
		if len(unknown) > 0 {
			return fmt.Errorf("docsvc jobs redrive: %s: no dead-lettered job has this document or message ID ('docsvc jobs dead-letters' lists them); nothing was redriven", strings.Join(unknown, ", "))
		}
	}
	done := make([]deadletter.Letter, 0, len(chosen))
	for _, l := range chosen {
		if l.DocumentID != "" {
			if _, err := store.Retry(ctx, l.DocumentID); err != nil {
				return redriveError(stdout, done, l, err, inv.output)
			}
		}
		if err := r.Redrive(ctx, l.MessageID); err != nil {
			return redriveError(stdout, done, l, err, inv.output)
		}
		done = append(done, l)
	}
	return deadletter.WriteRedriven(stdout, done, inv.output)
}

// redriveError reports the jobs already redriven, then the one that failed.
func redriveError(w io.Writer, done []deadletter.Letter, failed deadletter.Letter, err error, output string) error {
	if werr := deadletter.WriteRedriven(w, done, output); werr != nil {
		err = errors.Join(err, werr)
	}
	return fmt.Errorf("docsvc jobs redrive: %s: %w; the jobs listed before it were redriven; run the command again for the rest", failed.MessageID, err)
}

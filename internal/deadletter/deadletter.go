// Package deadletter is how a dead-lettered document job is shown: the
// fields docsvc jobs prints (as text, or as JSON that tetherctl reads back
// from a one-off task's log) and nothing more. It carries IDs, a fixed
// reason code, a count and a time: never a job's body, a document's
// content, its filename or its recorded error text.
package deadletter

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Letter is one dead-lettered job.
type Letter struct {
	MessageID    string    `json:"message_id"`
	DocumentID   string    `json:"document_id,omitempty"`
	Reason       string    `json:"reason"`
	ReceiveCount int       `json:"receive_count"`
	SentAt       time.Time `json:"sent_at"`
}

// List is docsvc jobs dead-letters' JSON.
type List struct {
	DeadLetters []Letter `json:"dead_letters"`
}

// Redriven is docsvc jobs redrive's JSON.
type Redriven struct {
	Redriven []Letter `json:"redriven"`
}

// WriteList prints letters as a table, or as List's JSON.
func WriteList(w io.Writer, letters []Letter, output string) error {
	if letters == nil {
		letters = []Letter{}
	}
	if output == "json" {
		return json.NewEncoder(w).Encode(List{letters})
	}
	if len(letters) == 0 {
		fmt.Fprintln(w, "no dead-lettered jobs")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MESSAGE ID\tDOCUMENT ID\tREASON\tDELIVERIES\tFIRST SENT")
	for _, l := range letters {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", l.MessageID, orDash(l.DocumentID), l.Reason, l.ReceiveCount, l.SentAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// WriteRedriven prints the jobs sent back, or Redriven's JSON.
func WriteRedriven(w io.Writer, done []Letter, output string) error {
	if done == nil {
		done = []Letter{}
	}
	if output == "json" {
		return json.NewEncoder(w).Encode(Redriven{done})
	}
	for _, l := range done {
		fmt.Fprintf(w, "redrove %s %s (%s)\n", l.MessageID, orDash(l.DocumentID), l.Reason)
	}
	fmt.Fprintf(w, "%d job(s) back on the queue\n", len(done))
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Package collect reads the document service's health the only way the agent
// may: docsvc's unauthenticated internal GET /metrics/summary, one JSON
// object of statuses and counts. It has no access to documents, storage or
// queues, and keeps only the fields a heartbeat needs.
//
// The answer is untrusted: its size is bounded, statuses are allow-listed,
// counts must be whole and between 0 and 2^53, and errors never repeat it.
package collect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/tetherhq/tether/internal/wire"
)

// ErrMalformed is matched by every decoding failure.
var ErrMalformed = errors.New("collect: malformed docsvc summary")

// MaxSummary bounds the answer; docsvc's is a few hundred bytes.
const MaxSummary = 64 << 10

// maxChecks bounds how many named checks one answer may carry.
const maxChecks = 32

// Statuses docsvc reports for itself and each check.
var statuses = []string{"ok", "degraded", "down", "unknown"}

// Summary is docsvc's GET /metrics/summary. Unknown fields are ignored, so
// docsvc can add some without breaking older agents.
type Summary struct {
	Version       string            `json:"version"` // "" unless a wire version
	SchemaVersion int64             `json:"schema_version"`
	Status        string            `json:"status"`      // ok, degraded or down
	Checks        map[string]string `json:"checks"`      // status by name: database, blob, queue, worker, ai_provider
	AIProvider    string            `json:"ai_provider"` // its kind; "" unless wire knows it
	Queue         Queue             `json:"queue"`
	// Requests and ServerErrors (5xx) count what docsvc served since it
	// started; the agent turns them into a rate between scrapes.
	Requests     int64   `json:"requests"`
	ServerErrors int64   `json:"server_errors"`
	Totals       *Totals `json:"totals"` // nil when docsvc could not read them
}

// Queue is the job queue's counts.
type Queue struct {
	Visible          int64 `json:"visible"`
	InFlight         int64 `json:"in_flight"`
	DeadLetter       int64 `json:"dead_letter"`
	OldestAgeSeconds int64 `json:"oldest_age_seconds"`
}

// Totals are the stored documents by status, their bytes and their results'
// pages.
type Totals struct {
	Queued      int64 `json:"queued"`
	Processing  int64 `json:"processing"`
	Succeeded   int64 `json:"succeeded"`
	Failed      int64 `json:"failed"`
	StoredBytes int64 `json:"stored_bytes"`
	ResultPages int64 `json:"result_pages"`
}

// Objects is the number of stored documents.
func (t Totals) Objects() int64 { return t.Queued + t.Processing + t.Succeeded + t.Failed }

// Decode parses and checks a summary.
func Decode(data []byte) (Summary, error) {
	var s Summary
	if len(data) > MaxSummary {
		return Summary{}, fmt.Errorf("%w: over %d bytes", ErrMalformed, MaxSummary)
	}
	// JSON v2 also refuses duplicate keys, invalid UTF-8 and trailing data.
	if err := jsonv2.Unmarshal(data, &s); err != nil {
		return Summary{}, fmt.Errorf("%w: not the expected JSON object", ErrMalformed)
	}
	if !slices.Contains(statuses, s.Status) {
		return Summary{}, fmt.Errorf("%w: status must be one of %s", ErrMalformed, strings.Join(statuses, ", "))
	}
	if len(s.Checks) > maxChecks {
		return Summary{}, fmt.Errorf("%w: more than %d checks", ErrMalformed, maxChecks)
	}
	for _, st := range s.Checks {
		if !slices.Contains(statuses, st) {
			return Summary{}, fmt.Errorf("%w: a check's status is not one of %s", ErrMalformed, strings.Join(statuses, ", "))
		}
	}
	q, t := s.Queue, s.Totals
	if t == nil {
		t = &Totals{}
	}
	for _, n := range []int64{s.SchemaVersion, q.Visible, q.InFlight, q.DeadLetter, q.OldestAgeSeconds, s.Requests, s.ServerErrors,
		t.Queued, t.Processing, t.Succeeded, t.Failed, t.StoredBytes, t.ResultPages, t.Objects()} {
		if n < 0 || n > 1<<53 {
			return Summary{}, fmt.Errorf("%w: a count is not between 0 and 2^53", ErrMalformed)
		}
	}
	if !wire.ValidSemver(s.Version) {
		s.Version = ""
	}
	if !wire.KnownProviderKind(s.AIProvider) {
		s.AIProvider = ""
	}
	return s, nil
}

// Snapshot is one scrape of docsvc; Err says why Summary is missing
// (docsvc unreachable, or an answer that did not decode), which is reported
// as "down"/"unknown" health, never as a crash.
type Snapshot struct {
	At      time.Time
	Summary Summary
	Err     error
}

// Client scrapes one docsvc instance.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:9090
	HTTP    *http.Client
}

// Scrape fetches and decodes the summary; it never fails as a whole.
func (c *Client) Scrape(ctx context.Context, now time.Time) Snapshot {
	s, err := c.get(ctx)
	return Snapshot{At: now, Summary: s, Err: err}
}

func (c *Client) get(ctx context.Context) (Summary, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+"/metrics/summary", nil)
	if err != nil {
		return Summary{}, fmt.Errorf("collect: %w", err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return Summary{}, fmt.Errorf("collect: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Summary{}, fmt.Errorf("collect: docsvc answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxSummary+1))
	if err != nil {
		return Summary{}, fmt.Errorf("collect: %w", err)
	}
	s, err := Decode(body)
	if err != nil {
		return Summary{}, fmt.Errorf("collect: %w", err)
	}
	return s, nil
}

// Package collect reads the document service's health the only way the agent
// may: over docsvc's unauthenticated internal HTTP surface, GET /readyz and
// GET /metrics. It has no access to documents, storage or queues, and its
// parsers keep only the handful of figures a heartbeat needs, so nothing else
// docsvc might print can travel further.
//
// Both parsers treat their input as untrusted: sizes are bounded, statuses
// are allow-listed, numbers must be finite and non-negative, and errors name
// the line or field without repeating its content.
package collect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// ErrMalformed is matched by every parse failure.
var ErrMalformed = errors.New("collect: malformed docsvc answer")

// Size limits: a readyz answer is a few hundred bytes, a metrics page a few
// kilobytes; anything far larger is not docsvc.
const (
	MaxReadyz  = 64 << 10
	MaxMetrics = 4 << 20
)

// Snapshot is one scrape of docsvc. ReadyzErr or MetricsErr say why a half
// is missing (docsvc unreachable, or an answer that did not parse); a
// missing half is reported as "down"/"unknown" health, never as a crash.
type Snapshot struct {
	At         time.Time
	Readyz     Readyz
	ReadyzErr  error
	Metrics    Metrics
	MetricsErr error
}

// Client scrapes one docsvc instance.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:8080
	HTTP    *http.Client
}

// Scrape fetches and parses /readyz and /metrics. It never fails as a
// whole: each half's error is in the snapshot.
func (c *Client) Scrape(ctx context.Context, now time.Time) Snapshot {
	s := Snapshot{At: now}
	// /readyz answers 503 with a full body when a dependency is down; the
	// body is what matters, so any status with a parseable body counts.
	body, err := c.get(ctx, "/readyz", MaxReadyz, http.StatusOK, http.StatusServiceUnavailable)
	if err == nil {
		s.Readyz, err = ParseReadyz(body)
	}
	s.ReadyzErr = err
	body, err = c.get(ctx, "/metrics", MaxMetrics, http.StatusOK)
	if err == nil {
		s.Metrics, err = ParseMetrics(body)
	}
	s.MetricsErr = err
	return s
}

func (c *Client) get(ctx context.Context, path string, max int64, okCodes ...int) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+path, nil)
	if err != nil {
		return nil, fmt.Errorf("collect: get %s: %w", path, err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("collect: get %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("collect: get %s: %w", path, err)
	}
	for _, code := range okCodes {
		if resp.StatusCode == code {
			return body, nil
		}
	}
	return nil, fmt.Errorf("collect: get %s: status %d", path, resp.StatusCode)
}

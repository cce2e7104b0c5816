package collect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// Statuses docsvc reports for itself and each check.
var statuses = []string{"ok", "degraded", "down", "unknown"}

// Readyz is what the agent keeps of docsvc's GET /readyz answer.
type Readyz struct {
	Status string           // ok, degraded or down
	Checks map[string]Check // by name: database, blob, queue, ai_provider, worker, ...
	Queue  Queue
}

// Check is one dependency's state. Detail is docsvc's short class of
// failure ("timeout", "openai unreachable"); the agent reads only its first
// word, the AI provider's kind, and matches it against an allow-list.
type Check struct {
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// Queue is the job queue's counts.
type Queue struct {
	Visible          int64 `json:"visible"`
	InFlight         int64 `json:"in_flight"`
	DeadLetter       int64 `json:"dead_letter"`
	OldestAgeSeconds int64 `json:"oldest_age_seconds"`
}

// maxChecks bounds how many named checks one answer may carry.
const maxChecks = 32

// ParseReadyz parses a /readyz body. Unknown top-level fields are ignored so
// docsvc can add some without breaking older agents; the fields the agent
// uses must have the right types and allow-listed values.
func ParseReadyz(data []byte) (Readyz, error) {
	if len(data) > MaxReadyz {
		return Readyz{}, fmt.Errorf("collect: readyz: %w: over %d bytes", ErrMalformed, MaxReadyz)
	}
	var raw struct {
		Status *string           `json:"status"`
		Checks map[string]Check  `json:"checks"`
		Queue  map[string]number `json:"queue"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return Readyz{}, fmt.Errorf("collect: readyz: %w: not the expected JSON object", ErrMalformed)
	}
	if dec.More() {
		return Readyz{}, fmt.Errorf("collect: readyz: %w: data after the JSON value", ErrMalformed)
	}
	if raw.Status == nil || !slices.Contains(statuses, *raw.Status) {
		return Readyz{}, fmt.Errorf("collect: readyz: %w: status must be one of ok, degraded, down, unknown", ErrMalformed)
	}
	if len(raw.Checks) > maxChecks {
		return Readyz{}, fmt.Errorf("collect: readyz: %w: more than %d checks", ErrMalformed, maxChecks)
	}
	for name, c := range raw.Checks {
		if !slices.Contains(statuses, c.Status) {
			return Readyz{}, fmt.Errorf("collect: readyz: %w: check %s has an unknown status", ErrMalformed, safeName(name))
		}
	}
	r := Readyz{Status: *raw.Status, Checks: raw.Checks}
	for field, dst := range map[string]*int64{
		"visible": &r.Queue.Visible, "in_flight": &r.Queue.InFlight,
		"dead_letter": &r.Queue.DeadLetter, "oldest_age_seconds": &r.Queue.OldestAgeSeconds,
	} {
		if v, ok := raw.Queue[field]; ok {
			*dst = int64(v)
		}
	}
	return r, nil
}

// number is a JSON count: a finite, non-negative number below 2^53.
type number int64

func (n *number) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	if math.IsNaN(f) || f < 0 || f > 1<<53 {
		return fmt.Errorf("count out of range")
	}
	*n = number(f)
	return nil
}

// safeName returns a check name for an error message only if it looks like
// an identifier; otherwise it could be anything, so it is not repeated.
func safeName(s string) string {
	if len(s) == 0 || len(s) > 32 {
		return "(unnamed)"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r == '_') {
			return "(unnamed)"
		}
	}
	return s
}

package collect

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const goodSummary = `{"version":"1.4.2","schema_version":3,"status":"degraded",` +
	`"checks":{"database":"ok","blob":"ok","queue":"ok","ai_provider":"degraded","worker":"ok"},"ai_provider":"openai",` +
	`"queue":{"visible":7,"in_flight":2,"dead_letter":1,"oldest_age_seconds":42},"requests":105,"server_errors":10,` +
	`"totals":{"queued":1,"processing":0,"succeeded":40,"failed":3,"stored_bytes":1500000000,"result_pages":90},"later":{"x":1}}`

func TestDecode(t *testing.T) {
	t.Parallel()
	s, err := Decode([]byte(goodSummary))
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != "degraded" || s.Checks["ai_provider"] != "degraded" || s.AIProvider != "openai" || s.Queue != (Queue{7, 2, 1, 42}) ||
		s.Requests != 105 || s.ServerErrors != 10 || s.Version != "1.4.2" || s.SchemaVersion != 3 {
		t.Fatalf("got %+v", s)
	}
	if s.Totals == nil || s.Totals.Objects() != 44 || s.Totals.StoredBytes != 1_500_000_000 || s.Totals.ResultPages != 90 {
		t.Fatalf("totals %+v", s.Totals)
	}
	// A version or provider kind the wire cannot carry is dropped, not an error.
	s, err = Decode([]byte(`{"status":"ok","version":"dev build","ai_provider":"my own model"}`))
	if err != nil || s.Version != "" || s.AIProvider != "" || s.Totals != nil {
		t.Fatalf("unknown version and kind: %+v %v", s, err)
	}
	bad := []struct{ name, in string }{
		{"not json", `nope`},
		{"no status", `{"checks":{}}`},
		{"bad status", `{"status":"fine"}`},
		{"bad check status", `{"status":"ok","checks":{"db":"great"}}`},
		{"check as object", `{"status":"ok","checks":{"db":{"status":"ok"}}}`},
		{"negative count", `{"status":"ok","queue":{"visible":-1}}`},
		{"negative total", `{"status":"ok","totals":{"stored_bytes":-1}}`},
		{"huge count", `{"status":"ok","requests":1e300}`},
		{"fractional count", `{"status":"ok","requests":1.5}`},
		{"string count", `{"status":"ok","queue":{"visible":"7"}}`},
		{"sum over 2^53", `{"status":"ok","totals":{"queued":9007199254740992,"failed":1}}`},
		{"duplicate key", `{"status":"ok","status":"down"}`},
		{"trailing", `{"status":"ok"} {}`},
		{"too big", `{"status":"ok","x":"` + strings.Repeat("a", MaxSummary) + `"}`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode([]byte(tt.in)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestDecodeErrorsDoNotEchoInput(t *testing.T) {
	t.Parallel()
	const secret = "tt_SECRETVALUE123"
	for _, in := range []string{`{"status":"` + secret + `"}`, `{"status":"ok","checks":{"` + secret + `":"bad"}}`, `{"` + secret + `"`, `{"status":"ok","queue":{"visible":"` + secret + `"}}`} {
		if _, err := Decode([]byte(in)); err == nil || strings.Contains(err.Error(), secret) {
			t.Fatalf("error %v", err)
		}
	}
}

func TestScrape(t *testing.T) {
	t.Parallel()
	answer := goodSummary
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics/summary" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(answer))
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/", HTTP: srv.Client()}
	s := c.Scrape(context.Background(), time.Now())
	if s.Err != nil || s.Summary.Status != "degraded" || s.Summary.Version != "1.4.2" {
		t.Fatalf("scrape %+v", s)
	}
	answer = `{"status":"ok","checks":{"database":"sometimes"}}`
	if s = c.Scrape(context.Background(), time.Now()); !errors.Is(s.Err, ErrMalformed) {
		t.Fatalf("a malformed summary should be an error, got %+v", s)
	}
	c.BaseURL = srv.URL + "/elsewhere"
	if s = c.Scrape(context.Background(), time.Now()); s.Err == nil || !strings.Contains(s.Err.Error(), "404") {
		t.Fatalf("a 404 should be an error naming it, got %+v", s)
	}
	srv.Close()
	if s = c.Scrape(context.Background(), time.Now()); s.Err == nil {
		t.Fatalf("unreachable docsvc should give an error, got %+v", s)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(goodSummary))
	f.Add([]byte(`{"status":"ok"}`))
	f.Add([]byte(`{"status":"down","checks":{"x":"down"},"queue":{"visible":1e20}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not match ErrMalformed: %v", err)
			}
			return
		}
		q := s.Queue
		if q.Visible < 0 || q.InFlight < 0 || q.DeadLetter < 0 || q.OldestAgeSeconds < 0 || s.Requests < 0 || s.ServerErrors < 0 {
			t.Fatalf("negative count accepted: %+v", s)
		}
		if tt := s.Totals; tt != nil && (tt.Objects() < 0 || tt.StoredBytes < 0 || tt.ResultPages < 0) {
			t.Fatalf("negative total accepted: %+v", tt)
		}
	})
}

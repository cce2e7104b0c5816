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

const goodReadyz = `{"status":"degraded","checks":{"database":{"status":"ok"},"blob":{"status":"ok"},` +
	`"queue":{"status":"ok"},"ai_provider":{"status":"degraded","detail":"openai timeout"},"worker":{"status":"ok"}},` +
	`"queue":{"visible":7,"in_flight":2,"dead_letter":1,"oldest_age_seconds":42}}`

const goodMetrics = `# HELP docsvc_http_requests_total Requests.
# TYPE docsvc_http_requests_total counter
docsvc_http_requests_total{route="POST /v1/documents",code="201"} 90
docsvc_http_requests_total{code="503",route="GET /readyz"} 10
docsvc_http_requests_total{route="GET /x",code="404"} 5 1700000000000
docsvc_documents{status="succeeded"} 40
docsvc_documents{status="failed"} 3
docsvc_documents{status="queued"} 1
docsvc_documents{status="weird"} 1000
docsvc_stored_bytes 1.5e9
docsvc_schema_version 3
docsvc_build_info{version="1.4.2"} 1
go_gc_duration_seconds{quantile="0.5"} NaN
process_label_escape{a="x\"y\\z\n"} +Inf
`

func TestParseReadyz(t *testing.T) {
	t.Parallel()
	r, err := ParseReadyz([]byte(goodReadyz))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "degraded" || r.Checks["ai_provider"].Detail != "openai timeout" || r.Queue != (Queue{7, 2, 1, 42}) {
		t.Fatalf("got %+v", r)
	}
	bad := []struct{ name, in string }{
		{"not json", `nope`},
		{"no status", `{"checks":{}}`},
		{"bad status", `{"status":"fine"}`},
		{"bad check status", `{"status":"ok","checks":{"db":{"status":"great"}}}`},
		{"negative count", `{"status":"ok","queue":{"visible":-1}}`},
		{"huge count", `{"status":"ok","queue":{"visible":1e300}}`},
		{"string count", `{"status":"ok","queue":{"visible":"7"}}`},
		{"trailing", `{"status":"ok"} {}`},
		{"too big", `{"status":"ok","x":"` + strings.Repeat("a", MaxReadyz) + `"}`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseReadyz([]byte(tt.in)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	m, err := ParseMetrics([]byte(goodMetrics))
	if err != nil {
		t.Fatal(err)
	}
	if m.RequestsTotal != 105 || m.Requests5xx != 10 {
		t.Errorf("requests %v / 5xx %v", m.RequestsTotal, m.Requests5xx)
	}
	if m.Documents["succeeded"] != 40 || m.Documents["failed"] != 3 || m.Objects() != 44 {
		t.Errorf("documents %v", m.Documents)
	}
	if !m.HasStoredBytes || m.StoredBytes != 1_500_000_000 || m.SchemaVersion != 3 || m.Version != "1.4.2" {
		t.Errorf("got %+v", m)
	}
	bad := []struct{ name, in string }{
		{"no value", "docsvc_stored_bytes\n"},
		{"bad value", "docsvc_stored_bytes abc\n"},
		{"negative used family", "docsvc_stored_bytes -1\n"},
		{"inf used family", "docsvc_schema_version +Inf\n"},
		{"unterminated labels", `docsvc_documents{status="x` + "\n"},
		{"bad label syntax", `docsvc_documents{status=x} 1` + "\n"},
		{"repeated label", `a{x="1",x="2"} 1` + "\n"},
		{"bad escape", `a{x="\q"} 1` + "\n"},
		{"junk after value", "a 1 2 3\n"},
		{"name starts with digit", "1abc 1\n"},
		{"bad timestamp", "a 1 soon\n"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseMetrics([]byte(tt.in)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
	// Build info with a non-semver version is dropped, not an error.
	if m, err := ParseMetrics([]byte(`docsvc_build_info{version="dev build"} 1`)); err != nil || m.Version != "" {
		t.Fatalf("non-semver build info: %+v %v", m, err)
	}
}

func TestParseErrorsDoNotEchoInput(t *testing.T) {
	t.Parallel()
	const secret = "tt_SECRETVALUE123"
	for _, in := range []string{`{"status":"` + secret + `"}`, `{"status":"ok","checks":{"` + secret + `":{"status":"bad"}}}`} {
		if _, err := ParseReadyz([]byte(in)); err == nil || strings.Contains(err.Error(), secret) {
			t.Fatalf("readyz error %v", err)
		}
	}
	for _, in := range []string{secret + "{", `a{` + secret + `="x} 1`, "a " + secret} {
		if _, err := ParseMetrics([]byte(in)); err == nil || strings.Contains(err.Error(), secret) {
			t.Fatalf("metrics error %v", err)
		}
	}
}

func TestScrape(t *testing.T) {
	t.Parallel()
	down := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			if down {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"status":"down","checks":{"database":{"status":"down","detail":"timeout"}},"queue":{}}`))
				return
			}
			w.Write([]byte(goodReadyz))
		case "/metrics":
			w.Write([]byte(goodMetrics))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, HTTP: srv.Client()}
	s := c.Scrape(context.Background(), time.Now())
	if s.ReadyzErr != nil || s.MetricsErr != nil || s.Readyz.Status != "degraded" || s.Metrics.Version != "1.4.2" {
		t.Fatalf("scrape %+v", s)
	}
	down = true
	s = c.Scrape(context.Background(), time.Now())
	if s.ReadyzErr != nil || s.Readyz.Status != "down" || s.Readyz.Checks["database"].Status != "down" {
		t.Fatalf("503 readyz should still parse: %+v", s)
	}
	srv.Close()
	s = c.Scrape(context.Background(), time.Now())
	if s.ReadyzErr == nil || s.MetricsErr == nil {
		t.Fatalf("unreachable docsvc should give errors, got %+v", s)
	}
}

func FuzzParseReadyz(f *testing.F) {
	f.Add([]byte(goodReadyz))
	f.Add([]byte(`{"status":"ok"}`))
	f.Add([]byte(`{"status":"down","checks":{"x":{"status":"down"}},"queue":{"visible":1e20}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReadyz(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not match ErrMalformed: %v", err)
			}
			return
		}
		if r.Queue.Visible < 0 || r.Queue.InFlight < 0 || r.Queue.DeadLetter < 0 || r.Queue.OldestAgeSeconds < 0 {
			t.Fatalf("negative count accepted: %+v", r.Queue)
		}
	})
}

func FuzzParseMetrics(f *testing.F) {
	f.Add([]byte(goodMetrics))
	f.Add([]byte("docsvc_stored_bytes 0\n"))
	f.Add([]byte(`a{b="c",} 1 2`))
	f.Add([]byte("# only a comment\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMetrics(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not match ErrMalformed: %v", err)
			}
			return
		}
		if m.StoredBytes < 0 || m.SchemaVersion < 0 || m.Requests5xx > m.RequestsTotal {
			t.Fatalf("impossible metrics accepted: %+v", m)
		}
		for _, v := range m.Documents {
			if v < 0 {
				t.Fatalf("negative document count accepted")
			}
		}
	})
}

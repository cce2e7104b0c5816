package ctl

import (
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/devstack"
)

func TestCount5xx(t *testing.T) {
	m := `# HELP docsvc_http_requests_total HTTP requests by route and status code.
# TYPE docsvc_http_requests_total counter
docsvc_http_requests_total{code="200",route="GET /v1/documents/{id}"} 41
docsvc_http_requests_total{code="500",route="POST /v1/documents"} 2
docsvc_http_requests_total{code="503",route="GET /readyz"} 1
docsvc_http_requests_total{code="404",route="unmatched"} 5
go_goroutines 12
`
	n, err := count5xx([]byte(m))
	if err != nil || n != 3 {
		t.Fatalf("count5xx = %v, %v; want 3", n, err)
	}
	if _, err := count5xx([]byte(`docsvc_http_requests_total{code="500",route="x"} many`)); err == nil || !strings.Contains(err.Error(), `"many"`) {
		t.Fatalf("a bad value: %v, want an error naming it", err)
	}
}

func FuzzCount5xx(f *testing.F) {
	f.Add([]byte("docsvc_http_requests_total{code=\"500\"} 1\n"))
	f.Add([]byte("docsvc_http_requests_total{code=\"500\"}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := count5xx(b)
		if err == nil && n < 0 {
			t.Fatalf("negative count %v", n)
		}
	})
}

func TestParseLocalHistory(t *testing.T) {
	good := `[{"action":"upgrade","from":"1.0.0","to":"1.1.0","outcome":"succeeded","at":"2026-01-02T03:04:05Z",
		"from_binaries":{"version":"1.0.0","docsvc":"/d/releases/1.0.0/docsvc","tether_agent":"/d/releases/1.0.0/tether-agent"},
		"to_binaries":{"version":"1.1.0","docsvc":"/d/releases/1.1.0/docsvc","tether_agent":"/d/releases/1.1.0/tether-agent"}}]`
	h, err := parseLocalHistory("history.json", []byte(good))
	if err != nil || len(h) != 1 {
		t.Fatalf("parse: %v, %v", h, err)
	}
	prev, ok := previousLocal(h, devstack.Running{Version: "1.1.0", Docsvc: "/d/releases/1.1.0/docsvc", Agent: "/d/releases/1.1.0/tether-agent"})
	if !ok || prev.FromBinaries.Version != "1.0.0" {
		t.Fatalf("previous of 1.1.0 = %+v, %v; want 1.0.0", prev, ok)
	}
	if _, ok := previousLocal(h, devstack.Running{Version: "1.2.0"}); ok {
		t.Fatal("a stack running something no record installed has a previous release")
	}
	for _, bad := range []struct{ in, want string }{
		{`{}`, "not tetherctl's release history"},
		{`[{"action":"upgrade","outcome":"maybe"}]`, `"maybe"`},
		{`[{"action":"delete","outcome":"succeeded"}]`, `"delete"`},
		{`[{"action":"upgrade","outcome":"succeeded","extra":1}]`, "not tetherctl's release history"},
	} {
		if _, err := parseLocalHistory("history.json", []byte(bad.in)); err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), "history.json") {
			t.Errorf("%s: %v, want an error naming the file and %s", bad.in, err, bad.want)
		}
	}
}

func FuzzParseLocalHistory(f *testing.F) {
	f.Add([]byte(`[{"action":"upgrade","outcome":"succeeded"}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseLocalHistory("h", b)
		if err != nil {
			return
		}
		if len(h) > maxLocalHistory {
			t.Fatalf("%d entries accepted", len(h))
		}
		for _, o := range h {
			if !outcomeValues[o.Outcome] {
				t.Fatalf("outcome %q accepted", o.Outcome)
			}
		}
	})
}

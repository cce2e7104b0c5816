package devstack

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// A first build prints how far along it is instead of minutes of silence,
// and compiler output is kept for the error rather than counted.
func TestBuildProgress(t *testing.T) {
	var lines []string
	for i := 0; i < 10; i++ {
		lines = append(lines, "github.com/example/pkg"+strings.Repeat("x", i))
	}
	lines = append(lines, "# github.com/example/broken", "./broken.go:3:1: syntax error: unexpected }")
	clock := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { clock = clock.Add(time.Second); return clock }
	var buf bytes.Buffer
	out := &lockedWriter{w: &buf}
	n, other := buildProgress(strings.NewReader(strings.Join(lines, "\n")+"\n"), 40, "docsvc", out, now, 3*time.Second)
	if n != 10 {
		t.Errorf("counted %d packages, want 10", n)
	}
	if len(other) != 2 || !strings.Contains(other[1], "syntax error") {
		t.Errorf("compiler output kept: %q", other)
	}
	got := buf.String()
	if !strings.Contains(got, "dev: building docsvc: 3 of at most 40 packages compiled (3s)") ||
		!strings.Contains(got, "dev: building docsvc: 9 of at most 40 packages compiled (9s)") {
		t.Errorf("progress lines:\n%s", got)
	}
	if c := strings.Count(got, "\n"); c != 3 {
		t.Errorf("%d progress lines, want one every 3 s of 10 s (3):\n%s", c, got)
	}
}

func TestBannerReprintsOnEnter(t *testing.T) {
	var buf bytes.Buffer
	out := &lockedWriter{w: &buf}
	var b banner
	b.reprintOnEnter(strings.NewReader("\n"), out)
	if !strings.Contains(buf.String(), "still starting") {
		t.Errorf("before the stack is up: %q", buf.String())
	}
	buf.Reset()
	b.set("URLs and token\n")
	b.reprintOnEnter(strings.NewReader("\n\n"), out)
	if buf.String() != "URLs and token\nURLs and token\n" {
		t.Errorf("after two Enters: %q", buf.String())
	}
}

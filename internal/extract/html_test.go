package extract

import (
	"errors"
	"strings"
	"testing"
)

func TestExtractHTML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"document", `<!DOCTYPE html><html><head><title>Secret title</title><meta name="x" content="y"></head><body><h1>Report</h1><p>First   paragraph.</p><p>Second<br>line</p></body></html>`, "Report\n\nFirst paragraph.\n\nSecond\nline"},
		{"entities", `<p>R&amp;D &lt;tag&gt; caf&eacute; &#8364;5&nbsp;net</p>`, "R&D <tag> café €5 net"},
		{"script and style skipped", `<p>a</p><script>var x = "<p>not text</p>";</script><style>p{color:red}</style><p>b</p>`, "a\n\nb"},
		{"inline elements join", `<p>bold <b>word</b> and <a href="/x">link</a>.</p>`, "bold word and link."},
		{"list", `<ul><li>one</li><li>two</li></ul>`, "one\ntwo"},
		{"table", `<table><tr><th>Name</th><th>Qty</th></tr><tr><td>Bolts</td><td>12</td></tr></table>`, "Name\tQty\nBolts\t12"},
		{"unclosed head ends at body", `<html><head><title>t</title><body><p>visible</p>`, "visible"},
		{"comments dropped", `<p>a<!-- hidden -->b</p>`, "ab"},
		{"svg skipped", `<p>x</p><svg><text>label</text></svg><p>y</p>`, "x\n\ny"},
		{"malformed still yields text", `<p>one<div>two</p></span>three`, "one\ntwo\n\nthree"},
		{"no markup", "just words", "just words"},
	}
	lim := DefaultLimits()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := extractBytes(t, HTML, []byte(tt.in), lim)
			checkInvariants(t, res, err, lim)
			if err != nil {
				t.Fatal(err)
			}
			if res.Text != tt.want || res.Pages != 1 {
				t.Errorf("got %q, %d pages; want %q, 1 page", res.Text, res.Pages, tt.want)
			}
		})
	}
}

func TestExtractHTMLLimits(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	lim.MaxTextBytes = 100
	tests := []struct {
		name string
		in   string
	}{
		{"text over limit", "<p>" + strings.Repeat("word ", 100) + "</p>"},
		{"one token over the buffer", "<p title=\"" + strings.Repeat("a", 500) + "\">x</p>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := extractBytes(t, HTML, []byte(tt.in), lim)
			checkInvariants(t, res, err, lim)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error = %v, want ErrTooLarge", err)
			}
		})
	}
}

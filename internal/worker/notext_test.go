package worker

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/extract"
)

// A document that extracts cleanly but has no text is failed with a reason
// that fits its kind: a page of pictures is not "a scanned image".
func TestNoTextReason(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, filename string
		data           string
		want           string
	}{
		{"SVG-only page", "chart.html", `<!doctype html><body><svg><text>Q3</text></svg></body>`, "shows only pictures"},
		{"page of images", "", `<html><body><img src="a.png"><img src="b.png"></body></html>`, "shows only pictures"},
		{"empty markup", "", `<html><body><p> </p></body></html>`, "empty, or holds only markup"},
		{"whitespace text", "a.txt", " \n\t\n", "empty, or holds only markup"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			data := []byte(c.data)
			f, _, err := extract.Detect(data, c.filename)
			if err != nil {
				t.Fatal(err)
			}
			ex, err := extract.Extract(context.Background(), f, bytes.NewReader(data), int64(len(data)), extract.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if got := noTextReason(f, ex); !strings.Contains(got, c.want) {
				t.Errorf("reason %q; want it to contain %q", got, c.want)
			}
		})
	}
	if got := noTextReason(extract.PDF, extract.Result{}); !strings.Contains(got, "scanned image") {
		t.Errorf("PDF reason %q; want the scanned-image hint", got)
	}
}

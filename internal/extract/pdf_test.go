package extract

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

func TestExtractPDF(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fixture   string
		want      string
		wantPages int
	}{
		{"hello.pdf", "Hello Tether extraction test\nSecond line of the first page", 1},
		{"two-pages.pdf", "Alpha page one\n\nBravo page two", 2},
		{"blank.pdf", "", 1},
		// A superscript and a subscript touching their bases are part of
		// the word; letters a thin space apart are words of their own.
		{"math.pdf", "xd + 1\na b c mod\nmn0 = y", 1},
		// Restrictions without a user password: readable, as in any viewer.
		{"owner-only.pdf", "Hello Tether extraction test\nSecond line of the first page", 1},
	}
	lim := DefaultLimits()
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			res, err := extractBytes(t, PDF, readFixture(t, tt.fixture), lim)
			checkInvariants(t, res, err, lim)
			if err != nil {
				t.Fatal(err)
			}
			if res.Text != tt.want || res.Pages != tt.wantPages {
				t.Errorf("got %q, %d pages; want %q, %d pages", res.Text, res.Pages, tt.want, tt.wantPages)
			}
		})
	}
}

func TestExtractPDFErrors(t *testing.T) {
	t.Parallel()
	hello := readFixture(t, "hello.pdf")
	twoPages := readFixture(t, "two-pages.pdf")
	onePage := DefaultLimits()
	onePage.MaxPages = 1
	tinyText := DefaultLimits()
	tinyText.MaxTextBytes = 10

	// The framing is right but the body is not a PDF.
	garbage := []byte("%PDF-1.7\n" + strings.Repeat("not a pdf object ", 50) + "\n%%EOF\n")
	// The xref offset points nowhere and the objects are gone: beyond what
	// PDFium's repair can rebuild.
	noObjects := []byte("%PDF-1.4\ntrailer\n<< /Root 1 0 R /Size 2 >>\nstartxref\n9999\n%%EOF\n")

	tests := []struct {
		name    string
		data    []byte
		lim     Limits
		wantErr error
	}{
		{"encrypted", readFixture(t, "encrypted.pdf"), DefaultLimits(), ErrEncrypted},
		{"truncated", hello[:len(hello)*2/3], DefaultLimits(), ErrMalformed},
		{"truncated to the header", hello[:20], DefaultLimits(), ErrMalformed},
		{"no header", bytes.Replace(hello, []byte("%PDF-"), []byte("%XYZ-"), 1), DefaultLimits(), ErrMalformed},
		{"garbage body", garbage, DefaultLimits(), ErrMalformed},
		{"no objects", noObjects, DefaultLimits(), ErrMalformed},
		{"too many pages", twoPages, onePage, ErrTooLarge},
		{"text over limit", hello, tinyText, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := extractBytes(t, PDF, tt.data, tt.lim)
			checkInvariants(t, res, err, tt.lim)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// cancellingReader cancels its context at the nth read.
type cancellingReader struct {
	r      io.ReaderAt
	cancel context.CancelFunc
	mu     sync.Mutex
	reads  int
	n      int
}

func (c *cancellingReader) ReadAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	c.reads++
	if c.reads == c.n {
		c.cancel()
	}
	c.mu.Unlock()
	return c.r.ReadAt(p, off)
}

func TestExtractPDFCancelledMidway(t *testing.T) {
	t.Parallel()
	data := readFixture(t, "real/asymptote-refcard.pdf")
	// Read 1 and 2 are the framing checks, 3 copies the file for PDFium.
	// (A call stopped inside PDFium: TestPDFiumCallStoppedWhileRunning.)
	for _, n := range []int{2, 3} {
		ctx, cancel := context.WithCancel(context.Background())
		r := &cancellingReader{r: bytes.NewReader(data), cancel: cancel, n: n}
		_, err := Extract(ctx, PDF, r, int64(len(data)), DefaultLimits())
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancel at read %d: error = %v, want context.Canceled", n, err)
		}
	}
	// The engine still works for the next document.
	res, err := extractBytes(t, PDF, readFixture(t, "hello.pdf"), DefaultLimits())
	if err != nil || !strings.Contains(res.Text, "Hello Tether") {
		t.Fatalf("after cancellation: %q, %v", res.Text, err)
	}
}

func TestExtractPDFConcurrent(t *testing.T) {
	t.Parallel()
	files := []string{"hello.pdf", "two-pages.pdf", "real/xorg-dps.pdf", "encrypted.pdf"}
	want := make(map[string]Result)
	for _, f := range files {
		res, _ := extractBytes(t, PDF, readFixture(t, f), DefaultLimits())
		want[f] = res
	}
	var wg sync.WaitGroup
	for i := range 8 {
		f := files[i%len(files)]
		data := readFixture(t, f)
		wg.Go(func() {
			res, _ := extractBytes(t, PDF, data, DefaultLimits())
			if res != want[f] {
				t.Errorf("%s: concurrent result differs from the sequential one", f)
			}
		})
	}
	wg.Wait()
}

// words splits text into the lower-cased, NFKC-normalised (ligatures
// undone) runs of letters and digits, counted. The bench program
// (bench/extractbench) uses the same definition.
func words(s string) map[string]int {
	m := make(map[string]int)
	for _, w := range strings.FieldsFunc(norm.NFKC.String(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		m[strings.ToLower(w)]++
	}
	return m
}

// recall is the share of the reference's word occurrences also in got.
func recall(ref, got map[string]int) float64 {
	total, found := 0, 0
	for w, n := range ref {
		total += n
		found += min(n, got[w])
	}
	if total == 0 {
		return 1
	}
	return float64(found) / float64(total)
}

// TestPDFFidelity compares our text with poppler's pdftotext on real PDFs:
// we must find at least 95% of its words. In CI (CI=true) pdftotext is
// required; elsewhere the test skips without it.
func TestPDFFidelity(t *testing.T) {
	t.Parallel()
	pdftotext, err := exec.LookPath("pdftotext")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("pdftotext is required in CI (Debian package poppler-utils)")
		}
		t.Skip("pdftotext not installed (apt-get install poppler-utils)")
	}
	files, err := filepath.Glob(filepath.Join("testdata", "real", "*.pdf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no real PDFs in testdata/real: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			ref, err := exec.Command(pdftotext, "-q", "-enc", "UTF-8", f, "-").Output()
			if err != nil {
				t.Fatalf("pdftotext: %v", err)
			}
			refWords := words(string(ref))
			if len(refWords) < 50 {
				t.Fatalf("pdftotext found only %d distinct words; the fixture is not a text PDF", len(refWords))
			}
			res, err := extractBytes(t, PDF, readFixture(t, filepath.Join("real", filepath.Base(f))), DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			r := recall(refWords, words(res.Text))
			t.Logf("word recall vs pdftotext: %.3f", r)
			if r < 0.95 {
				t.Errorf("word recall %.3f, want >= 0.95", r)
			}
		})
	}
}

func BenchmarkExtractPDF(b *testing.B) {
	for _, name := range []string{"hello.pdf", "real/xorg-versions.pdf", "real/asymptote-refcard.pdf"} {
		data := readFixture(b, name)
		b.Run(filepath.Base(name), func(b *testing.B) {
			// The first call compiles PDFium; keep it out of the loop.
			if _, err := extractBytes(b, PDF, data, DefaultLimits()); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := extractBytes(b, PDF, data, DefaultLimits()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

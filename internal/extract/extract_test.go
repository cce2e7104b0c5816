package extract

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// sentinels are the errors every failure must wrap.
var sentinels = []error{ErrUnsupported, ErrMalformed, ErrEncrypted, ErrTooLarge}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func extractBytes(t testing.TB, f Format, data []byte, lim Limits) (Result, error) {
	t.Helper()
	return Extract(context.Background(), f, bytes.NewReader(data), int64(len(data)), lim)
}

// checkInvariants holds for every Extract call, whatever the input: a
// failure wraps exactly one sentinel; a success has pages and bounded,
// valid, trimmed text.
func checkInvariants(t testing.TB, res Result, err error, lim Limits) {
	t.Helper()
	if err != nil {
		n := 0
		for _, s := range sentinels {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("error %q wraps %d sentinels, want 1", err, n)
		}
		if res != (Result{}) {
			t.Fatalf("error %q came with a non-empty result", err)
		}
		return
	}
	if res.Pages < 1 {
		t.Fatalf("Pages = %d, want >= 1", res.Pages)
	}
	if int64(len(res.Text)) > lim.MaxTextBytes {
		t.Fatalf("text is %d bytes, limit %d", len(res.Text), lim.MaxTextBytes)
	}
	if !utf8.ValidString(res.Text) {
		t.Fatal("text is not valid UTF-8")
	}
}

func TestDetect(t *testing.T) {
	t.Parallel()
	docx := makeDOCX(t, map[string]string{"word/document.xml": docXML(`<w:p><w:r><w:t>x</w:t></w:r></w:p>`)})
	xlsx := makeZip(t, []zipEntry{{name: "[Content_Types].xml", body: "<Types/>"}, {name: "xl/workbook.xml", body: "<workbook/>"}})
	plainZip := makeZip(t, []zipEntry{{name: "notes.txt", body: "hello"}})
	// A zip whose first entries say nothing: only the extension decides.
	undecided := makeZip(t, []zipEntry{{name: "[Content_Types].xml", body: strings.Repeat("<Types/>", 2000), store: true}, {name: "word/document.xml", body: "<w:document/>"}})
	long := strings.Repeat("é", detectHeadSize) // a rune split at the head's end

	tests := []struct {
		name     string
		head     []byte
		filename string
		want     Format
		media    string
		wantErr  error
	}{
		{"pdf", []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj"), "a.bin", PDF, "application/pdf", nil},
		{"pdf after junk", []byte("\x00\x00junk\n%PDF-1.4\n"), "", PDF, "application/pdf", nil},
		{"text mentioning the pdf header", []byte("Files start with %PDF-1.7.\n"), "notes.md", Markdown, mediaMarkdown, nil},
		{"docx", docx, "report.docx", DOCX, mediaDOCX, nil},
		{"docx content beats extension", docx, "report.txt", DOCX, mediaDOCX, nil},
		{"xlsx", xlsx, "sheet.xlsx", "", "", ErrUnsupported},
		{"xlsx named docx", xlsx, "sheet.docx", "", "", ErrUnsupported},
		{"plain zip", plainZip, "a.zip", "", "", ErrUnsupported},
		{"undecided zip named docx", undecided[:300], "x.docx", DOCX, mediaDOCX, nil},
		{"undecided zip named zip", undecided[:300], "x.zip", "", "", ErrUnsupported},
		{"encrypted docx envelope", append(append([]byte{}, magicCFB...), make([]byte, 100)...), "secret.docx", DOCX, mediaDOCX, nil},
		{"legacy doc", append(append([]byte{}, magicCFB...), make([]byte, 100)...), "old.doc", "", "", ErrUnsupported},
		{"text", []byte("Quarterly report\nline two\n"), "notes", Text, mediaText, nil},
		{"text with bom and crlf", []byte("\xEF\xBB\xBFhello\r\nworld"), "a.txt", Text, mediaText, nil},
		{"markdown by extension", []byte("# Title\n\nbody"), "README.md", Markdown, mediaMarkdown, nil},
		{"markdown upper-case extension", []byte("# Title"), "README.MARKDOWN", Markdown, mediaMarkdown, nil},
		{"html doctype", []byte("<!DOCTYPE html><html><body>x"), "page", HTML, mediaHTML, nil},
		{"html fragment", []byte("  \n<p>hello</p>"), "a.txt", HTML, mediaHTML, nil},
		{"xhtml", []byte("<?xml version=\"1.0\"?>\n<html xmlns=\"http://www.w3.org/1999/xhtml\">"), "", HTML, mediaHTML, nil},
		{"html by extension", []byte("<section>hi</section>"), "a.htm", HTML, mediaHTML, nil},
		{"not a tag prefix", []byte("<bread> is not a tag"), "a.txt", Text, mediaText, nil},
		{"split rune at head end", []byte(long)[:detectHeadSize], "a.txt", Text, mediaText, nil},
		{"longer head is cut", []byte(strings.Repeat("a", 3*detectHeadSize)), "", Text, mediaText, nil},
		{"empty", nil, "a.txt", "", "", ErrUnsupported},
		{"nul byte", []byte("abc\x00def"), "a.txt", "", "", ErrUnsupported},
		{"control char", []byte("abc\x01def"), "a.md", "", "", ErrUnsupported},
		{"latin-1", []byte("caf\xe9 au lait"), "a.txt", "", "", ErrUnsupported},
		{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "a.png", "", "", ErrUnsupported},
		{"random binary", []byte{0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0xff, 0xfe}, "a.pdf", "", "", ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, media, err := Detect(tt.head, tt.filename)
			if !errors.Is(err, tt.wantErr) || (err != nil && tt.wantErr == nil) {
				t.Fatalf("Detect() error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), SupportedTypes()) {
					t.Errorf("error %q does not list the supported types", err)
				}
				return
			}
			if f != tt.want || media != tt.media {
				t.Errorf("Detect() = %q, %q; want %q, %q", f, media, tt.want, tt.media)
			}
		})
	}
}

func TestExtractText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		format  Format
		in      string
		want    string
		wantErr error
	}{
		{"kept as is", Text, "a  b\n\n\n  indented\n", "a  b\n\n\n  indented\n", nil},
		{"bom stripped", Text, "\xEF\xBB\xBFhello", "hello", nil},
		{"crlf", Markdown, "# T\r\n\r\n    code\r\n", "# T\n\n    code\n", nil},
		{"unicode", Markdown, "naïve — 日本語", "naïve — 日本語", nil},
		{"whitespace only", Text, " \n\t\n", " \n\t\n", nil},
		{"binary past the head", Text, strings.Repeat("a", 10000) + "\x00", "", ErrUnsupported},
		{"invalid utf-8", Text, "ok \xff\xfe", "", ErrUnsupported},
	}
	lim := DefaultLimits()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := extractBytes(t, tt.format, []byte(tt.in), lim)
			checkInvariants(t, res, err, lim)
			if !errors.Is(err, tt.wantErr) || (err != nil && tt.wantErr == nil) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (res.Text != tt.want || res.Pages != 1) {
				t.Errorf("got %q, %d pages; want %q, 1 page", res.Text, res.Pages, tt.want)
			}
		})
	}
}

func TestExtractLimitsAndArguments(t *testing.T) {
	t.Parallel()
	small := DefaultLimits()
	small.MaxInputBytes = 10
	tests := []struct {
		name    string
		format  Format
		data    []byte
		lim     Limits
		wantErr error
	}{
		{"input over limit", Text, []byte("eleven bytes"), small, ErrTooLarge},
		{"text over limit", Markdown, []byte("0123456789"), Limits{MaxInputBytes: 100, MaxTextBytes: 5, MaxPages: 1}, ErrTooLarge},
		{"empty", Text, nil, DefaultLimits(), ErrMalformed},
		{"unknown format", Format("rtf"), []byte("{\\rtf1}"), DefaultLimits(), ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := extractBytes(t, tt.format, tt.data, tt.lim)
			checkInvariants(t, res, err, tt.lim)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestExtractHonoursCancelledContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data := []byte("hello")
	for _, f := range []Format{PDF, DOCX, HTML, Text, Markdown} {
		_, err := Extract(ctx, f, bytes.NewReader(data), int64(len(data)), DefaultLimits())
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: error = %v, want context.Canceled", f, err)
		}
	}
}

// panicReader stands in for a bug in a parser: Extract must turn it into an
// error, not crash the worker.
type panicReader struct{}

func (panicReader) ReadAt([]byte, int64) (int, error) { panic("reader bug") }

func TestExtractRecoversPanics(t *testing.T) {
	t.Parallel()
	for _, f := range []Format{PDF, DOCX, HTML, Text} {
		_, err := Extract(context.Background(), f, panicReader{}, 100, DefaultLimits())
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: error = %v, want ErrMalformed", f, err)
		}
		if strings.Contains(err.Error(), "reader bug") {
			t.Errorf("%s: error %q quotes the panic value", f, err)
		}
	}
}

func TestTextBuilderNormalises(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"spaces collapse", "a   b \t c", "a b\tc"},
		{"lines trimmed", "  a  \n  b  ", "a\nb"},
		{"blank lines collapse", "a\n\n\n\n\nb", "a\n\nb"},
		{"crlf is one break", "a\r\nb\r\n\r\nc", "a\nb\n\nc"},
		{"leading and trailing space dropped", "\n\n  a  \n\n", "a"},
		{"controls dropped", "a\x00\x07b", "ab"},
		{"nbsp is a space", "a\u00a0\u00a0b", "a b"},
		{"form feed breaks", "a\fb", "a\nb"},
		{"invalid utf-8 dropped", "a\xffb", "ab"},
		{"soft hyphens joined", "WAR\uFFFERANTIES, hy\u00ADphen", "WARRANTIES, hyphen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTextBuilder(1 << 20)
			if err := b.WriteString(tt.in); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTextBuilderLimit(t *testing.T) {
	t.Parallel()
	b := newTextBuilder(5)
	if err := b.WriteString("abcde"); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	// Whitespace that never becomes visible costs nothing.
	if err := b.WriteString("   \n"); err != nil {
		t.Fatalf("trailing whitespace: %v", err)
	}
	if err := b.WriteString("f"); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: error = %v, want ErrTooLarge", err)
	}
	if err := b.WriteString("g"); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("after the limit: error = %v, want ErrTooLarge", err)
	}
}

package extract

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fuzzLimits keep each fuzz input cheap while still exercising every limit.
func fuzzLimits() Limits {
	return Limits{MaxInputBytes: 1 << 20, MaxExpandedBytes: 4 << 20, MaxTextBytes: 1 << 20, MaxPages: 100, MaxMemoryBytes: 128 << 20}
}

func FuzzDetect(f *testing.F) {
	f.Add([]byte("%PDF-1.7\n"), "a.pdf")
	f.Add(makeDOCX(f, map[string]string{"word/document.xml": docXML(para(run("x")))}), "a.docx")
	f.Add([]byte("# title\n"), "a.md")
	f.Add([]byte("<!doctype html><p>x"), "")
	f.Add([]byte("plain \xe2\x82"), "a.txt")
	f.Add([]byte("\x00\x01\x02"), "a.bin")
	f.Add([]byte("\xff\xfe#\x00 \x00t\x00"), "a.md")
	f.Add([]byte("<p>caf\xe9</p>"), "")
	f.Fuzz(func(t *testing.T, head []byte, filename string) {
		format, media, err := Detect(head, filename)
		if err != nil {
			if !errors.Is(err, ErrUnsupported) || format != "" || media != "" {
				t.Fatalf("Detect failure %q, %q, %v: want only an ErrUnsupported", format, media, err)
			}
			return
		}
		switch format {
		case PDF, DOCX, Text, Markdown, HTML:
		default:
			t.Fatalf("unknown format %q", format)
		}
		if media == "" {
			t.Fatal("no media type")
		}
		// Detect decides on the first 8192 bytes only.
		if len(head) > detectHeadSize {
			f2, m2, err2 := Detect(head[:detectHeadSize], filename)
			if f2 != format || m2 != media || err2 != nil {
				t.Fatalf("bytes after the head changed the answer")
			}
		}
	})
}

func fuzzExtract(f *testing.F, format Format, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := fuzzLimits()
		// A hang is a finding (a denial of service in production, where
		// only the caller's deadline would stop it); the fuzzer itself
		// has no per-input timeout, so impose one.
		ctx, cancel := context.WithTimeout(context.Background(), fuzzInputTimeout)
		defer cancel()
		res, err := Extract(ctx, format, bytes.NewReader(data), int64(len(data)), lim)
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: one %d-byte input ran over %v", format, len(data), fuzzInputTimeout)
		}
		checkInvariants(t, res, err, lim)
	})
}

// fuzzInputTimeout is far beyond any normal input (milliseconds) so that
// a slow, instrumented, shared machine does not make it flaky.
const fuzzInputTimeout = 30 * time.Second

func FuzzExtractPDF(f *testing.F) {
	// Compile PDFium before fuzzing starts: under coverage instrumentation
	// it takes longer than the fuzzer waits for one input, and the worker
	// would be reported as hung. Every fuzz worker is a process of its
	// own that compiles again, so they share the compile cache: after the
	// first, a worker is ready in about a second.
	if dir, err := os.UserCacheDir(); err == nil {
		SetCompileCache(filepath.Join(dir, "tether-extract-fuzz", "pdfium"), nil)
	}
	if _, err := pdfEngine(); err != nil {
		f.Fatal(err)
	}
	hello := readFixture(f, "hello.pdf")
	fuzzExtract(f, PDF,
		hello,
		readFixture(f, "two-pages.pdf"),
		readFixture(f, "encrypted.pdf"),
		hello[:len(hello)/2],
		bytes.Replace(hello, []byte("/Count 1"), []byte("/Count 9"), 1),
	)
}

func FuzzExtractDOCX(f *testing.F) {
	fuzzExtract(f, DOCX,
		makeDOCX(f, map[string]string{"word/document.xml": docXML(para(run("Hello"), run(" world")))}),
		makeDOCX(f, map[string]string{"docProps/app.xml": appXML("3"), "word/document.xml": docXML(`<w:tbl><w:tr><w:tc>` + para(run("a")) + `</w:tc></w:tr></w:tbl>`)}),
		makeZip(f, []zipEntry{{name: "word/document.xml", body: "<w:document>", store: true}}),
		append(append([]byte{}, magicCFB...), utf16LE("EncryptionInfo")...),
	)
}

func FuzzExtractHTML(f *testing.F) {
	fuzzExtract(f, HTML,
		[]byte(`<!DOCTYPE html><html><head><title>t</title></head><body><p>a &amp; b</p><table><tr><td>1</td></tr></table></body></html>`),
		[]byte(`<script>x</script><p>y`),
		[]byte(`<p title="unterminated`),
		[]byte("<meta charset=\"iso-8859-1\"><p>caf\xe9"),
		[]byte("\xff\xfe<\x00p\x00>\x00x\x00"),
	)
}

func FuzzExtractText(f *testing.F) {
	fuzzExtract(f, Text,
		[]byte("hello\r\nworld"),
		[]byte("\xEF\xBB\xBF# title"),
		[]byte("bad \xff"),
		[]byte("nul \x00"),
		[]byte("\xff\xfeh\x00i\x00"),
		[]byte("\xfe\xff\xd8\x00"),
	)
}

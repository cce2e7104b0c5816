package extract

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

type zipEntry struct {
	name  string
	body  string
	store bool // no compression
}

func makeZip(t testing.TB, entries []zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		method := zip.Deflate
		if e.store {
			method = zip.Store
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// makeDOCX builds a package the way Word lays it out: content types
// first, then relationships, then the parts.
func makeDOCX(t testing.TB, parts map[string]string) []byte {
	t.Helper()
	entries := []zipEntry{
		{name: "[Content_Types].xml", body: `<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`},
	}
	if _, ok := parts["_rels/.rels"]; !ok {
		entries = append(entries, zipEntry{name: "_rels/.rels", body: relsXML("word/document.xml")})
	}
	for _, name := range []string{"_rels/.rels", "docProps/app.xml", "word/document.xml"} {
		if body, ok := parts[name]; ok {
			entries = append(entries, zipEntry{name: name, body: body})
			delete(parts, name)
		}
	}
	for name, body := range parts {
		entries = append(entries, zipEntry{name: name, body: body})
	}
	return makeZip(t, entries)
}

func relsXML(target string) string {
	return `<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
		`<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>` +
		`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="` + target + `"/></Relationships>`
}

func docXML(body string) string {
	return `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` +
		`<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">` +
		`<w:body>` + body + `</w:body></w:document>`
}

func appXML(pages string) string {
	return `<?xml version="1.0"?><Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"><Application>Microsoft Office Word</Application><Pages>` + pages + `</Pages></Properties>`
}

func para(runs ...string) string {
	return `<w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr>` + strings.Join(runs, "") + `</w:p>`
}

func run(text string) string { return `<w:r><w:t xml:space="preserve">` + text + `</w:t></w:r>` }

func TestExtractDOCX(t *testing.T) {
	t.Parallel()
	table := `<w:tbl><w:tr><w:tc>` + para(run("Name")) + `</w:tc><w:tc>` + para(run("Qty")) + `</w:tc></w:tr>` +
		`<w:tr><w:tc>` + para(run("Bolts")) + para(run("(steel)")) + `</w:tc><w:tc>` + para(run("12")) + `</w:tc></w:tr></w:tbl>`
	tests := []struct {
		name      string
		parts     map[string]string
		want      string
		wantPages int
	}{
		{"paragraphs", map[string]string{"word/document.xml": docXML(para(run("Hello"), run(" world")) + para(run("Second")))}, "Hello world\n\nSecond", 1},
		{"runs split a word", map[string]string{"word/document.xml": docXML(para(run("Ex"), run("tract")))}, "Extract", 1},
		{"tab and break inside runs", map[string]string{"word/document.xml": docXML(para(`<w:r><w:t>a</w:t><w:tab/><w:t>b</w:t><w:br/><w:t>c</w:t></w:r>`))}, "a\tb\nc", 1},
		{"table", map[string]string{"word/document.xml": docXML(para(run("Before")) + table + para(run("After")))}, "Before\n\nName\tQty\nBolts (steel)\t12\n\nAfter", 1},
		{"entities", map[string]string{"word/document.xml": docXML(para(run("R&amp;D &lt;3 &#233;")))}, "R&D <3 é", 1},
		{"deleted revision and field code skipped", map[string]string{"word/document.xml": docXML(para(run("kept"), `<w:del><w:r><w:delText>gone</w:delText></w:r></w:del>`, `<w:r><w:instrText>PAGE \* MERGEFORMAT</w:instrText></w:r>`, run(" too")))}, "kept too", 1},
		{"fallback copy skipped", map[string]string{"word/document.xml": docXML(para(run("a"), `<mc:AlternateContent xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"><mc:Choice Requires="wps"><w:r><w:t>box</w:t></w:r></mc:Choice><mc:Fallback><w:r><w:t>box</w:t></w:r></mc:Fallback></mc:AlternateContent>`, run("z")))}, "aboxz", 1},
		{"pages from app.xml", map[string]string{"docProps/app.xml": appXML("7"), "word/document.xml": docXML(para(run("x")))}, "x", 7},
		{"unreadable page count means one", map[string]string{"docProps/app.xml": appXML("many"), "word/document.xml": docXML(para(run("x")))}, "x", 1},
		{"broken app.xml ignored", map[string]string{"docProps/app.xml": "<Properties><Pages>", "word/document.xml": docXML(para(run("x")))}, "x", 1},
		{"main part named by relationships", map[string]string{"_rels/.rels": relsXML("/word/document2.xml"), "word/document2.xml": docXML(para(run("moved")))}, "moved", 1},
		{"empty document", map[string]string{"word/document.xml": docXML("")}, "", 1},
	}
	lim := DefaultLimits()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := extractBytes(t, DOCX, makeDOCX(t, tt.parts), lim)
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

func TestExtractDOCXErrors(t *testing.T) {
	t.Parallel()
	small := DefaultLimits()
	small.MaxExpandedBytes = 64 << 10
	fewPages := DefaultLimits()
	fewPages.MaxPages = 3

	hello := makeDOCX(t, map[string]string{"word/document.xml": docXML(para(run("hello")))})
	// 8 MiB of spaces deflates to about 8 KiB: a 1000:1 bomb.
	bomb := makeDOCX(t, map[string]string{"word/document.xml": docXML(para(run(strings.Repeat(" ", 8<<20))))})
	many := make([]zipEntry, docxMaxEntries+1)
	for i := range many {
		many[i] = zipEntry{name: fmt.Sprintf("word/media/%d.bin", i), store: true}
	}
	cfb := func(extra string) []byte {
		b := append([]byte{}, magicCFB...)
		b = append(b, make([]byte, 504)...)
		return append(b, extra...)
	}

	tests := []struct {
		name    string
		data    []byte
		lim     Limits
		wantErr error
	}{
		{"not a zip", []byte("PK\x03\x04 but nothing else"), DefaultLimits(), ErrMalformed},
		{"truncated", hello[:len(hello)/2], DefaultLimits(), ErrMalformed},
		{"no main part", makeZip(t, []zipEntry{{name: "[Content_Types].xml", body: "<Types/>"}}), DefaultLimits(), ErrMalformed},
		{"relationship to a missing part", makeDOCX(t, map[string]string{"_rels/.rels": relsXML("word/nope.xml"), "word/document.xml": docXML("")}), DefaultLimits(), ErrMalformed},
		{"broken xml", makeDOCX(t, map[string]string{"word/document.xml": docXML(`<w:p><w:r><w:t>unclosed`)}), DefaultLimits(), ErrMalformed},
		{"broken relationships", makeDOCX(t, map[string]string{"_rels/.rels": "<Relationships><", "word/document.xml": docXML("")}), DefaultLimits(), ErrMalformed},
		{"declared size over limit", makeDOCX(t, map[string]string{"word/document.xml": docXML(para(run(strings.Repeat("a", 100<<10))))}), small, ErrTooLarge},
		{"compression ratio bomb", bomb, DefaultLimits(), ErrTooLarge},
		{"too many entries", makeZip(t, many), DefaultLimits(), ErrTooLarge},
		{"too many pages", makeDOCX(t, map[string]string{"docProps/app.xml": appXML("4"), "word/document.xml": docXML("")}), fewPages, ErrTooLarge},
		{"text over limit", hello, Limits{MaxInputBytes: 1 << 20, MaxExpandedBytes: 1 << 20, MaxTextBytes: 3, MaxPages: 10}, ErrTooLarge},
		{"password-protected", cfb(string(utf16LE("EncryptionInfo"))), DefaultLimits(), ErrEncrypted},
		{"legacy doc", cfb(string(utf16LE("WordDocument"))), DefaultLimits(), ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := extractBytes(t, DOCX, tt.data, tt.lim)
			checkInvariants(t, res, err, tt.lim)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestBoundedReader checks the limits on bytes actually inflated, which
// guard against a zip whose declared sizes lie. archive/zip rejects such
// entries itself today, so no archive can reach these checks; the reader
// is tested directly.
func TestBoundedReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		data       int
		budget     int64
		limit      int64
		compressed uint64
		wantErr    error
	}{
		{"within limits", 1000, 2000, 2000, 1000, nil},
		{"over the part limit", 1001, 1 << 30, 1000, 1 << 20, ErrTooLarge},
		{"over the package budget", 1001, 1000, 1 << 30, 1 << 20, ErrTooLarge},
		{"ratio", 2 * docxRatioFloor, 1 << 30, 1 << 30, 1000, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &boundedReader{
				rc:         io.NopCloser(bytes.NewReader(make([]byte, tt.data))),
				budget:     &expansionBudget{left: tt.budget},
				limit:      tt.limit,
				compressed: tt.compressed,
			}
			_, err := io.Copy(io.Discard, r)
			if !errors.Is(err, tt.wantErr) || (err != nil && tt.wantErr == nil) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

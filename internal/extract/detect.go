package extract

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// Media types returned by Detect.
const (
	mediaPDF      = "application/pdf"
	mediaDOCX     = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	mediaText     = "text/plain; charset=utf-8"
	mediaMarkdown = "text/markdown; charset=utf-8"
	mediaHTML     = "text/html; charset=utf-8"
)

// detectHeadSize is how much of a document Detect looks at.
const detectHeadSize = 8192

var (
	magicPDF = []byte("%PDF-")
	magicZip = []byte("PK\x03\x04")
	// Compound File Binary: legacy .doc, and the envelope Office wraps
	// around a password-protected .docx.
	magicCFB = []byte("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1")
	utf8BOM  = []byte("\xEF\xBB\xBF")
)

// Detect decides the format of a document from its first bytes (head, at
// most 8192 are used) and returns it with its media type. The content
// decides; the filename's extension only breaks ties the content cannot
// (plain text or Markdown, and a ZIP whose first entries do not show it is a
// DOCX). It rejects anything else with an error wrapping ErrUnsupported
// that lists the supported types.
func Detect(head []byte, filename string) (Format, string, error) {
	if len(head) > detectHeadSize {
		head = head[:detectHeadSize]
	}
	ext := strings.ToLower(filepath.Ext(filename))
	unsupported := func(why string) (Format, string, error) {
		return "", "", fmt.Errorf("%w: %s (supported: %s)", ErrUnsupported, why, SupportedTypes())
	}
	if len(head) == 0 {
		return unsupported("empty document")
	}

	// PDF readers accept the header anywhere in the first 1024 bytes, but
	// away from the start it only counts in a binary file: a text file
	// that mentions "%PDF-" near its top is still text.
	// UTF-16 with a byte-order mark is classified as the text it decodes to.
	text, textCharset := bytes.TrimPrefix(head, utf8BOM), "utf-8"
	if _, cs, ok := utf16Order(head); ok {
		decoded, err := decodeUTF16(head, true)
		if err != nil {
			return unsupported(err.Error())
		}
		text, textCharset = decoded, cs
	}
	whyNotText := notText(text)
	if bytes.HasPrefix(head, magicPDF) ||
		(whyNotText != "" && bytes.Contains(head[:min(len(head), 1024)], magicPDF)) {
		return PDF, mediaPDF, nil
	}
	if bytes.HasPrefix(head, magicZip) {
		switch zipKind(head) {
		case "word":
			return DOCX, mediaDOCX, nil
		case "other":
			return unsupported("ZIP archive that is not a Word document")
		}
		if ext == ".docx" {
			return DOCX, mediaDOCX, nil
		}
		return unsupported("ZIP archive that is not a Word document")
	}
	if bytes.HasPrefix(head, magicCFB) {
		// Office encrypts a .docx by wrapping it in a CFB file; only the
		// extension tells it from a legacy .doc. Extract says which.
		if ext == ".docx" {
			return DOCX, mediaDOCX, nil
		}
		return unsupported("legacy Office (OLE) file")
	}

	if whyNotText != "" {
		// A page in a legacy encoding (a <meta charset>, or Windows-1252
		// by default) is HTML all the same: decode it as a browser would.
		if textCharset == "utf-8" && looksLikeHTML(text) {
			if enc, name := htmlEncoding(head); name != "utf-8" {
				if decoded, err := enc.NewDecoder().Bytes(head); err == nil && notText(decoded) == "" {
					return HTML, withCharset(mediaHTML, name), nil
				}
			}
		}
		return unsupported(whyNotText)
	}
	if looksLikeHTML(text) {
		return HTML, withCharset(mediaHTML, textCharset), nil
	}
	switch ext {
	case ".md", ".markdown", ".mdown", ".mkd":
		return Markdown, withCharset(mediaMarkdown, textCharset), nil
	case ".html", ".htm", ".xhtml":
		return HTML, withCharset(mediaHTML, textCharset), nil
	}
	return Text, withCharset(mediaText, textCharset), nil
}

// withCharset replaces media's charset=utf-8 with cs.
func withCharset(media, cs string) string {
	return strings.Replace(media, "charset=utf-8", "charset="+cs, 1)
}

// notText says why b is not UTF-8 text, or "" if it is. A rune split at
// the end is accepted: b may be the head of a longer document (Extract
// checks the whole text).
func notText(b []byte) string {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' {
				if c == 0 {
					if looksLikeUTF16(b) {
						return whyNotUTF8(b)
					}
					return "binary data (NUL byte)"
				}
				return "binary data (control character)"
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			if !utf8.FullRune(b[i:]) {
				break
			}
			return whyNotUTF8(b)
		}
		i += n
	}
	return ""
}

// htmlStarts are the tags the WHATWG MIME sniffing algorithm accepts as the
// start of an HTML document.
var htmlStarts = []string{
	"<!doctype html", "<html", "<head", "<script", "<iframe", "<h1", "<div",
	"<font", "<table", "<a", "<style", "<title", "<b", "<body", "<br", "<p", "<!--",
}

func looksLikeHTML(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\n\r\f")
	// Skip an XML declaration so XHTML is recognised.
	if bytes.HasPrefix(b, []byte("<?xml")) {
		if end := bytes.Index(b, []byte("?>")); end >= 0 {
			b = bytes.TrimLeft(b[end+2:], " \t\n\r\f")
		}
	}
	lower := bytes.ToLower(b[:min(len(b), 32)])
	for _, s := range htmlStarts {
		if !bytes.HasPrefix(lower, []byte(s)) {
			continue
		}
		if s == "<!--" {
			return true
		}
		// The tag name must end here: "<br" is HTML, "<bread>" is not.
		if len(lower) > len(s) {
			switch lower[len(s)] {
			case ' ', '>', '\t', '\n', '\r', '\f', '/':
				return true
			}
		}
	}
	return false
}

// zipKind looks at the entry names in the local file headers within head
// and reports "word" when it finds a word/ entry, "other" for another OOXML
// kind (spreadsheet, slides) or a plain archive, and "" when head ends
// before it can tell. It scans for header signatures rather than walking
// from one header to the next because writers that stream (a data
// descriptor after the data) leave the compressed size out of the header.
func zipKind(head []byte) string {
	sawContentTypes := false
	for off := 0; ; off += 4 {
		i := bytes.Index(head[off:], magicZip)
		if i < 0 {
			return ""
		}
		off += i
		if off+30 > len(head) {
			return ""
		}
		nameLen := int(binary.LittleEndian.Uint16(head[off+26:]))
		if off+30+nameLen > len(head) {
			return ""
		}
		name := string(head[off+30 : off+30+nameLen])
		switch {
		case strings.HasPrefix(name, "word/"):
			return "word"
		case strings.HasPrefix(name, "xl/"), strings.HasPrefix(name, "ppt/"):
			return "other"
		case name == "[Content_Types].xml":
			sawContentTypes = true
		case name == "_rels/.rels", strings.HasPrefix(name, "docProps/"), strings.HasPrefix(name, "customXml/"):
		default:
			if !sawContentTypes {
				return "other"
			}
		}
	}
}

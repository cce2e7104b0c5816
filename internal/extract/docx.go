package extract

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"unicode/utf16"
)

// Bounds on a DOCX package beyond Limits. Word's own files compress XML
// about 5-20x; 200x only arises from padding built to exhaust memory.
const (
	docxMaxEntries   = 10000
	docxMaxRatio     = 200
	docxMaxSmallPart = 1 << 20 // _rels/.rels and docProps/app.xml
	// Ratios are only meaningful for parts big enough to matter; a 200-byte
	// part of spaces may legitimately compress 300x.
	docxRatioFloor = 1 << 20
)

const (
	wordNS         = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
	markupCompatNS = "http://schemas.openxmlformats.org/markup-compatibility/2006"
)

func extractDOCX(ctx context.Context, r io.ReaderAt, size int64, lim Limits) (Result, error) {
	var magic [8]byte
	if _, err := r.ReadAt(magic[:], 0); err != nil && err != io.EOF {
		return Result{}, fmt.Errorf("%w: docx: read failed", ErrMalformed)
	}
	if bytes.Equal(magic[:], magicCFB) {
		return Result{}, cfbError(r, size)
	}
	// archive/zip keeps one record per entry in memory; count them from the
	// end-of-central-directory record before it does.
	if n, err := zipEntryCount(r, size); err == nil && n > docxMaxEntries {
		return Result{}, fmt.Errorf("%w: docx: %d zip entries, limit %d", ErrTooLarge, n, docxMaxEntries)
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return Result{}, fmt.Errorf("%w: docx: not a readable zip archive", ErrMalformed)
	}
	if len(zr.File) > docxMaxEntries {
		return Result{}, fmt.Errorf("%w: docx: %d zip entries, limit %d", ErrTooLarge, len(zr.File), docxMaxEntries)
	}
	parts := make(map[string]*zip.File, len(zr.File))
	for _, f := range zr.File {
		parts[f.Name] = f
	}
	budget := &expansionBudget{left: lim.MaxExpandedBytes}

	pages := 1
	if app := parts["docProps/app.xml"]; app != nil {
		n, err := docxPages(app, budget)
		if err != nil {
			return Result{}, err
		}
		if n > lim.MaxPages {
			return Result{}, tooLarge(LimitPages, "docx: %d pages declared, limit %d", n, lim.MaxPages)
		}
		if n > 0 {
			pages = n
		}
	}

	main, err := docxMainPart(parts, budget)
	if err != nil {
		return Result{}, err
	}
	text, err := docxText(ctx, main, budget, lim)
	if err != nil {
		return Result{}, err
	}
	return Result{Text: text, Pages: pages}, nil
}

// expansionBudget is the decompressed bytes left for the whole package, so
// many modest parts cannot add up to a bomb either.
type expansionBudget struct{ left int64 }

// open checks a part's declared sizes and returns a reader that also
// enforces the limits on the bytes actually inflated: the declared sizes
// are written by whoever built the file.
func (b *expansionBudget) open(f *zip.File, limit int64) (io.ReadCloser, error) {
	declared := f.UncompressedSize64
	if declared > uint64(max(b.left, 0)) {
		return nil, tooLarge(LimitExpanded, "docx: part declares %d bytes expanded, limit %d", declared, max(b.left, 0))
	}
	if declared > uint64(limit) {
		return nil, fmt.Errorf("%w: docx: part declares %d bytes expanded, limit %d", ErrTooLarge, declared, min(b.left, limit))
	}
	if declared > docxRatioFloor && declared > docxMaxRatio*max(f.CompressedSize64, 1) {
		return nil, fmt.Errorf("%w: docx: part compression ratio over %d", ErrTooLarge, docxMaxRatio)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: docx: part cannot be opened", ErrMalformed)
	}
	return &boundedReader{rc: rc, budget: b, limit: limit, compressed: f.CompressedSize64}, nil
}

type boundedReader struct {
	rc         io.ReadCloser
	budget     *expansionBudget
	limit      int64
	read       int64
	compressed uint64
}

func (r *boundedReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.read += int64(n)
	r.budget.left -= int64(n)
	switch {
	case r.budget.left < 0:
		return n, tooLarge(LimitExpanded, "docx: expanded size over the limit")
	case r.read > r.limit:
		return n, fmt.Errorf("%w: docx: expanded size over the limit", ErrTooLarge)
	case r.read > docxRatioFloor && uint64(r.read) > docxMaxRatio*max(r.compressed, 1):
		return n, fmt.Errorf("%w: docx: compression ratio over %d", ErrTooLarge, docxMaxRatio)
	}
	if err != nil && err != io.EOF {
		// archive/zip reports a size or checksum mismatch here.
		return n, fmt.Errorf("%w: docx: corrupt compressed data", ErrMalformed)
	}
	return n, err
}

func (r *boundedReader) Close() error { return r.rc.Close() }

// docxMainPart finds the document body through the package relationships,
// falling back to the name Word uses.
func docxMainPart(parts map[string]*zip.File, budget *expansionBudget) (*zip.File, error) {
	name := "word/document.xml"
	if rels := parts["_rels/.rels"]; rels != nil {
		target, err := officeDocumentTarget(rels, budget)
		if err != nil {
			return nil, err
		}
		if target != "" {
			name = strings.TrimPrefix(path.Clean("/"+target), "/")
		}
	}
	f := parts[name]
	if f == nil {
		return nil, fmt.Errorf("%w: docx: no main document part", ErrMalformed)
	}
	return f, nil
}

func officeDocumentTarget(rels *zip.File, budget *expansionBudget) (string, error) {
	rc, err := budget.open(rels, docxMaxSmallPart)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var doc struct {
		Rels []struct {
			Type   string `xml:"Type,attr"`
			Target string `xml:"Target,attr"`
		} `xml:"Relationship"`
	}
	if err := xml.NewDecoder(rc).Decode(&doc); err != nil {
		return "", xmlError("package relationships", err)
	}
	for _, rel := range doc.Rels {
		if strings.HasSuffix(rel.Type, "/officeDocument") {
			return rel.Target, nil
		}
	}
	return "", nil
}

// docxPages reads the page count Word saved in docProps/app.xml. It is
// Word's last layout, not a promise; 0 means unknown or unreadable.
func docxPages(app *zip.File, budget *expansionBudget) (int, error) {
	rc, err := budget.open(app, docxMaxSmallPart)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	var props struct {
		Pages string `xml:"Pages"`
	}
	if err := xml.NewDecoder(rc).Decode(&props); err != nil {
		// Only the limits matter here: broken metadata does not make the
		// body unreadable, Word opens such files.
		if errors.Is(err, ErrTooLarge) {
			return 0, err
		}
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(props.Pages))
	if err != nil || n < 0 {
		return 0, nil
	}
	return n, nil
}

// docxText streams the main part: it never builds a tree, so memory is the
// text plus the decoder's small state whatever the XML's size.
//
// encoding/xml expands only the five predefined entities and character
// references, and ignores DTDs, so entity-expansion bombs do not apply.
func docxText(ctx context.Context, f *zip.File, budget *expansionBudget, lim Limits) (string, error) {
	rc, err := budget.open(f, lim.MaxExpandedBytes)
	if err != nil {
		return "", err
	}
	defer rc.Close()

	text := newTextBuilder(lim.MaxTextBytes)
	dec := xml.NewDecoder(rc)
	// Text is kept only inside w:t; skip counts open elements inside one
	// whose content is not document text (see docxSkipped). Tabs
	// and breaks count only inside a run: w:tab also defines tab stops in
	// paragraph properties. Paragraphs inside a table cell join with a
	// space so that a row stays on one line, cells separated by tabs.
	inText, skip, inRun, inCell := false, 0, 0, 0
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return "", err
			}
		}
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", xmlError("document body", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if skip > 0 {
				skip++
				continue
			}
			if docxSkipped(t.Name) {
				skip = 1
				continue
			}
			if t.Name.Space != wordNS {
				continue
			}
			switch t.Name.Local {
			case "t":
				inText = true
			case "r":
				inRun++
			case "tc":
				inCell++
			case "tab", "ptab":
				if inRun > 0 {
					text.tab()
				}
			case "br", "cr":
				if inRun > 0 {
					text.lineBreak()
				}
			case "noBreakHyphen":
				if inRun > 0 {
					err = text.WriteString("-")
				}
			}
		case xml.EndElement:
			if skip > 0 {
				skip--
				continue
			}
			if t.Name.Space != wordNS {
				continue
			}
			switch t.Name.Local {
			case "t":
				inText = false
			case "r":
				inRun = max(inRun-1, 0)
			case "p":
				if inCell > 0 {
					text.wordBreak()
				} else {
					text.paragraph()
				}
			case "tc":
				inCell = max(inCell-1, 0)
				text.cellBreak()
			case "tr":
				text.endLine()
			case "tbl":
				text.paragraph()
			}
		case xml.CharData:
			if inText && skip == 0 {
				err = text.WriteString(string(t))
			}
		}
		if err != nil {
			return "", fmt.Errorf("docx: %w", err)
		}
	}
	return text.String(), nil
}

// docxSkipped says whether an element's content is not document text:
// deleted revisions, field codes, and the fallback copy of content that
// Word stores twice for older readers (text boxes, drawings).
func docxSkipped(n xml.Name) bool {
	switch {
	case n.Space == wordNS:
		return n.Local == "delText" || n.Local == "instrText" || n.Local == "delInstrText"
	case n.Space == markupCompatNS:
		return n.Local == "Fallback"
	}
	return false
}

// xmlError keeps the sentinel from a bounded reader and otherwise reports
// malformed XML without the decoder's message, which can quote content.
func xmlError(part string, err error) error {
	for _, sentinel := range []error{ErrTooLarge, ErrMalformed} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	var syntax *xml.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Errorf("%w: docx: %s: XML syntax error at line %d", ErrMalformed, part, syntax.Line)
	}
	return fmt.Errorf("%w: docx: %s: unreadable XML", ErrMalformed, part)
}

// zipEntryCount reads the entry count from the end-of-central-directory
// record. It returns an error when the record is not found; zip.NewReader
// then reports the archive as malformed.
func zipEntryCount(r io.ReaderAt, size int64) (uint64, error) {
	const eocdLen, maxComment = 22, 65535
	n := min(size, eocdLen+maxComment)
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, size-n); err != nil && err != io.EOF {
		return 0, err
	}
	i := bytes.LastIndex(buf, []byte("PK\x05\x06"))
	if i < 0 || i+eocdLen > len(buf) {
		return 0, errors.New("no end of central directory")
	}
	count := uint64(binary.LittleEndian.Uint16(buf[i+10:]))
	if count == 0xFFFF {
		// ZIP64: the real count is in the ZIP64 record. A DOCX never needs
		// it; zip.NewReader's count is checked after instead.
		return 0, errors.New("zip64 archive")
	}
	return count, nil
}

// cfbError explains a Compound File Binary upload named .docx: Office
// stores a password-protected DOCX as a CFB holding an EncryptionInfo
// stream; anything else is a legacy .doc. The directory entry names are
// UTF-16; looking for the name in the first directory sectors is enough.
func cfbError(r io.ReaderAt, size int64) error {
	buf := make([]byte, min(size, 64<<10))
	if _, err := r.ReadAt(buf, 0); err != nil && err != io.EOF {
		return fmt.Errorf("%w: docx: read failed", ErrMalformed)
	}
	if bytes.Contains(buf, utf16LE("EncryptionInfo")) {
		return fmt.Errorf("%w: docx: password-protected Office document", ErrEncrypted)
	}
	return fmt.Errorf("%w: legacy Word (.doc) file; save it as DOCX or PDF (supported: %s)", ErrUnsupported, SupportedTypes())
}

func utf16LE(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return b
}

package extract

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// textBuilder accumulates extracted text, normalising whitespace as it goes
// and refusing to grow past a limit, so a parser never holds more than
// MaxTextBytes of output whatever its input claims.
//
// Normalisation: a run of horizontal whitespace becomes one space, or one
// tab if it held a tab (tabs separate table cells); lines are trimmed; runs
// of blank lines become one blank line (a paragraph break); other control
// characters and invalid UTF-8 are dropped.
type textBuilder struct {
	buf      strings.Builder
	max      int64
	space    byte // pending horizontal separator: 0, ' ' or '\t'
	newlines int  // pending line breaks, at most 2
	afterCR  bool // the last rune was '\r', so a '\n' now ends no new line
	// flowing makes line breaks in the text mere spaces, as in HTML
	// outside <pre>; only structural breaks (endLine, paragraph) count.
	flowing bool
	err     error
}

func newTextBuilder(max int64) *textBuilder {
	return &textBuilder{max: max}
}

// WriteString adds s. After the limit is exceeded it keeps returning the
// same ErrTooLarge error.
func (b *textBuilder) WriteString(s string) error {
	if b.err != nil {
		return b.err
	}
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		s = s[n:]
		if r == utf8.RuneError && n == 1 {
			continue
		}
		b.writeRune(r)
		if b.err != nil {
			return b.err
		}
	}
	return nil
}

func (b *textBuilder) writeRune(r rune) {
	if b.err != nil {
		return // over the limit: nothing more is kept
	}
	afterCR := b.afterCR
	b.afterCR = r == '\r'
	switch {
	case r > ' ' && r < 0x7f:
		// Printable ASCII, most of any text: no decision to make.
		b.write(r)
	case r == '\n' && afterCR:
		// The LF of a CRLF: the CR already ended the line.
	case r == '\n' || r == '\r' || r == '\f' || r == '\v' || r == '\u2028':
		if b.flowing {
			b.wordBreak()
		} else {
			b.lineBreak()
		}
	case r == '\u2029':
		b.paragraph()
	case r == '\t':
		b.tab()
	case unicode.IsSpace(r):
		if b.space == 0 {
			b.space = ' '
		}
	case unicode.IsControl(r), r == '\uFEFF', r == '\uFFFE', r == '\uFFFF', r == '\u00AD':
		// Dropped: they carry no text and confuse downstream tokenisers.
		// Soft hyphens (U+00AD, and U+FFFE, which PDFium puts where it
		// joined a word hyphenated across lines) must vanish for the
		// word to read whole.
	default:
		b.write(r)
	}
}

// write adds r after any pending separator, or sets ErrTooLarge.
func (b *textBuilder) write(r rune) {
	b.flush()
	if int64(b.buf.Len()+utf8.RuneLen(r)) > b.max {
		b.err = tooLarge(LimitText, "extracted text over %d bytes", b.max)
		return
	}
	if r < utf8.RuneSelf {
		b.buf.WriteByte(byte(r))
	} else {
		b.buf.WriteRune(r)
	}
}

// lineBreak ends the current line. Two in a row (an empty line) make a
// paragraph break; more are collapsed.
func (b *textBuilder) lineBreak() {
	b.space = 0
	if b.buf.Len() > 0 && b.newlines < 2 {
		b.newlines++
	}
}

// endLine ends the current line unless it is already ended: block
// elements and table rows call it at both ends.
func (b *textBuilder) endLine() {
	b.space = 0
	if b.buf.Len() > 0 && b.newlines == 0 {
		b.newlines = 1
	}
}

// paragraph ends the current paragraph.
func (b *textBuilder) paragraph() {
	b.space = 0
	if b.buf.Len() > 0 {
		b.newlines = 2
	}
}

// wordBreak separates words with a space unless a tab is pending.
func (b *textBuilder) wordBreak() {
	if b.space == 0 {
		b.space = ' '
	}
}

// tab adds a tab, which a following space does not replace.
func (b *textBuilder) tab() { b.space = '\t' }

// cellBreak separates table cells within a row.
func (b *textBuilder) cellBreak() {
	if b.buf.Len() > 0 && b.newlines == 0 {
		b.space = '\t'
	}
}

// flush writes pending separators before the next visible rune. Leading
// and trailing whitespace is never written, which trims lines and the text.
func (b *textBuilder) flush() {
	switch {
	case b.newlines > 0:
		b.buf.WriteString("\n\n"[:b.newlines])
	case b.space != 0 && b.buf.Len() > 0:
		b.buf.WriteByte(b.space)
	}
	b.newlines, b.space = 0, 0
}

func (b *textBuilder) String() string { return b.buf.String() }

// extractText returns plain text or Markdown as uploaded: whitespace is
// meaningful in both (code blocks, hard line breaks). It only strips a BOM
// and turns CRLF into LF, decodes UTF-16 that has a byte-order mark, and
// rejects what is not UTF-8 text.
func extractText(ctx context.Context, f Format, r io.ReaderAt, size int64, lim Limits) (Result, error) {
	if size > lim.MaxTextBytes {
		return Result{}, tooLarge(LimitText, "%s: %d bytes of text, limit %d", f, size, lim.MaxTextBytes)
	}
	data := make([]byte, size)
	if _, err := r.ReadAt(data, 0); err != nil && err != io.EOF {
		return Result{}, fmt.Errorf("%w: %s: read: short or failed read", ErrMalformed, f)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	if _, _, ok := utf16Order(data); ok {
		decoded, err := decodeUTF16(data, false)
		if err != nil {
			return Result{}, fmt.Errorf("%w: %s: %v", ErrMalformed, f, err)
		}
		if int64(len(decoded)) > lim.MaxTextBytes {
			return Result{}, tooLarge(LimitText, "%s: %d bytes of text, limit %d", f, len(decoded), lim.MaxTextBytes)
		}
		data = decoded
	}
	if !utf8.Valid(data) {
		return Result{}, fmt.Errorf("%w: %s: %s", ErrUnsupported, f, whyNotUTF8(data))
	}
	if why := notText(data); why != "" {
		return Result{}, fmt.Errorf("%w: %s: %s", ErrUnsupported, f, why)
	}
	return Result{Text: strings.ReplaceAll(string(data), "\r\n", "\n"), Pages: 1}, nil
}

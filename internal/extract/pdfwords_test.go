package extract

import (
	"errors"
	"strings"
	"testing"
	"unicode"
)

// line lays out text on one baseline in one size, left to right: each
// letter is advance wide, and a gap of space points separates one from the
// next ("" in gaps means the letters touch). A ' ' in text is PDFium's
// generated space, not a glyph.
func line(text string, x, base, size, advance, space float32) []pdfGlyph {
	var gs []pdfGlyph
	for _, r := range text {
		if r == ' ' {
			gs = append(gs, pdfGlyph{r: ' ', generated: true})
			continue
		}
		gs = append(gs, pdfGlyph{r: r, upright: true, x0: x, x1: x + advance, base: base, size: size})
		x += advance + space
	}
	return gs
}

// at is one glyph of width advance at x.
func at(r rune, x, base, size, advance float32) pdfGlyph {
	return pdfGlyph{r: r, upright: true, x0: x, x1: x + advance, base: base, size: size}
}

var (
	pdfiumLine  = pdfGlyph{r: '\r', generated: true}
	pdfiumLF    = pdfGlyph{r: '\n', generated: true}
	pdfiumSpace = pdfGlyph{r: ' ', generated: true}
)

func writeGlyphs(t *testing.T, pages ...[]pdfGlyph) string {
	t.Helper()
	text := newTextBuilder(1 << 20)
	w := &glyphWriter{dst: text}
	for _, gs := range pages {
		if err := w.write(gs); err != nil {
			t.Fatal(err)
		}
		if err := w.endPage(); err != nil {
			t.Fatal(err)
		}
		text.paragraph()
	}
	return text.String()
}

func cat(parts ...any) []pdfGlyph {
	var gs []pdfGlyph
	for _, p := range parts {
		switch p := p.(type) {
		case pdfGlyph:
			gs = append(gs, p)
		case []pdfGlyph:
			gs = append(gs, p...)
		}
	}
	return gs
}

func TestGlyphWriterGroupsWords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		glyphs []pdfGlyph
		want   string
	}{{
		// x, then a superscript d in a smaller size right after it:
		// PDFium starts a new line there, pdftotext reads "xd".
		name:   "superscript touching its base",
		glyphs: cat(at('x', 72, 700, 12, 6), pdfiumLine, pdfiumLF, at('d', 78, 704.8, 8, 4.4), pdfiumSpace, at('+', 88, 700, 12, 7)),
		want:   "xd +",
	}, {
		name:   "subscript touching its base",
		glyphs: cat(at('m', 72, 680, 12, 10), pdfiumLine, pdfiumLF, line("n0", 82, 677, 8, 4.4, 0), pdfiumSpace, at('=', 96, 680, 12, 7)),
		want:   "mn0 =",
	}, {
		// A superscript a thin space away is a word of its own.
		name:   "superscript apart",
		glyphs: cat(at('x', 72, 700, 12, 6), pdfiumLine, pdfiumLF, at('d', 79, 704.8, 8, 4.4), pdfiumSpace, line("mod", 90, 700, 12, 6, 0)),
		want:   "x d mod",
	}, {
		// Math variables a thin space (1/6 em) apart, no space glyph
		// between them: PDFium may join them, pdftotext does not.
		name:   "thin space without a space glyph",
		glyphs: cat(line("ab", 72, 660, 12, 6, 2), at('m', 100, 660, 12, 10), at('o', 110, 660, 12, 6)),
		want:   "a b mo",
	}, {
		// Kerning a letter close (under a tenth of the size) is within
		// a word, whatever PDFium made of it.
		name:   "PDFium space inside a word",
		glyphs: cat(at('P', 72, 600, 10, 6.4), pdfiumSpace, line("ow", 78.7, 600, 10, 5, 0)),
		want:   "Pow",
	}, {
		name:   "a space glyph always separates",
		glyphs: cat(at('a', 72, 600, 10, 5), pdfGlyph{r: ' ', upright: true, x0: 77, x1: 77.1, base: 600, size: 10}, at('b', 77.1, 600, 10, 5), at('c', 82.1, 600, 10, 5)),
		want:   "a bc",
	}, {
		name:   "next line",
		glyphs: cat(line("ab", 72, 600, 10, 5, 0), pdfiumLine, pdfiumLF, line("cd", 72, 588, 10, 5, 0)),
		want:   "ab\ncd",
	}, {
		// On the same baseline far right (another column): PDFium's
		// line break stays.
		name:   "column on the same baseline",
		glyphs: cat(line("ab", 72, 600, 10, 5, 0), pdfiumLine, pdfiumLF, line("cd", 300, 600, 10, 5, 0)),
		want:   "ab\ncd",
	}, {
		// Back to the left over what is written: PDFium's separator
		// stands.
		name:   "overprint",
		glyphs: cat(line("ab", 72, 600, 10, 5, 0), pdfiumSpace, line("cd", 72, 600, 10, 5, 0)),
		want:   "ab cd",
	}, {
		name:   "glyph not upright",
		glyphs: cat(line("ab", 72, 600, 10, 5, 0), pdfGlyph{r: 'c', x0: 82, x1: 87, base: 600, size: 10}, line("d", 87, 600, 10, 5, 0)),
		want:   "abcd",
	}, {
		// Code set letter by letter with a little air between every
		// two (fixed columns): a line whose every glyph stands apart
		// is judged as a whole, as poppler does, so the narrowest gaps
		// are letter spacing and the wide ones word breaks.
		name: "letter-spaced line",
		glyphs: cat(line("20", 40, 500, 8, 4, 0), pdfiumSpace,
			line("return", 72, 500, 8, 3.3, 1.06), pdfiumSpace, line("product", 112, 500, 8, 3.3, 1.06)),
		want: "20 return product",
	}, {
		// A word in the line ("Crc") says the gaps are word breaks.
		name:   "letters apart in a line with words",
		glyphs: cat(line("Crc", 72, 500, 8, 3.3, 0), pdfiumSpace, line("product", 90, 500, 8, 3.3, 1.06)),
		want:   "Crc p r o d u c t",
	}, {
		name:   "letter-spaced line of two",
		glyphs: cat(line("ab", 72, 500, 8, 3.3, 1.06), pdfiumLine, pdfiumLF, line("cd", 72, 490, 8, 3.3, 0)),
		want:   "ab\ncd",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := writeGlyphs(t, tt.glyphs); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// A page's glyphs come in chunks; where a chunk ends changes nothing.
func TestGlyphWriterChunks(t *testing.T) {
	t.Parallel()
	page := cat(at('x', 72, 700, 12, 6), pdfiumLine, pdfiumLF, at('d', 78, 704.8, 8, 4.4), pdfiumSpace,
		line("return", 72, 500, 8, 3.3, 1.06), pdfiumSpace, line("product", 112, 500, 8, 3.3, 1.06), pdfiumLine, pdfiumLF,
		line("ab", 72, 480, 12, 6, 2))
	want := writeGlyphs(t, page)
	for n := 1; n < len(page); n++ {
		text := newTextBuilder(1 << 20)
		w := &glyphWriter{dst: text}
		for start := 0; start < len(page); start += n {
			if err := w.write(page[start:min(start+n, len(page))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.endPage(); err != nil {
			t.Fatal(err)
		}
		if got := text.String(); got != want {
			t.Fatalf("chunks of %d: got %q, want %q", n, got, want)
		}
	}
}

// Pages do not run into each other: the first glyph of a page follows
// nothing, though it sits right after the last one of the page before.
func TestGlyphWriterPages(t *testing.T) {
	t.Parallel()
	got := writeGlyphs(t, line("ab", 72, 600, 10, 5, 0), line("cd", 82, 600, 10, 5, 0))
	if want := "ab\n\ncd"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestGlyphWriterTextLimit(t *testing.T) {
	t.Parallel()
	w := &glyphWriter{dst: newTextBuilder(5)}
	err := w.write(line(strings.Repeat("a", 10), 72, 600, 10, 5, 0))
	if err == nil {
		err = w.endPage()
	}
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error = %v, want ErrTooLarge", err)
	}
}

// FuzzGlyphWriter checks, for any glyphs (positions from a hostile page
// included), that grouping only decides whitespace: every visible
// character comes out once, in order.
func FuzzGlyphWriter(f *testing.F) {
	f.Add([]byte("x\x00\x00\x48\x00\x06\x00\x0c\nd\x00\x00\x4e\x04\x04\x04\x08"))
	f.Add([]byte("a\x00\x00\x10\x00\x05\x00\x0a b\x80\x00\x10\x00\x05\x00\x0a"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Each glyph: a rune byte, a flags byte, then x, advance, base
		// shift and size as signed bytes.
		var gs []pdfGlyph
		x, base := float32(0), float32(0)
		for ; len(data) >= 6; data = data[6:] {
			g := pdfGlyph{r: rune(data[0]), generated: data[1]&1 != 0, upright: data[1]&2 == 0}
			x += float32(int8(data[2]))
			base += float32(int8(data[4])) / 4
			g.x0, g.x1, g.base, g.size = x, x+float32(int8(data[3])), base, float32(int8(data[5]))
			gs = append(gs, g)
		}
		text := newTextBuilder(1 << 20)
		w := &glyphWriter{dst: text}
		if err := w.write(gs); err != nil {
			t.Fatal(err)
		}
		if err := w.endPage(); err != nil {
			t.Fatal(err)
		}
		var want strings.Builder
		for _, g := range gs {
			if !unicode.IsSpace(g.r) && !unicode.IsControl(g.r) && g.r != '\u00AD' {
				want.WriteRune(g.r)
			}
		}
		got := strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) {
				return -1
			}
			return r
		}, text.String())
		if got != want.String() {
			t.Fatalf("visible characters %q, want %q", got, want.String())
		}
	})
}

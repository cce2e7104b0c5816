package extract

import (
	"context"
	"errors"
	"fmt"
	"io"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// htmlSkipped are elements whose content is not text a reader sees: code,
// styles, metadata, and embedded vector graphics.
var htmlSkipped = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Head: true, atom.Title: true,
	atom.Template: true, atom.Noscript: true, atom.Svg: true,
}

// htmlGraphics are elements that show a picture rather than text.
var htmlGraphics = map[atom.Atom]bool{
	atom.Svg: true, atom.Img: true, atom.Picture: true, atom.Canvas: true,
	atom.Object: true, atom.Embed: true, atom.Video: true,
}

// htmlBlocks are elements that start a new line of text.
var htmlBlocks = map[atom.Atom]bool{
	atom.P: true, atom.Div: true, atom.Br: true, atom.Li: true, atom.Ul: true, atom.Ol: true,
	atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true, atom.H6: true,
	atom.Table: true, atom.Tr: true, atom.Section: true, atom.Article: true, atom.Header: true,
	atom.Footer: true, atom.Nav: true, atom.Aside: true, atom.Blockquote: true, atom.Pre: true,
	atom.Dl: true, atom.Dt: true, atom.Dd: true, atom.Hr: true, atom.Form: true, atom.Fieldset: true,
	atom.Figure: true, atom.Figcaption: true, atom.Main: true, atom.Address: true,
	atom.Details: true, atom.Summary: true, atom.Caption: true, atom.Body: true,
}

// htmlParagraphs end with a blank line rather than a line break.
var htmlParagraphs = map[atom.Atom]bool{
	atom.P: true, atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true,
	atom.H6: true, atom.Table: true, atom.Blockquote: true, atom.Pre: true, atom.Ul: true, atom.Ol: true,
}

// extractHTML streams the page through the x/net/html tokenizer rather than
// building a DOM: memory stays at the text plus one token. Entities are
// decoded by the tokenizer.
func extractHTML(ctx context.Context, r io.ReaderAt, size int64, lim Limits) (Result, error) {
	head := make([]byte, min(size, 1024))
	if _, err := r.ReadAt(head, 0); err != nil && err != io.EOF {
		return Result{}, fmt.Errorf("%w: html: read failed", ErrMalformed)
	}
	var src io.Reader = io.NewSectionReader(r, 0, size)
	if _, _, ok := utf16Order(head); ok {
		src = io.NewSectionReader(r, 2, size-2) // the decoder would keep the mark as a character
	}
	if enc, name := htmlEncoding(head); name != "utf-8" {
		src = enc.NewDecoder().Reader(src)
	}
	z := html.NewTokenizer(src)
	// One token (a text run, a tag with its attributes) may not exceed the
	// text limit; the tokenizer's buffer is the rest of its memory.
	z.SetMaxBuf(int(min(lim.MaxTextBytes, int64(^uint(0)>>1))))
	text := newTextBuilder(lim.MaxTextBytes)
	text.flowing = true
	pre := 0
	// skipping holds the open elements whose content is hidden. HTML in
	// the wild leaves <head> unclosed, so <body> ends it too.
	var skipping []atom.Atom
	graphics := false
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return Result{}, err
			}
		}
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			err := z.Err()
			if err == io.EOF {
				return Result{Text: text.String(), Pages: 1, Graphics: graphics}, nil
			}
			if errors.Is(err, html.ErrBufferExceeded) {
				return Result{}, tooLarge(LimitText, "html: one element over %d bytes", lim.MaxTextBytes)
			}
			return Result{}, fmt.Errorf("%w: html: read failed", ErrMalformed)
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if a == atom.Body {
				skipping = skipping[:0]
			}
			graphics = graphics || htmlGraphics[a]
			if htmlSkipped[a] && tt == html.StartTagToken {
				skipping = append(skipping, a)
				continue
			}
			if len(skipping) == 0 {
				htmlBreak(text, a)
			}
			if a == atom.Pre && tt == html.StartTagToken {
				pre++
				text.flowing = false
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if len(skipping) > 0 {
				if skipping[len(skipping)-1] == a {
					skipping = skipping[:len(skipping)-1]
				}
				continue
			}
			htmlBreak(text, a)
			if a == atom.Pre && pre > 0 {
				pre--
				text.flowing = pre == 0
			}
		case html.TextToken:
			if len(skipping) > 0 {
				continue
			}
			if err := text.WriteString(string(z.Text())); err != nil {
				return Result{}, fmt.Errorf("html: %w", err)
			}
		}
	}
}

func htmlBreak(text *textBuilder, a atom.Atom) {
	switch {
	case htmlParagraphs[a]:
		text.paragraph()
	case htmlBlocks[a]:
		text.endLine()
	case a == atom.Td || a == atom.Th:
		text.cellBreak()
	}
}

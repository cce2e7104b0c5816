// Package extract turns an uploaded document into plain text: PDF (text
// layer), DOCX, plain text and Markdown, and HTML. Every parser treats its
// input as hostile: it is bounded in size, time and decompression ratio, and
// reports malformed, encrypted or truncated input as an error, never a panic.
//
// Errors name the format and what was wrong with the structure ("pdf: no
// %%EOF marker") but never quote the document: the error text ends up in logs
// and job records that the vendor may see in a diagnostics bundle.
package extract

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Format is a document format that Extract understands.
type Format string

// The supported formats. Their string values are stored with documents, so
// they must not change.
const (
	PDF      Format = "pdf"
	DOCX     Format = "docx"
	Text     Format = "text"
	Markdown Format = "markdown"
	HTML     Format = "html"
)

// The sentinel errors. Every error from Detect and Extract wraps exactly one
// of them (or, for Extract, the context's error), so callers can choose a
// user-facing message and whether to retry with errors.Is.
var (
	ErrUnsupported = errors.New("extract: unsupported document type")
	ErrMalformed   = errors.New("extract: malformed document")
	ErrEncrypted   = errors.New("extract: encrypted document")
	// ErrTooLarge covers the input size, the expanded size of compressed
	// parts (zip bombs), the page count and the extracted text size.
	ErrTooLarge = errors.New("extract: document too large")
)

// SupportedTypes is the human-readable list of what can be uploaded, for
// error messages and the upload page.
func SupportedTypes() string {
	return "PDF, DOCX, plain text, Markdown, HTML"
}

// Limits bounds the work and memory spent on one document.
type Limits struct {
	// MaxInputBytes is the largest document accepted.
	MaxInputBytes int64
	// MaxExpandedBytes bounds the total bytes decompressed from a DOCX
	// package, whatever its entries declare.
	MaxExpandedBytes int64
	// MaxTextBytes bounds the extracted text.
	MaxTextBytes int64
	// MaxPages bounds the page count (PDF, and DOCX as declared).
	MaxPages int
}

// DefaultLimits are sized for office documents and long manuals: the R
// reference manual (3,700 pages, 6.5 MB) fits, a 100 MB scan does not.
func DefaultLimits() Limits {
	return Limits{
		MaxInputBytes:    64 << 20,
		MaxExpandedBytes: 256 << 20,
		MaxTextBytes:     32 << 20,
		MaxPages:         5000,
	}
}

// Result is the extracted text of one document.
type Result struct {
	// Text is whitespace-normalised UTF-8: runs of spaces collapse to one,
	// lines are trimmed, and paragraphs are separated by one blank line.
	// Plain text and Markdown are kept as uploaded (whitespace is syntax
	// in Markdown), apart from a leading BOM and CRLF line ends.
	Text string
	// Pages is at least 1 for any successful extraction.
	Pages int
	// Graphics says the document shows pictures (HTML images, SVG) whose
	// text, if any, is not extracted: with no Text, that is why.
	Graphics bool
}

// Extract reads the document of format f from r (size bytes) and returns its
// text. It honours ctx's cancellation and deadline, returning an error that
// wraps ctx.Err() (not a sentinel: the document may be fine). The only other
// error without a sentinel is PDFium failing to start, which is the
// process's fault, not the document's.
//
// The first PDF in a process compiles PDFium, which takes seconds; callers
// with a deadline per document should allow for it or warm up with a small
// PDF at start.
func Extract(ctx context.Context, f Format, r io.ReaderAt, size int64, lim Limits) (res Result, err error) {
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("extract: %w", err)
	}
	if size < 0 {
		return Result{}, fmt.Errorf("%w: negative size", ErrMalformed)
	}
	if size == 0 {
		return Result{}, fmt.Errorf("%w: empty document", ErrMalformed)
	}
	if size > lim.MaxInputBytes {
		return Result{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, lim.MaxInputBytes)
	}

	// The parsers below include third-party code (pdfium's Go bindings,
	// x/net/html). A bug there must fail one document, not the worker. The
	// panic value is dropped: it may quote the document.
	defer func() {
		if p := recover(); p != nil {
			res, err = Result{}, fmt.Errorf("%w: %s: parser failed unexpectedly", ErrMalformed, f)
			if ctxErr := ctx.Err(); ctxErr != nil {
				// A killed PDFium instance can panic in its bindings.
				err = fmt.Errorf("extract: %s: %w", f, ctxErr)
			}
		}
	}()

	switch f {
	case PDF:
		res, err = extractPDF(ctx, r, size, lim)
	case DOCX:
		res, err = extractDOCX(ctx, r, size, lim)
	case HTML:
		res, err = extractHTML(ctx, r, size, lim)
	case Text, Markdown:
		res, err = extractText(ctx, f, r, size, lim)
	default:
		return Result{}, fmt.Errorf("%w: format %q (supported: %s)", ErrUnsupported, string(f), SupportedTypes())
	}
	if err != nil {
		// A parser interrupted by ctx may report a symptom (a closed
		// module, a short read); the cause is what the caller needs.
		if ctxErr := ctx.Err(); ctxErr != nil {
			return Result{}, fmt.Errorf("extract: %s: %w", f, ctxErr)
		}
		return Result{}, err
	}
	if res.Pages < 1 {
		res.Pages = 1
	}
	return res, nil
}

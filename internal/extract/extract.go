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
	"time"
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
	// parts (zip bombs), the page count, the extracted text size, and the
	// memory and time the extraction needed. Where the bound is one of
	// Limits', the error is a *LimitError that names it.
	ErrTooLarge = errors.New("extract: document too large")
)

// Limit names one of Limits' bounds.
type Limit string

// The bounds a LimitError can name.
const (
	LimitInput    Limit = "input"    // MaxInputBytes
	LimitExpanded Limit = "expanded" // MaxExpandedBytes
	LimitText     Limit = "text"     // MaxTextBytes
	LimitPages    Limit = "pages"    // MaxPages
	LimitMemory   Limit = "memory"   // MaxMemoryBytes
	LimitTime     Limit = "time"     // MaxDuration
)

// LimitError is a document over one of Limits' bounds, so that a caller can
// tell the operator which setting to raise. It wraps ErrTooLarge.
type LimitError struct {
	Limit  Limit
	detail string
}

func (e *LimitError) Error() string { return ErrTooLarge.Error() + ": " + e.detail }
func (e *LimitError) Unwrap() error { return ErrTooLarge }

func tooLarge(l Limit, format string, args ...any) error {
	return &LimitError{Limit: l, detail: fmt.Sprintf(format, args...)}
}

// sizeString shows a byte count the way operators write limits.
func sizeString(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

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
	// MaxMemoryBytes bounds the memory PDFium may use for one PDF (its
	// WebAssembly linear memory, where a PDF's cost grows: PDFium keeps
	// layout data for every character of a page). The Go side of every
	// format is bounded by the other limits: it holds the input, the text
	// and, for a PDF, 1,024 characters of a page at a time.
	MaxMemoryBytes int64
	// MaxDuration bounds one extraction's time; zero means no bound
	// besides ctx's.
	MaxDuration time.Duration
}

// DefaultLimits are sized for office documents and long manuals: the R
// reference manual (2,415 pages, 6.5 MB) fits, a 100 MB scan does not.
func DefaultLimits() Limits {
	return Limits{
		MaxInputBytes:    64 << 20,
		MaxExpandedBytes: 256 << 20,
		MaxTextBytes:     32 << 20,
		MaxPages:         5000,
		MaxMemoryBytes:   512 << 20,
		MaxDuration:      2 * time.Minute,
	}
}

// errTimeLimit is the cause of the context that MaxDuration ends.
var errTimeLimit = errors.New("extract: time limit")

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
// wraps ctx.Err() (not a sentinel: the document may be fine); running out
// of lim.MaxDuration is the document's doing, a *LimitError. The only other
// error without a sentinel is PDFium failing to start, which is the
// process's fault, not the document's.
//
// The first PDF in a process compiles PDFium, which takes seconds (or loads
// it from the compile cache, see SetCompileCache); lim.MaxDuration starts
// after that, but a deadline on ctx does not, so callers with one should
// call Warm at start.
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
		return Result{}, tooLarge(LimitInput, "%d bytes, limit %d", size, lim.MaxInputBytes)
	}
	parent := ctx
	// interrupted is the error for a parser stopped by ctx: the caller's
	// cancellation, or the time limit.
	interrupted := func() error {
		if parent.Err() == nil && errors.Is(context.Cause(ctx), errTimeLimit) {
			return tooLarge(LimitTime, "%s: extraction took longer than the time limit of %s", f, lim.MaxDuration)
		}
		return fmt.Errorf("extract: %s: %w", f, ctx.Err())
	}

	// The parsers below include third-party code (pdfium's Go bindings,
	// x/net/html). A bug there must fail one document, not the worker. The
	// panic value is dropped: it may quote the document.
	defer func() {
		if p := recover(); p != nil {
			res, err = Result{}, fmt.Errorf("%w: %s: parser failed unexpectedly", ErrMalformed, f)
			// A PDFium call stopped by ctx may end in a panic. (By now
			// the time limit's own cancel has run: only its deadline or
			// the caller's ctx count.)
			if parent.Err() != nil || errors.Is(context.Cause(ctx), errTimeLimit) {
				err = interrupted()
			}
		}
	}()

	if f == PDF {
		// The cheap check first, so that a truncated upload fails at
		// once; then compiling PDFium (the first PDF in a process, unless
		// Warm ran), which is the process's start-up, not the document's
		// time.
		if err := checkPDFFraming(r, size); err != nil {
			return Result{}, err
		}
		if err := Warm(); err != nil {
			return Result{}, fmt.Errorf("extract: pdf: start pdfium: %w", err)
		}
	}
	if lim.MaxDuration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, lim.MaxDuration, errTimeLimit)
		defer cancel()
	}

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
		if ctx.Err() != nil && !errors.As(err, new(*LimitError)) {
			return Result{}, interrupted()
		}
		return Result{}, err
	}
	if res.Pages < 1 {
		res.Pages = 1
	}
	return res, nil
}

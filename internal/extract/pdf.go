package extract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime/debug"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
)

// PDFs are read by PDFium, the PDF engine of Chromium, compiled to
// WebAssembly and run under wazero (pure Go, no cgo). PDFium was chosen over
// the pure-Go parsers for fidelity: on the Debian-manuals corpus it finds
// 99.9% of the words pdftotext finds, against 28% for ledongthuc/pdf (see
// bench/README.md). Running it as WebAssembly is the security story for
// hostile input: a memory-safety bug in PDFium's C++ stays inside a bounded
// linear memory with no file system or network, and the Go process sees an
// error.

// pdfiumMaxMemoryPages lets wazero grow a PDFium memory as far as 32-bit
// WebAssembly can address (4 GiB, in 64 KiB pages). The real bound is the
// document's Limits.MaxMemoryBytes, enforced by pdfMemory (pdfmem.go).
const pdfiumMaxMemoryPages = 1 << 16

// pdfEngine is compiled once per process and shared, because compiling the
// 5 MB WebAssembly module takes seconds while instantiating it takes
// milliseconds. It is the package's only shared state, and is immutable
// once built: Extract's signature leaves no caller-owned place to keep it,
// and each document still gets a fresh instance (see withPDFium). A failed
// compile is remembered: it means the process is broken, not a document.
var pdfEngine = sync.OnceValues(func() (*pdfiumEngine, error) {
	dir, warn := cacheSettings()
	return newPDFEngine(dir, warn)
})

// pdfMemory allocates every PDFium instance's linear memory.
var pdfMemory = &pdfMemories{}

// newPDFEngine compiles PDFium, or loads it from the compile cache in
// cacheDir (see pdfcache.go).
func newPDFEngine(cacheDir string, warn func(string)) (*pdfiumEngine, error) {
	// Compiling leaves a few hundred megabytes of garbage on the Go heap;
	// return it to the system now rather than let an idle worker hold it.
	defer debug.FreeOSMemory()
	module, err := pdfiumYieldModule()
	if err == nil {
		if reader, err := addGlyphReader(module); err == nil {
			module = reader
		} else {
			warn(fmt.Sprintf("PDF engine reads glyphs one call at a time, several times slower: %v", err))
		}
		var engine *pdfiumEngine
		if engine, err = cachedPDFEngine(module, true, cacheDir, warn); err == nil {
			return engine, nil
		}
	}
	warn(fmt.Sprintf("PDF engine runs without its loop yields, about three times slower: %v", err))
	return cachedPDFEngine(pdfiumWASM, false, cacheDir, warn)
}

// cachedPDFEngine compiles module through the compile cache in cacheDir.
func cachedPDFEngine(module []byte, yields bool, cacheDir string, warn func(string)) (*pdfiumEngine, error) {
	compile := func(cache wazero.CompilationCache) (*pdfiumEngine, error) {
		return compilePDFium(module, yields, cache)
	}
	cache := openCompileCache(cacheDir, warn)
	engine, err := compile(cache)
	if err != nil && cache != nil {
		// wazero fails rather than recompiles when an entry that passed
		// the manifest does not load (a different wazero build, say).
		warn(fmt.Sprintf("PDF engine cache %s rebuilt: %v", cacheDir, err))
		_ = cache.Close(context.Background())
		if err := emptyDir(cacheDir); err != nil {
			warn(fmt.Sprintf("PDF engine cache %s cannot be emptied (%v); compiling without it", cacheDir, err))
			return compile(nil)
		}
		cache = openCompileCache(cacheDir, warn)
		engine, err = compile(cache)
	}
	// Seal only what changed: a cache that was loaded as it stood may be
	// read-only (baked into an image).
	if err == nil && cache != nil && checkManifest(cacheDir) != nil {
		if err := sealCompileCache(cacheDir); err != nil {
			warn(fmt.Sprintf("PDF engine cache %s: manifest not written (%v); the next start compiles again", cacheDir, err))
		}
	}
	return engine, err
}

// withPDFium runs fn on a fresh PDFium instance whose memory is capped at
// memLimit bytes, and discards the instance after: no state from one
// document (caches, fonts, a corrupted heap) can reach the next, and its
// memory goes back to the system. Every call into the instance runs under
// ctx: when ctx ends, the call in progress stops at its next loop
// iteration (see pdfYield) and returns an error. If PDFium asked for more
// memory than the cap, the result is the memory limit's error, whatever fn
// returned.
func withPDFium(ctx context.Context, memLimit int64, fn func(*pdfiumInstance) error) error {
	engine, err := pdfEngine()
	if err != nil {
		return fmt.Errorf("extract: pdf: start pdfium: %w", err)
	}
	var inst *pdfiumInstance
	mem, err := pdfMemory.claim(uint64(max(memLimit, 0)), func() (err error) {
		inst, err = engine.instantiate(experimental.WithMemoryAllocator(ctx, pdfMemory))
		return err
	})
	if mem != nil {
		defer mem.release()
		if mem.reserveErr != nil {
			if inst != nil {
				inst.close()
			}
			return fmt.Errorf("extract: pdf: pdfium memory: %w", mem.reserveErr)
		}
	}
	if err != nil {
		if mem != nil {
			// A failed instantiation may not have closed its module, so
			// wazero's reference is let go here (Free is once only).
			mem.Free()
		}
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case mem != nil && mem.refusedGrowth():
			return memoryLimitError(memLimit)
		}
		return fmt.Errorf("extract: pdf: pdfium instance: %w", err)
	}
	if mem == nil {
		inst.close()
		return errors.New("extract: pdf: pdfium instance was not made for this document; its memory is not bounded")
	}
	defer inst.close()
	err = fn(inst)
	if mem.refusedGrowth() {
		// Even when fn succeeded: PDFium may have dropped what it could
		// not allocate, and a partial text must not pass for the whole.
		return memoryLimitError(memLimit)
	}
	return err
}

func memoryLimitError(limit int64) error {
	return tooLarge(LimitMemory, "pdf: needs more than the memory limit of %s", sizeString(limit))
}

// extractPDF reads a PDF whose framing Extract has checked.
func extractPDF(ctx context.Context, r io.ReaderAt, size int64, lim Limits) (Result, error) {
	// PDFium gets the file in its own memory: reading it through a
	// callback instead was no faster, and the copy counts against the
	// document's memory cap like everything else PDFium holds.
	if size > math.MaxInt32 {
		// PDFium takes the size as an int.
		return Result{}, memoryLimitError(lim.MaxMemoryBytes)
	}
	data := make([]byte, size)
	if _, err := r.ReadAt(data, 0); err != nil && err != io.EOF {
		return Result{}, fmt.Errorf("%w: pdf: read failed", ErrMalformed)
	}
	var res Result
	err := withPDFium(ctx, lim.MaxMemoryBytes, func(inst *pdfiumInstance) error {
		var err error
		res, err = pdfText(inst, data, lim)
		return err
	})
	return res, err
}

// checkPDFFraming rejects files without the header or the end-of-file
// marker. PDFium repairs a truncated file silently and returns whatever
// pages survive; a customer should hear that the upload was cut short
// instead of getting half a document analysed.
func checkPDFFraming(r io.ReaderAt, size int64) error {
	headLen := min(size, 1024)
	head := make([]byte, headLen)
	if _, err := r.ReadAt(head, 0); err != nil && err != io.EOF {
		return fmt.Errorf("%w: pdf: read failed", ErrMalformed)
	}
	if !bytes.Contains(head, magicPDF) {
		return fmt.Errorf("%w: pdf: no %%PDF- header", ErrMalformed)
	}
	// The specification asks readers to look for %%EOF in the last 1024
	// bytes; writers that append junk after it stay within that.
	tailLen := min(size, 1024)
	tail := make([]byte, tailLen)
	if _, err := r.ReadAt(tail, size-tailLen); err != nil && err != io.EOF {
		return fmt.Errorf("%w: pdf: read failed", ErrMalformed)
	}
	if !bytes.Contains(tail, []byte("%%EOF")) {
		return fmt.Errorf("%w: pdf: no %%%%EOF marker at the end (truncated upload?)", ErrMalformed)
	}
	return nil
}

func pdfText(inst *pdfiumInstance, data []byte, lim Limits) (Result, error) {
	// An error from a call is PDFium failing on this document (a trap),
	// or the call stopped because ctx ended, which Extract reports as such.
	doc, code, err := inst.openDocument(data)
	if err != nil || doc == 0 {
		return Result{}, pdfOpenError(code)
	}
	// The document is not closed: the instance is discarded with it.
	count, err := inst.call("FPDF_GetPageCount", doc)
	if err != nil {
		return Result{}, fmt.Errorf("%w: pdf: page count unreadable", ErrMalformed)
	}
	pages := int(int32(count))
	switch {
	case pages < 1:
		return Result{}, fmt.Errorf("%w: pdf: no pages", ErrMalformed)
	case pages > lim.MaxPages:
		return Result{}, tooLarge(LimitPages, "pdf: %d pages, limit %d", pages, lim.MaxPages)
	}

	text := newTextBuilder(lim.MaxTextBytes)
	words := &glyphWriter{dst: text}
	glyphs := make([]pdfGlyph, glyphChunk)
	for i := range pages {
		if err := inst.ctx.Err(); err != nil {
			return Result{}, err
		}
		if err := pageText(inst, doc, i, words, glyphs); err != nil {
			return Result{}, err
		}
		text.paragraph()
	}
	return Result{Text: text.String(), Pages: pages}, nil
}

// pageText adds one page's text layer to text, in PDFium's reading order
// with words grouped by position (pdfwords.go), stopping as soon as the
// text is over its limit.
func pageText(inst *pdfiumInstance, doc uint32, i int, words *glyphWriter, glyphs []pdfGlyph) error {
	malformed := fmt.Errorf("%w: pdf: page %d unreadable", ErrMalformed, i+1)
	page, err := inst.call("FPDF_LoadPage", doc, uint32(i))
	if err != nil || page == 0 {
		return malformed
	}
	defer inst.call("FPDF_ClosePage", page)
	tp, err := inst.call("FPDFText_LoadPage", page)
	if err != nil || tp == 0 {
		return malformed
	}
	defer inst.call("FPDFText_ClosePage", tp)
	n, err := inst.call("FPDFText_CountChars", tp)
	count := int(int32(n))
	if err != nil || count < 0 {
		return malformed
	}
	for start := 0; start < count; start += len(glyphs) {
		chunk := glyphs[:min(len(glyphs), count-start)]
		err := inst.glyphs(tp, start, chunk)
		if err == nil {
			err = words.write(chunk)
		}
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return fmt.Errorf("pdf: page %d: %w", i+1, err)
			}
			return malformed
		}
	}
	if err := words.endPage(); err != nil {
		return fmt.Errorf("pdf: page %d: %w", i+1, err)
	}
	return nil
}

// pdfOpenError maps PDFium's load error codes onto the sentinels. A
// document with only an owner password (print or copy restrictions) opens
// without one and is extracted, as pdftotext does: its text is not secret.
func pdfOpenError(code uint32) error {
	switch code {
	case pdfiumErrPassword:
		return fmt.Errorf("%w: pdf: needs a password", ErrEncrypted)
	case pdfiumErrSecurity:
		return fmt.Errorf("%w: pdf: unsupported security handler", ErrEncrypted)
	default:
		return fmt.Errorf("%w: pdf: cannot be opened (damaged cross-reference table or objects)", ErrMalformed)
	}
}

// Warm compiles the PDF engine now instead of on the first PDF, which would
// otherwise wait seconds for it. The worker calls it at start.
func Warm() error {
	_, err := pdfEngine()
	return err
}

package extract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"

	"github.com/klippa-app/go-pdfium"
	pdfiumerrors "github.com/klippa-app/go-pdfium/errors"
	"github.com/klippa-app/go-pdfium/references"
	"github.com/klippa-app/go-pdfium/requests"
	"github.com/klippa-app/go-pdfium/webassembly"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
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
var pdfEngine = sync.OnceValues(func() (pdfium.Pool, error) {
	dir, warn := cacheSettings()
	return newPDFPool(dir, warn)
})

// pdfMemory allocates every PDFium instance's linear memory.
var pdfMemory = &pdfMemories{}

// newPDFPool compiles PDFium, or loads it from the compile cache in
// cacheDir (see pdfcache.go).
func newPDFPool(cacheDir string, warn func(string)) (pdfium.Pool, error) {
	// Compiling leaves a few hundred megabytes of garbage on the Go heap;
	// return it to the system now rather than let an idle worker hold it.
	defer debug.FreeOSMemory()
	cache := openCompileCache(cacheDir, warn)
	pool, err := initPDFPool(cache)
	if err != nil && cache != nil {
		// wazero fails rather than recompiles when an entry that passed
		// the manifest does not load (a different wazero build, say).
		warn(fmt.Sprintf("PDF engine cache %s rebuilt: %v", cacheDir, err))
		_ = cache.Close(context.Background())
		if err := emptyDir(cacheDir); err != nil {
			warn(fmt.Sprintf("PDF engine cache %s cannot be emptied (%v); compiling without it", cacheDir, err))
			return initPDFPool(nil)
		}
		cache = openCompileCache(cacheDir, warn)
		pool, err = initPDFPool(cache)
	}
	// Seal only what changed: a cache that was loaded as it stood may be
	// read-only (baked into an image).
	if err == nil && cache != nil && checkManifest(cacheDir) != nil {
		if err := sealCompileCache(cacheDir); err != nil {
			warn(fmt.Sprintf("PDF engine cache %s: manifest not written (%v); the next start compiles again", cacheDir, err))
		}
	}
	return pool, err
}

func initPDFPool(cache wazero.CompilationCache) (pdfium.Pool, error) {
	rc := wazero.NewRuntimeConfig().
		// The module lowers setjmp/longjmp to exception handling.
		WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling).
		WithMemoryLimitPages(pdfiumMaxMemoryPages).
		// Lets a cancelled ctx stop a call that is running (see
		// withPDFium), not just the next one.
		WithCloseOnContextDone(true)
	if cache != nil {
		rc = rc.WithCompilationCache(cache)
	}
	return webassembly.Init(webassembly.Config{
		Context: experimental.WithMemoryAllocator(context.Background(), pdfMemory),
		MinIdle: 0,
		// Instances are made on demand and never kept (go-pdfium closes
		// them on Close unless ReuseWorkers is set), so a borrow never
		// waits for another document's instance and always instantiates:
		// pdfMemory.claim relies on both. The worker's concurrency is the
		// bound on instances.
		MaxIdle:  0,
		MaxTotal: 1 << 16,
		// No mounts: PDFium never sees the host file system. The default
		// would mount "/".
		FSConfig:      wazero.NewFSConfig(),
		Stdout:        io.Discard,
		Stderr:        io.Discard,
		RuntimeConfig: rc,
	})
}

// withPDFium runs fn on a fresh PDFium instance whose memory is capped at
// memLimit bytes, and discards the instance after: no state from one
// document (caches, fonts, a corrupted heap) can reach the next, and its
// memory goes back to the system. If ctx ends while fn runs, the instance
// is killed, which aborts the WebAssembly call in progress. If PDFium
// asked for more memory than the cap, the result is the memory limit's
// error, whatever fn returned.
func withPDFium(ctx context.Context, memLimit int64, fn func(pdfium.Pdfium) error) error {
	pool, err := pdfEngine()
	if err != nil {
		return fmt.Errorf("extract: pdf: start pdfium: %w", err)
	}
	var inst pdfium.Pdfium
	mem, err := pdfMemory.claim(uint64(max(memLimit, 0)), func() (err error) {
		inst, err = pool.GetInstanceWithContext(ctx)
		return err
	})
	if mem != nil {
		defer mem.release()
		if mem.reserveErr != nil {
			if inst != nil {
				_ = inst.Kill()
			}
			return fmt.Errorf("extract: pdf: pdfium memory: %w", mem.reserveErr)
		}
	}
	if err != nil {
		if mem != nil {
			// A failed instantiation may never close its module, so
			// wazero's reference would keep the reservation forever. No
			// code runs on it now; a late Free finds it released.
			mem.release()
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
		// Not an instance made for this document, so not under its cap.
		_ = inst.Kill()
		return errors.New("extract: pdf: pdfium instance was not made for this document; its memory is not bounded")
	}

	stop, watcherDone := make(chan struct{}), make(chan bool)
	go func() {
		select {
		case <-ctx.Done():
			_ = inst.Kill()
			watcherDone <- true
		case <-stop:
			watcherDone <- false
		}
	}()
	defer func() {
		close(stop)
		if killed := <-watcherDone; !killed {
			_ = inst.Close()
		}
	}()
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
	var res Result
	err := withPDFium(ctx, lim.MaxMemoryBytes, func(inst pdfium.Pdfium) error {
		var err error
		res, err = pdfText(ctx, inst, r, size, lim)
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

func pdfText(ctx context.Context, inst pdfium.Pdfium, r io.ReaderAt, size int64, lim Limits) (Result, error) {
	// PDFium reads through the section reader as it needs bytes, so the
	// file is never copied whole into the instance's memory. (Copying it
	// in was no faster on the corpus, within noise.)
	doc, err := inst.OpenDocument(&requests.OpenDocument{
		FileReader:     io.NewSectionReader(r, 0, size),
		FileReaderSize: size,
	})
	if err != nil {
		return Result{}, pdfOpenError(err)
	}
	defer inst.FPDF_CloseDocument(&requests.FPDF_CloseDocument{Document: doc.Document})

	count, err := inst.FPDF_GetPageCount(&requests.FPDF_GetPageCount{Document: doc.Document})
	if err != nil {
		return Result{}, fmt.Errorf("%w: pdf: page count unreadable", ErrMalformed)
	}
	pages := count.PageCount
	switch {
	case pages < 1:
		return Result{}, fmt.Errorf("%w: pdf: no pages", ErrMalformed)
	case pages > lim.MaxPages:
		return Result{}, tooLarge(LimitPages, "pdf: %d pages, limit %d", pages, lim.MaxPages)
	}

	text := newTextBuilder(lim.MaxTextBytes)
	for i := range pages {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		if err := pageText(inst, doc.Document, i, text); err != nil {
			return Result{}, err
		}
		text.paragraph()
	}
	return Result{Text: text.String(), Pages: pages}, nil
}

// pdfTextChunk is how many characters pageText copies out of PDFium at a
// time. One call per page would cost Go memory in proportion to the page
// (about 12 bytes a character while converting from UTF-16), and a hostile
// page holds millions; one call per character would cost a WebAssembly
// call each.
const pdfTextChunk = 1 << 16

// pageText adds one page's text layer to text, in reading order with
// PDFium's line breaks, stopping as soon as the text is over its limit.
func pageText(inst pdfium.Pdfium, doc references.FPDF_DOCUMENT, i int, text *textBuilder) error {
	malformed := fmt.Errorf("%w: pdf: page %d unreadable", ErrMalformed, i+1)
	page, err := inst.FPDF_LoadPage(&requests.FPDF_LoadPage{Document: doc, Index: i})
	if err != nil {
		return malformed
	}
	defer inst.FPDF_ClosePage(&requests.FPDF_ClosePage{Page: page.Page})
	tp, err := inst.FPDFText_LoadPage(&requests.FPDFText_LoadPage{Page: requests.Page{ByReference: &page.Page}})
	if err != nil {
		return malformed
	}
	defer inst.FPDFText_ClosePage(&requests.FPDFText_ClosePage{TextPage: tp.TextPage})
	count, err := inst.FPDFText_CountChars(&requests.FPDFText_CountChars{TextPage: tp.TextPage})
	if err != nil || count.Count < 0 {
		return malformed
	}
	for start := 0; start < count.Count; start += pdfTextChunk {
		t, err := inst.FPDFText_GetText(&requests.FPDFText_GetText{
			TextPage: tp.TextPage, StartIndex: start, Count: min(pdfTextChunk, count.Count-start),
		})
		if err != nil {
			return malformed
		}
		if err := text.WriteString(t.Text); err != nil {
			return fmt.Errorf("pdf: page %d: %w", i+1, err)
		}
	}
	return nil
}

// pdfOpenError maps PDFium's load errors onto the sentinels. A document
// with only an owner password (print or copy restrictions) opens without
// one and is extracted, as pdftotext does: its text is not secret.
func pdfOpenError(err error) error {
	switch {
	case errors.Is(err, pdfiumerrors.ErrPassword):
		return fmt.Errorf("%w: pdf: needs a password", ErrEncrypted)
	case errors.Is(err, pdfiumerrors.ErrSecurity):
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

package extract

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf16"

	// Links in go-pdfium's embedded module, which pdfiumWASM names.
	_ "github.com/klippa-app/go-pdfium/webassembly"
	"github.com/klippa-app/go-pdfium/webassembly/imports"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// The PDFium module and its host functions come from go-pdfium; the calls
// into it are made here, directly on wazero, rather than through
// go-pdfium's pool. That way the module can carry the loop yields of
// wasmyield.go, whose Go function must live in the same wazero runtime as
// PDFium, and each call runs under the document's own ctx. Text extraction
// needs a dozen of PDFium's functions (pdfiumExports).

// pdfiumEngine is PDFium compiled, in the runtime that instantiates it.
type pdfiumEngine struct {
	runtime  wazero.Runtime
	compiled wazero.CompiledModule
}

// pdfiumYieldModule is PDFium with the loop yields, or an error saying why
// it could not be made (go-pdfium's module is then used as it ships).
func pdfiumYieldModule() ([]byte, error) {
	if len(pdfiumWASM) == 0 {
		return nil, errors.New("go-pdfium's embedded module was not found")
	}
	return addLoopYield(pdfiumWASM)
}

// compilePDFium compiles module using cache, which may be nil. Without
// loop yields in the module, wazero's own checks stop a call whose ctx has
// ended.
func compilePDFium(module []byte, yields bool, cache wazero.CompilationCache) (_ *pdfiumEngine, err error) {
	ctx := context.Background()
	rc := wazero.NewRuntimeConfig().
		// The module lowers setjmp/longjmp to exception handling.
		WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling).
		WithMemoryLimitPages(pdfiumMaxMemoryPages)
	if !yields {
		// A call checks its ctx at every loop iteration, by leaving
		// the compiled code for Go: correct, but it triples the time.
		rc = rc.WithCloseOnContextDone(true)
	}
	if cache != nil {
		rc = rc.WithCompilationCache(cache)
	}
	r := wazero.NewRuntimeWithConfig(ctx, rc)
	defer func() {
		if err != nil {
			_ = r.Close(ctx)
		}
	}()
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
		return nil, err
	}
	if _, err := r.NewHostModuleBuilder(yieldModule).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(pdfYield), nil, nil).Export(yieldFunction).
		Instantiate(ctx); err != nil {
		return nil, err
	}
	compiled, err := r.CompileModule(ctx, module)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	// PDFium's imports from "env": callbacks for forms, custom file
	// access and the like, which text extraction never triggers.
	if _, err := imports.Instantiate(ctx, r, compiled); err != nil {
		return nil, fmt.Errorf("host functions: %w", err)
	}
	return &pdfiumEngine{runtime: r, compiled: compiled}, nil
}

func (e *pdfiumEngine) Close() error { return e.runtime.Close(context.Background()) }

// pdfYield runs every yieldInterval loop iterations of PDFium. ctx is the
// one the current call was made with: the document's. Panicking unwinds
// the WebAssembly call, which returns an error.
func pdfYield(ctx context.Context, _ api.Module, _ []uint64) {
	if ctx.Err() != nil {
		pdfYieldStops.Add(1)
		panic(errPDFiumStopped)
	}
}

var errPDFiumStopped = errors.New("pdfium call stopped: the document's context ended")

var pdfiumExports = []string{
	"malloc", "FPDF_InitLibrary", "FPDF_GetLastError",
	"FPDF_LoadMemDocument", "FPDF_GetPageCount", "FPDF_LoadPage", "FPDF_ClosePage",
	"FPDFText_LoadPage", "FPDFText_ClosePage", "FPDFText_CountChars", "FPDFText_GetText",
}

// pdfiumInstance is one instantiation of PDFium, used for one document.
type pdfiumInstance struct {
	ctx context.Context
	mod api.Module
	fn  map[string]api.Function
	buf uint32 // FPDFText_GetText's output, pdfTextChunk+1 UTF-16 units
}

// instantiate makes a fresh instance whose calls run under ctx. Its memory
// is allocated by the allocator in ctx (pdfMemory).
func (e *pdfiumEngine) instantiate(ctx context.Context) (_ *pdfiumInstance, err error) {
	mod, err := e.runtime.InstantiateModule(ctx, e.compiled, wazero.NewModuleConfig().
		WithStartFunctions("_initialize").
		// No mounts, no output: PDFium sees no file system and its
		// diagnostics are dropped (they may quote the document).
		WithFSConfig(wazero.NewFSConfig()).
		WithRandSource(rand.Reader).
		WithName(""))
	if err != nil {
		return nil, err
	}
	p := &pdfiumInstance{ctx: ctx, mod: mod, fn: make(map[string]api.Function, len(pdfiumExports))}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	for _, name := range pdfiumExports {
		if p.fn[name] = mod.ExportedFunction(name); p.fn[name] == nil {
			return nil, fmt.Errorf("pdfium exports no %s", name)
		}
	}
	if _, err := p.call("FPDF_InitLibrary"); err != nil {
		return nil, err
	}
	if p.buf, err = p.call("malloc", (pdfTextChunk+1)*2); err == nil && p.buf == 0 {
		err = errors.New("no memory for the text buffer")
	}
	return p, err
}

// close discards the instance and its memory. Nothing in it (documents,
// pages) needs closing first.
func (p *pdfiumInstance) close() { _ = p.mod.Close(context.Background()) }

// call calls the exported function name with 32-bit arguments and returns
// its 32-bit result.
func (p *pdfiumInstance) call(name string, args ...uint32) (uint32, error) {
	var stack [4]uint64
	for i, a := range args {
		stack[i] = uint64(a)
	}
	if err := p.fn[name].CallWithStack(p.ctx, stack[:]); err != nil {
		return 0, err
	}
	return uint32(stack[0]), nil
}

// PDFium's FPDF_GetLastError codes.
const (
	pdfiumErrPassword = 4
	pdfiumErrSecurity = 5
)

// openDocument copies data into the instance and opens it. A nil error
// with doc 0 cannot happen: PDFium's own refusal comes back as code.
func (p *pdfiumInstance) openDocument(data []byte) (doc uint32, code uint32, err error) {
	ptr, err := p.call("malloc", uint32(len(data)))
	if err != nil {
		return 0, 0, err
	}
	if ptr == 0 || !p.mod.Memory().Write(ptr, data) {
		return 0, 0, errors.New("no memory for the document")
	}
	if doc, err = p.call("FPDF_LoadMemDocument", ptr, uint32(len(data)), 0); err != nil || doc != 0 {
		return doc, 0, err
	}
	code, err = p.call("FPDF_GetLastError")
	return 0, max(code, 1), err
}

// text adds count characters of a text page from start to dst, decoding
// PDFium's UTF-16 straight from its memory (no copy on the Go heap).
// count is at most pdfTextChunk.
func (p *pdfiumInstance) text(textPage uint32, start, count int, dst *textBuilder) error {
	n, err := p.call("FPDFText_GetText", textPage, uint32(start), uint32(count), p.buf)
	if err != nil {
		return err
	}
	// n counts the terminating NUL.
	units := int(int32(n)) - 1
	if units <= 0 {
		return nil
	}
	raw, ok := p.mod.Memory().Read(p.buf, uint32(min(units, count))*2)
	if !ok {
		return errors.New("text buffer out of range")
	}
	for i := 0; i+1 < len(raw); i += 2 {
		r := rune(raw[i]) | rune(raw[i+1])<<8
		if utf16.IsSurrogate(r) {
			// A pair makes one character; a lone half, U+FFFD.
			r2 := unicode.ReplacementChar
			if i+3 < len(raw) {
				r2 = rune(raw[i+2]) | rune(raw[i+3])<<8
			}
			if r = utf16.DecodeRune(r, r2); r != unicode.ReplacementChar {
				i += 2
			}
		}
		if dst.writeRune(r); dst.err != nil {
			return dst.err
		}
	}
	return nil
}

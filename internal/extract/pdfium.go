package extract

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

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
	"FPDFText_LoadPage", "FPDFText_ClosePage", "FPDFText_CountChars",
	"FPDFText_GetCharBox", "FPDFText_GetTextObject", "FPDFTextObj_GetFont", "FPDFFont_GetGlyphWidth",
}

func init() {
	// Without the glyph reader in the module, glyphRecord calls them.
	for _, c := range glyphCalls {
		pdfiumExports = append(pdfiumExports, c.name)
	}
}

// pdfiumInstance is one instantiation of PDFium, used for one document.
type pdfiumInstance struct {
	ctx context.Context
	mod api.Module
	fn  map[string]api.Function
	// reader is the module's glyph reader (wasmglyphs.go), or nil.
	reader api.Function
	// buf holds glyphChunk glyph records, then room for the out-
	// parameters of inkRight and glyphWidth.
	buf uint32
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
	p.reader = mod.ExportedFunction(glyphReaderExport)
	if p.buf, err = p.call("malloc", glyphChunk*glyphRecord+32); err == nil && p.buf == 0 {
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
	r, err := p.callRaw(name, args...)
	return uint32(r), err
}

// callRaw is call returning the result as wazero encodes it (a float64's
// bits for a double).
func (p *pdfiumInstance) callRaw(name string, args ...uint32) (uint64, error) {
	var stack [6]uint64
	for i, a := range args {
		stack[i] = uint64(a)
	}
	if err := p.fn[name].CallWithStack(p.ctx, stack[:]); err != nil {
		return 0, err
	}
	return stack[0], nil
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

// glyphChunk is how many characters pageText reads at a time: their
// records (glyphRecord bytes each) live in PDFium's memory.
const glyphChunk = 1024

// glyphs fills dst (at most glyphChunk long) with the characters of a text
// page from start on.
func (p *pdfiumInstance) glyphs(textPage uint32, start int, dst []pdfGlyph) error {
	mem := p.mod.Memory()
	size := uint32(len(dst) * glyphRecord)
	recs, ok := mem.Read(p.buf, size)
	if !ok {
		return errors.New("glyph buffer out of range")
	}
	// What a failed call leaves unwritten reads as zero.
	clear(recs)
	if p.reader != nil {
		stack := [4]uint64{uint64(textPage), uint64(start), uint64(len(dst)), uint64(p.buf)}
		if err := p.reader.CallWithStack(p.ctx, stack[:]); err != nil {
			return err
		}
	} else {
		for i := range dst {
			if err := p.glyphRecord(textPage, uint32(start+i), p.buf+uint32(i*glyphRecord)); err != nil {
				return err
			}
		}
	}
	if recs, ok = mem.Read(p.buf, size); !ok {
		return errors.New("glyph buffer out of range")
	}
	for i := range dst {
		g := decodeGlyph(recs[i*glyphRecord : (i+1)*glyphRecord])
		if i > 0 && !g.generated && !dst[i-1].generated && dst[i-1].x0 == g.x0 {
			// One glyph, several characters (a ligature).
			dst[i-1].x1 = g.x1
		}
		dst[i] = g
	}
	for i := range dst {
		if !advanceMatters(dst, i) {
			continue
		}
		// The loose box is the union of the advance and the ink. If the
		// ink overhangs (an italic letter), the advance, which poppler
		// measures gaps from, is the font's to tell.
		g := &dst[i]
		ink, err := p.inkRight(textPage, uint32(start+i))
		if err != nil {
			return err
		}
		if abs32(ink-g.x1) >= 0.01 {
			continue
		}
		rec := recs[i*glyphRecord:]
		code, scale := binary.LittleEndian.Uint32(rec), math.Float32frombits(binary.LittleEndian.Uint32(rec[32:]))
		w, err := p.glyphWidth(textPage, uint32(start+i), code, g.size/max(scale, 1e-6))
		if err != nil {
			return err
		}
		if w > 0 {
			g.x1 = min(g.x1, g.x0+w*scale)
		}
	}
	return nil
}

// advanceMatters says whether the advance width of dst[i] could change
// what separates it from the next glyph: the next starts a little right of
// dst[i]'s loose box (a superscript after an italic letter, letters kerned
// apart), and a box that ends with an overhanging ink would hide part of
// the gap. One that starts within the box follows it in a word.
func advanceMatters(dst []pdfGlyph, i int) bool {
	g := &dst[i]
	if g.generated || !g.upright || isSpace(g.r) {
		return false
	}
	for j := i + 1; j < len(dst); j++ {
		n := &dst[j]
		switch {
		case n.generated:
			continue
		case !n.upright || isSpace(n.r):
			return false
		}
		size := max(g.size, n.size)
		gap := n.x0 - g.x1
		return gap > 0.01 && gap <= wordBreakGap*size && abs32(n.base-g.base) <= maxScriptShift*size
	}
	return false
}

// decodeGlyph reads one record (see glyphRecord).
func decodeGlyph(rec []byte) pdfGlyph {
	le := binary.LittleEndian
	code := le.Uint32(rec)
	a := math.Float32frombits(le.Uint32(rec[32:]))
	b := math.Float32frombits(le.Uint32(rec[36:]))
	c := math.Float32frombits(le.Uint32(rec[40:]))
	d := math.Float32frombits(le.Uint32(rec[44:]))
	left := math.Float32frombits(le.Uint32(rec[56:]))
	right := math.Float32frombits(le.Uint32(rec[64:]))
	r := glyphRune(code)
	return pdfGlyph{
		r: r,
		// PDFium's own spaces and line breaks have an empty box.
		generated: left == right && (r == ' ' || r == '\r' || r == '\n'),
		upright:   a > 0 && d > 0 && abs32(b) <= 0.1*a && abs32(c) <= 0.1*d,
		// The origin: the loose box starts there too, except when
		// PDFium gives the ink's box instead.
		x0:   float32(math.Float64frombits(le.Uint64(rec[16:]))),
		x1:   right,
		base: float32(math.Float64frombits(le.Uint64(rec[24:]))),
		size: float32(math.Float64frombits(le.Uint64(rec[8:]))) * d,
	}
}

// glyphRecord writes the record of one character at out, one call at a
// time: what the module's glyph reader does when the module has none.
func (p *pdfiumInstance) glyphRecord(textPage, i, out uint32) error {
	outParams := [][]uint32{2: {out + 16, out + 24}, 3: {out + 32}, 4: {out + 56}}
	for k, c := range glyphCalls {
		r, err := p.callRaw(c.name, append([]uint32{textPage, i}, outParams[k]...)...)
		if err != nil {
			return err
		}
		switch k {
		case 0:
			p.mod.Memory().WriteUint32Le(out, uint32(r))
		case 1:
			p.mod.Memory().WriteUint64Le(out+8, r)
		}
	}
	return nil
}

// inkRight is the right edge of character i's ink.
func (p *pdfiumInstance) inkRight(textPage, i uint32) (float32, error) {
	out := p.buf + glyphChunk*glyphRecord
	if _, err := p.call("FPDFText_GetCharBox", textPage, i, out, out+8, out+16, out+24); err != nil {
		return 0, err
	}
	right, _ := p.mod.Memory().ReadFloat64Le(out + 8)
	return float32(right), nil
}

// glyphWidth is the advance width, per point of font size, that character
// i's font gives code, or 0 if it cannot tell.
func (p *pdfiumInstance) glyphWidth(textPage, i, code uint32, fontSize float32) (float32, error) {
	obj, err := p.call("FPDFText_GetTextObject", textPage, i)
	if err != nil || obj == 0 {
		return 0, err
	}
	font, err := p.call("FPDFTextObj_GetFont", obj)
	if err != nil || font == 0 {
		return 0, err
	}
	out := p.buf + glyphChunk*glyphRecord
	ok, err := p.call("FPDFFont_GetGlyphWidth", font, code, math.Float32bits(fontSize), out)
	if err != nil || ok == 0 {
		return 0, err
	}
	w, _ := p.mod.Memory().ReadFloat32Le(out)
	return w, nil
}

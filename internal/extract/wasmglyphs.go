package extract

import (
	"encoding/binary"
	"fmt"
)

// Word grouping (pdfwords.go) needs, for every character of a text page,
// its code point, origin, advance and size: five PDFium calls. Made one by
// one from Go, each call crossing into WebAssembly costs about 100 ns,
// more than PDFium's own work on the page. addGlyphReader adds to the
// module a function, glyphReaderExport, that makes those calls for a range
// of characters inside WebAssembly and writes the answers to memory: one
// crossing per glyphChunk characters.

const glyphReaderExport = "tether_glyphs"

// glyphRecord is the size of one character's answers, at these offsets:
//
//	0   u32  FPDFText_GetUnicode
//	8   f64  FPDFText_GetFontSize
//	16  f64  FPDFText_GetCharOrigin: x, then y at 24
//	32  f32  FPDFText_GetMatrix: a, b, c, d, e, f
//	56  f32  FPDFText_GetLooseCharBox: left, top, right, bottom
const glyphRecord = 72

// glyphCalls are the PDFium functions the reader calls, in the order of
// the record, with their WebAssembly signatures: parameters, results.
var glyphCalls = []struct {
	name, params, results string
}{
	{"FPDFText_GetUnicode", "\x7f\x7f", "\x7f"},
	{"FPDFText_GetFontSize", "\x7f\x7f", "\x7c"},
	{"FPDFText_GetCharOrigin", "\x7f\x7f\x7f\x7f", "\x7f"},
	{"FPDFText_GetMatrix", "\x7f\x7f\x7f", "\x7f"},
	{"FPDFText_GetLooseCharBox", "\x7f\x7f\x7f", "\x7f"},
}

// addGlyphReader returns module with glyphReaderExport added:
//
//	tether_glyphs(text_page, start, count, out i32) i32
//
// which writes count records of glyphRecord bytes from out on, for the
// characters from start on, and returns count. Out-parameters a call does
// not write (it failed) keep what was in memory. Like addLoopYield it
// refuses a module it does not fully understand, and checks that each
// PDFium function has the signature it calls it with, so that the module
// it returns compiles.
func addGlyphReader(module []byte) ([]byte, error) {
	sections, err := readSections(module, false)
	if err != nil {
		return nil, err
	}
	var secs [secCode + 1]*wasmSection
	for _, id := range []byte{secType, secImport, secFunction, secExport, secCode} {
		s, err := sections.find(id)
		if err != nil {
			return nil, err
		}
		secs[id] = s
	}

	types, err := funcTypes(secs[secType].body)
	if err != nil {
		return nil, fmt.Errorf("section %d: %w", secType, err)
	}
	importedFuncs, _, err := countImports(secs[secImport].body)
	if err != nil {
		return nil, fmt.Errorf("section %d: %w", secImport, err)
	}
	var funcType []uint32 // type index of each defined function
	if _, err := vector(secs[secFunction].body, func(r *wasmReader, out []byte) []byte {
		funcType = append(funcType, r.u32())
		return out
	}); err != nil {
		return nil, fmt.Errorf("section %d: %w", secFunction, err)
	}
	exported := map[string]uint32{}
	if _, err := vector(secs[secExport].body, func(r *wasmReader, out []byte) []byte {
		name := string(r.bytes(int(r.u32())))
		if kind, idx := r.byte(), r.u32(); kind == 0x00 {
			exported[name] = idx
		}
		return out
	}); err != nil {
		return nil, fmt.Errorf("section %d: %w", secExport, err)
	}
	if _, ok := exported[glyphReaderExport]; ok {
		return nil, fmt.Errorf("module already exports %s", glyphReaderExport)
	}
	calls := make([]uint32, len(glyphCalls))
	for i, c := range glyphCalls {
		idx, ok := exported[c.name]
		if !ok || idx < importedFuncs || int(idx-importedFuncs) >= len(funcType) {
			return nil, fmt.Errorf("module defines no %s", c.name)
		}
		t := funcType[idx-importedFuncs]
		if int(t) >= len(types) || types[t] != c.params+"|"+c.results {
			return nil, fmt.Errorf("%s has another signature", c.name)
		}
		calls[i] = idx
	}

	readerType, typesBody, err := appendEntry(secs[secType].body, []byte{0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 1, 0x7f})
	if err != nil {
		return nil, err
	}
	secs[secType].body = typesBody
	if _, secs[secFunction].body, err = appendEntry(secs[secFunction].body, binary.AppendUvarint(nil, uint64(readerType))); err != nil {
		return nil, err
	}
	reader := importedFuncs + uint32(len(funcType))
	export := appendName(nil, glyphReaderExport)
	export = binary.AppendUvarint(append(export, 0x00), uint64(reader))
	if _, secs[secExport].body, err = appendEntry(secs[secExport].body, export); err != nil {
		return nil, err
	}
	body := glyphReaderBody(calls)
	entry := binary.AppendUvarint(nil, uint64(len(body)))
	if _, secs[secCode].body, err = appendEntry(secs[secCode].body, append(entry, body...)); err != nil {
		return nil, err
	}

	return sections.module(), nil
}

// funcTypes lists a type section's function types as "params|results",
// one byte per value type.
func funcTypes(body []byte) ([]string, error) {
	var types []string
	r := &wasmReader{b: body}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		if form := r.byte(); form != 0x60 {
			r.fail("type form 0x%02x", form)
		}
		var sig []byte
		for k := range 2 { // parameters, results
			if k == 1 {
				sig = append(sig, '|')
			}
			for m := r.u32(); m > 0 && r.err == nil; m-- {
				sig = append(sig, r.valType()...)
			}
		}
		types = append(types, string(sig))
	}
	return types, r.end()
}

// glyphReaderBody is the reader's code; calls holds the function indices
// of glyphCalls. Parameters: 0 text page, 1 start, 2 count, 3 out; locals:
// 4 the character, 5 the end of the range.
func glyphReaderBody(calls []uint32) []byte {
	const (
		localGet = 0x20
		localSet = 0x21
		i32Const = 0x41
		i32Add   = 0x6a
	)
	b := []byte{1, 2, 0x7f} // two i32 locals
	get := func(i byte) { b = append(b, localGet, i) }
	set := func(i byte) { b = append(b, localSet, i) }
	outPlus := func(off int64) { // out + off
		get(3)
		b = appendSLEB(append(b, i32Const), off)
		b = append(b, i32Add)
	}
	call := func(i int) { b = binary.AppendUvarint(append(b, 0x10), uint64(calls[i])) }

	get(1)
	set(4)
	get(1)
	get(2)
	b = append(b, i32Add)
	set(5)
	b = append(b, 0x02, 0x40, 0x03, 0x40) // block, loop
	get(4)
	get(5)
	b = append(b, 0x4e, 0x0d, 1) // i32.ge_s; br_if out of the block
	// Results stored at out: unicode, font size.
	for i, store := range [][]byte{{0x36, 2, 0}, {0x39, 3, 8}} { // i32.store, f64.store: align, offset
		get(3)
		get(0)
		get(4)
		call(i)
		b = append(b, store...)
	}
	// Out-parameters: origin x and y; matrix; loose box.
	for i, offsets := range [][]int64{{16, 24}, {32}, {56}} {
		get(0)
		get(4)
		for _, off := range offsets {
			outPlus(off)
		}
		call(2 + i)
		b = append(b, 0x1a) // drop
	}
	outPlus(glyphRecord)
	set(3)
	get(4)
	b = append(b, i32Const, 1, i32Add)
	set(4)
	b = append(b, 0x0c, 0, 0x0b, 0x0b) // br to the loop; end loop, block
	get(2)
	return append(b, 0x0b)
}

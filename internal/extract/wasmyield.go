package extract

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
)

// A PDFium call that runs too long (the time limit, or a cancelled job)
// must be stoppable while it runs. wazero's own way, WithCloseOnContextDone,
// leaves the compiled code for Go at the head of every loop iteration,
// which tripled the CPU time of extraction (bench/README.md). Instead,
// addLoopYield rewrites the module before it is compiled so that each loop
// iteration only counts down a counter of its own, and every yieldInterval
// iterations calls one imported Go function, which stops the call if its
// context has ended (see pdfYield). The guarantee is the same as wazero's:
// no loop runs unchecked, and every yieldInterval iterations the Go
// scheduler gets the thread back, so the timer of a time limit and the
// goroutine that cancels a job get to run even when every core is running
// PDFium.

// yieldInterval is how many loop iterations run between two calls of the
// yield function. A call costs tens of nanoseconds and an iteration a few,
// so the calls cost little while a stop still lands within microseconds.
const yieldInterval = 1 << 12

const (
	yieldModule   = "tether"
	yieldFunction = "yield"
)

// WebAssembly section IDs.
const (
	secCustom   = 0
	secType     = 1
	secImport   = 2
	secFunction = 3
	secGlobal   = 6
	secExport   = 7
	secStart    = 8
	secElement  = 9
	secCode     = 10
)

type wasmSection struct {
	id   byte
	body []byte
}

// addLoopYield returns module with:
//   - a new function type () -> () and an import yieldModule.yieldFunction
//     of that type, appended after the existing function imports (so every
//     function defined in the module moves up by one index, and every
//     reference to one is renumbered);
//   - a new mutable i32 global, the countdown;
//   - at the head of every loop: if the countdown is not zero, decrement it;
//     else reset it to yieldInterval and call the import.
//
// It fails on anything it does not understand (an unknown instruction, a
// section it would have to change but cannot find) rather than guess; the
// caller then runs the module as it is, with wazero's own checks.
func addLoopYield(module []byte) ([]byte, error) {
	// Function names by index are about to change: dropped.
	sections, err := readSections(module, true)
	if err != nil {
		return nil, err
	}
	find := sections.find

	types, err := find(secType)
	if err != nil {
		return nil, err
	}
	if err := checkTypes(types.body); err != nil {
		return nil, fmt.Errorf("section %d: %w", secType, err)
	}
	yieldType, typesBody, err := appendEntry(types.body, []byte{0x60, 0, 0})
	if err != nil {
		return nil, err
	}
	types.body = typesBody

	imports, err := find(secImport)
	if err != nil {
		return nil, err
	}
	importedFuncs, importedGlobals, err := countImports(imports.body)
	if err != nil {
		return nil, fmt.Errorf("section %d: %w", secImport, err)
	}
	var entry []byte
	entry = appendName(entry, yieldModule)
	entry = appendName(entry, yieldFunction)
	entry = append(entry, 0x00)
	entry = binary.AppendUvarint(entry, uint64(yieldType))
	if _, imports.body, err = appendEntry(imports.body, entry); err != nil {
		return nil, err
	}
	// The new import takes index importedFuncs; defined functions shift.
	rw := &funcRewriter{firstMoved: importedFuncs, yieldFunc: importedFuncs}

	globals, err := find(secGlobal)
	if err != nil {
		return nil, err
	}
	if globals.body, err = rw.globals(globals.body); err != nil {
		return nil, err
	}
	definedGlobals, globalsBody, err := appendEntry(globals.body,
		appendSLEB([]byte{0x7f, 0x01, 0x41}, yieldInterval), 0x0b)
	if err != nil {
		return nil, err
	}
	globals.body = globalsBody
	rw.counter = importedGlobals + definedGlobals

	for i := range sections {
		s := &sections[i]
		switch s.id {
		case secExport:
			s.body, err = rw.exports(s.body)
		case secStart:
			s.body, err = rw.start(s.body)
		case secElement:
			s.body, err = rw.elements(s.body)
		case secCode:
			s.body, err = rw.code(s.body)
		}
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", s.id, err)
		}
	}

	return sections.module(), nil
}

// wasmSections are a module's sections, in order.
type wasmSections []wasmSection

// readSections splits a module into its sections, without the function
// names (a custom section) if dropNames.
func readSections(module []byte, dropNames bool) (wasmSections, error) {
	if len(module) < 8 || !bytes.Equal(module[:8], []byte(wasmHeader)) {
		return nil, errors.New("not a WebAssembly 1.0 module")
	}
	var sections wasmSections
	for r := (&wasmReader{b: module, off: 8}); !r.done(); {
		id := r.byte()
		body := r.bytes(int(r.u32()))
		if r.err != nil {
			return nil, r.err
		}
		if dropNames && id == secCustom && customName(body) == "name" {
			continue
		}
		sections = append(sections, wasmSection{id, body})
	}
	return sections, nil
}

const wasmHeader = "\x00asm\x01\x00\x00\x00"

func (ss wasmSections) find(id byte) (*wasmSection, error) {
	for i := range ss {
		if ss[i].id == id {
			return &ss[i], nil
		}
	}
	return nil, fmt.Errorf("module has no section %d", id)
}

// module encodes the sections as a module.
func (ss wasmSections) module() []byte {
	out := []byte(wasmHeader)
	for _, s := range ss {
		out = append(out, s.id)
		out = binary.AppendUvarint(out, uint64(len(s.body)))
		out = append(out, s.body...)
	}
	return out
}

// appendEntry adds entry (followed by tail) to a vector section body and
// returns the new entry's position in the vector.
func appendEntry(body, entry []byte, tail ...byte) (uint32, []byte, error) {
	r := &wasmReader{b: body}
	n := r.u32()
	if r.err != nil {
		return 0, nil, r.err
	}
	out := binary.AppendUvarint(nil, uint64(n)+1)
	out = append(out, body[r.off:]...)
	out = append(out, entry...)
	return n, append(out, tail...), nil
}

func appendName(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func customName(body []byte) string {
	r := &wasmReader{b: body}
	name := r.bytes(int(r.u32()))
	if r.err != nil {
		return ""
	}
	return string(name)
}

// countImports counts the function and global imports.
func countImports(body []byte) (funcs, globals uint32, err error) {
	r := &wasmReader{b: body}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		r.bytes(int(r.u32())) // module
		r.bytes(int(r.u32())) // name
		switch kind := r.byte(); kind {
		case 0x00: // function: type index
			r.u32()
			funcs++
		case 0x01: // table: reference type, limits
			r.byte()
			r.limits()
		case 0x02: // memory: limits
			r.limits()
		case 0x03: // global: value type, mutability
			r.byte()
			r.byte()
			globals++
		case 0x04: // tag: attribute, type index
			r.byte()
			r.u32()
		default:
			r.fail("import kind 0x%02x", kind)
		}
	}
	return funcs, globals, r.end()
}

// checkTypes accepts a type section of function types only, the kind the
// new type is appended as.
func checkTypes(body []byte) error {
	r := &wasmReader{b: body}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		if form := r.byte(); form != 0x60 {
			r.fail("type form 0x%02x", form)
		}
		for range 2 { // parameters, results
			for k := r.u32(); k > 0 && r.err == nil; k-- {
				r.valType()
			}
		}
	}
	return r.end()
}

// funcRewriter renumbers function indices and instruments loops.
type funcRewriter struct {
	firstMoved uint32 // function indices from here on move up by one
	yieldFunc  uint32
	counter    uint32 // the countdown global
}

func (w *funcRewriter) fn(i uint32) uint32 {
	if i >= w.firstMoved {
		return i + 1
	}
	return i
}

// vector rewrites a section body that is a vector, entry by entry.
func vector(body []byte, entry func(r *wasmReader, out []byte) []byte) ([]byte, error) {
	r := &wasmReader{b: body}
	n := r.u32()
	out := binary.AppendUvarint(nil, uint64(n))
	for ; n > 0 && r.err == nil; n-- {
		out = entry(r, out)
	}
	return out, r.end()
}

func (w *funcRewriter) exports(body []byte) ([]byte, error) {
	return vector(body, func(r *wasmReader, out []byte) []byte {
		out = appendName(out, string(r.bytes(int(r.u32()))))
		kind, idx := r.byte(), r.u32()
		if kind == 0x00 {
			idx = w.fn(idx)
		}
		return binary.AppendUvarint(append(out, kind), uint64(idx))
	})
}

func (w *funcRewriter) start(body []byte) ([]byte, error) {
	r := &wasmReader{b: body}
	idx := r.u32()
	return binary.AppendUvarint(nil, uint64(w.fn(idx))), r.end()
}

// globals renumbers ref.func in the globals' initialisers.
func (w *funcRewriter) globals(body []byte) ([]byte, error) {
	return vector(body, func(r *wasmReader, out []byte) []byte {
		out = append(out, r.byte(), r.byte()) // value type, mutability
		return w.expr(r, out, false)
	})
}

func (w *funcRewriter) elements(body []byte) ([]byte, error) {
	return vector(body, func(r *wasmReader, out []byte) []byte {
		flags := r.u32()
		out = binary.AppendUvarint(out, uint64(flags))
		if flags > 7 {
			r.fail("element segment flags %d", flags)
			return out
		}
		if flags&0b011 == 0b010 { // active with a table index
			out = binary.AppendUvarint(out, uint64(r.u32()))
		}
		if flags&0b001 == 0 { // active: offset expression
			out = w.expr(r, out, false)
		}
		if flags&0b011 != 0 { // element kind or reference type
			out = append(out, r.byte())
		}
		count := r.u32()
		out = binary.AppendUvarint(out, uint64(count))
		for ; count > 0 && r.err == nil; count-- {
			if flags&0b100 == 0 {
				out = binary.AppendUvarint(out, uint64(w.fn(r.u32())))
			} else {
				out = w.expr(r, out, false)
			}
		}
		return out
	})
}

func (w *funcRewriter) code(body []byte) ([]byte, error) {
	var fn []byte
	return vector(body, func(r *wasmReader, out []byte) []byte {
		start := r.off
		fr := &wasmReader{b: r.bytes(int(r.u32()))}
		fn = fn[:0]
		locals := fr.u32()
		fn = binary.AppendUvarint(fn, uint64(locals))
		for ; locals > 0 && fr.err == nil; locals-- {
			fn = binary.AppendUvarint(fn, uint64(fr.u32()))
			fn = append(fn, fr.valType()...)
		}
		fn = w.expr(fr, fn, true)
		if fr.err == nil && !fr.done() {
			fr.fail("bytes after the function's end")
		}
		if fr.err != nil {
			r.fail("function body at %d: %v", start, fr.err)
			return out
		}
		out = binary.AppendUvarint(out, uint64(len(fn)))
		return append(out, fn...)
	})
}

// loopHead is what instrumented loops start with (see addLoopYield).
func (w *funcRewriter) loopHead(out []byte) []byte {
	out = binary.AppendUvarint(append(out, 0x23), uint64(w.counter))   // global.get
	out = append(out, 0x04, 0x40)                                      // if
	out = binary.AppendUvarint(append(out, 0x23), uint64(w.counter))   //   global.get
	out = append(out, 0x41, 0x01, 0x6b)                                //   i32.const 1; i32.sub
	out = binary.AppendUvarint(append(out, 0x24), uint64(w.counter))   //   global.set
	out = append(out, 0x05)                                            // else
	out = appendSLEB(append(out, 0x41), yieldInterval)                 //   i32.const
	out = binary.AppendUvarint(append(out, 0x24), uint64(w.counter))   //   global.set
	out = binary.AppendUvarint(append(out, 0x10), uint64(w.yieldFunc)) // call
	return append(out, 0x0b)                                           // end
}

// expr copies instructions up to and including the end that closes the
// expression, renumbering function indices and, in function bodies,
// instrumenting loops.
func (w *funcRewriter) expr(r *wasmReader, out []byte, body bool) []byte {
	depth := 1
	for depth > 0 && r.err == nil {
		start := r.off
		op := r.byte()
		switch {
		case op == 0x10 || op == 0x12 || op == 0xd2: // call, return_call, ref.func
			out = binary.AppendUvarint(append(out, op), uint64(w.fn(r.u32())))
			continue
		case op == 0x0b: // end
			depth--
		case op == 0x18: // delegate: ends a try
			r.u32()
			depth--
		case op == 0x02 || op == 0x03 || op == 0x04 || op == 0x06: // block, loop, if, try
			r.s33()
			depth++
		case op == 0x1f: // try_table
			r.s33()
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				switch kind := r.byte(); kind {
				case 0x00, 0x01: // catch, catch_ref: tag, label
					r.u32()
					r.u32()
				case 0x02, 0x03: // catch_all, catch_all_ref: label
					r.u32()
				default:
					r.fail("try_table catch kind 0x%02x", kind)
				}
			}
			depth++
		default:
			r.immediates(op)
		}
		out = append(out, r.b[start:r.off]...)
		if op == 0x03 && body && r.err == nil {
			out = w.loopHead(out)
		}
	}
	return out
}

// immediates skips the immediates of every other instruction.
func (r *wasmReader) immediates(op byte) {
	switch {
	case op <= 0x01, op == 0x05, op == 0x0a, op == 0x0f, op == 0x19, op == 0x1a, op == 0x1b,
		op >= 0x45 && op <= 0xc4, op == 0xd1, op == 0xd3, op == 0xd4:
		// No immediates.
	case op == 0x07, op == 0x08, op == 0x09, op == 0x0c, op == 0x0d,
		op == 0x14, op == 0x15, op == 0xd5, op == 0xd6,
		op >= 0x20 && op <= 0x26:
		// One index: tag, label, type, local, global or table.
		r.u32()
	case op == 0x0e: // br_table
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			r.u32()
		}
		r.u32()
	case op == 0x11, op == 0x13: // call_indirect: type, table
		r.u32()
		r.u32()
	case op == 0x1c: // select with types
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			r.valType()
		}
	case op >= 0x28 && op <= 0x3e:
		r.memarg()
	case op == 0x3f, op == 0x40: // memory.size, memory.grow
		r.u32()
	case op == 0x41:
		r.s33() // i32.const fits an s33 read
	case op == 0x42:
		r.s64()
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op == 0xd0: // ref.null heap type
		r.s33()
	case op == 0xfc:
		r.prefixFC(r.u32())
	case op == 0xfd:
		r.prefixFD(r.u32())
	case op == 0xfe:
		if sub := r.u32(); sub == 0x03 { // atomic.fence
			r.byte()
		} else {
			r.memarg()
		}
	default:
		r.fail("unknown instruction 0x%02x", op)
	}
}

func (r *wasmReader) prefixFC(sub uint32) {
	switch {
	case sub <= 7: // saturating truncations
	case sub == 8: // memory.init: data, memory
		r.u32()
		r.u32()
	case sub == 9, sub == 11, sub == 13, sub >= 15 && sub <= 17:
		r.u32()
	case sub == 10, sub == 12, sub == 14:
		r.u32()
		r.u32()
	default:
		r.fail("unknown instruction 0xfc %d", sub)
	}
}

func (r *wasmReader) prefixFD(sub uint32) {
	switch {
	case sub <= 11, sub == 92, sub == 93: // loads and stores
		r.memarg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		r.bytes(16)
	case sub >= 21 && sub <= 34: // extract and replace lane
		r.byte()
	case sub >= 84 && sub <= 91: // load and store lane
		r.memarg()
		r.byte()
	case sub <= 0x113:
		// Arithmetic, comparisons, conversions, relaxed SIMD: none.
	default:
		r.fail("unknown instruction 0xfd %d", sub)
	}
}

// wasmReader decodes the binary format, remembering the first error.
type wasmReader struct {
	b   []byte
	off int
	err error
}

func (r *wasmReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("offset %d: "+format, append([]any{r.off}, args...)...)
	}
}

func (r *wasmReader) done() bool { return r.err != nil || r.off >= len(r.b) }

func (r *wasmReader) end() error {
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d bytes left over", len(r.b)-r.off)
	}
	return r.err
}

func (r *wasmReader) byte() byte {
	if r.err != nil || r.off >= len(r.b) {
		r.fail("unexpected end")
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *wasmReader) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b)-r.off {
		r.fail("unexpected end")
		return nil
	}
	r.off += n
	return r.b[r.off-n : r.off]
}

func (r *wasmReader) u32() uint32 {
	v, n := binary.Uvarint(r.b[min(r.off, len(r.b)):])
	if r.err != nil || n <= 0 || n > 5 || v > 1<<32-1 {
		r.fail("bad unsigned number")
		return 0
	}
	r.off += n
	return uint32(v)
}

// s33 and s64 skip a signed number of up to 33 or 64 bits: block types,
// constants. Only the length matters here.
func (r *wasmReader) s33() { r.leb(5) }
func (r *wasmReader) s64() { r.leb(10) }
func (r *wasmReader) u64() { r.leb(10) }

func (r *wasmReader) leb(maxBytes int) {
	for i := range maxBytes {
		if r.byte()&0x80 == 0 || r.err != nil {
			return
		}
		if i == maxBytes-1 {
			r.fail("number too long")
		}
	}
}

// appendSLEB appends v in signed LEB128.
func appendSLEB(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func (r *wasmReader) memarg() {
	if align := r.u32(); align&0x40 != 0 { // multiple memories: index follows
		r.u32()
	}
	r.u64()
}

// valType reads a value type: one byte, or a reference type with its heap
// type.
func (r *wasmReader) valType() []byte {
	start := r.off
	if t := r.byte(); t == 0x63 || t == 0x64 {
		r.s33()
	}
	return r.b[start:r.off]
}

func (r *wasmReader) limits() {
	flags := r.byte()
	r.u64()
	if flags&0x01 != 0 {
		r.u64()
	}
}

// pdfYieldStops counts the PDFium calls pdfYield has stopped (for tests).
var pdfYieldStops atomic.Int64

package extract

import (
	"context"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// spinModule is a module with an endless loop (spin, which calls the
// imported test.tick at each turn), a function reached by a direct call
// and one through the table, to check the renumbering:
//
//	(import "test" "tick" (func))                                  ;; 0
//	(func (export "spin") (loop (call 0) (br 0)))                  ;; 1
//	(func (export "seven") (result i32) (i32.const 7))             ;; 2
//	(func (export "viaTable") (result i32) (call_indirect (type 1) (i32.const 0)))
//	(func (export "viaCall") (result i32) (call 2))                ;; 4
//	(table 1 funcref) (elem (i32.const 0) 2) (global i32 (i32.const 0))
func spinModule() []byte {
	section := func(id byte, body ...byte) []byte {
		return append(binary.AppendUvarint([]byte{id}, uint64(len(body))), body...)
	}
	name := func(s string) []byte { return appendName(nil, s) }
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	fn := func(body ...byte) []byte { return append([]byte{byte(len(body) + 1), 0}, body...) }
	return cat([]byte("\x00asm\x01\x00\x00\x00"),
		section(secType, 2, 0x60, 0, 0, 0x60, 0, 1, 0x7f),
		section(secImport, cat([]byte{1}, name("test"), name("tick"), []byte{0, 0})...),
		section(secFunction, 4, 0, 1, 1, 1),
		section(4, 1, 0x70, 0, 1), // table
		section(secGlobal, 1, 0x7f, 0, 0x41, 0, 0x0b),
		section(secExport, cat([]byte{4},
			name("spin"), []byte{0, 1}, name("seven"), []byte{0, 2},
			name("viaTable"), []byte{0, 3}, name("viaCall"), []byte{0, 4})...),
		section(secElement, 1, 0, 0x41, 0, 0x0b, 1, 2),
		section(secCode, cat([]byte{4},
			fn(0x03, 0x40, 0x10, 0, 0x0c, 0, 0x0b, 0x0b),
			fn(0x41, 7, 0x0b),
			fn(0x41, 0, 0x11, 1, 0, 0x0b),
			fn(0x10, 2, 0x0b))...),
	)
}

// TestLoopYieldStopsEndlessLoop runs an endless loop with the loop yields
// and without wazero's own checks: cancelling its ctx (from inside the
// loop, at the first turn) must stop it within yieldInterval turns.
func TestLoopYieldStopsEndlessLoop(t *testing.T) {
	module, err := addLoopYield(spinModule())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := wazero.NewRuntime(ctx) // CloseOnContextDone is off by default
	defer r.Close(ctx)
	if _, err := r.NewHostModuleBuilder(yieldModule).NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(pdfYield), nil, nil).Export(yieldFunction).Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ticks int
	if _, err := r.NewHostModuleBuilder("test").NewFunctionBuilder().WithFunc(func() {
		ticks++
		cancel()
	}).Export("tick").Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	mod, err := r.Instantiate(ctx, module)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"seven", "viaTable", "viaCall"} {
		if res, err := mod.ExportedFunction(name).Call(ctx); err != nil || res[0] != 7 {
			t.Errorf("%s = %v, %v; want 7 (a function index not renumbered?)", name, res, err)
		}
	}
	stops := pdfYieldStops.Load()
	_, err = mod.ExportedFunction("spin").Call(callCtx)
	if err == nil || !errors.Is(err, errPDFiumStopped) {
		t.Fatalf("spin returned %v, want it stopped", err)
	}
	if ticks < 1 || ticks > yieldInterval+1 {
		t.Errorf("the loop ran %d turns after its ctx ended, want at most %d", ticks, yieldInterval+1)
	}
	if got := pdfYieldStops.Load() - stops; got != 1 {
		t.Errorf("pdfYield stopped %d calls, want 1", got)
	}
}

// TestPDFiumModuleYields: go-pdfium's module is found and every one of its
// loops gets a yield.
func TestPDFiumModuleYields(t *testing.T) {
	if len(pdfiumWASM) == 0 {
		t.Fatal("go-pdfium's embedded module was not linked in (moved in a new release?)")
	}
	module, err := pdfiumYieldModule()
	if err != nil {
		t.Fatal(err)
	}
	loops, yields := countLoopsAndYields(t, pdfiumWASM), countLoopsAndYields(t, module)
	if loops[0] < 1000 || yields[0] != loops[0] || yields[1] != loops[0] {
		t.Errorf("original: %d loops; instrumented: %d loops, %d yield calls", loops[0], yields[0], yields[1])
	}
}

// countLoopsAndYields counts loop instructions and calls of the yield
// import in a module's code.
func countLoopsAndYields(t *testing.T, module []byte) (n [2]int) {
	t.Helper()
	r := &wasmReader{b: module, off: 8}
	var yieldFunc uint32 = 1 << 31
	for !r.done() {
		id, body := r.byte(), r.bytes(int(r.u32()))
		sr := &wasmReader{b: body}
		switch id {
		case secImport:
			funcs := uint32(0)
			for range sr.u32() {
				mod, name := string(sr.bytes(int(sr.u32()))), string(sr.bytes(int(sr.u32())))
				kind := sr.byte()
				if kind != 0 {
					t.Fatalf("test helper: import kind %d", kind)
				}
				sr.u32()
				if mod == yieldModule && name == yieldFunction {
					yieldFunc = funcs
				}
				funcs++
			}
		case secCode:
			for range sr.u32() {
				fr := &wasmReader{b: sr.bytes(int(sr.u32()))}
				for range fr.u32() {
					fr.u32()
					fr.valType()
				}
				for !fr.done() {
					switch op := fr.byte(); op {
					case 0x03:
						fr.s33()
						n[0]++
					case 0x10:
						if fr.u32() == yieldFunc {
							n[1]++
						}
					case 0x02, 0x04, 0x06:
						fr.s33()
					case 0x0b, 0x18:
						if op == 0x18 {
							fr.u32()
						}
					case 0x1f:
						fr.s33()
						for range fr.u32() {
							if kind := fr.byte(); kind < 2 {
								fr.u32()
							}
							fr.u32()
						}
					case 0x12, 0xd2:
						fr.u32()
					default:
						fr.immediates(op)
					}
				}
				if fr.err != nil {
					t.Fatal(fr.err)
				}
			}
		}
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	return n
}

// armedCtx is a context whose Err turns to Canceled once armed: a way to
// end a context at a known point inside a WebAssembly call.
type armedCtx struct {
	context.Context
	armed atomic.Bool
}

func (c *armedCtx) Err() error {
	if c.armed.Load() {
		return context.Canceled
	}
	return nil
}

// TestPDFiumCallStoppedWhileRunning ends the context while PDFium parses a
// page of the hostile PDF (millions of loop turns): the call must stop at
// a yield instead of running to its end.
func TestPDFiumCallStoppedWhileRunning(t *testing.T) {
	data := hostilePDF(100_000)
	ctx := &armedCtx{Context: context.Background()}
	stops := pdfYieldStops.Load()
	err := withPDFium(ctx, 192<<20, func(inst *pdfiumInstance) error {
		doc, _, err := inst.openDocument(data)
		if err != nil || doc == 0 {
			t.Fatalf("open: %v", err)
		}
		ctx.armed.Store(true)
		page, err := inst.call("FPDF_LoadPage", doc, 0)
		if err == nil {
			t.Errorf("FPDF_LoadPage returned page %d, want the call stopped", page)
		}
		return err
	})
	if !errors.Is(err, errPDFiumStopped) {
		t.Errorf("error = %v, want the stop", err)
	}
	if got := pdfYieldStops.Load() - stops; got != 1 {
		t.Errorf("pdfYield stopped %d calls, want 1", got)
	}
}

// FuzzAddLoopYield: any input is rewritten or refused, never a panic, and
// what it writes can be read again.
func FuzzAddLoopYield(f *testing.F) {
	f.Add(spinModule())
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, module []byte) {
		out, err := addLoopYield(module)
		if err != nil {
			return
		}
		if _, err := addLoopYield(out); err != nil {
			t.Fatalf("the rewritten module does not parse again: %v", err)
		}
	})
}

package extract

import (
	"bytes"
	"context"
	"testing"
)

// The glyph reader added to the module writes the same records as the
// PDFium calls it makes, made one by one from Go.
func TestGlyphReaderMatchesCalls(t *testing.T) {
	data := readFixture(t, "real/asymptote-refcard.pdf")
	err := withPDFium(context.Background(), DefaultLimits().MaxMemoryBytes, func(inst *pdfiumInstance) error {
		if inst.reader == nil {
			t.Fatal("the module has no glyph reader")
		}
		doc, _, err := inst.openDocument(data)
		if err != nil || doc == 0 {
			t.Fatalf("open: %v", err)
		}
		page, err := inst.call("FPDF_LoadPage", doc, 0)
		if err != nil || page == 0 {
			t.Fatalf("page: %v", err)
		}
		tp, err := inst.call("FPDFText_LoadPage", page)
		if err != nil || tp == 0 {
			t.Fatalf("text page: %v", err)
		}
		n, err := inst.call("FPDFText_CountChars", tp)
		if err != nil || n < 100 {
			t.Fatalf("%d characters, %v", n, err)
		}
		count := min(int(n), glyphChunk)
		size := uint32(count * glyphRecord)
		mem := inst.mod.Memory()
		read := func() []byte {
			b, ok := mem.Read(inst.buf, size)
			if !ok {
				t.Fatal("buffer out of range")
			}
			return bytes.Clone(b)
		}
		stack := []uint64{uint64(tp), 0, uint64(count), uint64(inst.buf)}
		if err := inst.reader.CallWithStack(inst.ctx, stack); err != nil {
			t.Fatal(err)
		}
		if stack[0] != uint64(count) {
			t.Errorf("reader returned %d, want %d", stack[0], count)
		}
		fromReader := read()
		b, _ := mem.Read(inst.buf, size)
		clear(b)
		for i := range count {
			if err := inst.glyphRecord(tp, uint32(i), inst.buf+uint32(i*glyphRecord)); err != nil {
				t.Fatal(err)
			}
		}
		fromCalls := read()
		for i := range count {
			a, b := fromReader[i*glyphRecord:(i+1)*glyphRecord], fromCalls[i*glyphRecord:(i+1)*glyphRecord]
			if !bytes.Equal(a, b) {
				t.Fatalf("character %d: reader wrote %x, calls %x", i, a, b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAddGlyphReaderRefuses(t *testing.T) {
	if _, err := addGlyphReader(spinModule()); err == nil {
		t.Error("a module without PDFium's functions got a glyph reader")
	}
	module, err := pdfiumYieldModule()
	if err != nil {
		t.Fatal(err)
	}
	once, err := addGlyphReader(module)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := addGlyphReader(once); err == nil {
		t.Error("a second glyph reader was added")
	}
	if _, err := addGlyphReader(once[:len(once)-3]); err == nil {
		t.Error("a truncated module got a glyph reader")
	}
}

package extract

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkPDFPhases splits PDF extraction time over a corpus into its
// phases, to show where the time goes (bench/README.md):
//
//	TETHER_PDF_CORPUS='/tmp/tether-pdf-corpus/*.pdf' go test ./internal/extract -run '^$' -bench PDFPhases -benchtime 1x
//
// Each phase is reported as ms per pass over the corpus: instance (a fresh
// PDFium), open (cross-reference table), load-page (parsing the content
// stream), text-page (PDFium's text layout), get-text (reading the glyphs
// out of PDFium and grouping them into words) and close.
func BenchmarkPDFPhases(b *testing.B) {
	files, err := filepath.Glob(os.Getenv("TETHER_PDF_CORPUS"))
	if err != nil || len(files) == 0 {
		b.Skip("set TETHER_PDF_CORPUS to a glob of PDFs, e.g. bench/corpus.sh's '/tmp/tether-pdf-corpus/*.pdf'")
	}
	if err := Warm(); err != nil {
		b.Fatal(err)
	}
	names := []string{"instance", "open", "load-page", "text-page", "get-text", "close"}
	var total [6]time.Duration
	for b.Loop() {
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			if err := pdfPhases(data, &total); err != nil {
				b.Fatalf("%s: %v", filepath.Base(f), err)
			}
		}
	}
	for i, name := range names {
		b.ReportMetric(float64(total[i].Microseconds())/1000/float64(b.N), name+"-ms/op")
	}
}

// pdfPhases runs pdfText's calls on data, adding each phase's time to ph.
func pdfPhases(data []byte, ph *[6]time.Duration) error {
	lap := time.Now()
	mark := func(i int) {
		now := time.Now()
		ph[i] += now.Sub(lap)
		lap = now
	}
	return withPDFium(context.Background(), DefaultLimits().MaxMemoryBytes, func(inst *pdfiumInstance) error {
		mark(0)
		doc, _, err := inst.openDocument(data)
		if err != nil || doc == 0 {
			return fmt.Errorf("open: %v", err)
		}
		n, err := inst.call("FPDF_GetPageCount", doc)
		if err != nil {
			return err
		}
		mark(1)
		words := &glyphWriter{dst: newTextBuilder(DefaultLimits().MaxTextBytes)}
		glyphs := make([]pdfGlyph, glyphChunk)
		for i := range n {
			page, err := inst.call("FPDF_LoadPage", doc, i)
			if err != nil || page == 0 {
				return fmt.Errorf("page %d: %v", i+1, err)
			}
			mark(2)
			tp, err := inst.call("FPDFText_LoadPage", page)
			if err != nil || tp == 0 {
				return fmt.Errorf("text page %d: %v", i+1, err)
			}
			count, err := inst.call("FPDFText_CountChars", tp)
			if err != nil {
				return err
			}
			mark(3)
			for start := 0; start < int(count); start += len(glyphs) {
				chunk := glyphs[:min(len(glyphs), int(count)-start)]
				if err := inst.glyphs(tp, start, chunk); err != nil {
					return err
				}
				if err := words.write(chunk); err != nil {
					return err
				}
				mark(4)
			}
			if err := words.endPage(); err != nil {
				return err
			}
			inst.call("FPDFText_ClosePage", tp)
			inst.call("FPDF_ClosePage", page)
			mark(5)
		}
		return nil
	})
}

package extract

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klippa-app/go-pdfium"
	"github.com/klippa-app/go-pdfium/requests"
)

// BenchmarkPDFPhases splits PDF extraction time over a corpus into its
// phases, to show where the time goes (bench/README.md):
//
//	TETHER_PDF_CORPUS='/tmp/tether-pdf-corpus/*.pdf' go test ./internal/extract -run '^$' -bench PDFPhases -benchtime 1x
//
// Each phase is reported as ms per pass over the corpus: instance (a fresh
// PDFium), open (cross-reference table), load-page (parsing the content
// stream), text-page (PDFium's text layout), get-text (copying text out
// of WebAssembly memory), assemble (the Go-side text builder) and close.
func BenchmarkPDFPhases(b *testing.B) {
	files, err := filepath.Glob(os.Getenv("TETHER_PDF_CORPUS"))
	if err != nil || len(files) == 0 {
		b.Skip("set TETHER_PDF_CORPUS to a glob of PDFs, e.g. bench/corpus.sh's '/tmp/tether-pdf-corpus/*.pdf'")
	}
	if err := Warm(); err != nil {
		b.Fatal(err)
	}
	names := []string{"instance", "open", "load-page", "text-page", "get-text", "assemble", "close"}
	var total [7]time.Duration
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
func pdfPhases(data []byte, ph *[7]time.Duration) error {
	lap := time.Now()
	mark := func(i int) {
		now := time.Now()
		ph[i] += now.Sub(lap)
		lap = now
	}
	return withPDFium(context.Background(), DefaultLimits().MaxMemoryBytes, func(inst pdfium.Pdfium) error {
		mark(0)
		doc, err := inst.OpenDocument(&requests.OpenDocument{FileReader: bytes.NewReader(data), FileReaderSize: int64(len(data))})
		if err != nil {
			return err
		}
		n, err := inst.FPDF_GetPageCount(&requests.FPDF_GetPageCount{Document: doc.Document})
		if err != nil {
			return err
		}
		mark(1)
		text := newTextBuilder(DefaultLimits().MaxTextBytes)
		for i := range n.PageCount {
			page, err := inst.FPDF_LoadPage(&requests.FPDF_LoadPage{Document: doc.Document, Index: i})
			if err != nil {
				return err
			}
			mark(2)
			tp, err := inst.FPDFText_LoadPage(&requests.FPDFText_LoadPage{Page: requests.Page{ByReference: &page.Page}})
			if err != nil {
				return err
			}
			count, err := inst.FPDFText_CountChars(&requests.FPDFText_CountChars{TextPage: tp.TextPage})
			if err != nil {
				return err
			}
			mark(3)
			for start := 0; start < count.Count; start += pdfTextChunk {
				t, err := inst.FPDFText_GetText(&requests.FPDFText_GetText{TextPage: tp.TextPage, StartIndex: start, Count: min(pdfTextChunk, count.Count-start)})
				if err != nil {
					return err
				}
				mark(4)
				if err := text.WriteString(t.Text); err != nil {
					return err
				}
				mark(5)
			}
			inst.FPDFText_ClosePage(&requests.FPDFText_ClosePage{TextPage: tp.TextPage})
			inst.FPDF_ClosePage(&requests.FPDF_ClosePage{Page: page.Page})
			mark(6)
		}
		inst.FPDF_CloseDocument(&requests.FPDF_CloseDocument{Document: doc.Document})
		mark(6)
		return nil
	})
}

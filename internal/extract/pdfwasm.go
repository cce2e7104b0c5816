package extract

import _ "unsafe" // for go:linkname

// pdfiumWASM is the PDFium module go-pdfium embeds, which it keeps in an
// internal package; the loop instrumentation (wasmyield.go) needs its
// bytes; pdfium.go imports the package that links it in. If a go-pdfium
// release moves it, pdfiumWASM is empty: TestPDFiumModuleYields fails,
// and a build that ships anyway has no PDF engine and says so.
//
//go:linkname pdfiumWASM github.com/klippa-app/go-pdfium/internal/pdfium_wasm.Module
var pdfiumWASM []byte

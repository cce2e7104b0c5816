// Command extractbench compares internal/extract's PDF text with poppler's
// pdftotext on a directory of PDFs: word recall (the share of pdftotext's
// words we also find) and the ratio of our time to pdftotext's on the same
// files, measured side by side in one run: wall time, and CPU time (ours
// from the process's own usage, pdftotext's from its child's), which a
// loaded machine disturbs less. bench/extract.sh runs it.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/tetherhq/tether/internal/extract"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "extractbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("extractbench", flag.ContinueOnError)
	runs := fs.Int("runs", 3, "timed runs per file and tool; the fastest counts")
	minRecall := fs.Float64("min-recall", 0.95, "exit non-zero if the corpus recall is below this")
	cacheDir := fs.String("cache", "", "keep PDFium's compiled code in this directory between runs (as DOCSVC_EXTRACT_CACHE_DIR does)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: extractbench [-runs N] [-min-recall R] [-cache DIR] CORPUS_DIR")
	}
	extract.SetCompileCache(*cacheDir, func(msg string) { fmt.Fprintln(os.Stderr, "extractbench:", msg) })
	files, err := filepath.Glob(filepath.Join(fs.Arg(0), "*.pdf"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no PDFs in %s (run bench/corpus.sh)", fs.Arg(0))
	}
	pdftotext, err := exec.LookPath("pdftotext")
	if err != nil {
		return errors.New("pdftotext not found (apt-get install poppler-utils)")
	}

	// The first extraction compiles PDFium; a worker pays it once at start.
	start := time.Now()
	if _, err := extractFile(ctx, files[0]); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	fmt.Fprintf(out, "pdfium start-up (compile + first file): %v\n\n", time.Since(start).Round(time.Millisecond))

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "file\tpages\twords\trecall\tours ms\tpdftotext ms\tratio\tours cpu ms\tpdftotext cpu ms\tcpu ratio\t")
	var (
		refWords, foundWords         int
		oursTotal, theirsTotal       time.Duration
		oursCPUTotal, theirsCPUTotal time.Duration
		logRatios, logCPURatios      float64
		minR                         = 1.0
		failed                       int
	)
	for _, f := range files {
		var (
			ours, theirs       time.Duration = math.MaxInt64, math.MaxInt64
			oursCPU, theirsCPU time.Duration = math.MaxInt64, math.MaxInt64
			res                extract.Result
			ref                []byte
			extErr             error
		)
		// Alternate the tools so machine load hits both alike.
		for range *runs {
			t := time.Now()
			cmd := exec.CommandContext(ctx, pdftotext, "-q", "-enc", "UTF-8", f, "-")
			ref, err = cmd.Output()
			theirs = min(theirs, time.Since(t))
			if err != nil {
				return fmt.Errorf("pdftotext %s: %w", filepath.Base(f), err)
			}
			theirsCPU = min(theirsCPU, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
			t, c := time.Now(), processCPU()
			res, extErr = extractFile(ctx, f)
			ours = min(ours, time.Since(t))
			oursCPU = min(oursCPU, processCPU()-c)
		}
		refW := words(string(ref))
		total, found := 0, 0
		if extErr == nil {
			total, found = overlap(refW, words(res.Text))
		} else {
			total, _ = overlap(refW, nil)
			failed++
		}
		r := 1.0
		if total > 0 {
			r = float64(found) / float64(total)
		}
		minR = min(minR, r)
		refWords += total
		foundWords += found
		oursTotal += ours
		theirsTotal += theirs
		oursCPUTotal += oursCPU
		theirsCPUTotal += theirsCPU
		ratio := ours.Seconds() / theirs.Seconds()
		logRatios += math.Log(ratio)
		cpuRatio := oursCPU.Seconds() / max(theirsCPU.Seconds(), 1e-3)
		logCPURatios += math.Log(cpuRatio)
		name := filepath.Base(f)
		if extErr != nil {
			name += " (" + extErr.Error() + ")"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.3f\t%.1f\t%.1f\t%.2f\t%.1f\t%.1f\t%.2f\t\n", name, res.Pages, total, r,
			ms(ours), ms(theirs), ratio, ms(oursCPU), ms(theirsCPU), cpuRatio)
	}
	tw.Flush()

	corpusRecall := float64(foundWords) / float64(max(refWords, 1))
	fmt.Fprintf(out, "\nfiles %d, failed %d, words %d\n", len(files), failed, refWords)
	fmt.Fprintf(out, "word recall: corpus %.4f, worst file %.3f\n", corpusRecall, minR)
	fmt.Fprintf(out, "time ours/pdftotext: total %.2f (%.2fs vs %.2fs), geometric mean per file %.2f\n",
		oursTotal.Seconds()/theirsTotal.Seconds(), oursTotal.Seconds(), theirsTotal.Seconds(),
		math.Exp(logRatios/float64(len(files))))
	fmt.Fprintf(out, "cpu ours/pdftotext: total %.2f (%.2fs vs %.2fs), geometric mean per file %.2f\n",
		oursCPUTotal.Seconds()/theirsCPUTotal.Seconds(), oursCPUTotal.Seconds(), theirsCPUTotal.Seconds(),
		math.Exp(logCPURatios/float64(len(files))))
	if corpusRecall < *minRecall {
		return fmt.Errorf("corpus recall %.4f below %.2f", corpusRecall, *minRecall)
	}
	return nil
}

func extractFile(ctx context.Context, path string) (extract.Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return extract.Result{}, err
	}
	// The corpus includes the 2,400-page R reference manual, over the
	// default text limit's comfort; raise the limits, not the bar.
	lim := extract.DefaultLimits()
	lim.MaxTextBytes = 256 << 20
	return extract.Extract(ctx, extract.PDF, bytes.NewReader(data), int64(len(data)), lim)
}

// processCPU is the user and system time this process has used, all
// threads: the extraction's own goroutine and the garbage collector's.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// words is the same definition as internal/extract's fidelity test:
// lower-cased, NFKC-normalised (ligatures undone) runs of letters/digits.
func words(s string) map[string]int {
	m := make(map[string]int)
	for _, w := range strings.FieldsFunc(norm.NFKC.String(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		m[strings.ToLower(w)]++
	}
	return m
}

// overlap counts the reference's word occurrences and how many got has.
func overlap(ref, got map[string]int) (total, found int) {
	for w, n := range ref {
		total += n
		found += min(n, got[w])
	}
	return total, found
}

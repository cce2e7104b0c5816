package extract

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostilePDF builds the document of the hardening finding: one page whose
// content stream is "BT /F1 1 Tf" followed by n shows of a 40-letter
// string. PDFium keeps per-character layout data for every glyph, so the
// work grows with n while the file stays small (n=100,000 is 4.6 MB).
func hostilePDF(n int) []byte {
	var content bytes.Buffer
	content.WriteString("BT /F1 1 Tf\n")
	show := "(" + strings.Repeat("A", 40) + ") Tj\n"
	for range n {
		content.WriteString(show)
	}
	content.WriteString("ET\n")
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", content.Len(), content.String()),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}

// memoryReport is what TestHostilePDFStaysWithinMemoryCap's child process
// measured, in bytes.
type memoryReport struct {
	Err      string
	Limit    Limit
	Baseline int64 // resident after PDFium was compiled and the heap returned
	Peak     int64 // the resident high-water mark during the extraction
	After    int64 // resident once it had failed
}

// procStatus reads one kB figure (VmRSS, VmHWM) of this process.
func procStatus(t testing.TB, key string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", key)
	return 0
}

const hostileChildEnv = "TETHER_EXTRACT_HOSTILE_CHILD"

// hostileJobs is how many copies of the hostile PDF run at once.
const hostileJobs = 2

// TestHostilePDFStaysWithinMemoryCap replays the hardening finding: the
// 4.6 MB PDF drove the worker to 3.2 GB resident and kept it there. Two
// copies run at once in a child process, so that the resident high-water
// mark is theirs alone and compiling PDFium is not counted: the process
// must stay within the two caps and return to idle after.
func TestHostilePDFStaysWithinMemoryCap(t *testing.T) {
	t.Parallel()
	const capBytes = 192 << 20
	// The Go heap, the input and the text builder's chunk: everything the
	// process holds besides PDFium's memory.
	const overhead = 96 << 20
	if os.Getenv(hostileChildEnv) == "1" {
		hostileChild(t, capBytes)
		return
	}
	if _, err := os.Stat("/proc/self/clear_refs"); err != nil {
		t.Skip("needs Linux's /proc to measure resident memory")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHostilePDFStaysWithinMemoryCap$", "-test.v")
	cmd.Env = append(os.Environ(), hostileChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	_, js, ok := bytes.Cut(out, []byte("REPORT "))
	if !ok {
		t.Fatalf("child printed no report:\n%s", out)
	}
	js, _, _ = bytes.Cut(js, []byte("\n"))
	var r memoryReport
	if err := json.Unmarshal(js, &r); err != nil {
		t.Fatal(err)
	}
	t.Logf("resident: %d MiB idle, %d MiB peak, %d MiB after; %d jobs at a cap of %d MiB; %s",
		r.Baseline>>20, r.Peak>>20, r.After>>20, hostileJobs, capBytes>>20, r.Err)
	if r.Limit != LimitMemory || !strings.Contains(r.Err, "memory limit of 192MiB") {
		t.Errorf("error = %q (limit %q), want the memory limit of 192MiB named", r.Err, r.Limit)
	}
	if grew := r.Peak - r.Baseline; grew > hostileJobs*capBytes+overhead {
		t.Errorf("resident memory grew by %d MiB, over %d × the %d MiB cap plus %d MiB", grew>>20, hostileJobs, capBytes>>20, overhead>>20)
	}
	if kept := r.After - r.Baseline; kept > overhead {
		t.Errorf("resident memory stayed %d MiB above idle after the document failed", kept>>20)
	}
}

func hostileChild(t *testing.T, capBytes int64) {
	if err := Warm(); err != nil {
		t.Fatal(err)
	}
	data := hostilePDF(100_000)
	lim := DefaultLimits()
	lim.MaxMemoryBytes = capBytes
	lim.MaxDuration = 0 // only the memory cap stops it
	debug.FreeOSMemory()
	var r memoryReport
	r.Baseline = procStatus(t, "VmRSS")
	// Writing 5 resets the high-water mark to the current resident size.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatal(err)
	}
	// A burst: hostileJobs documents at once, as a worker with that
	// concurrency would run them.
	errs := make([]error, hostileJobs)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = Extract(context.Background(), PDF, bytes.NewReader(data), int64(len(data)), lim)
		})
	}
	wg.Wait()
	r.Peak = procStatus(t, "VmHWM")
	r.After = procStatus(t, "VmRSS")
	for _, err := range errs {
		if err != nil {
			r.Err = err.Error()
		}
		le, ok := errors.AsType[*LimitError](err)
		if !ok || (r.Limit != "" && r.Limit != le.Limit) {
			r.Limit = "different errors"
			break
		}
		r.Limit = le.Limit
	}
	js, _ := json.Marshal(r)
	fmt.Printf("REPORT %s\n", js)
}

// TestExtractTimeLimit injects a time limit that has passed before the
// parser starts, so the test does not depend on how fast anything runs.
func TestExtractTimeLimit(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	lim.MaxDuration = time.Nanosecond
	for _, f := range []struct {
		format Format
		data   []byte
	}{{PDF, readFixture(t, "hello.pdf")}, {Text, []byte("hello")}} {
		_, err := extractBytes(t, f.format, f.data, lim)
		le, ok := errors.AsType[*LimitError](err)
		if !ok || le.Limit != LimitTime || !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "time limit of 1ns") {
			t.Errorf("%s: error = %v, want the time limit named", f.format, err)
		}
	}

	// The caller's own deadline is not the document's fault.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data := readFixture(t, "hello.pdf")
	_, err := Extract(ctx, PDF, bytes.NewReader(data), int64(len(data)), lim)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTooLarge) {
		t.Errorf("cancelled: error = %v, want context.Canceled and not ErrTooLarge", err)
	}
}

// TestPDFMemoryLimitNamed checks that a cap too small for even an ordinary
// PDF fails with the memory limit named, not as a damaged document.
func TestPDFMemoryLimitNamed(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	lim.MaxMemoryBytes = 1 << 20
	_, err := extractBytes(t, PDF, readFixture(t, "hello.pdf"), lim)
	le, ok := errors.AsType[*LimitError](err)
	if !ok || le.Limit != LimitMemory || !strings.Contains(err.Error(), "memory limit of 1MiB") {
		t.Fatalf("error = %v, want the memory limit of 1MiB named", err)
	}
}

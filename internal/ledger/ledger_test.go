package ledger_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/ledger"
	"github.com/tetherhq/tether/internal/ledger/ledgerread"
)

const dest = "POST https://plane.example/v1/heartbeat"

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

type bundle struct {
	path string
	l    *ledger.Ledger
}

func setup(t testing.TB) *bundle {
	t.Helper()
	path := filepath.Join(t.TempDir(), "egress.jsonl")
	l, err := ledger.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return &bundle{path: path, l: l}
}

// appendN appends n heartbeats one second apart, starting at t0.
func (b *bundle) appendN(t testing.TB, n int) []ledger.Entry {
	t.Helper()
	var out []ledger.Entry
	for i := 0; i < n; i++ {
		e, err := b.l.Append(ledger.KindHeartbeat, dest, []byte(fmt.Sprintf(`{"n":%d,"channel":"stable"}`, i)), t0.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		out = append(out, e)
	}
	return out
}

func lines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

func writeLines(t *testing.T, path string, ls [][]byte) {
	t.Helper()
	var buf bytes.Buffer
	for _, l := range ls {
		buf.Write(l)
		if !bytes.HasSuffix(l, []byte("\n")) {
			buf.WriteByte('\n')
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAppendVerifyRead(t *testing.T) {
	t.Parallel()
	b := setup(t)
	entries := b.appendN(t, 5)
	if entries[0].Seq != 1 || entries[0].Prev != strings.Repeat("0", 64) {
		t.Fatalf("first entry seq %d prev %s", entries[0].Seq, entries[0].Prev)
	}
	for i := 1; i < len(entries); i++ {
		if entries[i].Prev != entries[i-1].Hash || entries[i].Seq != uint64(i+1) {
			t.Fatalf("entry %d does not chain: %+v", i+1, entries[i])
		}
	}
	n, err := ledgerread.Verify(b.path)
	if err != nil || n != 5 {
		t.Fatalf("Verify = %d, %v; want 5, nil", n, err)
	}
	got, err := ledgerread.Read(b.path, t0.Add(3*time.Second))
	if err != nil || len(got) != 2 || got[0].Seq != 4 {
		t.Fatalf("Read since +3s = %d entries (first %+v), %v", len(got), got, err)
	}
	all, err := ledgerread.Read(b.path, time.Time{})
	if err != nil || len(all) != 5 {
		t.Fatalf("Read all = %d, %v", len(all), err)
	}
	fi, err := os.Stat(b.path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ledger mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

func TestPayloadKeptExactly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name       string
		payload    []byte
		wantBase64 bool
	}{
		{"compact JSON stays JSON", []byte(`{"a":"<b>&c","n":[1,2.50]}`), false},
		{"indented JSON would be reformatted, so base64", []byte("{\n  \"a\": 1\n}"), true},
		{"a zip is base64", []byte("PK\x03\x04\x00\x00binary\xff\xfe"), true},
		{"invalid JSON is base64", []byte(`{"a":`), true},
		{"escaped unicode stays as sent", []byte(`{"a":"\u00e9\u2028"}`), false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := b.l.Append(ledger.KindDiagnostics, "POST https://plane.example/v1/diagnostics/d1/bundle", tt.payload, t0)
			if err != nil {
				t.Fatal(err)
			}
			if (e.PayloadBase64 != "") != tt.wantBase64 {
				t.Fatalf("base64 = %v, want %v (entry %+v)", e.PayloadBase64 != "", tt.wantBase64, e)
			}
			all, err := ledgerread.Read(b.path, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := all[len(all)-1].Bytes()
			sum := sha256.Sum256(tt.payload)
			if err != nil || !bytes.Equal(got, tt.payload) || all[len(all)-1].PayloadSHA256 != hex.EncodeToString(sum[:]) {
				t.Fatalf("read back %q (%v), want %q", got, err, tt.payload)
			}
		})
	}
	if _, err := ledgerread.Verify(b.path); err != nil {
		t.Fatal(err)
	}
}

func TestAppendRejects(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name, call := range map[string]func() error{
		"unknown kind":      func() error { _, err := b.l.Append("upload", dest, nil, t0); return err },
		"empty destination": func() error { _, err := b.l.Append(ledger.KindTelemetry, "", nil, t0); return err },
		"newline destination": func() error {
			_, err := b.l.Append(ledger.KindTelemetry, "POST /x\nkind: heartbeat", nil, t0)
			return err
		},
		"oversized payload": func() error {
			_, err := b.l.Append(ledger.KindTelemetry, dest, make([]byte, ledger.MaxPayload+1), t0)
			return err
		},
		"time past year 9999": func() error {
			_, err := b.l.Append(ledger.KindTelemetry, dest, nil, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
			return err
		},
	} {
		if err := call(); err == nil {
			t.Errorf("%s: Append succeeded", name)
		}
	}
	if n, err := ledgerread.Verify(b.path); n != 0 || err != nil {
		t.Fatalf("rejected appends left %d entries, %v", n, err)
	}
}

// reseal recomputes one edited entry's payload hash and hash the way a
// careless forger would, so the break shows up in the next entry's prev.
func reseal(t *testing.T, line []byte) []byte {
	t.Helper()
	var e ledger.Entry
	if err := json.Unmarshal(line, &e); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(e.Payload)
	e.PayloadSHA256 = hex.EncodeToString(sum[:])
	s := strings.Join([]string{"TETHER-LEDGER-V1", strconv.FormatUint(e.Seq, 10), e.Time.UTC().Format(time.RFC3339Nano),
		e.Kind, e.Destination, e.PayloadSHA256, e.Prev}, "\n")
	h := sha256.Sum256([]byte(s))
	e.Hash = hex.EncodeToString(h[:])
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		tamper    func(t *testing.T, path string)
		wantErr   error
		wantEntry string // the entry the error names
	}{
		{"edit payload", func(t *testing.T, path string) {
			ls := lines(t, path)
			ls[1] = bytes.Replace(ls[1], []byte(`"stable"`), []byte(`"stabl3"`), 1)
			writeLines(t, path, ls)
		}, ledger.ErrTampered, "entry 2:"},
		{"edit payload and reseal that entry", func(t *testing.T, path string) {
			ls := lines(t, path)
			ls[1] = reseal(t, bytes.Replace(ls[1], []byte(`"stable"`), []byte(`"stabl3"`), 1))
			writeLines(t, path, ls)
		}, ledger.ErrTampered, "entry 3:"},
		{"edit hash", func(t *testing.T, path string) {
			ls := lines(t, path)
			var e ledger.Entry
			_ = json.Unmarshal(ls[2], &e)
			ls[2] = bytes.Replace(ls[2], []byte(e.Hash), []byte(strings.Repeat("a", 64)), 1)
			writeLines(t, path, ls)
		}, ledger.ErrTampered, "entry 3:"},
		{"edit time", func(t *testing.T, path string) {
			ls := lines(t, path)
			ls[0] = bytes.Replace(ls[0], []byte(`12:00:00Z`), []byte(`11:00:00Z`), 1)
			writeLines(t, path, ls)
		}, ledger.ErrTampered, "entry 1:"},
		{"reformat whitespace", func(t *testing.T, path string) {
			ls := lines(t, path)
			ls[3] = bytes.Replace(ls[3], []byte(`{"seq"`), []byte(`{ "seq"`), 1)
			writeLines(t, path, ls)
		}, ledger.ErrTampered, "entry 4:"},
		{"delete middle line", func(t *testing.T, path string) {
			ls := lines(t, path)
			writeLines(t, path, append(ls[:2:2], ls[3:]...))
		}, ledger.ErrTampered, "entry 3:"},
		{"swap lines", func(t *testing.T, path string) {
			ls := lines(t, path)
			ls[1], ls[2] = ls[2], ls[1]
			writeLines(t, path, ls)
		}, ledger.ErrTampered, "entry 2:"},
		{"insert a copied line", func(t *testing.T, path string) {
			ls := lines(t, path)
			writeLines(t, path, append(ls[:3:3], append([][]byte{ls[1]}, ls[3:]...)...))
		}, ledger.ErrTampered, "entry 4:"},
		{"insert a blank line", func(t *testing.T, path string) {
			ls := lines(t, path)
			writeLines(t, path, append(ls[:1:1], append([][]byte{[]byte("\n")}, ls[1:]...)...))
		}, ledger.ErrTampered, "entry 2:"},
		{"truncate the last line", func(t *testing.T, path string) {
			ls := lines(t, path)
			writeLines(t, path, ls[:len(ls)-1])
		}, ledger.ErrTampered, "entry 4:"},
		{"truncate to empty", func(t *testing.T, path string) {
			writeLines(t, path, nil)
		}, ledger.ErrTampered, "head records entry 5"},
		{"truncate mid-line", func(t *testing.T, path string) {
			data, _ := os.ReadFile(path)
			_ = os.WriteFile(path, data[:len(data)-20], 0o600)
		}, ledger.ErrTornTail, "entry 5:"},
		{"delete the head file", func(t *testing.T, path string) {
			_ = os.Remove(path + ".head")
		}, ledger.ErrTampered, "head file"},
		{"truncate two lines", func(t *testing.T, path string) {
			writeLines(t, path, lines(t, path)[:3])
		}, ledger.ErrTampered, "entry 3:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			b.appendN(t, 5)
			b.l.Close()
			tt.tamper(t, b.path)
			_, err := ledgerread.Verify(b.path)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantEntry) {
				t.Fatalf("Verify = %v; want %v naming %q", err, tt.wantErr, tt.wantEntry)
			}
			// Open reads only the tail (damage further back is Verify's to
			// find) but must refuse to chain onto a bad one.
			l, err := ledger.Open(b.path)
			if err == nil {
				l.Close()
			}
			if tailBad := strings.Contains(tt.name, "truncate") || strings.Contains(tt.name, "head"); tailBad && err == nil {
				t.Fatalf("Open accepted a ledger with a bad tail")
			}
		})
	}
}

func TestReopenContinuesChain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := b.appendN(t, 3)
	if err := b.l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.l.Append(ledger.KindHeartbeat, dest, nil, t0); err == nil {
		t.Fatal("Append after Close succeeded")
	}
	l, err := ledger.Open(b.path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e, err := l.Append(ledger.KindTelemetry, "POST https://plane.example/v1/telemetry", []byte(`{"day":"2026-11-27"}`), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq != 4 || e.Prev != first[2].Hash {
		t.Fatalf("after reopen: seq %d prev %s; want 4 and %s", e.Seq, e.Prev, first[2].Hash)
	}
	if n, err := ledgerread.Verify(b.path); n != 4 || err != nil {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

func TestTornTailReportedThenRepaired(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.appendN(t, 3)
	b.l.Close()
	// A crash mid-write leaves part of a fourth line.
	f, err := os.OpenFile(b.path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":4,"time":"2026-11-28T12:`)
	f.Close()

	if _, err := ledger.Open(b.path); !errors.Is(err, ledger.ErrTornTail) {
		t.Fatalf("Open = %v, want ErrTornTail", err)
	}
	if _, err := ledgerread.Read(b.path, time.Time{}); !errors.Is(err, ledger.ErrTornTail) {
		t.Fatalf("Read = %v, want ErrTornTail", err)
	}
	removed, err := ledgerread.RepairTornTail(b.path)
	if err != nil || removed != int64(len(`{"seq":4,"time":"2026-11-28T12:`)) {
		t.Fatalf("RepairTornTail = %d, %v", removed, err)
	}
	l, err := ledger.Open(b.path)
	if err != nil {
		t.Fatalf("Open after repair: %v", err)
	}
	defer l.Close()
	if e, err := l.Append(ledger.KindHeartbeat, dest, nil, t0); err != nil || e.Seq != 4 {
		t.Fatalf("Append after repair: seq %d, %v", e.Seq, err)
	}
	if n, err := ledgerread.Verify(b.path); n != 4 || err != nil {
		t.Fatalf("Verify = %d, %v", n, err)
	}
	if removed, err := ledgerread.RepairTornTail(b.path); removed != 0 || err != nil {
		t.Fatalf("RepairTornTail on a whole ledger = %d, %v", removed, err)
	}
}

func TestConcurrentAppends(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A second and third Ledger on the same file take the flock path, as a
	// second process would; goroutines share each.
	others := make([]*ledger.Ledger, 2)
	for i := range others {
		l, err := ledger.Open(b.path)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		others[i] = l
	}
	all := append([]*ledger.Ledger{b.l}, others...)
	const goroutines, each = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*each)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(l *ledger.Ledger) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := l.Append(ledger.KindHeartbeat, dest, []byte(`{}`), t0); err != nil {
					errs <- err
				}
			}
		}(all[g%len(all)])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, err := ledgerread.Verify(b.path); n != goroutines*each || err != nil {
		t.Fatalf("Verify = %d, %v; want %d", n, err, goroutines*each)
	}
}

// TestHelperAppender is a child process for TestAcrossProcesses.
func TestHelperAppender(t *testing.T) {
	t.Parallel()
	path := os.Getenv("LEDGER_TEST_APPEND_TO")
	if path == "" {
		t.Skip("run only as TestAcrossProcesses's child")
	}
	l, err := ledger.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < 25; i++ {
		if _, err := l.Append(ledger.KindTelemetry, dest, []byte(`{"child":true}`), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAcrossProcesses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.appendN(t, 1)
	var cmds []*exec.Cmd
	for i := 0; i < 4; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAppender$", "-test.count=1")
		cmd.Env = append(os.Environ(), "LEDGER_TEST_APPEND_TO="+b.path)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("child output:\n%s", out.String())
			}
		})
	}
	// This process appends while the children do.
	b.appendN(t, 10)
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	if n, err := ledgerread.Verify(b.path); n != 1+10+4*25 || err != nil {
		t.Fatalf("Verify = %d, %v; want %d", n, err, 1+10+4*25)
	}
	// And this process's Ledger chains onto what the children wrote.
	if e, err := b.l.Append(ledger.KindHeartbeat, dest, nil, t0); err != nil || e.Seq != 112 {
		t.Fatalf("Append after children: seq %d, %v", e.Seq, err)
	}
}

func sampleLedger(t testing.TB) (data, head []byte) {
	b := setup(t)
	b.appendN(t, 3)
	if _, err := b.l.Append(ledger.KindDiagnostics, "POST https://plane.example/v1/diagnostics/d/bundle", []byte("PK\x03\x04zip"), t0); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(b.path)
	head, _ = os.ReadFile(b.path + ".head")
	return data, head
}

// FuzzVerify: Verify and Read never panic on any file, and whatever Verify
// accepts, Read returns entry for entry, each chained to the one before.
func FuzzVerify(f *testing.F) {
	data, head := sampleLedger(f)
	f.Add(data, head)
	f.Add([]byte{}, []byte{})
	f.Add(data[:len(data)-1], head)
	f.Add([]byte("\n\n"), []byte(`{"seq":0,"hash":"0000000000000000000000000000000000000000000000000000000000000000"}`))
	f.Fuzz(func(t *testing.T, data, head []byte) {
		path := filepath.Join(t.TempDir(), "l.jsonl")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path+".head", head, 0o600); err != nil {
			t.Fatal(err)
		}
		n, err := ledgerread.Verify(path)
		if err != nil {
			if !errors.Is(err, ledger.ErrTampered) && !errors.Is(err, ledger.ErrTornTail) {
				t.Fatalf("Verify error matches no sentinel: %v", err)
			}
			return
		}
		entries, err := ledgerread.Read(path, time.Time{})
		if err != nil || len(entries) != n {
			t.Fatalf("Verify accepted %d entries, Read = %d, %v", n, len(entries), err)
		}
		prev := strings.Repeat("0", 64)
		for i, e := range entries {
			if e.Seq != uint64(i+1) || e.Prev != prev {
				t.Fatalf("accepted a broken chain at %d", i+1)
			}
			prev = e.Hash
		}
		// An accepted ledger can be opened and appended to.
		l, err := ledger.Open(path)
		if err != nil {
			t.Fatalf("Open of a verified ledger: %v", err)
		}
		defer l.Close()
		if _, err := l.Append(ledger.KindHeartbeat, dest, nil, t0); err != nil {
			t.Fatalf("Append to a verified ledger: %v", err)
		}
		if m, err := ledgerread.Verify(path); err != nil || m != n+1 {
			t.Fatalf("after append: Verify = %d, %v", m, err)
		}
	})
}

// FuzzRead: Read never panics, and its errors match a sentinel.
func FuzzRead(f *testing.F) {
	data, _ := sampleLedger(f)
	f.Add(data)
	f.Add([]byte(`{"seq":1}` + "\n"))
	f.Add([]byte("not json\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "l.jsonl")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		entries, err := ledgerread.Read(path, time.Time{})
		if err != nil {
			if !errors.Is(err, ledger.ErrTampered) && !errors.Is(err, ledger.ErrTornTail) {
				t.Fatalf("Read error matches no sentinel: %v", err)
			}
			return
		}
		for _, e := range entries {
			p, err := e.Bytes()
			sum := sha256.Sum256(p)
			if err != nil || hex.EncodeToString(sum[:]) != e.PayloadSHA256 {
				t.Fatalf("Read returned an entry whose payload does not match its hash")
			}
		}
	})
}

// BenchmarkAppend measures one durable append (entry fsync, head rewrite and
// directory fsync), the cost the agent pays before each send.
func BenchmarkAppend(b *testing.B) {
	bb := setup(b)
	payload := []byte(`{"channel":"stable","queue":{"depth":3}}`)
	for b.Loop() {
		if _, err := bb.l.Append(ledger.KindHeartbeat, dest, payload, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// Tail hands a mirror complete lines only, in chunks near the limit, and
// the head file once it reaches the end; a torn last line is left out.
func TestTail(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "egress.ledger")
	l, err := ledger.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 4 {
		if _, err := l.Append(ledger.KindHeartbeat, "POST https://plane.example/v1/heartbeat", []byte(fmt.Sprintf(`{"n":%d}`, i)), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	whole, _ := os.ReadFile(path)
	var got []byte
	var off int64
	for rounds := 0; ; rounds++ {
		chunk, head, atEnd, err := ledgerread.Tail(path, off, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(chunk) > 0 && chunk[len(chunk)-1] != '\n' || bytes.Count(chunk, []byte("\n")) > 1 {
			t.Fatalf("chunk at %d is not one whole line: %q", off, chunk)
		}
		got, off = append(got, chunk...), off+int64(len(chunk))
		if atEnd {
			if want, _ := os.ReadFile(path + ".head"); !bytes.Equal(head, want) {
				t.Fatalf("head at the end = %q, want %q", head, want)
			}
			break
		}
		if head != nil || rounds > 10 {
			t.Fatalf("round %d: head %q before the end", rounds, head)
		}
	}
	if !bytes.Equal(got, whole) {
		t.Fatal("the chunks are not the ledger")
	}
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"seq":5,"ti`)
	f.Close()
	if chunk, _, atEnd, err := ledgerread.Tail(path, off, 1<<20); err != nil || len(chunk) != 0 || !atEnd {
		t.Fatalf("Tail over a torn line = %q, %v, %v", chunk, atEnd, err)
	}
	if _, _, _, err := ledgerread.Tail(path, off+1000, 1<<20); err == nil {
		t.Fatal("Tail past the end succeeded")
	}
}

// cutAndReseal truncates the ledger at path to its first keep entries and
// rewrites the head file to match: what Verify alone cannot catch.
func cutAndReseal(t *testing.T, path string, keep int) {
	t.Helper()
	ls := lines(t, path)[:keep]
	writeLines(t, path, ls)
	var e ledger.Entry
	if err := json.Unmarshal(ls[keep-1], &e); err != nil {
		t.Fatal(err)
	}
	head, _ := json.Marshal(map[string]any{"seq": e.Seq, "hash": e.Hash})
	if err := os.WriteFile(path+".head", head, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestHeadAndVerifyHead(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if seq, hash, err := b.l.Head(); err != nil || seq != 0 || hash != ledger.Genesis {
		t.Fatalf("empty ledger Head = %d, %s, %v; want 0 and Genesis", seq, hash, err)
	}
	entries := b.appendN(t, 5)
	seq, hash, err := b.l.Head()
	if err != nil || seq != 5 || hash != entries[4].Hash {
		t.Fatalf("Head = %d, %s, %v; want 5, %s", seq, hash, err, entries[4].Hash)
	}
	// Another process's append is caught up with.
	other, err := ledger.Open(b.path)
	if err != nil {
		t.Fatal(err)
	}
	e6, err := other.Append(ledger.KindTelemetry, "POST https://plane.example/v1/telemetry", []byte(`{}`), t0)
	other.Close()
	if err != nil {
		t.Fatal(err)
	}
	if seq, hash, _ := b.l.Head(); seq != 6 || hash != e6.Hash {
		t.Fatalf("Head after another append = %d, %s; want 6, %s", seq, hash, e6.Hash)
	}
	b.l.Close()

	for _, want := range []ledgerread.Head{{Count: 0, Hash: ledger.Genesis}, {Count: 3, Hash: entries[2].Hash}, {Count: 6, Hash: e6.Hash}} {
		if n, err := ledgerread.VerifyHead(b.path, want); err != nil || n != 6 {
			t.Fatalf("VerifyHead(%+v) = %d, %v; want 6 entries, nil", want, n, err)
		}
	}
	if _, err := ledgerread.VerifyHead(b.path, ledgerread.Head{Count: 3, Hash: entries[3].Hash}); !errors.Is(err, ledger.ErrTampered) ||
		!strings.Contains(err.Error(), "entry 3 has hash "+entries[2].Hash) {
		t.Fatalf("VerifyHead with a wrong hash = %v", err)
	}

	// Cut to 3 entries and reseal the head file: Verify cannot tell.
	cutAndReseal(t, b.path, 3)
	if n, err := ledgerread.Verify(b.path); err != nil || n != 3 {
		t.Fatalf("Verify of a resealed ledger = %d, %v; want 3, nil (the gap VerifyHead closes)", n, err)
	}
	_, err = ledgerread.VerifyHead(b.path, ledgerread.Head{Count: 6, Hash: e6.Hash})
	if !errors.Is(err, ledger.ErrTampered) || !strings.Contains(err.Error(), "has 3 entries but the expected head is entry 6") {
		t.Fatalf("VerifyHead after a cut = %v; want ErrTampered naming 3 and 6", err)
	}
	// Rewritten past the recorded head: the count is reached, the hash differs.
	l, err := ledger.Open(b.path)
	if err != nil {
		t.Fatalf("Open of a resealed ledger: %v", err)
	}
	for i := 0; i < 4; i++ {
		if _, err := l.Append(ledger.KindHeartbeat, dest, []byte(`{"rewritten":true}`), t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	_, err = ledgerread.VerifyHead(b.path, ledgerread.Head{Count: 6, Hash: e6.Hash})
	if !errors.Is(err, ledger.ErrTampered) || !strings.Contains(err.Error(), "rewritten from entry 6 or earlier") {
		t.Fatalf("VerifyHead after a rewrite = %v; want ErrTampered naming entry 6", err)
	}
}

// Package ledgerread is the operator's side of the egress ledger
// (internal/ledger): `tetherctl egress show` reads it with Read, `tetherctl
// egress verify` checks the chain and the head file with Verify, and
// RepairTornTail is the operator's explicit step after ErrTornTail;
// tether-exchange copies it to the exchange bucket with Tail. The agent
// only appends and never runs these, so they live apart and the agent does
// not link them.
//
// The format stays defined once, in internal/ledger: each line is decoded
// and checked there (ledger.DecodeLine, ledger.ReadLine), the head file is
// checked there (ledger.CheckEnd), and the lock is the one Append takes
// (ledger.Flock). This package only walks the file and checks how entries
// follow each other.
package ledgerread

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/tetherhq/tether/internal/ledger"
)

// scan reads the ledger at path under a shared lock (so no append is seen
// half-written), calls fn with each line's number and decoded entry, then
// calls done, still under the lock.
func scan(path string, fn func(n uint64, e ledger.Entry) error, done func() error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := ledger.Flock(f, syscall.LOCK_SH); err != nil {
		return err
	}
	defer ledger.Flock(f, syscall.LOCK_UN)
	r := bufio.NewReaderSize(f, 64<<10)
	for n := uint64(1); ; n++ {
		line, err := ledger.ReadLine(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("entry %d: %w", n, err)
		}
		e, err := ledger.DecodeLine(line)
		if err != nil {
			return fmt.Errorf("%w: entry %d: %v", ledger.ErrTampered, n, err)
		}
		if err := fn(n, e); err != nil {
			return err
		}
	}
	return done()
}

// Read returns the entries at or after since (all of them for a zero since),
// each checked on its own (format and hashes) but not against the chain;
// use Verify for that.
func Read(path string, since time.Time) ([]ledger.Entry, error) {
	var out []ledger.Entry
	err := scan(path, func(_ uint64, e ledger.Entry) error {
		if !e.Time.Before(since) {
			out = append(out, e)
		}
		return nil
	}, func() error { return nil })
	if err != nil {
		return nil, fmt.Errorf("ledger: read: %w", err)
	}
	return out, nil
}

// Verify checks the whole ledger at path: every line, the chain from the
// first entry to the last, and the head file. It returns the number of
// entries. Failures match ledger.ErrTampered (or ledger.ErrTornTail for an incomplete
// final line) and name the first bad entry.
func Verify(path string) (entries int, err error) {
	return verify(path, nil)
}

// Head is a point of a ledger someone else recorded: the plane keeps the
// highest head the agent's heartbeats carried.
type Head struct {
	Count uint64 // entries
	Hash  string // hash of entry Count (ledger.Genesis for 0)
}

// VerifyHead is Verify, and also checks that the ledger reaches want: it has
// at least want.Count entries and entry want.Count has want.Hash. A ledger
// cut short and rewritten with a matching head file passes Verify; it fails
// here against a head recorded elsewhere. Failures match ledger.ErrTampered.
func VerifyHead(path string, want Head) (entries int, err error) {
	return verify(path, &want)
}

func verify(path string, want *Head) (entries int, err error) {
	var last ledger.Entry
	last.Hash = ledger.Genesis
	atWant := ledger.Genesis // hash of entry want.Count, once read
	err = scan(path, func(n uint64, e ledger.Entry) error {
		if e.Seq != n {
			return fmt.Errorf("%w: entry %d: has sequence number %d (entries were removed, added or reordered)", ledger.ErrTampered, n, e.Seq)
		}
		if e.Prev != last.Hash {
			return fmt.Errorf("%w: entry %d: does not chain to entry %d", ledger.ErrTampered, n, n-1)
		}
		last = e
		entries++
		if want != nil && n == want.Count {
			atWant = e.Hash
		}
		return nil
	}, func() error {
		if err := ledger.CheckEnd(path, last.Seq, last.Hash, last.Prev); err != nil {
			return err
		}
		switch {
		case want == nil:
		case last.Seq < want.Count:
			return fmt.Errorf("%w: the ledger has %d entries but the expected head is entry %d: entries were cut off the end (and the head file rewritten to match)",
				ledger.ErrTampered, last.Seq, want.Count)
		case atWant != want.Hash:
			return fmt.Errorf("%w: entry %d has hash %s but the expected head has %s: the ledger was rewritten from entry %d or earlier",
				ledger.ErrTampered, want.Count, atWant, want.Hash, want.Count)
		}
		return nil
	})
	if err != nil {
		return entries, fmt.Errorf("ledger: verify: %w", err)
	}
	return entries, nil
}

// RepairTornTail cuts an incomplete final line off the ledger at path and
// returns how many bytes it removed. This is the operator's explicit step
// after ledger.ErrTornTail: an entry that never finished writing was never sent,
// because the agent sends only after Append returns.
func RepairTornTail(path string) (removed int64, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("ledger: repair: %w", err)
	}
	defer f.Close()
	if err := ledger.Flock(f, syscall.LOCK_EX); err != nil {
		return 0, fmt.Errorf("ledger: repair: %w", err)
	}
	defer ledger.Flock(f, syscall.LOCK_UN)
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("ledger: repair: %w", err)
	}
	keep := fi.Size()
	buf := make([]byte, 64<<10)
	for keep > 0 {
		n := int64(len(buf))
		if keep < n {
			n = keep
		}
		if _, err := f.ReadAt(buf[:n], keep-n); err != nil {
			return 0, fmt.Errorf("ledger: repair: %w", err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			keep = keep - n + int64(i) + 1
			break
		}
		keep -= n
	}
	if keep == fi.Size() {
		return 0, nil
	}
	if err := f.Truncate(keep); err != nil {
		return 0, fmt.Errorf("ledger: repair: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("ledger: repair: %w", err)
	}
	return fi.Size() - keep, nil
}

// Tail is what a mirror of the ledger copies next: the complete entries
// from byte offset off (a line boundary an earlier Tail returned) on, at
// most about limit bytes of them (always at least one whole line), read
// under the shared lock so no append is seen half-written. When the chunk
// reaches the ledger's last complete line, atEnd is true and headFile holds
// the head file's bytes as they were at that moment; the mirror stores both
// so that Verify can check the copy as it checks the original. An
// incomplete final line (a torn tail) is never included.
func Tail(path string, off int64, limit int) (chunk, headFile []byte, atEnd bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, false, fmt.Errorf("ledger: tail: %w", err)
	}
	defer f.Close()
	if err := ledger.Flock(f, syscall.LOCK_SH); err != nil {
		return nil, nil, false, fmt.Errorf("ledger: tail: %w", err)
	}
	defer ledger.Flock(f, syscall.LOCK_UN)
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, false, fmt.Errorf("ledger: tail: %w", err)
	}
	if off < 0 || off > fi.Size() {
		return nil, nil, false, fmt.Errorf("ledger: tail: offset %d is outside the ledger (%d bytes); the copy is not of this ledger", off, fi.Size())
	}
	r := bufio.NewReaderSize(io.NewSectionReader(f, off, fi.Size()-off), 64<<10)
	for !atEnd {
		line, err := ledger.ReadLine(r)
		switch {
		case err == io.EOF || errors.Is(err, ledger.ErrTornTail):
			atEnd = true
		case err != nil:
			return nil, nil, false, fmt.Errorf("ledger: tail: %w", err)
		default:
			chunk = append(chunk, line...)
			if len(chunk) >= limit {
				// Full: at the end only if nothing follows (a torn tail
				// that follows is found by the next call).
				if _, err := r.Peek(1); err != io.EOF {
					return chunk, nil, false, nil
				}
				atEnd = true
			}
		}
	}
	if atEnd {
		headFile, err = os.ReadFile(ledger.HeadPath(path))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, nil, false, fmt.Errorf("ledger: tail: %w", err)
		}
	}
	return chunk, headFile, atEnd, nil
}

// Package ledger is the customer's egress ledger: an append-only file with
// one JSON line per payload the agent sends to the vendor, fsynced before
// the payload leaves, each entry hash-chained to the one before it, and a
// head file (path + ".head") recording the last entry so a ledger cut short
// is caught. docs/protocol.md ("Egress ledger format") describes it. The
// chain is a tamper-evidence aid, not a proof against someone who can
// rewrite both files. The agent only appends; tetherctl reads the ledger
// and tether-exchange copies it with internal/ledger/ledgerread.
package ledger

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/tetherhq/tether/internal/atomicfile"
)

var (
	// ErrTampered is matched by every chain or format failure; the message
	// says which entry ("entry N: ...").
	ErrTampered = errors.New("ledger: tampered")
	// ErrTornTail means the file's final line is incomplete: a write was
	// interrupted (crash, full disk), or the file was cut mid-line. Open
	// refuses to chain over it; see ledgerread.RepairTornTail.
	ErrTornTail = errors.New("ledger: final line is incomplete")
)

// Kinds of payload the agent sends.
const (
	KindHeartbeat    = "heartbeat"
	KindTelemetry    = "telemetry"
	KindActivation   = "activation"
	KindDiagnostics  = "diagnostics"
	KindReleaseCheck = "release-check"
)

var kinds = []string{KindHeartbeat, KindTelemetry, KindActivation, KindDiagnostics, KindReleaseCheck}

const (
	// MaxPayload matches the largest body the plane accepts (reqverify.MaxBody).
	MaxPayload     = 16 << 20
	maxLine        = 32 << 20 // a MaxPayload payload in base64, with room for the rest
	maxDestination = 2048
	hashVersion    = "TETHER-LEDGER-V1"
)

// Genesis is the prev of the first entry: 64 zeros; a constant, so no
// importer can change where a chain starts.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Entry is one line of the ledger.
type Entry struct {
	Seq           uint64          `json:"seq"`
	Time          time.Time       `json:"time"`
	Kind          string          `json:"kind"`
	Destination   string          `json:"destination"`
	PayloadSHA256 string          `json:"payload_sha256"`
	Payload       json.RawMessage `json:"payload,omitempty"`        // the exact bytes sent, when they are compact JSON
	PayloadBase64 string          `json:"payload_base64,omitempty"` // otherwise (a diagnostics zip, say), standard base64
	Prev          string          `json:"prev"`
	Hash          string          `json:"hash"`
}

// Bytes returns the payload exactly as it was sent.
func (e Entry) Bytes() ([]byte, error) {
	if e.PayloadBase64 != "" {
		return base64.StdEncoding.Strict().DecodeString(e.PayloadBase64)
	}
	return []byte(e.Payload), nil
}

// computeHash is the entry's chain hash (docs/protocol.md).
func (e Entry) computeHash() string {
	sum := sha256.Sum256([]byte(strings.Join([]string{
		hashVersion, strconv.FormatUint(e.Seq, 10), e.Time.UTC().Format(time.RFC3339Nano),
		e.Kind, e.Destination, e.PayloadSHA256, e.Prev,
	}, "\n")))
	return hex.EncodeToString(sum[:])
}

// encode is the canonical line for e, newline included. HTML escaping is off
// so a JSON payload is stored byte for byte as it was sent.
func encode(e Entry) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecodeLine parses one line strictly and checks everything that does not
// depend on its neighbours: canonical form, kind, destination, payload hash
// and the entry's own hash.
func DecodeLine(line []byte) (Entry, error) {
	var e Entry
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Entry{}, errors.New("not a ledger entry")
	}
	canon, err := encode(e)
	if err != nil || !bytes.Equal(canon, line) {
		return Entry{}, errors.New("line is not in canonical form (edited)")
	}
	if err := checkFields(e.Kind, e.Destination); err != nil {
		return Entry{}, err
	}
	if e.Payload != nil && e.PayloadBase64 != "" {
		return Entry{}, errors.New("both payload and payload_base64 are set")
	}
	payload, err := e.Bytes()
	if err != nil {
		return Entry{}, errors.New("payload_base64 is not valid base64")
	}
	if sum := sha256.Sum256(payload); hex.EncodeToString(sum[:]) != e.PayloadSHA256 {
		return Entry{}, errors.New("payload does not match payload_sha256")
	}
	if e.computeHash() != e.Hash {
		return Entry{}, errors.New("hash does not match the entry")
	}
	return e, nil
}

func checkFields(kind, destination string) error {
	if !slices.Contains(kinds, kind) {
		return fmt.Errorf("kind must be one of %s", strings.Join(kinds, ", "))
	}
	if destination == "" || len(destination) > maxDestination {
		return fmt.Errorf("destination must be 1-%d bytes", maxDestination)
	}
	for i := 0; i < len(destination); i++ {
		if c := destination[i]; c < ' ' || c > '~' {
			return errors.New("destination must be printable ASCII")
		}
	}
	return nil
}

// Ledger appends to one ledger file. It is safe for concurrent use, and
// several processes may append to the same file: every Append holds an
// exclusive flock and first catches up with entries others wrote.
type Ledger struct {
	mu   sync.Mutex
	f    *os.File
	path string
	size int64 // bytes of the file this Ledger has checked
	last head  // the entry at size
}

// head is the last entry's sequence number and hash; also the head file.
type head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// Open opens (creating, mode 0600) the ledger at path. It checks the last
// entry and the head file so appends continue the chain; a torn final line
// is reported (ErrTornTail), never chained over.
func Open(path string) (*Ledger, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s: %w", path, err)
	}
	l := &Ledger{f: f, path: path}
	if err := l.withLock(syscall.LOCK_EX, l.openTail); err != nil {
		f.Close()
		return nil, fmt.Errorf("ledger: open %s: %w", path, err)
	}
	return l, nil
}

func (l *Ledger) openTail() error {
	fi, err := l.f.Stat()
	if err != nil {
		return err
	}
	last, prev := head{Hash: Genesis}, ""
	if fi.Size() > 0 {
		line, err := lastLine(l.f, fi.Size())
		if err != nil {
			return err
		}
		e, err := DecodeLine(line)
		if err != nil {
			return fmt.Errorf("%w: last entry: %v", ErrTampered, err)
		}
		last, prev = head{Seq: e.Seq, Hash: e.Hash}, e.Prev
	}
	if err := CheckEnd(l.path, last.Seq, last.Hash, prev); err != nil {
		return err
	}
	if last.Seq == 0 {
		if err := writeHead(l.path, last); err != nil {
			return err
		}
	}
	l.size, l.last = fi.Size(), last
	return nil
}

// lastLine returns the final line of f (size bytes), reading backwards so a
// large ledger is not read whole.
func lastLine(f *os.File, size int64) ([]byte, error) {
	end := make([]byte, 1)
	if _, err := f.ReadAt(end, size-1); err != nil {
		return nil, err
	}
	if end[0] != '\n' {
		return nil, ErrTornTail
	}
	const chunk = 64 << 10
	start := size - 1 // position of the final newline; search before it
	for start > 0 {
		n := min(start, chunk)
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, start-n); err != nil {
			return nil, err
		}
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			start = start - n + int64(i) + 1
			break
		}
		start -= n
		if size-start > maxLine {
			return nil, fmt.Errorf("%w: last line is over %d bytes", ErrTampered, maxLine)
		}
	}
	line := make([]byte, size-start)
	if _, err := f.ReadAt(line, start); err != nil {
		return nil, err
	}
	return line, nil
}

// CheckEnd checks the head file against the ledger's last entry (its
// sequence number, hash and prev) or, for an empty ledger (seq 0), that the
// head, if there is one, records no entry: a new ledger and an emptied one
// differ only there. The head is written after the entry, so a crash
// between the two leaves it exactly one entry behind, which is accepted.
// Failures match ErrTampered.
func CheckEnd(path string, seq uint64, hash, prev string) error {
	h, err := readHead(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && seq == 0:
		return nil
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: head file %s is missing", ErrTampered, filepath.Base(HeadPath(path)))
	case err != nil:
		return err
	case seq == 0 && h.Seq != 0:
		return fmt.Errorf("%w: ledger is empty but its head records entry %d", ErrTampered, h.Seq)
	case h.Seq > seq:
		return fmt.Errorf("%w: entry %d: ledger ends here but its head records entry %d (entries were removed from the end)", ErrTampered, seq, h.Seq)
	case h.Seq == seq && h.Hash != hash:
		return fmt.Errorf("%w: entry %d: hash differs from the one recorded in the head file", ErrTampered, seq)
	case h.Seq+1 == seq && h.Hash != prev:
		return fmt.Errorf("%w: entry %d: prev differs from the hash recorded in the head file", ErrTampered, seq)
	case h.Seq+1 < seq:
		return fmt.Errorf("%w: entry %d: head file records only entry %d", ErrTampered, seq, h.Seq)
	}
	return nil
}

// HeadPath is the head file of the ledger at path.
func HeadPath(path string) string { return path + ".head" }

func readHead(path string) (head, error) {
	data, err := os.ReadFile(HeadPath(path))
	if err != nil {
		return head{}, err
	}
	var h head
	if err := jsonv2.Unmarshal(data, &h, jsonv2.RejectUnknownMembers(true)); err != nil || len(h.Hash) != 64 {
		return head{}, fmt.Errorf("%w: head file is not a ledger head", ErrTampered)
	}
	return h, nil
}

// writeHead replaces the head file atomically, so a crash leaves the old
// head or the new one.
func writeHead(path string, h head) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(HeadPath(path), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write head: %w", err)
	}
	return nil
}

// withLock runs fn holding Flock(how) on the ledger file; the mutex covers
// goroutines sharing this Ledger, which flock alone would not.
func (l *Ledger) withLock(how int, fn func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("ledger is closed")
	}
	if err := Flock(l.f, how); err != nil {
		return err
	}
	defer Flock(l.f, syscall.LOCK_UN)
	return fn()
}

// Flock takes (or, with LOCK_UN, releases) flock(how) on f, retrying on
// EINTR: every reader and writer of a ledger locks it this way.
func Flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			if err != nil {
				return fmt.Errorf("lock: %w", err)
			}
			return nil
		}
	}
}

// Append records one payload about to be sent to destination ("POST
// https://plane.example/v1/heartbeat"), on disk when it returns: send the
// payload only after it succeeds.
func (l *Ledger) Append(kind, destination string, payload []byte, now time.Time) (Entry, error) {
	if err := checkFields(kind, destination); err != nil {
		return Entry{}, fmt.Errorf("ledger: append: %w", err)
	}
	if len(payload) > MaxPayload {
		return Entry{}, fmt.Errorf("ledger: append: payload of %d bytes is over %d", len(payload), MaxPayload)
	}
	var e Entry
	err := l.withLock(syscall.LOCK_EX, func() error {
		if err := l.catchUp(); err != nil {
			return err
		}
		sum := sha256.Sum256(payload)
		e = Entry{
			Seq: l.last.Seq + 1, Time: now.UTC(), Kind: kind, Destination: destination,
			PayloadSHA256: hex.EncodeToString(sum[:]), Prev: l.last.Hash,
		}
		if len(payload) > 0 {
			e.Payload = json.RawMessage(payload)
		}
		e.Hash = e.computeHash()
		// Store JSON verbatim only if the line reads back with exactly these
		// bytes (valid, compact JSON); anything else is kept as base64.
		line, err := encode(e)
		if err == nil {
			var back Entry
			back, err = DecodeLine(line)
			if err == nil && !bytes.Equal(back.Payload, payload) {
				err = errors.New("payload changes in JSON")
			}
		}
		if err != nil {
			e.Payload = nil
			e.PayloadBase64 = base64.StdEncoding.EncodeToString(payload)
			if line, err = encode(e); err != nil {
				return fmt.Errorf("encode entry %d: %w", e.Seq, err)
			}
		}
		if _, err := l.f.Write(line); err != nil {
			return fmt.Errorf("write entry %d: %w", e.Seq, err)
		}
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("sync entry %d: %w", e.Seq, err)
		}
		l.size += int64(len(line))
		l.last = head{Seq: e.Seq, Hash: e.Hash}
		return writeHead(l.path, l.last)
	})
	if err != nil {
		return Entry{}, fmt.Errorf("ledger: append %s: %w", kind, err)
	}
	return e, nil
}

// Head returns the last entry's sequence number and hash (0 and Genesis when
// empty), caught up with other processes' appends: the heartbeat carries it.
func (l *Ledger) Head() (seq uint64, hash string, err error) {
	err = l.withLock(syscall.LOCK_SH, func() error {
		err := l.catchUp()
		seq, hash = l.last.Seq, l.last.Hash
		return err
	})
	return seq, hash, err
}

// catchUp checks and adopts entries other processes appended since this
// Ledger last looked, so the next entry chains onto the true last one.
func (l *Ledger) catchUp() error {
	fi, err := l.f.Stat()
	if err != nil {
		return err
	}
	switch {
	case fi.Size() == l.size:
		return nil
	case fi.Size() < l.size:
		return fmt.Errorf("%w: ledger shrank from %d to %d bytes while open", ErrTampered, l.size, fi.Size())
	}
	r := bufio.NewReaderSize(io.NewSectionReader(l.f, l.size, fi.Size()-l.size), 64<<10)
	for {
		line, err := ReadLine(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		e, err := DecodeLine(line)
		if err != nil {
			return fmt.Errorf("%w: entry %d: %v", ErrTampered, l.last.Seq+1, err)
		}
		if e.Seq != l.last.Seq+1 || e.Prev != l.last.Hash {
			return fmt.Errorf("%w: entry %d: does not follow entry %d", ErrTampered, l.last.Seq+1, l.last.Seq)
		}
		l.size += int64(len(line))
		l.last = head{Seq: e.Seq, Hash: e.Hash}
	}
	return nil
}

// ReadLine returns the next line with its newline, io.EOF at a clean end, or
// ErrTornTail when the data ends without one.
func ReadLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		part, err := r.ReadSlice('\n')
		line = append(line, part...)
		if len(line) > maxLine {
			return nil, fmt.Errorf("%w: line over %d bytes", ErrTampered, maxLine)
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(line) == 0:
			return nil, io.EOF
		case err == io.EOF:
			return nil, ErrTornTail
		default:
			return nil, err
		}
	}
}

// Close releases the file. Appends after Close fail.
func (l *Ledger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

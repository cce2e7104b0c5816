package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/tetherhq/tether/internal/atomicfile"
	"github.com/tetherhq/tether/internal/diagspool"
	"github.com/tetherhq/tether/internal/ledger/ledgerread"
)

// segmentBytes is about how much of the ledger one segment carries.
const segmentBytes = 8 << 20

// Mirror is tether-exchange's side: it copies the agent data dir's
// diagnostics records and ledger to the bucket and applies the operator's
// decisions. What it has copied is remembered in D/exchange.json, so each
// round copies only what is new.
type Mirror struct {
	c       *Client
	dataDir string
	now     func() time.Time
}

// NewMirror mirrors the agent data dir dataDir to c's bucket.
func NewMirror(c *Client, dataDir string, now func() time.Time) *Mirror {
	return &Mirror{c: c, dataDir: dataDir, now: now}
}

// mirrorState is D/exchange.json.
type mirrorState struct {
	// LedgerOffset is how many bytes of egress.ledger are in the bucket.
	LedgerOffset int64 `json:"ledger_offset"`
	// LedgerHead is the SHA-256 of the head file last copied.
	LedgerHead string `json:"ledger_head,omitempty"`
	// Records maps each request copied to the state last copied.
	Records map[string]string `json:"records"`
	// Refused maps a request to the SHA-256 of a decision.json refused, so
	// that one is reported once, not every round.
	Refused map[string]string `json:"refused,omitempty"`
}

func (m *Mirror) statePath() string { return filepath.Join(m.dataDir, "exchange.json") }

func (m *Mirror) load() (mirrorState, error) {
	var st mirrorState
	err := atomicfile.ReadJSON(m.statePath(), &st)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return st, fmt.Errorf("exchange: %s: %w (delete it to copy everything again)", m.statePath(), err)
	}
	if st.Records == nil {
		st.Records = map[string]string{}
	}
	if st.Refused == nil {
		st.Refused = map[string]string{}
	}
	return st, nil
}

func (m *Mirror) save(st mirrorState) error { return atomicfile.WriteJSON(m.statePath(), st, 0o600) }

// Outcome is what the mirror did with one decision.json.
type Outcome struct {
	ID       string
	Decision string // approve or decline
	Applied  bool
	// Why says why a decision was not applied (a refusal, or the request
	// was decided locally first). It never holds the decider's identity.
	Why string
}

// Decide reads the decision of every pending request it has copied and
// applies it as a local approval or decline would. An approval is applied
// only when it names the manifest the agent built and the bundle still
// matches that manifest; otherwise the request stays pending, and the
// bundle, which is only ever read from the data dir, is not sent.
func (m *Mirror) Decide(ctx context.Context) ([]Outcome, error) {
	st, err := m.load()
	if err != nil {
		return nil, err
	}
	ds, err := diagspool.List(m.dataDir)
	if err != nil {
		return nil, err
	}
	var out []Outcome
	var errs []error
	for _, d := range ds {
		if d.State != diagspool.StatePending || st.Records[d.ID] == "" {
			continue // decided already, or not yet shown in the bucket
		}
		raw, err := m.c.Get(ctx, RecordKey(d.ID, DecisionFile))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sum := sha256Hex(raw)
		if st.Refused[d.ID] == sum {
			continue // reported already
		}
		o := m.apply(d.ID, raw)
		if !o.Applied && o.Why != "" {
			st.Refused[d.ID] = sum
		}
		out = append(out, o)
	}
	if len(out) > 0 {
		errs = append(errs, m.save(st))
	}
	return out, errors.Join(errs...)
}

func (m *Mirror) apply(id string, raw []byte) Outcome {
	o := Outcome{ID: id}
	dec, err := ParseDecision(raw)
	if err != nil {
		// Not the parse error itself, which quotes the file: the agent logs
		// Why, and its logs carry no one's identity. tetherctl diag list
		// shows the operator the whole error.
		o.Why = "decision.json is not a decision tetherctl wrote; nothing was done (tetherctl diag list shows why)"
		return o
	}
	o.Decision = dec.Decision
	to := diagspool.StateDeclined
	if dec.Decision == Approve {
		got, err := ManifestSHA256(m.dataDir, id)
		if err != nil {
			o.Why = fmt.Sprintf("cannot read the bundle's manifest: %v", err)
			return o
		}
		if got != dec.ManifestSHA256 {
			o.Why = "the approval names another manifest than the one the agent built (the bucket's copy was changed, or the approval is for an older bundle); nothing was sent: preview it again, or decline it"
			return o
		}
		if _, err := diagspool.ReadBundle(m.dataDir, id); err != nil {
			o.Why = fmt.Sprintf("the bundle no longer matches its manifest (%v); nothing was sent", err)
			return o
		}
		to = diagspool.StateApproved
	}
	switch err := diagspool.Transition(m.dataDir, id, diagspool.StatePending, to, m.now()); {
	case errors.Is(err, diagspool.ErrNotPending):
		o.Why = "decided on the agent's own data dir first"
	case err != nil:
		o.Why = err.Error()
	default:
		o.Applied = true
	}
	return o
}

// ManifestSHA256 is the hex SHA-256 of a request's manifest.json in the
// data dir dataDir, which an approval names.
func ManifestSHA256(dataDir, id string) (string, error) {
	d, err := diagspool.Dir(dataDir, id)
	if err != nil {
		return "", err
	}
	raw, err := os.ReadFile(filepath.Join(d, diagspool.ManifestFile))
	if err != nil {
		return "", err
	}
	return sha256Hex(raw), nil
}

// Copied is what one Copy put in the bucket.
type Copied struct {
	Requests    map[string]string // request ID to the state copied
	LedgerBytes int64             // the ledger's bytes newly copied
}

// Copy copies what is new since the last round: each request not yet in
// the bucket (request.json, manifest.json, each file the manifest lists,
// checked against it, then state.json), each state change, and the
// ledger's new entries with its head. A request whose bundle no longer
// matches its manifest is not copied (its error is returned) and is not
// in the bucket for the operator to approve.
func (m *Mirror) Copy(ctx context.Context) (Copied, error) {
	done := Copied{Requests: map[string]string{}}
	st, err := m.load()
	if err != nil {
		return done, err
	}
	ds, err := diagspool.List(m.dataDir)
	if err != nil {
		return done, err
	}
	var errs []error
	for _, d := range ds {
		state, err := m.copyRecord(ctx, d.ID, st.Records[d.ID])
		if errors.Is(err, errNoManifest) {
			continue // stays on the data dir: --data-dir reviews it
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("exchange: copy request %s: %w", d.ID, err))
			continue
		}
		if state != st.Records[d.ID] {
			st.Records[d.ID] = state
			done.Requests[d.ID] = state
			if err := m.save(st); err != nil {
				return done, errors.Join(append(errs, err)...)
			}
		}
	}
	before := st.LedgerOffset
	if err := m.copyLedger(ctx, &st); err != nil {
		errs = append(errs, err)
	}
	done.LedgerBytes = st.LedgerOffset - before
	return done, errors.Join(errs...)
}

// copyRecord copies one request, or only its state when the rest is there
// already (copied is the state last copied, "" for none), and returns the
// state now in the bucket.
func (m *Mirror) copyRecord(ctx context.Context, id, copied string) (string, error) {
	dir, err := diagspool.Dir(m.dataDir, id)
	if err != nil {
		return "", err
	}
	stateRaw, err := os.ReadFile(filepath.Join(dir, diagspool.StateFile))
	if err != nil {
		return "", err
	}
	var s struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal(stateRaw, &s); err != nil || s.State == "" {
		return "", fmt.Errorf("%s is not a request state", diagspool.StateFile)
	}
	if s.State == copied {
		return copied, nil
	}
	if copied == "" {
		if _, err := os.Stat(filepath.Join(dir, diagspool.ManifestFile)); errors.Is(err, fs.ErrNotExist) {
			return "", errNoManifest
		}
		files, err := diagspool.ReadBundle(m.dataDir, id)
		if err != nil {
			return "", err
		}
		for _, name := range []string{diagspool.RequestFile, diagspool.ManifestFile} {
			raw, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				return "", err
			}
			if err := m.c.Put(ctx, RecordKey(id, name), raw, false); err != nil {
				return "", err
			}
		}
		for _, f := range files {
			if err := m.c.Put(ctx, RecordKey(id, diagspool.BundleDir+"/"+f.Name), f.Content, false); err != nil {
				return "", err
			}
		}
	}
	if err := m.c.Put(ctx, RecordKey(id, diagspool.StateFile), stateRaw, false); err != nil {
		return "", err
	}
	return s.State, nil
}

// copyLedger appends the ledger's new complete entries as segments, then
// its head.
func (m *Mirror) copyLedger(ctx context.Context, st *mirrorState) error {
	path := filepath.Join(m.dataDir, "egress.ledger")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	copied := false
	for {
		chunk, head, atEnd, err := ledgerread.Tail(path, st.LedgerOffset, segmentBytes)
		if err != nil {
			return fmt.Errorf("exchange: copy the ledger: %w", err)
		}
		if len(chunk) > 0 {
			if err := m.c.Put(ctx, SegmentKey(st.LedgerOffset), chunk, false); err != nil {
				return fmt.Errorf("exchange: copy the ledger: %w", err)
			}
			st.LedgerOffset += int64(len(chunk))
			copied = true
			if err := m.save(*st); err != nil {
				return err
			}
		}
		if !atEnd {
			continue
		}
		// After the segments it goes with, and saying how many bytes
		// those are: a reader takes the head first and the ledger up to
		// there, so a copy under way never looks cut short.
		if head != nil && (copied || sha256Hex(head) != st.LedgerHead) {
			meta := map[string]string{LedgerBytesMeta: strconv.FormatInt(st.LedgerOffset, 10)}
			if err := m.c.putMeta(ctx, HeadKey, head, false, meta); err != nil {
				return fmt.Errorf("exchange: copy the ledger head: %w", err)
			}
			st.LedgerHead = sha256Hex(head)
			return m.save(*st)
		}
		return nil
	}
}

// errNoManifest marks a request whose bundle was built before manifests
// were written: an approval could not name what it approves, so it is not
// copied.
var errNoManifest = errors.New("exchange: bundle has no manifest")

// SegmentKey is the key of the ledger segment that starts at byte offset.
func SegmentKey(offset int64) string { return fmt.Sprintf("%s%020d", SegmentPrefix, offset) }

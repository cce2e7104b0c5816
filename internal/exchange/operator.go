package exchange

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tetherhq/tether/internal/diagspool"
	"github.com/tetherhq/tether/internal/wire"
)

// Fetch copies requests from the bucket into dataDir laid out as an
// agent's data dir, so internal/diagspool lists and previews them (and
// refuses a bundle file that no longer matches its manifest) exactly as it
// does the agent's own. With id set only that request is copied
// (ErrNotFound if the bucket has none); withBundle adds manifest.json and
// the bundle's files. Keys that are not part of a request are ignored.
func (c *Client) Fetch(ctx context.Context, dataDir, id string, withBundle bool) error {
	prefix := DiagnosticsPrefix
	if id != "" {
		if !wire.ValidID(id) {
			return fmt.Errorf("%w: %q is not a request ID", ErrNotFound, id)
		}
		prefix += id + "/"
	}
	objs, err := c.list(ctx, prefix)
	if err != nil {
		return err
	}
	found := false
	for _, o := range objs {
		rid, name, ok := strings.Cut(strings.TrimPrefix(o.key, DiagnosticsPrefix), "/")
		if !ok || !wire.ValidID(rid) || !recordName(name, withBundle) {
			continue
		}
		found = true
		data, err := c.get(ctx, o.key)
		if errors.Is(err, ErrNotFound) {
			continue // gone since the listing
		}
		if err != nil {
			return err
		}
		dir, err := diagspool.Dir(dataDir, rid)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, 0o600); err != nil {
			return err
		}
	}
	if id != "" && !found {
		return fmt.Errorf("%w: no request %s in s3://%s/%s", ErrNotFound, id, c.bucket, prefix)
	}
	return nil
}

// recordName reports whether name (a key below diagnostics/<id>/) is a
// file of a request to fetch.
func recordName(name string, withBundle bool) bool {
	switch name {
	case diagspool.RequestFile, diagspool.StateFile, DecisionFile:
		return true
	case diagspool.ManifestFile:
		return withBundle
	}
	file, ok := strings.CutPrefix(name, diagspool.BundleDir+"/")
	return ok && withBundle && file != "" && file == path.Base(file) && file != "." && file != ".."
}

// LocalDecision reads the decision.json Fetch copied into dataDir for id;
// ok is false when there is none.
func LocalDecision(dataDir, id string) (d Decision, ok bool, err error) {
	dir, err := diagspool.Dir(dataDir, id)
	if err != nil {
		return d, false, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, DecisionFile))
	if errors.Is(err, fs.ErrNotExist) {
		return d, false, nil
	}
	if err != nil {
		return d, false, err
	}
	d, err = ParseDecision(raw)
	return d, err == nil, err
}

// PutDecision writes diagnostics/<id>/decision.json, once: a request that
// already has one is ErrDecided, and its decision stays. With replace it
// overwrites the one there (the bucket keeps every version): tetherctl
// does so only to decline a request whose approval the agent has not
// applied, such as one it refused.
func (c *Client) PutDecision(ctx context.Context, id string, d Decision, replace bool) error {
	raw, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if _, err := ParseDecision(raw); err != nil {
		return err
	}
	return c.put(ctx, recordKey(id, DecisionFile), raw, !replace)
}

// FetchLedger assembles the ledger's segments into dir/egress.ledger, with
// the head file beside it, for internal/ledger to read and verify. The head
// is read first and the ledger taken up to the length it goes with, so a
// copy the agent makes meanwhile does not count as entries removed. The
// segments must follow each other without a gap; where two overlap (the
// agent's record of what it copied was lost and it copied again) the
// overlapping bytes must agree. It returns the ledger's path.
func (c *Client) FetchLedger(ctx context.Context, dir string) (string, error) {
	head, meta, err := c.getMeta(ctx, headKey)
	end := int64(-1) // no head: every segment, and ledger.Verify reports the missing head
	switch {
	case errors.Is(err, ErrNotFound):
		head = nil
	case err != nil:
		return "", err
	default:
		if end, err = strconv.ParseInt(meta[ledgerBytesMeta], 10, 64); err != nil || end < 0 {
			return "", fmt.Errorf("exchange: s3://%s/%s has no valid %s metadata (%q): it is not the agent's copy of the head", c.bucket, headKey, ledgerBytesMeta, meta[ledgerBytesMeta])
		}
	}
	objs, err := c.list(ctx, segmentPrefix)
	if err != nil {
		return "", err
	}
	if len(objs) == 0 {
		return "", fmt.Errorf("%w: no ledger segments under s3://%s/%s (the agent copies its ledger after each heartbeat)", ErrNotFound, c.bucket, segmentPrefix)
	}
	var buf bytes.Buffer
	for _, o := range objs { // listed in key order, which is offset order
		off, err := strconv.ParseInt(strings.TrimPrefix(o.key, segmentPrefix), 10, 64)
		if err != nil || o.key != SegmentKey(off) {
			return "", fmt.Errorf("exchange: s3://%s/%s is not a ledger segment (the agent writes %s<20-digit offset>)", c.bucket, o.key, segmentPrefix)
		}
		if end >= 0 && off >= end {
			break // copied after the head was read
		}
		have := int64(buf.Len())
		if off > have {
			return "", fmt.Errorf("exchange: the ledger in s3://%s is missing bytes %d to %d (segment %s follows a gap): it was cut", c.bucket, have, off, o.key)
		}
		data, err := c.get(ctx, o.key)
		if err != nil {
			return "", err
		}
		overlap := min(have-off, int64(len(data)))
		if !bytes.Equal(buf.Bytes()[off:off+overlap], data[:overlap]) {
			return "", fmt.Errorf("exchange: ledger segment %s disagrees with the segments before it: the ledger in the bucket was changed", o.key)
		}
		buf.Write(data[overlap:])
	}
	if end >= 0 {
		if int64(buf.Len()) < end {
			return "", fmt.Errorf("exchange: the ledger in s3://%s is missing bytes %d to %d, which its head goes with: it was cut", c.bucket, buf.Len(), end)
		}
		buf.Truncate(int(end))
	}
	path := filepath.Join(dir, "egress.ledger")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		return "", err
	}
	if head == nil {
		return path, nil
	}
	return path, os.WriteFile(path+".head", head, 0o600)
}

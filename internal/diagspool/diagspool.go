// Package diagspool is the on-disk format of the agent's diagnostics
// requests (D/diagnostics/<id>/, described in docs/agent.md), shared by the
// agent, which records each request with the bundle it built, and tetherctl
// (internal/diagspool/diagreview), which reviews them.
//
// This package must not import internal/agent or anything that reads
// documents, their storage or their queue: tetherctl links it.
package diagspool

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/tetherhq/tether/internal/atomicfile"
	"github.com/tetherhq/tether/internal/wire"
)

// Diagnostic request states, as stored in D/diagnostics/<id>/state.json.
// pending → approved → uploaded, or pending → declined.
const (
	StatePending  = "pending"
	StateApproved = "approved"
	StateUploaded = "uploaded"
	StateDeclined = "declined"
)

// Diagnostics errors, for tetherctl to match.
var (
	ErrUnknownDiagnostic = errors.New("diagspool: no such diagnostic request")
	ErrNotPending        = errors.New("diagspool: diagnostic request is not pending")
	// ErrBundleChanged means a collected file in bundle/ no longer matches
	// what the agent built, so it is neither shown nor sent.
	ErrBundleChanged = errors.New("diagspool: a bundle file changed after the agent built it")
)

// Diagnostic is one request from the vendor as the customer sees it.
type Diagnostic struct {
	ID              string    `json:"id"`
	Reason          string    `json:"reason"` // the vendor's words
	RequestedAt     time.Time `json:"requested_at"`
	RequestedBy     string    `json:"requested_by"` // who asked; empty in a record of an older agent
	RequestedByKind string    `json:"requested_by_kind"`
	State           string    `json:"state"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// PreviewFile is one file of a bundle exactly as it would be uploaded.
type PreviewFile struct {
	Name    string `json:"name"`
	Size    int64  `json:"size"`
	Content []byte `json:"content"`
}

type diagState struct {
	State     string    `json:"state"`
	UpdatedAt time.Time `json:"updated_at"`
}

// The files of one record, in D/diagnostics/<id>/.
const (
	RequestFile  = "request.json"
	ManifestFile = "manifest.json"
	StateFile    = "state.json"
	BundleDir    = "bundle"
)

// Dir is D/diagnostics/<id>; ErrUnknownDiagnostic for an ID that may not
// name a directory.
func Dir(dataDir, id string) (string, error) {
	// The ID names a directory; only wire's ID alphabet may do that.
	if !wire.ValidID(id) {
		return "", ErrUnknownDiagnostic
	}
	return filepath.Join(dataDir, "diagnostics", id), nil
}

// List returns every diagnostic request the agent has recorded, oldest
// first. A request still being written is left out.
func List(dataDir string) ([]Diagnostic, error) {
	entries, err := os.ReadDir(filepath.Join(dataDir, "diagnostics"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("diagspool: list diagnostics: %w", err)
	}
	var out []Diagnostic
	for _, e := range entries {
		if !e.IsDir() || !wire.ValidID(e.Name()) {
			continue
		}
		d, err := Read(dataDir, e.Name())
		if errors.Is(err, ErrUnknownDiagnostic) {
			continue // still being written by the agent
		}
		if err != nil {
			return nil, fmt.Errorf("diagspool: list diagnostics: %w", err)
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RequestedAt.Before(out[j].RequestedAt) })
	return out, nil
}

// Read returns one complete request; ErrUnknownDiagnostic if there is none
// (or it is still being written).
func Read(dataDir, id string) (Diagnostic, error) {
	d, err := Dir(dataDir, id)
	if err != nil {
		return Diagnostic{}, err
	}
	var st diagState
	if err := atomicfile.ReadJSON(filepath.Join(d, StateFile), &st); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Diagnostic{}, ErrUnknownDiagnostic
		}
		return Diagnostic{}, err
	}
	var req wire.DiagnosticRequest
	if err := atomicfile.ReadJSON(filepath.Join(d, RequestFile), &req); err != nil {
		return Diagnostic{}, err
	}
	return Diagnostic{ID: id, Reason: req.Reason, RequestedAt: req.RequestedAt, RequestedBy: req.RequestedBy, RequestedByKind: req.RequestedByKind, State: st.State, UpdatedAt: st.UpdatedAt}, nil
}

// Recorded reports whether the request's record is complete (whatever its
// state), so the agent does not record it again.
func Recorded(dataDir, id string) bool {
	d, err := Dir(dataDir, id)
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(d, StateFile))
	return err == nil
}

// writeJSON writes a spool file, readable by its owner only.
func writeJSON(path string, v any) error { return atomicfile.WriteJSON(path, v, 0o600) }

// bundleManifest is manifest.json: the collected files with their sizes and
// SHA-256. The preview and the upload read exactly these, so what is sent is
// what the preview showed, and a file that turns up in bundle/ later is not.
type bundleManifest struct {
	Files []manifestFile `json:"files"`
}

type manifestFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

func newManifest(files []PreviewFile) bundleManifest {
	var m bundleManifest
	for _, f := range files {
		sum := sha256.Sum256(f.Content)
		m.Files = append(m.Files, manifestFile{Name: f.Name, Size: int64(len(f.Content)), SHA256: hex.EncodeToString(sum[:])})
	}
	return m
}

// ReadBundle reads a request's collected files, each checked against the
// manifest, sorted by name; a missing bundle is fs.ErrNotExist.
func ReadBundle(dataDir, id string) ([]PreviewFile, error) {
	d, err := Dir(dataDir, id)
	if err != nil {
		return nil, err
	}
	return readBundle(d)
}

func readBundle(dir string) ([]PreviewFile, error) {
	if _, err := os.Stat(filepath.Join(dir, BundleDir)); err != nil {
		return nil, err
	}
	// Without the manifest nothing shows the files are what the agent
	// built, so they are neither previewed nor sent.
	var m bundleManifest
	if err := atomicfile.ReadJSON(filepath.Join(dir, ManifestFile), &m); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s is missing (decline the request and ask the vendor to request again)", ErrBundleChanged, ManifestFile)
	} else if err != nil {
		return nil, err
	}
	out := make([]PreviewFile, 0, len(m.Files))
	for _, f := range m.Files {
		if f.Name != filepath.Base(f.Name) || f.Name == "." || f.Name == ".." {
			return nil, fmt.Errorf("manifest.json names %q, which is not a file in bundle/", f.Name)
		}
		data, err := os.ReadFile(filepath.Join(dir, BundleDir, f.Name))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		if int64(len(data)) != f.Size || hex.EncodeToString(sum[:]) != f.SHA256 {
			return nil, fmt.Errorf("%w: %s (decline the request and ask the vendor to request again)", ErrBundleChanged, f.Name)
		}
		out = append(out, PreviewFile{Name: f.Name, Size: int64(len(data)), Content: data})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Record writes a new request with its bundle in state (StatePending, or
// StateApproved when the agent auto-approves): request.json, the bundle's
// files, manifest.json, and state.json last, whose presence marks the
// record complete. A record left incomplete by a crash is written again.
func Record(dataDir string, r wire.DiagnosticRequest, files []PreviewFile, state string, now time.Time) error {
	d, err := Dir(dataDir, r.ID)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d, 0o700); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(d, RequestFile), r); err != nil {
		return err
	}
	tmp := filepath.Join(d, BundleDir+".tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(tmp, f.Name), f.Content, 0o600); err != nil {
			return err
		}
	}
	final := filepath.Join(d, BundleDir)
	if err := os.RemoveAll(final); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	// Before state.json, which marks the record complete.
	if err := writeJSON(filepath.Join(d, ManifestFile), newManifest(files)); err != nil {
		return err
	}
	return withLock(dataDir, func() error {
		return writeJSON(filepath.Join(d, StateFile), diagState{State: state, UpdatedAt: now.UTC()})
	})
}

// Transition moves a request from one state to another under an exclusive
// lock shared by the agent and tetherctl, so an approval and an upload (or
// two operators) cannot interleave. A request in another state than from
// is ErrNotPending.
func Transition(dataDir, id, from, to string, now time.Time) error {
	d, err := Dir(dataDir, id)
	if err != nil {
		return fmt.Errorf("diagspool: set %s to %s: %w", id, to, err)
	}
	return withLock(dataDir, func() error {
		var st diagState
		if err := atomicfile.ReadJSON(filepath.Join(d, StateFile), &st); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("diagspool: set %s to %s: %w", id, to, ErrUnknownDiagnostic)
			}
			return fmt.Errorf("diagspool: set %s to %s: %w", id, to, err)
		}
		if st.State != from {
			return fmt.Errorf("diagspool: set %s to %s: %w (it is %s)", id, to, ErrNotPending, st.State)
		}
		if err := writeJSON(filepath.Join(d, StateFile), diagState{State: to, UpdatedAt: now.UTC()}); err != nil {
			return fmt.Errorf("diagspool: set %s to %s: %w", id, to, err)
		}
		return nil
	})
}

func withLock(dataDir string, fn func() error) error {
	if err := os.MkdirAll(filepath.Join(dataDir, "diagnostics"), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dataDir, "diagnostics", ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock diagnostics: %w", err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return fn()
}

// Zip packs files as the agent uploads them (and diag export writes them):
// in the order given, at one fixed time, so a preview always zips the same.
func Zip(files []PreviewFile, at time.Time) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: zip.Deflate, Modified: at.UTC()})
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(f.Content); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

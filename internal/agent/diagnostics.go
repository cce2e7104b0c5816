package agent

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/tetherhq/tether/internal/agent/redact"
	"github.com/tetherhq/tether/internal/ledger"
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
	ErrUnknownDiagnostic = errors.New("agent: no such diagnostic request")
	ErrNotPending        = errors.New("agent: diagnostic request is not pending")
	ErrBundleNotReady    = errors.New("agent: the agent has not built this bundle yet")
	// ErrBundleChanged means a collected file in bundle/ no longer matches
	// what the agent built, so it is neither shown nor sent.
	ErrBundleChanged = errors.New("agent: a bundle file changed after the agent built it")
)

// Diagnostic is one request from the vendor as the customer sees it.
type Diagnostic struct {
	ID          string    `json:"id"`
	Reason      string    `json:"reason"` // the vendor's words
	RequestedAt time.Time `json:"requested_at"`
	State       string    `json:"state"`
	UpdatedAt   time.Time `json:"updated_at"`
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

func diagDir(dataDir, id string) (string, error) {
	// The ID names a directory; only wire's ID alphabet may do that.
	if !wire.ValidID(id) {
		return "", ErrUnknownDiagnostic
	}
	return filepath.Join(dataDir, "diagnostics", id), nil
}

// ListDiagnostics returns every diagnostic request the agent has received,
// oldest first.
func ListDiagnostics(dataDir string) ([]Diagnostic, error) {
	entries, err := os.ReadDir(filepath.Join(dataDir, "diagnostics"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("agent: list diagnostics: %w", err)
	}
	var out []Diagnostic
	for _, e := range entries {
		if !e.IsDir() || !wire.ValidID(e.Name()) {
			continue
		}
		d, err := readDiagnostic(dataDir, e.Name())
		if errors.Is(err, ErrUnknownDiagnostic) {
			continue // still being written by the agent
		}
		if err != nil {
			return nil, fmt.Errorf("agent: list diagnostics: %w", err)
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RequestedAt.Before(out[j].RequestedAt) })
	return out, nil
}

func readDiagnostic(dataDir, id string) (Diagnostic, error) {
	dir, err := diagDir(dataDir, id)
	if err != nil {
		return Diagnostic{}, err
	}
	var st diagState
	if err := readJSON(filepath.Join(dir, "state.json"), &st); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Diagnostic{}, ErrUnknownDiagnostic
		}
		return Diagnostic{}, err
	}
	var req wire.DiagnosticRequest
	if err := readJSON(filepath.Join(dir, "request.json"), &req); err != nil {
		return Diagnostic{}, err
	}
	return Diagnostic{ID: id, Reason: req.Reason, RequestedAt: req.RequestedAt, State: st.State, UpdatedAt: st.UpdatedAt}, nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return nil
}

// PreviewDiagnostic returns the bundle's files, which are exactly what an
// approval uploads: the files the agent collected, as their manifest
// records them. Anything else in bundle/ is neither shown nor sent, and a
// collected file that changed since is refused (ErrBundleChanged).
func PreviewDiagnostic(dataDir, id string) ([]PreviewFile, error) {
	if _, err := readDiagnostic(dataDir, id); err != nil {
		return nil, fmt.Errorf("agent: preview %s: %w", id, err)
	}
	dir, _ := diagDir(dataDir, id)
	files, err := readBundle(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("agent: preview %s: %w", id, ErrBundleNotReady)
	}
	if err != nil {
		return nil, fmt.Errorf("agent: preview %s: %w", id, err)
	}
	return files, nil
}

// bundleManifest is diagnostics/<id>/manifest.json, written when the
// bundle is built: the collected files with their sizes and SHA-256.
// Preview and upload read exactly these, so what is sent is byte for byte
// what the preview showed, and a file that turns up in bundle/ later (an
// editor's swap file, a copy) is never sent.
type bundleManifest struct {
	Files []manifestFile `json:"files"`
}

type manifestFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// collectedFiles are the names buildBundle writes, and the whole bundle of
// one built before manifests were (its files are not hash-checked).
func collectedFiles() []string {
	return []string{"agent-log.txt", "config.json", "docsvc.json", "health-history.json", "versions.json"}
}

func newManifest(files []PreviewFile) bundleManifest {
	var m bundleManifest
	for _, f := range files {
		sum := sha256.Sum256(f.Content)
		m.Files = append(m.Files, manifestFile{Name: f.Name, Size: int64(len(f.Content)), SHA256: hex.EncodeToString(sum[:])})
	}
	return m
}

// readBundle reads the collected files of the request in dir, checking each
// against the manifest.
func readBundle(dir string) ([]PreviewFile, error) {
	if _, err := os.Stat(filepath.Join(dir, "bundle")); err != nil {
		return nil, err
	}
	var m bundleManifest
	switch err := readJSON(filepath.Join(dir, "manifest.json"), &m); {
	case errors.Is(err, fs.ErrNotExist):
		for _, name := range collectedFiles() {
			m.Files = append(m.Files, manifestFile{Name: name})
		}
	case err != nil:
		return nil, err
	}
	out := make([]PreviewFile, 0, len(m.Files))
	for _, f := range m.Files {
		if f.Name != filepath.Base(f.Name) || f.Name == "." || f.Name == ".." {
			return nil, fmt.Errorf("manifest.json names %q, which is not a file in bundle/", f.Name)
		}
		data, err := os.ReadFile(filepath.Join(dir, "bundle", f.Name))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		if f.SHA256 != "" && (int64(len(data)) != f.Size || hex.EncodeToString(sum[:]) != f.SHA256) {
			return nil, fmt.Errorf("%w: %s (decline the request and ask the vendor to request again)", ErrBundleChanged, f.Name)
		}
		out = append(out, PreviewFile{Name: f.Name, Size: int64(len(data)), Content: data})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ApproveDiagnostic lets the running agent upload the bundle on its next
// heartbeat. It works whether or not the agent is running; the approval is
// a file, so it survives restarts.
func ApproveDiagnostic(dataDir, id string) error {
	return transition(dataDir, id, StatePending, StateApproved, time.Now())
}

// DeclineDiagnostic marks a request declined; nothing is ever sent for it.
func DeclineDiagnostic(dataDir, id string) error {
	return transition(dataDir, id, StatePending, StateDeclined, time.Now())
}

// transition moves a request from one state to another under an exclusive
// lock shared by the agent and tetherctl, so an approval and an upload (or
// two operators) cannot interleave.
func transition(dataDir, id, from, to string, now time.Time) error {
	dir, err := diagDir(dataDir, id)
	if err != nil {
		return fmt.Errorf("agent: %s %s: %w", to, id, err)
	}
	return withDiagLock(dataDir, func() error {
		var st diagState
		if err := readJSON(filepath.Join(dir, "state.json"), &st); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("agent: %s %s: %w", to, id, ErrUnknownDiagnostic)
			}
			return fmt.Errorf("agent: %s %s: %w", to, id, err)
		}
		if st.State != from {
			return fmt.Errorf("agent: %s %s: %w (it is %s)", to, id, ErrNotPending, st.State)
		}
		if err := writeJSONAtomic(filepath.Join(dir, "state.json"), diagState{State: to, UpdatedAt: now.UTC()}, 0o600); err != nil {
			return fmt.Errorf("agent: %s %s: %w", to, id, err)
		}
		return nil
	})
}

func withDiagLock(dataDir string, fn func() error) error {
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

// maxWaitingDiagnostics bounds the requests (each with its built bundle)
// kept pending or approved-not-yet-uploaded at once.
const maxWaitingDiagnostics = 10

// countState counts requests in one state.
func countState(dataDir, state string) int {
	ds, _ := ListDiagnostics(dataDir)
	n := 0
	for _, d := range ds {
		if d.State == state {
			n++
		}
	}
	return n
}

// pollDiagnostics asks the plane for pending requests and records each new
// one with its bundle already built, so the operator can preview it before
// deciding.
func (a *Agent) pollDiagnostics(ctx context.Context) {
	status, out, err := a.plane.send(ctx, "", "GET", "/v1/diagnostics", nil, true)
	if err == nil && status != 200 {
		err = fmt.Errorf("plane answered %d", status)
	}
	var reqs wire.DiagnosticRequests
	if err == nil {
		reqs, err = wire.DecodeDiagnosticRequests(out)
	}
	if err != nil {
		a.log.Warn("poll diagnostics", "err", err)
		return
	}
	waiting := countState(a.cfg.DataDir, StatePending) + countState(a.cfg.DataDir, StateApproved)
	for _, r := range reqs {
		dir, _ := diagDir(a.cfg.DataDir, r.ID) // Decode validated the ID
		if _, err := os.Stat(filepath.Join(dir, "state.json")); err == nil {
			continue // known: pending, approved, uploaded or declined
		}
		// The vendor may only ask, and may not fill the customer's disk by
		// asking: new requests wait on the plane until the operator has
		// dealt with the ones already here.
		if waiting >= maxWaitingDiagnostics {
			a.log.Warn("diagnostic requests are waiting for the operator; not taking more", "waiting", waiting)
			break
		}
		waiting++
		if err := a.recordDiagnostic(r); err != nil {
			a.log.Error("record diagnostic request", "diagnostic_id", r.ID, "err", err)
			continue
		}
		a.log.Info("diagnostic request received", "diagnostic_id", r.ID, "auto_approved", a.cfg.AutoApprove)
	}
}

func (a *Agent) recordDiagnostic(r wire.DiagnosticRequest) error {
	dir, _ := diagDir(a.cfg.DataDir, r.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := writeJSONAtomic(filepath.Join(dir, "request.json"), r, 0o600); err != nil {
		return err
	}
	if err := a.buildBundle(dir, r); err != nil {
		return err
	}
	state := StatePending
	if a.cfg.AutoApprove {
		state = StateApproved
	}
	// state.json last: its presence means the record is complete.
	return withDiagLock(a.cfg.DataDir, func() error {
		return writeJSONAtomic(filepath.Join(dir, "state.json"), diagState{State: state, UpdatedAt: a.now().UTC()}, 0o600)
	})
}

// processDiagnostics uploads every approved bundle.
func (a *Agent) processDiagnostics(ctx context.Context) {
	ds, err := ListDiagnostics(a.cfg.DataDir)
	if err != nil {
		a.log.Warn("list diagnostics", "err", err)
		return
	}
	for _, d := range ds {
		if d.State != StateApproved {
			continue
		}
		if err := a.upload(ctx, d.ID); err != nil {
			a.log.Warn("upload diagnostic bundle; will retry", "diagnostic_id", d.ID, "err", err)
			continue
		}
		a.log.Info("diagnostic bundle uploaded", "diagnostic_id", d.ID)
	}
}

func (a *Agent) upload(ctx context.Context, id string) error {
	dir, _ := diagDir(a.cfg.DataDir, id)
	files, err := readBundle(dir)
	if errors.Is(err, ErrBundleChanged) {
		// The approval was for other bytes: ask again rather than send
		// these or retry forever.
		if terr := transition(a.cfg.DataDir, id, StateApproved, StatePending, a.now()); terr != nil {
			return errors.Join(err, terr)
		}
		return fmt.Errorf("not sent, back to pending: %w", err)
	}
	if err != nil {
		return fmt.Errorf("read bundle: %w", err)
	}
	var req wire.DiagnosticRequest
	if err := readJSON(filepath.Join(dir, "request.json"), &req); err != nil {
		return err
	}
	zipped, err := zipFiles(files, req.RequestedAt)
	if err != nil {
		return err
	}
	status, _, err := a.plane.send(ctx, ledger.KindDiagnostics, "POST", "/v1/diagnostics/"+id+"/bundle", zipped, true)
	if err != nil {
		return err
	}
	// 409: the plane already holds a bundle for this request (an earlier
	// upload whose answer was lost).
	if status != 204 && status != 409 {
		return fmt.Errorf("plane answered %d", status)
	}
	return transition(a.cfg.DataDir, id, StateApproved, StateUploaded, a.now())
}

// zipFiles packs the previewed files deterministically: sorted names, one
// fixed time, so the same preview always gives the same bytes.
func zipFiles(files []PreviewFile, at time.Time) ([]byte, error) {
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

// Collectors. The bundle holds these files and nothing else (default deny):
// each is built from the agent's own state, then passed through redact
// before it is written, so the preview shows the redacted text.
const maxLogBytes = 256 << 10

func (a *Agent) buildBundle(dir string, r wire.DiagnosticRequest) error {
	a.mu.Lock()
	snap := a.lastSnapshot
	history := append([]HealthRecord(nil), a.history...)
	versions := map[string]any{"agent": Version, "docsvc": a.docsvcVersion, "schema": a.schemaVersion}
	a.mu.Unlock()

	docsvc := map[string]any{"schema_version": snap.Metrics.SchemaVersion, "scraped_at": snap.At.UTC()}
	if snap.ReadyzErr == nil && snap.Readyz.Status != "" {
		checks := map[string]string{}
		for name, c := range snap.Readyz.Checks {
			checks[name] = c.Status // statuses only: details are docsvc's text
		}
		docsvc["status"], docsvc["checks"], docsvc["queue"] = snap.Readyz.Status, checks, snap.Readyz.Queue
	} else {
		docsvc["status"] = "unreachable"
	}
	files := map[string]any{
		"versions.json":       versions,
		"config.json":         a.cfg.Redacted(),
		"health-history.json": history,
		"docsvc.json":         docsvc,
	}
	tmp := filepath.Join(dir, "bundle.tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	var collected []PreviewFile
	for name, v := range files {
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("collect %s: %w", name, err)
		}
		collected = append(collected, PreviewFile{Name: name, Content: []byte(redact.String(string(data)) + "\n")})
	}
	logs, err := a.tailLogs()
	if err != nil {
		return fmt.Errorf("collect logs: %w", err)
	}
	collected = append(collected, PreviewFile{Name: "agent-log.txt", Content: []byte(redact.String(logs))})
	for _, f := range collected {
		if err := os.WriteFile(filepath.Join(tmp, f.Name), f.Content, 0o600); err != nil {
			return err
		}
	}
	final := filepath.Join(dir, "bundle")
	if err := os.RemoveAll(final); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	// Before state.json, which marks the record complete.
	return writeJSONAtomic(filepath.Join(dir, "manifest.json"), newManifest(collected), 0o600)
}

// tailLogs returns the last maxLogBytes of the agent's log (the rotated
// file first), starting at a line boundary.
func (a *Agent) tailLogs() (string, error) {
	var all []byte
	for _, p := range []string{a.path("logs", "agent.log.1"), a.path("logs", "agent.log")} {
		data, err := readTail(p, maxLogBytes)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		all = append(all, data...)
	}
	if len(all) > maxLogBytes {
		all = all[len(all)-maxLogBytes:]
		if i := bytes.IndexByte(all, '\n'); i >= 0 {
			all = all[i+1:]
		}
	}
	return string(all), nil
}

func readTail(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(0, fi.Size()-n)
	return io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
}

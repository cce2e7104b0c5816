package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/tetherhq/tether/internal/agent/redact"
	"github.com/tetherhq/tether/internal/diagspool"
	"github.com/tetherhq/tether/internal/ledger"
	"github.com/tetherhq/tether/internal/wire"
)

// maxWaitingDiagnostics bounds the requests (each with its built bundle)
// kept pending or approved-not-yet-uploaded at once.
const maxWaitingDiagnostics = 10

// countState counts requests in one state.
func countState(dataDir, state string) int {
	ds, _ := diagspool.List(dataDir)
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
	status, out, err := a.plane.send(ctx, "", "GET", "/v1/diagnostics?with=requested_by", nil, true)
	if err == nil && status != 200 {
		err = statusError(status, out)
	}
	var reqs wire.DiagnosticRequests
	if err == nil {
		reqs, err = wire.Decode[wire.DiagnosticRequests](out)
	}
	if err != nil {
		a.log.Warn("poll diagnostics", "err", err)
		return
	}
	waiting := countState(a.cfg.DataDir, diagspool.StatePending) + countState(a.cfg.DataDir, diagspool.StateApproved)
	for _, r := range reqs {
		if diagspool.Recorded(a.cfg.DataDir, r.ID) { // Decode validated the ID
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
	files, err := a.collectBundle()
	if err != nil {
		return err
	}
	// The request travels with its answer, so the ledger entry of the
	// upload says who at the vendor asked and why.
	req, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	files = append(files, diagspool.PreviewFile{Name: "request.json", Content: append(req, '\n')})
	state := diagspool.StatePending
	if a.cfg.AutoApprove {
		state = diagspool.StateApproved
	}
	return diagspool.Record(a.cfg.DataDir, r, files, state, a.now())
}

// processDiagnostics uploads every approved bundle.
func (a *Agent) processDiagnostics(ctx context.Context) {
	ds, err := diagspool.List(a.cfg.DataDir)
	if err != nil {
		a.log.Warn("list diagnostics", "err", err)
		return
	}
	for _, d := range ds {
		if d.State != diagspool.StateApproved {
			continue
		}
		if err := a.upload(ctx, d); err != nil {
			a.log.Warn("upload diagnostic bundle; will retry", "diagnostic_id", d.ID, "err", err)
			continue
		}
		a.log.Info("diagnostic bundle uploaded", "diagnostic_id", d.ID)
	}
}

func (a *Agent) upload(ctx context.Context, d diagspool.Diagnostic) error {
	files, err := diagspool.ReadBundle(a.cfg.DataDir, d.ID)
	if errors.Is(err, diagspool.ErrBundleChanged) {
		// The approval was for other bytes: ask again rather than send
		// these or retry forever.
		if terr := diagspool.Transition(a.cfg.DataDir, d.ID, diagspool.StateApproved, diagspool.StatePending, a.now()); terr != nil {
			return errors.Join(err, terr)
		}
		return fmt.Errorf("not sent, back to pending: %w", err)
	}
	if err != nil {
		return fmt.Errorf("read bundle: %w", err)
	}
	zipped, err := diagspool.Zip(files, d.RequestedAt)
	if err != nil {
		return err
	}
	status, out, err := a.plane.send(ctx, ledger.KindDiagnostics, "POST", "/v1/diagnostics/"+d.ID+"/bundle", zipped, true)
	if err != nil {
		return err
	}
	// 409: the plane already holds a bundle for this request (an earlier
	// upload whose answer was lost).
	if status != 204 && status != 409 {
		return statusError(status, out)
	}
	return diagspool.Transition(a.cfg.DataDir, d.ID, diagspool.StateApproved, diagspool.StateUploaded, a.now())
}

// Collectors. The bundle holds these files and nothing else (default deny):
// each is built from the agent's own state, then passed through redact
// before it is written, so the preview shows the redacted text.
const maxLogBytes = 256 << 10

// collectBundle builds the bundle's files, redacted, for diagspool.Record.
func (a *Agent) collectBundle() ([]diagspool.PreviewFile, error) {
	a.mu.Lock()
	snap := a.lastSnapshot
	history := append([]HealthRecord(nil), a.history...)
	versions := map[string]any{"agent": Version, "docsvc": a.docsvcVersion, "schema": a.schemaVersion}
	a.mu.Unlock()

	docsvc := map[string]any{"schema_version": snap.Summary.SchemaVersion, "scraped_at": snap.At.UTC(), "status": "unreachable"}
	if snap.Err == nil && snap.Summary.Status != "" {
		docsvc["status"], docsvc["checks"], docsvc["queue"] = snap.Summary.Status, snap.Summary.Checks, snap.Summary.Queue
	}
	files := map[string]any{
		"versions.json":       versions,
		"config.json":         a.cfg.Redacted(),
		"health-history.json": history,
		"docsvc.json":         docsvc,
	}
	var collected []diagspool.PreviewFile
	for name, v := range files {
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("collect %s: %w", name, err)
		}
		collected = append(collected, diagspool.PreviewFile{Name: name, Content: []byte(redact.String(string(data)) + "\n")})
	}
	logs, err := a.tailLogs()
	if err != nil {
		return nil, fmt.Errorf("collect logs: %w", err)
	}
	collected = append(collected, diagspool.PreviewFile{Name: "agent-log.txt", Content: []byte(redact.String(logs))})
	return collected, nil
}

// tailLogs returns the last maxLogBytes of the agent's log (the rotated
// file first; each is about 1 MiB at most), starting at a line boundary.
func (a *Agent) tailLogs() (string, error) {
	var all []byte
	for _, p := range []string{a.path("logs", "agent.log.1"), a.path("logs", "agent.log")} {
		data, err := os.ReadFile(p)
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

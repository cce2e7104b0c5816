package ctl

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/atomicfile"
	"github.com/tetherhq/tether/internal/devstack"
	"github.com/tetherhq/tether/internal/release"
	"github.com/tetherhq/tether/internal/releasestate"
	"github.com/tetherhq/tether/internal/updater/airgap"
)

// The release lifecycle on the local runtime (tetherctl dev's supervisor),
// with the AWS runtime's steps in the same order: verify the export (the
// agent's TUF code) → check the release applies and the stack is healthy →
// back up (database and documents) → the release's docsvc migrate → swap
// the binaries on the supervisor's socket → watch health for --settle →
// record the outcome. A failure after the swap started swaps back by
// itself. Everything lives in the data dir, but the backups:
//
//	releases/tuf/              the verified TUF metadata (rollback protection)
//	releases/<version>/        each verified release's docsvc and tether-agent
//	releases/history.json      every upgrade and rollback, newest first
//	agent/state/releases.json  the same as the agent's release record, which
//	                           it reports to the plane (internal/releasestate)
//
// The backup taken before each is in DATA_DIR.backups/, beside the data dir
// (devstack.BackupsDir).
const (
	localHistoryFile = "releases/history.json"
	// AgentRecordFile is the release record of the local runtime's agent,
	// relative to the data dir (the agent's --data-dir is DATA_DIR/agent):
	// the agent reports its newest outcome to the plane as versions, the
	// outcome and a fixed reason code, never the free-text reason.
	AgentRecordFile = "agent/" + releasestate.LocalFile
	maxLocalHistory = 20
	// The queue's oldest job may wait this long before the settle watch
	// counts it as stuck.
	maxQueueAge = 5 * time.Minute
)

// localOutcomes are the outcomes the local runtime records.
var localOutcomes = map[string]bool{"succeeded": true, "rolled-back": true, "failed": true}

// LocalOutcome is one upgrade or rollback of the local runtime.
type LocalOutcome struct {
	Action  string    `json:"action"`  // upgrade | rollback
	From    string    `json:"from"`    // the version that ran before
	To      string    `json:"to"`      // the version tried
	Outcome string    `json:"outcome"` // succeeded | rolled-back | failed
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// localRecord is one entry of releases/history.json: the outcome, the
// binaries on either side (a rollback returns to FromBinaries) and the
// backup taken first.
type localRecord struct {
	LocalOutcome
	Backup       string           `json:"backup,omitempty"`
	FromBinaries devstack.Running `json:"from_binaries"`
	ToBinaries   devstack.Running `json:"to_binaries"`
}

// parseLocalHistory reads releases/history.json strictly.
func parseLocalHistory(path string, data []byte) ([]localRecord, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var h []localRecord
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("%s is not tetherctl's release history (%v): move it away and the next upgrade starts a new one", path, err)
	}
	if len(h) > maxLocalHistory {
		return nil, fmt.Errorf("%s holds %d entries, more than the %d tetherctl keeps: it was edited by hand; move it away", path, len(h), maxLocalHistory)
	}
	for i, o := range h {
		if o.Action != "upgrade" && o.Action != "rollback" || !localOutcomes[o.Outcome] {
			return nil, fmt.Errorf("%s, entry %d: action %q, outcome %q is not one tetherctl writes: move the file away", path, i, o.Action, o.Outcome)
		}
	}
	return h, nil
}

type localRuntime struct {
	dataDir string
	c       *devstack.Control
	w       io.Writer
	http    *http.Client
	now     func() time.Time
}

func (l *localRuntime) history() ([]localRecord, error) {
	path := filepath.Join(l.dataDir, localHistoryFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseLocalHistory(path, b)
}

// save puts o first in the history and in the agent's release record, with
// code (one of wire.UpgradeReasons, empty on success).
func (l *localRuntime) save(o localRecord, code string) error {
	h, err := l.history()
	if err != nil {
		return err
	}
	h = append([]localRecord{o}, h...)
	if len(h) > maxLocalHistory {
		h = h[:maxLocalHistory]
	}
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(l.dataDir, filepath.Dir(localHistoryFile)), 0o700); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(l.dataDir, localHistoryFile), append(b, '\n'), 0o600); err != nil {
		return err
	}
	path := filepath.Join(l.dataDir, AgentRecordFile)
	var rec []releasestate.Outcome
	if b, err := os.ReadFile(path); err == nil {
		// A record that does not parse is replaced: the history above is
		// tetherctl's own, and the agent reports only the newest outcome.
		rec, _ = releasestate.Parse(path, b)
	}
	rec = releasestate.Prepend(rec, releasestate.Outcome{Action: o.Action, From: o.From, To: o.To,
		Outcome: o.Outcome, Code: code, Reason: o.Reason, By: "tetherctl", At: o.At})
	if b, err = json.MarshalIndent(rec, "", "  "); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}

// keepArtifacts moves each verified release's docsvc and tether-agent from
// the verified targets into releases/<version>/, where the supervisor runs
// them from. A file already there is kept only when its hash matches.
func keepArtifacts(dataDir string) func(string, []release.Manifest) error {
	return func(targets string, ms []release.Manifest) error {
		for _, m := range ms {
			for _, name := range []string{"docsvc", "tether-agent"} {
				a, ok := m.Artifacts[name]
				if !ok {
					continue // not installable locally; chooseLocal says so
				}
				dst := filepath.Join(dataDir, "releases", m.Version, name)
				if sum, err := fileSHA256(dst); err == nil && sum == a.SHA256 {
					continue
				}
				if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
					return err
				}
				if err := os.Rename(airgap.BundleArtifactPath(targets, a), dst); err != nil {
					return fmt.Errorf("keeping release %s's %s: %w", m.Version, name, err)
				}
				if err := os.Chmod(dst, 0o700); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// localBinaries is where a verified release's binaries were kept.
func localBinaries(dataDir string, m release.Manifest) (devstack.Running, error) {
	r := devstack.Running{Version: m.Version}
	for _, c := range []struct {
		name string
		dst  *string
	}{{"docsvc", &r.Docsvc}, {"tether-agent", &r.Agent}} {
		if _, ok := m.Artifacts[c.name]; !ok {
			return r, fmt.Errorf("release %s ships no %s binary (it has %s): it cannot be installed on the local runtime; ask the vendor", m.Version, c.name, strings.Join(sortedKeys(m.Artifacts), ", "))
		}
		*c.dst = filepath.Join(dataDir, "releases", m.Version, c.name)
	}
	return r, nil
}

// localPlan is one upgrade or rollback on the local runtime.
type localPlan struct {
	Action  string           `json:"action"`
	From    devstack.Running `json:"from"`
	To      devstack.Running `json:"to"`
	Settle  time.Duration    `json:"-"`
	Backup  string           `json:"backup,omitempty"`
	Outcome string           `json:"outcome,omitempty"`
	Reason  string           `json:"reason,omitempty"`
}

func (p localPlan) steps(dataDir string) []string {
	s := []string{
		"check that the stack is healthy now (the api's /readyz)",
		"back up the database and the documents into " + devstack.BackupsDir(dataDir) + "/ (as tetherctl backup: tetherctl restore --from takes it back)",
	}
	if p.Action == "upgrade" {
		s = append(s, "run release "+p.To.Version+"'s docsvc migrate ("+p.To.Docsvc+")")
	} else {
		s = append(s, "no migration: migrations only add (expand/contract), so "+p.To.Version+" runs on this schema")
	}
	return append(s,
		"swap api, worker and agent from "+p.From.Version+" to "+p.To.Version+" on the supervisor's socket (the new api serves beside the old one until it is ready; the old one drains)",
		fmt.Sprintf("watch /readyz, 5xx responses, queue age, dead letters and restarts for %s; on any problem swap back to %s by itself", p.Settle, p.From.Version),
		"record the outcome in "+filepath.Join(dataDir, localHistoryFile)+" and "+filepath.Join(dataDir, AgentRecordFile),
	)
}

// localSample is what the settle watch compares against its start.
type localSample struct {
	fiveXX     float64
	deadLetter int64
	restarts   int64 // of the api and worker processes, unasked
}

// readLocalHealth reads the current api process's own /readyz and /metrics
// and the supervisor's restart counts (a problem only when they grow while
// the new release is watched).
func (l *localRuntime) readLocalHealth(ctx context.Context, want devstack.Running) (localSample, []string, error) {
	var s localSample
	st, err := l.c.Status(ctx)
	if err != nil {
		return s, nil, err
	}
	var problems []string
	if st.Running != want {
		problems = append(problems, fmt.Sprintf("the supervisor runs %s, not %s", st.Version, want.Version))
	}
	s.restarts = st.APIRestarts + st.WorkerRestarts
	code, body, err := l.get(ctx, st.APIPrivateURL+"/readyz")
	if err != nil {
		return s, nil, err
	}
	var rz struct {
		Status string `json:"status"`
		Checks map[string]struct {
			Status string `json:"status"`
		} `json:"checks"`
		Queue struct {
			DeadLetter int64 `json:"dead_letter"`
			OldestAge  int64 `json:"oldest_age_seconds"`
		} `json:"queue"`
	}
	if err := json.Unmarshal(body, &rz); err != nil {
		problems = append(problems, fmt.Sprintf("/readyz answered %d with no readiness report", code))
	} else {
		if code != http.StatusOK {
			var down []string
			for name, c := range rz.Checks {
				if c.Status != "ok" {
					down = append(down, name+" "+c.Status)
				}
			}
			problems = append(problems, fmt.Sprintf("/readyz answered %d (%s: %s)", code, rz.Status, orDefault(strings.Join(sortedStrings(down), ", "), "no check named")))
		}
		s.deadLetter = rz.Queue.DeadLetter
		if age := time.Duration(rz.Queue.OldestAge) * time.Second; age > maxQueueAge {
			problems = append(problems, fmt.Sprintf("the oldest queued job has waited %s (more than %s)", age, maxQueueAge))
		}
	}
	code, body, err = l.get(ctx, st.APIPrivateURL+"/metrics")
	if err != nil {
		return s, nil, err
	}
	if code != http.StatusOK {
		problems = append(problems, fmt.Sprintf("/metrics answered %d", code))
	} else if s.fiveXX, err = count5xx(body); err != nil {
		problems = append(problems, err.Error())
	}
	return s, problems, nil
}

func sortedStrings(s []string) []string {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return sortedKeys(m)
}

func (l *localRuntime) get(ctx context.Context, url string) (int, []byte, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	res, err := l.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("the api's private listener does not answer (%v)", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	return res.StatusCode, b, err
}

// count5xx sums docsvc_http_requests_total over 5xx codes in Prometheus'
// text format.
func count5xx(metrics []byte) (float64, error) {
	var n float64
	sc := bufio.NewScanner(bytes.NewReader(metrics))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "docsvc_http_requests_total{") {
			continue
		}
		labels, value, ok := strings.Cut(line[len("docsvc_http_requests_total{"):], "} ")
		if !ok {
			return 0, fmt.Errorf("/metrics line %q is not name{labels} value", line)
		}
		if !strings.Contains(","+labels, `,code="5`) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("/metrics line %q: value %q is not a count", line, value)
		}
		n += v
	}
	return n, sc.Err()
}

// run carries out the plan; after the swap started, any failure swaps back.
func (l *localRuntime) run(ctx context.Context, p *localPlan) error {
	if _, problems, err := l.readLocalHealth(ctx, p.From); err != nil || len(problems) > 0 {
		if err == nil {
			err = errors.New(strings.Join(problems, "; "))
		}
		return fmt.Errorf("the stack is not healthy now, so nothing was changed: %v; fix that first (tetherctl dev's output shows what is wrong), then run this again", err)
	}
	dir, err := l.c.Backup(ctx, "before-"+p.To.Version)
	if err != nil {
		return fmt.Errorf("backing up before the %s, nothing was changed: %w", p.Action, err)
	}
	p.Backup = dir
	fmt.Fprintf(l.w, "backed up into %s\n", dir)
	if p.Action == "upgrade" {
		fmt.Fprintf(l.w, "running %s migrate\n", p.To.Version)
		if err := l.c.Migrate(ctx, p.To.Docsvc); err != nil {
			// Its output stays on the operator's screen; the record (which
			// the agent reports) says only what failed.
			fmt.Fprintf(l.w, "%v\n", err)
			return l.finish(p, "failed", "migration-failed", fmt.Errorf("release %s's migration failed (its output is above), the stack was not changed and still runs %s (restore %s only if the database is damaged)", p.To.Version, p.From.Version, dir))
		}
	}
	fmt.Fprintf(l.w, "swapping to %s\n", p.To.Version)
	if _, err := l.c.Swap(ctx, p.To, time.Minute); err != nil {
		// The supervisor stopped the new api and kept the old one.
		return l.finish(p, "rolled-back", "rollout-failed", fmt.Errorf("the %s to %s was rolled back, the stack runs %s again: %w", p.Action, p.To.Version, p.From.Version, err))
	}
	base, problems, err := l.readLocalHealth(ctx, p.To)
	for err == nil && len(problems) == 0 {
		fmt.Fprintf(l.w, "%s serves; watching it for %s\n", p.To.Version, p.Settle)
		end := l.now().Add(p.Settle)
		for l.now().Before(end) && err == nil && len(problems) == 0 {
			if err = sleep(ctx, time.Second); err != nil {
				err = fmt.Errorf("the time limit (--timeout) ran out while watching")
				break
			}
			var s localSample
			s, problems, err = l.readLocalHealth(ctx, p.To)
			if err == nil && s.fiveXX > base.fiveXX {
				problems = append(problems, fmt.Sprintf("the api answered %.0f request(s) with a 5xx status", s.fiveXX-base.fiveXX))
			}
			if err == nil && s.deadLetter > base.deadLetter {
				problems = append(problems, fmt.Sprintf("%d job(s) were dead-lettered", s.deadLetter-base.deadLetter))
			}
			if err == nil && s.restarts > base.restarts {
				problems = append(problems, fmt.Sprintf("the api or worker exited %d time(s) without being asked", s.restarts-base.restarts))
			}
		}
		if err == nil && len(problems) == 0 {
			return l.finish(p, "succeeded", "", nil)
		}
	}
	why, code := strings.Join(problems, "; "), "not-healthy"
	if err != nil {
		why, code = "its health could not be read: "+err.Error(), "health-unreadable"
	}
	return l.swapBack(ctx, p, why, code)
}

func (l *localRuntime) swapBack(ctx context.Context, p *localPlan, why, code string) error {
	fmt.Fprintf(l.w, "Swapping back to %s: %s\n", p.From.Version, why)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	if _, err := l.c.Swap(rctx, p.From, time.Minute); err != nil {
		return l.finish(p, "failed", code, fmt.Errorf("%s, and swapping back to %s failed too: %w; stop tetherctl dev, remove %s and start it again (docs/runbooks/rollback.md)", why, p.From.Version, err, filepath.Join(l.dataDir, devstack.RunningFile)))
	}
	return l.finish(p, "rolled-back", code, fmt.Errorf("the %s to %s was rolled back, the stack runs %s again: %s", p.Action, p.To.Version, p.From.Version, why))
}

// finish records the outcome, with code (one of wire.UpgradeReasons, empty
// on success), and returns cause (nil on success).
func (l *localRuntime) finish(p *localPlan, outcome, code string, cause error) error {
	p.Outcome = outcome
	o := localRecord{LocalOutcome: LocalOutcome{Action: p.Action, From: p.From.Version, To: p.To.Version, Outcome: outcome, At: l.now().UTC()},
		Backup: p.Backup, FromBinaries: p.From, ToBinaries: p.To}
	if cause != nil {
		p.Reason = cause.Error()
		// The agent reports this reason: paths name the data dir (and so
		// perhaps a user's home), which stays on this machine.
		o.Reason = oneLine(strings.ReplaceAll(cause.Error(), l.dataDir, "DATA_DIR"))
		if len(o.Reason) > 300 {
			o.Reason = strings.ToValidUTF8(o.Reason[:300], "")
		}
	}
	if err := l.save(o, code); err != nil {
		return errors.Join(cause, fmt.Errorf("recording the outcome in %s: %w", filepath.Join(l.dataDir, localHistoryFile), err))
	}
	return cause
}

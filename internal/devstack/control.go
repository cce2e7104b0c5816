package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ControlSocket is the supervisor's control socket, relative to the data
// dir: HTTP over a Unix socket that only the data dir's owner can reach
// (the directory is 0700, the socket 0600). tetherctl upgrade --local and
// rollback --local use it:
//
//	GET  /v1/status   the running release and the api's private URL (Status)
//	POST /v1/backup   {"label": L}: copy the database and documents into
//	                  DATA_DIR.backups/<time>-L/ and answer {"dir": ...}
//	POST /v1/migrate  {"docsvc": PATH}: run PATH migrate on the stack's database
//	POST /v1/swap     {"version": V, "docsvc": PATH, "tether_agent": PATH,
//	                   "ready_timeout_seconds": N}: move the stack to those binaries
//
// Errors answer 4xx/5xx with {"error": "..."}. Binaries must lie inside the
// data dir.
const ControlSocket = "supervisor.sock"

// SwapRequest is POST /v1/swap's body.
type SwapRequest struct {
	Running
	ReadyTimeoutSeconds int `json:"ready_timeout_seconds"`
}

type backupRequest struct {
	Label string `json:"label"`
}

type migrateRequest struct {
	Docsvc string `json:"docsvc"`
}

const maxControlBody = 16 << 10

// parseSwapRequest reads a swap request strictly.
func parseSwapRequest(b []byte, dataDir string) (Running, time.Duration, error) {
	var req SwapRequest
	if err := decodeStrict(b, &req); err != nil {
		return Running{}, 0, err
	}
	if req.ReadyTimeoutSeconds < 1 || req.ReadyTimeoutSeconds > 600 {
		return Running{}, 0, fmt.Errorf("ready_timeout_seconds %d: want 1 to 600", req.ReadyTimeoutSeconds)
	}
	if err := req.Running.check(dataDir); err != nil {
		return Running{}, 0, err
	}
	return req.Running, time.Duration(req.ReadyTimeoutSeconds) * time.Second, nil
}

func parseMigrateRequest(b []byte, dataDir string) (string, error) {
	var req migrateRequest
	if err := decodeStrict(b, &req); err != nil {
		return "", err
	}
	// Checked like a swap's binaries; the agent's path is not used.
	r := Running{Version: "migrate", Docsvc: req.Docsvc, Agent: req.Docsvc}
	return req.Docsvc, r.check(dataDir)
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("the request is not valid JSON of this endpoint (%v)", err)
	}
	if dec.More() {
		return errors.New("the request has more than one JSON value")
	}
	return nil
}

// serveControl serves the control socket until the stack stops.
func (s *stack) serveControl() error {
	path := filepath.Join(s.dataDir, ControlSocket)
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return fmt.Errorf("dev: another supervisor answers on %s; stop it first", path)
	}
	_ = os.Remove(path) // a stale socket from a supervisor that was killed
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("dev: control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeControl(w, http.StatusOK, s.status())
	})
	mux.HandleFunc("POST /v1/backup", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody))
		var req backupRequest
		if err == nil {
			err = decodeStrict(b, &req)
		}
		if err != nil {
			writeControl(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		dir, err := backup(r.Context(), s.dataDir, req.Label, s.now())
		if err != nil {
			writeControl(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		s.out.printf("dev: backed up the database and documents into %s\n", dir)
		writeControl(w, http.StatusOK, map[string]string{"dir": dir})
	})
	mux.HandleFunc("POST /v1/migrate", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody))
		if err != nil {
			writeControl(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		docsvc, err := parseMigrateRequest(b, s.dataDir)
		if err != nil {
			writeControl(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		s.out.printf("dev: migrating with %s\n", docsvc)
		out, err := s.migrate(r.Context(), docsvc)
		if err != nil {
			writeControl(w, http.StatusInternalServerError, map[string]string{"error": err.Error() + ": " + lastLines(string(out), 5)})
			return
		}
		writeControl(w, http.StatusOK, map[string]string{"output": lastLines(string(out), 5)})
	})
	mux.HandleFunc("POST /v1/swap", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody))
		if err != nil {
			writeControl(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		to, timeout, err := parseSwapRequest(b, s.dataDir)
		if err != nil {
			writeControl(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		s.out.printf("dev: swapping to %s\n", to.Version)
		st, err := s.swap(to, timeout)
		if err != nil {
			writeControl(w, http.StatusConflict, map[string]string{"error": err.Error()})
			return
		}
		writeControl(w, http.StatusOK, st)
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-s.ctx.Done(); hs.Close(); os.Remove(path) }()
	go func() {
		if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("control socket", "err", err)
		}
	}()
	return nil
}

func writeControl(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Control is a client of a running supervisor's control socket.
type Control struct {
	socket string
	c      *http.Client
}

// Dial returns a client of the supervisor of dataDir (nothing is sent yet).
func Dial(dataDir string) *Control {
	path := filepath.Join(dataDir, ControlSocket)
	return &Control{socket: path, c: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}}
}

func (c *Control) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	// The transport dials the control socket whatever the URL names; the
	// host is only a label (".invalid" never resolves).
	req, err := http.NewRequestWithContext(ctx, method, "http://supervisor.invalid"+path, rd)
	if err != nil {
		return err
	}
	res, err := c.c.Do(req)
	if err != nil {
		return fmt.Errorf("the supervisor's control socket %s does not answer (%v): is tetherctl dev running with this --data-dir?", c.socket, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("the supervisor answered %s", res.Status)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("the supervisor's answer to %s is not understood (%v)", path, err)
		}
	}
	return nil
}

// Status asks what the stack runs.
func (c *Control) Status(ctx context.Context) (Status, error) {
	var st Status
	return st, c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
}

// Backup copies the database and the documents into a new directory under
// BackupsDir and returns its path.
func (c *Control) Backup(ctx context.Context, label string) (string, error) {
	var out struct {
		Dir string `json:"dir"`
	}
	return out.Dir, c.do(ctx, http.MethodPost, "/v1/backup", backupRequest{Label: label}, &out)
}

// Migrate runs docsvc's migrate from the given binary.
func (c *Control) Migrate(ctx context.Context, docsvc string) error {
	return c.do(ctx, http.MethodPost, "/v1/migrate", migrateRequest{Docsvc: docsvc}, nil)
}

// Swap moves the stack to r; it returns once the new api serves and the
// old one has drained, or with why the running one was kept.
func (c *Control) Swap(ctx context.Context, r Running, readyTimeout time.Duration) (Status, error) {
	var st Status
	return st, c.do(ctx, http.MethodPost, "/v1/swap", SwapRequest{Running: r, ReadyTimeoutSeconds: int(readyTimeout / time.Second)}, &st)
}

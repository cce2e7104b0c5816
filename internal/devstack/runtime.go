package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherhq/tether/internal/atomicfile"
)

// Running is the release the stack runs: its version and the binaries.
type Running struct {
	Version string `json:"version"`
	Docsvc  string `json:"docsvc"`       // absolute path of the docsvc binary
	Agent   string `json:"tether_agent"` // absolute path of the tether-agent binary
}

// Status is what the supervisor reports on its control socket.
type Status struct {
	Running
	// APIPrivateURL serves the current api process's own /readyz and
	// /metrics (not the shared socket, where either process may answer).
	APIPrivateURL string `json:"api_private_url"`
	// Restarts of the current api and worker processes the supervisor did
	// not ask for: a crashing release shows here.
	APIRestarts    int64 `json:"api_restarts"`
	WorkerRestarts int64 `json:"worker_restarts"`
}

// RunningFile is where the supervisor records the release it runs after an
// upgrade or rollback, relative to the data dir; a restarted tetherctl dev
// runs that release again instead of the checkout's build.
const RunningFile = "releases/running.json"

// instance is one supervised process (with its restarts) that can be stopped
// on its own.
type instance struct {
	cancel   context.CancelFunc
	done     chan struct{}
	private  net.Listener // the api's own /readyz and /metrics
	files    []*os.File   // descriptors it inherits, closed when it stops
	restarts atomic.Int64
}

func (in *instance) stop() {
	in.cancel()
	<-in.done
	if in.private != nil {
		in.private.Close()
	}
	for _, f := range in.files {
		f.Close()
	}
}

// stack supervises the customer side (api, worker, agent) and swaps their
// binaries on request without a failed request: it owns the API's listening
// socket, so a new api process serves on it beside the old one until the old
// one has drained.
type stack struct {
	ctx       context.Context
	dataDir   string
	out       *lockedWriter
	log       *slog.Logger
	docsvcEnv []string
	agentEnv  []string
	agentArgs []string
	public    *os.File // the API's listening socket, owned here
	grace     time.Duration
	now       func() time.Time

	mu                 sync.Mutex // one swap at a time
	cur                Running
	api, worker, agent *instance
}

// newStack listens on apiAddr; the socket lives as long as the stack.
func newStack(ctx context.Context, dataDir, apiAddr string, out *lockedWriter, log *slog.Logger, now func() time.Time) (*stack, error) {
	l, err := net.Listen("tcp", apiAddr)
	if err != nil {
		return nil, fmt.Errorf("dev: cannot listen on %s (%v); is another stack running? choose another with --api-addr", apiAddr, err)
	}
	f, err := l.(*net.TCPListener).File()
	l.Close() // f is a duplicate of the socket and keeps it listening
	if err != nil {
		return nil, err
	}
	return &stack{ctx: ctx, dataDir: dataDir, out: out, log: log, public: f, grace: 30 * time.Second, now: now}, nil
}

func (s *stack) start(p Proc, files []*os.File, private net.Listener) *instance {
	ctx, cancel := context.WithCancel(s.ctx)
	in := &instance{cancel: cancel, done: make(chan struct{}), private: private, files: files}
	p.Dir = s.dataDir
	p.Exited = func(error) { in.restarts.Add(1) }
	go func() { defer close(in.done); supervise(ctx, p, s.out, s.log, s.grace, s.now) }()
	return in
}

// startAPI starts an api process on the shared socket, with a private
// listener of its own for its readiness and metrics.
func (s *stack) startAPI(docsvc string) (*instance, error) {
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("dev: a private listener for the api: %w", err)
	}
	pf, err := pl.(*net.TCPListener).File()
	if err != nil {
		pl.Close()
		return nil, err
	}
	p := Proc{Name: "api", Path: docsvc, Args: []string{"api"}, ExtraFiles: []*os.File{s.public, pf},
		Env: append(append([]string(nil), s.docsvcEnv...), "DOCSVC_LISTEN_FDS=3,4")}
	return s.start(p, []*os.File{pf}, pl), nil
}

func (s *stack) startWorker(docsvc string) *instance {
	return s.start(Proc{Name: "worker", Path: docsvc, Args: []string{"worker"}, Env: s.docsvcEnv}, nil, nil)
}

func (s *stack) startAgent(agent string) *instance {
	return s.start(Proc{Name: "agent", Path: agent, Args: s.agentArgs, Env: s.agentEnv}, nil, nil)
}

// run starts every process on r.
func (s *stack) run(r Running) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	api, err := s.startAPI(r.Docsvc)
	if err != nil {
		return err
	}
	s.cur, s.api, s.worker, s.agent = r, api, s.startWorker(r.Docsvc), s.startAgent(r.Agent)
	return nil
}

// wait stops every process once the stack's context is done.
func (s *stack) wait() {
	<-s.ctx.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range []*instance{s.api, s.worker, s.agent} {
		if in != nil {
			in.stop()
		}
	}
	s.public.Close()
}

func (s *stack) status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statusLocked()
}

func (s *stack) statusLocked() Status {
	return Status{Running: s.cur, APIPrivateURL: "http://" + s.api.private.Addr().String(),
		APIRestarts: s.api.restarts.Load(), WorkerRestarts: s.worker.restarts.Load()}
}

// swap moves the stack to r. The new api starts on the shared socket beside
// the old one; only when its own /readyz is green does the old one get
// SIGTERM, and it finishes the requests it has (http.Server.Shutdown). A new
// worker starts before the old one stops (jobs are at-least-once and
// idempotent). The agent is restarted on its new binary. When the new api is
// not ready within readyTimeout it is stopped and nothing else changes.
func (s *stack) swap(r Running, readyTimeout time.Duration) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	api, err := s.startAPI(r.Docsvc)
	if err != nil {
		return s.statusLocked(), err
	}
	if err := waitReady(s.ctx, api, readyTimeout); err != nil {
		api.stop()
		return s.statusLocked(), fmt.Errorf("the new api (%s) was not ready within %s (%v); it was stopped and the running one (%s) kept serving", r.Version, readyTimeout, err, s.cur.Version)
	}
	s.out.printf("dev: api %s is ready; stopping api %s\n", r.Version, s.cur.Version)
	old := s.api
	s.api = api
	old.stop()
	oldWorker := s.worker
	s.worker = s.startWorker(r.Docsvc)
	oldWorker.stop()
	s.agent.stop()
	s.agent = s.startAgent(r.Agent)
	s.cur = r
	if err := s.record(); err != nil {
		return s.statusLocked(), err
	}
	s.out.printf("dev: now running %s\n", r.Version)
	return s.statusLocked(), nil
}

func (s *stack) record() error {
	b, err := json.MarshalIndent(s.cur, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(s.dataDir, RunningFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}

// migrate runs docsvc migrate from the given binary against the stack's
// database and returns its output.
func (s *stack) migrate(ctx context.Context, docsvc string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, docsvc, "migrate")
	cmd.Env, cmd.Dir = s.docsvcEnv, s.dataDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s migrate: %w", docsvc, err)
	}
	return out, nil
}

// waitReady polls the instance's own /readyz until it answers 200.
func waitReady(ctx context.Context, in *instance, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := "http://" + in.private.Addr().String() + "/readyz"
	c := &http.Client{Timeout: 2 * time.Second}
	last := errors.New("no answer yet")
	for {
		if n := in.restarts.Load(); n > 0 {
			return fmt.Errorf("it exited %d time(s) while starting", n)
		}
		if res, err := c.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("/readyz answered %s", res.Status)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// readRunning reads RunningFile, if there is one.
func readRunning(dataDir string) (Running, bool, error) {
	path := filepath.Join(dataDir, RunningFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Running{}, false, nil
	}
	if err != nil {
		return Running{}, false, err
	}
	r, err := parseRunning(b, dataDir)
	if err != nil {
		return Running{}, false, fmt.Errorf("dev: %s: %w; remove it to run this checkout's build", path, err)
	}
	return r, true, nil
}

func parseRunning(b []byte, dataDir string) (Running, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var r Running
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("not a running-release record (%v)", err)
	}
	return r, r.check(dataDir)
}

// check accepts only binaries inside the data dir (the checkout's build in
// bin/, verified release artifacts in releases/) that exist.
func (r Running) check(dataDir string) error {
	if r.Version == "" || len(r.Version) > 64 || strings.ContainsAny(r.Version, " \t\r\n/") {
		return fmt.Errorf("version %q is not a release version", r.Version)
	}
	for _, c := range []struct{ name, path string }{{"docsvc", r.Docsvc}, {"tether_agent", r.Agent}} {
		if !filepath.IsAbs(c.path) || filepath.Clean(c.path) != c.path {
			return fmt.Errorf("%s %q is not a clean absolute path", c.name, c.path)
		}
		if rel, err := filepath.Rel(dataDir, c.path); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return fmt.Errorf("%s %q is not inside the data dir %s: the supervisor runs only binaries kept there", c.name, c.path, dataDir)
		}
		if !isExec(c.path) {
			return fmt.Errorf("%s %q is not an executable file", c.name, c.path)
		}
	}
	return nil
}

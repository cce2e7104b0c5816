// Package toolproc starts, for tests, a server from the project's pinned test
// tools (installed under tools/ by scripts/test-deps.sh): it finds the binary,
// runs it on a free loopback port in its own process group, waits until it
// answers, and stops it. fauxqstest and awstest are built on it.
//
// A missing binary is an error the caller turns into a failed test: a suite
// that skips when its server is absent passes while testing nothing.
package toolproc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Spec says how to run one tool.
type Spec struct {
	// Name is the tool's name in messages ("moto", "fauxqs").
	Name string
	// Bin is the binary's path relative to the repository root, e.g.
	// tools/venv/bin/moto_server.
	Bin string
	// EnvOverride names a variable that, when set, is the binary's path.
	EnvOverride string
	// Args returns the arguments for a given port; Env, the extra
	// environment.
	Args func(port int) []string
	Env  func(port int) []string
	// Health is the path that answers 200 once the server is ready.
	Health string
}

// Proc is a running server.
type Proc struct {
	Endpoint string // e.g. "http://127.0.0.1:41234"

	cmd    *exec.Cmd
	exited chan error
	out    *tailBuffer
}

// Start runs the tool on a free loopback port and waits (at most 30 s) until
// it answers its health path. The port is found by listening on :0 and
// closing, so another process may take it first: a start whose process exits
// is tried again, three times in all.
func Start(spec Spec) (*Proc, error) {
	bin, err := FindBinary(spec.Bin, spec.EnvOverride)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p, err := start(spec, bin)
		if err == nil {
			return p, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("start %s: %w", bin, lastErr)
}

// Output is the tail of what the server printed, to explain a failed test.
func (p *Proc) Output() string { return p.out.String() }

// Stop ends the server: SIGTERM to its process group, SIGKILL after 5 s.
func (p *Proc) Stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// FindBinary honours the override variable, else walks up from the working
// directory (a test runs in its package directory) to the checkout holding
// rel.
func FindBinary(rel, override string) (string, error) {
	if override != "" {
		if p := os.Getenv(override); p != "" {
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("%s=%s: %w", override, p, err)
			}
			return p, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("%s not found in %s or any parent directory; run scripts/test-deps.sh", rel, wd)
		}
	}
}

func start(spec Spec, bin string) (*Proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	var args, env []string
	if spec.Args != nil {
		args = spec.Args(port)
	}
	if spec.Env != nil {
		env = spec.Env(port)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &tailBuffer{max: 32 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so stopping it (and any children it forks)
	// cannot signal the test binary; and it dies with the test binary,
	// should that be killed before its cleanups run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, exited: make(chan error, 1), out: out}
	go func() { p.exited <- cmd.Wait() }()
	if err := p.waitHealthy(spec); err != nil {
		p.Stop()
		return nil, fmt.Errorf("%w; output:\n%s", err, out.String())
	}
	return p, nil
}

func (p *Proc) waitHealthy(spec Spec) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Endpoint+spec.Health, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-p.exited:
			p.exited <- err // Stop waits on it too
			return fmt.Errorf("%s exited before answering: %v", spec.Name, err)
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer %s within 30s", spec.Name, spec.Health)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// FreeAddr returns a loopback host:port nothing listens on at the moment,
// for a test to hand a server it starts (which may, rarely, lose it to
// another process first).
func FreeAddr(t testing.TB) string {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(port)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Package devstack runs the whole product on one machine for development and
// single-host trials: it builds (or finds) the binaries, prepares a data
// directory on embedded defaults, and supervises each component as its own
// child process, restarting any that exits unexpectedly. It owns the API's
// listening socket, so it can swap api, worker and agent to another
// release's binaries while they run with no failed request (runtime.go),
// on request through its control socket (control.go).
package devstack

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Proc describes one supervised child process.
type Proc struct {
	Name string   // short label used as the log prefix, e.g. "api"
	Path string   // executable
	Args []string // arguments after the executable
	Env  []string // full environment
	Dir  string
	// ExtraFiles are inherited as descriptors 3, 4, ... (the API's
	// listening sockets).
	ExtraFiles []*os.File
	// Exited, when set, is told of each exit the supervisor did not ask for.
	Exited func(error)
}

// supervise runs p until ctx is done, restarting it with backoff whenever it
// exits on its own. On ctx cancellation it sends SIGTERM and, after grace,
// SIGKILL. Child output goes to out, each line prefixed with the name.
func supervise(ctx context.Context, p Proc, out *lockedWriter, log *slog.Logger, grace time.Duration, now func() time.Time) {
	backoff := time.Second
	for ctx.Err() == nil {
		started := now()
		err := runOnce(ctx, p, out, grace)
		if ctx.Err() != nil {
			return
		}
		if p.Exited != nil {
			p.Exited(err)
		}
		if now().Sub(started) > time.Minute {
			backoff = time.Second
		}
		log.Warn("component exited; restarting", "component", p.Name, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 15*time.Second)
	}
}

func runOnce(ctx context.Context, p Proc, out *lockedWriter, grace time.Duration) error {
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env, cmd.Dir, cmd.ExtraFiles = p.Env, p.Dir, p.ExtraFiles
	// Children die with the supervisor even if it is killed outright, so a
	// hard kill never leaves an orphan holding the port or the database.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	var wg sync.WaitGroup
	for _, r := range []io.Reader{stdout, stderr} {
		wg.Add(1)
		go func() { defer wg.Done(); out.copyLines(p.Name, r) }()
	}
	done := make(chan error, 1)
	go func() { wg.Wait(); done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			return err
		case <-time.After(grace):
			_ = cmd.Process.Kill()
			return <-done
		}
	}
}

// runToEnd runs p once to completion and returns its standard output; its
// standard error goes to out like a supervised child's.
func runToEnd(ctx context.Context, p Proc, out *lockedWriter) ([]byte, error) {
	cmd := exec.CommandContext(ctx, p.Path, p.Args...)
	cmd.Env, cmd.Dir = p.Env, p.Dir
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	done := make(chan struct{})
	go func() { out.copyLines(p.Name, pr); close(done) }()
	err := cmd.Run()
	pw.Close()
	<-done
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Name, err)
	}
	return stdout.Bytes(), nil
}

// lockedWriter serialises whole lines from several children.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) copyLines(name string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l.mu.Lock()
		fmt.Fprintf(l.w, "%-7s %s\n", name, sc.Bytes())
		l.mu.Unlock()
	}
}

func (l *lockedWriter) printf(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, a...)
}

// Package fauxqstest runs the fauxqs S3- and SQS-compatible server for
// tests, so blob and queue code is exercised through the real AWS SDK against
// a real server instead of hand-written imitations of S3 and SQS.
//
// fauxqs is an npm package pinned in tools/package.json and installed by
// scripts/test-deps.sh. A missing binary fails the test: a suite that skips
// when its dependency is absent passes while testing nothing.
package fauxqstest

import (
	"bytes"
	"context"
	"errors"
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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// binRel is where scripts/test-deps.sh installs fauxqs, relative to the
// repository root.
var binRel = filepath.Join("tools", "node_modules", ".bin", "fauxqs")

// Region is the region the returned AWS config names; fauxqs scopes queues by
// the region in the request signature, so every client must agree on it.
const Region = "us-east-1"

// Server is a running fauxqs process owned by one test.
type Server struct {
	endpoint string
}

// Start launches fauxqs on a free loopback port, waits until it answers its
// health check, and stops it when t finishes. The environment variable
// TETHER_FAUXQS overrides the binary's path.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := findBinary()
	if err != nil {
		t.Fatalf("fauxqstest: %v; run scripts/test-deps.sh", err)
	}
	// The port is chosen by listening on :0 and closing; another process may
	// take it before fauxqs binds, so a start whose process exits is retried.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := start(t, bin)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("fauxqstest: start %s: %v", bin, lastErr)
	return nil
}

// Endpoint is the server's base URL, e.g. "http://127.0.0.1:41234".
func (s *Server) Endpoint() string { return s.endpoint }

// AWSConfig returns a config with static test credentials (fauxqs accepts any),
// region us-east-1 and BaseEndpoint pointing at the server.
func (s *Server) AWSConfig() aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(s.endpoint),
	}
}

// S3 returns an S3 client for the server. fauxqs needs path-style requests
// (bucket in the path, not the host name) when reached by IP address.
func (s *Server) S3() *s3.Client {
	return s3.NewFromConfig(s.AWSConfig(), func(o *s3.Options) { o.UsePathStyle = true })
}

// SQS returns an SQS client for the server.
func (s *Server) SQS() *sqs.Client {
	return sqs.NewFromConfig(s.AWSConfig())
}

// findBinary honours TETHER_FAUXQS, else walks up from the working directory
// (a test runs in its package directory) to the checkout holding tools/.
func findBinary() (string, error) {
	if p := os.Getenv("TETHER_FAUXQS"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("TETHER_FAUXQS=%s: %w", p, err)
		}
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find fauxqs: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, binRel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("fauxqs not found at %s in %s or any parent directory", binRel, wd)
		}
	}
}

func start(t testing.TB, bin string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"FAUXQS_PORT="+strconv.Itoa(port),
		"FAUXQS_DEFAULT_REGION="+Region,
		"FAUXQS_LOGGER=false",
	)
	// The CLI logs every request; keep the tail to explain a failed test.
	out := &tailBuffer{max: 32 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so stopping it cannot signal the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitHealthy(endpoint, exited); err != nil {
		stop()
		return nil, fmt.Errorf("%w; output:\n%s", err, out.String())
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("fauxqs output (tail):\n%s", out.String())
		}
	})
	return &Server{endpoint: endpoint}, nil
}

func waitHealthy(endpoint string, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/health", nil)
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
		case err := <-exited:
			return fmt.Errorf("fauxqs exited before answering: %v", err)
		case <-ctx.Done():
			return errors.New("fauxqs did not answer /health within 20s")
		case <-time.After(50 * time.Millisecond):
		}
	}
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

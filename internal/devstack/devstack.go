package devstack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Options are tetherctl dev's flags.
type Options struct {
	DataDir string // default ./.tether-dev
	APIAddr string // default 127.0.0.1:8080
}

// Run prepares the data directory, starts every component and supervises
// them until ctx is done (Ctrl-C), then stops them cleanly.
func Run(ctx context.Context, o Options, stdout io.Writer, log *slog.Logger) error {
	dataDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("dev: create data dir: %w", err)
	}
	if err := checkFree(o.APIAddr); err != nil {
		return err
	}
	out := &lockedWriter{w: stdout}

	bins, err := binaries(ctx, filepath.Join(dataDir, "bin"), []string{"docsvc"}, out)
	if err != nil {
		return err
	}
	env := append(os.Environ(),
		"DOCSVC_ADDR="+o.APIAddr,
		"DOCSVC_PUBLIC_URL=http://"+o.APIAddr,
		"DOCSVC_DATABASE_URL=sqlite://"+filepath.Join(dataDir, "docsvc.db"),
		"DOCSVC_BLOB_URL=file://"+filepath.Join(dataDir, "blobs"),
		"DOCSVC_QUEUE_URL=db://jobs",
		"DOCSVC_QUEUE_VISIBILITY=20s",
		"DOCSVC_AI_PROVIDER=local",
	)
	docsvc := func(name string, args ...string) Proc {
		return Proc{Name: name, Path: bins["docsvc"], Args: args, Env: env, Dir: dataDir}
	}

	out.printf("dev: data dir %s\n", dataDir)
	if _, err := runToEnd(ctx, docsvc("migrate", "migrate"), out); err != nil {
		return fmt.Errorf("dev: migrate: %w", err)
	}
	token, err := devToken(ctx, dataDir, docsvc("token", "token", "create", "--name", "tetherctl-dev"), out)
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	for _, p := range []Proc{docsvc("api", "api"), docsvc("worker", "worker")} {
		wg.Add(1)
		go func() { defer wg.Done(); supervise(ctx, p, out, log, 15*time.Second) }()
	}
	if err := waitHealthy(ctx, "http://"+o.APIAddr+"/healthz"); err == nil {
		out.printf(`
Tether is running on embedded defaults.
  Web page:    http://%[1]s/
  API:         http://%[1]s/v1/documents
  API token:   %[2]s   (also in %[3]s)
  Try:         curl -H "Authorization: Bearer $(cat %[3]s)" -F file=@README.md http://%[1]s/v1/documents
Press Ctrl-C to stop; run again with the same --data-dir to resume.

`, o.APIAddr, token, filepath.Join(dataDir, "dev-token"))
	}
	wg.Wait()
	out.printf("dev: stopped\n")
	return nil
}

// devToken reuses the token from an earlier run, or creates one.
func devToken(ctx context.Context, dataDir string, create Proc, out *lockedWriter) (string, error) {
	path := filepath.Join(dataDir, "dev-token")
	if b, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), nil
	}
	b, err := runToEnd(ctx, create, out)
	if err != nil {
		return "", fmt.Errorf("dev: create API token: %w", err)
	}
	token := strings.TrimSpace(string(b))
	// Write then rename, so a reader never sees a half-written token.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(token+"\n"), 0o600); err != nil {
		return "", err
	}
	return token, os.Rename(tmp, path)
}

func checkFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("dev: cannot listen on %s (%v); is another stack running? choose another with --api-addr", addr, err)
	}
	return l.Close()
}

func waitHealthy(ctx context.Context, url string) error {
	c := &http.Client{Timeout: 2 * time.Second}
	for ctx.Err() == nil {
		if res, err := c.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return ctx.Err()
}

// binaries returns the path of each named command. From a source checkout it
// builds them into binDir (fast after the first time: the Go build cache);
// otherwise it uses the ones installed beside tetherctl or on PATH.
func binaries(ctx context.Context, binDir string, names []string, out *lockedWriter) (map[string]string, error) {
	paths := map[string]string{}
	if root, ok := sourceRoot(); ok {
		out.printf("dev: building %s …\n", strings.Join(names, ", "))
		args := []string{"build", "-o", binDir + string(filepath.Separator)}
		for _, n := range names {
			args = append(args, "./cmd/"+n)
		}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("dev: build: %w\n%s", err, b)
		}
		for _, n := range names {
			paths[n] = filepath.Join(binDir, n)
		}
		return paths, nil
	}
	self, _ := os.Executable()
	for _, n := range names {
		if p := filepath.Join(filepath.Dir(self), n); isExec(p) {
			paths[n] = p
		} else if p, err := exec.LookPath(n); err == nil {
			paths[n] = p
		} else {
			return nil, fmt.Errorf("dev: cannot find the %s binary beside tetherctl or on PATH; install it, or run from a source checkout", n)
		}
	}
	return paths, nil
}

// sourceRoot finds the Tether source tree containing the working directory.
func sourceRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/tetherhq/tether\n")) {
			_, err := exec.LookPath("go")
			return dir, err == nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

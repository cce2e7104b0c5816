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

	"github.com/tetherhq/tether/internal/atomicfile"
)

// Options are tetherctl dev's flags.
type Options struct {
	DataDir         string // default ./.tether-dev
	APIAddr         string // default 127.0.0.1:8080
	PlaneAddr       string // default 127.0.0.1:8090
	AgentStatusAddr string // default 127.0.0.1:8091
	Heartbeat       time.Duration
	Telemetry       bool   // the customer's opt-in, passed to the agent
	AgentPlaneURL   string // where the agent reaches the plane; default the local plane (point it at a proxy to watch the traffic)
	// Stdin, when set, is read line by line: each Enter prints the banner
	// (URLs, token) again.
	Stdin io.Reader
	// Binaries, when set, names the docsvc, tether-agent and tether-plane
	// binaries to run instead of building them (tests run built releases).
	Binaries map[string]string
	// Now is the clock (the license's dates, backups' names, restart
	// backoff); default time.Now.
	Now func() time.Time
}

// Run prepares the data directory, starts every component and supervises
// them until ctx is done (Ctrl-C), then stops them cleanly.
//
// The layout of the data directory:
//
//	bin/            the binaries, built from this checkout
//	docsvc.db       the document service's SQLite database; blobs/ its documents
//	dev-token       the development API token
//	plane/          the local vendor plane: its database, keys/, release repo/
//	plane-admin-token  the plane's admin token (a copy, for scripts)
//	license.json    the development license the plane issued
//	agent/          the agent's identity, egress ledger, TUF metadata, diagnostics
//	supervisor.sock the supervisor's control socket (ControlSocket)
//	releases/       verified releases' binaries, their TUF metadata, the
//	                running release (RunningFile), upgrade history and outcome
//
// and beside it, DATA_DIR.backups/ (BackupsDir): the backups taken before
// each upgrade or rollback.
func Run(ctx context.Context, o Options, stdout io.Writer, log *slog.Logger) error {
	if o.Now == nil {
		o.Now = time.Now
	}
	dataDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("dev: create data dir: %w", err)
	}
	for _, a := range []struct{ flag, addr string }{{"--api-addr", o.APIAddr}, {"--plane-addr", o.PlaneAddr}, {"--agent-status-addr", o.AgentStatusAddr}} {
		if err := checkFree(a.addr, a.flag); err != nil {
			return err
		}
	}
	out := &lockedWriter{w: stdout}
	var ban banner
	again := "Press "
	if o.Stdin != nil {
		go ban.reprintOnEnter(o.Stdin, out)
		again = "Press Enter to show this again, "
	}
	bins := o.Binaries
	if bins == nil {
		if bins, err = binaries(ctx, filepath.Join(dataDir, "bin"), []string{"docsvc", "tether-plane", "tether-agent"}, out, o.Now); err != nil {
			return err
		}
	}
	out.printf("dev: data dir %s\n", dataDir)
	base := os.Environ()
	proc := func(bin, name string, env []string, args ...string) Proc {
		return Proc{Name: name, Path: bins[bin], Args: args, Env: append(base, env...), Dir: dataDir}
	}

	// The vendor side: keys, a development license, a published release, the plane.
	v, err := prepareVendor(ctx, dataDir, bins, out, o.Now())
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	start := func(p Proc) {
		wg.Add(1)
		go func() { defer wg.Done(); supervise(ctx, p, out, log, 15*time.Second, o.Now) }()
	}
	start(proc("tether-plane", "plane", nil, "serve", "--data-dir", v.planeDir, "--addr", o.PlaneAddr,
		"--keys", v.keysDir, "--repo", v.repoDir, "--heartbeat-interval", o.Heartbeat.String()))
	planeURL := "http://" + o.PlaneAddr
	if err := waitHealthy(ctx, planeURL+"/healthz"); err != nil {
		wg.Wait()
		return err
	}
	if err := registerLicense(ctx, dataDir, v, planeURL, proc, out); err != nil {
		return err
	}

	// The customer side: the document service and the agent.
	docsvcEnv := append(DocsvcStorageEnv(dataDir),
		"DOCSVC_ADDR="+o.APIAddr,
		"DOCSVC_PUBLIC_URL=http://"+o.APIAddr,
		"DOCSVC_QUEUE_VISIBILITY=20s",
		"DOCSVC_AI_PROVIDER=local",
		"DOCSVC_LICENSE_FILE="+v.licenseFile,
		"DOCSVC_LICENSE_PUBLIC_KEY_FILE="+filepath.Join(v.keysDir, "license.pub"), // the _FILE forms: a renewed file is picked up live
	)
	// What runs: the release an upgrade or rollback installed, else this
	// build.
	rel, installed, err := readRunning(dataDir)
	if err != nil {
		return err
	}
	if installed {
		out.printf("dev: running release %s, installed by tetherctl upgrade/rollback (%s); remove that file to run this build instead\n", rel.Version, filepath.Join(dataDir, RunningFile))
	} else {
		rel = Running{Docsvc: bins["docsvc"], Agent: bins["tether-agent"]}
		if rel.Version, err = binaryVersion(ctx, rel.Docsvc); err != nil {
			return err
		}
	}
	docsvc := func(name string, args ...string) Proc {
		p := proc("docsvc", name, docsvcEnv, args...)
		p.Path = rel.Docsvc
		return p
	}
	if _, err := runToEnd(ctx, docsvc("migrate", "migrate"), out); err != nil {
		return fmt.Errorf("dev: migrate: %w", err)
	}
	token, err := devToken(ctx, dataDir, docsvc("token", "tokens", "create", "--name", "tetherctl-dev"), out)
	if err != nil {
		return err
	}
	agentPlane := planeURL
	if o.AgentPlaneURL != "" {
		agentPlane = o.AgentPlaneURL
	}
	agentArgs := []string{"run", "--data-dir", filepath.Join(dataDir, "agent"), "--plane-url", agentPlane,
		"--license", v.licenseFile, "--license-public-key", filepath.Join(v.keysDir, "license.pub"),
		"--trusted-root", filepath.Join(v.keysDir, "root.json"), "--channel", "stable",
		"--docsvc-url", "http://" + o.APIAddr, "--status-addr", o.AgentStatusAddr, "--heartbeat", o.Heartbeat.String()}
	if o.Telemetry {
		agentArgs = append(agentArgs, "--telemetry")
	}
	// The supervisor owns the API's socket and swaps the processes behind
	// it on request (control socket; tetherctl upgrade --local).
	st, err := newStack(ctx, dataDir, o.APIAddr, out, log, o.Now)
	if err != nil {
		return err
	}
	st.docsvcEnv = append(append([]string(nil), base...), docsvcEnv...)
	st.agentEnv, st.agentArgs = base, agentArgs
	if err := st.run(rel); err != nil {
		return err
	}
	wg.Add(1)
	go func() { defer wg.Done(); st.wait() }()
	if err := st.serveControl(); err != nil {
		return err
	}

	if err := waitHealthy(ctx, "http://"+o.APIAddr+"/healthz"); err == nil {
		ban.set(fmt.Sprintf(`
Tether is running on embedded defaults.
  Web page:        http://%[1]s/
  API:             http://%[1]s/v1/documents
  API token:       %[2]s   (also in %[3]s)
  Vendor plane:    http://%[4]s/   (admin token in %[5]s)
  Agent status:    http://%[6]s/
  What left:       go run ./cmd/tetherctl egress show --data-dir %[7]s
  Try:             curl -H "Authorization: Bearer $(cat %[3]s)" -F file=@README.md http://%[1]s/v1/documents
%[8]sCtrl-C to stop; run again with the same --data-dir to resume.

`, o.APIAddr, token, filepath.Join(dataDir, "dev-token"), o.PlaneAddr, filepath.Join(dataDir, "plane-admin-token"),
			o.AgentStatusAddr, dataDir, again))
		ban.reprint(out)
	}
	wg.Wait()
	out.printf("dev: stopped\n")
	return nil
}

// binaryVersion asks a docsvc binary which release it belongs to.
func binaryVersion(ctx context.Context, docsvc string) (string, error) {
	b, err := exec.CommandContext(ctx, docsvc, "version").Output()
	if err != nil {
		return "", fmt.Errorf("dev: %s version: %w", docsvc, err)
	}
	return strings.TrimSpace(string(b)), nil
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
	return token, atomicfile.Write(path, []byte(token+"\n"), 0o600)
}

func checkFree(addr, flag string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("dev: cannot listen on %s (%v); is another stack running? choose another with %s", addr, err, flag)
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
func binaries(ctx context.Context, binDir string, names []string, out *lockedWriter, now func() time.Time) (map[string]string, error) {
	paths := map[string]string{}
	if root, ok := sourceRoot(); ok {
		what := strings.Join(names, ", ")
		var pkgs []string
		for _, n := range names {
			pkgs = append(pkgs, "./cmd/"+n)
		}
		start := now()
		out.printf("dev: building %s from this checkout (the first build takes minutes; later ones use Go's build cache) …\n", what)
		cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-v", "-o", binDir + string(filepath.Separator)}, pkgs...)...)
		cmd.Dir = root
		pr, pw := io.Pipe()
		cmd.Stdout, cmd.Stderr = pw, pw
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("dev: build: %w", err)
		}
		type result struct {
			compiled int
			other    []string
		}
		done := make(chan result, 1)
		go func() {
			n, other := buildProgress(pr, countDeps(ctx, root, pkgs), what, out, now, 3*time.Second)
			done <- result{n, other}
		}()
		err := cmd.Wait()
		pw.Close()
		res := <-done
		if err != nil {
			return nil, fmt.Errorf("dev: build: %w\n%s", err, strings.Join(res.other, "\n"))
		}
		if res.compiled > 0 {
			out.printf("dev: built %s in %s (%d packages compiled)\n", what, now().Sub(start).Round(time.Second), res.compiled)
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

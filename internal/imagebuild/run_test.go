package imagebuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The images run under the ECS tasks' contract (deploy/cdk/stacks/tasks.go):
// the image's own user, a read-only root file system, /tmp the only
// writable path, and here no network but loopback. The runtime is Debian's
// podman with runc (scripts/test-deps.sh installs both), with its storage in
// the test's own directory.
//
// Why runc and not crun, and the --ulimit flags: on a host whose cgroup v2
// hierarchy is mounted beside v1 with a controller in it (hybrid mode),
// crun 1.8 refuses every container ("cgroups in hybrid mode not supported,
// drop all controllers from cgroupv2"); runc runs them. And where root lacks
// CAP_SYS_RESOURCE (as in this project's sandboxes), podman's default
// rlimits (nofile 1048576, nproc 4194304) cannot be set ("setrlimit
// RLIMIT_NOFILE: Operation not permitted"), so the limits are given, at
// most the test's own.

// podman runs the podman binary against the test's storage.
type podman struct {
	t    *testing.T
	args []string // global flags
	run  []string // the contract's run flags
}

// runtimeRefusal matches what podman says when the machine, not the image,
// stops a container: cgroups, namespaces, rlimits, seccomp.
var runtimeRefusal = regexp.MustCompile(`(?i)cgroup|namespace|rlimit|seccomp|not compatible with`)

func newPodman(t *testing.T) *podman {
	t.Helper()
	for _, bin := range []string{"podman", "runc", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (scripts/test-deps.sh installs podman and runc): %v", bin, err)
		}
	}
	dir := t.TempDir()
	p := &podman{t: t, args: []string{
		"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"), "--tmpdir", filepath.Join(dir, "tmp"),
		"--storage-driver", "vfs", "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
	}}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	nofile := min(lim.Max, 65536)
	p.run = []string{
		"--rm", "--read-only", "--network", "none",
		"--cap-drop", "all", "--security-opt", "no-new-privileges",
		"--ulimit", fmt.Sprintf("nofile=%d:%d", nofile, nofile), "--ulimit", "nproc=4096:4096",
	}
	t.Cleanup(func() {
		// Containers first: the storage is removed with the test's directory.
		if out, err := p.cmd("rm", "--all", "--force").CombinedOutput(); err != nil {
			t.Logf("podman rm: %v\n%s", err, out)
		}
	})
	return p
}

func (p *podman) cmd(args ...string) *exec.Cmd {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // bounds a hang only
	p.t.Cleanup(cancel)
	return exec.CommandContext(ctx, "podman", append(append([]string{}, p.args...), args...)...)
}

// result is one podman command's outcome.
type result struct {
	code           int
	stdout, stderr string
}

func (p *podman) exec(args ...string) result {
	p.t.Helper()
	c := p.cmd(args...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		p.t.Fatalf("podman %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// pull loads name from the OCI layout at dir, checks podman holds the
// digest that was built, and returns its image ID.
func (p *podman) pull(dir, name, digest string) string {
	p.t.Helper()
	r := p.exec("pull", "--quiet", "oci:"+dir+":"+name)
	if r.code != 0 {
		p.t.Fatalf("podman pull oci:%s:%s: exit %d\n%s", dir, name, r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	if got := p.exec("image", "inspect", "--format", "{{.Digest}}", id); strings.TrimSpace(got.stdout) != digest {
		p.t.Fatalf("podman holds %s as %q, built %s", name, got.stdout, digest)
	}
	return id
}

// runImage runs the image under the contract with args after the image;
// /tmp is an empty tmpfs unless extra mounts a volume there.
func (p *podman) runImage(extra []string, id string, args ...string) result {
	p.t.Helper()
	if !slices.ContainsFunc(extra, func(a string) bool { return strings.HasSuffix(a, ":/tmp") }) {
		extra = append([]string{"--tmpfs", "/tmp:rw,mode=1777"}, extra...)
	}
	a := append(append(append([]string{"run"}, p.run...), extra...), id)
	return p.exec(append(a, args...)...)
}

// TestRun builds the three images, loads them into podman from their OCI
// layout and runs each under the contract.
func TestRun(t *testing.T) {
	p := newPodman(t)
	// podman names an image pulled from oci:<dir> after dir, and refuses an
	// upper-case name: t.TempDir's has the test's name in it.
	dir, err := os.MkdirTemp("", "imagebuild-layout-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var named []Named
	for _, s := range Specs {
		named = append(named, Named{Name: s.Name, Image: assemble(t, s, testCreated)})
	}
	if err := WriteLayout(dir, named); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, n := range named {
		d, err := n.Image.Digest()
		if err != nil {
			t.Fatal(err)
		}
		ids[n.Name] = p.pull(dir, n.Name, d.String())
	}
	// Can this machine run a container at all? Skip only when the runtime
	// refuses for the machine's sake; any other failure is the image's.
	if r := p.runImage(nil, ids["plane"], "--help"); r.code != 0 && runtimeRefusal.MatchString(r.stderr) {
		t.Skipf("podman cannot run containers on this machine: %s", strings.TrimSpace(r.stderr))
	}

	for _, tc := range []struct {
		image, want string
		args        []string
	}{
		{"docsvc", "docsvc — the document service", []string{"--help"}},
		{"agent", "tether-agent — the customer-side", []string{"--help"}},
		{"plane", "tether-plane: the vendor's coordination plane", []string{"--help"}},
		// -ldflags -X put the release version in the binaries that report one.
		{"docsvc", testVersion + "\n", []string{"version"}},
		{"agent", testVersion + "\n", []string{"version"}},
	} {
		r := p.runImage(nil, ids[tc.image], tc.args...)
		if r.code != 0 || !strings.Contains(r.stdout, tc.want) {
			t.Errorf("%s %v: exit %d, stdout %q, stderr %q; want exit 0 and %q", tc.image, tc.args, r.code, r.stdout, r.stderr, tc.want)
		}
	}
	// The second entry points, as their scheduled tasks run them.
	for _, s := range Specs {
		for _, a := range s.Also {
			r := p.runImage([]string{"--entrypoint", "/" + a}, ids[s.Name], "--help")
			if r.code != 0 || !strings.Contains(r.stdout, "usage: "+a) {
				t.Errorf("%s: /%s --help: exit %d, stdout %q, stderr %q; want exit 0 and its usage", s.Name, a, r.code, r.stdout, r.stderr)
			}
		}
	}

	for _, s := range Specs {
		r := p.runImage([]string{"--entrypoint", "/bin/sh"}, ids[s.Name], "-c", "true")
		if r.code != 127 || !strings.Contains(r.stderr, "no such file or directory") {
			t.Errorf("%s: /bin/sh -c true: exit %d, stderr %q; want 127, no such file (no shell in the image)", s.Name, r.code, r.stderr)
		}
	}

	t.Run("docsvc-api", func(t *testing.T) { testDocsvcAPI(t, p, ids["docsvc"]) })
}

// testDocsvcAPI migrates an SQLite database under /tmp, starts the api on
// embedded defaults (file blobs under /tmp, the local analyzer) and asks
// it for /healthz from inside its network namespace, which has loopback
// only. The /tmp volume is shared by the two runs, as an ECS task's is by
// its containers.
func testDocsvcAPI(t *testing.T, p *podman, id string) {
	vol := filepath.Join(t.TempDir(), "tmp")
	if err := os.Mkdir(vol, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(vol, 0o1777); err != nil { // the image's /tmp, as ECS seeds the volume
		t.Fatal(err)
	}
	env := func(dbPath string) []string {
		return []string{"-v", vol + ":/tmp", "-e", "DOCSVC_DATABASE_URL=sqlite://" + dbPath,
			"-e", "DOCSVC_BLOB_URL=file:///tmp/blobs", "-e", "DOCSVC_QUEUE_URL=db://jobs"}
	}

	// The home directory belongs to 65532 in the image: only the read-only
	// root file system keeps the database out of it.
	if r := p.runImage(env("/home/nonroot/docsvc.sqlite"), id, "migrate"); r.code == 0 || !strings.Contains(r.stderr, "unable to open database file") {
		t.Errorf("migrate with the database in /home/nonroot: exit %d, stderr %q; want a failure to open it (read-only root)", r.code, r.stderr)
	}
	if r := p.runImage(env("/tmp/docsvc.sqlite"), id, "migrate"); r.code != 0 {
		t.Fatalf("migrate: exit %d\n%s", r.code, r.stderr)
	}
	st, err := os.Stat(filepath.Join(vol, "docsvc.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	if uid := st.Sys().(*syscall.Stat_t).Uid; uid != UID {
		t.Errorf("the database file belongs to uid %d, want %d (the image's user)", uid, UID)
	}

	run := append([]string{"--detach", "--name", "docsvc-api"}, env("/tmp/docsvc.sqlite")...)
	r := p.runImage(run, id, "api")
	if r.code != 0 {
		t.Fatalf("api: exit %d\n%s", r.code, r.stderr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("api log:\n%s", p.exec("logs", "docsvc-api").stderr)
		}
	})
	pid := strings.TrimSpace(p.exec("inspect", "--format", "{{.State.Pid}}", "docsvc-api").stdout)
	if n, err := strconv.Atoi(pid); err != nil || n <= 0 {
		t.Fatalf("the api container's pid %q: not running", pid)
	}
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^Uid:\t65532\t65532\t65532\t65532$`).Match(status) {
		t.Errorf("the api runs as %q, want uid 65532 throughout", regexp.MustCompile(`(?m)^Uid:.*$`).Find(status))
	}

	probe := exec.Command("nsenter", "--net=/proc/"+pid+"/ns/net", os.Args[0])
	probe.Env = append(os.Environ(), probeEnv+"=http://127.0.0.1:8080/healthz")
	out, err := probe.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "200 ") || !strings.Contains(string(out), `"status":"ok"`) {
		t.Fatalf("GET /healthz in the container's network namespace: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(vol, "blobs")); err != nil {
		t.Errorf("the api made no blob directory under /tmp: %v", err)
	}
}

// probeEnv makes the test binary (under nsenter) GET a URL and exit: see
// TestMain.
const probeEnv = "IMAGEBUILD_TEST_PROBE_URL"

// probeMain GETs url, retrying while nothing listens yet, prints the status
// and body, and exits 0 if it got an answer. The minute bounds a hang only.
func probeMain(url string) {
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			fmt.Printf("%s\n%s\n", resp.Status, body)
			os.Exit(0)
		}
		if time.Now().After(deadline) {
			fmt.Println(err)
			os.Exit(1)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// There is no Docker engine where these tests run, so the Dockerfiles the
// in-account image build uses are checked piece by piece: the package each
// one builds exists and builds with the Dockerfile's own flags, the source
// it copies is enough, and the final image runs that binary as nonroot.

// repoRoot is the product module, two levels up from this module.
const repoRoot = "../.."

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper-cased: FROM, RUN, COPY, ...
	args string
}

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("%s: ends inside a continued line", path)
	}
	return out
}

// dockerfile is what the checks need from one Dockerfile.
type dockerfile struct {
	pkg, bin   string   // ./cmd/x and x, from the first go build line: the entry point
	also       []string // the binaries of further go build lines, the other entry points
	buildEnv   string   // the variables set before go build
	buildFlags []string // the go build flags
	copied     []string // source directories copied into the build stage
	final      []instruction
}

var goBuild = regexp.MustCompile(`^(?:((?:[A-Z_]+=\S+ )*))go build (.*)-o /out/([a-z-]+) (\./cmd/[a-z-]+)$`)

func readDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	var d dockerfile
	stages := 0
	for _, in := range parseDockerfile(t, path) {
		if in.cmd == "FROM" {
			stages++
			continue
		}
		if stages == 2 {
			d.final = append(d.final, in)
			continue
		}
		switch in.cmd {
		case "COPY":
			d.copied = append(d.copied, strings.Fields(in.args)...)
		case "RUN":
			m := goBuild.FindStringSubmatch(in.args)
			switch {
			case m == nil:
			case d.pkg != "":
				if m[4] != "./cmd/"+m[3] || strings.TrimSpace(m[1]) != d.buildEnv || !slices.Equal(strings.Fields(m[2]), d.buildFlags) {
					t.Errorf("%s: %q is not built as %s is", path, in.args, d.bin)
				}
				d.also = append(d.also, m[3])
			default:
				d.buildEnv, d.buildFlags, d.bin, d.pkg = strings.TrimSpace(m[1]), strings.Fields(m[2]), m[3], m[4]
			}
		}
	}
	if stages != 2 {
		t.Fatalf("%s: want a build stage and a final stage, got %d stages", path, stages)
	}
	if d.pkg == "" {
		t.Fatalf("%s: no `go build ... -o /out/<bin> ./cmd/<bin>` line", path)
	}
	return d
}

func TestDockerfiles(t *testing.T) {
	// The image build names the docsvc and agent Dockerfiles; plane is built
	// by the vendor from the same layout.
	images, err := os.ReadFile(filepath.Join("stacks", "images.go"))
	if err != nil {
		t.Fatal(err)
	}
	var named []string
	for _, m := range regexp.MustCompile(`-f (build/[a-z]+\.Dockerfile)`).FindAllStringSubmatch(string(images), -1) {
		named = append(named, m[1])
	}
	if !slices.Equal(named, []string{"build/docsvc.Dockerfile", "build/agent.Dockerfile"}) {
		t.Fatalf("images.go builds %v; update this test with it", named)
	}
	want := map[string][]string{ // Dockerfile -> the binaries it must build, the entry point first
		"build/docsvc.Dockerfile": {"docsvc"},
		"build/agent.Dockerfile":  {"tether-agent", "tether-upgrade", "tether-exchange"}, // the upgrade and exchange tasks'
		"build/plane.Dockerfile":  {"tether-plane"},
	}
	for file, bins := range want {
		t.Run(filepath.Base(file), func(t *testing.T) {
			d := readDockerfile(t, filepath.Join(repoRoot, file))
			if got := append([]string{d.bin}, d.also...); !slices.Equal(got, bins) || d.pkg != "./cmd/"+d.bin {
				t.Fatalf("builds %v (entry point %s), want %v", got, d.pkg, bins)
			}
			for _, bin := range bins {
				if st, err := os.Stat(filepath.Join(repoRoot, "cmd", bin)); err != nil || !st.IsDir() {
					t.Fatalf("package ./cmd/%s does not exist: %v", bin, err)
				}
			}
			if d.buildEnv != "CGO_ENABLED=0" || !slices.Equal(d.buildFlags, []string{"-trimpath", "-ldflags=-s"}) {
				t.Errorf("go build runs with env %q flags %v, want CGO_ENABLED=0 and -trimpath -ldflags=-s", d.buildEnv, d.buildFlags)
			}
			checkFinalStage(t, d)
			checkContextSuffices(t, d)
			if testing.Short() {
				t.Skip("-short: not building the binary")
			}
			// The same builds the Dockerfile runs, from the repository root.
			for _, bin := range bins {
				out := filepath.Join(t.TempDir(), bin)
				cmd := exec.Command("go", append(append([]string{"build"}, d.buildFlags...), "-o", out, "./cmd/"+bin)...)
				cmd.Dir = repoRoot
				cmd.Env = append(os.Environ(), d.buildEnv)
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
				}
				if st, err := os.Stat(out); err != nil || st.Size() == 0 {
					t.Fatalf("no binary built: %v", err)
				}
			}
		})
	}
}

// checkFinalStage: each binary is copied to /<bin>, the image runs as
// nonroot, and ENTRYPOINT is exactly that binary (the task gives the
// subcommand).
func checkFinalStage(t *testing.T, d dockerfile) {
	t.Helper()
	var copied []string
	var user, entry string
	for _, in := range d.final {
		switch in.cmd {
		case "COPY":
			copied = append(copied, in.args)
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = in.args
		}
	}
	var want []string
	for _, b := range append([]string{d.bin}, d.also...) {
		want = append(want, "--from=build /out/"+b+" /"+b)
	}
	if !slices.Equal(copied, want) {
		t.Errorf("final stage copies %q, want %q", copied, want)
	}
	if user != "nonroot" {
		t.Errorf("USER = %q, want nonroot", user)
	}
	var argv []string
	if err := json.Unmarshal([]byte(entry), &argv); err != nil || !slices.Equal(argv, []string{"/" + d.bin}) {
		t.Errorf("ENTRYPOINT %s, want [\"/%s\"] (exec form, no shell)", entry, d.bin)
	}
}

// checkContextSuffices: every package of this module the binary imports is
// under a directory the build stage copies, so the image build cannot fail
// on a missing source file that a local build finds.
func checkContextSuffices(t *testing.T, d dockerfile) {
	t.Helper()
	pkgs := []string{d.pkg}
	for _, b := range d.also {
		pkgs = append(pkgs, "./cmd/"+b)
	}
	cmd := exec.Command("go", append([]string{"list", "-deps", "-f", `{{if .Module}}{{if eq .Module.Path "github.com/tetherhq/tether"}}{{.ImportPath}}{{end}}{{end}}`}, pkgs...)...)
	cmd.Dir = repoRoot
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v", d.pkg, err)
	}
	var dirs []string
	for _, c := range d.copied {
		if strings.HasSuffix(c, "/") && !strings.HasPrefix(c, "--") {
			dirs = append(dirs, c)
		}
	}
	for _, imp := range strings.Fields(string(b)) {
		rel := strings.TrimPrefix(imp, "github.com/tetherhq/tether/") + "/"
		if !slices.ContainsFunc(dirs, func(d string) bool { return strings.HasPrefix(rel, d) }) {
			t.Errorf("%s needs %s, which the Dockerfile does not copy (copies %v)", d.pkg, rel, dirs)
		}
	}
	if !slices.Contains(d.copied, "go.mod") || !slices.Contains(d.copied, "go.sum") {
		t.Errorf("the build stage does not copy go.mod and go.sum: %v", d.copied)
	}
}

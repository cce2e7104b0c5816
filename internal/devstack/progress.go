package devstack

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// buildProgress reads `go build -v` output (one package path per line, for
// each package compiled rather than taken from the build cache) and prints
// how far along the build is, at most every interval, so a first build from
// a clean clone (minutes) is never silence. total is the number of packages
// the build could compile (`go list -deps`); 0 if unknown. Lines that are not
// package paths (compiler errors) are kept and returned for the error.
func buildProgress(r io.Reader, total int, what string, out *lockedWriter, now func() time.Time, interval time.Duration) (compiled int, other []string) {
	start := now()
	last := start
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !isPackageLine(line) {
			other = append(other, line)
			continue
		}
		compiled++
		if t := now(); t.Sub(last) >= interval {
			last = t
			out.printf("dev: building %s: %s (%s)\n", what, progressCount(compiled, total), t.Sub(start).Round(time.Second))
		}
	}
	return compiled, other
}

func progressCount(n, total int) string {
	if total > 0 {
		return fmt.Sprintf("%d of at most %d packages compiled", n, total)
	}
	return fmt.Sprintf("%d packages compiled", n)
}

// isPackageLine reports whether a `go build -v` line names a package (an
// import path) rather than being compiler output.
func isPackageLine(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t:") && !strings.HasPrefix(s, "#")
}

// countDeps is how many packages the named commands depend on, themselves
// included: the most a build of them can compile.
func countDeps(ctx context.Context, root string, pkgs []string) int {
	cmd := exec.CommandContext(ctx, "go", append([]string{"list", "-deps"}, pkgs...)...)
	cmd.Dir = root
	b, err := cmd.Output()
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}

// banner is what tetherctl dev prints once the stack is up, and again each
// time the operator presses Enter: the components' logs scroll it away.
type banner struct {
	mu   sync.Mutex
	text string
}

func (b *banner) set(text string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.text = text
}

// reprint prints the banner now.
func (b *banner) reprint(out *lockedWriter) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out.printf("%s", b.text)
}

// reprintOnEnter prints the banner (once set) for every line read from in,
// until in ends.
func (b *banner) reprintOnEnter(in io.Reader, out *lockedWriter) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		b.mu.Lock()
		text := b.text
		b.mu.Unlock()
		if text == "" {
			out.printf("dev: still starting; the URLs and token are printed when the API is up\n")
			continue
		}
		out.printf("%s", text)
	}
}

package doccheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tetherhq/tether/internal/agent"
	"github.com/tetherhq/tether/internal/ctl"
	"github.com/tetherhq/tether/internal/docsvc"
	"github.com/tetherhq/tether/internal/exchange"
	"github.com/tetherhq/tether/internal/plane/planecmd"
	"github.com/tetherhq/tether/internal/upgrader"
)

// programs runs each shipped command in-process, as its main does, and
// returns what it printed. Only --help is ever passed, which touches
// nothing.
var programs = map[string]func(ctx context.Context, args []string, out *bytes.Buffer) error{
	"tetherctl": func(ctx context.Context, args []string, out *bytes.Buffer) error {
		return ctl.RunEnv(ctx, args, ctl.Env{Stdin: strings.NewReader(""), Stdout: out, Stderr: out, Getenv: noEnv})
	},
	"docsvc": func(ctx context.Context, args []string, out *bytes.Buffer) error {
		return docsvc.Run(ctx, args, noEnv, out, out)
	},
	"tether-plane": func(ctx context.Context, args []string, out *bytes.Buffer) error {
		return planecmd.Run(ctx, args, planecmd.Env{Stdout: out, Stderr: out, Getenv: noEnv})
	},
	"tether-agent": func(ctx context.Context, args []string, out *bytes.Buffer) error {
		return agent.Main(ctx, args, noEnv, out, out)
	},
	"tether-upgrade": func(ctx context.Context, args []string, out *bytes.Buffer) error {
		return upgrader.Main(ctx, args, noEnv, out, out, helpOnly)
	},
	"tether-exchange": func(ctx context.Context, args []string, out *bytes.Buffer) error {
		return exchange.Main(ctx, args, noEnv, out, out, helpOnly, time.Now)
	},
}

func noEnv(string) string { return "" }

func helpOnly(context.Context) (aws.Config, error) {
	return aws.Config{}, errors.New("doccheck runs --help only")
}

// helpCache holds each command path's --help, run once.
type helpCache struct {
	mu   sync.Mutex
	runs map[string]helpRun
}

type helpRun struct {
	text string
	err  error
}

func (c *helpCache) help(ctx context.Context, bin string, path []string) (string, error) {
	key := bin + " " + strings.Join(path, " ")
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.runs[key]; ok {
		return r.text, r.err
	}
	var out bytes.Buffer
	err := programs[bin](ctx, append(slices.Clone(path), "--help"), &out)
	c.runs[key] = helpRun{out.String(), err}
	return out.String(), err
}

// shownCommand is a command of one of the programs as a document shows it.
type shownCommand struct {
	where string // file:line
	bin   string
	// paths are the command paths shown: one, or one per alternative
	// ("egress show|verify").
	paths [][]string
	flags []string // without dashes or values
	text  string
}

var (
	bareWordRE = regexp.MustCompile(`^[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)*$`)
	assignRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
	flagRE     = regexp.MustCompile(`^-{1,2}([a-z][a-z0-9-]*)`)
)

// programCommands finds the commands of the shipped programs in one command
// line or code span. A line that names a program but does not go on like a
// command (output such as "tetherctl deploy: step 3/9") is not one.
func programCommands(where, text string) []shownCommand {
	ws := words(text)
	var out []shownCommand
	for start := 0; start < len(ws); {
		end := start
		for end < len(ws) && !isOperator(ws[end]) {
			end++
		}
		if c, ok := programCommand(where, ws[start:end]); ok {
			c.text = text
			out = append(out, c)
		}
		start = end + 1
	}
	return out
}

func programCommand(where string, ws []string) (shownCommand, bool) {
	for len(ws) > 0 && assignRE.MatchString(ws[0]) {
		ws = ws[1:]
	}
	if len(ws) >= 3 && ws[0] == "go" && ws[1] == "run" && strings.HasPrefix(ws[2], "./cmd/") {
		ws = append([]string{path.Base(ws[2])}, ws[3:]...)
	}
	if len(ws) == 0 {
		return shownCommand{}, false
	}
	bin := path.Base(ws[0])
	if _, ok := programs[bin]; !ok || (bin != ws[0] && !strings.HasPrefix(ws[0], "./") && !strings.HasPrefix(ws[0], "/")) {
		return shownCommand{}, false
	}
	args := ws[1:]
	if len(args) > 0 && !bareWordRE.MatchString(args[0]) && !strings.HasPrefix(args[0], "-") && !strings.HasPrefix(args[0], "[") {
		return shownCommand{}, false
	}
	c := shownCommand{where: where, bin: bin}
	// The command path: up to two words before the first flag or
	// placeholder, each possibly a list of alternatives.
	var levels [][]string
	for _, a := range args {
		if len(levels) == 2 || !bareWordRE.MatchString(a) {
			break
		}
		levels = append(levels, strings.Split(a, "|"))
	}
	c.paths = [][]string{nil}
	for _, alts := range levels {
		var next [][]string
		for _, p := range c.paths {
			for _, a := range alts {
				next = append(next, append(slices.Clone(p), a))
			}
		}
		c.paths = next
	}
	for _, a := range args {
		a = strings.TrimLeft(a, "[(")
		if m := flagRE.FindStringSubmatch(a); m != nil && m[1] != "h" && m[1] != "help" {
			c.flags = append(c.flags, m[1])
		}
	}
	return c, true
}

// names are the words a program's usage starts its lines with: its
// commands, and some words of its prose.
func names(ctx context.Context, cache *helpCache, bin string) map[string]bool {
	help, _ := cache.help(ctx, bin, nil)
	re := regexp.MustCompile(`(?m)^\s*(?:usage:\s*)?(?:` + regexp.QuoteMeta(bin) + `\s+)?([a-z][a-z0-9-]*)\b`)
	out := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(help, -1) {
		out[m[1]] = true
	}
	return out
}

// listsFlag reports whether a command's help lists the flag: on a line of
// its own (a flag listing, Go's or tetherctl's) or in a usage line.
func listsFlag(help, bin, flag string) bool {
	listed := regexp.MustCompile(`(?m)^\s*-{1,2}` + regexp.QuoteMeta(flag) + `(\s|=|$)`)
	if listed.MatchString(help) {
		return true
	}
	inText := regexp.MustCompile(`-{1,2}` + regexp.QuoteMeta(flag) + `([^a-z0-9-]|$)`)
	for _, l := range strings.Split(help, "\n") {
		l = strings.TrimSpace(l)
		l = strings.TrimPrefix(strings.TrimPrefix(l, "usage: "), "Usage: ")
		if strings.HasPrefix(l, bin+" ") && inText.MatchString(l) {
			return true
		}
	}
	return false
}

// Every command of tetherctl, tether-plane, docsvc and tether-agent that a
// document shows, in a code block or an inline code span, exists: each
// command path answers --help, and each flag shown is one that help lists.
func TestShownCommandsExist(t *testing.T) {
	ctx := t.Context()
	cache := &helpCache{runs: map[string]helpRun{}}
	checked := map[string]int{}
	for _, d := range documents(t) {
		blocks, prose := split(d.text)
		var shown []shownCommand
		for _, b := range blocks {
			for _, c := range commands(b) {
				shown = append(shown, programCommands(fmt.Sprintf("%s:%d", d.path, c.line), c.text)...)
			}
		}
		for _, s := range spans(prose) {
			for _, c := range programCommands(fmt.Sprintf("%s:%d", d.path, s.line), s.text) {
				// Prose quotes log lines and messages too ("docsvc not
				// ready yet"): a span is a command when it shows a flag
				// or starts with a command the program's usage names.
				if len(c.flags) > 0 || len(c.paths[0]) == 0 || names(ctx, cache, c.bin)[c.paths[0][0]] {
					shown = append(shown, c)
				}
			}
		}
		for _, c := range shown {
			checked[c.bin]++
			for _, p := range c.paths {
				name := strings.Join(append([]string{c.bin}, p...), " ")
				help, err := cache.help(ctx, c.bin, p)
				if err != nil {
					t.Errorf("%s: %q: %s is not a command: %s --help fails: %v", c.where, c.text, name, name, err)
					continue
				}
				for _, f := range c.flags {
					if !listsFlag(help, c.bin, f) {
						t.Errorf("%s: %q: %s has no flag --%s (its --help does not list it)", c.where, c.text, name, f)
					}
				}
			}
		}
	}
	// The check must have seen the documents' commands at all.
	for bin := range programs {
		if checked[bin] == 0 {
			t.Errorf("no document shows a %s command: the parser missed them", bin)
		}
	}
	t.Logf("commands checked: %v", checked)
}

// The parser finds what the documents write, and refuses what is not a
// command; the check fails on a missing command or flag.
func TestShownCommandParsing(t *testing.T) {
	for _, tc := range []struct {
		text  string
		paths [][]string
		flags []string
	}{
		{"go run ./cmd/tetherctl egress show|verify --config deployment.yaml", [][]string{{"egress", "show"}, {"egress", "verify"}}, []string{"config"}},
		{"tetherctl secrets set license --from-file license.json", [][]string{{"secrets", "set"}}, []string{"from-file"}},
		{"tether-agent run --data-dir /x [--telemetry] [--status-addr 127.0.0.1:8091]", [][]string{{"run"}}, []string{"data-dir", "telemetry", "status-addr"}},
		{"TETHER_X=1 docsvc tokens add --hash=<id>:<sha256> -h", [][]string{{"tokens", "add"}}, []string{"hash"}},
		{"tether-plane installs show in_…", [][]string{{"installs", "show"}}, nil},
	} {
		got := programCommands("t", tc.text)
		if len(got) != 1 || fmt.Sprint(got[0].paths) != fmt.Sprint(tc.paths) || fmt.Sprint(got[0].flags) != fmt.Sprint(tc.flags) {
			t.Errorf("%q: got %+v, want paths %v flags %v", tc.text, got, tc.paths, tc.flags)
		}
	}
	for _, text := range []string{
		"tetherctl deploy: step 3/9, secrets: …",
		"tetherctl preflight: 1 of 16 checks failed",
		"mytetherctl deploy",
		"the tetherctl command",
	} {
		if got := programCommands("t", text); len(got) != 0 {
			t.Errorf("%q: taken as a command: %+v", text, got)
		}
	}
	ctx := t.Context()
	cache := &helpCache{runs: map[string]helpRun{}}
	if _, err := cache.help(ctx, "tetherctl", []string{"secrets", "frob"}); err == nil {
		t.Error("tetherctl secrets frob --help succeeded: a missing command would pass")
	}
	help, err := cache.help(ctx, "tetherctl", []string{"deploy"})
	if err != nil {
		t.Fatal(err)
	}
	if !listsFlag(help, "tetherctl", "cdk-out") || listsFlag(help, "tetherctl", "cdk") || listsFlag(help, "tetherctl", "from-file") {
		t.Errorf("listsFlag misreads tetherctl deploy --help:\n%s", help)
	}
}

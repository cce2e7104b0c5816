package doccheck

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/agent"
	"github.com/tetherhq/tether/internal/config"
	"github.com/tetherhq/tether/internal/docsvc"
)

// tableNames returns the code spans in column col (from 0) of a document's
// tables that match re.
func tableNames(t *testing.T, file string, col int, re *regexp.Regexp) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
	if err != nil {
		t.Fatal(err)
	}
	_, prose := split(string(b))
	out := map[string]bool{}
	for _, line := range strings.Split(prose, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line[1:], " | ")
		if col >= len(cells) {
			continue
		}
		for _, m := range spanRE.FindAllStringSubmatch(cells[col], -1) {
			if re.MatchString(m[1]) {
				out[m[1]] = true
			}
		}
	}
	return out
}

// Every DOCSVC_ variable docs/configuration.md documents is one docsvc
// reads, through internal/config or, for what a supervisor hands it, by
// itself (internal/config checks the other direction).
func TestConfigurationVariablesExist(t *testing.T) {
	env := map[string]string{
		"DOCSVC_DATABASE_URL": "sqlite:///var/lib/docsvc/docsvc.db",
		"DOCSVC_BLOB_URL":     "file:///var/lib/docsvc/blobs",
		"DOCSVC_QUEUE_URL":    "db://jobs",
	}
	c, err := config.Load(t.Context(), func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{}
	for _, s := range c.Effective() {
		read[s.Name] = true
	}
	// What a supervisor hands docsvc (the listeners tetherctl dev passes
	// it) is no setting of internal/config: docsvc reads it itself, by the
	// name internal/docsvc declares.
	read[docsvc.ListenFDsEnv] = true
	documented := tableNames(t, "docs/configuration.md", 0, regexp.MustCompile(`^DOCSVC_[A-Z0-9_]+$`))
	if len(documented) < 20 {
		t.Fatalf("only %d variables found in docs/configuration.md's table: the parser missed them", len(documented))
	}
	for v := range documented {
		if !read[v] && !read[strings.TrimSuffix(v, "_FILE")] {
			t.Errorf("docs/configuration.md documents %s, which docsvc does not read", v)
		}
	}
}

// Every flag and variable in docs/agent.md's table is one tether-agent run
// takes, and every flag it takes is in the table.
func TestAgentSettingsDocumented(t *testing.T) {
	var out bytes.Buffer
	if err := agent.Main(t.Context(), []string{"run", "--help"}, noEnv, &out, &out); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	flags := tableNames(t, "docs/agent.md", 0, regexp.MustCompile(`^--[a-z-]+$`))
	vars := tableNames(t, "docs/agent.md", 1, regexp.MustCompile(`^TETHER_[A-Z_]+$`))
	if len(flags) < 10 || len(vars) < 10 {
		t.Fatalf("found %d flags and %d variables in docs/agent.md's table: the parser missed them", len(flags), len(vars))
	}
	for f := range flags {
		if !listsFlag(help, "tether-agent", strings.TrimPrefix(f, "--")) {
			t.Errorf("docs/agent.md documents %s, which tether-agent run does not take", f)
		}
	}
	for v := range vars {
		if !strings.Contains(help, "(env "+v+")") {
			t.Errorf("docs/agent.md documents %s, which tether-agent run does not read", v)
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z][a-z-]*)`).FindAllStringSubmatch(help, -1) {
		if !flags["--"+m[1]] {
			t.Errorf("tether-agent run takes --%s, which docs/agent.md's table does not document", m[1])
		}
	}
}

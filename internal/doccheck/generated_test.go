package doccheck

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/deployconfig"
)

var update = flag.Bool("update", false, "rewrite the generated sections of the documents")

// generatedSection is a part of a document between two markers that a
// function writes.
type generatedSection struct {
	file, name string
	generate   func() (string, error)
}

var generatedSections = []generatedSection{
	{"docs/support.md", "payload fields", PayloadFields},
	{"docs/deployment-config.md", "deployment.yaml keys", DeploymentKeys},
}

const regenerate = "make docs (or go test ./internal/doccheck -run TestGeneratedSections -update)"

func markers(name string) (begin, end string) {
	return "<!-- BEGIN GENERATED " + name + ": do not edit; " + regenerate + " -->\n",
		"<!-- END GENERATED " + name + " -->"
}

// The generated sections are what their generators write today; with
// -update they are rewritten.
func TestGeneratedSections(t *testing.T) {
	for _, s := range generatedSections {
		want, err := s.generate()
		if err != nil {
			t.Errorf("%s, %s: %v", s.file, s.name, err)
			continue
		}
		path := filepath.Join(root, filepath.FromSlash(s.file))
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		text := string(b)
		begin, end := markers(s.name)
		i, j := strings.Index(text, begin), strings.Index(text, end)
		if i < 0 || j < i {
			t.Errorf("%s has no generated section %q: put the lines\n%s\n%s\nwhere it goes, then run %s", s.file, s.name, strings.TrimSpace(begin), end, regenerate)
			continue
		}
		got := text[i+len(begin) : j]
		if got == want+"\n" {
			continue
		}
		if !*update {
			t.Errorf("%s: the generated section %q is stale: run %s", s.file, s.name, regenerate)
			continue
		}
		text = text[:i+len(begin)] + want + "\n" + text[j:]
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The payload table is derived from wire's own checks: a field whose
// validator accepts anything cannot be documented, and the rules it shows
// are wire's.
func TestPayloadFields(t *testing.T) {
	doc, err := PayloadFields()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| `components[].name` | string | which component | must be one of api, worker, database, blob, queue, agent |",
		"| `available_release` | string |",
		"optional; must be a semantic version",
		"| `sent_at` | time (RFC 3339) | when the agent sent it | required; must be a time between the years 2000 and 9999 |",
		"| `components` | list | the health of each component | must have at most 6 entries |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("the payload table lacks %q:\n%s", want, doc)
		}
	}
	// A field wire does not check is refused.
	if _, err := rule(unchecked{Note: "ok"}, fields(reflect.TypeFor[unchecked](), "", nil)[0]); err == nil {
		t.Error("a field Validate does not check was documented")
	}
}

// unchecked is a payload whose Validate checks nothing.
type unchecked struct {
	Note string `json:"note"`
}

func (unchecked) Validate() error { return nil }

// Every key of deployment.yaml has its row in the Fields table of
// docs/deployment-config.md, and every key there exists.
func TestDeploymentKeysDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "docs", "deployment-config.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n## Fields\n")
	if start < 0 {
		t.Fatal(`docs/deployment-config.md has no "## Fields" section`)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(text[start:], "\n")[2:] {
		if strings.HasPrefix(line, "## ") {
			break
		}
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.SplitN(line, " | ", 2)[0]
		base := ""
		for _, m := range spanRE.FindAllStringSubmatch(first, -1) {
			k := m[1]
			if strings.HasPrefix(k, ".") {
				k = base + k
			} else {
				base = k[:max(strings.LastIndex(k, "."), 0)]
			}
			documented[k] = true
		}
	}
	keys := map[string]bool{}
	for _, k := range yamlKeys(reflect.TypeFor[deployconfig.Config](), "", 0) {
		if !k.leaf {
			continue
		}
		keys[k.path] = true
		if !documented[k.path] && refusedKeys[k.path] == "" {
			t.Errorf("deployment.yaml key %s has no row in the Fields table of docs/deployment-config.md", k.path)
		}
	}
	for k := range documented {
		if !keys[k] {
			t.Errorf("docs/deployment-config.md documents %s, which deployconfig does not read", k)
		}
	}
	if len(documented) < 30 {
		t.Errorf("only %d keys found in the Fields table: the parser missed them", len(documented))
	}
}

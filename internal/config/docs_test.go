package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/config"
)

// TestEveryVariableIsDocumented keeps docs/configuration.md true: every
// setting config check prints must have a row there.
func TestEveryVariableIsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(moduleRoot(t), "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(t.Context(), getenv(minimal()), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range c.Effective() {
		if !strings.Contains(string(doc), "`"+s.Name+"`") {
			t.Errorf("docs/configuration.md does not document %s", s.Name)
		}
	}
}

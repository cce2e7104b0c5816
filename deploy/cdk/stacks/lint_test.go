package stacks

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tetherhq/tether/internal/cfncheck"
)

// The templates this test run synthesizes (copied from its cloud assembly
// into a temporary directory, never the testdata snapshots) must pass
// cfn-lint with no error and no warning, and checkov's CloudFormation checks
// with no failure. Both tools come from tools/venv, which
// scripts/test-deps.sh installs; without them the test fails. The runners,
// the rules for exceptions (a warning ignored with ignoreLint, a check
// skipped with skipCheckov, each with its reason) and the control test that
// proves the linters report findings are in internal/cfncheck.

func TestTemplatesPassCfnLintAndCheckov(t *testing.T) {
	lint, ck := cfncheck.Tool(t, "cfn-lint"), cfncheck.Tool(t, "checkov")
	forAllExamples(t, func(t *testing.T, s *synthesized) {
		// This run's templates, exactly as written to its cloud assembly.
		dir := t.TempDir()
		for _, st := range s.d.Stacks() {
			raw, err := os.ReadFile(filepath.Join(s.outdir, *st.TemplateFile()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, *st.TemplateFile()), raw, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, p := range cfncheck.ExceptionProblems(*st.TemplateFile(), raw) {
				t.Error(p)
			}
		}
		findings, err := cfncheck.CfnLint(lint, dir, s.cfg.Region)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range findings {
			t.Errorf("%s", f)
		}
		failed, _, err := cfncheck.Checkov(ck, dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range failed {
			t.Errorf("%s", f)
		}
	})
}

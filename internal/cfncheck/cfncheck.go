// Package cfncheck runs the linters every CloudFormation template of the
// project must pass (cfn-lint and checkov from tools/venv) and checks that
// each exception written into a template says why. deploy/plane's tests use
// it; it holds the rules deploy/cdk's lint test follows.
//
// An exception is written next to what it excuses, with its reason:
//   - cfn-lint: a warning ignored for one template (its Metadata "cfn-lint":
//     {"config": {"ignore_checks": [rule]}, "reasons": {rule: reason}}) or
//     for one resource (the same keys in its Metadata). Error rules (E…)
//     are never ignored.
//   - checkov: a check skipped on one resource (its Metadata "checkov":
//     {"skip": [{"id": check, "comment": reason}]}).
//
// The tools run in an empty directory with an empty HOME, so no stray
// .cfnlintrc or .checkov.yaml can hide a finding.
package cfncheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// minReason is the shortest reason accepted for an ignore or a skip: long
// enough that it must say something specific.
const minReason = 40

// Finding is one result a linter reported.
type Finding struct {
	Tool, Rule, Template, Resource, Message string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s %s in %s at %s: %s", f.Tool, f.Rule, f.Template, f.Resource, f.Message)
}

// RepoRoot is the repository's top directory: git's answer, or failing
// that the nearest parent holding deploy/cdk/go.mod.
func RepoRoot() (string, error) {
	if out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output(); err == nil {
		if root := strings.TrimSpace(string(out)); root != "" {
			return root, nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "deploy", "cdk", "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no git work tree and no parent directory holds deploy/cdk/go.mod")
		}
		dir = parent
	}
}

// Tool returns the path of a tool in tools/venv, failing the test when
// it is not installed.
func Tool(t testing.TB, name string) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("finding the repository root: %v", err)
	}
	bin := filepath.Join(root, "tools", "venv", "bin", name)
	if info, err := os.Stat(bin); err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
		t.Fatalf("%s is not installed at %s: run scripts/test-deps.sh", name, bin)
	}
	return bin
}

// runTool runs a linter in dir with an empty HOME and returns its stdout
// and exit code; a tool that cannot start is an error.
func runTool(bin, dir string, args ...string) (stdout []byte, code int, stderr string, err error) {
	home, err := os.MkdirTemp("", "tether-lint-home")
	if err != nil {
		return nil, 0, "", err
	}
	defer os.RemoveAll(home)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+home, "BC_SKIP_MAPPING=TRUE")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out.Bytes(), exit.ExitCode(), errOut.String(), nil
	}
	return out.Bytes(), 0, errOut.String(), err
}

// CfnLint lints every *.template.json in dir for region and returns every
// match it reports (errors and warnings; informational rules are off).
func CfnLint(bin, dir, region string) ([]Finding, error) {
	templates, err := filepath.Glob(filepath.Join(dir, "*.template.json"))
	if err != nil || len(templates) == 0 {
		return nil, fmt.Errorf("no templates in %s (%v)", dir, err)
	}
	args := append([]string{"--format", "json", "--regions", region, "--"}, templates...)
	out, code, stderr, err := runTool(bin, dir, args...)
	if err != nil {
		return nil, fmt.Errorf("cfn-lint: %v", err)
	}
	// Exit status is a bit set: 2 errors, 4 warnings, 8 informational;
	// 1 (or anything else) means cfn-lint itself failed.
	if code&^(2|4|8) != 0 {
		return nil, fmt.Errorf("cfn-lint failed (exit %d): %s%s", code, stderr, out)
	}
	var matches []struct {
		Filename string
		Level    string
		Message  string
		Location struct{ Path []any }
		Rule     struct{ Id string }
	}
	if err := json.Unmarshal(out, &matches); err != nil {
		return nil, fmt.Errorf("cfn-lint output is not its JSON format (%v): %s%s", err, out, stderr)
	}
	if (code != 0) != (len(matches) > 0) {
		return nil, fmt.Errorf("cfn-lint exited %d with %d matches: %s%s", code, len(matches), out, stderr)
	}
	var findings []Finding
	for _, m := range matches {
		where := "template"
		if p := m.Location.Path; len(p) >= 2 {
			where = fmt.Sprintf("%v/%v", p[0], p[1])
		}
		findings = append(findings, Finding{
			Tool: "cfn-lint", Rule: m.Rule.Id + " (" + m.Level + ")", Template: filepath.Base(m.Filename),
			Resource: where, Message: m.Message,
		})
	}
	return findings, nil
}

// checkovCheck is one check result in checkov's JSON output.
type checkovCheck struct {
	CheckID   string `json:"check_id"`
	CheckName string `json:"check_name"`
	FilePath  string `json:"file_path"`
	Resource  string `json:"resource"`
}

type checkovReport struct {
	CheckType string `json:"check_type"`
	Results   struct {
		Failed        []checkovCheck `json:"failed_checks"`
		Skipped       []checkovCheck `json:"skipped_checks"`
		ParsingErrors []string       `json:"parsing_errors"`
	} `json:"results"`
	Summary struct {
		Passed        int `json:"passed"`
		Failed        int `json:"failed"`
		ParsingErrors int `json:"parsing_errors"`
		ResourceCount int `json:"resource_count"`
	} `json:"summary"`
}

// Checkov runs checkov's CloudFormation checks on dir and returns the
// failed and the skipped checks.
func Checkov(bin, dir string) (failed, skipped []Finding, err error) {
	// --skip-download: no API key and no network, only the bundled checks.
	out, code, stderr, err := runTool(bin, dir,
		"--framework", "cloudformation", "--directory", dir, "--output", "json", "--skip-download")
	if err != nil {
		return nil, nil, fmt.Errorf("checkov: %v", err)
	}
	if code != 0 && code != 1 {
		return nil, nil, fmt.Errorf("checkov failed (exit %d): %s%s", code, stderr, out)
	}
	var reports []checkovReport
	trimmed := bytes.TrimSpace(out)
	if bytes.HasPrefix(trimmed, []byte("[")) {
		err = json.Unmarshal(trimmed, &reports)
	} else {
		var one checkovReport
		err = json.Unmarshal(trimmed, &one)
		reports = []checkovReport{one}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("checkov output is not its JSON format (%v): %s%s", err, out, stderr)
	}
	// With nothing to scan checkov prints a bare summary and no check_type.
	if len(reports) != 1 || reports[0].CheckType != "cloudformation" {
		return nil, nil, fmt.Errorf("checkov reported no CloudFormation scan: %s%s", out, stderr)
	}
	r := reports[0]
	switch {
	case r.Summary.ResourceCount == 0 || r.Summary.Passed == 0:
		return nil, nil, fmt.Errorf("checkov checked no resources: %s", out)
	case r.Summary.ParsingErrors > 0 || len(r.Results.ParsingErrors) > 0:
		return nil, nil, fmt.Errorf("checkov could not parse %v", r.Results.ParsingErrors)
	case r.Summary.Failed != len(r.Results.Failed) || (code == 1) != (len(r.Results.Failed) > 0):
		return nil, nil, fmt.Errorf("checkov exited %d, summary says %d failed, %d listed", code, r.Summary.Failed, len(r.Results.Failed))
	}
	conv := func(cs []checkovCheck) []Finding {
		var fs []Finding
		for _, c := range cs {
			fs = append(fs, Finding{Tool: "checkov", Rule: c.CheckID, Template: filepath.Base(c.FilePath), Resource: c.Resource, Message: c.CheckName})
		}
		return fs
	}
	return conv(r.Results.Failed), conv(r.Results.Skipped), nil
}

var (
	warningRule    = regexp.MustCompile(`^W[0-9]{4}$`)
	checkovCheckID = regexp.MustCompile(`^CKV2?_AWS_[0-9]+$`)
)

// ExceptionProblems lists every cfn-lint ignore and checkov skip in one
// template that lacks a specific reason, ignores an error, or hides from
// this check (checkov's inline "checkov:skip=" comments).
func ExceptionProblems(name string, raw []byte) []string {
	var problems []string
	var tpl map[string]any
	if err := json.Unmarshal(raw, &tpl); err != nil {
		return []string{fmt.Sprintf("%s: %v", name, err)}
	}
	if bytes.Contains(bytes.ToLower(raw), []byte("checkov:skip")) {
		problems = append(problems, name+": contains an inline checkov:skip; skip in the resource's Metadata with a reason (skipCheckov)")
	}
	lintIgnores := func(where string, md map[string]any) {
		cl, _ := md["cfn-lint"].(map[string]any)
		config, _ := cl["config"].(map[string]any)
		reasons, _ := cl["reasons"].(map[string]any)
		for _, rule := range list(config["ignore_checks"]) {
			id, _ := rule.(string)
			reason, _ := reasons[id].(string)
			switch {
			case !warningRule.MatchString(id):
				problems = append(problems, fmt.Sprintf("%s: ignores cfn-lint rule %v; only single warnings (Wnnnn) may be ignored", where, rule))
			case len(reason) < minReason:
				problems = append(problems, fmt.Sprintf("%s: ignores cfn-lint %s without a specific reason: %q", where, id, reason))
			}
		}
	}
	md, _ := tpl["Metadata"].(map[string]any)
	lintIgnores(name, md)
	res, _ := tpl["Resources"].(map[string]any)
	for _, id := range slices.Sorted(maps.Keys(res)) {
		r, _ := res[id].(map[string]any)
		md, _ := r["Metadata"].(map[string]any)
		where := name + "/" + id
		lintIgnores(where, md)
		for _, tool := range []string{"checkov", "bridgecrew"} {
			ck, _ := md[tool].(map[string]any)
			for _, skip := range list(ck["skip"]) {
				sm, _ := skip.(map[string]any)
				check, _ := sm["id"].(string)
				comment, _ := sm["comment"].(string)
				switch {
				case !checkovCheckID.MatchString(check):
					problems = append(problems, fmt.Sprintf("%s: skips checkov %v; name one check (CKV_AWS_n)", where, sm["id"]))
				case len(comment) < minReason:
					problems = append(problems, fmt.Sprintf("%s: skips checkov %s without a specific reason: %q", where, check, comment))
				}
			}
		}
	}
	return problems
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

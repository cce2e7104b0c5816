package stacks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The templates this test run synthesizes (copied from its cloud assembly
// into a temporary directory, never the testdata snapshots) must pass
// cfn-lint with no error and no warning, and checkov's CloudFormation checks
// with no failure. Both tools come from tools/venv, which
// scripts/test-deps.sh installs; without them the test fails.
//
// An exception is written next to what it excuses, with its reason:
//   - cfn-lint: a warning ignored for one stack's template (ignoreLint: the
//     template's Metadata "cfn-lint": {"config": {"ignore_checks": [rule]},
//     "reasons": {rule: reason}}) or for one resource (the same two keys in
//     its Metadata). Error rules (E…) are never ignored.
//   - checkov: a check skipped on one resource (skipCheckov: its Metadata
//     "checkov": {"skip": [{"id": check, "comment": reason}]}).
//
// The tools run in an empty directory with an empty HOME, so no stray
// .cfnlintrc or .checkov.yaml can hide a finding.

// minReason is the shortest reason accepted for an ignore or a skip: long
// enough that it must say something specific.
const minReason = 40

// finding is one result a linter reported.
type finding struct {
	tool, rule, template, resource, message string
}

func (f finding) String() string {
	return fmt.Sprintf("%s %s in %s at %s: %s", f.tool, f.rule, f.template, f.resource, f.message)
}

// repoRoot is the repository's top directory: git's answer, or failing
// that the nearest parent holding deploy/cdk/go.mod.
func repoRoot() (string, error) {
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

// lintTool returns the path of a tool in tools/venv, failing the test when
// it is not installed.
func lintTool(t *testing.T, name string) string {
	t.Helper()
	root, err := repoRoot()
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

// cfnLint lints every *.template.json in dir for region and returns every
// match it reports (errors and warnings; informational rules are off).
func cfnLint(bin, dir, region string) ([]finding, error) {
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
	var findings []finding
	for _, m := range matches {
		where := "template"
		if p := m.Location.Path; len(p) >= 2 {
			where = fmt.Sprintf("%v/%v", p[0], p[1])
		}
		findings = append(findings, finding{
			tool: "cfn-lint", rule: m.Rule.Id + " (" + m.Level + ")", template: filepath.Base(m.Filename),
			resource: where, message: m.Message,
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

// checkov runs checkov's CloudFormation checks on dir and returns the
// failed and the skipped checks.
func checkov(bin, dir string) (failed, skipped []finding, err error) {
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
	conv := func(cs []checkovCheck) []finding {
		var fs []finding
		for _, c := range cs {
			fs = append(fs, finding{tool: "checkov", rule: c.CheckID, template: filepath.Base(c.FilePath), resource: c.Resource, message: c.CheckName})
		}
		return fs
	}
	return conv(r.Results.Failed), conv(r.Results.Skipped), nil
}

var (
	warningRule    = regexp.MustCompile(`^W[0-9]{4}$`)
	checkovCheckID = regexp.MustCompile(`^CKV2?_AWS_[0-9]+$`)
)

// exceptionProblems lists every cfn-lint ignore and checkov skip in one
// template that lacks a specific reason, ignores an error, or hides from
// this check (checkov's inline "checkov:skip=" comments).
func exceptionProblems(name string, raw []byte) []string {
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
	for _, id := range sortedKeys(res) {
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

func TestTemplatesPassCfnLintAndCheckov(t *testing.T) {
	lint, ck := lintTool(t, "cfn-lint"), lintTool(t, "checkov")
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
			for _, p := range exceptionProblems(*st.TemplateFile(), raw) {
				t.Error(p)
			}
		}
		findings, err := cfnLint(lint, dir, s.cfg.Region)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range findings {
			t.Errorf("%s", f)
		}
		failed, _, err := checkov(ck, dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range failed {
			t.Errorf("%s", f)
		}
	})
}

// The same runs on a small hand-written template with known problems must
// report them, or a clean result above proves nothing.
func TestLintersReportFindings(t *testing.T) {
	lint, ck := lintTool(t, "cfn-lint"), lintTool(t, "checkov")
	dir := t.TempDir()
	const control = `{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Parameters": {"Unused": {"Type": "String"}},
  "Resources": {
    "Broken": {"Type": "AWS::SQS::Queue", "Properties": {"NotAProperty": true}},
    "OpenSsh": {"Type": "AWS::EC2::SecurityGroup", "Properties": {
      "GroupDescription": "ssh from anywhere",
      "SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"}]}},
    "ExcusedSsh": {"Type": "AWS::EC2::SecurityGroup",
      "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_24", "comment": "a control: this skip must be honoured and reported as skipped"}]}},
      "Properties": {
      "GroupDescription": "ssh from anywhere, excused",
      "SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"}]}}
  }
}`
	if err := os.WriteFile(filepath.Join(dir, "control.template.json"), []byte(control), 0o644); err != nil {
		t.Fatal(err)
	}
	has := func(fs []finding, rule, resource string) bool {
		return slices.ContainsFunc(fs, func(f finding) bool {
			return strings.HasPrefix(f.rule, rule) && f.resource == resource && f.template == "control.template.json"
		})
	}

	findings, err := cfnLint(lint, dir, "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	if !has(findings, "E3002 (Error)", "Resources/Broken") || !has(findings, "W2001 (Warning)", "Parameters/Unused") {
		t.Errorf("cfn-lint did not report the unknown property (E3002) and the unused parameter (W2001); got %v", findings)
	}

	failed, skipped, err := checkov(ck, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !has(failed, "CKV_AWS_24", "AWS::EC2::SecurityGroup.OpenSsh") {
		t.Errorf("checkov did not fail SSH open to the world (CKV_AWS_24); failed: %v", failed)
	}
	if has(failed, "CKV_AWS_24", "AWS::EC2::SecurityGroup.ExcusedSsh") || !has(skipped, "CKV_AWS_24", "AWS::EC2::SecurityGroup.ExcusedSsh") {
		t.Errorf("checkov did not honour the Metadata skip; failed %v, skipped %v", failed, skipped)
	}

	// And exceptions without a reason, or on an error, are refused.
	bad := `{
  "Metadata": {"cfn-lint": {"config": {"ignore_checks": ["E3002", "W2001", "W3005"]}, "reasons": {"W3005": "too short"}}},
  "Resources": {"R": {"Type": "AWS::SQS::Queue", "Metadata": {
    "checkov": {"skip": [{"id": "CKV_AWS_27"}, {"id": "CKV_AWS_*", "comment": "a wildcard is not one check, whatever the reason says"}]}},
    "Properties": {"QueueName": "checkov:skip=CKV_AWS_27"}}}
}`
	problems := exceptionProblems("bad.template.json", []byte(bad))
	for _, want := range []string{"inline checkov:skip", "rule E3002", "W2001 without", "W3005 without", "CKV_AWS_27 without", "CKV_AWS_*"} {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) }) {
			t.Errorf("no problem mentioning %q in %q", want, problems)
		}
	}
	if len(problems) != 6 {
		t.Errorf("%d problems, want 6: %q", len(problems), problems)
	}
}

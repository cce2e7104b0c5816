package deployconfig

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/releasestate"
)

// The example configs shipped with the CDK app are the canonical valid files.
const examplesDir = "../../deploy/cdk/examples"

func readExample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(examplesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseExamples(t *testing.T) {
	minimal, err := Parse(readExample(t, "minimal.yaml"))
	if err != nil {
		t.Fatalf("minimal.yaml: %v", err)
	}
	// Defaults fill what the minimal file leaves out.
	if minimal.Sizing.APITasks != DefaultAPITasks || minimal.Sizing.WorkerMax != DefaultWorkerMax ||
		minimal.Sizing.DatabaseClass != DefaultDatabaseClass || minimal.Observe.LogRetentionDays != DefaultLogRetentionDays {
		t.Errorf("defaults not applied: %+v %+v", minimal.Sizing, minimal.Observe)
	}
	if want := (Thresholds{QueueAgeMinutes: 15, DeadLetters: 1, DatabaseFreePercent: 10, DocumentsGiB: 1024}); minimal.Observe.Thresholds != want {
		t.Errorf("thresholds = %+v, want the defaults %+v", minimal.Observe.Thresholds, want)
	}
	if got, want := minimal.ParameterPath(), "/tether/acme-docs/config"; got != want {
		t.Errorf("ParameterPath = %q, want %q", got, want)
	}
	if got, want := minimal.SecretName("ai"), "tether/acme-docs/ai"; got != want {
		t.Errorf("SecretName = %q, want %q", got, want)
	}
	if got, want := minimal.ResourceName(""), "tether-acme-docs"; got != want {
		t.Errorf("ResourceName(\"\") = %q, want %q", got, want)
	}
	if got, want := minimal.ResourceName("worker"), "tether-acme-docs-worker"; got != want {
		t.Errorf("ResourceName(worker) = %q, want %q", got, want)
	}
	if m := releasestate.RecordRE.FindStringSubmatch(minimal.ReleaseRecordParameter()); m == nil || m[1] != minimal.Name {
		t.Errorf("ReleaseRecordParameter %q is not the shape the agent and tether-upgrade accept (%s)", minimal.ReleaseRecordParameter(), releasestate.RecordRE)
	}
	if !strings.Contains(minimal.Plane.TrustedRoot, `"_type":"root"`) {
		t.Error("plane.trusted_root not read")
	}
	if minimal.Agent.Telemetry || minimal.Agent.DiagnosticsApproval != DiagnosticsManual || minimal.Agent.AutoApproveDiagnostics() {
		t.Errorf("agent policies are not off by default: %+v", minimal.Agent)
	}
	if minimal.WorkerNeedsInternet() {
		t.Error("local analyzer should not need internet egress")
	}

	// Staged releases come from tetherctl upgrade --stage --bundle, so an
	// air-gapped deployment can apply them in its window too.
	airGapped, err := Parse(edit(t, "  url: https://plane", "  automatic_upgrades: true\n  upgrade_window: Sun 02:00-04:00"))
	if err != nil || airGapped.Plane.URL != "" || !airGapped.Plane.AutomaticUpgrades || airGapped.AgentNeedsInternet() {
		t.Errorf("automatic upgrades without plane.url: %+v %v", airGapped.Plane, err)
	}

	shared, err := Parse(edit(t, "  client_id:", "  client_id: tether-docs\n  groups_claim: groups\n  shared_groups: [finance, legal team]"))
	if err != nil || shared.Auth.GroupsClaim != "groups" || strings.Join(shared.Auth.SharedGroups, ",") != "finance,legal team" {
		t.Errorf("shared groups: %+v %v", shared, err)
	}

	strict, err := Parse(readExample(t, "strict.yaml"))
	if err != nil {
		t.Fatalf("strict.yaml: %v", err)
	}
	if strict.IAM.PermissionsBoundary != "GlobexWorkloadBoundary" || strict.CDK.Qualifier != "globex01" ||
		!strict.Sizing.MultiAZ || strict.AI.Provider != AIBedrock || strict.Images.Source != ImagesBuild ||
		strict.Agent.Telemetry || strict.Agent.DiagnosticsApproval != DiagnosticsManual ||
		strict.Observe.Thresholds != (Thresholds{QueueAgeMinutes: 30, DeadLetters: 5, DatabaseFreePercent: 20, DocumentsGiB: 5000}) {
		t.Errorf("strict.yaml parsed wrong: %+v", strict)
	}
}

func TestLoad(t *testing.T) {
	if _, err := Load(filepath.Join(examplesDir, "minimal.yaml")); err != nil {
		t.Fatal(err)
	}
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing) = %v, want ErrNotExist", err)
	}
}

// edit replaces one line of minimal.yaml (matched by its prefix) with repl,
// or deletes it when repl is empty.
func edit(t *testing.T, linePrefix, repl string) []byte {
	t.Helper()
	return editExample(t, "minimal.yaml", linePrefix, repl)
}

// editExample replaces the first line of an example that starts with
// linePrefix by repl, or deletes it when repl is empty.
func editExample(t *testing.T, example, linePrefix, repl string) []byte {
	t.Helper()
	lines := strings.Split(string(readExample(t, example)), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, linePrefix) {
			if repl == "" {
				lines = append(lines[:i], lines[i+1:]...)
			} else {
				lines[i] = repl
			}
			return []byte(strings.Join(lines, "\n"))
		}
	}
	t.Fatalf("no line starts with %q", linePrefix)
	return nil
}

// withoutLicense is minimal.yaml with its license block (the last one) cut off.
func withoutLicense(t *testing.T) []byte {
	b := readExample(t, "minimal.yaml")
	i := strings.Index(string(b), "\nlicense:")
	if i < 0 {
		t.Fatal("minimal.yaml has no license block")
	}
	return b[:i+1]
}

// withTrustedRoot replaces the content of minimal.yaml's plane.trusted_root
// block with root (one line).
func withTrustedRoot(t *testing.T, root string) []byte {
	t.Helper()
	return edit(t, `    {"signatures"`, "    "+root)
}

func TestParseRejects(t *testing.T) {
	tests := []rejectCase{
		{"empty", []byte(""), "one YAML mapping"},
		{"list", []byte("- a\n- b\n"), "one YAML mapping"},
		{"syntax", []byte("version: [1\n"), "invalid deployment config"},
		{"two documents", append(readExample(t, "minimal.yaml"), []byte("---\nversion: 1\n")...), "more than one YAML document"},
		{"unknown top field", append(readExample(t, "minimal.yaml"), []byte("colour: blue\n")...), "colour: unknown field (line"},
		{"unknown nested field", edit(t, "  certificate_arn:", "  certficate_arn: x"), "domain.certficate_arn: unknown field"},
		{"wrong type", edit(t, "version:", "version: one"), "version: got a str value (line"},
		{"wrong nested type", edit(t, "cors_origins:", "cors_origins: 7"), "cors_origins: got a str value (line 16); want a list of strings"},
		{"version", edit(t, "version:", "version: 2"), "version: must be 1"},
		{"name missing", edit(t, "name:", ""), "name: required"},
		{"name uppercase", edit(t, "name:", "name: Acme"), "name: \"Acme\" is not valid"},
		{"account unquoted short", edit(t, "account:", "account: 1234"), "account: \"1234\" is not valid"},
		{"govcloud", edit(t, "region:", "region: us-gov-west-1"), "GovCloud"},
		{"cert other region", edit(t, "  certificate_arn:", "  certificate_arn: arn:aws:acm:us-east-1:111122223333:certificate/0b9a8c7d-1234-4e5f-8a9b-0c1d2e3f4a5b"), "domain.certificate_arn: the certificate must be in the deployment's account and region"},
		{"no cert nor zone", edit(t, "  certificate_arn:", ""), "domain: set certificate_arn"},
		{"issuer http", edit(t, "  issuer:", "  issuer: http://login.acme.example"), "auth.issuer: \"http://login.acme.example\" is not valid"},
		{"issuer with credentials", edit(t, "  issuer:", "  issuer: https://u:p@login.acme.example"), "auth.issuer"},
		{"client id missing", edit(t, "  client_id:", ""), "auth.client_id: required"},
		{"auth provider", edit(t, "  provider: oidc", "  provider: saml"), "auth.provider: must be"},
		{"groups without a claim", edit(t, "  client_id:", "  client_id: tether-docs\n  shared_groups: [finance]"), "auth.groups_claim: required with auth.shared_groups"},
		{"claim without groups", edit(t, "  client_id:", "  client_id: tether-docs\n  groups_claim: groups"), "auth.shared_groups: required with auth.groups_claim"},
		{"claim with a space", edit(t, "  client_id:", "  client_id: tether-docs\n  groups_claim: my groups\n  shared_groups: [finance]"), "auth.groups_claim: \"my groups\" is not valid"},
		{"group with a comma", edit(t, "  client_id:", "  client_id: tether-docs\n  groups_claim: groups\n  shared_groups: [\"finance,legal\"]"), "auth.shared_groups[0]: \"finance,legal\" is not valid"},
		{"group with a trailing space", edit(t, "  client_id:", "  client_id: tether-docs\n  groups_claim: groups\n  shared_groups: [finance, \"legal \"]"), "auth.shared_groups[1]"},
		{"group with a non-breaking space", edit(t, "  client_id:", "  client_id: tether-docs\n  groups_claim: groups\n  shared_groups: [\"fin\u00a0ance\"]"), "auth.shared_groups[0]"},
		{"cors path", edit(t, "  - https://portal", "  - https://portal.acme.example/app"), "cors_origins[0]: an origin is scheme and host only"},
		{"cors wildcard", edit(t, "  - https://portal", "  - \"*\""), "cors_origins[0]"},
		{"email", edit(t, "email_sender:", "email_sender: nobody"), "email_sender: \"nobody\" is not valid"},
		{"ai provider", edit(t, "  provider: local", "  provider: gemini"), "ai.provider: must be one of"},
		{"digest", edit(t, "  docsvc_digest:", "  docsvc_digest: latest"), "images.docsvc_digest: must be an image digest"},
		{"registry missing", edit(t, "  vendor_registry:", ""), "images.vendor_registry: required"},
		{"image source", edit(t, "  source: vendor", "  source: dockerhub"), "images.source: must be"},
		{"plane http", edit(t, "  url: https://plane", "  url: http://plane.vendor.example"), "plane.url"},
		{"upgrades without window", edit(t, "  channel: stable", "  channel: stable\n  automatic_upgrades: true"), "plane.upgrade_window: automatic upgrades need a maintenance window"},
		{"window without upgrades", edit(t, "  channel: stable", "  channel: stable\n  upgrade_window: Sun 02:00-04:00"), "plane.upgrade_window: has no effect without plane.automatic_upgrades"},
		{"window grammar", edit(t, "  channel: stable", "  channel: stable\n  automatic_upgrades: true\n  upgrade_window: Sunday 2am"), `plane.upgrade_window: upgrade window range "Sunday 2am"`},
		{"sizing range", append(readExample(t, "minimal.yaml"), []byte("sizing:\n  worker_min: 5\n  worker_max: 3\n")...), "sizing.worker_max: must be at least worker_min (5)"},
		{"db class", append(readExample(t, "minimal.yaml"), []byte("sizing:\n  database_class: t4g.medium\n")...), "sizing.database_class"},
		{"multi-az one task", append(readExample(t, "minimal.yaml"), []byte("sizing:\n  multi_az: true\n  api_tasks: 1\n")...), "sizing.api_tasks: multi_az needs"},
		{"qualifier", append(readExample(t, "minimal.yaml"), []byte("cdk:\n  qualifier: Not-Valid\n")...), "cdk.qualifier"},
		{"boundary arn", append(readExample(t, "minimal.yaml"), []byte("iam:\n  permissions_boundary: arn:aws:iam::1:policy/x\n")...), "iam.permissions_boundary"},
		{"trusted root missing", withTrustedRoot(t, ""), "plane.trusted_root: required"},
		{"trusted root not JSON", withTrustedRoot(t, "root.json"), "plane.trusted_root: not a JSON object"},
		{"trusted root a list", withTrustedRoot(t, "[1]"), "plane.trusted_root: not a JSON object"},
		{"trusted root not a root", withTrustedRoot(t, `{"signed":{"_type":"targets"},"signatures":[]}`), "plane.trusted_root: not a TUF root"},
		{"trusted root unsigned", withTrustedRoot(t, `{"signed":{"_type":"root"}}`), "plane.trusted_root: not a TUF root"},
		{"trusted root too big", withTrustedRoot(t, `{"signed":{"_type":"root"},"signatures":[],"x":"`+strings.Repeat("a", MaxTrustedRootSize)+`"}`), "plane.trusted_root: is larger than"},
		{"license key missing", withoutLicense(t), "license.public_key: required"},
		{"license key not PEM", edit(t, "    -----BEGIN PUBLIC KEY-----", "    BEGIN"), "license.public_key: not a single PEM PUBLIC KEY block"},
		{"license key not a key", edit(t, "    MCow", "    aGVsbG8="), "license.public_key: the PEM block does not hold a public key"},
		{"too big", make([]byte, MaxFileSize+1), "larger than"},
		{"diagnostics approval", append(readExample(t, "minimal.yaml"), []byte("agent:\n  diagnostics_approval: auto\n")...), `agent.diagnostics_approval: "auto" is not valid: want "manual"`},
		{"telemetry not a bool", append(readExample(t, "minimal.yaml"), []byte("agent:\n  telemetry: yes please\n")...), "agent.telemetry: got a str value"},
		{"telemetry air-gapped", append(edit(t, "  url: https://plane", ""), []byte("agent:\n  telemetry: true\n")...), "agent.telemetry: telemetry is sent to the plane"},
		{"automatic diagnostics air-gapped", append(edit(t, "  url: https://plane", ""), []byte("agent:\n  diagnostics_approval: automatic\n")...), "agent.diagnostics_approval: automatic uploads diagnostics"},
		{"queue age threshold", append(readExample(t, "minimal.yaml"), []byte("observability:\n  thresholds:\n    queue_age_minutes: 2000\n")...), "observability.thresholds.queue_age_minutes: 2000 is out of range: want 1 to 1440"},
		{"free storage threshold", append(readExample(t, "minimal.yaml"), []byte("observability:\n  thresholds:\n    database_free_percent: -5\n")...), "observability.thresholds.database_free_percent: -5 is out of range"},
		{"dead letters threshold", append(readExample(t, "minimal.yaml"), []byte("observability:\n  thresholds:\n    dead_letters: 100001\n")...), "observability.thresholds.dead_letters: 100001 is out of range"},
		{"documents threshold type", append(readExample(t, "minimal.yaml"), []byte("observability:\n  thresholds:\n    documents_gib: 1TB\n")...), "observability.thresholds.documents_gib: got a str value"},
		{"unknown threshold", append(readExample(t, "minimal.yaml"), []byte("observability:\n  thresholds:\n    bucket_gib: 5\n")...), "observability.thresholds.bucket_gib: unknown field"},
		{"unknown agent field", append(readExample(t, "minimal.yaml"), []byte("agent:\n  heartbeat: 10s\n")...), "agent.heartbeat: unknown field"},
	}
	expectRejects(t, tests)
}

// rejectCase is an input Parse must refuse, with a substring of the error
// naming the field path and the problem.
type rejectCase struct {
	name    string
	input   []byte
	wantErr string
}

func expectRejects(t *testing.T, tests []rejectCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(tt.input)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", cfg)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error\n%v\ndoes not contain %q", err, tt.wantErr)
			}
		})
	}
}

// Every problem is reported at once, so an operator fixes the file in one pass.
func TestParseReportsAllProblems(t *testing.T) {
	_, err := Parse([]byte("version: 1\nname: X\naccount: \"1\"\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want *Error, got %v", err)
	}
	for _, want := range []string{"name:", "account:", "region:", "domain.name:", "auth.issuer:", "email_sender:", "images.vendor_registry:"} {
		found := false
		for _, p := range e.Problems {
			found = found || strings.HasPrefix(p, want)
		}
		if !found {
			t.Errorf("no problem starting %q in %q", want, e.Problems)
		}
	}
}

// Problems are reported in bounded numbers, however mangled the file: a
// repeated key (which yaml.v3 would report pairwise) and many unknown fields.
func TestParseBoundsReportedProblems(t *testing.T) {
	var unknown strings.Builder
	unknown.WriteString("version: 1\n")
	for i := range 300 {
		fmt.Fprintf(&unknown, "field%d: 1\n", i)
	}
	for _, in := range []string{
		"version: 1\n" + strings.Repeat("zz: 1\n", 20000),
		unknown.String(),
	} {
		_, err := Parse([]byte(in))
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("want *Error, got %v", err)
		}
		if len(e.Problems) == 0 || len(e.Problems) > 21 {
			t.Errorf("got %d problems", len(e.Problems))
		}
	}
	_, err := Parse([]byte("version: 1\nname: a\nname: b\n"))
	if err == nil || !strings.Contains(err.Error(), "name: given again on line 3 (first on line 2)") {
		t.Errorf("repeated key: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"minimal.yaml", "strict.yaml", "existing-vpc.yaml", "recreate.yaml"} {
		b, err := os.ReadFile(filepath.Join(examplesDir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("version: 1\nname: a\n"))
	f.Add([]byte("{version: 1, domain: {hosted_zone: {id: Z1, name: x.y}}}"))
	f.Add([]byte("a: &a [*a]"))
	f.Add([]byte("plane: {trusted_root: '{\"signed\": {\"_type\": \"root\"}, \"signatures\": []}'}"))
	f.Add([]byte("plane: {trusted_root: '{\"signed\": null}'}"))
	f.Add([]byte("network: {cidr: 10.40.0.0/20, create_endpoints: false}"))
	f.Add([]byte("network: {vpc_id: vpc-01234567, subnets: {public: [{id: subnet-01234567, zone: eu-west-1a}], private: [{id: subnet-01234567, zone: eu-west-1a, route_table_id: rtb-1}]}}"))
	f.Add([]byte("agent: {telemetry: true, diagnostics_approval: automatic}"))
	f.Add([]byte("agent: {diagnostics_approval: [manual]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not match ErrInvalid: %v", err)
			}
			return
		}
		// Whatever parses must be valid and carry a usable deployment name.
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a config Validate rejects: %v", err)
		}
		if !nameRE.MatchString(cfg.Name) {
			t.Fatalf("accepted name %q", cfg.Name)
		}
	})
}

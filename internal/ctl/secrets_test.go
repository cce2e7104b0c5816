package ctl_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/ctl"
)

const licenseSecret = "tether/acme-docs/license"

// requested reports whether the code under test called target (such as
// "secretsmanager.PutSecretValue") on the emulator.
func requested(srv *awstest.Server, target string) bool {
	for _, r := range srv.Requests() {
		if r.Target == target {
			return true
		}
	}
	return false
}

func TestSecretsSetLicense(t *testing.T) {
	t.Parallel()
	v := newVendor(t)
	other := newVendor(t)
	now := time.Now()
	valid := v.validLicense(t)
	tests := []struct {
		name      string
		value     string
		fromFile  bool
		wantErr   string // "" means accepted
		wantWarn  string
		wantStore string // what the secret holds afterwards when accepted
	}{
		{name: "valid, from a file", value: valid, fromFile: true, wantStore: strings.TrimSpace(valid)},
		{name: "valid, from stdin", value: valid, wantStore: strings.TrimSpace(valid)},
		{name: "valid, pasted with surrounding whitespace", value: "\n  " + valid + "\n\n", wantStore: strings.TrimSpace(valid)},
		{name: "in its grace period", value: v.license(t, now.AddDate(-1, 0, 0), now.AddDate(0, 0, -3)),
			wantWarn: "grace period until"},
		{name: "expired past grace", value: v.license(t, now.AddDate(-2, 0, 0), now.AddDate(0, -2, 0)),
			wantErr: "grace period ended"},
		{name: "signed by another vendor key", value: other.validLicense(t), wantErr: "signed by key"},
		{name: "altered after signing", value: strings.Replace(valid, "ACME Corp", "ACME Inc.", 1), wantErr: "signature does not verify"},
		{name: "not a license", value: `{"hello": "world"}`, wantErr: "not a license file"},
		{name: "the stack's placeholder", value: strings.Repeat("aB3", 16), wantErr: "placeholder"},
		{name: "empty", value: "\n", wantErr: "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			srv := awstest.Start(t)
			previous := v.license(t, now.AddDate(0, -6, 0), now.AddDate(0, 6, 0))
			srv.CreateSecret(t, licenseSecret, previous)
			in := invocation{env: envOf(srv.Env())}
			args := []string{"secrets", "set", "license", "--config", defaultDeployment(v).write(t)}
			if tc.fromFile {
				file := filepath.Join(t.TempDir(), "license.json")
				mustWrite(t, file, tc.value, 0o600)
				args = append(args, "--from-file", file)
			} else {
				in.stdin = strings.NewReader(tc.value)
			}
			out := in.run(ctx, args...)

			stored, _ := srv.SecretValue(t, licenseSecret)
			if tc.wantErr != "" {
				if out.err == nil || !strings.Contains(out.err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q\n%s", out.err, tc.wantErr, out.all())
				}
				if !strings.Contains(out.err.Error(), "nothing was written") && !ctl.IsUsage(out.err) {
					t.Errorf("the refusal does not say nothing was written: %v", out.err)
				}
				if stored != previous {
					t.Fatal("a rejected license changed the stored secret")
				}
				if requested(srv, "secretsmanager.PutSecretValue") || requested(srv, "secretsmanager.CreateSecret") {
					t.Fatal("a rejected value was sent to Secrets Manager")
				}
			} else {
				if out.err != nil {
					t.Fatalf("set: %v\n%s", out.err, out.all())
				}
				want := tc.wantStore
				if want == "" {
					want = strings.TrimSpace(tc.value)
				}
				if stored != want {
					t.Fatalf("stored %d bytes, want the %d-byte license", len(stored), len(want))
				}
				if !strings.Contains(out.stdout, "updated "+licenseSecret) {
					t.Errorf("stdout does not say what was updated:\n%s", out.stdout)
				}
				if tc.wantWarn != "" && !strings.Contains(out.stderr, tc.wantWarn) {
					t.Errorf("no warning %q on stderr:\n%s", tc.wantWarn, out.stderr)
				}
			}
			if strings.TrimSpace(tc.value) != "" && strings.Contains(out.all(), strings.TrimSpace(tc.value)) {
				t.Fatalf("the value was printed:\n%s", out.all())
			}
		})
	}
}

// A secret that does not exist yet is not created: the data stack creates
// it under its own key, and one made first would break that stack's deploy.
func TestSecretsSetRefusesMissingSecret(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v := newVendor(t)
	srv := awstest.Start(t)
	lic := v.validLicense(t)
	out := invocation{env: envOf(srv.Env()), stdin: strings.NewReader(lic)}.
		run(ctx, "secrets", "set", "license", "--config", defaultDeployment(v).write(t))
	if out.err == nil || !strings.Contains(out.err.Error(), "does not exist yet") || !strings.Contains(out.err.Error(), "acme-docs-data stack") {
		t.Fatalf("err = %v, want a refusal naming the data stack", out.err)
	}
	if _, ok := srv.SecretValue(t, licenseSecret); ok || requested(srv, "secretsmanager.CreateSecret") {
		t.Fatal("the secret was created")
	}
	if strings.Contains(out.all(), strings.TrimSpace(lic)) {
		t.Fatal("the value was printed")
	}
}

func TestSecretsSetAIKey(t *testing.T) {
	t.Parallel()
	v := newVendor(t)
	anthropic := defaultDeployment(v)
	anthropic.AIProvider, anthropic.AIModel = "anthropic", "claude-sonnet-4-5"
	compatible := defaultDeployment(v)
	compatible.AIProvider, compatible.AIModel, compatible.AIBaseURL = "openai", "llama-3", "https://llm.acme.example/v1"
	tests := []struct {
		name    string
		d       deployment
		value   string
		wantErr string
	}{
		{"anthropic key", anthropic, "sk-ant-api03-" + strings.Repeat("Xy9_", 20) + "\n", ""},
		{"anthropic, wrong prefix", anthropic, "sk-proj-abcdef", `start with "sk-ant-"`},
		{"anthropic, line break inside", anthropic, "sk-ant-api03-abc\ndef", "whitespace"},
		{"space inside", compatible, "abc def", "whitespace"},
		{"self-hosted endpoint, any token", compatible, "vllm-token-123", ""},
		{"control character", compatible, "abc\x00def", "printable ASCII"},
		{"empty", compatible, "  \n", "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			srv := awstest.Start(t)
			const name = "tether/acme-docs/ai"
			srv.CreateSecret(t, name, "previous-key")
			out := invocation{env: envOf(srv.Env()), stdin: strings.NewReader(tc.value)}.
				run(ctx, "secrets", "set", "ai", "--config", tc.d.write(t))
			stored, _ := srv.SecretValue(t, name)
			if tc.wantErr == "" {
				if out.err != nil || stored != strings.TrimSpace(tc.value) {
					t.Fatalf("set: %v (stored %d bytes)\n%s", out.err, len(stored), out.all())
				}
			} else if out.err == nil || !strings.Contains(out.err.Error(), tc.wantErr) || stored != "previous-key" {
				t.Fatalf("err = %v, want %q and the old value kept\n%s", out.err, tc.wantErr, out.all())
			}
			if v := strings.TrimSpace(tc.value); v != "" && strings.Contains(out.all(), v) {
				t.Fatalf("the key was printed:\n%s", out.all())
			}
		})
	}
}

func TestSecretsSetRefusals(t *testing.T) {
	t.Parallel()
	v := newVendor(t)
	config := defaultDeployment(v).write(t) // ai.provider local: no ai secret
	srv := awstest.Start(t)
	for _, tc := range []struct {
		name, want string
	}{
		{"agent-identity", "tether-agent creates its own identity key"},
		{"database", "RDS manages the database password"},
		{"ai", "uses no key"},
		{"password", "no secret named"},
	} {
		out := invocation{env: envOf(srv.Env()), stdin: strings.NewReader("some-value")}.
			run(testContext(t), "secrets", "set", tc.name, "--config", config)
		if out.err == nil || !ctl.IsUsage(out.err) || !strings.Contains(out.err.Error(), tc.want) {
			t.Errorf("set %s: %v, want a usage error explaining %q", tc.name, out.err, tc.want)
		}
	}
	if reqs := srv.Requests(); len(reqs) != 0 {
		t.Fatalf("refused commands called AWS: %+v", reqs)
	}
}

// list and show report every secret without printing any value, and list
// never even reads one.
func TestSecretsListAndShowNeverPrintValues(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v := newVendor(t)
	d := defaultDeployment(v)
	d.AIProvider, d.AIModel = "anthropic", "claude-sonnet-4-5"
	config := d.write(t)
	srv := awstest.Start(t)

	lic := strings.TrimSpace(v.validLicense(t))
	aiKey := "sk-ant-api03-" + strings.Repeat("Qw7-", 20)
	seed := make([]byte, 32)
	rand.Read(seed)
	identity := base64.RawURLEncoding.EncodeToString(seed) // as the agent stores its key
	dbPassword := "Pg-password-that-must-never-show"
	srv.CreateSecret(t, licenseSecret, lic)
	srv.CreateSecret(t, "tether/acme-docs/ai", aiKey)
	srv.CreateSecret(t, "tether/acme-docs/agent-identity", identity)
	// RDS's secret, named as RDS names it, found through the data stack.
	dbName := "rds!db-3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"
	dbARN := srv.CreateSecret(t, dbName, `{"username":"tether","password":"`+dbPassword+`","engine":"postgres"}`)
	enableRotation(t, srv, dbARN)
	createDataStack(t, srv, "acme-docs-data", dbARN)
	values := []string{lic, aiKey, identity, dbPassword}

	in := invocation{env: envOf(srv.Env())}
	list := in.run(ctx, "secrets", "list", "--config", config)
	if list.err != nil {
		t.Fatalf("list: %v\n%s", list.err, list.all())
	}
	for _, want := range []string{licenseSecret, "tether/acme-docs/ai", "tether/acme-docs/agent-identity", dbName, "the operator", "tether-agent itself", "RDS"} {
		if !strings.Contains(list.stdout, want) {
			t.Errorf("list does not show %q:\n%s", want, list.stdout)
		}
	}
	if requested(srv, "secretsmanager.GetSecretValue") {
		t.Error("list read a secret's value")
	}
	listJSON := in.run(ctx, "secrets", "list", "--config", config, "--output", "json")
	var states []struct {
		Name       string `json:"name"`
		SecretName string `json:"secret_name"`
		Exists     bool   `json:"exists"`
		HasValue   bool   `json:"has_value"`
		SetBy      string `json:"set_by"`
	}
	if err := json.Unmarshal([]byte(listJSON.stdout), &states); err != nil || len(states) != 4 {
		t.Fatalf("list json: %v\n%s", err, listJSON.stdout)
	}
	for _, s := range states {
		if !s.Exists || !s.HasValue || s.SetBy == "" {
			t.Errorf("list json: %+v", s)
		}
	}

	outputs := []output{list, listJSON}
	for _, name := range []string{"license", "ai", "agent-identity", "database"} {
		for _, format := range []string{"text", "json"} {
			o := in.run(ctx, "secrets", "show", name, "--config", config, "--output", format)
			if o.err != nil || !strings.Contains(o.stdout, "PASS") {
				t.Errorf("show %s --output %s: %v\n%s", name, format, o.err, o.all())
			}
			outputs = append(outputs, o)
		}
	}
	for _, o := range outputs {
		for _, val := range values {
			if strings.Contains(o.all(), val) {
				t.Fatalf("a secret value was printed:\n%s", o.all())
			}
		}
	}
	for _, r := range srv.Requests() {
		if r.Target == "secretsmanager.GetSecretValue" && (strings.Contains(string(r.Body), "rds!db") || strings.Contains(string(r.Body), dbARN)) {
			t.Fatal("show read the database password")
		}
	}
}

// enableRotation turns on 7-day rotation as RDS does for the secret of a
// managed master password. moto runs no rotation; with RotateImmediately
// false it only records the schedule, which is all the check reads.
func enableRotation(t testing.TB, srv *awstest.Server, id string) {
	t.Helper()
	_, err := secretsmanager.NewFromConfig(srv.AWSConfig()).RotateSecret(context.Background(), &secretsmanager.RotateSecretInput{
		SecretId: aws.String(id), RotateImmediately: aws.Bool(false),
		RotationRules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(7)},
	})
	if err != nil {
		t.Fatalf("rotate %s: %v", id, err)
	}
}

func TestSecretsShowVerdicts(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v := newVendor(t)
	config := defaultDeployment(v).write(t)
	srv := awstest.Start(t)
	in := invocation{env: envOf(srv.Env())}

	// Nothing deployed yet. A FAIL verdict is printed, and show exits 1.
	if o := in.run(ctx, "secrets", "show", "license", "--config", config); o.err == nil || ctl.IsUsage(o.err) || !strings.Contains(o.stdout, "does not exist") {
		t.Fatalf("show of a missing secret: %v\n%s", o.err, o.all())
	}
	// The stack's placeholders: a license that is none, an identity the agent cannot read.
	placeholder := strings.Repeat("Zq4", 16)
	srv.CreateSecret(t, licenseSecret, placeholder)
	srv.CreateSecret(t, "tether/acme-docs/agent-identity", placeholder)
	for _, tc := range []struct{ name, want string }{
		{"license", "placeholder"},
		{"agent-identity", "cannot read as its key"},
	} {
		o := in.run(ctx, "secrets", "show", tc.name, "--config", config)
		if o.err == nil || !strings.Contains(o.stdout, "FAIL") || !strings.Contains(o.stdout, tc.want) || strings.Contains(o.all(), placeholder) {
			t.Errorf("show %s over a placeholder: %v\n%s", tc.name, o.err, o.all())
		}
	}
	// An identity secret the stack left empty is the agent's to fill.
	srv.CreateSecret(t, "tether/other/agent-identity", "")
	d := defaultDeployment(v)
	d.Name = "other"
	if o := in.run(ctx, "secrets", "show", "agent-identity", "--config", d.write(t)); o.err != nil || !strings.Contains(o.stdout, "created by the agent on first start") {
		t.Errorf("show of an empty identity: %v\n%s", o.err, o.all())
	}
}

// Secrets are read and written only in deployment.yaml's account and
// region: other credentials or another region are refused before any
// secret is touched.
func TestSecretsRefuseTheWrongAccountOrRegion(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v := newVendor(t)
	srv := awstest.Start(t)
	srv.CreateSecret(t, licenseSecret, "before")

	wrongAccount := defaultDeployment(v)
	wrongAccount.Account = "111122223333"
	o := invocation{env: envOf(srv.Env()), stdin: strings.NewReader(v.validLicense(t))}.
		run(ctx, "secrets", "set", "license", "--config", wrongAccount.write(t))
	if o.err == nil || !strings.Contains(o.err.Error(), "111122223333") || !strings.Contains(o.err.Error(), awstest.Account) {
		t.Fatalf("set with another account's credentials: %v", o.err)
	}
	o = invocation{env: envOf(srv.Env())}.run(ctx, "secrets", "list", "--config", defaultDeployment(v).write(t), "--region", "eu-west-1")
	if o.err == nil || !strings.Contains(o.err.Error(), "--region "+awstest.Region) {
		t.Fatalf("list in another region: %v", o.err)
	}
	if got, _ := srv.SecretValue(t, licenseSecret); got != "before" || requested(srv, "secretsmanager.PutSecretValue") {
		t.Fatal("a secret was written despite the mismatch")
	}
}

// The environment given to Run is the one that counts, so tests in
// parallel each reach their own emulator. A per-service endpoint variable
// wins over AWS_ENDPOINT_URL, as in the SDK.
func TestSecretsUseTheGivenEnvironment(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v := newVendor(t)
	srv := awstest.Start(t)
	env := envOf(srv.Env(), []string{
		"AWS_ENDPOINT_URL=http://127.0.0.1:1", // nothing listens on port 1
		"AWS_ENDPOINT_URL_STS=" + srv.Endpoint(),
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + srv.Endpoint(),
		"AWS_ENDPOINT_URL_CLOUDFORMATION=" + srv.Endpoint(), // the data stack names the database's secret
	})
	o := invocation{env: env}.run(ctx, "secrets", "list", "--config", defaultDeployment(v).write(t))
	if o.err != nil {
		t.Fatalf("list through per-service endpoints: %v\n%s", o.err, o.all())
	}
	// And a secret made through the SDK directly is what list sees.
	if _, err := secretsmanager.NewFromConfig(srv.AWSConfig()).CreateSecret(context.Background(),
		&secretsmanager.CreateSecretInput{Name: aws.String(licenseSecret), SecretString: aws.String("x")}); err != nil {
		t.Fatal(err)
	}
	o = invocation{env: env}.run(ctx, "secrets", "list", "--config", defaultDeployment(v).write(t), "--output", "json")
	if !strings.Contains(o.stdout, `"has_value": true`) {
		t.Fatalf("list after creating the license:\n%s", o.all())
	}
}

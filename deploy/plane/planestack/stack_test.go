package planestack

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/tetherhq/tether/internal/cfncheck"
)

var testProps = Props{
	Name: "tether-plane", Account: "123456789012", Region: "eu-west-1",
	CertificateARN: "arn:aws:acm:eu-west-1:123456789012:certificate/0b7c2a44-1c2d-4f3e-9a8b-123456789abc",
	Image:          "123456789012.dkr.ecr.eu-west-1.amazonaws.com/tether-plane@sha256:" + strings.Repeat("a", 64),
	Replicas:       2, AlarmEmail: "oncall@vendor.example",
	OIDCIssuer: "https://login.vendor.example", OIDCClientID: "tether-plane",
	OIDCRedirectURL:     "https://plane.vendor.example/login/callback",
	OIDCClientSecretARN: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:tether-plane/oidc-AbCdEf",
}

type synthesized struct {
	stack    *Stack
	tpl      assertions.Template
	json     map[string]any
	template string // path of the synthesized template
}

var (
	synthOnce sync.Once
	synthed   *synthesized
	synthErr  error
	synthDir  string // outlives the test that made it: TestMain removes it
)

func TestMain(m *testing.M) {
	code := m.Run()
	if synthDir != "" {
		os.RemoveAll(synthDir)
	}
	os.Exit(code)
}

// synth synthesizes the stack once per test binary (tens of seconds).
func synth(t *testing.T) *synthesized {
	t.Helper()
	synthOnce.Do(func() {
		outdir, err := os.MkdirTemp("", "tether-plane-cdk")
		if err != nil {
			synthErr = err
			return
		}
		synthDir = outdir
		app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(outdir)})
		st, err := New(app, testProps)
		if err != nil {
			synthErr = err
			return
		}
		app.Synth(nil)
		tpl := assertions.Template_FromStack(st.Stack, nil)
		synthed = &synthesized{stack: st, tpl: tpl, json: *tpl.ToJSON(), template: filepath.Join(outdir, *st.TemplateFile())}
	})
	if synthErr != nil {
		t.Fatal(synthErr)
	}
	return synthed
}

func resourcesOf(s *synthesized, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range s.json["Resources"].(map[string]any) {
		if m := r.(map[string]any); m["Type"] == typ {
			out[id] = m
		}
	}
	return out
}

func props(r map[string]any) map[string]any { p, _ := r["Properties"].(map[string]any); return p }

func TestNagFindsNothingUnsuppressed(t *testing.T) {
	s := synth(t)
	ann := assertions.Annotations_FromStack(s.stack.Stack)
	for _, m := range *ann.FindError(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))) {
		t.Errorf("%s: %v", *m.Id, m.Entry.Data)
	}
	for _, m := range *ann.FindWarning(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("(AwsSolutions-|CdkNagValidationFailure).*"))) {
		t.Errorf("warning %s: %v", *m.Id, m.Entry.Data)
	}
	for id, r := range s.json["Resources"].(map[string]any) {
		md, _ := r.(map[string]any)["Metadata"].(map[string]any)
		nag, _ := md["cdk_nag"].(map[string]any)
		rules, _ := nag["rules_to_suppress"].([]any)
		for _, rule := range rules {
			rm := rule.(map[string]any)
			if reason, _ := rm["reason"].(string); len(reason) < 40 {
				t.Errorf("%s: suppression %v has no specific reason", id, rm["id"])
			}
		}
	}
}

func TestTemplatePassesCfnLintAndCheckov(t *testing.T) {
	lint, ck := cfncheck.Tool(t, "cfn-lint"), cfncheck.Tool(t, "checkov")
	s := synth(t)
	dir := t.TempDir()
	raw, err := os.ReadFile(s.template)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(s.template)), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range cfncheck.ExceptionProblems(filepath.Base(s.template), raw) {
		t.Error(p)
	}
	findings, err := cfncheck.CfnLint(lint, dir, testProps.Region)
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
}

func TestStateIsOffTheHostAndProtected(t *testing.T) {
	s := synth(t)
	// The state bucket: versioned, SSE-KMS, no public access.
	s.tpl.HasResourceProperties(jsii.String("AWS::S3::Bucket"), map[string]any{
		"VersioningConfiguration": map[string]any{"Status": "Enabled"},
		"BucketEncryption": map[string]any{"ServerSideEncryptionConfiguration": []any{map[string]any{
			"ServerSideEncryptionByDefault": map[string]any{"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": true}}},
		"LoggingConfiguration": assertions.Match_ObjectLike(&map[string]any{"LogFilePrefix": "s3/state/"}),
	})
	// The database: multi-AZ, encrypted, backed up for two weeks, protected.
	s.tpl.HasResourceProperties(jsii.String("AWS::RDS::DBInstance"), map[string]any{
		"MultiAZ": true, "StorageEncrypted": true, "BackupRetentionPeriod": 14, "DeletionProtection": true,
		"PubliclyAccessible": false, "Engine": "postgres",
	})
	// Two signing keys TUF accepts (ECDSA P-256), kept if the stack goes.
	keys := 0
	for _, k := range resourcesOf(s, "AWS::KMS::Key") {
		if p := props(k); p["KeySpec"] == "ECC_NIST_P256" && p["KeyUsage"] == "SIGN_VERIFY" && k["DeletionPolicy"] == "Retain" {
			keys++
		}
	}
	if keys != 2 {
		t.Fatalf("%d retained ECC_NIST_P256 signing keys, want 2 (snapshot, timestamp)", keys)
	}
	// The tasks may sign with exactly those keys, and nothing else in KMS
	// but the data key.
	var sign []string
	for _, pol := range resourcesOf(s, "AWS::IAM::Policy") {
		for _, st := range props(pol)["PolicyDocument"].(map[string]any)["Statement"].([]any) {
			stm := st.(map[string]any)
			if a := asJSON(stm["Action"]); strings.Contains(a, `"kms:Sign"`) {
				for _, r := range stm["Resource"].([]any) {
					sign = append(sign, asJSON(r))
				}
			}
		}
	}
	if len(sign) != 2 || !strings.Contains(sign[0], "SigningKey") || !strings.Contains(sign[1], "SigningKey") {
		t.Fatalf("kms:Sign granted on %v; want exactly the two signing keys", sign)
	}
}

func TestServiceRunsReplicatedBehindHTTPS(t *testing.T) {
	s := synth(t)
	s.tpl.HasResourceProperties(jsii.String("AWS::ECS::Service"), map[string]any{
		"DesiredCount": 2, "LaunchType": "FARGATE",
	})
	s.tpl.HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::Listener"), map[string]any{
		"Protocol": "HTTPS", "Port": 443, "SslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
	})
	td := resourcesOf(s, "AWS::ECS::TaskDefinition")
	if len(td) != 1 {
		t.Fatalf("%d task definitions", len(td))
	}
	for _, r := range td {
		c := props(r)["ContainerDefinitions"].([]any)[0].(map[string]any)
		j := asJSON(c)
		for _, want := range []string{`"serve"`, `"--behind-load-balancer"`, `"--keys"`, "TETHER_PLANE_OBJECTS", "TETHER_PLANE_OBJECTS_KMS_KEY",
			"TETHER_PLANE_DATABASE_URL", `"ReadonlyRootFilesystem":true`} {
			if !strings.Contains(j, want) {
				t.Errorf("container lacks %s: %s", want, j)
			}
		}
		secrets := asJSON(c["Secrets"])
		if !strings.Contains(secrets, "TETHER_PLANE_DATABASE_PASSWORD") || !strings.Contains(secrets, "TETHER_PLANE_ADMIN_TOKEN") {
			t.Errorf("the password and admin token must come from Secrets Manager: %s", secrets)
		}
		if !strings.Contains(secrets, "TETHER_PLANE_OIDC_CLIENT_SECRET") || !strings.Contains(secrets, testProps.OIDCClientSecretARN) {
			t.Errorf("staff sign-in's client secret must come from the vendor's secret: %s", secrets)
		}
		env := asJSON(c["Environment"])
		if regexp.MustCompile(`(?i)password|token|secret`).MatchString(env) {
			t.Errorf("a secret in the plain environment: %s", env)
		}
		for _, want := range []string{"TETHER_PLANE_OIDC_ISSUER", testProps.OIDCIssuer, "TETHER_PLANE_OIDC_CLIENT_ID", "TETHER_PLANE_OIDC_REDIRECT_URL"} {
			if !strings.Contains(env, want) {
				t.Errorf("staff sign-in: environment lacks %s: %s", want, env)
			}
		}
	}
}

func TestAlarmsOnIngestErrorsAndStaleInstalls(t *testing.T) {
	s := synth(t)
	filters := map[string]bool{}
	for _, f := range resourcesOf(s, "AWS::Logs::MetricFilter") {
		filters[props(f)["FilterPattern"].(string)] = true
	}
	for _, want := range []string{`{ $.level = "ERROR" && $.msg = "heartbeat" }`, `{ $.msg = "install stale" }`} {
		if !filters[want] {
			t.Errorf("no metric filter %s; have %v", want, filters)
		}
	}
	for _, id := range []string{"HeartbeatIngestErrors", "StaleInstalls", "Target5xx", "UnhealthyTargets"} {
		if s.stack.Alarms[id] == nil {
			t.Errorf("no alarm %s", id)
		}
	}
	s.tpl.ResourceCountIs(jsii.String("AWS::CloudWatch::Alarm"), jsii.Number(4))
	s.tpl.HasResourceProperties(jsii.String("AWS::SNS::Subscription"), map[string]any{"Protocol": "email", "Endpoint": "oncall@vendor.example"})
}

func TestPropsAreValidated(t *testing.T) {
	for _, tt := range []struct {
		mutate func(*Props)
		want   string
	}{
		{func(p *Props) { p.Image = "tether-plane:latest" }, "pin the tether-plane image by digest"},
		{func(p *Props) { p.CertificateARN = "my-cert" }, "ACM certificate ARN"},
		{func(p *Props) { p.Replicas = 1 }, "at least 2"},
		{func(p *Props) { p.Account = "12" }, "12-digit"},
		{func(p *Props) { p.Name = "Tether Plane" }, "a-z 0-9"},
		{func(p *Props) { p.OIDCClientID = "" }, "together"},
		{func(p *Props) { p.OIDCIssuer = "http://login.vendor.example" }, "https issuer URL"},
		{func(p *Props) { p.OIDCRedirectURL = "https://plane.vendor.example/callback" }, "ending in /login/callback"},
		{func(p *Props) { p.OIDCClientSecretARN = "tether-plane/oidc" }, "Secrets Manager secret ARN"},
	} {
		p := testProps
		tt.mutate(&p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate = %v, want %q", err, tt.want)
		}
	}
	if err := testProps.Validate(); err != nil {
		t.Fatal(err)
	}
	noSignIn := testProps
	noSignIn.OIDCIssuer, noSignIn.OIDCClientID, noSignIn.OIDCRedirectURL, noSignIn.OIDCClientSecretARN = "", "", "", ""
	if err := noSignIn.Validate(); err != nil {
		t.Fatalf("a plane without staff sign-in: %v", err)
	}
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func FuzzPropsValidate(f *testing.F) {
	f.Add("tether-plane", "123456789012", "eu-west-1", testProps.CertificateARN, testProps.Image, 2)
	f.Add("x", "1", "", "arn", "img:latest", 0)
	f.Fuzz(func(t *testing.T, name, account, region, cert, image string, replicas int) {
		p := Props{Name: name, Account: account, Region: region, CertificateARN: cert, Image: image, Replicas: replicas}
		if err := p.Validate(); err == nil {
			if !imageRef.MatchString(image) || !certARN.MatchString(cert) || replicas < 2 || !nameRE.MatchString(name) {
				t.Fatalf("accepted %+v", p)
			}
		} else if err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}

package ctl_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/ctl"
)

// motoQuotaGaps are the checks that WARN against moto whatever the test
// seeds: moto's Service Quotas serves only the vpc service's quotas
// (GetServiceQuota answers NoSuchResourceException for fargate, ec2 and
// elasticloadbalancing, and GetAWSDefaultServiceQuota is not implemented),
// so preflight reports that no value came back, as it would for an account
// that cannot read them.
var motoQuotaGaps = []string{"quota-fargate-vcpu", "quota-elastic-ips", "quota-albs"}

// motoSimulatorGap: moto does not implement IAM SimulatePrincipalPolicy (it
// answers HTTP 500), so the permissions check WARNs that the simulator did
// not judge the caller; its decisions are tested on iam output values
// (TestPermissionsDecision).
const motoSimulatorGap = "permissions"

// ready is an account seeded with everything the checks look for: the
// state after a successful first deployment, with the license set.
type ready struct {
	srv       *awstest.Server
	vendor    vendor
	d         deployment
	env       map[string]string
	toolsDir  string
	transport http.RoundTripper
}

func seedReady(t *testing.T) *ready {
	t.Helper()
	srv := awstest.Start(t)
	v := newVendor(t)
	d := defaultDeployment(v)
	d.AIProvider, d.AIModel = "anthropic", "claude-sonnet-4-5"
	d.ZoneID, d.ZoneName = "", ""
	d.CertARN = importCertificate(t, srv.AWSConfig(), time.Now().AddDate(0, 3, 0), d.Domain)
	srv.PutParameter(t, "/cdk-bootstrap/hnb659fds/version", "21", false)
	createDataStack(t, srv, "acme-docs-data", rdsSecret(t, srv))
	srv.CreateSecret(t, licenseSecret, v.validLicense(t))
	srv.CreateSecret(t, "tether/acme-docs/ai", "sk-ant-api03-"+strings.Repeat("k3Y_", 20))
	srv.CreateSecret(t, "tether/acme-docs/agent-identity", "")
	planeURL, transport := planeServer(t, http.StatusNotFound)
	d.PlaneURL = planeURL
	pathDir, toolsDir := fakeTools(t, "v20.11.1", "2.1148.1", "2.1148.1")
	return &ready{srv: srv, vendor: v, d: d, env: envOf(srv.Env(), []string{"PATH=" + pathDir}), toolsDir: toolsDir, transport: transport}
}

func (r *ready) preflight(ctx context.Context, t *testing.T, args ...string) output {
	t.Helper()
	args = append([]string{"preflight", "--config", r.d.write(t), "--tools-dir", r.toolsDir}, args...)
	return invocation{env: r.env, transport: r.transport}.run(ctx, args...)
}

// createStack makes a CloudFormation stack of that name, standing in for
// the deployed data stack of an earlier release (preflight only asks
// whether it exists), with no DatabaseSecretArn output.
func createStack(t testing.TB, srv *awstest.Server, name string) { createDataStack(t, srv, name, "") }

// rdsSecret creates the secret RDS keeps a managed master password in,
// under the kind of name RDS gives it, with the 7-day rotation RDS turns
// on. moto runs no rotation; with RotateImmediately false it only records
// the schedule, which is all the check reads.
func rdsSecret(t testing.TB, srv *awstest.Server) string {
	t.Helper()
	arn := srv.CreateSecret(t, "rds!db-3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b", `{"username":"tether","password":"pw"}`)
	enableRotation(t, srv, arn)
	return arn
}

// createDataStack makes a CloudFormation stack of that name, standing in
// for the deployed data stack: its DatabaseSecretArn output names
// dbSecret (none when empty, as an earlier release's stack had).
func createDataStack(t testing.TB, srv *awstest.Server, name, dbSecret string) {
	t.Helper()
	outputs := ""
	if dbSecret != "" {
		outputs = `,"Outputs":{"DatabaseSecretArn":{"Value":"` + dbSecret + `"}}`
	}
	_, err := cloudformation.NewFromConfig(srv.AWSConfig()).CreateStack(context.Background(), &cloudformation.CreateStackInput{
		StackName:    aws.String(name),
		TemplateBody: aws.String(`{"Resources":{"Marker":{"Type":"AWS::SSM::Parameter","Properties":{"Type":"String","Value":"x","Name":"/test/` + name + `"}}}` + outputs + `}`),
	})
	if err != nil {
		t.Fatalf("create stack %s: %v", name, err)
	}
}

func TestPreflightAllPass(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	r := seedReady(t)
	out := r.preflight(ctx, t, "--output", "json")
	checks := parseChecks(t, out)
	if len(checks) != 17 { // every check but hosted-zone (this deployment brings a certificate)
		t.Errorf("%d checks ran, want 17:\n%s", len(checks), out.stdout)
	}
	if c := checks[motoSimulatorGap]; c.Status != "WARN" || !strings.Contains(c.Detail, "did not judge arn:aws:iam::"+awstest.Account+":user/moto") {
		t.Errorf("permissions: %+v, want the simulator's gap reported as a WARN", c)
	}
	delete(checks, motoSimulatorGap)
	for id, c := range checks {
		want := "PASS"
		for _, gap := range motoQuotaGaps {
			if id == gap {
				want = "WARN"
			}
		}
		if c.Status != want {
			t.Errorf("%s: %s %s (fix: %s), want %s", id, c.Status, c.Detail, c.Fix, want)
		}
	}
	for _, gap := range motoQuotaGaps {
		if c := checks[gap]; !strings.Contains(c.Detail, "returned no value") || !strings.Contains(c.Fix, "get-service-quota") {
			t.Errorf("%s: %+v, want the no-value warning with a lookup command", gap, c)
		}
	}
	if out.err != nil {
		t.Fatalf("preflight with no FAIL returned %v", out.err)
	}
	var raw []map[string]any
	if err := json.Unmarshal([]byte(out.stdout), &raw); err != nil {
		t.Fatal(err)
	}
	for _, item := range raw {
		if len(item) != 5 || item["id"] == nil || item["title"] == nil || item["status"] == nil || item["detail"] == nil || item["fix"] == nil {
			t.Fatalf("element %v: want exactly id, title, status, detail, fix", item)
		}
	}

	// The text checklist says the same, one line per check and a fix
	// under each warning.
	text := r.preflight(ctx, t)
	if text.err != nil || !strings.Contains(text.stdout, "PASS  aws-credentials") ||
		!strings.Contains(text.stdout, "WARN  quota-albs") || !strings.Contains(text.stdout, "fix: look the quota up") ||
		!strings.Contains(text.stdout, "13 passed, 4 warnings, 0 failed") {
		t.Fatalf("text checklist: %v\n%s", text.err, text.stdout)
	}
}

// Each failure that stops a deployment is a FAIL of its own check, with a
// fix, and makes preflight exit non-zero.
func TestPreflightFailures(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tests := []struct {
		name   string
		break_ func(t *testing.T, r *ready)
		args   []string
		check  string
		status string
		detail string
	}{
		{name: "credentials for another account", check: "aws-credentials", status: "FAIL", detail: "111122223333",
			break_: func(t *testing.T, r *ready) {
				r.d.Account = "111122223333"
				r.d.CertARN = strings.Replace(r.d.CertARN, awstest.Account, "111122223333", 1)
			}},
		{name: "another region on the command line", check: "aws-region", status: "FAIL", detail: "from --region is eu-west-1",
			args: []string{"--region", "eu-west-1"}},
		{name: "not bootstrapped", check: "cdk-bootstrap", status: "FAIL", detail: "no SSM parameter /cdk-bootstrap/hnb659fds/version",
			break_: func(t *testing.T, r *ready) { deleteParameter(t, r.srv, "/cdk-bootstrap/hnb659fds/version") }},
		{name: "bootstrapped with another qualifier", check: "cdk-bootstrap", status: "FAIL", detail: "/cdk-bootstrap/custom1/version",
			break_: func(t *testing.T, r *ready) { r.d.Qualifier = "custom1" }},
		{name: "bootstrap too old", check: "cdk-bootstrap", status: "FAIL", detail: "older than 6",
			break_: func(t *testing.T, r *ready) { r.srv.PutParameter(t, "/cdk-bootstrap/hnb659fds/version", "5", false) }},
		{name: "license secret missing after deploy", check: "secret-license", status: "FAIL", detail: "does not exist",
			break_: func(t *testing.T, r *ready) { r.d.Name = "acme-other"; createStack(t, r.srv, "acme-other-data") }},
		{name: "license secret still empty after deploy", check: "secret-license", status: "FAIL", detail: "has no value yet",
			break_: func(t *testing.T, r *ready) {
				r.d.Name = "acme-empty"
				createStack(t, r.srv, "acme-empty-data")
				r.srv.CreateSecret(t, "tether/acme-empty/license", "")
			}},
		{name: "license secret missing before deploy", check: "secret-license", status: "WARN", detail: "the acme-new-data stack creates it",
			break_: func(t *testing.T, r *ready) { r.d.Name = "acme-new" }},
		{name: "database secret before deploy", check: "secret-database", status: "PASS", detail: "RDS creates it with the database of the acme-new-data stack",
			break_: func(t *testing.T, r *ready) { r.d.Name = "acme-new" }},
		{name: "data stack of an earlier release", check: "secret-database", status: "FAIL", detail: "the acme-other-data stack has no DatabaseSecretArn output",
			break_: func(t *testing.T, r *ready) { r.d.Name = "acme-other"; createStack(t, r.srv, "acme-other-data") }},
		{name: "database secret gone", check: "secret-database", status: "FAIL", detail: "the acme-gone-data stack's DatabaseSecretArn, does not exist",
			break_: func(t *testing.T, r *ready) {
				r.d.Name = "acme-gone"
				createDataStack(t, r.srv, "acme-gone-data", "arn:aws:secretsmanager:"+awstest.Region+":"+awstest.Account+":secret:rds!db-0a0a0a0a-0a0a-4a0a-8a0a-0a0a0a0a0a0a-AbCdEf")
			}},
		{name: "database secret rotation off", check: "secret-database", status: "WARN", detail: "rotation is off",
			break_: func(t *testing.T, r *ready) {
				r.d.Name = "acme-norot"
				createDataStack(t, r.srv, "acme-norot-data", r.srv.CreateSecret(t, "rds!db-1b1b1b1b-1b1b-4b1b-8b1b-1b1b1b1b1b1b", `{"username":"tether","password":"pw"}`))
			}},
		{name: "license expired past grace", check: "secret-license", status: "FAIL", detail: "grace period ended",
			break_: func(t *testing.T, r *ready) {
				putSecret(t, r.srv, licenseSecret, r.vendor.license(t, now.AddDate(-2, 0, 0), now.AddDate(0, -2, 0)))
			}},
		{name: "license from another vendor key", check: "secret-license", status: "FAIL", detail: "signed by key",
			break_: func(t *testing.T, r *ready) { putSecret(t, r.srv, licenseSecret, newVendor(t).validLicense(t)) }},
		{name: "license still the stack's placeholder", check: "secret-license", status: "FAIL", detail: "placeholder",
			break_: func(t *testing.T, r *ready) { putSecret(t, r.srv, licenseSecret, strings.Repeat("Ab1", 16)) }},
		{name: "AI key with a line break", check: "secret-ai", status: "FAIL", detail: "whitespace",
			break_: func(t *testing.T, r *ready) { putSecret(t, r.srv, "tether/acme-docs/ai", "sk-ant-abc\n") }},
		{name: "certificate for another name", check: "acm-certificate", status: "FAIL", detail: "covers *.other.example, not docs.acme.example",
			break_: func(t *testing.T, r *ready) {
				r.d.CertARN = importCertificate(t, r.srv.AWSConfig(), now.AddDate(0, 3, 0), "*.other.example")
			}},
		{name: "wildcard one level too high", check: "acm-certificate", status: "FAIL", detail: "not docs.acme.example",
			break_: func(t *testing.T, r *ready) {
				r.d.CertARN = importCertificate(t, r.srv.AWSConfig(), now.AddDate(0, 3, 0), "*.example")
			}},
		{name: "certificate still pending validation", check: "acm-certificate", status: "FAIL", detail: "PENDING_VALIDATION",
			break_: func(t *testing.T, r *ready) { r.d.CertARN = requestCertificate(t, r.srv, r.d.Domain) }},
		{name: "certificate about to expire", check: "acm-certificate", status: "WARN", detail: "expires on",
			break_: func(t *testing.T, r *ready) {
				r.d.CertARN = importCertificate(t, r.srv.AWSConfig(), now.AddDate(0, 0, 10), r.d.Domain)
			}},
		{name: "no room for another VPC", check: "quota-vpcs", status: "FAIL", detail: "with 5 in use",
			break_: func(t *testing.T, r *ready) { createVPCs(t, r.srv, 4) }},
		{name: "plane unreachable", check: "plane-reachable", status: "FAIL", detail: "cannot reach https://example.com",
			break_: func(t *testing.T, r *ready) { r.transport = deadTransport(t) }},
		{name: "old Node.js", check: "nodejs", status: "FAIL", detail: "older than 18",
			break_: func(t *testing.T, r *ready) {
				path, _ := fakeTools(t, "v16.20.2", "2.1148.1", "2.1148.1")
				r.env["PATH"] = path
			}},
		{name: "no Node.js", check: "nodejs", status: "FAIL", detail: "not on PATH",
			break_: func(t *testing.T, r *ready) { r.env["PATH"] = t.TempDir() }},
		{name: "CDK CLI other than the pin", check: "cdk-cli", status: "FAIL", detail: "is 2.1000.0, but",
			break_: func(t *testing.T, r *ready) { _, r.toolsDir = fakeTools(t, "v20.11.1", "2.1148.1", "2.1000.0") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			r := seedReady(t)
			if tc.break_ != nil {
				tc.break_(t, r)
			}
			out := r.preflight(ctx, t, append([]string{"--output", "json"}, tc.args...)...)
			c, ok := parseChecks(t, out)[tc.check]
			if !ok {
				t.Fatalf("no %s check in:\n%s", tc.check, out.stdout)
			}
			if c.Status != tc.status || !strings.Contains(c.Detail, tc.detail) {
				t.Fatalf("%s: %s %q (fix %q), want %s with %q", tc.check, c.Status, c.Detail, c.Fix, tc.status, tc.detail)
			}
			if tc.status == "FAIL" && (out.err == nil || ctl.IsUsage(out.err)) {
				t.Fatalf("preflight with a FAIL returned %v, want a failure", out.err)
			}
		})
	}
}

func TestPreflightHostedZone(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	r := seedReady(t)
	r.d.CertARN = ""
	r.d.ZoneID, r.d.ZoneName = createZone(t, r.srv, "acme.example", false), "acme.example"
	privateID := createZone(t, r.srv, "acme.example", true)

	for _, tc := range []struct {
		name, id, zone, status, detail string
	}{
		{"the public zone", r.d.ZoneID, "acme.example", "PASS", "public zone acme.example"},
		{"a private zone", privateID, "acme.example", "FAIL", "is private"},
		{"no such zone", "Z0000000000000000NONE", "acme.example", "FAIL", "no hosted zone"},
	} {
		d := *r
		d.d.ZoneID, d.d.ZoneName = tc.id, tc.zone
		c := parseChecks(t, d.preflight(ctx, t, "--output", "json"))["hosted-zone"]
		if c.Status != tc.status || !strings.Contains(c.Detail, tc.detail) {
			t.Errorf("%s: %s %q, want %s with %q", tc.name, c.Status, c.Detail, tc.status, tc.detail)
		}
	}
}

// awsChecks are the checks that call AWS for a deployment with a
// certificate and Bedrock.
var awsChecks = []string{
	"aws-credentials", "permissions", "aws-region", "availability-zones", "quota-fargate-vcpu", "quota-vpcs",
	"quota-elastic-ips", "quota-albs", "cdk-bootstrap", "acm-certificate", "bedrock-model",
	"secret-license", "secret-agent-identity", "secret-database",
}

// Against an endpoint that refuses connections, or accepts them and never
// answers, every AWS check FAILs with its reason, and the run ends: the
// test's context deadline is the bound, not a timing assertion.
func TestPreflightDeadEndpoint(t *testing.T) {
	t.Parallel()
	v := newVendor(t)
	d := defaultDeployment(v)
	d.ZoneID, d.ZoneName = "", ""
	d.AIProvider, d.AIModel = "bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0"
	d.CertARN = "arn:aws:acm:" + awstest.Region + ":" + awstest.Account + ":certificate/0b9a8c7d-1234-4e5f-8a9b-0c1d2e3f4a5b"
	config := d.write(t)
	pathDir, toolsDir := fakeTools(t, "v20.11.1", "2.1148.1", "2.1148.1")

	tests := []struct {
		name     string
		endpoint func(t *testing.T) string
		reasons  []string
	}{
		{"closed port", closedPort, []string{"connection refused"}},
		{"never answers", silentListener, []string{"no answer", "did not finish within"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			env := envOf([]string{
				"AWS_ENDPOINT_URL=" + tc.endpoint(t), "AWS_REGION=" + awstest.Region,
				"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true",
				"PATH=" + pathDir,
			})
			out := invocation{env: env}.run(ctx, "preflight", "--config", config, "--tools-dir", toolsDir, "--output", "json", "--timeout", "3s")
			if ctx.Err() != nil {
				t.Fatal("preflight did not finish before the test's deadline")
			}
			checks := parseChecks(t, out)
			for _, id := range awsChecks {
				c, ok := checks[id]
				if !ok {
					t.Errorf("%s did not report", id)
					continue
				}
				if c.Status != "FAIL" || !containsAny(c.Detail, tc.reasons) {
					t.Errorf("%s: %s %q, want FAIL saying %q", id, c.Status, c.Detail, tc.reasons)
				}
			}
			if out.err == nil {
				t.Fatal("preflight against a dead endpoint exited 0")
			}
		})
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// closedPort is the URL of a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// silentListener accepts connections and never answers on them.
func silentListener(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + l.Addr().String()
}

// deadTransport is a transport whose every connection is refused.
func deadTransport(t *testing.T) http.RoundTripper {
	addr := strings.TrimPrefix(closedPort(t), "http://")
	return &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

func putSecret(t testing.TB, srv *awstest.Server, name, value string) {
	t.Helper()
	if _, err := secretsmanager.NewFromConfig(srv.AWSConfig()).PutSecretValue(context.Background(),
		&secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(value)}); err != nil {
		t.Fatalf("put %s: %v", name, err)
	}
}

func deleteParameter(t testing.TB, srv *awstest.Server, name string) {
	t.Helper()
	if _, err := ssm.NewFromConfig(srv.AWSConfig()).DeleteParameter(context.Background(), &ssm.DeleteParameterInput{Name: aws.String(name)}); err != nil {
		t.Fatalf("delete %s: %v", name, err)
	}
}

// requestCertificate asks ACM for a certificate; until it is validated
// (by DNS, which nothing does here) its status is PENDING_VALIDATION.
func requestCertificate(t testing.TB, srv *awstest.Server, domain string) string {
	t.Helper()
	out, err := acm.NewFromConfig(srv.AWSConfig()).RequestCertificate(context.Background(), &acm.RequestCertificateInput{DomainName: aws.String(domain)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.CertificateArn)
}

func createVPCs(t testing.TB, srv *awstest.Server, n int) {
	t.Helper()
	client := ec2.NewFromConfig(srv.AWSConfig())
	for i := range n {
		if _, err := client.CreateVpc(context.Background(), &ec2.CreateVpcInput{CidrBlock: aws.String(fmt.Sprintf("10.%d.0.0/16", 100+i))}); err != nil {
			t.Fatal(err)
		}
	}
}

// createZone makes a Route 53 hosted zone and returns its ID. Route 53's
// IDs start with Z, and deployment.yaml accepts only those; moto's are 22
// random letters and digits, so zones are made until one starts with Z.
func createZone(t testing.TB, srv *awstest.Server, name string, private bool) string {
	t.Helper()
	client := route53.NewFromConfig(srv.AWSConfig())
	for i := range 500 {
		in := &route53.CreateHostedZoneInput{Name: aws.String(name), CallerReference: aws.String(fmt.Sprintf("%s-%v-%d-%d", name, private, time.Now().UnixNano(), i))}
		if private {
			in.HostedZoneConfig = &r53types.HostedZoneConfig{PrivateZone: true}
		}
		out, err := client.CreateHostedZone(context.Background(), in)
		if err != nil {
			t.Fatalf("create zone: %v", err)
		}
		if id := strings.TrimPrefix(aws.ToString(out.HostedZone.Id), "/hostedzone/"); strings.HasPrefix(id, "Z") {
			return id
		}
	}
	t.Fatal("moto made no hosted zone ID starting with Z in 500 tries")
	return ""
}

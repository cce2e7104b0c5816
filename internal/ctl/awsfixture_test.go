package ctl_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/ctl"
	"github.com/tetherhq/tether/internal/license"
	"github.com/tetherhq/tether/internal/license/issuer"
)

// vendor is a license-signing key, as the vendor's plane holds one.
type vendor struct {
	pub    ed25519.PublicKey
	priv   ed25519.PrivateKey
	pubPEM string
}

func newVendor(t testing.TB) vendor {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return vendor{pub: pub, priv: priv, pubPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}
}

// license issues a license valid from issued to expires with 14 days' grace.
func (v vendor) license(t testing.TB, issued, expires time.Time, channels ...string) string {
	t.Helper()
	if len(channels) == 0 {
		channels = []string{"stable"}
	}
	file, _, err := issuer.Issue(v.priv, license.License{
		ID: "lic_test_" + issued.Format("20060102"), Customer: "ACME Corp",
		IssuedAt: issued, ExpiresAt: expires, GraceSeconds: 14 * 24 * 3600, Channels: channels,
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(file)
}

func (v vendor) validLicense(t testing.TB) string {
	now := time.Now()
	return v.license(t, now.AddDate(0, -1, 0), now.AddDate(1, 0, 0))
}

// deployment is what a test's deployment.yaml says.
type deployment struct {
	Name       string
	Account    string
	Region     string
	Domain     string
	CertARN    string
	ZoneID     string
	ZoneName   string
	AIProvider string
	AIModel    string
	AIBaseURL  string
	PlaneURL   string
	PublicKey  string
	Qualifier  string
	MultiAZ    bool
	Digest     string // images.docsvc_digest and agent_digest, when set
}

var deploymentTemplate = template.Must(template.New("deployment.yaml").Parse(`version: 1
name: {{.Name}}
account: "{{.Account}}"
region: {{.Region}}
domain:
  name: {{.Domain}}
{{- if .CertARN}}
  certificate_arn: {{.CertARN}}
{{- else}}
  hosted_zone:
    id: {{.ZoneID}}
    name: {{.ZoneName}}
{{- end}}
auth:
  provider: oidc
  issuer: https://login.acme.example/realms/staff
  client_id: tether-docs
email_sender: noreply@acme.example
ai:
  provider: {{.AIProvider}}
{{- if .AIModel}}
  model: {{.AIModel}}
{{- end}}
{{- if .AIBaseURL}}
  base_url: {{.AIBaseURL}}
{{- end}}
images:
  source: vendor
  vendor_registry: registry.vendor.example/tether
{{- if .Digest}}
  docsvc_digest: {{.Digest}}
  agent_digest: {{.Digest}}
{{- end}}
plane:
{{- if .PlaneURL}}
  url: {{.PlaneURL}}
{{- end}}
  channel: stable
  trusted_root: '{"signed":{"_type":"root"},"signatures":[]}'
license:
  public_key: |
{{.PublicKey}}
{{- if .Qualifier}}
cdk:
  qualifier: {{.Qualifier}}
{{- end}}
{{- if .MultiAZ}}
sizing:
  multi_az: true
{{- end}}
`))

// defaultDeployment describes a deployment in moto's account and region,
// using the local analyzer and a hosted zone.
func defaultDeployment(v vendor) deployment {
	return deployment{
		Name: "acme-docs", Account: awstest.Account, Region: awstest.Region,
		Domain: "docs.acme.example", ZoneID: "Z0000000000000000TEST", ZoneName: "acme.example",
		AIProvider: "local", PublicKey: v.pubPEM,
	}
}

// write saves the deployment.yaml in a fresh directory and returns its path.
func (d deployment) write(t testing.TB) string {
	t.Helper()
	var indented []string
	for _, line := range strings.Split(strings.TrimSpace(d.PublicKey), "\n") {
		indented = append(indented, "    "+line)
	}
	d.PublicKey = strings.Join(indented, "\n")
	var b bytes.Buffer
	if err := deploymentTemplate.Execute(&b, d); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "deployment.yaml")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// envOf turns KEY=VALUE pairs into a getenv, so each test has its own
// environment without touching the process's.
func envOf(pairs ...[]string) map[string]string {
	m := map[string]string{}
	for _, list := range pairs {
		for _, kv := range list {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
	}
	return m
}

// invocation is one run of tetherctl, in process.
type invocation struct {
	env       map[string]string
	stdin     io.Reader
	transport http.RoundTripper
}

type output struct {
	stdout, stderr string
	err            error
}

// all is everything the run printed, errors included.
func (o output) all() string {
	s := o.stdout + o.stderr
	if o.err != nil {
		s += o.err.Error()
	}
	return s
}

func (in invocation) run(ctx context.Context, args ...string) output {
	var stdout, stderr bytes.Buffer
	stdin := in.stdin
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	err := ctl.RunEnv(ctx, args, ctl.Env{
		Stdin: stdin, Stdout: &stdout, Stderr: &stderr,
		Getenv:        func(k string) string { return in.env[k] },
		HTTPTransport: in.transport,
	})
	return output{stdout.String(), stderr.String(), err}
}

// testContext bounds a test's runs: a hung command fails the test rather
// than the whole binary's timeout.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// fakeTools makes a PATH holding a node that prints version, and a tools
// dir with the CDK CLI pinned and installed at pin (installed may differ).
func fakeTools(t testing.TB, nodeVersion, pin, installed string) (pathDir, toolsDir string) {
	t.Helper()
	root := t.TempDir()
	pathDir = filepath.Join(root, "bin")
	toolsDir = filepath.Join(root, "tools")
	mustWrite(t, filepath.Join(pathDir, "node"), "#!/bin/sh\necho "+nodeVersion+"\n", 0o755)
	mustWrite(t, filepath.Join(toolsDir, "package.json"), `{"dependencies":{"aws-cdk":"`+pin+`"}}`, 0o644)
	mustWrite(t, filepath.Join(toolsDir, "node_modules", "aws-cdk", "package.json"), `{"name":"aws-cdk","version":"`+installed+`"}`, 0o644)
	mustWrite(t, filepath.Join(toolsDir, "node_modules", ".bin", "cdk"), "#!/bin/sh\necho "+installed+"\n", 0o755)
	return pathDir, toolsDir
}

func mustWrite(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// planeServer is an HTTPS server standing in for the vendor plane at
// https://example.com (the name its test certificate carries), and a
// transport that reaches it whatever the host name resolves to.
func planeServer(t testing.TB, status int) (url string, transport http.RoundTripper) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	addr := srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return "https://example.com", tr
}

// importCertificate imports a self-signed certificate for names into ACM
// and returns its ARN. Imported certificates are ISSUED at once in moto, as
// in ACM; requested ones wait for validation.
func importCertificate(t testing.TB, cfg aws.Config, notAfter time.Time, names ...string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	out, err := acm.NewFromConfig(cfg).ImportCertificate(context.Background(), &acm.ImportCertificateInput{
		Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		PrivateKey:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	})
	if err != nil {
		t.Fatalf("import certificate: %v", err)
	}
	return aws.ToString(out.CertificateArn)
}

// checkResult is one element of preflight --output json.
type checkResult struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix"`
}

func parseChecks(t testing.TB, o output) map[string]checkResult {
	t.Helper()
	var list []checkResult
	if err := json.Unmarshal([]byte(o.stdout), &list); err != nil {
		t.Fatalf("preflight --output json printed no JSON array: %v\nstdout:\n%s\nstderr:\n%s\nerr: %v", err, o.stdout, o.stderr, o.err)
	}
	m := map[string]checkResult{}
	for _, r := range list {
		if _, dup := m[r.ID]; dup {
			t.Fatalf("check %s reported twice", r.ID)
		}
		if r.Status != "PASS" && r.Fix == "" {
			t.Errorf("check %s is %s without a fix: %s", r.ID, r.Status, r.Detail)
		}
		if strings.Contains(r.Detail, "\n") || strings.Contains(r.Fix, "\n") {
			t.Errorf("check %s spans lines: %q / %q", r.ID, r.Detail, r.Fix)
		}
		m[r.ID] = r
	}
	return m
}

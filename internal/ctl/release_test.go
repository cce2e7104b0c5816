package ctl

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/deployconfig"
)

// The release steps' tests run the real SDK against moto for every AWS
// control-plane call (CloudFormation, ECR's API, SSM, ECS, CodeBuild, S3,
// CloudWatch Logs, Secrets Manager). moto has no registry data plane: its
// ECR answers the API but nothing can docker push to or pull from it. So
// the registries — the vendor's, and the customer's ECR registry — are
// go-containerregistry's pkg/registry, a real registry implementation,
// served over TLS in process and reached under the vendor's and ECR's host
// names through imageOptions.Transport.

// ecrHost is the registry host moto's repository URIs name.
const ecrHost = awstest.Account + ".dkr.ecr." + awstest.Region + ".amazonaws.com"

// ecrPassword is the password moto's GetAuthorizationToken issues.
const ecrPassword = awstest.Account + "-auth-token"

// testRegistry is one in-process registry, with a count of the requests it
// served and optional interference for tests of what tetherctl refuses.
type testRegistry struct {
	srv *httptest.Server
	mu  sync.Mutex
	n   int
	// password, when set, is required as HTTP basic auth for user AWS,
	// answered with a Basic challenge as ECR answers.
	password string
	// tamper, when set, may replace a response: it gets the request and
	// returns true when it wrote the answer itself.
	tamper func(w http.ResponseWriter, r *http.Request) bool
}

func newTestRegistry(t testing.TB) *testRegistry {
	t.Helper()
	reg := &testRegistry{}
	h := registry.New(registry.Logger(discardLogger()))
	reg.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg.mu.Lock()
		reg.n++
		password, tamper := reg.password, reg.tamper
		reg.mu.Unlock()
		if password != "" {
			if u, p, ok := r.BasicAuth(); !ok || u != "AWS" || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="https://`+ecrHost+`/",service="ecr.amazonaws.com"`)
				http.Error(w, `{"errors":[{"code":"DENIED","message":"Not Authorized"}]}`, http.StatusUnauthorized)
				return
			}
		}
		if tamper != nil && tamper(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(reg.srv.Close)
	return reg
}

func (r *testRegistry) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// registryTransport reaches each host named in hosts at its registry, over
// TLS checked against the test certificate, and refuses any other host.
func registryTransport(hosts map[string]*testRegistry) http.RoundTripper {
	var any *testRegistry
	for _, r := range hosts {
		any = r
	}
	tr := any.srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.ServerName = "example.com" // the name httptest's certificate carries
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		r, ok := hosts[host]
		if !ok {
			return nil, errors.New("test transport: no registry for " + host)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, r.srv.Listener.Addr().String())
	}
	return tr
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// testDeployment is a deployment in moto's account and region.
// priv signs licenses for it.
func testDeployment(t testing.TB, source string) (dc *deployconfig.Config, priv ed25519.PrivateKey) {
	t.Helper()
	priv, pubPEM := testKey(t)
	dc = &deployconfig.Config{Name: "acme-docs", Account: awstest.Account, Region: awstest.Region}
	dc.AI.Provider = deployconfig.AILocal
	dc.Images.Source = source
	if source == deployconfig.ImagesVendor {
		dc.Images.VendorRegistry = "registry.vendor.example/tether"
	}
	dc.License.PublicKey = pubPEM
	dc.Plane.Channel = "stable"
	return dc, priv
}

// testSession is an awsSession on srv, as tetherctl makes one from the
// operator's environment.
func testSession(t testing.TB, srv *awstest.Server, dc *deployconfig.Config) *awsSession {
	t.Helper()
	env := testAWSEnv(t, srv)
	a, err := loadAWS(context.Background(), Env{Getenv: func(k string) string { return env[k] }, Now: time.Now}, awsSettings{}, dc)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// testAWSEnv is srv's environment, and a PATH on which tools/venv's AWS
// CLI comes first (build mode uploads with it).
func testAWSEnv(t testing.TB, srv *awstest.Server) map[string]string {
	t.Helper()
	env := map[string]string{"HOME": t.TempDir()}
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	venv, err := filepath.Abs(filepath.Join("..", "..", "tools", "venv", "bin"))
	if err != nil {
		t.Fatal(err)
	}
	env["PATH"] = venv + string(filepath.ListSeparator) + os.Getenv("PATH")
	return env
}

// testEnv is an Env whose output the test reads.
func testEnv() (Env, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	return Env{Now: time.Now, Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}, &stdout, &stderr
}

func releaseContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// createStack makes a stack in moto from a template given as a Go value,
// with parameters, and fails the test unless it is CREATE_COMPLETE.
func createStack(t testing.TB, a *awsSession, name string, template map[string]any, params map[string]string) {
	t.Helper()
	body, err := json.Marshal(template)
	if err != nil {
		t.Fatal(err)
	}
	in := &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(string(body))}
	for k, v := range params {
		in.Parameters = append(in.Parameters, cftypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(v)})
	}
	ctx := releaseContext(t)
	if _, err := a.CloudFormation().CreateStack(ctx, in); err != nil {
		t.Fatalf("create stack %s: %v", name, err)
	}
	out, err := a.CloudFormation().DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil || len(out.Stacks) == 0 || out.Stacks[0].StackStatus != cftypes.StackStatusCreateComplete {
		t.Fatalf("stack %s not created: %v %+v", name, err, out)
	}
}

// imagesStackTemplate is the images stack's repositories and outputs, as
// deploy/cdk/stacks/images.go makes them; extra outputs are added as given.
func imagesStackTemplate(dc *deployconfig.Config, extra map[string]any) map[string]any {
	repo := func(n string) map[string]any {
		return map[string]any{"Type": "AWS::ECR::Repository", "Properties": map[string]any{"RepositoryName": dc.Name + "/" + n}}
	}
	outputs := map[string]any{
		"DocsvcRepositoryUri": map[string]any{"Value": map[string]any{"Fn::GetAtt": []string{"DocsvcRepository", "RepositoryUri"}}},
		"AgentRepositoryUri":  map[string]any{"Value": map[string]any{"Fn::GetAtt": []string{"AgentRepository", "RepositoryUri"}}},
	}
	for k, v := range extra {
		outputs[k] = map[string]any{"Value": v}
	}
	return map[string]any{
		"Resources": map[string]any{"DocsvcRepository": repo("docsvc"), "AgentRepository": repo("agent")},
		"Outputs":   outputs,
	}
}

// putECRImage records an image in moto's ECR API, as a push to ECR would.
// moto derives an image's digest from its layer digests rather than from
// the manifest, so the digest is given explicitly.
func putECRImage(t testing.TB, srv *awstest.Server, repo, tag string, manifest []byte, mediaType, digest string) {
	t.Helper()
	in := &ecr.PutImageInput{RepositoryName: aws.String(repo), ImageManifest: aws.String(string(manifest)),
		ImageManifestMediaType: aws.String(mediaType), ImageDigest: aws.String(digest)}
	if tag != "" {
		in.ImageTag = aws.String(tag)
	}
	if _, err := ecr.NewFromConfig(srv.AWSConfig()).PutImage(context.Background(), in); err != nil {
		t.Fatalf("put an image in moto's ECR %s: %v", repo, err)
	}
}

// recordInECR records a new random image in moto's ECR API and returns
// its digest and manifest.
func recordInECR(t testing.TB, srv *awstest.Server, repo, tag string) (digest string, manifest []byte, mediaType string) {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	manifest, _ = img.RawManifest()
	mt, _ := img.MediaType()
	d, _ := img.Digest()
	putECRImage(t, srv, repo, tag, manifest, string(mt), d.String())
	return d.String(), manifest, string(mt)
}

// parameter reads an SSM parameter; ok is false when it does not exist.
func parameter(t testing.TB, a *awsSession, name string) (p ssmtypes.Parameter, ok bool) {
	t.Helper()
	out, err := a.SSM().GetParameter(releaseContext(t), &ssm.GetParameterInput{Name: aws.String(name)})
	var nf *ssmtypes.ParameterNotFound
	if errors.As(err, &nf) {
		return p, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return *out.Parameter, true
}

// called reports whether the code under test sent srv the operation.
func called(srv *awstest.Server, target string) bool {
	for _, r := range srv.Requests() {
		if strings.HasSuffix(r.Target, target) {
			return true
		}
	}
	return false
}

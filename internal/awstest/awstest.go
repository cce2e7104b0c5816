// Package awstest gives a test the AWS API emulator moto (its server mode,
// pinned in tools/requirements.txt and installed into tools/venv by
// scripts/test-deps.sh), so AWS calls go through the real aws-sdk-go-v2 to a
// widely used emulator instead of an imitation written here.
//
// Starting moto takes about a second, so servers are kept for the life of the
// test binary and lent to one test at a time: Start lends an idle one (or
// starts one), and when the test finishes the server is reset to empty
// (moto's POST /moto-api/reset) and handed back. Parallel tests each hold a
// server of their own. Each lent server sits behind a loopback proxy that
// records the calls, so a test can assert on what the code sent AWS.
//
// The operations moto serves, and the gaps Tether's tests work around, are in
// docs/decisions/0007-aws-api-emulator.md.
package awstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/tetherhq/tether/internal/toolproc"
)

// Region and Account are what moto answers as: ARNs it makes use them.
const (
	Region  = "us-east-1"
	Account = "123456789012"
)

// spec runs tools/venv/bin/moto_server (TETHER_MOTO overrides).
var spec = toolproc.Spec{
	Name:        "moto",
	Bin:         filepath.Join("tools", "venv", "bin", "moto_server"),
	EnvOverride: "TETHER_MOTO",
	Args:        func(port int) []string { return []string{"-H", "127.0.0.1", "-p", fmt.Sprint(port)} },
	Env: func(int) []string {
		// moto's own account and region, whatever the developer's shell says.
		return []string{"MOTO_ACCOUNT_ID=" + Account, "AWS_DEFAULT_REGION=" + Region}
	},
	Health: "/moto-api/",
}

// idle holds started servers not lent to any test. It is the one piece of
// package state: it lives as long as the test binary, whose exit ends the
// servers (toolproc starts them to die with their parent).
var idle struct {
	sync.Mutex
	procs []*toolproc.Proc
}

// Request is one call the code under test sent the emulator.
type Request struct {
	Method, Path string
	// Target names the operation: the X-Amz-Target header of the JSON
	// protocols ("secretsmanager.GetSecretValue") or the Action of the query
	// protocols ("GetCallerIdentity"); empty for REST calls (S3).
	Target string
	Body   []byte
}

// Server is one emulator lent to one test.
type Server struct {
	proxy  *httptest.Server
	direct aws.Config // to moto itself, for set-up calls the proxy should not record

	mu       sync.Mutex
	requests []Request
}

// Start lends the test an empty emulator for its duration. A missing
// tools/venv fails the test with the fix.
func Start(t testing.TB) *Server {
	t.Helper()
	p, err := lend()
	if err != nil {
		t.Fatalf("awstest: %v", err)
	}
	target, _ := url.Parse(p.Endpoint)
	s := &Server{direct: config(p.Endpoint)}
	rp := httputil.NewSingleHostReverseProxy(target)
	s.proxy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		req := Request{Method: r.Method, Path: r.URL.Path, Target: r.Header.Get("X-Amz-Target"), Body: body}
		if req.Target == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			if form, err := url.ParseQuery(string(body)); err == nil {
				req.Target = form.Get("Action")
			}
		}
		s.mu.Lock()
		s.requests = append(s.requests, req)
		s.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		s.proxy.Close()
		if t.Failed() {
			t.Logf("moto output (tail):\n%s", p.Output())
		}
		giveBack(p)
	})
	return s
}

func lend() (*toolproc.Proc, error) {
	idle.Lock()
	if n := len(idle.procs); n > 0 {
		p := idle.procs[n-1]
		idle.procs = idle.procs[:n-1]
		idle.Unlock()
		return p, nil
	}
	idle.Unlock()
	return toolproc.Start(spec)
}

// giveBack empties the server and returns it to the idle list; one that
// cannot be reset is stopped instead, so no test sees another's state.
func giveBack(p *toolproc.Proc) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.Endpoint+"/moto-api/reset", nil)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("reset: %s", resp.Status)
		}
	}
	if err != nil {
		p.Stop()
		return
	}
	idle.Lock()
	idle.procs = append(idle.procs, p)
	idle.Unlock()
}

// Endpoint is the base URL to give the SDK (AWS_ENDPOINT_URL).
func (s *Server) Endpoint() string { return s.proxy.URL }

// AWSConfig returns a config with static test credentials (moto accepts any),
// the emulator's region, and BaseEndpoint pointing at it.
func (s *Server) AWSConfig() aws.Config { return config(s.Endpoint()) }

func config(endpoint string) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
	}
}

// Env is the environment that points a child process's standard SDK
// credential chain and endpoint resolution at the emulator, as an operator's
// shell would point them at AWS.
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + s.Endpoint(),
		"AWS_REGION=" + Region,
		"AWS_DEFAULT_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// S3 returns an S3 client; moto, reached by IP address, needs path-style
// requests (bucket in the path, not the host name).
func (s *Server) S3() *s3.Client {
	return s3.NewFromConfig(s.AWSConfig(), func(o *s3.Options) { o.UsePathStyle = true })
}

// SQS returns an SQS client.
func (s *Server) SQS() *sqs.Client { return sqs.NewFromConfig(s.AWSConfig()) }

// Requests returns the calls received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// The helpers below set up and inspect state through the real SDK; their
// calls go straight to moto, so Requests shows only the code under test.

// CreateSecret creates a secret through Secrets Manager and returns the ARN
// the emulator gave it. An empty value makes a secret with no value yet, as a
// stack makes one for a task to fill.
func (s *Server) CreateSecret(t testing.TB, name, value string) (arn string) {
	t.Helper()
	in := &secretsmanager.CreateSecretInput{Name: aws.String(name)}
	if value != "" {
		in.SecretString = aws.String(value)
	}
	out, err := secretsmanager.NewFromConfig(s.direct).CreateSecret(context.Background(), in)
	if err != nil {
		t.Fatalf("awstest: create secret %s: %v", name, err)
	}
	return aws.ToString(out.ARN)
}

// SecretValue reads a secret's current value; ok is false when the secret has
// no value.
func (s *Server) SecretValue(t testing.TB, id string) (value string, ok bool) {
	t.Helper()
	out, err := secretsmanager.NewFromConfig(s.direct).GetSecretValue(context.Background(),
		&secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	var nf *smtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return "", false
	}
	if err != nil {
		t.Fatalf("awstest: read secret %s: %v", id, err)
	}
	return aws.ToString(out.SecretString), true
}

// PutParameter stores an SSM parameter (a SecureString when secure).
func (s *Server) PutParameter(t testing.TB, name, value string, secure bool) {
	t.Helper()
	typ := ssmtypes.ParameterTypeString
	if secure {
		typ = ssmtypes.ParameterTypeSecureString
	}
	_, err := ssm.NewFromConfig(s.direct).PutParameter(context.Background(), &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(value), Type: typ, Overwrite: aws.Bool(true)})
	if err != nil {
		t.Fatalf("awstest: put parameter %s: %v", name, err)
	}
}

// ExchangeStack creates the stack stackName holding one S3 bucket named
// bucket and the output ExchangeBucketName naming it, as a deployment's
// data stack names its agent exchange bucket. (moto creates the bucket the
// template names.)
func (s *Server) ExchangeStack(t testing.TB, stackName, bucket string) {
	t.Helper()
	tmpl := `{"Resources":{"Exchange":{"Type":"AWS::S3::Bucket","Properties":{"BucketName":"` + bucket + `"}}},` +
		`"Outputs":{"ExchangeBucketName":{"Value":{"Ref":"Exchange"}}}}`
	if _, err := cloudformation.NewFromConfig(s.direct).CreateStack(context.Background(), &cloudformation.CreateStackInput{
		StackName: aws.String(stackName), TemplateBody: aws.String(tmpl),
	}); err != nil {
		t.Fatalf("awstest: create stack %s: %v", stackName, err)
	}
}

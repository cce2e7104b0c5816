// Package fauxqstest runs the fauxqs S3- and SQS-compatible server for
// tests, so blob and queue code is exercised through the real AWS SDK against
// a real server instead of hand-written imitations of S3 and SQS.
//
// fauxqs is an npm package pinned in tools/package.json and installed by
// scripts/test-deps.sh. A missing binary fails the test: a suite that skips
// when its dependency is absent passes while testing nothing.
package fauxqstest

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tetherhq/tether/internal/toolproc"
)

// Region is the region the returned AWS config names; fauxqs scopes queues by
// the region in the request signature, so every client must agree on it.
const Region = "us-east-1"

// spec runs tools/node_modules/.bin/fauxqs (TETHER_FAUXQS overrides).
var spec = toolproc.Spec{
	Name:        "fauxqs",
	Bin:         filepath.Join("tools", "node_modules", ".bin", "fauxqs"),
	EnvOverride: "TETHER_FAUXQS",
	Env: func(port int) []string {
		return []string{"FAUXQS_PORT=" + strconv.Itoa(port), "FAUXQS_DEFAULT_REGION=" + Region, "FAUXQS_LOGGER=false"}
	},
	Health: "/health",
}

// Server is a running fauxqs process owned by one test.
type Server struct {
	endpoint string
}

// Start launches fauxqs on a free loopback port, waits until it answers its
// health check, and stops it when t finishes.
func Start(t testing.TB) *Server {
	t.Helper()
	p, err := toolproc.Start(spec)
	if err != nil {
		t.Fatalf("fauxqstest: %v", err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("fauxqs output (tail):\n%s", p.Output())
		}
	})
	return &Server{endpoint: p.Endpoint}
}

// Endpoint is the server's base URL, e.g. "http://127.0.0.1:41234".
func (s *Server) Endpoint() string { return s.endpoint }

// AWSConfig returns a config with static test credentials (fauxqs accepts any),
// region us-east-1 and BaseEndpoint pointing at the server.
func (s *Server) AWSConfig() aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(s.endpoint),
	}
}

// S3 returns an S3 client for the server. fauxqs needs path-style requests
// (bucket in the path, not the host name) when reached by IP address.
func (s *Server) S3() *s3.Client {
	return s3.NewFromConfig(s.AWSConfig(), func(o *s3.Options) { o.UsePathStyle = true })
}

// SQS returns an SQS client for the server.
func (s *Server) SQS() *sqs.Client {
	return sqs.NewFromConfig(s.AWSConfig())
}

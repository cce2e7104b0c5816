package blob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/blob"
	"github.com/tetherhq/tether/internal/blob/blobtest"
	"github.com/tetherhq/tether/internal/fauxqstest"
)

func TestFileConformance(t *testing.T) {
	t.Parallel()
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, err := blob.NewFile(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// s3Server is what the tests need of an S3-compatible server.
type s3Server interface {
	Endpoint() string
	AWSConfig() aws.Config
	S3() *s3.Client
}

// servers are the two S3-compatible servers the suite runs against: fauxqs
// and moto's emulator, each through the real SDK.
var servers = map[string]func(testing.TB) s3Server{
	"fauxqs": func(t testing.TB) s3Server { return fauxqstest.Start(t) },
	"moto":   func(t testing.TB) s3Server { return awstest.Start(t) },
}

func TestS3Conformance(t *testing.T) {
	t.Parallel()
	for server, start := range servers {
		t.Run(server, func(t *testing.T) {
			t.Parallel()
			srv := start(t)
			// Plain HTTP is how development setups reach S3-compatible
			// servers; HTTPS is how the SDK talks to AWS (streamed uploads
			// with a trailing checksum), so the suite runs over both.
			for name, client := range map[string]*s3.Client{
				"http":  srv.S3(),
				"https": tlsFront(t, srv, nil),
			} {
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					blobtest.Run(t, func(t *testing.T) blob.Store {
						bucket := newBucket(t, client)
						// A prefix, so the suite also proves keys stay under it.
						return blob.NewS3(client, bucket, "tenant/docs", "")
					})
				})
			}
		})
	}
}

// tlsFront puts an HTTPS reverse proxy in front of the server and returns an
// S3 client that trusts it; observe, if set, sees every request first.
func tlsFront(t *testing.T, srv s3Server, observe func(*http.Request)) *s3.Client {
	target, err := url.Parse(srv.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	// Aborted uploads are part of the suite; their proxy errors are noise.
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	front := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if observe != nil {
			observe(r)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	cfg := srv.AWSConfig()
	cfg.BaseEndpoint = aws.String(front.URL)
	cfg.HTTPClient = front.Client()
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
}

func newBucket(t *testing.T, client *s3.Client) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "test-" + hex.EncodeToString(b)
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	return name
}

func TestS3KeepsObjectsUnderPrefix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := fauxqstest.Start(t).S3()
	bucket := newBucket(t, client)
	s := blob.NewS3(client, bucket, "/tenant/docs/", "")
	if err := s.Put(ctx, "documents/a", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	out, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != "tenant/docs/documents/a" {
		t.Fatalf("bucket holds %v, want exactly tenant/docs/documents/a", out.Contents)
	}
}

func TestS3MissingBucketIsNotErrNotFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := blob.NewS3(fauxqstest.Start(t).S3(), "no-such-bucket", "", "")
	if _, err := s.Get(ctx, "documents/a"); err == nil || errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Get from a missing bucket = %v, want an error other than ErrNotFound", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping of a missing bucket succeeded")
	}
}

// TestS3RequestsEncryption records the PutObject requests the real SDK sends
// (through a proxy in front of fauxqs) and checks each asks for the right
// server-side encryption.
func TestS3RequestsEncryption(t *testing.T) {
	t.Parallel()
	srv := fauxqstest.Start(t)
	var mu sync.Mutex
	var puts []http.Header
	client := tlsFront(t, srv, func(r *http.Request) {
		if r.Method == http.MethodPut && strings.Count(strings.Trim(r.URL.Path, "/"), "/") >= 1 {
			mu.Lock()
			puts = append(puts, r.Header.Clone())
			mu.Unlock()
		}
	})
	bucket := newBucket(t, client)

	tests := []struct {
		name    string
		kmsKey  string
		wantSSE string
		wantKey string
	}{
		{"kms", "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "aws:kms", "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
		{"s3 managed", "", "AES256", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			puts = nil
			mu.Unlock()
			s := blob.NewS3(client, bucket, "", tt.kmsKey)
			if err := s.Put(context.Background(), "documents/enc", strings.NewReader("secret"), 6); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(puts) != 1 {
				t.Fatalf("saw %d object PUTs, want 1", len(puts))
			}
			h := puts[0]
			if got := h.Get("X-Amz-Server-Side-Encryption"); got != tt.wantSSE {
				t.Errorf("x-amz-server-side-encryption = %q, want %q", got, tt.wantSSE)
			}
			if got := h.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"); got != tt.wantKey {
				t.Errorf("x-amz-server-side-encryption-aws-kms-key-id = %q, want %q", got, tt.wantKey)
			}
			// With aws-chunked encoding the object's length travels in
			// x-amz-decoded-content-length instead.
			if h.Get("Content-Length") != "6" && h.Get("X-Amz-Decoded-Content-Length") != "6" {
				t.Errorf("neither Content-Length %q nor x-amz-decoded-content-length %q is 6",
					h.Get("Content-Length"), h.Get("X-Amz-Decoded-Content-Length"))
			}
		})
	}
}

func TestFileLeavesNoTempFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := blob.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Put(ctx, "documents/ok", strings.NewReader("abc"), 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "documents/bad", strings.NewReader("ab"), 3); err == nil {
		t.Fatal("short Put succeeded")
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	var names []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return nil
	})
	if len(names) != 1 || names[0] != filepath.FromSlash("documents/ok") {
		t.Fatalf("directory holds %v, want only documents/ok", names)
	}
	st, err := os.Stat(filepath.Join(dir, "documents", "ok"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("object mode %v, want 0600 (documents are private)", st.Mode().Perm())
	}
}

func TestNewFileRejectsRelativeDir(t *testing.T) {
	t.Parallel()
	if _, err := blob.NewFile("data/blobs"); err == nil {
		t.Fatal("NewFile with a relative directory succeeded")
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		url     string
		wantErr string // substring; "" means success
		check   func(t *testing.T, s blob.Store)
	}{
		{url: "file://" + dir, check: func(t *testing.T, s blob.Store) {
			if _, ok := s.(*blob.File); !ok {
				t.Errorf("got %T, want *blob.File", s)
			}
		}},
		{url: "s3://my-bucket", check: func(t *testing.T, s blob.Store) {
			if _, ok := s.(*blob.S3); !ok {
				t.Errorf("got %T, want *blob.S3", s)
			}
		}},
		{url: "s3://my-bucket/tenant/docs/"},
		{url: "file://relative/dir", wantErr: "not an absolute file URL"},
		{url: "file:relative", wantErr: "file:///absolute/dir"},
		{url: "s3://My_Bucket", wantErr: "not a valid S3 bucket name"},
		{url: "s3://", wantErr: "not a valid S3 bucket name"},
		{url: "s3://bucket/../x", wantErr: "prefix"},
		{url: "s3://bucket?region=x", wantErr: "query"},
		{url: "gs://bucket", wantErr: `unsupported scheme "gs"`},
		{url: "https://user:hunter2@host/x", wantErr: "user"},
		{url: "::", wantErr: "does not parse"},
		{url: "/abs/dir", wantErr: "unsupported scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			s, err := blob.Open(context.Background(), tt.url, blob.Options{AWS: aws.Config{Region: "us-east-1"}})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if tt.check != nil {
					tt.check(t, s)
				}
				return
			}
			if err == nil {
				t.Fatalf("Open succeeded, want error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Open error = %q, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Open error leaks a password: %q", err)
			}
		})
	}
}

func TestOpenS3WorksAgainstEndpoint(t *testing.T) {
	t.Parallel()
	srv := fauxqstest.Start(t)
	bucket := newBucket(t, srv.S3())
	s, err := blob.Open(context.Background(), "s3://"+bucket+"/p", blob.Options{
		AWS: srv.AWSConfig(), Endpoint: srv.Endpoint(), UsePathStyle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(context.Background(), "k", bytes.NewReader([]byte("v")), 1); err != nil {
		t.Fatalf("Put through an opened store: %v", err)
	}
}

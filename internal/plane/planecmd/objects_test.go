package planecmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/plane"
	"github.com/tetherhq/tether/internal/plane/planecmd"
	"github.com/tetherhq/tether/internal/release/publish"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
	"github.com/tetherhq/tether/internal/testtime"
)

// The release commands write a replicated plane's object store (moto's S3,
// through the SDK's standard environment) under the release lease held in
// its PostgreSQL, and read it back.
func TestReleaseCommandsAgainstTheObjectStore(t *testing.T) {
	srv := awstest.Start(t)
	if _, err := srv.S3().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("vendor-plane")}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TETHER_PLANE_DATABASE_URL": sqldbtest.PostgresURL(t)}
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v) // the SDK's credential chain reads the process environment
		env[k] = v
	}
	r := runner{t: t, env: env}
	keys := filepath.Join(t.TempDir(), "keys")
	if _, err := publish.InitKeys(keys, publish.KeyOptions{RootKeys: 1, RootThreshold: 1}, time.Now()); err != nil {
		t.Fatal(err)
	}
	objects := "s3://vendor-plane/plane"
	out := r.ok("release", "publish", "--keys", keys, "--objects", objects, "--version", "1.4.0", "--channel", "stable",
		"--min-from", "1.3.0", "--image", "api=registry.example.com/docsvc@sha256:"+strings.Repeat("b", 64))
	if !strings.Contains(out, "Published 1.4.0 to stable") {
		t.Fatalf("publish: %s", out)
	}
	r.ok("release", "revoke", "--keys", keys, "--objects", objects, "--channel", "stable", "--version", "1.4.0")
	r.ok("release", "publish", "--keys", keys, "--objects", objects, "--version", "1.4.1", "--channel", "stable",
		"--min-from", "1.3.0", "--image", "api=registry.example.com/docsvc@sha256:"+strings.Repeat("c", 64))
	r.ok("release", "refresh", "--keys", keys, "--objects", objects)
	var got []plane.ChannelReleases
	if err := json.Unmarshal([]byte(r.ok("release", "list", "--objects", objects, "--output", "json")), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Releases) != 2 || got[0].Releases[0].Version != "1.4.1" || !got[0].Releases[1].Revoked {
		t.Fatalf("release list --objects: %+v", got)
	}
	// The repository sits under the prefix's repo/, where serve --objects reads it.
	if _, err := srv.S3().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("vendor-plane"),
		Key: aws.String("plane/repo/stable/metadata/timestamp.json")}); err != nil {
		t.Fatalf("timestamp.json not in the bucket: %v", err)
	}
}

func TestKeysUseKMS(t *testing.T) {
	srv := awstest.Start(t)
	env := map[string]string{}
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
		env[k] = v
	}
	r := runner{t: t, env: env}
	client := kms.NewFromConfig(srv.AWSConfig())
	key, err := client.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "keys")
	repo := t.TempDir()
	r.ok("keys", "init", "--dir", dir, "--root-keys", "1", "--root-threshold", "1")
	if _, _, err := r.run("keys", "use-kms", "--dir", dir, "--timestamp-key", *key.KeyMetadata.Arn); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("use-kms without --yes: %v", err)
	}
	out := r.ok("keys", "use-kms", "--dir", dir, "--timestamp-key", *key.KeyMetadata.Arn, "--yes")
	if !strings.Contains(out, "root version 2") {
		t.Fatalf("use-kms: %s", out)
	}
	r.ok("release", "publish", "--keys", dir, "--repo", repo, "--version", "1.0.0", "--channel", "stable",
		"--min-from", "0.9.0", "--image", "api=registry.example.com/docsvc@sha256:"+strings.Repeat("d", 64))
	signs := 0
	for _, req := range srv.Requests() {
		if req.Target == "TrentService.Sign" {
			signs++
		}
	}
	if signs == 0 {
		t.Fatal("the timestamp was not signed in KMS")
	}
}

// serve --objects keeps nothing a second replica needs on its host: the
// admin token comes from the environment, and a release published into the
// store is listed through the plane, which reads the store.
func TestServeWithObjects(t *testing.T) {
	srv := awstest.Start(t)
	if _, err := srv.S3().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("vendor-plane")}); err != nil {
		t.Fatal(err)
	}
	token := strings.Repeat("t0ken", 8)
	env := map[string]string{"TETHER_PLANE_DATABASE_URL": sqldbtest.PostgresURL(t), "TETHER_PLANE_ADMIN_TOKEN": token}
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
		env[k] = v
	}
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if _, err := publish.InitKeys(keys, publish.KeyOptions{RootKeys: 1, RootThreshold: 1}, time.Now()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() {
		done <- planecmd.Run(ctx, []string{"serve", "--data-dir", filepath.Join(dir, "data"), "--addr", addr,
			"--objects", "s3://vendor-plane/plane", "--behind-load-balancer"},
			planecmd.Env{Stdout: io.Discard, Stderr: &syncWriter{w: &logs}, Getenv: func(k string) string { return env[k] }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v", err)
		}
	}()
	if !testtime.Wait(20*time.Second, func() bool { return healthy(addr) }) {
		t.Fatalf("plane did not become healthy:\n%s", logs.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "admin-token")); err == nil {
		t.Fatal("serve wrote an admin-token file although TETHER_PLANE_ADMIN_TOKEN was set")
	}
	r := runner{t: t, env: env}
	r.ok("release", "publish", "--keys", keys, "--objects", "s3://vendor-plane/plane", "--version", "2.0.0", "--channel", "beta",
		"--min-from", "1.0.0", "--image", "api=registry.example.com/docsvc@sha256:"+strings.Repeat("e", 64))
	ar := runner{t: t, env: map[string]string{"TETHER_PLANE_URL": "http://" + addr, "TETHER_ADMIN_TOKEN": token}}
	var got []plane.ChannelReleases
	if err := json.Unmarshal([]byte(ar.ok("release", "list", "--output", "json")), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Channel != "beta" || len(got[0].Releases) != 1 || got[0].Releases[0].Version != "2.0.0" {
		t.Fatalf("the plane lists %+v; want beta 2.0.0 from the store", got)
	}
	if strings.Contains(logs.String(), token) {
		t.Fatal("serve logged the admin token")
	}
}

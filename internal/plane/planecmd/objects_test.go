package planecmd_test

import (
	"context"
	"encoding/json"
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
	"github.com/tetherhq/tether/internal/release/publish"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
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

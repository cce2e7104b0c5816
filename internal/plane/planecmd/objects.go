package planecmd

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/tetherhq/tether/internal/blob"
	"github.com/tetherhq/tether/internal/release/publish"
)

// objectStores opens the shared object store a replicated plane keeps its
// diagnostic bundles (<url>/bundles) and release repositories (<url>/repo)
// in: "s3://bucket[/prefix]" in production, "file:///dir" on one host.
// AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL) points it at an S3-compatible
// server, addressed path-style.
func objectStores(ctx context.Context, env Env, rawURL, kmsKey string) (blob.Store, publish.ObjectStore, error) {
	opts := blob.Options{KMSKeyID: kmsKey}
	if strings.HasPrefix(rawURL, "s3://") {
		cfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("--objects %s: AWS configuration: %w", rawURL, err)
		}
		opts.AWS = cfg
		if ep := cmp.Or(env.Getenv("AWS_ENDPOINT_URL_S3"), env.Getenv("AWS_ENDPOINT_URL")); ep != "" {
			opts.Endpoint, opts.UsePathStyle = ep, true
		}
	}
	base := strings.TrimSuffix(rawURL, "/")
	bundles, err := blob.Open(ctx, base+"/bundles", opts)
	if err != nil {
		return nil, nil, fmt.Errorf("--objects: %w", err)
	}
	repo, err := blob.Open(ctx, base+"/repo", opts)
	if err != nil {
		return nil, nil, fmt.Errorf("--objects: %w", err)
	}
	rs, ok := repo.(publish.ObjectStore)
	if !ok {
		return nil, nil, fmt.Errorf("--objects %s: this store cannot list its objects", rawURL)
	}
	return bundles, rs, nil
}

// writerID names this process as a lease holder: the host and a random
// suffix, so two replicas on one host still differ.
func writerID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

package planecmd

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/tetherhq/tether/internal/blob"
	"github.com/tetherhq/tether/internal/plane"
	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/release/publish"
	"github.com/tetherhq/tether/internal/sqldb"
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

// objectsTimeout bounds a release command's work against the object store
// and the database: pulling, signing and pushing every channel.
const objectsTimeout = 15 * time.Minute

// repoTarget is where a release command reads and writes: a repository
// directory (--repo), or the shared object store of a replicated plane
// (--objects), which it changes through a local copy under the plane's
// release lease (so no replica re-signs at the same moment).
type repoTarget struct {
	repo, objects, kmsKey, dbURL *string
}

func repoFlags(fs *flag.FlagSet) *repoTarget {
	return &repoTarget{
		repo:    fs.String("repo", "", "release repository directory (this or --objects is required)"),
		objects: fs.String("objects", "", "a replicated plane's object store, s3://bucket[/prefix] as given to serve --objects (or env TETHER_PLANE_OBJECTS)"),
		kmsKey:  fs.String("objects-kms-key", "", "KMS key for SSE-KMS on --objects (or env TETHER_PLANE_OBJECTS_KMS_KEY)"),
		dbURL:   fs.String("database-url", "", "with --objects: the plane's PostgreSQL, whose release lease is held while writing (or env TETHER_PLANE_DATABASE_URL)"),
	}
}

// check resolves the environment and insists on exactly one of the two;
// a command that writes through --objects also needs the database.
func (rt *repoTarget) check(env Env, writing bool) error {
	*rt.objects = cmp.Or(*rt.objects, env.Getenv("TETHER_PLANE_OBJECTS"))
	*rt.kmsKey = cmp.Or(*rt.kmsKey, env.Getenv("TETHER_PLANE_OBJECTS_KMS_KEY"))
	*rt.dbURL = cmp.Or(*rt.dbURL, env.Getenv("TETHER_PLANE_DATABASE_URL"))
	switch {
	case *rt.repo == "" && *rt.objects == "":
		return fmt.Errorf("%w: --repo DIR or --objects s3://bucket[/prefix] is required", errUsage)
	case *rt.repo != "" && *rt.objects != "":
		return fmt.Errorf("%w: give --repo or --objects, not both", errUsage)
	case *rt.objects != "" && *rt.dbURL == "" && writing:
		return fmt.Errorf("%w: --objects needs --database-url (the plane's PostgreSQL) to hold the release lease while writing", errUsage)
	}
	return nil
}

// write runs fn on the repository directory: --repo itself, or a copy of
// --objects pulled under the release lease and pushed after fn.
func (rt *repoTarget) write(ctx context.Context, env Env, channel string, fn func(ctx context.Context, dir string) error) error {
	if *rt.repo != "" {
		return fn(ctx, *rt.repo)
	}
	ctx, cancel := context.WithTimeout(ctx, objectsTimeout)
	defer cancel()
	db, err := sqldb.Open(ctx, *rt.dbURL)
	if err != nil {
		return fmt.Errorf("--database-url: %w", err)
	}
	defer db.Close()
	st, err := planestore.Open(ctx, db, env.Now)
	if err != nil {
		return fmt.Errorf("--database-url: %w", err)
	}
	_, repo, err := objectStores(ctx, env, *rt.objects, *rt.kmsKey)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "tether-release-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var extra []string
	if channel != "" {
		extra = []string{channel}
	}
	err = plane.WriteReleases(ctx, st, writerID(), repo, work, extra, fn)
	if errors.Is(err, planestore.ErrLeaseHeld) {
		return fmt.Errorf("%w: another writer (a replica's hourly re-signing or another publish) is changing the releases; run this again in a minute", err)
	}
	return err
}

// read runs fn on the repository directory: --repo, or a fresh copy of
// every channel in --objects (no lease: readers never need one).
func (rt *repoTarget) read(ctx context.Context, env Env, fn func(dir string) error) error {
	if *rt.repo != "" {
		return fn(*rt.repo)
	}
	ctx, cancel := context.WithTimeout(ctx, objectsTimeout)
	defer cancel()
	_, repo, err := objectStores(ctx, env, *rt.objects, *rt.kmsKey)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "tether-release-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	m := &publish.Mirror{Store: repo, Dir: work}
	chans, err := m.Channels(ctx)
	if err != nil {
		return err
	}
	for _, ch := range chans {
		if _, err := m.Pull(ctx, ch); err != nil {
			return err
		}
	}
	return fn(work)
}

func runKeysUseKMS(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "keys use-kms", "--dir DIR [--snapshot-key KMS-KEY] [--timestamp-key KMS-KEY] [--yes]",
		"Moves the online snapshot and/or timestamp keys into AWS KMS (ECC_NIST_P256, SIGN_VERIFY keys),\n"+
			"so the plane's replicas sign without holding the private keys. It is a root rotation: it signs\n"+
			"a new root.json with the root keys in --dir (bring a threshold of the offline root-N.key files\n"+
			"for it), writes <role>.kms with the key reference and deletes <role>.key. Then run\n"+
			"`tether-plane release refresh` so every channel serves the new root before any other rotation.\n"+
			"AWS_REGION, credentials and AWS_ENDPOINT_URL_KMS come from the standard SDK environment.")
	dir := fs.String("dir", "", "keys directory (required)")
	snap := fs.String("snapshot-key", "", "KMS key ID, ARN or alias/NAME for the snapshot role")
	ts := fs.String("timestamp-key", "", "KMS key ID, ARN or alias/NAME for the timestamp role")
	yes := fs.Bool("yes", false, "do it without asking")
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	if err := required(fs, "dir"); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	keys := map[string]string{}
	if *snap != "" {
		keys["snapshot"] = *snap
	}
	if *ts != "" {
		keys["timestamp"] = *ts
	}
	if len(keys) == 0 {
		return fmt.Errorf("%w: give --snapshot-key, --timestamp-key or both", errUsage)
	}
	if !*yes {
		return fmt.Errorf("%w: this signs a new TUF root trusting %d KMS key(s) and deletes the file keys they replace; run again with --yes", errUsage, len(keys))
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	v, err := publish.UseKMS(ctx, *dir, keys, env.Now())
	if err != nil {
		return fmt.Errorf("keys use-kms --dir %s: %w", *dir, err)
	}
	fmt.Fprintf(env.Stdout, "Signed root version %d trusting the KMS key(s) for %s.\nNext: move root-*.key offline again, then run `tether-plane release refresh` so every channel serves the new root.\n",
		v, strings.Join(slices.Sorted(maps.Keys(keys)), " and "))
	return nil
}

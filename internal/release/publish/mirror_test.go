package publish

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/blob"
	"github.com/tetherhq/tether/internal/release"
)

// s3Repo is a release store in a bucket of moto's S3, reached through the
// real SDK, under a prefix as the plane keeps it.
func s3Repo(t *testing.T) ObjectStore {
	t.Helper()
	client := awstest.Start(t).S3()
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("plane-state")}); err != nil {
		t.Fatal(err)
	}
	return blob.NewS3(client, "plane-state", "repo", "")
}

// publishVia pulls channel into m, publishes version there and pushes it,
// the way `release publish` does against a store.
func (b bundle) publishVia(t *testing.T, m *Mirror, channel, version string) int {
	t.Helper()
	before, err := m.Pull(context.Background(), channel)
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	b.repoDir = m.Dir
	b.publish(t, channel, version, t0)
	n, err := m.Push(context.Background(), channel, before, nil)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	return n
}

// pulledVersions pulls channel into a fresh mirror, checks its metadata
// chain with go-tuf against the root and returns the releases it lists.
func (b bundle) pulledVersions(t *testing.T, m *Mirror, channel string) []string {
	t.Helper()
	if _, err := m.Pull(context.Background(), channel); err != nil {
		t.Fatalf("Pull: %v", err)
	}
	b.repoDir = m.Dir
	b.verifiedRepo(t, channel)
	ms, err := List(m.Dir, channel)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, m.Version)
	}
	return out
}

func TestMirrorPublishedThroughOneCopyIsReadByAnother(t *testing.T) {
	b := setup(t)
	store := s3Repo(t)
	ctx := context.Background()
	a := &Mirror{Store: store, Dir: t.TempDir()}
	if n := b.publishVia(t, a, "stable", "1.0.0"); n < 5 {
		t.Fatalf("first push uploaded %d files; want targets, manifest, root, targets, snapshot and timestamp", n)
	}
	other := &Mirror{Store: store, Dir: t.TempDir()}
	if chans, err := other.Channels(ctx); err != nil || !slices.Equal(chans, []string{"stable"}) {
		t.Fatalf("Channels = %v, %v; want [stable]", chans, err)
	}
	if got := b.pulledVersions(t, other, "stable"); !slices.Equal(got, []string{"1.0.0"}) {
		t.Fatalf("other copy lists %v, want [1.0.0]", got)
	}
	// Nothing signed since the pull: nothing to upload.
	before, err := a.Pull(ctx, "stable")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := a.Push(ctx, "stable", before, nil); err != nil || n != 0 {
		t.Fatalf("Push with no change = %d, %v; want 0 uploads", n, err)
	}
	// A refresh that re-signs only the timestamp sends only the timestamp.
	if err := Refresh(ctx, a.Dir, b.keysDir, t0.Add(13*60*60*1e9)); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Push(ctx, "stable", before, nil); err != nil || n != 1 {
		t.Fatalf("Push after a timestamp refresh = %d, %v; want 1 upload", n, err)
	}
}

func TestMirrorWriterDyingBeforeTheSwapLeavesTheRepositoryConsistent(t *testing.T) {
	b := setup(t)
	store := s3Repo(t)
	ctx := context.Background()
	b.publishVia(t, &Mirror{Store: store, Dir: t.TempDir()}, "stable", "1.0.0")
	pointer, err := ReadTimestamp(ctx, store, "stable")
	if err != nil {
		t.Fatal(err)
	}

	// A writer signs 1.1.0 and uploads everything but the pointer: its
	// lease is gone (it stalled, or died just before the last write).
	dying := &Mirror{Store: store, Dir: t.TempDir()}
	before, err := dying.Pull(ctx, "stable")
	if err != nil {
		t.Fatal(err)
	}
	b.repoDir = dying.Dir
	b.publish(t, "stable", "1.1.0", t0)
	lost := errors.New("lease lost")
	n, err := dying.Push(ctx, "stable", before, func(context.Context) error { return lost })
	if !errors.Is(err, lost) || n == 0 {
		t.Fatalf("Push with a lost lease = %d, %v; want some files uploaded, then %v", n, err, lost)
	}
	if now, _ := ReadTimestamp(ctx, store, "stable"); !bytes.Equal(now, pointer) {
		t.Fatal("timestamp.json moved although the writer's lease was lost")
	}
	// Readers still see the complete previous set.
	if got := b.pulledVersions(t, &Mirror{Store: store, Dir: t.TempDir()}, "stable"); !slices.Equal(got, []string{"1.0.0"}) {
		t.Fatalf("after the failed writer a reader sees %v, want [1.0.0]", got)
	}

	// The next writer signs over the orphaned versions.
	b.publishVia(t, &Mirror{Store: store, Dir: t.TempDir()}, "stable", "1.2.0")
	want := []string{"1.2.0", "1.0.0"}
	if got := b.pulledVersions(t, &Mirror{Store: store, Dir: t.TempDir()}, "stable"); !slices.Equal(got, want) {
		t.Fatalf("fresh copy lists %v, want %v", got, want)
	}
	// The failed writer's own copy holds its unpublished versions under the
	// same names; a pull repairs them from the recorded hashes.
	if got := b.pulledVersions(t, dying, "stable"); !slices.Equal(got, want) {
		t.Fatalf("the failed writer's copy lists %v after a pull, want %v", got, want)
	}
}

func TestMirrorRefusesAStoreWhoseTimestampNamesMissingMetadata(t *testing.T) {
	b := setup(t)
	store := s3Repo(t)
	ctx := context.Background()
	b.publishVia(t, &Mirror{Store: store, Dir: t.TempDir()}, "stable", "1.0.0")
	if err := store.Delete(ctx, "stable/metadata/1.snapshot.json"); err != nil {
		t.Fatal(err)
	}
	_, err := (&Mirror{Store: store, Dir: t.TempDir()}).Pull(ctx, "stable")
	if !errors.Is(err, blob.ErrNotFound) && !errors.Is(err, release.ErrInvalid) {
		t.Fatalf("Pull of a store missing the snapshot = %v; want a clear error", err)
	}
	if err == nil {
		t.Fatal("Pull accepted a store missing the snapshot the timestamp names")
	}
}

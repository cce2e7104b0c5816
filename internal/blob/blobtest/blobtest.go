// Package blobtest is the conformance suite every blob.Store implementation
// must pass, so the file store used in development and S3 in production
// behave the same to the document service.
package blobtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/tetherhq/tether/internal/blob"
)

// Run exercises a Store. newStore must return an empty store each time it is
// called; subtests run in parallel, each with its own store.
func Run(t *testing.T, newStore func(t *testing.T) blob.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, blob.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Overwrite", testOverwrite},
		{"Missing", testMissing},
		{"DeleteIdempotent", testDeleteIdempotent},
		{"WrongSize", testWrongSize},
		{"ContextCanceled", testContextCanceled},
		{"ConcurrentPuts", testConcurrentPuts},
		{"InvalidKeys", testInvalidKeys},
		{"Ping", testPing},
		{"Usage", testUsage},
		{"List", testList},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

func put(t *testing.T, s blob.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%s, %d bytes): %v", key, len(data), err)
	}
}

func get(t *testing.T, s blob.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%s): read: %v", key, err)
	}
	return data
}

func wantNotFound(t *testing.T, s blob.Store, key string) {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err == nil {
		rc.Close()
		t.Fatalf("Get(%s) found an object, want ErrNotFound", key)
	}
	if !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Get(%s) = %v, want ErrNotFound", key, err)
	}
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func testRoundTrip(t *testing.T, s blob.Store) {
	for i, size := range []int{0, 1, 4096, 5<<20 + 3} {
		key := fmt.Sprintf("documents/round-%d", size)
		data := randomBytes(uint64(i+1), size)
		put(t, s, key, data)
		if got := get(t, s, key); !bytes.Equal(got, data) {
			t.Errorf("Get(%s) returned %d bytes differing from the %d put", key, len(got), len(data))
		}
	}
}

func testOverwrite(t *testing.T, s blob.Store) {
	put(t, s, "documents/x", []byte("first version, longer"))
	put(t, s, "documents/x", []byte("second"))
	if got := get(t, s, "documents/x"); string(got) != "second" {
		t.Fatalf("after overwrite Get = %q, want %q", got, "second")
	}
}

func testMissing(t *testing.T, s blob.Store) {
	wantNotFound(t, s, "documents/never-written")
	// A key that is only a prefix of another key holds no object.
	put(t, s, "documents/dir/child", []byte("c"))
	wantNotFound(t, s, "documents/dir")
}

func testDeleteIdempotent(t *testing.T, s blob.Store) {
	ctx := context.Background()
	put(t, s, "documents/d", []byte("bye"))
	put(t, s, "documents/keep", []byte("stay"))
	for i := 0; i < 2; i++ {
		if err := s.Delete(ctx, "documents/d"); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
		wantNotFound(t, s, "documents/d")
	}
	if err := s.Delete(ctx, "documents/never-written"); err != nil {
		t.Fatalf("Delete of a never-written key: %v", err)
	}
	if got := get(t, s, "documents/keep"); string(got) != "stay" {
		t.Fatalf("Delete touched another key: Get = %q", got)
	}
}

func testWrongSize(t *testing.T, s blob.Store) {
	ctx := context.Background()
	data := randomBytes(7, 100_000)
	cases := []struct {
		name string
		body []byte
		size int64
	}{
		{"short", data[:50_000], 100_000},
		{"long", data, 50_000},
		{"empty body", nil, 10},
		{"one extra byte", data[:1001], 1000},
	}
	for i, c := range cases {
		// A fresh key must stay absent; an existing one must keep its value.
		fresh := fmt.Sprintf("documents/fresh-%d", i)
		err := s.Put(ctx, fresh, bytes.NewReader(c.body), c.size)
		if err == nil {
			t.Fatalf("%s: Put of %d bytes declared as %d succeeded", c.name, len(c.body), c.size)
		}
		if !errors.Is(err, blob.ErrSizeMismatch) {
			t.Errorf("%s: Put error = %v, want ErrSizeMismatch", c.name, err)
		}
		wantNotFound(t, s, fresh)

		put(t, s, "documents/existing", []byte("old"))
		if err := s.Put(ctx, "documents/existing", bytes.NewReader(c.body), c.size); err == nil {
			t.Fatalf("%s: overwrite with wrong size succeeded", c.name)
		}
		if got := get(t, s, "documents/existing"); string(got) != "old" {
			t.Fatalf("%s: failed overwrite left %d bytes, want the old object", c.name, len(got))
		}
	}
	if err := s.Put(ctx, "documents/neg", bytes.NewReader(nil), -1); err == nil {
		t.Fatal("Put with negative size succeeded")
	}
}

// cancelReader cancels its context once it has handed out after bytes.
type cancelReader struct {
	r      io.Reader
	after  int
	read   int
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += n
	if c.read >= c.after {
		c.cancel()
	}
	return n, err
}

func testContextCanceled(t *testing.T, s blob.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data := randomBytes(3, 1000)
	if err := s.Put(ctx, "documents/pre", bytes.NewReader(data), int64(len(data))); err == nil {
		t.Fatal("Put with a canceled context succeeded")
	}
	wantNotFound(t, s, "documents/pre")
	if rc, err := s.Get(ctx, "documents/pre"); err == nil {
		rc.Close()
		t.Fatal("Get with a canceled context succeeded")
	}

	// Canceled part-way through the body.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	big := randomBytes(4, 2<<20)
	r := &cancelReader{r: bytes.NewReader(big), after: 256 << 10, cancel: cancel}
	err := s.Put(ctx, "documents/mid", r, int64(len(big)))
	if err == nil {
		t.Fatal("Put canceled mid-body succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Put canceled mid-body: error = %v, want context.Canceled", err)
	}
	wantNotFound(t, s, "documents/mid")
}

func testConcurrentPuts(t *testing.T, s blob.Store) {
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := randomBytes(uint64(100+i), 32<<10+i)
			errs[i] = s.Put(context.Background(), fmt.Sprintf("documents/c/%02d", i), bytes.NewReader(data), int64(len(data)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Put %d: %v", i, err)
		}
	}
	for i := range n {
		want := randomBytes(uint64(100+i), 32<<10+i)
		if got := get(t, s, fmt.Sprintf("documents/c/%02d", i)); !bytes.Equal(got, want) {
			t.Errorf("key %d: got %d bytes, want its own %d", i, len(got), len(want))
		}
	}
}

// InvalidKeys lists keys every store must refuse; the fuzz target and the
// unit tests share it.
var InvalidKeys = []string{
	"", "/abs", "../up", "a/../b", "a/..", "..", ".", "./a", "a/./b", "a//b", "a/",
	`a\b`, "a b", "a\x00b", "a?b", "a#b", "a%2e", "é", ".hidden", "a/.tmp-123",
	strings.Repeat("a", blob.MaxKeyLen+1),
}

func testInvalidKeys(t *testing.T, s blob.Store) {
	ctx := context.Background()
	for _, key := range InvalidKeys {
		if err := s.Put(ctx, key, bytes.NewReader([]byte("x")), 1); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", key, err)
		}
		if rc, err := s.Get(ctx, key); !errors.Is(err, blob.ErrInvalidKey) {
			if err == nil {
				rc.Close()
			}
			t.Errorf("Get(%q) = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
}

func testPing(t *testing.T, s blob.Store) {
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testUsage(t *testing.T, s blob.Store) {
	m, ok := s.(blob.Measurer)
	if !ok {
		t.Skip("store does not implement blob.Measurer")
	}
	put(t, s, "documents/u1", []byte("abc"))
	put(t, s, "documents/nested/u2", []byte("defgh"))
	put(t, s, "documents/u3", nil)
	objects, size, err := m.Usage(context.Background())
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	if objects != 3 || size != 8 {
		t.Fatalf("Usage = %d objects, %d bytes; want 3, 8", objects, size)
	}
}

func testList(t *testing.T, s blob.Store) {
	l, ok := s.(blob.Lister)
	if !ok {
		t.Skip("store does not implement blob.Lister")
	}
	ctx := context.Background()
	put(t, s, "repo/stable/metadata/timestamp.json", []byte("abc"))
	put(t, s, "repo/stable/targets/sub/x.bin", []byte("defgh"))
	put(t, s, "repo/stablex/metadata/1.root.json", []byte("z"))
	put(t, s, "bundles/b1.zip", nil)
	got, err := l.List(ctx, "repo/stable/")
	if err != nil {
		t.Fatalf("List(repo/stable/): %v", err)
	}
	want := []blob.Object{{Key: "repo/stable/metadata/timestamp.json", Size: 3}, {Key: "repo/stable/targets/sub/x.bin", Size: 5}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("List(repo/stable/) = %v, want %v", got, want)
	}
	all, err := l.List(ctx, "")
	if err != nil || len(all) != 4 || all[0].Key != "bundles/b1.zip" {
		t.Fatalf("List(\"\") = %v, %v; want 4 objects sorted by key", all, err)
	}
	if none, err := l.List(ctx, "nothing/"); err != nil || len(none) != 0 {
		t.Fatalf("List(nothing/) = %v, %v; want nothing and no error", none, err)
	}
	for _, bad := range []string{"repo", "../", "/repo/", "repo//"} {
		if _, err := l.List(ctx, bad); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("List(%q) = %v, want ErrInvalidKey", bad, err)
		}
	}
}

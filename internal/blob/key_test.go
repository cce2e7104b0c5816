package blob_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/blob"
	"github.com/tetherhq/tether/internal/blob/blobtest"
)

func TestValidateKey(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"documents/01HZX3", "a", "a/b/c", "A-b_c.d", "x.y/z..."[:5]} {
		if err := blob.ValidateKey(key); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want nil", key, err)
		}
	}
	for _, key := range blobtest.InvalidKeys {
		if err := blob.ValidateKey(key); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
}

// FuzzKey checks that every key ValidateKey accepts is a clean relative path
// that stays inside the store's directory and means the same on S3.
func FuzzKey(f *testing.F) {
	for _, seed := range append([]string{"documents/abc", "a/b", "a.b-c_d"}, blobtest.InvalidKeys...) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := blob.ValidateKey(key)
		if err != nil {
			if !errors.Is(err, blob.ErrInvalidKey) {
				t.Fatalf("ValidateKey(%q) = %v, not ErrInvalidKey", key, err)
			}
			return
		}
		if filepath.IsAbs(key) || strings.Contains(key, "..") || strings.ContainsAny(key, "\\\x00 ") {
			t.Fatalf("ValidateKey accepted unsafe key %q", key)
		}
		if filepath.Clean(key) != key {
			t.Fatalf("accepted key %q is not a clean path (Clean = %q)", key, filepath.Clean(key))
		}
		root := "/srv/blobs"
		if p := filepath.Join(root, key); !strings.HasPrefix(p, root+"/") {
			t.Fatalf("key %q escapes the root: %q", key, p)
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == "" || seg[0] == '.' {
				t.Fatalf("accepted key %q has an empty or dot segment", key)
			}
		}
	})
}

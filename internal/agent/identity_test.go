package agent

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileKeys(t *testing.T) {
	ctx := context.Background()
	ks := fileKeys{path: filepath.Join(t.TempDir(), "identity.key")}
	k, created, err := loadOrCreateKey(ctx, ks)
	if err != nil || !created {
		t.Fatalf("first start: %v created=%v", err, created)
	}
	k2, created, err := loadOrCreateKey(ctx, ks)
	if err != nil || created || !k.Equal(k2) {
		t.Fatalf("second start: %v created=%v same=%v", err, created, k.Equal(k2))
	}
	// A key file others can read is refused rather than used.
	if err := os.Chmod(ks.path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadOrCreateKey(ctx, ks); err == nil {
		t.Fatal("a world-readable key file was accepted")
	}
}

func TestDecodeKey(t *testing.T) {
	_, k, _ := ed25519.GenerateKey(nil)
	got, err := decodeKey(encodeKey(k) + "\n")
	if err != nil || !got.Equal(k) {
		t.Fatalf("round trip: %v", err)
	}
	for _, bad := range []string{"", "not base64!", "AAAA", encodeKey(k) + "AA"} {
		if _, err := decodeKey(bad); err == nil {
			t.Errorf("decodeKey(%q) accepted", bad)
		}
	}
}

// FuzzDecodeKey covers the identity key as read back from a file or a
// Secrets Manager secret, which an operator (or anyone with write access
// to the secret) controls.
func FuzzDecodeKey(f *testing.F) {
	_, k, _ := ed25519.GenerateKey(nil)
	f.Add(encodeKey(k))
	f.Add("")
	f.Add("====")
	f.Fuzz(func(t *testing.T, s string) {
		key, err := decodeKey(s)
		if err == nil && len(key) != ed25519.PrivateKeySize {
			t.Fatalf("accepted a key of %d bytes", len(key))
		}
		if err != nil && len(s) >= 8 && strings.Contains(err.Error(), s) {
			t.Fatalf("error repeats the stored key text")
		}
	})
}

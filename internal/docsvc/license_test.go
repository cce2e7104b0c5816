package docsvc

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/config"
	"github.com/tetherhq/tether/internal/license"
	"github.com/tetherhq/tether/internal/license/issuer"
)

func TestLicenseGate(t *testing.T) {
	t.Parallel()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	dir := t.TempDir()
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pubPath := filepath.Join(dir, "license.pub")
	os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	write := func(expires time.Time, stamp time.Time) string {
		file, _, err := issuer.Issue(priv, license.License{
			ID: "lic-1", Customer: "Acme", IssuedAt: now.AddDate(-1, 0, 0), ExpiresAt: expires,
			GraceSeconds: int64(14 * 24 * time.Hour / time.Second), Channels: []string{"stable"},
		})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "license.json")
		os.WriteFile(p, file, 0o600)
		os.Chtimes(p, stamp, stamp) // a distinct mtime marks the file as changed
		return p
	}
	path := write(now.AddDate(0, 0, -20), now.Add(-time.Hour)) // expired 20 days ago: past 14 days of grace
	pubPEM, _ := os.ReadFile(pubPath)
	cfg := &config.Config{License: "(read from the file)", LicenseFile: path, LicenseKey: string(pubPEM)}
	g, err := newLicenseGate(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	err = g.Check(now)
	if err == nil || !strings.Contains(err.Error(), "renewed license") || !strings.Contains(err.Error(), "can still be read") {
		t.Fatalf("expired past grace: Check = %v", err)
	}
	if err := g.Check(now.AddDate(0, 0, -10)); err != nil {
		t.Fatalf("within grace: Check = %v, want nil", err)
	}

	write(now.AddDate(1, 0, 0), now) // renewed: picked up without a restart
	if err := g.Check(now); err != nil {
		t.Fatalf("after renewal: Check = %v", err)
	}

	// A tampered file is refused and the last verified license stays in force.
	os.WriteFile(path, []byte(`{"payload":{},"key_id":"x","signature":"AAAA"}`), 0o600)
	os.Chtimes(path, now.Add(time.Hour), now.Add(time.Hour))
	if err := g.Check(now); err != nil {
		t.Fatalf("tampered file replaced a good license: Check = %v", err)
	}

	// At start a bad license is an error that names the variable.
	if _, err := newLicenseGate(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now); err == nil || !strings.Contains(err.Error(), "DOCSVC_LICENSE_FILE") {
		t.Fatalf("bad license at start: %v", err)
	}

	// Given as a value (a Secrets Manager secret in AWS), it is verified at start.
	good, _, err := issuer.Issue(priv, license.License{ID: "lic-2", Customer: "Acme", IssuedAt: now.AddDate(-1, 0, 0), ExpiresAt: now.AddDate(0, 0, -30), Channels: []string{"stable"}})
	if err != nil {
		t.Fatal(err)
	}
	g, err = newLicenseGate(&config.Config{License: string(good), LicenseKey: string(pubPEM)}, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Check(now); err == nil {
		t.Fatal("a license expired 30 days ago with no grace allowed uploads")
	}
	if _, err := newLicenseGate(&config.Config{License: string(good), LicenseKey: "not a key"}, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now); err == nil || !strings.Contains(err.Error(), "DOCSVC_LICENSE_PUBLIC_KEY") {
		t.Fatalf("bad public key: %v", err)
	}
}

package docsvc

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/tetherhq/tether/internal/config"
	"github.com/tetherhq/tether/internal/license"
)

// licenseGate decides whether new uploads are accepted. It verifies the
// license offline with the vendor's public key. A license given as a file
// (DOCSVC_LICENSE_FILE) is re-read when the file changes, so installing a
// renewal needs no restart; one given as a value or a Secrets Manager
// reference is read at start. Past expiry plus grace only uploads stop:
// reads, results and deletes keep working, and nothing is ever deleted
// because of a license.
type licenseGate struct {
	path string // "" when the license came as a value
	pub  ed25519.PublicKey
	log  *slog.Logger
	now  func() time.Time

	mu      sync.Mutex
	lic     license.License
	modTime time.Time
}

func newLicenseGate(cfg *config.Config, log *slog.Logger, now func() time.Time) (*licenseGate, error) {
	pub, err := license.ParsePublicKey([]byte(cfg.LicenseKey))
	if err != nil {
		return nil, fmt.Errorf("docsvc: DOCSVC_LICENSE_PUBLIC_KEY: %w", err)
	}
	g := &licenseGate{path: cfg.LicenseFile, pub: pub, log: log, now: now}
	if g.path != "" {
		return g, g.reload()
	}
	lic, err := license.Verify(pub, []byte(cfg.License))
	if err != nil {
		return nil, fmt.Errorf("docsvc: DOCSVC_LICENSE: %w", err)
	}
	g.accept(lic)
	return g, nil
}

// reload verifies the license file if it changed since the last read. A file
// that fails verification is reported and the last good license stays.
func (g *licenseGate) reload() error {
	st, err := os.Stat(g.path)
	if err != nil {
		return fmt.Errorf("docsvc: DOCSVC_LICENSE_FILE: %w", err)
	}
	if st.ModTime().Equal(g.modTime) {
		return nil
	}
	data, err := os.ReadFile(g.path)
	if err != nil {
		return fmt.Errorf("docsvc: DOCSVC_LICENSE_FILE: %w", err)
	}
	lic, err := license.Verify(g.pub, data)
	if err != nil {
		return fmt.Errorf("docsvc: DOCSVC_LICENSE_FILE %s: %w", g.path, err)
	}
	g.modTime = st.ModTime()
	g.accept(lic)
	return nil
}

func (g *licenseGate) accept(lic license.License) {
	g.lic = lic
	g.log.Info("license loaded", "license_id", lic.ID, "expires_at", lic.ExpiresAt, "state", lic.StateAt(g.now()))
}

// Check returns nil while uploads are allowed at now.
func (g *licenseGate) Check(now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.path != "" {
		if err := g.reload(); err != nil {
			g.log.Warn("license file unreadable; keeping the last verified license", "err", err)
		}
	}
	if g.lic.StateAt(now) != license.Expired { // uploads stop only once the grace has run out
		return nil
	}
	graceEnd := g.lic.ExpiresAt.Add(time.Duration(g.lic.GraceSeconds) * time.Second)
	return fmt.Errorf("the license expired on %s and its grace period ended on %s: new uploads are refused until a renewed license is installed; existing documents and results can still be read",
		g.lic.ExpiresAt.Format(time.DateOnly), graceEnd.Format(time.DateOnly))
}

package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tetherhq/tether/internal/atomicfile"
)

// vendor is the local stand-in for the vendor's side of a deployment.
type vendor struct {
	planeDir, keysDir, repoDir string
	licenseFile                string
}

// devVersion is the version the development release is published as.
const devVersion = "0.1.0-dev"

// prepareVendor does, once per data dir, what the vendor does before a
// customer installs: make keys, issue a license, publish a signed release
// with the binaries just built. Each step leaves a file behind and is
// skipped when that file exists, so a restart resumes instead of redoing.
func prepareVendor(ctx context.Context, dataDir string, bins map[string]string, out *lockedWriter, now time.Time) (vendor, error) {
	v := vendor{
		planeDir:    filepath.Join(dataDir, "plane"),
		keysDir:     filepath.Join(dataDir, "plane", "keys"),
		repoDir:     filepath.Join(dataDir, "plane", "repo"),
		licenseFile: filepath.Join(dataDir, "license.json"),
	}
	if err := os.MkdirAll(v.planeDir, 0o700); err != nil {
		return v, err
	}
	plane := func(name string, args ...string) Proc {
		return Proc{Name: name, Path: bins["tether-plane"], Args: args, Env: os.Environ(), Dir: dataDir}
	}
	steps := []struct {
		done string // the file whose presence means the step is done
		what string
		proc Proc
	}{
		{filepath.Join(v.keysDir, "root.json"), "create development signing keys",
			plane("keys", "keys", "init", "--dir", v.keysDir, "--root-keys", "1", "--root-threshold", "1")},
		{v.licenseFile, "issue a development license",
			plane("license", "license", "issue", "--keys", v.keysDir, "--customer", "Local development",
				"--expires", now.AddDate(1, 0, 0).Format(time.DateOnly), "--grace", "14d",
				"--channels", "stable,beta", "--out", v.licenseFile)},
		{filepath.Join(v.planeDir, "published-"+devVersion), "publish the development release",
			plane("release", "release", "publish", "--keys", v.keysDir, "--repo", v.repoDir,
				"--version", devVersion, "--channel", "stable", "--min-from", "0.0.0",
				"--artifact", "docsvc="+bins["docsvc"], "--artifact", "tether-agent="+bins["tether-agent"])},
	}
	for _, st := range steps {
		if _, err := os.Stat(st.done); err == nil {
			continue
		} else if !errors.Is(err, os.ErrNotExist) {
			return v, err
		}
		out.printf("dev: %s\n", st.what)
		if _, err := runToEnd(ctx, st.proc, out); err != nil {
			return v, fmt.Errorf("dev: %s: %w", st.what, err)
		}
		if filepath.Base(st.done) == "published-"+devVersion {
			if err := os.WriteFile(st.done, nil, 0o600); err != nil {
				return v, err
			}
		}
	}
	return v, nil
}

// registerLicense tells the running plane about the development license (only
// its activation token's hash travels), once, and copies the plane's admin
// token to where scripts expect it.
func registerLicense(ctx context.Context, dataDir string, v vendor, planeURL string,
	proc func(bin, name string, env []string, args ...string) Proc, out *lockedWriter) error {
	adminToken := filepath.Join(v.planeDir, "admin-token")
	tok, err := os.ReadFile(adminToken)
	if err != nil {
		return fmt.Errorf("dev: the plane did not write its admin token: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dataDir, "plane-admin-token"), tok, 0o600); err != nil {
		return err
	}
	marker := filepath.Join(v.planeDir, "license-registered")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	out.printf("dev: register the license with the plane\n")
	if _, err := runToEnd(ctx, proc("tether-plane", "license", nil, "license", "register", "--file", v.licenseFile,
		"--plane-url", planeURL, "--admin-token-file", adminToken), out); err != nil {
		return fmt.Errorf("dev: register the license: %w", err)
	}
	return os.WriteFile(marker, nil, 0o600)
}

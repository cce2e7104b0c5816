package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tetherhq/tether/internal/updater"
	"github.com/tetherhq/tether/internal/updater/airgap"
)

const airgapUsage = `tetherctl airgap import — bring signed releases into an install without network access

Usage:
  tetherctl airgap import FILE [--data-dir DIR] [--trusted-root root.json]

FILE is what the vendor's 'tether-plane release export' wrote: a channel's
signed TUF metadata and its release artifacts. It is verified with exactly the
checks the agent applies online (signatures against the trusted root,
expiry, rollback and mix-and-match), and only then kept in the agent's data
dir. --trusted-root is needed only when the agent has never started there.
`

func airgapCmd(ctx context.Context, args []string, env Env) error {
	stdout, stderr := env.Stdout, env.Stderr
	if len(args) == 0 || args[0] != "import" {
		fmt.Fprint(stdout, airgapUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return fmt.Errorf("%w: tetherctl airgap: want 'import FILE'", errUsage)
	}
	fs := flag.NewFlagSet("airgap import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "./.tether-dev", "the tetherctl dev data dir, or the agent's own data dir")
	root := fs.String("trusted-root", "", "the TUF root.json shipped with the install, if the agent has never run here")
	rest := args[1:]
	var file string
	if len(rest) > 0 && len(rest[0]) > 0 && rest[0][0] != '-' {
		file, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: tetherctl airgap import: %w", errUsage, err)
	}
	if file == "" && fs.NArg() > 0 {
		file = fs.Arg(0)
	}
	if file == "" {
		return fmt.Errorf("%w: tetherctl airgap import: give the exported file", errUsage)
	}
	dir := agentDir(*dataDir)
	metadataDir := filepath.Join(dir, "tuf")
	if _, err := os.Stat(filepath.Join(metadataDir, "root.json")); err != nil {
		if *root == "" {
			return fmt.Errorf("tetherctl airgap import: no trusted root in %s; pass --trusted-root with the root.json shipped with the install", metadataDir)
		}
		data, err := os.ReadFile(*root)
		if err != nil {
			return err
		}
		if err := updater.Init(metadataDir, data); err != nil {
			return err
		}
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	targetsDir := filepath.Join(dir, "airgap-targets")
	manifests, err := airgap.ImportBundle(ctx, metadataDir, targetsDir, f, env.Now())
	if err != nil {
		return fmt.Errorf("tetherctl airgap import: %s refused: %w", file, err)
	}
	fmt.Fprintf(stdout, "verified and imported %d release(s) into %s:\n", len(manifests), dir)
	for _, m := range manifests {
		fmt.Fprintf(stdout, "  %s (channel %s, upgrades from %s or newer)\n", m.Version, m.Channel, m.MinFrom)
		for name, a := range m.Artifacts {
			fmt.Fprintf(stdout, "    %s: %s\n", name, airgap.BundleArtifactPath(targetsDir, a))
		}
	}
	return nil
}

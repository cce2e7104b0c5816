// Command imagebuild assembles the release images (docsvc, agent, plane)
// from statically built binaries into an OCI image layout, without Docker or
// a registry, and prints each image's digest; see build/README.md and
// internal/imagebuild. Run it from the repository root:
//
//	go run ./build/imagebuild --version 1.4.0 --out dist/images
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tetherhq/tether/internal/imagebuild"
)

const usage = `usage: go run ./build/imagebuild --version VERSION --out DIR [flags]

Builds each image's binary (CGO_ENABLED=0 GOOS=linux GOARCH=amd64, -trimpath,
the version set with -ldflags -X), assembles the image around it with no base
image to pull (the nonroot user 65532, CA certificates, an empty /tmp and the
binary; no shell), writes the images into the OCI image layout DIR (a new or
empty directory) and prints "NAME DIGEST" for each. The same source, Go
toolchain, version, CA bundle and SOURCE_DATE_EPOCH (seconds since 1970;
unset means 0) give the same digests.

Run it from the repository root. Load an image with e.g.
  podman run --rm oci:DIR:docsvc --help

Flags:
`

// errUsage marks a command-line mistake (exit 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return
	}
	fmt.Fprintln(os.Stderr, "imagebuild:", err)
	if errors.Is(err, errUsage) {
		os.Exit(2)
	}
	os.Exit(1)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.String("version", "", "the release version (MAJOR.MINOR.PATCH), set in the binaries and the images' labels")
	out := fs.String("out", "", "the OCI image layout directory to write (new or empty)")
	images := fs.String("images", "docsvc,agent,plane", "the images to build, comma-separated")
	caCerts := fs.String("ca-certs", imagebuild.CACertsPath, "the PEM CA bundle to put in the images (Debian's ca-certificates)")
	planeKeys := fs.String("plane-keys", "", "a keys directory whose public files (root.json, signing.json, license.pub, and snapshot.kms/timestamp.kms after tether-plane keys use-kms) the plane image carries in "+imagebuild.PlaneKeysDir+", as deploy/plane expects; private keys in it are never taken")
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q; see --help", errUsage, fs.Arg(0))
	}
	if *version == "" || *out == "" {
		return fmt.Errorf("%w: --version and --out are required; see --help", errUsage)
	}
	var specs []imagebuild.Spec
	for _, name := range strings.Split(*images, ",") {
		s, err := imagebuild.LookupSpec(strings.TrimSpace(name))
		if err != nil {
			return fmt.Errorf("%w: --images: %v", errUsage, err)
		}
		specs = append(specs, s)
	}
	created, err := imagebuild.SourceDateEpoch(getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if b, err := os.ReadFile("go.mod"); err != nil || !strings.Contains(string(b), "module github.com/tetherhq/tether\n") {
		return fmt.Errorf("%w: run imagebuild from the repository root (no tether go.mod here)", errUsage)
	}
	certs, err := os.ReadFile(*caCerts)
	if err != nil {
		return fmt.Errorf("the CA bundle: %w; install Debian's ca-certificates or give --ca-certs", err)
	}
	tmp, err := os.MkdirTemp("", "imagebuild-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	keys, err := readPlaneKeys(*planeKeys, specs)
	if err != nil {
		return err
	}
	var named []imagebuild.Named
	for _, s := range specs {
		bin := filepath.Join(tmp, s.Binary)
		if err := imagebuild.BuildBinary(ctx, ".", s, *version, bin); err != nil {
			return err
		}
		opt := imagebuild.Options{Version: *version, Created: created, CACerts: certs}
		if s.Binary == "tether-plane" {
			opt.PlaneKeys = keys
		}
		img, err := imagebuild.Assemble(s, bin, opt)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		named = append(named, imagebuild.Named{Name: s.Name, Image: img})
	}
	if err := imagebuild.WriteLayout(*out, named); err != nil {
		return err
	}
	for _, n := range named {
		d, err := n.Image.Digest()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s %s\n", n.Name, d)
	}
	return nil
}

// readPlaneKeys reads the plane image's files from dir (none when dir is
// empty): only the names imagebuild.PlaneKeyFiles lists, whatever else the
// directory holds.
func readPlaneKeys(dir string, specs []imagebuild.Spec) (map[string][]byte, error) {
	if dir == "" {
		return nil, nil
	}
	if !slices.ContainsFunc(specs, func(s imagebuild.Spec) bool { return s.Binary == "tether-plane" }) {
		return nil, fmt.Errorf("%w: --plane-keys is for the plane image, and --images does not build it", errUsage)
	}
	keys := map[string][]byte{}
	for name := range imagebuild.PlaneKeyFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("--plane-keys: %w", err)
		}
		keys[name] = b
	}
	return keys, nil
}

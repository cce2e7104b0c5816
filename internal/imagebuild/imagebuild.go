// Package imagebuild assembles the release images (docsvc, tether-agent and
// tether-plane) from their statically built binaries, with
// go-containerregistry and without Docker, a registry or a base image to
// pull: each image is a base layer this package writes (the nonroot user
// 65532 in /etc/passwd and /etc/group, its home, the host's CA certificates,
// an empty world-writable /tmp) and a layer holding the binary. Nothing else
// is in it: no shell, no package manager.
//
// The result is the image build/<name>.Dockerfile describes (same binary
// path, user, entrypoint, /tmp volume and ports; the package's tests hold the
// two to each other) and is reproducible: the same source, Go toolchain,
// version, CA bundle and SOURCE_DATE_EPOCH give the same digest.
//
// The command is build/imagebuild (see build/README.md).
package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/tetherhq/tether/internal/release"
)

// Spec is one image.
type Spec struct {
	// Name is the image's name: build/<Name>.Dockerfile builds it, and the
	// OCI layout names it so (org.opencontainers.image.ref.name).
	Name string
	// Binary is the command under cmd/ and the file /<Binary> the image runs.
	Binary string
	// VersionVar is the variable go build sets to the release version
	// (-ldflags -X); empty when the binary reports none.
	VersionVar string
	// Ports are the ports the image exposes ("8080/tcp").
	Ports []string
	// Sources are the source directories the binary is built from, beside
	// go.mod and go.sum: what build/<Name>.Dockerfile copies.
	Sources []string
	// Also are further commands under cmd/ the image carries at /<name>,
	// built beside Binary without a version; a task runs one by naming it
	// as its entry point.
	Also []string
}

// Specs are the images, in the order they are built.
var Specs = []Spec{
	{Name: "docsvc", Binary: "docsvc", VersionVar: "github.com/tetherhq/tether/internal/docsvc.Version", Ports: []string{"8080/tcp"},
		Sources: []string{"cmd/", "internal/", "docs/api/"}}, // docs/api: the OpenAPI document it serves
	// tether-upgrade: the scheduled task that applies staged releases, apart
	// from the agent so the agent cannot change stacks; tether-exchange: the
	// exchange bucket's mirror, apart so the agent reaches no S3 bucket.
	{Name: "agent", Binary: "tether-agent", VersionVar: "github.com/tetherhq/tether/internal/agent.Version", Sources: []string{"cmd/", "internal/"},
		Also: []string{"tether-upgrade", "tether-exchange"}},
	{Name: "plane", Binary: "tether-plane", Sources: []string{"cmd/", "internal/", "docs/api/"}},
}

// LookupSpec returns the spec named name.
func LookupSpec(name string) (Spec, error) {
	var names []string
	for _, s := range Specs {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return Spec{}, fmt.Errorf("no image %q: the images are %s", name, strings.Join(names, ", "))
}

// The runtime contract the images share with build/*.Dockerfile, whose base
// (distroless static-debian12:nonroot) defines the same user, home and
// environment.
const (
	// UID is the nonroot user's (and group's) ID: what USER nonroot is in
	// the Dockerfiles' base image.
	UID = 65532
	// User is the image's configured user, numeric so that a runtime that
	// insists on a non-root user (runAsNonRoot) can tell without /etc/passwd.
	User = "65532:65532"
	// WorkingDir is the nonroot user's home.
	WorkingDir = "/home/nonroot"
	// CACertsPath is where the CA bundle is in the image (Debian's path,
	// which Go's crypto/x509 reads on Linux).
	CACertsPath = "/etc/ssl/certs/ca-certificates.crt"
)

// Env is the image's environment.
var Env = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"SSL_CERT_FILE=" + CACertsPath,
}

// Volumes are the image's declared volumes: /tmp, the only writable path
// (the ECS tasks' root file system is read-only).
var Volumes = []string{"/tmp"}

// LDFlags and GoBuildFlags are the go build flags the Dockerfiles use, run
// with CGO_ENABLED=0: a static binary with no local paths and no symbol
// table. BuildBinary adds the version (-X) and -buildvcs=false (the
// Dockerfiles' build context has no .git, so their binary carries no VCS
// stamp either).
const LDFlags = "-s"

// GoBuildFlags: see LDFlags.
var GoBuildFlags = []string{"-trimpath", "-ldflags=" + LDFlags}

// BuildBinary builds spec's command from the module at repoRoot into out,
// and spec.Also beside it in out's directory, statically for linux/amd64
// (the ECS tasks' platform), with the release version in the binary where
// it has a variable for it.
func BuildBinary(ctx context.Context, repoRoot string, spec Spec, version, out string) error {
	if _, err := release.ParseVersion(version); err != nil {
		return fmt.Errorf("release version %q: %w; give MAJOR.MINOR.PATCH, e.g. 1.4.0", version, err)
	}
	ldflags := LDFlags
	if spec.VersionVar != "" {
		ldflags += " -X " + spec.VersionVar + "=" + version
	}
	builds := [][2]string{{spec.Binary, ldflags}}
	for _, name := range spec.Also {
		builds = append(builds, [2]string{name, LDFlags})
	}
	for _, b := range builds {
		path := filepath.Join(filepath.Dir(out), b[0])
		if b[0] == spec.Binary {
			path = out
		}
		args := []string{"build", "-buildvcs=false", "-trimpath", "-ldflags=" + b[1], "-o", path, "./cmd/" + b[0]}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, msg)
		}
	}
	return nil
}

// Options are what an image is assembled from besides its binary.
type Options struct {
	Version string    // the release version (label org.opencontainers.image.version)
	Created time.Time // every timestamp in the image: SourceDateEpoch
	CACerts []byte    // the PEM CA bundle, e.g. Debian's ca-certificates
	// PlaneKeys are the plane's public trust files by name (PlaneKeyFiles),
	// put in PlaneKeysDir in a layer of their own; only for the plane image.
	PlaneKeys map[string][]byte
}

// PlaneKeysDir is where the plane image carries its keys directory
// (tether-plane serve --keys; deploy/plane's default).
const PlaneKeysDir = "/etc/tether-plane/keys"

// PlaneKeyFiles are the files of a keys directory a replicated plane serves
// with: public trust material and references to KMS keys, never a private
// key. root.json, signing.json and license.pub are required.
var PlaneKeyFiles = map[string]bool{"root.json": true, "signing.json": true, "license.pub": true, "snapshot.kms": false, "timestamp.kms": false}

// Assemble builds spec's image around the binary at binPath and spec.Also
// beside it.
func Assemble(spec Spec, binPath string, opt Options) (v1.Image, error) {
	if _, err := release.ParseVersion(opt.Version); err != nil {
		return nil, fmt.Errorf("release version %q: %w; give MAJOR.MINOR.PATCH, e.g. 1.4.0", opt.Version, err)
	}
	if !bytes.Contains(opt.CACerts, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, errors.New("the CA bundle holds no PEM certificate: give Debian's " + CACertsPath + " (apt-get install ca-certificates)")
	}
	var bins []file
	for _, name := range append([]string{spec.Binary}, spec.Also...) {
		path := filepath.Join(filepath.Dir(binPath), name)
		if name == spec.Binary {
			path = binPath
		}
		bin, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("the %s binary: %w", name, err)
		}
		if !bytes.HasPrefix(bin, []byte("\x7fELF")) {
			return nil, fmt.Errorf("%s is not an ELF binary: build it with BuildBinary (GOOS=linux)", path)
		}
		bins = append(bins, file{name: name, mode: 0o755, data: bin})
	}
	created := opt.Created.UTC()
	base, err := layer(created, baseFiles(opt.CACerts))
	if err != nil {
		return nil, err
	}
	app, err := layer(created, bins)
	if err != nil {
		return nil, err
	}
	keys, err := planeKeysLayer(spec, created, opt.PlaneKeys)
	if err != nil {
		return nil, err
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{Created: v1.Time{Time: created},
			CreatedBy: "imagebuild: the nonroot user 65532, its home, CA certificates and an empty /tmp"}},
		mutate.Addendum{Layer: app, MediaType: types.OCILayer, History: v1.History{Created: v1.Time{Time: created},
			CreatedBy: "imagebuild: /" + strings.Join(append([]string{spec.Binary}, spec.Also...), ", /")}},
	)
	if err == nil && keys != nil {
		img, err = mutate.Append(img, mutate.Addendum{Layer: keys, MediaType: types.OCILayer, History: v1.History{Created: v1.Time{Time: created},
			CreatedBy: "imagebuild: the plane's public trust files in " + PlaneKeysDir}})
	}
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = "amd64", "linux", v1.Time{Time: created}
	cf.Config = v1.Config{
		User:       User,
		Entrypoint: []string{"/" + spec.Binary},
		Env:        Env,
		WorkingDir: WorkingDir,
		Volumes:    map[string]struct{}{},
		Labels: map[string]string{
			"org.opencontainers.image.title":   spec.Binary,
			"org.opencontainers.image.version": opt.Version,
			"org.opencontainers.image.created": created.Format(time.RFC3339),
		},
	}
	for _, v := range Volumes {
		cf.Config.Volumes[v] = struct{}{}
	}
	if len(spec.Ports) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range spec.Ports {
			cf.Config.ExposedPorts[p] = struct{}{}
		}
	}
	return mutate.ConfigFile(img, cf)
}

// planeKeysLayer is the layer holding the plane's keys directory, or nil
// when there are no keys. Only the files PlaneKeyFiles names are taken, so
// a private key can never be built into an image.
func planeKeysLayer(spec Spec, created time.Time, keys map[string][]byte) (v1.Layer, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	if spec.Binary != "tether-plane" {
		return nil, fmt.Errorf("plane keys are for the plane image, not %s", spec.Name)
	}
	var missing []string
	for name, required := range PlaneKeyFiles {
		if _, ok := keys[name]; required && !ok {
			missing = append(missing, name)
		}
	}
	names := make([]string, 0, len(keys))
	for name := range keys {
		if _, ok := PlaneKeyFiles[name]; !ok {
			return nil, fmt.Errorf("plane keys: %q is not a file the plane image may carry (only root.json, signing.json, license.pub, snapshot.kms, timestamp.kms: never a private key)", name)
		}
		names = append(names, name)
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("plane keys: %s missing", strings.Join(missing, ", "))
	}
	slices.Sort(names)
	dir := strings.TrimPrefix(PlaneKeysDir, "/")
	files := []file{{name: "etc/tether-plane/", mode: 0o755}, {name: dir + "/", mode: 0o755}}
	for _, name := range names {
		files = append(files, file{name: dir + "/" + name, mode: 0o644, data: keys[name]})
	}
	return layer(created, files)
}

// file is one entry of a layer; a name ending in / is a directory.
type file struct {
	name     string
	mode     int64
	uid, gid int
	data     []byte
}

// baseFiles are the base layer's entries: what distroless static's nonroot
// variant gives the Dockerfiles' images, less what the binaries never read.
func baseFiles(caCerts []byte) []file {
	uid := strconv.Itoa(UID)
	return []file{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:" + uid + ":\nnogroup:x:65534:\n")},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\n" +
			"nonroot:x:" + uid + ":" + uid + ":nonroot:" + WorkingDir + ":/sbin/nologin\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n")},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: strings.TrimPrefix(CACertsPath, "/"), mode: 0o644, data: caCerts},
		{name: "home/", mode: 0o755},
		{name: strings.TrimPrefix(WorkingDir, "/") + "/", mode: 0o700, uid: UID, gid: UID},
		{name: "tmp/", mode: 0o1777},
	}
}

// layer is an uncompressed tar of files, every entry stamped with created
// and nothing taken from the machine that builds it (owner names, access
// times), as a layer.
func layer(created time.Time, files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.gid, ModTime: created, Format: tar.FormatPAX}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// Named is an image and the name the layout gives it.
type Named struct {
	Name  string
	Image v1.Image
}

// RefNameAnnotation is the index annotation that names an image in an OCI
// layout: podman's oci:<dir>:<name> and skopeo find it by this.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// WriteLayout writes images as an OCI image layout in dir, which must not
// exist yet or be empty (an existing layout would keep its old images
// beside the new ones).
func WriteLayout(dir string, images []Named) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s is not empty: give a new directory for the OCI layout, or remove this one", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	p, err := layout.Write(filepath.Clean(dir), empty.Index)
	if err != nil {
		return err
	}
	for _, n := range images {
		if err := p.AppendImage(n.Image, layout.WithAnnotations(map[string]string{RefNameAnnotation: n.Name})); err != nil {
			return fmt.Errorf("write %s into %s: %w", n.Name, dir, err)
		}
	}
	return nil
}

// ReadLayout reads back the images WriteLayout wrote into dir, in the
// index's order, each with its name.
func ReadLayout(dir string) ([]Named, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []Named
	for _, d := range im.Manifests {
		img, err := p.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		out = append(out, Named{Name: d.Annotations[RefNameAnnotation], Image: img})
	}
	return out, nil
}

// SourceDateEpoch parses SOURCE_DATE_EPOCH (reproducible-builds.org): a
// decimal count of seconds since 1970-01-01 UTC. Empty means the epoch
// itself, so that an unset variable still builds reproducibly.
func SourceDateEpoch(s string) (time.Time, error) {
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	// Past year 9999 the RFC 3339 label and the tar header cannot carry it.
	if err != nil || n < 0 || n > 253402300799 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a count of seconds since 1970 (0 to 253402300799): set it to e.g. $(git log -1 --format=%%ct) or leave it unset", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

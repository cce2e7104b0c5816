package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// repoRoot is the module root, two levels up.
const repoRoot = "../.."

// testVersion is not any binary's built-in default, so a binary that
// reports it got it from the build.
const testVersion = "0.9.1-dev.7"

// binDir holds the binaries the tests build once; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	if url := os.Getenv(probeEnv); url != "" {
		probeMain(url) // run_test.go: inside a container's network namespace
	}
	dir, err := os.MkdirTemp("", "imagebuild-test-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildErr  error
)

// binaries builds the three binaries once, with testVersion, and returns
// the path of spec's.
func binary(t *testing.T, spec Spec) string {
	t.Helper()
	buildOnce.Do(func() {
		for _, s := range Specs {
			if buildErr = BuildBinary(context.Background(), repoRoot, s, testVersion, filepath.Join(binDir, s.Binary)); buildErr != nil {
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, spec.Binary)
}

func hostCACerts(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(CACertsPath)
	if err != nil {
		t.Fatalf("Debian's ca-certificates: %v (apt-get install ca-certificates)", err)
	}
	return b
}

var testCreated = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func assemble(t *testing.T, spec Spec, created time.Time) v1.Image {
	t.Helper()
	img, err := Assemble(spec, binary(t, spec), Options{Version: testVersion, Created: created, CACerts: hostCACerts(t)})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// entry is one file of an image's flattened file system.
type entry struct {
	mode     int64
	uid, gid int
	typ      byte
	mtime    time.Time
	sum      [32]byte
	data     []byte // kept for small files only
}

func files(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]entry{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		e := entry{mode: h.Mode, uid: h.Uid, gid: h.Gid, typ: h.Typeflag, mtime: h.ModTime, sum: sha256.Sum256(b)}
		if len(b) < 4096 {
			e.data = b
		}
		out["/"+strings.TrimSuffix(h.Name, "/")] = e
	}
}

// checkImage is the runtime contract, read from the image itself.
func checkImage(t *testing.T, spec Spec, img v1.Image, created time.Time) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON || len(m.Layers) != 2 {
		t.Errorf("manifest %s, config %s, %d layers; want an OCI manifest and config and 2 layers", m.MediaType, m.Config.MediaType, len(m.Layers))
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if cf.OS != "linux" || cf.Architecture != "amd64" || !cf.Created.Time.Equal(created) {
		t.Errorf("platform %s/%s created %v, want linux/amd64 created %v", cf.OS, cf.Architecture, cf.Created.Time, created)
	}
	if c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{"/" + spec.Binary}) || len(c.Cmd) != 0 || c.WorkingDir != "/home/nonroot" {
		t.Errorf("user %q entrypoint %q cmd %q workdir %q; want 65532:65532, [/%s], none, /home/nonroot", c.User, c.Entrypoint, c.Cmd, c.WorkingDir, spec.Binary)
	}
	if !slices.Contains(c.Env, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt") {
		t.Errorf("env %q does not point SSL_CERT_FILE at the CA bundle", c.Env)
	}
	if _, ok := c.Volumes["/tmp"]; !ok || len(c.Volumes) != 1 {
		t.Errorf("volumes %v, want /tmp only", c.Volumes)
	}
	var ports []string
	for p := range c.ExposedPorts {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	if !slices.Equal(ports, spec.Ports) {
		t.Errorf("exposed ports %v, want %v", ports, spec.Ports)
	}
	if c.Labels["org.opencontainers.image.version"] != testVersion {
		t.Errorf("version label %q, want %q", c.Labels["org.opencontainers.image.version"], testVersion)
	}

	fs := files(t, img)
	var names []string
	for n := range fs {
		names = append(names, n)
	}
	slices.Sort(names)
	want := []string{"/" + spec.Binary}
	for _, a := range spec.Also {
		want = append(want, "/"+a)
	}
	want = append(want, "/etc", "/etc/group", "/etc/passwd", "/etc/ssl", "/etc/ssl/certs",
		"/etc/ssl/certs/ca-certificates.crt", "/home", "/home/nonroot", "/tmp")
	slices.Sort(want)
	// The whole file system: no shell, no package manager, nothing else.
	if !slices.Equal(names, want) {
		t.Errorf("the image holds %q, want exactly %q", names, want)
	}
	for _, sh := range []string{"/bin/sh", "/bin/bash", "/bin/busybox", "/usr/bin/sh"} {
		if _, ok := fs[sh]; ok {
			t.Errorf("the image has a shell: %s", sh)
		}
	}
	for name, w := range map[string]struct {
		mode     int64
		uid      int
		typ      byte
		contents []byte
	}{
		"/" + spec.Binary:                    {0o755, 0, tar.TypeReg, nil},
		"/tmp":                               {0o1777, 0, tar.TypeDir, nil},
		"/home/nonroot":                      {0o700, UID, tar.TypeDir, nil},
		"/etc/passwd":                        {0o644, 0, tar.TypeReg, nil},
		"/etc/ssl/certs/ca-certificates.crt": {0o644, 0, tar.TypeReg, nil},
	} {
		e := fs[name]
		if e.mode != w.mode || e.uid != w.uid || e.gid != w.uid || e.typ != w.typ || !e.mtime.Equal(created) {
			t.Errorf("%s: mode %o owner %d:%d type %c mtime %v; want mode %o owner %d:%d type %c mtime %v",
				name, e.mode, e.uid, e.gid, e.typ, e.mtime, w.mode, w.uid, w.uid, w.typ, created)
		}
	}
	for _, name := range append([]string{spec.Binary}, spec.Also...) {
		bin, err := os.ReadFile(filepath.Join(filepath.Dir(binary(t, spec)), name))
		if err != nil {
			t.Fatal(err)
		}
		if e := fs["/"+name]; e.sum != sha256.Sum256(bin) || e.mode != 0o755 || e.uid != 0 {
			t.Errorf("/%s is not the binary that was built, mode 755, owned by root", name)
		}
	}
	if fs["/etc/ssl/certs/ca-certificates.crt"].sum != sha256.Sum256(hostCACerts(t)) {
		t.Error("the CA bundle is not the one given")
	}
	if !bytes.Contains(fs["/etc/passwd"].data, []byte("\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")) ||
		!bytes.Contains(fs["/etc/group"].data, []byte("\nnonroot:x:65532:\n")) {
		t.Errorf("passwd %q group %q do not name nonroot 65532", fs["/etc/passwd"].data, fs["/etc/group"].data)
	}
}

// TestImages assembles each image, writes the three into an OCI layout and
// checks what reads back from it.
func TestImages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	var named []Named
	for _, s := range Specs {
		named = append(named, Named{Name: s.Name, Image: assemble(t, s, testCreated)})
	}
	if err := WriteLayout(dir, named); err != nil {
		t.Fatal(err)
	}
	for i, s := range Specs {
		t.Run(s.Name, func(t *testing.T) {
			img := layoutImage(t, dir, s.Name)
			want, _ := named[i].Image.Digest()
			if got, _ := img.Digest(); got != want {
				t.Fatalf("the layout's %s is %s, built %s", s.Name, got, want)
			}
			checkImage(t, s, img, testCreated)
		})
	}
	if err := WriteLayout(dir, named); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("writing into a layout that has images: %v, want a refusal", err)
	}
}

// layoutImage reads the image the layout at dir names name.
func layoutImage(t *testing.T, dir, name string) v1.Image {
	t.Helper()
	named, err := ReadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range named {
		if n.Name == name {
			return n.Image
		}
	}
	t.Fatalf("the layout names no image %s", name)
	return nil
}

// TestReproducible: two builds from the same source, each with its own go
// build, give the same digest; a different SOURCE_DATE_EPOCH does not.
func TestReproducible(t *testing.T) {
	spec, err := LookupSpec("agent")
	if err != nil {
		t.Fatal(err)
	}
	certs := hostCACerts(t)
	var digests []v1.Hash
	for i, created := range []time.Time{testCreated, testCreated, testCreated.Add(time.Second)} {
		bin := filepath.Join(t.TempDir(), spec.Binary)
		if err := BuildBinary(context.Background(), repoRoot, spec, testVersion, bin); err != nil {
			t.Fatal(err)
		}
		img, err := Assemble(spec, bin, Options{Version: testVersion, Created: created, CACerts: certs})
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("build %d: %s", i, d)
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of the same source: %s and %s", digests[0], digests[1])
	}
	if digests[0] == digests[2] {
		t.Errorf("a different SOURCE_DATE_EPOCH gave the same digest %s: the timestamps are not in the image", digests[0])
	}
}

// TestDockerfilesAgree: build/<name>.Dockerfile, which CodeBuild uses in
// the customer's account, makes the image this package assembles: the same
// go build, binary path, user, volume, ports and entrypoint.
func TestDockerfilesAgree(t *testing.T) {
	for _, s := range Specs {
		t.Run(s.Name, func(t *testing.T) {
			path := filepath.Join(repoRoot, "build", s.Name+".Dockerfile")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			byCmd := map[string][]string{}
			for _, line := range strings.Split(string(b), "\n") {
				line = strings.TrimSpace(line)
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				cmd, _, _ := strings.Cut(line, " ")
				byCmd[cmd] = append(byCmd[cmd], line)
			}
			var expose []string
			for _, p := range s.Ports {
				expose = append(expose, "EXPOSE "+strings.TrimSuffix(p, "/tcp"))
			}
			copies := []string{"COPY go.mod go.sum ./"}
			for _, dir := range s.Sources {
				copies = append(copies, "COPY "+dir+" "+dir)
			}
			bins := append([]string{s.Binary}, s.Also...)
			builds := []string{"RUN go mod download"}
			for _, b := range bins {
				copies = append(copies, "COPY --from=build /out/"+b+" /"+b)
				builds = append(builds, "RUN CGO_ENABLED=0 go build "+strings.Join(GoBuildFlags, " ")+" -o /out/"+b+" ./cmd/"+b)
			}
			for cmd, want := range map[string][]string{
				// distroless's nonroot user is 65532 with home /home/nonroot:
				// the user, group and home this package writes.
				"FROM":       {"FROM golang:1.26 AS build", "FROM gcr.io/distroless/static-debian12:nonroot"},
				"USER":       {"USER nonroot"},
				"ENTRYPOINT": {`ENTRYPOINT ["/` + s.Binary + `"]`},
				"VOLUME":     {`VOLUME ["` + strings.Join(Volumes, `", "`) + `"]`},
				"EXPOSE":     expose,
				"COPY":       copies,
				"RUN":        builds,
			} {
				if !slices.Equal(byCmd[cmd], want) {
					t.Errorf("%s: %s lines %q, want %q (internal/imagebuild assembles that)", path, cmd, byCmd[cmd], want)
				}
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	spec, _ := LookupSpec("plane")
	dir := t.TempDir()
	out := filepath.Join(dir, "bin")
	// The version goes into -ldflags: anything but semver could add flags.
	if err := BuildBinary(context.Background(), repoRoot, spec, "1.0.0 -X main.x=y", out); err == nil || !strings.Contains(err.Error(), `"1.0.0 -X main.x=y"`) {
		t.Errorf("a version with linker flags in it: %v, want a refusal naming it", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused build left %s: %v", out, err)
	}
	notELF := filepath.Join(dir, "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	certs := hostCACerts(t)
	if _, err := Assemble(spec, notELF, Options{Version: testVersion, CACerts: certs}); err == nil || !strings.Contains(err.Error(), "not an ELF binary") {
		t.Errorf("a script as the binary: %v, want a refusal", err)
	}
	if _, err := Assemble(spec, binary(t, spec), Options{Version: testVersion, CACerts: []byte("not pem")}); err == nil || !strings.Contains(err.Error(), "ca-certificates") {
		t.Errorf("a CA bundle with no certificate: %v, want a refusal naming the fix", err)
	}
	if _, err := Assemble(spec, binary(t, spec), Options{Version: "latest", CACerts: certs}); err == nil || !strings.Contains(err.Error(), `"latest"`) {
		t.Errorf("version latest: %v, want a refusal naming it", err)
	}
	if _, err := LookupSpec("shell"); err == nil || !strings.Contains(err.Error(), "docsvc, agent, plane") {
		t.Errorf("an unknown image: %v, want the list of images", err)
	}
}

func TestSourceDateEpoch(t *testing.T) {
	for in, want := range map[string]time.Time{
		"":           time.Unix(0, 0).UTC(),
		"0":          time.Unix(0, 0).UTC(),
		"1772366400": testCreated,
	} {
		if got, err := SourceDateEpoch(in); err != nil || !got.Equal(want) {
			t.Errorf("SourceDateEpoch(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"-1", "1e9", " 1", "2026-03-01", "253402300800", "99999999999999999999"} {
		if _, err := SourceDateEpoch(bad); err == nil || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("SourceDateEpoch(%q): %v, want an error naming it", bad, err)
		}
	}
}

func FuzzSourceDateEpoch(f *testing.F) {
	for _, s := range []string{"", "0", "1772366400", "-1", "253402300799", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := SourceDateEpoch(s)
		if err != nil {
			if !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH=") {
				t.Fatalf("error %q does not name the variable", err)
			}
			return
		}
		if got.Year() > 9999 || got.Before(time.Unix(0, 0)) || got.Location() != time.UTC {
			t.Fatalf("SourceDateEpoch(%q) = %v, outside 1970..9999 UTC", s, got)
		}
	})
}

// TestPlaneKeys: the plane image can carry its keys directory's public
// files, root-owned and read-only to the plane's user, in a layer of their
// own; a private key, a missing required file or keys for another image are
// refused before anything is written.
func TestPlaneKeys(t *testing.T) {
	spec, _ := LookupSpec("plane")
	bin := binary(t, spec)
	certs := hostCACerts(t)
	keys := map[string][]byte{"root.json": []byte(`{"signed":{}}`), "signing.json": []byte(`{}`), "license.pub": []byte("-----BEGIN PUBLIC KEY-----\n"),
		"snapshot.kms": []byte("arn:aws:kms:eu-west-1:123456789012:key/1\n")}
	img, err := Assemble(spec, bin, Options{Version: testVersion, CACerts: certs, PlaneKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	got := files(t, img)
	for name, want := range keys {
		e, ok := got[PlaneKeysDir+"/"+name]
		if !ok || string(e.data) != string(want) || e.mode != 0o644 || e.uid != 0 {
			t.Errorf("%s in the image: %+v (present %v), want root-owned 0644 with the file's bytes", name, e, ok)
		}
	}
	if _, ok := got[PlaneKeysDir+"/timestamp.kms"]; ok {
		t.Error("a file that was not given is in the image")
	}
	plain, err := Assemble(spec, bin, Options{Version: testVersion, CACerts: certs})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files(t, plain)[PlaneKeysDir]; ok {
		t.Error("an image built without keys has the keys directory")
	}

	withKey := map[string][]byte{"targets.key": []byte("secret")}
	for name, data := range keys {
		withKey[name] = data
	}
	if _, err := Assemble(spec, bin, Options{Version: testVersion, CACerts: certs, PlaneKeys: withKey}); err == nil || !strings.Contains(err.Error(), `"targets.key"`) {
		t.Errorf("a private key among the plane keys: %v, want a refusal naming it", err)
	}
	if _, err := Assemble(spec, bin, Options{Version: testVersion, CACerts: certs, PlaneKeys: map[string][]byte{"root.json": nil}}); err == nil || !strings.Contains(err.Error(), "license.pub, signing.json missing") {
		t.Errorf("plane keys without license.pub and signing.json: %v, want a refusal naming them", err)
	}
	docsvc, _ := LookupSpec("docsvc")
	if _, err := Assemble(docsvc, binary(t, docsvc), Options{Version: testVersion, CACerts: certs, PlaneKeys: keys}); err == nil || !strings.Contains(err.Error(), "not docsvc") {
		t.Errorf("plane keys in the docsvc image: %v, want a refusal", err)
	}
}

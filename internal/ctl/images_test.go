package ctl

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/deployconfig"
)

// imagesFixture is a deployment whose images stack exists in moto, a
// vendor registry holding the release's images (docsvc a single image,
// agent a multi-platform index) and an empty ECR registry.
type imagesFixture struct {
	srv         *awstest.Server
	a           *awsSession
	dc          *deployconfig.Config
	vendor, ecr *testRegistry
	opt         imageOptions
	rel         releaseImages
	manifests   map[string][]byte // digest -> the manifest's bytes
	mediaTypes  map[string]string
}

func newImagesFixture(t *testing.T) *imagesFixture {
	t.Helper()
	f := &imagesFixture{srv: awstest.Start(t), manifests: map[string][]byte{}, mediaTypes: map[string]string{}}
	f.dc, _ = testDeployment(t, deployconfig.ImagesVendor)
	f.a = testSession(t, f.srv, f.dc)
	createStack(t, f.a, "acme-docs-images", imagesStackTemplate(f.dc, nil), nil)
	f.vendor, f.ecr = newTestRegistry(t), newTestRegistry(t)
	f.ecr.password = ecrPassword
	f.opt.Transport = registryTransport(map[string]*testRegistry{"registry.vendor.example": f.vendor, ecrHost: f.ecr})

	docsvc, err := random.Image(8192, 3)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := random.Index(4096, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	f.rel = releaseImages{Version: "1.4.0", DocsvcDigest: f.push(t, "docsvc", docsvc), AgentDigest: f.push(t, "agent", agent)}
	return f
}

// push puts an image or index into the vendor registry under
// registry.vendor.example/tether/NAME:1.4.0 and returns its digest.
func (f *imagesFixture) push(t *testing.T, imgName string, img remote.Taggable) string {
	t.Helper()
	ref, err := name.ParseReference("registry.vendor.example/tether/" + imgName + ":1.4.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Push(ref, img, remote.WithTransport(f.opt.Transport)); err != nil {
		t.Fatal(err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := v1.SHA256(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	f.manifests[d.String()] = raw
	f.mediaTypes[d.String()] = mediaType(t, img)
	return d.String()
}

func mediaType(t *testing.T, img remote.Taggable) string {
	t.Helper()
	switch i := img.(type) {
	case v1.Image:
		mt, err := i.MediaType()
		if err != nil {
			t.Fatal(err)
		}
		return string(mt)
	case v1.ImageIndex:
		mt, err := i.MediaType()
		if err != nil {
			t.Fatal(err)
		}
		return string(mt)
	}
	t.Fatalf("no media type for %T", img)
	return ""
}

// inECR reads DIGEST from the ECR registry as a client pulling by digest
// would; it fails unless the registry serves exactly that digest.
func (f *imagesFixture) inECR(imgName, digest string) error {
	ref, err := name.ParseReference(ecrHost + "/acme-docs/" + imgName + "@" + digest)
	if err != nil {
		return err
	}
	desc, err := remote.Get(ref, remote.WithTransport(f.opt.Transport), remote.WithAuth(&authn.Basic{Username: "AWS", Password: ecrPassword}))
	if err != nil {
		return err
	}
	if desc.Digest.String() != digest {
		return errors.New("served " + desc.Digest.String())
	}
	return nil
}

// putInECRAPI records a vendor image in moto's ECR API.
func (f *imagesFixture) putInECRAPI(t *testing.T, imgName, digest, tag string) {
	t.Helper()
	putECRImage(t, f.srv, "acme-docs/"+imgName, tag, f.manifests[digest], f.mediaTypes[digest], digest)
}

func (f *imagesFixture) noMarker(t *testing.T, digest string) {
	t.Helper()
	if p, ok := parameter(t, f.a, agentMarkerPath(f.dc, digest)); ok {
		t.Errorf("the agent's marker was written: %s = %s", aws.ToString(p.Name), aws.ToString(p.Value))
	}
}

func TestPushImagesCopiesAndVerifies(t *testing.T) {
	t.Parallel()
	f := newImagesFixture(t)
	env, _, stderr := testEnv()
	rep, err := pushImagesReport(releaseContext(t), env, f.a, f.dc, f.rel, f.opt)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for i, want := range []struct{ name, digest string }{{"docsvc", f.rel.DocsvcDigest}, {"agent", f.rel.AgentDigest}} {
		got := rep.Images[i]
		if got.Name != want.name || got.Digest != want.digest || got.Action != "copied" || got.Bytes <= 0 ||
			got.Repository != ecrHost+"/acme-docs/"+want.name || got.Source != "registry.vendor.example/tether/"+want.name+"@"+want.digest {
			t.Errorf("image %d: %+v", i, got)
		}
		if err := f.inECR(want.name, want.digest); err != nil {
			t.Errorf("%s is not in ECR by digest: %v", want.name, err)
		}
		if !strings.Contains(stderr.String(), want.name+" "+want.digest+": copied to "+ecrHost+"/acme-docs/"+want.name) {
			t.Errorf("no copy line for %s:\n%s", want.name, stderr)
		}
	}
	if !regexp.MustCompile(`docsvc sha256:[0-9a-f]{64}: [0-9.]+ KiB of [0-9.]+ KiB`).MatchString(stderr.String()) {
		t.Errorf("no progress line with bytes copied of total:\n%s", stderr)
	}
	p, ok := parameter(t, f.a, "/tether/acme-docs/verified/agent/sha256-"+strings.TrimPrefix(f.rel.AgentDigest, "sha256:"))
	if !ok || aws.ToString(p.Value) != f.rel.AgentDigest || p.Type != "String" {
		t.Fatalf("agent marker: %v %+v", ok, p)
	}
	if rep.AgentMarker != aws.ToString(p.Name) {
		t.Errorf("report names marker %q", rep.AgentMarker)
	}
	if !called(f.srv, ".GetAuthorizationToken") {
		t.Error("no ECR GetAuthorizationToken: how did the copy log in?")
	}
}

// What ECR already holds (by digest, per ECR's own DescribeImages) is not
// copied again.
func TestPushImagesSkipsWhatECRHas(t *testing.T) {
	t.Parallel()
	f := newImagesFixture(t)
	f.putInECRAPI(t, "docsvc", f.rel.DocsvcDigest, "")
	f.putInECRAPI(t, "agent", f.rel.AgentDigest, "")
	before := f.vendor.requests()
	env, _, stderr := testEnv()
	rep, err := pushImagesReport(releaseContext(t), env, f.a, f.dc, f.rel, f.opt)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, img := range rep.Images {
		if img.Action != "present" || img.Bytes != 0 {
			t.Errorf("%+v, want present", img)
		}
	}
	if n := f.vendor.requests() - before; n != 0 {
		t.Errorf("the vendor registry was asked %d times", n)
	}
	if n := f.ecr.requests(); n != 0 {
		t.Errorf("the ECR registry was asked %d times", n)
	}
	if p, ok := parameter(t, f.a, agentMarkerPath(f.dc, f.rel.AgentDigest)); !ok || aws.ToString(p.Value) != f.rel.AgentDigest {
		t.Errorf("agent marker: %v %+v", ok, p)
	}
}

func TestPushImagesVendorImageMissing(t *testing.T) {
	t.Parallel()
	f := newImagesFixture(t)
	other, _ := random.Image(100, 1)
	d, _ := other.Digest()
	f.rel.DocsvcDigest = d.String() // never pushed to the vendor registry
	env, _, _ := testEnv()
	_, err := pushImagesReport(releaseContext(t), env, f.a, f.dc, f.rel, f.opt)
	if err == nil || !strings.Contains(err.Error(), "registry.vendor.example/tether/docsvc@"+d.String()) ||
		!strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), "images.vendor_registry") {
		t.Fatalf("err = %v", err)
	}
	f.noMarker(t, f.rel.AgentDigest)
	if err := f.inECR("agent", f.rel.AgentDigest); err == nil {
		t.Error("the agent was copied after docsvc failed")
	}
}

// serveManifest makes a registry answer GETs of digest's manifest with
// other bytes, as a registry (or something on the way) that alters images.
func serveManifest(digest string, other []byte, mediaType string) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/manifests/"+digest) {
			return false
		}
		w.Header().Set("Content-Type", mediaType)
		w.Header().Set("Docker-Content-Digest", digest)
		_, _ = w.Write(other)
		return true
	}
}

func TestPushImagesRefusesAlteredImages(t *testing.T) {
	t.Parallel()
	t.Run("ECR serves other content", func(t *testing.T) {
		t.Parallel()
		f := newImagesFixture(t)
		f.ecr.tamper = serveManifest(f.rel.AgentDigest, f.manifests[f.rel.DocsvcDigest], f.mediaTypes[f.rel.DocsvcDigest])
		env, _, _ := testEnv()
		_, err := pushImagesReport(releaseContext(t), env, f.a, f.dc, f.rel, f.opt)
		if err == nil || !strings.Contains(err.Error(), "verifying "+ecrHost+"/acme-docs/agent@"+f.rel.AgentDigest) ||
			!strings.Contains(err.Error(), "altered") {
			t.Fatalf("err = %v", err)
		}
		f.noMarker(t, f.rel.AgentDigest)
	})
	t.Run("the vendor registry serves other content", func(t *testing.T) {
		t.Parallel()
		f := newImagesFixture(t)
		f.vendor.tamper = serveManifest(f.rel.DocsvcDigest, f.manifests[f.rel.AgentDigest], f.mediaTypes[f.rel.AgentDigest])
		env, _, _ := testEnv()
		_, err := pushImagesReport(releaseContext(t), env, f.a, f.dc, f.rel, f.opt)
		if err == nil || !strings.Contains(err.Error(), "reading registry.vendor.example/tether/docsvc@"+f.rel.DocsvcDigest) ||
			!strings.Contains(err.Error(), "altered") {
			t.Fatalf("err = %v", err)
		}
		if f.ecr.requests() != 0 {
			t.Error("something was sent to ECR")
		}
		f.noMarker(t, f.rel.AgentDigest)
	})
}

func TestPushImagesECRRefuses(t *testing.T) {
	t.Parallel()
	t.Run("the registry refuses the token", func(t *testing.T) {
		t.Parallel()
		f := newImagesFixture(t)
		f.ecr.password = "a-token-for-another-account"
		env, _, _ := testEnv()
		_, err := pushImagesReport(releaseContext(t), env, f.a, f.dc, f.rel, f.opt)
		if err == nil || !strings.Contains(err.Error(), "refused the credentials (HTTP 401") || !strings.Contains(err.Error(), "copying registry.vendor.example/tether/docsvc") {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), ecrPassword) {
			t.Errorf("the error quotes ECR's password: %v", err)
		}
		f.noMarker(t, f.rel.AgentDigest)
	})
	t.Run("the repository is missing", func(t *testing.T) {
		t.Parallel()
		f := newImagesFixture(t)
		if _, err := ecr.NewFromConfig(f.srv.AWSConfig()).DeleteRepository(context.Background(),
			&ecr.DeleteRepositoryInput{RepositoryName: aws.String("acme-docs/agent"), Force: true}); err != nil {
			t.Fatal(err)
		}
		env, _, _ := testEnv()
		_, err := pushImagesReport(releaseContext(t), env, f.a, f.dc, f.rel, f.opt)
		if err == nil || !strings.Contains(err.Error(), "ECR repository acme-docs/agent does not exist in account "+awstest.Account) ||
			!strings.Contains(err.Error(), "acme-docs-images stack") {
			t.Fatalf("err = %v", err)
		}
		f.noMarker(t, f.rel.AgentDigest)
	})
	t.Run("no images stack", func(t *testing.T) {
		t.Parallel()
		srv := awstest.Start(t)
		dc, _ := testDeployment(t, deployconfig.ImagesVendor)
		a := testSession(t, srv, dc)
		env, _, _ := testEnv()
		d := "sha256:" + strings.Repeat("ab", 32)
		err := pushImages(releaseContext(t), env, a, dc, releaseImages{Version: "1", DocsvcDigest: d, AgentDigest: d}, imageOptions{})
		if err == nil || !strings.Contains(err.Error(), "the acme-docs-images stack does not exist") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestPushImagesRejectsBadDigests(t *testing.T) {
	t.Parallel()
	srv := awstest.Start(t)
	dc, _ := testDeployment(t, deployconfig.ImagesVendor)
	a := testSession(t, srv, dc)
	good := "sha256:" + strings.Repeat("0f", 32)
	for _, bad := range []string{"", "latest", "sha256:" + strings.Repeat("0F", 32), "sha512:" + strings.Repeat("0f", 64),
		"sha256:" + strings.Repeat("0f", 31), good + "\n", " " + good, "sha256-" + strings.Repeat("0f", 32)} {
		env, _, _ := testEnv()
		err := pushImages(releaseContext(t), env, a, dc, releaseImages{Version: "1", DocsvcDigest: good, AgentDigest: bad}, imageOptions{})
		if err == nil || !IsUsage(err) || !strings.Contains(err.Error(), "the agent digest") || !strings.Contains(err.Error(), "64 lower-case hex") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if reqs := srv.Requests(); len(reqs) != 0 {
		t.Errorf("AWS was called for a bad digest: %+v", reqs)
	}
}

func FuzzCheckDigest(f *testing.F) {
	for _, s := range []string{"sha256:" + strings.Repeat("a", 64), "sha256:", "", "sha256:" + strings.Repeat("A", 64), "\x00"} {
		f.Add(s)
	}
	hex := regexp.MustCompile(`^[0-9a-f]+$`)
	f.Fuzz(func(t *testing.T, s string) {
		err := checkDigest("the digest", s)
		rest, isSHA := strings.CutPrefix(s, "sha256:")
		valid := isSHA && len(rest) == 64 && hex.MatchString(rest)
		if valid != (err == nil) {
			t.Fatalf("%q: valid %v, err %v", s, valid, err)
		}
		if err != nil && (!IsUsage(err) || !strings.Contains(err.Error(), "the digest") || len(err.Error()) > 400) {
			t.Fatalf("%q: %v", s, err)
		}
		if err == nil && markerName(s) != "sha256-"+rest {
			t.Fatalf("marker name %q", markerName(s))
		}
	})
}

func writeBundle(t *testing.T) (path string, content []byte) {
	t.Helper()
	content = []byte("PK\x03\x04 the vendor's source bundle for 1.4.0")
	path = filepath.Join(t.TempDir(), "tether-1.4.0-source.zip")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, content
}

package ctl

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// releaseImages names the images of one release, by digest ("sha256:<64 hex>").
type releaseImages struct {
	Version      string // the release version, for messages and CodeBuild's TETHER_VERSION
	DocsvcDigest string
	AgentDigest  string
}

// imageOptions are the choices pushImages takes beyond the release.
type imageOptions struct {
	// SourceBundle is the vendor's source bundle file, which images.source
	// build uploads for CodeBuild to build from.
	SourceBundle string
	// Transport carries the registry requests (vendor registry and ECR).
	// Nil means env's transport (Env.HTTPTransport, else HTTPS honouring
	// the proxy variables). Tests set it to reach in-process registries
	// under the vendor's and ECR's host names.
	Transport http.RoundTripper
}

// repositoryOutputs are the images stack's outputs that name each image's
// ECR repository URI.
var repositoryOutputs = map[string]string{"docsvc": "DocsvcRepositoryUri", "agent": "AgentRepositoryUri"}

// imageCopyTimeout bounds copying one image, its layers included.
const imageCopyTimeout = 30 * time.Minute

// imageResult is what happened to one image, for --output json.
type imageResult struct {
	Name       string `json:"name"` // docsvc or agent
	Digest     string `json:"digest"`
	Repository string `json:"repository"` // the ECR repository URI
	// Action is copied (from the vendor registry, then verified), present
	// (ECR already held the digest; nothing copied) or built (CodeBuild).
	Action string `json:"action"`
	Source string `json:"source,omitempty"` // the vendor reference copied from
	Bytes  int64  `json:"bytes_copied,omitempty"`
}

// imagesReport is the result of tetherctl images push.
type imagesReport struct {
	Version     string        `json:"version,omitempty"`
	Source      string        `json:"source"` // images.source
	Images      []imageResult `json:"images"`
	Build       *buildResult  `json:"build,omitempty"`
	AgentMarker string        `json:"agent_marker"` // the SSM parameter written
}

// pushImages puts both images into the customer's ECR repositories `<name>/docsvc` and
// `<name>/agent` (vendor mode: copied by digest from images.vendor_registry with
// go-containerregistry, progress shown on env.Stderr, each copy verified by digest; build mode:
// the source bundle uploaded and the images stack's CodeBuild project started and awaited, its log
// streamed), then writes the agent's verified marker (agentMarkerPath).
func pushImages(ctx context.Context, env Env, a *awsSession, cfg *deployconfig.Config, rel releaseImages, opt imageOptions) error {
	_, err := pushImagesReport(ctx, env, a, cfg, rel, opt)
	return err
}

// pushImagesReport is pushImages, saying what it did. In build mode the
// digests are the ones the build produced, which the release's (when
// given) must equal.
func pushImagesReport(ctx context.Context, env Env, a *awsSession, cfg *deployconfig.Config, rel releaseImages, opt imageOptions) (imagesReport, error) {
	rep := imagesReport{Version: rel.Version, Source: cfg.Images.Source}
	build := cfg.Images.Source == deployconfig.ImagesBuild
	for _, d := range []struct{ what, v string }{{"the docsvc digest", rel.DocsvcDigest}, {"the agent digest", rel.AgentDigest}} {
		if d.v == "" && build {
			continue // the build says what it is
		}
		if err := checkDigest(d.what, d.v); err != nil {
			return rep, err
		}
	}
	if build && rel.Version == "" {
		return rep, fmt.Errorf("%w: images.source build needs the release version: CodeBuild tags the images with it (TETHER_VERSION)", errUsage)
	}
	stack, err := readStack(ctx, a, cfg, "images")
	if err != nil {
		return rep, err
	}
	repos := map[string]string{}
	for img, key := range repositoryOutputs {
		if repos[img], err = stack.output(key); err != nil {
			return rep, err
		}
	}
	if opt.Transport == nil {
		opt.Transport = env.transport()
	}

	var agentDigest string
	if build {
		res, built, err := buildImages(ctx, env, a, cfg, rel, opt, stack, repos)
		rep.Build = res
		rep.Images = built
		if err != nil {
			return rep, err
		}
		agentDigest = built[1].Digest
	} else {
		c := &copier{env: env, a: a, cfg: cfg, tr: opt.Transport}
		for _, img := range []struct{ name, digest string }{{"docsvc", rel.DocsvcDigest}, {"agent", rel.AgentDigest}} {
			r, err := c.copy(ctx, img.name, img.digest, repos[img.name])
			rep.Images = append(rep.Images, r)
			if err != nil {
				return rep, err
			}
		}
		agentDigest = rel.AgentDigest
	}

	marker := agentMarkerPath(cfg, agentDigest)
	why := fmt.Sprintf("the agent image %s is in ECR repository %s/agent (verified by digest)", agentDigest, cfg.Name)
	if err := putMarker(ctx, a, marker, agentDigest, why); err != nil {
		return rep, fmt.Errorf("the images are in ECR, but the agent's marker was not written: %w; run tetherctl images push again", err)
	}
	rep.AgentMarker = marker
	return rep, nil
}

// copier copies images from the vendor registry into ECR.
type copier struct {
	env  Env
	a    *awsSession
	cfg  *deployconfig.Config
	tr   http.RoundTripper
	auth authn.Authenticator // ECR's, fetched once when first needed
}

// copy puts the image <vendor_registry>/<name>@digest into the ECR
// repository repoURI, unless ECR already holds that digest, and verifies
// that the registry serves exactly that digest afterwards.
func (c *copier) copy(ctx context.Context, imgName, digest, repoURI string) (imageResult, error) {
	res := imageResult{Name: imgName, Digest: digest, Repository: repoURI}
	_, repoName, ok := strings.Cut(repoURI, "/")
	if !ok {
		return res, fmt.Errorf("the %s-images stack's %s repository URI %q has no repository path: run tetherctl deploy", c.cfg.Name, imgName, repoURI)
	}
	present, err := ecrImagePresent(ctx, c.a, c.cfg, repoName, digest)
	if err != nil {
		return res, err
	}
	if present {
		res.Action = "present"
		fmt.Fprintf(c.env.Stderr, "%s %s: already in %s, nothing to copy\n", imgName, digest, repoURI)
		return res, nil
	}

	srcRef, err := vendorImageRef(c.cfg, imgName, digest)
	src := srcRef.String()
	res.Source = src
	if err != nil {
		return res, err
	}
	dstRef, err := name.NewDigest(repoURI + "@" + digest)
	if err != nil {
		return res, fmt.Errorf("the %s-images stack's repository URI %q does not make an image reference: %v; run tetherctl deploy", c.cfg.Name, repoURI, err)
	}
	if c.auth == nil {
		if c.auth, err = ecrAuth(ctx, c.a); err != nil {
			return res, err
		}
	}

	ctx, cancel := context.WithTimeout(ctx, imageCopyTimeout)
	defer cancel()
	desc, err := remote.Get(srcRef, vendorRegistryOptions(ctx, c.tr)...)
	if err != nil {
		return res, fmt.Errorf("reading %s from the vendor registry: %s", src, registryError(err, "check images.vendor_registry and that the release names this digest; log in to the vendor registry with docker login if it needs credentials"))
	}
	updates := make(chan v1.Update, 64)
	done := make(chan v1.Update)
	go reportProgress(c.env, imgName+" "+digest, updates, done)
	dstOpts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(c.tr), remote.WithAuth(c.auth), remote.WithProgress(updates)}
	switch {
	case desc.MediaType.IsIndex():
		var idx v1.ImageIndex
		if idx, err = desc.ImageIndex(); err == nil {
			err = remote.WriteIndex(dstRef, idx, dstOpts...)
		}
	case desc.MediaType.IsImage():
		var img v1.Image
		if img, err = desc.Image(); err == nil {
			err = remote.Write(dstRef, img, dstOpts...)
		}
	default:
		close(updates)
		<-done
		return res, fmt.Errorf("%s is a %s, not a container image or image index: check that the release names this digest for %s", src, desc.MediaType, imgName)
	}
	last := <-done
	res.Bytes = last.Complete
	if err != nil {
		return res, fmt.Errorf("copying %s to %s: %s", src, repoURI, registryError(err, "check that the ECR repository exists and the AWS credentials may push to it (ecr:PutImage, ecr:UploadLayerPart)"))
	}

	// ECR must now serve exactly this digest: go-containerregistry hashes
	// the manifest it is given for a digest and refuses any other.
	got, err := remote.Get(dstRef, remote.WithContext(ctx), remote.WithTransport(c.tr), remote.WithAuth(c.auth))
	if err != nil {
		return res, fmt.Errorf("verifying %s@%s after the copy: %s", repoURI, digest, registryError(err, "the copy did not land as it was sent; run tetherctl images push again, and if it fails again, report it"))
	}
	if got.Digest.String() != digest {
		return res, fmt.Errorf("verifying %s@%s after the copy: ECR serves %s instead; run tetherctl images push again", repoURI, digest, got.Digest)
	}
	res.Action = "copied"
	fmt.Fprintf(c.env.Stderr, "%s %s: copied to %s (%s), verified by digest\n", imgName, digest, repoURI, byteCount(res.Bytes))
	return res, nil
}

// vendorImageRef is the vendor's image <images.vendor_registry>/<name>@<digest>,
// which images push copies and preflight's release-images check looks for.
func vendorImageRef(cfg *deployconfig.Config, imgName, digest string) (name.Digest, error) {
	src := cfg.Images.VendorRegistry + "/" + imgName + "@" + digest
	ref, err := name.NewDigest(src)
	if err != nil {
		return ref, fmt.Errorf("%w: images.vendor_registry %q does not make an image reference (%s): %v", errUsage, cfg.Images.VendorRegistry, src, err)
	}
	return ref, nil
}

// vendorRegistryOptions are how tetherctl reads the vendor registry: over
// tr, with the credentials docker login stored (the default keychain).
func vendorRegistryOptions(ctx context.Context, tr http.RoundTripper) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithTransport(tr), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
}

// reportProgress prints how far a copy is, at most once a second, and
// passes the last update to done when the copy closes updates.
func reportProgress(env Env, what string, updates <-chan v1.Update, done chan<- v1.Update) {
	var last v1.Update
	shown := env.Now()
	for u := range updates {
		if u.Error != nil {
			continue
		}
		last = u
		if env.Now().Sub(shown) >= time.Second {
			fmt.Fprintf(env.Stderr, "%s: %s of %s\n", what, byteCount(u.Complete), byteCount(u.Total))
			shown = env.Now()
		}
	}
	if last.Total > 0 {
		fmt.Fprintf(env.Stderr, "%s: %s of %s\n", what, byteCount(last.Complete), byteCount(last.Total))
	}
	done <- last
}

func byteCount(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// ecrAuth is the registry login ECR issues for the caller's account
// (GetAuthorizationToken: base64 of "AWS:<password>", valid 12 hours).
func ecrAuth(ctx context.Context, a *awsSession) (authn.Authenticator, error) {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.ECR().GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return nil, fmt.Errorf("logging in to ECR (ECR GetAuthorizationToken): %s; the credentials need ecr:GetAuthorizationToken", describeAWSError(err))
	}
	if len(out.AuthorizationData) == 0 {
		return nil, errors.New("logging in to ECR (ECR GetAuthorizationToken): ECR returned no authorization data")
	}
	user, pass, err := parseECRToken(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	if err != nil {
		return nil, fmt.Errorf("logging in to ECR (ECR GetAuthorizationToken): %w", err)
	}
	return &authn.Basic{Username: user, Password: pass}, nil
}

// parseECRToken decodes an ECR authorization token: base64 of
// "user:password". The message never quotes the token.
func parseECRToken(token string) (user, pass string, err error) {
	raw, err := base64.StdEncoding.DecodeString(token)
	user, pass, ok := strings.Cut(string(raw), ":")
	if err != nil || !ok || user == "" || pass == "" {
		return "", "", errors.New("the token ECR returned is not base64 of user:password")
	}
	return user, pass, nil
}

// registryError says in one line why a registry refused, with the fix for
// the usual cause.
func registryError(err error, fix string) string {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Sprintf("the registry refused the credentials (HTTP %d: %s)", te.StatusCode, oneLine(te.Error()))
		case http.StatusNotFound:
			return fmt.Sprintf("not found (HTTP 404: %s); %s", oneLine(te.Error()), fix)
		}
		return fmt.Sprintf("HTTP %d: %s; %s", te.StatusCode, oneLine(te.Error()), fix)
	}
	msg := oneLine(err.Error())
	if strings.Contains(msg, "does not match requested digest") {
		return "the registry served content whose digest is not the one asked for, so it was refused (" + msg + "): something between here and the registry, or the registry itself, altered the image"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer before the time limit (" + msg + ")"
	}
	return msg + "; " + fix
}

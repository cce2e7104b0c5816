// Package airgap brings a channel's signed releases into an install that has
// no network access: it verifies a bundle the vendor exported
// (publish.Export) with exactly the go-tuf workflow the agent's online
// updater uses (internal/updater) and keeps what verified. tetherctl's
// 'airgap import' runs it on the customer's workstation; the agent does not
// link it.
package airgap

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/release"
	"github.com/tetherhq/tether/internal/updater"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// ErrBadBundle means an air-gapped bundle is not a well-formed export:
// not gzip'd tar, unexpected entry types or names, or over the size limits.
// A well-formed bundle whose signatures or hashes do not verify fails with
// go-tuf's errors instead.
var ErrBadBundle = errors.New("updater: malformed bundle")

// Bundle limits: a channel export is metadata, manifests and a few binaries.
const (
	maxBundleFiles = 4096
	maxBundleBytes = 1 << 30
)

// ImportBundle verifies an air-gapped bundle (publish.Export's tar.gz)
// against the trusted root in metadataDir with the same go-tuf workflow an
// online refresh uses, including rollback and expiry checks against the
// metadata a previous import left there. It then verifies and keeps every
// release manifest and artifact in targetsDir (see BundleArtifactPath) and
// returns the manifests, newest first. Nothing is kept that did not verify.
// Expiry is judged at now.
func ImportBundle(ctx context.Context, metadataDir, targetsDir string, bundle io.Reader, now time.Time) ([]release.Manifest, error) {
	files, err := readBundle(ctx, bundle)
	if err != nil {
		return nil, fmt.Errorf("updater: import bundle: %w", err)
	}
	up, err := updater.NewTUF(updater.TUFOptions{
		MetadataDir: metadataDir,
		TargetsDir:  targetsDir,
		MetadataURL: bundleURL + "metadata/",
		TargetsURL:  bundleURL + "targets/",
		Fetcher:     &memFetcher{files: files},
		Now:         now,
	})
	if err != nil {
		return nil, fmt.Errorf("updater: import bundle: %w", err)
	}
	if err := up.Refresh(); err != nil {
		return nil, fmt.Errorf("updater: import bundle: %w", err)
	}
	ms, err := updater.VerifiedManifests(up, "")
	if err != nil {
		return nil, fmt.Errorf("updater: import bundle: %w", err)
	}
	targets := up.GetTopLevelTargets()
	for _, m := range ms {
		if m.Channel != ms[0].Channel {
			return nil, fmt.Errorf("updater: import bundle: %w", updater.ErrChannelMismatch)
		}
		for _, a := range m.Artifacts {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("updater: import bundle: %w", err)
			}
			if _, _, err := up.DownloadTarget(targets[a.Target], BundleArtifactPath(targetsDir, a), ""); err != nil {
				return nil, fmt.Errorf("updater: import bundle %s: %w", m.Version, err)
			}
		}
	}
	return ms, nil
}

// BundleArtifactPath is where ImportBundle keeps a verified artifact.
func BundleArtifactPath(targetsDir string, a release.Artifact) string {
	return filepath.Join(targetsDir, url.PathEscape(a.Target))
}

// readBundle unpacks a bundle into memory, accepting only regular files
// named metadata/<file> or targets/<path> with clean relative paths.
func readBundle(ctx context.Context, r io.Reader) (map[string][]byte, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: not gzip", ErrBadBundle)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadBundle, err)
		}
		if h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("%w: entry %d is not a regular file", ErrBadBundle, len(files))
		}
		if !bundleName(h.Name) {
			return nil, fmt.Errorf("%w: entry %d has a bad name", ErrBadBundle, len(files))
		}
		if _, dup := files[h.Name]; dup {
			return nil, fmt.Errorf("%w: duplicate entry", ErrBadBundle)
		}
		if len(files) >= maxBundleFiles {
			return nil, fmt.Errorf("%w: more than %d files", ErrBadBundle, maxBundleFiles)
		}
		if h.Size < 0 || total+h.Size > maxBundleBytes {
			return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadBundle, maxBundleBytes)
		}
		data, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadBundle, err)
		}
		if int64(len(data)) != h.Size {
			return nil, fmt.Errorf("%w: truncated entry", ErrBadBundle)
		}
		total += h.Size
		files[h.Name] = data
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadBundle)
	}
	return files, nil
}

func bundleName(name string) bool {
	if len(name) > 512 || path.Clean(name) != name || strings.ContainsAny(name, "\\\x00") {
		return false
	}
	area, rest, ok := strings.Cut(name, "/")
	if !ok || rest == "" {
		return false
	}
	for _, seg := range strings.Split(rest, "/") {
		if seg == "" || strings.HasPrefix(seg, ".") {
			return false
		}
	}
	return area == "targets" || (area == "metadata" && !strings.Contains(rest, "/"))
}

// memFetcher serves an unpacked bundle to go-tuf as if it were a remote
// repository, so an air-gapped import goes through exactly the same
// verification as an online refresh.
type memFetcher struct {
	files map[string][]byte // "metadata/1.root.json", "targets/releases/<sha>.1.0.0.json"
}

const bundleURL = "bundle:///"

func (f *memFetcher) DownloadFile(url string, maxLength int64, _ time.Duration) ([]byte, error) {
	name, ok := strings.CutPrefix(url, bundleURL)
	data, found := f.files[name]
	if !ok || !found {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: http.StatusNotFound, URL: url}
	}
	if int64(len(data)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is more than %d bytes", url, maxLength)}
	}
	return data, nil
}

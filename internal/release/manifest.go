// Package release is the part of signed releases that both sides share: the
// release manifest (Manifest, ParseManifest), semantic versions and the TUF
// target paths a release is published under. The agent (through
// internal/updater) parses and checks manifests with it after go-tuf has
// verified them against the root it was installed with.
//
// Creating keys, publishing, revoking, refreshing and exporting are the
// vendor's alone and live in internal/release/publish, which the agent must
// not link (internal/boundary.VendorOnly). docs/releases.md describes the
// key roles, the on-disk layout and the operator's procedures.
package release

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/tetherhq/tether/internal/wire"
)

// Manifest describes one release of the product on one channel. It is
// published as the TUF target releases/<version>.json, so an agent trusts it
// only after go-tuf has checked its hash against signed targets metadata.
type Manifest struct {
	Version     string              `json:"version"`
	Channel     string              `json:"channel"`
	Artifacts   map[string]Artifact `json:"artifacts"`
	Images      map[string]string   `json:"images"`
	MinFrom     string              `json:"min_from"`
	Schema      SchemaRange         `json:"schema"`
	Notes       string              `json:"notes"`
	PublishedAt time.Time           `json:"published_at"`
	// Revoked is set only in the vendor's own records (List); a revoked
	// release is removed from the signed targets, so agents never see it.
	Revoked bool `json:"revoked"`
}

// Artifact is a file shipped with a release (a binary, a bundle), itself a
// TUF target so the agent downloads it with hash and length verification.
type Artifact struct {
	Target string `json:"target"` // TUF target path, artifacts/<version>/<name>
	SHA256 string `json:"sha256"` // lowercase hex
	Size   int64  `json:"size"`
}

// SchemaRange is the inclusive range of database schema versions a release
// can run against; the agent checks it before an upgrade.
type SchemaRange struct {
	Min int64 `json:"min"`
	Max int64 `json:"max"`
}

// Limits on manifest contents, so a manifest is small enough to read in full
// and to show an operator.
const (
	maxManifestBytes = 64 << 10
	maxNotesBytes    = 8 << 10
	maxArtifacts     = 32
	maxImages        = 32
)

// ErrInvalid is matched (errors.Is) by every validation failure in this
// package: bad versions, channel names, image references and manifests.
var ErrInvalid = errors.New("invalid")

var (
	nameRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	imageRefRE = regexp.MustCompile(`^[a-z0-9]+(?:[._:/-][a-z0-9]+)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[0-9a-f]{64}$`)
)

// ValidateChannel checks a channel name: 1 to 32 of [a-z0-9-]. Channel names
// become directory names and URL segments, so nothing else is allowed.
func ValidateChannel(channel string) error {
	if !wire.ValidChannel(channel) {
		return fmt.Errorf("channel name must be 1-32 of [a-z0-9-]: %w", ErrInvalid)
	}
	return nil
}

// ValidateImageRef checks that a container image reference is pinned by
// digest (repo@sha256:<64 hex>); a tag alone could be moved after signing.
func ValidateImageRef(ref string) error {
	if len(ref) > 512 || !imageRefRE.MatchString(ref) {
		return fmt.Errorf("image reference must be pinned as repo@sha256:<64 hex>: %w", ErrInvalid)
	}
	return nil
}

func validateName(kind, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%s name must be 1-64 of [a-z0-9._-] starting with a letter or digit: %w", kind, ErrInvalid)
	}
	return nil
}

// ManifestTarget is the TUF target path of a release's manifest.
func ManifestTarget(version string) string { return "releases/" + version + ".json" }

// ArtifactTarget is the TUF target path of a release's artifact.
func ArtifactTarget(version, name string) string { return "artifacts/" + version + "/" + name }

// Validate checks every field of a manifest.
func (m Manifest) Validate() error {
	v, err := ParseVersion(m.Version)
	if err != nil {
		return fmt.Errorf("manifest version: %w", err)
	}
	if err := ValidateChannel(m.Channel); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if len(m.Artifacts) > maxArtifacts {
		return fmt.Errorf("manifest has more than %d artifacts: %w", maxArtifacts, ErrInvalid)
	}
	for name, a := range m.Artifacts {
		if err := validateName("artifact", name); err != nil {
			return fmt.Errorf("manifest: %w", err)
		}
		if a.Target != ArtifactTarget(m.Version, name) {
			return fmt.Errorf("manifest artifact target must be %s: %w", ArtifactTarget(m.Version, name), ErrInvalid)
		}
		if !wire.ValidSHA256(a.SHA256) {
			return fmt.Errorf("manifest artifact sha256 must be 64 lowercase hex: %w", ErrInvalid)
		}
		if a.Size < 0 {
			return fmt.Errorf("manifest artifact size is negative: %w", ErrInvalid)
		}
	}
	if len(m.Images) > maxImages {
		return fmt.Errorf("manifest has more than %d images: %w", maxImages, ErrInvalid)
	}
	for name, ref := range m.Images {
		if err := validateName("image", name); err != nil {
			return fmt.Errorf("manifest: %w", err)
		}
		if err := ValidateImageRef(ref); err != nil {
			return fmt.Errorf("manifest image %s: %w", name, err)
		}
	}
	if m.MinFrom != "" {
		from, err := ParseVersion(m.MinFrom)
		if err != nil {
			return fmt.Errorf("manifest min_from: %w", err)
		}
		if from.Compare(v) > 0 {
			return fmt.Errorf("manifest min_from is newer than the release: %w", ErrInvalid)
		}
	}
	if m.Schema.Min < 0 || m.Schema.Max < m.Schema.Min {
		return fmt.Errorf("manifest schema range must satisfy 0 <= min <= max: %w", ErrInvalid)
	}
	if len(m.Notes) > maxNotesBytes || !utf8.ValidString(m.Notes) {
		return fmt.Errorf("manifest notes must be valid UTF-8 of at most %d bytes: %w", maxNotesBytes, ErrInvalid)
	}
	if m.PublishedAt.IsZero() {
		return fmt.Errorf("manifest published_at is missing: %w", ErrInvalid)
	}
	return nil
}

// ParseManifest decodes strictly, as wire.Decode does, and validates a
// manifest: for the agent it is outside input even after go-tuf's checks.
func ParseManifest(data []byte) (Manifest, error) {
	if len(data) > maxManifestBytes {
		return Manifest{}, fmt.Errorf("parse manifest: larger than %d bytes: %w", maxManifestBytes, ErrInvalid)
	}
	var m Manifest
	if err := jsonv2.Unmarshal(data, &m, jsonv2.RejectUnknownMembers(true)); err != nil {
		return Manifest{}, fmt.Errorf("parse manifest: %w: %w", ErrInvalid, err)
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, fmt.Errorf("parse manifest: %w", err)
	}
	return m, nil
}

// Version is a parsed release version.
type Version struct {
	Major, Minor, Patch uint64
	Pre                 []string
}

// ParseVersion parses a version in the one grammar releases, images and
// heartbeats share (wire.ValidSemver), so a version the vendor can publish
// is one the agent can report.
func ParseVersion(s string) (Version, error) {
	shown := fmt.Sprintf("%q", s)
	if len(s) > 64 {
		shown = fmt.Sprintf("of %d bytes", len(s))
	}
	bad := fmt.Errorf("version %s is not MAJOR.MINOR.PATCH with an optional -alpha, -beta, -rc, -dev or -preview and numbers, such as 2.1.0 or 2.1.0-rc.1: %w", shown, ErrInvalid)
	if !wire.ValidSemver(s) {
		return Version{}, bad
	}
	core, pre, _ := strings.Cut(s, "-")
	var v Version
	nums := []*uint64{&v.Major, &v.Minor, &v.Patch}
	for i, p := range strings.Split(core, ".") {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return Version{}, bad // past 2^64
		}
		*nums[i] = n
	}
	if pre != "" {
		v.Pre = strings.Split(pre, ".")
	}
	return v, nil
}

// Compare returns -1, 0 or +1 as v is older than, as old as, or newer than w,
// following semver precedence (a pre-release is older than its release;
// alpha < beta < dev < preview < rc, as words compare).
func (v Version) Compare(w Version) int {
	if c := cmp.Or(cmp.Compare(v.Major, w.Major), cmp.Compare(v.Minor, w.Minor), cmp.Compare(v.Patch, w.Patch)); c != 0 {
		return c
	}
	if len(v.Pre) == 0 || len(w.Pre) == 0 {
		return cmp.Compare(len(w.Pre), len(v.Pre))
	}
	return slices.CompareFunc(v.Pre, w.Pre, compareIdent)
}

// compareIdent orders pre-release identifiers: numbers (which have no
// leading zeros, so the longer is larger), then words; digits sort before
// letters, so one comparison does the rest.
func compareIdent(a, b string) int {
	if isNumeric(a) && isNumeric(b) {
		return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
	}
	return strings.Compare(a, b)
}

func isNumeric(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

// CompareVersions parses and compares two versions (see Version.Compare).
func CompareVersions(a, b string) (int, error) {
	va, err := ParseVersion(a)
	if err != nil {
		return 0, err
	}
	vb, err := ParseVersion(b)
	if err != nil {
		return 0, err
	}
	return va.Compare(vb), nil
}

// SortNewestFirst orders manifests by descending semantic version.
func SortNewestFirst(ms []Manifest) {
	sort.SliceStable(ms, func(i, j int) bool {
		c, err := CompareVersions(ms[i].Version, ms[j].Version)
		return err == nil && c > 0
	})
}

// Package publish is the vendor's side of signed releases: it creates the
// signing keys, publishes release manifests (internal/release) and their
// artifacts into one The Update Framework (TUF) repository per channel,
// revokes releases, keeps the short-lived metadata fresh, and exports a
// channel for air-gapped customers. Only tether-plane and the tests link it;
// the agent must not (internal/boundary.VendorOnly).
//
// The agent (internal/updater) only ever acts on what go-tuf verified against
// the root it was installed with, so everything this package writes is
// ordinary TUF metadata signed with go-tuf; nothing here is trusted by the
// agent on its own say-so. docs/releases.md describes the key roles, the
// on-disk layout and the operator's procedures.
package publish

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/tetherhq/tether/internal/license"

	"github.com/tetherhq/tether/internal/release"
)

// Key files in a keys directory. Private keys are Ed25519 in PKCS#8 PEM
// ("PRIVATE KEY"), public keys PKIX PEM ("PUBLIC KEY"), so `openssl pkey`
// can read them. See docs/releases.md for which file lives where.
const (
	targetsKeyFile    = "targets.key"
	snapshotKeyFile   = "snapshot.key"
	timestampKeyFile  = "timestamp.key"
	licenseKeyFile    = "license.key"
	licensePubFile    = "license.pub"
	rootMetadataFile  = "root.json"
	signingPolicyFile = "signing.json"
)

func rootKeyFile(i int) string { return "root-" + strconv.Itoa(i) + ".key" }

// KeyOptions shapes a new set of keys and the initial root.
type KeyOptions struct {
	RootKeys      int // number of offline root keys; default 3
	RootThreshold int // root signatures required; default 2 (or a majority of RootKeys)

	// How long each role's signatures stay valid; zero means the default.
	RootExpiry      time.Duration // default 365 days
	TargetsExpiry   time.Duration // default 90 days
	SnapshotExpiry  time.Duration // default 7 days
	TimestampExpiry time.Duration // default 1 day
}

// InitResult tells the operator what InitKeys made.
type InitResult struct {
	RootPath          string // the signed initial root.json, to ship with agents
	LicensePublicPath string
	RootKeyIDs        []string
	RootThreshold     int
	RootExpires       time.Time
	// OnlineKeyIDs maps the targets, snapshot and timestamp roles to their key IDs.
	OnlineKeyIDs map[string]string
}

// ErrExists is returned when InitKeys or Publish would overwrite something.
var ErrExists = errors.New("already exists")

// ErrNotFound is returned when a release, channel or key is missing.
var ErrNotFound = errors.New("not found")

// signingPolicy is persisted next to the keys so Publish and Refresh re-sign
// with the lifetimes chosen at InitKeys.
type signingPolicy struct {
	TargetsExpiry   duration `json:"targets_expiry"`
	SnapshotExpiry  duration `json:"snapshot_expiry"`
	TimestampExpiry duration `json:"timestamp_expiry"`
}

// duration is a time.Duration written as a Go duration string ("24h0m0s").
type duration time.Duration

func (d duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v <= 0 {
		return fmt.Errorf("duration must be positive")
	}
	*d = duration(v)
	return nil
}

func (o KeyOptions) withDefaults() (KeyOptions, error) {
	const day = 24 * time.Hour
	if o.RootKeys == 0 && o.RootThreshold == 0 {
		o.RootKeys, o.RootThreshold = 3, 2
	}
	if o.RootKeys == 0 {
		o.RootKeys = 3
	}
	if o.RootThreshold == 0 {
		o.RootThreshold = o.RootKeys/2 + 1
	}
	if o.RootKeys < 1 || o.RootKeys > 15 {
		return o, fmt.Errorf("root keys must be 1-15: %w", release.ErrInvalid)
	}
	if o.RootThreshold < 1 || o.RootThreshold > o.RootKeys {
		return o, fmt.Errorf("root threshold must be 1-%d: %w", o.RootKeys, release.ErrInvalid)
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&o.RootExpiry, 365 * day}, {&o.TargetsExpiry, 90 * day}, {&o.SnapshotExpiry, 7 * day}, {&o.TimestampExpiry, day}} {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < time.Minute {
			return o, fmt.Errorf("expiry must be at least a minute: %w", release.ErrInvalid)
		}
	}
	return o, nil
}

// InitKeys creates a keys directory: N offline root keys, the online
// targets, snapshot and timestamp keys, the license signing key and its
// public half, the signing policy and the initial root.json signed by every
// root key. It refuses to overwrite any existing file, so a second run
// cannot silently replace keys agents already trust.
//
// After InitKeys the operator moves root-*.key offline (docs/releases.md);
// nothing in this package needs them again until a root rotation.
func InitKeys(dir string, o KeyOptions, now time.Time) (InitResult, error) {
	o, err := o.withDefaults()
	if err != nil {
		return InitResult{}, fmt.Errorf("init keys: %w", err)
	}
	files := []string{targetsKeyFile, snapshotKeyFile, timestampKeyFile, licenseKeyFile, licensePubFile, rootMetadataFile, signingPolicyFile}
	for i := 1; i <= o.RootKeys; i++ {
		files = append(files, rootKeyFile(i))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return InitResult{}, fmt.Errorf("init keys: %w", err)
	}
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			return InitResult{}, fmt.Errorf("init keys: %s: %w", f, ErrExists)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return InitResult{}, fmt.Errorf("init keys: %w", err)
		}
	}

	now = now.UTC().Truncate(time.Second)
	root := metadata.Root(now.Add(o.RootExpiry))
	res := InitResult{
		RootPath:          filepath.Join(dir, rootMetadataFile),
		LicensePublicPath: filepath.Join(dir, licensePubFile),
		RootThreshold:     o.RootThreshold,
		RootExpires:       root.Signed.Expires,
		OnlineKeyIDs:      map[string]string{},
	}
	newKey := func(file, role string) (ed25519.PrivateKey, error) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		if err := writePrivateKey(filepath.Join(dir, file), priv); err != nil {
			return nil, err
		}
		if role == "" {
			return priv, nil
		}
		k, err := metadata.KeyFromPublicKey(priv.Public())
		if err != nil {
			return nil, err
		}
		if err := root.Signed.AddKey(k, role); err != nil {
			return nil, err
		}
		id, err := k.ID()
		if err != nil {
			return nil, err
		}
		if role == metadata.ROOT {
			res.RootKeyIDs = append(res.RootKeyIDs, id)
		} else {
			res.OnlineKeyIDs[role] = id
		}
		return priv, nil
	}

	var rootKeys []ed25519.PrivateKey
	for i := 1; i <= o.RootKeys; i++ {
		k, err := newKey(rootKeyFile(i), metadata.ROOT)
		if err != nil {
			return InitResult{}, fmt.Errorf("init keys: root key %d: %w", i, err)
		}
		rootKeys = append(rootKeys, k)
	}
	for _, r := range []struct{ file, role string }{
		{targetsKeyFile, metadata.TARGETS}, {snapshotKeyFile, metadata.SNAPSHOT}, {timestampKeyFile, metadata.TIMESTAMP},
	} {
		if _, err := newKey(r.file, r.role); err != nil {
			return InitResult{}, fmt.Errorf("init keys: %s key: %w", r.role, err)
		}
	}
	lic, err := newKey(licenseKeyFile, "")
	if err != nil {
		return InitResult{}, fmt.Errorf("init keys: license key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(lic.Public())
	if err != nil {
		return InitResult{}, fmt.Errorf("init keys: license public key: %w", err)
	}
	if err := writeFileExcl(filepath.Join(dir, licensePubFile), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return InitResult{}, fmt.Errorf("init keys: license public key: %w", err)
	}

	root.Signed.Roles[metadata.ROOT].Threshold = o.RootThreshold
	for _, k := range rootKeys {
		if err := signWith(root, k); err != nil {
			return InitResult{}, fmt.Errorf("init keys: sign root: %w", err)
		}
	}
	if err := root.VerifyDelegate(metadata.ROOT, root); err != nil {
		return InitResult{}, fmt.Errorf("init keys: verify root: %w", err)
	}
	rootJSON, err := root.ToBytes(true)
	if err != nil {
		return InitResult{}, fmt.Errorf("init keys: encode root: %w", err)
	}
	if err := writeFileExcl(res.RootPath, rootJSON, 0o644); err != nil {
		return InitResult{}, fmt.Errorf("init keys: write root: %w", err)
	}
	policy, err := json.MarshalIndent(signingPolicy{
		TargetsExpiry: duration(o.TargetsExpiry), SnapshotExpiry: duration(o.SnapshotExpiry), TimestampExpiry: duration(o.TimestampExpiry),
	}, "", "  ")
	if err != nil {
		return InitResult{}, fmt.Errorf("init keys: encode policy: %w", err)
	}
	if err := writeFileExcl(filepath.Join(dir, signingPolicyFile), policy, 0o644); err != nil {
		return InitResult{}, fmt.Errorf("init keys: write policy: %w", err)
	}
	return res, nil
}

func signWith[T metadata.Roles](md *metadata.Metadata[T], key ed25519.PrivateKey) error {
	signer, err := signature.LoadSigner(key, crypto.Hash(0))
	if err != nil {
		return err
	}
	_, err = md.Sign(signer)
	return err
}

func writePrivateKey(path string, key ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writeFileExcl(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// writeFileExcl creates path, failing if it exists, and syncs it: keys are
// written once and must survive a crash right after InitKeys reports them.
func writeFileExcl(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", filepath.Base(path), ErrExists)
		}
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loadPrivateKey reads an Ed25519 PKCS#8 PEM key file.
func loadPrivateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", filepath.Base(path), ErrNotFound)
		}
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PEM PRIVATE KEY: %w", filepath.Base(path), release.ErrInvalid)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", filepath.Base(path), release.ErrInvalid, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key: %w", filepath.Base(path), release.ErrInvalid)
	}
	return ek, nil
}

// LoadLicenseKey reads the license signing key from a keys directory.
func LoadLicenseKey(dir string) (ed25519.PrivateKey, error) {
	k, err := loadPrivateKey(filepath.Join(dir, licenseKeyFile))
	if err != nil {
		return nil, fmt.Errorf("load license key: %w", err)
	}
	return k, nil
}

// LoadLicensePublicKey reads a PKIX PEM Ed25519 public key, such as the
// license.pub InitKeys writes.
func LoadLicensePublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: license: load public key: %w", release.ErrInvalid, err)
	}
	k, err := license.ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w: license: load public key %s: %w", release.ErrInvalid, path, err)
	}
	return k, nil
}

// onlineKeys are what Publish, Revoke and Refresh sign with.
type onlineKeys struct {
	targets, snapshot, timestamp signature.Signer // snapshot and timestamp may be KMS keys (kmskeys.go)
	policy                       signingPolicy
	rootJSON                     []byte
}

func loadOnlineKeys(dir string) (*onlineKeys, error) {
	var k onlineKeys
	var err error
	// A plane replica may hold no targets key (it stays on the release
	// machine); commit refuses to sign targets without it.
	targets, err := loadPrivateKey(filepath.Join(dir, targetsKeyFile))
	switch {
	case err == nil:
		if k.targets, err = signature.LoadSigner(targets, crypto.Hash(0)); err != nil {
			return nil, err
		}
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	if k.snapshot, err = loadOnlineSigner(dir, snapshotKeyFile); err != nil {
		return nil, err
	}
	if k.timestamp, err = loadOnlineSigner(dir, timestampKeyFile); err != nil {
		return nil, err
	}
	if k.rootJSON, err = os.ReadFile(filepath.Join(dir, rootMetadataFile)); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, signingPolicyFile))
	if err != nil {
		return nil, err
	}
	if err := decodeStrict(data, &k.policy); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", signingPolicyFile, release.ErrInvalid, err)
	}
	if k.policy.TargetsExpiry <= 0 || k.policy.SnapshotExpiry <= 0 || k.policy.TimestampExpiry <= 0 {
		return nil, fmt.Errorf("%s: every expiry must be set: %w", signingPolicyFile, release.ErrInvalid)
	}
	return &k, nil
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

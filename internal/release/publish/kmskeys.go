package publish

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/tetherhq/tether/internal/atomicfile"
	"github.com/tetherhq/tether/internal/release"
)

// The online snapshot and timestamp keys may live in AWS KMS instead of the
// keys directory: go-tuf signs through sigstore's signature.Signer, and TUF
// accepts ECDSA P-256 keys ("ecdsa-sha2-nistp256"), which KMS holds as
// ECC_NIST_P256 SIGN_VERIFY keys. The keys directory then holds
// "<role>.kms", the key's ARN or alias, instead of "<role>.key", so a
// replica signs without ever holding the private key. UseKMS moves a role
// to a KMS key: it is a root rotation, so it needs the offline root keys.
const kmsKeySuffix = ".kms"

// kmsTimeout bounds each KMS call.
const kmsTimeout = 30 * time.Second

// newKMSClient builds the KMS client from the standard SDK environment
// (AWS_REGION, credentials, AWS_ENDPOINT_URL_KMS or AWS_ENDPOINT_URL).
var newKMSClient = func(ctx context.Context) (*kms.Client, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration for KMS: %w", err)
	}
	return kms.NewFromConfig(cfg), nil
}

// onlineKMSSigner opens the signer for a "<role>.kms" key reference.
func onlineKMSSigner(ctx context.Context, keyID string) (*KMSSigner, error) {
	client, err := newKMSClient(ctx)
	if err != nil {
		return nil, err
	}
	return NewKMSSigner(ctx, client, keyID)
}

// kmsKeyIDPattern accepts a key ID, key ARN, alias name or alias ARN.
var kmsKeyIDPattern = regexp.MustCompile(`^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key/[0-9a-f-]{36}|alias/[A-Za-z0-9/_-]{1,250})|[0-9a-f-]{36}|alias/[A-Za-z0-9/_-]{1,250})$`)

// ParseKMSKeyID checks a key reference read from a "<role>.kms" file or a
// flag, naming the forms it accepts.
func ParseKMSKeyID(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !kmsKeyIDPattern.MatchString(s) {
		return "", fmt.Errorf("KMS key %q: want a key ID, key ARN, alias/NAME or alias ARN: %w", s, release.ErrInvalid)
	}
	return s, nil
}

// KMSSigner signs TUF metadata with an ECDSA P-256 key held in KMS.
type KMSSigner struct {
	client *kms.Client
	keyID  string
	pub    *ecdsa.PublicKey
}

var _ signature.Signer = (*KMSSigner)(nil)

// NewKMSSigner reads the key's public half and checks KMS will sign with it
// the way TUF verifies: ECC_NIST_P256, SIGN_VERIFY, ECDSA_SHA_256.
func NewKMSSigner(ctx context.Context, client *kms.Client, keyID string) (*KMSSigner, error) {
	ctx, cancel := context.WithTimeout(ctx, kmsTimeout)
	defer cancel()
	out, err := client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		return nil, fmt.Errorf("KMS key %s: get public key: %w", keyID, err)
	}
	if err := checkKMSKey(keyID, out); err != nil {
		return nil, err
	}
	pk, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("KMS key %s: public key: %w", keyID, err)
	}
	ec, ok := pk.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("KMS key %s: public key is not ECDSA P-256: %w", keyID, release.ErrInvalid)
	}
	return &KMSSigner{client: client, keyID: keyID, pub: ec}, nil
}

// checkKMSKey is the decision on GetPublicKey's answer, apart so it can be
// tested on the SDK's output type with the specs moto cannot be asked for.
func checkKMSKey(keyID string, out *kms.GetPublicKeyOutput) error {
	// AWS answers both fields; CustomerMasterKeySpec is the deprecated one
	// (and the only one moto's emulator fills in).
	spec := out.KeySpec
	if spec == "" {
		spec = kmstypes.KeySpec(out.CustomerMasterKeySpec)
	}
	if spec != kmstypes.KeySpecEccNistP256 {
		return fmt.Errorf("KMS key %s has spec %q; TUF online keys need ECC_NIST_P256 (create one with --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY): %w", keyID, spec, release.ErrInvalid)
	}
	if out.KeyUsage != kmstypes.KeyUsageTypeSignVerify {
		return fmt.Errorf("KMS key %s has usage %s; want SIGN_VERIFY: %w", keyID, out.KeyUsage, release.ErrInvalid)
	}
	for _, a := range out.SigningAlgorithms {
		if a == kmstypes.SigningAlgorithmSpecEcdsaSha256 {
			return nil
		}
	}
	return fmt.Errorf("KMS key %s does not offer ECDSA_SHA_256: %w", keyID, release.ErrInvalid)
}

// PublicKey returns the key's public half (go-tuf derives the key ID).
func (s *KMSSigner) PublicKey(...signature.PublicKeyOption) (crypto.PublicKey, error) {
	return s.pub, nil
}

// kmsRawLimit is the largest message KMS signs as RAW; larger ones are
// sent as their SHA-256 digest.
const kmsRawLimit = 4096

// SignMessage signs the canonical metadata bytes; the signature is ASN.1
// DER, which is what TUF's ECDSA verification expects. Snapshot and
// timestamp metadata are far below 4 KiB and go as RAW messages; anything
// larger goes as a DIGEST (moto's KMS does not implement DIGEST, so that
// branch is not exercised against it).
func (s *KMSSigner) SignMessage(message io.Reader, _ ...signature.SignOption) ([]byte, error) {
	msg, err := io.ReadAll(message)
	if err != nil {
		return nil, err
	}
	in := &kms.SignInput{KeyId: aws.String(s.keyID), SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256,
		Message: msg, MessageType: kmstypes.MessageTypeRaw}
	if len(msg) > kmsRawLimit {
		sum := sha256.Sum256(msg)
		in.Message, in.MessageType = sum[:], kmstypes.MessageTypeDigest
	}
	ctx, cancel := context.WithTimeout(context.Background(), kmsTimeout)
	defer cancel()
	out, err := s.client.Sign(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("KMS key %s: sign: %w", s.keyID, err)
	}
	// Check before publishing: a signature agents would refuse is worse
	// than none.
	v, err := signature.LoadECDSAVerifier(s.pub, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	if err := v.VerifySignature(bytes.NewReader(out.Signature), bytes.NewReader(msg)); err != nil {
		return nil, fmt.Errorf("KMS key %s: signature does not verify: %w", s.keyID, err)
	}
	return out.Signature, nil
}

// loadOnlineSigner returns the signer for an online role: the KMS key named
// in "<role>.kms" if the keys directory has one, else "<role>.key".
func loadOnlineSigner(dir, keyFile string) (signature.Signer, error) {
	ref := filepath.Join(dir, strings.TrimSuffix(keyFile, ".key")+kmsKeySuffix)
	data, err := os.ReadFile(ref)
	if errors.Is(err, fs.ErrNotExist) {
		k, err := loadPrivateKey(filepath.Join(dir, keyFile))
		if err != nil {
			return nil, err
		}
		return signature.LoadSigner(k, crypto.Hash(0))
	}
	if err != nil {
		return nil, err
	}
	keyID, err := ParseKMSKeyID(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(ref), err)
	}
	return onlineKMSSigner(context.Background(), keyID)
}

// UseKMS moves online roles (snapshot, timestamp, or both; keys maps role
// to KMS key reference) to KMS keys in one root rotation: it signs a new
// root version that trusts each KMS key for its role instead of the file
// key, with every root key present in dir (bring a threshold of the
// offline root-*.key files for this), writes "<role>.kms" and deletes
// "<role>.key". Every channel serves the new root at its next commit and
// agents follow it through TUF's root chain, one version at a time, so run
// `release refresh` (or publish) after each rotation before the next. It
// returns the new root version.
func UseKMS(ctx context.Context, dir string, keys map[string]string, now time.Time) (int64, error) {
	if len(keys) == 0 {
		return 0, fmt.Errorf("use KMS: no role given: %w", release.ErrInvalid)
	}
	oldJSON, err := os.ReadFile(filepath.Join(dir, rootMetadataFile))
	if err != nil {
		return 0, fmt.Errorf("use KMS: %w", err)
	}
	old, err := metadata.Root().FromBytes(oldJSON)
	if err != nil {
		return 0, fmt.Errorf("use KMS: read root.json: %w", err)
	}
	next, err := metadata.Root().FromBytes(oldJSON)
	if err != nil {
		return 0, fmt.Errorf("use KMS: read root.json: %w", err)
	}
	refs := map[string]string{} // key file -> key reference
	for _, role := range slices.Sorted(maps.Keys(keys)) {
		keyFile := map[string]string{metadata.SNAPSHOT: snapshotKeyFile, metadata.TIMESTAMP: timestampKeyFile}[role]
		if keyFile == "" {
			return 0, fmt.Errorf("use KMS: role %q: only snapshot and timestamp are online roles that may move to KMS; root and targets stay offline: %w", role, release.ErrInvalid)
		}
		keyID, err := ParseKMSKeyID(keys[role])
		if err != nil {
			return 0, fmt.Errorf("use KMS: %s: %w", role, err)
		}
		signer, err := onlineKMSSigner(ctx, keyID)
		if err != nil {
			return 0, fmt.Errorf("use KMS: %s: %w", role, err)
		}
		for _, id := range slices.Clone(next.Signed.Roles[role].KeyIDs) {
			if err := next.Signed.RevokeKey(id, role); err != nil {
				return 0, fmt.Errorf("use KMS: %w", err)
			}
		}
		key, err := metadata.KeyFromPublicKey(signer.pub)
		if err != nil {
			return 0, fmt.Errorf("use KMS: %w", err)
		}
		if err := next.Signed.AddKey(key, role); err != nil {
			return 0, fmt.Errorf("use KMS: %w", err)
		}
		refs[keyFile] = keyID
	}
	next.Signed.Version++
	now = now.UTC().Truncate(time.Second)
	if next.Signed.Expires.Before(now.Add(30 * 24 * time.Hour)) {
		next.Signed.Expires = now.Add(365 * 24 * time.Hour)
	}
	next.ClearSignatures()
	signed := 0
	for i := 1; ; i++ {
		k, err := loadPrivateKey(filepath.Join(dir, rootKeyFile(i)))
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("use KMS: %w", err)
		}
		if err := signWith(next, k); err != nil {
			return 0, fmt.Errorf("use KMS: sign root: %w", err)
		}
		signed++
	}
	// TUF accepts a new root signed by a threshold of the old root's keys
	// and of its own; check both before anything is written.
	if err := old.VerifyDelegate(metadata.ROOT, next); err != nil {
		return 0, fmt.Errorf("use KMS: %d root keys in %s do not reach the old root's threshold (bring the offline root-N.key files): %w", signed, dir, err)
	}
	if err := next.VerifyDelegate(metadata.ROOT, next); err != nil {
		return 0, fmt.Errorf("use KMS: the new root does not verify itself: %w", err)
	}
	data, err := next.ToBytes(true)
	if err != nil {
		return 0, fmt.Errorf("use KMS: %w", err)
	}
	for keyFile, keyID := range refs {
		if err := atomicfile.Write(filepath.Join(dir, strings.TrimSuffix(keyFile, ".key")+kmsKeySuffix), []byte(keyID+"\n"), 0o600); err != nil {
			return 0, fmt.Errorf("use KMS: %w", err)
		}
	}
	if err := atomicfile.Write(filepath.Join(dir, rootMetadataFile), data, 0o644); err != nil {
		return 0, fmt.Errorf("use KMS: %w", err)
	}
	for keyFile := range refs {
		if err := os.Remove(filepath.Join(dir, keyFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("use KMS: remove the retired %s: %w", keyFile, err)
		}
	}
	return next.Signed.Version, nil
}

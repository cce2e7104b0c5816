package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/tetherhq/tether/internal/atomicfile"
	"github.com/tetherhq/tether/internal/ledger"
	"github.com/tetherhq/tether/internal/license"
	"github.com/tetherhq/tether/internal/wire"
)

// Identity errors.
var (
	// ErrKeyMismatch means install.json names an install activated with a
	// different key than the one the agent now holds: the key file or
	// secret was replaced. Activating again is impossible (tokens are
	// single-use), so the operator must restore the key.
	ErrKeyMismatch = errors.New("agent: identity key does not match the activated install")
	// ErrNoActivationToken means the agent is not activated and the license
	// file carries no activation token.
	ErrNoActivationToken = errors.New("agent: license file has no activation token")
	// ErrActivationRefused means the plane answered activation with a 4xx:
	// the token was already used, or belongs to an unknown license.
	ErrActivationRefused = errors.New("agent: plane refused activation")
)

// keyStore keeps the agent's Ed25519 private key. load returns ok=false when
// no key has been stored yet.
type keyStore interface {
	load(ctx context.Context) (key ed25519.PrivateKey, ok bool, err error)
	save(ctx context.Context, key ed25519.PrivateKey) error
	describe() string // for logs: "file" or "secrets-manager"
}

// encodeKey stores the 32-byte seed as unpadded base64url on one line; the
// same text goes into the file and the secret.
func encodeKey(k ed25519.PrivateKey) string { return base64.RawURLEncoding.EncodeToString(k.Seed()) }

func decodeKey(s string) (ed25519.PrivateKey, error) {
	seed, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimSpace(s))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("stored identity key is not a base64url Ed25519 seed")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// fileKeys keeps the key in a 0600 file.
type fileKeys struct{ path string }

func (f fileKeys) describe() string { return "file" }

func (f fileKeys) load(context.Context) (ed25519.PrivateKey, bool, error) {
	fi, err := os.Stat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("identity key file is readable by others (mode %o); chmod 600 it", fi.Mode().Perm())
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return nil, false, err
	}
	k, err := decodeKey(string(data))
	return k, err == nil, err
}

func (f fileKeys) save(_ context.Context, k ed25519.PrivateKey) error {
	return atomicfile.Write(f.path, []byte(encodeKey(k)+"\n"), 0o600)
}

// secretKeys keeps the key in its own Secrets Manager secret. A secret the
// deployment created empty (or not at all, when given a plain name) is
// filled at first start.
type secretKeys struct {
	client *secretsmanager.Client
	id     string // name or ARN
}

func (s secretKeys) describe() string { return "secrets-manager" }

func (s secretKeys) load(ctx context.Context) (ed25519.PrivateKey, bool, error) {
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.id)})
	var nf *smtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, secretError(s.id, "GetSecretValue", err)
	}
	if aws.ToString(out.SecretString) == "" {
		return nil, false, nil
	}
	k, err := decodeKey(aws.ToString(out.SecretString))
	if err != nil {
		return nil, false, fmt.Errorf("identity secret %s: %w: it holds something else; give the agent its own secret, or restore the key it held", s.id, err)
	}
	return k, true, nil
}

func (s secretKeys) save(ctx context.Context, k ed25519.PrivateKey) error {
	value := aws.String(encodeKey(k))
	_, err := s.client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(s.id), SecretString: value})
	var nf *smtypes.ResourceNotFoundException
	if errors.As(err, &nf) && !strings.HasPrefix(s.id, "arn:") {
		_, err = s.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(s.id), SecretString: value,
			Description: aws.String("tether-agent identity key (Ed25519 seed)")})
		if err != nil {
			return secretError(s.id, "CreateSecret", err)
		}
		return nil
	}
	if err != nil {
		return secretError(s.id, "PutSecretValue", err)
	}
	return nil
}

// secretError says what failed on the identity secret, in terms an
// operator can act on: which secret, which call, whether it was missing,
// refused by IAM or by KMS, and the fix. The AWS message is kept where it
// is the explanation (a secret marked for deletion) and left out where it
// only names the caller's role (access denied).
func secretError(id, op string, err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return fmt.Errorf("identity secret %s: secretsmanager:%s failed: %w (check the agent has AWS credentials, its task role, and can reach Secrets Manager)", id, op, err)
	}
	code, msg := ae.ErrorCode(), ae.ErrorMessage()
	write := op != "GetSecretValue"
	switch {
	case code == "ResourceNotFoundException":
		return fmt.Errorf("identity secret %s: not found (secretsmanager:%s, %s): create the secret, or set --identity-secret (TETHER_AGENT_IDENTITY_SECRET) to the ARN of the one the deployment made", id, op, code)
	case strings.HasPrefix(code, "KMS") || code == "DecryptionFailure" || code == "EncryptionFailure" ||
		code == "AccessDeniedException" && strings.Contains(msg, "KMS"):
		use := "kms:Decrypt"
		if write {
			use = "kms:GenerateDataKey and kms:Decrypt"
		}
		return fmt.Errorf("identity secret %s: KMS refused secretsmanager:%s (%s): allow the agent's task role %s on the secret's KMS key (through Secrets Manager), and check that key is enabled", id, op, code, use)
	case code == "AccessDeniedException" || code == "AccessDenied" || code == "UnrecognizedClientException":
		return fmt.Errorf("identity secret %s: access denied to secretsmanager:%s (%s): allow the agent's task role secretsmanager:GetSecretValue and secretsmanager:PutSecretValue on this secret", id, op, code)
	case code == "InvalidRequestException" && (strings.Contains(msg, "deletion") || strings.Contains(msg, "deleted")):
		return fmt.Errorf("identity secret %s: secretsmanager:%s refused: %s (%s): restore it (aws secretsmanager restore-secret --secret-id %s); the install's key is in it", id, op, msg, code, id)
	}
	return fmt.Errorf("identity secret %s: secretsmanager:%s failed: %s: %s", id, op, code, msg)
}

// loadOrCreateKey returns the stored key, making and storing one at first
// start. The key is re-read after saving, so a store that silently drops
// writes is caught before activation spends the one-time token.
func loadOrCreateKey(ctx context.Context, ks keyStore) (ed25519.PrivateKey, bool, error) {
	k, ok, err := ks.load(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("agent: load identity key (%s): %w", ks.describe(), err)
	}
	if ok {
		return k, false, nil
	}
	_, k, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("agent: make identity key: %w", err)
	}
	if err := ks.save(ctx, k); err != nil {
		return nil, false, fmt.Errorf("agent: store identity key (%s): %w", ks.describe(), err)
	}
	back, ok, err := ks.load(ctx)
	if err != nil || !ok || !bytes.Equal(back, k) {
		return nil, false, fmt.Errorf("agent: identity key (%s) did not read back after storing it", ks.describe())
	}
	return k, true, nil
}

// Install is D/install.json: who this agent is to the plane.
type Install struct {
	InstallID   string    `json:"install_id"`
	LicenseID   string    `json:"license_id"`
	PublicKey   string    `json:"public_key"` // base64url; checked against the key at every start
	ActivatedAt time.Time `json:"activated_at"`
}

func readInstall(path string) (Install, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Install{}, false, nil
	}
	if err != nil {
		return Install{}, false, err
	}
	var in Install
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || !wire.ValidID(in.InstallID) {
		return Install{}, false, fmt.Errorf("%s is not a valid install record", path)
	}
	return in, true, nil
}

// activationToken reads the unsigned activation token from the license file.
// license.Verify has already checked the signed part.
func activationToken(file []byte) (string, error) {
	var f license.File
	if err := json.Unmarshal(file, &f); err != nil {
		return "", fmt.Errorf("agent: read activation token: %w", err)
	}
	if f.ActivationToken == "" {
		return "", ErrNoActivationToken
	}
	return f.ActivationToken, nil
}

// activate registers the key with the plane once. The request (with its
// one-time token) is ledgered before it is sent, like every payload.
func (a *Agent) activate(ctx context.Context, token string) (Install, error) {
	body, err := json.Marshal(wire.ActivationRequest{ActivationToken: token, PublicKey: encodePub(a.key), AgentVersion: Version})
	if err != nil {
		return Install{}, fmt.Errorf("agent: activate: %w", err)
	}
	status, resp, err := a.plane.send(ctx, ledger.KindActivation, "POST", "/v1/activate", body, false)
	if err != nil {
		return Install{}, fmt.Errorf("agent: activate: %w", err)
	}
	if status >= 400 && status < 500 {
		return Install{}, fmt.Errorf("agent: activate: %w (status %d)", ErrActivationRefused, status)
	}
	if status != 200 {
		return Install{}, fmt.Errorf("agent: activate: plane answered %d", status)
	}
	ar, err := wire.DecodeActivationResponse(resp)
	if err != nil {
		return Install{}, fmt.Errorf("agent: activate: %w", err)
	}
	return Install{InstallID: ar.InstallID, LicenseID: ar.LicenseID, PublicKey: encodePub(a.key), ActivatedAt: a.now().UTC()}, nil
}

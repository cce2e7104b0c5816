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
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	jsonv2 "github.com/go-json-experiment/json"

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
// no key has been stored yet. pending is the key an operator put there to
// replace it (tetherctl secrets rotate agent), ok=false when none; promote
// makes it the current key once the plane holds it.
type keyStore interface {
	load(ctx context.Context) (key ed25519.PrivateKey, ok bool, err error)
	save(ctx context.Context, key ed25519.PrivateKey) error
	pending(ctx context.Context) (key ed25519.PrivateKey, ok bool, err error)
	promote(ctx context.Context) error
	describe() string // for logs: "file" or "secrets-manager"
}

// encodeKey stores the 32-byte seed as unpadded base64url on one line; the
// same text goes into the file and the secret.
func encodeKey(k ed25519.PrivateKey) string { return base64.RawURLEncoding.EncodeToString(k.Seed()) }

func encodePub(k ed25519.PrivateKey) string {
	return base64.RawURLEncoding.EncodeToString(k.Public().(ed25519.PublicKey))
}

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

func (f fileKeys) load(context.Context) (ed25519.PrivateKey, bool, error) { return readKeyFile(f.path) }

// next is identity.next beside the key file: the pending key.
func (f fileKeys) next() string { return filepath.Join(filepath.Dir(f.path), "identity.next") }

func (f fileKeys) pending(context.Context) (ed25519.PrivateKey, bool, error) {
	k, ok, err := readKeyFile(f.next())
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w: it must hold the key tetherctl secrets rotate agent --local wrote; if the rotation was never finished and the plane still knows the current key, remove it", f.next(), err)
	}
	return k, ok, nil
}

func (f fileKeys) promote(context.Context) error { return os.Rename(f.next(), f.path) }

func readKeyFile(path string) (ed25519.PrivateKey, bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("identity key file %s is readable by others (mode %o); chmod 600 it", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	k, err := decodeKey(string(data))
	return k, err == nil, err
}

func (f fileKeys) save(_ context.Context, k ed25519.PrivateKey) error {
	return atomicfile.Write(f.path, []byte(encodeKey(k)+"\n"), 0o600)
}

// secretKeys keeps the key in its own Secrets Manager secret, which the
// deployment creates empty.
type secretKeys struct {
	client *secretsmanager.Client
	id     string // name or ARN
}

func (s secretKeys) describe() string { return "secrets-manager" }

// Version stages of the identity secret: the key in use, and the one
// tetherctl secrets rotate agent puts there to replace it.
const (
	stageCurrent = "AWSCURRENT"
	stagePending = "AWSPENDING"
)

func (s secretKeys) load(ctx context.Context) (ed25519.PrivateKey, bool, error) {
	k, _, err := s.stage(ctx, stageCurrent)
	return k, k != nil, err
}

// pending is the AWSPENDING version's key, unless that version is also
// AWSCURRENT (already promoted).
func (s secretKeys) pending(ctx context.Context) (ed25519.PrivateKey, bool, error) {
	k, out, err := s.stage(ctx, stagePending)
	if k == nil || err != nil || slices.Contains(out.VersionStages, stageCurrent) {
		return nil, false, err
	}
	return k, true, nil
}

// stage reads the key of one version stage; nil when the secret or the
// stage does not exist or is empty.
func (s secretKeys) stage(ctx context.Context, stage string) (ed25519.PrivateKey, *secretsmanager.GetSecretValueOutput, error) {
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.id), VersionStage: aws.String(stage)})
	var nf *smtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, secretError(s.id, "GetSecretValue", err)
	}
	if aws.ToString(out.SecretString) == "" {
		return nil, out, nil
	}
	k, err := decodeKey(aws.ToString(out.SecretString))
	if err != nil {
		return nil, nil, fmt.Errorf("identity secret %s (%s): %w: it holds something else; give the agent its own secret, or restore the key it held", s.id, stage, err)
	}
	return k, out, nil
}

// promote moves AWSCURRENT to the AWSPENDING version (the old one becomes
// AWSPREVIOUS), then takes AWSPENDING off it, so the next start finds
// nothing pending.
func (s secretKeys) promote(ctx context.Context) error {
	ids := map[string]string{}
	for _, stage := range []string{stageCurrent, stagePending} {
		out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.id), VersionStage: aws.String(stage)})
		if err != nil {
			return secretError(s.id, "GetSecretValue", err)
		}
		ids[stage] = aws.ToString(out.VersionId)
	}
	moves := []*secretsmanager.UpdateSecretVersionStageInput{
		{SecretId: aws.String(s.id), VersionStage: aws.String(stageCurrent), MoveToVersionId: aws.String(ids[stagePending]), RemoveFromVersionId: aws.String(ids[stageCurrent])},
		{SecretId: aws.String(s.id), VersionStage: aws.String(stagePending), RemoveFromVersionId: aws.String(ids[stagePending])},
	}
	if ids[stageCurrent] == ids[stagePending] {
		moves = moves[1:]
	}
	for _, in := range moves {
		if _, err := s.client.UpdateSecretVersionStage(ctx, in); err != nil {
			return secretError(s.id, "UpdateSecretVersionStage", err)
		}
	}
	return nil
}

// save fills the secret at first start. The agent never creates one: that
// would need secretsmanager:CreateSecret on names it chooses, and the
// deployment makes the secret with its key and policy.
func (s secretKeys) save(ctx context.Context, k ed25519.PrivateKey) error {
	_, err := s.client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(s.id), SecretString: aws.String(encodeKey(k))})
	if err != nil {
		return secretError(s.id, "PutSecretValue", err)
	}
	return nil
}

// secretError says which secret and call failed, why (missing, IAM, KMS)
// and the fix. The AWS message is kept only where it is the explanation (a
// secret marked for deletion), not where it names the caller's role.
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
		return fmt.Errorf("identity secret %s: access denied to secretsmanager:%s (%s): allow the agent's task role secretsmanager:%s on this secret (it needs GetSecretValue, PutSecretValue and UpdateSecretVersionStage)", id, op, code, op)
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
	if err := jsonv2.Unmarshal(data, &in, jsonv2.RejectUnknownMembers(true)); err != nil || !wire.ValidID(in.InstallID) {
		return Install{}, false, fmt.Errorf("%s is not a valid install record", path)
	}
	return in, true, nil
}

// activationToken reads the license file's unsigned activation token.
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
	req := wire.ActivationRequest{ActivationToken: token, PublicKey: encodePub(a.key), AgentVersion: Version}
	status, resp, err := a.plane.post(ctx, ledger.KindActivation, "/v1/activate", &req, false)
	if err != nil {
		return Install{}, fmt.Errorf("agent: activate: %w", err)
	}
	if status >= 400 && status < 500 {
		return Install{}, fmt.Errorf("agent: activate: %w (status %d)", ErrActivationRefused, status)
	}
	if status != 200 {
		return Install{}, fmt.Errorf("agent: activate: %w", statusError(status, resp))
	}
	ar, err := wire.Decode[wire.ActivationResponse](resp)
	if err != nil {
		return Install{}, fmt.Errorf("agent: activate: %w", err)
	}
	return Install{InstallID: ar.InstallID, LicenseID: ar.LicenseID, PublicKey: encodePub(a.key), ActivatedAt: a.now().UTC()}, nil
}

// rekey moves the install to the pending key, if there is one: the plane
// first (POST /v1/rekey, signed with the current key), then install.json,
// then the key store. After a crash between the plane's swap and the
// promotion, the current key is refused (401) and the same request signed
// with the pending key is the plane's no-op: then it promotes. Network
// failures are retried like activation's; a refusal leaves the current key
// in use and the pending one in place.
func (a *Agent) rekey(ctx context.Context) error {
	if a.next == nil || a.install.InstallID == "" {
		return nil
	}
	id, pub := a.install.InstallID, encodePub(a.next)
	body, err := json.Marshal(wire.RekeyRequest{PublicKey: pub,
		Proof: base64.RawURLEncoding.EncodeToString(ed25519.Sign(a.next, wire.RekeyMessage(id, pub)))})
	if err != nil {
		return fmt.Errorf("agent: rekey: %w", err)
	}
	status := 0
	for attempt := 1; status == 0 || status >= 500; attempt++ {
		for _, k := range []ed25519.PrivateKey{a.key, a.next} {
			a.plane.setIdentity(k, id)
			if status, _, err = a.plane.send(ctx, ledger.KindActivation, "POST", "/v1/rekey", body, true); err != nil || status != 401 {
				break
			}
		}
		a.plane.setIdentity(a.key, id)
		if err == nil && status < 500 {
			break
		}
		a.log.Warn("rekey failed; will retry", "attempt", attempt, "status", status, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff(attempt, a.opts.RetryBase, a.opts.RetryMax, a.opts.Rand)):
		}
	}
	if status != 204 {
		return fmt.Errorf("agent: rekey: plane refused the new identity key (status %d); still using the current one", status)
	}
	// The plane holds the new key: sign with it from now on, even if what
	// follows fails (the pending key stays, and the next start finishes).
	in := a.install
	in.PublicKey = pub
	a.mu.Lock()
	a.key, a.next, a.install = a.next, nil, in
	a.mu.Unlock()
	a.plane.setIdentity(a.key, id)
	if err := atomicfile.WriteJSON(a.path("install.json"), in, 0o600); err != nil {
		return fmt.Errorf("agent: rekey: the plane holds the new key but install.json could not be saved (the next start finishes): %w", err)
	}
	if err := a.keys.promote(ctx); err != nil {
		return fmt.Errorf("agent: rekey: the plane holds the new key, which the agent now uses, but it could not be made current (%s; the next start finishes): %w", a.keys.describe(), err)
	}
	a.log.Info("identity key rotated", "install_id", id, "store", a.keys.describe())
	return nil
}

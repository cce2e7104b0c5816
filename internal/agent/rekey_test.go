package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/tetherhq/tether/internal/reqsign"
	"github.com/tetherhq/tether/internal/wire"
)

// activated starts an agent until it heartbeats, stops it, and returns its
// install ID.
func (b *bundle) activated() string {
	b.t.Helper()
	r := b.start()
	b.waitHeartbeats(1)
	id := r.Snapshot().InstallID
	r.stop(b.t)
	return id
}

// checkRekeyed waits for heartbeats after the restart and checks the plane
// holds want for the same install, activated once.
func (b *bundle) checkRekeyed(r *running, id string, want ed25519.PrivateKey) {
	b.t.Helper()
	ctx := context.Background()
	before, err := b.plane.Store.Install(ctx, id)
	if err != nil {
		b.t.Fatal(err)
	}
	// Heartbeats the plane accepted, so signed with the key it holds.
	waitFor(b.t, "two accepted heartbeats", func() bool {
		in, err := b.plane.Store.Install(ctx, id)
		return err == nil && in.Heartbeats >= before.Heartbeats+2
	})
	if got := r.Snapshot().InstallID; got != id {
		b.t.Fatalf("install after re-key = %q, want %q", got, id)
	}
	k, err := b.plane.Store.InstallKey(ctx, id)
	if err != nil || !k.Equal(want.Public()) {
		b.t.Fatalf("plane's key = %x, %v; want the new key", k, err)
	}
	if n := len(b.received("POST", "/v1/activate")); n != 1 {
		b.t.Fatalf("activations = %d, want 1: a re-key is not a new activation", n)
	}
	in, ok, err := readInstall(filepath.Join(b.cfg.DataDir, "install.json"))
	if err != nil || !ok || in.PublicKey != encodePub(want) || in.InstallID != id {
		b.t.Fatalf("install.json = %+v, %v; want the new key", in, err)
	}
}

func writeKeyFile(t *testing.T, path string) ed25519.PrivateKey {
	t.Helper()
	_, k, _ := ed25519.GenerateKey(nil)
	if err := os.WriteFile(path, []byte(encodeKey(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRekeyFromIdentityNext(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.activated()
	keyPath, next := filepath.Join(b.cfg.DataDir, "identity.key"), filepath.Join(b.cfg.DataDir, "identity.next")
	newKey := writeKeyFile(t, next)

	r := b.start()
	b.checkRekeyed(r, id, newKey)
	if got, ok, err := readKeyFile(keyPath); err != nil || !ok || !got.Equal(newKey) {
		t.Fatalf("identity.key after re-key: %v, want the new key", err)
	}
	if _, err := os.Stat(next); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("identity.next is still there: %v", err)
	}
	if got := b.received("POST", "/v1/rekey"); len(got) != 1 {
		t.Fatalf("rekey requests = %d, want 1", len(got))
	}
	// A restart after it signs with the new key and re-keys nothing.
	r.stop(t)
	b.checkRekeyed(b.start(), id, newKey)
	if got := b.received("POST", "/v1/rekey"); len(got) != 1 {
		t.Fatalf("rekey requests after another restart = %d, want still 1", len(got))
	}
}

// A crash after the plane swapped the key but before the agent promoted it:
// the next start's current key is refused, and the pending one is the
// plane's no-op, so the agent promotes it. install.json may or may not have
// been saved with the new key before the crash.
func TestRekeyRecoversAfterCrashBeforePromotion(t *testing.T) {
	t.Parallel()
	for _, savedInstall := range []bool{false, true} {
		b := setup(t)
		id := b.activated()
		old, _, err := readKeyFile(filepath.Join(b.cfg.DataDir, "identity.key"))
		if err != nil {
			t.Fatal(err)
		}
		newKey := writeKeyFile(t, filepath.Join(b.cfg.DataDir, "identity.next"))
		// What the crashed agent sent: the plane now holds the new key.
		pub := encodePub(newKey)
		body, _ := json.Marshal(wire.RekeyRequest{PublicKey: pub,
			Proof: base64.RawURLEncoding.EncodeToString(ed25519.Sign(newKey, wire.RekeyMessage(id, pub)))})
		req, _ := http.NewRequest("POST", b.plane.URL+"/v1/rekey", bytes.NewReader(body))
		if err := reqsign.Sign(req, body, id, old, b.clock.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("plane swap: %v %v", resp, err)
		}
		resp.Body.Close()
		if savedInstall {
			path := filepath.Join(b.cfg.DataDir, "install.json")
			in, _, _ := readInstall(path)
			in.PublicKey = pub
			data, _ := json.Marshal(in)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}

		b.checkRekeyed(b.start(), id, newKey)
		if got, _, _ := readKeyFile(filepath.Join(b.cfg.DataDir, "identity.key")); !got.Equal(newKey) {
			t.Fatalf("savedInstall=%v: identity.key was not promoted", savedInstall)
		}
	}
}

// On AWS the pending key is the identity secret's AWSPENDING version, and
// promoting it moves AWSCURRENT (UpdateSecretVersionStage), through the real
// SDK against the emulator.
func TestRekeyInSecretsManager(t *testing.T) {
	t.Parallel()
	b := setup(t)
	emu, arn := b.withIdentitySecret()
	id := b.activated()
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(emu.AWSConfig())
	ks := secretKeys{client: sm, id: arn}
	if _, ok, err := ks.pending(ctx); ok || err != nil {
		t.Fatalf("pending before rotation: ok=%v %v", ok, err)
	}
	oldValue, _ := emu.SecretValue(t, arn)

	_, newKey, _ := ed25519.GenerateKey(nil)
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn),
		SecretString: aws.String(encodeKey(newKey)), VersionStages: []string{stagePending}}); err != nil {
		t.Fatal(err)
	}
	if v, _ := emu.SecretValue(t, arn); v != oldValue {
		t.Fatal("writing AWSPENDING changed the current value")
	}
	b.checkRekeyed(b.start(), id, newKey)
	// Read by stage: moto 5.2.5's UpdateSecretVersionStage moves the label
	// but not its default version, so GetSecretValue without VersionStage
	// (emu.SecretValue) still returns the old value there; AWS returns the
	// AWSCURRENT version. The agent always names the stage.
	cur, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(stageCurrent)})
	if err != nil || aws.ToString(cur.SecretString) != encodeKey(newKey) {
		t.Fatalf("AWSCURRENT is not the new key: %v", err)
	}
	prev, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String("AWSPREVIOUS")})
	if err != nil || aws.ToString(prev.SecretString) != oldValue {
		t.Fatalf("AWSPREVIOUS is not the old key: %v", err)
	}
	_, err = sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(stagePending)})
	var nf *smtypes.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("AWSPENDING is still on a version after promotion: %v", err)
	}
}

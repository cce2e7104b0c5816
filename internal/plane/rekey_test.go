package plane_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/tetherhq/tether/internal/wire"
)

// rekeyBody is a re-key request for a.id carrying newKey's public half,
// with the proof signed by prover.
func rekeyBody(t *testing.T, id string, newKey, prover ed25519.PrivateKey) []byte {
	t.Helper()
	pub := base64.RawURLEncoding.EncodeToString(newKey.Public().(ed25519.PublicKey))
	body, err := json.Marshal(wire.RekeyRequest{PublicKey: pub,
		Proof: base64.RawURLEncoding.EncodeToString(ed25519.Sign(prover, wire.RekeyMessage(id, pub)))})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestRekeyEndpoint(t *testing.T) {
	b := setup(t)
	a := b.activate(t, b.license(t, "lic_a", "stable"))
	other := b.activate(t, b.license(t, "lic_b", "stable"))
	_, newKey, _ := ed25519.GenerateKey(nil)
	_, stranger, _ := ed25519.GenerateKey(nil)

	// The old key is in the cache from this heartbeat.
	a.heartbeat(t, "ok")

	refused := []struct {
		name string
		body []byte
		want int
	}{
		{"proof by another key", rekeyBody(t, a.id, newKey, stranger), http.StatusBadRequest},
		{"proof for another install", rekeyBody(t, other.id, newKey, newKey), http.StatusBadRequest},
		{"unknown field", []byte(`{"public_key":"x","proof":"y","extra":1}`), http.StatusBadRequest},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			if resp, out := a.do(t, "POST", "/v1/rekey", tt.body); resp.StatusCode != tt.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, out, tt.want)
			}
			if k, _ := b.store.InstallKey(b.ctx, a.id); !k.Equal(a.key.Public()) {
				t.Fatal("a refused re-key changed the key")
			}
		})
	}
	t.Run("unsigned", func(t *testing.T) {
		resp, out := b.call(t, "POST", "/v1/rekey", rekeyBody(t, a.id, newKey, newKey), nil)
		if resp.StatusCode != http.StatusUnauthorized || errorCode(out) != "unsigned" {
			t.Fatalf("status %d %s, want 401 unsigned", resp.StatusCode, out)
		}
	})

	replay := a.signedReq(t, "POST", "/v1/rekey", rekeyBody(t, a.id, newKey, newKey))
	if resp, out := send(t, replay.Clone(b.ctx)); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("rekey: %d %s", resp.StatusCode, out)
	}
	if k, _ := b.store.InstallKey(b.ctx, a.id); !k.Equal(newKey.Public()) {
		t.Fatal("the plane does not hold the new key")
	}
	// The old key is refused at once, though this process had it cached.
	if resp, out := a.do(t, "POST", "/v1/heartbeat", heartbeatJSON(t, b.clock.Now(), "ok")); resp.StatusCode != http.StatusUnauthorized || errorCode(out) != "bad_signature" {
		t.Fatalf("heartbeat with the old key: %d %s, want 401 bad_signature", resp.StatusCode, out)
	}
	a.key = newKey
	a.heartbeat(t, "ok")
	// The same re-key sent again is a replay; signed by the new key it is
	// the no-op an agent that crashed before promoting relies on.
	replay.Body, _ = replay.GetBody()
	if resp, out := send(t, replay); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replayed rekey: %d %s, want 401", resp.StatusCode, out)
	}
	if resp, out := a.do(t, "POST", "/v1/rekey", rekeyBody(t, a.id, newKey, newKey)); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("rekey to the key it has: %d %s, want 204", resp.StatusCode, out)
	}

	t.Run("revoked install", func(t *testing.T) {
		if resp, out := b.admin(t, "POST", "/v1/admin/installs/"+other.id+"/revoke", nil); resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", resp.StatusCode, out)
		}
		_, k, _ := ed25519.GenerateKey(nil)
		resp, out := other.do(t, "POST", "/v1/rekey", rekeyBody(t, other.id, k, k))
		if resp.StatusCode != http.StatusUnauthorized || errorCode(out) != "revoked" {
			t.Fatalf("status %d %s, want 401 revoked", resp.StatusCode, out)
		}
	})
}

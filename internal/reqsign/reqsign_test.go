package reqsign_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/reqsign"
)

// Sign's headers carry a signature over Canonical that verifies with the
// install's public key and with nothing else; the plane's full checks
// (time window, nonces, revocation) are tested in reqverify.
func TestSignCoversCanonical(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"x":1}`)
	r := httptest.NewRequest("POST", "/v1/a%2Fb?q=1", nil)
	if err := reqsign.Sign(r, body, "ins_A", priv, now); err != nil {
		t.Fatal(err)
	}
	h := r.Header
	if h.Get(reqsign.HeaderInstall) != "ins_A" || h.Get(reqsign.HeaderTime) != strconv.FormatInt(now.Unix(), 10) {
		t.Fatalf("headers %v", h)
	}
	nonce, err := base64.RawURLEncoding.Strict().DecodeString(h.Get(reqsign.HeaderNonce))
	if err != nil || len(nonce) != reqsign.NonceSize {
		t.Fatalf("nonce %q: %v", h.Get(reqsign.HeaderNonce), err)
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(h.Get(reqsign.HeaderSignature))
	if err != nil {
		t.Fatal(err)
	}
	if reqsign.PathQuery(r) != "/v1/a%2Fb?q=1" {
		t.Fatalf("PathQuery = %q, want the escaped path and raw query", reqsign.PathQuery(r))
	}
	msg := reqsign.Canonical("POST", "/v1/a%2Fb?q=1", body, now.Unix(), h.Get(reqsign.HeaderNonce), "ins_A")
	if !ed25519.Verify(pub, msg, sig) {
		t.Fatal("signature does not verify over Canonical")
	}
	if ed25519.Verify(pub, reqsign.Canonical("POST", "/v1/a%2Fb?q=1", []byte(`{"x":2}`), now.Unix(), h.Get(reqsign.HeaderNonce), "ins_A"), sig) {
		t.Fatal("signature also verifies over another body")
	}
}

func TestSignRejectsBadInputs(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	r := httptest.NewRequest("GET", "/", nil)
	if err := reqsign.Sign(r, nil, "ins A", priv, time.Now()); err == nil {
		t.Error("install ID with a space was accepted")
	}
	if err := reqsign.Sign(r, nil, "ins_A", priv[:10], time.Now()); err == nil {
		t.Error("short key was accepted")
	}
}

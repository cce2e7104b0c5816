package license_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/license"
	"github.com/tetherhq/tether/internal/license/issuer"
	"github.com/tetherhq/tether/internal/wire"
)

var issued = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func sample() license.License {
	return license.License{
		ID:           "lic_acme_2026",
		Customer:     "ACME Corp",
		IssuedAt:     issued,
		ExpiresAt:    issued.AddDate(1, 0, 0),
		GraceSeconds: 14 * 24 * 3600,
		Channels:     []string{"stable", "beta"},
		Entitlements: map[string]int64{"pages_per_month": 100000},
	}
}

type bundle struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
	file []byte
	tok  string
}

func setup(t testing.TB) bundle {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	file, tok, err := issuer.Issue(priv, sample())
	if err != nil {
		t.Fatal(err)
	}
	return bundle{pub, priv, file, tok}
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	got, err := license.Verify(b.pub, b.file)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !reflect.DeepEqual(got, sample()) {
		t.Fatalf("Verify = %+v, want %+v", got, sample())
	}
	var f license.File
	if err := json.Unmarshal(b.file, &f); err != nil {
		t.Fatal(err)
	}
	if f.ActivationToken != b.tok || f.KeyID != license.KeyID(b.pub) {
		t.Fatalf("file carries token %q key %q", f.ActivationToken, f.KeyID)
	}
	// The token must be usable in the activation request as-is.
	req := wire.ActivationRequest{ActivationToken: b.tok, PublicKey: base64.RawURLEncoding.EncodeToString(b.pub), AgentVersion: "1.0.0"}
	if err := req.Validate(); err != nil {
		t.Fatalf("activation token does not fit the wire format: %v", err)
	}
	// Two issues never share a token.
	_, tok2, _ := issuer.Issue(b.priv, sample())
	if tok2 == b.tok {
		t.Fatal("two licenses got the same activation token")
	}
	if h := issuer.TokenHash(b.tok); len(h) != 64 || strings.Contains(h, b.tok) {
		t.Fatalf("TokenHash = %q", h)
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	b := setup(t)
	otherPub, otherPriv, _ := ed25519.GenerateKey(nil)
	var f license.File
	if err := json.Unmarshal(b.file, &f); err != nil {
		t.Fatal(err)
	}
	encode := func(f license.File) []byte { out, _ := json.Marshal(f); return out }
	tests := []struct {
		name    string
		pub     ed25519.PublicKey
		file    func() []byte
		wantErr error
	}{
		{"tampered payload", b.pub, func() []byte {
			g := f
			g.Payload = bytes.Replace(f.Payload, []byte(`"2027-01-01`), []byte(`"2099-01-01`), 1)
			return encode(g)
		}, license.ErrBadSignature},
		{"added channel", b.pub, func() []byte {
			g := f
			g.Payload = bytes.Replace(f.Payload, []byte(`"beta"`), []byte(`"beta","nightly"`), 1)
			return encode(g)
		}, license.ErrBadSignature},
		{"reformatted payload", b.pub, func() []byte {
			var out bytes.Buffer
			_ = json.Indent(&out, b.file, "", "  ")
			return out.Bytes()
		}, license.ErrBadSignature},
		{"tampered signature", b.pub, func() []byte {
			g := f
			sig, _ := base64.RawURLEncoding.DecodeString(f.Signature)
			sig[0] ^= 1
			g.Signature = base64.RawURLEncoding.EncodeToString(sig)
			return encode(g)
		}, license.ErrBadSignature},
		{"verified with another key", otherPub, func() []byte { return b.file }, license.ErrBadSignature},
		{"signed by another key, key id forged", b.pub, func() []byte {
			other, _, _ := issuer.Issue(otherPriv, sample())
			var g license.File
			_ = json.Unmarshal(other, &g)
			g.KeyID = license.KeyID(b.pub)
			return encode(g)
		}, license.ErrBadSignature},
		{"unknown file field", b.pub, func() []byte {
			return bytes.Replace(b.file, []byte(`{"payload"`), []byte(`{"extra":1,"payload"`), 1)
		}, license.ErrMalformed},
		{"trailing data", b.pub, func() []byte { return append(append([]byte{}, b.file...), '{', '}') }, license.ErrMalformed},
		{"padded signature", b.pub, func() []byte {
			g := f
			g.Signature += "=="
			return encode(g)
		}, license.ErrMalformed},
		{"not JSON", b.pub, func() []byte { return []byte("-----BEGIN LICENSE-----") }, license.ErrMalformed},
		{"empty", b.pub, func() []byte { return nil }, license.ErrMalformed},
		{"huge", b.pub, func() []byte { return bytes.Repeat([]byte(" "), license.MaxFile+1) }, license.ErrMalformed},
		{"validly signed, unknown payload field", b.pub, func() []byte {
			return resign(t, b.priv, f, bytes.Replace(f.Payload, []byte(`{"id"`), []byte(`{"seats":5,"id"`), 1))
		}, license.ErrMalformed},
		{"validly signed, invalid license", b.pub, func() []byte {
			return resign(t, b.priv, f, bytes.Replace(f.Payload, []byte(`"stable"`), []byte(`"Stable!"`), 1))
		}, license.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := license.Verify(tt.pub, tt.file())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func resign(t *testing.T, priv ed25519.PrivateKey, f license.File, payload []byte) []byte {
	t.Helper()
	f.Payload = payload
	f.Signature = base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, payload))
	out, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestIssueRejectsInvalid(t *testing.T) {
	t.Parallel()
	_, priv, _ := ed25519.GenerateKey(nil)
	tests := []struct {
		name   string
		mutate func(l *license.License)
	}{
		{"no id", func(l *license.License) { l.ID = "" }},
		{"id with slash", func(l *license.License) { l.ID = "a/b" }},
		{"no customer", func(l *license.License) { l.Customer = "" }},
		{"expires before issue", func(l *license.License) { l.ExpiresAt = l.IssuedAt.Add(-time.Hour) }},
		{"no expiry", func(l *license.License) { l.ExpiresAt = time.Time{} }},
		{"negative grace", func(l *license.License) { l.GraceSeconds = -1 }},
		{"no channels", func(l *license.License) { l.Channels = nil }},
		{"bad channel", func(l *license.License) { l.Channels = []string{"stable", "Beta"} }},
		{"bad entitlement", func(l *license.License) { l.Entitlements = map[string]int64{"Pages": 1} }},
		{"negative entitlement", func(l *license.License) { l.Entitlements = map[string]int64{"pages": -1} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := sample()
			tt.mutate(&l)
			if _, _, err := issuer.Issue(priv, l); err == nil {
				t.Fatal("Issue accepted an invalid license")
			}
		})
	}
}

func TestStateAt(t *testing.T) {
	t.Parallel()
	l := sample()
	exp := l.ExpiresAt
	grace := time.Duration(l.GraceSeconds) * time.Second
	tests := []struct {
		name string
		at   time.Time
		want license.State
	}{
		{"at issue", l.IssuedAt, license.Valid},
		{"1ns before expiry", exp.Add(-time.Nanosecond), license.Valid},
		{"exactly at expiry", exp, license.Grace},
		{"1ns before grace ends", exp.Add(grace - time.Nanosecond), license.Grace},
		{"exactly when grace ends", exp.Add(grace), license.Expired},
		{"long after", exp.AddDate(5, 0, 0), license.Expired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := l.StateAt(tt.at); got != tt.want {
				t.Errorf("StateAt = %s, want %s", got, tt.want)
			}
		})
	}
	t.Run("no grace", func(t *testing.T) {
		l := sample()
		l.GraceSeconds = 0
		if got := l.StateAt(exp); got != license.Expired {
			t.Fatalf("StateAt(expiry) with no grace = %s, want expired", got)
		}
	})
}

func TestAllowsChannel(t *testing.T) {
	t.Parallel()
	l := sample()
	for ch, want := range map[string]bool{"stable": true, "beta": true, "nightly": false, "": false, "Stable": false} {
		if got := l.AllowsChannel(ch); got != want {
			t.Errorf("AllowsChannel(%q) = %v, want %v", ch, got, want)
		}
	}
}

// KeyID is what docs/protocol.md says it is (the first 8 bytes of the
// key's SHA-256, in hex), the same for a key read back from its PEM, and
// different for another key.
func TestKeyID(t *testing.T) {
	t.Parallel()
	a := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	sum := sha256.Sum256(a)
	if got, want := license.KeyID(a), hex.EncodeToString(sum[:8]); got != want || len(got) != 16 {
		t.Fatalf("KeyID = %q, want %q (16 hex digits)", got, want)
	}
	der, err := x509.MarshalPKIXPublicKey(a)
	if err != nil {
		t.Fatal(err)
	}
	back, err := license.ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil || license.KeyID(back) != license.KeyID(a) {
		t.Fatalf("KeyID of the key read back from PEM = %q (%v), want %q", license.KeyID(back), err, license.KeyID(a))
	}
	b, _, _ := ed25519.GenerateKey(nil)
	if license.KeyID(a) == license.KeyID(b) {
		t.Fatalf("two keys share the KeyID %q", license.KeyID(a))
	}
}

// FuzzVerify: no input panics Verify, and any file it accepts carries exactly
// the payload the key signed (forgery would have to break Ed25519).
func FuzzVerify(f *testing.F) {
	b := setup(f)
	f.Add(b.file)
	f.Add([]byte(`{"payload":{},"key_id":"","signature":""}`))
	f.Add([]byte(`{"payload":null,"key_id":"x","signature":"AA"}`))
	f.Add(bytes.ToUpper(b.file))
	want, err := license.Verify(b.pub, b.file)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		got, err := license.Verify(b.pub, file)
		if err != nil {
			if !errors.Is(err, license.ErrMalformed) && !errors.Is(err, license.ErrBadSignature) {
				t.Fatalf("error matches neither sentinel: %v", err)
			}
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("accepted a license the key never signed: %+v", got)
		}
	})
}

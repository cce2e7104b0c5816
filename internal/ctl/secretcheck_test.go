package ctl

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/deployconfig"
	"github.com/tetherhq/tether/internal/license"
	"github.com/tetherhq/tether/internal/license/issuer"
)

var testNow = time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)

func testKey(t testing.TB) (ed25519.PrivateKey, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return priv, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func issue(t testing.TB, priv ed25519.PrivateKey, expires time.Time, channels ...string) []byte {
	t.Helper()
	file, _, err := issuer.Issue(priv, license.License{
		ID: "lic_acme", Customer: "ACME Corp", IssuedAt: expires.AddDate(-1, 0, 0), ExpiresAt: expires,
		GraceSeconds: 14 * 24 * 3600, Channels: channels,
	})
	if err != nil {
		t.Fatal(err)
	}
	return file
}

func licenseConfig(pubPEM string) *deployconfig.Config {
	dc := &deployconfig.Config{Name: "acme-docs"}
	dc.License.PublicKey = pubPEM
	dc.Plane.Channel = "stable"
	return dc
}

func TestCheckLicense(t *testing.T) {
	t.Parallel()
	priv, pubPEM := testKey(t)
	otherPriv, _ := testKey(t)
	dc := licenseConfig(pubPEM)
	valid := issue(t, priv, testNow.AddDate(0, 6, 0), "stable")
	tests := []struct {
		name   string
		dc     *deployconfig.Config
		value  []byte
		status status
		detail string
	}{
		{"valid", dc, valid, statusPass, "license lic_acme for ACME Corp"},
		{"valid, then 14 days", dc, valid, statusPass, "14 days of grace"},
		{"in grace", dc, issue(t, priv, testNow.AddDate(0, 0, -3), "stable"), statusWarn, "grace period until 2027-03-12"},
		{"at the end of grace", dc, issue(t, priv, testNow.AddDate(0, 0, -14), "stable"), statusFail, "grace period ended"},
		{"expired long ago", dc, issue(t, priv, testNow.AddDate(-1, 0, 0), "stable"), statusFail, "expired on 2026-03-01"},
		{"other channel only", dc, issue(t, priv, testNow.AddDate(0, 6, 0), "beta"), statusWarn, `does not include release channel "stable"`},
		{"another vendor key", dc, issue(t, otherPriv, testNow.AddDate(0, 6, 0), "stable"), statusFail, "signed by key"},
		{"altered", dc, []byte(strings.Replace(string(valid), "ACME Corp", "Evil Corp", 1)), statusFail, "the license was altered"},
		{"JSON, not a license", dc, []byte(`{"license":"SECRET-MARKER-123"}`), statusFail, "not a license file"},
		{"not JSON", dc, []byte("SECRET-MARKER-123"), statusFail, "not a license file"},
		{"placeholder", dc, []byte(strings.Repeat("x9Y", 16)), statusFail, "placeholder"},
		{"bad public key in deployment.yaml", licenseConfig("nope"), valid, statusFail, "license.public_key is not an Ed25519"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := checkLicense(tc.dc, tc.value, testNow)
			if v.Status != tc.status || !strings.Contains(v.Detail, tc.detail) {
				t.Fatalf("%s %q, want %s with %q", v.Status, v.Detail, tc.status, tc.detail)
			}
			if v.Status != statusPass && v.Fix == "" {
				t.Fatal("no fix")
			}
			if strings.Contains(v.Detail+v.Fix, "SECRET-MARKER") {
				t.Fatalf("the verdict quotes the value: %q", v.Detail)
			}
		})
	}
}

func aiConfig(provider, baseURL string) *deployconfig.Config {
	dc := &deployconfig.Config{Name: "acme-docs"}
	dc.AI.Provider, dc.AI.BaseURL = provider, baseURL
	return dc
}

func TestCheckAIKey(t *testing.T) {
	t.Parallel()
	anthropic := aiConfig(deployconfig.AIAnthropic, "")
	anthropicProxy := aiConfig(deployconfig.AIAnthropic, "https://llm-gateway.acme.example")
	openai := aiConfig(deployconfig.AIOpenAI, "https://api.openai.com/v1")
	azure := aiConfig(deployconfig.AIOpenAI, "https://acme.openai.azure.com/openai/v1")
	tests := []struct {
		name   string
		dc     *deployconfig.Config
		value  string
		status status
		detail string
	}{
		{"anthropic", anthropic, "sk-ant-api03-abcDEF_123-xyz", statusPass, "expected shape"},
		{"anthropic without its prefix", anthropic, "sk-proj-abc", statusFail, `start with "sk-ant-"`},
		{"anthropic behind a gateway", anthropicProxy, "gw-token-1", statusPass, "expected shape"},
		{"openai", openai, "sk-proj-abc123", statusPass, "expected shape"},
		{"openai without sk-", openai, "abc123", statusFail, `start with "sk-"`},
		{"azure, any token", azure, "0123456789abcdef0123456789abcdef", statusPass, "expected shape"},
		{"empty", azure, "", statusFail, "empty"},
		{"space", azure, "abc def", statusFail, "whitespace"},
		{"trailing newline", azure, "abcdef\n", statusFail, "line break"},
		{"tab", azure, "abc\tdef", statusFail, "whitespace"},
		{"non-ASCII", azure, "abcé", statusFail, "printable ASCII"},
		{"NUL", azure, "abc\x00", statusFail, "printable ASCII"},
		{"too long", azure, strings.Repeat("a", maxAIKey+1), statusFail, "longer than"},
		{"the stack's placeholder", azure, strings.Repeat("Ab3", 16), statusWarn, "placeholder"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := checkAIKey(tc.dc, tc.value)
			if v.Status != tc.status || !strings.Contains(v.Detail, tc.detail) {
				t.Fatalf("%s %q, want %s with %q", v.Status, v.Detail, tc.status, tc.detail)
			}
			if len(tc.value) > 3 && strings.Contains(v.Detail+v.Fix, tc.value) {
				t.Fatalf("the verdict quotes the key: %q", v.Detail)
			}
		})
	}
}

func TestCheckAgentIdentity(t *testing.T) {
	t.Parallel()
	seed := make([]byte, 32)
	rand.Read(seed)
	key := base64.RawURLEncoding.EncodeToString(seed)
	for _, tc := range []struct {
		name     string
		hasValue bool
		value    string
		status   status
		detail   string
	}{
		{"no value", false, "", statusPass, "created by the agent on first start"},
		{"empty string", true, "", statusPass, "created by the agent on first start"},
		{"the agent's key", true, key, statusPass, "identity key the agent created"},
		{"the agent's key with a newline", true, key + "\n", statusPass, "identity key the agent created"},
		{"padded base64", true, base64.URLEncoding.EncodeToString(seed), statusFail, "cannot read"},
		{"a 64-byte private key", true, base64.RawURLEncoding.EncodeToString(make([]byte, 64)), statusFail, "cannot read"},
		{"the stack's placeholder", true, strings.Repeat("q7W", 16), statusFail, "placeholder"},
	} {
		v := checkAgentIdentity(tc.hasValue, tc.value)
		if v.Status != tc.status || !strings.Contains(v.Detail, tc.detail) {
			t.Errorf("%s: %s %q, want %s with %q", tc.name, v.Status, v.Detail, tc.status, tc.detail)
		}
		if tc.value != "" && strings.Contains(v.Detail+v.Fix, strings.TrimSpace(tc.value)) {
			t.Errorf("%s: the verdict quotes the key", tc.name)
		}
	}
}

// FuzzCheckLicense: whatever arrives as a license, the check neither
// panics nor quotes it, and only a file that really verifies passes.
func FuzzCheckLicense(f *testing.F) {
	priv, pubPEM := testKey(f)
	dc := licenseConfig(pubPEM)
	f.Add(issue(f, priv, testNow.AddDate(0, 6, 0), "stable"))
	f.Add(issue(f, priv, testNow.AddDate(0, 0, -3), "beta"))
	f.Add([]byte(`{"payload":{},"key_id":"0123456789abcdef","signature":"AA"}`))
	f.Add([]byte(strings.Repeat("a", 48)))
	f.Add([]byte{})
	pub, _ := license.ParsePublicKey([]byte(pubPEM))
	f.Fuzz(func(t *testing.T, value []byte) {
		v := checkLicense(dc, value, testNow)
		if v.Status != statusPass && v.Status != statusWarn && v.Status != statusFail {
			t.Fatalf("status %q", v.Status)
		}
		if len(value) >= 24 && strings.Contains(v.Detail+v.Fix, string(value)) {
			t.Fatalf("the verdict quotes the value: %q", v.Detail)
		}
		if _, err := license.Verify(pub, value); err != nil && v.Status != statusFail {
			t.Fatalf("a file that does not verify got %s: %q", v.Status, v.Detail)
		}
	})
}

// FuzzCheckAIKey: the verdict on a key is one of the fixed verdicts the
// check can give (so it cannot carry any part of the key), and only a
// single token of printable ASCII passes.
func FuzzCheckAIKey(f *testing.F) {
	configs := []*deployconfig.Config{
		aiConfig(deployconfig.AIAnthropic, ""),
		aiConfig(deployconfig.AIOpenAI, "https://llm.acme.example/v1"),
	}
	samples := []string{"", "a b", "a\nb", "a\x00b", "é", strings.Repeat("a", maxAIKey+1), strings.Repeat("Ab3", 16),
		"sk-ant-ok", "sk-proj-ok", "plain-token"}
	known := map[verdict]bool{}
	for _, dc := range configs {
		for _, s := range samples {
			known[checkAIKey(dc, s)] = true
		}
	}
	for _, s := range samples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		for _, dc := range configs {
			v := checkAIKey(dc, value)
			if !known[v] {
				t.Fatalf("verdict %+v is not one of the fixed ones: it depends on the key's content", v)
			}
			if v.Status != statusFail && (value == "" || len(value) > maxAIKey || strings.ContainsFunc(value, func(r rune) bool { return r <= ' ' || r > '~' })) {
				t.Fatalf("%q got %s", value, v.Status)
			}
		}
	})
}

// FuzzCheckAgentIdentity: only the agent's own key shape, or nothing,
// passes, and the verdict is one of the fixed ones.
func FuzzCheckAgentIdentity(f *testing.F) {
	seed := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	samples := []string{"", seed, seed + "\n", strings.Repeat("Ab3", 16), "not a key"}
	known := map[verdict]bool{}
	for _, s := range samples {
		known[checkAgentIdentity(true, s)] = true
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		v := checkAgentIdentity(true, value)
		if !known[v] {
			t.Fatalf("verdict %+v is not one of the fixed ones", v)
		}
		if v.Status == statusPass && value != "" {
			if b, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimSpace(value)); err != nil || len(b) != 32 {
				t.Fatalf("%q passed", value)
			}
		}
	})
}

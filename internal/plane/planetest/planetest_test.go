package planetest_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/license"
	"github.com/tetherhq/tether/internal/license/issuer"
	"github.com/tetherhq/tether/internal/plane"
	"github.com/tetherhq/tether/internal/plane/planetest"
	"github.com/tetherhq/tether/internal/release/publish"
	"github.com/tetherhq/tether/internal/reqsign"
	"github.com/tetherhq/tether/internal/wire"
)

func post(t *testing.T, url string, body []byte, sign func(*http.Request)) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	if sign != nil {
		sign(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func TestAgentLifecycleAgainstTestPlane(t *testing.T) {
	p := planetest.Start(t)
	file, token := p.IssueLicense(t, license.License{ID: "lic_acme", Customer: "Acme", GraceSeconds: 86400,
		Channels: []string{"stable"}})
	if l, err := license.Verify(p.LicensePublicKey(), file); err != nil || l.ID != "lic_acme" {
		t.Fatalf("issued file does not verify: %v", err)
	}
	pub, priv, _ := ed25519.GenerateKey(nil)
	act, _ := json.Marshal(wire.ActivationRequest{ActivationToken: token,
		PublicKey: base64.RawURLEncoding.EncodeToString(pub), AgentVersion: "1.3.0"})
	status, out := post(t, p.URL+"/v1/activate", act, nil)
	if status != 200 {
		t.Fatalf("activate: %d %s", status, out)
	}
	ar, err := wire.Decode[wire.ActivationResponse](out)
	if err != nil || ar.LicenseID != "lic_acme" || ar.HeartbeatIntervalSeconds != 1 {
		t.Fatalf("activation response %s: %v", out, err)
	}
	now := time.Now()
	hb, _ := json.Marshal(wire.Heartbeat{SentAt: now, Versions: wire.Versions{Docsvc: "1.3.0", Agent: "1.3.0", Schema: 2},
		Channel: "stable", Components: []wire.ComponentHealth{{Name: "api", Status: "ok"}},
		AIProvider: wire.ProviderHealth{Kind: "local", Status: "ok"},
		License:    wire.LicenseStatus{State: "valid", ExpiresAt: now.Add(time.Hour)},
		Storage:    wire.StorageTotals{ObjectsBucket: "0", BytesBucket: "<1GB"}})
	status, out = post(t, p.URL+"/v1/heartbeat", hb, func(r *http.Request) {
		if err := reqsign.Sign(r, hb, ar.InstallID, priv, time.Now()); err != nil {
			t.Fatal(err)
		}
	})
	if status != 200 {
		t.Fatalf("heartbeat: %d %s", status, out)
	}
	status, out = p.Admin(t, "GET", "/v1/admin/installs", nil)
	var views []plane.InstallView
	if err := json.Unmarshal(out, &views); status != 200 || err != nil || len(views) != 1 ||
		views[0].Health != "ok" || views[0].Customer != "Acme" {
		t.Fatalf("installs: %d %s", status, out)
	}
	// the recorder saw the activation and the heartbeat
	if n := len(p.Received.Requests()); n < 2 {
		t.Fatalf("recorded %d requests", n)
	}
	// the token never reached the plane except in the activation request
	for _, r := range p.Received.Requests() {
		if r.Path != "/v1/activate" && strings.Contains(string(r.Body), token) {
			t.Fatalf("activation token sent to %s", r.Path)
		}
	}
	m := p.Publish(t, publish.PublishOptions{Version: "1.4.0", Channel: "stable", MinFrom: "1.3.0", SchemaMin: 1, SchemaMax: 3,
		Images: map[string]string{"api": "registry.example.com/docsvc@sha256:" + strings.Repeat("b", 64)}})
	if m.Version != "1.4.0" || len(p.RootJSON) == 0 {
		t.Fatalf("publish: %+v", m)
	}
}

func TestLicenseRegistrationIsVerified(t *testing.T) {
	p := planetest.Start(t)
	_, other, _ := ed25519.GenerateKey(nil)
	forged, _, err := issuer.Issue(other, license.License{ID: "lic_forged", Customer: "X",
		IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), Channels: []string{"stable"}})
	if err != nil {
		t.Fatal(err)
	}
	body, err := plane.RegistrationBody(forged)
	if err != nil {
		t.Fatal(err)
	}
	if status, out := p.Admin(t, "POST", "/v1/admin/licenses", body); status != 400 || !strings.Contains(string(out), "does not verify") {
		t.Fatalf("forged license: %d %s", status, out)
	}
	good, _, _ := issuer.Issue(p.LicenseKey, license.License{ID: "lic_ok", Customer: "Y",
		IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), Channels: []string{"stable"}})
	raw := plane.RegisterLicenseBody{License: good, ActivationTokenSHA256: strings.Repeat("0", 64)}
	if status, out := p.Admin(t, "POST", "/v1/admin/licenses", raw); status != 400 || !strings.Contains(string(out), "activation token") {
		t.Fatalf("license with token: %d %s", status, out)
	}
	body, _ = plane.RegistrationBody(good)
	if status, out := p.Admin(t, "POST", "/v1/admin/licenses", body); status != 201 {
		t.Fatalf("register: %d %s", status, out)
	}
	if status, _ := p.Admin(t, "POST", "/v1/admin/licenses", body); status != 409 {
		t.Fatalf("second register: %d", status)
	}
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tetherhq/tether/internal/browsertest"
	"github.com/tetherhq/tether/internal/releasestate"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

var required = []string{"--data-dir", "/d", "--plane-url", "https://plane.example", "--license", "/l",
	"--license-public-key", "/k", "--trusted-root", "/r"}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	c, err := ParseConfig(required, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Channel != "stable" || c.Heartbeat != 60*time.Second || c.DocsvcURL != "http://127.0.0.1:8080" || c.Telemetry || c.AutoApprove {
		t.Fatalf("defaults: %+v", c)
	}

	// Environment fills in; a flag wins over its variable.
	c, err = ParseConfig([]string{"--channel", "beta", "--telemetry"}, env(map[string]string{
		"TETHER_DATA_DIR": "/d", "TETHER_PLANE_URL": "http://127.0.0.1:9000", "TETHER_LICENSE_FILE": "/l",
		"TETHER_LICENSE_PUBLIC_KEY": "/k", "TETHER_TRUSTED_ROOT": "/r", "TETHER_CHANNEL": "stable",
		"TETHER_HEARTBEAT": "5s", "TETHER_AUTO_APPROVE_DIAGNOSTICS": "true",
		"TETHER_AGENT_IDENTITY_SECRET": "arn:aws:secretsmanager:us-east-1:1:secret:x-AbCdEf",
		"TETHER_EXCHANGE_BUCKET":       "tether-prod-data-exchange-1a2b3c",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Channel != "beta" || !c.Telemetry || !c.AutoApprove || c.Heartbeat != 5*time.Second || c.IdentitySecret == "" {
		t.Fatalf("env and flags: %+v", c)
	}
	// An older task definition's exchange bucket is not the agent's to
	// read any more (tether-exchange mirrors it), and not an error either.
	if r := c.Redacted(); r["identity-secret"] != "(set)" || r["plane-url"] != "http://127.0.0.1:9000" {
		t.Fatalf("redacted: %v", r)
	}
	if r := c.Redacted(); r["license"] != "/l" {
		t.Fatalf("a license file's path is not secret: %v", r)
	}

	// As ECS injects it, the license itself, with its one-time activation
	// token: the bundle's config.json must not carry it.
	const token = "Q2xhdWRlQWN0aXZhdGlvblRva2VuMDEyMzQ1Njc4OWFi"
	inline, err := ParseConfig(nil, env(map[string]string{
		"TETHER_DATA_DIR": "/d", "TETHER_PLANE_URL": "http://127.0.0.1:9000", "TETHER_LICENSE_PUBLIC_KEY": "/k", "TETHER_TRUSTED_ROOT": "/r",
		"TETHER_LICENSE": `{"payload":"e30","signature":"x","activation_token":"` + token + `"}`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if r := inline.Redacted(); r["license"] != "(inline)" || strings.Contains(fmt.Sprint(r), token) {
		t.Fatalf("the inline license reached the redacted config: %v", r)
	}

	bad := []struct {
		name string
		args []string
		want string // the flag named in the one line about it
	}{
		{"missing required", nil, "--data-dir (TETHER_DATA_DIR): is required"},
		{"plain http to a remote plane", []string{"--plane-url", "http://plane.example"}, "--plane-url"},
		{"plane url with credentials", []string{"--plane-url", "https://u:p@plane.example"}, "--plane-url"},
		{"bad channel", []string{"--channel", "Stable!"}, "--channel"},
		{"bad heartbeat", []string{"--heartbeat", "soon"}, "--heartbeat"},
		{"heartbeat too short", []string{"--heartbeat", "10ms"}, "--heartbeat"},
		{"bad bool", []string{"--telemetry=maybe"}, "--telemetry"},
		{"public status addr", []string{"--status-addr", "0.0.0.0:8091"}, "--status-addr"},
		{"docsvc url with credentials", []string{"--docsvc-url", "http://a:b@127.0.0.1:8080"}, "--docsvc-url"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig(append(append([]string{}, required...), tt.args...), env(nil))
			if tt.args == nil {
				_, err = ParseConfig(nil, env(nil))
			}
			if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a line about %s", err, tt.want)
			}
		})
	}
	// Every problem is reported at once, one line each.
	_, err = ParseConfig([]string{"--channel", "X", "--heartbeat", "0s"}, env(nil))
	if err == nil || strings.Count(err.Error(), "\n") < 6 {
		t.Fatalf("want one line per problem, got %v", err)
	}
}

func TestCheckStatusAddr(t *testing.T) {
	t.Parallel()
	for addr, ok := range map[string]bool{
		"127.0.0.1:8091": true, "localhost:8091": true, "[::1]:8091": true,
		"10.1.2.3:8091": true, "172.16.0.9:80": true, "192.168.1.1:80": true, "[fd12:3456::1]:80": true,
		"0.0.0.0:8091": false, "[::]:8091": false, ":8091": false, "8.8.8.8:80": false,
		"status.example.com:80": false, "127.0.0.1": false, "[2001:db8::1]:80": false,
	} {
		if err := CheckStatusAddr(addr); (err == nil) != ok {
			t.Errorf("CheckStatusAddr(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}

func TestStatusPage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.start()
	b.waitHeartbeats(1)
	waitFor(t, "a first release check", func() bool { return !r.Snapshot().ReleaseCheckedAt.IsZero() })

	// The agent refuses to serve its page on a wildcard address.
	bad := b.cfg
	bad.StatusAddr = "0.0.0.0:0"
	a2 := &Agent{cfg: bad, log: r.log}
	if _, err := a2.serveStatus(context.Background()); !errors.Is(err, ErrPublicStatusAddr) {
		t.Fatalf("serveStatus on 0.0.0.0 = %v, want ErrPublicStatusAddr", err)
	}

	srv := httptest.NewServer(r.statusHandler())
	defer srv.Close()
	ctx := browsertest.New(t)
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return v
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#install"))); err != nil {
		t.Fatal(err)
	}
	install, license, heartbeat, ledgerCount := text("#install"), text("#license"), text("#heartbeat"), text("#ledger")
	st := r.Snapshot()
	if install != st.InstallID || !strings.Contains(license, "lic_test: valid") || !strings.Contains(heartbeat, "sent") || ledgerCount == "0" {
		t.Fatalf("page shows install=%q license=%q heartbeat=%q ledger=%q", install, license, heartbeat, ledgerCount)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/status.json")); err != nil {
		t.Fatal(err)
	}
	js := text("body")
	if !strings.Contains(js, `"install_id":"`+st.InstallID+`"`) || !strings.Contains(js, `"plane_reachable":true`) {
		t.Fatalf("status.json: %s", js)
	}
}

func TestMain_Commands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var out strings.Builder
	if err := Main(ctx, []string{"version"}, env(nil), &out, io.Discard); err != nil || strings.TrimSpace(out.String()) != Version {
		t.Fatalf("version: %q %v", out.String(), err)
	}
	if err := Main(ctx, nil, env(nil), io.Discard, io.Discard); !errors.Is(err, ErrUsage) {
		t.Fatalf("no command: %v", err)
	}
	if err := Main(ctx, []string{"frobnicate"}, env(nil), io.Discard, io.Discard); !errors.Is(err, ErrUsage) {
		t.Fatalf("unknown command: %v", err)
	}
	if err := Main(ctx, []string{"run"}, env(nil), io.Discard, io.Discard); !errors.Is(err, ErrUsage) {
		t.Fatalf("run without config: %v", err)
	}
	// The TUF conformance client is its own command (cmd/tether-tuf-client),
	// not part of the agent.
	if err := Main(ctx, []string{"tuf-client", "--metadata-dir", t.TempDir(), "refresh"}, env(nil), io.Discard, io.Discard); !errors.Is(err, ErrUsage) {
		t.Fatalf("tuf-client: %v, want the unknown-command usage error", err)
	}
}

// The release record is the agent's one release setting: it only reads
// it. Settings of the automatic upgrades it once applied itself (now
// tether-upgrade's) are not flags any more.
func TestParseConfigReleaseRecord(t *testing.T) {
	record := []string{"--release-record", "/tether/acme-docs/state/releases"}
	if c, err := ParseConfig(append(append([]string{}, required...), record...), env(nil)); err != nil || c.ReleaseRecord != record[1] {
		t.Fatalf("record: %+v %v", c, err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--release-record", "tether/acme-docs/state/releases"}, "--release-record (TETHER_RELEASE_RECORD): must be"},
		{[]string{"--upgrade-window", "Sun 02:00-04:00"}, "flag provided but not defined: -upgrade-window"},
	} {
		_, err := ParseConfig(append(append([]string{}, required...), tt.args...), env(nil))
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.args, err, tt.want)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add("--heartbeat", "5s", "TETHER_PLANE_URL", "https://p.example")
	f.Add("--status-addr", "[::]:1", "TETHER_CHANNEL", "x")
	f.Add("--docsvc-url", "http://[::1", "TETHER_TELEMETRY", "yes")
	f.Add("--release-record", "/tether/x/state/releases", "TETHER_RELEASE_RECORD", "/tether/x/state/other")
	f.Fuzz(func(t *testing.T, flagName, flagValue, envName, envValue string) {
		args := append(append([]string{}, required...), flagName, flagValue)
		c, err := ParseConfig(args, env(map[string]string{envName: envValue}))
		if err != nil {
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("error does not match ErrUsage: %v", err)
			}
			return
		}
		if (c.ReleaseRecord != "" && !releasestate.RecordRE.MatchString(c.ReleaseRecord)) || c.Heartbeat < time.Second || c.DataDir == "" || (c.StatusAddr != "" && CheckStatusAddr(c.StatusAddr) != nil) {
			t.Fatalf("accepted an invalid config: %+v", c)
		}
	})
}

package wire_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/wire"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// diag is a valid diagnostic request changed by edit.
func diag(edit func(*wire.DiagnosticRequest)) *wire.DiagnosticRequest {
	d := wire.DiagnosticRequest{ID: "dia_1", Reason: "Queue stuck since Tuesday; please send worker logs.",
		RequestedAt: t0, RequestedBy: "ana@vendor.example", RequestedByKind: "staff"}
	edit(&d)
	return &d
}

func validHeartbeat() wire.Heartbeat {
	return wire.Heartbeat{
		SentAt:   t0,
		Versions: wire.Versions{Docsvc: "1.4.2", Agent: "1.4.2-rc.1", Schema: 12},
		Channel:  "stable",
		Components: []wire.ComponentHealth{
			{Name: "api", Status: "ok"}, {Name: "worker", Status: "degraded"}, {Name: "database", Status: "ok"},
		},
		Queue:      wire.QueueStats{Depth: 3, InFlight: 1, DeadLetter: 0, OldestAgeSeconds: 42},
		ErrorRate:  0.01,
		AIProvider: wire.ProviderHealth{Kind: "bedrock", Status: "ok"},
		License:    wire.LicenseStatus{State: "valid", ExpiresAt: t0.AddDate(1, 0, 0)},
		Storage:    wire.StorageTotals{ObjectsBucket: "100-9999", BytesBucket: "1-10GB"},
		LedgerHead: wire.LedgerHead{Count: 41, SHA256: strings.Repeat("3f", 32)},
		Release:    "1.4.2",
		LastUpgrade: wire.UpgradeAttempt{Version: "1.5.0", Action: "upgrade", Outcome: "rolled-back",
			At: t0.Add(-time.Hour), Reason: "alarm"},
		Warnings: []string{"certificate-expiry", "database-storage"},
	}
}

func validActivation() wire.ActivationRequest {
	return wire.ActivationRequest{
		ActivationToken: "tok_0123456789abcdefABCDEF",
		PublicKey:       base64.RawURLEncoding.EncodeToString(make([]byte, 32)),
		AgentVersion:    "1.0.0",
	}
}

func validRekey() wire.RekeyRequest {
	return wire.RekeyRequest{
		PublicKey: base64.RawURLEncoding.EncodeToString(make([]byte, 32)),
		Proof:     base64.RawURLEncoding.EncodeToString(make([]byte, 64)),
	}
}

func validTelemetry() wire.Telemetry {
	return wire.Telemetry{Day: "2026-11-27", DocumentsProcessed: 120, DocumentsFailed: 2, Pages: 900, BytesBucket: "<1GB"}
}

func TestHeartbeatValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		mutate    func(h *wire.Heartbeat)
		wantField string // "" means valid
	}{
		{"valid", func(h *wire.Heartbeat) {}, ""},
		{"missing license may omit expiry", func(h *wire.Heartbeat) { h.License = wire.LicenseStatus{State: "missing"} }, ""},
		{"no components", func(h *wire.Heartbeat) { h.Components = nil }, ""},
		{"error rate bounds inclusive", func(h *wire.Heartbeat) { h.ErrorRate = 1 }, ""},
		{"zero sent_at", func(h *wire.Heartbeat) { h.SentAt = time.Time{} }, "sent_at"},
		{"v-prefixed version", func(h *wire.Heartbeat) { h.Versions.Docsvc = "v1.4.2" }, "versions.docsvc"},
		{"free text version", func(h *wire.Heartbeat) { h.Versions.Agent = "customer acme" }, "versions.agent"},
		{"long version", func(h *wire.Heartbeat) { h.Versions.Agent = "1.0.0-" + strings.Repeat("a", 60) }, "versions.agent"},
		{"negative schema", func(h *wire.Heartbeat) { h.Versions.Schema = -1 }, "versions.schema"},
		{"upper-case channel", func(h *wire.Heartbeat) { h.Channel = "Stable" }, "channel"},
		{"empty channel", func(h *wire.Heartbeat) { h.Channel = "" }, "channel"},
		{"long channel", func(h *wire.Heartbeat) { h.Channel = strings.Repeat("a", 33) }, "channel"},
		{"unknown component", func(h *wire.Heartbeat) { h.Components[1].Name = "invoices" }, "components[1].name"},
		{"unknown status", func(h *wire.Heartbeat) { h.Components[2].Status = "fine" }, "components[2].status"},
		{"repeated component", func(h *wire.Heartbeat) { h.Components[2].Name = "api" }, "components[2].name"},
		{"too many components", func(h *wire.Heartbeat) {
			h.Components = make([]wire.ComponentHealth, 7)
		}, "components"},
		{"negative depth", func(h *wire.Heartbeat) { h.Queue.Depth = -1 }, "queue.depth"},
		{"huge dead letter", func(h *wire.Heartbeat) { h.Queue.DeadLetter = math.MaxInt64 }, "queue.dead_letter"},
		{"negative age", func(h *wire.Heartbeat) { h.Queue.OldestAgeSeconds = -5 }, "queue.oldest_age_seconds"},
		{"error rate over 1", func(h *wire.Heartbeat) { h.ErrorRate = 1.0001 }, "error_rate"},
		{"error rate NaN", func(h *wire.Heartbeat) { h.ErrorRate = math.NaN() }, "error_rate"},
		{"unknown provider", func(h *wire.Heartbeat) { h.AIProvider.Kind = "https://llm.internal" }, "ai_provider.kind"},
		{"provider unknown status", func(h *wire.Heartbeat) { h.AIProvider.Status = "unknown" }, "ai_provider.status"},
		{"license state", func(h *wire.Heartbeat) { h.License.State = "VALID" }, "license.state"},
		{"valid license needs expiry", func(h *wire.Heartbeat) { h.License.ExpiresAt = time.Time{} }, "license.expires_at"},
		{"exact object count", func(h *wire.Heartbeat) { h.Storage.ObjectsBucket = "4711" }, "storage.objects_bucket"},
		{"exact byte count", func(h *wire.Heartbeat) { h.Storage.BytesBucket = "123456789" }, "storage.bytes_bucket"},
		{"old agent: no ledger head", func(h *wire.Heartbeat) { h.LedgerHead = wire.LedgerHead{} }, ""},
		{"empty ledger", func(h *wire.Heartbeat) { h.LedgerHead = wire.LedgerHead{SHA256: wire.LedgerGenesis} }, ""},
		{"head count without hash", func(h *wire.Heartbeat) { h.LedgerHead.SHA256 = "" }, "ledger_head"},
		{"head hash without count", func(h *wire.Heartbeat) { h.LedgerHead.Count = 0 }, "ledger_head"},
		{"genesis hash at a count", func(h *wire.Heartbeat) { h.LedgerHead.SHA256 = wire.LedgerGenesis }, "ledger_head"},
		{"negative head count", func(h *wire.Heartbeat) { h.LedgerHead.Count = -1 }, "ledger_head"},
		{"head count over 2^53", func(h *wire.Heartbeat) { h.LedgerHead.Count = 1<<53 + 1 }, "ledger_head"},
		{"upper-case head hash", func(h *wire.Heartbeat) { h.LedgerHead.SHA256 = strings.Repeat("3F", 32) }, "ledger_head"},
		{"short head hash", func(h *wire.Heartbeat) { h.LedgerHead.SHA256 = strings.Repeat("3f", 31) }, "ledger_head"},
		{"no release recorded", func(h *wire.Heartbeat) { h.Release, h.LastUpgrade = "", wire.UpgradeAttempt{} }, ""},
		{"succeeded without reason", func(h *wire.Heartbeat) { h.LastUpgrade.Outcome, h.LastUpgrade.Reason = "succeeded", "" }, ""},
		{"staged", func(h *wire.Heartbeat) { h.LastUpgrade.Outcome, h.LastUpgrade.Reason = "staged", "" }, ""},
		{"attempt of an unknown version", func(h *wire.Heartbeat) { h.LastUpgrade.Version = "" }, ""},
		{"free text release", func(h *wire.Heartbeat) { h.Release = "acme build" }, "release"},
		{"unknown action", func(h *wire.Heartbeat) { h.LastUpgrade.Action = "downgrade" }, "last_upgrade.action"},
		{"unknown outcome", func(h *wire.Heartbeat) { h.LastUpgrade.Outcome = "ok" }, "last_upgrade.outcome"},
		{"attempt without time", func(h *wire.Heartbeat) { h.LastUpgrade.At = time.Time{} }, "last_upgrade.at"},
		{"error text as reason", func(h *wire.Heartbeat) { h.LastUpgrade.Reason = "AccessDenied on arn:aws:iam::1:role/x" }, "last_upgrade.reason"},
		{"rolled back without reason", func(h *wire.Heartbeat) { h.LastUpgrade.Reason = "" }, "last_upgrade.reason"},
		{"reason on success", func(h *wire.Heartbeat) { h.LastUpgrade.Outcome = "succeeded" }, "last_upgrade.reason"},
		{"no warnings", func(h *wire.Heartbeat) { h.Warnings = nil }, ""},
		{"every warning", func(h *wire.Heartbeat) { h.Warnings = wire.WarningNames() }, ""},
		{"unknown warning", func(h *wire.Heartbeat) { h.Warnings = []string{"tether-acme-docs-queue-age"} }, "warnings"},
		{"warning twice", func(h *wire.Heartbeat) { h.Warnings = []string{"queue-age", "queue-age"} }, "warnings"},
		{"warnings unsorted", func(h *wire.Heartbeat) { h.Warnings = []string{"queue-age", "documents-size"} }, "warnings"},
		{"words in head hash", func(h *wire.Heartbeat) { h.LedgerHead.SHA256 = "acme-invoice" + strings.Repeat("0", 52) }, "ledger_head"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := validHeartbeat()
			tt.mutate(&h)
			err := h.Validate()
			checkFieldErr(t, err, "heartbeat", tt.wantField)
		})
	}
}

func checkFieldErr(t *testing.T, err error, typ, wantField string) {
	t.Helper()
	if wantField == "" {
		if err != nil {
			t.Fatalf("Validate() = %v, want nil", err)
		}
		return
	}
	var fe *wire.FieldError
	if !errors.As(err, &fe) || !errors.Is(err, wire.ErrInvalid) {
		t.Fatalf("Validate() = %v, want a *FieldError matching ErrInvalid", err)
	}
	if fe.Type != typ || fe.Field != wantField {
		t.Fatalf("Validate() names %s.%s, want %s.%s (%v)", fe.Type, fe.Field, typ, wantField, err)
	}
}

func TestOtherTypesValidate(t *testing.T) {
	t.Parallel()
	key := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	tests := []struct {
		name      string
		v         interface{ Validate() error }
		typ       string
		wantField string
	}{
		{"activation ok", ptr(validActivation()), "activation_request", ""},
		{"short token", &wire.ActivationRequest{ActivationToken: "abc", PublicKey: key, AgentVersion: "1.0.0"}, "activation_request", "activation_token"},
		{"padded key", &wire.ActivationRequest{ActivationToken: "tok_0123456789abcdef", PublicKey: base64.URLEncoding.EncodeToString(make([]byte, 32)), AgentVersion: "1.0.0"}, "activation_request", "public_key"},
		{"short key", &wire.ActivationRequest{ActivationToken: "tok_0123456789abcdef", PublicKey: "AAAA", AgentVersion: "1.0.0"}, "activation_request", "public_key"},
		{"bad agent version", &wire.ActivationRequest{ActivationToken: "tok_0123456789abcdef", PublicKey: key, AgentVersion: "1.0"}, "activation_request", "agent_version"},
		{"rekey ok", ptr(validRekey()), "rekey_request", ""},
		{"rekey padded key", &wire.RekeyRequest{PublicKey: base64.URLEncoding.EncodeToString(make([]byte, 32)), Proof: validRekey().Proof}, "rekey_request", "public_key"},
		{"rekey short proof", &wire.RekeyRequest{PublicKey: key, Proof: base64.RawURLEncoding.EncodeToString(make([]byte, 63))}, "rekey_request", "proof"},
		{"rekey padded proof", &wire.RekeyRequest{PublicKey: key, Proof: base64.URLEncoding.EncodeToString(make([]byte, 64))}, "rekey_request", "proof"},
		{"activation response ok", &wire.ActivationResponse{InstallID: "ins_1", HeartbeatIntervalSeconds: 60, LicenseID: "lic_1"}, "activation_response", ""},
		{"zero interval", &wire.ActivationResponse{InstallID: "ins_1", LicenseID: "lic_1"}, "activation_response", "heartbeat_interval_seconds"},
		{"slash in install id", &wire.ActivationResponse{InstallID: "ins/1", HeartbeatIntervalSeconds: 60, LicenseID: "lic_1"}, "activation_response", "install_id"},
		{"heartbeat response ok", &wire.HeartbeatResponse{NextIntervalSeconds: 60, PendingDiagnostics: 1}, "heartbeat_response", ""},
		{"negative pending", &wire.HeartbeatResponse{NextIntervalSeconds: 60, PendingDiagnostics: -1}, "heartbeat_response", "pending_diagnostics"},
		{"telemetry ok", ptr(validTelemetry()), "telemetry", ""},
		{"impossible day", &wire.Telemetry{Day: "2026-02-30", BytesBucket: "<1GB"}, "telemetry", "day"},
		{"timestamp as day", &wire.Telemetry{Day: "2026-11-27T00:00:00Z", BytesBucket: "<1GB"}, "telemetry", "day"},
		{"negative pages", &wire.Telemetry{Day: "2026-11-27", Pages: -1, BytesBucket: "<1GB"}, "telemetry", "pages"},
		{"telemetry exact bytes", &wire.Telemetry{Day: "2026-11-27", BytesBucket: "5368709120"}, "telemetry", "bytes_bucket"},
		{"diagnostic ok", diag(func(d *wire.DiagnosticRequest) {}), "diagnostic_request", ""},
		{"empty reason", diag(func(d *wire.DiagnosticRequest) { d.Reason = "" }), "diagnostic_request", "reason"},
		{"newline in reason", diag(func(d *wire.DiagnosticRequest) { d.Reason = "a\nb" }), "diagnostic_request", "reason"},
		{"escape in reason", diag(func(d *wire.DiagnosticRequest) { d.Reason = "a\x1b[2Jb" }), "diagnostic_request", "reason"},
		{"long reason", diag(func(d *wire.DiagnosticRequest) { d.Reason = strings.Repeat("x", 1001) }), "diagnostic_request", "reason"},
		{"kind without a requester", diag(func(d *wire.DiagnosticRequest) { d.RequestedBy = "" }), "diagnostic_request", "requested_by"},
		{"from a plane before requesters", diag(func(d *wire.DiagnosticRequest) { d.RequestedBy, d.RequestedByKind = "", "" }), "diagnostic_request", ""},
		{"escape in requester", diag(func(d *wire.DiagnosticRequest) { d.RequestedBy = "eve\x1b[2J" }), "diagnostic_request", "requested_by"},
		{"long requester", diag(func(d *wire.DiagnosticRequest) { d.RequestedBy = strings.Repeat("x", 201) }), "diagnostic_request", "requested_by"},
		{"unknown requester kind", diag(func(d *wire.DiagnosticRequest) { d.RequestedByKind = "robot" }), "diagnostic_request", "requested_by_kind"},
		{"no requester kind", diag(func(d *wire.DiagnosticRequest) { d.RequestedByKind = "" }), "diagnostic_request", "requested_by_kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkFieldErr(t, tt.v.Validate(), tt.typ, tt.wantField) })
	}
}

func ptr[T any](v T) *T { return &v }

func TestDecodeHeartbeatRoundTrip(t *testing.T) {
	t.Parallel()
	h := validHeartbeat()
	data, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := wire.Decode[wire.Heartbeat](data)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !reflect.DeepEqual(got, h) {
		t.Fatalf("round trip changed the heartbeat:\n got %+v\nwant %+v", got, h)
	}
	// The wire form is snake_case; spot-check the names the plane stores.
	for _, k := range []string{`"sent_at"`, `"oldest_age_seconds"`, `"ai_provider"`, `"objects_bucket"`, `"ledger_head":{"count":41,"sha256":"3f3f`} {
		if !bytes.Contains(data, []byte(k)) {
			t.Errorf("encoded heartbeat lacks %s: %s", k, data)
		}
	}
}

// Agents from before ledger heads send none; during the rollout the plane
// accepts both, and a heartbeat without one says so by leaving the key out.
func TestHeartbeatLedgerHeadIsOptional(t *testing.T) {
	t.Parallel()
	h := validHeartbeat()
	h.LedgerHead = wire.LedgerHead{}
	data, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("ledger_head")) {
		t.Fatalf("a heartbeat without a head encodes one: %s", data)
	}
	got, err := wire.Decode[wire.Heartbeat](data)
	if err != nil {
		t.Fatalf("an old agent's heartbeat is refused: %v", err)
	}
	if got.LedgerHead != (wire.LedgerHead{}) {
		t.Fatalf("decoded head = %+v, want none", got.LedgerHead)
	}
	// An empty ledger is a head, not the absence of one.
	h.LedgerHead = wire.LedgerHead{SHA256: wire.LedgerGenesis}
	data, _ = json.Marshal(h)
	if !bytes.Contains(data, []byte(`"ledger_head":{"count":0,"sha256":"0000`)) {
		t.Fatalf("an empty ledger's head is left out: %s", data)
	}
	if got, err := wire.Decode[wire.Heartbeat](data); err != nil || got.LedgerHead == (wire.LedgerHead{}) {
		t.Fatalf("empty ledger head: %+v, %v", got, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	good, _ := json.Marshal(validHeartbeat())
	secret := "ACME-Q3-invoice.pdf"
	withField := bytes.Replace(good, []byte(`{"sent_at"`), []byte(`{"`+secret+`":"x","sent_at"`), 1)
	tests := []struct {
		name    string
		data    []byte
		wantErr error
	}{
		{"unknown field", withField, wire.ErrMalformed},
		{"unknown nested field", bytes.Replace(good, []byte(`"depth"`), []byte(`"note":"`+secret+`","depth"`), 1), wire.ErrMalformed},
		{"trailing value", append(append([]byte{}, good...), []byte(` {}`)...), wire.ErrMalformed},
		{"trailing garbage", append(append([]byte{}, good...), 'x'), wire.ErrMalformed},
		{"empty", nil, wire.ErrMalformed},
		{"not an object", []byte(`"` + secret + `"`), wire.ErrMalformed},
		{"wrong type", bytes.Replace(good, []byte(`"depth":3`), []byte(`"depth":"`+secret+`"`), 1), wire.ErrMalformed},
		{"syntax", []byte(`{"sent_at":`), wire.ErrMalformed},
		{"over the cap", append(append([]byte{}, good...), bytes.Repeat([]byte(" "), wire.MaxPayload)...), wire.ErrMalformed},
		{"valid JSON, invalid value", bytes.Replace(good, []byte(`"stable"`), []byte(`"`+secret+`"`), 1), wire.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wire.Decode[wire.Heartbeat](tt.data)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Decode = %v, want %v", err, tt.wantErr)
			}
			// Errors end up in plane logs: they must never echo what was sent.
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "invoice") {
				t.Fatalf("error echoes input: %v", err)
			}
		})
	}
}

func TestDecodeEachType(t *testing.T) {
	t.Parallel()
	marshal := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	diags := wire.DiagnosticRequests{*diag(func(d *wire.DiagnosticRequest) {})}
	tests := []struct {
		name   string
		data   []byte
		decode func([]byte) (any, error)
	}{
		{"activation request", marshal(validActivation()), func(b []byte) (any, error) { return wire.Decode[wire.ActivationRequest](b) }},
		{"rekey request", marshal(validRekey()), func(b []byte) (any, error) { return wire.Decode[wire.RekeyRequest](b) }},
		{"activation response", marshal(wire.ActivationResponse{InstallID: "ins_1", HeartbeatIntervalSeconds: 60, LicenseID: "lic_1"}), func(b []byte) (any, error) { return wire.Decode[wire.ActivationResponse](b) }},
		{"heartbeat response", marshal(wire.HeartbeatResponse{NextIntervalSeconds: 30}), func(b []byte) (any, error) { return wire.Decode[wire.HeartbeatResponse](b) }},
		{"telemetry", marshal(validTelemetry()), func(b []byte) (any, error) { return wire.Decode[wire.Telemetry](b) }},
		{"diagnostic requests", marshal(diags), func(b []byte) (any, error) { return wire.Decode[wire.DiagnosticRequests](b) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.decode(tt.data); err != nil {
				t.Fatalf("valid payload: %v", err)
			}
			extra := append([]byte(`{"extra":1,`), tt.data[1:]...)
			if tt.data[0] == '[' {
				extra = []byte(`[{"extra":1,` + string(tt.data[2:]))
			}
			if _, err := tt.decode(extra); !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("unknown field: err = %v, want ErrMalformed", err)
			}
			if _, err := tt.decode(append(append([]byte{}, tt.data...), tt.data...)); !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("two values: err = %v, want ErrMalformed", err)
			}
		})
	}
	t.Run("invalid entry in list names its index", func(t *testing.T) {
		bad := append(diags, *diag(func(d *wire.DiagnosticRequest) { d.ID = "dia 2" }))
		_, err := wire.Decode[wire.DiagnosticRequests](marshal(bad))
		var fe *wire.FieldError
		if !errors.As(err, &fe) || fe.Field != "[1].id" {
			t.Fatalf("err = %v, want field [1].id", err)
		}
	})
}

func TestStorageBucket(t *testing.T) {
	t.Parallel()
	const gb = 1_000_000_000
	tests := []struct {
		objects, bytes int64
		wantO, wantB   string
	}{
		{0, 0, "0", "<1GB"},
		{-4, -1, "0", "<1GB"},
		{1, gb - 1, "1-99", "<1GB"},
		{99, gb, "1-99", "1-10GB"},
		{100, 10*gb - 1, "100-9999", "1-10GB"},
		{9999, 10 * gb, "100-9999", "10-100GB"},
		{10_000, 100 * gb, "10000-999999", "100GB-1TB"},
		{999_999, 1000*gb - 1, "10000-999999", "100GB-1TB"},
		{1_000_000, 1000 * gb, "1000000-99999999", "1-10TB"},
		{99_999_999, 10_000*gb - 1, "1000000-99999999", "1-10TB"},
		{100_000_000, 10_000 * gb, "100000000+", "10TB+"},
		{math.MaxInt64, math.MaxInt64, "100000000+", "10TB+"},
	}
	for _, tt := range tests {
		o, b := wire.StorageBucket(tt.objects, tt.bytes)
		if o != tt.wantO || b != tt.wantB {
			t.Errorf("StorageBucket(%d, %d) = %q, %q; want %q, %q", tt.objects, tt.bytes, o, b, tt.wantO, tt.wantB)
		}
		// Every bucket StorageBucket produces must pass validation.
		h := validHeartbeat()
		h.Storage = wire.StorageTotals{ObjectsBucket: o, BytesBucket: b}
		if err := h.Validate(); err != nil {
			t.Errorf("bucket %q/%q fails validation: %v", o, b, err)
		}
	}
}

// stringFields is the allow-list of every string field the agent can send,
// and the rule that constrains it. TestAgentSentTypesHaveNoFreeForm fails on
// any string field missing from this list, and proves each rule by showing
// Validate rejects document-like text in that field.
var stringFields = map[string]string{
	"ActivationRequest.ActivationToken": "base64url token, 16-128 chars",
	"ActivationRequest.PublicKey":       "base64url of exactly 32 bytes",
	"RekeyRequest.PublicKey":            "base64url of exactly 32 bytes",
	"RekeyRequest.Proof":                "base64url of exactly 64 bytes",
	"ActivationRequest.AgentVersion":    "semver, at most 64 bytes",
	"Heartbeat.Versions.Docsvc":         "semver, at most 64 bytes",
	"Heartbeat.Versions.Agent":          "semver, at most 64 bytes",
	"Heartbeat.Channel":                 "[a-z0-9-]{1,32}",
	"Heartbeat.AvailableRelease":        "semver, at most 64 bytes, or empty",
	"Heartbeat.Components[].Name":       "enum componentNames",
	"Heartbeat.Components[].Status":     "enum componentStatuses",
	"Heartbeat.AIProvider.Kind":         "enum providerKinds",
	"Heartbeat.AIProvider.Status":       "enum providerStatuses",
	"Heartbeat.License.State":           "enum licenseStates",
	"Heartbeat.Storage.ObjectsBucket":   "enum objectBuckets",
	"Heartbeat.Storage.BytesBucket":     "enum byteBuckets",
	"Heartbeat.LedgerHead.SHA256":       "[0-9a-f]{64}",
	"Heartbeat.Release":                 "semver, at most 64 bytes, or empty",
	"Heartbeat.LastUpgrade.Version":     "semver, at most 64 bytes, or empty",
	"Heartbeat.LastUpgrade.Action":      "enum UpgradeActions",
	"Heartbeat.LastUpgrade.Outcome":     "enum UpgradeOutcomes",
	"Heartbeat.LastUpgrade.Reason":      "enum UpgradeReasons",
	"Heartbeat.Warnings[]":              "enum WarningNames, sorted, each once",
	"Telemetry.Day":                     "date YYYY-MM-DD",
	"Telemetry.BytesBucket":             "enum byteBuckets",
}

// agentSent lists every type the agent sends, as a valid sample.
func agentSent() []interface{ Validate() error } {
	return []interface{ Validate() error }{ptr(validActivation()), ptr(validRekey()), ptr(validHeartbeat()), ptr(validTelemetry())}
}

func TestAgentSentTypesHaveNoFreeForm(t *testing.T) {
	t.Parallel()
	timeType := reflect.TypeOf(time.Time{})
	seen := map[string]bool{}
	var walk func(typ reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		switch {
		case typ == timeType:
			return
		case typ.Kind() == reflect.String:
			if _, ok := stringFields[path]; !ok {
				t.Errorf("%s is a string field not on the allow-list: add a validator and list it in stringFields", path)
			}
			seen[path] = true
		case typ.Kind() == reflect.Struct:
			for i := 0; i < typ.NumField(); i++ {
				f := typ.Field(i)
				if !f.IsExported() {
					t.Errorf("%s.%s is unexported: it cannot be validated from the wire", path, f.Name)
					continue
				}
				walk(f.Type, path+"."+f.Name)
			}
		case typ.Kind() == reflect.Slice && typ.Elem().Kind() == reflect.Uint8:
			t.Errorf("%s is raw bytes: free-form content could ride in it", path)
		case typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array:
			walk(typ.Elem(), path+"[]")
		case typ.Kind() == reflect.Bool, typ.Kind() >= reflect.Int && typ.Kind() <= reflect.Uint64, typ.Kind() == reflect.Float64:
			return
		default: // map, interface, pointer, chan, func, complex, float32, uintptr
			t.Errorf("%s has kind %s, which the wire types must not use", path, typ.Kind())
		}
	}
	for _, v := range agentSent() {
		typ := reflect.TypeOf(v).Elem()
		walk(typ, typ.Name())
	}
	for path := range stringFields {
		if !seen[path] {
			t.Errorf("allow-list entry %s names no field: remove it", path)
		}
	}

	// Each allowed field's validator must reject content: put document-like
	// text (and a base64 blob of it) in the field of a valid sample and
	// expect Validate to fail.
	canaries := []string{
		"Invoice 4411 for ACME Corp, total $12,400",
		"q3-invoice-acme.pdf",
		base64.StdEncoding.EncodeToString([]byte("Invoice 4411 for ACME Corp, total $12,400; confidential")),
	}
	for _, v := range agentSent() {
		typ := reflect.TypeOf(v).Elem()
		if err := v.Validate(); err != nil {
			t.Fatalf("sample %s is not valid: %v", typ.Name(), err)
		}
		for path := range stringFields {
			rest, ok := strings.CutPrefix(path, typ.Name()+".")
			if !ok {
				continue
			}
			for _, canary := range canaries {
				fresh := reflect.New(typ)
				fresh.Elem().Set(reflect.ValueOf(v).Elem())
				// Deep-copy slices so one field's canary does not leak into the next case.
				sample := fresh.Interface().(interface{ Validate() error })
				if h, ok := sample.(*wire.Heartbeat); ok {
					h.Components = append([]wire.ComponentHealth(nil), h.Components...)
				}
				if n := setString(fresh.Elem(), strings.Split(rest, "."), canary); n == 0 {
					t.Fatalf("%s: sample has no such value to set", path)
				}
				if err := sample.Validate(); !errors.Is(err, wire.ErrInvalid) {
					t.Errorf("%s accepts free text %q (Validate = %v)", path, canary, err)
				}
			}
		}
	}
}

// setString sets the string field at path (with "[]" meaning every element)
// and returns how many values it set.
func setString(v reflect.Value, path []string, s string) int {
	if len(path) == 0 {
		v.SetString(s)
		return 1
	}
	name, each := strings.CutSuffix(path[0], "[]")
	f := v.FieldByName(name)
	if !each {
		return setString(f, path[1:], s)
	}
	n := 0
	for i := 0; i < f.Len(); i++ {
		n += setString(f.Index(i), path[1:], s)
	}
	return n
}

var snake = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

func TestEveryFieldHasSnakeCaseTag(t *testing.T) {
	t.Parallel()
	types := []any{
		wire.ActivationRequest{}, wire.ActivationResponse{}, wire.RekeyRequest{}, wire.Heartbeat{}, wire.Versions{},
		wire.ComponentHealth{}, wire.QueueStats{}, wire.ProviderHealth{}, wire.LicenseStatus{},
		wire.StorageTotals{}, wire.LedgerHead{}, wire.UpgradeAttempt{}, wire.HeartbeatResponse{}, wire.Telemetry{}, wire.DiagnosticRequest{},
	}
	for _, v := range types {
		typ := reflect.TypeOf(v)
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !snake.MatchString(tag) {
				t.Errorf("%s.%s has json tag %q, want an explicit snake_case name", typ.Name(), f.Name, tag)
			}
		}
	}
}

// fuzzRoundTrip is the property every Decode fuzz target checks: whatever is
// accepted is valid, and survives re-encoding unchanged.
func fuzzRoundTrip[T any](t *testing.T, data []byte, decode func([]byte) (T, error)) {
	v, err := decode(data)
	if err != nil {
		if !errors.Is(err, wire.ErrInvalid) && !errors.Is(err, wire.ErrMalformed) {
			t.Fatalf("error matches neither ErrInvalid nor ErrMalformed: %v", err)
		}
		return
	}
	again, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("re-encode accepted value: %v", err)
	}
	w, err := decode(again)
	if err != nil {
		t.Fatalf("re-decode of accepted value failed: %v", err)
	}
	if !reflect.DeepEqual(v, w) {
		t.Fatalf("round trip changed value: %+v vs %+v", v, w)
	}
}

func FuzzDecodeHeartbeat(f *testing.F) {
	good, _ := json.Marshal(validHeartbeat())
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"channel":"stable","components":[{"name":"api","status":"ok"}]}`))
	f.Add(bytes.Replace(good, []byte(`"ok"`), []byte(`"OK"`), 1))
	f.Add(bytes.Replace(good, []byte(`"channel":`), []byte(`"Channel":`), 1))
	f.Add(bytes.Replace(good, []byte(`"channel":"stable"`), []byte(`"channel":"stable","channel":"beta"`), 1))
	f.Add(bytes.Replace(good, []byte(`"count":41`), []byte(`"count":0`), 1))
	f.Add(bytes.Replace(good, []byte(`"ledger_head":{`), []byte(`"ledger_head":null,"x":{`), 1))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip(t, data, wire.Decode[wire.Heartbeat]) })
}

func FuzzDecodeActivationRequest(f *testing.F) {
	good, _ := json.Marshal(validActivation())
	f.Add(good)
	f.Add([]byte(`{"activation_token":"","public_key":"","agent_version":""}`))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip(t, data, wire.Decode[wire.ActivationRequest]) })
}

func FuzzDecodeRekeyRequest(f *testing.F) {
	good, _ := json.Marshal(validRekey())
	f.Add(good)
	f.Add([]byte(`{"public_key":"","proof":""}`))
	f.Add(bytes.Replace(good, []byte(`"proof":`), []byte(`"Proof":`), 1))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip(t, data, wire.Decode[wire.RekeyRequest]) })
}

func FuzzDecodeTelemetry(f *testing.F) {
	good, _ := json.Marshal(validTelemetry())
	f.Add(good)
	f.Add([]byte(`{"day":"2026-13-01"}`))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip(t, data, wire.Decode[wire.Telemetry]) })
}

func FuzzDecodeDiagnosticRequests(f *testing.F) {
	f.Add([]byte(`[{"id":"dia_1","reason":"send logs","requested_at":"2026-11-28T12:00:00Z","requested_by":"ana@vendor.example","requested_by_kind":"staff"}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ds, err := wire.Decode[wire.DiagnosticRequests](data)
		if err != nil {
			return
		}
		if err := ds.Validate(); err != nil {
			t.Fatalf("accepted list is invalid: %v", err)
		}
	})
}

func FuzzDecodeResponses(f *testing.F) {
	f.Add([]byte(`{"install_id":"ins_1","heartbeat_interval_seconds":60,"license_id":"lic_1"}`))
	f.Add([]byte(`{"next_interval_seconds":60,"pending_diagnostics":0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRoundTrip(t, data, wire.Decode[wire.ActivationResponse])
		fuzzRoundTrip(t, data, wire.Decode[wire.HeartbeatResponse])
	})
}

// A payload means one thing to every reader: a key given twice, a key in
// another case (encoding/json would match "Channel" to "channel"), or a
// version carrying words is refused, and the error does not quote it.
func TestDecodeIsStrict(t *testing.T) {
	t.Parallel()
	good, err := json.Marshal(validHeartbeat())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wire.Decode[wire.Heartbeat](good); err != nil {
		t.Fatalf("the canonical heartbeat is refused: %v", err)
	}
	replace := func(old, new string) []byte {
		if !bytes.Contains(good, []byte(old)) {
			t.Fatalf("%s not in %s", old, good)
		}
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"duplicate key", replace(`"channel":"stable"`, `"channel":"stable","channel":"beta"`), "a key appears twice"},
		{"duplicate nested key", replace(`"depth":3`, `"depth":3,"depth":4`), "a key appears twice"},
		{"mis-cased key", replace(`"channel":`, `"Channel":`), "unknown field"},
		{"mis-cased nested key", replace(`"dead_letter":`, `"Dead_Letter":`), "unknown field"},
		{"invalid UTF-8", replace(`"stable"`, "\"st\xffable\""), "invalid JSON or UTF-8 at byte"},
		{"words in a pre-release", replace(`"docsvc":"1.4.2"`, `"docsvc":"9.9.9-confidentialmergerplan"`), "versions.docsvc"},
		{"build metadata", replace(`"docsvc":"1.4.2"`, `"docsvc":"1.4.2+secretword"`), "versions.docsvc"},
		{"wrong type", replace(`"depth":3`, `"depth":"3"`), "wrong JSON type or value for field queue.depth"},
		{"trailing data", append(append([]byte{}, good...), []byte(` {}`)...), "invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wire.Decode[wire.Heartbeat](tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode: %v; want an error containing %q", err, tt.want)
			}
			for _, leak := range []string{"beta", "confidentialmergerplan", "secretword", "Dead_Letter", "Channel"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %q quotes the payload (%q)", err, leak)
				}
			}
		})
	}
}

func TestWireVersions(t *testing.T) {
	t.Parallel()
	for v, ok := range map[string]bool{
		"1.4.2": true, "0.1.0-dev": true, "2.1.0-rc.1": true, "2.0.0-beta.1.2": true, "1.0.0-preview": true,
		"1.0": false, "v1.0.0": false, "1.0.0-rc.01": false, "1.0.0-RC.1": false, "1.0.0-rc1": false,
		"1.0.0-x": false, "1.0.0+b.5": false, "01.0.0": false, "1.0.0-alpha.beta": false,
	} {
		if got := wire.ValidSemver(v); got != ok {
			t.Errorf("ValidSemver(%q) = %v, want %v", v, got, ok)
		}
	}
}

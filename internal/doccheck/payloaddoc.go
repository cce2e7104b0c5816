package doccheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/wire"
)

// payload is one kind of request body the agent sends the vendor's plane.
type payload struct {
	name    string // the wire type
	request string
	when    string
	example any // a valid value, from which each field is changed in turn
}

// sentPayloads are the bodies the agent sends, each with a valid example.
// Diagnostics bundles are files the operator previews, not a payload type.
func sentPayloads() []payload {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	return []payload{
		{"Heartbeat", "POST /v1/heartbeat", "every heartbeat interval (60 seconds unless the plane says otherwise)", wire.Heartbeat{
			SentAt: at, Versions: wire.Versions{Docsvc: "1.4.0", Agent: "1.4.0", Schema: 4}, Channel: "stable",
			Components:  []wire.ComponentHealth{{Name: "api", Status: "ok"}},
			AIProvider:  wire.ProviderHealth{Kind: "local", Status: "ok"},
			License:     wire.LicenseStatus{State: "valid", ExpiresAt: at},
			Storage:     wire.StorageTotals{ObjectsBucket: "1-99", BytesBucket: "<1GB"},
			LedgerHead:  wire.LedgerHead{Count: 1, SHA256: strings.Repeat("ab", 32)},
			Release:     "1.4.0",
			LastUpgrade: wire.UpgradeAttempt{Version: "1.4.0", Action: "upgrade", Outcome: "succeeded", At: at},
			Warnings:    []string{"certificate-expiry"},
		}},
		{"Telemetry", "POST /v1/telemetry", "once a day, only when the customer turned telemetry on (`agent.telemetry: true`)", wire.Telemetry{
			Day: "2026-12-01", BytesBucket: "<1GB",
		}},
		{"ActivationRequest", "POST /v1/activate", "once, at the agent's first start", wire.ActivationRequest{
			ActivationToken: strings.Repeat("A", 43), PublicKey: strings.Repeat("A", 43), AgentVersion: "1.4.0",
		}},
		{"RekeyRequest", "POST /v1/rekey", "when the agent starts with a pending identity key (`tetherctl secrets rotate agent`), signed with its current key", wire.RekeyRequest{
			PublicKey: strings.Repeat("A", 43), Proof: strings.Repeat("A", 86),
		}},
	}
}

// fieldMeaning says, for the customer, what each field tells the vendor.
// Every field the types have needs one, and every entry a field.
var fieldMeaning = map[string]string{
	"Heartbeat.sent_at":                  "when the agent sent it",
	"Heartbeat.versions":                 "what runs",
	"Heartbeat.versions.docsvc":          "the document service's version",
	"Heartbeat.versions.agent":           "the agent's version",
	"Heartbeat.versions.schema":          "the database schema's migration number",
	"Heartbeat.channel":                  "the release channel the agent follows",
	"Heartbeat.components":               "the health of each component",
	"Heartbeat.components[].name":        "which component",
	"Heartbeat.components[].status":      "its state, from docsvc's `/metrics/summary`",
	"Heartbeat.queue":                    "the job queue, as counts",
	"Heartbeat.queue.depth":              "jobs waiting",
	"Heartbeat.queue.in_flight":          "jobs being worked on",
	"Heartbeat.queue.dead_letter":        "jobs in the dead-letter queue",
	"Heartbeat.queue.oldest_age_seconds": "how long the oldest job has waited",
	"Heartbeat.error_rate":               "the share of the API's answers since the last heartbeat that were server errors (5xx)",
	"Heartbeat.available_release":        "the newest verified release on the channel that applies, when there is one",
	"Heartbeat.ai_provider":              "the AI provider, never its endpoint, model or key",
	"Heartbeat.ai_provider.kind":         "which kind of provider is configured",
	"Heartbeat.ai_provider.status":       "whether it answers",
	"Heartbeat.license":                  "the license as the agent judged it offline",
	"Heartbeat.license.state":            "its state",
	"Heartbeat.license.expires_at":       "its expiry (none when the state is `missing`)",
	"Heartbeat.storage":                  "how much is stored, as coarse ranges, never exact totals",
	"Heartbeat.storage.objects_bucket":   "the range the number of stored objects falls in",
	"Heartbeat.storage.bytes_bucket":     "the range the stored bytes fall in (decimal GB)",
	"Heartbeat.ledger_head":              "the head of the customer's egress ledger before this heartbeat, so that a ledger cut short shows on the vendor's side; a hash of the chain, nothing sent",
	"Heartbeat.ledger_head.count":        "the ledger's entries",
	"Heartbeat.ledger_head.sha256":       "the last entry's hash",
	"Heartbeat.release":                  "the release the install runs, as its release record says (none when nothing is recorded)",
	"Heartbeat.last_upgrade":             "the newest recorded upgrade, rollback or staging, as fixed codes, never an error's text",
	"Heartbeat.last_upgrade.version":     "the release it went to",
	"Heartbeat.last_upgrade.action":      "whether it was an upgrade or a rollback",
	"Heartbeat.last_upgrade.outcome":     "how it ended, or that it is still in progress",
	"Heartbeat.last_upgrade.at":          "when it was recorded",
	"Heartbeat.last_upgrade.reason":      "why it failed or rolled back, as a fixed code",
	"Heartbeat.warnings":                 "which of the deployment's capacity alarms (certificate expiry, database storage, dead letters, documents size, queue age) are firing, by name, never a value",
	"Telemetry.day":                      "the UTC day counted",
	"Telemetry.documents_processed":      "documents processed that day",
	"Telemetry.documents_failed":         "documents that failed that day",
	"Telemetry.pages":                    "result pages stored that day",
	"Telemetry.bytes_bucket":             "the range the stored bytes fall in (decimal GB)",
	"ActivationRequest.activation_token": "the one-time token from the license file, which activates one install once",
	"ActivationRequest.public_key":       "the agent's Ed25519 public key, which signs every later request",
	"ActivationRequest.agent_version":    "the agent's version",
	"RekeyRequest.public_key":            "the agent's new Ed25519 public key, which signs every later request",
	"RekeyRequest.proof":                 "the new key's signature over a fixed text, the install ID and the new public key: proof the agent holds the new key",
}

// field is one JSON field of a payload type.
type field struct {
	path     string // JSON path, lists as "name[]"
	index    []int  // struct field indexes; -1 is a list's first element
	typ      reflect.Type
	optional bool // omitted when empty
}

var timeType = reflect.TypeFor[time.Time]()

func fields(t reflect.Type, prefix string, index []int) []field {
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		name, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if !sf.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		f := field{path: prefix + name, index: append(slices.Clone(index), i), typ: sf.Type,
			optional: strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")}
		out = append(out, f)
		switch {
		case sf.Type.Kind() == reflect.Struct && sf.Type != timeType:
			out = append(out, fields(sf.Type, f.path+".", f.index)...)
		case sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.Struct:
			out = append(out, fields(sf.Type.Elem(), f.path+"[].", append(slices.Clone(f.index), -1))...)
		}
	}
	return out
}

func typeName(t reflect.Type) string {
	switch {
	case t == timeType:
		return "time (RFC 3339)"
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		return "integer"
	case t.Kind() == reflect.Float64:
		return "number"
	case t.Kind() == reflect.Slice:
		return "list"
	case t.Kind() == reflect.Struct:
		return "object"
	}
	return t.String()
}

// rule finds what wire's own Validate allows in a field: it changes the
// field of a valid example to a value no rule should allow (and, for text
// and times, to nothing) and reports the rule Validate names.
func rule(example any, f field) (string, error) {
	try := func(set func(v reflect.Value)) (*wire.FieldError, error) {
		b, err := json.Marshal(example)
		if err != nil {
			return nil, err
		}
		p := reflect.New(reflect.TypeOf(example))
		if err := json.Unmarshal(b, p.Interface()); err != nil {
			return nil, err
		}
		v := p.Elem()
		for _, i := range f.index {
			if i < 0 {
				v = v.Index(0)
			} else {
				v = v.Field(i)
			}
		}
		set(v)
		err = p.Interface().(interface{ Validate() error }).Validate()
		if err == nil {
			return nil, nil
		}
		var fe *wire.FieldError
		if !errors.As(err, &fe) {
			return nil, fmt.Errorf("%s: Validate failed without naming a field: %w", f.path, err)
		}
		return fe, nil
	}
	var bad func(v reflect.Value)
	switch {
	case f.typ == timeType:
		bad = func(v reflect.Value) { v.Set(reflect.ValueOf(time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC))) }
	case f.typ.Kind() == reflect.String:
		bad = func(v reflect.Value) { v.SetString("Quarterly report.pdf") }
	case f.typ.Kind() == reflect.Int || f.typ.Kind() == reflect.Int64:
		bad = func(v reflect.Value) { v.SetInt(-1) }
	case f.typ.Kind() == reflect.Float64:
		bad = func(v reflect.Value) { v.SetFloat(-1) }
	case f.typ.Kind() == reflect.Slice:
		bad = func(v reflect.Value) {
			for range 100 {
				v.Set(reflect.Append(v, v.Index(0)))
			}
		}
	case f.typ.Kind() == reflect.Struct && f.optional:
		return "optional (left out when empty); its fields as below", nil
	case f.typ.Kind() == reflect.Struct:
		return "its fields as below", nil
	default:
		return "", fmt.Errorf("%s: no probe for %s", f.path, f.typ)
	}
	fe, err := try(bad)
	if err != nil {
		return "", err
	}
	if fe == nil {
		return "", fmt.Errorf("%s: Validate accepts any value: the field needs a rule in internal/wire", f.path)
	}
	r := fe.Rule
	if f.typ == timeType || f.typ.Kind() == reflect.String {
		zero, err := try(func(v reflect.Value) { v.Set(reflect.Zero(f.typ)) })
		switch {
		case err != nil:
			return "", err
		case zero == nil && !f.optional:
			return "", fmt.Errorf("%s: Validate accepts it empty, but JSON still carries it: make it omitempty or required", f.path)
		case zero == nil:
			r = "optional; " + r
		case zero.Rule != fe.Rule:
			r = strings.TrimPrefix(zero.Rule, "is ") + "; " + r
		}
	}
	return r, nil
}

// PayloadFields renders the fields of every payload the agent sends the
// vendor, with what each says and the rule internal/wire enforces on it
// (found by asking wire's Validate, not written here).
func PayloadFields() (string, error) {
	var b strings.Builder
	used := map[string]bool{}
	for _, p := range sentPayloads() {
		fmt.Fprintf(&b, "### `%s`: `%s`\n\nSent %s.\n\n", p.name, p.request, p.when)
		b.WriteString("| field | type | what it tells the vendor | what `internal/wire` lets it hold |\n|---|---|---|---|\n")
		for _, f := range fields(reflect.TypeOf(p.example), "", nil) {
			key := p.name + "." + f.path
			meaning, ok := fieldMeaning[key]
			if !ok {
				return "", fmt.Errorf("%s has no entry in fieldMeaning: say what it tells the vendor", key)
			}
			used[key] = true
			r, err := rule(p.example, f)
			if err != nil {
				return "", fmt.Errorf("%s: %w", p.name, err)
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.path, typeName(f.typ), meaning, strings.ReplaceAll(r, "|", `\|`))
		}
		b.WriteString("\n")
	}
	for key := range fieldMeaning {
		if !used[key] {
			return "", fmt.Errorf("fieldMeaning has %s, which no payload type has", key)
		}
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

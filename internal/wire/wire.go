// Package wire holds every payload that crosses the boundary between the
// customer-side agent and the vendor's plane, and the strict decoders for
// them.
//
// This package is one of the four proofs of the data boundary: the types the
// agent sends have no free-form maps, no interfaces and no free-text strings;
// every string field is an enumeration, an identifier, a version or a coarse
// bucket, which Validate checks. wire_test.go fails on any agent-sent field
// not on its allow-list.
//
// Errors never echo field values: an invalid value might be exactly the
// content that must not leak, so errors name the field and the rule only.
package wire

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// MaxPayload is the largest encoded payload Decode accepts; a heartbeat is
// well under 2 KiB.
const MaxPayload = 64 << 10

// ErrInvalid is matched (errors.Is) by every validation failure; errors.As
// with *FieldError gives the type and field.
var ErrInvalid = errors.New("wire: invalid payload")

// ErrMalformed is matched by decoding failures: not JSON, wrong JSON types,
// unknown fields, trailing data, or a payload over MaxPayload.
var ErrMalformed = errors.New("wire: malformed payload")

// FieldError names the payload type, the JSON field path and the rule the
// value broke. It deliberately does not carry the value.
type FieldError struct {
	Type  string // e.g. "heartbeat"
	Field string // JSON path, e.g. "components[2].status"
	Rule  string // e.g. "must be one of ok, degraded, down, unknown"
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("wire: %s.%s: %s", e.Type, e.Field, e.Rule)
}

func (e *FieldError) Unwrap() error { return ErrInvalid }

// Enumerations, which Validate enforces. They are unexported, so no package
// that links this one can change what a payload may carry; the agent asks
// KnownProviderKind and KnownProviderStatus.
var (
	componentNames    = []string{"api", "worker", "database", "blob", "queue", "agent"}
	componentStatuses = []string{"ok", "degraded", "down", "unknown"}
	providerKinds     = []string{"local", "openai", "anthropic", "bedrock"}
	providerStatuses  = []string{"ok", "degraded", "down"}
	licenseStates     = []string{"valid", "grace", "expired", "missing"}
	// objectBuckets and byteBuckets are StorageBucket's possible results,
	// smallest first.
	objectBuckets  = []string{"0", "1-99", "100-9999", "10000-999999", "1000000-99999999", "100000000+"}
	byteBuckets    = []string{"<1GB", "1-10GB", "10-100GB", "100GB-1TB", "1-10TB", "10TB+"}
	requesterKinds = []string{"staff", "token", "break-glass"} // who may ask for diagnostics
	// UpgradeActions, UpgradeOutcomes and UpgradeReasons describe an
	// install's last upgrade attempt (UpgradeAttempt). A reason is a fixed
	// code, never an error's text. Exported, unlike the others, because
	// internal/releasestate validates the records it reads against them.
	UpgradeActions  = []string{"upgrade", "rollback"}
	UpgradeOutcomes = []string{"succeeded", "rolled-back", "failed", "staged", "in-progress"}
	UpgradeReasons  = []string{
		"not-healthy",       // the services were not healthy before it started
		"backup-failed",     // the database snapshot failed
		"push-failed",       // the images could not be put into the registry
		"migration-failed",  // the migration task failed
		"stack-failed",      // the stack update failed
		"rollout-failed",    // a service's deployment failed
		"alarm",             // an alarm of the services went off
		"health-unreadable", // the services' health could not be read
		"timeout",           // the time limit ran out
		"interrupted",       // the process applying it stopped before it ended
		"unknown",           // the record names no code
	}
)

// KnownProviderKind reports whether kind is an AI provider kind a
// heartbeat may carry.
func KnownProviderKind(kind string) bool { return slices.Contains(providerKinds, kind) }

// KnownProviderStatus reports whether status is an AI provider status a
// heartbeat may carry.
func KnownProviderStatus(status string) bool { return slices.Contains(providerStatuses, status) }

// ActivationRequest is the agent's one unsigned request: it proves possession
// of a license's activation token and registers the agent's public key.
type ActivationRequest struct {
	ActivationToken string `json:"activation_token"` // as printed by issuer.Issue
	PublicKey       string `json:"public_key"`       // base64url (unpadded) Ed25519 public key
	AgentVersion    string `json:"agent_version"`    // semver
}

// RekeyContext starts the text a new identity key signs in a RekeyRequest,
// so that signature proves possession for a re-key and can mean nothing else.
const RekeyContext = "TETHER-REKEY-V1"

// RekeyRequest replaces an install's public key (POST /v1/rekey). The
// request is signed with the current key; Proof is the new key's signature
// over RekeyMessage, proving the agent holds the new private key.
type RekeyRequest struct {
	PublicKey string `json:"public_key"` // base64url (unpadded) Ed25519 public key: the new one
	Proof     string `json:"proof"`      // base64url (unpadded) Ed25519 signature by the new key over RekeyMessage
}

// RekeyMessage is what the new key signs: RekeyContext, the install ID and
// the new public key (as sent), newline-joined.
func RekeyMessage(installID, publicKey string) []byte {
	return []byte(RekeyContext + "\n" + installID + "\n" + publicKey)
}

// ActivationResponse is the plane's answer to a successful activation.
type ActivationResponse struct {
	InstallID                string `json:"install_id"`
	HeartbeatIntervalSeconds int    `json:"heartbeat_interval_seconds"`
	LicenseID                string `json:"license_id"`
}

// Heartbeat is the agent's periodic health report.
type Heartbeat struct {
	SentAt     time.Time         `json:"sent_at"`
	Versions   Versions          `json:"versions"`
	Channel    string            `json:"channel"` // [a-z0-9-]{1,32}
	Components []ComponentHealth `json:"components"`
	Queue      QueueStats        `json:"queue"`
	ErrorRate  float64           `json:"error_rate"` // 0..1, share of 5xx answers over the interval
	AIProvider ProviderHealth    `json:"ai_provider"`
	License    LicenseStatus     `json:"license"`
	Storage    StorageTotals     `json:"storage"`
	// AvailableRelease is the newest verified release on the channel that
	// applies to what runs, or empty when up to date.
	AvailableRelease string `json:"available_release,omitempty"` // semver when set
	// LedgerHead is the agent's egress ledger before this heartbeat's own
	// entry; none from agents before it (optional: docs/protocol.md).
	LedgerHead LedgerHead `json:"ledger_head,omitzero"`
	// Release is the release the install runs as its release record says
	// (docs/protocol.md); empty when none is recorded.
	Release string `json:"release,omitempty"` // semver when set
	// LastUpgrade is the newest recorded upgrade, rollback or staging; none
	// when nothing is recorded.
	LastUpgrade UpgradeAttempt `json:"last_upgrade,omitzero"`
	// Warnings are the capacity alarms now in ALARM, by fixed name
	// (WarningNames), sorted; never a value. AWS only.
	Warnings []string `json:"warnings,omitempty"`
}

// warningNames are the capacity alarms a heartbeat may name: the TLS
// certificate within 30 days of expiry, and the storage-growth alarms at
// the deployment's thresholds.
var warningNames = []string{"certificate-expiry", "database-storage", "dead-letter-depth", "documents-size", "queue-age"}

// WarningNames are the capacity alarms a heartbeat may name, sorted.
func WarningNames() []string { return slices.Clone(warningNames) }

// UpgradeAttempt is one upgrade, rollback or staging of a release.
type UpgradeAttempt struct {
	Version string    `json:"version,omitempty"` // semver: the release it went to; empty when not known
	Action  string    `json:"action"`            // one of UpgradeActions
	Outcome string    `json:"outcome"`           // one of UpgradeOutcomes
	At      time.Time `json:"at"`
	Reason  string    `json:"reason,omitempty"` // one of UpgradeReasons when it failed or rolled back, else empty
}

// LedgerHead is a point of the agent's hash-chained egress ledger. The
// plane keeps the highest, so a ledger cut short and rewritten on the
// customer's side stops matching it.
type LedgerHead struct {
	Count  int64  `json:"count"`  // entries, 0..2^53
	SHA256 string `json:"sha256"` // hash of entry Count: 64 lowercase hex, LedgerGenesis for 0
}

// LedgerGenesis is an empty ledger's head hash (internal/ledger.Genesis).
const LedgerGenesis = "0000000000000000000000000000000000000000000000000000000000000000"

// CheckLedgerHead returns the rule a head breaks, or "" when it is well formed.
func CheckLedgerHead(count int64, hash string) string {
	switch {
	case count < 0 || count > maxCount:
		return "count must be between 0 and 2^53"
	case !ValidSHA256(hash):
		return "sha256 must be 64 lowercase hex digits"
	case (count == 0) != (hash == LedgerGenesis):
		return "sha256 must be 64 zeros exactly when count is 0"
	}
	return ""
}

// Versions says what is running.
type Versions struct {
	Docsvc string `json:"docsvc"` // semver
	Agent  string `json:"agent"`  // semver
	Schema int64  `json:"schema"` // applied migration version
}

// ComponentHealth is one component's state.
type ComponentHealth struct {
	Name   string `json:"name"`   // one of componentNames
	Status string `json:"status"` // one of componentStatuses
}

// QueueStats are the job queue's counts; no message bodies, no document IDs.
type QueueStats struct {
	Depth            int64 `json:"depth"`
	InFlight         int64 `json:"in_flight"`
	DeadLetter       int64 `json:"dead_letter"`
	OldestAgeSeconds int64 `json:"oldest_age_seconds"`
}

// ProviderHealth is the AI provider's kind and reachability, never its
// endpoint, model prompt or key.
type ProviderHealth struct {
	Kind   string `json:"kind"`   // one of providerKinds
	Status string `json:"status"` // one of providerStatuses
}

// LicenseStatus is the license state the agent computed offline.
type LicenseStatus struct {
	State     string    `json:"state"`      // one of licenseStates
	ExpiresAt time.Time `json:"expires_at"` // zero when State is "missing"
}

// StorageTotals are coarse buckets from StorageBucket, never exact counts:
// exact totals would let the vendor watch single uploads come and go.
type StorageTotals struct {
	ObjectsBucket string `json:"objects_bucket"` // one of objectBuckets
	BytesBucket   string `json:"bytes_bucket"`   // one of byteBuckets
}

// HeartbeatResponse is the plane's answer to a heartbeat.
type HeartbeatResponse struct {
	NextIntervalSeconds int `json:"next_interval_seconds"`
	PendingDiagnostics  int `json:"pending_diagnostics"`
}

// Telemetry is one day's aggregate usage, sent only when the customer opted in.
type Telemetry struct {
	Day                string `json:"day"` // YYYY-MM-DD, UTC
	DocumentsProcessed int64  `json:"documents_processed"`
	DocumentsFailed    int64  `json:"documents_failed"`
	Pages              int64  `json:"pages"`
	BytesBucket        string `json:"bytes_bucket"` // one of byteBuckets
}

// DiagnosticRequest is the vendor asking for a diagnostics bundle. It travels
// plane→agent only; Reason is the vendor's words, shown to the customer for
// approval.
type DiagnosticRequest struct {
	ID              string    `json:"id"`
	Reason          string    `json:"reason"`
	RequestedAt     time.Time `json:"requested_at"`
	RequestedBy     string    `json:"requested_by,omitempty"`      // who asked: a staff e-mail, a token's name or the admin token
	RequestedByKind string    `json:"requested_by_kind,omitempty"` // one of requesterKinds; both absent from a plane before them
}

// Bounds. Counts are capped at 2^53 so every value survives a round trip
// through a JSON number in any language, and an absurd value is caught here
// rather than on a dashboard.
const (
	maxCount           = 1 << 53
	maxIntervalSeconds = 7 * 24 * 3600
	maxReasonLen       = 1000
	maxRequesterLen    = 200
	maxPending         = 1 << 20
)

var (
	// semverRe is the versions the wire carries: Semantic Versioning 2.0.0
	// without a "v" prefix, whose pre-release is one of a few fixed words
	// followed by numbers, and without build metadata. Full semver allows
	// any word there ("9.9.9-confidentialmergerplan"), which would make a
	// version field a free-text channel.
	semverRe = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)` +
		`(-(alpha|beta|rc|dev|preview)(\.(0|[1-9][0-9]*))*)?$`)
	channelRe = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	idRe      = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	tokenRe   = regexp.MustCompile(`^[A-Za-z0-9_-]{16,128}$`)
	dayRe     = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	sha256Re  = regexp.MustCompile(`^[0-9a-f]{64}$`) // one spelling per hash
)

// maxSemverLen bounds versions: the regexp alone would allow a long
// pre-release tag.
const maxSemverLen = 64

// ValidSHA256 reports whether s is a SHA-256 in its one spelling: 64
// lowercase hex digits.
func ValidSHA256(s string) bool { return sha256Re.MatchString(s) }

// ValidChannel reports whether ch is a well-formed channel name.
func ValidChannel(ch string) bool { return channelRe.MatchString(ch) }

// ValidID reports whether id is a well-formed identifier (install, license,
// diagnostic request): 1–64 of [A-Za-z0-9_-].
func ValidID(id string) bool { return idRe.MatchString(id) }

// ValidSemver reports whether v is a version the wire carries (semverRe),
// such as 2.1.0 or 2.1.0-rc.1.
func ValidSemver(v string) bool { return len(v) <= maxSemverLen && semverRe.MatchString(v) }

// checker keeps the first failure of one payload's Validate.
type checker struct {
	typ string
	err error
}

func (c *checker) fail(field, rule string) {
	if c.err == nil {
		c.err = &FieldError{Type: c.typ, Field: field, Rule: rule}
	}
}

func (c *checker) oneOf(field, v string, allowed []string) {
	if !slices.Contains(allowed, v) {
		c.fail(field, "must be one of "+strings.Join(allowed, ", "))
	}
}

func (c *checker) count(field string, v int64) {
	if v < 0 || v > maxCount {
		c.fail(field, "must be between 0 and 2^53")
	}
}

func (c *checker) semver(field, v string) {
	if !ValidSemver(v) {
		c.fail(field, "must be a semantic version such as 1.4.2 (at most 64 bytes)")
	}
}

func (c *checker) id(field, v string) {
	if !ValidID(v) {
		c.fail(field, "must be 1-64 characters of A-Z a-z 0-9 _ -")
	}
}

func (c *checker) time(field string, t time.Time, required bool) {
	switch {
	case t.IsZero() && required:
		c.fail(field, "is required")
	case !t.IsZero() && (t.Year() < 2000 || t.Year() > 9999):
		c.fail(field, "must be a time between the years 2000 and 9999")
	}
}

func (c *checker) publicKey(field, v string) {
	if k, err := base64.RawURLEncoding.Strict().DecodeString(v); err != nil || len(k) != 32 {
		c.fail(field, "must be an unpadded base64url Ed25519 public key (32 bytes)")
	}
}

// Validate checks every field of an activation request.
func (r *ActivationRequest) Validate() error {
	c := checker{typ: "activation_request"}
	if !tokenRe.MatchString(r.ActivationToken) {
		c.fail("activation_token", "must be 16-128 characters of base64url")
	}
	c.publicKey("public_key", r.PublicKey)
	c.semver("agent_version", r.AgentVersion)
	return c.err
}

// Validate checks the shape of a re-key request; the plane checks the proof.
func (r *RekeyRequest) Validate() error {
	c := checker{typ: "rekey_request"}
	c.publicKey("public_key", r.PublicKey)
	if s, err := base64.RawURLEncoding.Strict().DecodeString(r.Proof); err != nil || len(s) != 64 {
		c.fail("proof", "must be an unpadded base64url Ed25519 signature (64 bytes)")
	}
	return c.err
}

// Validate checks every field of an activation response.
func (r *ActivationResponse) Validate() error {
	c := checker{typ: "activation_response"}
	c.id("install_id", r.InstallID)
	if r.HeartbeatIntervalSeconds < 1 || r.HeartbeatIntervalSeconds > maxIntervalSeconds {
		c.fail("heartbeat_interval_seconds", "must be between 1 and 604800")
	}
	c.id("license_id", r.LicenseID)
	return c.err
}

// Validate checks every field of a heartbeat.
func (h *Heartbeat) Validate() error {
	c := checker{typ: "heartbeat"}
	c.time("sent_at", h.SentAt, true)
	c.semver("versions.docsvc", h.Versions.Docsvc)
	c.semver("versions.agent", h.Versions.Agent)
	if h.AvailableRelease != "" {
		c.semver("available_release", h.AvailableRelease)
	}
	c.count("versions.schema", h.Versions.Schema)
	if !ValidChannel(h.Channel) {
		c.fail("channel", "must be 1-32 characters of a-z 0-9 -")
	}
	if len(h.Components) > len(componentNames) {
		c.fail("components", fmt.Sprintf("must have at most %d entries", len(componentNames)))
	}
	seen := make(map[string]bool, len(h.Components))
	for i, comp := range h.Components {
		f := fmt.Sprintf("components[%d]", i)
		c.oneOf(f+".name", comp.Name, componentNames)
		c.oneOf(f+".status", comp.Status, componentStatuses)
		if seen[comp.Name] {
			c.fail(f+".name", "must not repeat an earlier component")
		}
		seen[comp.Name] = true
	}
	c.count("queue.depth", h.Queue.Depth)
	c.count("queue.in_flight", h.Queue.InFlight)
	c.count("queue.dead_letter", h.Queue.DeadLetter)
	c.count("queue.oldest_age_seconds", h.Queue.OldestAgeSeconds)
	if math.IsNaN(h.ErrorRate) || h.ErrorRate < 0 || h.ErrorRate > 1 {
		c.fail("error_rate", "must be between 0 and 1")
	}
	c.oneOf("ai_provider.kind", h.AIProvider.Kind, providerKinds)
	c.oneOf("ai_provider.status", h.AIProvider.Status, providerStatuses)
	c.oneOf("license.state", h.License.State, licenseStates)
	c.time("license.expires_at", h.License.ExpiresAt, h.License.State != "missing")
	c.oneOf("storage.objects_bucket", h.Storage.ObjectsBucket, objectBuckets)
	c.oneOf("storage.bytes_bucket", h.Storage.BytesBucket, byteBuckets)
	if h.Release != "" {
		c.semver("release", h.Release)
	}
	if u := h.LastUpgrade; u != (UpgradeAttempt{}) {
		if u.Version != "" {
			c.semver("last_upgrade.version", u.Version)
		}
		c.oneOf("last_upgrade.action", u.Action, UpgradeActions)
		c.oneOf("last_upgrade.outcome", u.Outcome, UpgradeOutcomes)
		c.time("last_upgrade.at", u.At, true)
		failed := u.Outcome == "failed" || u.Outcome == "rolled-back"
		switch {
		case failed:
			c.oneOf("last_upgrade.reason", u.Reason, UpgradeReasons)
		case u.Reason != "":
			c.fail("last_upgrade.reason", "must be empty unless the outcome is failed or rolled-back")
		}
	}
	if len(h.Warnings) > len(warningNames) {
		c.fail("warnings", fmt.Sprintf("at most %d", len(warningNames)))
	}
	for i, w := range h.Warnings {
		c.oneOf("warnings", w, warningNames)
		if i > 0 && w <= h.Warnings[i-1] {
			c.fail("warnings", "must be sorted, each once")
		}
	}
	if rule := CheckLedgerHead(h.LedgerHead.Count, h.LedgerHead.SHA256); rule != "" && h.LedgerHead != (LedgerHead{}) {
		c.fail("ledger_head", rule)
	}
	return c.err
}

// Validate checks every field of a heartbeat response.
func (r *HeartbeatResponse) Validate() error {
	c := checker{typ: "heartbeat_response"}
	if r.NextIntervalSeconds < 1 || r.NextIntervalSeconds > maxIntervalSeconds {
		c.fail("next_interval_seconds", "must be between 1 and 604800")
	}
	if r.PendingDiagnostics < 0 || r.PendingDiagnostics > maxPending {
		c.fail("pending_diagnostics", "must be between 0 and 1048576")
	}
	return c.err
}

// Validate checks every field of a telemetry report.
func (t *Telemetry) Validate() error {
	c := checker{typ: "telemetry"}
	if _, err := time.Parse(time.DateOnly, t.Day); err != nil || !dayRe.MatchString(t.Day) || t.Day < "2000-01-01" {
		c.fail("day", "must be a date YYYY-MM-DD from 2000-01-01 on")
	}
	c.count("documents_processed", t.DocumentsProcessed)
	c.count("documents_failed", t.DocumentsFailed)
	c.count("pages", t.Pages)
	c.oneOf("bytes_bucket", t.BytesBucket, byteBuckets)
	return c.err
}

// Validate checks every field of a diagnostic request. Reason and
// RequestedBy are free text, which is acceptable only because it flows
// vendor→customer; it is still bounded and must be printable so it renders
// safely in the agent's UI and the operator's terminal.
func (d *DiagnosticRequest) Validate() error {
	c := checker{typ: "diagnostic_request"}
	c.id("id", d.ID)
	c.printable("reason", d.Reason, maxReasonLen)
	c.time("requested_at", d.RequestedAt, true)
	if d.RequestedBy != "" || d.RequestedByKind != "" {
		c.printable("requested_by", d.RequestedBy, maxRequesterLen)
		c.oneOf("requested_by_kind", d.RequestedByKind, requesterKinds)
	}
	return c.err
}

// printable checks free text shown to the customer.
func (c *checker) printable(field, v string, max int) {
	if v == "" || len(v) > max || !utf8.ValidString(v) ||
		strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		c.fail(field, fmt.Sprintf("must be 1-%d bytes of printable UTF-8 (no control characters or newlines)", max))
	}
}

// StorageBucket maps exact storage totals to the coarse buckets a heartbeat
// carries. Objects are bucketed by powers of 100, bytes by powers of ten in
// decimal gigabytes (1 GB = 10^9 bytes). Negative inputs count as zero.
func StorageBucket(objects, bytes int64) (objectsBucket, bytesBucket string) {
	objectsBucket = objectBuckets[len(objectBuckets)-1]
	for i, limit := range []int64{1, 100, 10_000, 1_000_000, 100_000_000} {
		if objects < limit {
			objectsBucket = objectBuckets[i]
			break
		}
	}
	const gb = 1_000_000_000
	bytesBucket = byteBuckets[len(byteBuckets)-1]
	for i, limit := range []int64{gb, 10 * gb, 100 * gb, 1000 * gb, 10_000 * gb} {
		if bytes < limit {
			bytesBucket = byteBuckets[i]
			break
		}
	}
	return objectsBucket, bytesBucket
}

// validator is what every payload type implements.
type validator interface{ Validate() error }

// Decode is the one strict JSON decoder for every payload, so a payload
// means one thing to everyone who reads it: at most MaxPayload bytes of
// valid UTF-8, one JSON value whose keys are each known, spelled exactly and
// given once (JSON v2's defaults, unlike encoding/json's), then Validate.
func Decode[T any, PT interface {
	*T
	validator
}](data []byte) (T, error) {
	var v T
	typ := reflect.TypeFor[T]().Name()
	if len(data) > MaxPayload {
		return v, fmt.Errorf("wire: decode %s: %w: %d bytes is over the %d byte limit", typ, ErrMalformed, len(data), MaxPayload)
	}
	if err := jsonv2.Unmarshal(data, &v, jsonv2.RejectUnknownMembers(true)); err != nil {
		return v, fmt.Errorf("wire: decode %s: %w: %s", typ, ErrMalformed, describe(err))
	}
	if err := PT(&v).Validate(); err != nil {
		return *new(T), err
	}
	return v, nil
}

// describe turns a JSON error into a message that does not repeat the
// input: the decoder's own messages quote member names and values.
func describe(err error) string {
	var syn *jsontext.SyntacticError
	var sem *jsonv2.SemanticError
	switch {
	case errors.Is(err, jsontext.ErrDuplicateName):
		return "a key appears twice in one object"
	case errors.Is(err, jsonv2.ErrUnknownName):
		return "unknown field (field names are lower case, exactly as documented)"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "empty or truncated JSON"
	case errors.As(err, &syn):
		// Invalid UTF-8 is a syntactic error too.
		return fmt.Sprintf("invalid JSON or UTF-8 at byte %d", syn.ByteOffset)
	case errors.As(err, &sem):
		if sem.JSONPointer != "" {
			return fmt.Sprintf("wrong JSON type or value for field %s", fieldPath(sem.JSONPointer))
		}
		return "wrong JSON type for the payload"
	default:
		return "invalid JSON value"
	}
}

// fieldPath renders a JSON pointer into a known payload as the dotted path
// the Validate errors use. It is only called once every member name has
// been matched against the payload type, so it names fields, not input.
func fieldPath(p jsontext.Pointer) string {
	var parts []string
	for tok := range p.Tokens() {
		parts = append(parts, tok)
	}
	return strings.Join(parts, ".")
}

// DiagnosticRequests is the answer to GET /v1/diagnostics.
type DiagnosticRequests []DiagnosticRequest

// maxDiagnosticRequests bounds one answer; the plane pages beyond it.
const maxDiagnosticRequests = 100

// Validate checks the list's length and every request in it.
func (ds *DiagnosticRequests) Validate() error {
	c := checker{typ: "diagnostic_requests"}
	if len(*ds) > maxDiagnosticRequests {
		c.fail("[]", "must have at most 100 entries")
	}
	for i, d := range *ds {
		var fe *FieldError
		if errors.As(d.Validate(), &fe) {
			c.fail(fmt.Sprintf("[%d].%s", i, fe.Field), fe.Rule)
		}
	}
	return c.err
}

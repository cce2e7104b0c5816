package ctl

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/deployconfig"
	"github.com/tetherhq/tether/internal/license"
)

// This file judges secret values without printing them. Every function here
// takes the value and returns a verdict whose text is built only from
// fixed phrases and from facts that are not secret (a license's ID,
// customer and dates; a key's expected prefix). None quotes the value, or
// an error message that could contain part of it.

// status is a check's outcome; a secret's verdict uses the same three.
type status string

const (
	statusPass status = "PASS"
	statusWarn status = "WARN"
	statusFail status = "FAIL"
)

// verdict is what tetherctl can say about a secret's value.
type verdict struct {
	Status status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

func pass(detail string, args ...any) verdict {
	return verdict{Status: statusPass, Detail: fmt.Sprintf(detail, args...)}
}

func warn(fix, detail string, args ...any) verdict {
	return verdict{Status: statusWarn, Detail: fmt.Sprintf(detail, args...), Fix: fix}
}

func fail(fix, detail string, args ...any) verdict {
	return verdict{Status: statusFail, Detail: fmt.Sprintf(detail, args...), Fix: fix}
}

// maxSecretValue is Secrets Manager's limit on a SecretString.
const maxSecretValue = 65536

// maxAIKey bounds an AI provider key; real ones are under 200 characters.
const maxAIKey = 4096

// stackPlaceholder matches the value earlier versions of the data stack
// generated for the license, AI key and agent identity secrets until someone
// set them: 48 letters and digits (GenerateSecretString with PasswordLength
// 48 and ExcludePunctuation). The stack now creates them empty, but
// deployments made before keep the placeholder until it is replaced.
var stackPlaceholder = regexp.MustCompile(`^[A-Za-z0-9]{48}$`)

const dateFormat = "2006-01-02"

// checkLicense verifies a license file against deployment.yaml's license
// public key and says whether it is valid at now, in grace, or expired.
// A license that does not include deployment.yaml's release channel is a
// warning: the service runs, but the agent will not take releases from it.
func checkLicense(dc *deployconfig.Config, value []byte, now time.Time) verdict {
	setFix := "tetherctl secrets set license --from-file license.json, with the license file your vendor issued for this deployment"
	pub, err := license.ParsePublicKey([]byte(dc.License.PublicKey))
	if err != nil {
		return fail("paste the vendor's license.pub into license.public_key in deployment.yaml",
			"deployment.yaml's license.public_key is not an Ed25519 public key, so no license can be verified")
	}
	if stackPlaceholder.Match(value) {
		return fail(setFix, "holds the random placeholder the data stack created, not a license")
	}
	l, err := license.Verify(pub, value)
	switch {
	case errors.Is(err, license.ErrBadSignature):
		var f struct {
			KeyID string `json:"key_id"`
		}
		_ = json.Unmarshal(value, &f)
		if f.KeyID != "" && f.KeyID != license.KeyID(pub) && keyIDShape.MatchString(f.KeyID) {
			return fail("ask the vendor for the license signed with the key in license.public_key, or check that license.public_key is this vendor's license.pub",
				"signed by key %s, but deployment.yaml's license.public_key is key %s", f.KeyID, license.KeyID(pub))
		}
		return fail("set the license file exactly as the vendor sent it; an edited license cannot be repaired",
			"its signature does not verify against deployment.yaml's license.public_key (key %s): the license was altered", license.KeyID(pub))
	case err != nil:
		// Only the sentinel is named: the underlying parse error could quote
		// part of whatever was given instead of a license.
		return fail(setFix, "not a license file (the signed JSON document the vendor issues)")
	}
	grace := time.Duration(l.GraceSeconds) * time.Second
	end := l.ExpiresAt.Add(grace)
	who := fmt.Sprintf("license %s for %s", l.ID, l.Customer)
	renew := "ask the vendor for a renewed license, then tetherctl secrets set license --from-file license.json"
	var v verdict
	switch l.StateAt(now) {
	case license.Expired:
		return fail(renew, "%s expired on %s and its grace period ended on %s: uploads are refused",
			who, l.ExpiresAt.Format(dateFormat), end.Format(dateFormat))
	case license.Grace:
		v = warn(renew, "%s expired on %s; in its grace period until %s, after which uploads are refused",
			who, l.ExpiresAt.Format(dateFormat), end.Format(dateFormat))
	default:
		v = pass("%s, signed by the key in license.public_key, valid until %s (then %s of grace)",
			who, l.ExpiresAt.Format(dateFormat), graceText(grace))
	}
	if !l.AllowsChannel(dc.Plane.Channel) {
		v.Status = statusWarn
		v.Detail += fmt.Sprintf("; it does not include release channel %q (plane.channel), only %s, so the agent will not take releases",
			dc.Plane.Channel, strings.Join(l.Channels, ", "))
		v.Fix = fmt.Sprintf("ask the vendor for a license that includes %q, or set plane.channel in deployment.yaml to one it includes", dc.Plane.Channel)
	}
	return v
}

var keyIDShape = regexp.MustCompile(`^[0-9a-f]{16}$`)

func graceText(d time.Duration) string {
	switch days := int(d / (24 * time.Hour)); {
	case d == 0:
		return "no days"
	case d%(24*time.Hour) == 0 && days == 1:
		return "1 day"
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%d days", days)
	default:
		return d.String()
	}
}

// checkAIKey judges an AI provider API key by its shape: present, one
// token of printable ASCII with no whitespace, and the provider's prefix
// where the provider has one. It cannot tell whether the provider accepts it.
func checkAIKey(dc *deployconfig.Config, value string) verdict {
	setFix := "tetherctl secrets set ai, pasting the key your AI provider issued"
	switch {
	case value == "":
		return fail(setFix, "empty")
	case len(value) > maxAIKey:
		return fail(setFix, "longer than %d characters: not an API key", maxAIKey)
	}
	for _, r := range value {
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			return fail(setFix, "contains whitespace or a line break: an API key is one unbroken token")
		case r < 0x21 || r > 0x7e:
			return fail(setFix, "contains characters other than printable ASCII: not an API key")
		}
	}
	if prefix, who := aiKeyPrefix(dc); prefix != "" && !strings.HasPrefix(value, prefix) {
		return fail(setFix, "%s API keys start with %q; this one does not", who, prefix)
	}
	if stackPlaceholder.MatchString(value) {
		return warn(setFix, "has the shape of the 48-character placeholder earlier data stacks created, not of a key your provider issued")
	}
	return pass("a key of the expected shape for ai.provider %s (whether the provider accepts it is not checked)", dc.AI.Provider)
}

// aiKeyPrefix is the prefix a provider's keys carry, when it is certain:
// Anthropic's own API, and OpenAI's own API. Other OpenAI-compatible
// endpoints (Azure OpenAI, a self-hosted vLLM) issue keys of any shape.
func aiKeyPrefix(dc *deployconfig.Config) (prefix, who string) {
	host := ""
	if u, err := url.Parse(dc.AI.BaseURL); err == nil {
		host = u.Hostname()
	}
	switch {
	case dc.AI.Provider == deployconfig.AIAnthropic && (dc.AI.BaseURL == "" || host == "api.anthropic.com"):
		return "sk-ant-", "Anthropic"
	case dc.AI.Provider == deployconfig.AIOpenAI && host == "api.openai.com":
		return "sk-", "OpenAI"
	}
	return "", ""
}

// checkAgentIdentity judges the agent's identity secret: empty until the
// agent's first start, then the base64url Ed25519 seed the agent wrote
// (internal/agent/identity.go). Anything else stops the agent from starting.
func checkAgentIdentity(hasValue bool, value string) verdict {
	if !hasValue || value == "" {
		return pass("empty: created by the agent on first start")
	}
	seed, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimSpace(value))
	if err == nil && len(seed) == 32 {
		return pass("holds the identity key the agent created (the agent owns it; never set it by hand)")
	}
	detail := "holds a value tether-agent cannot read as its key, so the agent will not start"
	if stackPlaceholder.MatchString(value) {
		detail = "holds the random placeholder an earlier data stack created, which tether-agent cannot read as its key, so the agent will not start"
	}
	return fail("report this to the vendor: the secret must be empty until the agent's first start, and tetherctl does not set it", "%s", detail)
}

// normalizeSecretInput removes the surrounding whitespace a file or a paste
// brings (a final newline, most often). Inner whitespace is left for the
// validators to refuse.
func normalizeSecretInput(b []byte) string {
	return strings.TrimSpace(string(b))
}

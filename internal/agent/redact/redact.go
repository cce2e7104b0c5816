// Package redact removes secrets and personal data from text before the
// agent lets it leave in a diagnostics bundle.
//
// The agent's logs are content-free by construction, so normally it finds
// nothing; it is there for the future log line that carries a token, an
// email address or a key. The preview shows the redacted text.
package redact

import (
	"regexp"
	"strings"
)

// rule replaces every match of re with repl (regexp.Expand syntax).
type rule struct {
	name string
	re   *regexp.Regexp
	repl string
}

// rules are applied in order; earlier rules take whole structures (PEM
// blocks, URLs' userinfo) before later ones look at their parts.
var rules = []rule{
	{"pem", regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*-----[\s\S]*?(-----END [A-Z0-9 ]*-----|$)`), "[REDACTED-PEM]"},
	{"url-userinfo", regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@"']*@`), "${1}[REDACTED]@"},
	{"bearer", regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+`), "${1} [REDACTED]"},
	{"jwt", regexp.MustCompile(`\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`), "[REDACTED-JWT]"},
	{"tether-token", regexp.MustCompile(`\btt_[A-Za-z0-9_-]+`), "tt_[REDACTED]"},
	{"aws-access-key", regexp.MustCompile(`\b(AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}\b`), "[REDACTED-AWS-KEY]"},
	{"email", regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`), "[REDACTED-EMAIL]"},
	// A JSON or key=value field whose name says it holds a secret loses its
	// value whatever the value looks like.
	{"secret-field", regexp.MustCompile(`(?i)("?[A-Za-z0-9_.-]*(secret|password|passwd|token|api_?key|private_?key|credential)[A-Za-z0-9_.-]*"?\s*[:=]\s*)("(\\.|[^"\\])*"|[^\s,"}]+)`), `${1}"[REDACTED]"`},
}

// awsSecretRe finds 40-character runs of base64 characters: the shape of an
// AWS secret access key. Lower-case hex digests have the same length, so
// only runs mixing upper and lower case are taken (see looksLikeAWSSecret).
var awsSecretRe = regexp.MustCompile(`[A-Za-z0-9/+]{40,}`)

// maxPasses bounds the fixed-point loop in String. Replacements contain no
// characters the patterns need, so one pass is normally enough.
const maxPasses = 4

// String returns s with every secret-looking part replaced by a marker.
func String(s string) string {
	for range maxPasses {
		out := once(s)
		if out == s {
			return out
		}
		s = out
	}
	return s
}

func once(s string) string {
	for _, r := range rules {
		s = r.re.ReplaceAllString(s, r.repl)
	}
	return awsSecretRe.ReplaceAllStringFunc(s, func(m string) string {
		if len(m) == 40 && looksLikeAWSSecret(m) {
			return "[REDACTED-AWS-SECRET]"
		}
		return m
	})
}

func looksLikeAWSSecret(s string) bool {
	return strings.ContainsAny(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") && strings.ContainsAny(s, "abcdefghijklmnopqrstuvwxyz")
}

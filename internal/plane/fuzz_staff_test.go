package plane_test

import (
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/tetherhq/tether/internal/plane"
)

// FuzzParseToken: a presented bearer token is outside input. What ParseToken
// accepts has the documented form.
func FuzzParseToken(f *testing.F) {
	f.Add("tpt_" + strings.Repeat("A", 43))
	f.Add("tpt_" + strings.Repeat("-", 42) + "=")
	f.Add("test-admin-token-0123456789abcdefghijkl")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		err := plane.ParseToken(s)
		if err != nil {
			// Long enough to be a secret: never repeated in the error.
			if len(s) >= 16 && strings.Contains(err.Error(), s) {
				t.Fatalf("the error repeats the token: %v", err)
			}
			return
		}
		rest, ok := strings.CutPrefix(s, plane.TokenPrefix)
		if !ok || len(rest) != 43 || strings.Trim(rest, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("accepted %q", s)
		}
	})
}

// FuzzStaffInput: staff add's input. What Validate accepts is printable,
// one line, with a known role and an http(s) issuer.
func FuzzStaffInput(f *testing.F) {
	f.Add("https://login.vendor.example", "00u-alice", "alice@vendor.example", "support")
	f.Add("login.vendor.example", "a\nb", "", "root")
	f.Add("https://x/?q=1", "s", "n", "viewer")
	f.Fuzz(func(t *testing.T, issuer, subject, name, role string) {
		in := plane.StaffInput{Issuer: issuer, Subject: subject, Name: name, Role: plane.Role(role)}
		if in.Validate() != nil {
			return
		}
		if !strings.HasPrefix(issuer, "https://") && !strings.HasPrefix(issuer, "http://") {
			t.Fatalf("accepted issuer %q", issuer)
		}
		if _, err := plane.ParseRole(role); err != nil {
			t.Fatalf("accepted role %q", role)
		}
		for _, v := range []string{subject, name} {
			if v == "" || strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
				t.Fatalf("accepted %q", v)
			}
		}
	})
}

// FuzzParseAuditQuery: the audit log's query string.
func FuzzParseAuditQuery(f *testing.F) {
	f.Add("customer=Acme&install=in_a&actor=alice&action=install.revoke&since=2026-11-01T00:00:00Z&limit=10")
	f.Add("limit=-1&since=yesterday")
	f.Add("install=../x&customer=%00")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		af, err := plane.ParseAuditQuery(q)
		if err != nil {
			return
		}
		if af.Limit < 0 || af.Limit > plane.MaxAuditLimit {
			t.Fatalf("limit %d accepted", af.Limit)
		}
		if strings.ContainsAny(af.InstallID, "/. \n") || strings.ContainsAny(af.Customer+af.Actor, "\x00\n\r") {
			t.Fatalf("accepted %+v", af)
		}
	})
}

// FuzzReleaseAuditBody: what a release command reports to the audit log.
func FuzzReleaseAuditBody(f *testing.F) {
	f.Add("release.publish", "stable", "1.4.0", "")
	f.Add("install.revoke", "../x", "1.4", "a\nb")
	f.Fuzz(func(t *testing.T, action, channel, version, reason string) {
		b := plane.ReleaseAuditBody{Action: action, Channel: channel, Version: version, Reason: reason}
		if b.Validate() != nil {
			return
		}
		if !strings.HasPrefix(action, "release.") || strings.ContainsAny(channel+version, "/ \n") || strings.ContainsAny(reason, "\n\r") {
			t.Fatalf("accepted %+v", b)
		}
	})
}

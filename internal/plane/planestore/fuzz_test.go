package planestore_test

import (
	"strings"
	"testing"
	"unicode"

	"github.com/tetherhq/tether/internal/plane/planestore"
)

// FuzzParseToken: a presented bearer token is outside input. What ParseToken
// accepts has the documented form.
func FuzzParseToken(f *testing.F) {
	f.Add("tpt_" + strings.Repeat("A", 43))
	f.Add("tpt_" + strings.Repeat("-", 42) + "=")
	f.Add("test-admin-token-0123456789abcdefghijkl")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		err := planestore.ParseToken(s)
		if err != nil {
			// Long enough to be a secret: never repeated in the error.
			if len(s) >= 16 && strings.Contains(err.Error(), s) {
				t.Fatalf("the error repeats the token: %v", err)
			}
			return
		}
		rest, ok := strings.CutPrefix(s, planestore.TokenPrefix)
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
		in := planestore.StaffInput{Issuer: issuer, Subject: subject, Name: name, Role: planestore.Role(role)}
		if in.Validate() != nil {
			return
		}
		if !strings.HasPrefix(issuer, "https://") && !strings.HasPrefix(issuer, "http://") {
			t.Fatalf("accepted issuer %q", issuer)
		}
		if _, err := planestore.ParseRole(role); err != nil {
			t.Fatalf("accepted role %q", role)
		}
		for _, v := range []string{subject, name} {
			if v == "" || strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
				t.Fatalf("accepted %q", v)
			}
		}
	})
}

package redact

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	tests := []struct {
		name, in string
		gone     []string // must not survive
		kept     []string // must survive
	}{
		{"tether token", `{"msg":"auth","tok":"x tt_AbC123_def-456 y"}`, []string{"AbC123_def-456"}, []string{`"msg":"auth"`}},
		{"bearer", `Authorization: Bearer abc.def.ghi123`, []string{"abc.def.ghi123"}, []string{"Authorization"}},
		{"email", `user alice.smith+x@example.co.uk failed`, []string{"alice.smith", "example.co.uk"}, []string{"user", "failed"}},
		{"aws access key", `key AKIAIOSFODNN7EXAMPLE used`, []string{"AKIAIOSFODNN7EXAMPLE"}, []string{"used"}},
		{"aws secret key", `secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY here`, []string{"wJalrXUtnFEMI"}, []string{"here"}},
		{"url userinfo", `dial postgres://admin:hunter2@db.internal:5432/x`, []string{"admin", "hunter2"}, []string{"db.internal:5432"}},
		{"jwt", `eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl`, []string{"eyJzdWIiOiJ4In0"}, nil},
		{"pem", "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----", []string{"MC4CAQAwBQYDK2VwBCIEI"}, nil},
		{"secret field json", `{"api_key":"plain-looking","install_id":"in_1"}`, []string{"plain-looking"}, []string{`"install_id":"in_1"`}},
		{"secret field kv", `password=opensesame next`, []string{"opensesame"}, []string{"next"}},
		{"hex digest kept", `hash 3f786850e387550fdab836ed7e6dc881de23001b`, nil, []string{"3f786850e387550fdab836ed7e6dc881de23001b"}},
		{"ids kept", `{"level":"INFO","msg":"heartbeat sent","install_id":"in_abc","seq":42}`, nil, []string{`"install_id":"in_abc"`, `"seq":42`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := String(tt.in)
			for _, g := range tt.gone {
				if strings.Contains(out, g) {
					t.Errorf("%q survived: %s", g, out)
				}
			}
			for _, k := range tt.kept {
				if !strings.Contains(out, k) {
					t.Errorf("%q was lost: %s", k, out)
				}
			}
			if f := Found(out); len(f) > 0 {
				t.Errorf("still found %v in %s", f, out)
			}
		})
	}
}

func FuzzString(f *testing.F) {
	f.Add("tt_abcdefgh bearer xyz alice@example.com AKIAIOSFODNN7EXAMPLE")
	f.Add("https://u:p@h/ -----BEGIN X-----")
	f.Add(`{"token":"\"quoted\""}`)
	f.Fuzz(func(t *testing.T, s string) {
		out := String(s)
		if f := Found(out); len(f) > 0 {
			t.Fatalf("String left %v in %q (from %q)", f, out, s)
		}
	})
}

// Found reports which rules match s, by name; the tests and the fuzz
// target use it to prove String leaves nothing behind. It is test code, so
// the shipped agent does not carry it.
func Found(s string) []string {
	var names []string
	for _, r := range rules {
		if r.name == "secret-field" {
			continue // its replacement is itself a (redacted) field
		}
		for _, m := range r.re.FindAllString(s, -1) {
			// A userinfo already replaced by the marker still has the
			// shape of a userinfo; only the marker is allowed there.
			if !strings.HasSuffix(m, "://[REDACTED]@") {
				names = append(names, r.name)
				break
			}
		}
	}
	for _, m := range awsSecretRe.FindAllString(s, -1) {
		if len(m) == 40 && looksLikeAWSSecret(m) {
			names = append(names, "aws-secret-key")
			break
		}
	}
	return names
}

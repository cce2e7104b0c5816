package oidcflow

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// A provider that cannot be reached: nothing here may get as far as the
// code exchange unless cookie and state match.
var nowhere = &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{AuthURL: "http://127.0.0.1:1/auth", TokenURL: "http://127.0.0.1:1/token"}}

func TestStartThenFinish(t *testing.T) {
	cookie, redirect := Start(nowhere, "/next")
	u, err := url.Parse(redirect)
	if err != nil || u.Query().Get("code_challenge_method") != "S256" || u.Query().Get("nonce") == "" {
		t.Fatalf("redirect %q lacks PKCE S256 or a nonce", redirect)
	}
	state := u.Query().Get("state")
	for _, tc := range []struct {
		name, cookie string
		q            url.Values
		want         string
	}{
		{"no cookie", "", url.Values{"state": {state}, "code": {"x"}}, "not started in this browser"},
		{"other state", cookie, url.Values{"state": {"forged"}, "code": {"x"}}, "state does not match"},
		{"provider error", cookie, url.Values{"state": {state}, "error": {"access_denied"}}, "answered access_denied"},
		{"crafted error", cookie, url.Values{"state": {state}, "error": {"<script>"}}, "answered an error"},
		{"no code", cookie, url.Values{"state": {state}}, "no authorization code"},
		{"exchange fails", cookie, url.Values{"state": {state}, "code": {"x"}}, "did not exchange"},
	} {
		p, raw, err := Finish(context.Background(), nowhere, tc.cookie, tc.q)
		var r *Refusal
		if !errors.As(err, &r) || !strings.Contains(r.Reason, tc.want) || raw != "" {
			t.Errorf("%s: %v, want a refusal saying %q", tc.name, err, tc.want)
		}
		if tc.name == "exchange fails" && (p.Next != "/next" || p.CheckNonce("other") == nil || p.CheckNonce(u.Query().Get("nonce")) != nil) {
			t.Errorf("pending sign-in read back wrong: %+v", p)
		}
	}
}

func FuzzFinish(f *testing.F) {
	cookie, _ := Start(nowhere, "")
	f.Add(cookie, "state=x&code=y")
	f.Add("", "")
	f.Add("e30", "error=%00")
	f.Fuzz(func(t *testing.T, cookie, query string) {
		q, _ := url.ParseQuery(query)
		_, raw, err := Finish(context.Background(), nowhere, cookie, q)
		var r *Refusal
		if !errors.As(err, &r) || raw != "" {
			t.Fatalf("Finish(%q, %q) = %q, %v; want a refusal", cookie, query, raw, err)
		}
	})
}

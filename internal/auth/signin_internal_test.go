package auth

import (
	"net/url"
	"testing"
)

func TestLogoutURL(t *testing.T) {
	t.Parallel()
	if got := logoutURL("", false, "c", "https://docs.example.com/", "tok"); got != "/" {
		t.Errorf("no end-session endpoint: %q", got)
	}
	cognito, _ := url.Parse(logoutURL("https://acme.auth.example.com/logout", true, "client1", "https://docs.example.com/", "tok"))
	if q := cognito.Query(); cognito.Path != "/logout" || q.Get("client_id") != "client1" || q.Get("logout_uri") != "https://docs.example.com/" || q.Has("id_token_hint") {
		t.Errorf("cognito: %s", cognito)
	}
	oidc, _ := url.Parse(logoutURL("https://idp.example.com/end?tenant=x", false, "client1", "https://docs.example.com/", "tok"))
	if q := oidc.Query(); q.Get("tenant") != "x" || q.Get("post_logout_redirect_uri") != "https://docs.example.com/" || q.Get("id_token_hint") != "tok" || q.Get("client_id") != "client1" {
		t.Errorf("oidc: %s", oidc)
	}
}

func TestIsCognito(t *testing.T) {
	t.Parallel()
	for iss, want := range map[string]bool{
		"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf": true,
		"https://cognito-idp.eu-west-1.amazonaws.com/a/b":              false,
		"http://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf":  false,
		"https://login.example.com/realms/staff":                       false,
	} {
		if isCognito(iss) != want {
			t.Errorf("isCognito(%q) = %v", iss, !want)
		}
	}
}

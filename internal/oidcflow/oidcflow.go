// Package oidcflow is the browser half of an OpenID Connect sign-in, the
// one docsvc's sign-in and the plane's staff sign-in share: the
// authorization code flow with PKCE (S256), its state and nonce kept
// between the redirect to the provider and the callback in a short-lived
// cookie that the caller sets and reads. Verifying the ID token, and what a
// signed-in person may do, stay with the caller.
package oidcflow

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// MaxAge is how long a sign-in may take, from the redirect to the provider
// to its callback: the pending cookie's lifetime.
const MaxAge = 10 * time.Minute

// Pending is a sign-in on its way through the provider.
type Pending struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"next,omitempty"` // where to go afterwards; the caller checks it
}

// Refusal is a sign-in refused: Reason is for the person signing in, and
// never quotes the code, a token or the provider's error body.
type Refusal struct {
	Status int
	Reason string
}

func (r *Refusal) Error() string { return r.Reason }

func refused(status int, reason string) error { return &Refusal{Status: status, Reason: reason} }

// Start begins a sign-in: the value of the pending cookie to set (Lax, for
// MaxAge: the provider's redirect back is a cross-site top-level GET) and
// the provider's URL to send the browser to.
func Start(oauth *oauth2.Config, next string) (cookie, redirect string) {
	p := Pending{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(), Next: next}
	b, _ := json.Marshal(p)
	return base64.RawURLEncoding.EncodeToString(b), oauth.AuthCodeURL(p.State, oidc.Nonce(p.Nonce), oauth2.S256ChallengeOption(p.Verifier))
}

// providerError keeps an error code from the provider's redirect only when
// it looks like one (RFC 6749 4.1.2.1), since anyone can craft that URL.
var providerError = regexp.MustCompile(`^[a-z_]{1,64}$`)

// Finish checks the provider's redirect back (its query q) against the
// pending cookie's value ("" when there is none) and exchanges the code,
// with the PKCE verifier, for the raw ID token, which the caller verifies
// and then checks with CheckNonce. Errors are *Refusal.
func Finish(ctx context.Context, oauth *oauth2.Config, cookie string, q url.Values) (Pending, string, error) {
	var p Pending
	b, err := base64.RawURLEncoding.DecodeString(cookie)
	if err == nil {
		err = json.Unmarshal(b, &p)
	}
	switch {
	case cookie == "" || err != nil || p.State == "" || p.Nonce == "" || p.Verifier == "":
		return p, "", refused(http.StatusBadRequest, "this sign-in was not started in this browser, or took longer than 10 minutes")
	case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(p.State)) != 1:
		return p, "", refused(http.StatusBadRequest, "the provider's answer does not belong to this browser's sign-in (state does not match)")
	case q.Get("error") != "":
		code := q.Get("error")
		if !providerError.MatchString(code) {
			code = "an error"
		}
		return p, "", refused(http.StatusBadRequest, "the identity provider answered "+code)
	case q.Get("code") == "":
		return p, "", refused(http.StatusBadRequest, "the provider's answer has no authorization code")
	}
	tok, err := oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(p.Verifier))
	if err != nil {
		// The provider's error body is not shown: it may quote the code.
		return p, "", refused(http.StatusBadGateway, "the identity provider did not exchange the authorization code")
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return p, "", refused(http.StatusBadGateway, "the identity provider returned no ID token")
	}
	return p, raw, nil
}

// CheckNonce refuses a verified ID token that was not issued for this
// sign-in.
func (p Pending) CheckNonce(nonce string) error {
	if subtle.ConstantTimeCompare([]byte(nonce), []byte(p.Nonce)) != 1 {
		return refused(http.StatusBadRequest, "the ID token does not belong to this browser's sign-in (nonce does not match)")
	}
	return nil
}

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Package reqverify is the plane's half of signed requests
// (internal/reqsign): it verifies the signature, time, nonce and install of
// each request and rejects those that are unsigned, more than MaxSkew away
// from its clock, replay a nonce, fail to verify against the named install's
// key, or name a revoked or unknown install. Only the plane links it; the
// agent must not (internal/boundary.VendorOnly).
package reqverify

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/tetherhq/tether/internal/reqsign"
)

// Why a request was rejected. Middleware answers each with 401 and the
// error's code (see Code).
var (
	ErrUnsigned       = errors.New("reqsign: request is not signed")
	ErrStale          = errors.New("reqsign: request time is outside the allowed clock skew")
	ErrReplayed       = errors.New("reqsign: nonce was already used")
	ErrBadSignature   = errors.New("reqsign: signature does not verify")
	ErrRevoked        = errors.New("reqsign: install is revoked")
	ErrUnknownInstall = errors.New("reqsign: unknown install")
)

// DefaultMaxSkew is how far the request time may be from the verifier's
// clock in either direction.
const DefaultMaxSkew = 5 * time.Minute

// MaxBody is the largest body Middleware reads (a diagnostics bundle is the
// largest thing the agent sends).
const MaxBody = 16 << 20

// KeyLookup returns an install's registered public key. It returns an error
// matching ErrUnknownInstall or ErrRevoked when the install may not sign.
type KeyLookup func(ctx context.Context, installID string) (ed25519.PublicKey, error)

// NonceStore remembers nonces until a time after which the request would be
// stale anyway. Remember reports fresh=false when the nonce was already
// remembered for that install.
type NonceStore interface {
	Remember(ctx context.Context, installID, nonce string, until time.Time) (fresh bool, err error)
}

// Verifier checks signed requests. Keys and Nonces are required; MaxSkew
// defaults to DefaultMaxSkew, Now to time.Now, Logger to no logging.
type Verifier struct {
	Keys    KeyLookup
	Nonces  NonceStore
	MaxSkew time.Duration
	Now     func() time.Time
	Logger  *slog.Logger // rejections are logged with the install ID and reason only
}

// Verify checks r's signature over body and returns the install that signed
// it. Errors match one of the package's sentinels, or are lookup/store
// failures (which are not the client's fault).
func (v *Verifier) Verify(r *http.Request, body []byte) (installID string, err error) {
	p, err := v.precheck(r)
	if err != nil {
		return "", err
	}
	return v.finish(r, p, body)
}

// pending is a request whose headers, time and key passed; its body and
// nonce are still to be checked.
type pending struct {
	installID, nonce string
	unix             int64
	sig              []byte
	pub              ed25519.PublicKey
	skew             time.Duration
}

// precheck does every check that needs no body: headers, time window and
// key lookup. Middleware runs it before reading the body, so an unsigned or
// stale caller cannot make the plane buffer megabytes.
func (v *Verifier) precheck(r *http.Request) (pending, error) {
	installID := r.Header.Get(reqsign.HeaderInstall)
	ts, nonce, sig := r.Header.Get(reqsign.HeaderTime), r.Header.Get(reqsign.HeaderNonce), r.Header.Get(reqsign.HeaderSignature)
	if installID == "" || ts == "" || nonce == "" || sig == "" {
		return pending{}, fmt.Errorf("reqsign: verify: %w", ErrUnsigned)
	}
	if !reqsign.ValidInstallID(installID) {
		return pending{}, fmt.Errorf("reqsign: verify: malformed %s: %w", reqsign.HeaderInstall, ErrBadSignature)
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || ts != strconv.FormatInt(unix, 10) {
		return pending{}, fmt.Errorf("reqsign: verify %s: malformed %s: %w", installID, reqsign.HeaderTime, ErrBadSignature)
	}
	if n, err := base64.RawURLEncoding.Strict().DecodeString(nonce); err != nil || len(n) != reqsign.NonceSize {
		return pending{}, fmt.Errorf("reqsign: verify %s: malformed %s: %w", installID, reqsign.HeaderNonce, ErrBadSignature)
	}
	rawSig, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil || len(rawSig) != ed25519.SignatureSize {
		return pending{}, fmt.Errorf("reqsign: verify %s: malformed %s: %w", installID, reqsign.HeaderSignature, ErrBadSignature)
	}

	clock := v.Now
	if clock == nil {
		clock = time.Now
	}
	now := clock()
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	// Compare in seconds: the header has second resolution, and converting
	// an attacker's huge Unix value to time.Time could overflow.
	maxS, nowS := int64(skew/time.Second), now.Unix()
	if unix < nowS-maxS || unix > nowS+maxS {
		return pending{}, fmt.Errorf("reqsign: verify %s: %w", installID, ErrStale)
	}

	pub, err := v.Keys(r.Context(), installID)
	if err != nil {
		return pending{}, fmt.Errorf("reqsign: verify %s: key lookup: %w", installID, err)
	}
	if len(pub) != ed25519.PublicKeySize {
		return pending{}, fmt.Errorf("reqsign: verify %s: registered key has %d bytes", installID, len(pub))
	}
	return pending{installID: installID, nonce: nonce, unix: unix, sig: rawSig, pub: pub, skew: skew}, nil
}

// finish checks the signature over the body, then uses up the nonce.
func (v *Verifier) finish(r *http.Request, p pending, body []byte) (string, error) {
	if !ed25519.Verify(p.pub, reqsign.Canonical(r.Method, reqsign.PathQuery(r), body, p.unix, p.nonce, p.installID), p.sig) {
		return "", fmt.Errorf("reqsign: verify %s: %w", p.installID, ErrBadSignature)
	}
	// Only a verified request may use up a nonce, so nobody can burn an
	// install's nonces (or fill the store) without its key. The nonce is
	// remembered for as long as this request's time stays within the skew.
	fresh, err := v.Nonces.Remember(r.Context(), p.installID, p.nonce, time.Unix(p.unix, 0).Add(p.skew))
	if err != nil {
		return "", fmt.Errorf("reqsign: verify %s: remember nonce: %w", p.installID, err)
	}
	if !fresh {
		return "", fmt.Errorf("reqsign: verify %s: %w", p.installID, ErrReplayed)
	}
	return p.installID, nil
}

// Code is the short machine-readable reason Middleware puts in its 401
// answers, or "" when err is not a rejection of the request.
func Code(err error) string {
	for _, c := range []struct {
		err  error
		code string
	}{
		{ErrUnsigned, "unsigned"}, {ErrStale, "stale"}, {ErrReplayed, "replayed"},
		{ErrBadSignature, "bad_signature"}, {ErrRevoked, "revoked"}, {ErrUnknownInstall, "unknown_install"},
	} {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}

type ctxKey struct{}

type keyCtxKey struct{}

// InstallFrom returns the verified install ID Middleware put in ctx.
func InstallFrom(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(ctxKey{}).(string)
	return id, ok
}

// KeyFrom returns the public key the request's signature verified with,
// which Middleware put in ctx. A handler that changes the key compares
// against this one, not a fresh lookup that may already see another.
func KeyFrom(ctx context.Context) (ed25519.PublicKey, bool) {
	k, ok := ctx.Value(keyCtxKey{}).(ed25519.PublicKey)
	return k, ok
}

// WithInstall returns ctx carrying installID, as Middleware does; handlers'
// tests use it to skip signing.
func WithInstall(ctx context.Context, installID string) context.Context {
	return context.WithValue(ctx, ctxKey{}, installID)
}

// Middleware verifies every request before next sees it. It checks the
// headers, time and key first, only then reads the body (at most MaxBody),
// restores it for next, and puts the install ID in the request context
// (InstallFrom) with the key it verified with (KeyFrom). Rejections get 401 {"error": Code(err)}; lookup or store
// failures get 500; an oversized body gets 413.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		p, err := v.precheck(r)
		if err == nil {
			body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
			if err != nil {
				var tooBig *http.MaxBytesError
				if errors.As(err, &tooBig) {
					writeError(w, http.StatusRequestEntityTooLarge, "body_too_large")
					return
				}
				writeError(w, http.StatusBadRequest, "unreadable_body")
				return
			}
		}
		installID := ""
		if err == nil {
			installID, err = v.finish(r, p, body)
		}
		if err != nil {
			code := Code(err)
			if v.Logger != nil {
				// The error text carries only a validated install ID and the
				// reason; an unvalidated header is not worth logging.
				id := r.Header.Get(reqsign.HeaderInstall)
				if !reqsign.ValidInstallID(id) {
					id = ""
				}
				v.Logger.LogAttrs(r.Context(), slog.LevelWarn, "signed request rejected",
					slog.String("install_id", id), slog.String("reason", code), slog.String("error", err.Error()))
			}
			if code == "" {
				writeError(w, http.StatusInternalServerError, "internal")
				return
			}
			writeError(w, http.StatusUnauthorized, code)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		ctx := context.WithValue(WithInstall(r.Context(), installID), keyCtxKey{}, p.pub)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func writeError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{code})
}

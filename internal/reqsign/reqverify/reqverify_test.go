package reqverify_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/reqsign"
	"github.com/tetherhq/tether/internal/reqsign/reqverify"
)

type bundle struct {
	now      time.Time
	keys     map[string]ed25519.PrivateKey // install ID → private key
	revoked  map[string]bool
	nonces   *reqverify.MemoryNonces
	verifier *reqverify.Verifier
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{
		now:     time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC),
		keys:    map[string]ed25519.PrivateKey{},
		revoked: map[string]bool{"ins_C": true},
	}
	for _, id := range []string{"ins_A", "ins_B", "ins_C"} {
		_, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		b.keys[id] = priv
	}
	b.nonces = &reqverify.MemoryNonces{Now: func() time.Time { return b.now }}
	b.verifier = &reqverify.Verifier{
		Keys: func(_ context.Context, id string) (ed25519.PublicKey, error) {
			priv, ok := b.keys[id]
			if !ok {
				return nil, reqverify.ErrUnknownInstall
			}
			if b.revoked[id] {
				return nil, reqverify.ErrRevoked
			}
			return priv.Public().(ed25519.PublicKey), nil
		},
		Nonces: b.nonces,
		Now:    func() time.Time { return b.now },
	}
	return b
}

// signed returns a request signed by install id at the bundle's time plus offset.
func (b *bundle) signed(t *testing.T, method, target string, body []byte, id string, offset time.Duration) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	if err := reqsign.Sign(r, body, id, b.keys[id], b.now.Add(offset)); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestVerify(t *testing.T) {
	body := []byte(`{"channel":"stable"}`)
	tests := []struct {
		name    string
		req     func(t *testing.T, b *bundle) (*http.Request, []byte)
		wantErr error
	}{
		{"valid POST", func(t *testing.T, b *bundle) (*http.Request, []byte) {
			return b.signed(t, "POST", "/v1/heartbeat", body, "ins_A", 0), body
		}, nil},
		{"valid GET with query and escaped path", func(t *testing.T, b *bundle) (*http.Request, []byte) {
			return b.signed(t, "GET", "/v1/tuf/stable/metadata/a%2Fb.json?x=1&y=2", nil, "ins_A", 0), nil
		}, nil},
		{"just inside the skew, ahead", func(t *testing.T, b *bundle) (*http.Request, []byte) {
			return b.signed(t, "POST", "/v1/heartbeat", body, "ins_A", 5*time.Minute), body
		}, nil},
		{"just inside the skew, behind", func(t *testing.T, b *bundle) (*http.Request, []byte) {
			return b.signed(t, "POST", "/v1/heartbeat", body, "ins_A", -5*time.Minute), body
		}, nil},
		{"stale, ahead", func(t *testing.T, b *bundle) (*http.Request, []byte) {
			return b.signed(t, "POST", "/v1/heartbeat", body, "ins_A", 5*time.Minute+time.Second), body
		}, reqverify.ErrStale},
		{"stale, behind", func(t *testing.T, b *bundle) (*http.Request, []byte) {
			return b.signed(t, "POST", "/v1/heartbeat", body, "ins_A", -5*time.Minute-time.Second), body
		}, reqverify.ErrStale},
		{"far future time", func(t *testing.T, b *bundle) (*http.Request, []byte) {
			r := b.signed(t, "POST", "/v1/heartbeat", body, "ins_A", 0)
			r.Header.Set(reqsign.HeaderTime, "9223372036854775807")
			return r, body
		}, reqverify.ErrStale},
		{"tampered method", func(t *testing.T, b *bundle) (*http.Request, []byte) {
			r := b.signed(t, "POST", "/v1/heartbeat", body, "ins_A", 0)
			r.Method = "PUT"
			return r, body
		}, reqverify.ErrBadSignature},
		{"tampered path", func(t *testing.T, b *bundle) (*http.Request, []byte) {
			r := b.signed(t, "POST", "/v1/heartbeat", body, "ins_A", 0)
			r.URL.Path = "/v1/telemetry"
			return r, body
		}, reqverify.ErrBadSignature},
		{"tampered query", func(t *testing.T, b *bundle) (*http.Request, []byte) {
			r := b.signed(t, "GET", "/v1/tuf/stable/targets/x?v=1", nil, "ins_A", 0)
			r.URL.RawQuery = "v=2"
			return r, nil
		}, reqverify.ErrBadSignature},
		{"added query", func(t *testing.T, b *bundle) (*http.Request, []byte) {
			r := b.signed(t, "GET", "/v1/diagnostics", nil, "ins_A", 0)
			r.URL.RawQuery = "all=1"
			return r, nil
		}, reqverify.ErrBadSignature},
		{"tampered body", func(t *testing.T, b *bundle) (*http.Request, []byte) {
			return b.signed(t, "POST", "/v1/heartbeat", body, "ins_A", 0), []byte(`{"channel":"beta"}`)
		}, reqverify.ErrBadSignature},
		{"tampered time", func(t *testing.T, b *bundle) (*http.Request, []byte) {
			r := b.signed(t, "POST", "/v1/heartbeat", body, "ins_A", 0)
			r.Header.Set(reqsign.HeaderTime, strconv.FormatInt(b.now.Unix()+1, 10))
			return r, body
		}, reqverify.ErrBadSignature},
		{"tampered nonce", func(t *testing.T, b *bundle) (*http.Request, []byte) {
			r := b.signed(t, "POST", "/v1/heartbeat", body, "ins_A", 0)
			r.Header.Set(reqsign.HeaderNonce, "AAAAAAAAAAAAAAAAAAAAAA")
			return r, body
		}, reqverify.ErrBadSignature},
		{"signed by A, claims B", func(t *testing.T, b *bundle) (*http.Request, []byte) {
			r := httptest.NewRequest("POST", "/v1/heartbeat", bytes.NewReader(body))
			if err := reqsign.Sign(r, body, "ins_B", b.keys["ins_A"], b.now); err != nil {
				t.Fatal(err)
			}
			return r, body
		}, reqverify.ErrBadSignature},
		{"A's signature, header switched to B", func(t *testing.T, b *bundle) (*http.Request, []byte) {
			r := b.signed(t, "POST", "/v1/heartbeat", body, "ins_A", 0)
			r.Header.Set(reqsign.HeaderInstall, "ins_B")
			return r, body
		}, reqverify.ErrBadSignature},
		{"revoked", func(t *testing.T, b *bundle) (*http.Request, []byte) {
			return b.signed(t, "POST", "/v1/heartbeat", body, "ins_C", 0), body
		}, reqverify.ErrRevoked},
		{"unknown install", func(t *testing.T, b *bundle) (*http.Request, []byte) {
			_, priv, _ := ed25519.GenerateKey(nil)
			r := httptest.NewRequest("POST", "/v1/heartbeat", bytes.NewReader(body))
			if err := reqsign.Sign(r, body, "ins_Z", priv, b.now); err != nil {
				t.Fatal(err)
			}
			return r, body
		}, reqverify.ErrUnknownInstall},
		{"malformed signature", func(t *testing.T, b *bundle) (*http.Request, []byte) {
			r := b.signed(t, "POST", "/v1/heartbeat", body, "ins_A", 0)
			r.Header.Set(reqsign.HeaderSignature, "not base64!")
			return r, body
		}, reqverify.ErrBadSignature},
		{"time with leading zero", func(t *testing.T, b *bundle) (*http.Request, []byte) {
			r := b.signed(t, "POST", "/v1/heartbeat", body, "ins_A", 0)
			r.Header.Set(reqsign.HeaderTime, "0"+r.Header.Get(reqsign.HeaderTime))
			return r, body
		}, reqverify.ErrBadSignature},
	}
	for _, h := range []string{reqsign.HeaderInstall, reqsign.HeaderTime, reqsign.HeaderNonce, reqsign.HeaderSignature} {
		tests = append(tests, struct {
			name    string
			req     func(t *testing.T, b *bundle) (*http.Request, []byte)
			wantErr error
		}{"unsigned: no " + h, func(t *testing.T, b *bundle) (*http.Request, []byte) {
			r := b.signed(t, "POST", "/v1/heartbeat", body, "ins_A", 0)
			r.Header.Del(h)
			return r, body
		}, reqverify.ErrUnsigned})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			r, sentBody := tt.req(t, b)
			id, err := b.verifier.Verify(r, sentBody)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify = %q, %v; want %v", id, err, tt.wantErr)
			}
			if err == nil && id != r.Header.Get(reqsign.HeaderInstall) {
				t.Fatalf("Verify returned install %q, signed by %q", id, r.Header.Get(reqsign.HeaderInstall))
			}
			if err != nil && b.nonces.Len() != 0 {
				t.Fatalf("a rejected request used up a nonce")
			}
		})
	}
}

func TestReplayRejected(t *testing.T) {
	b := setup(t)
	body := []byte(`{}`)
	r := b.signed(t, "POST", "/v1/heartbeat", body, "ins_A", 0)
	if _, err := b.verifier.Verify(r, body); err != nil {
		t.Fatalf("first use: %v", err)
	}
	b.now = b.now.Add(4 * time.Minute)
	if _, err := b.verifier.Verify(r, body); !errors.Is(err, reqverify.ErrReplayed) {
		t.Fatalf("replay within the window: %v, want ErrReplayed", err)
	}
	// Once the nonce would have expired, the request is stale anyway.
	b.now = b.now.Add(2 * time.Minute)
	if _, err := b.verifier.Verify(r, body); !errors.Is(err, reqverify.ErrStale) {
		t.Fatalf("replay after the window: %v, want ErrStale", err)
	}
	// The same nonce from a different install is not a replay of A's.
	r2 := b.signed(t, "POST", "/v1/heartbeat", body, "ins_B", 0)
	if _, err := b.verifier.Verify(r2, body); err != nil {
		t.Fatalf("B's request: %v", err)
	}
}

// countingReader records how much of a body was read.
type countingReader struct{ n int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	c.n += int64(len(p))
	clear(p)
	return len(p), nil
}

// An unsigned caller must not make the plane read (and buffer) its body.
func TestMiddlewareRejectsBeforeReadingTheBody(t *testing.T) {
	b := setup(t)
	h := b.verifier.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("handler called")
	}))
	body := &countingReader{}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/v1/diagnostics/d1/bundle", io.LimitReader(body, reqverify.MaxBody)))
	if w.Code != http.StatusUnauthorized || body.n != 0 {
		t.Fatalf("status %d after reading %d body bytes; want 401 having read none", w.Code, body.n)
	}
}

func TestMiddleware(t *testing.T) {
	b := setup(t)
	var gotBody []byte
	var gotID string
	var gotKey ed25519.PublicKey
	h := b.verifier.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotBody, _ = io.ReadAll(r.Body)
		gotID, _ = reqverify.InstallFrom(r.Context())
		gotKey, _ = reqverify.KeyFrom(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	body := []byte(`{"day":"2026-11-27"}`)

	t.Run("verified request reaches the handler with its body", func(t *testing.T) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, b.signed(t, "POST", "/v1/telemetry", body, "ins_A", 0))
		if w.Code != http.StatusNoContent || !bytes.Equal(gotBody, body) || gotID != "ins_A" {
			t.Fatalf("status %d, body %q, install %q", w.Code, gotBody, gotID)
		}
		if !gotKey.Equal(b.keys["ins_A"].Public()) {
			t.Fatalf("KeyFrom = %x, want ins_A's key, the one the signature verified with", gotKey)
		}
	})
	for _, tc := range []struct {
		name     string
		req      func() *http.Request
		wantCode int
		wantErr  string
	}{
		{"unsigned", func() *http.Request { return httptest.NewRequest("GET", "/v1/diagnostics", nil) }, 401, "unsigned"},
		{"revoked", func() *http.Request { return b.signed(t, "GET", "/v1/diagnostics", nil, "ins_C", 0) }, 401, "revoked"},
		{"tampered body", func() *http.Request {
			r := b.signed(t, "POST", "/v1/telemetry", body, "ins_A", 0)
			r.Body = io.NopCloser(strings.NewReader(`{"day":"2026-11-28"}`))
			return r
		}, 401, "bad_signature"},
		{"signed body over the cap", func() *http.Request {
			big := make([]byte, reqverify.MaxBody+1)
			return b.signed(t, "POST", "/v1/diagnostics/d1/bundle", big, "ins_A", 0)
		}, 413, "body_too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotID = "not called"
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tc.req())
			var resp struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.Fatalf("answer is not JSON: %q", w.Body.String())
			}
			if w.Code != tc.wantCode || resp.Error != tc.wantErr || gotID != "not called" {
				t.Fatalf("status %d error %q (handler saw %q), want %d %q and no handler call", w.Code, resp.Error, gotID, tc.wantCode, tc.wantErr)
			}
		})
	}
	t.Run("lookup failure is the server's fault", func(t *testing.T) {
		v := *b.verifier
		v.Keys = func(context.Context, string) (ed25519.PublicKey, error) { return nil, errors.New("database down") }
		w := httptest.NewRecorder()
		v.Middleware(http.NotFoundHandler()).ServeHTTP(w, b.signed(t, "GET", "/v1/diagnostics", nil, "ins_A", 0))
		if w.Code != http.StatusInternalServerError {
			t.Fatalf("status %d, want 500", w.Code)
		}
	})
}

// TestOverRealHTTP signs on the client side of a real connection, where the
// request target is rebuilt by net/http, and verifies on the server side.
func TestOverRealHTTP(t *testing.T) {
	b := setup(t)
	b.verifier.Now = time.Now
	b.nonces.Now = time.Now
	srv := httptest.NewServer(b.verifier.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := reqverify.InstallFrom(r.Context())
		fmt.Fprint(w, id)
	})))
	defer srv.Close()
	for _, target := range []string{"/v1/heartbeat", "/v1/tuf/stable/targets/app%2Fmanifest.json?v=3&x=%20y", "/"} {
		body := []byte(`{"x":1}`)
		req, err := http.NewRequest("POST", srv.URL+target, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := reqsign.Sign(req, body, "ins_B", b.keys["ins_B"], time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != "ins_B" {
			t.Errorf("%s: status %d, body %q", target, resp.StatusCode, got)
		}
	}
}

func TestMemoryNonces(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := &reqverify.MemoryNonces{Max: 2, Now: func() time.Time { return now }}
	remember := func(id, n string, ttl time.Duration) (bool, error) { return m.Remember(ctx, id, n, now.Add(ttl)) }
	if fresh, err := remember("a", "n1", time.Minute); !fresh || err != nil {
		t.Fatalf("first n1: %v %v", fresh, err)
	}
	if fresh, err := remember("a", "n1", time.Minute); fresh || err != nil {
		t.Fatalf("second n1: %v %v, want not fresh", fresh, err)
	}
	if fresh, err := remember("b", "n1", 2*time.Minute); !fresh || err != nil {
		t.Fatalf("n1 for another install: %v %v", fresh, err)
	}
	if _, err := remember("a", "n2", time.Minute); !errors.Is(err, reqverify.ErrNonceStoreFull) {
		t.Fatalf("third live nonce in a store of 2: %v, want ErrNonceStoreFull", err)
	}
	now = now.Add(time.Minute) // a/n1 expires; b/n1 is still live
	if fresh, err := remember("a", "n2", time.Minute); !fresh || err != nil {
		t.Fatalf("after expiry: %v %v", fresh, err)
	}
	if m.Len() != 2 {
		t.Fatalf("Len = %d after sweep, want 2", m.Len())
	}
	if fresh, _ := remember("b", "n1", time.Minute); fresh {
		t.Fatal("b/n1 forgotten before it expired")
	}
}

// FuzzVerify mutates a validly signed request's parts. Whatever the input,
// Verify must not panic, and it may succeed only when every signed part is
// unchanged.
func FuzzVerify(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(nil)
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	orig := httptest.NewRequest("POST", "/v1/heartbeat?a=1", nil)
	origBody := []byte(`{"a":1}`)
	if err := reqsign.Sign(orig, origBody, "ins_A", priv, now); err != nil {
		f.Fatal(err)
	}
	h := orig.Header
	f.Add("POST", "/v1/heartbeat?a=1", h.Get(reqsign.HeaderInstall), h.Get(reqsign.HeaderTime), h.Get(reqsign.HeaderNonce), h.Get(reqsign.HeaderSignature), origBody)
	f.Add("GET", "/", "", "", "", "", []byte(nil))
	f.Add("POST", "/v1/heartbeat?a=1", "ins_A", "-1", "x", "====", origBody)
	f.Fuzz(func(t *testing.T, method, target, install, ts, nonce, sig string, body []byte) {
		r, err := http.NewRequest(method, "http://plane.test"+target, nil)
		if err != nil {
			return
		}
		r.Header.Set(reqsign.HeaderInstall, install)
		r.Header.Set(reqsign.HeaderTime, ts)
		r.Header.Set(reqsign.HeaderNonce, nonce)
		r.Header.Set(reqsign.HeaderSignature, sig)
		v := &reqverify.Verifier{
			Keys: func(_ context.Context, id string) (ed25519.PublicKey, error) {
				if id != "ins_A" {
					return nil, reqverify.ErrUnknownInstall
				}
				return priv.Public().(ed25519.PublicKey), nil
			},
			Nonces: &reqverify.MemoryNonces{},
			Now:    func() time.Time { return now },
		}
		id, err := v.Verify(r, body)
		if err != nil {
			if reqverify.Code(err) == "" {
				t.Fatalf("rejection matches no sentinel: %v", err)
			}
			return
		}
		if id != "ins_A" || r.Method != "POST" || r.URL.RequestURI() != "/v1/heartbeat?a=1" || !bytes.Equal(body, origBody) ||
			ts != h.Get(reqsign.HeaderTime) || nonce != h.Get(reqsign.HeaderNonce) {
			t.Fatalf("Verify accepted a changed request: %s %s install %q time %q nonce %q body %q", r.Method, r.URL.RequestURI(), id, ts, nonce, body)
		}
	})
}

// BenchmarkVerify is the plane's per-request cost with the in-memory nonce
// store.
func BenchmarkVerify(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(nil)
	body := bytes.Repeat([]byte("x"), 2048)
	v := &reqverify.Verifier{
		Keys: func(context.Context, string) (ed25519.PublicKey, error) {
			return priv.Public().(ed25519.PublicKey), nil
		},
		Nonces: &reqverify.MemoryNonces{},
	}
	for b.Loop() {
		r := httptest.NewRequest("POST", "/v1/heartbeat", nil)
		if err := reqsign.Sign(r, body, "ins_A", priv, time.Now()); err != nil {
			b.Fatal(err)
		}
		if _, err := v.Verify(r, body); err != nil {
			b.Fatal(err)
		}
	}
}

package plane_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/tetherhq/tether/internal/plane"
)

// FuzzCheckBundle: an uploaded bundle is outside input; CheckBundle must
// never panic, and whatever it accepts must be a zip whose names stay local.
func FuzzCheckBundle(f *testing.F) {
	var good bytes.Buffer
	zw := zip.NewWriter(&good)
	w, _ := zw.Create("health.json")
	_, _ = w.Write([]byte(`{}`))
	_ = zw.Close()
	var evil bytes.Buffer
	zw = zip.NewWriter(&evil)
	_, _ = zw.Create("../../etc/passwd")
	_ = zw.Close()
	f.Add(good.Bytes())
	f.Add(evil.Bytes())
	f.Add([]byte("PK\x03\x04"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		err := plane.CheckBundle(data)
		if err != nil {
			if !errors.Is(err, plane.ErrBadBundle) {
				t.Fatalf("error %v does not match ErrBadBundle", err)
			}
			return
		}
		zr, zerr := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if zerr != nil {
			t.Fatalf("accepted an unreadable zip: %v", zerr)
		}
		for _, f := range zr.File {
			if !validLocal(f.Name) {
				t.Fatalf("accepted entry %q", f.Name)
			}
		}
	})
}

func validLocal(name string) bool {
	for _, seg := range bytes.Split([]byte(name), []byte("/")) {
		if string(seg) == ".." {
			return false
		}
	}
	return len(name) > 0 && name[0] != '/'
}

// FuzzRegistrationBody: license files come from disk and from the admin
// API; turning one into a registration must never panic and never keep the
// activation token.
func FuzzRegistrationBody(f *testing.F) {
	f.Add([]byte(`{"payload":{"id":"lic_1"},"key_id":"ab","signature":"cd","activation_token":"tok_0123456789abcdef"}`))
	f.Add([]byte(`{"payload":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		body, err := plane.RegistrationBody(data)
		if err != nil {
			return
		}
		var probe struct {
			ActivationToken string `json:"activation_token"`
		}
		if err := json.Unmarshal(body.License, &probe); err != nil || probe.ActivationToken != "" {
			t.Fatalf("registration body keeps a token or is not JSON: %s (%v)", body.License, err)
		}
		if len(body.ActivationTokenSHA256) != 64 {
			t.Fatalf("token hash %q", body.ActivationTokenSHA256)
		}
	})
}

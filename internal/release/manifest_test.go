package release

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func goodManifestJSON(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseManifest(t *testing.T) {
	t.Parallel()
	good := goodManifestJSON(t)
	m, err := ParseManifest(good)
	if err != nil {
		t.Fatalf("testdata manifest: %v", err)
	}
	if m.Version != "1.2.0" || m.Channel != "stable" || m.Artifacts["tether-agent"].Size != 1234 || m.Schema.Max != 7 {
		t.Errorf("parsed = %+v", m)
	}

	replace := func(old, new string) string {
		if !strings.Contains(string(good), old) {
			t.Fatalf("testdata lacks %q", old)
		}
		return strings.Replace(string(good), old, new, 1)
	}
	tests := []struct {
		name string
		in   string
	}{
		{"unknown field", replace(`"notes"`, `"extra": 1, "notes"`)},
		{"trailing data", string(good) + "{}"},
		{"not json", "version: 1"},
		{"empty", ""},
		{"version with v", replace(`"version": "1.2.0"`, `"version": "v1.2.0"`)},
		{"bad channel", replace(`"channel": "stable"`, `"channel": "STABLE"`)},
		{"artifact target elsewhere", replace(`"artifacts/1.2.0/tether-agent"`, `"artifacts/1.1.0/tether-agent"`)},
		{"short hash", replace(`"sha256": "`, `"sha256": "ab`)},
		{"negative size", replace(`"size": 1234`, `"size": -1`)},
		{"image tag only", replace(`@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"`, `:latest"`)},
		{"min_from newer", replace(`"min_from": "1.0.0"`, `"min_from": "1.3.0"`)},
		{"schema reversed", replace(`"min": 5`, `"min": 9`)},
		{"no published_at", replace(`"published_at": "2026-03-01T12:00:00Z",`, ``)},
		{"size as string", replace(`"size": 1234`, `"size": "1234"`)},
		{"oversized", string(good[:len(good)-2]) + `,"notes":"` + strings.Repeat("x", maxManifestBytes) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseManifest([]byte(tt.in)); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add(goodManifestJSON(f))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"version":"1.0.0-rc.1+b.5","channel":"beta","artifacts":{},"images":{},"min_from":"","schema":{"min":0,"max":0},"notes":"","published_at":"2026-01-01T00:00:00Z","revoked":false}`))
	f.Add([]byte(`[1,2,3]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not match ErrInvalid: %v", err)
			}
			return
		}
		// Whatever parses must survive a round trip unchanged and valid.
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseManifest(again)
		if err != nil {
			t.Fatalf("re-parse of accepted manifest: %v", err)
		}
		if m2.Version != m.Version || m2.Channel != m.Channel || len(m2.Artifacts) != len(m.Artifacts) || !m2.PublishedAt.Equal(m.PublishedAt) {
			t.Fatalf("round trip changed the manifest")
		}
	})
}

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0.0", "1.0.0", 0},
		{"1.0.0", "1.0.1", -1},
		{"1.10.0", "1.9.0", 1},
		{"2.0.0", "10.0.0", -1},
		{"1.0.0-rc.1", "1.0.0", -1},
		{"1.0.0-alpha", "1.0.0-alpha.1", -1},
		{"1.0.0-alpha.1", "1.0.0-beta", -1},
		{"1.0.0-beta.2", "1.0.0-beta.11", -1},
		{"1.0.0-rc.1", "1.0.0-beta.11", 1},
		{"1.0.0-dev.3", "1.0.0-preview", -1},
		{"18446744073709551615.0.0", "1.0.0", 1},
	}
	for _, tt := range tests {
		got, err := CompareVersions(tt.a, tt.b)
		if err != nil || got != tt.want {
			t.Errorf("CompareVersions(%s, %s) = %d, %v; want %d", tt.a, tt.b, got, err, tt.want)
		}
		back, _ := CompareVersions(tt.b, tt.a)
		if back != -tt.want {
			t.Errorf("CompareVersions not antisymmetric for %s, %s", tt.a, tt.b)
		}
	}
	// Only the wire's grammar: no build metadata, no other pre-release words
	// (a version is never a free-text channel, wire.ValidSemver).
	for _, bad := range []string{"", "1", "1.0", "1.0.0.0", "v1.0.0", "1.0.0-", "1.0.0+", "1.0.0-01", "1..0", "1.0.x", "18446744073709551616.0.0", "1.0.0-a..b", "1.0.0-é",
		"1.0.0+build.1", "1.0.0-rc.1+b.5", "1.0.0-alpha.beta", "1.0.0-confidential", "1.0.0-rc.01"} {
		if _, err := ParseVersion(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseVersion(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

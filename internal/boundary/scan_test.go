package boundary

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"testing"
)

// The scanner must find the canary in every form, or "zero hits" means nothing.
func TestScanFindsEveryForm(t *testing.T) {
	const canary = "CANARY-7f3a9c2e51d04b88"
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	zipped := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		f, _ := zw.Create("logs/agent.log")
		f.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	text := []byte("some log line mentioning " + canary + " and more")
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"plain", text},
		{"inside JSON", func() []byte { b, _ := json.Marshal(map[string]string{"x": string(text)}); return b }()},
		{"base64 offset 0", []byte(base64.StdEncoding.EncodeToString([]byte(canary)))},
		{"base64 offset 1", []byte(base64.StdEncoding.EncodeToString(append([]byte("a"), canary...)))},
		{"base64 offset 2", []byte(base64.StdEncoding.EncodeToString(append([]byte("ab"), text...)))},
		{"base64url", []byte(base64.URLEncoding.EncodeToString(append([]byte("xyz?"), text...)))},
		{"hex", []byte(hex.EncodeToString(text))},
		{"gzip", append([]byte("prefix"), gz(text)...)},
		{"zip", zipped(text)},
		{"gzip in zip", zipped(gz(text))},
		{"base64 of gzip", []byte(`{"payload_base64":"` + base64.StdEncoding.EncodeToString(gz(text)) + `"}`)},
		{"base64 of zip", []byte(base64.StdEncoding.EncodeToString(zipped(text)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if hits := Scan(tc.data, []string{canary}); len(hits) == 0 {
				t.Fatalf("canary not found in %s form", tc.name)
			}
		})
	}
	if hits := Scan([]byte("nothing to see here, CANARY-0000 is another"), []string{canary}); len(hits) != 0 {
		t.Fatalf("false positive: %v", hits)
	}
}

func FuzzScan(f *testing.F) {
	f.Add([]byte("PK\x03\x04garbage"), "CANARY-1")
	f.Add([]byte{0x1f, 0x8b, 0x08, 0, 0}, "CANARY-2")
	f.Fuzz(func(t *testing.T, data []byte, canary string) {
		if canary == "" {
			return
		}
		Scan(data, []string{canary}) // must not panic or run away
	})
}

package localbackup_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/localbackup"
)

const validManifest = `{"format":1,"created_at":"2026-12-02T06:00:00Z","documents":1,"files":[
{"path":"docsvc.db","size":4096,"sha256":"` + sha + `"},
{"path":"blobs/documents/doc_0123456789abcdef0123456789","size":10,"sha256":"` + sha + `"}]}`

const sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func TestParseManifest(t *testing.T) {
	if _, err := localbackup.ParseManifest([]byte(validManifest)); err != nil {
		t.Fatalf("a valid manifest: %v", err)
	}
	for name, bad := range map[string]string{
		"not JSON":           `{`,
		"unknown field":      strings.Replace(validManifest, `"format":1`, `"format":1,"extra":true`, 1),
		"newer format":       strings.Replace(validManifest, `"format":1`, `"format":2`, 1),
		"escaping path":      strings.Replace(validManifest, "blobs/documents/doc_", "blobs/../../etc/doc_", 1),
		"absolute path":      strings.Replace(validManifest, "blobs/documents/doc_", "/etc/doc_", 1),
		"hidden segment":     strings.Replace(validManifest, "blobs/documents/doc_", "blobs/.tmp-doc_", 1),
		"database not first": strings.Replace(validManifest, `"docsvc.db"`, `"blobs/x"`, 1),
		"count mismatch":     strings.Replace(validManifest, `"documents":1`, `"documents":2`, 1),
		"bad hash":           strings.Replace(validManifest, sha, "ABC", 1),
		"uppercase hash":     strings.Replace(validManifest, sha, strings.ToUpper(sha), 1),
		"negative size":      strings.Replace(validManifest, `"size":10`, `"size":-1`, 1),
		"trailing data":      validManifest + `{}`,
	} {
		if _, err := localbackup.ParseManifest([]byte(bad)); !errors.Is(err, localbackup.ErrManifest) {
			t.Errorf("%s: ParseManifest = %v, want ErrManifest", name, err)
		}
	}
}

// Whatever ParseManifest accepts names only files inside the backup, and
// survives a round trip unchanged.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(validManifest))
	f.Add([]byte(`{"format":1,"files":[]}`))
	f.Add([]byte(strings.Replace(validManifest, "documents/doc_", "a/./b", 1)))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := localbackup.ParseManifest(b)
		if err != nil {
			if !errors.Is(err, localbackup.ErrManifest) {
				t.Fatalf("error %v is not ErrManifest", err)
			}
			return
		}
		for i, file := range m.Files {
			if i > 0 && (!strings.HasPrefix(file.Path, "blobs/") || strings.Contains(file.Path, "..") || strings.Contains(file.Path, "/.") || strings.Contains(file.Path, "//")) {
				t.Fatalf("accepted path %q", file.Path)
			}
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := localbackup.ParseManifest(again)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip: %v, %+v != %+v", err, m2, m)
		}
	})
}

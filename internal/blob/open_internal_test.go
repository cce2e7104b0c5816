package blob

import (
	"path/filepath"
	"testing"
)

// FuzzParseStoreURL checks that any storage URL accepted names either an
// absolute, clean directory or a valid bucket with a key-safe prefix. It
// fuzzes the parser, not Open, which would create the directories.
func FuzzParseStoreURL(f *testing.F) {
	for _, s := range []string{"file:///data/blobs", "s3://bucket", "s3://bucket/a/b/", "file://rel", "s3://B", "::", "s3://bucket/../x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		loc, err := parseStoreURL(raw)
		if err != nil {
			return
		}
		switch {
		case loc.dir != "":
			if !filepath.IsAbs(loc.dir) || filepath.Clean(loc.dir) != loc.dir || loc.bucket != "" {
				t.Fatalf("parseStoreURL(%q) = %+v: directory not absolute and clean", raw, loc)
			}
		default:
			if !bucketName.MatchString(loc.bucket) {
				t.Fatalf("parseStoreURL(%q) = %+v: bad bucket", raw, loc)
			}
			if loc.prefix != "" && ValidateKey(loc.prefix) != nil {
				t.Fatalf("parseStoreURL(%q) = %+v: unsafe prefix", raw, loc)
			}
		}
	})
}

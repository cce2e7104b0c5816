package snapshot

import (
	"flag"
	"strings"
	"testing"
)

// Accepted so `go test ./... -update` (which rewrites the stacks' snapshots)
// runs in every package of the module.
var _ = flag.Bool("update", false, "unused here")

func TestNormalize(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	digest := "sha256:" + strings.Repeat("12", 32)
	in := `{"Resources":{"CDKMetadata":{"Type":"AWS::CDK::Metadata"},"B":{"Type":"X","Properties":{"Key":"` + hash + `.json","Image":"repo@` + digest + `"}}},` +
		`"Conditions":{"CDKMetadataAvailable":{}}}`
	got, err := Normalize([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	for _, gone := range []string{"CDKMetadata", hash} {
		if strings.Contains(s, gone) {
			t.Errorf("%q survived normalisation:\n%s", gone, s)
		}
	}
	for _, kept := range []string{"ASSET-HASH.json", digest, `"Type": "X"`} {
		if !strings.Contains(s, kept) {
			t.Errorf("%q missing after normalisation:\n%s", kept, s)
		}
	}
	if _, err := Normalize([]byte("not json")); err == nil {
		t.Error("Normalize accepted a non-JSON template")
	}
}

// Package snapshot normalises synthesized CloudFormation templates so they
// can be checked in and diffed: values that change with the CDK version
// rather than with our code (asset hashes, CDK metadata) are replaced.
package snapshot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
)

var hex64 = regexp.MustCompile(`(sha256:)?[0-9a-f]{64}`)

// Normalize returns the template re-indented with volatile values replaced.
// Image digests (sha256:…) are kept: they come from the deployment config.
func Normalize(template []byte) ([]byte, error) {
	var t map[string]any
	if err := json.Unmarshal(template, &t); err != nil {
		return nil, fmt.Errorf("snapshot: parse template: %w", err)
	}
	if res, ok := t["Resources"].(map[string]any); ok {
		delete(res, "CDKMetadata")
	}
	if cond, ok := t["Conditions"].(map[string]any); ok {
		delete(cond, "CDKMetadataAvailable")
		if len(cond) == 0 {
			delete(t, "Conditions")
		}
	}
	out, err := json.MarshalIndent(t, "", " ")
	if err != nil {
		return nil, fmt.Errorf("snapshot: render template: %w", err)
	}
	out = hex64.ReplaceAllFunc(out, func(m []byte) []byte {
		if bytes.HasPrefix(m, []byte("sha256:")) {
			return m
		}
		return []byte("ASSET-HASH")
	})
	return append(out, '\n'), nil
}

package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/tetherhq/tether/internal/auth/groupname"
)

// maxGroups bounds a token's group claim: a claim listing more names is
// refused rather than half read.
const maxGroups = 1000

// ErrBadGroups matches every refusal of a groups claim or group name.
var ErrBadGroups = groupname.ErrBad

// ValidGroupName checks one group name (groupname.Valid).
func ValidGroupName(g string) error { return groupname.Valid(g) }

// ParseGroupsClaim reads a verified token's group claim: a JSON array of
// group names (Cognito's cognito:groups, Okta's and Keycloak's groups), or
// one name as a string. An absent or null claim is no groups; anything
// else, or more than 1000 names, is an error. The names are not checked:
// only those equal to a configured shared group (which ValidGroupName
// checked) count, so a provider's other names (a directory's
// "CN=…,OU=…") are ignored, not refused.
func ParseGroupsClaim(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var names []string
	if raw[0] == '"' {
		var one string
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, fmt.Errorf("%w: not a JSON string", ErrBadGroups)
		}
		names = []string{one}
	} else if err := json.Unmarshal(raw, &names); err != nil {
		return nil, fmt.Errorf("%w: not a list of group names", ErrBadGroups)
	}
	if len(names) > maxGroups {
		return nil, fmt.Errorf("%w: more than %d groups", ErrBadGroups, maxGroups)
	}
	return names, nil
}

// sharedGroups is what of a token's group claim counts: the configured
// shared groups it lists, each as "<issuer> <group>" so that a group of
// the same name at another issuer is another group.
func (a *Authenticator) sharedGroups(issuer string, claims map[string]json.RawMessage) ([]string, error) {
	if a.groupsClaim == "" {
		return nil, nil
	}
	names, err := ParseGroupsClaim(claims[a.groupsClaim])
	if err != nil {
		return nil, err
	}
	var out []string
	for _, g := range names {
		if k := issuer + " " + g; slices.Contains(a.shared, g) && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

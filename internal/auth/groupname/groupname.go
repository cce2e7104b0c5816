// Package groupname is the rule for the names of the identity provider's
// groups that docsvc shares documents within (DOCSVC_OIDC_SHARED_GROUPS),
// apart from internal/auth so that configuration checks can use it
// without linking the authenticator.
package groupname

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLen is the longest group name, in bytes.
const MaxLen = 256

// ErrBad matches every refusal of a group name.
var ErrBad = errors.New("bad group name")

// Valid checks one group name: 1-256 bytes of printable UTF-8 without
// commas (DOCSVC_OIDC_SHARED_GROUPS separates names with them) or white
// space at either end.
func Valid(g string) error {
	switch {
	case g == "" || len(g) > MaxLen:
		return fmt.Errorf("%w: a group name must be 1-%d bytes", ErrBad, MaxLen)
	case !utf8.ValidString(g) || strings.IndexFunc(g, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return fmt.Errorf("%w: a group name must be printable text", ErrBad)
	case strings.Contains(g, ","):
		return fmt.Errorf("%w: a group name cannot contain a comma", ErrBad)
	case strings.TrimSpace(g) != g:
		return fmt.Errorf("%w: a group name cannot start or end with a space", ErrBad)
	}
	return nil
}

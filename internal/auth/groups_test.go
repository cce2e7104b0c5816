package auth_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/auth"
)

func TestParseGroupsClaim(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want []string
		bad  bool
	}{
		{``, nil, false},
		{`null`, nil, false},
		{`[]`, []string{}, false},
		{`["finance","legal"]`, []string{"finance", "legal"}, false},
		{`"finance"`, []string{"finance"}, false},
		{`["/org/finance team"]`, []string{"/org/finance team"}, false},
		{`42`, nil, true},
		{`{"finance":true}`, nil, true},
		{`["finance",7]`, nil, true},
		{`["CN=Finance,OU=Groups", ""]`, []string{"CN=Finance,OU=Groups", ""}, false}, // kept; they match no shared group
		{`{"finance":true}`, nil, true},
		{`[` + strings.Repeat(`"g",`, 1000) + `"g"]`, nil, true},
	} {
		got, err := auth.ParseGroupsClaim(json.RawMessage(tc.raw))
		if tc.bad {
			if !errors.Is(err, auth.ErrBadGroups) {
				t.Errorf("%.40s: %v %v, want ErrBadGroups", tc.raw, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%.40s: %q %v, want %q", tc.raw, got, err, tc.want)
		}
	}
}

// FuzzParseGroupsClaim: whatever a token's claim holds, it is refused with
// ErrBadGroups or read as at most 1000 names, the same when read again
// from their own encoding.
func FuzzParseGroupsClaim(f *testing.F) {
	for _, s := range []string{`["finance","legal"]`, `"finance"`, `null`, `42`, `["a,b"]`, `[""]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		names, err := auth.ParseGroupsClaim(raw)
		if err != nil {
			if !errors.Is(err, auth.ErrBadGroups) {
				t.Fatalf("error %v does not match ErrBadGroups", err)
			}
			return
		}
		if len(names) > 1000 {
			t.Fatalf("%d names accepted", len(names))
		}
		again, _ := json.Marshal(names)
		if back, err := auth.ParseGroupsClaim(again); err != nil || !slices.Equal(back, names) && len(names) > 0 {
			t.Fatalf("%q read back as %q, %v", names, back, err)
		}
	})
}

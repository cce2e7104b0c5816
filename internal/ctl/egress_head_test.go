package ctl

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/wire"
)

func TestParseExpectHead(t *testing.T) {
	hash := strings.Repeat("0a", 32)
	for s, want := range map[string]string{
		"42:" + hash:                   "",
		"0:" + wire.LedgerGenesis:      "",
		"9007199254740992:" + hash:     "",
		"42":                           "no ':'",
		":" + hash:                     "not a whole number",
		"+42:" + hash:                  "not a whole number",
		"-1:" + hash:                   "not a whole number",
		"4 2:" + hash:                  "not a whole number",
		"99999999999999999999:" + hash: "not a whole number",
		"9007199254740993:" + hash:     "count must be between 0 and 2^53",
		"42:" + strings.ToUpper(hash):  "64 lowercase hex",
		"42:" + hash[:63]:              "64 lowercase hex",
		"42:" + hash + ":1":            "64 lowercase hex",
		"0:" + hash:                    "64 zeros exactly when count is 0",
		"42:" + wire.LedgerGenesis:     "64 zeros exactly when count is 0",
		"42:sha256:" + hash:            "64 lowercase hex",
	} {
		h, err := parseExpectHead(s)
		if want == "" {
			if err != nil || fmt.Sprintf("%d:%s", h.Count, h.Hash) != s {
				t.Errorf("parseExpectHead(%q) = %+v, %v", s, h, err)
			}
			continue
		}
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "COUNT:SHA256") {
			t.Errorf("parseExpectHead(%q) = %v; want a usage error saying %q and the fix", s, err, want)
		}
	}
}

// FuzzParseExpectHead: whatever is accepted is a head the wire would carry,
// and reads back the same from its plain COUNT:SHA256 spelling; whatever is
// refused is a usage error.
func FuzzParseExpectHead(f *testing.F) {
	f.Add("42:" + strings.Repeat("0a", 32))
	f.Add("0:" + wire.LedgerGenesis)
	f.Add("-0:" + wire.LedgerGenesis)
	f.Add("007:" + strings.Repeat("f", 64))
	f.Add("1:")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseExpectHead(s)
		if err != nil {
			if !errors.Is(err, errUsage) {
				t.Fatalf("error is not a usage error: %v", err)
			}
			return
		}
		if rule := wire.CheckLedgerHead(int64(h.Count), h.Hash); rule != "" {
			t.Fatalf("accepted %q as %+v, which breaks %s", s, h, rule)
		}
		if again, err := parseExpectHead(fmt.Sprintf("%d:%s", h.Count, h.Hash)); err != nil || again != h {
			t.Fatalf("accepted %q as %+v, which does not read back: %+v, %v", s, h, again, err)
		}
	})
}

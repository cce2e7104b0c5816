package apitoken

import (
	"strings"
	"testing"
	"time"
)

func TestParseExpiry(t *testing.T) {
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"90d":                  now.AddDate(0, 0, 90),
		"720h":                 now.Add(720 * time.Hour),
		"2027-02-01T00:00:00Z": now.AddDate(0, 1, 0),
	} {
		if got, err := ParseExpiry(in, now); err != nil || !got.Equal(want) {
			t.Errorf("ParseExpiry(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0d", "-1d", "3651d", "d", "-5h", "2026-12-31T00:00:00Z", "tomorrow", "2027-02-01"} {
		if _, err := ParseExpiry(in, now); err == nil || !strings.Contains(err.Error(), "--expires") {
			t.Errorf("ParseExpiry(%q) = %v, want an error naming --expires", in, err)
		}
	}
}

func FuzzParseExpiry(f *testing.F) {
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range []string{"90d", "720h", "2027-02-01T00:00:00Z", "", "-1d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseExpiry(s, now)
		if err == nil && s != "" && !got.After(now) {
			t.Fatalf("ParseExpiry(%q) = %v, not after now", s, got)
		}
		if err != nil && !strings.Contains(err.Error(), "--expires") {
			t.Fatalf("error %q does not name --expires", err)
		}
	})
}

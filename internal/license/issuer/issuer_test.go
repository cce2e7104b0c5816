package issuer_test

import (
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/license/issuer"
)

func TestParseGrace(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"14d", 14 * 24 * time.Hour, false},
		{"36h", 36 * time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{"0d", 0, false},
		{"3650d", 3650 * 24 * time.Hour, false},
		{"3651d", 0, true},
		{"", 0, true},
		{"14", 0, true},
		{"-1d", 0, true},
		{"1.5d", 0, true},
		{"14D", 0, true},
		{"14d ", 0, true},
		{"2w", 0, true},
		{"9999999d", 0, true},
	}
	for _, tt := range tests {
		got, err := issuer.ParseGrace(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseGrace(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParseGrace(f *testing.F) {
	for _, s := range []string{"14d", "36h", "0m", "", "99999999999999999999d", "1e3h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := issuer.ParseGrace(s)
		if err == nil && (d < 0 || d > 3650*24*time.Hour) {
			t.Fatalf("ParseGrace(%q) = %v, outside 0..10y", s, d)
		}
	})
}

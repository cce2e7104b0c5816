package queue

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"json", `{"document_id":"01HZX"}`, true},
		{"tab newline", "a\tb\r\nc", true},
		{"emoji", "🙂", true},
		{"max", strings.Repeat("x", MaxBodyBytes), true},
		{"empty", "", false},
		{"too big", strings.Repeat("x", MaxBodyBytes+1), false},
		{"NUL", "a\x00", false},
		{"control", "a\x1b[31m", false},
		{"invalid UTF-8", "\xff", false},
		{"surrogate encoded", "\xed\xa0\x80", false},
		{"U+FFFE", "\uFFFE", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkBody([]byte(tt.body))
			if tt.ok && err != nil {
				t.Fatalf("checkBody = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidBody) {
				t.Fatalf("checkBody = %v, want ErrInvalidBody", err)
			}
		})
	}
}

func FuzzCheckBody(f *testing.F) {
	for _, s := range []string{"{}", "a\x00", "\xff", "ünï", "\t\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if err := checkBody(body); err != nil {
			if !errors.Is(err, ErrInvalidBody) {
				t.Fatalf("checkBody error %v is not ErrInvalidBody", err)
			}
			return
		}
		if len(body) == 0 || len(body) > MaxBodyBytes || !utf8.Valid(body) {
			t.Fatalf("accepted body of %d bytes, valid UTF-8 %v", len(body), utf8.Valid(body))
		}
		for _, r := range string(body) {
			if r < 0x20 && r != '\t' && r != '\n' && r != '\r' {
				t.Fatalf("accepted control character %U", r)
			}
		}
	})
}

func FuzzParseReceipt(f *testing.F) {
	for _, s := range []string{"abc.def", "", ".", "a.", ".b", "a.b.c", "garbage"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		id, token, err := parseReceipt(h)
		if err != nil {
			if !errors.Is(err, ErrReceiptInvalid) {
				t.Fatalf("parseReceipt(%q) error %v is not ErrReceiptInvalid", h, err)
			}
			return
		}
		if id == "" || token == "" || strings.Contains(id, ".") || strings.Contains(token, ".") || id+"."+token != h {
			t.Fatalf("parseReceipt(%q) = %q, %q", h, id, token)
		}
	})
}

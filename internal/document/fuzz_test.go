package document

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// FuzzDecodeCursor: a list cursor comes from the client; anything that is not
// one this service made must be ErrBadCursor, never a panic or an odd ID.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(1764320000000, NewID()))
	f.Add("")
	f.Add("MTc2NDMyMDAwMDAwMDpkb2Nf")
	f.Fuzz(func(t *testing.T, c string) {
		at, id, err := decodeCursor(c)
		if err != nil {
			if !errors.Is(err, ErrBadCursor) {
				t.Fatalf("decodeCursor(%q) error %v is not ErrBadCursor", c, err)
			}
			return
		}
		if !ValidID(id) {
			t.Fatalf("decodeCursor(%q) accepted ID %q", c, id)
		}
		if got := encodeCursor(at, id); got != c {
			// Re-encoding need not be byte-identical (padding), but it must round-trip.
			if at2, id2, err := decodeCursor(got); err != nil || at2 != at || id2 != id {
				t.Fatalf("cursor %q does not round-trip", c)
			}
		}
	})
}

// FuzzNormalizeFilename: a filename comes from the client. What is accepted
// is NFC, valid UTF-8, free of control characters and within the limit,
// and normalising it again changes nothing; what is refused says why.
func FuzzNormalizeFilename(f *testing.F) {
	f.Add("report.pdf")
	f.Add("e\u0301t\u00e9.txt")
	f.Add("a\x01b.txt")
	f.Add("a\xffb")
	f.Add(strings.Repeat("\u1100\u1161\u11a8", 40))
	f.Fuzz(func(t *testing.T, name string) {
		got, err := NormalizeFilename(name)
		if err != nil {
			var fe *FilenameError
			if !errors.As(err, &fe) || !(errors.Is(err, ErrFilenameTooLong) || errors.Is(err, ErrFilenameControl) || errors.Is(err, ErrFilenameEncoding)) {
				t.Fatalf("NormalizeFilename(%q) error %v has no reason", name, err)
			}
			return
		}
		if len(got) > MaxFilenameBytes || !utf8.ValidString(got) || !norm.NFC.IsNormalString(got) {
			t.Fatalf("NormalizeFilename(%q) = %q", name, got)
		}
		for _, r := range got {
			if unicode.IsControl(r) {
				t.Fatalf("NormalizeFilename(%q) kept control character %U", name, r)
			}
		}
		if again, err := NormalizeFilename(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q, %v", got, again, err)
		}
	})
}

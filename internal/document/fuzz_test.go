package document

import (
	"errors"
	"testing"
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

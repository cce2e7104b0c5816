package extract

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding"
)

// Text and Markdown are UTF-8, or UTF-16 that says so with a byte-order
// mark. Anything else is refused with the offset of the first byte that is
// not UTF-8, rather than guessed: a Latin-1 guess turns Shift-JIS or
// KOI8-R into confident nonsense that would then be analysed.
//
// HTML is decoded the way browsers decode it (the WHATWG encoding sniffing
// rules, via x/net/html/charset): a byte-order mark, else a <meta> charset
// declaration in the first 1024 bytes, else UTF-8 if the bytes are valid
// UTF-8, else Windows-1252.

var (
	utf16LEBOM = []byte{0xFF, 0xFE}
	utf16BEBOM = []byte{0xFE, 0xFF}
)

// utf16Order reports whether b starts with a UTF-16 byte-order mark, and
// which order it names (charset is its media-type name).
func utf16Order(b []byte) (bigEndian bool, charset string, ok bool) {
	switch {
	case bytes.HasPrefix(b, utf16LEBOM):
		return false, "utf-16le", true
	case bytes.HasPrefix(b, utf16BEBOM):
		return true, "utf-16be", true
	}
	return false, "", false
}

// decodeUTF16 decodes b, which starts with a UTF-16 byte-order mark, to
// UTF-8 without the mark. partial says b may be the head of a longer
// document, so an odd last byte or a high surrogate at the very end is
// dropped rather than refused. An unpaired surrogate is an error: the file
// is damaged, and decoding it would invent characters.
func decodeUTF16(b []byte, partial bool) ([]byte, error) {
	bigEndian, _, _ := utf16Order(b)
	b = b[2:]
	if len(b)%2 != 0 {
		if !partial {
			return nil, fmt.Errorf("UTF-16 text with an odd number of bytes: the file is cut short")
		}
		b = b[:len(b)-1]
	}
	units := make([]uint16, len(b)/2)
	for i := range units {
		if bigEndian {
			units[i] = binary.BigEndian.Uint16(b[2*i:])
		} else {
			units[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
	}
	for i := 0; i < len(units); i++ {
		switch u := units[i]; {
		case utf16.IsSurrogate(rune(u)) && u < 0xDC00: // high
			if i+1 == len(units) && partial {
				units = units[:i]
			} else if i+1 == len(units) || units[i+1] < 0xDC00 || units[i+1] >= 0xE000 {
				return nil, fmt.Errorf("UTF-16 text with an unpaired surrogate at offset %d: the file is damaged", 2+2*i)
			}
			i++
		case utf16.IsSurrogate(rune(u)): // low, without a high before it
			return nil, fmt.Errorf("UTF-16 text with an unpaired surrogate at offset %d: the file is damaged", 2+2*i)
		}
	}
	return []byte(string(utf16.Decode(units))), nil
}

// whyNotUTF8 explains what is wrong with text that is not valid UTF-8, with
// the fix: where the first bad byte is, and what the file probably is. It
// never quotes the document beyond that one byte's value.
func whyNotUTF8(b []byte) string {
	off := 0
	for off < len(b) {
		r, n := utf8.DecodeRune(b[off:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		off += n
	}
	if looksLikeUTF16(b) {
		return "text looks like UTF-16 without a byte-order mark: save it as UTF-8 (or UTF-16 with a byte-order mark)"
	}
	if off >= len(b) {
		return "text is not valid UTF-8"
	}
	return fmt.Sprintf("text is not valid UTF-8 (byte 0x%02X at offset %d): if it is Latin-1, Windows-1252 or another legacy encoding, save it as UTF-8", b[off], off)
}

// looksLikeUTF16 reports ASCII-range text stored as UTF-16 without a BOM:
// most bytes at one parity are NUL and almost none at the other.
func looksLikeUTF16(b []byte) bool {
	if len(b) < 8 {
		return false
	}
	var zeros [2]int
	for i, c := range b {
		if c == 0 {
			zeros[i%2]++
		}
	}
	half := len(b) / 2
	return (zeros[0] > half*3/4 && zeros[1] < half/8) || (zeros[1] > half*3/4 && zeros[0] < half/8)
}

// htmlEncoding is the encoding a browser would decode the page with, from
// its first 1024 bytes, and the name for its media type.
func htmlEncoding(head []byte) (encoding.Encoding, string) {
	e, name, _ := charset.DetermineEncoding(head, "text/html")
	return e, name
}

package extract

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"unicode/utf16"
)

// utf16Bytes encodes s as UTF-16 in the given order, with its byte-order mark.
func utf16Bytes(s string, bigEndian bool) []byte {
	units := append([]uint16{0xFEFF}, utf16.Encode([]rune(s))...)
	out := make([]byte, 2*len(units))
	for i, u := range units {
		if bigEndian {
			binary.BigEndian.PutUint16(out[2*i:], u)
		} else {
			binary.LittleEndian.PutUint16(out[2*i:], u)
		}
	}
	return out
}

func TestEncodings(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	latin1 := []byte("Caf\xe9 cr\xe8me, 12 \xa3")
	tests := []struct {
		name      string
		data      []byte
		filename  string
		format    Format
		media     string
		text      string
		graphics  bool
		detectErr string // part of Detect's error, when Detect refuses
	}{
		{name: "UTF-16LE text", data: utf16Bytes("Grüße, 𝄞 and tabs\tok\r\nline 2", false), filename: "a.txt",
			format: Text, media: "text/plain; charset=utf-16le", text: "Grüße, 𝄞 and tabs\tok\nline 2"},
		{name: "UTF-16BE Markdown", data: utf16Bytes("# Titel\n\nÄrger", true), filename: "notes.md",
			format: Markdown, media: "text/markdown; charset=utf-16be", text: "# Titel\n\nÄrger"},
		{name: "UTF-16LE HTML", data: utf16Bytes("<!doctype html><p>naïve</p><p>café</p>", false),
			format: HTML, media: "text/html; charset=utf-16le", text: "naïve\n\ncafé"},
		{name: "Latin-1 HTML with meta charset", data: []byte("<html><head><meta charset=\"iso-8859-1\"></head><body><p>caf\xe9</p></body></html>"),
			format: HTML, media: "text/html; charset=windows-1252", text: "café"},
		{name: "legacy HTML without a declaration is Windows-1252", data: []byte("<p>\x93quoted\x94 \x80 5</p>"),
			format: HTML, media: "text/html; charset=windows-1252", text: "“quoted” € 5"},
		{name: "HTML holding only SVG", data: []byte(`<!doctype html><html><body><svg viewBox="0 0 10 10"><text x="1" y="5">Label</text></svg></body></html>`),
			format: HTML, media: "text/html; charset=utf-8", text: "", graphics: true},
		{name: "Latin-1 plain text", data: latin1, filename: "a.txt",
			detectErr: "byte 0xE9 at offset 3): if it is Latin-1, Windows-1252 or another legacy encoding, save it as UTF-8"},
		{name: "UTF-16 without a byte-order mark", data: utf16Bytes("plain words here", false)[2:], filename: "a.txt",
			detectErr: "UTF-16 without a byte-order mark"},
		{name: "UTF-16 with an unpaired surrogate", data: append(utf16Bytes("ab", false), 0x00, 0xDC, 'c', 0), filename: "a.txt",
			detectErr: "unpaired surrogate at offset 6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			format, media, err := Detect(tt.data, tt.filename)
			if tt.detectErr != "" {
				if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tt.detectErr) {
					t.Fatalf("Detect: %v; want ErrUnsupported containing %q", err, tt.detectErr)
				}
				return
			}
			if err != nil || format != tt.format || media != tt.media {
				t.Fatalf("Detect = %q, %q, %v; want %q, %q", format, media, err, tt.format, tt.media)
			}
			res, err := extractBytes(t, format, tt.data, lim)
			checkInvariants(t, res, err, lim)
			if err != nil {
				t.Fatal(err)
			}
			if res.Text != tt.text || res.Graphics != tt.graphics {
				t.Errorf("Extract = %q (graphics %v); want %q (graphics %v)", res.Text, res.Graphics, tt.text, tt.graphics)
			}
		})
	}
}

// Extract checks the whole document, not only the head Detect saw: damage
// after the first 8 KiB is still found, and named.
func TestEncodingDamageAfterHead(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	long := strings.Repeat("fine text ", 1000)
	cases := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"UTF-16 cut to an odd length", utf16Bytes(long, false)[:2*len(long)+1], ErrMalformed, "odd number of bytes"},
		{"UTF-16 with a lone high surrogate at the end", append(utf16Bytes(long, true), 0xD8, 0x00), ErrMalformed, "unpaired surrogate"},
		{"Latin-1 after a UTF-8 head", append([]byte(long), 0xE9), ErrUnsupported, "byte 0xE9 at offset 10000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := Detect(c.data, "a.txt"); err != nil {
				t.Fatalf("Detect refused the head: %v", err)
			}
			res, err := extractBytes(t, Text, c.data, lim)
			checkInvariants(t, res, err, lim)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("Extract: %v; want %v containing %q", err, c.want, c.msg)
			}
		})
	}
}

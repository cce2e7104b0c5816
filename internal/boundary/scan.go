// Package boundary checks the product's promise that no document content
// leaves the customer's account. It finds canary strings in bytes in every
// form they could be smuggled in: plain, base64 (standard and URL alphabets,
// at any alignment), hex (either case), and inside gzip streams and zip
// archives, recursively.
package boundary

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"io"
	"strings"
)

// Hit is one place a canary was found.
type Hit struct {
	Canary string
	Form   string // "plain", "base64", "hex", and "gzip>…" / "zip:<name>>…" for nested finds
}

// maxInflate bounds how much one compressed stream may expand while being
// scanned, so a hostile input cannot exhaust memory.
const maxInflate = 64 << 20

// Scan reports every canary found in data.
func Scan(data []byte, canaries []string) []Hit {
	return scan(data, canaries, "", 0)
}

func scan(data []byte, canaries []string, prefix string, depth int) []Hit {
	var hits []Hit
	for _, c := range canaries {
		for _, f := range forms(c) {
			if bytes.Contains(data, f.needle) {
				hits = append(hits, Hit{Canary: c, Form: prefix + f.name})
			}
		}
	}
	if depth >= 3 {
		return hits
	}
	// gzip members anywhere in the data.
	for off := 0; ; {
		i := bytes.Index(data[off:], []byte{0x1f, 0x8b, 0x08})
		if i < 0 {
			break
		}
		off += i
		if zr, err := gzip.NewReader(bytes.NewReader(data[off:])); err == nil {
			zr.Multistream(false)
			inner, _ := io.ReadAll(io.LimitReader(zr, maxInflate))
			hits = append(hits, scan(inner, canaries, prefix+"gzip>", depth+1)...)
		}
		off++
	}
	// zip archives: scan each entry, stored or deflated.
	if i := bytes.Index(data, []byte("PK\x03\x04")); i >= 0 {
		if zr, err := zip.NewReader(bytes.NewReader(data[i:]), int64(len(data)-i)); err == nil {
			for _, f := range zr.File {
				rc, err := f.Open()
				if err != nil {
					continue
				}
				inner, _ := io.ReadAll(io.LimitReader(rc, maxInflate))
				rc.Close()
				hits = append(hits, scan(inner, canaries, prefix+"zip:"+f.Name+">", depth+1)...)
			}
		} else {
			// A zip that does not parse whole may still hold a raw deflate stream.
			hits = append(hits, scanDeflate(data[i:], canaries, prefix, depth)...)
		}
	}
	// base64 text that decodes to something compressed.
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for _, run := range base64Runs(data) {
			dec, err := enc.DecodeString(padded(run))
			if err == nil && len(dec) > 0 && (bytes.HasPrefix(dec, []byte{0x1f, 0x8b}) || bytes.HasPrefix(dec, []byte("PK"))) {
				hits = append(hits, scan(dec, canaries, prefix+"base64>", depth+1)...)
			}
		}
	}
	return hits
}

func scanDeflate(data []byte, canaries []string, prefix string, depth int) []Hit {
	if len(data) < 30 {
		return nil
	}
	nameLen := int(data[26]) | int(data[27])<<8
	extraLen := int(data[28]) | int(data[29])<<8
	start := 30 + nameLen + extraLen
	if start >= len(data) {
		return nil
	}
	inner, _ := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(data[start:])), maxInflate))
	return scan(inner, canaries, prefix+"deflate>", depth+1)
}

type form struct {
	name   string
	needle []byte
}

// forms returns the byte strings whose presence means the canary is there.
// A canary inside a longer base64 text is encoded differently at each of the
// three alignments; the middle of each encoding is alignment-stable.
func forms(c string) []form {
	out := []form{
		{"plain", []byte(c)},
		{"plain-lower", []byte(strings.ToLower(c))},
		{"hex", []byte(hex.EncodeToString([]byte(c)))},
		{"hex-upper", []byte(strings.ToUpper(hex.EncodeToString([]byte(c))))},
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for pad := 0; pad < 3; pad++ {
			s := enc.EncodeToString(append(bytes.Repeat([]byte{0}, pad), c...))
			// Drop the characters that mix in neighbouring bytes.
			lead := (pad*8 + 5) / 6
			s = strings.TrimRight(s, "=")
			if len(s)-lead-2 > 8 {
				out = append(out, form{"base64", []byte(s[lead : len(s)-2])})
			}
		}
	}
	return out
}

// base64Runs returns the runs of base64-alphabet characters long enough to
// hold a compressed payload.
func base64Runs(data []byte) []string {
	var runs []string
	start := -1
	for i := 0; i <= len(data); i++ {
		in := i < len(data) && isB64(data[i])
		if in && start < 0 {
			start = i
		}
		if !in && start >= 0 {
			if i-start >= 24 {
				runs = append(runs, string(data[start:i]))
			}
			start = -1
		}
	}
	return runs
}

func isB64(b byte) bool {
	return b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '+' || b == '/' || b == '-' || b == '_' || b == '='
}

func padded(s string) string {
	s = strings.TrimRight(s, "=")
	for len(s)%4 != 0 {
		s += "="
	}
	return s
}

package apitoken_test

import (
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/apitoken"
)

func TestNewParseRoundTrip(t *testing.T) {
	tok, err := apitoken.New()
	if err != nil {
		t.Fatal(err)
	}
	id, secret, ok := apitoken.Parse(tok.Plaintext)
	if !ok || id != tok.ID || apitoken.Hash(secret) != tok.Hash {
		t.Fatalf("Parse(%q) = %q, %v; token %+v", tok.Plaintext, id, ok, tok)
	}
	sid, sh, err := apitoken.ParseStored(tok.Stored())
	if err != nil || sid != tok.ID || sh != tok.Hash {
		t.Fatalf("ParseStored(%q) = %q, %q, %v", tok.Stored(), sid, sh, err)
	}
	if strings.Contains(tok.Stored(), strings.TrimPrefix(tok.Plaintext, apitoken.Prefix+tok.ID+"_")) {
		t.Fatal("stored form contains the secret")
	}
}

func TestParseStoredErrors(t *testing.T) {
	h := strings.Repeat("a", 64)
	for _, in := range []string{"", "0123456789abcdef", "0123456789ABCDEF:" + h, "0123:" + h,
		"0123456789abcdef:" + h[:63], "0123456789abcdef:" + strings.Repeat("A", 64), "tt_0123456789abcdef_" + h} {
		if _, _, err := apitoken.ParseStored(in); err == nil {
			t.Errorf("ParseStored(%q) accepted", in)
		} else if len(in) > 20 && strings.Contains(err.Error(), in[17:]) {
			t.Errorf("error %q repeats the value", err)
		}
	}
}

func FuzzParseStored(f *testing.F) {
	f.Add("0123456789abcdef:" + strings.Repeat("0", 64))
	f.Add("x:y")
	f.Fuzz(func(t *testing.T, s string) {
		id, hash, err := apitoken.ParseStored(s)
		if err != nil {
			return
		}
		if !apitoken.ValidID(id) || len(hash) != 64 || id+":"+hash != strings.TrimSpace(s) {
			t.Fatalf("ParseStored(%q) = %q, %q", s, id, hash)
		}
	})
}

func FuzzParse(f *testing.F) {
	tok, _ := apitoken.New()
	f.Add(tok.Plaintext)
	f.Add("tt_0123456789abcdef_")
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, ok := apitoken.Parse(s)
		if ok && apitoken.Prefix+id+"_"+secret != s {
			t.Fatalf("Parse(%q) = %q, %q", s, id, secret)
		}
	})
}

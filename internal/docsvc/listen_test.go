package docsvc

import (
	"strings"
	"testing"
)

func TestParseListenFDs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want []int
		err  string
	}{
		{"", nil, ""},
		{"3", []int{3}, ""},
		{"3,4", []int{3, 4}, ""},
		{"2", nil, "not a descriptor number"},
		{"3,3", nil, "twice"},
		{"3,4,5", nil, "want one or two"},
		{"x", nil, "not a descriptor number"},
		{"3,", nil, "not a descriptor number"},
	} {
		got, err := parseListenFDs(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), ListenFDsEnv) {
				t.Errorf("%q: err %v, want one naming %s and saying %q", c.in, err, ListenFDsEnv, c.err)
			}
			continue
		}
		if err != nil || len(got) != len(c.want) || (len(got) > 0 && got[0] != c.want[0]) || (len(got) > 1 && got[1] != c.want[1]) {
			t.Errorf("%q: got %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestInheritedListenersRefusesNonSocket(t *testing.T) {
	t.Parallel()
	// Descriptor 1000 is not open in the test process.
	if _, err := inheritedListeners("1000"); err == nil || !strings.Contains(err.Error(), "not a listening socket") {
		t.Fatalf("err %v, want a refusal naming the descriptor", err)
	}
}

func FuzzParseListenFDs(f *testing.F) {
	for _, s := range []string{"", "3", "3,4", "0", "3,3", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fds, err := parseListenFDs(s)
		if err != nil {
			return
		}
		if len(fds) > 2 {
			t.Fatalf("%q: %d descriptors", s, len(fds))
		}
		for _, fd := range fds {
			if fd < 3 {
				t.Fatalf("%q: stdio descriptor %d accepted", s, fd)
			}
		}
	})
}

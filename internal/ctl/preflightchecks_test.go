package ctl

import "testing"

func TestCertCovers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		names []string
		host  string
		want  bool
	}{
		{[]string{"docs.acme.example"}, "docs.acme.example", true},
		{[]string{"DOCS.acme.example."}, "docs.acme.example", true},
		{[]string{"acme.example", "*.acme.example"}, "docs.acme.example", true},
		{[]string{"*.acme.example"}, "acme.example", false},
		{[]string{"*.example"}, "docs.acme.example", false},
		{[]string{"*.acme.example"}, "a.docs.acme.example", false},
		{[]string{"other.acme.example"}, "docs.acme.example", false},
		{[]string{"*docs.acme.example"}, "docs.acme.example", false},
		{nil, "docs.acme.example", false},
	} {
		if got := certCovers(tc.names, tc.host); got != tc.want {
			t.Errorf("certCovers(%q, %q) = %v, want %v", tc.names, tc.host, got, tc.want)
		}
	}
}

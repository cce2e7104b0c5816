package plane

import (
	"net"
	"net/http/httptest"
	"strings"
	"testing"
)

// clientAddr reads X-Forwarded-For, which any client can send: whatever it
// holds, the result is an IP address (the load balancer's last entry or
// the peer), never the header's raw text.
func FuzzClientAddr(f *testing.F) {
	for _, s := range []string{"", "203.0.113.9", "198.51.100.1, 203.0.113.9", "evil, ::1", "not an ip", "1.2.3.4,,", strings.Repeat("1,", 100)} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, xff string, trust bool) {
		s := &Server{cfg: Config{TrustForwardedFor: trust}}
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "192.0.2.7:4242"
		r.Header.Set("X-Forwarded-For", xff)
		got := s.clientAddr(r)
		if net.ParseIP(got) == nil {
			t.Fatalf("clientAddr(%q) = %q, not an IP address", xff, got)
		}
		if !trust && got != "192.0.2.7" {
			t.Fatalf("untrusted X-Forwarded-For %q changed the address to %q", xff, got)
		}
	})
}

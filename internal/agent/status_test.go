package agent

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/toolproc"
)

// The status page answers only requests addressed to it: a page elsewhere
// that rebinds its own name to 127.0.0.1 sends that name as Host and is
// refused, so it cannot read the install's state.
func TestStatusPageChecksHost(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.cfg.StatusAddr = toolproc.FreeAddr(t)
	b.start()
	b.waitHeartbeats(1)
	_, port, _ := net.SplitHostPort(b.cfg.StatusAddr)
	for _, tc := range []struct {
		host string
		want int
	}{
		{"127.0.0.1:" + port, http.StatusOK},
		{"localhost:" + port, http.StatusOK},
		{"LOCALHOST:" + port, http.StatusOK},
		{"[::1]:" + port, http.StatusOK},
		{"rebind.attacker.example:" + port, http.StatusMisdirectedRequest},
		{"rebind.attacker.example", http.StatusMisdirectedRequest},
		{"localhost.attacker.example:" + port, http.StatusMisdirectedRequest},
		{"127.0.0.1.nip.io:" + port, http.StatusMisdirectedRequest},
		{"127.0.0.1:1", http.StatusMisdirectedRequest},
		{"127.0.0.1", http.StatusMisdirectedRequest},
		{"10.0.0.5:" + port, http.StatusMisdirectedRequest},
	} {
		for _, path := range []string{"/", "/status.json"} {
			req, err := http.NewRequest("GET", "http://"+b.cfg.StatusAddr+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tc.host
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Errorf("Host %q %s: %d, want %d", tc.host, path, res.StatusCode, tc.want)
			}
			if tc.want != http.StatusOK && strings.Contains(string(body), "install") {
				t.Errorf("Host %q %s: a refusal shows the page: %s", tc.host, path, body)
			}
		}
	}
}

func TestListenedHost(t *testing.T) {
	t.Parallel()
	private := &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 8091}
	web := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 80}
	for _, tc := range []struct {
		listen *net.TCPAddr
		host   string
		want   bool
	}{
		{private, "10.1.2.3:8091", true},
		{private, "localhost:8091", false}, // the listener is not on loopback
		{private, "127.0.0.1:8091", false},
		{private, "agent.internal:8091", false},
		{web, "localhost", true}, // a browser leaves out port 80
		{web, "127.0.0.1", true},
		{web, "[::1]", true},
		{web, "evil.example", false},
		{web, "", false},
	} {
		if got := listenedHost(tc.listen, tc.host); got != tc.want {
			t.Errorf("listening on %s, Host %q: %v, want %v", tc.listen, tc.host, got, tc.want)
		}
	}
}

// FuzzListenedHost: the Host header is the client's. Whatever it is, an
// accepted one names the listener's port and a loopback address or name.
func FuzzListenedHost(f *testing.F) {
	for _, h := range []string{"127.0.0.1:8091", "localhost:8091", "[::1]:8091", "evil.example:8091", "[::1", ":8091", "localhost"} {
		f.Add(h)
	}
	l := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 8091}
	f.Fuzz(func(t *testing.T, host string) {
		if !listenedHost(l, host) {
			return
		}
		h, port, err := net.SplitHostPort(host)
		if err != nil || port != strconv.Itoa(l.Port) {
			t.Fatalf("accepted Host %q", host)
		}
		if ip := net.ParseIP(h); !strings.EqualFold(h, "localhost") && (ip == nil || !ip.IsLoopback()) {
			t.Fatalf("accepted Host %q", host)
		}
	})
}

package main

import (
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/maintest"
)

// The test binary is tether-plane itself when this is set, so the tests run
// the real main, exit status included.
const asMain = "TETHER_PLANE_TEST_AS_MAIN"

func TestMain(m *testing.M) { maintest.Hook(m, asMain, main) }

// Success exits 0 (help included), a command-line mistake 2, any other
// failure 1, as in docsvc, tether-agent and tetherctl (internal/cli).
func TestExitCodes(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: an admin command that must reach the
	// plane fails there.
	env := []string{"TETHER_PLANE_URL=http://127.0.0.1:1", "TETHER_ADMIN_TOKEN=" + strings.Repeat("a", 40)}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--help"}, 0},
		{[]string{"license", "list", "--help"}, 0},
		{nil, 2},
		{[]string{"nosuch"}, 2},
		{[]string{"serve", "--bogus"}, 2},
		{[]string{"license", "list", "--output", "xml"}, 2},
		{[]string{"license", "list"}, 1},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			r := maintest.Run(t, asMain, env, tc.args...)
			if r.Code != tc.want {
				t.Fatalf("exit %d, want %d; stderr %q", r.Code, tc.want, r.Stderr)
			}
			if tc.want != 0 && !strings.Contains(r.Stderr, "tether-plane") {
				t.Errorf("stderr does not name the command: %q", r.Stderr)
			}
		})
	}
}

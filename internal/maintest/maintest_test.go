package maintest

import (
	"fmt"
	"testing"
)

func TestCommands(t *testing.T) {
	help := `tool — does things

Usage:
  tool serve [--addr A]      run the server
  tool token create --name N  make a token
  tool token list            list them
  tool config check deep     nested three deep
  other thing                not this tool's line
`
	for _, tc := range []struct {
		depth int
		want  string
	}{
		{0, "[[serve] [token] [token create] [token list] [config] [config check] [config check deep]]"},
		{2, "[[serve] [token] [token create] [token list] [config] [config check]]"},
		{1, "[[serve] [token] [config]]"},
	} {
		if got := fmt.Sprint(Commands(help, "tool", tc.depth)); got != tc.want {
			t.Errorf("depth %d: %s, want %s", tc.depth, got, tc.want)
		}
	}
}

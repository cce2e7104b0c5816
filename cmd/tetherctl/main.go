// Command tetherctl is the customer operator's CLI.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/tetherhq/tether/internal/ctl"
)

func main() {
	err := ctl.RunEnv(context.Background(), os.Args[1:], ctl.Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv,
	})
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, err)
	if ctl.IsUsage(err) {
		os.Exit(2)
	}
	os.Exit(1)
}

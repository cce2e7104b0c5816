package agent

import (
	"context"
	"flag"
	"fmt"
	"io"
)

const usage = `tether-agent — the customer-side, outbound-only coordination agent

usage:
  tether-agent run [flags]          run the agent
  tether-agent version              print the agent's version

Every command explains itself: 'tether-agent COMMAND --help'. See docs/agent.md.
`

const helpRun = `usage: tether-agent run [flags]

Runs the agent: activates once with the license's token, then heartbeats,
polls diagnostics requests, checks releases and re-verifies the license until
SIGTERM. Every flag can come from its environment variable instead; a flag
wins over its variable. Bad values are reported together, one per line
(exit status 2).
`

const helpVersion = `usage: tether-agent version

Prints the agent's version.
`

// wantsHelp reports whether any argument before "--" asks for help.
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

// Main is the tether-agent command; cmd/tether-agent exits 2 for errors
// matching ErrUsage, 1 for the rest. Help goes to stdout and does nothing
// else.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command given\n%s", ErrUsage, usage)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if args[0] == "help" && len(args) > 1 {
			return Main(ctx, append(append([]string(nil), args[1:2]...), "--help"), getenv, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	case "run":
		if wantsHelp(args[1:]) {
			return writeRunHelp(stdout)
		}
		cfg, err := ParseConfig(args[1:], getenv)
		if err != nil {
			return err
		}
		a, err := New(ctx, cfg, Options{Stderr: stderr})
		if err != nil {
			return err
		}
		defer a.Close()
		return a.Run(ctx)
	case "version":
		if wantsHelp(args[1:]) {
			fmt.Fprint(stdout, helpVersion)
			return nil
		}
		if len(args) > 1 {
			return fmt.Errorf("%w: version takes no arguments", ErrUsage)
		}
		fmt.Fprintln(stdout, Version)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q (see 'tether-agent --help')", ErrUsage, args[0])
}

// writeRunHelp prints run's help with every flag, its variable and its
// built-in default; never a value from the environment (TETHER_LICENSE
// holds the one-time activation token).
func writeRunHelp(w io.Writer) error {
	fs, _ := runFlags(func(string) string { return "" })
	fmt.Fprint(w, helpRun+"\nFlags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	return nil
}

// runFlags is run's flag set, each flag's default taken from its variable
// (getenv) or else the built-in one; raw holds each flag's text by name.
func runFlags(getenv func(string) string) (*flag.FlagSet, map[string]*string) {
	var c Config
	fs := flag.NewFlagSet("tether-agent run", flag.ContinueOnError)
	raw := map[string]*string{}
	for _, s := range c.settings() {
		v := s.def
		if e := getenv(s.env); e != "" {
			v = e
		} else if s.flag == "license" {
			// The license's content, never a flag: it holds the one-time
			// activation token, and argv is visible to every local user.
			v = getenv("TETHER_LICENSE")
		}
		p := &v
		raw[s.flag] = p
		if s.boolean != nil {
			// "--telemetry" alone means true, as for a bool flag, while the
			// raw text waits for the one validation pass.
			fs.BoolFunc(s.flag, s.help+" (env "+s.env+")", func(t string) error { *p = t; return nil })
			continue
		}
		fs.StringVar(p, s.flag, v, s.help+" (env "+s.env+")")
	}
	return fs, raw
}

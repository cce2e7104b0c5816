package ctl

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/tetherhq/tether/internal/diagspool"
)

const diagUsage = `tetherctl diag — review and approve the vendor's diagnostics requests

Usage:
  tetherctl diag list    [--data-dir DIR] [--output text|json]
  tetherctl diag preview ID [--data-dir DIR] [--output text|json]
  tetherctl diag approve ID [--data-dir DIR]
  tetherctl diag decline ID [--data-dir DIR]

The vendor can only ask. The agent builds each bundle from default-deny
collectors (versions, redacted configuration, health history, content-free
and re-redacted logs, schema version, queue statistics) into the agent's data
dir, where 'preview' shows every file exactly as it would be uploaded. Nothing
is sent until you approve; a declined request sends nothing, ever.
`

func diagCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, diagUsage)
		if len(args) == 0 {
			return fmt.Errorf("%w: tetherctl diag: want list, preview, approve or decline", errUsage)
		}
		return nil
	}
	fs := flag.NewFlagSet("diag "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "./.tether-dev", "the tetherctl dev data dir, or the agent's own data dir")
	output := fs.String("output", "text", "text or json")
	// Accept the ID before or after the flags.
	rest := args[1:]
	var id string
	if len(rest) > 0 && rest[0] != "" && rest[0][0] != '-' {
		id, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: tetherctl diag %s: %w", errUsage, args[0], err)
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	}
	dir := agentDir(*dataDir)
	if args[0] != "list" && id == "" {
		return fmt.Errorf("%w: tetherctl diag %s: give the request ID (see 'tetherctl diag list')", errUsage, args[0])
	}
	switch args[0] {
	case "list":
		ds, err := diagspool.List(dir)
		if err != nil {
			return err
		}
		if *output == "json" {
			if ds == nil {
				ds = []diagspool.Diagnostic{}
			}
			return json.NewEncoder(stdout).Encode(ds)
		}
		if len(ds) == 0 {
			fmt.Fprintln(stdout, "no diagnostics requests")
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tREQUESTED\tREASON")
		for _, d := range ds {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.ID, d.State, d.RequestedAt.Local().Format(time.RFC3339), d.Reason)
		}
		return tw.Flush()
	case "preview":
		files, err := diagspool.Preview(dir, id)
		if err != nil {
			return diagError("preview", id, dir, err)
		}
		if *output == "json" {
			return json.NewEncoder(stdout).Encode(files)
		}
		for _, f := range files {
			fmt.Fprintf(stdout, "=== %s (%d bytes)\n", f.Name, f.Size)
			if utf8.Valid(f.Content) {
				fmt.Fprintf(stdout, "%s\n", f.Content)
			} else {
				fmt.Fprintln(stdout, "(binary; see --output json)")
			}
		}
		fmt.Fprintf(stdout, "\nThese %d files are exactly what 'tetherctl diag approve %s' uploads.\n", len(files), id)
		return nil
	case "approve":
		if err := diagspool.Approve(dir, id); err != nil {
			return diagError("approve", id, dir, err)
		}
		fmt.Fprintf(stdout, "approved %s; the agent uploads it on its next heartbeat (see 'tetherctl egress show --data-dir %s')\n", id, filepath.Clean(*dataDir))
		return nil
	case "decline":
		if err := diagspool.Decline(dir, id); err != nil {
			return diagError("decline", id, dir, err)
		}
		fmt.Fprintf(stdout, "declined %s; nothing will be sent for it\n", id)
		return nil
	}
	return fmt.Errorf("%w: tetherctl diag: unknown subcommand %q (want list, preview, approve or decline)", errUsage, args[0])
}

// diagError says, for the spool's known refusals, what is wrong in the
// operator's terms and what to do; nothing was changed in any of them.
func diagError(cmd, id, dir string, err error) error {
	var why string
	switch {
	case errors.Is(err, diagspool.ErrUnknownDiagnostic):
		why = fmt.Sprintf("there is no request %s in %s; 'tetherctl diag list --data-dir %s' shows the requests there (--data-dir must be the agent's data directory)", id, dir, dir)
	case errors.Is(err, diagspool.ErrNotPending):
		why = fmt.Sprintf("request %s is not waiting for a decision any more (%v); 'tetherctl diag list' shows its state", id, err)
	case errors.Is(err, diagspool.ErrBundleNotReady):
		why = fmt.Sprintf("the agent has not built the bundle for %s yet; try again after its next heartbeat", id)
	case errors.Is(err, diagspool.ErrBundleChanged):
		why = fmt.Sprintf("a file in the bundle of %s changed after the agent built it, so it will not be sent; preview it again, or decline it and ask the vendor for a new request", id)
	default:
		return fmt.Errorf("tetherctl diag %s %s: %w", cmd, id, err)
	}
	return fmt.Errorf("tetherctl diag %s %s: %s; nothing was changed", cmd, id, why)
}

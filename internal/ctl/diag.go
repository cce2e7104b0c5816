package ctl

import (
	"context"
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
	"github.com/tetherhq/tether/internal/diagspool/diagreview"
	"github.com/tetherhq/tether/internal/exchange"
	"github.com/tetherhq/tether/internal/exchange/operator"
)

const diagUsage = `tetherctl diag — review and approve the vendor's diagnostics requests

Usage:
  tetherctl diag list    [--data-dir DIR | --config deployment.yaml] [--output text|json]
  tetherctl diag preview ID [--data-dir DIR | --config deployment.yaml] [--output text|json]
  tetherctl diag approve ID [--data-dir DIR | --config deployment.yaml [--yes]]
  tetherctl diag decline ID [--data-dir DIR | --config deployment.yaml [--yes]]
  tetherctl diag export --out FILE [--agent-status-addr HOST:PORT] [--yes]

The vendor can only ask. The agent builds each bundle from default-deny
collectors (versions, redacted configuration, health history, content-free
and re-redacted logs, schema version, queue statistics) into the agent's data
dir, where 'preview' shows every file exactly as it would be uploaded. Nothing
is sent until you approve; a declined request sends nothing, ever.

--data-dir works on an agent data dir on this machine (tetherctl dev's, by
default). --config works on a deployment in AWS, whose agent keeps its data
dir on a file system only it and the exchange task mount: the exchange task
(tether-exchange, which never talks to the vendor) copies each request and
its bundle to the deployment's agent exchange bucket, these commands read
them there with your AWS credentials (--profile, --region, AWS_PROFILE,
...), and approve or decline writes the decision there, with your ARN. The
exchange task applies it within a minute, and the agent uploads an approved
bundle at its next heartbeat. An approval names the manifest you previewed;
only that bundle is sent, from the agent's own copy, and an approval of
anything else is refused. The IAM permissions these need are in docs/support.md.

'export' needs no request: it asks the running agent for the bundle a
request would get now and writes it to FILE for you to send your own way
('tetherctl diag export --help').

Flags:
`

func diagCmd(ctx context.Context, args []string, env Env) error {
	stdout := env.Stdout
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		var tg target
		fs := flag.NewFlagSet("diag", flag.ContinueOnError)
		tg.register(fs, true)
		fs.String("output", "text", "list and preview: `text` or json")
		fmt.Fprint(stdout, diagUsage+flagHelp(fs))
		if len(args) == 0 {
			return fmt.Errorf("%w: tetherctl diag: want list, preview, approve, decline or export", errUsage)
		}
		return nil
	}
	sub := args[0]
	if sub == "export" {
		return diagExport(ctx, args[1:], env)
	}
	if sub != "list" && sub != "preview" && sub != "approve" && sub != "decline" {
		return fmt.Errorf("%w: tetherctl diag: unknown subcommand %q (want list, preview, approve, decline or export)", errUsage, sub)
	}
	fs := flag.NewFlagSet("diag "+sub, flag.ContinueOnError)
	var tg target
	tg.register(fs, sub == "approve" || sub == "decline")
	output := fs.String("output", "text", "`text` or json")
	positional, err := parseArgs(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, diagUsage+flagHelp(fs))
		return nil
	}
	if err != nil {
		return err
	}
	if err := tg.resolve(fs, "diag "+sub); err != nil {
		return err
	}
	if *output != "text" && *output != "json" {
		return fmt.Errorf("%w: tetherctl diag %s: --output %q: want text or json", errUsage, sub, *output)
	}
	var id string
	switch {
	case sub == "list" && len(positional) > 0:
		return fmt.Errorf("%w: tetherctl diag list takes no arguments, got %q", errUsage, positional[0])
	case sub != "list" && len(positional) != 1:
		return fmt.Errorf("%w: tetherctl diag %s: give the request ID (see 'tetherctl diag list')", errUsage, sub)
	case sub != "list":
		id = positional[0]
	}
	if tg.remote {
		ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
		defer cancel()
		return diagRemote(ctx, env, tg, sub, id, *output)
	}
	dir := agentDir(tg.dataDir)
	switch sub {
	case "list":
		rows, err := diagRows(dir, false)
		if err != nil {
			return err
		}
		return writeDiagnostics(stdout, rows, *output)
	case "preview":
		files, err := diagreview.Preview(dir, id)
		if err != nil {
			return diagError("preview", id, dir, err)
		}
		return writePreview(stdout, files, id, *output)
	case "approve":
		if err := diagreview.Approve(dir, id, env.Now()); err != nil {
			return diagError("approve", id, dir, err)
		}
		fmt.Fprintf(stdout, "approved %s; the agent uploads it on its next heartbeat (see 'tetherctl egress show --data-dir %s')\n", id, filepath.Clean(tg.dataDir))
		return nil
	default:
		if err := diagreview.Decline(dir, id, env.Now()); err != nil {
			return diagError("decline", id, dir, err)
		}
		fmt.Fprintf(stdout, "declined %s; nothing will be sent for it\n", id)
		return nil
	}
}

// diagRow is one request as list shows it; in the exchange bucket, with
// the decision written there and not yet applied by the agent.
type diagRow struct {
	diagspool.Diagnostic
	Decision      *exchange.Decision `json:"decision,omitempty"`
	DecisionError string             `json:"decision_error,omitempty"`
}

// diagRows lists the requests in dir; withDecisions adds each one's
// decision.json (a copy of the exchange bucket's).
func diagRows(dir string, withDecisions bool) ([]diagRow, error) {
	ds, err := diagspool.List(dir)
	if err != nil {
		return nil, err
	}
	rows := make([]diagRow, len(ds))
	for i, d := range ds {
		rows[i] = diagRow{Diagnostic: d}
		if !withDecisions {
			continue
		}
		switch dec, ok, err := operator.LocalDecision(dir, d.ID); {
		case err != nil:
			rows[i].DecisionError = err.Error()
		case ok:
			rows[i].Decision = &dec
		}
	}
	return rows, nil
}

func writeDiagnostics(w io.Writer, rows []diagRow, output string) error {
	if output == "json" {
		if rows == nil {
			rows = []diagRow{}
		}
		return json.NewEncoder(w).Encode(rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(w, "no diagnostics requests")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tREQUESTED\tBY\tREASON")
	for _, d := range rows {
		state := d.State
		switch {
		case d.DecisionError != "":
			state += " (decision.json unreadable: " + d.DecisionError + ")"
		case d.Decision != nil && d.State == diagspool.StatePending:
			state += fmt.Sprintf(" (%s by %s at %s; waiting for the exchange task)", d.Decision.Decision, d.Decision.By, d.Decision.At.Local().Format(time.RFC3339))
		}
		by := "(not recorded)" // an agent before requesters were sent
		if d.RequestedBy != "" {
			by = d.RequestedBy + " (" + d.RequestedByKind + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.ID, state, d.RequestedAt.Local().Format(time.RFC3339), by, d.Reason)
	}
	return tw.Flush()
}

func writePreview(w io.Writer, files []diagspool.PreviewFile, id, output string) error {
	if output == "json" {
		return json.NewEncoder(w).Encode(files)
	}
	for _, f := range files {
		fmt.Fprintf(w, "=== %s (%d bytes)\n", f.Name, f.Size)
		if utf8.Valid(f.Content) {
			fmt.Fprintf(w, "%s\n", f.Content)
		} else {
			fmt.Fprintln(w, "(binary; see --output json)")
		}
	}
	if id == "" { // diag export
		fmt.Fprintf(w, "\nThese %d files are exactly what the zip will hold; nothing is sent anywhere.\n", len(files))
		return nil
	}
	fmt.Fprintf(w, "\nThese %d files are exactly what 'tetherctl diag approve %s' uploads.\n", len(files), id)
	return nil
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
	case errors.Is(err, diagreview.ErrBundleNotReady):
		why = fmt.Sprintf("the agent has not built the bundle for %s yet; try again after its next heartbeat", id)
	case errors.Is(err, diagspool.ErrBundleChanged):
		why = fmt.Sprintf("a file in the bundle of %s changed after the agent built it, so it will not be sent; preview it again, or decline it and ask the vendor for a new request", id)
	default:
		return fmt.Errorf("tetherctl diag %s %s: %w", cmd, id, err)
	}
	return fmt.Errorf("tetherctl diag %s %s: %s; nothing was changed", cmd, id, why)
}

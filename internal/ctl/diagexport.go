package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/tetherhq/tether/internal/atomicfile"
	"github.com/tetherhq/tether/internal/diagspool"
	"github.com/tetherhq/tether/internal/diagspool/diagreview"
)

const diagExportUsage = `tetherctl diag export — the diagnostics bundle, for you to send yourself

Usage:
  tetherctl diag export --out FILE [--agent-status-addr 127.0.0.1:8091] [--yes] [--output text|json]

Asks the running agent, on its status page (loopback only), for the bundle a
vendor's diagnostics request would get right now: the same default-deny
collectors (versions, redacted configuration, health history, docsvc's
statuses, the agent's re-redacted log) the agent uses for a request. It
shows every file exactly as it will be written, then, once you confirm (or
with --yes), writes them to FILE as the zip the agent would upload. Nothing
is sent anywhere: send FILE to the vendor your own way (for an install
without a plane connection). FILE must not exist yet.

--agent-status-addr is the agent's --status-addr (tetherctl dev's
--agent-status-addr, 127.0.0.1:8091 by default).

Flags:
`

func diagExport(ctx context.Context, args []string, env Env) error {
	fs := flag.NewFlagSet("diag export", flag.ContinueOnError)
	out := fs.String("out", "", "the zip `file` to write (required; must not exist)")
	addr := fs.String("agent-status-addr", "127.0.0.1:8091", "the agent's status page `address` (host:port)")
	yes := fs.Bool("yes", false, "write without showing every file and asking")
	output := fs.String("output", "text", "`text` or json")
	positional, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(env.Stdout, diagExportUsage+flagHelp(fs))
		return nil
	}
	if err != nil {
		return err
	}
	switch host, _, splitErr := net.SplitHostPort(*addr); {
	case len(positional) > 0:
		return fmt.Errorf("%w: tetherctl diag export takes no arguments, got %q", errUsage, positional[0])
	case *out == "":
		return fmt.Errorf("%w: tetherctl diag export: --out is required: the zip file to write", errUsage)
	case *output != "text" && *output != "json":
		return fmt.Errorf("%w: tetherctl diag export: --output %q: want text or json", errUsage, *output)
	case splitErr != nil || !(host == "localhost" || net.ParseIP(host) != nil && (net.ParseIP(host).IsLoopback() || net.ParseIP(host).IsPrivate())):
		return fmt.Errorf("%w: tetherctl diag export: --agent-status-addr %q: want the agent's status page as host:port, a loopback or private IP (127.0.0.1:8091)", errUsage, *addr)
	}
	if _, err := os.Lstat(*out); err == nil {
		return fmt.Errorf("tetherctl diag export: %s already exists; give a new file name", *out)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	files, err := fetchExport(ctx, *addr)
	if err != nil {
		return fmt.Errorf("tetherctl diag export: %w", err)
	}
	if !*yes {
		if err := writePreview(env.Stdout, files, "", "text"); err != nil {
			return err
		}
		if err := proceed(env); err != nil {
			return fmt.Errorf("tetherctl diag export: %w", err)
		}
	}
	zipped, err := diagspool.Zip(files, env.Now())
	if err != nil {
		return fmt.Errorf("tetherctl diag export: %w", err)
	}
	if err := atomicfile.Write(*out, zipped, 0o600); err != nil {
		return fmt.Errorf("tetherctl diag export: %w", err)
	}
	if *output == "json" {
		type file struct {
			Name string `json:"name"`
			Size int64  `json:"size"`
		}
		list := make([]file, len(files))
		for i, f := range files {
			list[i] = file{f.Name, f.Size}
		}
		return writeJSON(env.Stdout, map[string]any{"out": *out, "bytes": len(zipped), "files": list})
	}
	fmt.Fprintf(env.Stdout, "wrote %s (%d bytes): ", *out, len(zipped))
	for i, f := range files {
		if i > 0 {
			fmt.Fprint(env.Stdout, ", ")
		}
		fmt.Fprintf(env.Stdout, "%s (%d bytes)", f.Name, f.Size)
	}
	fmt.Fprintln(env.Stdout, "; nothing was sent")
	return nil
}

// fetchExport asks the agent's status page for the bundle. The page is on
// this machine or its private network, so no proxy is used.
func fetchExport(ctx context.Context, addr string) ([]diagspool.PreviewFile, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/diagnostics/bundle.json", nil)
	if err != nil {
		return nil, err
	}
	res, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("the agent's status page at %s does not answer (%v): is the agent running with --status-addr %s (tetherctl dev's --agent-status-addr)?", addr, err, addr)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("read the bundle from %s: %w", addr, err)
	}
	if res.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("the agent at %s has no bundle export (a release before diag export): upgrade it, or ask for a diagnostics request through the plane", addr)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the agent at %s answered %s: %s", addr, res.Status, truncateText(string(body), 200))
	}
	return diagreview.ParseExport(body)
}

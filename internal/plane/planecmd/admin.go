package planecmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tetherhq/tether/internal/plane"
	"github.com/tetherhq/tether/internal/plane/planestore"
)

type adminOpts struct {
	url, tokenFile *string
}

func adminFlags(fs *flag.FlagSet) adminOpts {
	return adminOpts{
		url:       fs.String("plane-url", "", "plane base URL (or env TETHER_PLANE_URL)"),
		tokenFile: fs.String("admin-token-file", "", "file holding an automation token (tether-plane tokens create) or the break-glass admin token, <data-dir>/admin-token (or env TETHER_ADMIN_TOKEN with the token itself)"),
	}
}

// adminClient calls the plane's admin API.
type adminClient struct {
	base, token string
	http        *http.Client
	warn        io.Writer // gets the plane's Tether-Warning
}

// client builds the admin client from flags and environment. Without a URL
// it returns nil, or an error when need is set.
func (o adminOpts) client(env Env, need bool) (*adminClient, error) {
	base := *o.url
	if base == "" {
		base = env.Getenv("TETHER_PLANE_URL")
	}
	if base == "" {
		if need {
			return nil, fmt.Errorf("%w: no plane: pass --plane-url https://plane.example.com or set TETHER_PLANE_URL", errUsage)
		}
		return nil, nil
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: --plane-url %q: want http(s)://host[:port]", errUsage, base)
	}
	token := env.Getenv("TETHER_ADMIN_TOKEN")
	if *o.tokenFile != "" {
		b, err := os.ReadFile(*o.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--admin-token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, fmt.Errorf("%w: no token: pass --admin-token-file FILE (an automation token, or the admin token in <data-dir>/admin-token) or set TETHER_ADMIN_TOKEN", errUsage)
	}
	return &adminClient{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{Timeout: 5 * time.Minute}, warn: env.Stderr}, nil
}

// do sends a JSON request; out, when non-nil, receives the JSON answer.
func (c *adminClient) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: unreadable answer: %w", method, path, err)
	}
	return nil
}

// send returns the response for a 2xx answer and an error naming the
// plane's reason otherwise.
func (c *adminClient) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("reach the plane at %s: %w", c.base, err)
	}
	if w := resp.Header.Get("Tether-Warning"); w != "" && c.warn != nil {
		fmt.Fprintf(c.warn, "warning: the plane says: %s\n", w)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var e struct{ Error string }
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
	if e.Error == "" {
		e.Error = resp.Status
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, fmt.Errorf("the plane refused the token: wrong, revoked or expired (check --admin-token-file / TETHER_ADMIN_TOKEN): %s", e.Error)
	}
	return nil, fmt.Errorf("the plane answered %d: %s", resp.StatusCode, e.Error)
}

func runInstallsList(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "installs list", "[--output text|json]",
		"Lists every install: customer, version, channel, health, license state and expiry,\n"+
			"and how long ago its last heartbeat arrived (STALE after three missed intervals).")
	admin := adminFlags(fs)
	output := outputFlag(fs)
	if help, err := parseWithOutput(fs, args, output); help || err != nil {
		return err
	}
	var ins []plane.InstallView
	if err := admin.get(ctx, env, "/v1/admin/installs", &ins); err != nil {
		return fmt.Errorf("installs list: %w", err)
	}
	return show(env, *output, ins, "INSTALL\tCUSTOMER\tVERSION\tCHANNEL\tHEALTH\tLICENSE\tEXPIRES\tLAST HEARTBEAT", func(in plane.InstallView) string {
		age := fmt.Sprintf("%ds ago", in.LastHeartbeatAgeSec)
		if in.StaleNow {
			age += " STALE"
		}
		if in.Revoked {
			age += " REVOKED"
		}
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", in.ID, in.Customer, dash(in.Version), dash(in.Channel),
			in.Health, in.PlaneLicenseState, in.LicenseExpires.Format(time.DateOnly), age)
	})
}

func runInstallsShow(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "installs show", "ID [--output text|json]", "Shows one install with its recent health history.")
	admin := adminFlags(fs)
	output := outputFlag(fs)
	id, rest := splitID(args)
	if help, err := parse(fs, rest); help || err != nil {
		return err
	}
	if err := checkOutput(*output); err != nil {
		return err
	}
	id = idAfter(id, fs)
	if id == "" {
		return fmt.Errorf("%w: installs show needs an install ID (see installs list)", errUsage)
	}
	c, err := admin.client(env, true)
	if err != nil {
		return err
	}
	var d plane.InstallDetail
	if err := c.do(ctx, http.MethodGet, "/v1/admin/installs/"+url.PathEscape(id), nil, &d); err != nil {
		return fmt.Errorf("installs show %s: %w", id, err)
	}
	if *output == "json" {
		return writeJSONOut(env, d)
	}
	in := d.Install
	fmt.Fprintf(env.Stdout, "Install %s (%s), license %s: %s until %s\nVersion %s on %s, health %s, last heartbeat %ds ago%s\n\n",
		in.ID, in.Customer, in.LicenseID, in.PlaneLicenseState, in.LicenseExpires.Format(time.DateOnly),
		dash(in.Version), dash(in.Channel), in.Health, in.LastHeartbeatAgeSec, map[bool]string{true: " (STALE)"}[in.StaleNow])
	if in.LedgerHead != "" {
		fmt.Fprintf(env.Stdout, "Egress ledger head %s (the customer checks it with: tetherctl egress verify --expect-head %s)\n", in.LedgerHead, in.LedgerHead)
	}
	if in.LedgerProblem != "" {
		since := "-"
		if in.LedgerProblemAt != nil {
			since = in.LedgerProblemAt.Format(time.RFC3339)
		}
		fmt.Fprintf(env.Stdout, "LEDGER PROBLEM since %s: %s\n", since, in.LedgerProblem)
	}
	if in.LedgerHead != "" || in.LedgerProblem != "" {
		fmt.Fprintln(env.Stdout)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tRECEIVED\tVERSION\tHEALTH")
	for _, h := range d.History[:min(len(d.History), 20)] {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", h.Seq, h.At.Format(time.RFC3339), h.Version, h.Health)
	}
	return tw.Flush()
}

func runInstallsRevoke(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "installs revoke", "ID", "Revokes an install: every signed request it makes from now on is refused.")
	admin := adminFlags(fs)
	id, rest := splitID(args)
	if help, err := parse(fs, rest); help || err != nil {
		return err
	}
	id = idAfter(id, fs)
	if id == "" {
		return fmt.Errorf("%w: installs revoke needs an install ID (see installs list)", errUsage)
	}
	c, err := admin.client(env, true)
	if err != nil {
		return err
	}
	if err := c.do(ctx, http.MethodPost, "/v1/admin/installs/"+url.PathEscape(id)+"/revoke", nil, nil); err != nil {
		return fmt.Errorf("installs revoke %s: %w", id, err)
	}
	fmt.Fprintf(env.Stdout, "Revoked %s.\n", id)
	return nil
}

func runDiagRequest(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "diag request", "--install ID --reason TEXT",
		"Asks an install for a diagnostics bundle. The reason is shown to the customer, who\n"+
			"approves (or a policy does) before anything is collected; keep it to one line.")
	install := fs.String("install", "", "install ID (required)")
	reason := fs.String("reason", "", "why, shown to the customer (required, one line, at most 1000 bytes)")
	admin := adminFlags(fs)
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	if err := required(fs, "install", "reason"); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	c, err := admin.client(env, true)
	if err != nil {
		return err
	}
	var d planestore.Diagnostic
	if err := c.do(ctx, http.MethodPost, "/v1/admin/diagnostics", plane.DiagnosticRequestBody{InstallID: *install, Reason: *reason}, &d); err != nil {
		return fmt.Errorf("diag request: %w", err)
	}
	fmt.Fprintf(env.Stdout, "Requested %s from %s; the agent sees it at its next heartbeat.\n", d.ID, d.InstallID)
	return nil
}

func runDiagList(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "diag list", "[--install ID] [--status requested|uploaded] [--output text|json]", "Lists diagnostics requests, newest first.")
	install := fs.String("install", "", "only this install")
	status := fs.String("status", "", "only this status: requested or uploaded")
	admin := adminFlags(fs)
	output := outputFlag(fs)
	if help, err := parseWithOutput(fs, args, output); help || err != nil {
		return err
	}
	q := url.Values{}
	if *install != "" {
		q.Set("install", *install)
	}
	if *status != "" {
		q.Set("status", *status)
	}
	var ds []planestore.Diagnostic
	if err := admin.get(ctx, env, "/v1/admin/diagnostics?"+q.Encode(), &ds); err != nil {
		return fmt.Errorf("diag list: %w", err)
	}
	return show(env, *output, ds, "REQUEST\tINSTALL\tSTATUS\tREQUESTED\tBY\tBYTES\tREASON", func(d planestore.Diagnostic) string {
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%d\t%s", d.ID, d.InstallID, d.Status, d.RequestedAt.Format(time.RFC3339), d.RequestedBy, d.BundleSize, d.Reason)
	})
}

func runDiagDownload(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "diag download", "ID --out FILE", "Downloads an uploaded diagnostics bundle (a zip) and checks its SHA-256.")
	out := fs.String("out", "", "file to write (required; never overwritten)")
	admin := adminFlags(fs)
	id, rest := splitID(args)
	if help, err := parse(fs, rest); help || err != nil {
		return err
	}
	id = idAfter(id, fs)
	if id == "" {
		return fmt.Errorf("%w: diag download needs a request ID (see diag list)", errUsage)
	}
	if err := required(fs, "out"); err != nil {
		return err
	}
	c, err := admin.client(env, true)
	if err != nil {
		return err
	}
	resp, err := c.send(ctx, http.MethodGet, "/v1/admin/diagnostics/"+url.PathEscape(id)+"/bundle", nil)
	if err != nil {
		return fmt.Errorf("diag download %s: %w", id, err)
	}
	defer resp.Body.Close()
	n, sum, err := writeNew(*out, resp.Body)
	if err != nil {
		return fmt.Errorf("diag download %s: %w", id, err)
	}
	if want := resp.Header.Get("Tether-Bundle-Sha256"); want != "" && want != sum {
		os.Remove(*out)
		return fmt.Errorf("diag download %s: bundle hash %s does not match the plane's record %s; try again", id, sum, want)
	}
	fmt.Fprintf(env.Stdout, "Wrote %s (%d bytes, sha256 %s).\n", *out, n, sum)
	return nil
}

// splitID takes a leading positional ID, so "diag download ID --out F"
// works; an ID after the flags is picked up by idAfter.
func splitID(args []string) (id string, rest []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

// idAfter returns id, or the first positional argument left after flags.
func idAfter(id string, fs *flag.FlagSet) string {
	if id == "" && fs.NArg() > 0 {
		return fs.Arg(0)
	}
	return id
}

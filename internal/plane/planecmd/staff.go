package planecmd

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/plane"
	"github.com/tetherhq/tether/internal/plane/planestore"
)

// Staff, automation token and audit log commands: each is one admin API
// call, so they work against any replica and need a token whose role allows
// them (staff.manage, or view for the audit log).

func roleFlag(fs interface {
	String(string, string, string) *string
}) *string {
	return fs.String("role", "", "viewer, support, release-manager or administrator (required)")
}

// checkRole is the --role flag's check, before anything reaches the plane.
func checkRole(role string) error {
	if _, err := planestore.ParseRole(role); err != nil {
		return fmt.Errorf("%w: --role: %w", errUsage, err)
	}
	return nil
}

func runStaffAdd(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "staff add", "--subject SUB --name NAME --role ROLE [--issuer URL] [--output text|json]",
		"Lets a member of staff sign in to the dashboard with a role. They are known by the\n"+
			"identity provider's issuer and subject (the sub claim, which stays with the person; an\n"+
			"e-mail address can be reassigned). Someone the plane does not know who signs in is\n"+
			"refused with a page that shows their subject, ready for this command.")
	subject := fs.String("subject", "", "the person's subject at the identity provider (required)")
	name := fs.String("name", "", "what people read in the audit log, e.g. alice@example.com (required)")
	role := roleFlag(fs)
	issuer := fs.String("issuer", "", "the identity provider's issuer URL; default the plane's serve --oidc-issuer")
	admin := adminFlags(fs)
	output := outputFlag(fs)
	if help, err := parseWithOutput(fs, args, output); help || err != nil {
		return err
	}
	if err := required(fs, "subject", "name", "role"); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if err := checkRole(*role); err != nil {
		return err
	}
	var m planestore.StaffMember
	in := planestore.StaffInput{Issuer: *issuer, Subject: *subject, Name: *name, Role: planestore.Role(*role)}
	if err := admin.call(ctx, env, http.MethodPost, "/v1/admin/staff", in, &m); err != nil {
		return fmt.Errorf("staff add: %w", err)
	}
	if *output == "json" {
		return writeJSONOut(env, m)
	}
	fmt.Fprintf(env.Stdout, "Added %s (%s) as %s; they can sign in now.\n", m.Name, m.ID, m.Role)
	return nil
}

func runStaffList(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "staff list", "[--output text|json]", "Lists the staff who may sign in to the dashboard, with their roles and last sign-in.")
	admin := adminFlags(fs)
	output := outputFlag(fs)
	if help, err := parseWithOutput(fs, args, output); help || err != nil {
		return err
	}
	var ms []planestore.StaffMember
	if err := admin.get(ctx, env, "/v1/admin/staff", &ms); err != nil {
		return fmt.Errorf("staff list: %w", err)
	}
	return show(env, *output, ms, "ID\tNAME\tROLE\tLAST SIGN-IN\tISSUER\tSUBJECT", func(m planestore.StaffMember) string {
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", m.ID, m.Name, m.Role, timeOrDash(m.LastLoginAt), m.Issuer, m.Subject)
	})
}

func runStaffSetRole(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "staff set-role", "ID --role ROLE [--output text|json]",
		"Changes a staff member's role; their open dashboard sessions have it from their next page.")
	role := roleFlag(fs)
	admin := adminFlags(fs)
	output := outputFlag(fs)
	id, err := idArg(fs, args, "staff set-role", "a staff ID (see staff list)")
	if id == "" {
		return err
	}
	if err := checkOutput(*output); err != nil {
		return err
	}
	if err := required(fs, "role"); err != nil {
		return err
	}
	if err := checkRole(*role); err != nil {
		return err
	}
	var m planestore.StaffMember
	if err := admin.call(ctx, env, http.MethodPost, "/v1/admin/staff/"+url.PathEscape(id)+"/role", plane.RoleBody{Role: planestore.Role(*role)}, &m); err != nil {
		return fmt.Errorf("staff set-role %s: %w", id, err)
	}
	if *output == "json" {
		return writeJSONOut(env, m)
	}
	fmt.Fprintf(env.Stdout, "%s (%s) is now %s.\n", m.Name, m.ID, m.Role)
	return nil
}

func runStaffRemove(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "staff remove", "ID", "Removes a staff member: they cannot sign in, and their dashboard sessions end.")
	admin := adminFlags(fs)
	id, err := idArg(fs, args, "staff remove", "a staff ID (see staff list)")
	if id == "" {
		return err
	}
	if err := admin.call(ctx, env, http.MethodDelete, "/v1/admin/staff/"+url.PathEscape(id), nil, nil); err != nil {
		return fmt.Errorf("staff remove %s: %w", id, err)
	}
	fmt.Fprintf(env.Stdout, "Removed %s.\n", id)
	return nil
}

// idArg parses a command that takes one ID, before or after its flags. An
// empty id comes with the error to return (nil after --help).
func idArg(fs *flag.FlagSet, args []string, cmd, what string) (string, error) {
	id, rest := splitID(args)
	if help, err := parse(fs, rest); help || err != nil {
		return "", err
	}
	if id = idAfter(id, fs); id == "" {
		return "", fmt.Errorf("%w: %s needs %s", errUsage, cmd, what)
	}
	return id, nil
}

// call makes one admin API call with the command's plane and token.
func (a adminOpts) call(ctx context.Context, env Env, method, path string, in, out any) error {
	c, err := a.client(env, true)
	if err != nil {
		return err
	}
	return c.do(ctx, method, path, in, out)
}

// parseExpiry reads --expires: a duration such as 720h or 90d, or a date
// (2027-06-01) or time (RFC 3339) at which the token stops working.
func parseExpiry(v string, now time.Time) (time.Time, error) {
	if d, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n > 0 && n <= 3660 {
			return now.Add(time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(d), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil && t.After(now) {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil && t.After(now) {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%w: --expires %q: want a duration (90d, 720h) or a future date (2027-06-01) or time (RFC 3339)", errUsage, v)
}

func runTokensCreate(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "tokens create", "--name NAME --role ROLE [--expires 90d|DATE] [--output text|json]",
		"Makes an automation token for scripts and CI, limited to a role. The token is printed\n"+
			"once; the plane keeps only its hash. Use it as --admin-token-file or TETHER_ADMIN_TOKEN.")
	name := fs.String("name", "", "what it is for, e.g. release-ci: A-Z a-z 0-9 . _ - (required)")
	role := roleFlag(fs)
	expires := fs.String("expires", "", "when it stops working: a duration (90d, 720h) or a date; default never (revoke it)")
	admin := adminFlags(fs)
	output := outputFlag(fs)
	if help, err := parseWithOutput(fs, args, output); help || err != nil {
		return err
	}
	if err := required(fs, "name", "role"); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if err := checkRole(*role); err != nil {
		return err
	}
	in := planestore.TokenInput{Name: *name, Role: planestore.Role(*role)}
	if *expires != "" {
		t, err := parseExpiry(*expires, env.Now())
		if err != nil {
			return err
		}
		in.ExpiresAt = &t
	}
	var ct plane.CreatedToken
	if err := admin.call(ctx, env, http.MethodPost, "/v1/admin/tokens", in, &ct); err != nil {
		return fmt.Errorf("tokens create: %w", err)
	}
	if *output == "json" {
		return writeJSONOut(env, ct)
	}
	until := "until revoked"
	if ct.Token.ExpiresAt != nil {
		until = "until " + ct.Token.ExpiresAt.Format(time.RFC3339)
	}
	fmt.Fprintf(env.Stderr, "Created %s (%s, %s, %s). The token is below; it is not shown again:\n", ct.Token.ID, ct.Token.Name, ct.Token.Role, until)
	fmt.Fprintln(env.Stdout, ct.Secret)
	return nil
}

func runTokensList(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "tokens list", "[--output text|json]", "Lists automation tokens with their role, expiry and last use (never the secret).")
	admin := adminFlags(fs)
	output := outputFlag(fs)
	if help, err := parseWithOutput(fs, args, output); help || err != nil {
		return err
	}
	var ts []planestore.Token
	if err := admin.get(ctx, env, "/v1/admin/tokens", &ts); err != nil {
		return fmt.Errorf("tokens list: %w", err)
	}
	return show(env, *output, ts, "ID\tNAME\tROLE\tCREATED BY\tEXPIRES\tLAST USED\tSTATUS", func(t planestore.Token) string {
		status := "live"
		switch {
		case t.RevokedAt != nil:
			status = "revoked"
		case t.ExpiresAt != nil && !env.Now().Before(*t.ExpiresAt):
			status = "expired"
		}
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", t.ID, t.Name, t.Role, t.CreatedBy, timeOrDash(t.ExpiresAt), timeOrDash(t.LastUsedAt), status)
	})
}

func runTokensRevoke(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "tokens revoke", "ID", "Revokes an automation token: from now on the plane refuses it.")
	admin := adminFlags(fs)
	id, err := idArg(fs, args, "tokens revoke", "a token ID (see tokens list)")
	if id == "" {
		return err
	}
	if err := admin.call(ctx, env, http.MethodPost, "/v1/admin/tokens/"+url.PathEscape(id)+"/revoke", nil, nil); err != nil {
		return fmt.Errorf("tokens revoke %s: %w", id, err)
	}
	fmt.Fprintf(env.Stdout, "Revoked %s.\n", id)
	return nil
}

func runAudit(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "audit", "[--customer C] [--install ID] [--actor WHO] [--action A] [--since TIME] [--limit N] [--output text|json]",
		"Shows the plane's audit log, newest first: who (staff member, token or the break-glass\n"+
			"admin token, with their role) did what, to which customer and install, and why.")
	customer := fs.String("customer", "", "only records about this customer")
	install := fs.String("install", "", "only records about this install")
	actor := fs.String("actor", "", "only records of this actor (ID or name)")
	action := fs.String("action", "", "only this action, e.g. diagnostics.download")
	since := fs.String("since", "", "only records from this time on: RFC 3339, or a duration back such as 24h")
	limit := fs.Int("limit", 100, "at most this many records (1-1000)")
	admin := adminFlags(fs)
	output := outputFlag(fs)
	if help, err := parseWithOutput(fs, args, output); help || err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	for k, v := range map[string]string{"customer": *customer, "install": *install, "actor": *actor, "action": *action} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *since != "" {
		if d, err := time.ParseDuration(*since); err == nil && d > 0 {
			q.Set("since", env.Now().Add(-d).UTC().Format(time.RFC3339))
		} else if _, err := time.Parse(time.RFC3339, *since); err == nil {
			q.Set("since", *since)
		} else {
			return fmt.Errorf("%w: --since %q: want an RFC 3339 time (2026-11-01T00:00:00Z) or a duration (24h)", errUsage, *since)
		}
	}
	if _, err := plane.ParseAuditQuery(q); err != nil {
		return fmt.Errorf("%w: audit: %w", errUsage, err)
	}
	var recs []planestore.AuditRecord
	if err := admin.get(ctx, env, "/v1/admin/audit?"+q.Encode(), &recs); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return show(env, *output, recs, "TIME\tWHO\tACTION\tCUSTOMER\tINSTALL\tTARGET\tREASON", func(r planestore.AuditRecord) string {
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", r.At.Format(time.RFC3339), r.Actor.String(), r.Action,
			dash(r.Customer), dash(r.InstallID), dash(r.Target), dash(r.Reason))
	})
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// reportRelease records a release change in the plane's audit log before it
// is made, when the command was given a plane; the change is refused when
// the plane does not record it. Without a plane the change is not audited.
func reportRelease(ctx context.Context, env Env, admin adminOpts, action, channel, version string) error {
	c, err := admin.client(env, false)
	if err != nil || c == nil {
		return err
	}
	body := plane.ReleaseAuditBody{Action: action, Channel: channel, Version: version}
	if err := c.do(ctx, http.MethodPost, "/v1/admin/audit/releases", body, nil); err != nil {
		return fmt.Errorf("not done: the plane's audit log did not record it: %w", err)
	}
	return nil
}

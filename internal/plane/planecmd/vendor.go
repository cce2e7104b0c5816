package planecmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tetherhq/tether/internal/license"
	"github.com/tetherhq/tether/internal/license/issuer"
	"github.com/tetherhq/tether/internal/plane"
	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/release"
	"github.com/tetherhq/tether/internal/release/publish"
)

func runKeysInit(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "keys init", "--dir DIR [--root-keys M --root-threshold N]",
		"Creates the vendor's keys: M offline TUF root keys (N of them must sign a new root),\n"+
			"the online targets/snapshot/timestamp keys, the license signing key, and the initial\n"+
			"root.json that agents ship with. It never overwrites an existing key.\n"+
			"Afterwards move root-*.key offline; see docs/plane.md.")
	dir := fs.String("dir", "", "keys directory to create (required)")
	rootKeys := fs.Int("root-keys", 3, "number of offline root keys")
	threshold := fs.Int("root-threshold", 2, "root signatures required to trust a new root")
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	if err := required(fs, "dir"); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if *threshold < 1 || *threshold > *rootKeys {
		return fmt.Errorf("%w: --root-threshold %d: must be between 1 and --root-keys (%d)", errUsage, *threshold, *rootKeys)
	}
	res, err := publish.InitKeys(*dir, publish.KeyOptions{RootKeys: *rootKeys, RootThreshold: *threshold}, env.Now())
	if err != nil {
		return fmt.Errorf("keys init --dir %s: %w", *dir, err)
	}
	fmt.Fprintf(env.Stdout, "Created keys in %s.\n  initial root:       %s (ship it with agents)\n  license public key: %s\n  root keys:          %d, threshold %d, root expires %s\n",
		*dir, res.RootPath, res.LicensePublicPath, len(res.RootKeyIDs), res.RootThreshold, res.RootExpires.Format(time.DateOnly))
	fmt.Fprintln(env.Stdout, "Next: move root-*.key to offline storage; keep the rest on the release machine.")
	return nil
}

var licenseIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func runLicenseIssue(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "license issue", "--keys DIR --customer NAME --expires YYYY-MM-DD [flags]",
		"Signs a license with the license key in --keys and writes it to --out. The file carries\n"+
			"the one-time activation token the customer's agent uses once; send it to the customer\n"+
			"over a private channel. With --plane-url (or TETHER_PLANE_URL) the license is also\n"+
			"registered with the plane (only the token's SHA-256 is sent); otherwise run\n"+
			"`tether-plane license register --file` later.")
	keys := fs.String("keys", "", "keys directory holding license.key (required)")
	customer := fs.String("customer", "", "customer name as shown on the dashboard (required)")
	expires := fs.String("expires", "", "expiry date, YYYY-MM-DD (end of that day, UTC) (required)")
	grace := fs.String("grace", "14d", "grace period after expiry during which uploads still work: 14d, 36h, 90m")
	channels := fs.String("channels", "stable", "comma-separated release channels the license allows")
	id := fs.String("id", "", "license ID; default lic_<date>_<random>")
	out := fs.String("out", "", "file to write the license to (required)")
	ents := &multiFlag{what: "entitlement"}
	fs.Var(ents, "entitlement", "NAME=NUMBER entitlement, repeatable (e.g. max_workers=8)")
	admin := adminFlags(fs)
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	if err := required(fs, "keys", "customer", "expires", "out"); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	day, err := time.Parse(time.DateOnly, *expires)
	if err != nil {
		return fmt.Errorf("%w: --expires %q: want a date such as 2027-12-31", errUsage, *expires)
	}
	g, err := issuer.ParseGrace(*grace)
	if err != nil {
		return fmt.Errorf("%w: --grace: %w", errUsage, err)
	}
	l := license.License{ID: *id, Customer: *customer, IssuedAt: env.Now(), ExpiresAt: day.Add(24*time.Hour - time.Second),
		GraceSeconds: int64(g / time.Second), Entitlements: map[string]int64{}}
	if l.ID == "" {
		l.ID = "lic_" + env.Now().UTC().Format("20060102") + "_" + planestore.NewID("")[:8]
	}
	if !licenseIDRe.MatchString(l.ID) {
		return fmt.Errorf("%w: --id %q: use 1-64 characters of A-Z a-z 0-9 _ -", errUsage, l.ID)
	}
	for _, ch := range strings.Split(*channels, ",") {
		ch = strings.TrimSpace(ch)
		if err := release.ValidateChannel(ch); err != nil {
			return fmt.Errorf("%w: --channels: %q is not a channel name (1-32 of a-z 0-9 -)", errUsage, ch)
		}
		l.Channels = append(l.Channels, ch)
	}
	for name, v := range ents.values {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: --entitlement %s=%s: the value must be a whole number >= 0", errUsage, name, v)
		}
		l.Entitlements[name] = n
	}
	if !l.ExpiresAt.After(l.IssuedAt) {
		return fmt.Errorf("%w: --expires %s is in the past", errUsage, *expires)
	}
	key, err := publish.LoadLicenseKey(*keys)
	if err != nil {
		return fmt.Errorf("license issue: --keys %s: %w", *keys, err)
	}
	file, _, err := issuer.Issue(key, l)
	if err != nil {
		return fmt.Errorf("license issue: %w", err)
	}
	if _, _, err := writeNew(*out, bytes.NewReader(file)); err != nil {
		return fmt.Errorf("license issue: %w", err)
	}
	fmt.Fprintf(env.Stdout, "Issued license %s for %s, expires %s (+%s grace), channels %s.\nWrote %s (0600; it holds the activation token).\n",
		l.ID, l.Customer, l.ExpiresAt.Format(time.DateOnly), *grace, strings.Join(l.Channels, ","), *out)
	c, err := admin.client(env, false)
	if err != nil {
		return err
	}
	if c == nil {
		fmt.Fprintf(env.Stdout, "Not registered with a plane yet: run tether-plane license register --file %s --plane-url URL\n", *out)
		return nil
	}
	return registerLicense(ctx, env, c, file)
}

func registerLicense(ctx context.Context, env Env, c *adminClient, file []byte) error {
	body, err := plane.RegistrationBody(file)
	if err != nil {
		return err
	}
	var rec planestore.LicenseRecord
	if err := c.do(ctx, http.MethodPost, "/v1/admin/licenses", body, &rec); err != nil {
		return fmt.Errorf("license register: %w", err)
	}
	fmt.Fprintf(env.Stdout, "Registered license %s with %s; its activation token now works once.\n", rec.ID, c.base)
	return nil
}

func runLicenseRegister(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "license register", "--file license.json [--plane-url URL --admin-token-file FILE]",
		"Registers a license file written by `license issue` with the plane, so its activation\n"+
			"token works. Only the token's SHA-256 is sent.")
	file := fs.String("file", "", "license file from license issue (required)")
	admin := adminFlags(fs)
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	if err := required(fs, "file"); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	data, err := os.ReadFile(*file)
	if err != nil {
		return fmt.Errorf("license register: --file: %w", err)
	}
	c, err := admin.client(env, true)
	if err != nil {
		return err
	}
	return registerLicense(ctx, env, c, data)
}

func runLicenseList(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "license list", "[--output text|json]", "Lists the licenses registered with the plane.")
	admin := adminFlags(fs)
	output := outputFlag(fs)
	if help, err := parseWithOutput(fs, args, output); help || err != nil {
		return err
	}
	var ls []planestore.LicenseRecord
	if err := admin.get(ctx, env, "/v1/admin/licenses", &ls); err != nil {
		return fmt.Errorf("license list: %w", err)
	}
	return show(env, *output, ls, "ID\tCUSTOMER\tEXPIRES\tGRACE\tCHANNELS\tINSTALL", func(l planestore.LicenseRecord) string {
		return fmt.Sprintf("%s\t%s\t%s\t%dd\t%s\t%s", l.ID, l.Customer, l.ExpiresAt.Format(time.DateOnly),
			l.GraceSeconds/86400, strings.Join(l.Channels, ","), dash(l.ActivatedInstall))
	})
}

func runReleasePublish(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "release publish", "--keys DIR (--repo DIR | --objects URL --database-url URL) --version V --channel C [flags]",
		"Signs and publishes a release: copies each --artifact into the channel's TUF targets,\n"+
			"writes the release manifest (image digests, schema range, oldest upgradable version,\n"+
			"notes) and signs new targets, snapshot and timestamp metadata. With --plane-url (or\n"+
			"TETHER_PLANE_URL) the plane's audit log records who published it first (a token with\n"+
			"role release-manager); without a plane the release is not in the audit log.")
	keys := fs.String("keys", "", "keys directory with the online keys (required)")
	target := repoFlags(fs)
	version := fs.String("version", "", "semantic version, e.g. 1.4.0 (required)")
	channel := fs.String("channel", "", "channel, e.g. stable (required)")
	minFrom := fs.String("min-from", "", "oldest version that may upgrade to this one (required)")
	schemaMin := fs.Int64("schema-min", 1, "oldest database schema version this release runs on")
	schemaMax := fs.Int64("schema-max", 1, "newest database schema version this release brings")
	notesFile := fs.String("notes", "", "file with release notes (plain text, at most 8 KiB)")
	artifacts := &multiFlag{what: "artifact"}
	images := &multiFlag{what: "image"}
	fs.Var(artifacts, "artifact", "NAME=PATH of a file shipped with the release, repeatable")
	fs.Var(images, "image", "COMPONENT=REPO@sha256:DIGEST, repeatable")
	admin := adminFlags(fs)
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	if err := required(fs, "keys", "version", "channel", "min-from"); err != nil {
		return err
	}
	if err := target.check(env, true); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	var notes string
	if *notesFile != "" {
		b, err := os.ReadFile(*notesFile)
		if err != nil {
			return fmt.Errorf("release publish: --notes: %w", err)
		}
		notes = string(b)
	}
	for name, ref := range images.values {
		if err := release.ValidateImageRef(ref); err != nil {
			return fmt.Errorf("%w: --image %s=%s: want REPO@sha256:<64 hex> (pin by digest)", errUsage, name, ref)
		}
	}
	if err := reportRelease(ctx, env, admin, "release.publish", *channel, *version); err != nil {
		return fmt.Errorf("release publish %s to %s: %w", *version, *channel, err)
	}
	var m release.Manifest
	err := target.write(ctx, env, *channel, func(ctx context.Context, dir string) (err error) {
		m, err = publish.Publish(ctx, dir, *keys, publish.PublishOptions{Version: *version, Channel: *channel,
			Artifacts: artifacts.values, Images: images.values, MinFrom: *minFrom, SchemaMin: *schemaMin,
			SchemaMax: *schemaMax, Notes: notes}, env.Now())
		return err
	})
	if err != nil {
		return fmt.Errorf("release publish %s to %s: %w", *version, *channel, err)
	}
	fmt.Fprintf(env.Stdout, "Published %s to %s: %d artifacts, %d images, upgrades from %s, schema %d-%d.\n",
		m.Version, m.Channel, len(m.Artifacts), len(m.Images), m.MinFrom, m.Schema.Min, m.Schema.Max)
	return nil
}

func runReleaseList(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "release list", "(--repo DIR | --objects URL | --plane-url URL) [--channel C] [--output text|json]",
		"Lists releases, newest first, from a local repository (--repo), a replicated plane's\n"+
			"object store (--objects) or the plane.")
	target := repoFlags(fs)
	channel := fs.String("channel", "", "only this channel")
	admin := adminFlags(fs)
	output := outputFlag(fs)
	if help, err := parseWithOutput(fs, args, output); help || err != nil {
		return err
	}
	var all []plane.ChannelReleases
	if err := target.check(env, false); err != nil && *target.repo != "" {
		return err
	} else if err == nil {
		err := target.read(ctx, env, func(dir string) error {
			chans, err := publish.Channels(dir)
			if err != nil {
				return err
			}
			for _, ch := range chans {
				ms, err := publish.List(dir, ch)
				if err != nil {
					return err
				}
				all = append(all, plane.ChannelReleases{Channel: ch, Releases: ms})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("release list: %w", err)
		}
	} else {
		if err := admin.get(ctx, env, "/v1/admin/releases", &all); err != nil {
			return fmt.Errorf("release list: %w", err)
		}
	}
	out := []plane.ChannelReleases{}
	for _, cr := range all {
		if *channel == "" || cr.Channel == *channel {
			if cr.Releases == nil {
				cr.Releases = []release.Manifest{}
			}
			out = append(out, cr)
		}
	}
	if *output == "json" {
		return writeJSONOut(env, out)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANNEL\tVERSION\tPUBLISHED\tMIN FROM\tSCHEMA\tSTATUS")
	for _, cr := range out {
		for _, m := range cr.Releases {
			status := "live"
			if m.Revoked {
				status = "revoked"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d-%d\t%s\n", cr.Channel, m.Version, m.PublishedAt.Format(time.DateOnly),
				m.MinFrom, m.Schema.Min, m.Schema.Max, status)
		}
	}
	return tw.Flush()
}

func runReleaseRevoke(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "release revoke", "--keys DIR (--repo DIR | --objects URL --database-url URL) --channel C --version V",
		"Withdraws a release: it leaves the channel's signed targets, so agents stop seeing it at\n"+
			"their next refresh. Its manifest is kept for the record; the version is never reused.\n"+
			"With --plane-url the plane's audit log records who revoked it first; without, it is not audited.")
	keys := fs.String("keys", "", "keys directory with the online keys (required)")
	target := repoFlags(fs)
	channel := fs.String("channel", "", "channel (required)")
	version := fs.String("version", "", "version to revoke (required)")
	admin := adminFlags(fs)
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	if err := required(fs, "keys", "channel", "version"); err != nil {
		return err
	}
	if err := target.check(env, true); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if err := reportRelease(ctx, env, admin, "release.revoke", *channel, *version); err != nil {
		return fmt.Errorf("release revoke %s from %s: %w", *version, *channel, err)
	}
	if err := target.write(ctx, env, "", func(ctx context.Context, dir string) error {
		return publish.Revoke(ctx, dir, *keys, *channel, *version, env.Now())
	}); err != nil {
		return fmt.Errorf("release revoke %s from %s: %w", *version, *channel, err)
	}
	fmt.Fprintf(env.Stdout, "Revoked %s from %s.\n", *version, *channel)
	return nil
}

func runReleasePromote(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "release promote", "--keys DIR (--repo DIR | --objects URL --database-url URL) --from C --to C [--allow-older] [--output text|json] VERSION",
		"Publishes a release of one channel on another, e.g. from beta to stable once it has proven\n"+
			"itself: the same artifacts and images, with a manifest naming the new channel, signed into\n"+
			"that channel's targets, snapshot and timestamp metadata as publish does. Refused when the\n"+
			"target channel already has the version or revoked it, when it is not live on --from, and\n"+
			"when it is older than the target channel's newest release (unless --allow-older).\n"+
			"With --plane-url the plane's audit log records who promoted it first; without, it is not audited.")
	keys := fs.String("keys", "", "keys directory with the online keys (required)")
	target := repoFlags(fs)
	from := fs.String("from", "", "channel the release is live on (required)")
	to := fs.String("to", "", "channel to publish it on (required)")
	allowOlder := fs.Bool("allow-older", false, "promote a version older than the target channel's newest")
	output := outputFlag(fs)
	admin := adminFlags(fs)
	// VERSION may come before, between or after the flags.
	var positional []string
	for rest := args; ; rest = fs.Args()[1:] {
		if help, err := parseWithOutput(fs, rest, output); help || err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
	}
	if len(positional) != 1 {
		return fmt.Errorf("%w: release promote needs one VERSION, e.g. release promote --from beta --to stable 1.4.0", errUsage)
	}
	version := positional[0]
	if err := required(fs, "keys", "from", "to"); err != nil {
		return err
	}
	if err := target.check(env, true); err != nil {
		return err
	}
	if err := reportRelease(ctx, env, admin, "release.promote", *to, version); err != nil {
		return fmt.Errorf("release promote %s to %s: %w", version, *to, err)
	}
	var m release.Manifest
	err := target.write(ctx, env, *to, func(ctx context.Context, dir string) (err error) {
		m, err = publish.Promote(ctx, dir, *keys, publish.PromoteOptions{Version: version, From: *from, To: *to,
			AllowOlder: *allowOlder}, env.Now())
		return err
	})
	if err != nil {
		return fmt.Errorf("release %w", err)
	}
	if *output == "json" {
		return writeJSONOut(env, m)
	}
	fmt.Fprintf(env.Stdout, "Promoted %s from %s to %s: %d artifacts, %d images, upgrades from %s, schema %d-%d.\n",
		m.Version, *from, m.Channel, len(m.Artifacts), len(m.Images), m.MinFrom, m.Schema.Min, m.Schema.Max)
	return nil
}

func runReleaseRefresh(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "release refresh", "--keys DIR (--repo DIR | --objects URL --database-url URL)",
		"Re-signs timestamp and snapshot metadata that is close to expiry on every channel.\n"+
			"`serve --keys` does this hourly; run it from cron when the plane has no keys.")
	keys := fs.String("keys", "", "keys directory with the online keys (required)")
	target := repoFlags(fs)
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	if err := required(fs, "keys"); err != nil {
		return err
	}
	if err := target.check(env, true); err != nil {
		return err
	}
	if err := target.write(ctx, env, "", func(ctx context.Context, dir string) error {
		return publish.Refresh(ctx, dir, *keys, env.Now())
	}); err != nil {
		return fmt.Errorf("release refresh: %w", err)
	}
	fmt.Fprintln(env.Stdout, "Refreshed.")
	return nil
}

func runReleaseExport(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "release export", "--repo DIR --channel C --out FILE [--keys DIR --valid-for 30d]",
		"Writes a channel's signed metadata and targets to one file for air-gapped customers,\n"+
			"who import it with tetherctl; the agent verifies it exactly as if fetched online.\n"+
			"Without --valid-for the file is valid only until the channel's timestamp expires (a\n"+
			"day by default). With --keys and --valid-for the exported copy is re-signed to stay\n"+
			"valid that long (at most 90d), and the online channel is re-signed again at once.")
	repo := fs.String("repo", "", "release repository directory (required)")
	channel := fs.String("channel", "", "channel (required)")
	out := fs.String("out", "", "file to write (required)")
	keys := fs.String("keys", "", "keys directory with the online keys (with --valid-for)")
	validFor := fs.String("valid-for", "", "how long the exported file stays importable: 14d, 30d, 72h (needs --keys)")
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	if err := required(fs, "repo", "channel", "out"); err != nil {
		return err
	}
	var validity time.Duration
	if *validFor != "" {
		d, err := issuer.ParseGrace(*validFor)
		if err != nil || *keys == "" {
			return fmt.Errorf("%w: release export: --valid-for %q needs --keys and a duration such as 30d or 72h", errUsage, *validFor)
		}
		validity = d
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("release export: --out: %w", err)
	}
	if validity > 0 {
		err = publish.ExportValidFor(ctx, *repo, *keys, *channel, validity, f, env.Now())
	} else {
		err = publish.Export(*repo, *channel, f)
	}
	if err != nil {
		f.Close()
		os.Remove(*out)
		return fmt.Errorf("release export %s: %w", *channel, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("release export: %w", err)
	}
	fmt.Fprintf(env.Stdout, "Exported %s to %s.\n", *channel, *out)
	return nil
}

func outputFlag(fs interface {
	String(string, string, string) *string
}) *string {
	return fs.String("output", "text", "output format: text or json")
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return fmt.Errorf("%w: --output %q: want text or json", errUsage, o)
	}
	return nil
}

func writeJSONOut(env Env, v any) error {
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/tetherhq/tether/internal/deployconfig"
	"github.com/tetherhq/tether/internal/release"
	"github.com/tetherhq/tether/internal/releasestate"
	"github.com/tetherhq/tether/internal/updater"
	"github.com/tetherhq/tether/internal/updater/airgap"
)

// The release lifecycle on the AWS runtime (docs/runbooks/upgrade.md). What
// is here: the verified list of releases (the vendor's signed export,
// checked with the agent's own TUF code against deployment.yaml's
// plane.trusted_root, with its rollback and expiry protection kept per
// deployment on this machine), the release the services stack runs (its
// DocsvcImage/AgentImage parameters, SSM marker paths), the recorded
// outcomes (an SSM parameter every operator of the deployment shares), the
// checks that a release applies, and the health verdict an upgrade waits on.

// releaseStateDir is where this machine keeps a deployment's verified TUF
// metadata: <config dir>/tetherctl/<name>. Keeping it makes TUF's rollback
// protection work across runs: a bundle older than one imported before is
// refused.
func releaseStateDir(getenv func(string) string, dc *deployconfig.Config) (string, error) {
	base := getenv("XDG_CONFIG_HOME")
	if base == "" {
		home := getenv("HOME")
		if home == "" {
			return "", errors.New("neither XDG_CONFIG_HOME nor HOME is set: set HOME, where tetherctl keeps the verified release metadata")
		}
		base = filepath.Join(home, ".config")
	}
	return filepath.Join(base, "tetherctl", dc.Name), nil
}

// verifiedReleases verifies the vendor's release export (tether-plane
// release export, the same file tetherctl airgap import takes) against
// deployment.yaml's trusted root with the agent's TUF client: signatures,
// thresholds, expiry, rollback and mix-and-match. Only what verified comes
// back, newest first, and only for deployment.yaml's channel.
func verifiedReleases(ctx context.Context, dc *deployconfig.Config, stateDir, bundle string, now time.Time) ([]release.Manifest, error) {
	if strings.TrimSpace(dc.Plane.TrustedRoot) == "" {
		return nil, errors.New("deployment.yaml has no plane.trusted_root: set it to the vendor's root.json (it came with the install), which every release is verified against")
	}
	return verifyExport(ctx, []byte(dc.Plane.TrustedRoot), "deployment.yaml's plane.trusted_root", dc.Plane.Channel, "plane.channel", stateDir, bundle, now, nil)
}

// verifyExport is verifiedReleases for any trusted root: rootWhat and
// channelWhat name where the root and the channel came from, for errors.
// keep, when set, is given the directory holding the verified artifacts
// before it is removed.
func verifyExport(ctx context.Context, root []byte, rootWhat, channel, channelWhat, stateDir, bundle string, now time.Time, keep func(targetsDir string, ms []release.Manifest) error) ([]release.Manifest, error) {
	meta := filepath.Join(stateDir, "tuf")
	if err := updater.Init(meta, root); err != nil {
		if errors.Is(err, updater.ErrAlreadyInitialized) {
			return nil, fmt.Errorf("%s is not the root this machine verified releases with before (%s): a root is replaced only by the vendor's signed rotation; restore it, or remove %s if you were told to re-install the root", rootWhat, meta, meta)
		}
		return nil, fmt.Errorf("%s: %w", rootWhat, err)
	}
	f, err := os.Open(bundle)
	if err != nil {
		return nil, fmt.Errorf("--bundle: %w (pass the file tether-plane release export wrote)", err)
	}
	defer f.Close()
	// The export is verified against a copy of the trusted metadata, which
	// replaces it only when the export verified and is for this channel: a
	// refused export (another channel's, whose metadata versions differ)
	// leaves what was trusted before as it was.
	work, err := os.MkdirTemp(stateDir, ".verify-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	next := filepath.Join(work, "tuf")
	if err := os.CopyFS(next, os.DirFS(meta)); err != nil {
		return nil, fmt.Errorf("copying the trusted metadata in %s: %w", meta, err)
	}
	targets := filepath.Join(work, "targets")
	ms, err := airgap.ImportBundle(ctx, next, targets, f, now)
	if err != nil {
		return nil, fmt.Errorf("release bundle %s refused, nothing was changed: %w", bundle, explainTUF(err))
	}
	if len(ms) > 0 && ms[0].Channel != channel {
		return nil, fmt.Errorf("release bundle %s is for channel %q but %s is %q: ask the vendor for the %s channel's export, or change %s if your license allows it",
			bundle, ms[0].Channel, channelWhat, channel, channel, channelWhat)
	}
	if keep != nil {
		if err := keep(targets, ms); err != nil {
			return nil, err
		}
	}
	old := filepath.Join(work, "old")
	if err := os.Rename(meta, old); err != nil {
		return nil, err
	}
	if err := os.Rename(next, meta); err != nil {
		return nil, errors.Join(err, os.Rename(old, meta))
	}
	return ms, nil
}

// explainTUF adds what an operator can do to go-tuf's error.
func explainTUF(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "expired"):
		return fmt.Errorf("%w (the export's signed metadata has expired: ask the vendor for a fresh export)", err)
	case strings.Contains(msg, "signature") || strings.Contains(msg, "threshold") || strings.Contains(msg, "Verifying"):
		return fmt.Errorf("%w (it is not signed by the keys deployment.yaml's plane.trusted_root trusts: do not use it, and ask the vendor where it came from)", err)
	case strings.Contains(msg, "version") && strings.Contains(msg, "lower"):
		return fmt.Errorf("%w (it is older than metadata this machine already verified: a rollback attack or a stale file; ask the vendor for a current export)", err)
	}
	return err
}

// imagesOf reads a verified manifest's docsvc and agent images
// (repo@sha256:...) as the digests the release steps take.
func imagesOf(m release.Manifest) (releaseImages, error) {
	rel := releaseImages{Version: m.Version}
	for _, c := range []struct {
		name string
		dst  *string
	}{{"docsvc", &rel.DocsvcDigest}, {"agent", &rel.AgentDigest}} {
		ref, ok := m.Images[c.name]
		if !ok {
			return rel, fmt.Errorf("release %s names no %s image (it has %s): it cannot be installed on the AWS runtime; ask the vendor", m.Version, c.name, strings.Join(sortedKeys(m.Images), ", "))
		}
		_, digest, _ := strings.Cut(ref, "@")
		if err := checkDigest("release "+m.Version+"'s "+c.name+" image", digest); err != nil {
			return rel, err
		}
		*c.dst = digest
	}
	return rel, nil
}

// deployedRelease is what the services stack runs: the SSM marker paths in
// its DocsvcImage and AgentImage parameters and the digests they name.
type deployedRelease struct {
	Version      string `json:"version"` // "" when no verified release has these digests
	DocsvcMarker string `json:"docsvc_marker"`
	AgentMarker  string `json:"agent_marker"`
	DocsvcDigest string `json:"docsvc_digest"`
	AgentDigest  string `json:"agent_digest"`
}

var markerDigestRE = regexp.MustCompile(`/sha256-([0-9a-f]{64})$`)

// digestOfMarker reads the digest a marker path names, after checking the
// path is one tetherctl writes for this deployment.
func digestOfMarker(dc *deployconfig.Config, param, path string) (string, error) {
	prefix := "/tether/" + dc.Name + "/migrated/"
	if param == "AgentImage" {
		prefix = "/tether/" + dc.Name + "/verified/agent/"
	}
	m := markerDigestRE.FindStringSubmatch(path)
	if !strings.HasPrefix(path, prefix) || m == nil || len(path) != len(prefix)+len("sha256-")+64 {
		return "", fmt.Errorf("the %s-services stack's %s parameter is %q, not %ssha256-<64 hex>: it was changed by hand; run tetherctl deploy to put it back", dc.Name, param, path, prefix)
	}
	return "sha256:" + m[1], nil
}

// currentRelease reads the services stack's image parameters.
func currentRelease(ctx context.Context, a *awsSession, dc *deployconfig.Config, ms []release.Manifest) (deployedRelease, error) {
	var cur deployedRelease
	cctx, cancel := callCtx(ctx)
	defer cancel()
	st, err := describeStack(cctx, a.CloudFormation(), dc.Name+"-services")
	if err != nil {
		return cur, err
	}
	if st == nil {
		return cur, fmt.Errorf("there is no %s-services stack: install with tetherctl deploy first", dc.Name)
	}
	for _, p := range st.Parameters {
		switch aws.ToString(p.ParameterKey) {
		case "DocsvcImage":
			cur.DocsvcMarker = aws.ToString(p.ParameterValue)
		case "AgentImage":
			cur.AgentMarker = aws.ToString(p.ParameterValue)
		}
	}
	if cur.DocsvcDigest, err = digestOfMarker(dc, "DocsvcImage", cur.DocsvcMarker); err != nil {
		return cur, err
	}
	if cur.AgentDigest, err = digestOfMarker(dc, "AgentImage", cur.AgentMarker); err != nil {
		return cur, err
	}
	cur.Version = versionOf(ms, cur.DocsvcDigest, cur.AgentDigest)
	return cur, nil
}

// versionOf finds the verified release with both digests.
func versionOf(ms []release.Manifest, docsvc, agent string) string {
	for _, m := range ms {
		if rel, err := imagesOf(m); err == nil && rel.DocsvcDigest == docsvc && rel.AgentDigest == agent {
			return m.Version
		}
	}
	return ""
}

// releaseOutcome is one upgrade, rollback or staging as recorded, in the
// format the agent and the local runtime share (internal/releasestate).
type releaseOutcome = releasestate.Outcome

// The outcomes are kept in one SSM parameter, so that every operator of the
// deployment (and the next machine, and the agent) sees the same previous
// release; only the newest maxOutcomes fit a Standard parameter's 4 KB.
const maxOutcomes = releasestate.Max

// parseHistory reads the recorded outcomes strictly, newest first. On top
// of the shared format's rules, tetherctl needs every digest (a rollback
// returns to them).
func parseHistory(name string, data []byte) ([]releaseOutcome, error) {
	h, err := releasestate.Parse("SSM parameter "+name, data)
	if err != nil {
		return nil, fmt.Errorf("%w (aws ssm delete-parameter --name %s)", err, name)
	}
	for i, o := range h {
		for _, d := range []string{o.DocsvcDigest, o.AgentDigest, o.FromDocsvc, o.FromAgent} {
			if err := checkDigest("SSM parameter "+name+" outcome "+fmt.Sprint(i), d); err != nil {
				return nil, fmt.Errorf("%w: delete the parameter", err)
			}
		}
	}
	return h, nil
}

func readHistory(ctx context.Context, a *awsSession, dc *deployconfig.Config) ([]releaseOutcome, error) {
	name := dc.ReleaseRecordParameter()
	cctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.SSM().GetParameter(cctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var nf *ssmtypes.ParameterNotFound
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading SSM parameter %s: %s", name, describeAWSError(err))
	}
	return parseHistory(name, []byte(aws.ToString(out.Parameter.Value)))
}

// recordOutcome puts o first in the history, keeping the newest maxOutcomes.
func recordOutcome(ctx context.Context, a *awsSession, dc *deployconfig.Config, o releaseOutcome) error {
	h, err := readHistory(ctx, a, dc)
	if err != nil {
		return err
	}
	data, err := json.Marshal(releasestate.Prepend(h, o))
	if err != nil {
		return err
	}
	name := dc.ReleaseRecordParameter()
	cctx, cancel := callCtx(ctx)
	defer cancel()
	_, err = a.SSM().PutParameter(cctx, &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(string(data)), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true),
		Description: aws.String("tetherctl's record of upgrades and rollbacks, newest first"),
	})
	if err != nil {
		return fmt.Errorf("recording the outcome in SSM parameter %s: %s", name, describeAWSError(err))
	}
	return nil
}

// previousRelease is what a rollback returns to: the release the newest
// successful upgrade or rollback left behind, when the services still run
// what it installed.
func previousRelease(h []releaseOutcome, cur deployedRelease) (releaseOutcome, bool) {
	for _, o := range h {
		if o.Outcome != "succeeded" {
			continue
		}
		if o.DocsvcDigest != cur.DocsvcDigest || o.AgentDigest != cur.AgentDigest {
			return releaseOutcome{}, false
		}
		return o, true
	}
	return releaseOutcome{}, false
}

// checkApplies says why target cannot be installed over current, or nil.
// A rollback may go back; an upgrade only forward, and only from at least
// the release's min_from (migrations are written for that starting point).
func checkApplies(target release.Manifest, current, channel string, rollback bool) error {
	if target.Channel != channel {
		return fmt.Errorf("release %s is on channel %q, the deployment follows %q (plane.channel)", target.Version, target.Channel, channel)
	}
	if current == "" {
		return fmt.Errorf("the services run images that no verified release names, so release %s's min_from (%s) cannot be checked: import the bundle that holds the running release, or run tetherctl deploy", target.Version, target.MinFrom)
	}
	c, err := release.CompareVersions(target.Version, current)
	if err != nil {
		return err
	}
	switch {
	case c == 0:
		return fmt.Errorf("release %s is the one running", target.Version)
	case c < 0 && !rollback:
		return fmt.Errorf("release %s is older than the running %s: upgrades only go forward; to return to the previous release use tetherctl rollback", target.Version, current)
	case c > 0 && rollback:
		return fmt.Errorf("release %s is newer than the running %s: use tetherctl upgrade", target.Version, current)
	}
	if !rollback && target.MinFrom != "" {
		if below, err := release.CompareVersions(current, target.MinFrom); err != nil || below < 0 {
			return fmt.Errorf("release %s upgrades from %s or newer, and %s runs: upgrade to a release in between first (tetherctl releases lists them)", target.Version, target.MinFrom, current)
		}
	}
	return nil
}

// healthProblems is the verdict an upgrade waits on, from what ECS and
// CloudWatch say: every service's one deployment completed with all its
// tasks running, and no alarm of the services stack in ALARM. settled is
// false while a rollout is still in progress (wait and ask again); problems
// name each failure.
func healthProblems(services []ecstypes.Service, alarms []cwtypes.MetricAlarm) (settled bool, problems []string) {
	settled = true
	for _, s := range services {
		name := aws.ToString(s.ServiceName)
		for _, d := range s.Deployments {
			switch d.RolloutState {
			case ecstypes.DeploymentRolloutStateFailed:
				problems = append(problems, fmt.Sprintf("service %s: deployment %s failed: %s", name, aws.ToString(d.Id), aws.ToString(d.RolloutStateReason)))
			case ecstypes.DeploymentRolloutStateInProgress:
				settled = false
			}
		}
		if len(s.Deployments) > 1 {
			settled = false
		}
		if s.RunningCount < s.DesiredCount && settled {
			settled = false
		}
	}
	for _, al := range alarms {
		if al.StateValue == cwtypes.StateValueAlarm {
			problems = append(problems, fmt.Sprintf("alarm %s is in ALARM: %s", aws.ToString(al.AlarmName), aws.ToString(al.StateReason)))
		}
	}
	return settled, problems
}

const releasesUsage = `usage: tetherctl releases --bundle FILE [--config deployment.yaml] [--output json]
       tetherctl releases --local DATA_DIR --bundle FILE [--trusted-root FILE] [--channel stable]

Lists the releases you can install on deployment.yaml's channel, the one the
services run now and the one a rollback returns to.

FILE is the vendor's signed release export (tether-plane release export; the
file tetherctl airgap import takes). It is verified with the agent's own TUF
checks against deployment.yaml's plane.trusted_root (signatures, expiry,
rollback) before anything in it is shown; the verified metadata is kept in
$XDG_CONFIG_HOME/tetherctl/<name>/ so an older export is refused later.
The running release is read from the <name>-services stack's DocsvcImage and
AgentImage parameters, the previous one from the SSM parameter
/tether/<name>/state/releases.

With --local DATA_DIR the same is shown for the local runtime (a running
tetherctl dev): the export is verified against DATA_DIR/plane/keys/root.json
(or --trusted-root) with its metadata kept in DATA_DIR/releases/tuf, the
running release is the supervisor's, the previous one comes from
DATA_DIR/releases/history.json.

`

type releasesReport struct {
	Channel   string           `json:"channel"`
	Current   deployedRelease  `json:"current"`
	Previous  *releaseOutcome  `json:"previous,omitempty"`
	Available []availableEntry `json:"available"`
}

type availableEntry struct {
	Version      string `json:"version"`
	MinFrom      string `json:"min_from"`
	DocsvcDigest string `json:"docsvc_digest"`
	AgentDigest  string `json:"agent_digest"`
	Applies      bool   `json:"applies"`
	Why          string `json:"why,omitempty"`
	Notes        string `json:"notes,omitempty"`
}

func releasesCmd(ctx context.Context, args []string, env Env) error {
	var df deployFlags
	fs := flag.NewFlagSet("releases", flag.ContinueOnError)
	df.register(fs)
	bundle := fs.String("bundle", "", "the vendor's signed release export `FILE`")
	var local localFlags
	local.register(fs, true)
	if helped, err := parseFlagsOnly(env, fs, args, releasesUsage+flagHelp(fs)); helped || err != nil {
		return err
	}
	if *bundle == "" {
		return fmt.Errorf("%w: tetherctl releases: pass --bundle FILE, the vendor's signed release export", errUsage)
	}
	if local.dataDir != "" {
		return localReleasesCmd(ctx, env, df.output, local, *bundle)
	}
	dc, err := df.load()
	if err != nil {
		return err
	}
	rep, err := listReleases(ctx, env, dc, df, *bundle)
	if err != nil {
		return fmt.Errorf("tetherctl releases: %w", err)
	}
	if df.output == "json" {
		return writeJSON(env.Stdout, rep)
	}
	w := env.Stdout
	fmt.Fprintf(w, "channel   %s\n", rep.Channel)
	fmt.Fprintf(w, "current   %s (docsvc %s, agent %s)\n", orDefault(rep.Current.Version, "not a verified release"), rep.Current.DocsvcDigest, rep.Current.AgentDigest)
	if rep.Previous != nil {
		fmt.Fprintf(w, "previous  %s (docsvc %s, agent %s)\n", orDefault(rep.Previous.From, "unknown version"), rep.Previous.FromDocsvc, rep.Previous.FromAgent)
	} else {
		fmt.Fprintln(w, "previous  none recorded")
	}
	printAvailable(w, rep.Available)
	return nil
}

func printAvailable(w io.Writer, available []availableEntry) {
	fmt.Fprintln(w, "available:")
	for _, e := range available {
		mark := "  "
		if e.Applies {
			mark = "↑ "
		}
		fmt.Fprintf(w, "  %s%-12s from %-10s %s\n", mark, e.Version, orDefault(e.MinFrom, "any"), orDefault(e.Why, "can be upgraded to"))
	}
}

func listReleases(ctx context.Context, env Env, dc *deployconfig.Config, df deployFlags, bundle string) (releasesReport, error) {
	rep := releasesReport{Channel: dc.Plane.Channel}
	dir, err := releaseStateDir(env.Getenv, dc)
	if err != nil {
		return rep, err
	}
	ms, err := verifiedReleases(ctx, dc, dir, bundle, env.Now())
	if err != nil {
		return rep, err
	}
	a, err := connect(ctx, env, dc, df)
	if err != nil {
		return rep, err
	}
	if rep.Current, err = currentRelease(ctx, a, dc, ms); err != nil {
		return rep, err
	}
	h, err := readHistory(ctx, a, dc)
	if err != nil {
		return rep, err
	}
	if prev, ok := previousRelease(h, rep.Current); ok {
		rep.Previous = &prev
	}
	rep.Available = []availableEntry{}
	for _, m := range ms {
		e := availableEntry{Version: m.Version, MinFrom: m.MinFrom, Notes: m.Notes}
		rel, err := imagesOf(m)
		if err == nil {
			e.DocsvcDigest, e.AgentDigest = rel.DocsvcDigest, rel.AgentDigest
			err = checkApplies(m, rep.Current.Version, dc.Plane.Channel, false)
		}
		if err != nil {
			e.Why = err.Error()
		}
		e.Applies = err == nil
		rep.Available = append(rep.Available, e)
	}
	return rep, nil
}

// setStackParameters changes only the named parameters of an existing stack
// (same template, every other parameter at its previous value) through a
// change set: the change set's resource changes are shown on w, confirmed
// unless yes, executed and followed to the end. This is how an upgrade
// moves the cluster stack's MigrateImageDigest and the services stack's
// DocsvcImage/AgentImage, and how a failed rollout is undone.
func setStackParameters(ctx context.Context, env Env, a *awsSession, stack string, set map[string]string, yes bool, w io.Writer) error {
	cfn := a.CloudFormation()
	s, err := describeStack(ctx, cfn, stack)
	if err != nil {
		return err
	}
	if s == nil {
		return fmt.Errorf("there is no stack %s: run tetherctl deploy", stack)
	}
	var params []cfntypes.Parameter
	known := map[string]bool{}
	for _, p := range s.Parameters {
		k := aws.ToString(p.ParameterKey)
		known[k] = true
		if v, ok := set[k]; ok {
			params = append(params, cfntypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(v)})
		} else {
			params = append(params, cfntypes.Parameter{ParameterKey: aws.String(k), UsePreviousValue: aws.Bool(true)})
		}
	}
	for _, k := range sortedKeys(set) {
		if !known[k] {
			return fmt.Errorf("stack %s has no parameter %s: it was not deployed by this version of tetherctl; run tetherctl deploy", stack, k)
		}
	}
	cctx, cancel := callCtx(ctx)
	cs, err := cfn.CreateChangeSet(cctx, &cloudformation.CreateChangeSetInput{
		StackName: aws.String(stack),
		// Unique to the nanosecond: a rollback may follow within a second.
		ChangeSetName:       aws.String("tetherctl-" + strings.Replace(env.Now().UTC().Format("20060102T150405.000000000Z"), ".", "-", 1)),
		ChangeSetType:       cfntypes.ChangeSetTypeUpdate,
		Description:         aws.String("tetherctl: " + strings.Join(sortedKeys(set), ", ")),
		UsePreviousTemplate: aws.Bool(true),
		Parameters:          params,
		Capabilities:        s.Capabilities,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("creating a change set for %s (CloudFormation CreateChangeSet): %s", stack, describeAWSError(err))
	}
	empty, err := waitChangeSet(ctx, cfn, stack, aws.ToString(cs.Id))
	if err != nil {
		return err
	}
	if empty {
		fmt.Fprintf(w, "%s: no changes\n", stack)
		return nil
	}
	cctx, cancel = callCtx(ctx)
	desc, err := cfn.DescribeChangeSet(cctx, &cloudformation.DescribeChangeSetInput{ChangeSetName: cs.Id, StackName: aws.String(stack)})
	cancel()
	if err != nil {
		return fmt.Errorf("reading %s's change set (CloudFormation DescribeChangeSet): %s", stack, describeAWSError(err))
	}
	fmt.Fprintf(w, "Change set for %s:\n", stack)
	for _, k := range sortedKeys(set) {
		fmt.Fprintf(w, "  parameter %s = %s\n", k, set[k])
	}
	for _, c := range desc.Changes {
		if rc := c.ResourceChange; rc != nil {
			fmt.Fprintf(w, "  %-8s %-40s %s (replacement: %s)\n", rc.Action, aws.ToString(rc.LogicalResourceId), aws.ToString(rc.ResourceType), orDefault(string(rc.Replacement), "n/a"))
		}
	}
	if !yes {
		ok, err := askToProceed(env, "Apply this change set?")
		if err != nil {
			return err
		}
		if !ok {
			cctx, cancel := callCtx(ctx)
			_, _ = cfn.DeleteChangeSet(cctx, &cloudformation.DeleteChangeSetInput{ChangeSetName: cs.Id, StackName: aws.String(stack)})
			cancel()
			return fmt.Errorf("not confirmed: %s was not changed", stack)
		}
	}
	seen, err := eventIDs(ctx, cfn, stack)
	if err != nil {
		return err
	}
	cctx, cancel = callCtx(ctx)
	_, err = cfn.ExecuteChangeSet(cctx, &cloudformation.ExecuteChangeSetInput{ChangeSetName: cs.Id, StackName: aws.String(stack)})
	cancel()
	if err != nil {
		return fmt.Errorf("executing the change set for %s (CloudFormation ExecuteChangeSet): %s", stack, describeAWSError(err))
	}
	final, events, err := followStack(ctx, cfn, stack, seen, w)
	if err != nil {
		return err
	}
	if !stackSucceeded(final.StackStatus) {
		return deployFailure(stack, final, events)
	}
	return nil
}

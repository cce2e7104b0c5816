// Package upgrader is tether-upgrade: a one-off task that applies the
// release tetherctl upgrade --stage prepared, in the customer's upgrade
// window (plane.automatic_upgrades, plane.upgrade_window). A schedule starts
// it at each window start; it runs once and exits.
//
// It reads the release record (internal/releasestate). When the newest
// outcome there is a release tetherctl staged, and the markers tetherctl
// wrote for its images exist, it updates the services stack's DocsvcImage
// and AgentImage to those markers, and nothing else, through the stack's
// upgrade role, with CloudFormation's rollback triggers on the stack's
// alarms; it waits for the update to end and records the outcome:
// UPDATE_COMPLETE with the target's markers is succeeded,
// UPDATE_ROLLBACK_COMPLETE (a failed rollout, or an alarm during the
// monitoring time) is rolled-back, anything else that ended is failed.
//
// It calls AWS APIs only, never the vendor's plane. The agent, which talks
// to the plane, cannot change the stack.
//
// It records "in-progress" before it calls UpdateStack. A run that finds an
// in-progress outcome (its predecessor was stopped before the update ended)
// settles it from the stack's status first, inside the window or not.
// Outside the window it changes nothing else.
package upgrader

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/tetherhq/tether/internal/cli"
	"github.com/tetherhq/tether/internal/releasestate"
	"github.com/tetherhq/tether/internal/upgradewindow"
)

// ErrUsage is matched by command-line and configuration mistakes (exit 2).
var ErrUsage = errors.New("usage")

// By is how the record names this command's outcomes.
const By = "tether-upgrade"

// Config is what one run needs.
type Config struct {
	Record  string // SSM parameter /tether/<name>/state/releases
	Window  upgradewindow.Window
	Stack   string // the services stack
	RoleARN string // the stack's upgrade role
	// Monitor is how long CloudFormation watches the alarms after the
	// update before it counts as done; default 10m.
	Monitor time.Duration
	// Wait is how long the run waits for the update to end; the next run
	// settles an update that outlasts it. Default 3h.
	Wait time.Duration
}

// setting is one flag and its environment variable.
type setting struct {
	flag, env, help string
	v               *string
}

func settings(record, window, stack, role *string) []setting {
	return []setting{
		{"release-record", "TETHER_RELEASE_RECORD", "the release record, SSM parameter /tether/<name>/state/releases", record},
		{"upgrade-window", "TETHER_UPGRADE_WINDOW", "when a release may be applied, e.g. \"Sun 02:00-04:00\" in UTC (plane.upgrade_window)", window},
		{"services-stack", "TETHER_SERVICES_STACK", "the services stack the upgrade updates", stack},
		{"upgrade-role", "TETHER_UPGRADE_ROLE_ARN", "the IAM role CloudFormation assumes for that update", role},
	}
}

const usage = `usage: tether-upgrade [flags]

Applies the release tetherctl upgrade --stage prepared, once, and exits: if
the release record's newest outcome is a staged release whose image markers
exist and the time is inside the upgrade window, it updates the services
stack's DocsvcImage and AgentImage to that release through the upgrade role,
with the stack's alarms as rollback triggers, waits for the update to end and
records the outcome. It first settles an attempt an earlier run left
in progress. It talks to AWS only. On AWS a schedule runs it at each start
of plane.upgrade_window (docs/upgrades.md).

Every flag can come from its environment variable instead; a flag wins.
Exit status: 0 applied, or nothing to do; 1 the release was not applied
(rolled back, failed, or AWS refused); 2 a usage mistake.

Flags:
`

// Main is the tether-upgrade command; cmd/tether-upgrade exits with its
// result through internal/cli. awsCfg loads the AWS configuration (the
// SDK's default chain in the task).
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, awsCfg func(context.Context) (aws.Config, error)) error {
	fs, cfg := flags(getenv)
	if cli.WantsHelp(args) {
		fs, _ = flags(func(string) string { return "" })
		fmt.Fprint(stdout, usage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return nil
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w (see 'tether-upgrade --help')", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (see 'tether-upgrade --help')", ErrUsage, fs.Arg(0))
	}
	c, err := cfg()
	if err != nil {
		return err
	}
	ac, err := awsCfg(ctx)
	if err != nil {
		return fmt.Errorf("AWS configuration: %w", err)
	}
	return New(c, ac, time.Now, slog.New(slog.NewJSONHandler(stderr, nil))).Run(ctx)
}

// flags is the flag set, each default taken from its variable, and what
// checks the parsed values.
func flags(getenv func(string) string) (*flag.FlagSet, func() (Config, error)) {
	var record, window, stack, role string
	fs := flag.NewFlagSet("tether-upgrade", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, s := range settings(&record, &window, &stack, &role) {
		fs.StringVar(s.v, s.flag, getenv(s.env), s.help+" (env "+s.env+")")
	}
	return fs, func() (Config, error) { return NewConfig(record, window, stack, role) }
}

// NewConfig checks the four settings, all required, and reports every bad
// one on its own line.
func NewConfig(record, window, stack, role string) (Config, error) {
	c := Config{Record: record, Stack: stack, RoleARN: role, Monitor: 10 * time.Minute, Wait: 3 * time.Hour}
	var problems []string
	bad := func(s setting, why string) {
		problems = append(problems, fmt.Sprintf("--%s (%s): %s", s.flag, s.env, why))
	}
	for _, s := range settings(&record, &window, &stack, &role) {
		v := *s.v
		switch {
		case v == "":
			bad(s, "is required; the services stack sets it when plane.automatic_upgrades is on")
		case s.flag == "release-record" && !releasestate.RecordRE.MatchString(v):
			bad(s, "must be the SSM parameter /tether/<name>/state/releases")
		case s.flag == "services-stack" && !stackRE.MatchString(v):
			bad(s, "must be a CloudFormation stack name, such as acme-docs-services")
		case s.flag == "upgrade-role" && !roleRE.MatchString(v):
			bad(s, "must be an IAM role ARN, arn:aws:iam::<account>:role/<name>")
		case s.flag == "upgrade-window":
			w, err := upgradewindow.Parse(v)
			if err != nil {
				bad(s, err.Error())
			}
			c.Window = w
		}
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("%w: invalid configuration:\n  %s", ErrUsage, strings.Join(problems, "\n  "))
	}
	return c, nil
}

var stackRE = regexp.MustCompile(`^[A-Za-z][-A-Za-z0-9]{0,127}$`)

var roleRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)

// Target is a release's images, as tetherctl staged them.
type Target struct {
	Version, DocsvcDigest, AgentDigest string // digests sha256:<64 hex>
}

// Staged is the release tetherctl staged, when the record's newest outcome
// is that staging: anything recorded since (an upgrade, a rollback, an
// attempt of this command) supersedes it, so a failed attempt is not tried
// again until tetherctl stages it again.
func Staged(h []releasestate.Outcome) (Target, bool) {
	if len(h) == 0 || h[0].Action != "upgrade" || h[0].Outcome != "staged" {
		return Target{}, false
	}
	return Target{Version: h[0].To, DocsvcDigest: h[0].DocsvcDigest, AgentDigest: h[0].AgentDigest}, true
}

// Upgrader is one run.
type Upgrader struct {
	cfg  Config
	now  func() time.Time
	log  *slog.Logger
	ssm  *ssm.Client
	cfn  *cloudformation.Client
	poll time.Duration
}

// New prepares a run.
func New(cfg Config, awsCfg aws.Config, now func() time.Time, log *slog.Logger) *Upgrader {
	return &Upgrader{cfg: cfg, now: now, log: log, ssm: ssm.NewFromConfig(awsCfg), cfn: cloudformation.NewFromConfig(awsCfg), poll: 15 * time.Second}
}

// Run settles an attempt left in progress, then applies the staged release
// if there is one and the time is inside the window. It returns nil when
// the release was applied or there was nothing to do.
func (u *Upgrader) Run(ctx context.Context) error {
	h, err := u.read(ctx)
	if err != nil {
		return err
	}
	if len(h) > 0 && h[0].Outcome == "in-progress" {
		if h, err = u.settle(ctx, h); err != nil {
			return err
		}
		if h[0].Outcome == "in-progress" {
			u.log.Info("an earlier attempt is still updating the stack; nothing to do", "version", h[0].To, "stack", u.cfg.Stack)
			return nil
		}
	}
	t, ok := Staged(h)
	switch {
	case !ok:
		u.log.Info("no release is staged; nothing to do")
		return nil
	case !u.cfg.Window.Contains(u.now()):
		u.log.Info("outside the upgrade window; nothing to do", "version", t.Version, "window", u.cfg.Window.String())
		return nil
	}
	return u.apply(ctx, h, t)
}

func (u *Upgrader) read(ctx context.Context) ([]releasestate.Outcome, error) {
	return releasestate.Read(ctx, u.ssm, u.cfg.Record, "")
}

// write puts h into the SSM record.
func (u *Upgrader) write(ctx context.Context, h []releasestate.Outcome) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = u.ssm.PutParameter(cctx, &ssm.PutParameterInput{Name: aws.String(u.cfg.Record), Value: aws.String(string(data)),
		Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true), Description: aws.String("the release record: upgrades and rollbacks, newest first")})
	if err != nil {
		return fmt.Errorf("writing the release record %s: %w", u.cfg.Record, err)
	}
	return nil
}

func (u *Upgrader) markers() (docsvc, agent func(digest string) string) {
	name := releasestate.RecordRE.FindStringSubmatch(u.cfg.Record)[1]
	marker := func(dir string) func(string) string {
		return func(d string) string { return "/tether/" + name + dir + strings.Replace(d, ":", "-", 1) }
	}
	return marker("/migrated/"), marker("/verified/agent/")
}

func (u *Upgrader) apply(ctx context.Context, h []releasestate.Outcome, t Target) error {
	st, err := u.stack(ctx)
	if err != nil {
		return err
	}
	docsvcMarker, agentMarker := u.markers()
	staged := true
	for _, p := range []string{docsvcMarker(t.DocsvcDigest), agentMarker(t.AgentDigest)} {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := u.ssm.GetParameter(cctx, &ssm.GetParameterInput{Name: aws.String(p)})
		cancel()
		var nf *ssmtypes.ParameterNotFound
		if errors.As(err, &nf) {
			staged = false
		} else if err != nil {
			return fmt.Errorf("reading marker %s: %w", p, err)
		}
	}
	if why := Decide(u.cfg.Window, u.now(), h, st, t, staged); why != "" {
		return fmt.Errorf("release %s not applied: %s", t.Version, why)
	}
	alarms, err := u.alarms(ctx, st)
	if err != nil {
		return err
	}
	from := Target{}
	var params []cfntypes.Parameter
	for _, p := range st.Parameters {
		switch aws.ToString(p.ParameterKey) {
		case "DocsvcImage":
			from.DocsvcDigest = digestOf(aws.ToString(p.ParameterValue))
			params = append(params, cfntypes.Parameter{ParameterKey: p.ParameterKey, ParameterValue: aws.String(docsvcMarker(t.DocsvcDigest))})
		case "AgentImage":
			from.AgentDigest = digestOf(aws.ToString(p.ParameterValue))
			params = append(params, cfntypes.Parameter{ParameterKey: p.ParameterKey, ParameterValue: aws.String(agentMarker(t.AgentDigest))})
		default:
			params = append(params, cfntypes.Parameter{ParameterKey: p.ParameterKey, UsePreviousValue: aws.Bool(true)})
		}
	}
	if from.DocsvcDigest == "" || from.AgentDigest == "" {
		return fmt.Errorf("the %s stack's DocsvcImage or AgentImage is not a marker tetherctl wrote: run tetherctl deploy", u.cfg.Stack)
	}
	rel, _ := releasestate.Report(h)
	h = releasestate.Prepend(h, releasestate.Outcome{Action: "upgrade", From: rel, To: t.Version, FromDocsvc: from.DocsvcDigest, FromAgent: from.AgentDigest,
		DocsvcDigest: t.DocsvcDigest, AgentDigest: t.AgentDigest, Outcome: "in-progress", By: By, At: u.now().UTC()})
	// Recorded first, so a run stopped mid-update leaves a record the next
	// run settles.
	if err := u.write(ctx, h); err != nil {
		return err
	}
	u.log.Info("applying release", "version", t.Version, "stack", u.cfg.Stack, "alarms", len(alarms))
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = u.cfn.UpdateStack(cctx, UpdateInput(u.cfg, st, params, alarms))
	cancel()
	if err != nil {
		// The scheduler delivers at least once: a second run that finds the
		// first one's update under way leaves the record to that run.
		if st, serr := u.stack(ctx); serr == nil {
			if _, done := Settled(h[0], st); !done {
				return fmt.Errorf("UpdateStack %s: %w (an update is under way; the run that started it records the outcome)", u.cfg.Stack, err)
			}
		}
		h[0].Outcome, h[0].Code, h[0].Reason = "failed", "stack-failed", oneLine(err.Error())
		return errors.Join(fmt.Errorf("UpdateStack %s: %w", u.cfg.Stack, err), u.write(ctx, h))
	}
	deadline := time.After(u.cfg.Wait)
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped while %s was updating; the next run records the outcome", u.cfg.Stack)
		case <-deadline:
			return fmt.Errorf("%s was still updating after %s; the next run records the outcome", u.cfg.Stack, u.cfg.Wait)
		case <-time.After(u.poll):
		}
		if h, err = u.settle(ctx, h); err != nil {
			return err
		}
		switch o := h[0]; o.Outcome {
		case "in-progress":
		case "succeeded":
			return nil
		default:
			return fmt.Errorf("release %s %s (%s): %s", o.To, o.Outcome, o.Code, o.Reason)
		}
	}
}

// UpdateInput is the one update tether-upgrade makes: the same template,
// only the image parameters changed, through the upgrade role, with the
// stack's alarms as rollback triggers for Config.Monitor after the update.
func UpdateInput(cfg Config, st *cfntypes.Stack, params []cfntypes.Parameter, alarms []string) *cloudformation.UpdateStackInput {
	rc := &cfntypes.RollbackConfiguration{MonitoringTimeInMinutes: aws.Int32(int32(cfg.Monitor / time.Minute))}
	for _, a := range alarms {
		rc.RollbackTriggers = append(rc.RollbackTriggers, cfntypes.RollbackTrigger{Arn: aws.String(a), Type: aws.String("AWS::CloudWatch::Alarm")})
	}
	return &cloudformation.UpdateStackInput{
		StackName: aws.String(cfg.Stack), UsePreviousTemplate: aws.Bool(true), Parameters: params,
		Capabilities: st.Capabilities, RoleARN: aws.String(cfg.RoleARN), RollbackConfiguration: rc,
	}
}

// Decide says why t is not to be applied now ("" when it is): outside the
// window, its markers missing, the stack busy or not healthy, t already
// running, or an attempt unsettled.
func Decide(w upgradewindow.Window, now time.Time, h []releasestate.Outcome, st *cfntypes.Stack, t Target, staged bool) string {
	switch {
	case !digestRE.MatchString(t.DocsvcDigest) || !digestRE.MatchString(t.AgentDigest):
		return "the record names no docsvc and agent image digests: run tetherctl upgrade --stage again"
	case !w.Contains(now):
		return "outside the upgrade window " + w.String()
	case !staged:
		return "its image markers are missing: run tetherctl upgrade --stage again"
	case st.StackStatus != cfntypes.StackStatusUpdateComplete && st.StackStatus != cfntypes.StackStatusCreateComplete &&
		st.StackStatus != cfntypes.StackStatusUpdateRollbackComplete:
		return "the services stack is " + string(st.StackStatus)
	}
	for _, p := range st.Parameters {
		if aws.ToString(p.ParameterKey) == "DocsvcImage" && digestOf(aws.ToString(p.ParameterValue)) == t.DocsvcDigest {
			return "the services run it"
		}
	}
	for _, o := range h {
		if o.Outcome == "in-progress" {
			return "an attempt is in progress"
		}
	}
	return ""
}

// settle resolves an in-progress outcome from the stack once its update
// has ended, and records it.
func (u *Upgrader) settle(ctx context.Context, h []releasestate.Outcome) ([]releasestate.Outcome, error) {
	st, err := u.stack(ctx)
	if err != nil {
		return h, err
	}
	o, done := Settled(h[0], st)
	if !done {
		return h, nil
	}
	h = append([]releasestate.Outcome{o}, h[1:]...)
	u.log.Info("release attempt ended", "version", o.To, "outcome", o.Outcome, "code", o.Code)
	return h, u.write(ctx, h)
}

// Settled is an in-progress outcome as the stack's status ends it; done is
// false while the update runs.
func Settled(o releasestate.Outcome, st *cfntypes.Stack) (releasestate.Outcome, bool) {
	s := string(st.StackStatus)
	switch {
	case strings.HasSuffix(s, "_IN_PROGRESS"):
		return o, false
	case st.StackStatus == cfntypes.StackStatusUpdateComplete:
		for _, p := range st.Parameters {
			if aws.ToString(p.ParameterKey) == "DocsvcImage" && digestOf(aws.ToString(p.ParameterValue)) != o.DocsvcDigest {
				o.Outcome, o.Code, o.Reason = "failed", "interrupted", "the services stack was updated to other images"
				return o, true
			}
		}
		o.Outcome = "succeeded"
	case st.StackStatus == cfntypes.StackStatusUpdateRollbackComplete:
		o.Outcome, o.Code = "rolled-back", "stack-failed"
		o.Reason = "CloudFormation rolled the services stack back (a failed rollout, or an alarm within the monitoring time): " + oneLine(aws.ToString(st.StackStatusReason))
	default:
		o.Outcome, o.Code, o.Reason = "failed", "stack-failed", "the services stack ended "+s+": "+oneLine(aws.ToString(st.StackStatusReason))
	}
	return o, true
}

func (u *Upgrader) stack(ctx context.Context) (*cfntypes.Stack, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := u.cfn.DescribeStacks(cctx, &cloudformation.DescribeStacksInput{StackName: aws.String(u.cfg.Stack)})
	if err == nil && len(out.Stacks) != 1 {
		err = fmt.Errorf("%d stacks", len(out.Stacks))
	}
	if err != nil {
		return nil, fmt.Errorf("DescribeStacks %s: %w", u.cfg.Stack, err)
	}
	return &out.Stacks[0], nil
}

// alarms are the rollback triggers: the services stack's alarms.
func (u *Upgrader) alarms(ctx context.Context, st *cfntypes.Stack) ([]string, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := u.cfn.DescribeStackResources(cctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String(u.cfg.Stack)})
	if err != nil {
		return nil, fmt.Errorf("DescribeStackResources %s: %w", u.cfg.Stack, err)
	}
	return Triggers(aws.ToString(st.StackId), res.StackResources), nil
}

// Triggers are the ARNs of a stack's own alarms (logical IDs starting
// "Alarm", as tetherctl's health check reads them; not the worker's scaling
// alarms, which are in ALARM whenever the queue is idle, nor the database's
// CPU and storage alarms, which say nothing of a release), at most the five
// CloudFormation takes. stackID is the stack's ARN.
func Triggers(stackID string, resources []cfntypes.StackResource) []string {
	// arn:<partition>:cloudformation:<region>:<account>:stack/...
	arn := strings.SplitN(stackID, ":", 6)
	if len(arn) < 6 {
		return nil
	}
	var out []string
	for _, r := range resources {
		name := aws.ToString(r.PhysicalResourceId)
		if aws.ToString(r.ResourceType) == "AWS::CloudWatch::Alarm" && strings.HasPrefix(aws.ToString(r.LogicalResourceId), "Alarm") && !strings.Contains(name, "-database-") {
			out = append(out, strings.Join([]string{"arn", arn[1], "cloudwatch", arn[3], arn[4], "alarm", name}, ":"))
		}
	}
	return out[:min(len(out), 5)]
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

var markerDigest = regexp.MustCompile(`/sha256-([0-9a-f]{64})$`)

// digestOf reads the digest a marker path names, "" for anything else.
func digestOf(marker string) string {
	if m := markerDigest.FindStringSubmatch(marker); m != nil {
		return "sha256:" + m[1]
	}
	return ""
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return s[:min(len(s), 300)]
}

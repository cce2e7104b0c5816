// Package autoupgrade is the agent's part in the release lifecycle. It
// reads the install's release record (internal/releasestate) for the
// heartbeat, and, only when the customer's deployment.yaml allows it
// (plane.automatic_upgrades with a plane.upgrade_window), applies a
// release tetherctl staged: inside the window, it updates the services
// stack's DocsvcImage and AgentImage to the release's markers, through the
// stack's upgrade role, with CloudFormation's rollback triggers on the
// stack's alarms, and records the outcome.
//
// The agent replaces itself. The update changes AgentImage, so ECS stops
// this agent's task (the agent service runs one task at a time) while
// CloudFormation is still rolling the services; the process that started
// an update seldom lives to see it end. So the agent writes an
// "in-progress" outcome before it calls UpdateStack, and every agent, the
// one that started it or the next one on its first Refresh, settles an
// in-progress outcome it finds from the stack's status once the update has
// ended: UPDATE_COMPLETE with the target's markers is succeeded;
// UPDATE_ROLLBACK_COMPLETE (a failed rollout, or an alarm during the
// monitoring time) is rolled-back; anything else that ended is failed.
// Should both write, they write the same outcome.
package autoupgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/tetherhq/tether/internal/releasestate"
	"github.com/tetherhq/tether/internal/upgradewindow"
	"github.com/tetherhq/tether/internal/wire"
)

// Config is the agent's release settings.
type Config struct {
	DataDir string
	// Record is the SSM parameter /tether/<name>/state/releases on AWS;
	// empty on the local runtime, where the record is
	// DataDir/state/releases.json.
	Record string
	// Window is when a release may be applied; empty: never (report only).
	Window  upgradewindow.Window
	Stack   string // the services stack
	RoleARN string // the stack's upgrade role
	// Monitor is how long CloudFormation watches the alarms after the
	// update before it counts as done; default 10m.
	Monitor time.Duration
}

// NewConfig checks the agent's release settings (flags --release-record,
// --upgrade-window, --upgrade-stack, --upgrade-role) and builds a Config:
// a window needs the other three; without a window the agent only reports.
func NewConfig(dataDir, record, window, stack, role string) (Config, error) {
	c := Config{DataDir: dataDir, Record: record, Stack: stack, RoleARN: role}
	var problems []string
	if record != "" && !RecordRE.MatchString(record) {
		problems = append(problems, "--release-record (TETHER_RELEASE_RECORD): must be the SSM parameter /tether/<name>/state/releases")
	}
	if window != "" {
		w, err := upgradewindow.Parse(window)
		if err != nil {
			problems = append(problems, "--upgrade-window (TETHER_UPGRADE_WINDOW): "+err.Error())
		}
		c.Window = w
		if record == "" || !stackRE.MatchString(stack) || !roleRE.MatchString(role) {
			problems = append(problems, "--upgrade-window (TETHER_UPGRADE_WINDOW): applying releases needs --release-record, --upgrade-stack and --upgrade-role (an IAM role ARN); the services stack sets all four when plane.automatic_upgrades is on")
		}
	}
	if len(problems) > 0 {
		return Config{}, errors.New(strings.Join(problems, "\n  "))
	}
	return c, nil
}

var stackRE = regexp.MustCompile(`^[A-Za-z][-A-Za-z0-9]{0,127}$`)

var roleRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)

// RecordRE is the one shape of Config.Record.
var RecordRE = regexp.MustCompile(`^/tether/([a-z][a-z0-9-]{0,31})/state/releases$`)

// Target is a verified release on the agent's channel.
type Target struct {
	Version, DocsvcDigest, AgentDigest string // digests sha256:<64 hex>
}

// Manager holds the last report and applies releases one at a time.
type Manager struct {
	cfg  Config
	now  func() time.Time
	log  *slog.Logger
	ssm  *ssm.Client            // nil on the local runtime
	cfn  *cloudformation.Client // nil unless Window is set
	busy atomic.Bool
	poll time.Duration

	mu      sync.Mutex
	release string
	last    wire.UpgradeAttempt
}

// New prepares a Manager; awsCfg is needed when cfg.Record is set.
func New(cfg Config, awsCfg *aws.Config, now func() time.Time, log *slog.Logger) *Manager {
	if cfg.Monitor == 0 {
		cfg.Monitor = 10 * time.Minute
	}
	m := &Manager{cfg: cfg, now: now, log: log, poll: 15 * time.Second}
	if cfg.Record != "" && awsCfg != nil {
		m.ssm = ssm.NewFromConfig(*awsCfg)
		if len(cfg.Window) > 0 {
			m.cfn = cloudformation.NewFromConfig(*awsCfg)
		}
	}
	return m
}

// Report is the release and last attempt the heartbeat carries.
func (m *Manager) Report() (string, wire.UpgradeAttempt) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.release, m.last
}

// Refresh reads the record (and on AWS settles an in-progress outcome whose
// update has ended) and keeps its report. A missing record reports
// nothing; an unreadable one keeps the previous report and is returned.
func (m *Manager) Refresh(ctx context.Context) error {
	h, err := m.read(ctx)
	if err == nil && len(h) > 0 && h[0].Outcome == "in-progress" && m.cfn != nil && !m.busy.Load() {
		h, err = m.settle(ctx, h)
	}
	if err != nil {
		return err
	}
	m.keep(h)
	return nil
}

func (m *Manager) keep(h []releasestate.Outcome) {
	rel, last := releasestate.Report(h)
	m.mu.Lock()
	m.release, m.last = rel, last
	m.mu.Unlock()
}

func (m *Manager) read(ctx context.Context) ([]releasestate.Outcome, error) {
	if m.cfg.Record == "" {
		path := filepath.Join(m.cfg.DataDir, releasestate.LocalFile)
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return releasestate.Parse(path, data)
	}
	if m.ssm == nil {
		return nil, errors.New("autoupgrade: no AWS configuration for the release record")
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := m.ssm.GetParameter(cctx, &ssm.GetParameterInput{Name: aws.String(m.cfg.Record)})
	var nf *ssmtypes.ParameterNotFound
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the release record %s: %w", m.cfg.Record, err)
	}
	return releasestate.Parse("SSM parameter "+m.cfg.Record, []byte(aws.ToString(out.Parameter.Value)))
}

// write puts h into the SSM record.
func (m *Manager) write(ctx context.Context, h []releasestate.Outcome) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = m.ssm.PutParameter(cctx, &ssm.PutParameterInput{Name: aws.String(m.cfg.Record), Value: aws.String(string(data)),
		Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true), Description: aws.String("the release record: upgrades and rollbacks, newest first")})
	if err != nil {
		return fmt.Errorf("writing the release record %s: %w", m.cfg.Record, err)
	}
	m.keep(h)
	return nil
}

func (m *Manager) markers() (docsvc, agent func(digest string) string) {
	name := RecordRE.FindStringSubmatch(m.cfg.Record)[1]
	marker := func(dir string) func(string) string {
		return func(d string) string { return "/tether/" + name + dir + strings.Replace(d, ":", "-", 1) }
	}
	return marker("/migrated/"), marker("/verified/agent/")
}

// Apply applies t if the policy allows it now, waits for the outcome and
// records it. It does nothing while another Apply runs. The reason it did
// not apply is logged.
func (m *Manager) Apply(ctx context.Context, t Target) {
	// Outside the window nothing is read: Decide would refuse anyway.
	if m.cfn == nil || !m.cfg.Window.Contains(m.now()) || !m.busy.CompareAndSwap(false, true) {
		return
	}
	defer m.busy.Store(false)
	if err := m.apply(ctx, t); err != nil {
		m.log.Info("release not applied", "version", t.Version, "why", err.Error())
	}
}

func (m *Manager) apply(ctx context.Context, t Target) error {
	st, err := m.stack(ctx)
	if err != nil {
		return err
	}
	h, err := m.read(ctx)
	if err != nil {
		return err
	}
	docsvcMarker, agentMarker := m.markers()
	staged := true
	for _, p := range []string{docsvcMarker(t.DocsvcDigest), agentMarker(t.AgentDigest)} {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := m.ssm.GetParameter(cctx, &ssm.GetParameterInput{Name: aws.String(p)})
		cancel()
		var nf *ssmtypes.ParameterNotFound
		if errors.As(err, &nf) {
			staged = false
		} else if err != nil {
			return fmt.Errorf("reading marker %s: %w", p, err)
		}
	}
	if why := Decide(m.cfg.Window, m.now(), h, st, t, staged); why != "" {
		return errors.New(why)
	}
	alarms, err := m.alarms(ctx, st)
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
		return fmt.Errorf("the %s stack's DocsvcImage or AgentImage is not a marker tetherctl wrote: run tetherctl deploy", m.cfg.Stack)
	}
	rel, _ := releasestate.Report(h)
	o := releasestate.Outcome{Action: "upgrade", From: rel, To: t.Version, FromDocsvc: from.DocsvcDigest, FromAgent: from.AgentDigest,
		DocsvcDigest: t.DocsvcDigest, AgentDigest: t.AgentDigest, Outcome: "in-progress", By: "agent", At: m.now().UTC()}
	h = releasestate.Prepend(h, o)
	// Recorded first: ECS replaces this task during the update.
	if err := m.write(ctx, h); err != nil {
		return err
	}
	m.log.Info("applying release", "version", t.Version, "stack", m.cfg.Stack, "alarms", len(alarms))
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = m.cfn.UpdateStack(cctx, UpdateInput(m.cfg, st, params, alarms))
	cancel()
	if err != nil {
		h[0].Outcome, h[0].Code, h[0].Reason = "failed", "stack-failed", oneLine(err.Error())
		return errors.Join(fmt.Errorf("UpdateStack %s: %w", m.cfg.Stack, err), m.write(ctx, h))
	}
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped while %s was updating; the next agent records the outcome", m.cfg.Stack)
		case <-time.After(m.poll):
		}
		if h, err = m.settle(ctx, h); err != nil || h[0].Outcome != "in-progress" {
			return err
		}
	}
}

// UpdateInput is the one update the agent makes: the same template, only
// the image parameters changed, through the upgrade role, with the
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
// window, not staged by tetherctl, the stack busy or not healthy, t already
// running, an attempt unsettled, or t failed before (a failed release is
// not tried again by itself; tetherctl can).
func Decide(w upgradewindow.Window, now time.Time, h []releasestate.Outcome, st *cfntypes.Stack, t Target, staged bool) string {
	switch {
	case !digestRE.MatchString(t.DocsvcDigest) || !digestRE.MatchString(t.AgentDigest):
		return "its manifest names no docsvc and agent image digests"
	case !w.Contains(now):
		return "outside the upgrade window " + w.String()
	case !staged:
		return "not staged: run tetherctl upgrade --stage"
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
		switch {
		case o.Outcome == "in-progress":
			return "an attempt is in progress"
		case o.To == t.Version && (o.Outcome == "failed" || o.Outcome == "rolled-back"):
			return "it " + o.Outcome + " at " + o.At.Format(time.RFC3339) + "; only tetherctl upgrade tries it again"
		}
	}
	return ""
}

// settle resolves an in-progress outcome from the stack once its update
// has ended, and records it.
func (m *Manager) settle(ctx context.Context, h []releasestate.Outcome) ([]releasestate.Outcome, error) {
	st, err := m.stack(ctx)
	if err != nil {
		return h, err
	}
	o, done := Settled(h[0], st)
	if !done {
		return h, nil
	}
	h = append([]releasestate.Outcome{o}, h[1:]...)
	m.log.Info("release attempt ended", "version", o.To, "outcome", o.Outcome, "code", o.Code)
	return h, m.write(ctx, h)
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

func (m *Manager) stack(ctx context.Context) (*cfntypes.Stack, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := m.cfn.DescribeStacks(cctx, &cloudformation.DescribeStacksInput{StackName: aws.String(m.cfg.Stack)})
	if err == nil && len(out.Stacks) != 1 {
		err = fmt.Errorf("%d stacks", len(out.Stacks))
	}
	if err != nil {
		return nil, fmt.Errorf("DescribeStacks %s: %w", m.cfg.Stack, err)
	}
	return &out.Stacks[0], nil
}

// alarms are the rollback triggers: the services stack's alarms.
func (m *Manager) alarms(ctx context.Context, st *cfntypes.Stack) ([]string, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := m.cfn.DescribeStackResources(cctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String(m.cfg.Stack)})
	if err != nil {
		return nil, fmt.Errorf("DescribeStackResources %s: %w", m.cfg.Stack, err)
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

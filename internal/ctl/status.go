package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwschemas "github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/tetherhq/tether/internal/deployconfig"
)

const statusUsage = `tetherctl status — the deployment on one screen

Usage:
  tetherctl status [--config deployment.yaml] [--profile P] [--region R] [--output text|json] [--timeout 10s]

Shows, reading only:
  release   the image digests the services stack runs (its DocsvcImage and
            AgentImage parameters, or DocsvcImageDigest and AgentImageDigest
            on stacks deployed before the migration gate)
  stacks    <name>-network, -data, -images, -cluster and -services: each
            one's CloudFormation state, or "not deployed"
  services  the api, worker and agent ECS services: tasks desired, running
            and pending, and the rollout state of their newest deployment
  queues    the jobs and dead-letter queues' depth and oldest message's age,
            from the metrics SQS publishes to CloudWatch (tetherctl never
            uses the SQS API: it stays out of the document path)
  agent     the agent's ECS service, and whether the license secret verifies
            against license.public_key (the license is never printed)
  storage   the documents bucket's size (S3's daily BucketSizeBytes) and
            the database's allocated and free storage (RDS, FreeStorageSpace)
  ai        the AI provider: degraded while the workers' circuit to it keeps
            opening (the tether-<name>-ai-provider alarm), else ok
  cert      the TLS certificate in use (domain.certificate_arn, or the one
            the services stack made in domain.hosted_zone): ACM status and
            expiry; expired or not ISSUED is a problem, within 30 days a
            warning
  alarms    CloudWatch alarms named tether-<name>-… that are in ALARM
  warnings  what is at or past deployment.yaml's observability.thresholds
            (the alarms' values): queue age, dead letters, database free
            storage, documents size; a certificate expiring within 30 days;
            warnings alone do not fail status

Every AWS call has its own time limit (--timeout); a call that fails shows
its reason in its row and the rest is still shown.
--output json prints the same as one object.

Exit status: 0 when the deployment is healthy (every stack deployed and
settled, every service running what it should, the license valid, no
alarm firing) and everything could be read; 1 otherwise; 2 for usage
mistakes.

Flags:
`

const (
	defaultStatusTimeout = 10 * time.Second
	// queueMetricWindow is how far back status looks for the queues'
	// metrics (SQS publishes them every minute while a queue is active, and
	// stops after six hours without activity).
	queueMetricWindow = 15 * time.Minute
)

// Stack suffixes in deployment order (contract: destroy in reverse).
var stackSuffixes = []string{"network", "data", "images", "cluster", "services"}

// stackNames are the deployment's stacks in deployment order.
func stackNames(dc *deployconfig.Config) []string {
	out := make([]string, len(stackSuffixes))
	for i, s := range stackSuffixes {
		out[i] = dc.Name + "-" + s
	}
	return out
}

// Names the stacks give what status reads (deploy/cdk/stacks/services.go).
func ecsClusterName(dc *deployconfig.Config) string { return dc.ResourceName("") }
func ecsServiceName(dc *deployconfig.Config, family string) string {
	return dc.ResourceName(family)
}
func alarmPrefix(dc *deployconfig.Config) string { return dc.ResourceName("") + "-" }

// Logical ID prefixes of the data stack's queues (deploy/cdk/stacks/data.go:
// construct IDs Jobs and JobsDeadLetter; the CDK appends a hash). The data
// stack has no outputs of their own; their physical IDs are their URLs.
const (
	jobsQueueLogicalID       = "Jobs"
	deadLetterQueueLogicalID = "JobsDeadLetter"
)

type statusReport struct {
	Name     string         `json:"name"`
	Account  string         `json:"account"`
	Region   string         `json:"region"`
	Healthy  bool           `json:"healthy"`
	Problems []string       `json:"problems"`
	Release  releaseState   `json:"release"`
	Stacks   []stackState   `json:"stacks"`
	Services []serviceState `json:"services"`
	Queues   []queueState   `json:"queues"`
	License  licenseState   `json:"license"`
	Alarms   alarmsState    `json:"alarms"`
	// Storage is nil when the data stack is not deployed.
	Storage    *storageState   `json:"storage"`
	AIProvider aiProviderState `json:"ai_provider"`
	// Certificate is nil while a hosted-zone deployment's services stack,
	// which creates it, is not deployed.
	Certificate *certificateState `json:"certificate"`
	// Warnings are what comes near deployment.yaml's thresholds or a
	// certificate's expiry; they do not make the deployment unhealthy.
	Warnings []string `json:"warnings"`
}

type releaseState struct {
	Docsvc imageRef `json:"docsvc"`
	Agent  imageRef `json:"agent"`
	Error  string   `json:"error,omitempty"`
}

// imageRef is one image the services stack runs: the parameter that names
// it, the parameter's value (an SSM path for DocsvcImage and AgentImage)
// and the digest it resolves to.
type imageRef struct {
	Parameter string `json:"parameter,omitempty"`
	Value     string `json:"value,omitempty"`
	Digest    string `json:"digest,omitempty"`
	Error     string `json:"error,omitempty"`
}

type stackState struct {
	Name     string `json:"name"`
	Deployed bool   `json:"deployed"`
	Status   string `json:"status,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Error    string `json:"error,omitempty"`
}

type serviceState struct {
	Name     string `json:"name"`
	Deployed bool   `json:"deployed"`
	Status   string `json:"status,omitempty"`
	Desired  int32  `json:"desired"`
	Running  int32  `json:"running"`
	Pending  int32  `json:"pending"`
	Rollout  string `json:"rollout,omitempty"`
	Reason   string `json:"rollout_reason,omitempty"`
	Error    string `json:"error,omitempty"`
}

// queueState is one queue's latest metrics; each is nil when SQS
// published none in the last queueMetricWindow.
type queueState struct {
	Role             string   `json:"role"` // jobs or dead-letter
	Name             string   `json:"name,omitempty"`
	Visible          *int64   `json:"visible,omitempty"`
	InFlight         *int64   `json:"in_flight,omitempty"`
	Delayed          *int64   `json:"delayed,omitempty"`
	OldestAgeSeconds *float64 `json:"oldest_age_seconds,omitempty"`
	Error            string   `json:"error,omitempty"`
}

type licenseState struct {
	Secret  string   `json:"secret"`
	Verdict *verdict `json:"verdict,omitempty"`
	Error   string   `json:"error,omitempty"`
}

type alarmsState struct {
	Firing []firingAlarm `json:"firing"`
	Error  string        `json:"error,omitempty"`
}

type firingAlarm struct {
	Name   string    `json:"name"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

func statusCmd(ctx context.Context, args []string, env Env) error {
	var df deployFlags
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	df.register(fs)
	timeout := fs.Duration("timeout", defaultStatusTimeout, "the time limit of each AWS call (at most 25s)")
	if help, err := parseFlagsOnly(env, fs, args, statusUsage+flagHelp(fs)); help || err != nil {
		return err
	}
	if *timeout < time.Second || *timeout > maxCheckTimeout {
		return fmt.Errorf("%w: --timeout %s: want 1s to %s", errUsage, *timeout, maxCheckTimeout)
	}
	dc, err := df.load()
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	a, err := connect(cctx, env, dc, df)
	cancel()
	if err != nil {
		return fmt.Errorf("tetherctl status: %w", err)
	}
	r := readStatus(ctx, a, dc, *timeout, env.Now())
	if df.output == "json" {
		if err := writeJSON(env.Stdout, r); err != nil {
			return err
		}
	} else {
		writeStatus(env.Stdout, r)
	}
	if !r.Healthy {
		return fmt.Errorf("tetherctl status: %s", strings.Join(r.Problems, "; "))
	}
	return nil
}

// readStatus reads everything at once, each call under its own timeout,
// then judges the whole.
func readStatus(ctx context.Context, a *awsSession, dc *deployconfig.Config, timeout time.Duration, now time.Time) *statusReport {
	r := &statusReport{Name: dc.Name, Account: dc.Account, Region: dc.Region}
	call := func(f func(context.Context)) func() {
		return func() {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			f(cctx)
		}
	}
	var wg sync.WaitGroup
	r.Stacks = make([]stackState, len(stackSuffixes))
	for i, name := range stackNames(dc) {
		wg.Go(call(func(ctx context.Context) { r.Stacks[i] = readStackState(ctx, a, name) }))
	}
	wg.Go(call(func(ctx context.Context) { r.Release = readRelease(ctx, a, dc.Name+"-services", timeout) }))
	wg.Go(call(func(ctx context.Context) { r.Services = readServices(ctx, a, dc) }))
	wg.Go(func() { r.Queues = readQueues(ctx, a, dc.Name+"-data", timeout, now) })
	wg.Go(call(func(ctx context.Context) { r.License = readLicense(ctx, a, dc, now) }))
	wg.Go(call(func(ctx context.Context) { r.Alarms = readAlarms(ctx, a, dc) }))
	wg.Go(func() { r.Storage = readStorage(ctx, a, dc, timeout, now) })
	wg.Go(call(func(ctx context.Context) { r.Certificate = readCertificate(ctx, a, dc, now) }))
	wg.Wait()
	r.AIProvider = judgeAIProvider(dc, r.Alarms)
	r.Problems = judgeStatus(r)
	r.Warnings = append([]string{}, storageWarnings(r, dc.Observe.Thresholds, dc.Sizing.DatabaseStorageGiB)...)
	problem, warning := certificateVerdict(r.Certificate, now)
	if problem != "" {
		r.Problems = append(r.Problems, problem)
	}
	if warning != "" {
		r.Warnings = append(r.Warnings, warning)
	}
	if warning := exchangeWarning(r.Services); warning != "" {
		r.Warnings = append(r.Warnings, warning)
	}
	r.Healthy = len(r.Problems) == 0
	return r
}

// exchangeWarning says when the agent runs without tether-exchange beside
// it: a services stack from before it, after an image-only upgrade.
func exchangeWarning(rows []serviceState) string {
	agent, exchange := rows[slices.Index(serviceFamilies, "agent")], rows[slices.Index(serviceFamilies, "exchange")]
	if !agent.Deployed || agent.Error != "" || exchange.Deployed || exchange.Error != "" {
		return ""
	}
	return fmt.Sprintf("service %s is not deployed: nothing copies the agent's diagnostics requests and ledger to the exchange bucket or applies decisions from it; deploy this release's stacks (tetherctl deploy)", exchange.Name)
}

// judgeStatus lists what makes the deployment unhealthy or unreadable.
func judgeStatus(r *statusReport) []string {
	problems := []string{}
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for _, s := range r.Stacks {
		switch {
		case s.Error != "":
			add("stack %s could not be read: %s", s.Name, s.Error)
		case !s.Deployed:
			add("stack %s is not deployed", s.Name)
		case !stackSettled(s.Status):
			add("stack %s is %s", s.Name, s.Status)
		}
	}
	if r.Release.Error != "" {
		add("the release could not be read: %s", r.Release.Error)
	}
	for _, img := range []imageRef{r.Release.Docsvc, r.Release.Agent} {
		if img.Error != "" {
			add("%s: %s", img.Parameter, img.Error)
		}
	}
	for _, s := range r.Services {
		switch {
		case s.Error != "":
			add("service %s could not be read: %s", s.Name, s.Error)
		case !s.Deployed:
			// The missing stack already says so.
		case s.Status != "ACTIVE":
			add("service %s is %s", s.Name, s.Status)
		case s.Running < s.Desired:
			add("service %s runs %d of %d tasks", s.Name, s.Running, s.Desired)
		case s.Rollout == "FAILED":
			add("service %s's deployment failed: %s", s.Name, s.Reason)
		}
	}
	for _, q := range r.Queues {
		if q.Error != "" {
			add("the %s queue could not be read: %s", q.Role, q.Error)
		}
	}
	switch {
	case r.License.Error != "":
		add("the license could not be checked: %s", r.License.Error)
	case r.License.Verdict != nil && r.License.Verdict.Status == statusFail:
		add("the license: %s", r.License.Verdict.Detail)
	}
	if r.Alarms.Error != "" {
		add("the alarms could not be read: %s", r.Alarms.Error)
	}
	if r.Storage != nil && r.Storage.Error != "" {
		add("the storage could not be read: %s", r.Storage.Error)
	}
	if r.Certificate != nil && r.Certificate.Error != "" {
		add("the TLS certificate could not be read: %s", r.Certificate.Error)
	}
	for _, al := range r.Alarms.Firing {
		add("alarm %s is firing", al.Name)
	}
	return problems
}

// stackSettled says whether a stack's status is a finished, working one.
func stackSettled(status string) bool {
	switch cfntypes.StackStatus(status) {
	case cfntypes.StackStatusCreateComplete, cfntypes.StackStatusUpdateComplete,
		cfntypes.StackStatusUpdateRollbackComplete, cfntypes.StackStatusImportComplete:
		return true
	}
	return false
}

// isStackMissing reports CloudFormation's answer for a stack that does not exist.
func isStackMissing(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "ValidationError" && strings.Contains(apiErr.ErrorMessage(), "does not exist")
}

func readStackState(ctx context.Context, a *awsSession, name string) stackState {
	st := stackState{Name: name}
	s, err := describeStack(ctx, a.CloudFormation(), name)
	switch {
	case err != nil:
		st.Error = err.Error()
	case s != nil:
		st.Deployed = true
		st.Status = string(s.StackStatus)
		st.Reason = oneLine(aws.ToString(s.StackStatusReason))
	}
	return st
}

// readRelease reads the services stack's image parameters. The gated
// stack's DocsvcImage and AgentImage hold SSM parameter paths whose values
// are the digests; CloudFormation reports the value it resolved at the
// last deployment, and where it does not, the parameter is read.
func readRelease(ctx context.Context, a *awsSession, stack string, timeout time.Duration) releaseState {
	var rel releaseState
	s, err := describeStack(ctx, a.CloudFormation(), stack)
	switch {
	case err != nil:
		rel.Error = err.Error()
		return rel
	case s == nil:
		return rel
	}
	params := map[string]cfntypes.Parameter{}
	for _, p := range s.Parameters {
		params[aws.ToString(p.ParameterKey)] = p
	}
	pick := func(names ...string) imageRef {
		for _, n := range names {
			p, ok := params[n]
			if !ok {
				continue
			}
			ref := imageRef{Parameter: n, Value: aws.ToString(p.ParameterValue), Digest: aws.ToString(p.ResolvedValue)}
			if ref.Digest == "" && !strings.HasPrefix(ref.Value, "/") {
				ref.Digest = ref.Value
			}
			if ref.Digest == "" {
				cctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				out, err := a.SSM().GetParameter(cctx, &ssm.GetParameterInput{Name: aws.String(ref.Value)})
				if err != nil {
					ref.Error = fmt.Sprintf("reading %s (SSM GetParameter): %s", ref.Value, describeAWSError(err))
				} else {
					ref.Digest = aws.ToString(out.Parameter.Value)
				}
			}
			return ref
		}
		return imageRef{Parameter: names[0], Error: "the stack has no " + strings.Join(names, " or ") + " parameter"}
	}
	rel.Docsvc = pick("DocsvcImage", "DocsvcImageDigest")
	rel.Agent = pick("AgentImage", "AgentImageDigest")
	return rel
}

// serviceFamilies are the services stack's ECS services, by family;
// tether-exchange's is "not deployed" on a release before it existed.
var serviceFamilies = []string{"api", "worker", "agent", "exchange"}

func readServices(ctx context.Context, a *awsSession, dc *deployconfig.Config) []serviceState {
	rows := make([]serviceState, len(serviceFamilies))
	names := make([]string, len(serviceFamilies))
	for i, f := range serviceFamilies {
		names[i] = ecsServiceName(dc, f)
		rows[i].Name = names[i]
	}
	out, err := a.ECS().DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(ecsClusterName(dc)), Services: names})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "ClusterNotFoundException" {
		return rows
	}
	if err != nil {
		for i := range rows {
			rows[i].Error = "ECS DescribeServices: " + describeAWSError(err)
		}
		return rows
	}
	for _, s := range out.Services {
		for i := range rows {
			if rows[i].Name != aws.ToString(s.ServiceName) {
				continue
			}
			row := &rows[i]
			row.Status = aws.ToString(s.Status)
			row.Deployed = row.Status != "INACTIVE"
			row.Desired, row.Running, row.Pending = s.DesiredCount, s.RunningCount, s.PendingCount
			for _, d := range s.Deployments {
				if aws.ToString(d.Status) == "PRIMARY" {
					row.Rollout = string(d.RolloutState)
					row.Reason = oneLine(aws.ToString(d.RolloutStateReason))
				}
			}
		}
	}
	return rows
}

// readQueues finds the data stack's queues and reads their depths, and
// the oldest message's age, from the metrics SQS publishes to CloudWatch
// every minute. tetherctl never links the SQS client: it is on the
// document side of the data boundary (internal/boundary).
func readQueues(ctx context.Context, a *awsSession, stack string, timeout time.Duration, now time.Time) []queueState {
	rows := []queueState{{Role: "jobs"}, {Role: "dead-letter"}}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := a.CloudFormation().DescribeStackResources(cctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String(stack)})
	if isStackMissing(err) {
		return nil
	}
	if err != nil {
		for i := range rows {
			rows[i].Error = "CloudFormation DescribeStackResources: " + describeAWSError(err)
		}
		return rows
	}
	for _, res := range out.StackResources {
		if aws.ToString(res.ResourceType) != "AWS::SQS::Queue" {
			continue
		}
		url := aws.ToString(res.PhysicalResourceId) // a queue's physical ID is its URL
		switch id := aws.ToString(res.LogicalResourceId); {
		case isCDKLogicalID(id, deadLetterQueueLogicalID):
			rows[1].Name = url[strings.LastIndex(url, "/")+1:]
		case isCDKLogicalID(id, jobsQueueLogicalID):
			rows[0].Name = url[strings.LastIndex(url, "/")+1:]
		}
	}
	var queries []cwtypes.MetricDataQuery
	for i, q := range rows {
		if q.Name == "" {
			rows[i].Error = fmt.Sprintf("the %s stack has no %s queue", stack, q.Role)
			continue
		}
		for j, m := range queueMetrics {
			queries = append(queries, cwtypes.MetricDataQuery{
				Id: aws.String(fmt.Sprintf("q%dm%d", i, j)),
				MetricStat: &cwtypes.MetricStat{
					Metric: &cwtypes.Metric{Namespace: aws.String("AWS/SQS"), MetricName: aws.String(m),
						Dimensions: []cwtypes.Dimension{{Name: aws.String("QueueName"), Value: aws.String(q.Name)}}},
					Period: aws.Int32(60), Stat: aws.String("Maximum"),
				},
			})
		}
	}
	if len(queries) == 0 {
		return rows
	}
	vals, err := latestMetrics(cctx, a.cloudWatchClient(), queries, now.Add(-queueMetricWindow), now)
	if err != nil {
		for i := range rows {
			if rows[i].Error == "" {
				rows[i].Error = "CloudWatch GetMetricData: " + describeAWSError(err)
			}
		}
		return rows
	}
	for id, latest := range vals {
		var i, j int
		if _, err := fmt.Sscanf(id, "q%dm%d", &i, &j); err != nil || i >= len(rows) || j >= len(queueMetrics) {
			continue
		}
		q := &rows[i]
		switch queueMetrics[j] {
		case "ApproximateNumberOfMessagesVisible":
			q.Visible = aws.Int64(int64(latest))
		case "ApproximateNumberOfMessagesNotVisible":
			q.InFlight = aws.Int64(int64(latest))
		case "ApproximateNumberOfMessagesDelayed":
			q.Delayed = aws.Int64(int64(latest))
		case "ApproximateAgeOfOldestMessage":
			q.OldestAgeSeconds = aws.Float64(latest)
		}
	}
	return rows
}

// queueMetrics are the SQS metrics status reads for each queue.
var queueMetrics = []string{"ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible",
	"ApproximateNumberOfMessagesDelayed", "ApproximateAgeOfOldestMessage"}

// isCDKLogicalID says whether id is the CDK's logical ID for a top-level
// construct named construct: the name followed by an 8-hex-digit hash.
func isCDKLogicalID(id, construct string) bool {
	hash, ok := strings.CutPrefix(id, construct)
	if !ok || len(hash) != 8 {
		return false
	}
	_, err := strconv.ParseUint(hash, 16, 32)
	return err == nil
}

// readLicense judges the license secret as tetherctl secrets show does.
func readLicense(ctx context.Context, a *awsSession, dc *deployconfig.Config, now time.Time) licenseState {
	ls := licenseState{Secret: dc.SecretName(kindLicense)}
	sm := a.SecretsManager()
	st, err := describeSecret(ctx, sm, dc, secretKind{Name: kindLicense})
	if err == nil {
		err = judgeSecret(ctx, sm, dc, &st, now)
	}
	if err != nil {
		ls.Error = err.Error()
		return ls
	}
	ls.Verdict = st.Verdict
	return ls
}

func readAlarms(ctx context.Context, a *awsSession, dc *deployconfig.Config) alarmsState {
	as := alarmsState{Firing: []firingAlarm{}}
	p := cloudwatch.NewDescribeAlarmsPaginator(a.cloudWatchClient(), &cloudwatch.DescribeAlarmsInput{
		AlarmNamePrefix: aws.String(alarmPrefix(dc)),
		StateValue:      cwtypes.StateValueAlarm,
		AlarmTypes:      []cwtypes.AlarmType{cwtypes.AlarmTypeMetricAlarm, cwtypes.AlarmTypeCompositeAlarm},
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			as.Error = "CloudWatch DescribeAlarms: " + describeAWSError(err)
			return as
		}
		// The state is checked again: the filter is a request, and an
		// emulator (moto) ignores it when a prefix is given.
		for _, m := range out.MetricAlarms {
			if m.StateValue == cwtypes.StateValueAlarm {
				as.Firing = append(as.Firing, firingAlarm{aws.ToString(m.AlarmName), oneLine(aws.ToString(m.StateReason)), aws.ToTime(m.StateUpdatedTimestamp)})
			}
		}
		for _, c := range out.CompositeAlarms {
			if c.StateValue == cwtypes.StateValueAlarm {
				as.Firing = append(as.Firing, firingAlarm{aws.ToString(c.AlarmName), oneLine(aws.ToString(c.StateReason)), aws.ToTime(c.StateUpdatedTimestamp)})
			}
		}
	}
	return as
}

func writeStatus(w io.Writer, r *statusReport) {
	verdictWord := "HEALTHY"
	if !r.Healthy {
		verdictWord = "UNHEALTHY"
	}
	fmt.Fprintf(w, "Tether %s: account %s, region %s: %s\n\n", r.Name, r.Account, r.Region, verdictWord)
	row := func(section, format string, args ...any) {
		fmt.Fprintf(w, "%-9s %s\n", section, fmt.Sprintf(format, args...))
	}
	image := func(role string, img imageRef) {
		switch {
		case img.Error != "":
			row("", "%-7s %s", role, img.Error)
		case img.Value != img.Digest:
			row("", "%-7s %s (%s = %s)", role, img.Digest, img.Parameter, img.Value)
		default:
			row("", "%-7s %s (%s)", role, img.Digest, img.Parameter)
		}
	}
	switch {
	case r.Release.Error != "":
		row("release", "%s", r.Release.Error)
	case r.Release.Docsvc.Parameter == "":
		row("release", "none: the services stack is not deployed")
	default:
		row("release", "")
		image("docsvc", r.Release.Docsvc)
		image("agent", r.Release.Agent)
	}
	row("stacks", "")
	for _, s := range r.Stacks {
		switch {
		case s.Error != "":
			row("", "%-24s %s", s.Name, s.Error)
		case !s.Deployed:
			row("", "%-24s not deployed", s.Name)
		case s.Reason != "" && !stackSettled(s.Status):
			row("", "%-24s %s: %s", s.Name, s.Status, s.Reason)
		default:
			row("", "%-24s %s", s.Name, s.Status)
		}
	}
	row("services", "")
	for _, s := range r.Services {
		switch {
		case s.Error != "":
			row("", "%-24s %s", s.Name, s.Error)
		case !s.Deployed:
			row("", "%-24s not deployed", s.Name)
		default:
			line := fmt.Sprintf("%-24s %d desired, %d running, %d pending", s.Name, s.Desired, s.Running, s.Pending)
			if s.Status != "ACTIVE" {
				line += ", " + s.Status
			}
			if s.Rollout != "" {
				line += ", rollout " + s.Rollout
			}
			row("", "%s", line)
		}
	}
	if len(r.Queues) == 0 {
		row("queues", "not deployed")
	}
	for i, q := range r.Queues {
		section := ""
		if i == 0 {
			section = "queues"
		}
		if q.Error != "" {
			row(section, "%-11s %s", q.Role, q.Error)
			continue
		}
		count := func(n *int64, what string) string {
			if n == nil {
				return what + " unknown"
			}
			return fmt.Sprintf("%d %s", *n, what)
		}
		line := fmt.Sprintf("%-11s %s, %s, %s", q.Role, count(q.Visible, "waiting"), count(q.InFlight, "in flight"), count(q.Delayed, "delayed"))
		if q.OldestAgeSeconds != nil {
			line += fmt.Sprintf(", oldest %s", time.Duration(*q.OldestAgeSeconds*float64(time.Second)).Round(time.Second))
		}
		if q.Visible == nil && q.InFlight == nil && q.OldestAgeSeconds == nil {
			line += fmt.Sprintf(" (SQS published no metrics in the last %s: an idle queue publishes none)", queueMetricWindow)
		}
		row(section, "%s", line)
	}
	for i, line := range storageLines(r.Storage, bucketMetricWindow) {
		section := ""
		if i == 0 {
			section = "storage"
		}
		row(section, "%s", line)
	}
	row("ai", "%s %s: %s", r.AIProvider.Provider, r.AIProvider.Status, r.AIProvider.Detail)
	switch c := r.Certificate; {
	case c == nil:
		row("cert", "none found: with domain.hosted_zone the services stack creates it")
	case c.Error != "":
		row("cert", "%s", c.Error)
	case c.NotAfter != nil:
		line := fmt.Sprintf("%s %s, expires %s (%d days)", c.Status, c.ARN, c.NotAfter.Format(dateFormat), *c.DaysLeft)
		if c.Renewal != "" {
			line += ", renewal " + c.Renewal
		}
		row("cert", "%s", line)
	default:
		row("cert", "%s %s", c.Status, c.ARN)
	}
	agent := "not deployed"
	for _, s := range r.Services {
		if strings.HasSuffix(s.Name, "-agent") && s.Deployed && s.Error == "" {
			agent = fmt.Sprintf("service %d of %d running", s.Running, s.Desired)
		}
	}
	row("agent", "%s", agent)
	switch {
	case r.License.Error != "":
		row("license", "%s", r.License.Error)
	case r.License.Verdict != nil:
		row("license", "%s %s: %s", r.License.Verdict.Status, r.License.Secret, r.License.Verdict.Detail)
	}
	switch {
	case r.Alarms.Error != "":
		row("alarms", "%s", r.Alarms.Error)
	case len(r.Alarms.Firing) == 0:
		row("alarms", "none in ALARM")
	default:
		for i, al := range r.Alarms.Firing {
			section := ""
			if i == 0 {
				section = "alarms"
			}
			row(section, "%s since %s: %s", al.Name, al.Since.UTC().Format(time.RFC3339), al.Reason)
		}
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(w, "\n%d warnings:\n", len(r.Warnings))
		for _, p := range r.Warnings {
			fmt.Fprintf(w, "  - %s\n", p)
		}
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(w, "\n%d problems:\n", len(r.Problems))
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  - %s\n", p)
		}
	}
}

// The clients status adds, each honouring its own endpoint variable.

// cloudWatchClient speaks CloudWatch's query protocol, which CloudWatch
// serves alongside the SDK's default (Smithy RPCv2 CBOR): it is the one the
// AWS CLI and the emulator the tests use speak
// (docs/decisions/0007-aws-api-emulator.md).
func (a *awsSession) cloudWatchClient() *cloudwatch.Client {
	return cloudwatch.NewFromConfig(a.cfg, func(o *cloudwatch.Options) {
		setEndpoint(&o.BaseEndpoint, a.serviceEndpoint("CLOUDWATCH"))
		o.Protocol = awsquery.New(cwschemas.GraniteServiceVersion20100801)
	})
}

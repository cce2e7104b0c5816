package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/tetherhq/tether/internal/deployconfig"
)

const deployUsage = `tetherctl deploy — deploy or update Tether in your AWS account, from deployment.yaml

Usage:
  tetherctl deploy [--config deployment.yaml] [--profile P] [--region R] [--cdk-out DIR] [--yes] [--output text|json]

Steps, each stopping the deploy when it fails, with the reason and the fix:

  1. preflight: the checks of tetherctl preflight; a FAIL stops, WARNs are shown
  2. synthesize: the pinned CDK CLI runs cdk synth in deploy/cdk with this
     deployment.yaml (-c config=PATH); --cdk-out DIR uses an assembly
     already synthesized instead
  3. the plan: each stack in order, created or updated, and the release's
     image digests (images.docsvc_digest, images.agent_digest); confirm it,
     or pass --yes
  4. the <name>-network, <name>-data and <name>-images stacks
  5. the secrets: the license (and the AI key for openai or anthropic) must
     be set and valid. The data stack creates them empty, so a first deploy
     stops here, naming the command that sets each (tetherctl secrets set
     license --from-file license.json); run tetherctl deploy again after and
     it continues from here
  6. the images: copied by digest into the deployment's ECR (or built there,
     images.source build), then the agent image's verified marker is written
  7. the <name>-cluster stack, its migrate task running the docsvc digest
  8. the database migration: the migrate task must stop with exit code 0;
     then the migrated marker is written. A failed migration stops the
     deploy before the services stack is touched
  9. the <name>-services stack, given the markers as DocsvcImage and
     AgentImage
 10. the wait until the api, worker and agent services are stable (as many
     tasks running as desired, the deployment COMPLETED), then the URL

Each stack is deployed as cdk deploy does: the CDK bootstrap must exist
(tetherctl bootstrap), a template over 51,200 bytes goes through the
bootstrap bucket (uploaded with the AWS CLI, aws on PATH: tetherctl links no
S3 client), CloudFormation makes a change set and runs it as the
bootstrap's execution role; a change set with no changes is skipped. Events
are printed as they happen; a failure quotes the resource that failed.
--method direct uses CreateStack/UpdateStack instead of change sets (as
cdk deploy --method=direct). Running deploy again is safe: stacks without
changes are skipped, images already in ECR are not copied again, and the
migration runs again, which changes nothing on an up-to-date schema.

Flags:
`

// defaultDeployTimeout bounds a whole deploy: a first one creates a
// database and a load balancer, which take a quarter of an hour or more.
const defaultDeployTimeout = 2 * time.Hour

var errDeployTimeout = errors.New("the deploy's --timeout ran out")

// deploySteps are the steps between the stacks. deploy uses pushImages,
// runMigration and waitServices; tests replace the ones the emulator cannot
// run, and say so.
type deploySteps struct {
	push    func(ctx context.Context, env Env, a *awsSession, cfg *deployconfig.Config, rel releaseImages, opt imageOptions) error
	migrate func(ctx context.Context, env Env, a *awsSession, cfg *deployconfig.Config, docsvcDigest string) error
	wait    func(ctx context.Context, a *awsSession, cluster string, w io.Writer) error
}

func defaultDeploySteps() deploySteps {
	return deploySteps{push: pushImages, migrate: runMigration, wait: waitServices}
}

// deployOptions are deploy's flags.
type deployOptions struct {
	df       deployFlags
	cdkOut   string
	cdkDir   string
	toolsDir string
	method   string
	yes      bool
	timeout  time.Duration
	bundle   string
}

// deployReport is deploy's --output json.
type deployReport struct {
	Deployment   string        `json:"deployment"`
	Account      string        `json:"account"`
	Region       string        `json:"region"`
	DocsvcDigest string        `json:"docsvc_digest"`
	AgentDigest  string        `json:"agent_digest"`
	CDKOut       string        `json:"cdk_out"`
	Preflight    []result      `json:"preflight"`
	Stacks       []stackResult `json:"stacks"`
	URL          string        `json:"url"`
}

func deployCmd(ctx context.Context, args []string, env Env) error {
	return deployWith(ctx, args, env, defaultDeploySteps())
}

func deployWith(ctx context.Context, args []string, env Env, steps deploySteps) error {
	var o deployOptions
	fs := flag.NewFlagSet("deploy", flag.ContinueOnError)
	o.df.register(fs)
	fs.StringVar(&o.cdkOut, "cdk-out", "", "deploy the cloud assembly in this `directory` (cdk synth's output) instead of synthesizing")
	fs.StringVar(&o.cdkDir, "cdk-dir", filepath.Join("deploy", "cdk"), "the CDK app's `directory`, where cdk synth runs")
	fs.StringVar(&o.toolsDir, "tools-dir", "tools", "the `directory` with the package.json that pins the CDK CLI, and its node_modules")
	fs.StringVar(&o.method, "method", "change-set", "how stacks are deployed: `change-set` (as cdk deploy) or direct (CreateStack/UpdateStack)")
	fs.StringVar(&o.bundle, "source-bundle", "", "images.source build: the vendor's source bundle `file` CodeBuild builds from")
	fs.BoolVar(&o.yes, "yes", false, "deploy without asking for confirmation")
	fs.DurationVar(&o.timeout, "timeout", defaultDeployTimeout, "the time limit of the whole deploy")
	positional, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(env.Stdout, deployUsage+flagHelp(fs))
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case len(positional) > 0:
		return fmt.Errorf("%w: tetherctl deploy takes no arguments, got %q", errUsage, positional[0])
	case o.timeout <= 0:
		return fmt.Errorf("%w: --timeout %s: want a positive duration such as 2h", errUsage, o.timeout)
	case o.method != "change-set" && o.method != "direct":
		return fmt.Errorf("%w: --method %q: want change-set or direct", errUsage, o.method)
	}
	dc, err := o.df.load()
	if err != nil {
		return err
	}
	for _, d := range []struct{ field, val string }{{"images.docsvc_digest", dc.Images.DocsvcDigest}, {"images.agent_digest", dc.Images.AgentDigest}} {
		if d.val == "" {
			return fmt.Errorf("%w: deployment.yaml has no %s: set images.docsvc_digest and images.agent_digest to the digests of the release to deploy (the vendor's release notes list them)", errUsage, d.field)
		}
	}
	ctx, cancel := context.WithTimeoutCause(ctx, o.timeout, errDeployTimeout)
	defer cancel()
	d := &deployRun{env: env, dc: dc, o: o, steps: steps, progress: progressWriter(env, o.df.output)}
	d.rep = deployReport{Deployment: dc.Name, Account: dc.Account, Region: dc.Region,
		DocsvcDigest: dc.Images.DocsvcDigest, AgentDigest: dc.Images.AgentDigest, URL: dc.PublicURL()}
	if err := d.run(ctx); err != nil {
		if context.Cause(ctx) == errDeployTimeout && !strings.Contains(err.Error(), "--timeout") {
			err = fmt.Errorf("%w (the deploy's time limit, --timeout %s, ran out; run tetherctl deploy again to continue)", err, o.timeout)
		}
		return fmt.Errorf("tetherctl deploy: %w", err)
	}
	if o.df.output == "json" {
		return writeJSON(env.Stdout, d.rep)
	}
	return nil
}

// deployRun is one deploy in progress.
type deployRun struct {
	env      Env
	dc       *deployconfig.Config
	o        deployOptions
	steps    deploySteps
	progress io.Writer
	a        *awsSession
	asm      *assembly
	plan     []planStep
	rep      deployReport
}

func (d *deployRun) run(ctx context.Context) error {
	if err := d.preflight(ctx); err != nil {
		return err
	}
	dir := d.o.cdkOut
	if dir == "" {
		var err error
		if dir, err = d.synthesize(ctx); err != nil {
			return err
		}
	}
	d.rep.CDKOut = dir
	asm, err := readAssembly(dir, d.dc.Account, d.dc.Region)
	if err != nil {
		return err
	}
	d.asm = asm
	if d.plan, err = d.makePlan(ctx); err != nil {
		return err
	}
	d.printPlan()
	if !d.o.yes {
		ok, err := askToProceed(d.env, "Deploy?")
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("not confirmed; nothing was changed")
		}
	}
	for i, s := range d.plan {
		fmt.Fprintf(d.progress, "\n[%d/%d] %s\n", i+1, len(d.plan), s.title)
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("step %d/%d, %s: %w", i+1, len(d.plan), s.title, err)
		}
	}
	if d.o.df.output != "json" {
		fmt.Fprintf(d.env.Stdout, "\nTether %s is deployed: %s\n%s", d.dc.Name, d.dc.PublicURL(), nextSteps(d.dc, d.rep.Stacks))
	}
	return nil
}

func nextSteps(dc *deployconfig.Config, stacks []stackResult) string {
	dns := ""
	if dc.Domain.HostedZone == nil {
		lb := "the services stack's LoadBalancerDnsName output"
		for _, s := range stacks {
			if v := s.Outputs["LoadBalancerDnsName"]; v != "" {
				lb = v
			}
		}
		dns = fmt.Sprintf("  - in your DNS, point %s at %s (a CNAME, or an alias record in Route 53)\n", dc.Domain.Name, lb)
	}
	return fmt.Sprintf(`Next steps:
%s  - open %s and sign in through %s
  - tetherctl secrets list shows the secrets' state; tetherctl preflight re-checks the account
  - the services stack's outputs above name its dashboard, alarm topic and log groups
  - after changing deployment.yaml, or for a new release's digests, run tetherctl deploy again:
    it changes only what differs
`, dns, dc.PublicURL(), dc.Auth.Issuer)
}

// preflight runs preflight's checks: a FAIL stops the deploy, WARNs are
// shown. The Node.js and CDK CLI checks apply only when deploy synthesizes.
func (d *deployRun) preflight(ctx context.Context) error {
	timeout := defaultCheckTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	p := &preflight{dc: d.dc, env: d.env, toolsDir: d.o.toolsDir, now: d.env.Now()}
	p.aws, p.awsErr = loadAWS(ctx, d.env, d.o.df.aws, d.dc)
	var checks []check
	for _, c := range preflightChecks() {
		if d.o.cdkOut != "" && (c.ID == "nodejs" || c.ID == "cdk-cli") {
			continue
		}
		checks = append(checks, c)
	}
	results := runChecks(ctx, p, checks, timeout)
	d.rep.Preflight = results
	failed, warned := 0, 0
	for _, r := range results {
		switch r.Status {
		case statusFail:
			failed++
		case statusWarn:
			warned++
		}
	}
	if failed > 0 {
		writeChecklist(d.progress, d.dc, results, timeout)
		return fmt.Errorf("preflight: %d of %d checks failed (listed above with their fixes); nothing was deployed", failed, len(results))
	}
	fmt.Fprintf(d.progress, "preflight: %d checks passed, %d warnings\n", len(results)-warned, warned)
	for _, r := range results {
		if r.Status == statusWarn {
			fmt.Fprintf(d.progress, "  WARN %s: %s\n       fix: %s\n", r.ID, r.Detail, r.Fix)
		}
	}
	d.a = p.aws
	return nil
}

// synthEnvVars are what cdk synth (Node.js running `go run .`) needs from
// this command's environment.
var synthEnvVars = []string{"PATH", "HOME", "TMPDIR", "USER", "GOPATH", "GOCACHE", "GOMODCACHE", "GOFLAGS",
	"GOPROXY", "GONOSUMDB", "GOPRIVATE", "GOTOOLCHAIN", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
	"NO_PROXY", "no_proxy", "NODE_EXTRA_CA_CERTS"}

// synthesize runs the pinned cdk synth in the CDK app's directory with
// this deployment.yaml and returns the assembly's directory.
func (d *deployRun) synthesize(ctx context.Context) (string, error) {
	cli, err := findCDK(d.env, d.o.toolsDir)
	if err != nil {
		return "", fmt.Errorf("synthesizing: %w (or pass --cdk-out with an assembly synthesized elsewhere)", err)
	}
	config, err := filepath.Abs(d.o.df.configPath)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(d.o.cdkDir, "cdk.json")); err != nil {
		return "", fmt.Errorf("%w: --cdk-dir %s has no cdk.json: run tetherctl from the repository root, or pass --cdk-dir with the CDK app's directory (deploy/cdk)", errUsage, d.o.cdkDir)
	}
	out, err := filepath.Abs(filepath.Join(d.o.cdkDir, "cdk.out"))
	if err != nil {
		return "", err
	}
	args := []string{"synth", "--quiet", "--output", out, "-c", "config=" + config}
	fmt.Fprintf(d.progress, "synthesizing: (cd %s && %s %s)\n", d.o.cdkDir, cli, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Dir = d.o.cdkDir
	cmd.Env = append(childEnv(d.env.Getenv, synthEnvVars), "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1", "TETHER_DEPLOYMENT_CONFIG="+config)
	cmd.Stdout, cmd.Stderr = d.progress, d.progress
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("cdk synth failed (%v); its output above says why", err)
	}
	return out, nil
}

// planStep is one step of the deploy, in order.
type planStep struct {
	title  string
	detail []string
	run    func(context.Context) error
}

// The stacks deploy knows, by the suffix after "<name>-", in the order the
// cross-helper contract fixes.
var deployStackOrder = []string{"network", "data", "images", "cluster", "services"}

// makePlan lays out the steps: every stack of the assembly in dependency
// order, with the secrets check after the data stack, the images after the
// images stack, the migration after the cluster stack, and the wait for the
// services at the end.
func (d *deployRun) makePlan(ctx context.Context) ([]planStep, error) {
	name := d.dc.Name
	for _, suffix := range deployStackOrder {
		if d.asm.byName(name+"-"+suffix) == nil {
			return nil, fmt.Errorf("the cloud assembly in %s has no %s-%s stack: it was synthesized from another deployment.yaml or by another version of deploy/cdk; synthesize again (tetherctl deploy without --cdk-out)", d.asm.Dir, name, suffix)
		}
	}
	pos := map[string]int{}
	for i, s := range d.asm.Stacks {
		pos[strings.TrimPrefix(s.StackName, name+"-")] = i
	}
	// The images are pushed and the migration run between the stacks, so
	// the stacks they need must come first.
	for _, o := range [][2]string{{"images", "cluster"}, {"data", "cluster"}, {"cluster", "services"}} {
		if pos[o[0]] > pos[o[1]] {
			return nil, fmt.Errorf("the cloud assembly deploys %s-%s before %s-%s, but deploy needs it the other way round; synthesize again with this version's deploy/cdk", name, o[1], name, o[0])
		}
	}
	rel := releaseImages{DocsvcDigest: d.dc.Images.DocsvcDigest, AgentDigest: d.dc.Images.AgentDigest}
	given := map[string]string{
		"MigrateImageDigest": rel.DocsvcDigest,
		"DocsvcImage":        migratedMarkerPath(d.dc, rel.DocsvcDigest),
		"AgentImage":         agentMarkerPath(d.dc, rel.AgentDigest),
	}
	var plan []planStep
	cfn := d.a.CloudFormation()
	for _, st := range d.asm.Stacks {
		existing, err := describeStack(ctx, cfn, st.StackName)
		if err != nil {
			return nil, err
		}
		action := "create"
		if existing != nil && existing.StackStatus != "REVIEW_IN_PROGRESS" {
			action = "update (if anything changed)"
		}
		params := map[string]string{}
		var detail []string
		stackGiven := given
		if action == "create" {
			stackGiven = withCreateOnly(given, d.dc)
		}
		for _, k := range sortedKeys(stackGiven) {
			if _, ok := st.Parameters[k]; ok {
				params[k] = stackGiven[k]
				detail = append(detail, k+" = "+stackGiven[k])
			}
		}
		if st.TerminationProtection {
			detail = append(detail, "termination protection on")
		}
		plan = append(plan, planStep{
			title: fmt.Sprintf("stack %s: %s", st.StackName, action), detail: detail,
			run: func(ctx context.Context) error {
				res, err := d.deployStack(ctx, st, params)
				d.rep.Stacks = append(d.rep.Stacks, res)
				return err
			},
		})
		switch strings.TrimPrefix(st.StackName, name+"-") {
		case "data":
			plan = append(plan, planStep{
				title: "secrets: the license" + map[bool]string{true: " and the AI provider key", false: ""}[d.dc.WorkerNeedsInternet()] + " must be set and valid",
				run:   func(ctx context.Context) error { return checkDeploySecrets(ctx, d.env, d.progress, d.a, d.dc) },
			})
		case "images":
			plan = append(plan, planStep{
				title:  fmt.Sprintf("images: into ECR %s/docsvc and %s/agent (images.source %s)", name, name, d.dc.Images.Source),
				detail: []string{"docsvc " + rel.DocsvcDigest, "agent  " + rel.AgentDigest},
				run: func(ctx context.Context) error {
					return d.steps.push(ctx, d.env, d.a, d.dc, rel, imageOptions{SourceBundle: d.o.bundle})
				},
			})
		case "cluster":
			plan = append(plan, planStep{
				title:  "migration: the migrate task of docsvc " + rel.DocsvcDigest + " must exit 0",
				detail: []string{"then " + migratedMarkerPath(d.dc, rel.DocsvcDigest) + " is written"},
				run: func(ctx context.Context) error {
					if err := d.steps.migrate(ctx, d.env, d.a, d.dc, rel.DocsvcDigest); err != nil {
						return fmt.Errorf("%w. The %s-services stack was not touched", err, name)
					}
					return nil
				},
			})
		}
	}
	plan = append(plan, planStep{
		title: "wait: the ECS services of cluster " + d.clusterName() + " become stable",
		run: func(ctx context.Context) error {
			return d.steps.wait(ctx, d.a, d.clusterName(), d.progress)
		},
	})
	return plan, nil
}

// withCreateOnly adds to given the parameters a stack takes from
// deployment.yaml only when it is created: the services stack's task
// counts, which tetherctl scale changes afterwards and every later deploy
// keeps (UsePreviousValue). Stating them at creation, although they equal
// the template's defaults, records them as the stack's own values.
func withCreateOnly(given map[string]string, dc *deployconfig.Config) map[string]string {
	out := maps.Clone(given)
	out[apiCountParameter] = strconv.Itoa(dc.Sizing.APITasks)
	out[workerMinParameter] = strconv.Itoa(dc.Sizing.WorkerMin)
	out[workerMaxParameter] = strconv.Itoa(dc.Sizing.WorkerMax)
	return out
}

// clusterName is the ECS cluster: the cluster stack's ClusterName output,
// else the name the contract fixes.
func (d *deployRun) clusterName() string {
	for _, s := range d.rep.Stacks {
		if v := s.Outputs["ClusterName"]; v != "" {
			return v
		}
	}
	return ecsClusterName(d.dc)
}

func (d *deployRun) printPlan() {
	w := d.progress
	q := qualifierOf(d.dc)
	fmt.Fprintf(w, "\nPlan: deploy %s to account %s, %s (CDK bootstrap qualifier %s, %s)\n", d.dc.Name, d.dc.Account, d.dc.Region, q, d.o.method)
	fmt.Fprintf(w, "Release: docsvc %s, agent %s\n", d.dc.Images.DocsvcDigest, d.dc.Images.AgentDigest)
	for i, s := range d.plan {
		fmt.Fprintf(w, "  %2d. %s\n", i+1, s.title)
		for _, l := range s.detail {
			fmt.Fprintf(w, "        %s\n", l)
		}
	}
}

func (d *deployRun) deployStack(ctx context.Context, st *stackArtifact, params map[string]string) (stackResult, error) {
	return deployStack(ctx, d.a, stackDeploy{Stack: st, Qualifier: qualifierOf(d.dc), Parameters: params, Progress: d.progress,
		Dir: d.asm.Dir, Direct: d.o.method == "direct"})
}

// checkDeploySecrets stops the deploy while a secret the services need is
// missing or malformed, naming it and the command that sets it. The data
// stack creates the secrets empty, so a first deploy always stops here once.
func checkDeploySecrets(ctx context.Context, env Env, w io.Writer, a *awsSession, dc *deployconfig.Config) error {
	sm := a.SecretsManager()
	var problems []string
	for _, k := range usedSecretKinds(dc) {
		if k.Name == kindDatabase {
			continue // RDS's; checked from its metadata by preflight
		}
		cctx, cancel := callCtx(ctx)
		st, err := describeSecret(cctx, sm, dc, k)
		var v verdict
		if err == nil {
			v, err = secretVerdict(cctx, sm, dc, st, env.Now())
		}
		cancel()
		if err != nil {
			return err
		}
		switch v.Status {
		case statusFail:
			problems = append(problems, fmt.Sprintf("the %s secret (%s): %s. Fix: %s", k.Name, st.SecretName, v.Detail, v.Fix))
		case statusWarn:
			fmt.Fprintf(w, "warning: the %s secret (%s): %s. Fix: %s\n", k.Name, st.SecretName, v.Detail, v.Fix)
		default:
			fmt.Fprintf(w, "%s: %s\n", st.SecretName, v.Detail)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("the deploy stopped after the %s-data stack, which created the secrets:\n  %s\nthen run tetherctl deploy again: it continues from here (the stacks already deployed have no changes)",
			dc.Name, strings.Join(problems, "\n  "))
	}
	return nil
}

// waitServices waits until every service of the cluster is stable, printing
// each service's progress when it changes.
func waitServices(ctx context.Context, a *awsSession, cluster string, w io.Writer) error {
	client := a.ECS()
	last := map[string]string{}
	var waiting []string
	notStable := func() error {
		return fmt.Errorf("the ECS services of cluster %s were not stable before the time limit: %s. See each service's events (aws ecs describe-services --cluster %s --services NAME) and its log group; when they settle, run tetherctl deploy again to finish",
			cluster, strings.Join(waiting, "; "), cluster)
	}
	for {
		services, err := describeServices(ctx, client, cluster)
		if err != nil {
			if ctx.Err() != nil && len(waiting) > 0 {
				return notStable()
			}
			return err
		}
		waiting = nil
		for _, s := range services {
			name := aws.ToString(s.ServiceName)
			ok, state := serviceStable(s)
			if last[name] != state {
				fmt.Fprintf(w, "  %s: %s\n", name, state)
				last[name] = state
			}
			if !ok {
				waiting = append(waiting, name+" ("+state+")")
			}
		}
		if len(services) > 0 && len(waiting) == 0 {
			return nil
		}
		if len(services) == 0 {
			waiting = []string{"no services in the cluster yet"}
		}
		if err := sleep(ctx, stackPoll); err != nil {
			return notStable()
		}
	}
}

func describeServices(ctx context.Context, client *ecs.Client, cluster string) ([]ecstypes.Service, error) {
	var arns []string
	var token *string
	for {
		cctx, cancel := callCtx(ctx)
		out, err := client.ListServices(cctx, &ecs.ListServicesInput{Cluster: aws.String(cluster), NextToken: token})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("listing the services of cluster %s (ECS ListServices): %s", cluster, describeAWSError(err))
		}
		arns = append(arns, out.ServiceArns...)
		if out.NextToken == nil {
			break
		}
		token = out.NextToken
	}
	var services []ecstypes.Service
	for i := 0; i < len(arns); i += 10 {
		cctx, cancel := callCtx(ctx)
		out, err := client.DescribeServices(cctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: arns[i:min(i+10, len(arns))]})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("reading the services of cluster %s (ECS DescribeServices): %s", cluster, describeAWSError(err))
		}
		services = append(services, out.Services...)
	}
	return services, nil
}

// serviceStable says whether a service is stable (as many tasks running as
// desired, one deployment, and that deployment COMPLETED), and describes
// its state in a few words.
func serviceStable(s ecstypes.Service) (bool, string) {
	state := fmt.Sprintf("%d/%d tasks running", s.RunningCount, s.DesiredCount)
	if len(s.Deployments) > 1 {
		state += fmt.Sprintf(", %d deployments", len(s.Deployments))
	}
	var primary *ecstypes.Deployment
	for i, dep := range s.Deployments {
		if aws.ToString(dep.Status) == "PRIMARY" {
			primary = &s.Deployments[i]
		}
	}
	if primary != nil {
		state += ", deployment " + string(primary.RolloutState)
		if primary.FailedTasks > 0 {
			state += fmt.Sprintf(", %d tasks failed", primary.FailedTasks)
		}
	}
	if len(s.Events) > 0 && primary != nil && primary.RolloutState != ecstypes.DeploymentRolloutStateCompleted {
		state += ": " + truncateText(oneLine(aws.ToString(s.Events[0].Message)), 160)
	}
	stable := s.RunningCount == s.DesiredCount && len(s.Deployments) == 1 && primary != nil &&
		primary.RolloutState == ecstypes.DeploymentRolloutStateCompleted
	return stable, state
}

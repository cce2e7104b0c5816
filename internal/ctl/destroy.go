package ctl

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"go.yaml.in/yaml/v3"

	"github.com/tetherhq/tether/internal/deployconfig"
)

const destroyUsage = `tetherctl destroy — delete the deployment's stacks, keeping its data

Usage:
  tetherctl destroy [--config deployment.yaml] [--profile P] [--region R] [--yes] [--output text|json] [--wait 1h]

First shows the plan: the stacks that will be deleted, in reverse
deployment order (<name>-services, -cluster, -images, -data, -network),
and what each keeps: every resource whose DeletionPolicy is Retain or
Snapshot (the documents bucket, the database or its final snapshot, the KMS
keys, the ECR repositories, log groups, the agent's state file system, the
secrets), by its physical ID. Then asks you to type the deployment's name;
--yes skips the question (for automation).

Only after that does it turn off the database's deletion protection (RDS
ModifyDBInstance, applied immediately, waiting until RDS shows it off) so
that CloudFormation can take the database's final snapshot and delete it,
turn off termination protection on the stacks that have it (the data and
images stacks), delete the stacks one at a time,
newest first, showing CloudFormation's events as they come and waiting for
each to be gone before the next, and delete the SSM markers tetherctl wrote
(/tether/<name>/migrated/…, /verified/… and the release history under
/state/…). A stack that
fails to delete stops it: nothing older is touched, and running destroy
again carries on.

It ends by listing what was retained and the deployment.yaml adopt
settings that bring the data back in a new deployment, with their values
(docs/deployment-config.md). Retained resources are still billed until you
delete them yourself.
--output json prints the plan and the outcome as one object.

Exit status: 0 when everything planned was deleted (or nothing was
deployed), 1 when the name was not confirmed or something failed, 2 for
usage mistakes.

Flags:
`

const (
	defaultDestroyWait = time.Hour
	// destroyCallTimeout bounds each AWS call; --wait bounds each stack's deletion.
	destroyCallTimeout = 30 * time.Second
)

// destroyPoll is how often a stack being deleted is looked at.
var destroyPoll = 5 * time.Second

// retainedResource is one resource a stack keeps when it is deleted.
type retainedResource struct {
	Stack      string `json:"stack"`
	LogicalID  string `json:"logical_id"`
	Type       string `json:"type"`
	PhysicalID string `json:"physical_id"`
	Policy     string `json:"policy"` // Retain, Snapshot or RetainExceptOnCreate
}

type plannedStack struct {
	Name                  string `json:"name"`
	ID                    string `json:"id"`
	Status                string `json:"status"`
	TerminationProtection bool   `json:"termination_protection"`
}

// plannedDatabase is a DB instance of the data stack as RDS reports it.
type plannedDatabase struct {
	Stack              string `json:"stack"`
	Instance           string `json:"instance"`
	Exists             bool   `json:"exists"` // false: the stack names an instance RDS does not know
	DeletionProtection bool   `json:"deletion_protection"`
}

type destroyPlan struct {
	Name      string             `json:"name"`
	Account   string             `json:"account"`
	Region    string             `json:"region"`
	Stacks    []plannedStack     `json:"stacks"`
	Databases []plannedDatabase  `json:"databases"`
	Retained  []retainedResource `json:"retained"`
	Markers   []string           `json:"markers"`
}

type destroyResult struct {
	Plan           destroyPlan `json:"plan"`
	Confirmed      bool        `json:"confirmed"`
	DeletedStacks  []string    `json:"deleted_stacks"`
	DeletedMarkers []string    `json:"deleted_markers"`
	Error          string      `json:"error,omitempty"`
}

func destroyCmd(ctx context.Context, args []string, env Env) error {
	var df deployFlags
	fs := flag.NewFlagSet("destroy", flag.ContinueOnError)
	df.register(fs)
	yes := fs.Bool("yes", false, "do not ask: delete what the plan shows")
	wait := fs.Duration("wait", defaultDestroyWait, "how long to wait for each stack's deletion")
	if help, err := parseFlagsOnly(env, fs, args, destroyUsage+flagHelp(fs)); help || err != nil {
		return err
	}
	if *wait < time.Minute {
		return fmt.Errorf("%w: --wait %s: want at least 1m (a stack with a database takes many minutes)", errUsage, *wait)
	}
	dc, err := df.load()
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, destroyCallTimeout)
	a, err := connect(cctx, env, dc, df)
	cancel()
	if err != nil {
		return fmt.Errorf("tetherctl destroy: %w", err)
	}
	plan, err := planDestroy(ctx, a, dc)
	if err != nil {
		return fmt.Errorf("tetherctl destroy: %w (nothing was deleted)", err)
	}
	res := destroyResult{Plan: *plan, DeletedStacks: []string{}, DeletedMarkers: []string{}}
	text := df.output == "text"
	// The plan goes to standard output as text; as JSON, everything is
	// printed once at the end and the conversation goes to standard error.
	talk := env.Stdout
	if !text {
		talk = env.Stderr
	}
	writeDestroyPlan(talk, plan)
	finish := func(err error) error {
		if err != nil {
			res.Error = err.Error()
		}
		if !text {
			if jerr := writeJSON(env.Stdout, res); jerr != nil && err == nil {
				err = jerr
			}
		}
		if err != nil {
			return fmt.Errorf("tetherctl destroy: %w", err)
		}
		return nil
	}
	if len(plan.Stacks) == 0 && len(plan.Markers) == 0 {
		fmt.Fprintf(talk, "Nothing of %s is deployed in account %s, %s: nothing to delete.\n", dc.Name, dc.Account, dc.Region)
		return finish(nil)
	}
	if !*yes {
		if err := confirmName(env, dc.Name); err != nil {
			return finish(err)
		}
	}
	res.Confirmed = true
	err = runDestroy(ctx, env, a, dc, plan, *wait, &res)
	if err == nil {
		writeRetained(talk, plan)
	}
	return finish(err)
}

// planDestroy looks at what exists: the stacks, what each retains, the markers.
func planDestroy(ctx context.Context, a *awsSession, dc *deployconfig.Config) (*destroyPlan, error) {
	plan := &destroyPlan{Name: dc.Name, Account: dc.Account, Region: dc.Region, Stacks: []plannedStack{},
		Databases: []plannedDatabase{}, Retained: []retainedResource{}}
	names := stackNames(dc)
	slices.Reverse(names)
	for _, name := range names {
		cctx, cancel := context.WithTimeout(ctx, destroyCallTimeout)
		s, err := describeStack(cctx, a.CloudFormation(), name)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("looking at stack %s: %w", name, err)
		}
		if s == nil {
			continue
		}
		plan.Stacks = append(plan.Stacks, plannedFrom(name, s))
		kept, err := stackRetains(ctx, a, name)
		if err != nil {
			return nil, err
		}
		plan.Retained = append(plan.Retained, kept...)
		if name == dc.Name+"-data" {
			dbs, err := stackDatabases(ctx, a, name)
			if err != nil {
				return nil, err
			}
			plan.Databases = dbs
		}
	}
	markers, err := listMarkers(ctx, a, dc)
	if err != nil {
		return nil, err
	}
	plan.Markers = markers
	return plan, nil
}

// plannedFrom is a stack as DescribeStacks reports it.
func plannedFrom(name string, s *cfntypes.Stack) plannedStack {
	return plannedStack{Name: name, ID: aws.ToString(s.StackId), Status: string(s.StackStatus),
		TerminationProtection: aws.ToBool(s.EnableTerminationProtection)}
}

// stackDatabases are the DB instances of a stack, each with its deletion
// protection as RDS reports it now.
func stackDatabases(ctx context.Context, a *awsSession, stack string) ([]plannedDatabase, error) {
	cctx, cancel := context.WithTimeout(ctx, destroyCallTimeout)
	res, err := a.CloudFormation().DescribeStackResources(cctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String(stack)})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("listing stack %s's resources (CloudFormation DescribeStackResources): %s", stack, describeAWSError(err))
	}
	out := []plannedDatabase{}
	for _, r := range res.StackResources {
		id := aws.ToString(r.PhysicalResourceId)
		if aws.ToString(r.ResourceType) != "AWS::RDS::DBInstance" || id == "" {
			continue
		}
		db, err := describeDatabase(ctx, a.RDS(), id)
		if err != nil {
			return nil, fmt.Errorf("reading DB instance %s of stack %s (RDS DescribeDBInstances): %w; check that tetherctl's policy allows rds:DescribeDBInstances and rds:ModifyDBInstance on it (docs/iam.md, DestroyDatabase)",
				id, stack, err)
		}
		p := plannedDatabase{Stack: stack, Instance: id}
		if db != nil {
			p.Exists, p.DeletionProtection = true, aws.ToBool(db.DeletionProtection)
		}
		out = append(out, p)
	}
	return out, nil
}

// describeDatabase is one DB instance, or nil when RDS does not know it.
func describeDatabase(ctx context.Context, client *rds.Client, id string) (*rdstypes.DBInstance, error) {
	cctx, cancel := context.WithTimeout(ctx, destroyCallTimeout)
	defer cancel()
	out, err := client.DescribeDBInstances(cctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(id)})
	var notFound *rdstypes.DBInstanceNotFoundFault
	switch {
	case errors.As(err, &notFound):
		return nil, nil
	case err != nil:
		return nil, errors.New(describeAWSError(err))
	case len(out.DBInstances) == 0:
		return nil, nil
	}
	return &out.DBInstances[0], nil
}

// stackRetains lists the resources of a stack that its template keeps on
// deletion, with their physical IDs.
func stackRetains(ctx context.Context, a *awsSession, stack string) ([]retainedResource, error) {
	cfn := a.CloudFormation()
	cctx, cancel := context.WithTimeout(ctx, destroyCallTimeout)
	defer cancel()
	tpl, err := cfn.GetTemplate(cctx, &cloudformation.GetTemplateInput{StackName: aws.String(stack), TemplateStage: cfntypes.TemplateStageOriginal})
	if err != nil {
		return nil, fmt.Errorf("reading stack %s's template (CloudFormation GetTemplate): %s", stack, describeAWSError(err))
	}
	policies, err := retentionPolicies([]byte(aws.ToString(tpl.TemplateBody)))
	if err != nil {
		return nil, fmt.Errorf("stack %s's template: %w", stack, err)
	}
	var out []retainedResource
	p := cloudformation.NewListStackResourcesPaginator(cfn, &cloudformation.ListStackResourcesInput{StackName: aws.String(stack)})
	for p.HasMorePages() {
		page, err := p.NextPage(cctx)
		if err != nil {
			return nil, fmt.Errorf("listing stack %s's resources (CloudFormation ListStackResources): %s", stack, describeAWSError(err))
		}
		for _, r := range page.StackResourceSummaries {
			id := aws.ToString(r.LogicalResourceId)
			policy, ok := policies[id]
			if !ok || aws.ToString(r.PhysicalResourceId) == "" {
				continue
			}
			out = append(out, retainedResource{Stack: stack, LogicalID: id, Type: aws.ToString(r.ResourceType),
				PhysicalID: aws.ToString(r.PhysicalResourceId), Policy: policy})
		}
	}
	slices.SortFunc(out, func(x, y retainedResource) int { return strings.Compare(x.Type+x.LogicalID, y.Type+y.LogicalID) })
	return out, nil
}

// maxTemplateSize is CloudFormation's limit on a template (1 MB from S3).
const maxTemplateSize = 1 << 20

// retentionPolicies reads a CloudFormation template (JSON or YAML) and
// returns the DeletionPolicy of each resource that is not deleted with its
// stack: Retain, RetainExceptOnCreate or Snapshot.
func retentionPolicies(body []byte) (map[string]string, error) {
	if len(body) > maxTemplateSize {
		return nil, fmt.Errorf("the template is larger than CloudFormation's %d bytes", maxTemplateSize)
	}
	var tpl struct {
		Resources map[string]struct {
			DeletionPolicy any `yaml:"DeletionPolicy"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(body, &tpl); err != nil {
		return nil, fmt.Errorf("not a CloudFormation template: %s", cleanYAML(err))
	}
	out := map[string]string{}
	for id, r := range tpl.Resources {
		switch p := r.DeletionPolicy.(type) {
		case nil:
		case string:
			switch p {
			case "Retain", "RetainExceptOnCreate", "Snapshot":
				out[id] = p
			case "Delete":
			default:
				return nil, fmt.Errorf("resource %s: DeletionPolicy %q is not one CloudFormation knows", id, truncateText(p, 60))
			}
		default:
			// An intrinsic function (Fn::If): what it yields is decided at
			// deployment, so it may keep the resource.
			out[id] = "conditional"
		}
	}
	return out, nil
}

func cleanYAML(err error) string { return strings.TrimPrefix(oneLine(err.Error()), "yaml: ") }

// markerPrefixes are the SSM paths only tetherctl writes: the image markers
// the services stack reads (deploy/cdk/README.md, "The gate") and its state
// (the release history). A deployment re-created under the same name must
// not inherit a "previous release" whose images and database are gone.
func markerPrefixes(dc *deployconfig.Config) []string {
	p := "/tether/" + dc.Name
	return []string{p + "/migrated/", p + "/verified/", p + "/state/"}
}

func listMarkers(ctx context.Context, a *awsSession, dc *deployconfig.Config) ([]string, error) {
	markers := []string{}
	for _, prefix := range markerPrefixes(dc) {
		cctx, cancel := context.WithTimeout(ctx, destroyCallTimeout)
		p := ssm.NewGetParametersByPathPaginator(a.SSM(), &ssm.GetParametersByPathInput{
			Path: aws.String(strings.TrimSuffix(prefix, "/")), Recursive: aws.Bool(true)})
		for p.HasMorePages() {
			page, err := p.NextPage(cctx)
			if err != nil {
				cancel()
				return nil, fmt.Errorf("listing the markers under %s (SSM GetParametersByPath): %s", prefix, describeAWSError(err))
			}
			for _, par := range page.Parameters {
				if name := aws.ToString(par.Name); strings.HasPrefix(name, prefix) {
					markers = append(markers, name)
				}
			}
		}
		cancel()
	}
	return markers, nil
}

// confirmName asks for the deployment's name on standard input.
func confirmName(env Env, name string) error {
	if env.Stdin == nil {
		return fmt.Errorf("no standard input to confirm on (pass --yes to delete without asking); nothing was deleted")
	}
	fmt.Fprintf(env.Stderr, "\nThis deletes the stacks above. Type the deployment's name (%s) to go on: ", name)
	line, err := bufio.NewReader(io.LimitReader(env.Stdin, 1024)).ReadString('\n')
	if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
		fmt.Fprintln(env.Stderr)
		return fmt.Errorf("no confirmation on standard input (pass --yes to delete without asking); nothing was deleted")
	}
	if got := strings.TrimSpace(line); got != name {
		return fmt.Errorf("%q is not the deployment's name %q; nothing was deleted", truncateText(got, 60), name)
	}
	return nil
}

// stacksToUnprotect are the planned stacks that have termination
// protection, which must be turned off before they can be deleted.
func stacksToUnprotect(plan *destroyPlan) []string {
	var out []string
	for _, s := range plan.Stacks {
		if s.TerminationProtection {
			out = append(out, s.Name)
		}
	}
	return out
}

func runDestroy(ctx context.Context, env Env, a *awsSession, dc *deployconfig.Config, plan *destroyPlan, wait time.Duration, res *destroyResult) error {
	cfn := a.CloudFormation()
	log := env.Stderr
	for _, db := range plan.Databases {
		if db.DeletionProtection {
			if err := unprotectDatabase(ctx, log, a.RDS(), db.Instance, wait, a.now); err != nil {
				return err
			}
		}
	}
	for _, name := range stacksToUnprotect(plan) {
		cctx, cancel := context.WithTimeout(ctx, destroyCallTimeout)
		_, err := cfn.UpdateTerminationProtection(cctx, &cloudformation.UpdateTerminationProtectionInput{
			StackName: aws.String(name), EnableTerminationProtection: aws.Bool(false)})
		cancel()
		if err != nil {
			return fmt.Errorf("turning off stack %s's termination protection (CloudFormation UpdateTerminationProtection): %s; nothing was deleted", name, describeAWSError(err))
		}
		fmt.Fprintf(log, "Turned off termination protection on %s.\n", name)
	}
	for _, s := range plan.Stacks {
		if err := deleteStack(ctx, log, cfn, s, wait, a.now); err != nil {
			return err
		}
		res.DeletedStacks = append(res.DeletedStacks, s.Name)
	}
	for chunk := range slices.Chunk(plan.Markers, 10) {
		cctx, cancel := context.WithTimeout(ctx, destroyCallTimeout)
		out, err := a.SSM().DeleteParameters(cctx, &ssm.DeleteParametersInput{Names: chunk})
		cancel()
		if err != nil {
			return fmt.Errorf("the stacks are deleted, but deleting the markers (SSM DeleteParameters) failed: %s; run tetherctl destroy again", describeAWSError(err))
		}
		res.DeletedMarkers = append(res.DeletedMarkers, out.DeletedParameters...)
	}
	fmt.Fprintf(log, "Deleted %d stacks and %d markers of %s.\n", len(res.DeletedStacks), len(res.DeletedMarkers), dc.Name)
	return nil
}

// unprotectDatabase turns off a DB instance's deletion protection, which
// would otherwise fail its stack's deletion, and waits until RDS shows it
// off, for at most wait.
func unprotectDatabase(ctx context.Context, log io.Writer, client *rds.Client, id string, wait time.Duration, now func() time.Time) error {
	cctx, cancel := context.WithTimeout(ctx, destroyCallTimeout)
	_, err := client.ModifyDBInstance(cctx, &rds.ModifyDBInstanceInput{DBInstanceIdentifier: aws.String(id),
		DeletionProtection: aws.Bool(false), ApplyImmediately: aws.Bool(true)})
	cancel()
	if err != nil {
		return fmt.Errorf("turning off DB instance %s's deletion protection (RDS ModifyDBInstance): %s; check that tetherctl's policy allows rds:ModifyDBInstance on it (docs/iam.md, DestroyDatabase); nothing was deleted",
			id, describeAWSError(err))
	}
	deadline := now().Add(wait)
	for {
		db, err := describeDatabase(ctx, client, id)
		switch {
		case err != nil:
			return fmt.Errorf("waiting for DB instance %s's deletion protection to be off (RDS DescribeDBInstances): %s; nothing was deleted, run tetherctl destroy again", id, err)
		case db == nil:
			return fmt.Errorf("DB instance %s is gone from RDS while its deletion protection was being turned off; nothing was deleted, run tetherctl destroy again", id)
		case !aws.ToBool(db.DeletionProtection):
			fmt.Fprintf(log, "Turned off deletion protection on DB instance %s.\n", id)
			return nil
		case now().After(deadline):
			return fmt.Errorf("DB instance %s still has deletion protection on after %s (status %s); nothing was deleted: run tetherctl destroy again once RDS shows it off", id, wait, aws.ToString(db.DBInstanceStatus))
		}
		if err := sleep(ctx, destroyPoll); err != nil {
			return fmt.Errorf("stopped waiting for DB instance %s's deletion protection to be off: %w; nothing was deleted", id, err)
		}
	}
}

// deleteStack deletes one stack and waits until it is gone, streaming its
// events to log.
func deleteStack(ctx context.Context, log io.Writer, cfn *cloudformation.Client, s plannedStack, wait time.Duration, now func() time.Time) error {
	seen := map[string]bool{}
	events := func(show bool) {
		cctx, cancel := context.WithTimeout(ctx, destroyCallTimeout)
		defer cancel()
		out, err := cfn.DescribeStackEvents(cctx, &cloudformation.DescribeStackEventsInput{StackName: aws.String(s.ID)})
		if err != nil {
			return // the events are a view; the stack's status decides
		}
		var fresh []cfntypes.StackEvent
		for _, e := range out.StackEvents { // newest first
			if id := aws.ToString(e.EventId); !seen[id] {
				seen[id] = true
				fresh = append(fresh, e)
			}
		}
		if !show {
			return
		}
		for _, e := range slices.Backward(fresh) {
			line := fmt.Sprintf("  %s  %-22s %-30s %s", aws.ToTime(e.Timestamp).UTC().Format("15:04:05"), e.ResourceStatus,
				aws.ToString(e.ResourceType), aws.ToString(e.LogicalResourceId))
			if r := aws.ToString(e.ResourceStatusReason); r != "" {
				line += ": " + oneLine(r)
			}
			fmt.Fprintln(log, line)
		}
	}
	events(false) // only what happens from now on is news
	fmt.Fprintf(log, "Deleting %s…\n", s.Name)
	cctx, cancel := context.WithTimeout(ctx, destroyCallTimeout)
	_, err := cfn.DeleteStack(cctx, &cloudformation.DeleteStackInput{StackName: aws.String(s.ID)})
	cancel()
	if err != nil {
		return fmt.Errorf("deleting stack %s (CloudFormation DeleteStack): %s; the stacks before it in the plan are deleted, the rest untouched", s.Name, describeAWSError(err))
	}
	deadline := now().Add(wait)
	for {
		events(true)
		cctx, cancel := context.WithTimeout(ctx, destroyCallTimeout)
		out, err := cfn.DescribeStacks(cctx, &cloudformation.DescribeStacksInput{StackName: aws.String(s.ID)})
		cancel()
		switch {
		case isStackMissing(err):
			return nil
		case err != nil:
			return fmt.Errorf("waiting for stack %s (CloudFormation DescribeStacks): %s; run tetherctl destroy again to carry on", s.Name, describeAWSError(err))
		case len(out.Stacks) == 0:
			return nil
		}
		st := out.Stacks[0]
		switch st.StackStatus {
		case cfntypes.StackStatusDeleteComplete:
			fmt.Fprintf(log, "Deleted %s.\n", s.Name)
			return nil
		case cfntypes.StackStatusDeleteFailed:
			return fmt.Errorf("stack %s failed to delete: %s; fix what it names, then run tetherctl destroy again (the stacks older than it are untouched)",
				s.Name, oneLine(aws.ToString(st.StackStatusReason)))
		}
		if now().After(deadline) {
			return fmt.Errorf("stack %s is still %s after %s; it goes on deleting: watch it in the CloudFormation console, then run tetherctl destroy again", s.Name, st.StackStatus, wait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting for stack %s: %w; it goes on deleting", s.Name, ctx.Err())
		case <-time.After(destroyPoll):
		}
	}
}

func writeDestroyPlan(w io.Writer, plan *destroyPlan) {
	fmt.Fprintf(w, "Destroy %s in account %s, region %s.\n\n", plan.Name, plan.Account, plan.Region)
	if len(plan.Stacks) > 0 {
		fmt.Fprintln(w, "Stacks to delete, in this order:")
		for i, s := range plan.Stacks {
			note := ""
			if s.TerminationProtection {
				note = " (termination protection is turned off first)"
			}
			fmt.Fprintf(w, "  %d. %s  %s%s\n", i+1, s.Name, s.Status, note)
		}
	}
	for _, db := range plan.Databases {
		switch {
		case !db.Exists:
			fmt.Fprintf(w, "\nDB instance %s of %s is not in RDS (deleted already?): there is nothing to snapshot.\n", db.Instance, db.Stack)
		case db.DeletionProtection:
			then := "CloudFormation deletes it"
			if snapshotted(plan, db.Instance) {
				then = "CloudFormation takes the final snapshot of DB instance " + db.Instance + " and deletes it"
			}
			fmt.Fprintf(w, "\nDB instance %s of %s has deletion protection: it is turned off first, then %s.\n", db.Instance, db.Stack, then)
		}
	}
	if len(plan.Markers) > 0 {
		fmt.Fprintf(w, "\nMarkers to delete (tetherctl's record of migrated and verified images, and of releases): %d under /tether/%s/migrated/, /verified/ and /state/\n",
			len(plan.Markers), plan.Name)
	}
	if len(plan.Retained) > 0 {
		fmt.Fprintln(w, "\nKept (not deleted, and still billed until you delete them):")
		writeRetainedList(w, plan.Retained)
	}
}

// snapshotted says whether the plan keeps a final snapshot of a DB instance.
func snapshotted(plan *destroyPlan, instance string) bool {
	return slices.ContainsFunc(plan.Retained, func(r retainedResource) bool { return r.PhysicalID == instance && r.Policy == "Snapshot" })
}

func writeRetainedList(w io.Writer, kept []retainedResource) {
	for _, r := range kept {
		how := ""
		if r.Policy == "Snapshot" {
			how = " (a final snapshot is taken, then it is deleted)"
		}
		fmt.Fprintf(w, "  %-32s %s%s  [%s %s]\n", r.Type, r.PhysicalID, how, r.Stack, r.LogicalID)
	}
}

// adoptFields maps the data stack's retained resources (by construct ID,
// deploy/cdk/stacks/data.go) to deployment.yaml's adopt settings.
var adoptFields = []struct{ construct, field string }{
	{"DataKey", "adopt.keys.data"},
	{"DocsvcSecretsKey", "adopt.keys.docsvc_secrets"},
	{"AgentSecretsKey", "adopt.keys.agent_secrets"},
	{"Documents", "adopt.documents_bucket"},
	{"Secretlicense", "adopt.secrets.license"},
	{"Secretai", "adopt.secrets.ai"},
	{"Secretagentidentity", "adopt.secrets.agent_identity"},
}

// adoptHints are the deployment.yaml lines that bring the retained data
// back, each with its value or where to find it.
func adoptHints(plan *destroyPlan) []string {
	var out []string
	repos := false
	for _, r := range plan.Retained {
		if r.Type == "AWS::ECR::Repository" {
			repos = true
		}
		if r.Type == "AWS::RDS::DBInstance" && isCDKLogicalID(r.LogicalID, "Database") {
			out = append(out, fmt.Sprintf("adopt.database_snapshot: the final snapshot of DB instance %s (aws rds describe-db-snapshots --db-instance-identifier %s --snapshot-type manual)", r.PhysicalID, r.PhysicalID))
		}
		for _, f := range adoptFields {
			if !isCDKLogicalID(r.LogicalID, f.construct) {
				continue
			}
			v := r.PhysicalID
			if r.Type == "AWS::KMS::Key" && !strings.HasPrefix(v, "arn:") {
				v = "arn:aws:kms:" + plan.Region + ":" + plan.Account + ":key/" + v
			}
			out = append(out, f.field+": "+v)
		}
	}
	if repos {
		out = append(out, "adopt.repositories: true")
	}
	return out
}

// writeRetained says what was kept and how a new deployment takes it back.
func writeRetained(w io.Writer, plan *destroyPlan) {
	if len(plan.Retained) == 0 {
		return
	}
	fmt.Fprintln(w, "\nRetained:")
	writeRetainedList(w, plan.Retained)
	fmt.Fprintln(w, `
To bring the data back, deploy again with a deployment.yaml that adopts
what was retained instead of creating it anew (the adopt settings in
docs/deployment-config.md); without the keys the bucket's objects, the
secrets and the snapshot cannot be read. Until then, a deployment with the
same name creates new, empty ones beside them. What to adopt:`)
	for _, h := range adoptHints(plan) {
		fmt.Fprintf(w, "  %s\n", h)
	}
	fmt.Fprintln(w, "Delete the rest yourself when you no longer need it; a KMS key can only be scheduled for deletion (7 to 30 days).")
}

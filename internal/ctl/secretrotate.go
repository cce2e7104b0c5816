package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// tetherctl secrets rotate (docs/runbooks/secret-rotation.md): a new value
// for a secret the services read when a task starts, then a rolling
// restart of those services, awaited. ECS replaces each task only after
// its successor is healthy (minimum healthy 100%) and the load balancer
// drains the old one, so no request fails, as long as the old value stays
// valid until the restart is over: the runbook says to revoke it only then.

const secretsRotateUsage = `usage: tetherctl secrets rotate NAME [--from-file PATH] [--yes] [--output json] [--timeout 30m]
       tetherctl secrets rotate agent [--local DATA_DIR] [--yes] [--output json] [--timeout 30m]

Replaces a secret's value and restarts the services that read it, one task
at a time, waiting until they run on the new value.

NAME is:
  ai              the AI provider's API key (ai.provider openai or anthropic):
                  the new key is read from --from-file or standard input and
                  checked as secrets set checks it; then the api and worker
                  services are restarted (ECS UpdateService
                  --force-new-deployment) and awaited. Keep the old key valid
                  at the provider until this finishes, then revoke it.
  agent           tether-agent's identity key (also spelled agent-identity):
                  tetherctl makes a new Ed25519 key and puts it into the
                  identity secret as its AWSPENDING version, then restarts
                  the agent service and waits until the agent made it
                  AWSCURRENT. At start the agent registers the new key with
                  the vendor's plane, signing the request with its current
                  key, then promotes it; from then on the plane refuses the
                  old key. An unfinished rotation's pending key is kept, not
                  replaced. --from-file is not taken. With --local DATA_DIR
                  (tetherctl dev's data directory) the key is written to the
                  agent's identity.next instead; restart the agent to finish.

The plan is shown first and confirmed unless --yes. The previous value stays
in Secrets Manager as the AWSPREVIOUS version until the next rotation (for
the agent, the plane no longer accepts it).

`

// rotateReaders are, per secret, the ECS services (families) whose tasks
// read it when they start (deploy/cdk/stacks/tasks.go, docsvcSecrets).
var rotateReaders = map[string][]string{kindAI: {"api", "worker"}}

// rotateResult is what rotate reports: never the value.
type rotateResult struct {
	Name              string   `json:"name"`
	SecretName        string   `json:"secret_name"`
	VersionID         string   `json:"version_id"`
	PreviousVersionID string   `json:"previous_version_id,omitempty"`
	Restarted         []string `json:"restarted"`
	Verdict           verdict  `json:"verdict"`
}

func secretsRotate(ctx context.Context, args []string, env Env) error {
	var df deployFlags
	var fromFile string
	fs := secretsFlags("secrets rotate", &df, &fromFile)
	yes := fs.Bool("yes", false, "do not ask for confirmation (the plan is still shown)")
	timeout := fs.Duration("timeout", 30*time.Minute, "how long the rotation may take, the services' restart included")
	local := fs.String("local", "", "agent only: rotate the agent's key on the local runtime, the `DATA_DIR` of tetherctl dev (deployment.yaml and AWS are not used)")
	positional, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(env.Stdout, secretsRotateUsage+flagHelp(fs))
		return nil
	}
	if err != nil {
		return err
	}
	if len(positional) != 1 {
		return fmt.Errorf("%w: tetherctl secrets rotate: give one secret NAME (ai or agent)", errUsage)
	}
	name := positional[0]
	isAgent := name == "agent" || name == kindAgentIdentity
	switch {
	case *local != "" && !isAgent:
		return fmt.Errorf("%w: tetherctl secrets rotate %s: --local is only for agent", errUsage, name)
	case isAgent && fromFile != "":
		return fmt.Errorf("%w: tetherctl secrets rotate agent: --from-file is not taken: tetherctl makes the new key, and it never leaves the secret (or identity.next)", errUsage)
	case *local != "" && df.output != "text" && df.output != "json":
		return fmt.Errorf("%w: --output %q: want text or json", errUsage, df.output)
	case *local != "":
		return rotateAgentLocal(env, *local, df.output, *yes)
	}
	dc, err := df.load()
	if err != nil {
		return err
	}
	if isAgent {
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return rotateAgent(ctx, env, dc, df, *yes)
	}
	k, err := lookupSecretKind(dc, name)
	if err != nil {
		return err
	}
	readers, ok := rotateReaders[k.Name]
	if !ok {
		why := k.Refusal
		if k.Name == kindLicense {
			why = "a new license takes effect with tetherctl secrets set license (the agent and the api read it again within minutes)"
		}
		return fmt.Errorf("%w: tetherctl secrets rotate %s: refused: %s; docs/runbooks/secret-rotation.md says what to do instead", errUsage, name, why)
	}
	value, v, err := readCheckedSecret(env, dc, name, fromFile, "rotate")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	a, err := connect(ctx, env, dc, df)
	if err != nil {
		return fmt.Errorf("tetherctl secrets rotate %s: nothing was changed: %w", name, err)
	}
	secretName := dc.SecretName(name)
	cluster := ecsClusterName(dc)
	var services []string
	for _, f := range readers {
		services = append(services, ecsServiceName(dc, f))
	}
	plan := []string{
		"put the new value into " + secretName + " as its current version (the old one stays, as AWSPREVIOUS)",
	}
	for _, s := range services {
		plan = append(plan, "restart ECS service "+s+" one task at a time (UpdateService --force-new-deployment): each new task reads the new value")
	}
	plan = append(plan, "wait until the services of cluster "+cluster+" are stable again")
	if err := confirm(env, dc, plan, *yes); err != nil {
		return fmt.Errorf("tetherctl secrets rotate %s: %w", name, err)
	}
	w := progressWriter(env, df.output)
	res, err := rotateSecret(ctx, a, dc, name, value, services, w)
	res.Verdict = v
	if err != nil {
		return fmt.Errorf("tetherctl secrets rotate %s: %w", name, err)
	}
	if v.Status == statusWarn {
		fmt.Fprintf(env.Stderr, "warning: %s. Fix: %s\n", v.Detail, v.Fix)
	}
	if df.output == "json" {
		return writeJSON(env.Stdout, res)
	}
	fmt.Fprintf(env.Stdout, "rotated %s (version %s, previous %s); %v run on the new value. Revoke the old key at the provider now.\n",
		secretName, res.VersionID, orDefault(res.PreviousVersionID, "none"), services)
	return nil
}

// rotateSecret puts the new value, restarts the services and waits.
func rotateSecret(ctx context.Context, a *awsSession, dc *deployconfig.Config, name, value string, services []string, w io.Writer) (rotateResult, error) {
	secretName := dc.SecretName(name)
	res := rotateResult{Name: name, SecretName: secretName, Restarted: []string{}}
	sm := a.SecretsManager()
	cctx, cancel := callCtx(ctx)
	prev, err := sm.DescribeSecret(cctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secretName)})
	cancel()
	var nf *smtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		return res, fmt.Errorf("%s does not exist, nothing was changed: the %s-data stack creates it; deploy it, then set the first value with tetherctl secrets set %s", secretName, dc.Name, name)
	case err != nil:
		return res, fmt.Errorf("reading %s (Secrets Manager DescribeSecret), nothing was changed: %s", secretName, describeAWSError(err))
	}
	for id, stages := range prev.VersionIdsToStages {
		for _, s := range stages {
			if s == "AWSCURRENT" {
				res.PreviousVersionID = id
			}
		}
	}
	if res.PreviousVersionID == "" {
		return res, fmt.Errorf("%s has no value yet, so there is nothing to rotate and no service reads it: set it with tetherctl secrets set %s", secretName, name)
	}
	cctx, cancel = callCtx(ctx)
	out, err := sm.PutSecretValue(cctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(secretName), SecretString: aws.String(value)})
	cancel()
	if err != nil {
		return res, fmt.Errorf("writing %s (Secrets Manager PutSecretValue), nothing was changed: %s", secretName, describeAWSError(err))
	}
	res.VersionID = aws.ToString(out.VersionId)
	fmt.Fprintf(w, "%s: new version %s is current (previous %s)\n", secretName, res.VersionID, res.PreviousVersionID)
	cluster := ecsClusterName(dc)
	for _, s := range services {
		cctx, cancel := callCtx(ctx)
		_, err := a.ECS().UpdateService(cctx, &ecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String(s), ForceNewDeployment: true})
		cancel()
		if err != nil {
			return res, fmt.Errorf("the new value is stored (version %s) but restarting %s failed (ECS UpdateService): %s; tasks that start from now on read the new value: run this again, or aws ecs update-service --cluster %s --service %s --force-new-deployment",
				res.VersionID, s, describeAWSError(err), cluster, s)
		}
		res.Restarted = append(res.Restarted, s)
		fmt.Fprintf(w, "%s: restarting\n", s)
	}
	if err := waitServices(ctx, a, cluster, w); err != nil {
		return res, fmt.Errorf("the new value is stored (version %s) and the restart started, but: %w. Keep the old key valid until the services are stable; if new tasks fail with the new key, put the old one back with tetherctl secrets rotate %s", res.VersionID, err, name)
	}
	return res, nil
}

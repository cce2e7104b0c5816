package ctl

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/tetherhq/tether/internal/atomicfile"
	"github.com/tetherhq/tether/internal/deployconfig"
)

// tetherctl secrets rotate agent: a fresh identity key for tether-agent,
// which the agent registers with the vendor's plane itself (POST /v1/rekey,
// signed with its current key) at its next start, then promotes. tetherctl
// only puts the key where the agent looks for a pending one and restarts
// it: the secret's AWSPENDING version on AWS, identity.next in the agent's
// data directory locally (docs/agent.md, "Identity key rotation").

// agentRotateResult is what rotate agent reports: never the key.
type agentRotateResult struct {
	Name              string `json:"name"`
	SecretName        string `json:"secret_name,omitempty"`
	VersionID         string `json:"version_id,omitempty"`
	PreviousVersionID string `json:"previous_version_id,omitempty"`
	Resumed           bool   `json:"resumed"` // a pending key from an earlier run was kept, not replaced
	Restarted         string `json:"restarted,omitempty"`
	Promoted          bool   `json:"promoted"` // the agent made the new key current
	PendingFile       string `json:"pending_file,omitempty"`
}

// newIdentityKey is a fresh Ed25519 seed as the agent stores it: unpadded
// base64url on one line (internal/agent/identity.go, encodeKey).
func newIdentityKey() (string, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("make a key: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(k.Seed()), nil
}

// stageVersions returns the versions holding AWSCURRENT and AWSPENDING.
func stageVersions(d *secretsmanager.DescribeSecretOutput) (current, pending string) {
	for id, stages := range d.VersionIdsToStages {
		if slices.Contains(stages, "AWSCURRENT") {
			current = id
		}
		if slices.Contains(stages, "AWSPENDING") {
			pending = id
		}
	}
	return current, pending
}

func rotateAgent(ctx context.Context, env Env, dc *deployconfig.Config, df deployFlags, yes bool) error {
	if !dc.AgentNeedsInternet() {
		return fmt.Errorf("%w: tetherctl secrets rotate agent: %s is air-gapped (no plane.url): its agent runs no task and holds no identity with a plane; nothing was changed", errUsage, dc.Name)
	}
	a, err := connect(ctx, env, dc, df)
	if err != nil {
		return fmt.Errorf("tetherctl secrets rotate agent: nothing was changed: %w", err)
	}
	secretName, cluster := dc.SecretName(kindAgentIdentity), ecsClusterName(dc)
	service := ecsServiceName(dc, "agent")
	sm := a.SecretsManager()
	describe := func() (*secretsmanager.DescribeSecretOutput, error) {
		cctx, cancel := callCtx(ctx)
		defer cancel()
		d, err := sm.DescribeSecret(cctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secretName)})
		if err != nil {
			return nil, fmt.Errorf("reading %s (Secrets Manager DescribeSecret): %s", secretName, describeAWSError(err))
		}
		return d, nil
	}
	d, err := describe()
	if err != nil {
		return fmt.Errorf("tetherctl secrets rotate agent: nothing was changed: %w", err)
	}
	res := agentRotateResult{Name: "agent", SecretName: secretName, Restarted: service}
	current, pending := stageVersions(d)
	if current == "" {
		return fmt.Errorf("tetherctl secrets rotate agent: %s has no value yet: the agent has not started (and activated) once, so there is no identity to rotate; nothing was changed", secretName)
	}
	res.PreviousVersionID = current
	// A pending key from an unfinished rotation may already be the one the
	// plane holds (the agent stopped between the plane's swap and its
	// promotion): replacing it would lock the install out. Finish it.
	res.Resumed = pending != "" && pending != current
	plan := []string{"put a new Ed25519 identity key into " + secretName + " as its AWSPENDING version (AWSCURRENT, the key in use, is kept)"}
	if res.Resumed {
		plan = []string{"keep the pending identity key of an unfinished rotation (" + secretName + " version " + pending + "): it may already be registered with the plane"}
	}
	plan = append(plan,
		"restart ECS service "+service+" (UpdateService --force-new-deployment): at start the agent registers the pending key with the vendor's plane (signed with the current key), then makes it AWSCURRENT",
		"wait until "+secretName+"'s AWSCURRENT is the new key")
	if err := confirm(env, dc, plan, yes); err != nil {
		return fmt.Errorf("tetherctl secrets rotate agent: %w", err)
	}
	w := progressWriter(env, df.output)
	if res.Resumed {
		res.VersionID = pending
	} else {
		key, err := newIdentityKey()
		if err != nil {
			return fmt.Errorf("tetherctl secrets rotate agent: nothing was changed: %w", err)
		}
		cctx, cancel := callCtx(ctx)
		out, err := sm.PutSecretValue(cctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(secretName),
			SecretString: aws.String(key), VersionStages: []string{"AWSPENDING"}})
		cancel()
		if err != nil {
			return fmt.Errorf("tetherctl secrets rotate agent: writing %s (Secrets Manager PutSecretValue), nothing was changed: %s", secretName, describeAWSError(err))
		}
		res.VersionID = aws.ToString(out.VersionId)
	}
	fmt.Fprintf(w, "%s: pending version %s (current %s)\n", secretName, res.VersionID, current)
	cctx, cancel := callCtx(ctx)
	_, err = a.ECS().UpdateService(cctx, &ecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String(service), ForceNewDeployment: true})
	cancel()
	if err != nil {
		return fmt.Errorf("tetherctl secrets rotate agent: the new key is pending (version %s) but restarting %s failed (ECS UpdateService): %s; run this again (it keeps the pending key), or aws ecs update-service --cluster %s --service %s --force-new-deployment",
			res.VersionID, service, describeAWSError(err), cluster, service)
	}
	fmt.Fprintf(w, "%s: restarting; waiting for the agent to re-key with the plane\n", service)
	for !res.Promoted {
		if err := sleep(ctx, stackPoll); err != nil {
			return fmt.Errorf("tetherctl secrets rotate agent: the agent did not make the new key current before the time limit (version %s is still AWSPENDING): check its log group for \"identity key not rotated\" and the reason; run this again to restart it, which keeps the pending key", res.VersionID)
		}
		d, err := describe()
		if err != nil {
			return fmt.Errorf("tetherctl secrets rotate agent: the agent was restarted, but %w", err)
		}
		now, _ := stageVersions(d)
		res.Promoted = now == res.VersionID
	}
	fmt.Fprintf(w, "%s: the agent re-keyed with the plane and made version %s current\n", secretName, res.VersionID)
	if df.output == "json" {
		return writeJSON(env.Stdout, res)
	}
	fmt.Fprintf(env.Stdout, "rotated %s (version %s, previous %s): the plane knows the agent by the new key; the old one is refused\n", secretName, res.VersionID, res.PreviousVersionID)
	return nil
}

// rotateAgentLocal writes identity.next into the agent's data directory of
// a local runtime (DATA_DIR/agent, or DATA_DIR itself when it is one); the
// agent re-keys when it next starts.
func rotateAgentLocal(env Env, dataDir, output string, yes bool) error {
	dir := filepath.Join(dataDir, "agent")
	if _, err := os.Stat(filepath.Join(dir, "identity.key")); err != nil {
		dir = dataDir
	}
	if _, err := os.Stat(filepath.Join(dir, "identity.key")); err != nil {
		return fmt.Errorf("tetherctl secrets rotate agent --local %s: no identity.key in %s or %s: give the DATA_DIR of tetherctl dev (or the agent's --data-dir), after the agent started once; nothing was changed",
			dataDir, filepath.Join(dataDir, "agent"), dataDir)
	}
	next := filepath.Join(dir, "identity.next")
	res := agentRotateResult{Name: "agent", PendingFile: next}
	_, err := os.Stat(next)
	res.Resumed = err == nil
	step := "write a new Ed25519 identity key to " + next
	if res.Resumed {
		step = "keep " + next + ", the pending key of an unfinished rotation (it may already be registered with the plane)"
	}
	fmt.Fprintf(env.Stderr, "On the local runtime in %s, this will:\n  - %s\n", dataDir, step)
	if !yes {
		if err := proceed(env); err != nil {
			return fmt.Errorf("tetherctl secrets rotate agent --local: %w", err)
		}
	}
	if !res.Resumed {
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("tetherctl secrets rotate agent --local: %s: %w; nothing was changed", next, err)
		}
		key, err := newIdentityKey()
		if err != nil {
			return fmt.Errorf("tetherctl secrets rotate agent --local: nothing was changed: %w", err)
		}
		if err := atomicfile.Write(next, []byte(key+"\n"), 0o600); err != nil {
			return fmt.Errorf("tetherctl secrets rotate agent --local: %w", err)
		}
	}
	if output == "json" {
		return writeJSON(env.Stdout, res)
	}
	fmt.Fprintf(env.Stdout, "%s is pending. Restart the agent (stop tetherctl dev with Ctrl-C and run it again with the same --data-dir, or restart tether-agent): at start it registers the new key with the plane and renames identity.next to identity.key; its log says \"identity key rotated\"\n", next)
	return nil
}

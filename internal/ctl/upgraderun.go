package ctl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/tetherhq/tether/internal/deployconfig"
	"github.com/tetherhq/tether/internal/license"
	"github.com/tetherhq/tether/internal/release"
)

// upgradeSteps are the steps an upgrade or rollback takes that reach past
// CloudFormation and SSM; tests replace those moto cannot run (ECS rollout
// state, alarm evaluation) and record the others.
type upgradeSteps struct {
	push     func(ctx context.Context, env Env, a *awsSession, cfg *deployconfig.Config, rel releaseImages, opt imageOptions) error
	migrate  func(ctx context.Context, env Env, a *awsSession, cfg *deployconfig.Config, docsvcDigest string) error
	health   func(ctx context.Context, a *awsSession, dc *deployconfig.Config) (settled bool, problems []string, err error)
	snapshot func(ctx context.Context, a *awsSession, dc *deployconfig.Config, w io.Writer) (string, error)
}

func defaultUpgradeSteps() upgradeSteps {
	return upgradeSteps{push: pushImages, migrate: runMigration, health: readHealth, snapshot: snapshotDatabase}
}

// upgradePlan is one upgrade or rollback, decided before anything changes.
type upgradePlan struct {
	Action string          `json:"action"` // upgrade | rollback
	From   deployedRelease `json:"from"`
	To     releaseImages   `json:"to"`
	Settle time.Duration   `json:"-"`
	// Stage stops after the migration: the release is ready (images,
	// schema, markers) for tether-upgrade to apply in the customer's window.
	Stage    bool   `json:"stage,omitempty"`
	Snapshot string `json:"snapshot,omitempty"`
	Outcome  string `json:"outcome,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

func (p upgradePlan) steps(dc *deployconfig.Config) []string {
	s := []string{
		"check that the services are healthy now (ECS deployments complete, no alarm of " + dc.Name + "-services in ALARM)",
		"snapshot the " + dc.Name + "-data stack's database (RDS CreateDBSnapshot) and wait for it",
	}
	if p.Action == "upgrade" {
		s = append(s,
			"put release "+p.To.Version+"'s images into ECR by digest (docsvc "+p.To.DocsvcDigest+", agent "+p.To.AgentDigest+")",
			"set the "+dc.Name+"-cluster stack's MigrateImageDigest to "+p.To.DocsvcDigest+" (change set shown first)",
			"run the migration task and wait for exit code 0",
		)
	} else {
		s = append(s, "no migration: migrations only add (expand/contract), so the previous release runs on this schema")
	}
	if p.Stage {
		return append(s, "record the outcome staged in SSM parameter "+dc.ReleaseRecordParameter()+"; the services are not changed: tether-upgrade applies the release at the next start of plane.upgrade_window, or run tetherctl upgrade --to "+p.To.Version)
	}
	return append(s,
		"set the "+dc.Name+"-services stack's DocsvcImage to "+migratedMarkerPath(dc, p.To.DocsvcDigest)+" and AgentImage to "+agentMarkerPath(dc, p.To.AgentDigest)+" (change set shown first)",
		fmt.Sprintf("watch the services for %s; on a failed rollout or an alarm, set the services stack back to %s and %s by itself", p.Settle, p.From.DocsvcMarker, p.From.AgentMarker),
		"record the outcome in SSM parameter "+dc.ReleaseRecordParameter(),
	)
}

// runUpgrade carries out a plan. Before the services stack changes, a
// failure stops with nothing rolled; after, the services stack is set back
// to the previous markers and the reason is returned.
func runUpgrade(ctx context.Context, env Env, a *awsSession, dc *deployconfig.Config, p *upgradePlan, steps upgradeSteps, opt imageOptions, yes bool, w io.Writer) error {
	settled, problems, err := steps.health(ctx, a, dc)
	if err != nil {
		return err
	}
	if len(problems) > 0 || !settled {
		return fmt.Errorf("the deployment is not healthy now, so nothing was changed: %s; fix that first (tetherctl status shows what is wrong; the deployment's CloudWatch dashboard and aws ecs describe-services --cluster tether-%s show more), then run this again",
			orDefault(strings.Join(problems, "; "), "a deployment is still in progress"), dc.Name)
	}
	if p.Snapshot, err = steps.snapshot(ctx, a, dc, w); err != nil {
		return fmt.Errorf("backing up before the %s, nothing was changed: %w", p.Action, err)
	}
	if p.Action == "upgrade" {
		if err := steps.push(ctx, env, a, dc, p.To, opt); err != nil {
			return fmt.Errorf("putting release %s's images into ECR, the services were not changed: %w", p.To.Version, err)
		}
		if err := setStackParameters(ctx, env, a, dc.Name+"-cluster", map[string]string{"MigrateImageDigest": p.To.DocsvcDigest}, yes, w); err != nil {
			return fmt.Errorf("the services were not changed: %w", err)
		}
		if err := steps.migrate(ctx, env, a, dc, p.To.DocsvcDigest); err != nil {
			return p.record(ctx, a, dc, "failed", "migration-failed", fmt.Errorf("the migration failed, the services were not changed and still run %s (restore snapshot %s only if the database is damaged): %w", orDefault(p.From.Version, "the previous release"), p.Snapshot, err))
		}
		if p.Stage {
			return p.record(ctx, a, dc, "staged", "", nil)
		}
	}
	target := map[string]string{"DocsvcImage": migratedMarkerPath(dc, p.To.DocsvcDigest), "AgentImage": agentMarkerPath(dc, p.To.AgentDigest)}
	if err := setStackParameters(ctx, env, a, dc.Name+"-services", target, yes, w); err != nil {
		if strings.HasPrefix(err.Error(), "not confirmed") {
			return err
		}
		return p.rollBack(ctx, env, a, dc, w, "stack-failed", fmt.Sprintf("updating the services stack failed: %v", err))
	}
	// The rollout may take as long as the time limit allows; once every
	// service has settled, it must stay healthy for p.Settle.
	var healthySince time.Time
	for {
		settled, problems, err := steps.health(ctx, a, dc)
		if err != nil {
			return p.rollBack(ctx, env, a, dc, w, "health-unreadable", fmt.Sprintf("the services' health could not be read: %v", err))
		}
		if len(problems) > 0 {
			return p.rollBack(ctx, env, a, dc, w, problemCode(problems), strings.Join(problems, "; "))
		}
		switch {
		case !settled:
			healthySince = time.Time{}
		case healthySince.IsZero():
			healthySince = env.Now()
			fmt.Fprintf(w, "the services settled; watching them for %s\n", p.Settle)
		}
		if !healthySince.IsZero() && env.Now().Sub(healthySince) >= p.Settle {
			break
		}
		if err := sleep(ctx, stackPoll); err != nil {
			return p.rollBack(ctx, env, a, dc, w, "timeout", "the services had not stayed healthy for "+p.Settle.String()+" when the time limit (--timeout) ran out")
		}
	}
	return p.record(ctx, a, dc, "succeeded", "", nil)
}

// problemCode is the recorded reason code for healthProblems' findings: an
// alarm when one went off, else a failed rollout.
func problemCode(problems []string) string {
	for _, p := range problems {
		if strings.HasPrefix(p, "alarm ") {
			return "alarm"
		}
	}
	return "rollout-failed"
}

// rollBack sets the services stack back to the markers it had and records
// why (code, one of wire.UpgradeReasons, and the text).
func (p *upgradePlan) rollBack(ctx context.Context, env Env, a *awsSession, dc *deployconfig.Config, w io.Writer, code, why string) error {
	fmt.Fprintf(w, "Rolling the services back to %s: %s\n", orDefault(p.From.Version, "the previous images"), why)
	back := map[string]string{"DocsvcImage": p.From.DocsvcMarker, "AgentImage": p.From.AgentMarker}
	// A fresh deadline: the rollback must run even when the upgrade's ran out.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Minute)
	defer cancel()
	if err := setStackParameters(rctx, env, a, dc.Name+"-services", back, true, w); err != nil {
		return p.record(rctx, a, dc, "failed", code, fmt.Errorf("%s, and setting the services stack back failed too: %w; set DocsvcImage=%s and AgentImage=%s by hand (docs/runbooks/rollback.md)", why, err, p.From.DocsvcMarker, p.From.AgentMarker))
	}
	return p.record(rctx, a, dc, "rolled-back", code, fmt.Errorf("the %s to %s was rolled back, the services run %s again: %s", p.Action, p.To.Version, orDefault(p.From.Version, "the previous images"), why))
}

// record writes the outcome, with code (one of wire.UpgradeReasons, the
// only part of it the agent reports to the plane) when it failed, and
// returns cause (nil on success).
func (p *upgradePlan) record(ctx context.Context, a *awsSession, dc *deployconfig.Config, outcome, code string, cause error) error {
	p.Outcome = outcome
	o := releaseOutcome{Action: p.Action, From: p.From.Version, To: p.To.Version, FromDocsvc: p.From.DocsvcDigest, FromAgent: p.From.AgentDigest,
		DocsvcDigest: p.To.DocsvcDigest, AgentDigest: p.To.AgentDigest, Outcome: outcome, Code: code, By: "tetherctl", At: a.now().UTC()}
	if cause != nil {
		p.Reason = cause.Error()
		o.Reason = oneLine(cause.Error())
		if len(o.Reason) > 300 {
			o.Reason = o.Reason[:300]
		}
	}
	if err := recordOutcome(ctx, a, dc, o); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// readHealth asks ECS and CloudWatch about the services stack's services
// and the alarms it defines (logical IDs starting "Alarm": 5xx rate,
// queue age, dead letters, errors; not the worker's scaling alarms, which
// are in ALARM whenever the queue is idle).
func readHealth(ctx context.Context, a *awsSession, dc *deployconfig.Config) (bool, []string, error) {
	cctx, cancel := callCtx(ctx)
	res, err := a.CloudFormation().DescribeStackResources(cctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String(dc.Name + "-services")})
	cancel()
	if err != nil {
		return false, nil, fmt.Errorf("listing %s-services' resources (CloudFormation DescribeStackResources): %s", dc.Name, describeAWSError(err))
	}
	var alarmNames []string
	for _, r := range res.StackResources {
		if aws.ToString(r.ResourceType) == "AWS::CloudWatch::Alarm" && strings.HasPrefix(aws.ToString(r.LogicalResourceId), "Alarm") {
			alarmNames = append(alarmNames, aws.ToString(r.PhysicalResourceId))
		}
	}
	services, err := describeServices(ctx, a.ECS(), ecsClusterName(dc))
	if err != nil {
		return false, nil, err
	}
	var alarms []cwtypes.MetricAlarm
	if len(alarmNames) > 0 {
		cw := cloudwatch.NewFromConfig(a.cfg, func(o *cloudwatch.Options) { setEndpoint(&o.BaseEndpoint, a.serviceEndpoint("CLOUDWATCH")) })
		cctx, cancel := callCtx(ctx)
		out, err := cw.DescribeAlarms(cctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: alarmNames})
		cancel()
		if err != nil {
			return false, nil, fmt.Errorf("reading the alarms (CloudWatch DescribeAlarms): %s", describeAWSError(err))
		}
		alarms = out.MetricAlarms
	}
	settled, problems := healthProblems(services, alarms)
	return settled, problems, nil
}

// snapshotDatabase takes a manual RDS snapshot of the data stack's
// database and waits until it is available.
func snapshotDatabase(ctx context.Context, a *awsSession, dc *deployconfig.Config, w io.Writer) (string, error) {
	cctx, cancel := callCtx(ctx)
	res, err := a.CloudFormation().DescribeStackResources(cctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String(dc.Name + "-data")})
	cancel()
	if err != nil {
		return "", fmt.Errorf("listing %s-data's resources (CloudFormation DescribeStackResources): %s", dc.Name, describeAWSError(err))
	}
	var instance string
	for _, r := range res.StackResources {
		if aws.ToString(r.ResourceType) == "AWS::RDS::DBInstance" {
			instance = aws.ToString(r.PhysicalResourceId)
		}
	}
	if instance == "" {
		return "", fmt.Errorf("the %s-data stack has no database instance: run tetherctl deploy", dc.Name)
	}
	client := a.RDS()
	// The time names it for people; the random suffix keeps two snapshots
	// in one second (an upgrade, then at once a rollback) from colliding.
	var suffix [3]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return "", fmt.Errorf("naming the snapshot: %w", err)
	}
	id := dc.ResourceName("pre-upgrade-") + a.now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(suffix[:])
	cctx, cancel = callCtx(ctx)
	_, err = client.CreateDBSnapshot(cctx, &rds.CreateDBSnapshotInput{DBInstanceIdentifier: aws.String(instance), DBSnapshotIdentifier: aws.String(id),
		Tags: []rdstypes.Tag{{Key: aws.String("tether:purpose"), Value: aws.String("before an upgrade or rollback")}}})
	cancel()
	if err != nil {
		return "", fmt.Errorf("snapshotting database %s (RDS CreateDBSnapshot): %s; check rds:CreateDBSnapshot is allowed", instance, describeAWSError(err))
	}
	fmt.Fprintf(w, "snapshot %s of %s started\n", id, instance)
	for {
		cctx, cancel := callCtx(ctx)
		out, err := client.DescribeDBSnapshots(cctx, &rds.DescribeDBSnapshotsInput{DBSnapshotIdentifier: aws.String(id)})
		cancel()
		if err != nil {
			return "", fmt.Errorf("waiting for snapshot %s (RDS DescribeDBSnapshots): %s", id, describeAWSError(err))
		}
		if len(out.DBSnapshots) == 1 {
			switch st := aws.ToString(out.DBSnapshots[0].Status); st {
			case "available":
				fmt.Fprintf(w, "snapshot %s is available\n", id)
				return id, nil
			case "failed", "error", "deleted":
				return "", fmt.Errorf("snapshot %s ended %s", id, st)
			}
		}
		if err := sleep(ctx, stackPoll); err != nil {
			return "", fmt.Errorf("snapshot %s was not available before the time limit (--timeout); it goes on in RDS: wait for it, then run this again", id)
		}
	}
}

const upgradeUsage = `usage: tetherctl upgrade --bundle FILE [--to VERSION] [--stage] [--settle 10m] [--yes] [--output json]
       tetherctl upgrade --local DATA_DIR --bundle FILE [--to VERSION] [--settle 1m] [--yes] [--output json]

Installs a newer release on the AWS runtime (docs/runbooks/upgrade.md). FILE is
the vendor's signed release export; it is verified against deployment.yaml's
plane.trusted_root first. Without --to, the newest release that applies.

Steps: verify the release; check it applies (channel, min_from, newer than the
running one) and that the services are healthy; snapshot the database; put the
images into ECR by digest; set the cluster stack's MigrateImageDigest (change
set shown first); run the migration task; set the services stack's DocsvcImage
and AgentImage (change set shown first); watch the services for --settle; on
a failed rollout or an alarm, set the services stack back by itself; record
the outcome in /tether/<name>/state/releases.

With --stage it stops after the migration and records the outcome "staged":
the images are in ECR, the schema is migrated and the markers are written,
and the services still run the current release. With plane.automatic_upgrades,
the scheduled tether-upgrade task then applies it at the next start of
plane.upgrade_window (docs/upgrades.md); without, run tetherctl upgrade --to
VERSION when you choose.

With --local DATA_DIR it upgrades the local runtime, a running tetherctl dev
with that --data-dir, in the same steps (docs/runbooks/upgrade.md): verify the
export against DATA_DIR/plane/keys/root.json (or --trusted-root) and keep the
release's docsvc and tether-agent in DATA_DIR/releases/VERSION/; check it
applies (--channel, min_from, newer) and that the api's /readyz is green; back
up the database and documents into DATA_DIR.backups/; run the release's
docsvc migrate; have the supervisor swap api, worker and agent on its socket
(the new api serves beside the old one until ready, the old one drains, no
request fails); watch /readyz, 5xx responses, queue age, dead letters and
restarts for --settle (default 1m); on any problem swap back by itself; record
the outcome in DATA_DIR/releases/history.json and the agent's release record
DATA_DIR/agent/state/releases.json, which the plane then shows.

`

const rollbackUsage = `usage: tetherctl rollback [--settle 10m] [--yes] [--output json]
       tetherctl rollback --local DATA_DIR [--settle 1m] [--yes] [--output json]

Returns the services to the release they ran before the last successful
upgrade or rollback (docs/runbooks/rollback.md): health check, database
snapshot, then the services stack's DocsvcImage and AgentImage set back to that
release's markers through a change set shown first, watched for --settle, and
the outcome recorded. No migration runs and none is undone: migrations only
add, so the previous release runs on the newer schema.

With --local DATA_DIR it returns a running tetherctl dev to the binaries the
last successful upgrade or rollback replaced (DATA_DIR/releases/history.json),
with the same health check, backup, swap, watch and record.

`

type upgradeFlags struct {
	df      deployFlags
	bundle  string
	to      string
	stage   bool
	settle  time.Duration
	timeout time.Duration
	yes     bool
	local   localFlags
}

func upgradeCmd(ctx context.Context, args []string, env Env) error {
	return upgradeWith(ctx, args, env, defaultUpgradeSteps(), imageOptions{})
}

func rollbackCmd(ctx context.Context, args []string, env Env) error {
	return rollbackWith(ctx, args, env, defaultUpgradeSteps())
}

func (u *upgradeFlags) parse(env Env, name, usage string, args []string) (bool, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	u.df.register(fs)
	if name == "upgrade" {
		fs.StringVar(&u.bundle, "bundle", "", "the vendor's signed release export `FILE`")
		fs.StringVar(&u.to, "to", "", "the release `VERSION` to install (default: the newest that applies)")
		fs.BoolVar(&u.stage, "stage", false, "stop after the migration: prepare the release for tether-upgrade to apply in plane.upgrade_window, without rolling the services")
	}
	fs.DurationVar(&u.settle, "settle", 10*time.Minute, "how long the services must stay healthy before the release counts as installed")
	fs.DurationVar(&u.timeout, "timeout", time.Hour, "how long the whole "+name+" may take, the rollout and --settle included")
	fs.BoolVar(&u.yes, "yes", false, "do not ask for confirmation (plan and change sets are still shown)")
	u.local.register(fs, name != "rollback")
	helped, err := parseFlagsOnly(env, fs, args, usage+flagHelp(fs))
	if helped || err != nil {
		return helped, err
	}
	if u.local.dataDir != "" && !flagSet(fs, "settle") {
		u.settle = time.Minute
	}
	if u.settle < 0 || u.settle > 2*time.Hour {
		return false, fmt.Errorf("%w: --settle %s: want 0 to 2h", errUsage, u.settle)
	}
	if u.timeout < 5*time.Minute || u.timeout > 6*time.Hour || u.timeout <= u.settle {
		return false, fmt.Errorf("%w: --timeout %s: want 5m to 6h, longer than --settle", errUsage, u.timeout)
	}
	return false, nil
}

func upgradeWith(ctx context.Context, args []string, env Env, steps upgradeSteps, opt imageOptions) error {
	var u upgradeFlags
	if helped, err := u.parse(env, "upgrade", upgradeUsage, args); helped || err != nil {
		return err
	}
	if u.bundle == "" {
		return fmt.Errorf("%w: tetherctl upgrade: pass --bundle FILE, the vendor's signed release export", errUsage)
	}
	if u.local.dataDir != "" {
		return localUpgradeCmd(ctx, env, u)
	}
	dc, err := u.df.load()
	if err != nil {
		return err
	}
	dir, err := releaseStateDir(env.Getenv, dc)
	if err != nil {
		return err
	}
	ms, err := verifiedReleases(ctx, dc, dir, u.bundle, env.Now())
	if err != nil {
		return fmt.Errorf("tetherctl upgrade: %w", err)
	}
	a, err := connect(ctx, env, dc, u.df)
	if err != nil {
		return fmt.Errorf("tetherctl upgrade: %w", err)
	}
	cur, err := currentRelease(ctx, a, dc, ms)
	if err != nil {
		return fmt.Errorf("tetherctl upgrade: %w", err)
	}
	if err := checkLicensedChannel(ctx, a, dc); err != nil {
		return fmt.Errorf("tetherctl upgrade: nothing was changed: %w", err)
	}
	target, err := chooseRelease(ms, cur.Version, dc.Plane.Channel, u.to)
	if err != nil {
		return fmt.Errorf("tetherctl upgrade: %w", err)
	}
	rel, err := imagesOf(target)
	if err != nil {
		return fmt.Errorf("tetherctl upgrade: %w", err)
	}
	p := &upgradePlan{Action: "upgrade", From: cur, To: rel, Settle: u.settle, Stage: u.stage}
	return confirmAndRun(ctx, env, a, dc, p, steps, opt, u)
}

// checkLicensedChannel refuses releases from a channel the deployment's
// license does not allow (the license in Secrets Manager, verified against
// deployment.yaml's license.public_key): the agent would refuse to run on it.
func checkLicensedChannel(ctx context.Context, a *awsSession, dc *deployconfig.Config) error {
	name := dc.SecretName(kindLicense)
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := a.SecretsManager().GetSecretValue(cctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		return fmt.Errorf("reading the license to check its channels (Secrets Manager GetSecretValue on %s): %s", name, describeAWSError(err))
	}
	pub, err := license.ParsePublicKey([]byte(dc.License.PublicKey))
	if err != nil {
		return fmt.Errorf("deployment.yaml's license.public_key is not an Ed25519 public key: paste the vendor's license.pub there")
	}
	l, err := license.Verify(pub, []byte(aws.ToString(out.SecretString)))
	if err != nil {
		return fmt.Errorf("the license in %s does not verify against license.public_key: tetherctl secrets check says why", name)
	}
	if !l.AllowsChannel(dc.Plane.Channel) {
		return fmt.Errorf("license %s does not allow channel %s (it allows %s): ask the vendor for a license with that channel, or set plane.channel to one it allows",
			l.ID, dc.Plane.Channel, strings.Join(l.Channels, ", "))
	}
	return nil
}

// chooseRelease picks --to, or the newest release that applies.
func chooseRelease(ms []release.Manifest, current, channel, to string) (release.Manifest, error) {
	var why []string
	for _, m := range ms {
		if to != "" && m.Version != to {
			continue
		}
		err := checkApplies(m, current, channel, false)
		if err == nil {
			return m, nil
		}
		if to != "" {
			return m, err
		}
		why = append(why, err.Error())
	}
	if to != "" {
		return release.Manifest{}, fmt.Errorf("--to %s: the verified export has no such release on channel %s (tetherctl releases lists them)", to, channel)
	}
	return release.Manifest{}, fmt.Errorf("no release in the export applies to the running %s: %s", orDefault(current, "(unknown)"), orDefault(strings.Join(why, "; "), "it holds none"))
}

func rollbackWith(ctx context.Context, args []string, env Env, steps upgradeSteps) error {
	var u upgradeFlags
	if helped, err := u.parse(env, "rollback", rollbackUsage, args); helped || err != nil {
		return err
	}
	if u.local.dataDir != "" {
		return localRollbackCmd(ctx, env, u)
	}
	dc, err := u.df.load()
	if err != nil {
		return err
	}
	a, err := connect(ctx, env, dc, u.df)
	if err != nil {
		return fmt.Errorf("tetherctl rollback: %w", err)
	}
	cur, err := currentRelease(ctx, a, dc, nil)
	if err != nil {
		return fmt.Errorf("tetherctl rollback: %w", err)
	}
	h, err := readHistory(ctx, a, dc)
	if err != nil {
		return fmt.Errorf("tetherctl rollback: %w", err)
	}
	prev, ok := previousRelease(h, cur)
	if !ok {
		return fmt.Errorf("tetherctl rollback: no recorded upgrade installed what the services run now (docsvc %s), so there is no previous release to return to; use tetherctl upgrade --to VERSION, or docs/runbooks/rollback.md to set the markers by hand", cur.DocsvcDigest)
	}
	cur.Version = prev.To
	p := &upgradePlan{Action: "rollback", From: cur, Settle: u.settle,
		To: releaseImages{Version: orDefault(prev.From, "the previous images"), DocsvcDigest: prev.FromDocsvc, AgentDigest: prev.FromAgent}}
	return confirmAndRun(ctx, env, a, dc, p, steps, imageOptions{}, u)
}

func confirmAndRun(ctx context.Context, env Env, a *awsSession, dc *deployconfig.Config, p *upgradePlan, steps upgradeSteps, opt imageOptions, u upgradeFlags) error {
	if err := confirm(env, dc, p.steps(dc), u.yes); err != nil {
		return fmt.Errorf("tetherctl %s: %w", p.Action, err)
	}
	w := progressWriter(env, u.df.output)
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	err := runUpgrade(ctx, env, a, dc, p, steps, opt, u.yes, w)
	if u.df.output == "json" {
		if jerr := writeJSON(env.Stdout, p); jerr != nil {
			return jerr
		}
	} else if err == nil && p.Stage {
		fmt.Fprintf(env.Stdout, "release %s is staged: its images are in ECR, the migration ran and the markers are written (snapshot %s); the services still run %s\n", p.To.Version, p.Snapshot, orDefault(p.From.Version, "the previous release"))
	} else if err == nil {
		fmt.Fprintf(env.Stdout, "%s to %s succeeded: the services run docsvc %s and agent %s (snapshot %s)\n", p.Action, p.To.Version, p.To.DocsvcDigest, p.To.AgentDigest, p.Snapshot)
	}
	if err != nil {
		return fmt.Errorf("tetherctl %s: %w", p.Action, err)
	}
	return nil
}

package ctl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// secretKind is one of the deployment's secrets, as the data stack
// (deploy/cdk/stacks/data.go) creates it: the same kind names, under
// deployconfig's SecretName.
type secretKind struct {
	Name string
	// SetBy says who puts the value there.
	SetBy string
	// Refusal, when set, is why tetherctl will not set it.
	Refusal string
	// used reports whether the deployment has this secret at all.
	used func(*deployconfig.Config) bool
}

const (
	kindLicense       = "license"
	kindAI            = "ai"
	kindAgentIdentity = "agent-identity"
	kindDatabase      = "database"
)

// secretKinds lists every secret a deployment can use, in the order they
// are shown.
func secretKinds() []secretKind {
	always := func(*deployconfig.Config) bool { return true }
	return []secretKind{
		{Name: kindLicense, SetBy: "the operator (tetherctl secrets set license)", used: always},
		{Name: kindAI, SetBy: "the operator (tetherctl secrets set ai)",
			used: (*deployconfig.Config).WorkerNeedsInternet},
		{Name: kindAgentIdentity, SetBy: "tether-agent itself, on its first start", used: always,
			Refusal: "tether-agent creates its own identity key on first start and is the only one that may write it; a key set by hand would not match the install the vendor's plane knows"},
		{Name: kindDatabase, SetBy: "RDS (generated with the database, then rotated every 7 days)", used: always,
			Refusal: "RDS manages the database password and changes it every 7 days; a value set by hand would lock docsvc out of the database"},
	}
}

// usedSecretKinds are the kinds this deployment has.
func usedSecretKinds(dc *deployconfig.Config) []secretKind {
	var out []secretKind
	for _, k := range secretKinds() {
		if k.used(dc) {
			out = append(out, k)
		}
	}
	return out
}

// lookupSecretKind finds NAME among this deployment's secrets, or explains.
func lookupSecretKind(dc *deployconfig.Config, name string) (secretKind, error) {
	var names []string
	for _, k := range secretKinds() {
		if k.Name != name {
			names = append(names, k.Name)
			continue
		}
		if !k.used(dc) {
			return k, fmt.Errorf("%w: deployment.yaml's ai.provider is %s, which uses no key, so the deployment has no %s secret",
				errUsage, dc.AI.Provider, dc.SecretName(name))
		}
		return k, nil
	}
	return secretKind{}, fmt.Errorf("%w: no secret named %q; the deployment's secrets are %s (see tetherctl secrets list)",
		errUsage, name, joinNames(usedSecretKinds(dc)))
}

func joinNames(kinds []secretKind) string {
	s := ""
	for i, k := range kinds {
		if i > 0 {
			s += ", "
		}
		s += k.Name
	}
	return s
}

// secretState is what list and show report. It has no field for the
// value: nothing that prints a secretState can print a secret.
type secretState struct {
	Name        string     `json:"name"`
	SecretName  string     `json:"secret_name"`
	ARN         string     `json:"arn,omitempty"`
	Exists      bool       `json:"exists"`
	HasValue    bool       `json:"has_value"`
	LastChanged *time.Time `json:"last_changed,omitempty"`
	// DeletionDate is set when the secret is scheduled for deletion.
	DeletionDate *time.Time `json:"deletion_date,omitempty"`
	SetBy        string     `json:"set_by"`
	Verdict      *verdict   `json:"verdict,omitempty"`

	rotationEnabled bool
	rotationDays    int64
	lastRotated     *time.Time
	// unknown says why the database secret could not be found: it has no
	// name of ours, and only the data stack's output names it.
	unknown string
}

// describeSecret reads a secret's metadata (DescribeSecret), never its value.
func describeSecret(ctx context.Context, sm *secretsmanager.Client, dc *deployconfig.Config, k secretKind) (secretState, error) {
	return describeSecretID(ctx, sm, secretState{Name: k.Name, SecretName: dc.SecretName(k.Name), SetBy: k.SetBy}, dc.SecretName(k.Name))
}

// describeKind is describeSecret for any kind, the database's included:
// RDS names that secret itself (rds!db-<id>), so it is found through the
// data stack's DatabaseSecretArn output.
func describeKind(ctx context.Context, a *awsSession, dc *deployconfig.Config, k secretKind) (secretState, error) {
	if k.Name != kindDatabase {
		return describeSecret(ctx, a.SecretsManager(), dc, k)
	}
	st := secretState{Name: k.Name, SecretName: "managed by RDS", SetBy: k.SetBy}
	stack := dc.Name + "-data"
	s, err := describeStack(ctx, a.CloudFormation(), stack)
	switch {
	case err != nil:
		return st, err
	case s == nil:
		st.unknown = "the " + stack + " stack, whose database RDS keeps it for, is not deployed"
		return st, nil
	}
	arn := stackOutputs(s)[databaseSecretOutput]
	if arn == "" {
		st.unknown = "the " + stack + " stack has no " + databaseSecretOutput + " output: it was deployed by an earlier release; run tetherctl deploy to update it"
		return st, nil
	}
	st.ARN = arn
	return describeSecretID(ctx, a.SecretsManager(), st, arn)
}

// databaseSecretOutput is the data stack's output naming the database
// secret (deploy/cdk/stacks/data.go).
const databaseSecretOutput = "DatabaseSecretArn"

func describeSecretID(ctx context.Context, sm *secretsmanager.Client, st secretState, id string) (secretState, error) {
	out, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	var nf *smtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("reading %s (Secrets Manager DescribeSecret): %s", id, describeAWSError(err))
	}
	st.Exists = true
	st.ARN = aws.ToString(out.ARN)
	if st.Name == kindDatabase {
		st.SecretName = aws.ToString(out.Name)
	}
	st.LastChanged = out.LastChangedDate
	st.DeletionDate = out.DeletedDate
	for _, stages := range out.VersionIdsToStages {
		if slices.Contains(stages, "AWSCURRENT") {
			st.HasValue = true
		}
	}
	st.rotationEnabled = aws.ToBool(out.RotationEnabled)
	if out.RotationRules != nil {
		st.rotationDays = aws.ToInt64(out.RotationRules.AutomaticallyAfterDays)
	}
	st.lastRotated = out.LastRotatedDate
	return st, nil
}

// judgeSecret adds the verdict to st. It reads the current value only for
// the kinds whose value tetherctl can judge (license, ai, agent-identity),
// judges it in memory and keeps nothing; the database password is never
// read.
func judgeSecret(ctx context.Context, sm *secretsmanager.Client, dc *deployconfig.Config, st *secretState, now time.Time) error {
	v, err := secretVerdict(ctx, sm, dc, *st, now)
	if err != nil {
		return err
	}
	st.Verdict = &v
	return nil
}

func secretVerdict(ctx context.Context, sm *secretsmanager.Client, dc *deployconfig.Config, st secretState, now time.Time) (verdict, error) {
	setFix := "tetherctl secrets set " + st.Name
	if st.Name == kindLicense {
		setFix += " --from-file license.json"
	}
	switch {
	case !st.Exists:
		switch st.Name {
		case kindDatabase:
			if st.unknown != "" {
				return fail("tetherctl deploy", "%s", st.unknown), nil
			}
			return fail("check the database's master credentials in the RDS console, then run tetherctl deploy",
				"%s, the data stack's %s, does not exist in account %s, %s", st.ARN, databaseSecretOutput, dc.Account, dc.Region), nil
		case kindLicense, kindAI:
			return fail(fmt.Sprintf("deploy the %s-data stack (it creates the secret), then %s", dc.Name, setFix),
				"%s does not exist in account %s, %s", st.SecretName, dc.Account, dc.Region), nil
		default:
			return fail(fmt.Sprintf("deploy the %s-data stack, which creates it", dc.Name),
				"%s does not exist in account %s, %s", st.SecretName, dc.Account, dc.Region), nil
		}
	case st.DeletionDate != nil:
		return fail("aws secretsmanager restore-secret --secret-id "+st.SecretName,
			"scheduled for deletion on %s", st.DeletionDate.UTC().Format(dateFormat)), nil
	case st.Name == kindDatabase:
		return databaseVerdict(st), nil
	case !st.HasValue && st.Name == kindAgentIdentity:
		return checkAgentIdentity(false, ""), nil
	case !st.HasValue:
		return fail(setFix, "has no value yet"), nil
	}
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(st.SecretName)})
	if err != nil {
		return verdict{}, fmt.Errorf("reading %s's value to check it (Secrets Manager GetSecretValue): %s", st.SecretName, describeAWSError(err))
	}
	value := aws.ToString(out.SecretString)
	if out.SecretString == nil && out.SecretBinary != nil {
		return fail(setFix, "holds binary data; Tether reads this secret as text"), nil
	}
	switch st.Name {
	case kindLicense:
		return checkLicense(dc, []byte(value), now), nil
	case kindAI:
		return checkAIKey(dc, value), nil
	case kindAgentIdentity:
		return checkAgentIdentity(true, value), nil
	}
	return verdict{}, fmt.Errorf("no check for secret kind %q", st.Name)
}

// databaseVerdict judges the database secret from its metadata alone.
func databaseVerdict(st secretState) verdict {
	if !st.HasValue {
		return fail("check the database in the RDS console (its Configuration tab shows the master credentials' secret)",
			"has no value: RDS writes it when it creates the database")
	}
	if !st.rotationEnabled {
		return warn("turn it back on: aws secretsmanager rotate-secret --secret-id "+st.ARN+" --rotation-rules AutomaticallyAfterDays=7",
			"rotation is off (RDS turns it on, every 7 days, when it creates the secret)")
	}
	last := "not yet rotated"
	if st.lastRotated != nil {
		last = "last rotated " + st.lastRotated.UTC().Format(dateFormat)
	}
	return pass("managed by RDS with rotation every %d days (%s); tetherctl never reads it", st.rotationDays, last)
}

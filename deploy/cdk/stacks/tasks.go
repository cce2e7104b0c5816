package stacks

import (
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecr"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsssm"
	"github.com/aws/jsii-runtime-go"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// tasks builds Fargate task definitions in one stack: the cluster stack
// (migrate) and the services stack (api, worker, agent) each have one.
type tasks struct {
	stack awscdk.Stack
	cfg   *deployconfig.Config
	data  *Data
	// logGroups are the stack's task log groups, by family.
	logGroups map[string]awslogs.LogGroup
	// docsvcConfig is the non-secret configuration every docsvc role reads,
	// one SSM parameter per variable under /tether/<name>/config/docsvc/.
	docsvcConfig map[string]awsssm.IStringParameter
	taskDefs     []awsecs.FargateTaskDefinition
	// secretRefs are the data stack's secrets as the containers read them.
	secretRefs map[string]awssecretsmanager.ISecret
}

func newTasks(stack awscdk.Stack, cfg *deployconfig.Config, data *Data) *tasks {
	return &tasks{stack: stack, cfg: cfg, data: data, logGroups: map[string]awslogs.LogGroup{}, secretRefs: map[string]awssecretsmanager.ISecret{}}
}

// newLogGroup creates the log group of one task family, encrypted with the
// deployment's logs key.
func (s *tasks) newLogGroup(family string, key awskms.IKey) awslogs.LogGroup {
	lg := awslogs.NewLogGroup(s.stack, str("Logs-"+family), &awslogs.LogGroupProps{
		Retention:     retention(s.cfg),
		EncryptionKey: key,
		// Logs outlive a replaced stack: they are the audit trail.
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	s.logGroups[family] = lg
	return lg
}

// docsvcConfigValues are docsvc's non-secret settings, by variable name.
// The cluster stack writes them to Parameter Store (newDocsvcConfig); ECS
// injects them as environment variables at task start, so the task
// definitions carry no deployment values and an operator can read the
// effective configuration in one place.
func docsvcConfigValues(cfg *deployconfig.Config, d *Data) map[string]*string {
	values := map[string]*string{
		"DOCSVC_PUBLIC_URL":        str(cfg.PublicURL()),
		"DOCSVC_OIDC_CALLBACK_URL": str(callbackURL(cfg)),
		// The password is not here: docsvc reads it from the rotated
		// database secret itself (DOCSVC_DATABASE_PASSWORD names the secret,
		// not the value), and again whenever PostgreSQL refuses it, so a
		// rotation needs no restart. An ECS-injected value would be fixed
		// for the task's life.
		"DOCSVC_DATABASE_URL": awscdk.Fn_Join(str(""), &[]*string{
			str("postgres://" + dbUser + "@"), d.Database.DbInstanceEndpointAddress(), str(":"),
			d.Database.DbInstanceEndpointPort(), str("/" + dbName + "?sslmode=require"),
		}),
		"DOCSVC_DATABASE_PASSWORD": awscdk.Fn_Join(str(""), &[]*string{d.DatabaseSecret.SecretArn(), str("#password")}),
		"DOCSVC_BLOB_URL":          awscdk.Fn_Join(str(""), &[]*string{str("s3://"), d.Documents.BucketName(), str("/" + documentsPrefix)}),
		"DOCSVC_S3_KMS_KEY_ID":     d.Key.KeyArn(),
		"DOCSVC_QUEUE_URL":         d.Jobs.QueueUrl(),
		"DOCSVC_DLQ_URL":           d.DeadLetter.QueueUrl(),
		// Fargate sets AWS_REGION too; naming it keeps `docsvc config`
		// showing where the value came from.
		"DOCSVC_AWS_REGION":  str(cfg.Region),
		"DOCSVC_AI_PROVIDER": str(cfg.AI.Provider),
		"DOCSVC_EMAIL_FROM":  str(cfg.EmailSender),
		// The vendor's key that verifies the license; the license itself
		// is a secret, injected from tether/<name>/license.
		"DOCSVC_LICENSE_PUBLIC_KEY": str(cfg.License.PublicKey),
	}
	if len(cfg.CORSOrigins) > 0 {
		values["DOCSVC_CORS_ORIGINS"] = str(strings.Join(cfg.CORSOrigins, ","))
	}
	if cfg.AI.Model != "" {
		values["DOCSVC_AI_MODEL"] = str(cfg.AI.Model)
	}
	if cfg.AI.BaseURL != "" {
		values["DOCSVC_AI_BASE_URL"] = str(cfg.AI.BaseURL)
	}
	if cfg.AI.Provider == deployconfig.AIBedrock {
		values["DOCSVC_AI_REGION"] = str(cfg.Region)
	}
	if cfg.Auth.GroupsClaim != "" {
		values["DOCSVC_OIDC_GROUPS_CLAIM"] = str(cfg.Auth.GroupsClaim)
		values["DOCSVC_OIDC_SHARED_GROUPS"] = str(strings.Join(cfg.Auth.SharedGroups, ","))
	}
	return values
}

// docsvcParameter is where one docsvc setting lives in Parameter Store.
func docsvcParameter(cfg *deployconfig.Config, name string) string {
	return cfg.ParameterPath() + "/docsvc/" + name
}

// newDocsvcConfig writes docsvc's settings to Parameter Store (the cluster
// stack, so they exist before the first migrate task runs). Every docsvc
// task in this stack reads them.
func (s *tasks) newDocsvcConfig() {
	values := docsvcConfigValues(s.cfg, s.data)
	s.docsvcConfig = map[string]awsssm.IStringParameter{}
	for _, name := range sortedKeys(values) {
		s.docsvcConfig[name] = awsssm.NewStringParameter(s.stack, str("Config-"+name), &awsssm.StringParameterProps{
			ParameterName: str(docsvcParameter(s.cfg, name)),
			StringValue:   values[name],
			Tier:          awsssm.ParameterTier_STANDARD,
		})
	}
	s.readAuthConfig()
}

// readDocsvcConfig reads, by name, the settings the cluster stack writes.
// By name, not as imports: a setting one configuration drops (an AI model,
// CORS origins) would otherwise be an export still in use.
func (s *tasks) readDocsvcConfig() {
	s.docsvcConfig = map[string]awsssm.IStringParameter{}
	for _, name := range sortedKeys(docsvcConfigValues(s.cfg, s.data)) {
		s.docsvcConfig[name] = awsssm.StringParameter_FromStringParameterName(s.stack, str("Config-"+name), str(docsvcParameter(s.cfg, name)))
	}
	s.readAuthConfig()
}

// readAuthConfig adds the token settings, the data stack's, read by name
// (AuthParameter).
func (s *tasks) readAuthConfig() {
	for _, name := range []string{"DOCSVC_OIDC_ISSUER", "DOCSVC_OIDC_AUDIENCE"} {
		s.docsvcConfig[name] = awsssm.StringParameter_FromStringParameterName(s.stack, str("Auth-"+name), str(AuthParameter(s.cfg, name)))
	}
}

// taskDefinition builds a Fargate task definition with one read-only
// container whose only writable path is an ephemeral /tmp.
//
// digest is the image's digest (sha256:<64 hex>) as the template resolves it.
func (s *tasks) taskDefinition(family string, role awsiam.Role, repo awsecr.IRepository, digest *string,
	cpu, memory float64, command []string, secrets map[string]taskSecret, env map[string]*string, port float64,
) awsecs.FargateTaskDefinition {
	td := awsecs.NewFargateTaskDefinition(s.stack, str("Task-"+family), &awsecs.FargateTaskDefinitionProps{
		Family:         str(serviceName(s.cfg, family)),
		Cpu:            num(cpu),
		MemoryLimitMiB: num(memory),
		TaskRole:       role,
		RuntimePlatform: &awsecs.RuntimePlatform{
			OperatingSystemFamily: awsecs.OperatingSystemFamily_LINUX(),
			CpuArchitecture:       awsecs.CpuArchitecture_X86_64(),
		},
	})
	s.taskDefs = append(s.taskDefs, td)
	td.AddVolume(&awsecs.Volume{Name: str("tmp")})
	values := map[string]awsecs.Secret{}
	for name, sec := range secrets {
		values[name] = sec.value
	}
	opts := &awsecs.ContainerDefinitionOptions{
		Image:                  awsecs.ContainerImage_FromRegistry(repo.RepositoryUriForDigest(digest), nil),
		Secrets:                &values,
		ReadonlyRootFilesystem: jsii.Bool(true),
		Logging: awsecs.LogDriver_AwsLogs(&awsecs.AwsLogDriverProps{
			LogGroup:     s.logGroups[family],
			StreamPrefix: str(family),
		}),
	}
	if len(command) > 0 {
		opts.Command = jsii.Strings(command...)
	}
	if len(env) > 0 {
		opts.Environment = &env
	}
	if port > 0 {
		opts.PortMappings = &[]*awsecs.PortMapping{{ContainerPort: num(port)}}
	}
	c := td.AddContainer(str(family), opts)
	c.AddMountPoints(&awsecs.MountPoint{ContainerPath: str("/tmp"), SourceVolume: str("tmp"), ReadOnly: jsii.Bool(false)})
	// FromRegistry grants nothing; the execution role pulls from exactly
	// this repository.
	repo.GrantPull(td.ObtainExecutionRole())
	grantSecretKeys(td.ObtainExecutionRole(), s.cfg.Region, secrets)
	suppress(td, "AwsSolutions-IAM5", "ecr:GetAuthorizationToken has no resource-level permissions; the execution role's pulls are limited to one repository.", "Resource::*")
	if len(env) > 0 {
		suppress(td, "AwsSolutions-ECS2", "Only non-secret values are plain environment (docsvc's listen address; the agent's settings, public keys and TUF root); docsvc's deployment config comes from Parameter Store and every secret from Secrets Manager.")
	}
	return td
}

func (s *tasks) taskRole(id, purpose string, name *string) awsiam.Role {
	return awsiam.NewRole(s.stack, str(id), &awsiam.RoleProps{
		RoleName:    name,
		AssumedBy:   awsiam.NewServicePrincipal(str("ecs-tasks.amazonaws.com"), nil),
		Description: str("Tether " + s.cfg.Name + ": " + purpose),
	})
}

// allow adds one identity-policy statement to role.
func allow(role awsiam.Role, actions []string, resources ...*string) {
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings(actions...),
		Resources: &resources,
	}))
}

// taskSecret is one secret a container is given at start. For a Secrets
// Manager secret it also names the KMS key the secret is encrypted with and
// the secret's ARN, so the execution role can be allowed to decrypt exactly
// that secret.
type taskSecret struct {
	value awsecs.Secret
	key   awskms.IKey // nil for an SSM parameter (AWS-managed key)
	arn   *string
}

func ssmSecret(p awsssm.IStringParameter) taskSecret {
	return taskSecret{value: awsecs.Secret_FromSsmParameter(p)}
}

// secretsManager gives a container the data stack's secret of one kind (or
// one JSON field of it). The container reads it through an import that
// carries no key: CDK's own key grant for a secret in another stack would
// write this stack's role into the data stack's key policy, a dependency
// cycle. grantSecretKeys adds the narrower grant instead.
func (s *tasks) secretsManager(kind string, secret awssecretsmanager.ISecret, field *string) taskSecret {
	ref, ok := s.secretRefs[kind]
	if !ok {
		ref = awssecretsmanager.Secret_FromSecretAttributes(s.stack, str("Secret-"+kind), &awssecretsmanager.SecretAttributes{
			SecretCompleteArn: secret.SecretArn(),
		})
		s.secretRefs[kind] = ref
	}
	return taskSecret{value: awsecs.Secret_FromSecretsManager(ref, field), key: s.data.SecretKey(kind), arn: secret.SecretArn()}
}

// grantSecretKeys lets role decrypt, through Secrets Manager only, the
// secrets it is given, and no other secret under the same keys: Secrets
// Manager puts the secret's ARN in the encryption context.
func grantSecretKeys(role awsiam.IRole, region string, secrets map[string]taskSecret) {
	byKey := map[awskms.IKey][]*string{}
	var keys []awskms.IKey
	for _, name := range sortedKeys(secrets) {
		sec := secrets[name]
		if sec.key == nil {
			continue
		}
		if _, seen := byKey[sec.key]; !seen {
			keys = append(keys, sec.key)
		}
		byKey[sec.key] = append(byKey[sec.key], sec.arn)
	}
	for _, key := range keys {
		arns := byKey[key]
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings("kms:Decrypt"),
			Resources: &[]*string{key.KeyArn()},
			Conditions: &map[string]any{"StringEquals": map[string]any{
				"kms:ViaService":                  secretsManagerService(region),
				"kms:EncryptionContext:SecretARN": arns,
			}},
		}))
	}
}

// secretsManagerService is Secrets Manager's endpoint in the stacks' region,
// as KMS names it in kms:ViaService.
func secretsManagerService(region string) string {
	return "secretsmanager." + region + "." + *awscdk.Aws_URL_SUFFIX()
}

// grantDatabasePassword lets a docsvc task role read the database secret
// (DOCSVC_DATABASE_PASSWORD), which docsvc does at start and after a
// rotation, and decrypt it through Secrets Manager only.
func (s *tasks) grantDatabasePassword(role awsiam.Role) {
	secret := s.data.DatabaseSecret
	allow(role, []string{"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}, secret.SecretArn())
	grantSecretKeys(role, s.cfg.Region, map[string]taskSecret{
		"DOCSVC_DATABASE_PASSWORD": {key: s.data.SecretKey(secretDatabase), arn: secret.SecretArn()},
	})
}

// docsvcSecrets is what every docsvc task (api, worker, migrate) is given:
// the whole docsvc configuration and the AI key (the database password it
// reads itself: grantDatabasePassword).
// docsvc validates its entire configuration whatever the command, so the
// api and migrate must see the AI settings (and key) although only the
// worker calls the provider; a narrower set makes them exit at start.
// Reading a value grants no access: the task roles still decide what each
// task can touch. The license is the exception: docsvc wants the license
// and its public key together or neither, and only the api enforces it.
func (s *tasks) docsvcSecrets() map[string]taskSecret {
	m := map[string]taskSecret{}
	for v, p := range s.docsvcConfig {
		if v != "DOCSVC_LICENSE_PUBLIC_KEY" {
			m[v] = ssmSecret(p)
		}
	}
	if s.cfg.WorkerNeedsInternet() { // a key-based provider
		m["DOCSVC_AI_API_KEY"] = s.secretsManager(secretAI, s.data.Secrets[secretAI], nil)
	}
	return m
}

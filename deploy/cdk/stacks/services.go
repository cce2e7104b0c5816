package stacks

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapplicationautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecr"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53targets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsservicediscovery"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsssm"
	"github.com/aws/jsii-runtime-go"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// Services is the stateless half: the ECS cluster and its services, the
// load balancer, configuration parameters, alarms and the dashboard.
type Services struct {
	Stack        awscdk.Stack
	Cluster      awsecs.Cluster
	LoadBalancer awselasticloadbalancingv2.ApplicationLoadBalancer
	API          awsecs.FargateService
	Worker       awsecs.FargateService
	Agent        awsecs.FargateService
	Migrate      awsecs.FargateTaskDefinition
	// Task roles, one per container family, each with only what it needs.
	APIRole, WorkerRole, MigrateRole, AgentRole awsiam.Role
	// UpgradeRole is what CloudFormation assumes when the agent applies an
	// upgrade; nil unless plane.automatic_upgrades is on.
	UpgradeRole awsiam.Role
	// Image digest parameters: upgrades change these and nothing else.
	DocsvcDigest, MigrateDigest, AgentDigest awscdk.CfnParameter
	LogGroups                                map[string]awslogs.LogGroup
}

// apiPort is where docsvc api listens inside its task; internalPort is its
// second listener (DOCSVC_INTERNAL_ADDR) for /readyz and /metrics, which only
// the agent may reach and the load balancer never forwards to.
const (
	apiPort      = 8080
	internalPort = 9090
)

// agentDataDir is the agent's TETHER_DATA_DIR: its EFS access point (see
// Data.newAgentState), so the egress ledger outlives any one task.
const agentDataDir = "/var/lib/tether-agent"

// internalPaths are the api's paths that must not be served through the
// internet-facing load balancer: /readyz and /metrics report exact document
// counts and queue depths. The agent reads them over the private namespace.
var internalPaths = []string{"/readyz", "/metrics", "/metrics/*"}

// namespace is the cluster's private DNS namespace, derived from the
// deployment name so two deployments in one account never share it.
func namespace(cfg *deployconfig.Config) string { return cfg.Name + ".tether.internal" }

// internalAPIURL is the api's base URL inside the VPC, through Cloud Map.
func internalAPIURL(cfg *deployconfig.Config) string {
	u := url.URL{Scheme: "http", Host: "api." + namespace(cfg) + ":" + strconv.Itoa(internalPort)}
	return u.String()
}

type services struct {
	*Services
	cfg    *deployconfig.Config
	net    *Network
	data   *Data
	images *Images
	// docsvcConfig is the non-secret configuration every docsvc role reads,
	// one SSM parameter per variable under /tether/<name>/config/docsvc/.
	docsvcConfig map[string]awsssm.IStringParameter
	taskDefs     []awsecs.FargateTaskDefinition
	// secretRefs are the data stack's secrets as the containers read them.
	secretRefs map[string]awssecretsmanager.ISecret
}

func newServices(app awscdk.App, cfg *deployconfig.Config, net *Network, data *Data, images *Images) *Services {
	stack := newStack(app, cfg, "services", "Tether "+cfg.Name+": ECS services, load balancer, configuration, alarms (stateless)", false)
	s := &services{Services: &Services{Stack: stack, LogGroups: map[string]awslogs.LogGroup{}}, cfg: cfg, net: net, data: data, images: images,
		secretRefs: map[string]awssecretsmanager.ISecret{}}

	s.DocsvcDigest = digestParameter(stack, "DocsvcImageDigest", "docsvc image digest for the api and worker services", cfg.Images.DocsvcDigest)
	s.MigrateDigest = digestParameter(stack, "MigrateImageDigest", "docsvc image digest for the migrate task; upgrades move it first, run the task, then move DocsvcImageDigest", cfg.Images.DocsvcDigest)
	s.AgentDigest = digestParameter(stack, "AgentImageDigest", "tether-agent image digest", cfg.Images.AgentDigest)

	s.Cluster = awsecs.NewCluster(stack, str("Cluster"), &awsecs.ClusterProps{
		ClusterName:         str(clusterName(cfg)),
		Vpc:                 net.Vpc,
		ContainerInsightsV2: awsecs.ContainerInsights_ENABLED,
		// A private namespace so the agent reaches the api without going
		// through the public load balancer (which hides /readyz and /metrics).
		DefaultCloudMapNamespace: &awsecs.CloudMapNamespaceOptions{
			Name: str(namespace(cfg)),
			Type: awsservicediscovery.NamespaceType_DNS_PRIVATE,
			Vpc:  net.Vpc,
		},
	})
	for _, family := range []string{"api", "worker", "migrate", "agent"} {
		s.LogGroups[family] = awslogs.NewLogGroup(stack, str("Logs-"+family), &awslogs.LogGroupProps{
			Retention:     retention(cfg),
			EncryptionKey: net.LogsKey,
			// Logs outlive a replaced services stack: they are the audit trail.
			RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
		})
	}
	s.docsvcConfig = s.newDocsvcConfig()

	s.newAPI()
	s.newWorker()
	s.newMigrate()
	s.newAgent()
	s.newObservability()
	s.newOutputs()
	// cfn-lint W6001 flags outputs that re-export another stack's export.
	ignoreLint(stack, map[string]string{
		"W6001": "MigrateSubnets and MigrateSecurityGroupId repeat the network stack's values on purpose: the operator's migrate run-task (NextSteps, docs/operator-guide.md) reads all its inputs from this stack's outputs.",
	})
	if s.UpgradeRole != nil {
		// Registering a new task definition revision passes its roles.
		var roles []*string
		for _, td := range s.taskDefs {
			roles = append(roles, td.TaskRole().RoleArn(), td.ObtainExecutionRole().RoleArn())
		}
		s.UpgradeRole.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:    jsii.Strings("iam:PassRole"),
			Resources:  &roles,
			Conditions: &map[string]any{"StringEquals": map[string]any{"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
		}))
	}
	return s.Services
}

func clusterName(cfg *deployconfig.Config) string { return "tether-" + cfg.Name }

func serviceName(cfg *deployconfig.Config, family string) string {
	return "tether-" + cfg.Name + "-" + family
}

func digestParameter(stack awscdk.Stack, id, description, def string) awscdk.CfnParameter {
	props := &awscdk.CfnParameterProps{
		Type:                  str("String"),
		Description:           str(description),
		AllowedPattern:        str("^sha256:[0-9a-f]{64}$"),
		ConstraintDescription: str("an image digest, sha256:<64 hex>"),
	}
	if def != "" {
		props.Default = str(def)
	}
	return awscdk.NewCfnParameter(stack, str(id), props)
}

// newDocsvcConfig writes docsvc's non-secret settings to Parameter Store.
// ECS injects them as environment variables at task start, so the task
// definitions carry no deployment values and an operator can read the
// effective configuration in one place.
func (s *services) newDocsvcConfig() map[string]awsssm.IStringParameter {
	cfg, d := s.cfg, s.data
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
		"DOCSVC_DATABASE_PASSWORD": awscdk.Fn_Join(str(""), &[]*string{d.Database.Secret().SecretArn(), str("#password")}),
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
	params := map[string]awsssm.IStringParameter{}
	for _, name := range sortedKeys(values) {
		params[name] = awsssm.NewStringParameter(s.Stack, str("Config-"+name), &awsssm.StringParameterProps{
			ParameterName: str(cfg.ParameterPath() + "/docsvc/" + name),
			StringValue:   values[name],
			Tier:          awsssm.ParameterTier_STANDARD,
		})
	}
	// The token settings are the data stack's, read by name (AuthParameter).
	for _, name := range []string{"DOCSVC_OIDC_ISSUER", "DOCSVC_OIDC_AUDIENCE"} {
		params[name] = awsssm.StringParameter_FromStringParameterName(s.Stack, str("Auth-"+name), str(AuthParameter(cfg, name)))
	}
	return params
}

// taskDefinition builds a Fargate task definition with one read-only
// container whose only writable path is an ephemeral /tmp.
func (s *services) taskDefinition(family string, role awsiam.Role, repo awsecr.IRepository, digest awscdk.CfnParameter,
	cpu, memory float64, command []string, secrets map[string]taskSecret, env map[string]*string, port float64,
) awsecs.FargateTaskDefinition {
	td := awsecs.NewFargateTaskDefinition(s.Stack, str("Task-"+family), &awsecs.FargateTaskDefinitionProps{
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
		Image:                  awsecs.ContainerImage_FromRegistry(repo.RepositoryUriForDigest(digest.ValueAsString()), nil),
		Command:                jsii.Strings(command...),
		Secrets:                &values,
		ReadonlyRootFilesystem: jsii.Bool(true),
		Logging: awsecs.LogDriver_AwsLogs(&awsecs.AwsLogDriverProps{
			LogGroup:     s.LogGroups[family],
			StreamPrefix: str(family),
		}),
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

func (s *services) taskRole(id, purpose string, name *string) awsiam.Role {
	return awsiam.NewRole(s.Stack, str(id), &awsiam.RoleProps{
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
func (s *services) secretsManager(kind string, secret awssecretsmanager.ISecret, field *string) taskSecret {
	ref, ok := s.secretRefs[kind]
	if !ok {
		ref = awssecretsmanager.Secret_FromSecretAttributes(s.Stack, str("Secret-"+kind), &awssecretsmanager.SecretAttributes{
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
func (s *services) grantDatabasePassword(role awsiam.Role) {
	secret := s.data.Database.Secret()
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
func (s *services) docsvcSecrets() map[string]taskSecret {
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

func (s *services) circuitBreaker() *awsecs.DeploymentCircuitBreaker {
	return &awsecs.DeploymentCircuitBreaker{Enable: jsii.Bool(true), Rollback: jsii.Bool(true)}
}

func (s *services) deploymentAlarm(family string) *awsecs.DeploymentAlarmConfig {
	return &awsecs.DeploymentAlarmConfig{
		AlarmNames: jsii.Strings(alarmName(s.cfg, deployAlarm[family])),
		Behavior:   awsecs.AlarmBehavior_ROLLBACK_ON_ALARM,
	}
}

// deployAlarm names, per service, the alarm that rolls a deployment back.
var deployAlarm = map[string]string{"api": "api-5xx-rate", "worker": "worker-errors", "agent": "agent-errors"}

func alarmName(cfg *deployconfig.Config, short string) string {
	return "tether-" + cfg.Name + "-" + short
}

func (s *services) newAPI() {
	cfg, d := s.cfg, s.data
	s.APIRole = s.taskRole("ApiTaskRole", "docsvc api task: store documents, enqueue jobs", nil)
	s.grantDatabasePassword(s.APIRole)
	allow(s.APIRole, []string{"s3:PutObject", "s3:GetObject", "s3:DeleteObject"}, d.Documents.ArnForObjects(str(documentsPrefix+"/*")))
	allow(s.APIRole, []string{"kms:GenerateDataKey", "kms:Decrypt"}, d.Key.KeyArn())
	allow(s.APIRole, []string{"sqs:SendMessage", "sqs:GetQueueAttributes"}, d.Jobs.QueueArn())
	allow(s.APIRole, []string{"sqs:GetQueueAttributes"}, d.DeadLetter.QueueArn())
	suppress(s.APIRole, "AwsSolutions-IAM5", "Objects are addressed by document ID under the documents/ prefix; the wildcard is that prefix and nothing wider.",
		resourceEnding("/"+documentsPrefix+"/*"))

	// The api enforces the license (uploads stop past expiry plus grace).
	apiSecrets := s.docsvcSecrets()
	apiSecrets["DOCSVC_LICENSE"] = s.secretsManager(secretLicense, d.Secrets[secretLicense], nil)
	apiSecrets["DOCSVC_LICENSE_PUBLIC_KEY"] = ssmSecret(s.docsvcConfig["DOCSVC_LICENSE_PUBLIC_KEY"])
	td := s.taskDefinition("api", s.APIRole, s.images.Docsvc, s.DocsvcDigest, 512, 1024, []string{"api"},
		apiSecrets, map[string]*string{
			"DOCSVC_ADDR":          str(fmt.Sprintf(":%d", apiPort)),
			"DOCSVC_INTERNAL_ADDR": str(fmt.Sprintf(":%d", internalPort)),
		}, apiPort)
	sg := s.net.Groups["api"]
	s.API = awsecs.NewFargateService(s.Stack, str("Api"), &awsecs.FargateServiceProps{
		ServiceName:            str(serviceName(cfg, "api")),
		Cluster:                s.Cluster,
		TaskDefinition:         td,
		DesiredCount:           num(float64(cfg.Sizing.APITasks)),
		MinHealthyPercent:      num(100),
		MaxHealthyPercent:      num(200),
		SecurityGroups:         &[]awsec2.ISecurityGroup{sg},
		VpcSubnets:             taskSubnets(true), // fetches the identity provider's signing keys
		CircuitBreaker:         s.circuitBreaker(),
		DeploymentAlarms:       s.deploymentAlarm("api"),
		HealthCheckGracePeriod: awscdk.Duration_Seconds(num(60)),
		PropagateTags:          awsecs.PropagatedTagSource_SERVICE,
		// api.<namespace>: how the agent reaches /readyz and /metrics.
		CloudMapOptions: &awsecs.CloudMapOptions{
			Name:          str("api"),
			DnsRecordType: awsservicediscovery.DnsRecordType_A,
			// Short, so a replaced task stops being resolved soon.
			DnsTtl: awscdk.Duration_Seconds(num(10)),
		},
	})

	alb := awselasticloadbalancingv2.NewApplicationLoadBalancer(s.Stack, str("LoadBalancer"), &awselasticloadbalancingv2.ApplicationLoadBalancerProps{
		Vpc:                     s.net.Vpc,
		InternetFacing:          jsii.Bool(true),
		SecurityGroup:           s.net.Groups["loadbalancer"],
		VpcSubnets:              &awsec2.SubnetSelection{SubnetGroupName: str(subnetPublic)},
		DropInvalidHeaderFields: jsii.Bool(true),
	})
	alb.LogAccessLogs(d.AccessLogs, str("alb"))
	s.LoadBalancer = alb

	var cert awscertificatemanager.ICertificate
	if z := cfg.Domain.HostedZone; z != nil {
		zone := awsroute53.HostedZone_FromHostedZoneAttributes(s.Stack, str("Zone"), &awsroute53.HostedZoneAttributes{
			HostedZoneId: str(z.ID), ZoneName: str(z.Name),
		})
		cert = awscertificatemanager.NewCertificate(s.Stack, str("Certificate"), &awscertificatemanager.CertificateProps{
			DomainName: str(cfg.Domain.Name),
			Validation: awscertificatemanager.CertificateValidation_FromDns(zone),
		})
		awsroute53.NewARecord(s.Stack, str("Alias"), &awsroute53.ARecordProps{
			Zone:       zone,
			RecordName: str(cfg.Domain.Name + "."),
			Target:     awsroute53.RecordTarget_FromAlias(awsroute53targets.NewLoadBalancerTarget(alb, nil)),
		})
	} else {
		cert = awscertificatemanager.Certificate_FromCertificateArn(s.Stack, str("Certificate"), str(cfg.Domain.CertificateARN))
	}
	https := alb.AddListener(str("Https"), &awselasticloadbalancingv2.BaseApplicationListenerProps{
		Port:         num(443),
		Protocol:     awselasticloadbalancingv2.ApplicationProtocol_HTTPS,
		Certificates: &[]awselasticloadbalancingv2.IListenerCertificate{awselasticloadbalancingv2.ListenerCertificate_FromCertificateManager(cert)},
		// TLS 1.2 and 1.3 only.
		SslPolicy: awselasticloadbalancingv2.SslPolicy_RECOMMENDED_TLS,
		Open:      jsii.Bool(false),
	})
	// The target group is the stack's, not the listener's child: the service
	// then waits for the listener without also naming, in DependsOn, the
	// target group it already references.
	targets := awselasticloadbalancingv2.NewApplicationTargetGroup(s.Stack, str("ApiTargets"), &awselasticloadbalancingv2.ApplicationTargetGroupProps{
		Vpc:        s.net.Vpc,
		Port:       num(apiPort),
		Protocol:   awselasticloadbalancingv2.ApplicationProtocol_HTTP,
		TargetType: awselasticloadbalancingv2.TargetType_IP,
		Targets:    &[]awselasticloadbalancingv2.IApplicationLoadBalancerTarget{s.API},
		HealthCheck: &awselasticloadbalancingv2.HealthCheck{
			// Liveness, not /readyz: a database blip must not drain every task.
			Path:             str("/healthz"),
			HealthyHttpCodes: str("200"),
		},
		DeregistrationDelay: awscdk.Duration_Seconds(num(30)),
	})
	https.AddTargetGroups(str("Api"), &awselasticloadbalancingv2.AddApplicationTargetGroupsProps{
		TargetGroups: &[]awselasticloadbalancingv2.IApplicationTargetGroup{targets},
	})
	// Evaluated before the default forward: the internal paths answer 404
	// from the load balancer itself and never reach a task. The ALB matches
	// the path as sent (case-sensitive, not percent-decoded).
	awselasticloadbalancingv2.NewApplicationListenerRule(s.Stack, str("HideInternalPaths"), &awselasticloadbalancingv2.ApplicationListenerRuleProps{
		Listener:   https,
		Priority:   num(1),
		Conditions: &[]awselasticloadbalancingv2.ListenerCondition{awselasticloadbalancingv2.ListenerCondition_PathPatterns(jsii.Strings(internalPaths...))},
		Action: awselasticloadbalancingv2.ListenerAction_FixedResponse(num(404), &awselasticloadbalancingv2.FixedResponseOptions{
			ContentType: str("text/plain"),
			MessageBody: str("not found"),
		}),
	})
	alb.AddRedirect(&awselasticloadbalancingv2.ApplicationLoadBalancerRedirectConfig{
		SourcePort: num(80), SourceProtocol: awselasticloadbalancingv2.ApplicationProtocol_HTTP,
		TargetPort: num(443), TargetProtocol: awselasticloadbalancingv2.ApplicationProtocol_HTTPS,
		Open: jsii.Bool(false),
	})
}

func (s *services) newWorker() {
	cfg, d := s.cfg, s.data
	s.WorkerRole = s.taskRole("WorkerTaskRole", "docsvc worker task: read documents, take jobs, analyze", nil)
	s.grantDatabasePassword(s.WorkerRole)
	allow(s.WorkerRole, []string{"s3:GetObject"}, d.Documents.ArnForObjects(str(documentsPrefix+"/*")))
	allow(s.WorkerRole, []string{"kms:Decrypt"}, d.Key.KeyArn())
	allow(s.WorkerRole, []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"}, d.Jobs.QueueArn())
	allow(s.WorkerRole, []string{"sqs:GetQueueAttributes"}, d.DeadLetter.QueueArn())
	// Scale-in protection: a worker marks itself protected while a job runs
	// (ECS task protection endpoint), so scaling in never kills a busy task.
	taskARNs := "arn:" + *awscdk.Aws_PARTITION() + ":ecs:" + cfg.Region + ":" + cfg.Account + ":task/" + clusterName(cfg) + "/*"
	allow(s.WorkerRole, []string{"ecs:UpdateTaskProtection", "ecs:GetTaskProtection"}, str(taskARNs))
	appliesTo := []any{
		resourceEnding("/" + documentsPrefix + "/*"),
		"Resource::arn:<AWS::Partition>:ecs:" + cfg.Region + ":" + cfg.Account + ":task/" + clusterName(cfg) + "/*",
	}
	if cfg.AI.Provider == deployconfig.AIBedrock {
		// The model, or the cross-region inference profile of that name.
		allow(s.WorkerRole, []string{"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"},
			str("arn:"+*awscdk.Aws_PARTITION()+":bedrock:"+cfg.Region+"::foundation-model/"+cfg.AI.Model),
			str("arn:"+*awscdk.Aws_PARTITION()+":bedrock:"+cfg.Region+":"+cfg.Account+":inference-profile/"+cfg.AI.Model))
	}
	suppress(s.WorkerRole, "AwsSolutions-IAM5", "The wildcards are the documents/ object prefix and this cluster's own tasks (a worker protects itself, and its task ARN is not known before it starts).", appliesTo...)

	td := s.taskDefinition("worker", s.WorkerRole, s.images.Docsvc, s.DocsvcDigest, 1024, 2048, []string{"worker"}, s.docsvcSecrets(), nil, 0)
	sg := s.net.Groups["worker"]
	s.Worker = awsecs.NewFargateService(s.Stack, str("Worker"), &awsecs.FargateServiceProps{
		ServiceName:       str(serviceName(cfg, "worker")),
		Cluster:           s.Cluster,
		TaskDefinition:    td,
		MinHealthyPercent: num(100),
		MaxHealthyPercent: num(200),
		SecurityGroups:    &[]awsec2.ISecurityGroup{sg},
		VpcSubnets:        taskSubnets(cfg.WorkerNeedsInternet()),
		CircuitBreaker:    s.circuitBreaker(),
		DeploymentAlarms:  s.deploymentAlarm("worker"),
		PropagateTags:     awsecs.PropagatedTagSource_SERVICE,
	})

	// Scale on backlog: messages waiting plus messages being worked on. Counting
	// in-flight messages keeps capacity while jobs run, so a queue that looks
	// empty because every message is being processed does not scale in.
	backlog := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: str("visible + inflight"),
		Label:      str("jobs waiting or in flight"),
		UsingMetrics: &map[string]awscloudwatch.IMetric{
			"visible":  d.Jobs.MetricApproximateNumberOfMessagesVisible(metricOpts("Maximum", 1)),
			"inflight": d.Jobs.MetricApproximateNumberOfMessagesNotVisible(metricOpts("Maximum", 1)),
		},
		Period: awscdk.Duration_Minutes(num(1)),
	})
	scaling := s.Worker.AutoScaleTaskCount(&awsapplicationautoscaling.EnableScalingProps{
		MinCapacity: num(float64(cfg.Sizing.WorkerMin)),
		MaxCapacity: num(float64(cfg.Sizing.WorkerMax)),
	})
	scaling.ScaleOnMetric(str("Backlog"), &awsapplicationautoscaling.BasicStepScalingPolicyProps{
		Metric:         backlog,
		AdjustmentType: awsapplicationautoscaling.AdjustmentType_CHANGE_IN_CAPACITY,
		ScalingSteps: &[]*awsapplicationautoscaling.ScalingInterval{
			{Upper: num(0), Change: num(-1)},
			{Lower: num(1), Change: num(1)},
			{Lower: num(50), Change: num(3)},
			{Lower: num(500), Change: num(10)},
		},
		Cooldown: awscdk.Duration_Minutes(num(2)),
	})
}

func (s *services) newMigrate() {
	s.MigrateRole = s.taskRole("MigrateTaskRole", "docsvc migrate task: schema changes and the database password only", nil)
	s.grantDatabasePassword(s.MigrateRole)
	td := s.taskDefinition("migrate", s.MigrateRole, s.images.Docsvc, s.MigrateDigest, 256, 512, []string{"migrate"},
		s.docsvcSecrets(), nil, 0)
	sg := s.net.Groups["migrate"]
	s.Migrate = td
	awscdk.NewCfnOutput(s.Stack, str("MigrateTaskDefinitionArn"), &awscdk.CfnOutputProps{Value: td.TaskDefinitionArn()})
	awscdk.NewCfnOutput(s.Stack, str("MigrateSecurityGroupId"), &awscdk.CfnOutputProps{Value: sg.SecurityGroupId()})
	awscdk.NewCfnOutput(s.Stack, str("MigrateSubnets"), &awscdk.CfnOutputProps{
		Value: awscdk.Fn_Join(str(","), s.net.Vpc.SelectSubnets(taskSubnets(false)).SubnetIds),
	})
}

// agentEnvironment is the agent's whole configuration, exactly the
// variables tether-agent reads (internal/agent/config.go). None is secret:
// the identity secret is named by ARN, not read here, and the license is
// injected separately from Secrets Manager as TETHER_LICENSE.
func (s *services) agentEnvironment(identityARN *string) map[string]*string {
	cfg := s.cfg
	env := map[string]*string{
		"TETHER_DATA_DIR":              str(agentDataDir),
		"TETHER_CHANNEL":               str(cfg.Plane.Channel),
		"TETHER_LICENSE_PUBLIC_KEY":    str(cfg.License.PublicKey),
		"TETHER_TRUSTED_ROOT":          str(cfg.Plane.TrustedRoot),
		"TETHER_DOCSVC_URL":            str(internalAPIURL(cfg)),
		"TETHER_AGENT_IDENTITY_SECRET": identityARN,
	}
	if cfg.Plane.URL != "" {
		env["TETHER_PLANE_URL"] = str(cfg.Plane.URL)
	}
	return env
}

func (s *services) newAgent() {
	cfg, d := s.cfg, s.data
	partition := *awscdk.Aws_PARTITION()
	s.AgentRole = s.taskRole("AgentTaskRole", "tether-agent: its own identity secret, health reads, and (if enabled) image upgrades. No access to customer data.", str(cfg.AgentRoleName()))
	r := s.AgentRole

	// The agent reads its key from this secret and, at first start, puts a
	// new one there: nothing on any other secret. The license reaches it
	// through the execution role (an ECS secret), not this role.
	identity := d.Secrets[secretAgentIdentity]
	allow(r, []string{"secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:DescribeSecret"}, identity.SecretArn())
	// Secrets Manager decrypts and encrypts that secret with the agent-secrets
	// key on the agent's behalf; the encryption context names the secret, so
	// the grant covers this one secret and no other under the key.
	r.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("kms:Decrypt", "kms:GenerateDataKey"),
		Resources: &[]*string{d.AgentSecretsKey.KeyArn()},
		Conditions: &map[string]any{"StringEquals": map[string]any{
			"kms:ViaService":                  secretsManagerService(cfg.Region),
			"kms:EncryptionContext:SecretARN": identity.SecretArn(),
		}},
	}))
	// Health: the deployment's own services, stacks and alarms. The agent
	// does not read these yet (it reports docsvc's /readyz only); the grants
	// are here so that the health reads it is to gain need no IAM change.
	allow(r, []string{"ecs:DescribeServices"}, str("arn:"+partition+":ecs:"+cfg.Region+":"+cfg.Account+":service/"+clusterName(cfg)+"/*"))
	allow(r, []string{"cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents"}, str("arn:"+partition+":cloudformation:"+cfg.Region+":"+cfg.Account+":stack/"+cfg.Name+"-*/*"))
	allow(r, []string{"cloudwatch:DescribeAlarms"}, str("arn:"+partition+":cloudwatch:"+cfg.Region+":"+cfg.Account+":alarm:tether-"+cfg.Name+"-*"))
	allow(r, []string{"cloudwatch:GetMetricData"}, str("*"))
	appliesTo := []any{
		"Resource::arn:<AWS::Partition>:ecs:" + cfg.Region + ":" + cfg.Account + ":service/" + clusterName(cfg) + "/*",
		"Resource::arn:<AWS::Partition>:cloudformation:" + cfg.Region + ":" + cfg.Account + ":stack/" + cfg.Name + "-*/*",
		"Resource::arn:<AWS::Partition>:cloudwatch:" + cfg.Region + ":" + cfg.Account + ":alarm:tether-" + cfg.Name + "-*",
		"Resource::*",
	}
	if cfg.Plane.AutomaticUpgrades {
		appliesTo = append(appliesTo, s.newUpgradeRole()...)
	}
	suppress(r, "AwsSolutions-IAM5", "Wildcards are scoped to this deployment's own names (its cluster services, stacks and alarms); cloudwatch:GetMetricData has no resource-level permissions and returns metrics only, never data.", appliesTo...)

	// The license is the document itself, which the agent accepts in
	// TETHER_LICENSE (environment only: it carries an activation token).
	secrets := map[string]taskSecret{
		"TETHER_LICENSE": s.secretsManager(secretLicense, d.Secrets[secretLicense], nil),
	}
	td := s.taskDefinition("agent", r, s.images.Agent, s.AgentDigest, 256, 512, []string{"run"}, secrets,
		s.agentEnvironment(identity.SecretArn()), 0)
	// The agent's data dir (identity cache, egress ledger, TUF metadata,
	// diagnostics) is its EFS access point: TLS in transit, IAM-authorized,
	// and the role may mount and write through that access point only.
	td.AddVolume(&awsecs.Volume{Name: str("state"), EfsVolumeConfiguration: &awsecs.EfsVolumeConfiguration{
		FileSystemId:      d.AgentState.FileSystemId(),
		TransitEncryption: str("ENABLED"),
		AuthorizationConfig: &awsecs.AuthorizationConfig{
			AccessPointId: d.AgentStateAccess.AccessPointId(),
			Iam:           str("ENABLED"),
		},
	}})
	td.DefaultContainer().AddMountPoints(&awsecs.MountPoint{ContainerPath: str(agentDataDir), SourceVolume: str("state"), ReadOnly: jsii.Bool(false)})
	r.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"),
		Resources: &[]*string{d.AgentState.FileSystemArn()},
		Conditions: &map[string]any{"StringEquals": map[string]any{
			"elasticfilesystem:AccessPointArn": d.AgentStateAccess.AccessPointArn(),
		}},
	}))
	sg := s.net.Groups["agent"]
	s.Agent = awsecs.NewFargateService(s.Stack, str("Agent"), &awsecs.FargateServiceProps{
		ServiceName:    str(serviceName(cfg, "agent")),
		Cluster:        s.Cluster,
		TaskDefinition: td,
		DesiredCount:   num(1),
		// One agent at a time: it holds one identity and one ledger.
		MinHealthyPercent: num(0),
		MaxHealthyPercent: num(100),
		SecurityGroups:    &[]awsec2.ISecurityGroup{sg},
		VpcSubnets:        taskSubnets(cfg.AgentNeedsInternet()),
		CircuitBreaker:    s.circuitBreaker(),
		DeploymentAlarms:  s.deploymentAlarm("agent"),
		PropagateTags:     awsecs.PropagatedTagSource_SERVICE,
	})
}

// newUpgradeRole creates the role CloudFormation assumes when the agent
// applies an approved release, and lets the agent update only this stack,
// only through that role. The role can register task definitions and roll
// services and nothing else: a stack update made through it cannot change
// IAM, so automatic upgrades cannot widen anyone's access.
func (s *services) newUpgradeRole() (appliesTo []any) {
	cfg := s.cfg
	partition := *awscdk.Aws_PARTITION()
	role := awsiam.NewRole(s.Stack, str("UpgradeRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(str("cloudformation.amazonaws.com"), nil),
		Description: str("Tether " + cfg.Name + ": CloudFormation role for image-digest upgrades applied by the agent"),
	})
	s.UpgradeRole = role
	allow(role, []string{"ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition", "ecs:DescribeTaskDefinition"}, str("*"))
	allow(role, []string{"ecs:UpdateService", "ecs:DescribeServices"}, str("arn:"+partition+":ecs:"+cfg.Region+":"+cfg.Account+":service/"+clusterName(cfg)+"/*"))
	// New task definition revisions carry the stack's tags.
	allow(role, []string{"ecs:TagResource"}, str("arn:"+partition+":ecs:"+cfg.Region+":"+cfg.Account+":task-definition/tether-"+cfg.Name+"-*:*"))
	// CloudFormation resolves the CDK bootstrap version parameter on every update.
	allow(role, []string{"ssm:GetParameters"}, str("arn:"+partition+":ssm:"+cfg.Region+":"+cfg.Account+":parameter/cdk-bootstrap/"+qualifier(cfg)+"/version"))
	suppress(role, "AwsSolutions-IAM5", "Task definition registration has no resource-level permissions; service updates and tags are limited to this deployment's cluster and task families.",
		"Resource::*",
		"Resource::arn:<AWS::Partition>:ecs:"+cfg.Region+":"+cfg.Account+":service/"+clusterName(cfg)+"/*",
		"Resource::arn:<AWS::Partition>:ecs:"+cfg.Region+":"+cfg.Account+":task-definition/tether-"+cfg.Name+"-*:*")

	stackARN := "arn:" + partition + ":cloudformation:" + cfg.Region + ":" + cfg.Account + ":stack/" + *s.Stack.StackName() + "/*"
	// UpdateStack only: it is the one call that carries RoleArn, so the
	// condition below holds for every update the agent can make.
	s.AgentRole.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("cloudformation:UpdateStack"),
		Resources: jsii.Strings(stackARN),
		Conditions: &map[string]any{
			"StringEquals": map[string]any{"cloudformation:RoleArn": role.RoleArn()},
		},
	}))
	allow(s.AgentRole, []string{"iam:PassRole"}, role.RoleArn())
	return []any{"Resource::arn:<AWS::Partition>:cloudformation:" + cfg.Region + ":" + cfg.Account + ":stack/" + *s.Stack.StackName() + "/*"}
}

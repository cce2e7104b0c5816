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
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53targets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsscheduler"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsservicediscovery"
	"github.com/aws/jsii-runtime-go"

	"github.com/tetherhq/tether/internal/deployconfig"
	"github.com/tetherhq/tether/internal/upgradewindow"
)

// Services is the stateless half: the ECS services in the cluster stack's
// cluster, the load balancer, alarms and the dashboard.
type Services struct {
	Stack        awscdk.Stack
	LoadBalancer awselasticloadbalancingv2.ApplicationLoadBalancer
	// Certificate is the load balancer's TLS certificate (created, or
	// domain.certificate_arn); its expiry is watched (observability.go).
	Certificate awscertificatemanager.ICertificate
	API         awsecs.FargateService
	Worker      awsecs.FargateService
	Agent       awsecs.FargateService
	// Exchange is tether-exchange, the exchange bucket's mirror of the
	// agent's data dir.
	Exchange awsecs.FargateService
	// Task roles, one per container family, each with only what it needs.
	APIRole, WorkerRole, AgentRole, ExchangeRole awsiam.Role
	// UpgraderRole is tether-upgrade's task role, the one role that may
	// update this stack, and UpgradeRole what CloudFormation assumes for
	// that update; both nil unless plane.automatic_upgrades is on.
	UpgraderRole, UpgradeRole awsiam.Role
	// The images, as AWS::SSM::Parameter::Value<String> parameters naming
	// the markers tetherctl writes (the gate; see imageParameter).
	// Upgrades change these and nothing else.
	DocsvcImage, AgentImage awscdk.CfnParameter
	// The task counts, as Number parameters whose defaults are
	// deployment.yaml's sizing: tetherctl scale changes them through a
	// change set, and a later deploy keeps the values it set.
	APITaskCount, WorkerMinTasks, WorkerMaxTasks awscdk.CfnParameter
	LogGroups                                    map[string]awslogs.LogGroup
}

// apiPort is where docsvc api listens inside its task; internalPort is its
// second listener (DOCSVC_INTERNAL_ADDR) for /readyz, /metrics and
// /metrics/summary (what the agent reads), which only the agent may reach
// and the load balancer never forwards to.
const (
	apiPort      = 8080
	internalPort = 9090
)

// agentDataDir is the agent's TETHER_DATA_DIR: its EFS access point (see
// Data.newAgentState), so the egress ledger outlives any one task.
const agentDataDir = "/var/lib/tether-agent"

// internalPaths are the api's paths that must not be served through the
// internet-facing load balancer: /readyz and /metrics report exact document
// counts and queue depths. The agent reads /metrics/summary over the private
// namespace.
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
	*tasks
	net     *Network
	images  *Images
	cluster *Cluster
}

func newServices(app awscdk.App, cfg *deployconfig.Config, net *Network, data *Data, images *Images, cluster *Cluster) *Services {
	stack := newStack(app, cfg, "services", "Tether "+cfg.Name+": ECS services, load balancer, alarms (stateless)", false)
	s := &services{Services: &Services{Stack: stack}, tasks: newTasks(stack, cfg, data), net: net, images: images, cluster: cluster}
	s.LogGroups = s.logGroups

	s.DocsvcImage = imageParameter(stack, "DocsvcImage", migratedMarker(cfg, cfg.Images.DocsvcDigest),
		"The docsvc image of the api and worker: the name of the SSM parameter /tether/"+cfg.Name+"/migrated/sha256-<hex>, whose value is the digest. "+
			"Only tetherctl writes it, after the image was verified in ECR "+cfg.Name+"/docsvc and its migrate task succeeded. "+
			"If CloudFormation says the parameter cannot be found, that release is not migrated: run tetherctl migrate (or tetherctl deploy).")
	s.AgentImage = imageParameter(stack, "AgentImage", verifiedAgentMarker(cfg, cfg.Images.AgentDigest),
		"The tether-agent image: the name of the SSM parameter /tether/"+cfg.Name+"/verified/agent/sha256-<hex>, whose value is the digest. "+
			"Only tetherctl writes it, after the image was verified in ECR "+cfg.Name+"/agent. "+
			"If CloudFormation says the parameter cannot be found, that image is not verified: run tetherctl deploy.")

	s.APITaskCount = countParameter(stack, "ApiTaskCount", cfg.Sizing.APITasks, 1, deployconfig.MaxAPITasks,
		"How many API tasks run. Set with tetherctl scale api --count N; deployment.yaml's sizing.api_tasks is the first deploy's value.")
	s.WorkerMinTasks = countParameter(stack, "WorkerMinTasks", cfg.Sizing.WorkerMin, 0, deployconfig.MaxWorkerTasks,
		"The fewest worker tasks autoscaling keeps. Set with tetherctl scale workers --min N --max M (never above WorkerMaxTasks); deployment.yaml's sizing.worker_min is the first deploy's value.")
	s.WorkerMaxTasks = countParameter(stack, "WorkerMaxTasks", cfg.Sizing.WorkerMax, 1, deployconfig.MaxWorkerTasks,
		"The most worker tasks autoscaling starts. Set with tetherctl scale workers --min N --max M; deployment.yaml's sizing.worker_max is the first deploy's value.")

	for _, family := range []string{"api", "worker", "agent", "exchange"} {
		s.newLogGroup(family, net.LogsKey)
	}
	s.readDocsvcConfig()

	s.newAPI()
	s.newWorker()
	s.newAgent()
	s.newExchangeTask()
	if cfg.Plane.AutomaticUpgrades {
		s.newUpgradeRole()
		s.newUpgrader()
	}
	s.newObservability()
	s.newOutputs()
	if s.UpgradeRole != nil {
		// Registering a new task definition revision passes its roles.
		var roles []*string
		for _, td := range s.taskDefs {
			roles = append(roles, td.TaskRole().RoleArn(), td.ObtainExecutionRole().RoleArn())
		}
		passTo(s.UpgradeRole, "ecs-tasks.amazonaws.com", roles...)
	}
	return s.Services
}

func clusterName(cfg *deployconfig.Config) string { return cfg.ResourceName("") }

func serviceName(cfg *deployconfig.Config, family string) string { return cfg.ResourceName(family) }

// imageParameter is one of the services stack's images: a parameter of type
// AWS::SSM::Parameter::Value<String> whose value is the name of a marker
// parameter tetherctl writes, and which CloudFormation resolves to the
// marker's value, the digest. A marker that does not exist stops the change
// set before anything changes: that is the gate. def is the marker of the
// digest pinned in deployment.yaml, or "" (then the parameter is required).
func imageParameter(stack awscdk.Stack, id, def, description string) awscdk.CfnParameter {
	props := &awscdk.CfnParameterProps{
		Type:        str("AWS::SSM::Parameter::Value<String>"),
		Description: str(description),
	}
	if def != "" {
		props.Default = str(def)
	}
	return awscdk.NewCfnParameter(stack, str(id), props)
}

// countParameter is one of the services stack's task counts: a Number
// parameter CloudFormation itself keeps within lo..hi.
func countParameter(stack awscdk.Stack, id string, def, lo, hi int, description string) awscdk.CfnParameter {
	return awscdk.NewCfnParameter(stack, str(id), &awscdk.CfnParameterProps{
		Type:        str("Number"),
		Default:     num(float64(def)),
		MinValue:    num(float64(lo)),
		MaxValue:    num(float64(hi)),
		Description: str(description),
	})
}

// markerName is how a digest (sha256:<64 hex>) appears in a marker's name:
// SSM parameter names allow no ':'.
func markerName(digest string) string { return strings.Replace(digest, ":", "-", 1) }

// migratedMarker is the SSM parameter tetherctl writes once the docsvc image
// of that digest is verified in ECR and its migrate task succeeded; "" for
// no digest.
func migratedMarker(cfg *deployconfig.Config, digest string) string {
	if digest == "" {
		return ""
	}
	return "/tether/" + cfg.Name + "/migrated/" + markerName(digest)
}

// verifiedAgentMarker is the SSM parameter tetherctl writes once the agent
// image of that digest is verified in ECR; "" for no digest.
func verifiedAgentMarker(cfg *deployconfig.Config, digest string) string {
	if digest == "" {
		return ""
	}
	return "/tether/" + cfg.Name + "/verified/agent/" + markerName(digest)
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

// alarmName is tether-<name>-<short>; with "" it is the prefix the agent
// looks alarms up by.
func alarmName(cfg *deployconfig.Config, short string) string {
	return cfg.ResourceName("") + "-" + short
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
	td := s.taskDefinition("api", s.APIRole, s.images.Docsvc, s.DocsvcImage.ValueAsString(), 512, 1024, []string{"api"},
		apiSecrets, map[string]*string{
			"DOCSVC_ADDR":          str(fmt.Sprintf(":%d", apiPort)),
			"DOCSVC_INTERNAL_ADDR": str(fmt.Sprintf(":%d", internalPort)),
		}, apiPort)
	sg := s.net.Groups["api"]
	s.API = awsecs.NewFargateService(s.Stack, str("Api"), &awsecs.FargateServiceProps{
		ServiceName:            str(serviceName(cfg, "api")),
		Cluster:                s.cluster.Cluster,
		TaskDefinition:         td,
		DesiredCount:           s.APITaskCount.ValueAsNumber(),
		MinHealthyPercent:      num(100),
		MaxHealthyPercent:      num(200),
		SecurityGroups:         &[]awsec2.ISecurityGroup{sg},
		VpcSubnets:             taskSubnets(true), // fetches the identity provider's signing keys
		CircuitBreaker:         s.circuitBreaker(),
		DeploymentAlarms:       s.deploymentAlarm("api"),
		HealthCheckGracePeriod: awscdk.Duration_Seconds(num(60)),
		PropagateTags:          awsecs.PropagatedTagSource_SERVICE,
		// api.<namespace>: how the agent reaches /metrics/summary.
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
	s.Certificate = cert
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
	// GenerateDataKey and SendMessage: the worker sends the jobs the api
	// stored but could not send (its outbox), and docsvc jobs redrive, run by
	// tetherctl jobs as a one-off task of this task definition, sends dead
	// letters back; reading and deleting them needs the dead-letter queue.
	allow(s.WorkerRole, []string{"kms:Decrypt", "kms:GenerateDataKey"}, d.Key.KeyArn())
	allow(s.WorkerRole, []string{"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"}, d.Jobs.QueueArn())
	allow(s.WorkerRole, []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"}, d.DeadLetter.QueueArn())
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

	// No PDF engine compile cache: the task's root file system is read-only
	// and its /tmp dies with it, and wazero keys compiled code by the host's
	// CPU features, which differ across Fargate hosts, so neither a cache in
	// the task nor one baked into the image would be reused. A worker task
	// compiles once when it starts (seconds), and says nothing about a cache.
	td := s.taskDefinition("worker", s.WorkerRole, s.images.Docsvc, s.DocsvcImage.ValueAsString(), 1024, 2048, []string{"worker"}, s.docsvcSecrets(),
		map[string]*string{"DOCSVC_EXTRACT_CACHE_DIR": str("off")}, 0)
	sg := s.net.Groups["worker"]
	s.Worker = awsecs.NewFargateService(s.Stack, str("Worker"), &awsecs.FargateServiceProps{
		ServiceName:       str(serviceName(cfg, "worker")),
		Cluster:           s.cluster.Cluster,
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
		MinCapacity: s.WorkerMinTasks.ValueAsNumber(),
		MaxCapacity: s.WorkerMaxTasks.ValueAsNumber(),
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
		// The customer's policies (agent: in deployment.yaml), stated
		// even when off so the task definition shows them.
		"TETHER_TELEMETRY":                str(strconv.FormatBool(cfg.Agent.Telemetry)),
		"TETHER_AUTO_APPROVE_DIAGNOSTICS": str(strconv.FormatBool(cfg.Agent.AutoApproveDiagnostics())),
	}
	if cfg.Plane.URL != "" {
		env["TETHER_PLANE_URL"] = str(cfg.Plane.URL)
	}
	// The release record the heartbeat reports from; the agent only reads
	// it (tether-upgrade applies releases: newUpgrader).
	env["TETHER_RELEASE_RECORD"] = str(cfg.ReleaseRecordParameter())
	// The capacity alarms the heartbeat names when they fire (their states,
	// never their values): cloudwatch:DescribeAlarms on tether-<name>-*.
	env["TETHER_ALARM_PREFIX"] = str(alarmName(cfg, ""))
	return env
}

func (s *services) newAgent() {
	cfg, d := s.cfg, s.data
	partition := *awscdk.Aws_PARTITION()
	s.AgentRole = s.taskRole("AgentTaskRole", "tether-agent: its own identity secret and health reads. No access to customer data; cannot change stacks.", str(cfg.AgentRoleName()))
	r := s.AgentRole

	// The agent reads its key from this secret and, at first start, puts a
	// new one there; after a rotation (tetherctl secrets rotate agent put a
	// new key as AWSPENDING) it moves AWSCURRENT to that version once the
	// plane holds it (UpdateSecretVersionStage): nothing on any other
	// secret. The license reaches it through the execution role (an ECS
	// secret), not this role.
	identity := d.Secrets[secretAgentIdentity]
	allow(r, []string{"secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:DescribeSecret",
		"secretsmanager:UpdateSecretVersionStage"}, identity.SecretArn())
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
	// The capacity alarms the heartbeat names (wire.WarningNames) and the
	// release record: what the agent reads of the deployment, nothing more.
	allow(r, []string{"cloudwatch:DescribeAlarms"}, str("arn:"+partition+":cloudwatch:"+cfg.Region+":"+cfg.Account+":alarm:"+alarmName(cfg, "*")))
	ssmParameter := "arn:" + partition + ":ssm:" + cfg.Region + ":" + cfg.Account + ":parameter"
	allow(r, []string{"ssm:GetParameter"}, str(ssmParameter+cfg.ReleaseRecordParameter()))
	suppress(r, "AwsSolutions-IAM5", "The wildcard is this deployment's own alarm names (tether-<name>-*), which the agent looks up by prefix.",
		"Resource::arn:<AWS::Partition>:cloudwatch:"+cfg.Region+":"+cfg.Account+":alarm:"+alarmName(cfg, "*"))

	// The license is the document itself, which the agent accepts in
	// TETHER_LICENSE (environment only: it carries an activation token).
	secrets := map[string]taskSecret{
		"TETHER_LICENSE": s.secretsManager(secretLicense, d.Secrets[secretLicense], nil),
	}
	td := s.taskDefinition("agent", r, s.images.Agent, s.AgentImage.ValueAsString(), 256, 512, []string{"run"}, secrets,
		s.agentEnvironment(identity.SecretArn()), 0)
	s.mountAgentState(td, r)
	sg := s.net.Groups["agent"]
	s.Agent = awsecs.NewFargateService(s.Stack, str("Agent"), &awsecs.FargateServiceProps{
		ServiceName:    str(serviceName(cfg, "agent")),
		Cluster:        s.cluster.Cluster,
		TaskDefinition: td,
		DesiredCount:   num(s.agentTasks()),
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

// agentTasks is how many agent tasks run, and so exchange tasks. Air-gapped
// (no plane.url) the agent has no one to talk to: the service is there, with
// its image and role, but runs no task until a plane URL is set
// (tether-agent refuses to start without one).
func (s *services) agentTasks() float64 {
	if s.cfg.AgentNeedsInternet() {
		return 1
	}
	return 0
}

// mountAgentState mounts the agent's data dir (identity cache, egress
// ledger, TUF metadata, diagnostics) in td at agentDataDir: its EFS access
// point, TLS in transit, IAM-authorized, and role may mount and write
// through that access point only.
func (s *services) mountAgentState(td awsecs.FargateTaskDefinition, role awsiam.Role) {
	d := s.data
	td.AddVolume(&awsecs.Volume{Name: str("state"), EfsVolumeConfiguration: &awsecs.EfsVolumeConfiguration{
		FileSystemId:      d.AgentState.FileSystemId(),
		TransitEncryption: str("ENABLED"),
		AuthorizationConfig: &awsecs.AuthorizationConfig{
			AccessPointId: d.AgentStateAccess.AccessPointId(),
			Iam:           str("ENABLED"),
		},
	}})
	td.DefaultContainer().AddMountPoints(&awsecs.MountPoint{ContainerPath: str(agentDataDir), SourceVolume: str("state"), ReadOnly: jsii.Bool(false)})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"),
		Resources: &[]*string{d.AgentState.FileSystemArn()},
		Conditions: &map[string]any{"StringEquals": map[string]any{
			"elasticfilesystem:AccessPointArn": d.AgentStateAccess.AccessPointArn(),
		}},
	}))
}

// newExchangeTask is tether-exchange (internal/exchange), a service of the
// agent image beside the agent: it mirrors the agent's data dir (the same
// EFS access point, as the same user) to the exchange bucket and applies
// the operator's decisions there. It runs in the isolated subnets, which
// reach only the VPC endpoints, and its role holds the exchange bucket's
// rights and nothing else: what writes the bucket has no path to the
// vendor, and the agent, which talks to the vendor, has no S3 right.
func (s *services) newExchangeTask() {
	cfg := s.cfg
	s.ExchangeRole = s.taskRole("ExchangeTaskRole", "tether-exchange: mirrors the agent's diagnostics requests and egress ledger to the exchange bucket and reads the operator's decisions. No access to customer data; no route to the vendor.", str(cfg.ExchangeRoleName()))
	grantExchange(s.ExchangeRole, cfg, s.data.Exchange)
	env := map[string]*string{
		"TETHER_DATA_DIR":        str(agentDataDir),
		"TETHER_EXCHANGE_BUCKET": s.data.Exchange.Bucket.BucketName(),
	}
	td := s.taskDefinition("exchange", s.ExchangeRole, s.images.Agent, s.AgentImage.ValueAsString(), 256, 512, nil, nil, env, 0)
	// The image's third entry point (internal/imagebuild Spec.Also).
	td.Node().DefaultChild().(awsecs.CfnTaskDefinition).AddPropertyOverride(str("ContainerDefinitions.0.EntryPoint"), jsii.Strings("/tether-exchange"))
	s.mountAgentState(td, s.ExchangeRole)
	s.Exchange = awsecs.NewFargateService(s.Stack, str("Exchange"), &awsecs.FargateServiceProps{
		ServiceName:    str(serviceName(cfg, "exchange")),
		Cluster:        s.cluster.Cluster,
		TaskDefinition: td,
		DesiredCount:   num(s.agentTasks()),
		// One at a time (a second would only skip rounds: the round lock).
		MinHealthyPercent: num(0),
		MaxHealthyPercent: num(100),
		SecurityGroups:    &[]awsec2.ISecurityGroup{s.net.Groups["exchange"]},
		VpcSubnets:        taskSubnets(false),
		CircuitBreaker:    s.circuitBreaker(),
		PropagateTags:     awsecs.PropagatedTagSource_SERVICE,
	})
}

// newUpgradeRole creates the role CloudFormation assumes when tether-upgrade
// applies a staged release. The role can register task definitions, roll
// services, retarget the upgrade schedules at the new task definition and
// read the image markers, and nothing else: a stack update made through it
// cannot change IAM, so automatic upgrades cannot widen anyone's access,
// and cannot start an image tetherctl has not recorded.
func (s *services) newUpgradeRole() {
	cfg := s.cfg
	partition := *awscdk.Aws_PARTITION()
	role := awsiam.NewRole(s.Stack, str("UpgradeRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(str("cloudformation.amazonaws.com"), nil),
		Description: str("Tether " + cfg.Name + ": CloudFormation role for image upgrades applied by tether-upgrade, to images tetherctl verified and migrated"),
	})
	s.UpgradeRole = role
	allow(role, []string{"ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition", "ecs:DescribeTaskDefinition"}, str("*"))
	allow(role, []string{"ecs:UpdateService", "ecs:DescribeServices"}, str("arn:"+partition+":ecs:"+cfg.Region+":"+cfg.Account+":service/"+clusterName(cfg)+"/*"))
	// New task definition revisions carry the stack's tags.
	allow(role, []string{"ecs:TagResource"}, str("arn:"+partition+":ecs:"+cfg.Region+":"+cfg.Account+":task-definition/tether-"+cfg.Name+"-*:*"))
	// The schedules name the upgrade task definition's revision, which an
	// upgrade replaces.
	allow(role, []string{"scheduler:GetSchedule", "scheduler:UpdateSchedule"}, str(upgradeSchedules(cfg)))
	// CloudFormation resolves the stack's SSM-typed parameters under this
	// role on every update: the CDK bootstrap version, and DocsvcImage and
	// AgentImage, which may name only markers tetherctl wrote. So
	// tether-upgrade can move the services only to images tetherctl has
	// verified and (docsvc) migrated; it cannot migrate or record a release
	// itself.
	ssmParameter := "arn:" + partition + ":ssm:" + cfg.Region + ":" + cfg.Account + ":parameter"
	allow(role, []string{"ssm:GetParameters"}, str(ssmParameter+"/cdk-bootstrap/"+qualifier(cfg)+"/version"),
		str(ssmParameter+"/tether/"+cfg.Name+"/migrated/*"), str(ssmParameter+"/tether/"+cfg.Name+"/verified/*"))
	suppress(role, "AwsSolutions-IAM5", "Task definition registration has no resource-level permissions; service updates and tags are limited to this deployment's cluster and task families; parameter reads to the image markers tetherctl writes under /tether/<name>/migrated/ and /verified/; schedule updates to this deployment's upgrade schedules.",
		"Resource::*",
		"Resource::arn:<AWS::Partition>:ssm:"+cfg.Region+":"+cfg.Account+":parameter/tether/"+cfg.Name+"/migrated/*",
		"Resource::arn:<AWS::Partition>:ssm:"+cfg.Region+":"+cfg.Account+":parameter/tether/"+cfg.Name+"/verified/*",
		"Resource::arn:<AWS::Partition>:ecs:"+cfg.Region+":"+cfg.Account+":service/"+clusterName(cfg)+"/*",
		"Resource::arn:<AWS::Partition>:ecs:"+cfg.Region+":"+cfg.Account+":task-definition/tether-"+cfg.Name+"-*:*",
		"Resource::arn:<AWS::Partition>:scheduler:"+cfg.Region+":"+cfg.Account+":schedule/default/tether-"+cfg.Name+"-upgrade-*")
}

// upgradeSchedules matches the ARNs of the upgrade schedules.
func upgradeSchedules(cfg *deployconfig.Config) string {
	return "arn:" + *awscdk.Aws_PARTITION() + ":scheduler:" + cfg.Region + ":" + cfg.Account + ":schedule/default/tether-" + cfg.Name + "-upgrade-*"
}

// newUpgrader is tether-upgrade (internal/upgrader), a task of the agent
// image that EventBridge Scheduler runs once at each start of
// plane.upgrade_window. It runs in the isolated subnets, which reach only
// the VPC endpoints: it can change this stack, through the upgrade role,
// and has no network path to the vendor. The agent, which talks to the
// vendor, cannot change stacks.
func (s *services) newUpgrader() {
	cfg := s.cfg
	partition := *awscdk.Aws_PARTITION()
	s.UpgraderRole = s.taskRole("UpgraderTaskRole", "tether-upgrade: applies the release tetherctl staged, in the upgrade window, through the upgrade role. No access to customer data; no route to the vendor.", nil)
	r := s.UpgraderRole
	stackARN := "arn:" + partition + ":cloudformation:" + cfg.Region + ":" + cfg.Account + ":stack/" + *s.Stack.StackName() + "/*"
	// UpdateStack only: it is the one call that carries RoleArn, so the
	// condition below holds for every update tether-upgrade can make.
	r.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:    jsii.Strings("cloudformation:UpdateStack"),
		Resources:  jsii.Strings(stackARN),
		Conditions: &map[string]any{"StringEquals": map[string]any{"cloudformation:RoleArn": s.UpgradeRole.RoleArn()}},
	}))
	passTo(r, "cloudformation.amazonaws.com", s.UpgradeRole.RoleArn())
	// The stack's status, parameters and alarms (the rollback triggers);
	// the release record, the one parameter it writes; and the markers
	// that show tetherctl staged the release.
	allow(r, []string{"cloudformation:DescribeStacks", "cloudformation:DescribeStackResources"}, str(stackARN))
	ssmParameter := "arn:" + partition + ":ssm:" + cfg.Region + ":" + cfg.Account + ":parameter"
	allow(r, []string{"ssm:PutParameter"}, str(ssmParameter+cfg.ReleaseRecordParameter()))
	allow(r, []string{"ssm:GetParameter"}, str(ssmParameter+cfg.ReleaseRecordParameter()),
		str(ssmParameter+"/tether/"+cfg.Name+"/migrated/*"), str(ssmParameter+"/tether/"+cfg.Name+"/verified/agent/*"))
	suppress(r, "AwsSolutions-IAM5", "Parameter reads are limited to the image markers tetherctl writes under /tether/<name>/migrated/ and /verified/agent/; the stack ARN's wildcard is its ID suffix, of this one stack.",
		"Resource::arn:<AWS::Partition>:ssm:"+cfg.Region+":"+cfg.Account+":parameter/tether/"+cfg.Name+"/migrated/*",
		"Resource::arn:<AWS::Partition>:ssm:"+cfg.Region+":"+cfg.Account+":parameter/tether/"+cfg.Name+"/verified/agent/*",
		"Resource::arn:<AWS::Partition>:cloudformation:"+cfg.Region+":"+cfg.Account+":stack/"+*s.Stack.StackName()+"/*")

	window, err := upgradewindow.Parse(cfg.Plane.UpgradeWindow)
	if err != nil { // deployconfig checked it
		panic(err)
	}
	s.newLogGroup("upgrade", s.net.LogsKey)
	env := map[string]*string{
		"TETHER_RELEASE_RECORD":   str(cfg.ReleaseRecordParameter()),
		"TETHER_UPGRADE_WINDOW":   str(window.String()),
		"TETHER_SERVICES_STACK":   s.Stack.StackName(),
		"TETHER_UPGRADE_ROLE_ARN": s.UpgradeRole.RoleArn(),
	}
	td := s.taskDefinition("upgrade", r, s.images.Agent, s.AgentImage.ValueAsString(), 256, 512, nil, nil, env, 0)
	// The image's second entry point (internal/imagebuild Spec.Also).
	td.Node().DefaultChild().(awsecs.CfnTaskDefinition).AddPropertyOverride(str("ContainerDefinitions.0.EntryPoint"), jsii.Strings("/tether-upgrade"))

	// The scheduler may start this task, in this cluster, and nothing else.
	// The cluster's ARN from its fixed name, not an import: turning automatic
	// upgrades off must not remove an export in use.
	cluster := str("arn:" + partition + ":ecs:" + cfg.Region + ":" + cfg.Account + ":cluster/" + clusterName(cfg))
	family := "arn:" + partition + ":ecs:" + cfg.Region + ":" + cfg.Account + ":task-definition/" + serviceName(cfg, "upgrade") + ":*"
	scheduler := awsiam.NewRole(s.Stack, str("UpgradeSchedulerRole"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(str("scheduler.amazonaws.com"), &awsiam.ServicePrincipalOpts{
			Conditions: &map[string]any{
				"StringEquals": map[string]any{"aws:SourceAccount": cfg.Account},
				"ArnLike":      map[string]any{"aws:SourceArn": upgradeSchedules(cfg)},
			},
		}),
		Description: str("Tether " + cfg.Name + ": EventBridge Scheduler starts the tether-upgrade task in the upgrade window, and nothing else"),
	})
	scheduler.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:    jsii.Strings("ecs:RunTask"),
		Resources:  jsii.Strings(family),
		Conditions: &map[string]any{"ArnEquals": map[string]any{"ecs:cluster": cluster}},
	}))
	passTo(scheduler, "ecs-tasks.amazonaws.com", td.TaskRole().RoleArn(), td.ObtainExecutionRole().RoleArn())
	passTo(s.UpgradeRole, "scheduler.amazonaws.com", scheduler.RoleArn())
	suppress(scheduler, "AwsSolutions-IAM5", "RunTask of the upgrade task family in any revision (an upgrade registers a new one), in this cluster only.",
		"Resource::arn:<AWS::Partition>:ecs:"+cfg.Region+":"+cfg.Account+":task-definition/"+serviceName(cfg, "upgrade")+":*")
	for i, cron := range window.Crons() {
		awsscheduler.NewCfnSchedule(s.Stack, str(fmt.Sprintf("UpgradeSchedule%d", i+1)), &awsscheduler.CfnScheduleProps{
			Name:                       str(fmt.Sprintf("tether-%s-upgrade-%d", cfg.Name, i+1)),
			Description:                str("Runs tether-upgrade at the start of the upgrade window's range " + window[i:i+1].String() + " (UTC)"),
			ScheduleExpression:         str(cron),
			ScheduleExpressionTimezone: str("UTC"),
			FlexibleTimeWindow:         &awsscheduler.CfnSchedule_FlexibleTimeWindowProperty{Mode: str("OFF")},
			State:                      str("ENABLED"),
			Target: &awsscheduler.CfnSchedule_TargetProperty{
				Arn:     cluster,
				RoleArn: scheduler.RoleArn(),
				// A start that comes late does nothing (the task checks the
				// window); retrying past a quarter hour is pointless.
				RetryPolicy: &awsscheduler.CfnSchedule_RetryPolicyProperty{MaximumRetryAttempts: num(3), MaximumEventAgeInSeconds: num(900)},
				EcsParameters: &awsscheduler.CfnSchedule_EcsParametersProperty{
					TaskDefinitionArn: td.TaskDefinitionArn(),
					LaunchType:        str("FARGATE"),
					TaskCount:         num(1),
					NetworkConfiguration: &awsscheduler.CfnSchedule_NetworkConfigurationProperty{
						AwsvpcConfiguration: &awsscheduler.CfnSchedule_AwsVpcConfigurationProperty{
							Subnets:        s.net.Vpc.SelectSubnets(taskSubnets(false)).SubnetIds,
							SecurityGroups: jsii.Strings(*s.net.Groups["upgrade"].SecurityGroupId()),
							AssignPublicIp: str("DISABLED"),
						},
					},
				},
			},
		})
	}
}

// passTo lets role pass roles to one AWS service only.
func passTo(role awsiam.IRole, service string, roles ...*string) {
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:    jsii.Strings("iam:PassRole"),
		Resources:  &roles,
		Conditions: &map[string]any{"StringEquals": map[string]any{"iam:PassedToService": service}},
	}))
}

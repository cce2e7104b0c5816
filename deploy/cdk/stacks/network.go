package stacks

import (
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// Network is the VPC: public subnets for the load balancer and NAT, private
// subnets with egress for tasks that must reach the internet, and isolated
// subnets (no route out at all) for the database and for tasks that don't.
type Network struct {
	Stack awscdk.Stack
	Vpc   awsec2.Vpc
	// Security groups per task family (api, worker, migrate, agent) and for
	// the load balancer. They live here, below the data stack, so the
	// database can admit them without the data stack referring to the
	// services stack.
	Groups map[string]awsec2.SecurityGroup
	// LogsKey encrypts every log group of the deployment (flow logs here,
	// database, build and task logs in the other stacks). It lives in the
	// first stack so all of them can use it, and is retained with them.
	LogsKey awskms.Key
}

// Families that reach the database.
var dbClients = []string{"api", "worker", "migrate"}

// Subnet group names.
const (
	subnetPublic   = "public"
	subnetEgress   = "tasks"
	subnetIsolated = "isolated"
)

func newNetwork(app awscdk.App, cfg *deployconfig.Config) *Network {
	stack := newStack(app, cfg, "network", "Tether "+cfg.Name+": VPC, subnets and VPC endpoints", false)

	// One NAT gateway is enough for one zone; Multi-AZ deployments get one
	// per zone so losing a zone does not cut the other zone's egress.
	nat := 1.0
	if cfg.Sizing.MultiAZ {
		nat = 2
	}
	logsKey := newLogsKey(stack, cfg)
	flowLogs := awslogs.NewLogGroup(stack, str("FlowLogs"), &awslogs.LogGroupProps{
		Retention:     retention(cfg),
		EncryptionKey: logsKey,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	vpc := awsec2.NewVpc(stack, str("Vpc"), &awsec2.VpcProps{
		// Fn::GetAZs rather than a lookup, so synth needs no AWS credentials
		// and the template does not change with the caller's account view.
		AvailabilityZones: jsii.Strings(zones()...),
		IpAddresses:       awsec2.IpAddresses_Cidr(str("10.40.0.0/16")),
		NatGateways:       num(nat),
		SubnetConfiguration: &[]*awsec2.SubnetConfiguration{
			{Name: str(subnetPublic), SubnetType: awsec2.SubnetType_PUBLIC, CidrMask: num(24)},
			{Name: str(subnetEgress), SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS, CidrMask: num(22)},
			{Name: str(subnetIsolated), SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED, CidrMask: num(24)},
		},
		// Restricting the default security group needs a Lambda-backed
		// custom resource; nothing here uses the default group, so the
		// extra code in the customer's account buys nothing.
		RestrictDefaultSecurityGroup: jsii.Bool(false),
		FlowLogs: &map[string]*awsec2.FlowLogOptions{
			"All": {
				Destination: awsec2.FlowLogDestination_ToCloudWatchLogs(flowLogs, nil),
				TrafficType: awsec2.FlowLogTrafficType_ALL,
			},
		},
		GatewayEndpoints: &map[string]*awsec2.GatewayVpcEndpointOptions{
			"S3": {Service: awsec2.GatewayVpcEndpointAwsService_S3()},
		},
	})

	// Interface endpoints keep AWS API traffic inside the VPC, and are what
	// lets tasks in isolated subnets (local or Bedrock analysis, an
	// air-gapped agent) run with no internet route at all.
	endpoints := map[string]awsec2.InterfaceVpcEndpointAwsService{
		"Sqs":            awsec2.InterfaceVpcEndpointAwsService_SQS(),
		"SecretsManager": awsec2.InterfaceVpcEndpointAwsService_SECRETS_MANAGER(),
		"Ssm":            awsec2.InterfaceVpcEndpointAwsService_SSM(),
		"Ecr":            awsec2.InterfaceVpcEndpointAwsService_ECR(),
		"EcrDocker":      awsec2.InterfaceVpcEndpointAwsService_ECR_DOCKER(),
		"Logs":           awsec2.InterfaceVpcEndpointAwsService_CLOUDWATCH_LOGS(),
	}
	if cfg.AI.Provider == deployconfig.AIBedrock {
		endpoints["BedrockRuntime"] = awsec2.InterfaceVpcEndpointAwsService_BEDROCK_RUNTIME()
	}
	if !cfg.AgentNeedsInternet() {
		// An air-gapped agent still reads health from these APIs.
		endpoints["Ecs"] = awsec2.InterfaceVpcEndpointAwsService_ECS()
		endpoints["CloudFormation"] = awsec2.InterfaceVpcEndpointAwsService_CLOUDFORMATION()
		endpoints["Monitoring"] = awsec2.InterfaceVpcEndpointAwsService_CLOUDWATCH_MONITORING()
	}
	for _, id := range sortedKeys(endpoints) {
		ep := vpc.AddInterfaceEndpoint(str(id), &awsec2.InterfaceVpcEndpointOptions{
			Service: endpoints[id],
			Subnets: &awsec2.SubnetSelection{SubnetGroupName: str(subnetIsolated)},
			// Open means: reachable on 443 from the VPC's own CIDR only.
			Open: jsii.Bool(true),
		})
		suppress(ep, "CdkNagValidationFailure", "EC23 cannot read the ingress source because it is the VPC's CIDR attribute; the endpoint admits HTTPS from inside the VPC only, never 0.0.0.0/0.")
	}
	n := &Network{Stack: stack, Vpc: vpc, Groups: map[string]awsec2.SecurityGroup{}, LogsKey: logsKey}
	purposes := map[string]string{
		"api":     "docsvc api tasks",
		"worker":  "docsvc worker tasks",
		"migrate": "docsvc migrate task",
		"agent":   "tether-agent (outbound HTTPS only, no database access)",
	}
	for _, family := range sortedKeys(purposes) {
		sg := awsec2.NewSecurityGroup(stack, str("Tasks-"+family), &awsec2.SecurityGroupProps{
			Vpc:              vpc,
			Description:      str("Tether " + cfg.Name + ": " + purposes[family]),
			AllowAllOutbound: jsii.Bool(false),
		})
		// HTTPS out: AWS APIs through the VPC endpoints, and whatever outside
		// service this family needs (identity provider, AI provider, plane)
		// where its subnets have a NAT route.
		// PostgreSQL egress to the database's group is added by the data
		// stack, for the docsvc families only.
		sg.AddEgressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(num(443)), str("HTTPS"), nil)
		n.Groups[family] = sg
	}
	alb := awsec2.NewSecurityGroup(stack, str("LoadBalancer"), &awsec2.SecurityGroupProps{
		Vpc:              vpc,
		Description:      str("Tether " + cfg.Name + ": public HTTPS entry point"),
		AllowAllOutbound: jsii.Bool(false),
	})
	alb.AddIngressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(num(443)), str("HTTPS from users"), nil)
	alb.AddIngressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(num(80)), str("HTTP, redirected to HTTPS"), nil)
	alb.AddEgressRule(n.Groups["api"], awsec2.Port_Tcp(num(apiPort)), str("to docsvc api"), nil)
	n.Groups["api"].AddIngressRule(alb, awsec2.Port_Tcp(num(apiPort)), str("from the load balancer"), nil)
	// The agent reads the api's /readyz and /metrics inside the VPC (the
	// load balancer hides them): only the agent, only the api's port.
	n.Groups["agent"].AddEgressRule(n.Groups["api"], awsec2.Port_Tcp(num(internalPort)), str("to docsvc api's internal listener: /readyz and /metrics"), nil)
	n.Groups["api"].AddIngressRule(n.Groups["agent"], awsec2.Port_Tcp(num(internalPort)), str("from tether-agent: /readyz and /metrics"), nil)
	suppress(alb, "AwsSolutions-EC23", "The load balancer is the service's public HTTPS entry point for the customer's users; port 80 only redirects to 443. Customers restricting by network attach a WAF or change the scheme outside this reference.")
	skipCheckov(alb, "CKV_AWS_260", "Port 80 is open only for the listener whose sole action is a permanent redirect to HTTPS on 443; no request is served over HTTP.")
	n.Groups["loadbalancer"] = alb
	return n
}

// newLogsKey creates the key that encrypts the deployment's log groups.
// CloudWatch Logs uses it on the callers' behalf (writers and readers need
// no KMS permission of their own), and only for log groups in this account
// and region: the encryption context names the log group.
func newLogsKey(stack awscdk.Stack, cfg *deployconfig.Config) awskms.Key {
	// Retained, so retained log groups stay readable after any stack is
	// replaced.
	key := retainedKey(stack, cfg, "LogsKey", "logs", "CloudWatch log groups (flow logs, database, image builds, tasks)")
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        str("CloudWatchLogsInThisAccount"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(str("logs."+cfg.Region+"."+*awscdk.Aws_URL_SUFFIX()), nil)},
		// The actions AWS documents for encrypting log groups.
		Actions:   jsii.Strings("kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"),
		Resources: jsii.Strings("*"),
		Conditions: &map[string]any{"ArnLike": map[string]any{
			"kms:EncryptionContext:aws:logs:arn": "arn:" + *awscdk.Aws_PARTITION() + ":logs:" + cfg.Region + ":" + cfg.Account + ":log-group:*",
		}},
	}), nil)
	return key
}

// taskSubnets places a task family: in subnets with a NAT route only when
// it needs the internet, otherwise in isolated subnets.
func taskSubnets(needsInternet bool) *awsec2.SubnetSelection {
	if needsInternet {
		return &awsec2.SubnetSelection{SubnetGroupName: str(subnetEgress)}
	}
	return &awsec2.SubnetSelection{SubnetGroupName: str(subnetIsolated)}
}

// retention rounds the configured days up to a period CloudWatch accepts.
func retention(cfg *deployconfig.Config) awslogs.RetentionDays {
	periods := []struct {
		days int
		r    awslogs.RetentionDays
	}{
		{1, awslogs.RetentionDays_ONE_DAY}, {3, awslogs.RetentionDays_THREE_DAYS},
		{5, awslogs.RetentionDays_FIVE_DAYS}, {7, awslogs.RetentionDays_ONE_WEEK},
		{14, awslogs.RetentionDays_TWO_WEEKS}, {30, awslogs.RetentionDays_ONE_MONTH},
		{60, awslogs.RetentionDays_TWO_MONTHS}, {90, awslogs.RetentionDays_THREE_MONTHS},
		{120, awslogs.RetentionDays_FOUR_MONTHS}, {150, awslogs.RetentionDays_FIVE_MONTHS},
		{180, awslogs.RetentionDays_SIX_MONTHS}, {365, awslogs.RetentionDays_ONE_YEAR},
		{400, awslogs.RetentionDays_THIRTEEN_MONTHS}, {545, awslogs.RetentionDays_EIGHTEEN_MONTHS},
		{731, awslogs.RetentionDays_TWO_YEARS}, {1096, awslogs.RetentionDays_THREE_YEARS},
		{1827, awslogs.RetentionDays_FIVE_YEARS}, {2192, awslogs.RetentionDays_SIX_YEARS},
		{2557, awslogs.RetentionDays_SEVEN_YEARS}, {2922, awslogs.RetentionDays_EIGHT_YEARS},
		{3288, awslogs.RetentionDays_NINE_YEARS},
	}
	for _, p := range periods {
		if p.days >= cfg.Observe.LogRetentionDays {
			return p.r
		}
	}
	return awslogs.RetentionDays_TEN_YEARS
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

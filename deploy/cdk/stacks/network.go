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
// With network.vpc_id the VPC and its subnets are the customer's, imported
// by ID under the same three subnet group names, and the stack creates no
// VPC, subnet, route table, NAT gateway or flow log in it.
type Network struct {
	Stack awscdk.Stack
	Vpc   awsec2.IVpc
	// Security groups per task family (api, worker, migrate, agent) and
	// for the load balancer. They live here, below the data stack, so the database can
	// admit them without the data stack referring to the services stack, and
	// so the VPC endpoints can admit exactly them.
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
	what := "VPC, subnets and VPC endpoints"
	if cfg.Network.Existing() {
		what = "security groups and VPC endpoints in VPC " + cfg.Network.VpcID
	}
	stack := newStack(app, cfg, "network", "Tether "+cfg.Name+": "+what, false)
	logsKey := newLogsKey(stack, cfg)
	n := &Network{Stack: stack, Groups: map[string]awsec2.SecurityGroup{}, LogsKey: logsKey}
	if cfg.Network.Existing() {
		n.Vpc = importVpc(stack, cfg.Network)
	} else {
		n.Vpc = newVpc(stack, cfg, logsKey)
	}
	n.newGroups(cfg)
	if cfg.Network.Endpoints() {
		n.newEndpoints(cfg)
	}
	return n
}

// newVpc creates the deployment's own VPC, with flow logs.
func newVpc(stack awscdk.Stack, cfg *deployconfig.Config, logsKey awskms.Key) awsec2.Vpc {
	// One NAT gateway is enough for one zone; Multi-AZ deployments get one
	// per zone so losing a zone does not cut the other zone's egress.
	nat := 1.0
	if cfg.Sizing.MultiAZ {
		nat = 2
	}
	flowLogs := awslogs.NewLogGroup(stack, str("FlowLogs"), &awslogs.LogGroupProps{
		Retention:     retention(cfg),
		EncryptionKey: logsKey,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	return awsec2.NewVpc(stack, str("Vpc"), &awsec2.VpcProps{
		// Fn::GetAZs rather than a lookup, so synth needs no AWS credentials
		// and the template does not change with the caller's account view.
		AvailabilityZones: jsii.Strings(zones()...),
		// The layout below fits a /20 (deployconfig checks the range).
		IpAddresses: awsec2.IpAddresses_Cidr(str(cfg.Network.CIDR)),
		NatGateways: num(nat),
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
	})
}

// importVpc names the customer's VPC and subnets from deployment.yaml:
// zones as given (no lookup, so synth needs no credentials and no
// cdk.context.json entry that could go stale), under the same subnet group
// names a new VPC has, so every placement (taskSubnets, the load balancer's
// public subnets, the database's isolated ones) reads the same either way.
// Flow logs stay with the VPC's owner, who already decides them.
func importVpc(stack awscdk.Stack, n deployconfig.Network) awsec2.IVpc {
	zones := n.Zones()
	// One subnet per zone, in the zones' order: the CDK pairs the i-th
	// subnet of a group with the i-th zone.
	ordered := func(subnets []deployconfig.Subnet) (ids, routeTables *[]*string) {
		byZone := map[string]deployconfig.Subnet{}
		for _, s := range subnets {
			byZone[s.Zone] = s
		}
		var i, r []*string
		for _, z := range zones {
			i = append(i, str(byZone[z].ID))
			r = append(r, str(byZone[z].RouteTableID))
		}
		if !n.Endpoints() {
			return &i, nil // no route is added, and none was asked for
		}
		return &i, &r
	}
	public, _ := ordered(n.Subnets.Public)
	private, privateRoutes := ordered(n.Subnets.Private)
	isolated, isolatedRoutes := ordered(n.IsolatedSubnets())
	return awsec2.Vpc_FromVpcAttributes(stack, str("Vpc"), &awsec2.VpcAttributes{
		VpcId:                       str(n.VpcID),
		AvailabilityZones:           jsii.Strings(zones...),
		PublicSubnetIds:             public,
		PublicSubnetNames:           jsii.Strings(subnetPublic),
		PrivateSubnetIds:            private,
		PrivateSubnetNames:          jsii.Strings(subnetEgress),
		PrivateSubnetRouteTableIds:  privateRoutes,
		IsolatedSubnetIds:           isolated,
		IsolatedSubnetNames:         jsii.Strings(subnetIsolated),
		IsolatedSubnetRouteTableIds: isolatedRoutes,
	})
}

// newGroups creates the security groups of the tasks and the load
// balancer, and the rules between them.
func (n *Network) newGroups(cfg *deployconfig.Config) {
	stack, vpc := n.Stack, n.Vpc
	purposes := map[string]string{
		"api":     "docsvc api tasks",
		"worker":  "docsvc worker tasks",
		"migrate": "docsvc migrate task",
		"agent":   "tether-agent (outbound HTTPS only, no database access)",
		// In the isolated subnets: HTTPS reaches the S3 gateway endpoint and
		// the interface endpoints only, never the vendor.
		"exchange": "tether-exchange (HTTPS to S3 and the VPC endpoints, NFS to the agent state; no internet route)",
	}
	// Created, and exported, whether or not automatic upgrades are on: turning
	// them off must not remove an export the deployed services stack still
	// imports (the network stack deploys first).
	purposes["upgrade"] = "tether-upgrade, with automatic upgrades (HTTPS to AWS APIs through the VPC endpoints)"
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
	stack.ExportValue(n.Groups["upgrade"].SecurityGroupId(), nil)
	alb := awsec2.NewSecurityGroup(stack, str("LoadBalancer"), &awsec2.SecurityGroupProps{
		Vpc:              vpc,
		Description:      str("Tether " + cfg.Name + ": public HTTPS entry point"),
		AllowAllOutbound: jsii.Bool(false),
	})
	alb.AddIngressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(num(443)), str("HTTPS from users"), nil)
	alb.AddIngressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(num(80)), str("HTTP, redirected to HTTPS"), nil)
	alb.AddEgressRule(n.Groups["api"], awsec2.Port_Tcp(num(apiPort)), str("to docsvc api"), nil)
	n.Groups["api"].AddIngressRule(alb, awsec2.Port_Tcp(num(apiPort)), str("from the load balancer"), nil)
	// The agent reads the api's /metrics/summary inside the VPC (the load
	// balancer hides it): only the agent, only the api's internal port.
	n.Groups["agent"].AddEgressRule(n.Groups["api"], awsec2.Port_Tcp(num(internalPort)), str("to docsvc api's internal listener: /metrics/summary"), nil)
	n.Groups["api"].AddIngressRule(n.Groups["agent"], awsec2.Port_Tcp(num(internalPort)), str("from tether-agent: /metrics/summary"), nil)
	suppress(alb, "AwsSolutions-EC23", "The load balancer is the service's public HTTPS entry point for the customer's users; port 80 only redirects to 443. Customers restricting by network attach a WAF or change the scheme outside this reference.")
	skipCheckov(alb, "CKV_AWS_260", "Port 80 is open only for the listener whose sole action is a permanent redirect to HTTPS on 443; no request is served over HTTP.")
	n.Groups["loadbalancer"] = alb
}

// newEndpoints creates the S3 gateway endpoint and the interface endpoints.
// They keep AWS API traffic inside the VPC, and are what lets tasks in
// isolated subnets (local or Bedrock analysis, an air-gapped agent) run with
// no internet route at all. An interface endpoint admits HTTPS from the
// deployment's own security groups only (not the VPC's whole range, which
// in a customer's shared VPC holds other workloads).
func (n *Network) newEndpoints(cfg *deployconfig.Config) {
	s3 := &awsec2.GatewayVpcEndpointOptions{Service: awsec2.GatewayVpcEndpointAwsService_S3()}
	if cfg.Network.Existing() {
		// A route in the tasks' and isolated route tables; the public ones
		// are the customer's business.
		s3.Subnets = &[]*awsec2.SubnetSelection{{SubnetGroupName: str(subnetEgress)}, {SubnetGroupName: str(subnetIsolated)}}
	}
	n.Vpc.AddGatewayEndpoint(str("S3"), s3)
	services := endpointServices(cfg)
	for _, id := range sortedKeys(services) {
		ep := n.Vpc.AddInterfaceEndpoint(str(id), &awsec2.InterfaceVpcEndpointOptions{
			Service: services[id],
			Subnets: &awsec2.SubnetSelection{SubnetGroupName: str(subnetIsolated)},
			Open:    jsii.Bool(false),
		})
		for _, family := range sortedKeys(n.Groups) {
			// tether-exchange needs only its image and its logs.
			if family != "loadbalancer" && (family != "exchange" || slices.Contains([]string{"Ecr", "EcrDocker", "Logs"}, id)) {
				ep.Connections().AllowDefaultPortFrom(n.Groups[family], str("HTTPS from "+family))
			}
		}
	}
}

// endpointServices are the interface endpoints the tasks use, by construct
// ID. With an existing VPC and create_endpoints: false, the customer's own
// endpoints must serve these (docs/deployment-config.md lists them).
func endpointServices(cfg *deployconfig.Config) map[string]awsec2.InterfaceVpcEndpointAwsService {
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
		endpoints["Monitoring"] = awsec2.InterfaceVpcEndpointAwsService_CLOUDWATCH_MONITORING()
	}
	if !cfg.AgentNeedsInternet() || cfg.Plane.AutomaticUpgrades {
		// tether-upgrade, in the isolated subnets, updates the services stack.
		endpoints["CloudFormation"] = awsec2.InterfaceVpcEndpointAwsService_CLOUDFORMATION()
	}
	return endpoints
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

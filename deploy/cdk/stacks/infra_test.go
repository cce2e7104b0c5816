package stacks

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/tetherhq/tether/deploy/cdk/internal/snapshot"
	"github.com/tetherhq/tether/internal/deployconfig"
)

var (
	like   = assertions.Match_ObjectLike
	with   = assertions.Match_ArrayWith
	anyVal = assertions.Match_AnyValue
)

func TestDataStackIsProtectedAndRetained(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		if !*s.d.Data.Stack.TerminationProtection() || !*s.d.Images.Stack.TerminationProtection() {
			t.Error("the data and images stacks must be termination-protected")
		}
		if *s.d.Services.Stack.TerminationProtection() || *s.d.Cluster.Stack.TerminationProtection() {
			t.Error("the cluster and services stacks are stateless; they should be replaceable")
		}
		for _, typ := range []string{"AWS::S3::Bucket", "AWS::KMS::Key", "AWS::SQS::Queue", "AWS::RDS::DBInstance", "AWS::SecretsManager::Secret", "AWS::Logs::LogGroup"} {
			rs := resources(s, "data", typ)
			if len(rs) == 0 {
				t.Errorf("no %s in the data stack", typ)
			}
			// The database goes after a final snapshot, so that it does
			// not hold its subnets (and the stacks' deletion) hostage.
			want := map[bool]string{true: "Snapshot", false: "Retain"}[typ == "AWS::RDS::DBInstance"]
			for id, r := range rs {
				if r["DeletionPolicy"] != want || r["UpdateReplacePolicy"] != want {
					t.Errorf("%s %s is not kept on delete/replace (DeletionPolicy %v, want %s)", typ, id, r["DeletionPolicy"], want)
				}
			}
		}
		data := s.templates["data"]
		check(t, "data key rotates", func() {
			data.HasResourceProperties(jsii.String("AWS::KMS::Key"), map[string]any{"EnableKeyRotation": true})
		})
		check(t, "documents bucket", func() {
			data.HasResourceProperties(jsii.String("AWS::S3::Bucket"), like(&map[string]any{
				"BucketEncryption": like(&map[string]any{"ServerSideEncryptionConfiguration": with(&[]any{like(&map[string]any{
					"ServerSideEncryptionByDefault": like(&map[string]any{"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": anyVal()}),
				})})}),
				"VersioningConfiguration": map[string]any{"Status": "Enabled"},
				"PublicAccessBlockConfiguration": map[string]any{
					"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true,
				},
				"LoggingConfiguration": like(&map[string]any{"DestinationBucketName": anyVal()}),
				"LifecycleConfiguration": like(&map[string]any{"Rules": with(&[]any{like(&map[string]any{
					"NoncurrentVersionExpiration": like(&map[string]any{"NoncurrentDays": 30}),
				})})}),
			}))
		})
		check(t, "documents bucket is TLS-only", func() {
			data.HasResourceProperties(jsii.String("AWS::S3::BucketPolicy"), like(&map[string]any{
				"PolicyDocument": like(&map[string]any{"Statement": with(&[]any{like(&map[string]any{
					"Effect": "Deny", "Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
				})})}),
			}))
		})
		check(t, "jobs queue has a KMS key and a dead-letter queue", func() {
			data.HasResourceProperties(jsii.String("AWS::SQS::Queue"), like(&map[string]any{
				"KmsMasterKeyId": anyVal(),
				"RedrivePolicy":  like(&map[string]any{"deadLetterTargetArn": anyVal(), "maxReceiveCount": 5}),
			}))
		})
		check(t, "database", func() {
			data.HasResourceProperties(jsii.String("AWS::RDS::DBInstance"), like(&map[string]any{
				"Engine":                    "postgres",
				"StorageEncrypted":          true,
				"KmsKeyId":                  anyVal(),
				"PubliclyAccessible":        false,
				"DeletionProtection":        true,
				"BackupRetentionPeriod":     14,
				"MultiAZ":                   s.cfg.Sizing.MultiAZ,
				"DBInstanceClass":           s.cfg.Sizing.DatabaseClass,
				"EnablePerformanceInsights": s.cfg.Sizing.PerformanceInsights,
				// RDS keeps and rotates the password (every 7 days): no
				// rotation schedule, function or secret of the stack's.
				"ManageMasterUserPassword": true,
			}))
			data.ResourceCountIs(jsii.String("AWS::SecretsManager::RotationSchedule"), num(0))
			data.ResourceCountIs(jsii.String("AWS::Lambda::Function"), num(0))
		})
		// Secrets live under tether/<deployment>/.
		for _, r := range resources(s, "data", "AWS::SecretsManager::Secret") {
			if name, _ := props(r)["Name"].(string); !strings.HasPrefix(name, "tether/"+s.cfg.Name+"/") {
				t.Errorf("secret %q is outside tether/%s/", name, s.cfg.Name)
			}
		}
	})
}

func TestServices(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		svc := s.templates["services"]
		ecs := resources(s, "services", "AWS::ECS::Service")
		if len(ecs) != 4 {
			t.Fatalf("want api, worker, agent and exchange services, got %d", len(ecs))
		}
		for id, r := range ecs {
			dc := asJSON(props(r)["DeploymentConfiguration"])
			if !strings.Contains(dc, `"DeploymentCircuitBreaker":{"Enable":true,"Rollback":true}`) {
				t.Errorf("service %s: no circuit breaker with rollback: %s", id, dc)
			}
			// tether-exchange has no error rate to watch (one round a
			// minute, failures retried); the circuit breaker catches a task
			// that does not start.
			exchange := props(r)["ServiceName"] == serviceName(s.cfg, "exchange")
			if !exchange && (!strings.Contains(dc, `"Alarms":{"AlarmNames":["tether-`+s.cfg.Name+`-`) || !strings.Contains(dc, `"Enable":true,"Rollback":true}`)) {
				t.Errorf("service %s: no alarm rollback: %s", id, dc)
			}
		}
		check(t, "HTTPS listener, TLS 1.2+", func() {
			svc.HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::Listener"), like(&map[string]any{
				"Port": 443, "Protocol": "HTTPS", "SslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
				"Certificates": with(&[]any{like(&map[string]any{"CertificateArn": anyVal()})}),
			}))
		})
		check(t, "HTTP redirects to HTTPS", func() {
			svc.HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::Listener"), like(&map[string]any{
				"Port": 80, "DefaultActions": with(&[]any{like(&map[string]any{
					"Type": "redirect", "RedirectConfig": like(&map[string]any{"Protocol": "HTTPS", "Port": "443"}),
				})}),
			}))
		})
		check(t, "load balancer access logs", func() {
			svc.HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::LoadBalancer"), like(&map[string]any{
				"LoadBalancerAttributes": with(&[]any{map[string]any{"Key": "access_logs.s3.enabled", "Value": "true"}}),
			}))
		})
		for _, stack := range taskStacks {
			groups := resources(s, stack, "AWS::Logs::LogGroup")
			if len(groups) == 0 {
				t.Errorf("no log group in the %s stack", stack)
			}
			for id, r := range groups {
				if props(r)["RetentionInDays"] == nil || props(r)["KmsKeyId"] == nil || r["DeletionPolicy"] != "Retain" {
					t.Errorf("%s: log group %s keeps logs forever, is not encrypted with the logs key, or is not retained: %s", stack, id, asJSON(r))
				}
			}
		}
		for _, short := range []string{"api-5xx-rate", "worker-errors", "agent-errors", "queue-age", "dead-letter-depth", "database-cpu", "database-storage", "documents-size"} {
			check(t, "alarm "+short, func() {
				svc.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), like(&map[string]any{
					"AlarmName": "tether-" + s.cfg.Name + "-" + short, "AlarmActions": anyVal(),
				}))
			})
		}
		svc.ResourceCountIs(jsii.String("AWS::CloudWatch::Dashboard"), jsii.Number(1))
		// Worker scaling counts visible plus in-flight messages.
		check(t, "backlog scaling", func() {
			svc.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), like(&map[string]any{
				"Metrics": with(&[]any{like(&map[string]any{"Expression": "visible + inflight"})}),
			}))
			svc.HasResourceProperties(jsii.String("AWS::ApplicationAutoScaling::ScalableTarget"), like(&map[string]any{
				"MinCapacity": map[string]any{"Ref": "WorkerMinTasks"}, "MaxCapacity": map[string]any{"Ref": "WorkerMaxTasks"},
			}))
		})
		// The task counts are parameters (tetherctl scale), defaulting to
		// deployment.yaml's sizing and bounded as deployconfig bounds it.
		params := s.json["services"]["Parameters"].(map[string]any)
		for name, want := range map[string][3]float64{
			"ApiTaskCount":   {float64(s.cfg.Sizing.APITasks), 1, deployconfig.MaxAPITasks},
			"WorkerMinTasks": {float64(s.cfg.Sizing.WorkerMin), 0, deployconfig.MaxWorkerTasks},
			"WorkerMaxTasks": {float64(s.cfg.Sizing.WorkerMax), 1, deployconfig.MaxWorkerTasks},
		} {
			p, _ := params[name].(map[string]any)
			if p == nil || p["Type"] != "Number" || p["Default"] != want[0] || p["MinValue"] != want[1] || p["MaxValue"] != want[2] {
				t.Errorf("parameter %s = %v, want a Number defaulting to %v within %v..%v", name, p, want[0], want[1], want[2])
			}
		}
		for id, r := range resources(s, "services", "AWS::ECS::Service") {
			if props(r)["ServiceName"] == "tether-"+s.cfg.Name+"-api" && asJSON(props(r)["DesiredCount"]) != `{"Ref":"ApiTaskCount"}` {
				t.Errorf("api service %s: DesiredCount = %s, want the ApiTaskCount parameter", id, asJSON(props(r)["DesiredCount"]))
			}
		}
		// The storage-growth alarms fire at observability.thresholds.
		th := s.cfg.Observe.Thresholds
		for short, want := range map[string]float64{
			"queue-age":         float64(th.QueueAgeMinutes * 60),
			"dead-letter-depth": float64(th.DeadLetters),
			"database-storage":  float64(s.cfg.Sizing.DatabaseStorageGiB) * (1 << 30) * float64(th.DatabaseFreePercent) / 100,
			"documents-size":    float64(th.DocumentsGiB) * (1 << 30),
		} {
			check(t, "threshold of "+short, func() {
				svc.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), like(&map[string]any{
					"AlarmName": "tether-" + s.cfg.Name + "-" + short, "Threshold": want,
				}))
			})
		}
		// Each container runs its documented role, with config from SSM.
		commands := map[string]string{}
		tds, _ := taskDefinitions(s)
		for _, r := range tds {
			c := list(props(r)["ContainerDefinitions"])[0].(map[string]any)
			commands[c["Name"].(string)] = asJSON(c["Command"])
			if c["ReadonlyRootFilesystem"] != true {
				t.Errorf("container %s has a writable root filesystem", c["Name"])
			}
			if !strings.Contains(asJSON(c["Image"]), "@") {
				t.Errorf("container %s image is not pinned by digest: %s", c["Name"], asJSON(c["Image"]))
			}
		}
		want := map[string]string{"api": `["api"]`, "worker": `["worker"]`, "migrate": `["migrate"]`, "agent": `["run"]`,
			"exchange": "null"} // the entry point is /tether-exchange (TestExchangeTask)
		if s.cfg.Plane.AutomaticUpgrades {
			want["upgrade"] = "null" // the entry point is /tether-upgrade (TestUpgradeSchedules)
		}
		if asJSON(commands) != asJSON(want) {
			t.Errorf("container commands = %v, want %v", commands, want)
		}
		for _, stack := range taskStacks {
			for id, r := range resources(s, stack, "AWS::SSM::Parameter") {
				if name := props(r)["Name"].(string); !strings.HasPrefix(name, "/tether/"+s.cfg.Name+"/config/") {
					t.Errorf("%s: parameter %s (%s) is outside /tether/%s/config/", stack, id, name, s.cfg.Name)
				}
			}
		}
		for _, out := range []string{"ServiceUrl", "LogGroups", "NextSteps", "PlaneRegistration"} {
			if _, ok := s.json["services"]["Outputs"].(map[string]any)[out]; !ok {
				t.Errorf("no %s output", out)
			}
		}
		if got := s.json["services"]["Outputs"].(map[string]any)["ServiceUrl"].(map[string]any)["Value"]; got != "https://"+s.cfg.Domain.Name {
			t.Errorf("ServiceUrl = %v", got)
		}
	})
}

// Each task family reads only its own configuration and secrets: docsvc
// tasks the docsvc parameters, the database password and (key-based AI
// providers) the AI key; only the api the license; the agent only the
// license, and no parameter at all.
func TestTasksReadOnlyTheirOwn(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		tds, stacks := taskDefinitions(s)
		for i, r := range tds {
			c := list(props(r)["ContainerDefinitions"])[0].(map[string]any)
			name := c["Name"].(string)
			// Only the api enforces the license, so only it reads the license secret.
			if hasLicense := strings.Contains(asJSON(c["Secrets"]), `"Name":"DOCSVC_LICENSE"`); hasLicense != (name == "api") {
				t.Errorf("%s: DOCSVC_LICENSE injected = %v, want %v", name, hasLicense, name == "api")
			}
			for _, sec := range list(c["Secrets"]) {
				from := flatten(s, sec.(map[string]any)["ValueFrom"])
				// SSM parameters are referenced by logical ID; read their names.
				for _, m := range regexp.MustCompile(`<Ref:([A-Za-z0-9]+)>`).FindAllStringSubmatch(from, -1) {
					if p, ok := resources(s, stacks[i], "AWS::SSM::Parameter")[m[1]]; ok {
						from = strings.Replace(from, m[0], props(p)["Name"].(string), 1)
					}
				}
				docsvcParam := strings.Contains(from, "/tether/"+s.cfg.Name+"/config/docsvc/") ||
					strings.Contains(from, "/tether/"+s.cfg.Name+"/config/auth/DOCSVC_OIDC_")
				license := strings.Contains(from, "Secretlicense")
				switch {
				case name == "agent" && !license:
					t.Errorf("agent reads %s", from)
				case name != "agent" && !docsvcParam && !strings.Contains(from, "DatabaseSecret") && !strings.Contains(from, "Secretai") && !(name == "api" && license):
					t.Errorf("%s reads %s, which is not docsvc's", name, from)
				}
			}
		}
	})
}

func TestNetwork(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		endpoints := map[string]bool{}
		for _, r := range resources(s, "network", "AWS::EC2::VPCEndpoint") {
			name := flatten(s, props(r)["ServiceName"])
			endpoints[name[strings.LastIndex(name, ".")+1:]] = true
		}
		for _, want := range []string{"s3", "sqs", "secretsmanager", "ssm", "api", "dkr", "logs"} {
			if !endpoints[want] {
				t.Errorf("no %s VPC endpoint (have %v)", want, endpoints)
			}
		}
		if endpoints["bedrock-runtime"] != (s.cfg.AI.Provider == "bedrock") {
			t.Errorf("bedrock-runtime endpoint present = %v, want %v", endpoints["bedrock-runtime"], s.cfg.AI.Provider == "bedrock")
		}
		role := subnetRoles(s)
		nat := len(resources(s, "network", "AWS::EC2::NatGateway"))
		subnets := len(resources(s, "network", "AWS::EC2::Subnet"))
		if s.cfg.Network.Existing() {
			// The customer's VPC: nothing of the network itself is created.
			for _, typ := range []string{"AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::NatGateway", "AWS::EC2::RouteTable", "AWS::EC2::Route", "AWS::EC2::InternetGateway", "AWS::EC2::FlowLog"} {
				if got := resources(s, "network", typ); len(got) > 0 {
					t.Errorf("%d %s in an existing VPC", len(got), typ)
				}
			}
			for _, r := range resources(s, "network", "AWS::EC2::SecurityGroup") {
				if props(r)["VpcId"] != s.cfg.Network.VpcID {
					t.Errorf("security group in VPC %s, want %s", asJSON(props(r)["VpcId"]), s.cfg.Network.VpcID)
				}
			}
			// The S3 gateway endpoint routes from the tasks' and isolated
			// subnets' tables, each once.
			for _, r := range resources(s, "network", "AWS::EC2::VPCEndpoint") {
				if props(r)["VpcEndpointType"] != "Gateway" {
					continue
				}
				want := map[string]bool{}
				for _, sn := range append(s.cfg.Network.Subnets.Private, s.cfg.Network.IsolatedSubnets()...) {
					want[sn.RouteTableID] = true
				}
				got := list(props(r)["RouteTableIds"])
				if len(got) != len(want) {
					t.Errorf("S3 endpoint route tables %s, want each of %v once", asJSON(got), sortedKeys(want))
				}
				for _, id := range got {
					if !want[id.(string)] {
						t.Errorf("S3 endpoint routes from %v, not a private or isolated route table", id)
					}
				}
			}
		} else {
			if want := map[bool]int{false: 1, true: 2}[s.cfg.Sizing.MultiAZ]; nat != want {
				t.Errorf("%d NAT gateways, want %d", nat, want)
			}
			if subnets != 6 {
				t.Errorf("%d subnets, want public, tasks and isolated in two zones", subnets)
			}
			for _, r := range resources(s, "network", "AWS::EC2::VPC") {
				if props(r)["CidrBlock"] != s.cfg.Network.CIDR {
					t.Errorf("VPC CIDR %v, want network.cidr %s", props(r)["CidrBlock"], s.cfg.Network.CIDR)
				}
			}
		}
		// Interface endpoints admit HTTPS from the deployment's own groups
		// only, never a range.
		for id, r := range resources(s, "network", "AWS::EC2::SecurityGroupIngress") {
			if strings.Contains(asJSON(props(r)["GroupId"]), "SecurityGroup") && props(r)["SourceSecurityGroupId"] == nil {
				t.Errorf("endpoint ingress %s from a range: %s", id, asJSON(props(r)))
			}
		}
		for _, r := range resources(s, "network", "AWS::EC2::SecurityGroup") {
			for _, in := range list(props(r)["SecurityGroupIngress"]) {
				if cidr := in.(map[string]any)["CidrIp"]; cidr != nil && cidr != "0.0.0.0/0" {
					t.Errorf("ingress from range %v: %s", cidr, asJSON(props(r)["GroupDescription"]))
				}
			}
		}
		// Workers reach the internet only for an internet AI provider.
		for _, r := range resources(s, "services", "AWS::ECS::Service") {
			name := props(r)["ServiceName"].(string)
			var roles []string
			for _, sn := range list(props(r)["NetworkConfiguration"].(map[string]any)["AwsvpcConfiguration"].(map[string]any)["Subnets"]) {
				roles = append(roles, role(sn))
			}
			var want string
			switch name {
			case serviceName(s.cfg, "api"):
				want = subnetEgress
			case serviceName(s.cfg, "worker"):
				want = map[bool]string{true: subnetEgress, false: subnetIsolated}[s.cfg.WorkerNeedsInternet()]
			case serviceName(s.cfg, "agent"):
				want = map[bool]string{true: subnetEgress, false: subnetIsolated}[s.cfg.AgentNeedsInternet()]
			case serviceName(s.cfg, "exchange"):
				want = subnetIsolated
			}
			if len(roles) != 2 || roles[0] != want || roles[1] != want {
				t.Errorf("%s in subnets %v, want two %s subnets", name, roles, want)
			}
		}
		// The load balancer is in the public subnets.
		for _, r := range resources(s, "services", "AWS::ElasticLoadBalancingV2::LoadBalancer") {
			for _, sn := range list(props(r)["Subnets"]) {
				if got := role(sn); got != subnetPublic {
					t.Errorf("load balancer subnet %s is %s, want public", asJSON(sn), got)
				}
			}
		}
		// The database is in isolated subnets and admits only the docsvc tasks.
		for _, r := range resources(s, "data", "AWS::EC2::SecurityGroupIngress") {
			if p := props(r); p["FromPort"] == float64(5432) && p["SourceSecurityGroupId"] == nil {
				t.Errorf("database ingress from a non-group source: %s", asJSON(p))
			}
		}
		for _, typ := range []string{"AWS::RDS::DBSubnetGroup", "AWS::EFS::MountTarget"} {
			n := 0
			for _, r := range resources(s, "data", typ) {
				ids := list(props(r)["SubnetIds"])
				if id := props(r)["SubnetId"]; id != nil {
					ids = []any{id}
				}
				for _, subnet := range ids {
					n++
					want := subnetIsolated
					if typ == "AWS::EFS::MountTarget" && s.cfg.AgentNeedsInternet() {
						want = subnetEgress // beside the agent
					}
					if got := role(subnet); got != want {
						t.Errorf("%s subnet %s is %s, want %s", typ, asJSON(subnet), got, want)
					}
				}
			}
			if n != 2 {
				t.Errorf("%s in %d subnets, want 2 (one per zone)", typ, n)
			}
		}
	})
}

// subnetRoles returns what says which subnet group a template's subnet
// value belongs to: the group name in a new VPC's export, or the role the
// config gives an existing VPC's subnet ID.
func subnetRoles(s *synthesized) func(v any) string {
	byID := map[string]string{}
	n := s.cfg.Network
	for role, subnets := range map[string][]deployconfig.Subnet{subnetPublic: n.Subnets.Public, subnetEgress: n.Subnets.Private, subnetIsolated: n.IsolatedSubnets()} {
		for _, sn := range subnets {
			byID[sn.ID] = role
		}
	}
	return func(v any) string {
		j := asJSON(v)
		if id, ok := v.(string); ok {
			if r, ok := byID[id]; ok {
				return r
			}
			j = id // a flattened reference to a new VPC's subnet
		}
		for _, role := range []string{subnetPublic, subnetEgress, subnetIsolated} {
			if strings.Contains(j, role+"Subnet") {
				return role
			}
		}
		return "unknown subnet " + j
	}
}

func TestBoundaryAndQualifierFromConfig(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		roles := 0
		for stack := range s.json {
			for id, r := range resources(s, stack, "AWS::IAM::Role") {
				roles++
				b := flatten(s, props(r)["PermissionsBoundary"])
				if s.cfg.IAM.PermissionsBoundary == "" {
					if props(r)["PermissionsBoundary"] != nil {
						t.Errorf("%s/%s has a boundary nobody asked for: %s", stack, id, b)
					}
				} else if b != "arn:aws:iam::"+s.cfg.Account+":policy/"+s.cfg.IAM.PermissionsBoundary {
					t.Errorf("%s/%s boundary = %q", stack, id, b)
				}
			}
		}
		if roles < 8 {
			t.Errorf("only %d roles seen; the check would be vacuous", roles)
		}
		// Every role is in these templates: no stack deploys another
		// template (a nested stack or a SAM application, such as the
		// Serverless Application Repository's rotation function), whose
		// roles the boundary could not reach. RDS rotates the database
		// password itself (ManageMasterUserPassword).
		for stack, tpl := range s.json {
			if tr, ok := tpl["Transform"]; ok {
				t.Errorf("%s has Transform %v: a macro could add roles this test never sees", stack, tr)
			}
			for id, r := range tpl["Resources"].(map[string]any) {
				typ, _ := r.(map[string]any)["Type"].(string)
				if strings.HasPrefix(typ, "AWS::Serverless::") || typ == "AWS::CloudFormation::Stack" {
					t.Errorf("%s/%s is a %s, whose roles this test cannot see", stack, id, typ)
				}
			}
		}
		for id, r := range resources(s, "data", "AWS::RDS::DBInstance") {
			p := props(r)
			if p["ManageMasterUserPassword"] != true || p["MasterUserPassword"] != nil {
				t.Errorf("%s: ManageMasterUserPassword %v, MasterUserPassword %v: RDS must manage the password", id, p["ManageMasterUserPassword"], p["MasterUserPassword"])
			}
			if key := asJSON(p["MasterUserSecret"]); !strings.Contains(key, "DocsvcSecretsKey") {
				t.Errorf("%s: the managed secret is encrypted with %s, want the docsvc-secrets key", id, key)
			}
		}
		qualifier := s.cfg.CDK.Qualifier
		if qualifier == "" {
			qualifier = "hnb659fds" // CDK's default
		}
		for stack, tpl := range s.json {
			p := tpl["Parameters"].(map[string]any)["BootstrapVersion"].(map[string]any)
			if p["Default"] != "/cdk-bootstrap/"+qualifier+"/version" {
				t.Errorf("%s: bootstrap parameter %v, want qualifier %s", stack, p["Default"], qualifier)
			}
		}
	})
}

// No deployment value may be written into the stacks' code: every domain,
// URL, address and bucket comes from deployment.yaml.
func TestNoDeploymentValuesInCode(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	// AWS's own service names are the only host names allowed.
	host := regexp.MustCompile(`(?i)([a-z0-9-]+\.)+(com|net|org|io|dev|app|example|cloud)\b`)
	email := regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[a-z]{2,}`)
	url := regexp.MustCompile(`https?://[a-z0-9]`)
	arn := regexp.MustCompile(`arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{12}`)
	fset := token.NewFileSet()
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if _, ok := n.(*ast.ImportSpec); ok {
				return false
			}
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			checked++
			v, _ := strconv.Unquote(lit.Value)
			for _, h := range host.FindAllString(v, -1) {
				if !strings.HasSuffix(strings.ToLower(h), ".amazonaws.com") {
					t.Errorf("%s: host name %q in code", fset.Position(lit.Pos()), h)
				}
			}
			for _, re := range []*regexp.Regexp{email, url, arn} {
				if m := re.FindString(v); m != "" {
					t.Errorf("%s: deployment value %q in code", fset.Position(lit.Pos()), m)
				}
			}
			return true
		})
	}
	if checked < 100 {
		t.Fatalf("only %d string literals checked", checked)
	}
	// And the config's values do reach the templates.
	s := synth(t, "strict")
	all := asJSON(s.json)
	for _, v := range append([]string{s.cfg.Domain.Name, s.cfg.EmailSender, s.cfg.Auth.CognitoDomainPrefix, s.cfg.AI.Model}, s.cfg.CORSOrigins...) {
		if !strings.Contains(all, v) {
			t.Errorf("config value %q does not appear in the templates", v)
		}
	}
}

// Snapshots: the synthesized templates, normalised, are checked in under
// testdata/ so every change to them is reviewed as a diff. Regenerate with
// `go test ./... -update`.
func TestSnapshots(t *testing.T) {
	forAllExamples(t, func(t *testing.T, s *synthesized) {
		for _, st := range s.d.Stacks() {
			raw := []byte(asJSON(s.json[strings.TrimPrefix(*st.StackName(), s.cfg.Name+"-")]))
			got, err := snapshot.Normalize(raw)
			if err != nil {
				t.Fatal(err)
			}
			// recreate.yaml deploys the same stack names as existing-vpc.yaml.
			file := *st.StackName() + ".template.json"
			if slices.Contains(adoptingExamples, s.example) {
				file = s.example + "-" + file
			}
			path := filepath.Join("..", "testdata", file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./... -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the synthesized template; review the change and run go test ./... -update", path)
			}
		}
	})
}

// Findings of a review, each held here: the agent's state file system has a
// policy of its own (TLS, access points only, no anonymous client), the
// database's minor version moves only with a release, and the services
// stack keeps no KMS key behind when it is replaced.
func TestReviewFindings(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		fss := resources(s, "data", "AWS::EFS::FileSystem")
		if len(fss) != 1 {
			t.Fatalf("%d EFS file systems, want 1", len(fss))
		}
		for id, fs := range fss {
			policy := asJSON(props(fs)["FileSystemPolicy"])
			for _, want := range []string{`"aws:SecureTransport":"false"`, `"Null":{"elasticfilesystem:AccessPointArn":"true"}`, `"Effect":"Deny"`} {
				if !strings.Contains(policy, want) {
					t.Errorf("%s: file system policy lacks %s: %s", id, want, policy)
				}
			}
			if strings.Contains(policy, `"Effect":"Allow"`) {
				t.Errorf("%s: the file system policy allows; mounting should need the agent's own IAM grant: %s", id, policy)
			}
		}

		for id, db := range resources(s, "data", "AWS::RDS::DBInstance") {
			p := props(db)
			if p["AutoMinorVersionUpgrade"] != false {
				t.Errorf("%s: automatic minor upgrades are on; the template would fall behind the instance", id)
			}
			if v, _ := p["EngineVersion"].(string); strings.Count(v, ".") != 1 {
				t.Errorf("%s: engine version %q is not pinned to major.minor", id, v)
			}
		}

		keys := resources(s, "services", "AWS::KMS::Key")
		if len(keys) == 0 {
			t.Fatal("no KMS key in the services stack; update this test")
		}
		for id, k := range keys {
			if k["DeletionPolicy"] != "Delete" || props(k)["PendingWindowInDays"] != float64(7) {
				t.Errorf("%s: DeletionPolicy %v, PendingWindowInDays %v; a key retained here is orphaned by every re-creation",
					id, k["DeletionPolicy"], props(k)["PendingWindowInDays"])
			}
		}
	})
}

// TestCognitoClientAsksOpenIDOnly: docsvc keys owners by issuer and subject
// and requests the openid scope alone, so the client it signs in through may
// not grant more (an email address or a profile it would never read).
func TestCognitoClientAsksOpenIDOnly(t *testing.T) {
	s := synth(t, "strict")
	clients := resources(s, "data", "AWS::Cognito::UserPoolClient")
	if len(clients) != 1 {
		t.Fatalf("the strict example has %d Cognito clients, want 1", len(clients))
	}
	for id, c := range clients {
		if got := asJSON(props(c)["AllowedOAuthScopes"]); got != `["openid"]` {
			t.Errorf("%s: AllowedOAuthScopes = %s, want [\"openid\"]", id, got)
		}
	}
}

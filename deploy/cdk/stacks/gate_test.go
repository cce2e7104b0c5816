package stacks

import (
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The gate: the services stack names its images only through DocsvcImage
// and AgentImage, SSM-typed parameters whose defaults are the markers
// tetherctl writes, so no service can start on an image tetherctl has not
// verified (and, for docsvc, migrated). No digest is written anywhere in it.
func TestServicesTakeImagesOnlyFromMarkers(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		params := s.json["services"]["Parameters"].(map[string]any)
		var names []string
		for name, p := range params {
			// The task counts (tetherctl scale) are numbers: they cannot
			// name an image.
			if t := p.(map[string]any)["Type"]; t == "Number" {
				continue
			}
			names = append(names, name)
		}
		sort.Strings(names)
		if got := strings.Join(names, " "); got != "AgentImage BootstrapVersion DocsvcImage" {
			t.Errorf("services parameters other than Numbers = %s, want AgentImage, BootstrapVersion and DocsvcImage only", got)
		}
		hex := func(digest string) string { return strings.TrimPrefix(digest, "sha256:") }
		for _, p := range []struct{ name, digest, wantDefault, command string }{
			{"DocsvcImage", s.cfg.Images.DocsvcDigest, "/tether/" + s.cfg.Name + "/migrated/sha256-", "tetherctl migrate"},
			{"AgentImage", s.cfg.Images.AgentDigest, "/tether/" + s.cfg.Name + "/verified/agent/sha256-", "tetherctl deploy"},
		} {
			param, _ := params[p.name].(map[string]any)
			if param["Type"] != "AWS::SSM::Parameter::Value<String>" {
				t.Errorf("%s: type %v, want AWS::SSM::Parameter::Value<String>", p.name, param["Type"])
			}
			def, hasDefault := param["Default"]
			switch {
			case p.digest == "" && hasDefault:
				t.Errorf("%s: default %v although deployment.yaml pins no digest; it must be required", p.name, def)
			case p.digest != "" && def != p.wantDefault+hex(p.digest):
				t.Errorf("%s: default %v, want %s", p.name, def, p.wantDefault+hex(p.digest))
			}
			desc, _ := param["Description"].(string)
			for _, want := range []string{"tetherctl", "cannot be found", p.command} {
				if !strings.Contains(desc, want) {
					t.Errorf("%s: description does not say %q: %q", p.name, want, desc)
				}
			}
		}

		// Each container runs <its repository>@<the resolved marker>.
		repo := map[string]string{"api": "DocsvcRepository", "worker": "DocsvcRepository", "agent": "AgentRepository", "exchange": "AgentRepository", "upgrade": "AgentRepository"}
		param := map[string]string{"api": "DocsvcImage", "worker": "DocsvcImage", "agent": "AgentImage", "exchange": "AgentImage", "upgrade": "AgentImage"}
		seen := 0
		for _, r := range resources(s, "services", "AWS::ECS::TaskDefinition") {
			c := list(props(r)["ContainerDefinitions"])[0].(map[string]any)
			name := c["Name"].(string)
			image := flatten(s, c["Image"])
			re := regexp.MustCompile(`/<Import:` + s.cfg.Name + `-images:ExportsOutputRef` + repo[name] + `[0-9A-F]+>@<Ref:` + param[name] + `>$`)
			if repo[name] == "" || !re.MatchString(image) {
				t.Errorf("%s runs %s, want its repository @ <Ref:%s>", name, image, param[name])
			}
			seen++
		}
		if want := map[bool]int{false: 4, true: 5}[s.cfg.Plane.AutomaticUpgrades]; seen != want {
			t.Errorf("%d task definitions in the services stack, want api, worker, agent, exchange and, with automatic upgrades, upgrade", seen)
		}
		all := asJSON(s.json["services"])
		for _, plain := range []string{"sha256:", "ImageDigest"} {
			if strings.Contains(all, plain) {
				t.Errorf("the services template holds %q: an image must come only from the marker parameters", plain)
			}
		}
	})
}

// The cluster stack holds the migrate task, with the outputs tetherctl
// runs it from; the services stack holds no part of it.
func TestClusterStack(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		outputs := s.json["cluster"]["Outputs"].(map[string]any)
		for _, name := range []string{"ClusterName", "MigrateTaskDefinitionArn", "MigrateSecurityGroupId", "MigrateSubnets", "MigrateLogGroupName", "MigrateContainerName"} {
			if _, ok := outputs[name]; !ok {
				t.Errorf("cluster stack: no %s output", name)
			}
		}
		value := func(name string) string { return flatten(s, outputs[name].(map[string]any)["Value"]) }
		if got := value("MigrateContainerName"); got != "migrate" {
			t.Errorf("MigrateContainerName = %q, want migrate", got)
		}
		role := subnetRoles(s)
		if got := strings.Split(value("MigrateSubnets"), ","); len(got) != 2 || role(got[0]) != subnetIsolated || role(got[1]) != subnetIsolated {
			t.Errorf("MigrateSubnets = %q, want the two isolated subnets, comma-separated", got)
		}
		if !strings.Contains(value("MigrateSecurityGroupId"), "Tasksmigrate") {
			t.Errorf("MigrateSecurityGroupId = %q, want the network stack's migrate group", value("MigrateSecurityGroupId"))
		}

		clusters := resources(s, "cluster", "AWS::ECS::Cluster")
		if len(clusters) != 1 || len(resources(s, "services", "AWS::ECS::Cluster")) != 0 {
			t.Errorf("want the one ECS cluster in the cluster stack, got %d there", len(clusters))
		}
		for id, r := range clusters {
			if props(r)["ClusterName"] != clusterName(s.cfg) || value("ClusterName") != "<Ref:"+id+">" {
				t.Errorf("cluster %s: name %v, output %s", id, props(r)["ClusterName"], value("ClusterName"))
			}
		}
		tds := resources(s, "cluster", "AWS::ECS::TaskDefinition")
		if len(tds) != 1 {
			t.Fatalf("%d task definitions in the cluster stack, want the migrate one", len(tds))
		}
		for id, r := range tds {
			p := props(r)
			c := list(p["ContainerDefinitions"])[0].(map[string]any)
			if p["Family"] != "tether-"+s.cfg.Name+"-migrate" || c["Name"] != "migrate" || asJSON(c["Command"]) != `["migrate"]` {
				t.Errorf("migrate task: family %v, container %v, command %s", p["Family"], c["Name"], asJSON(c["Command"]))
			}
			if image := flatten(s, c["Image"]); !strings.HasSuffix(image, "@<Ref:MigrateImageDigest>") || !strings.Contains(image, "DocsvcRepository") {
				t.Errorf("migrate runs %s, want the docsvc repository @ MigrateImageDigest", image)
			}
			if value("MigrateTaskDefinitionArn") != "<Ref:"+id+">" {
				t.Errorf("MigrateTaskDefinitionArn = %s, want <Ref:%s>", value("MigrateTaskDefinitionArn"), id)
			}
			logs := strings.TrimSuffix(strings.TrimPrefix(value("MigrateLogGroupName"), "<Ref:"), ">")
			if lg := asJSON(c["LogConfiguration"]); !strings.Contains(lg, `{"Ref":"`+logs+`"}`) {
				t.Errorf("migrate logs to %s, not MigrateLogGroupName %s", lg, value("MigrateLogGroupName"))
			}
		}
		digest := s.json["cluster"]["Parameters"].(map[string]any)["MigrateImageDigest"].(map[string]any)
		if digest["Type"] != "String" || digest["AllowedPattern"] != "^sha256:[0-9a-f]{64}$" {
			t.Errorf("MigrateImageDigest = %s", asJSON(digest))
		}
		if def, ok := digest["Default"]; (s.cfg.Images.DocsvcDigest == "") == ok || (ok && def != s.cfg.Images.DocsvcDigest) {
			t.Errorf("MigrateImageDigest default %v, want images.docsvc_digest %q", def, s.cfg.Images.DocsvcDigest)
		}

		// Nothing of the migrate task is left in the services stack.
		services := asJSON(s.json["services"])
		for _, gone := range []string{"MigrateImageDigest", "tether-" + s.cfg.Name + "-migrate", "MigrateTaskRole", "Logsmigrate", "MigrateTaskDefinitionArn"} {
			if strings.Contains(services, gone) {
				t.Errorf("the services stack still holds %s", gone)
			}
		}
	})
}

// The stacks deploy network < data < images < cluster < services, and the
// dependencies CDK records force that order rather than merely allow it.
func TestStackOrder(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		var order []string
		for _, st := range s.d.Stacks() {
			order = append(order, strings.TrimPrefix(*st.StackName(), s.cfg.Name+"-"))
		}
		if got := strings.Join(order, " < "); got != "network < data < images < cluster < services" {
			t.Fatalf("Stacks() = %s", got)
		}
		for i, st := range s.d.Stacks() {
			var deps []string
			for _, d := range *st.Dependencies() {
				deps = append(deps, strings.TrimPrefix(*d.StackName(), s.cfg.Name+"-"))
			}
			for _, d := range deps {
				if j := slices.Index(order, d); j < 0 || j >= i {
					t.Errorf("%s depends on %s, which does not come before it", order[i], d)
				}
			}
			if i > 0 && !slices.Contains(deps, order[i-1]) {
				t.Errorf("%s does not depend on %s (it depends on %v): the order is not enforced", order[i], order[i-1], deps)
			}
		}
	})
}

// With automatic upgrades, CloudFormation resolves DocsvcImage and
// AgentImage under the upgrade role: it may read the markers and the
// bootstrap version, and no other parameter.
func TestUpgradeRoleReadsOnlyMarkers(t *testing.T) {
	s := synth(t, "strict")
	if !s.cfg.Plane.AutomaticUpgrades {
		t.Fatal("strict.yaml no longer turns automatic upgrades on; update this test")
	}
	upgrade := roleID(t, s, func(p map[string]any) bool {
		return strings.Contains(asJSON(p["AssumeRolePolicyDocument"]), "cloudformation.amazonaws.com")
	})
	statements, _ := rolePolicies(s, upgrade)
	var reads []string
	for _, st := range statements {
		for _, a := range list(st["Action"]) {
			if strings.HasPrefix(a.(string), "ssm:") {
				if a != "ssm:GetParameters" {
					t.Errorf("the upgrade role may %s", a)
				}
				for _, r := range list(st["Resource"]) {
					reads = append(reads, flatten(s, r))
				}
			}
		}
	}
	sort.Strings(reads)
	prefix := "arn:aws:ssm:" + s.cfg.Region + ":" + s.cfg.Account + ":parameter/"
	want := []string{prefix + "cdk-bootstrap/" + s.cfg.CDK.Qualifier + "/version", prefix + "tether/" + s.cfg.Name + "/migrated/*", prefix + "tether/" + s.cfg.Name + "/verified/*"}
	if strings.Join(reads, " ") != strings.Join(want, " ") {
		t.Errorf("the upgrade role reads parameters\n %v\nwant\n %v", reads, want)
	}
}

// The markers are tetherctl's alone: no stack creates one, and no role a
// stack creates may write or delete a parameter, but for tether-upgrade's
// writes to the release record, with automatic upgrades only.
func TestStacksNeverWriteMarkers(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		statements, recordWrites := 0, 0
		for stack := range s.json {
			for id, r := range resources(s, stack, "AWS::SSM::Parameter") {
				if name, _ := props(r)["Name"].(string); strings.Contains(name, "/migrated/") || strings.Contains(name, "/verified/") {
					t.Errorf("%s/%s creates the marker %s", stack, id, name)
				}
			}
			var docs []any
			for _, r := range resources(s, stack, "AWS::IAM::Policy") {
				docs = append(docs, props(r)["PolicyDocument"])
			}
			for _, r := range resources(s, stack, "AWS::IAM::Role") {
				for _, p := range list(props(r)["Policies"]) {
					docs = append(docs, p.(map[string]any)["PolicyDocument"])
				}
			}
			for _, doc := range docs {
				for _, st := range list(doc.(map[string]any)["Statement"]) {
					statements++
					m := st.(map[string]any)
					if m["Effect"] != "Allow" {
						continue
					}
					record := "arn:aws:ssm:" + s.cfg.Region + ":" + s.cfg.Account + ":parameter/tether/" + s.cfg.Name + "/state/releases"
					if asJSON(m["Action"]) == `"ssm:PutParameter"` && flatten(s, m["Resource"]) == record && s.cfg.Plane.AutomaticUpgrades {
						recordWrites++
						continue
					}
					for _, a := range list(m["Action"]) {
						for _, write := range []string{"ssm:PutParameter", "ssm:DeleteParameter", "ssm:DeleteParameters", "ssm:LabelParameterVersion"} {
							if globMatch(a.(string), write, true) {
								t.Errorf("%s: a role may %s (%s): %s", stack, write, a, asJSON(m))
							}
						}
					}
				}
			}
		}
		if statements < 30 {
			t.Fatalf("only %d policy statements read; the test is not looking at the templates", statements)
		}
		if want := map[bool]int{true: 1}[s.cfg.Plane.AutomaticUpgrades]; recordWrites != want {
			t.Errorf("%d statements let tether-upgrade write the release record, want %d", recordWrites, want)
		}
	})
}

// upgraderRoles are the task and execution roles of the upgrade task
// definition, which exists only with automatic upgrades.
func upgraderRoles(s *synthesized) (task, exec string) {
	for _, td := range resources(s, "services", "AWS::ECS::TaskDefinition") {
		if props(td)["Family"] == serviceName(s.cfg, "upgrade") {
			return props(td)["TaskRoleArn"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string),
				props(td)["ExecutionRoleArn"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
		}
	}
	return "", ""
}

// updates are a role's statements that may update a stack or pass a role.
func updates(s *synthesized, role string) []map[string]any {
	statements, _ := rolePolicies(s, role)
	var out []map[string]any
	for _, st := range statements {
		if strings.Contains(asJSON(st["Action"]), "cloudformation:UpdateStack") || strings.Contains(asJSON(st["Action"]), "iam:PassRole") {
			out = append(out, st)
		}
	}
	return out
}

// The privilege split: the agent, which talks to the vendor, and
// tether-exchange, which writes the exchange bucket, may never update a
// stack or pass a role. tether-upgrade's task role may, only with
// automatic upgrades, only the services stack and only through the
// upgrade role, which cannot change IAM.
func TestOnlyTheUpgraderMayUpdateTheStack(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		for _, role := range append(agentRoles(t, s), exchangeRoles(t, s)...) {
			if ups := updates(s, role); len(ups) > 0 {
				t.Errorf("the agent's or tether-exchange's role %s may %s", role, asJSON(ups))
			}
		}
		task, _ := upgraderRoles(s)
		if !s.cfg.Plane.AutomaticUpgrades {
			if task != "" || len(resources(s, "services", "AWS::Scheduler::Schedule")) > 0 {
				t.Errorf("automatic upgrades off, but the stack holds the upgrade task (%s) or a schedule", task)
			}
			return
		}
		if task == "" {
			t.Fatal("automatic upgrades on, but no upgrade task definition")
		}
		ups := updates(s, task)
		if len(ups) != 2 {
			t.Fatalf("want an UpdateStack and a PassRole statement on tether-upgrade's role, got %s", asJSON(ups))
		}
		for _, st := range ups {
			res := flatten(s, st["Resource"])
			if strings.Contains(asJSON(st["Action"]), "UpdateStack") {
				if !strings.Contains(res, ":stack/"+s.cfg.Name+"-services/") || !strings.Contains(asJSON(st["Condition"]), "cloudformation:RoleArn") {
					t.Errorf("UpdateStack not limited to the services stack via the upgrade role: %s", asJSON(st))
				}
			} else if !strings.HasPrefix(res, "<GetAtt:UpgradeRole") {
				t.Errorf("tether-upgrade may pass %s, want only the upgrade role", res)
			}
		}
		upgrade := roleID(t, s, func(p map[string]any) bool {
			return strings.Contains(asJSON(p["AssumeRolePolicyDocument"]), "cloudformation.amazonaws.com")
		})
		ups, _ = rolePolicies(s, upgrade)
		for _, st := range ups {
			for _, a := range list(st["Action"]) {
				action := strings.ToLower(a.(string))
				if strings.HasPrefix(action, "iam:") && action != "iam:passrole" {
					t.Errorf("the upgrade role can change IAM: %s", asJSON(st))
				}
				if action == "iam:passrole" && strings.Contains(asJSON(st["Resource"]), `"*"`) {
					t.Errorf("the upgrade role may pass any role: %s", asJSON(st))
				}
			}
		}
	})
}

// With automatic upgrades, one schedule per range of plane.upgrade_window
// starts the upgrade task (the agent image, entry point /tether-upgrade,
// configured with exactly what tether-upgrade reads) at the range's start,
// in UTC, in the isolated subnets with its own security group.
func TestUpgradeSchedules(t *testing.T) {
	s := synth(t, "strict")
	if !s.cfg.Plane.AutomaticUpgrades || s.cfg.Plane.UpgradeWindow != "Sun 02:00-04:00; Wed 03:00-04:00" {
		t.Fatal("strict.yaml's automatic upgrades or window changed; update this test")
	}
	c := container(t, s, "upgrade")
	if asJSON(c["EntryPoint"]) != `["/tether-upgrade"]` || len(list(c["Command"])) != 0 {
		t.Errorf("the upgrade container runs %s %s, want /tether-upgrade with no arguments", asJSON(c["EntryPoint"]), asJSON(c["Command"]))
	}
	env, secrets := containerVars(s, c)
	reads := sourceReads(t, "upgrader")
	var names []string
	for name := range env {
		names = append(names, name)
	}
	sort.Strings(names)
	var want []string
	for name := range reads {
		want = append(want, name)
	}
	sort.Strings(want)
	if strings.Join(names, " ") != strings.Join(want, " ") || len(secrets) > 0 {
		t.Errorf("upgrade variables %v and secrets %v, want exactly what internal/upgrader reads: %v", names, secrets, want)
	}
	if env["TETHER_UPGRADE_WINDOW"] != s.cfg.Plane.UpgradeWindow || env["TETHER_SERVICES_STACK"] != s.cfg.Name+"-services" ||
		!strings.HasPrefix(env["TETHER_UPGRADE_ROLE_ARN"], "<GetAtt:UpgradeRole") || env["TETHER_RELEASE_RECORD"] != s.cfg.ReleaseRecordParameter() {
		t.Errorf("upgrade environment %v", env)
	}

	var tdID string
	for id, td := range resources(s, "services", "AWS::ECS::TaskDefinition") {
		if props(td)["Family"] == serviceName(s.cfg, "upgrade") {
			tdID = id
		}
	}
	role := subnetRoles(s)
	var crons []string
	for _, r := range resources(s, "services", "AWS::Scheduler::Schedule") {
		p := props(r)
		crons = append(crons, p["ScheduleExpression"].(string))
		target := p["Target"].(map[string]any)
		ecs := target["EcsParameters"].(map[string]any)
		vpc := ecs["NetworkConfiguration"].(map[string]any)["AwsvpcConfiguration"].(map[string]any)
		if p["ScheduleExpressionTimezone"] != "UTC" || asJSON(p["FlexibleTimeWindow"]) != `{"Mode":"OFF"}` || p["State"] != "ENABLED" {
			t.Errorf("schedule %s: timezone %v, window %s, state %v", p["Name"], p["ScheduleExpressionTimezone"], asJSON(p["FlexibleTimeWindow"]), p["State"])
		}
		if asJSON(ecs["TaskDefinitionArn"]) != `{"Ref":"`+tdID+`"}` || ecs["LaunchType"] != "FARGATE" || vpc["AssignPublicIp"] != "DISABLED" {
			t.Errorf("schedule %s runs %s", p["Name"], asJSON(ecs))
		}
		for _, sn := range list(vpc["Subnets"]) {
			if role(flatten(s, sn)) != subnetIsolated {
				t.Errorf("schedule %s runs the task in %s, not an isolated subnet", p["Name"], flatten(s, sn))
			}
		}
		if sg := flatten(s, list(vpc["SecurityGroups"])[0]); !strings.Contains(sg, "Tasksupgrade") {
			t.Errorf("schedule %s: security group %s, want the network stack's upgrade group", p["Name"], sg)
		}
		statements, _ := rolePolicies(s, target["RoleArn"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string))
		for _, st := range statements {
			if a := asJSON(st["Action"]); a != `"ecs:RunTask"` && a != `"iam:PassRole"` {
				t.Errorf("the scheduler's role may %s", a)
			}
		}
	}
	sort.Strings(crons)
	if got := strings.Join(crons, " "); got != "cron(0 2 ? * SUN *) cron(0 3 ? * WED *)" {
		t.Errorf("schedules %s, want the window's two starts", got)
	}
}

// tether-exchange runs the agent image's /tether-exchange on the agent's
// data dir (its EFS access point) with the exchange bucket's name, in the
// isolated subnets with its own security group, as many tasks as the
// agent. Its roles hold no right to change the deployment or read a
// secret: no ECS, CloudFormation, IAM, Scheduler or Secrets Manager action,
// no SSM write, no wildcard action.
func TestExchangeTask(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		c := container(t, s, "exchange")
		env, secrets := containerVars(s, c)
		reads := sourceReads(t, "exchange")
		if asJSON(c["EntryPoint"]) != `["/tether-exchange"]` || len(list(c["Command"])) != 0 || len(secrets) > 0 {
			t.Errorf("the exchange container runs %s %s with secrets %v", asJSON(c["EntryPoint"]), asJSON(c["Command"]), secrets)
		}
		for name := range env {
			if !reads[name] {
				t.Errorf("the exchange container sets %s, which internal/exchange does not read", name)
			}
		}
		if env["TETHER_DATA_DIR"] != agentDataDir || !strings.Contains(env["TETHER_EXCHANGE_BUCKET"], "Exchange") {
			t.Errorf("exchange environment %v", env)
		}
		if asJSON(c["MountPoints"]) != asJSON(container(t, s, "agent")["MountPoints"]) {
			t.Errorf("exchange mounts %s, the agent %s", asJSON(c["MountPoints"]), asJSON(container(t, s, "agent")["MountPoints"]))
		}
		var agent, exchange map[string]any
		for _, r := range resources(s, "services", "AWS::ECS::Service") {
			switch props(r)["ServiceName"] {
			case serviceName(s.cfg, "agent"):
				agent = props(r)
			case serviceName(s.cfg, "exchange"):
				exchange = props(r)
			}
		}
		if exchange == nil || asJSON(exchange["DesiredCount"]) != asJSON(agent["DesiredCount"]) {
			t.Fatalf("exchange service %s, agent's desired count %v", asJSON(exchange), agent["DesiredCount"])
		}
		vpc := exchange["NetworkConfiguration"].(map[string]any)["AwsvpcConfiguration"].(map[string]any)
		role := subnetRoles(s)
		for _, sn := range list(vpc["Subnets"]) {
			if role(flatten(s, sn)) != subnetIsolated {
				t.Errorf("the exchange task runs in %s, not an isolated subnet", flatten(s, sn))
			}
		}
		if sg := flatten(s, list(vpc["SecurityGroups"])[0]); !strings.Contains(sg, "Tasksexchange") {
			t.Errorf("exchange security group %s, want the network stack's exchange group", sg)
		}
		for _, r := range exchangeRoles(t, s) {
			statements, managed := rolePolicies(s, r)
			if len(managed) > 0 {
				t.Errorf("exchange role %s has managed policies %v", r, managed)
			}
			for _, st := range statements {
				for _, a := range list(st["Action"]) {
					action := strings.ToLower(a.(string))
					service, verb, _ := strings.Cut(action, ":")
					forbidden := action == "*" || verb == "*" ||
						slices.Contains([]string{"ecs", "cloudformation", "iam", "scheduler", "secretsmanager"}, service) ||
						service == "ssm" && !strings.HasPrefix(verb, "get") && !strings.HasPrefix(verb, "describe")
					if forbidden {
						t.Errorf("exchange role %s may %s on %s", r, a, flatten(s, st["Resource"]))
					}
				}
			}
		}
	})
}

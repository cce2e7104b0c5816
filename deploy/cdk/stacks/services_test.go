package stacks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/config"
	"github.com/tetherhq/tether/internal/deployconfig"
	"github.com/tetherhq/tether/internal/wire"
)

// taskStacks are the stacks with task definitions: migrate in the cluster
// stack, the services' in the services stack.
var taskStacks = []string{"cluster", "services"}

// taskDefinitions returns the task definitions of both stacks, each with the
// stack it is in.
func taskDefinitions(s *synthesized) (tds []map[string]any, stacks []string) {
	for _, stack := range taskStacks {
		for _, r := range resources(s, stack, "AWS::ECS::TaskDefinition") {
			tds, stacks = append(tds, r), append(stacks, stack)
		}
	}
	return tds, stacks
}

// container returns the one container of the task definition whose
// container is named family, and the stack it is in.
func container(t *testing.T, s *synthesized, family string) map[string]any {
	c, _ := containerIn(t, s, family)
	return c
}

func containerIn(t *testing.T, s *synthesized, family string) (map[string]any, string) {
	t.Helper()
	tds, stacks := taskDefinitions(s)
	for i, r := range tds {
		c := list(props(r)["ContainerDefinitions"])[0].(map[string]any)
		if c["Name"] == family {
			return c, stacks[i]
		}
	}
	t.Fatalf("no %s container", family)
	return nil, ""
}

// containerVars returns a container's plain environment by name, and the
// names of the variables ECS injects from secrets or parameters.
func containerVars(s *synthesized, c map[string]any) (env map[string]string, secrets []string) {
	env = map[string]string{}
	for _, e := range list(c["Environment"]) {
		m := e.(map[string]any)
		env[m["Name"].(string)] = flatten(s, m["Value"])
	}
	for _, e := range list(c["Secrets"]) {
		secrets = append(secrets, e.(map[string]any)["Name"].(string))
	}
	sort.Strings(secrets)
	return env, secrets
}

// agentReads is every TETHER_* variable tether-agent reads, taken from its
// source files (not its tests) so that a variable the agent drops (or renames) makes
// the stack's list fail here rather than be silently ignored by the agent.
func agentReads(t *testing.T) map[string]bool { return sourceReads(t, "agent") }

// sourceReads is every TETHER_* variable named in internal/<pkg>'s sources.
func sourceReads(t *testing.T, pkg string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "internal", pkg, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("find internal/%s's sources: %v", pkg, err)
	}
	reads := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`"(TETHER_[A-Z_]+)"`).FindAllStringSubmatch(string(src), -1) {
			reads[m[1]] = true
		}
	}
	if len(reads) < 3 {
		t.Fatalf("could not read the variables from internal/%s: %v", pkg, reads)
	}
	return reads
}

func TestAgentEnvironmentIsWhatTheAgentReads(t *testing.T) {
	// The variables the stack may pass: what the agent reads and the
	// deployment decides (not TETHER_STATUS_ADDR, which has no listener to
	// reach, nor TETHER_LICENSE_FILE: ECS injects the license itself).
	allowed := []string{
		"TETHER_DATA_DIR", "TETHER_PLANE_URL", "TETHER_LICENSE", "TETHER_LICENSE_PUBLIC_KEY",
		"TETHER_TRUSTED_ROOT", "TETHER_CHANNEL", "TETHER_DOCSVC_URL", "TETHER_HEARTBEAT",
		"TETHER_TELEMETRY", "TETHER_AUTO_APPROVE_DIAGNOSTICS", "TETHER_AGENT_IDENTITY_SECRET",
		"TETHER_RELEASE_RECORD", "TETHER_ALARM_PREFIX",
	}
	reads := agentReads(t)
	if !reads["TETHER_DATA_DIR"] || !reads["TETHER_LICENSE"] {
		t.Fatalf("could not read the agent's variables from internal/agent: %v", reads)
	}
	for _, name := range allowed {
		if !reads[name] {
			t.Errorf("%s is on the allowed list but internal/agent/config.go does not read it", name)
		}
	}
	forEachExample(t, func(t *testing.T, s *synthesized) {
		c := container(t, s, "agent")
		env, secrets := containerVars(s, c)
		var names []string
		for name := range env {
			names = append(names, name)
		}
		names = append(names, secrets...)
		sort.Strings(names)
		for _, name := range names {
			if !slices.Contains(allowed, name) {
				t.Errorf("agent container sets %s, which tether-agent does not read", name)
			}
		}
		want := []string{"TETHER_AGENT_IDENTITY_SECRET", "TETHER_ALARM_PREFIX", "TETHER_AUTO_APPROVE_DIAGNOSTICS", "TETHER_CHANNEL", "TETHER_DATA_DIR", "TETHER_DOCSVC_URL",
			"TETHER_LICENSE", "TETHER_LICENSE_PUBLIC_KEY", "TETHER_PLANE_URL", "TETHER_RELEASE_RECORD", "TETHER_TELEMETRY", "TETHER_TRUSTED_ROOT"}
		if env["TETHER_RELEASE_RECORD"] != "/tether/"+s.cfg.Name+"/state/releases" {
			t.Errorf("TETHER_RELEASE_RECORD = %q", env["TETHER_RELEASE_RECORD"])
		}
		if strings.Join(names, " ") != strings.Join(want, " ") {
			t.Errorf("agent variables\n got %v\nwant %v", names, want)
		}
		// The license is a secret; everything else is plain environment.
		if strings.Join(secrets, " ") != "TETHER_LICENSE" {
			t.Errorf("agent secrets = %v, want only TETHER_LICENSE", secrets)
		}
		if from := flatten(s, list(c["Secrets"])[0].(map[string]any)["ValueFrom"]); !strings.Contains(from, "Secretlicense") {
			t.Errorf("TETHER_LICENSE comes from %s, want the license secret", from)
		}
		for name, want := range map[string]string{
			"TETHER_DATA_DIR":           "/var/lib/tether-agent",
			"TETHER_PLANE_URL":          s.cfg.Plane.URL,
			"TETHER_CHANNEL":            s.cfg.Plane.Channel,
			"TETHER_LICENSE_PUBLIC_KEY": s.cfg.License.PublicKey,
			"TETHER_TRUSTED_ROOT":       s.cfg.Plane.TrustedRoot,
			// Both examples keep the agent policies at their defaults: off.
			"TETHER_TELEMETRY":                "false",
			"TETHER_AUTO_APPROVE_DIAGNOSTICS": "false",
		} {
			if env[name] != want {
				t.Errorf("%s = %q, want %q", name, env[name], want)
			}
		}
		if !strings.Contains(env["TETHER_AGENT_IDENTITY_SECRET"], "Secretagentidentity") {
			t.Errorf("TETHER_AGENT_IDENTITY_SECRET = %s, want the agent-identity secret's ARN", env["TETHER_AGENT_IDENTITY_SECRET"])
		}
		// The data directory (the egress ledger) outlives the task: it is
		// the EFS access point's mount, TLS in transit and IAM-authorized.
		if !strings.Contains(asJSON(c["MountPoints"]), `{"ContainerPath":"/var/lib/tether-agent","ReadOnly":false,"SourceVolume":"state"}`) {
			t.Errorf("TETHER_DATA_DIR is not on the state volume: %s", asJSON(c["MountPoints"]))
		}
		td := resources(s, "services", "AWS::ECS::TaskDefinition")
		var efs string
		for _, r := range td {
			for _, v := range list(props(r)["Volumes"]) {
				if v.(map[string]any)["Name"] == "state" {
					efs = asJSON(v)
				}
			}
		}
		if !strings.Contains(efs, `"TransitEncryption":"ENABLED"`) || !strings.Contains(efs, `"IAM":"ENABLED"`) || !strings.Contains(efs, "AccessPointId") {
			t.Errorf("the agent's state volume is not an IAM-authorized, TLS EFS access point: %s", efs)
		}
		fs := resources(s, "data", "AWS::EFS::FileSystem")
		if len(fs) != 1 {
			t.Errorf("want one agent state file system, got %d", len(fs))
		}
		for _, f := range fs {
			if props(f)["Encrypted"] != true || f["DeletionPolicy"] != "Retain" {
				t.Errorf("agent state file system is not encrypted and retained: %s", asJSON(f))
			}
		}
	})
}

// The agent policies in deployment.yaml reach the agent as the values its
// config parser (strconv.ParseBool) reads, on as well as off.
func TestAgentPoliciesReachTheAgent(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "examples", "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		yaml                 string
		telemetry, autoApply string
	}{
		{"", "false", "false"},
		{"agent:\n  telemetry: true\n", "true", "false"},
		{"agent:\n  diagnostics_approval: automatic\n", "false", "true"},
		{"agent:\n  telemetry: true\n  diagnostics_approval: manual\n", "true", "false"},
	} {
		cfg, err := deployconfig.Parse(append(slices.Clone(raw), c.yaml...))
		if err != nil {
			t.Fatalf("%q: %v", c.yaml, err)
		}
		env := (&services{tasks: &tasks{cfg: cfg}}).agentEnvironment(str("arn"))
		for name, want := range map[string]string{"TETHER_TELEMETRY": c.telemetry, "TETHER_AUTO_APPROVE_DIAGNOSTICS": c.autoApply} {
			got := *env[name]
			if got != want {
				t.Errorf("%q: %s = %q, want %q", c.yaml, name, got, want)
			}
			if b, err := strconv.ParseBool(got); err != nil || strconv.FormatBool(b) != want {
				t.Errorf("%q: %s = %q does not parse as the agent reads it: %v", c.yaml, name, got, err)
			}
		}
	}
}

func TestAgentReachesAPIInternally(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		ns := s.cfg.Name + ".tether.internal"
		env, _ := containerVars(s, container(t, s, "agent"))
		if got, want := env["TETHER_DOCSVC_URL"], "http://api."+ns+":9090"; got != want {
			t.Errorf("TETHER_DOCSVC_URL = %q, want %q", got, want)
		}
		apiEnv, _ := containerVars(s, container(t, s, "api"))
		if apiEnv["DOCSVC_ADDR"] != ":8080" || apiEnv["DOCSVC_INTERNAL_ADDR"] != ":9090" {
			t.Errorf("api listens on %q and internally on %q, want :8080 and :9090", apiEnv["DOCSVC_ADDR"], apiEnv["DOCSVC_INTERNAL_ADDR"])
		}

		// The namespace is the cluster stack's; the api's Cloud Map service
		// (services stack) imports its ID.
		namespaces := resources(s, "cluster", "AWS::ServiceDiscovery::PrivateDnsNamespace")
		var nsID string
		for id, r := range namespaces {
			if props(r)["Name"] == ns {
				nsID = id
			}
		}
		if len(namespaces) != 1 || nsID == "" {
			t.Fatalf("want one private DNS namespace %s, got %s", ns, asJSON(namespaces))
		}
		var discoveryID string
		for id, r := range resources(s, "services", "AWS::ServiceDiscovery::Service") {
			p := props(r)
			if p["Name"] == "api" && regexp.MustCompile(`^<Import:`+s.cfg.Name+`-cluster:ExportsOutputFnGetAtt`+nsID+`Id[0-9A-F]+>$`).MatchString(flatten(s, p["NamespaceId"])) {
				discoveryID = id
			}
		}
		if discoveryID == "" {
			t.Fatal("no Cloud Map service api in the namespace")
		}
		registered := false
		for _, r := range resources(s, "services", "AWS::ECS::Service") {
			p := props(r)
			if p["ServiceName"] == "tether-"+s.cfg.Name+"-api" {
				registered = strings.Contains(flatten(s, list(p["ServiceRegistries"])[0].(map[string]any)["RegistryArn"]), discoveryID)
			}
		}
		if !registered {
			t.Error("the api service does not register in Cloud Map")
		}

		// agent -> api on the api's port, both ways of the rule, and
		// nothing else reaches the api but the load balancer.
		groups := map[string]string{}
		for id, r := range resources(s, "network", "AWS::EC2::SecurityGroup") {
			desc := props(r)["GroupDescription"].(string)
			switch {
			case strings.HasSuffix(desc, ": docsvc api tasks"):
				groups["api"] = id
			case strings.Contains(desc, ": tether-agent"):
				groups["agent"] = id
			case strings.Contains(id, "LoadBalancer"):
				groups["loadbalancer"] = id
			}
		}
		if len(groups) != 3 {
			t.Fatalf("security groups not found: %v", groups)
		}
		sgID := func(family string) string { return "<GetAtt:" + groups[family] + ".GroupId>" }
		rule := func(r map[string]any) (from, to string) {
			p := props(r)
			return flatten(s, p["SourceSecurityGroupId"]), flatten(s, p["GroupId"])
		}
		// The load balancer reaches only the public listener, the agent
		// only the internal one (/readyz, /metrics).
		wantPort := map[string]float64{sgID("loadbalancer"): 8080, sgID("agent"): 9090}
		ingressToAPI := map[string]bool{}
		for _, r := range resources(s, "network", "AWS::EC2::SecurityGroupIngress") {
			from, to := rule(r)
			if to != sgID("api") {
				continue
			}
			p := props(r)
			if port := wantPort[from]; p["IpProtocol"] != "tcp" || p["FromPort"] != port || p["ToPort"] != port {
				t.Errorf("ingress to the api from %s is not tcp/%v only: %s", from, port, asJSON(p))
			}
			ingressToAPI[from] = true
		}
		if !ingressToAPI[sgID("agent")] || !ingressToAPI[sgID("loadbalancer")] || len(ingressToAPI) != 2 {
			t.Errorf("ingress to the api = %v, want from the agent and the load balancer only", ingressToAPI)
		}
		egress := false
		for _, r := range resources(s, "network", "AWS::EC2::SecurityGroupEgress") {
			p := props(r)
			if flatten(s, p["GroupId"]) == sgID("agent") && flatten(s, p["DestinationSecurityGroupId"]) == sgID("api") {
				egress = p["IpProtocol"] == "tcp" && p["FromPort"] == float64(9090) && p["ToPort"] == float64(9090)
			}
		}
		if !egress {
			t.Error("no agent egress rule to the api's internal listener on tcp/9090")
		}
	})
}

func TestInternalPathsHiddenFromLoadBalancer(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		var httpsID string
		for id, r := range resources(s, "services", "AWS::ElasticLoadBalancingV2::Listener") {
			if props(r)["Protocol"] == "HTTPS" {
				httpsID = id
			}
		}
		rules := resources(s, "services", "AWS::ElasticLoadBalancingV2::ListenerRule")
		if len(rules) != 1 {
			t.Fatalf("want one listener rule (the 404 for internal paths), got %d: %s", len(rules), asJSON(rules))
		}
		for id, r := range rules {
			p := props(r)
			if flatten(s, p["ListenerArn"]) != "<Ref:"+httpsID+">" {
				t.Errorf("rule %s is not on the HTTPS listener: %s", id, asJSON(p["ListenerArn"]))
			}
			// Any priority is above the default action, which is evaluated last.
			if p["Priority"] != float64(1) {
				t.Errorf("rule %s priority = %v, want 1", id, p["Priority"])
			}
			conds := list(p["Conditions"])
			if got, want := asJSON(conds), `[{"Field":"path-pattern","PathPatternConfig":{"Values":["/readyz","/metrics","/metrics/*"]}}]`; got != want {
				t.Errorf("rule %s conditions\n got %s\nwant %s", id, got, want)
			}
			actions := list(p["Actions"])
			if len(actions) != 1 {
				t.Fatalf("rule %s has %d actions", id, len(actions))
			}
			a := actions[0].(map[string]any)
			if a["Type"] != "fixed-response" || a["FixedResponseConfig"].(map[string]any)["StatusCode"] != "404" {
				t.Errorf("rule %s does not answer a fixed 404: %s", id, asJSON(a))
			}
		}
		// The target health check stays on liveness, which is not hidden.
		for id, r := range resources(s, "services", "AWS::ElasticLoadBalancingV2::TargetGroup") {
			if props(r)["HealthCheckPath"] != "/healthz" {
				t.Errorf("target group %s health check = %v, want /healthz", id, props(r)["HealthCheckPath"])
			}
		}
	})
}

// The secrets the operator or the agent fills start empty: no value from
// the template and no random placeholder, which the api and agent would only
// reject once started. The database secret alone is generated (RDS needs its
// first password).
func TestSuppliedSecretsStartEmpty(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		checked := 0
		for id, r := range resources(s, "data", "AWS::SecretsManager::Secret") {
			p := props(r)
			name, _ := p["Name"].(string)
			if strings.HasSuffix(name, "/database") {
				if p["GenerateSecretString"] == nil {
					t.Errorf("%s: the database secret is not generated", id)
				}
				continue
			}
			checked++
			if p["GenerateSecretString"] != nil || p["SecretString"] != nil {
				t.Errorf("%s (%s) is created with a value; it must start empty", id, name)
			}
			if d, _ := p["Description"].(string); !strings.Contains(d, "put-secret-value") && !strings.Contains(d, "the agent creates it") {
				t.Errorf("%s: the description does not say who sets it: %q", id, d)
			}
		}
		if checked < 2 {
			t.Fatalf("checked %d supplied secrets; want the license and the agent identity at least", checked)
		}
	})
}

// Secrets no task reads are not created (the ai secret aside).
func TestOnlyReadSecretsExist(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		var names []string
		for _, r := range resources(s, "data", "AWS::SecretsManager::Secret") {
			names = append(names, props(r)["Name"].(string))
		}
		sort.Strings(names)
		prefix := "tether/" + s.cfg.Name + "/"
		// ai exists whatever the provider (see TestConfigChangesKeepExportsInUse).
		// The database's secret is RDS's own (ManageMasterUserPassword),
		// not one of the stacks'.
		want := []string{prefix + "agent-identity", prefix + "ai", prefix + "license"}
		if strings.Join(names, " ") != strings.Join(want, " ") {
			t.Errorf("secrets = %v, want %v", names, want)
		}
		services := asJSON(s.json["services"]) + asJSON(s.json["cluster"])
		for _, id := range []string{"Secretlicense", "Secretagentidentity", "MasterUserSecretSecretArn"} {
			if !strings.Contains(services, id) {
				t.Errorf("no task reads %s", id)
			}
		}
		if reads := strings.Contains(services, "Secretai"); reads != s.cfg.WorkerNeedsInternet() {
			t.Errorf("a task reads the ai secret: %v; want %v (only key-based providers)", reads, s.cfg.WorkerNeedsInternet())
		}
	})
}

// importSample is what CloudFormation resolves each of the data stack's
// exports to, in the shape the real value has (the names are made up).
// An export without a sample fails the test, so a new one cannot slip by.
func importSample(s *synthesized, export string) (string, bool) {
	region, account := s.cfg.Region, s.cfg.Account
	for _, x := range []struct{ has, value string }{
		{"EndpointAddress", "tether.c0ffee.rds.amazonaws.com"},
		{"EndpointPort", "5432"},
		{"RefDocuments", s.cfg.Name + "-data-documents7e5b2978-abc123"},
		{"RefJobsDeadLetter", "https://sqs." + region + ".amazonaws.com/" + account + "/" + s.cfg.Name + "-data-JobsDeadLetter4FD84C94-abc"},
		{"RefJobs", "https://sqs." + region + ".amazonaws.com/" + account + "/" + s.cfg.Name + "-data-JobsDF1CC2D4-abc"},
		{"DataKey", "arn:aws:kms:" + region + ":" + account + ":key/0b9a8c7d-1234-4e5f-8a9b-0c1d2e3f4a5b"},
		{"ProviderURL", "https://cognito-idp." + region + ".amazonaws.com/" + region + "_AbCdEfGhI"},
		{"RefUsersDocsvc", "4k2c1n9m8b7v6c5x4z3l2k1j0h"},
		{"MasterUserSecretSecretArn", rdsSecretARN(s)},
	} {
		if strings.Contains(export, x.has) {
			return x.value, true
		}
	}
	return "", false
}

// dataSample replaces the data stack's own references in a value it writes
// with what CloudFormation resolves them to (made-up values, in shape).
func dataSample(s *synthesized, v string) string {
	region := s.cfg.Region
	return regexp.MustCompile(`<(GetAtt|Ref):[^>]+>`).ReplaceAllStringFunc(v, func(ref string) string {
		switch {
		case strings.Contains(ref, "ProviderURL"):
			return "https://cognito-idp." + region + ".amazonaws.com/" + region + "_AbCdEfGhI"
		case strings.Contains(ref, "UsersDocsvc"):
			return "4k2c1n9m8b7v6c5x4z3l2k1j0h"
		}
		return ref
	})
}

// docsvcEnv is the environment ECS gives a docsvc container: its plain
// variables, its SSM parameters' values (imports replaced by samples) and a
// placeholder for each Secrets Manager value.
func docsvcEnv(t *testing.T, s *synthesized, c map[string]any) map[string]string {
	t.Helper()
	env, _ := containerVars(s, c)
	imports := regexp.MustCompile(`<Import:([^>]+)>`)
	for _, sec := range list(c["Secrets"]) {
		m := sec.(map[string]any)
		name, from := m["Name"].(string), flatten(s, m["ValueFrom"])
		value := "placeholder-" + strings.ToLower(name) // a Secrets Manager secret
		// The migrate task refers to the cluster stack's parameters by
		// logical ID; the services read them, and the data stack's, by name.
		for id, p := range resources(s, "cluster", "AWS::SSM::Parameter") {
			if pname, _ := props(p)["Name"].(string); strings.Contains(from, "<Ref:"+id+">") || strings.HasSuffix(from, ":parameter"+pname) {
				value = flatten(s, props(p)["Value"])
			}
		}
		for _, p := range resources(s, "data", "AWS::SSM::Parameter") {
			if pname, _ := props(p)["Name"].(string); strings.HasSuffix(from, ":parameter"+pname) {
				value = dataSample(s, flatten(s, props(p)["Value"]))
			}
		}
		env[name] = imports.ReplaceAllStringFunc(value, func(m string) string {
			export := imports.FindStringSubmatch(m)[1]
			v, ok := importSample(s, export)
			if !ok {
				t.Errorf("%s: no sample value for import %s; add one to importSample", name, export)
			}
			return v
		})
	}
	return env
}

// Every docsvc task starts: its configuration passes docsvc's own
// validation (internal/config.Load, the first thing `docsvc <command>`
// does, for every command). Besides the examples, a key-based provider
// (openai, which also needs its base URL) exercises the AI key secret.
func TestDocsvcTasksPassConfigValidation(t *testing.T) {
	minimal, err := os.ReadFile(filepath.Join("..", "examples", "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	openai, err := deployconfig.Parse([]byte(strings.Replace(string(minimal), "ai:\n  provider: local\n",
		"ai:\n  provider: openai\n  model: gpt-4o-mini\n  base_url: https://llm.acme.example/v1\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if openai.AI.Provider != deployconfig.AIOpenAI {
		t.Fatal("minimal.yaml's ai block changed; update this test")
	}
	groups, err := deployconfig.Parse([]byte(strings.Replace(string(minimal), "  client_id: tether-docs\n",
		"  client_id: tether-docs\n  groups_claim: groups\n  shared_groups: [finance, legal team]\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if groups.Auth.GroupsClaim == "" {
		t.Fatal("minimal.yaml's auth block changed; update this test")
	}
	cases := []*synthesized{synth(t, "minimal"), synth(t, "strict"), synthConfig(t, "openai", openai), synthConfig(t, "groups", groups)}
	for _, s := range cases {
		t.Run(s.example, func(t *testing.T) { checkDocsvcConfig(t, s) })
	}
}

func checkDocsvcConfig(t *testing.T, s *synthesized) {
	for _, family := range []string{"api", "worker", "migrate"} {
		env := docsvcEnv(t, s, container(t, s, family))
		cfg, err := config.Load(context.Background(), func(k string) string { return env[k] }, databaseSecret{rdsSecretARN(s)})
		if err != nil {
			t.Errorf("%s: docsvc would exit at start:\n%v", family, err)
			continue
		}
		if !cfg.UsesS3() || !cfg.UsesSQS() || cfg.AI.Provider != s.cfg.AI.Provider {
			t.Errorf("%s: S3 %v, SQS %v, AI provider %q: not the deployment's", family, cfg.UsesS3(), cfg.UsesSQS(), cfg.AI.Provider)
		}
		// docsvc reads the database password from the secret itself, so
		// that a rotation needs no restart.
		if cfg.OIDC.Issuer == "" || strings.Contains(cfg.OIDC.Issuer+cfg.OIDC.Audience, "<") {
			t.Errorf("%s: token issuer %q, audience %q: not the deployment's", family, cfg.OIDC.Issuer, cfg.OIDC.Audience)
		}
		if cfg.OIDC.GroupsClaim != s.cfg.Auth.GroupsClaim || strings.Join(cfg.OIDC.SharedGroups, ",") != strings.Join(s.cfg.Auth.SharedGroups, ",") {
			t.Errorf("%s: groups claim %q, shared groups %q: not the deployment's", family, cfg.OIDC.GroupsClaim, cfg.OIDC.SharedGroups)
		}
		if cfg.DatabasePassword != "rds-generated" {
			t.Errorf("%s: database password not read from the database secret", family)
		}
		if (cfg.License != "") != (family == "api") {
			t.Errorf("%s: license set = %v", family, cfg.License != "")
		}
		if wantKey := s.cfg.WorkerNeedsInternet(); (cfg.AI.APIKey != "") != wantKey {
			t.Errorf("%s: AI key set = %v, want %v", family, cfg.AI.APIKey != "", wantKey)
		}
	}
}

// rdsSecretARN is a made-up ARN in the shape of the secret RDS creates for
// a managed master password (rds!db-<instance resource ID>).
func rdsSecretARN(s *synthesized) string {
	return "arn:aws:secretsmanager:" + s.cfg.Region + ":" + s.cfg.Account + ":secret:rds!db-3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b-AbCdEf"
}

// databaseSecret answers for the database secret, as RDS fills it, and
// nothing else: any other ARN in a docsvc task's configuration fails.
type databaseSecret struct{ arn string }

func (d databaseSecret) Resolve(_ context.Context, ref string) (string, error) {
	if ref != d.arn {
		return "", fmt.Errorf("no such secret %s", ref)
	}
	return `{"engine":"postgres","username":"docsvc","password":"rds-generated"}`, nil
}

// TestWorkerCompilesWithoutACache: the worker task's root file system is
// read-only, so docsvc's default cache directory (under the home directory)
// cannot be created; the task turns the cache off instead of warning about
// it at every start.
func TestWorkerCompilesWithoutACache(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		env, _ := containerVars(s, container(t, s, "worker"))
		if got := env["DOCSVC_EXTRACT_CACHE_DIR"]; got != "off" {
			t.Errorf("worker DOCSVC_EXTRACT_CACHE_DIR = %q, want off", got)
		}
	})
}

// TestAirGappedAgentRunsNoTask: without plane.url the agent has no plane to
// talk to and refuses to start, so its service runs no task (a service that
// kept one would never become stable, and tetherctl deploy waits for that).
func TestAirGappedAgentRunsNoTask(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "examples", "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const url = "  url: https://plane.vendor.example\n"
	if !strings.Contains(string(raw), url) {
		t.Fatal("minimal.yaml no longer sets plane.url this way; update this test")
	}
	// Releases staged from a bundle are applied in the window without a
	// plane too.
	cfg, err := deployconfig.Parse([]byte(strings.Replace(string(raw), url, "  automatic_upgrades: true\n  upgrade_window: Sun 02:00-04:00\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*synthesized{"air-gapped": synthConfig(t, "airgapped", cfg), "minimal": synth(t, "minimal")} {
		want := 1.0
		if name == "air-gapped" {
			want = 0
			if n := len(resources(s, "services", "AWS::Scheduler::Schedule")); n != 1 {
				t.Errorf("air-gapped with automatic upgrades: %d upgrade schedules, want 1", n)
			}
			cfn := false
			for _, e := range resources(s, "network", "AWS::EC2::VPCEndpoint") {
				cfn = cfn || strings.Contains(asJSON(props(e)["ServiceName"]), "cloudformation")
			}
			if !cfn {
				t.Error("air-gapped with automatic upgrades: no CloudFormation endpoint for tether-upgrade")
			}
		}
		services := resources(s, "services", "AWS::ECS::Service")
		found := false
		for _, svc := range services {
			p := props(svc)
			if !strings.HasSuffix(asJSON(p["ServiceName"]), `-agent"`) {
				continue
			}
			found = true
			if got, _ := p["DesiredCount"].(float64); got != want {
				t.Errorf("%s: the agent service's DesiredCount is %v, want %v", name, p["DesiredCount"], want)
			}
		}
		if !found {
			t.Fatalf("%s: no agent service among %d services", name, len(services))
		}
	}
}

// TestWarningsAreAlarms: every capacity alarm the agent may name in the
// heartbeat (wire.WarningNames) is an alarm of the deployment under the name
// the agent looks up (TETHER_ALARM_PREFIX + the short name), and the
// certificate's watches ACM's DaysToExpiry for the load balancer's
// certificate, 30 days ahead.
func TestWarningsAreAlarms(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		env, _ := containerVars(s, container(t, s, "agent"))
		prefix := env["TETHER_ALARM_PREFIX"]
		if prefix != "tether-"+s.cfg.Name+"-" {
			t.Fatalf("TETHER_ALARM_PREFIX = %q", prefix)
		}
		byName := map[string]map[string]any{}
		for _, a := range resources(s, "services", "AWS::CloudWatch::Alarm") {
			if n, ok := props(a)["AlarmName"].(string); ok {
				byName[n] = props(a)
			}
		}
		for _, w := range wire.WarningNames() {
			if _, ok := byName[prefix+w]; !ok {
				t.Errorf("the heartbeat may name %q, but the services stack has no alarm %s", w, prefix+w)
			}
		}
		cert := byName[prefix+"certificate-expiry"]
		if cert == nil {
			return
		}
		if cert["Namespace"] != "AWS/CertificateManager" || cert["MetricName"] != "DaysToExpiry" || cert["Threshold"] != 30.0 ||
			cert["ComparisonOperator"] != "LessThanOrEqualToThreshold" || !strings.Contains(asJSON(cert["Dimensions"]), "CertificateArn") {
			t.Errorf("certificate alarm: %s", asJSON(cert))
		}
	})
}

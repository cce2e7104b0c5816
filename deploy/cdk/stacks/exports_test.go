package stacks

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// exportsInUse maps each export that one of the deployment's stacks imports
// to the value its producer gives it (as template JSON).
func exportsInUse(s *synthesized) map[string]string {
	values := map[string]string{}
	for _, tpl := range s.json {
		outputs, _ := tpl["Outputs"].(map[string]any)
		for _, o := range outputs {
			out := o.(map[string]any)
			export, _ := out["Export"].(map[string]any)
			if name, ok := export["Name"].(string); ok {
				values[name] = asJSON(out["Value"])
			}
		}
	}
	inUse := map[string]string{}
	for _, tpl := range s.json {
		for _, name := range importsIn(tpl) {
			inUse[name] = values[name]
		}
	}
	return inUse
}

// importsIn lists the export names a template imports (Fn::ImportValue of a
// literal name, as the CDK writes them).
func importsIn(v any) []string {
	var names []string
	switch x := v.(type) {
	case map[string]any:
		for k, sub := range x {
			if name, ok := sub.(string); ok && k == "Fn::ImportValue" {
				names = append(names, name)
				continue
			}
			names = append(names, importsIn(sub)...)
		}
	case []any:
		for _, sub := range x {
			names = append(names, importsIn(sub)...)
		}
	}
	return names
}

// A change to deployment.yaml is deployed producer stack first. CloudFormation
// refuses to remove or change an export that a deployed stack still imports,
// so every export in use under configuration A must exist, with the same
// value, under configuration B; otherwise the update stops half-way and the
// operator has to take the deployment apart by hand.
func TestConfigChangesKeepExportsInUse(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "examples", "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	minimal := string(raw)
	variant := func(name string, edits ...string) (string, *deployconfig.Config) {
		y := minimal
		for i := 0; i < len(edits); i += 2 {
			if !strings.Contains(y, edits[i]) {
				t.Fatalf("%s: minimal.yaml no longer holds %q; update this test", name, edits[i])
			}
			y = strings.Replace(y, edits[i], edits[i+1], 1)
		}
		cfg, err := deployconfig.Parse([]byte(y))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return name, cfg
	}
	const localAI = "ai:\n  provider: local\n"
	const oidc = "auth:\n  provider: oidc\n  issuer: https://login.acme.example/realms/staff\n  client_id: tether-docs\n"
	configs := map[string]*deployconfig.Config{}
	for _, v := range [][]string{
		{"local"},
		{"openai", localAI, "ai:\n  provider: openai\n  model: gpt-4o-mini\n  base_url: https://llm.acme.example/v1\n"},
		{"anthropic", localAI, "ai:\n  provider: anthropic\n  model: claude-3-5-haiku-latest\n"},
		{"bedrock", localAI, "ai:\n  provider: bedrock\n  model: anthropic.claude-3-5-haiku-20241022-v1:0\n"},
		{"cognito", oidc, "auth:\n  provider: cognito\n  cognito_domain_prefix: acme-documents\n"},
		{"upgrades", "  channel: stable\n", "  channel: stable\n  automatic_upgrades: true\n  upgrade_window: Sun 02:00-04:00\n"},
	} {
		name, cfg := variant(v[0], v[1:]...)
		configs[name] = cfg
	}
	synths := map[string]*synthesized{}
	for name, cfg := range configs {
		synths[name] = synthConfig(t, "exports-"+name, cfg)
	}
	names := make([]string, 0, len(synths))
	for n := range synths {
		names = append(names, n)
	}
	sort.Strings(names)
	checked := 0
	for _, from := range names {
		before := exportsInUse(synths[from])
		for _, to := range names {
			if from == to {
				continue
			}
			// Everything the new producers export, in use or not.
			exported := map[string]string{}
			for _, tpl := range synths[to].json {
				outputs, _ := tpl["Outputs"].(map[string]any)
				for _, o := range outputs {
					out := o.(map[string]any)
					if export, ok := out["Export"].(map[string]any); ok {
						exported[export["Name"].(string)] = asJSON(out["Value"])
					}
				}
			}
			for name, value := range before {
				checked++
				switch got, ok := exported[name]; {
				case !ok:
					t.Errorf("%s → %s: export %s, imported under %s, disappears", from, to, name, from)
				case got != value:
					t.Errorf("%s → %s: export %s changes value: %s → %s", from, to, name, value, got)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no export in use was checked; the test is not looking at the templates")
	}
	fmt.Fprintf(os.Stderr, "checked %d export uses across %d configuration changes\n", checked, len(names)*(len(names)-1))
}

// accountUniqueNames are the properties whose value must be unique in an
// account and region (IAM role names: in the whole account).
var accountUniqueNames = map[string][]string{
	"AWS::CloudWatch::Alarm":       {"AlarmName"},
	"AWS::CloudWatch::Dashboard":   {"DashboardName"},
	"AWS::ECR::Repository":         {"RepositoryName"},
	"AWS::ECS::Cluster":            {"ClusterName"},
	"AWS::ECS::TaskDefinition":     {"Family"},
	"AWS::IAM::Role":               {"RoleName"},
	"AWS::KMS::Alias":              {"AliasName"},
	"AWS::Logs::LogGroup":          {"LogGroupName"},
	"AWS::RDS::DBInstance":         {"DBInstanceIdentifier"},
	"AWS::SSM::Parameter":          {"Name"},
	"AWS::SecretsManager::Secret":  {"Name"},
	"AWS::Cognito::UserPoolDomain": {"Domain"},
	"AWS::CodeBuild::Project":      {"Name"},
}

// Two deployments in one account and region (say a trial beside
// production) must not fight over a name: every account-unique name either
// one sets is its own.
func TestTwoDeploymentsInOneAccount(t *testing.T) {
	for _, example := range examples {
		t.Run(example, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "examples", example+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			first, err := deployconfig.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			y := strings.Replace(string(raw), "name: "+first.Name+"\n", "name: "+first.Name+"-two\n", 1)
			y = strings.Replace(y, "cognito_domain_prefix: ", "cognito_domain_prefix: two-", 1)
			second, err := deployconfig.Parse([]byte(y))
			if err != nil || second.Name == first.Name {
				t.Fatalf("second deployment: %v", err)
			}
			owner := map[string]string{}
			named := 0
			for _, s := range []*synthesized{synthConfig(t, "one", first), synthConfig(t, "two", second)} {
				for stack, tpl := range s.json {
					for id, r := range tpl["Resources"].(map[string]any) {
						res := r.(map[string]any)
						for _, prop := range accountUniqueNames[res["Type"].(string)] {
							name, ok := props(res)[prop].(string)
							if !ok {
								continue // generated by CloudFormation, or built from tokens
							}
							named++
							key := res["Type"].(string) + " " + name
							if prev, taken := owner[key]; taken && !strings.HasPrefix(prev, s.cfg.Name+"/") {
								t.Errorf("%s is set by both %s and %s/%s/%s", key, prev, s.cfg.Name, stack, id)
							}
							owner[key] = s.cfg.Name + "/" + stack + "/" + id
						}
					}
				}
			}
			if named < 20 {
				t.Fatalf("only %d fixed names found; the test is not reading the templates", named)
			}
		})
	}
}

package ctl

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// The stacks deploy/cdk synthesizes (its snapshot templates) have every
// output and parameter the release steps read, and the migrate container
// logs where runMigration looks: a renamed output fails here, not at a
// customer's first install.
func TestStacksHaveWhatReleaseStepsRead(t *testing.T) {
	t.Parallel()
	digest := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, name := range []string{"acme-docs", "globex-prod"} {
		images := readTemplate(t, name+"-images")
		for _, key := range repositoryOutputs {
			if _, ok := images.Outputs[key]; !ok {
				t.Errorf("%s-images has no output %s", name, key)
			}
		}
		if _, build := images.Outputs["BuildProject"]; build {
			if _, ok := images.Outputs["BuildSourceLocation"]; !ok {
				t.Errorf("%s-images has BuildProject without BuildSourceLocation", name)
			}
		}

		cluster := readTemplate(t, name+"-cluster")
		if _, ok := cluster.Parameters["MigrateImageDigest"]; !ok {
			t.Errorf("%s-cluster has no MigrateImageDigest parameter", name)
		}
		st := stackInfo{Name: name + "-cluster", Outputs: map[string]string{}, Parameters: map[string]string{"MigrateImageDigest": digest}}
		for k, o := range cluster.Outputs {
			if s, ok := o.Value.(string); ok {
				st.Outputs[k] = s
			} else {
				st.Outputs[k] = "from-an-intrinsic" // resolved at deploy time
			}
		}
		plan, err := migratePlanFrom(st, digest)
		if err != nil {
			t.Errorf("%s-cluster: %v", name, err)
			continue
		}
		found := false
		for _, r := range cluster.Resources {
			if r.Type != "AWS::ECS::TaskDefinition" {
				continue
			}
			for _, c := range r.Properties.ContainerDefinitions {
				if c.Name == plan.container {
					found = true
					if c.LogConfiguration.LogDriver != "awslogs" || c.LogConfiguration.Options["awslogs-stream-prefix"] == nil {
						t.Errorf("%s-cluster: container %s logs with %+v", name, c.Name, c.LogConfiguration)
					}
				}
			}
		}
		if !found {
			t.Errorf("%s-cluster: no task definition has a container %q (MigrateContainerName)", name, plan.container)
		}
	}
}

type template struct {
	Parameters map[string]any
	Outputs    map[string]struct{ Value any }
	Resources  map[string]struct {
		Type       string
		Properties struct {
			ContainerDefinitions []struct {
				Name             string
				LogConfiguration struct {
					LogDriver string
					Options   map[string]any
				}
			}
		}
	}
}

func readTemplate(t *testing.T, stack string) template {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "cdk", "testdata", stack+".template.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tpl template
	if err := json.Unmarshal(b, &tpl); err != nil {
		t.Fatalf("%s: %v", stack, err)
	}
	return tpl
}

package ctl

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/awstest"
)

// The snapshot assembly reads back as the contract's five stacks, in
// order, with what the manifest says about each.
func TestReadAssembly(t *testing.T) {
	t.Parallel()
	m := newMotoAssembly(t, assemblyOptions{})
	asm := readTestAssembly(t, m)
	var names []string
	for _, s := range asm.Stacks {
		names = append(names, s.StackName)
	}
	if got := strings.Join(names, " "); got != "acme-docs-network acme-docs-data acme-docs-images acme-docs-cluster acme-docs-services" {
		t.Fatalf("stacks: %s", got)
	}
	data := asm.byName("acme-docs-data")
	if !data.TerminationProtection || data.RequiresBootstrapVersion != 6 || data.BootstrapVersionParameter != "/cdk-bootstrap/hnb659fds/version" ||
		data.Tags["tether:deployment"] != "acme-docs" || !strings.Contains(data.ExecRoleARN, "cdk-hnb659fds-cfn-exec-role") {
		t.Errorf("data stack: %+v", data)
	}
	svc := asm.byName("acme-docs-services")
	if p := svc.Parameters["DocsvcImage"]; p.Type != "AWS::SSM::Parameter::Value<String>" || p.Default == nil {
		t.Errorf("services' DocsvcImage: %+v", p)
	}
	if _, ok := asm.byName("acme-docs-cluster").Parameters["MigrateImageDigest"]; !ok {
		t.Error("the cluster stack has no MigrateImageDigest")
	}
}

// editManifest rewrites the fixture's manifest.json through f.
func editManifest(t *testing.T, dir string, f func(m map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "manifest.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, _ := json.Marshal(m)
	mustWriteFile(t, path, out)
}

func artifact(m map[string]any, id string) map[string]any {
	return m["artifacts"].(map[string]any)[id].(map[string]any)
}

// What tetherctl deploy cannot deploy faithfully is refused, naming it.
func TestReadAssemblyRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(t *testing.T, dir string)
		want string
	}{
		{"another account", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) {
				artifact(m, "acme-docs-images")["environment"] = "aws://111122223333/" + awstest.Region
			})
		}, "synthesized for aws://111122223333/" + awstest.Region + ", but deployment.yaml is for aws://" + awstest.Account},
		{"a template outside the assembly", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) {
				artifact(m, "acme-docs-images")["properties"].(map[string]any)["templateFile"] = "../etc/passwd"
			})
		}, `templateFile "../etc/passwd" is not a file name inside the assembly`},
		{"a missing template", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "acme-docs-cluster.template.json"))
		}, "acme-docs-cluster.template.json"},
		{"a file asset", func(t *testing.T, dir string) {
			mustWriteFile(t, filepath.Join(dir, "acme-docs-images.assets.json"), []byte(`{"files":{"abc":{"source":{"path":"asset.lambda","packaging":"zip"}}}}`))
		}, "file asset abc (asset.lambda) is not the stack's template"},
		{"an image asset", func(t *testing.T, dir string) {
			mustWriteFile(t, filepath.Join(dir, "acme-docs-images.assets.json"), []byte(`{"dockerImages":{"abc":{}}}`))
		}, "container image assets"},
		{"a dependency cycle", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) {
				artifact(m, "acme-docs-network")["dependencies"] = []any{"acme-docs-services"}
			})
		}, "depend on each other in a cycle"},
		{"an unknown dependency", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) { artifact(m, "acme-docs-data")["dependencies"] = []any{"nosuch"} })
		}, `depends on "nosuch"`},
		{"not a template", func(t *testing.T, dir string) {
			mustWriteFile(t, filepath.Join(dir, "acme-docs-images.template.json"), []byte(`{"Resources":{}}`))
		}, "it has no Resources"},
		{"no stacks", func(t *testing.T, dir string) {
			mustWriteFile(t, filepath.Join(dir, "manifest.json"), []byte(`{"version":"55.0.0","artifacts":{"Tree":{"type":"cdk:tree"}}}`))
		}, "names no stacks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := newMotoAssembly(t, assemblyOptions{})
			tc.edit(t, m.Dir)
			_, err := readAssembly(m.Dir, awstest.Account, awstest.Region)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := readAssembly(t.TempDir(), awstest.Account, awstest.Region); err == nil || !strings.Contains(err.Error(), "synthesize again") {
		t.Errorf("an empty directory: %v", err)
	}
}

// Any manifest is read without panicking; one that is accepted names only
// stacks whose templates were read, in an order that respects their
// dependencies.
func FuzzReadAssembly(f *testing.F) {
	tpl := `{"Resources":{"R":{"Type":"AWS::CloudFormation::WaitConditionHandle"}},"Parameters":{"P":{"Type":"String","Default":"x"}}}`
	env := "aws://" + awstest.Account + "/" + awstest.Region
	f.Add(`{"version":"55.0.0","artifacts":{"a":{"type":"aws:cloudformation:stack","environment":"` + env + `","properties":{"templateFile":"a.template.json"}},` +
		`"b":{"type":"aws:cloudformation:stack","environment":"` + env + `","properties":{"templateFile":"a.template.json","stackName":"bee"},"dependencies":["a"]}}}`)
	f.Add(`{"version":"1","artifacts":{"a":{"type":"aws:cloudformation:stack","environment":"` + env + `","properties":{"templateFile":"a.template.json"},"dependencies":["a"]}}}`)
	f.Add(`{"version":"1","artifacts":{"a":{"type":"cdk:asset-manifest","properties":{"file":"../x"}}}}`)
	f.Add(`{"version":"1","artifacts":[]}`)
	f.Fuzz(func(t *testing.T, manifest string) {
		dir := t.TempDir()
		mustWriteFile(t, filepath.Join(dir, "manifest.json"), []byte(manifest))
		mustWriteFile(t, filepath.Join(dir, "a.template.json"), []byte(tpl))
		asm, err := readAssembly(dir, awstest.Account, awstest.Region)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("an empty error")
			}
			return
		}
		done := map[string]bool{}
		for _, s := range asm.Stacks {
			if len(s.Template) == 0 || s.Parameters == nil {
				t.Fatalf("stack %s accepted without its template", s.ID)
			}
			for _, d := range s.Dependencies {
				if !done[d] {
					t.Fatalf("stack %s comes before its dependency %s", s.ID, d)
				}
			}
			done[s.ID] = true
		}
	})
}

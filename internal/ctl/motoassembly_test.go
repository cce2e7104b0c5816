package ctl

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"

	"github.com/tetherhq/tether/internal/awstest"
)

// This file turns deploy/cdk's snapshot templates (deploy/cdk/testdata,
// synthesized from deploy/cdk/examples/minimal.yaml for account
// 111122223333 in eu-west-1) into a cloud assembly moto can deploy:
//
//   - the account, region and certificate are moto's (the test's);
//   - each resource of a type in testdata/moto-swapped-types.txt becomes an
//     AWS::CloudFormation::WaitConditionHandle, a resource CloudFormation
//     creates without doing anything (moto ignores it), and every Ref and
//     Fn::GetAtt to it becomes a placeholder ARN (a port for *Port
//     attributes); DependsOn on it is dropped;
//   - the database's managed secret (Fn::GetAtt MasterUserSecret.SecretArn)
//     becomes motoRDSSecretARN, which the deploy test creates as RDS would;
//   - a Transform, should a template have one, is dropped (none has:
//     deploy/cdk's TestBoundaryAndQualifierFromConfig).
//
// The list can only shrink: TestMotoSwappedTypesStillNeeded fails when moto
// now creates a listed type, and the deploy test fails when a template has
// a type moto skips that is not listed.

// snapshotAccount and snapshotRegion are what deploy/cdk's snapshots were
// synthesized for; snapshotCertificate is minimal.yaml's certificate.
const (
	snapshotAccount     = "111122223333"
	snapshotRegion      = "eu-west-1"
	snapshotCertificate = "arn:aws:acm:eu-west-1:111122223333:certificate/0b9a8c7d-1234-4e5f-8a9b-0c1d2e3f4a5b"
)

// snapshotStacks are the snapshot's stacks in the contract's order, each
// depending on the one before (deploy/cdk/stacks/app.go enforces it), and
// whether the stack is termination-protected.
var snapshotStacks = []struct {
	suffix    string
	protected bool
}{{"network", false}, {"data", true}, {"images", true}, {"cluster", false}, {"services", false}}

// swappedType is one line of testdata/moto-swapped-types.txt.
type swappedType struct {
	Type, Why string
}

func readSwappedTypes(t testing.TB) []swappedType {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "moto-swapped-types.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []swappedType
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		typ, why, _ := strings.Cut(line, " ")
		out = append(out, swappedType{Type: typ, Why: strings.TrimSpace(why)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// motoAssembly is a cdk.out directory made from the snapshot templates.
type motoAssembly struct {
	Dir string
	// Swapped counts the resources swapped, by type.
	Swapped map[string]int
	// Templates are the fixed-up templates, by stack suffix.
	Templates map[string]map[string]any
}

// assemblyOptions adjust the fixture for a test.
type assemblyOptions struct {
	certificateARN string // replaces the snapshot's certificate
	// unprotected turns termination protection off in the manifest (moto
	// has no UpdateTerminationProtection for the change-set path).
	unprotected bool
	// edit, when set, changes a stack's template after the swaps.
	edit func(suffix string, tpl map[string]any)
	// only limits the assembly to these stacks (dependencies between them
	// kept).
	only []string
}

// newMotoAssembly writes the assembly into a fresh directory.
func newMotoAssembly(t testing.TB, o assemblyOptions) *motoAssembly {
	t.Helper()
	swap := map[string]bool{}
	for _, s := range readSwappedTypes(t) {
		swap[s.Type] = true
	}
	m := &motoAssembly{Dir: t.TempDir(), Swapped: map[string]int{}, Templates: map[string]map[string]any{}}
	manifest := map[string]any{"version": "55.0.0"}
	artifacts := map[string]any{}
	var order []string
	prev := ""
	for _, s := range snapshotStacks {
		if len(o.only) > 0 && !slices.Contains(o.only, s.suffix) {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "cdk", "testdata", "acme-docs-"+s.suffix+".template.json"))
		if err != nil {
			t.Fatal(err)
		}
		text := string(raw)
		if o.certificateARN != "" {
			text = strings.ReplaceAll(text, snapshotCertificate, o.certificateARN)
		}
		text = strings.ReplaceAll(text, snapshotAccount, awstest.Account)
		text = strings.ReplaceAll(text, snapshotRegion, awstest.Region)
		var tpl map[string]any
		if err := json.Unmarshal([]byte(text), &tpl); err != nil {
			t.Fatal(err)
		}
		swapResources(tpl, swap, m.Swapped)
		if o.edit != nil {
			o.edit(s.suffix, tpl)
		}
		m.Templates[s.suffix] = tpl
		body, err := json.MarshalIndent(tpl, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		name := "acme-docs-" + s.suffix
		file := name + ".template.json"
		mustWriteFile(t, filepath.Join(m.Dir, file), body)
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:])
		assets := map[string]any{"version": "55.0.0", "files": map[string]any{hash: map[string]any{
			"source": map[string]any{"path": file, "packaging": "file"},
			"destinations": map[string]any{"current": map[string]any{
				"bucketName": "cdk-hnb659fds-assets-" + awstest.Account + "-" + awstest.Region, "objectKey": hash + ".json"}},
		}}, "dockerImages": map[string]any{}}
		assetsBody, _ := json.Marshal(assets)
		mustWriteFile(t, filepath.Join(m.Dir, name+".assets.json"), assetsBody)
		env := "aws://" + awstest.Account + "/" + awstest.Region
		artifacts[name+".assets"] = map[string]any{"type": "cdk:asset-manifest", "properties": map[string]any{
			"file": name + ".assets.json", "requiresBootstrapStackVersion": 6,
			"bootstrapStackVersionSsmParameter": "/cdk-bootstrap/hnb659fds/version"}}
		deps := []string{name + ".assets"}
		if prev != "" {
			deps = append([]string{prev}, deps...)
		}
		artifacts[name] = map[string]any{
			"type": "aws:cloudformation:stack", "environment": env,
			"properties": map[string]any{
				"templateFile":                      file,
				"terminationProtection":             s.protected && !o.unprotected,
				"tags":                              map[string]string{"tether:deployment": "acme-docs"},
				"validateOnSynth":                   false,
				"assumeRoleArn":                     "arn:${AWS::Partition}:iam::" + awstest.Account + ":role/cdk-hnb659fds-deploy-role-" + awstest.Account + "-" + awstest.Region,
				"cloudFormationExecutionRoleArn":    "arn:${AWS::Partition}:iam::" + awstest.Account + ":role/cdk-hnb659fds-cfn-exec-role-" + awstest.Account + "-" + awstest.Region,
				"stackTemplateAssetObjectUrl":       "s3://cdk-hnb659fds-assets-" + awstest.Account + "-" + awstest.Region + "/" + hash + ".json",
				"requiresBootstrapStackVersion":     6,
				"bootstrapStackVersionSsmParameter": "/cdk-bootstrap/hnb659fds/version",
				"additionalDependencies":            []string{name + ".assets"},
			},
			"dependencies": deps,
			"displayName":  name,
		}
		order = append(order, name+".assets", name)
		prev = name
	}
	// The manifest lists artifacts in the app's order, as cdk synth does.
	var b strings.Builder
	b.WriteString(`{"version":"55.0.0","artifacts":{`)
	for i, id := range order {
		if i > 0 {
			b.WriteString(",")
		}
		k, _ := json.Marshal(id)
		v, _ := json.Marshal(artifacts[id])
		b.Write(k)
		b.WriteString(":")
		b.Write(v)
	}
	b.WriteString(`,"Tree":{"type":"cdk:tree","properties":{"file":"tree.json"}}}}`)
	_ = manifest
	mustWriteFile(t, filepath.Join(m.Dir, "manifest.json"), []byte(b.String()))
	return m
}

// swapResources replaces the resources of the swapped types.
func swapResources(tpl map[string]any, swap map[string]bool, counts map[string]int) {
	delete(tpl, "Transform")
	resources, _ := tpl["Resources"].(map[string]any)
	swapped := map[string]bool{}
	for id, r := range resources {
		typ, _ := r.(map[string]any)["Type"].(string)
		if swap[typ] {
			swapped[id] = true
			counts[typ]++
			resources[id] = map[string]any{"Type": "AWS::CloudFormation::WaitConditionHandle"}
		}
	}
	for id, r := range resources {
		res := r.(map[string]any)
		switch dep := res["DependsOn"].(type) {
		case string:
			if swapped[dep] {
				delete(res, "DependsOn")
			}
		case []any:
			var keep []any
			for _, x := range dep {
				if s, _ := x.(string); !swapped[s] {
					keep = append(keep, x)
				}
			}
			if len(keep) == 0 {
				delete(res, "DependsOn")
			} else {
				res["DependsOn"] = keep
			}
		}
		resources[id] = replaceRefs(res, swapped)
	}
	if outs, ok := tpl["Outputs"]; ok {
		tpl["Outputs"] = replaceRefs(outs, swapped)
	}
}

// placeholderARN stands for a swapped resource's Ref or attribute.
// motoRDSSecretName is what the swapped database's managed secret is
// called: moto cannot create the instance, so no RDS makes the secret;
// the deploy test creates it under this name (setSecrets), as RDS would,
// and the stacks name it by motoRDSSecretARN, a partial ARN (without the
// six characters Secrets Manager appends), which Secrets Manager and moto
// resolve by name.
const (
	motoRDSSecretName = "rds!db-moto"
	motoRDSSecretARN  = "arn:aws:secretsmanager:" + awstest.Region + ":" + awstest.Account + ":secret:" + motoRDSSecretName
)

func placeholderARN(id string) string {
	return "arn:aws:cloudformation:" + awstest.Region + ":" + awstest.Account + ":placeholder/" + id
}

func replaceRefs(node any, swapped map[string]bool) any {
	switch n := node.(type) {
	case map[string]any:
		if len(n) == 1 {
			if ref, ok := n["Ref"].(string); ok && swapped[ref] {
				return placeholderARN(ref)
			}
			if ga, ok := n["Fn::GetAtt"].([]any); ok && len(ga) == 2 {
				id, _ := ga[0].(string)
				attr, _ := ga[1].(string)
				if swapped[id] {
					if strings.HasSuffix(attr, "Port") {
						return "5432"
					}
					if attr == "MasterUserSecret.SecretArn" {
						return motoRDSSecretARN
					}
					return placeholderARN(id)
				}
			}
		}
		out := map[string]any{}
		for k, v := range n {
			out[k] = replaceRefs(v, swapped)
		}
		return out
	case []any:
		out := make([]any, len(n))
		for i, v := range n {
			out[i] = replaceRefs(v, swapped)
		}
		return out
	}
	return node
}

func mustWriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// logSwapped prints what the fixture swapped, so a reader of the test's
// output sees how much of the real templates moto did not create.
func (m *motoAssembly) logSwapped(t testing.TB) {
	t.Helper()
	var lines []string
	for _, typ := range sortedKeys(m.Swapped) {
		lines = append(lines, fmt.Sprintf("  %-48s %d", typ, m.Swapped[typ]))
	}
	t.Logf("resources swapped for placeholders (moto cannot create them; testdata/moto-swapped-types.txt):\n%s", strings.Join(lines, "\n"))
}

// checkNothingSkipped fails the test when moto silently skipped a resource
// of a type the swap list does not name: moto ignores types it has no
// model for, so they are missing from the stack's resources.
func (m *motoAssembly) checkNothingSkipped(t testing.TB, ctx context.Context, a *awsSession) {
	t.Helper()
	cfn := a.CloudFormation()
	for suffix, tpl := range m.Templates {
		want := map[string]int{}
		for _, r := range tpl["Resources"].(map[string]any) {
			if typ := r.(map[string]any)["Type"].(string); typ != "AWS::CloudFormation::WaitConditionHandle" {
				want[typ]++
			}
		}
		have := map[string]int{}
		p := cloudformation.NewListStackResourcesPaginator(cfn, &cloudformation.ListStackResourcesInput{StackName: aws.String("acme-docs-" + suffix)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("list the resources of acme-docs-%s: %v", suffix, err)
			}
			for _, r := range page.StackResourceSummaries {
				have[aws.ToString(r.ResourceType)]++
			}
		}
		var skipped []string
		for typ, n := range want {
			if have[typ] < n {
				skipped = append(skipped, fmt.Sprintf("%s (%d of %d)", typ, n-have[typ], n))
			}
		}
		sort.Strings(skipped)
		if len(skipped) > 0 {
			t.Errorf("moto did not create these resources of acme-docs-%s, and testdata/moto-swapped-types.txt does not list their types: %s; add them there with the reason", suffix, strings.Join(skipped, ", "))
		}
	}
}

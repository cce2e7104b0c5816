package ctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// This file reads a CDK cloud assembly (the cdk.out directory `cdk synth`
// writes): manifest.json names each stack, its template file, its
// dependencies, its termination protection, tags and the bootstrap it
// needs; each stack's asset manifest says what must be published before it
// deploys. tetherctl deploys the stacks itself (cfn.go), so it reads only
// what cdk deploy would read for a stack whose only asset is its template.

// maxTemplateBytes is CloudFormation's limit on a template given by URL.
const maxTemplateBytes = 1 << 20

// maxManifestBytes bounds manifest.json and the asset manifests, which are a
// few kilobytes (the feature-flag report makes manifest.json ~100 KB).
const maxManifestBytes = 4 << 20

// assembly is a cloud assembly's stacks, in deployment order.
type assembly struct {
	Dir    string
	Stacks []*stackArtifact
}

// stackArtifact is one stack of the assembly.
type stackArtifact struct {
	ID        string // the artifact id (the construct id)
	StackName string
	Account   string
	Region    string
	// TemplateFile is the template's file name in the assembly; Template
	// its content.
	TemplateFile          string
	Template              []byte
	TerminationProtection bool
	Tags                  map[string]string
	// RequiresBootstrapVersion is the oldest CDK bootstrap the stack
	// accepts, and BootstrapVersionParameter the SSM parameter holding the
	// bootstrap's version.
	RequiresBootstrapVersion  int
	BootstrapVersionParameter string
	// ExecRoleARN is the role CloudFormation deploys the stack as, with
	// ${AWS::Partition} still in it.
	ExecRoleARN  string
	Dependencies []string // ids of the stacks it depends on
	// Parameters are the template's parameters; Outputs its output ids.
	Parameters map[string]templateParameter
	Outputs    []string
}

type templateParameter struct {
	Type    string
	Default *string
}

// byName returns the stack of that name, or nil.
func (a *assembly) byName(name string) *stackArtifact {
	for _, s := range a.Stacks {
		if s.StackName == name {
			return s
		}
	}
	return nil
}

// The manifest as written by cdk synth (cloud-assembly-schema 30 and later).
type manifestFile struct {
	Version   string          `json:"version"`
	Artifacts json.RawMessage `json:"artifacts"`
}

type manifestArtifact struct {
	Type         string          `json:"type"`
	Environment  string          `json:"environment"`
	Properties   json.RawMessage `json:"properties"`
	Dependencies []string        `json:"dependencies"`
}

type stackProperties struct {
	TemplateFile                      string            `json:"templateFile"`
	StackName                         string            `json:"stackName"`
	TerminationProtection             bool              `json:"terminationProtection"`
	Tags                              map[string]string `json:"tags"`
	CloudFormationExecutionRoleArn    string            `json:"cloudFormationExecutionRoleArn"`
	RequiresBootstrapStackVersion     int               `json:"requiresBootstrapStackVersion"`
	BootstrapStackVersionSsmParameter string            `json:"bootstrapStackVersionSsmParameter"`
	Parameters                        map[string]string `json:"parameters"`
}

type assetManifestProperties struct {
	File string `json:"file"`
}

// assetManifest is <stack>.assets.json.
type assetManifest struct {
	Files map[string]struct {
		Source struct {
			Path      string `json:"path"`
			Packaging string `json:"packaging"`
		} `json:"source"`
	} `json:"files"`
	DockerImages map[string]json.RawMessage `json:"dockerImages"`
}

const (
	artifactStack         = "aws:cloudformation:stack"
	artifactAssetManifest = "cdk:asset-manifest"
)

var envRE = regexp.MustCompile(`^aws://([0-9]{12})/([a-z]{2}(?:-[a-z]+)+-[0-9])$`)

// readAssembly reads dir/manifest.json and the stacks' templates, and
// returns the stacks in an order that deploys each after those it depends
// on (keeping the manifest's order otherwise). account and region are the
// deployment's: a stack synthesized for another environment is refused.
func readAssembly(dir, account, region string) (*assembly, error) {
	fix := "synthesize again (tetherctl deploy without --cdk-out does), or pass --cdk-out with the cdk.out directory cdk synth wrote"
	data, err := readLimited(filepath.Join(dir, "manifest.json"), maxManifestBytes)
	if err != nil {
		return nil, fmt.Errorf("reading the cloud assembly: %w; %s", err, fix)
	}
	var m manifestFile
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: not a cloud assembly manifest: %v; %s", filepath.Join(dir, "manifest.json"), err, fix)
	}
	if m.Version == "" || len(m.Artifacts) == 0 {
		return nil, fmt.Errorf("%s: not a cloud assembly manifest (no version or no artifacts); %s", filepath.Join(dir, "manifest.json"), fix)
	}
	ids, raw, err := orderedObject(m.Artifacts)
	if err != nil {
		return nil, fmt.Errorf("%s: artifacts: %v; %s", filepath.Join(dir, "manifest.json"), err, fix)
	}
	arts := map[string]manifestArtifact{}
	for i, id := range ids {
		var a manifestArtifact
		if err := json.Unmarshal(raw[i], &a); err != nil {
			return nil, fmt.Errorf("%s: artifact %q: %v; %s", filepath.Join(dir, "manifest.json"), id, err, fix)
		}
		arts[id] = a
	}
	asm := &assembly{Dir: dir}
	for _, id := range ids {
		a := arts[id]
		if a.Type != artifactStack {
			continue
		}
		st, err := readStackArtifact(dir, id, a, arts, account, region)
		if err != nil {
			return nil, fmt.Errorf("%s: stack %q: %w", filepath.Join(dir, "manifest.json"), id, err)
		}
		asm.Stacks = append(asm.Stacks, st)
	}
	if len(asm.Stacks) == 0 {
		return nil, fmt.Errorf("%s names no stacks; %s", filepath.Join(dir, "manifest.json"), fix)
	}
	asm.Stacks, err = dependencyOrder(asm.Stacks)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "manifest.json"), err)
	}
	return asm, nil
}

func readStackArtifact(dir, id string, a manifestArtifact, arts map[string]manifestArtifact, account, region string) (*stackArtifact, error) {
	var p stackProperties
	if err := json.Unmarshal(a.Properties, &p); err != nil {
		return nil, fmt.Errorf("properties: %v", err)
	}
	m := envRE.FindStringSubmatch(a.Environment)
	if m == nil {
		return nil, fmt.Errorf("environment %q is not aws://ACCOUNT/REGION: synthesize with a deployment.yaml that names the account and region", a.Environment)
	}
	if m[1] != account || m[2] != region {
		return nil, fmt.Errorf("synthesized for %s, but deployment.yaml is for aws://%s/%s: synthesize again from this deployment.yaml", a.Environment, account, region)
	}
	if p.TemplateFile == "" || !filepath.IsLocal(p.TemplateFile) || filepath.Base(p.TemplateFile) != p.TemplateFile {
		return nil, fmt.Errorf("templateFile %q is not a file name inside the assembly", p.TemplateFile)
	}
	if len(p.Parameters) > 0 {
		return nil, errors.New("the manifest sets stack parameters, which tetherctl does not pass; synthesize without them")
	}
	st := &stackArtifact{
		ID: id, StackName: p.StackName, Account: m[1], Region: m[2],
		TemplateFile: p.TemplateFile, TerminationProtection: p.TerminationProtection, Tags: p.Tags,
		RequiresBootstrapVersion: p.RequiresBootstrapStackVersion, BootstrapVersionParameter: p.BootstrapStackVersionSsmParameter,
		ExecRoleARN: p.CloudFormationExecutionRoleArn,
	}
	if st.StackName == "" {
		st.StackName = id
	}
	if !stackNameRE.MatchString(st.StackName) {
		return nil, fmt.Errorf("stack name %q is not a CloudFormation stack name", st.StackName)
	}
	for _, dep := range a.Dependencies {
		d, ok := arts[dep]
		switch {
		case !ok:
			return nil, fmt.Errorf("depends on %q, which the manifest does not define", dep)
		case d.Type == artifactStack:
			st.Dependencies = append(st.Dependencies, dep)
		case d.Type == artifactAssetManifest:
			if err := checkAssets(dir, dep, d, p.TemplateFile); err != nil {
				return nil, err
			}
		}
	}
	tpl, err := readLimited(filepath.Join(dir, p.TemplateFile), maxTemplateBytes)
	if err != nil {
		return nil, err
	}
	st.Template = tpl
	if err := st.parseTemplate(); err != nil {
		return nil, fmt.Errorf("%s: %w", p.TemplateFile, err)
	}
	return st, nil
}

var stackNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,127}$`)

// checkAssets refuses a stack with assets other than its own template:
// tetherctl publishes templates only (Tether's stacks have no other
// assets), and a stack deployed without its assets would refer to missing
// files or images.
func checkAssets(dir, id string, a manifestArtifact, templateFile string) error {
	var p assetManifestProperties
	if err := json.Unmarshal(a.Properties, &p); err != nil {
		return fmt.Errorf("asset manifest %q: properties: %v", id, err)
	}
	if p.File == "" || !filepath.IsLocal(p.File) || filepath.Base(p.File) != p.File {
		return fmt.Errorf("asset manifest %q: file %q is not a file name inside the assembly", id, p.File)
	}
	data, err := readLimited(filepath.Join(dir, p.File), maxManifestBytes)
	if err != nil {
		return err
	}
	var am assetManifest
	if err := json.Unmarshal(data, &am); err != nil {
		return fmt.Errorf("%s: not an asset manifest: %v", p.File, err)
	}
	for hash, f := range am.Files {
		if f.Source.Path != templateFile {
			return fmt.Errorf("%s: file asset %s (%s) is not the stack's template; tetherctl deploy publishes templates only: deploy this app with cdk deploy", p.File, truncateText(hash, 12), truncateText(f.Source.Path, 60))
		}
	}
	if len(am.DockerImages) > 0 {
		return fmt.Errorf("%s: the stack has container image assets; tetherctl deploy publishes templates only: deploy this app with cdk deploy", p.File)
	}
	return nil
}

// parseTemplate checks the template is a CloudFormation JSON template and
// records its parameters and outputs.
func (st *stackArtifact) parseTemplate() error {
	var t struct {
		Resources  map[string]json.RawMessage `json:"Resources"`
		Parameters map[string]struct {
			Type    string `json:"Type"`
			Default any    `json:"Default"`
		} `json:"Parameters"`
		Outputs map[string]json.RawMessage `json:"Outputs"`
	}
	if err := json.Unmarshal(st.Template, &t); err != nil {
		return fmt.Errorf("not a JSON CloudFormation template: %v", err)
	}
	if len(t.Resources) == 0 {
		return errors.New("not a CloudFormation template: it has no Resources")
	}
	st.Parameters = map[string]templateParameter{}
	for name, p := range t.Parameters {
		if p.Type == "" {
			return fmt.Errorf("parameter %q has no Type", name)
		}
		tp := templateParameter{Type: p.Type}
		switch d := p.Default.(type) {
		case nil:
		case string:
			tp.Default = &d
		case float64, bool:
			s := fmt.Sprint(d)
			tp.Default = &s
		default:
			return fmt.Errorf("parameter %q: Default is not a string or number", name)
		}
		st.Parameters[name] = tp
	}
	for name := range t.Outputs {
		st.Outputs = append(st.Outputs, name)
	}
	return nil
}

// dependencyOrder sorts stacks so each comes after its dependencies,
// keeping the given order where there is a choice. A cycle is an error.
func dependencyOrder(stacks []*stackArtifact) ([]*stackArtifact, error) {
	byID := map[string]*stackArtifact{}
	for _, s := range stacks {
		byID[s.ID] = s
	}
	done := map[string]bool{}
	var out []*stackArtifact
	for len(out) < len(stacks) {
		progressed := false
		for _, s := range stacks {
			if done[s.ID] {
				continue
			}
			ready := true
			for _, d := range s.Dependencies {
				if _, ok := byID[d]; ok && !done[d] {
					ready = false
				}
			}
			if ready {
				done[s.ID] = true
				out = append(out, s)
				progressed = true
				break // restart from the top: keep the manifest's order
			}
		}
		if !progressed {
			var left []string
			for _, s := range stacks {
				if !done[s.ID] {
					left = append(left, s.ID)
				}
			}
			return nil, fmt.Errorf("the stacks %s depend on each other in a cycle", strings.Join(left, ", "))
		}
	}
	return out, nil
}

// orderedObject returns a JSON object's keys and values in document order
// (encoding/json's maps lose it, and the manifest's order is the app's).
func orderedObject(data []byte) ([]string, []json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, errors.New("not a JSON object")
	}
	var keys []string
	var vals []json.RawMessage
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k, ok := tok.(string)
		if !ok {
			return nil, nil, errors.New("not a JSON object")
		}
		if seen[k] {
			return nil, nil, fmt.Errorf("%q appears twice", k)
		}
		seen[k] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		keys = append(keys, k)
		vals = append(vals, v)
	}
	return keys, vals, nil
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d this file may have", path, fi.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is more than the %d bytes this file may have", path, limit)
	}
	return data, nil
}

package stacks

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// cdk destroy leaves the customer's data behind (resources with
// DeletionPolicy Retain, or Snapshot: deleted after a final snapshot), and a
// new deployment of the same name must then succeed. So a kept resource may
// not carry a fixed physical name that the next deployment would create
// again: AWS refuses the second bucket, instance, log group, repository or
// secret of one name.

// uniqueNames are the properties that name a resource uniquely in an
// account and region, by type. Any other property of a kept resource whose
// name ends in Name or Identifier must be listed in notNames, with why it
// cannot collide, so a new kind of kept resource is never waved through.
var uniqueNames = map[string][]string{
	"AWS::S3::Bucket":              {"BucketName"},
	"AWS::RDS::DBInstance":         {"DBInstanceIdentifier"},
	"AWS::RDS::DBSubnetGroup":      {"DBSubnetGroupName"},
	"AWS::RDS::DBParameterGroup":   {"DBParameterGroupName"},
	"AWS::KMS::Alias":              {"AliasName"},
	"AWS::Logs::LogGroup":          {"LogGroupName"},
	"AWS::ECR::Repository":         {"RepositoryName"},
	"AWS::SecretsManager::Secret":  {"Name"},
	"AWS::SQS::Queue":              {"QueueName"},
	"AWS::SSM::Parameter":          {"Name"},
	"AWS::IAM::Role":               {"RoleName"},
	"AWS::EC2::SecurityGroup":      {"GroupName"},
	"AWS::Cognito::UserPoolDomain": {"Domain"},
	"AWS::CodeBuild::Project":      {"Name"},
	"AWS::EFS::FileSystem":         {"CreationToken"},
}

var notNames = map[string]string{
	"AWS::Cognito::UserPool.UserPoolName":          "user pool names need not be unique; the pool's ID is",
	"AWS::RDS::DBInstance.DBName":                  "the database created inside the instance, not a name in the account",
	"AWS::RDS::DBInstance.DBSnapshotIdentifier":    "the snapshot the instance is restored from: an input, not a name it takes",
	"AWS::RDS::DBInstance.DBParameterGroupName":    "a reference to the parameter group",
	"AWS::RDS::DBInstance.DBSubnetGroupName":       "a reference to the subnet group",
	"AWS::S3::BucketPolicy.Bucket":                 "a reference to the bucket",
	"AWS::RDS::DBInstance.MasterUsername":          "the database's user, not a name in the account",
	"AWS::Cognito::UserPool.UsernameAttributes":    "how users sign in",
	"AWS::Cognito::UserPool.UsernameConfiguration": "how users sign in",
}

// adoptedNames are the kept names a re-create may not change, because other
// code addresses the resource by it: the new deployment adopts the kept
// resource instead (the field of deployment.yaml that says so), so it never
// creates one of that name again.
var adoptedNames = map[string]string{
	"AWS::SecretsManager::Secret.Name":    "adopt.secrets",
	"AWS::ECR::Repository.RepositoryName": "adopt.repositories",
}

// constantRefs are pseudo parameters whose value is the same for the next
// deployment of the same name; AWS::StackId is not (it is new each time).
var constantRefs = map[string]bool{"AWS::Region": true, "AWS::AccountId": true, "AWS::Partition": true, "AWS::URLSuffix": true, "AWS::StackName": true}

var subRefRE = regexp.MustCompile(`\$\{([^}!]+)\}`)

// fixedValue reports whether a template value comes out the same when the
// stack is created again: literals, constant pseudo parameters and functions
// of them. A reference to a resource or to AWS::StackId is new each time.
func fixedValue(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		for fn, arg := range v {
			switch fn {
			case "Ref":
				return constantRefs[fmt.Sprint(arg)]
			case "Fn::GetAtt", "Fn::ImportValue":
				return false
			case "Fn::Sub":
				tmpl := arg
				if l, ok := arg.([]any); ok && len(l) > 0 {
					tmpl = l[0]
				}
				for _, m := range subRefRE.FindAllStringSubmatch(fmt.Sprint(tmpl), -1) {
					if !constantRefs[m[1]] {
						return false
					}
				}
				return true
			}
			return fixedValue(arg)
		}
		return true
	case []any:
		for _, x := range v {
			if !fixedValue(x) {
				return false
			}
		}
		return true
	default:
		return true
	}
}

func kept(r map[string]any) bool {
	switch r["DeletionPolicy"] {
	case "Retain", "RetainExceptOnCreate", "Snapshot":
		return true
	}
	return false
}

func TestRetainedResourcesHaveNoFixedNames(t *testing.T) {
	forAllExamples(t, func(t *testing.T, s *synthesized) {
		keptCount := 0
		for stack, tpl := range s.json {
			for id, raw := range tpl["Resources"].(map[string]any) {
				r := raw.(map[string]any)
				if !kept(r) {
					continue
				}
				keptCount++
				typ := r["Type"].(string)
				names := map[string]bool{}
				for _, p := range uniqueNames[typ] {
					names[p] = true
				}
				for p := range props(r) {
					if (strings.HasSuffix(p, "Name") || strings.HasSuffix(p, "Identifier")) && !names[p] && notNames[typ+"."+p] == "" {
						t.Errorf("%s/%s (%s, %s): property %s may be a physical name; add it to uniqueNames, or to notNames saying why it cannot collide", stack, id, typ, r["DeletionPolicy"], p)
					}
				}
				for p := range names {
					v, ok := props(r)[p]
					if !ok || !fixedValue(v) {
						continue
					}
					if field := adoptedNames[typ+"."+p]; field != "" {
						continue // checked below: set field, and the stack creates none
					}
					t.Errorf("%s/%s (%s, DeletionPolicy %s) has the fixed %s %s: after destroy it stays, and the next deployment of %q collides with it; let CloudFormation name it or make it unique per stack creation",
						stack, id, typ, r["DeletionPolicy"], p, asJSON(v), s.cfg.Name)
				}
			}
		}
		if keptCount < 10 {
			t.Fatalf("only %d kept resources: the walk is not seeing the templates", keptCount)
		}
		// Adoption replaces creation: with the field set, the stacks create
		// no resource of that type to collide with the kept one.
		adopting := map[string]bool{
			"AWS::SecretsManager::Secret": s.cfg.Adopt.Secrets.ByKind() != nil,
			"AWS::ECR::Repository":        s.cfg.Adopt.Repositories,
		}
		for typ, on := range adopting {
			for stack := range s.json {
				if n := len(resources(s, stack, typ)); on && n > 0 {
					t.Errorf("%s creates %d %s although deployment.yaml adopts the kept ones (%s)", stack, n, typ, adoptedNames[typ+"."+uniqueNames[typ][0]])
				}
			}
		}
	})
}

// Deleting a stack must not fail on what a retained resource still uses:
// everything a retained resource refers to in its own template (Ref,
// Fn::GetAtt, DependsOn) is retained too. (What it imports from another
// stack is released when its own stack is gone; what a Snapshot resource
// uses is deleted after it.)
func TestRetainedResourcesKeepWhatTheyUse(t *testing.T) {
	forAllExamples(t, func(t *testing.T, s *synthesized) {
		for stack, tpl := range s.json {
			all := tpl["Resources"].(map[string]any)
			for id, raw := range all {
				r := raw.(map[string]any)
				if r["DeletionPolicy"] != "Retain" {
					continue
				}
				for _, dep := range references(r) {
					d, ok := all[dep].(map[string]any)
					if !ok {
						continue // a parameter, a condition or a pseudo parameter
					}
					if d["DeletionPolicy"] != "Retain" {
						t.Errorf("%s/%s is retained but uses %s (%s), which deleting the stack deletes: AWS refuses that while it is in use, or the retained resource is left broken; retain it too", stack, id, dep, d["Type"])
					}
				}
			}
		}
	})
}

// What deleting a stack does around retained resources: their buckets'
// policies stay with them (TLS only, the agent denied), and key aliases go,
// so the next deployment can take the same alias names.
func TestRetainedNeighbours(t *testing.T) {
	forAllExamples(t, func(t *testing.T, s *synthesized) {
		policies := 0
		for stack, tpl := range s.json {
			all := tpl["Resources"].(map[string]any)
			for id, r := range resources(s, stack, "AWS::S3::BucketPolicy") {
				policies++
				retained := true // an adopted bucket (named, not a Ref) is kept by definition
				if ref, ok := props(r)["Bucket"].(map[string]any); ok {
					bucket, _ := all[fmt.Sprint(ref["Ref"])].(map[string]any)
					retained = bucket != nil && bucket["DeletionPolicy"] == "Retain"
				}
				if retained && r["DeletionPolicy"] != "Retain" {
					t.Errorf("%s/%s: the policy of a kept bucket is deleted with the stack", stack, id)
				}
			}
			for id, r := range resources(s, stack, "AWS::KMS::Alias") {
				if kept(r) {
					t.Errorf("%s/%s: alias %v is kept, so a new deployment cannot create it again", stack, id, props(r)["AliasName"])
				}
			}
		}
		if policies == 0 {
			t.Error("no bucket policy found")
		}
	})
}

// references lists the logical IDs a resource refers to.
func references(r map[string]any) []string {
	var out []string
	switch d := r["DependsOn"].(type) {
	case string:
		out = append(out, d)
	case []any:
		for _, x := range d {
			out = append(out, fmt.Sprint(x))
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				switch k {
				case "Ref":
					out = append(out, fmt.Sprint(x))
				case "Fn::GetAtt":
					if l, ok := x.([]any); ok && len(l) > 0 {
						out = append(out, fmt.Sprint(l[0]))
					}
				default:
					walk(x)
				}
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(r["Properties"])
	return out
}

// The name checks themselves: a fixed name is found however it is spelt,
// and a name made unique per stack creation is not.
func TestFixedValue(t *testing.T) {
	for _, tt := range []struct {
		v     any
		fixed bool
	}{
		{"tether-acme", true},
		{map[string]any{"Fn::Join": []any{"", []any{"tether-", map[string]any{"Ref": "AWS::Region"}}}}, true},
		{map[string]any{"Fn::Sub": "tether-${AWS::StackName}"}, true},
		{map[string]any{"Fn::Join": []any{"", []any{"tether-", map[string]any{"Fn::Select": []any{2, map[string]any{"Fn::Split": []any{"/", map[string]any{"Ref": "AWS::StackId"}}}}}}}}, false},
		{map[string]any{"Fn::Sub": "tether-${AWS::StackId}"}, false},
		{map[string]any{"Ref": "Database"}, false},
		{map[string]any{"Fn::GetAtt": []any{"Bucket", "Arn"}}, false},
	} {
		if got := fixedValue(tt.v); got != tt.fixed {
			t.Errorf("fixedValue(%s) = %v, want %v", asJSON(tt.v), got, tt.fixed)
		}
	}
	refs := references(map[string]any{"DependsOn": []any{"A"}, "Properties": map[string]any{"X": map[string]any{"Ref": "B"}, "Y": []any{map[string]any{"Fn::GetAtt": []any{"C", "Arn"}}}}})
	slices.Sort(refs)
	if strings.Join(refs, ",") != "A,B,C" {
		t.Errorf("references = %v", refs)
	}
}

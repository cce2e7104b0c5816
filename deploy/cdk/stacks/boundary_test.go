package stacks

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// These tests are the IAM half of the data boundary (DESIGN.md): on the
// synthesized templates, nothing lets the agent read documents, decrypt
// with the data key or the docsvc-secrets key, take jobs or read the
// database secret, and every data resource's own policy denies the agent's
// role by name.

// flatten renders a CloudFormation value as a string: literals as they are,
// pseudo parameters resolved, references and imports as <…> markers that
// keep the logical ID they point at.
func flatten(s *synthesized, v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		if ref, ok := x["Ref"].(string); ok {
			switch ref {
			case "AWS::Partition":
				return "aws"
			case "AWS::Region":
				return s.cfg.Region
			case "AWS::AccountId":
				return s.cfg.Account
			}
			return "<Ref:" + ref + ">"
		}
		if ga, ok := x["Fn::GetAtt"].([]any); ok {
			return fmt.Sprintf("<GetAtt:%v.%v>", ga[0], ga[1])
		}
		if imp, ok := x["Fn::ImportValue"]; ok {
			return "<Import:" + flatten(s, imp) + ">"
		}
		if j, ok := x["Fn::Join"].([]any); ok {
			var parts []string
			for _, p := range j[1].([]any) {
				parts = append(parts, flatten(s, p))
			}
			return strings.Join(parts, j[0].(string))
		}
	}
	return asJSON(v)
}

func list(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

// globMatch reports whether an IAM pattern (with * and ?) matches value.
func globMatch(pattern, value string, foldCase bool) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	if foldCase {
		re = "(?i)" + re
	}
	return regexp.MustCompile(re).MatchString(value)
}

// protected is one data resource the agent must never reach with action.
type protected struct {
	action     string
	logicalIDs []string // in the data stack; cross-stack imports carry them
	arn        string   // a representative concrete ARN, for wildcard patterns
	anyTarget  bool     // the action is forbidden on every resource
}

func protectedResources(t *testing.T, s *synthesized) []protected {
	t.Helper()
	id := func(typ string, match func(id string, p map[string]any) bool) string {
		for lid, r := range resources(s, "data", typ) {
			if match(lid, props(r)) {
				return lid
			}
		}
		t.Fatalf("no %s found in the data stack", typ)
		return ""
	}
	hexSuffix := regexp.MustCompile(`^[A-Z0-9]{8}$`)
	docs := id("AWS::S3::Bucket", func(lid string, _ map[string]any) bool { return strings.HasPrefix(lid, "Documents") })
	key := id("AWS::KMS::Key", func(lid string, _ map[string]any) bool { return strings.HasPrefix(lid, "DataKey") })
	secretsKey := id("AWS::KMS::Key", func(lid string, _ map[string]any) bool { return strings.HasPrefix(lid, "DocsvcSecretsKey") })
	jobs := id("AWS::SQS::Queue", func(lid string, _ map[string]any) bool {
		return strings.HasPrefix(lid, "Jobs") && hexSuffix.MatchString(strings.TrimPrefix(lid, "Jobs"))
	})
	// The database password's secret is RDS's (ManageMasterUserPassword):
	// the stacks reach it only through the instance's
	// MasterUserSecret.SecretArn, in the data stack or through its export.
	db := id("AWS::RDS::DBInstance", func(string, map[string]any) bool { return true })
	acct, region := s.cfg.Account, s.cfg.Region
	return []protected{
		// Not anyTarget: the agent reads the operator's decisions in the
		// exchange bucket (TestAgentS3IsTheExchangeBucketOnly), nothing else.
		{action: "s3:GetObject", logicalIDs: []string{docs}, arn: "arn:aws:s3:::" + s.cfg.Name + "-data-documents-abc123/documents/doc-1"},
		{action: "kms:Decrypt", logicalIDs: []string{key}, arn: "arn:aws:kms:" + region + ":" + acct + ":key/0b9a8c7d-1234-4e5f-8a9b-0c1d2e3f4a5b"},
		// The key of the database password and the AI provider key.
		{action: "kms:Decrypt", logicalIDs: []string{secretsKey}, arn: "arn:aws:kms:" + region + ":" + acct + ":key/1c2d3e4f-5678-4a9b-8c7d-6e5f4a3b2c1d"},
		{action: "sqs:ReceiveMessage", logicalIDs: []string{jobs}, arn: "arn:aws:sqs:" + region + ":" + acct + ":" + s.cfg.Name + "-data-Jobs1234-AbCdEfGh"},
		{action: "secretsmanager:GetSecretValue", logicalIDs: []string{db + ".MasterUserSecret.SecretArn", db + "MasterUserSecretSecretArn"}, arn: "arn:aws:secretsmanager:" + region + ":" + acct + ":secret:rds!db-3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b-AbCdEf"},
	}
}

// violation explains how statement st (attached to a role) grants p, or "".
func violation(s *synthesized, st map[string]any, p protected) string {
	if st["Effect"] != "Allow" {
		return ""
	}
	if st["NotAction"] != nil || st["NotResource"] != nil {
		return "uses NotAction/NotResource, which grants by exclusion"
	}
	granted := false
	for _, a := range list(st["Action"]) {
		if globMatch(a.(string), p.action, true) {
			granted = true
		}
	}
	if !granted {
		return ""
	}
	for _, r := range list(st["Resource"]) {
		res := flatten(s, r)
		switch {
		case p.anyTarget:
			return fmt.Sprintf("grants %s on %s", p.action, res)
		case slices.ContainsFunc(p.logicalIDs, func(id string) bool { return strings.Contains(res, id) }):
			return fmt.Sprintf("grants %s on %s by name", p.action, res)
		case !strings.Contains(res, "<") && globMatch(res, p.arn, false):
			return fmt.Sprintf("grants %s by wildcard %s", p.action, res)
		}
	}
	return ""
}

// rolePolicies returns every identity-policy statement attached to the
// role with logical ID roleID in the services stack, and its managed policies.
func rolePolicies(s *synthesized, roleID string) (statements []map[string]any, managed []any) {
	ref := map[string]any{"Ref": roleID}
	for _, typ := range []string{"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"} {
		for _, r := range resources(s, "services", typ) {
			attached := false
			for _, role := range list(props(r)["Roles"]) {
				attached = attached || asJSON(role) == asJSON(ref)
			}
			if attached {
				for _, st := range list(props(r)["PolicyDocument"].(map[string]any)["Statement"]) {
					statements = append(statements, st.(map[string]any))
				}
			}
		}
	}
	role := resources(s, "services", "AWS::IAM::Role")[roleID]
	for _, pol := range list(props(role)["Policies"]) {
		for _, st := range list(pol.(map[string]any)["PolicyDocument"].(map[string]any)["Statement"]) {
			statements = append(statements, st.(map[string]any))
		}
	}
	return statements, list(props(role)["ManagedPolicyArns"])
}

// roleID finds a services-stack role by a predicate on its properties.
func roleID(t *testing.T, s *synthesized, match func(p map[string]any) bool) string {
	t.Helper()
	for id, r := range resources(s, "services", "AWS::IAM::Role") {
		if match(props(r)) {
			return id
		}
	}
	t.Fatal("role not found")
	return ""
}

func agentRoles(t *testing.T, s *synthesized) []string {
	return familyRoles(t, s, "agent", s.cfg.AgentRoleName())
}

func exchangeRoles(t *testing.T, s *synthesized) []string {
	return familyRoles(t, s, "exchange", s.cfg.ExchangeRoleName())
}

// familyRoles returns the task role (named roleName) and the execution role
// of the task definition of family.
func familyRoles(t *testing.T, s *synthesized, family, roleName string) []string {
	t.Helper()
	task := roleID(t, s, func(p map[string]any) bool { return p["RoleName"] == roleName })
	var exec string
	for _, td := range resources(s, "services", "AWS::ECS::TaskDefinition") {
		if props(td)["Family"] == serviceName(s.cfg, family) {
			exec = props(td)["ExecutionRoleArn"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
			if got := props(td)["TaskRoleArn"].(map[string]any)["Fn::GetAtt"].([]any)[0]; got != task {
				t.Fatalf("%s task definition runs as %v, not the role %s", family, got, task)
			}
		}
	}
	if exec == "" {
		t.Fatalf("%s task definition not found", family)
	}
	return []string{task, exec}
}

func TestAgentCannotReachCustomerData(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		prot := protectedResources(t, s)
		for _, role := range agentRoles(t, s) {
			statements, managed := rolePolicies(s, role)
			if len(managed) > 0 {
				t.Errorf("agent role %s has managed policies %v; everything it may do must be visible inline", role, managed)
			}
			if role == agentRoles(t, s)[0] && len(statements) == 0 {
				t.Fatalf("agent task role %s has no statements: the test would pass vacuously", role)
			}
			for _, st := range statements {
				for _, p := range prot {
					if v := violation(s, st, p); v != "" {
						t.Errorf("agent role %s: statement %s %s", role, asJSON(st), v)
					}
				}
			}
		}
	})
}

// The checker must see each forbidden grant where it really exists (the
// docsvc roles), or TestAgentCannotReachCustomerData proves nothing.
func TestBoundaryCheckerDetectsGrants(t *testing.T) {
	s := synth(t, "minimal")
	prot := protectedResources(t, s)
	var all []map[string]any
	for id := range resources(s, "services", "AWS::IAM::Role") {
		if slices.Contains(agentRoles(t, s), id) {
			continue
		}
		st, _ := rolePolicies(s, id)
		all = append(all, st...)
	}
	for _, p := range prot {
		found := false
		for _, st := range all {
			found = found || violation(s, st, p) != ""
		}
		if !found {
			t.Errorf("no docsvc role is seen to hold %s on %v; the checker cannot detect it", p.action, p.logicalIDs)
		}
	}
	// And wildcards, which no docsvc role uses, are caught too.
	for _, wild := range []map[string]any{
		{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
		{"Effect": "Allow", "Action": []any{"kms:*"}, "Resource": "arn:aws:kms:" + s.cfg.Region + ":" + s.cfg.Account + ":key/*"},
		{"Effect": "Allow", "Action": "secretsmanager:Get*", "Resource": "arn:aws:secretsmanager:*:*:secret:rds!*"},
		{"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::*/*"},
		{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
	} {
		found := false
		for _, p := range prot {
			found = found || violation(s, wild, p) != ""
		}
		if !found {
			t.Errorf("wildcard statement %s not detected", asJSON(wild))
		}
	}
}

// The agent's roles use one key only: the agent-secrets key, only through
// Secrets Manager, and only for the secrets the agent reads (its identity
// for the task role, the license for the execution role). The exchange
// bucket's key is tether-exchange's.
func TestAgentUsesOnlyItsSecretsKey(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		for _, role := range agentRoles(t, s) {
			statements, _ := rolePolicies(s, role)
			grants := 0
			for _, st := range statements {
				if !strings.Contains(strings.ToLower(asJSON(st["Action"])), "kms:") {
					continue
				}
				grants++
				cond, _ := st["Condition"].(map[string]any)
				eq, _ := cond["StringEquals"].(map[string]any)
				if r := list(st["Resource"]); len(r) != 1 || !strings.Contains(flatten(s, r[0]), "AgentSecretsKey") {
					t.Errorf("agent role %s: KMS grant on %s, want the agent-secrets key only", role, flatten(s, st["Resource"]))
				}
				if !strings.HasPrefix(flatten(s, eq["kms:ViaService"]), "secretsmanager.") {
					t.Errorf("agent role %s: KMS grant not limited to Secrets Manager: %s", role, asJSON(st))
				}
				secrets := list(eq["kms:EncryptionContext:SecretARN"])
				if len(secrets) == 0 {
					t.Errorf("agent role %s: KMS grant not limited to named secrets: %s", role, asJSON(st))
				}
				for _, sec := range secrets {
					if name := flatten(s, sec); !strings.Contains(name, "Secretlicense") && !strings.Contains(name, "Secretagentidentity") {
						t.Errorf("agent role %s: may decrypt secret %s", role, name)
					}
				}
			}
			if grants == 0 {
				t.Errorf("agent role %s has no KMS grant: it could not read its secret", role)
			}
		}
	})
}

func TestDataPoliciesDenyAgent(t *testing.T) {
	forAllExamples(t, func(t *testing.T, s *synthesized) {
		agentARN := "arn:aws:iam::" + s.cfg.Account + ":role/" + s.cfg.AgentRoleName()
		denies := func(doc any) bool {
			for _, st := range list(doc.(map[string]any)["Statement"]) {
				m := st.(map[string]any)
				cond, _ := m["Condition"].(map[string]any)
				like, _ := cond["ArnLike"].(map[string]any)
				principal := asJSON(m["Principal"])
				if m["Effect"] == "Deny" && flatten(s, like["aws:PrincipalArn"]) == agentARN &&
					(principal == `"*"` || principal == `{"AWS":"*"}`) {
					return true
				}
			}
			return false
		}
		cases := []struct {
			typ, docField string
			count         int
		}{
			{"AWS::S3::BucketPolicy", "PolicyDocument", 2}, // the documents bucket, and the exchange bucket (the log bucket holds no documents)
			{"AWS::SQS::QueuePolicy", "PolicyDocument", 2}, // jobs and dead-letter
			{"AWS::SecretsManager::ResourcePolicy", "ResourcePolicy", 1},
			// The data key and the docsvc-secrets key; an adopted key is
			// not in the template, and keeps the policy it was created with.
			{"AWS::KMS::Key", "KeyPolicy", 2 - adopted(s.cfg.Adopt.Keys.Data) - adopted(s.cfg.Adopt.Keys.DocsvcSecrets)},
		}
		for _, c := range cases {
			n := 0
			for _, r := range resources(s, "data", c.typ) {
				if denies(props(r)[c.docField]) {
					n++
				}
			}
			if n != c.count {
				t.Errorf("%s: %d policies deny the agent, want %d", c.typ, n, c.count)
			}
		}
	})
}

// The agent, which talks to the vendor, has no S3 right on any resource.
// tether-exchange's S3 rights are on the exchange bucket alone: the records
// and ledger segments to write, the operator's decisions to read, the
// listing. The bucket policy admits only this account, lets only the
// exchange task write the records, keeps it from writing decisions and
// everyone from deleting the ledger's copy, and denies the agent all of it.
func TestOnlyTheExchangeTaskReachesS3(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		for _, role := range agentRoles(t, s) {
			statements, _ := rolePolicies(s, role)
			for _, st := range statements {
				for _, a := range list(st["Action"]) {
					if action := strings.ToLower(a.(string)); strings.HasPrefix(action, "s3:") || action == "*" {
						t.Errorf("agent role %s may %s on %s; the agent reaches no bucket", role, a, flatten(s, st["Resource"]))
					}
				}
			}
		}
		rights := map[string][]string{}
		for _, role := range exchangeRoles(t, s) {
			statements, _ := rolePolicies(s, role)
			for _, st := range statements {
				for _, a := range list(st["Action"]) {
					if !strings.HasPrefix(a.(string), "s3:") {
						continue
					}
					for _, r := range list(st["Resource"]) {
						res := flatten(s, r)
						if !strings.Contains(res, "Exchange") {
							t.Errorf("exchange role %s: %s on %s, which is not the exchange bucket", role, a, res)
						}
						rights[a.(string)] = append(rights[a.(string)], res[strings.LastIndex(res, ">")+1:])
					}
				}
			}
		}
		got := asJSON(rights)
		if got != `{"s3:GetObject":["/diagnostics/*/decision.json"],"s3:ListBucket":[""],"s3:PutObject":["/diagnostics/*","/ledger/*"]}` {
			t.Errorf("exchange role S3 rights = %s", got)
		}

		var policy map[string]any
		for _, r := range resources(s, "data", "AWS::S3::BucketPolicy") {
			if strings.HasPrefix(asJSON(props(r)["Bucket"]), `{"Ref":"Exchange`) {
				policy = props(r)["PolicyDocument"].(map[string]any)
			}
		}
		if policy == nil {
			t.Fatal("no exchange bucket policy")
		}
		sids := map[string]map[string]any{}
		for _, st := range list(policy["Statement"]) {
			m := st.(map[string]any)
			if sid, ok := m["Sid"].(string); ok {
				sids[sid] = m
			}
		}
		other := sids["DenyOtherAccounts"]
		if other["Effect"] != "Deny" || asJSON(other["Condition"]) != `{"StringNotEquals":{"aws:PrincipalAccount":"`+s.cfg.Account+`"}}` {
			t.Errorf("DenyOtherAccounts = %s", asJSON(other))
		}
		exchangeARN := "arn:aws:iam::" + s.cfg.Account + ":role/" + s.cfg.ExchangeRoleName()
		writes := sids["OnlyTheExchangeTaskWritesItsRecords"]
		if writes["Effect"] != "Deny" || !strings.HasSuffix(flatten(s, list(writes["NotResource"])[0]), "/diagnostics/*/decision.json") ||
			flatten(s, writes["Condition"].(map[string]any)["ArnNotLike"].(map[string]any)["aws:PrincipalArn"]) != exchangeARN {
			t.Errorf("OnlyTheExchangeTaskWritesItsRecords = %s", asJSON(writes))
		}
		decides := sids["DenyTetherExchangeDecisions"]
		if decides["Effect"] != "Deny" || asJSON(decides["Action"]) != `"s3:PutObject"` ||
			!strings.HasSuffix(flatten(s, list(decides["Resource"])[0]), "/diagnostics/*/decision.json") ||
			flatten(s, decides["Condition"].(map[string]any)["ArnLike"].(map[string]any)["aws:PrincipalArn"]) != exchangeARN {
			t.Errorf("DenyTetherExchangeDecisions = %s", asJSON(decides))
		}
		agent := sids["DenyTetherAgent"]
		if agent["Effect"] != "Deny" || asJSON(agent["Action"]) != `"s3:*"` || len(list(agent["Resource"])) != 2 {
			t.Errorf("DenyTetherAgent = %s", asJSON(agent))
		}
		keep := sids["KeepTheLedger"]
		if keep["Effect"] != "Deny" || !strings.HasSuffix(flatten(s, list(keep["Resource"])[0]), "/ledger/*") {
			t.Errorf("KeepTheLedger = %s", asJSON(keep))
		}
	})
}

func adopted(arn string) int {
	if arn != "" {
		return 1
	}
	return 0
}

// The agent's task role may move its identity secret's version stages
// (promoting a rotated key) and write it, on that one secret only; no other
// role of the agent may change any secret.
func TestAgentPromotesOnlyItsIdentitySecret(t *testing.T) {
	forEachExample(t, func(t *testing.T, s *synthesized) {
		task := roleID(t, s, func(p map[string]any) bool { return p["RoleName"] == s.cfg.AgentRoleName() })
		for _, role := range agentRoles(t, s) {
			statements, _ := rolePolicies(s, role)
			promotes := false
			for _, st := range statements {
				actions := asJSON(st["Action"])
				if !strings.Contains(actions, "secretsmanager:UpdateSecretVersionStage") && !strings.Contains(actions, "secretsmanager:PutSecretValue") {
					continue
				}
				r := list(st["Resource"])
				if role != task || len(r) != 1 || !strings.Contains(flatten(s, r[0]), "Secretagentidentity") {
					t.Errorf("agent role %s may change secrets %s, want only the task role on its identity secret", role, flatten(s, st["Resource"]))
				}
				promotes = promotes || strings.Contains(actions, "secretsmanager:UpdateSecretVersionStage")
			}
			if role == task && !promotes {
				t.Errorf("agent task role %s may not UpdateSecretVersionStage on its identity secret: a rotated key could not be promoted", role)
			}
		}
	})
}

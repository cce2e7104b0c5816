package deployconfig

import (
	"net/netip"
	"regexp"
	"strings"
)

// Adopt names data that outlived an earlier deployment of the same name
// (cdk destroy retains it) or was restored from a backup: the stacks use
// these instead of creating new ones. Everything is optional.
type Adopt struct {
	// Keys are the retained KMS keys, by ARN.
	Keys AdoptKeys `yaml:"keys"`
	// DocumentsBucket is an existing documents bucket, by name. Its objects
	// are encrypted with the data key, so Keys.Data is required with it.
	DocumentsBucket string `yaml:"documents_bucket"`
	// DatabaseSnapshot is an RDS snapshot (identifier or ARN, such as the
	// final snapshot cdk destroy takes) the database is restored from.
	DatabaseSnapshot string `yaml:"database_snapshot"`
	// Secrets are the retained tether/<name>/* secrets, by complete ARN:
	// all three or none (a re-create that adopts some would collide on the
	// names of the others).
	Secrets AdoptSecrets `yaml:"secrets"`
	// Repositories adopts the ECR repositories <name>/docsvc and
	// <name>/agent, which are retained with their images.
	Repositories bool `yaml:"repositories"`
}

// AdoptKeys are retained customer-managed KMS keys, by ARN.
type AdoptKeys struct {
	Data          string `yaml:"data"`
	DocsvcSecrets string `yaml:"docsvc_secrets"`
	AgentSecrets  string `yaml:"agent_secrets"`
}

// AdoptSecrets are the retained secrets, by complete ARN (with the six
// characters Secrets Manager appends), as
// `aws secretsmanager list-secrets --filter Key=name,Values=tether/<name>/`
// shows them.
type AdoptSecrets struct {
	License       string `yaml:"license"`
	AgentIdentity string `yaml:"agent_identity"`
	AI            string `yaml:"ai"`
	// Database is refused: RDS manages the database password
	// (ManageMasterUserPassword) and deletes its secret with the instance;
	// a restored instance gets a new one. Kept only to say so clearly.
	Database string `yaml:"database"`
}

// ByKind returns the adopted secrets' ARNs by secret kind (as SecretName
// takes it), or nil when none are adopted.
func (s AdoptSecrets) ByKind() map[string]string {
	if s.License == "" && s.AgentIdentity == "" && s.AI == "" {
		return nil
	}
	return map[string]string{"license": s.License, "agent-identity": s.AgentIdentity, "ai": s.AI}
}

var (
	kmsKeyARNRE   = regexp.MustCompile(`^arn:aws:kms:([a-z]{2}-[a-z]+-[0-9]):([0-9]{12}):key/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$`)
	bucketNameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	snapshotIDRE  = regexp.MustCompile(`^(rds:)?[a-z][a-z0-9-]{0,254}$`)
	snapshotARNRE = regexp.MustCompile(`^arn:aws:rds:([a-z]{2}-[a-z]+-[0-9]):([0-9]{12}):snapshot:((rds:)?[a-z][a-z0-9-]{0,254})$`)
	secretARNRE   = regexp.MustCompile(`^arn:aws:secretsmanager:([a-z]{2}-[a-z]+-[0-9]):([0-9]{12}):secret:(.+)-[A-Za-z0-9]{6}$`)
)

func (v *validator) adopt(c *Config) {
	a := c.Adopt
	here := func(path, region, account string) {
		if region != c.Region || account != c.Account {
			v.add(path, "is in %s, %s: adopt only what is in the deployment's account and region (%s, %s); copy it there first", account, region, c.Account, c.Region)
		}
	}
	for _, k := range []struct{ path, arn string }{
		{"adopt.keys.data", a.Keys.Data},
		{"adopt.keys.docsvc_secrets", a.Keys.DocsvcSecrets},
		{"adopt.keys.agent_secrets", a.Keys.AgentSecrets},
	} {
		if k.arn == "" {
			continue
		}
		if m := kmsKeyARNRE.FindStringSubmatch(k.arn); m == nil {
			v.add(k.path, "%q is not valid: want a KMS key ARN such as arn:aws:kms:%s:%s:key/<key id> (the key, not an alias)", truncate(k.arn), c.Region, c.Account)
		} else {
			here(k.path, m[1], m[2])
		}
	}
	if a.Keys.Data != "" && (a.Keys.Data == a.Keys.DocsvcSecrets || a.Keys.Data == a.Keys.AgentSecrets) ||
		a.Keys.DocsvcSecrets != "" && a.Keys.DocsvcSecrets == a.Keys.AgentSecrets {
		v.add("adopt.keys", "one key is given for two roles; each of data, docsvc_secrets and agent_secrets is its own key (the agent may use only agent_secrets)")
	}

	if b := a.DocumentsBucket; b != "" {
		if !bucketNameRE.MatchString(b) || strings.Contains(b, "..") || isIPv4(b) {
			v.add("adopt.documents_bucket", "%q is not valid: want the documents bucket's name (3–63 lowercase letters, digits, '.' and '-'), not its ARN", truncate(b))
		}
		if a.Keys.Data == "" {
			v.add("adopt.documents_bucket", "needs adopt.keys.data: the bucket's documents are encrypted with the data key it was created with")
		}
	}
	if s := a.DatabaseSnapshot; s != "" {
		if m := snapshotARNRE.FindStringSubmatch(s); m != nil {
			here("adopt.database_snapshot", m[1], m[2])
		} else if strings.HasPrefix(s, "arn:") || !snapshotIDRE.MatchString(s) {
			v.add("adopt.database_snapshot", "%q is not valid: want a DB snapshot identifier (lowercase, as aws rds describe-db-snapshots shows it) or its ARN arn:aws:rds:%s:%s:snapshot:<identifier>", truncate(s), c.Region, c.Account)
		}
		if a.Keys.Data == "" {
			v.add("adopt.database_snapshot", "needs adopt.keys.data: the snapshot is encrypted with the data key, which the restored database keeps")
		}
	}

	if arn := a.Secrets.Database; arn != "" {
		v.add("adopt.secrets.database", "is no longer used: RDS manages the database password and gives a restored database a new one; remove the line (the old secret %s holds a password nothing uses: delete it with aws secretsmanager delete-secret once the deployment is back)", truncate(arn))
	}
	secrets := a.Secrets.ByKind()
	if secrets != nil {
		for _, kind := range []string{"license", "agent-identity", "ai"} {
			path := "adopt.secrets." + strings.ReplaceAll(kind, "-", "_")
			arn := secrets[kind]
			m := secretARNRE.FindStringSubmatch(arn)
			switch {
			case arn == "":
				v.add(path, "required when any secret is adopted: the stacks retained all three, and one left out would collide with its own name; give its ARN")
			case m == nil:
				v.add(path, "%q is not valid: want the secret's complete ARN, ending in -XXXXXX, as aws secretsmanager list-secrets shows it", truncate(arn))
			case m[3] != c.SecretName(kind):
				v.add(path, "names secret %q, want %q: tetherctl and the operator address the secret by that name", m[3], c.SecretName(kind))
			default:
				here(path, m[1], m[2])
			}
		}
		if a.Keys.DocsvcSecrets == "" || a.Keys.AgentSecrets == "" {
			v.add("adopt.secrets", "needs adopt.keys.docsvc_secrets and adopt.keys.agent_secrets: the secrets are encrypted with them, and the tasks' grants follow the keys")
		}
	}
}

func isIPv4(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}

package stacks

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsefs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscognito"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsrds"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsssm"
	"github.com/aws/jsii-runtime-go"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// Data holds every resource that stores customer data or secrets. The stack
// is termination-protected and each resource is retained if the stack is
// deleted (the database is deleted after a final snapshot, which frees its
// subnets), so no CloudFormation mistake can destroy documents. No retained
// resource carries a fixed physical name a new deployment of the same name
// would collide with, except the secrets, which tetherctl addresses by name:
// a re-create adopts them (adopt.secrets), as it may adopt the keys, the
// documents bucket and the final snapshot.
type Data struct {
	Stack      awscdk.Stack
	Key        awskms.IKey // encrypts documents, queue messages and the database
	Documents  awss3.IBucket
	AccessLogs awss3.Bucket // S3 server access logs and ALB logs (SSE-S3: ALB cannot write SSE-KMS)
	Jobs       awssqs.Queue
	DeadLetter awssqs.Queue
	Database   awsrds.IDatabaseInstance
	// DatabaseSecret is the secret RDS keeps the master password in
	// (ManageMasterUserPassword): RDS creates it, rotates it every 7 days
	// with no Lambda function, and deletes it with the instance.
	DatabaseSecret awssecretsmanager.ISecret
	Secrets        map[string]awssecretsmanager.ISecret // by kind: ai (key-based providers only), license, agent-identity
	UserPool       awscognito.UserPool                  // nil unless auth.provider is cognito
	Client         awscognito.UserPoolClient            // nil unless auth.provider is cognito
	// DocsvcSecretsKey encrypts docsvc's secrets (the database password, an
	// AI provider key); AgentSecretsKey the secrets tether-agent reads (the
	// license, its identity). The agent's roles may use the second only, and
	// the data and docsvc-secrets key policies deny the agent by name.
	DocsvcSecretsKey awskms.IKey
	AgentSecretsKey  awskms.IKey
	// AgentState keeps the agent's egress ledger and TUF metadata across task
	// replacements; only the agent and tether-exchange mount it, through
	// AgentStateAccess.
	AgentState       awsefs.FileSystem
	AgentStateAccess awsefs.AccessPoint
	// Exchange is the agent exchange bucket (support.go).
	Exchange *Exchange
	// OIDCIssuer and OIDCClientID are what docsvc verifies tokens against.
	OIDCIssuer   *string
	OIDCClientID *string
}

// Database identity. The password lives only in the secret RDS manages.
const (
	dbUser = "tether"
	dbName = "tether"
)

// Secret kinds: each task reads only its own. DESIGN.md also reserves app
// and auth for future secrets; no binary reads one today, so the stack does
// not create them (an unread placeholder only invites storing a real value
// nothing uses).
const (
	secretAI            = "ai"
	secretLicense       = "license"
	secretAgentIdentity = "agent-identity"
	secretDatabase      = "database"
)

// documentsPrefix is the key prefix docsvc stores blobs under.
const documentsPrefix = "documents"

func newData(app awscdk.App, cfg *deployconfig.Config, net *Network) *Data {
	stack := newStack(app, cfg, "data", "Tether "+cfg.Name+": documents, queues, database, keys and secrets (retained)", true)
	d := &Data{Stack: stack, Secrets: map[string]awssecretsmanager.ISecret{}}
	retain := awscdk.RemovalPolicy_RETAIN
	adopt := cfg.Adopt

	// An adopted key keeps the policy its first deployment gave it (a
	// retained key's policy stays with it), the agent denial included.
	d.Key = adoptedOrRetainedKey(stack, cfg, "DataKey", "data", "documents, job messages and database storage", adopt.Keys.Data)
	d.Key.AddToResourcePolicy(denyAgent(cfg, []string{"kms:*"}, str("*")), nil)
	// Secrets Manager encrypts with these keys on the caller's behalf: a
	// role reading a secret needs kms:Decrypt through Secrets Manager on the
	// secret's key, and nothing on the others.
	d.DocsvcSecretsKey = adoptedOrRetainedKey(stack, cfg, "DocsvcSecretsKey", "docsvc-secrets", "docsvc's secrets (database password, AI provider key)", adopt.Keys.DocsvcSecrets)
	d.DocsvcSecretsKey.AddToResourcePolicy(denyAgent(cfg, []string{"kms:*"}, str("*")), nil)
	d.AgentSecretsKey = adoptedOrRetainedKey(stack, cfg, "AgentSecretsKey", "agent-secrets", "the secrets tether-agent reads (license, agent identity)", adopt.Keys.AgentSecrets)

	d.newAgentState(cfg, net)

	d.AccessLogs = awss3.NewBucket(stack, str("AccessLogs"), &awss3.BucketProps{
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		Versioned:         jsii.Bool(true),
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Expiration:                  awscdk.Duration_Days(num(float64(max(cfg.Observe.LogRetentionDays, 1)))),
			NoncurrentVersionExpiration: awscdk.Duration_Days(num(7)),
		}},
		RemovalPolicy: retain,
	})
	d.Exchange = newExchange(stack, cfg, d.AccessLogs)
	skipCheckov(d.AccessLogs, "CKV_AWS_18", "This is the access-log bucket that the documents and build-source buckets and the load balancer log to; logging it to itself would loop, and to another bucket would only move the finding there.")

	if name := adopt.DocumentsBucket; name != "" {
		// The bucket keeps the settings its first deployment gave it
		// (encryption, versioning, logging, lifecycle). Its policy is written
		// again, under this stack: an imported bucket gets none from the CDK,
		// and a bucket from before policies were retained has lost its own.
		d.Documents = awss3.Bucket_FromBucketAttributes(stack, str("Documents"), &awss3.BucketAttributes{
			BucketName: str(name), EncryptionKey: d.Key,
		})
		policy := awss3.NewBucketPolicy(stack, str("DocumentsPolicy"), &awss3.BucketPolicyProps{Bucket: d.Documents, RemovalPolicy: retain})
		statements := append(tlsOnly(d.Documents), denyAgent(cfg, []string{"s3:*"}, d.Documents.BucketArn(), d.Documents.ArnForObjects(str("*"))))
		policy.Document().AddStatements(statements...)
		suppress(d.AccessLogs, "AwsSolutions-S1", "This is the access-log bucket the load balancer logs to (the adopted documents bucket keeps logging where it did); logging it to itself would loop, and to another bucket would only move the finding there.")
	} else {
		d.Documents = d.newDocuments()
		d.Documents.AddToResourcePolicy(denyAgent(cfg, []string{"s3:*"}, d.Documents.BucketArn(), d.Documents.ArnForObjects(str("*"))))
	}
	// The retained buckets keep their policies (TLS only, no agent) after
	// the stack is gone.
	for _, b := range []awss3.IBucket{d.AccessLogs, d.Documents} {
		if p := b.Policy(); p != nil {
			p.ApplyRemovalPolicy(retain)
		}
	}

	d.DeadLetter = awssqs.NewQueue(stack, str("JobsDeadLetter"), &awssqs.QueueProps{
		Encryption:          awssqs.QueueEncryption_KMS,
		EncryptionMasterKey: d.Key,
		EnforceSSL:          jsii.Bool(true),
		RetentionPeriod:     awscdk.Duration_Days(num(14)),
		RemovalPolicy:       retain,
	})
	d.Jobs = awssqs.NewQueue(stack, str("Jobs"), &awssqs.QueueProps{
		Encryption:          awssqs.QueueEncryption_KMS,
		EncryptionMasterKey: d.Key,
		EnforceSSL:          jsii.Bool(true),
		RetentionPeriod:     awscdk.Duration_Days(num(4)),
		// The worker extends visibility while a job runs; this is only the
		// window before an abandoned message is offered again.
		VisibilityTimeout: awscdk.Duration_Minutes(num(5)),
		DeadLetterQueue:   &awssqs.DeadLetterQueue{Queue: d.DeadLetter, MaxReceiveCount: num(5)},
		RemovalPolicy:     retain,
	})
	for _, q := range []awssqs.Queue{d.Jobs, d.DeadLetter} {
		q.AddToResourcePolicy(denyAgent(cfg, []string{"sqs:*"}, q.QueueArn()))
	}

	d.Database, d.DatabaseSecret = newDatabase(stack, cfg, net, d.Key, d.DocsvcSecretsKey)
	for _, family := range dbClients {
		d.Database.Connections().AllowDefaultPortFrom(net.Groups[family], str("PostgreSQL from "+family))
	}
	denyAgentOnSecret(stack, cfg, "DatabaseSecretPolicy", d.DatabaseSecret)
	// tetherctl (secrets list/show, preflight) finds the secret here: RDS
	// names it rds!db-<uuid>, not tether/<name>/database.
	awscdk.NewCfnOutput(stack, str("DatabaseSecretArn"), &awscdk.CfnOutputProps{
		Description: str("The database master password's secret, which RDS manages and rotates"),
		Value:       d.DatabaseSecret.SecretArn(),
	})

	// The ai secret exists whatever the provider, though only key-based
	// providers read it: a retained secret that came and went with the
	// provider would collide with itself when the provider came back, and
	// the services stack's use of it would stop a switch away (an export in
	// use cannot be removed). Its ARN is exported whether or not a task
	// imports it, for the same reason.
	for _, kind := range []string{secretLicense, secretAgentIdentity, secretAI} {
		if arn := adopt.Secrets.ByKind()[kind]; arn != "" {
			d.Secrets[kind] = awssecretsmanager.Secret_FromSecretAttributes(stack, str("Secret-"+kind), &awssecretsmanager.SecretAttributes{
				SecretCompleteArn: str(arn), EncryptionKey: d.SecretKey(kind),
			})
			continue
		}
		s := awssecretsmanager.NewSecret(stack, str("Secret-"+kind), &awssecretsmanager.SecretProps{
			SecretName:    str(cfg.SecretName(kind)),
			EncryptionKey: d.SecretKey(kind),
			Description:   str("Tether " + cfg.Name + " " + kind + ": " + secretSetBy[kind]),
			RemovalPolicy: retain,
		})
		// Created with no value. A random placeholder (what the CDK makes
		// by default) is a value the api and agent reject only once they
		// start, with a parse error about a string that was never a license
		// or a key; an empty secret reads as "not set yet", and the agent
		// fills its own identity on first start.
		s.Node().DefaultChild().(awssecretsmanager.CfnSecret).AddPropertyDeletionOverride(str("GenerateSecretString"))
		suppress(s, "AwsSolutions-SMG4", "Set by the operator (vendor license, AI provider key) or by the agent (its own Ed25519 identity); Lambda rotation cannot produce these values. Rotation is the operator putting a new value (tetherctl secrets rotate ai; for the agent's identity, tetherctl secrets rotate agent, which the agent re-registers with the vendor's plane).")
		d.Secrets[kind] = s
	}
	if adopt.Secrets.AI == "" {
		stack.ExportValue(d.Secrets[secretAI].SecretArn(), nil)
	}

	switch cfg.Auth.Provider {
	case deployconfig.AuthCognito:
		d.newUserPool(cfg)
	default:
		d.OIDCIssuer = str(cfg.Auth.Issuer)
		d.OIDCClientID = str(cfg.Auth.ClientID)
	}
	// The issuer and audience docsvc verifies tokens against live here, next
	// to the user pool they may come from, in Parameter Store; the services
	// stack reads them by name. A cross-stack reference instead would make
	// a switch between the customer's OIDC provider and the stack's Cognito
	// pool fail: an export still in use cannot be removed.
	for name, value := range map[string]*string{"DOCSVC_OIDC_ISSUER": d.OIDCIssuer, "DOCSVC_OIDC_AUDIENCE": d.OIDCClientID} {
		awsssm.NewStringParameter(stack, str("Auth-"+name), &awsssm.StringParameterProps{
			ParameterName: str(AuthParameter(cfg, name)),
			StringValue:   value,
			Tier:          awsssm.ParameterTier_STANDARD,
		})
	}
	return d
}

// newDocuments creates the documents bucket.
func (d *Data) newDocuments() awss3.Bucket {
	return awss3.NewBucket(d.Stack, str("Documents"), &awss3.BucketProps{
		Encryption:             awss3.BucketEncryption_KMS,
		EncryptionKey:          d.Key,
		BucketKeyEnabled:       jsii.Bool(true),
		BlockPublicAccess:      awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:             jsii.Bool(true),
		MinimumTLSVersion:      num(1.2),
		ObjectOwnership:        awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		Versioned:              jsii.Bool(true),
		ServerAccessLogsBucket: d.AccessLogs,
		ServerAccessLogsPrefix: str("s3/documents/"),
		LifecycleRules: &[]*awss3.LifecycleRule{{
			// Versioning protects against overwrite and accidental delete;
			// old versions are kept long enough to recover, then expire so
			// a deleted document really goes away.
			NoncurrentVersionExpiration:         awscdk.Duration_Days(num(30)),
			AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(num(7)),
		}},
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})

}

// tlsOnly are the statements EnforceSSL and MinimumTLSVersion write into a
// bucket's policy, for a bucket the stack adopts rather than creates.
func tlsOnly(b awss3.IBucket) []awsiam.PolicyStatement {
	deny := func(condition map[string]any) awsiam.PolicyStatement {
		return awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Effect:     awsiam.Effect_DENY,
			Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
			Actions:    jsii.Strings("s3:*"),
			Resources:  &[]*string{b.BucketArn(), b.ArnForObjects(str("*"))},
			Conditions: &condition,
		})
	}
	return []awsiam.PolicyStatement{
		deny(map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}}),
		deny(map[string]any{"NumericLessThan": map[string]any{"s3:TlsVersion": 1.2}}),
	}
}

// AuthParameter is the Parameter Store name of one of docsvc's token
// settings (DOCSVC_OIDC_ISSUER, DOCSVC_OIDC_AUDIENCE), which the data stack
// writes.
func AuthParameter(cfg *deployconfig.Config, name string) string {
	return cfg.ParameterPath() + "/auth/" + name
}

// retainedKey is a customer-managed KMS key, rotated yearly, that outlives
// its stack (what it encrypts is retained too), named
// alias/tether/<name>/<alias>.
func retainedKey(stack awscdk.Stack, cfg *deployconfig.Config, id, alias, purpose string) awskms.Key {
	return awskms.NewKey(stack, str(id), &awskms.KeyProps{
		Alias:             str(keyAlias(cfg, alias)),
		Description:       str("Tether " + cfg.Name + ": " + purpose),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})
}

// adoptedOrRetainedKey is the key of ARN adopted (adopt.keys), given back
// its alias (the alias went with the stack that made it), or else a new
// retained key.
func adoptedOrRetainedKey(stack awscdk.Stack, cfg *deployconfig.Config, id, alias, purpose, adopted string) awskms.IKey {
	if adopted == "" {
		return retainedKey(stack, cfg, id, alias, purpose)
	}
	key := awskms.Key_FromKeyArn(stack, str(id), str(adopted))
	awskms.NewAlias(stack, str(id+"Alias"), &awskms.AliasProps{AliasName: str(keyAlias(cfg, alias)), TargetKey: key})
	return key
}

func keyAlias(cfg *deployconfig.Config, alias string) string {
	return "alias/tether/" + cfg.Name + "/" + alias
}

// denyAgentOnSecret adds the agent denial to a secret's resource policy,
// writing that policy itself for an adopted secret (the CDK writes none for
// an imported one).
func denyAgentOnSecret(stack awscdk.Stack, cfg *deployconfig.Config, id string, secret awssecretsmanager.ISecret) {
	deny := denyAgent(cfg, []string{"secretsmanager:*"}, str("*"))
	if added := secret.AddToResourcePolicy(deny); added != nil && added.StatementAdded != nil && *added.StatementAdded {
		return
	}
	policy := awssecretsmanager.NewResourcePolicy(stack, str(id), &awssecretsmanager.ResourcePolicyProps{Secret: secret})
	policy.Document().AddStatements(deny)
}

// secretSetBy says, in each secret's description, who gives it its value.
var secretSetBy = map[string]string{
	secretLicense:       "the vendor's signed license; set it with: aws secretsmanager put-secret-value --secret-id <this secret> --secret-string file://license.json",
	secretAI:            "the AI provider's API key, for providers that take one (openai, anthropic), unused otherwise; set it with: aws secretsmanager put-secret-value --secret-id <this secret> --secret-string file://ai-key.txt",
	secretAgentIdentity: "the agent's Ed25519 identity; the agent creates it on its first start; rotate it only with: tetherctl secrets rotate agent",
}

// SecretKey is the key that encrypts the secret of one kind: the agent's
// secrets under the agent-secrets key, docsvc's under the docsvc-secrets key.
func (d *Data) SecretKey(kind string) awskms.IKey {
	if kind == secretLicense || kind == secretAgentIdentity {
		return d.AgentSecretsKey
	}
	return d.DocsvcSecretsKey
}

// newDatabase creates the instance and returns it with the secret RDS
// keeps its master password in. RDS manages that password itself
// (ManageMasterUserPassword): it generates it, encrypts the secret with the
// docsvc-secrets key, and rotates it every 7 days, with no rotation Lambda
// function, nested application or role in the stacks.
func newDatabase(stack awscdk.Stack, cfg *deployconfig.Config, net *Network, key, secretKey awskms.IKey) (awsrds.IDatabaseInstance, awssecretsmanager.ISecret) {
	engine := awsrds.DatabaseInstanceEngine_Postgres(&awsrds.PostgresInstanceEngineProps{
		Version: awsrds.PostgresEngineVersion_VER_17_9(),
	})
	params := awsrds.NewParameterGroup(stack, str("DatabaseParameters"), &awsrds.ParameterGroupProps{
		Engine:      engine,
		Description: str("Tether " + cfg.Name + ": TLS required for every connection"),
		Parameters:  &map[string]*string{"rds.force_ssl": str("1")},
	})
	isolated := &awsec2.SubnetSelection{SubnetGroupName: str(subnetIsolated)}
	id := dbInstanceID(cfg)
	props := &awsrds.DatabaseInstanceProps{
		Engine:       engine,
		InstanceType: awsec2.NewInstanceType(str(strings.TrimPrefix(cfg.Sizing.DatabaseClass, "db."))),
		Vpc:          net.Vpc,
		VpcSubnets:   isolated,
		// Not the data key: the tasks' roles decrypt this secret, and need
		// nothing that opens documents.
		Credentials:              awsrds.Credentials_FromUsername(str(dbUser), &awsrds.CredentialsFromUsernameOptions{EncryptionKey: secretKey}),
		ManageMasterUserPassword: jsii.Bool(true),
		DatabaseName:             str(dbName),
		ParameterGroup:           params,
		StorageEncrypted:         jsii.Bool(true),
		StorageEncryptionKey:     key,
		StorageType:              awsrds.StorageType_GP3,
		AllocatedStorage:         num(float64(cfg.Sizing.DatabaseStorageGiB)),
		MaxAllocatedStorage:      num(float64(cfg.Sizing.DatabaseStorageGiB * 4)),
		MultiAz:                  jsii.Bool(cfg.Sizing.MultiAZ),
		PubliclyAccessible:       jsii.Bool(false),
		BackupRetention:          awscdk.Duration_Days(num(14)),
		CopyTagsToSnapshot:       jsii.Bool(true),
		DeletionProtection:       jsii.Bool(true),
		// Pinned to one minor version: an automatic minor upgrade would
		// leave the template naming an older version than the instance
		// runs, and the next update would fail trying to go back. A new
		// minor version comes with a release, deliberately, after the
		// upgrade's snapshot.
		AutoMinorVersionUpgrade: jsii.Bool(false),
		CloudwatchLogsExports:   jsii.Strings("postgresql", "upgrade"),
		// OS metrics (processes, memory, I/O) every minute, to the
		// RDSOSMetrics log group that RDS itself creates and owns.
		MonitoringInterval: awscdk.Duration_Seconds(num(60)),
		InstanceIdentifier: id,
		// Deleted with a final snapshot rather than retained: a retained
		// instance would keep its parameter group, security group and
		// subnets in use, and deleting the data and network stacks would
		// fail on them. The snapshot is what a re-create restores
		// (adopt.database_snapshot). Deletion protection stays on: destroy
		// turns it off deliberately.
		RemovalPolicy: awscdk.RemovalPolicy_SNAPSHOT,
	}
	props.EnablePerformanceInsights = jsii.Bool(cfg.Sizing.PerformanceInsights)
	if cfg.Sizing.PerformanceInsights {
		props.PerformanceInsightEncryptionKey = key
	}
	var db awsrds.IDatabaseInstance
	if snapshot := cfg.Adopt.DatabaseSnapshot; snapshot != "" {
		// The same instance, restored: encryption and its key come with the
		// snapshot (it was encrypted with the adopted data key), and so do
		// the database and its user; RDS gives the user a new managed
		// password (set below), so no secret outlives the instance.
		restore := &awsrds.DatabaseInstanceFromSnapshotProps{
			SnapshotIdentifier: str(snapshot),
		}
		// What a restore cannot take is the new instance's credentials and
		// encryption; anything else left behind would be a setting lost.
		if skipped := copySameFields(restore, props); !slices.Equal(skipped, []string{"Credentials", "ManageMasterUserPassword", "StorageEncrypted", "StorageEncryptionKey"}) {
			panic(fmt.Sprintf("restoring the database would drop settings %v: set them on the restore too", skipped))
		}
		restore.DatabaseName = nil
		restored := awsrds.NewDatabaseInstanceFromSnapshot(stack, str("Database"), restore)
		suppress(restored, "AwsSolutions-RDS2", "Restored from an encrypted snapshot (adopt.database_snapshot): RDS keeps the snapshot's encryption and its key, the adopted data key; CloudFormation's reference says not to set StorageEncrypted with a snapshot.")
		skipCheckov(restored, "CKV_AWS_16", "Restored from an encrypted snapshot (adopt.database_snapshot): RDS keeps the snapshot's encryption and key; CloudFormation's reference says not to set StorageEncrypted with a snapshot.")
		db = restored
	} else {
		db = awsrds.NewDatabaseInstance(stack, str("Database"), props)
	}
	// The log groups RDS exports to, created here with retention. (CDK's
	// own retention setting would deploy a Lambda function to do this.)
	// They are named after the instance, whose identifier is new with each
	// creation of the stack, so retained ones never collide with the next.
	for _, export := range *props.CloudwatchLogsExports {
		lg := awslogs.NewLogGroup(stack, str("DatabaseLogs-"+*export), &awslogs.LogGroupProps{
			LogGroupName:  awscdk.Fn_Join(str(""), &[]*string{str("/aws/rds/instance/"), id, str("/" + *export)}),
			Retention:     retention(cfg),
			EncryptionKey: net.LogsKey,
			RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
		})
		db.Node().AddDependency(lg)
	}
	// Set on the template itself, for a new instance and a restored one
	// alike (the restore's construct has no such setting): RDS generates
	// the password, keeps it in a secret encrypted with the docsvc-secrets
	// key, and rotates it every 7 days.
	cfn := db.Node().DefaultChild().(awsrds.CfnDBInstance)
	cfn.SetManageMasterUserPassword(jsii.Bool(true))
	cfn.SetMasterUserSecret(&awsrds.CfnDBInstance_MasterUserSecretProperty{KmsKeyId: secretKey.KeyArn()})
	secret := awssecretsmanager.Secret_FromSecretAttributes(stack, str("DatabaseSecret"), &awssecretsmanager.SecretAttributes{
		SecretCompleteArn: cfn.AttrMasterUserSecretSecretArn(), EncryptionKey: secretKey,
	})
	suppress(db, "AwsSolutions-RDS11", "The instance is in isolated subnets reachable only from the tasks' security groups; a non-default port adds no protection and breaks PostgreSQL tooling defaults.")
	suppress(db.Node().FindChild(str("MonitoringRole")), "AwsSolutions-IAM4", "RDS enhanced monitoring's role carries AmazonRDSEnhancedMonitoringRole, the AWS policy made for it: it writes only to the RDSOSMetrics log group.",
		"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole")
	skipCheckov(db, "CKV_AWS_161", "docsvc logs in with the database password from Secrets Manager (managed and rotated every 7 days by RDS) and has no IAM token support; IAM authentication would be an unused second way in.")
	if !cfg.Sizing.MultiAZ {
		suppress(db, "AwsSolutions-RDS3", "The customer chose a single-AZ database (sizing.multi_az: false) in deployment.yaml; automated backups and snapshots still protect the data.")
		skipCheckov(db, "CKV_AWS_157", "The customer chose a single-AZ database (sizing.multi_az: false) in deployment.yaml; automated backups and snapshots still protect the data.")
	}
	return db, secret
}

func (d *Data) newUserPool(cfg *deployconfig.Config) {
	pool := awscognito.NewUserPool(d.Stack, str("Users"), &awscognito.UserPoolProps{
		UserPoolName:      str(cfg.ResourceName("")),
		SelfSignUpEnabled: jsii.Bool(false),
		SignInAliases:     &awscognito.SignInAliases{Email: jsii.Bool(true)},
		PasswordPolicy: &awscognito.PasswordPolicy{
			MinLength: num(14), RequireDigits: jsii.Bool(true), RequireLowercase: jsii.Bool(true),
			RequireUppercase: jsii.Bool(true), RequireSymbols: jsii.Bool(true),
		},
		Mfa:                          awscognito.Mfa_REQUIRED,
		MfaSecondFactor:              &awscognito.MfaSecondFactor{Otp: jsii.Bool(true), Sms: jsii.Bool(false)},
		AccountRecovery:              awscognito.AccountRecovery_EMAIL_ONLY,
		FeaturePlan:                  awscognito.FeaturePlan_PLUS,
		StandardThreatProtectionMode: awscognito.StandardThreatProtectionMode_FULL_FUNCTION,
		DeletionProtection:           jsii.Bool(true),
		RemovalPolicy:                awscdk.RemovalPolicy_RETAIN,
	})
	pool.AddDomain(str("SignIn"), &awscognito.UserPoolDomainOptions{
		CognitoDomain: &awscognito.CognitoDomainOptions{DomainPrefix: str(cfg.Auth.CognitoDomainPrefix)},
	})
	client := pool.AddClient(str("Docsvc"), &awscognito.UserPoolClientOptions{
		// A public client using PKCE: docsvc holds no client secret.
		GenerateSecret:             jsii.Bool(false),
		PreventUserExistenceErrors: jsii.Bool(true),
		OAuth: &awscognito.OAuthSettings{
			Flows: &awscognito.OAuthFlows{AuthorizationCodeGrant: jsii.Bool(true)},
			// docsvc asks for openid only: it keys owners by issuer and
			// subject and never reads an email address or a profile.
			Scopes:       &[]awscognito.OAuthScope{awscognito.OAuthScope_OPENID()},
			CallbackUrls: jsii.Strings(callbackURL(cfg)),
			LogoutUrls:   jsii.Strings(cfg.PublicURL() + "/"),
		},
	})
	d.UserPool, d.Client = pool, client
	d.OIDCIssuer = pool.UserPoolProviderUrl()
	d.OIDCClientID = client.UserPoolClientId()
}

// copySameFields sets each field of *dst that *src has, by the same name and
// type, to src's value where src sets it (the CDK's props for a new
// instance and for one restored from a snapshot share most of their
// fields), and returns the names of the set fields it could not copy, sorted.
func copySameFields(dst, src any) (skipped []string) {
	d, s := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
	for i := range s.NumField() {
		f := s.Type().Field(i)
		if s.Field(i).IsZero() {
			continue
		}
		if df := d.FieldByName(f.Name); df.IsValid() && df.Type() == f.Type {
			df.Set(s.Field(i))
		} else {
			skipped = append(skipped, f.Name)
		}
	}
	slices.Sort(skipped)
	return skipped
}

// dbInstanceID is the database's identifier: tether-<name>-<first eight hex
// digits of the stack's ID>. The stack ID is new each time the stack is
// created, so the instance, its final snapshot and its retained log groups
// never collide with a later deployment of the same name.
func dbInstanceID(cfg *deployconfig.Config) *string {
	stackUUID := awscdk.Fn_Select(num(2), awscdk.Fn_Split(str("/"), awscdk.Aws_STACK_ID(), nil))
	return awscdk.Fn_Join(str(""), &[]*string{str(cfg.ResourceName("") + "-"), awscdk.Fn_Select(num(0), awscdk.Fn_Split(str("-"), stackUUID, nil))})
}

func callbackURL(cfg *deployconfig.Config) string { return cfg.PublicURL() + "/auth/callback" }

// agentUID is the distroless "nonroot" user the agent's image runs as.
const agentUID = "65532"

// newAgentState creates the agent's persistent data directory. The egress
// ledger is the customer's record of everything that ever left; it must
// outlive any one task, so it lives on EFS (encrypted, backed up, retained)
// rather than the task's ephemeral storage. Only the agent's and the exchange
// task's security groups may reach it, and only through an access point
// rooted at the agent's directory.
// agentStatePolicy is the state file system's own policy. Once a file
// system has one, a client mounts only if an IAM policy allows it: no
// anonymous NFS client in the VPC. The agent's and the exchange task's roles
// are the clients (their identity policies allow the access point); this policy adds that
// every mount uses TLS and an access point. It names neither the role (which
// the services stack creates later) nor the access point (which depends on
// this file system).
func agentStatePolicy() awsiam.PolicyDocument {
	all := []awsiam.IPrincipal{awsiam.NewAnyPrincipal()}
	return awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{Statements: &[]awsiam.PolicyStatement{
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        str("DenyWithoutTLS"),
			Effect:     awsiam.Effect_DENY,
			Principals: &all,
			Actions:    jsii.Strings("*"),
			Resources:  jsii.Strings("*"),
			Conditions: &map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
		}),
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        str("DenyOutsideAnAccessPoint"),
			Effect:     awsiam.Effect_DENY,
			Principals: &all,
			Actions:    jsii.Strings("elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite", "elasticfilesystem:ClientRootAccess"),
			Resources:  jsii.Strings("*"),
			Conditions: &map[string]any{"Null": map[string]any{"elasticfilesystem:AccessPointArn": "true"}},
		}),
	}})
}

func (d *Data) newAgentState(cfg *deployconfig.Config, net *Network) {
	sg := awsec2.NewSecurityGroup(d.Stack, str("AgentStateMounts"), &awsec2.SecurityGroupProps{
		Vpc:              net.Vpc,
		Description:      str("Tether " + cfg.Name + ": tether-agent state file system (NFS from the agent and tether-exchange only)"),
		AllowAllOutbound: jsii.Bool(false),
	})
	d.AgentState = awsefs.NewFileSystem(d.Stack, str("AgentState"), &awsefs.FileSystemProps{
		Vpc:                    net.Vpc,
		VpcSubnets:             taskSubnets(cfg.AgentNeedsInternet()),
		SecurityGroup:          sg,
		Encrypted:              jsii.Bool(true),
		EnableAutomaticBackups: jsii.Bool(true),
		RemovalPolicy:          awscdk.RemovalPolicy_RETAIN,
		FileSystemPolicy:       agentStatePolicy(),
	})
	d.AgentState.Connections().AllowDefaultPortFrom(net.Groups["agent"], str("NFS from tether-agent"))
	d.AgentState.Connections().AllowDefaultPortFrom(net.Groups["exchange"], str("NFS from tether-exchange"))
	d.AgentStateAccess = d.AgentState.AddAccessPoint(str("Agent"), &awsefs.AccessPointOptions{
		Path:      str("/tether-agent"),
		PosixUser: &awsefs.PosixUser{Uid: str(agentUID), Gid: str(agentUID)},
		CreateAcl: &awsefs.Acl{OwnerUid: str(agentUID), OwnerGid: str(agentUID), Permissions: str("0700")},
	})
}

package stacks

import (
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
// deleted, so no CloudFormation mistake can destroy documents.
type Data struct {
	Stack      awscdk.Stack
	Key        awskms.Key // encrypts documents, queue messages and the database
	Documents  awss3.Bucket
	AccessLogs awss3.Bucket // S3 server access logs and ALB logs (SSE-S3: ALB cannot write SSE-KMS)
	Jobs       awssqs.Queue
	DeadLetter awssqs.Queue
	Database   awsrds.DatabaseInstance
	Secrets    map[string]awssecretsmanager.Secret // by kind: ai (key-based providers only), license, agent-identity
	UserPool   awscognito.UserPool                 // nil unless auth.provider is cognito
	Client     awscognito.UserPoolClient           // nil unless auth.provider is cognito
	// DocsvcSecretsKey encrypts docsvc's secrets (the database password, an
	// AI provider key); AgentSecretsKey the secrets tether-agent reads (the
	// license, its identity). The agent's roles may use the second only, and
	// the data and docsvc-secrets key policies deny the agent by name.
	DocsvcSecretsKey awskms.Key
	AgentSecretsKey  awskms.Key
	// AgentState keeps the agent's egress ledger and TUF metadata across task
	// replacements; only the agent mounts it, through AgentStateAccess.
	AgentState       awsefs.FileSystem
	AgentStateAccess awsefs.AccessPoint
	// Exchange is the agent exchange bucket (support.go).
	Exchange *Exchange
	// OIDCIssuer and OIDCClientID are what docsvc verifies tokens against.
	OIDCIssuer   *string
	OIDCClientID *string
}

// Database identity. The password lives only in the generated secret.
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
	d := &Data{Stack: stack, Secrets: map[string]awssecretsmanager.Secret{}}
	retain := awscdk.RemovalPolicy_RETAIN

	d.Key = retainedKey(stack, cfg, "DataKey", "data", "documents, job messages and database storage")
	d.Key.AddToResourcePolicy(denyAgent(cfg, []string{"kms:*"}, str("*")), nil)
	// Secrets Manager encrypts with these keys on the caller's behalf: a
	// role reading a secret needs kms:Decrypt through Secrets Manager on the
	// secret's key, and nothing on the others.
	d.DocsvcSecretsKey = retainedKey(stack, cfg, "DocsvcSecretsKey", "docsvc-secrets", "docsvc's secrets (database password, AI provider key)")
	d.DocsvcSecretsKey.AddToResourcePolicy(denyAgent(cfg, []string{"kms:*"}, str("*")), nil)
	d.AgentSecretsKey = retainedKey(stack, cfg, "AgentSecretsKey", "agent-secrets", "the secrets tether-agent reads (license, agent identity)")

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

	d.Documents = awss3.NewBucket(stack, str("Documents"), &awss3.BucketProps{
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
		RemovalPolicy: retain,
	})
	d.Documents.AddToResourcePolicy(denyAgent(cfg, []string{"s3:*"}, d.Documents.BucketArn(), d.Documents.ArnForObjects(str("*"))))

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

	d.Database = newDatabase(stack, cfg, net, d.Key, d.DocsvcSecretsKey)
	for _, family := range dbClients {
		d.Database.Connections().AllowDefaultPortFrom(net.Groups[family], str("PostgreSQL from "+family))
	}
	d.Database.Secret().AddToResourcePolicy(denyAgent(cfg, []string{"secretsmanager:*"}, str("*")))

	// The ai secret exists whatever the provider, though only key-based
	// providers read it: a retained secret that came and went with the
	// provider would collide with itself when the provider came back, and
	// the services stack's use of it would stop a switch away (an export in
	// use cannot be removed). Its ARN is exported whether or not a task
	// imports it, for the same reason.
	for _, kind := range []string{secretLicense, secretAgentIdentity, secretAI} {
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
		suppress(s, "AwsSolutions-SMG4", "Set by the operator (vendor license, AI provider key) or by the agent (its own Ed25519 identity); Lambda rotation cannot produce these values. Rotation is the operator putting a new value (aws secretsmanager put-secret-value).")
		d.Secrets[kind] = s
	}
	stack.ExportValue(d.Secrets[secretAI].SecretArn(), nil)

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
		Alias:             str("alias/tether/" + cfg.Name + "/" + alias),
		Description:       str("Tether " + cfg.Name + ": " + purpose),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})
}

// secretSetBy says, in each secret's description, who gives it its value.
var secretSetBy = map[string]string{
	secretLicense:       "the vendor's signed license; set it with: aws secretsmanager put-secret-value --secret-id <this secret> --secret-string file://license.json",
	secretAI:            "the AI provider's API key, for providers that take one (openai, anthropic), unused otherwise; set it with: aws secretsmanager put-secret-value --secret-id <this secret> --secret-string file://ai-key.txt",
	secretAgentIdentity: "the agent's Ed25519 identity; the agent creates it on its first start, nobody else sets it",
}

// SecretKey is the key that encrypts the secret of one kind: the agent's
// secrets under the agent-secrets key, docsvc's under the docsvc-secrets key.
func (d *Data) SecretKey(kind string) awskms.Key {
	if kind == secretLicense || kind == secretAgentIdentity {
		return d.AgentSecretsKey
	}
	return d.DocsvcSecretsKey
}

func newDatabase(stack awscdk.Stack, cfg *deployconfig.Config, net *Network, key, secretKey awskms.Key) awsrds.DatabaseInstance {
	engine := awsrds.DatabaseInstanceEngine_Postgres(&awsrds.PostgresInstanceEngineProps{
		Version: awsrds.PostgresEngineVersion_VER_17_9(),
	})
	params := awsrds.NewParameterGroup(stack, str("DatabaseParameters"), &awsrds.ParameterGroupProps{
		Engine:      engine,
		Description: str("Tether " + cfg.Name + ": TLS required for every connection"),
		Parameters:  &map[string]*string{"rds.force_ssl": str("1")},
	})
	isolated := &awsec2.SubnetSelection{SubnetGroupName: str(subnetIsolated)}
	secret := awsrds.NewDatabaseSecret(stack, str("DatabaseSecret"), &awsrds.DatabaseSecretProps{
		Username:   str(dbUser),
		SecretName: str(cfg.SecretName(secretDatabase)),
		// Not the data key: the rotation function and the tasks' execution
		// roles decrypt this secret, and need nothing that opens documents.
		EncryptionKey: secretKey,
	})
	secret.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN)
	props := &awsrds.DatabaseInstanceProps{
		Engine:               engine,
		InstanceType:         awsec2.NewInstanceType(str(strings.TrimPrefix(cfg.Sizing.DatabaseClass, "db."))),
		Vpc:                  net.Vpc,
		VpcSubnets:           isolated,
		Credentials:          awsrds.Credentials_FromSecret(secret, nil),
		DatabaseName:         str(dbName),
		ParameterGroup:       params,
		StorageEncrypted:     jsii.Bool(true),
		StorageEncryptionKey: key,
		StorageType:          awsrds.StorageType_GP3,
		AllocatedStorage:     num(float64(cfg.Sizing.DatabaseStorageGiB)),
		MaxAllocatedStorage:  num(float64(cfg.Sizing.DatabaseStorageGiB * 4)),
		MultiAz:              jsii.Bool(cfg.Sizing.MultiAZ),
		PubliclyAccessible:   jsii.Bool(false),
		BackupRetention:      awscdk.Duration_Days(num(14)),
		CopyTagsToSnapshot:   jsii.Bool(true),
		DeletionProtection:   jsii.Bool(true),
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
		InstanceIdentifier: str(dbInstanceID(cfg)),
		RemovalPolicy:      awscdk.RemovalPolicy_RETAIN,
	}
	props.EnablePerformanceInsights = jsii.Bool(cfg.Sizing.PerformanceInsights)
	if cfg.Sizing.PerformanceInsights {
		props.PerformanceInsightEncryptionKey = key
	}
	db := awsrds.NewDatabaseInstance(stack, str("Database"), props)
	// The log groups RDS exports to, created here with retention. (CDK's
	// own retention setting would deploy a Lambda function to do this.)
	for _, export := range *props.CloudwatchLogsExports {
		lg := awslogs.NewLogGroup(stack, str("DatabaseLogs-"+*export), &awslogs.LogGroupProps{
			LogGroupName:  str("/aws/rds/instance/" + dbInstanceID(cfg) + "/" + *export),
			Retention:     retention(cfg),
			EncryptionKey: net.LogsKey,
			RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
		})
		db.Node().AddDependency(lg)
	}
	db.AddRotationSingleUser(&awsrds.RotationSingleUserOptions{
		AutomaticallyAfter: awscdk.Duration_Days(num(30)),
		VpcSubnets:         isolated,
	})
	suppress(db, "AwsSolutions-RDS11", "The instance is in isolated subnets reachable only from the tasks' security groups; a non-default port adds no protection and breaks PostgreSQL tooling defaults.")
	suppress(db.Node().FindChild(str("MonitoringRole")), "AwsSolutions-IAM4", "RDS enhanced monitoring's role carries AmazonRDSEnhancedMonitoringRole, the AWS policy made for it: it writes only to the RDSOSMetrics log group.",
		"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole")
	skipCheckov(db, "CKV_AWS_161", "docsvc logs in with the database password from Secrets Manager (rotated every 30 days) and has no IAM token support; IAM authentication would be an unused second way in.")
	if !cfg.Sizing.MultiAZ {
		suppress(db, "AwsSolutions-RDS3", "The customer chose a single-AZ database (sizing.multi_az: false) in deployment.yaml; automated backups and snapshots still protect the data.")
		skipCheckov(db, "CKV_AWS_157", "The customer chose a single-AZ database (sizing.multi_az: false) in deployment.yaml; automated backups and snapshots still protect the data.")
	}
	return db
}

func (d *Data) newUserPool(cfg *deployconfig.Config) {
	pool := awscognito.NewUserPool(d.Stack, str("Users"), &awscognito.UserPoolProps{
		UserPoolName:      str("tether-" + cfg.Name),
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
			Flows:        &awscognito.OAuthFlows{AuthorizationCodeGrant: jsii.Bool(true)},
			Scopes:       &[]awscognito.OAuthScope{awscognito.OAuthScope_OPENID(), awscognito.OAuthScope_EMAIL(), awscognito.OAuthScope_PROFILE()},
			CallbackUrls: jsii.Strings(callbackURL(cfg)),
			LogoutUrls:   jsii.Strings(cfg.PublicURL() + "/"),
		},
	})
	d.UserPool, d.Client = pool, client
	d.OIDCIssuer = pool.UserPoolProviderUrl()
	d.OIDCClientID = client.UserPoolClientId()
}

func dbInstanceID(cfg *deployconfig.Config) string { return "tether-" + cfg.Name }

func callbackURL(cfg *deployconfig.Config) string { return cfg.PublicURL() + "/auth/callback" }

// agentUID is the distroless "nonroot" user the agent's image runs as.
const agentUID = "65532"

// newAgentState creates the agent's persistent data directory. The egress
// ledger is the customer's record of everything that ever left; it must
// outlive any one task, so it lives on EFS (encrypted, backed up, retained)
// rather than the task's ephemeral storage. Only the agent's security group
// may reach it, and only through an access point rooted at its own directory.
// agentStatePolicy is the state file system's own policy. Once a file
// system has one, a client mounts only if an IAM policy allows it: no
// anonymous NFS client in the VPC. The agent's task role is that one client
// (its identity policy allows its own access point); this policy adds that
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
		Description:      str("Tether " + cfg.Name + ": tether-agent state file system (NFS from the agent only)"),
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
	d.AgentStateAccess = d.AgentState.AddAccessPoint(str("Agent"), &awsefs.AccessPointOptions{
		Path:      str("/tether-agent"),
		PosixUser: &awsefs.PosixUser{Uid: str(agentUID), Gid: str(agentUID)},
		CreateAcl: &awsefs.Acl{OwnerUid: str(agentUID), OwnerGid: str(agentUID), Permissions: str("0700")},
	})
}

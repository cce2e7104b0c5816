// Package planestack is the vendor plane's AWS deployment: tether-plane
// replicas on ECS Fargate behind an HTTPS load balancer, RDS PostgreSQL for
// its rows and shared state, an S3 bucket for diagnostics bundles and the
// TUF repositories, KMS keys (one for data at rest, two ECC_NIST_P256 keys
// that sign snapshot and timestamp metadata), and alarms on heartbeat
// ingest errors and stale installs. docs/plane.md says how the vendor runs,
// backs up, restores and rotates it.
package planestack

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsrds"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// Props are what the vendor decides.
type Props struct {
	Name           string // stack name and resource prefix, e.g. "tether-plane"
	Account        string
	Region         string
	CertificateARN string // ACM certificate for the plane's public name
	// Image is the tether-plane image pinned by digest
	// (build/plane.Dockerfile, with the public parts of the keys
	// directory, see KeysDir, added by the vendor).
	Image string
	// KeysDir is the keys directory inside the image: root.json,
	// signing.json, license.pub and snapshot.kms/timestamp.kms naming the
	// signing keys below; never a private key.
	KeysDir    string
	Replicas   int    // Fargate tasks; at least 2
	AlarmEmail string // optional subscriber of the alarm topic

	// Staff sign-in through the vendor's OpenID Connect provider: all of
	// OIDCIssuer, OIDCClientID and OIDCRedirectURL, or none (the dashboard
	// then takes only the admin token). OIDCClientSecretARN names a
	// Secrets Manager secret the vendor made with the client secret; empty
	// for a public client (PKCE only).
	OIDCIssuer          string
	OIDCClientID        string
	OIDCRedirectURL     string // https://PLANE/login/callback, registered with the provider
	OIDCClientSecretARN string
}

var (
	imageRef = regexp.MustCompile(`^[a-z0-9]+(?:[._:/-][a-z0-9]+)*@sha256:[0-9a-f]{64}$`)
	certARN  = regexp.MustCompile(`^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$`)
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{1,30}$`)
	secretRE = regexp.MustCompile(`^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$`)
)

// Validate reports the first prop that cannot be deployed, naming the fix.
func (p Props) Validate() error {
	switch {
	case !nameRE.MatchString(p.Name):
		return fmt.Errorf("name %q: want 2-31 of a-z 0-9 -, starting with a letter", p.Name)
	case !regexp.MustCompile(`^\d{12}$`).MatchString(p.Account):
		return fmt.Errorf("account %q: want the 12-digit AWS account ID", p.Account)
	case p.Region == "":
		return fmt.Errorf("region is required (e.g. eu-west-1)")
	case !certARN.MatchString(p.CertificateARN):
		return fmt.Errorf("certificateArn %q: want an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)", p.CertificateARN)
	case !imageRef.MatchString(p.Image):
		return fmt.Errorf("image %q: want REPO@sha256:<64 hex> (pin the tether-plane image by digest)", p.Image)
	case p.Replicas < 2:
		return fmt.Errorf("replicas %d: run at least 2, so losing a task or a zone does not stop heartbeats", p.Replicas)
	}
	return p.validateOIDC()
}

// validateOIDC checks staff sign-in's props: all three or none, HTTPS, and
// the redirect URL on the plane's callback path.
func (p Props) validateOIDC() error {
	if p.OIDCIssuer == "" && p.OIDCClientID == "" && p.OIDCRedirectURL == "" && p.OIDCClientSecretARN == "" {
		return nil
	}
	if p.OIDCIssuer == "" || p.OIDCClientID == "" || p.OIDCRedirectURL == "" {
		return fmt.Errorf("staff sign-in needs oidcIssuer, oidcClientId and oidcRedirectUrl together (have %q, %q, %q)", p.OIDCIssuer, p.OIDCClientID, p.OIDCRedirectURL)
	}
	if u, err := url.Parse(p.OIDCIssuer); err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("oidcIssuer %q: want the provider's https issuer URL, as its discovery document names it", p.OIDCIssuer)
	}
	if u, err := url.Parse(p.OIDCRedirectURL); err != nil || u.Scheme != "https" || u.Host == "" || !strings.HasSuffix(u.Path, callbackPath) {
		return fmt.Errorf("oidcRedirectUrl %q: want the plane's https URL ending in %s", p.OIDCRedirectURL, callbackPath)
	}
	if p.OIDCClientSecretARN != "" && !secretRE.MatchString(p.OIDCClientSecretARN) {
		return fmt.Errorf("oidcClientSecretArn %q: want a Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)", p.OIDCClientSecretARN)
	}
	return nil
}

// callbackPath is where the provider sends staff back (plane.CallbackPath;
// this module does not link the plane).
const callbackPath = "/login/callback"

const (
	planePort = 8443
	dbName    = "tether_plane"
	dbUser    = "tether_plane"
	// objectsPrefix is the prefix serve --objects uses in the bucket.
	objectsPrefix = "plane"
)

// Outputs the stack exports.
const (
	OutputURL          = "PlaneLoadBalancerDNS"
	OutputBucket       = "PlaneStateBucket"
	OutputSnapshotKey  = "SnapshotSigningKeyArn"
	OutputTimestampKey = "TimestampSigningKeyArn"
	OutputDatabase     = "PlaneDatabaseEndpoint"
)

// Stack is the synthesized plane, for tests.
type Stack struct {
	awscdk.Stack
	Bucket                    awss3.Bucket
	SnapshotKey, TimestampKey awskms.Key
	Alarms                    map[string]awscloudwatch.Alarm
}

func str(s string) *string           { return jsii.String(s) }
func num(n float64) *float64         { return jsii.Number(n) }
func days(n float64) awscdk.Duration { return awscdk.Duration_Days(num(n)) }

// suppress records a cdk-nag suppression with its reason.
func suppress(c constructs.IConstruct, rule, reason string, appliesTo ...any) {
	s := &cdknag.NagPackSuppression{Id: str(rule), Reason: str(reason)}
	if len(appliesTo) > 0 {
		s.AppliesTo = &appliesTo
	}
	cdknag.NagSuppressions_AddResourceSuppressions(c, &[]*cdknag.NagPackSuppression{s}, jsii.Bool(true))
}

// skipCheckov records in the resource's Metadata that a checkov check does
// not apply, and why (internal/cfncheck requires the reason).
func skipCheckov(c constructs.IConstruct, id, reason string) {
	res := c.Node().DefaultChild().(awscdk.CfnResource)
	var skips []any
	if md, ok := res.GetMetadata(str("checkov")).(map[string]any); ok {
		skips, _ = md["skip"].([]any)
	}
	skips = append(skips, map[string]any{"id": id, "comment": reason})
	res.AddMetadata(str("checkov"), map[string]any{"skip": skips})
}

// New builds the plane's stack with cdk-nag's AWS Solutions checks.
func New(app awscdk.App, p Props) (*Stack, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if p.KeysDir == "" {
		p.KeysDir = "/etc/tether-plane/keys"
	}
	// Server access logs are allowed by bucket policy, not the legacy
	// LogDeliveryWrite ACL (cfn-lint W3045), as in deploy/cdk.
	app.Node().SetContext(str("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"), true)
	st := awscdk.NewStack(app, str(p.Name), &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: str(p.Account), Region: str(p.Region)},
		Description: str("Tether vendor plane: tether-plane on ECS Fargate, RDS PostgreSQL, S3, KMS"),
	})
	s := &Stack{Stack: st, Alarms: map[string]awscloudwatch.Alarm{}}

	// Keys. The data key encrypts the bucket, the database, its secrets
	// and the logs; the two signing keys never leave KMS.
	dataKey := awskms.NewKey(st, str("DataKey"), &awskms.KeyProps{
		Description:       str(p.Name + ": bundles, TUF repositories, database, secrets and logs at rest"),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})
	dataKey.GrantEncryptDecrypt(awsiam.NewServicePrincipal(str("logs."+p.Region+"."+*awscdk.Aws_URL_SUFFIX()), nil))
	signingKey := func(id, role string) awskms.Key {
		k := awskms.NewKey(st, str(id), &awskms.KeyProps{
			Description:   str(p.Name + ": signs TUF " + role + " metadata (tether-plane keys use-kms)"),
			KeySpec:       awskms.KeySpec_ECC_NIST_P256,
			KeyUsage:      awskms.KeyUsage_SIGN_VERIFY,
			RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
		})
		skipCheckov(k, "CKV_AWS_7", "An asymmetric ECC_NIST_P256 signing key: KMS cannot rotate asymmetric keys; it is rotated by creating a new key and running tether-plane keys use-kms (a TUF root rotation).")
		suppress(k, "AwsSolutions-KMS5", "An asymmetric signing key, which KMS cannot rotate automatically; rotation is a TUF root rotation with a new key (docs/plane.md).")
		return k
	}
	s.SnapshotKey = signingKey("SnapshotSigningKey", "snapshot")
	s.TimestampKey = signingKey("TimestampSigningKey", "timestamp")

	// Network: public subnets for the load balancer, private ones with
	// egress for the tasks, isolated ones for the database.
	flowLogs := awslogs.NewLogGroup(st, str("FlowLogs"), &awslogs.LogGroupProps{
		Retention: awslogs.RetentionDays_ONE_YEAR, EncryptionKey: dataKey, RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	// Fn::GetAZs rather than a lookup, so synth needs no AWS credentials.
	azs := awscdk.Fn_GetAzs(nil)
	vpc := awsec2.NewVpc(st, str("Vpc"), &awsec2.VpcProps{
		AvailabilityZones: &[]*string{awscdk.Fn_Select(num(0), azs), awscdk.Fn_Select(num(1), azs)},
		NatGateways:       num(2),
		SubnetConfiguration: &[]*awsec2.SubnetConfiguration{
			{Name: str("public"), SubnetType: awsec2.SubnetType_PUBLIC, CidrMask: num(24), MapPublicIpOnLaunch: jsii.Bool(false)},
			{Name: str("tasks"), SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS, CidrMask: num(22)},
			{Name: str("database"), SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED, CidrMask: num(24)},
		},
		FlowLogs: &map[string]*awsec2.FlowLogOptions{"all": {
			Destination: awsec2.FlowLogDestination_ToCloudWatchLogs(flowLogs, nil),
			TrafficType: awsec2.FlowLogTrafficType_ALL,
		}},
		RestrictDefaultSecurityGroup: jsii.Bool(false),
	})

	// Buckets. Access logs (SSE-S3: the load balancer can write no other),
	// and the plane's state, versioned so an overwritten timestamp.json or
	// a deleted bundle can be brought back.
	accessLogs := awss3.NewBucket(st, str("AccessLogs"), &awss3.BucketProps{
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		Versioned:         jsii.Bool(true),
		LifecycleRules:    &[]*awss3.LifecycleRule{{Expiration: days(365), NoncurrentVersionExpiration: days(30)}},
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})
	suppress(accessLogs, "AwsSolutions-S1", "This is the access-log bucket the state bucket and the load balancer log to; logging it to itself would loop.")
	skipCheckov(accessLogs, "CKV_AWS_18", "This is the access-log bucket the state bucket and the load balancer log to; logging it to itself would loop.")
	skipCheckov(accessLogs, "CKV_AWS_145", "Application Load Balancer access logs can be delivered only to a bucket encrypted with S3-managed keys (SSE-S3), not SSE-KMS.")
	s.Bucket = awss3.NewBucket(st, str("State"), &awss3.BucketProps{
		Encryption:             awss3.BucketEncryption_KMS,
		EncryptionKey:          dataKey,
		BucketKeyEnabled:       jsii.Bool(true),
		BlockPublicAccess:      awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:             jsii.Bool(true),
		MinimumTLSVersion:      num(1.2),
		ObjectOwnership:        awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		Versioned:              jsii.Bool(true),
		ServerAccessLogsBucket: accessLogs,
		ServerAccessLogsPrefix: str("s3/state/"),
		LifecycleRules: &[]*awss3.LifecycleRule{{
			NoncurrentVersionExpiration:         days(90),
			AbortIncompleteMultipartUploadAfter: days(7),
		}},
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})

	// Database.
	dbGroup := awsec2.NewSecurityGroup(st, str("DatabaseGroup"), &awsec2.SecurityGroupProps{
		Vpc: vpc, AllowAllOutbound: jsii.Bool(false), Description: str("PostgreSQL: from the plane tasks only"),
	})
	taskGroup := awsec2.NewSecurityGroup(st, str("TaskGroup"), &awsec2.SecurityGroupProps{
		Vpc: vpc, AllowAllOutbound: jsii.Bool(true), Description: str("tether-plane tasks: from the load balancer; out to AWS APIs, the database and the alert webhook"),
	})
	albGroup := awsec2.NewSecurityGroup(st, str("LoadBalancerGroup"), &awsec2.SecurityGroupProps{
		Vpc: vpc, AllowAllOutbound: jsii.Bool(false), Description: str("Load balancer: HTTPS from agents and the vendor; to the plane tasks"),
	})
	albGroup.AddIngressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(num(443)), str("agents and the vendor over HTTPS"), nil)
	albGroup.AddIngressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(num(80)), str("redirected to HTTPS"), nil)
	albGroup.AddEgressRule(taskGroup, awsec2.Port_Tcp(num(planePort)), str("to the plane tasks"), nil)
	taskGroup.AddIngressRule(albGroup, awsec2.Port_Tcp(num(planePort)), str("from the load balancer"), nil)
	dbGroup.AddIngressRule(taskGroup, awsec2.Port_Tcp(num(5432)), str("from the plane tasks"), nil)
	suppress(albGroup, "AwsSolutions-EC23", "The plane is reached by customers' agents from anywhere on the internet over HTTPS (port 80 only redirects); every agent request is signed and the admin API needs the admin token.")
	skipCheckov(albGroup, "CKV_AWS_260", "Port 80 is open only so the load balancer can redirect it to HTTPS; no request is served over HTTP.")

	engine := awsrds.DatabaseInstanceEngine_Postgres(&awsrds.PostgresInstanceEngineProps{Version: awsrds.PostgresEngineVersion_VER_17_9()})
	params := awsrds.NewParameterGroup(st, str("DatabaseParameters"), &awsrds.ParameterGroupProps{
		Engine: engine, Description: str(p.Name + ": TLS required"), Parameters: &map[string]*string{"rds.force_ssl": str("1")},
	})
	dbLogs := []string{"postgresql", "upgrade"}
	dbID := p.Name + "-db"
	// The log groups RDS exports to, created here with retention and the
	// data key (CDK's own retention setting would deploy a Lambda function).
	var logGroups []constructs.IDependable
	for _, export := range dbLogs {
		logGroups = append(logGroups, awslogs.NewLogGroup(st, str("DatabaseLogs-"+export), &awslogs.LogGroupProps{
			LogGroupName:  str("/aws/rds/instance/" + dbID + "/" + export),
			Retention:     awslogs.RetentionDays_ONE_YEAR,
			EncryptionKey: dataKey,
			RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
		}))
	}
	db := awsrds.NewDatabaseInstance(st, str("Database"), &awsrds.DatabaseInstanceProps{
		Engine:                          engine,
		InstanceType:                    awsec2.InstanceType_Of(awsec2.InstanceClass_BURSTABLE4_GRAVITON, awsec2.InstanceSize_MEDIUM),
		Vpc:                             vpc,
		VpcSubnets:                      &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED},
		SecurityGroups:                  &[]awsec2.ISecurityGroup{dbGroup},
		Credentials:                     awsrds.Credentials_FromGeneratedSecret(str(dbUser), &awsrds.CredentialsBaseOptions{EncryptionKey: dataKey}),
		DatabaseName:                    str(dbName),
		ParameterGroup:                  params,
		StorageEncrypted:                jsii.Bool(true),
		StorageEncryptionKey:            dataKey,
		StorageType:                     awsrds.StorageType_GP3,
		AllocatedStorage:                num(50),
		MaxAllocatedStorage:             num(200),
		MultiAz:                         jsii.Bool(true),
		PubliclyAccessible:              jsii.Bool(false),
		BackupRetention:                 days(14),
		CopyTagsToSnapshot:              jsii.Bool(true),
		DeletionProtection:              jsii.Bool(true),
		AutoMinorVersionUpgrade:         jsii.Bool(false),
		CloudwatchLogsExports:           jsii.Strings(dbLogs...),
		InstanceIdentifier:              str(dbID),
		MonitoringInterval:              awscdk.Duration_Seconds(num(60)),
		EnablePerformanceInsights:       jsii.Bool(true),
		PerformanceInsightEncryptionKey: dataKey,
		RemovalPolicy:                   awscdk.RemovalPolicy_SNAPSHOT,
	})
	for _, lg := range logGroups {
		db.Node().AddDependency(lg)
	}
	suppress(db, "AwsSolutions-SMG4", "tether-plane reads the database password when a task starts; the vendor rotates it (docs/plane.md) and then restarts the service, since an automatic rotation would fail every new connection until a restart.")
	suppress(db, "AwsSolutions-RDS11", "The database is in isolated subnets reachable only from the plane tasks' security group; a non-default port adds no protection.")
	skipCheckov(db, "CKV_AWS_161", "tether-plane logs in with the password from the database's Secrets Manager secret (rotated by the vendor, docs/plane.md); IAM authentication would be a second, unused way in.")
	suppress(db.Node().FindChild(str("MonitoringRole")), "AwsSolutions-IAM4", "RDS enhanced monitoring's role carries AmazonRDSEnhancedMonitoringRole, the AWS policy made for it: it writes only to the RDSOSMetrics log group.",
		"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole")

	adminToken := awssecretsmanager.NewSecret(st, str("AdminToken"), &awssecretsmanager.SecretProps{
		Description:   str(p.Name + ": the plane's admin token (TETHER_PLANE_ADMIN_TOKEN)"),
		EncryptionKey: dataKey,
		GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
			PasswordLength: num(48), ExcludePunctuation: jsii.Bool(true),
		},
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	suppress(adminToken, "AwsSolutions-SMG4", "The admin token is rotated by the vendor (docs/plane.md: put a new value, then restart the service so every replica reads it); an automatic rotation would log every dashboard out at random.")

	// Service.
	cluster := awsecs.NewCluster(st, str("Cluster"), &awsecs.ClusterProps{Vpc: vpc, ContainerInsightsV2: awsecs.ContainerInsights_ENABLED})
	appLogs := awslogs.NewLogGroup(st, str("PlaneLogs"), &awslogs.LogGroupProps{
		Retention: awslogs.RetentionDays_ONE_YEAR, EncryptionKey: dataKey, RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	taskRole := awsiam.NewRole(st, str("TaskRole"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(str("ecs-tasks.amazonaws.com"), nil), Description: str("tether-plane tasks"),
	})
	taskRole.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("s3:GetObject", "s3:PutObject", "s3:DeleteObject"),
		Resources: &[]*string{s.Bucket.ArnForObjects(str(objectsPrefix + "/*"))},
	}))
	taskRole.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("s3:ListBucket"), Resources: &[]*string{s.Bucket.BucketArn()},
		Conditions: &map[string]any{"StringLike": map[string]any{"s3:prefix": []string{objectsPrefix, objectsPrefix + "/*"}}},
	}))
	taskRole.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("kms:Decrypt", "kms:GenerateDataKey"), Resources: &[]*string{dataKey.KeyArn()},
	}))
	taskRole.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("kms:Sign", "kms:GetPublicKey"),
		Resources: &[]*string{s.SnapshotKey.KeyArn(), s.TimestampKey.KeyArn()},
	}))
	suppress(taskRole, "AwsSolutions-IAM5", "The plane names bundles and repository files by content under the plane/ prefix of its own bucket; the wildcard is that prefix.",
		map[string]string{"regex": "/^Resource::<State[A-Za-z0-9]+\\.Arn>\\/plane\\/\\*$/g"})

	td := awsecs.NewFargateTaskDefinition(st, str("Task"), &awsecs.FargateTaskDefinitionProps{
		Cpu: num(1024), MemoryLimitMiB: num(2048), TaskRole: taskRole,
		RuntimePlatform: &awsecs.RuntimePlatform{CpuArchitecture: awsecs.CpuArchitecture_X86_64(), OperatingSystemFamily: awsecs.OperatingSystemFamily_LINUX()},
	})
	td.AddVolume(&awsecs.Volume{Name: str("data")})
	env := map[string]*string{
		"TETHER_PLANE_DATABASE_URL": awscdk.Fn_Join(str(""), &[]*string{
			str("postgres://" + dbUser + "@"), db.DbInstanceEndpointAddress(), str(":"), db.DbInstanceEndpointPort(),
			str("/" + dbName + "?sslmode=require"),
		}),
		"TETHER_PLANE_OBJECTS":         awscdk.Fn_Join(str(""), &[]*string{str("s3://"), s.Bucket.BucketName(), str("/" + objectsPrefix)}),
		"TETHER_PLANE_OBJECTS_KMS_KEY": dataKey.KeyArn(),
		"AWS_REGION":                   str(p.Region),
	}
	secrets := map[string]awsecs.Secret{
		"TETHER_PLANE_DATABASE_PASSWORD": awsecs.Secret_FromSecretsManager(db.Secret(), str("password")),
		"TETHER_PLANE_ADMIN_TOKEN":       awsecs.Secret_FromSecretsManager(adminToken, nil),
	}
	if p.OIDCIssuer != "" {
		env["TETHER_PLANE_OIDC_ISSUER"] = str(p.OIDCIssuer)
		env["TETHER_PLANE_OIDC_CLIENT_ID"] = str(p.OIDCClientID)
		env["TETHER_PLANE_OIDC_REDIRECT_URL"] = str(p.OIDCRedirectURL)
		if p.OIDCClientSecretARN != "" {
			secrets["TETHER_PLANE_OIDC_CLIENT_SECRET"] = awsecs.Secret_FromSecretsManager(
				awssecretsmanager.Secret_FromSecretCompleteArn(st, str("OidcClientSecret"), str(p.OIDCClientSecretARN)), nil)
		}
	}
	container := td.AddContainer(str("plane"), &awsecs.ContainerDefinitionOptions{
		Image:                  awsecs.ContainerImage_FromRegistry(str(p.Image), nil),
		ReadonlyRootFilesystem: jsii.Bool(true),
		Command: jsii.Strings("serve", "--data-dir", "/var/lib/tether-plane", "--addr", fmt.Sprintf(":%d", planePort),
			"--keys", p.KeysDir, "--behind-load-balancer"),
		Environment:  &env,
		Secrets:      &secrets,
		Logging:      awsecs.LogDriver_AwsLogs(&awsecs.AwsLogDriverProps{LogGroup: appLogs, StreamPrefix: str("plane")}),
		PortMappings: &[]*awsecs.PortMapping{{ContainerPort: num(planePort)}},
	})
	container.AddMountPoints(&awsecs.MountPoint{ContainerPath: str("/var/lib/tether-plane"), SourceVolume: str("data"), ReadOnly: jsii.Bool(false)})
	suppress(td, "AwsSolutions-ECS2", "The environment holds no secret: the database endpoint, the bucket and key names; the password and the admin token come from Secrets Manager.")

	service := awsecs.NewFargateService(st, str("Service"), &awsecs.FargateServiceProps{
		Cluster:                cluster,
		TaskDefinition:         td,
		DesiredCount:           num(float64(p.Replicas)),
		MinHealthyPercent:      num(50),
		MaxHealthyPercent:      num(200),
		SecurityGroups:         &[]awsec2.ISecurityGroup{taskGroup},
		VpcSubnets:             &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS},
		CircuitBreaker:         &awsecs.DeploymentCircuitBreaker{Rollback: jsii.Bool(true)},
		HealthCheckGracePeriod: awscdk.Duration_Seconds(num(60)),
	})

	alb := awselasticloadbalancingv2.NewApplicationLoadBalancer(st, str("LoadBalancer"), &awselasticloadbalancingv2.ApplicationLoadBalancerProps{
		Vpc: vpc, InternetFacing: jsii.Bool(true), SecurityGroup: albGroup,
		VpcSubnets:              &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC},
		DropInvalidHeaderFields: jsii.Bool(true),
	})
	alb.LogAccessLogs(accessLogs, str("alb"))
	skipCheckov(alb, "CKV2_AWS_28", "Every agent request is signed and replay-checked, and failed admin tokens are rate-limited per client in the database; a WAF in front would add cost, not a control the plane lacks.")
	https := alb.AddListener(str("Https"), &awselasticloadbalancingv2.BaseApplicationListenerProps{
		Port: num(443), Protocol: awselasticloadbalancingv2.ApplicationProtocol_HTTPS,
		Certificates: &[]awselasticloadbalancingv2.IListenerCertificate{awselasticloadbalancingv2.ListenerCertificate_FromCertificateManager(
			awscertificatemanager.Certificate_FromCertificateArn(st, str("Certificate"), str(p.CertificateARN)))},
		SslPolicy: awselasticloadbalancingv2.SslPolicy_RECOMMENDED_TLS,
		Open:      jsii.Bool(false),
	})
	// The stack's own target group, not the listener's child, so the
	// service does not also name it in DependsOn (cfn-lint W3005).
	targets := awselasticloadbalancingv2.NewApplicationTargetGroup(st, str("PlaneTargets"), &awselasticloadbalancingv2.ApplicationTargetGroupProps{
		Vpc: vpc, Port: num(planePort), Protocol: awselasticloadbalancingv2.ApplicationProtocol_HTTP,
		TargetType:          awselasticloadbalancingv2.TargetType_IP,
		Targets:             &[]awselasticloadbalancingv2.IApplicationLoadBalancerTarget{service},
		HealthCheck:         &awselasticloadbalancingv2.HealthCheck{Path: str("/healthz"), HealthyHttpCodes: str("200")},
		DeregistrationDelay: awscdk.Duration_Seconds(num(30)),
	})
	https.AddTargetGroups(str("Plane"), &awselasticloadbalancingv2.AddApplicationTargetGroupsProps{
		TargetGroups: &[]awselasticloadbalancingv2.IApplicationTargetGroup{targets},
	})
	alb.AddRedirect(&awselasticloadbalancingv2.ApplicationLoadBalancerRedirectConfig{
		SourcePort: num(80), SourceProtocol: awselasticloadbalancingv2.ApplicationProtocol_HTTP,
		TargetPort: num(443), TargetProtocol: awselasticloadbalancingv2.ApplicationProtocol_HTTPS, Open: jsii.Bool(false),
	})

	// Alarms, to an encrypted topic.
	topic := awssns.NewTopic(st, str("Alarms"), &awssns.TopicProps{MasterKey: dataKey, EnforceSSL: jsii.Bool(true)})
	dataKey.GrantEncryptDecrypt(awsiam.NewServicePrincipal(str("cloudwatch.amazonaws.com"), nil))
	if p.AlarmEmail != "" {
		awssns.NewSubscription(st, str("AlarmEmail"), &awssns.SubscriptionProps{
			Topic: topic, Protocol: awssns.SubscriptionProtocol_EMAIL, Endpoint: str(p.AlarmEmail),
		})
	}
	alarm := func(id, description string, metric awscloudwatch.IMetric, threshold float64) {
		a := awscloudwatch.NewAlarm(st, str(id), &awscloudwatch.AlarmProps{
			AlarmDescription:   str(description),
			Metric:             metric,
			Threshold:          num(threshold),
			EvaluationPeriods:  num(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		a.AddAlarmAction(awscloudwatchactions.NewSnsAction(topic))
		s.Alarms[id] = a
	}
	// The plane logs JSON (log/slog); a heartbeat it failed to store is
	// logged at ERROR with msg "heartbeat", and every install it finds
	// silent for three intervals at WARN with msg "install stale".
	logMetric := func(id, pattern, name string) awscloudwatch.IMetric {
		f := awslogs.NewMetricFilter(st, str(id), &awslogs.MetricFilterProps{
			LogGroup:        appLogs,
			FilterPattern:   awslogs.FilterPattern_Literal(str(pattern)),
			MetricNamespace: str("Tether/Plane"),
			MetricName:      str(name),
			MetricValue:     str("1"),
			DefaultValue:    num(0),
		})
		return f.Metric(&awscloudwatch.MetricOptions{Statistic: str("Sum"), Period: awscdk.Duration_Minutes(num(5))})
	}
	alarm("HeartbeatIngestErrors", "tether-plane failed to store heartbeats (database trouble?): agents retry, but installs will look stale",
		logMetric("HeartbeatErrorFilter", `{ $.level = "ERROR" && $.msg = "heartbeat" }`, "HeartbeatIngestErrors"), 1)
	alarm("StaleInstalls", "a customer install has been silent for three heartbeat intervals",
		logMetric("StaleInstallFilter", `{ $.msg = "install stale" }`, "StaleInstalls"), 1)
	alarm("Target5xx", "the plane answered 5xx through the load balancer",
		targets.Metrics().HttpCodeTarget(awselasticloadbalancingv2.HttpCodeTarget_TARGET_5XX_COUNT,
			&awscloudwatch.MetricOptions{Statistic: str("Sum"), Period: awscdk.Duration_Minutes(num(5))}), 10)
	alarm("UnhealthyTargets", "fewer plane replicas pass the load balancer's health check than run",
		targets.Metrics().UnhealthyHostCount(&awscloudwatch.MetricOptions{Statistic: str("Maximum"), Period: awscdk.Duration_Minutes(num(1))}), 1)

	for id, v := range map[string]*string{
		OutputURL: alb.LoadBalancerDnsName(), OutputBucket: s.Bucket.BucketName(), OutputDatabase: db.DbInstanceEndpointAddress(),
		OutputSnapshotKey: s.SnapshotKey.KeyArn(), OutputTimestampKey: s.TimestampKey.KeyArn(),
	} {
		awscdk.NewCfnOutput(st, str(id), &awscdk.CfnOutputProps{Value: v})
	}
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	return s, nil
}

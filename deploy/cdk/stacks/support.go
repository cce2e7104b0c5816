package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// Support from the operator's workstation. The agent's data dir is on a
// file system only the agent's and the exchange task mount, so the
// exchange task (tether-exchange) mirrors what an operator reviews (the
// diagnostics requests with their redacted bundles, and the egress ledger)
// to the agent exchange bucket, and applies the operator's decisions there
// (internal/exchange). The agent, which talks to the vendor, has no S3
// right at all. tetherctl diag and egress with --config read the bucket with
// the operator's own IAM permissions (docs/support.md); no shell in a
// container and no inbound port.

// ExchangeBucketOutput is the data stack's output naming the exchange
// bucket; tetherctl finds the bucket by it.
const ExchangeBucketOutput = "ExchangeBucketName"

// Key prefixes in the exchange bucket (internal/exchange).
const (
	exchangeDiagnostics = "diagnostics/"
	exchangeLedger      = "ledger/"
	exchangeDecisions   = exchangeDiagnostics + "*/decision.json"
)

// Exchange is the agent exchange bucket and its key, in the data stack.
type Exchange struct {
	Bucket awss3.Bucket
	Key    awskms.Key
}

// newExchange creates the exchange bucket in the data stack: its own
// retained, rotated key, versioned, TLS only, no public access, access
// logged, retained with the stack's other data. Its policy lets only
// principals of this account in, lets only the exchange task write what it
// writes, keeps it from writing decisions and anyone from deleting the
// ledger's copy, and keeps the agent out altogether.
func newExchange(stack awscdk.Stack, cfg *deployconfig.Config, accessLogs awss3.IBucket) *Exchange {
	x := &Exchange{Key: retainedKey(stack, cfg, "ExchangeKey", "agent-exchange", "the agent exchange bucket (diagnostics requests for review, the egress ledger's copy)")}
	x.Bucket = awss3.NewBucket(stack, str("Exchange"), &awss3.BucketProps{
		Encryption:             awss3.BucketEncryption_KMS,
		EncryptionKey:          x.Key,
		BucketKeyEnabled:       jsii.Bool(true),
		BlockPublicAccess:      awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:             jsii.Bool(true),
		MinimumTLSVersion:      num(1.2),
		ObjectOwnership:        awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		Versioned:              jsii.Bool(true),
		ServerAccessLogsBucket: accessLogs,
		ServerAccessLogsPrefix: str("s3/agent-exchange/"),
		LifecycleRules: &[]*awss3.LifecycleRule{{
			// Overwritten objects are state.json's earlier states; the
			// ledger's segments are written once.
			NoncurrentVersionExpiration:         awscdk.Duration_Days(num(90)),
			AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(num(7)),
		}},
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	all := &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()}
	objects := func(pattern string) *string { return x.Bucket.ArnForObjects(str(pattern)) }
	exchangeRole := map[string]any{"aws:PrincipalArn": roleARN(cfg, cfg.ExchangeRoleName())}
	for _, st := range []*awsiam.PolicyStatementProps{{
		Sid:        str("DenyOtherAccounts"),
		Effect:     awsiam.Effect_DENY,
		Principals: all,
		Actions:    jsii.Strings("s3:*"),
		Resources:  &[]*string{x.Bucket.BucketArn(), objects("*")},
		Conditions: &map[string]any{"StringNotEquals": map[string]any{"aws:PrincipalAccount": cfg.Account}},
	}, {
		// The exchange task writes everything but the operator's decisions.
		Sid:          str("OnlyTheExchangeTaskWritesItsRecords"),
		Effect:       awsiam.Effect_DENY,
		Principals:   all,
		Actions:      jsii.Strings("s3:PutObject"),
		NotResources: &[]*string{objects(exchangeDecisions)},
		Conditions:   &map[string]any{"ArnNotLike": exchangeRole},
	}, {
		// Decisions are the operator's: the exchange task may not approve
		// for them.
		Sid:        str("DenyTetherExchangeDecisions"),
		Effect:     awsiam.Effect_DENY,
		Principals: all,
		Actions:    jsii.Strings("s3:PutObject"),
		Resources:  &[]*string{objects(exchangeDecisions)},
		Conditions: &map[string]any{"ArnLike": exchangeRole},
	}, {
		// The copy of the egress ledger is append-only for everyone.
		Sid:        str("KeepTheLedger"),
		Effect:     awsiam.Effect_DENY,
		Principals: all,
		Actions:    jsii.Strings("s3:DeleteObject", "s3:DeleteObjectVersion"),
		Resources:  &[]*string{objects(exchangeLedger + "*")},
	}} {
		x.Bucket.AddToResourcePolicy(awsiam.NewPolicyStatement(st))
	}
	// The agent, which talks to the vendor, reaches no bucket.
	x.Bucket.AddToResourcePolicy(denyAgent(cfg, []string{"s3:*"}, x.Bucket.BucketArn(), objects("*")))
	// The retained bucket keeps its policy (this account only, the ledger's
	// copy undeletable) after the stack is gone.
	x.Bucket.Policy().ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN)
	awscdk.NewCfnOutput(stack, str(ExchangeBucketOutput), &awscdk.CfnOutputProps{
		Value:       x.Bucket.BucketName(),
		Description: str("The agent exchange bucket: tetherctl diag and egress --config read it"),
	})
	return x
}

// grantExchange lets the exchange task's role write the records and ledger
// segments to the exchange bucket, read the operator's decisions there,
// and list the bucket (without s3:ListBucket, S3 answers a missing
// decision.json with 403 rather than 404), through S3 only with the
// bucket's key. Nothing else in any bucket.
func grantExchange(role awsiam.Role, cfg *deployconfig.Config, x *Exchange) {
	allow(role, []string{"s3:PutObject"}, x.Bucket.ArnForObjects(str(exchangeDiagnostics+"*")), x.Bucket.ArnForObjects(str(exchangeLedger+"*")))
	allow(role, []string{"s3:GetObject"}, x.Bucket.ArnForObjects(str(exchangeDecisions)))
	allow(role, []string{"s3:ListBucket"}, x.Bucket.BucketArn())
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("kms:Decrypt", "kms:GenerateDataKey"),
		Resources: &[]*string{x.Key.KeyArn()},
		Conditions: &map[string]any{"StringEquals": map[string]any{
			"kms:ViaService": "s3." + cfg.Region + "." + *awscdk.Aws_URL_SUFFIX(),
		}},
	}))
	suppress(role, "AwsSolutions-IAM5", exchangeNagReason,
		resourceEnding("/"+exchangeDiagnostics+"*"), resourceEnding("/"+exchangeLedger+"*"), resourceEnding("/"+exchangeDecisions))
}

// exchangeNagReason is why the exchange role's wildcards on the exchange
// bucket are accepted.
const exchangeNagReason = "tether-exchange writes one object per diagnostics request file and per ledger segment, under the exchange bucket's diagnostics/ and ledger/ prefixes only, and reads only diagnostics/*/decision.json; the bucket policy keeps it from writing decisions."

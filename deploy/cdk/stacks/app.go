// Package stacks defines Tether's reference AWS deployment as five CDK stacks
// built from one validated deployment.yaml, in deployment order:
//
//   - network:  the VPC, its subnets, NAT and VPC endpoints;
//   - data:     everything holding customer data (KMS key, documents bucket,
//     queues, PostgreSQL, secrets, user pool), termination-protected and
//     retained when deleted;
//   - images:   the customer's ECR repositories (and, for strict customers,
//     the CodeBuild project that builds the images in the account);
//   - cluster:  the ECS cluster and its private namespace, docsvc's config
//     parameters and the migrate task definition, stateless;
//   - services: stateless compute (ECS services, ALB), alarms and the
//     dashboard, safe to replace at any time.
//
// The services stack names its images only through two parameters of type
// AWS::SSM::Parameter::Value<String> whose defaults are the markers tetherctl
// writes once an image is verified in the account's ECR and (docsvc) its
// migrate task succeeded. Without the marker CloudFormation refuses the
// change set, so no service starts on an unmigrated schema or an
// unverified image, whoever runs the deploy.
//
// The agent's isolation from customer data is expressed twice: its task role
// is granted nothing on the data, and the data's resource policies deny it by
// name. cdk-nag's AwsSolutions pack runs on every synth.
package stacks

import (
	"regexp"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// Deployment is the set of stacks for one deployment.
type Deployment struct {
	Config   *deployconfig.Config
	Network  *Network
	Data     *Data
	Images   *Images
	Cluster  *Cluster
	Services *Services
}

// New adds the deployment's stacks to app and turns on the cdk-nag checks.
func New(app awscdk.App, cfg *deployconfig.Config) *Deployment {
	// Feature flags set here rather than in cdk.json so tests and the CLI
	// synthesize identical templates. Server access logs are delivered under
	// a bucket policy, not ACLs, so every bucket can disable ACLs.
	app.Node().SetContext(jsii.String("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"), true)
	// Cross-stack exports stay protected: the data stack cannot drop an
	// output the services stack still imports.
	app.Node().SetContext(jsii.String("@aws-cdk/core:defaultCrossStackReferences"), "strong")
	// The stacks' availability zones, answered up front so synth never
	// needs AWS credentials for a lookup (cdk.context.json would otherwise
	// cache whatever the caller's account reported). The answer is
	// CloudFormation's Fn::GetAZs, evaluated in the customer's account at
	// deploy time, not zone names written into the template.
	app.Node().SetContext(jsii.String("availability-zones:account="+cfg.Account+":region="+cfg.Region), zones())
	d := &Deployment{Config: cfg}
	d.Network = newNetwork(app, cfg)
	d.Data = newData(app, cfg, d.Network)
	d.Images = newImages(app, cfg, d.Network, d.Data)
	d.Cluster = newCluster(app, cfg, d.Network, d.Data, d.Images)
	d.Services = newServices(app, cfg, d.Network, d.Data, d.Images, d.Cluster)
	// The order is enforced, not only implied by what each stack imports:
	// the services read docsvc's settings from the cluster stack by name,
	// and tetherctl deploys in this order and destroys in reverse.
	all := d.Stacks()
	for i := 1; i < len(all); i++ {
		all[i].AddStackDependency(all[i-1], str("Tether's deployment order"))
	}

	awscdk.Tags_Of(app).Add(jsii.String("tether:deployment"), jsii.String(cfg.Name), nil)
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	return d
}

// Stacks lists the stacks in deployment order.
func (d *Deployment) Stacks() []awscdk.Stack {
	return []awscdk.Stack{d.Network.Stack, d.Data.Stack, d.Images.Stack, d.Cluster.Stack, d.Services.Stack}
}

// newStack applies what every stack shares: the account and region from the
// config, the customer's bootstrap qualifier, and their permissions boundary
// on every role the stack creates.
func newStack(app awscdk.App, cfg *deployconfig.Config, suffix, description string, stateful bool) awscdk.Stack {
	props := &awscdk.StackProps{
		StackName:             jsii.String(cfg.Name + "-" + suffix),
		Description:           jsii.String(description),
		Env:                   &awscdk.Environment{Account: jsii.String(cfg.Account), Region: jsii.String(cfg.Region)},
		TerminationProtection: jsii.Bool(stateful),
	}
	if cfg.CDK.Qualifier != "" {
		props.Synthesizer = awscdk.NewDefaultStackSynthesizer(&awscdk.DefaultStackSynthesizerProps{
			Qualifier: jsii.String(cfg.CDK.Qualifier),
		})
	}
	stack := awscdk.NewStack(app, jsii.String(cfg.Name+"-"+suffix), props)
	if cfg.IAM.PermissionsBoundary != "" {
		awsiam.PermissionsBoundary_Of(stack).Apply(
			awsiam.ManagedPolicy_FromManagedPolicyName(stack, jsii.String("PermissionsBoundary"), jsii.String(cfg.IAM.PermissionsBoundary)))
	}
	return stack
}

// suppress records a cdk-nag suppression on one construct (and its
// children). Every call names the rule and says why it does not apply.
//
// appliesTo narrows IAM findings to the exact wildcard being accepted: a
// "Resource::..." or "Action::..." string, or resourceEnding(...).
func suppress(construct any, rule, reason string, appliesTo ...any) {
	s := &cdknag.NagPackSuppression{Id: jsii.String(rule), Reason: jsii.String(reason)}
	if len(appliesTo) > 0 {
		s.AppliesTo = &appliesTo
	}
	cdknag.NagSuppressions_AddResourceSuppressions(construct, &[]*cdknag.NagPackSuppression{s}, jsii.Bool(true))
}

// skipCheckov records, in the resource's CloudFormation Metadata, that
// checkov's check id does not apply to construct's resource, and why. The
// lint test (lint_test.go) requires the reason.
func skipCheckov(construct constructs.IConstruct, id, reason string) {
	res := construct.Node().DefaultChild().(awscdk.CfnResource)
	var skips []any
	if md, ok := res.GetMetadata(str("checkov")).(map[string]any); ok {
		skips, _ = md["skip"].([]any)
	}
	skips = append(skips, map[string]any{"id": id, "comment": reason})
	res.AddMetadata(str("checkov"), map[string]any{"skip": skips})
}

// ignoreLint turns off cfn-lint warnings for a whole stack's template,
// recording each rule's reason beside it in the template's Metadata
// (cfn-lint reads the "config" key and ignores "reasons"). Call it once per
// stack. The lint test requires a reason for every rule and refuses ignored
// errors (E rules).
func ignoreLint(stack awscdk.Stack, reasons map[string]string) {
	rules := sortedKeys(reasons)
	stack.AddMetadata(str("cfn-lint"), map[string]any{
		"config":  map[string]any{"ignore_checks": rules},
		"reasons": reasons,
	})
}

// denyAgent is the resource-policy statement that keeps the agent's role
// away from a data resource, whatever its identity policy might later say.
// It matches by ARN condition so the data stack needs no reference to the
// services stack (where the role lives), and so the policy is valid before
// the role exists.
func denyAgent(cfg *deployconfig.Config, actions []string, resources ...*string) awsiam.PolicyStatement {
	return awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("DenyTetherAgent"),
		Effect:     awsiam.Effect_DENY,
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings(actions...),
		Resources:  &resources,
		Conditions: &map[string]any{
			"ArnLike": map[string]any{"aws:PrincipalArn": agentRoleARN(cfg)},
		},
	})
}

func agentRoleARN(cfg *deployconfig.Config) string { return roleARN(cfg, cfg.AgentRoleName()) }

func roleARN(cfg *deployconfig.Config, name string) string {
	return "arn:" + *awscdk.Aws_PARTITION() + ":iam::" + cfg.Account + ":role/" + name
}

// resourceEnding matches a wildcard resource by its suffix, for ARNs that
// cdk-nag renders with a cross-stack import in front.
func resourceEnding(suffix string) map[string]string {
	return resourceMatching(".*" + regexp.QuoteMeta(suffix))
}

// resourceMatching matches a wildcard resource by a regular expression over
// the whole rendered ARN.
func resourceMatching(re string) map[string]string {
	return map[string]string{"regex": "/^Resource::" + re + "$/g"}
}

// qualifier is the CDK bootstrap qualifier the stacks deploy with.
func qualifier(cfg *deployconfig.Config) string {
	if cfg.CDK.Qualifier != "" {
		return cfg.CDK.Qualifier
	}
	return *awscdk.DefaultStackSynthesizer_DEFAULT_QUALIFIER()
}

// zones are the deployment's two availability zones: the first two that
// Fn::GetAZs reports in the customer's account. Zone names are per account
// (some accounts have no "<region>a" or "<region>b", e.g. ap-northeast-1b or
// us-west-1a), so they are never written into the template.
func zones() []string {
	azs := awscdk.Fn_GetAzs(nil)
	return []string{*awscdk.Fn_Select(num(0), azs), *awscdk.Fn_Select(num(1), azs)}
}

func str(s string) *string { return jsii.String(s) }

func num(n float64) *float64 { return jsii.Number(n) }

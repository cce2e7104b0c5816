package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// This file is the one source of what the principal that deploys and
// operates Tether (the operator's credentials running tetherctl and the
// CDK CLI) must be allowed: the preflight check "permissions" simulates it
// and docs/iam.md is generated from it.

// Placeholders in permission resources, replaced by deployment.yaml's
// values (or left as they are in docs/iam.md's policy).
const (
	phAccount   = "ACCOUNT"
	phRegion    = "REGION"
	phName      = "NAME"
	phQualifier = "QUALIFIER"
)

// permission is one statement of the deploying principal's policy. Every
// action of a statement applies to every one of its resources: the
// simulation judges each action on each resource.
type permission struct {
	Sid       string   // the policy statement's Sid
	For       string   // which tetherctl command or tool needs it, and why
	Actions   []string // service:Action
	Resources []string // ARNs with placeholders; "*" where the actions take no resource
	// BuildOnly is set for what only images.source build needs.
	BuildOnly bool
	// PassedTo, for iam:PassRole, is the one service the roles may be
	// passed to (the iam:PassedToService condition).
	PassedTo string
}

// deployerPermissions is the list, in the order docs/iam.md shows it.
func deployerPermissions() []permission {
	stack := "arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME-*/*"
	return []permission{
		{
			Sid: "TetherStacks", For: "tetherctl deploy, status, scale and destroy, and the CDK CLI: create, change, read and delete the five stacks named <name>-network, -data, -images, -cluster and -services",
			Actions: []string{
				"cloudformation:CreateChangeSet", "cloudformation:DeleteChangeSet", "cloudformation:DescribeChangeSet", "cloudformation:ExecuteChangeSet",
				"cloudformation:CreateStack", "cloudformation:UpdateStack", "cloudformation:DeleteStack",
				"cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents", "cloudformation:DescribeStackResources",
				"cloudformation:ListStackResources", "cloudformation:GetTemplate", "cloudformation:GetTemplateSummary",
				"cloudformation:UpdateTerminationProtection",
			},
			Resources: []string{stack},
		},
		{
			Sid: "CDKToolkitRead", For: "the CDK CLI: read the CDK bootstrap stack",
			Actions:   []string{"cloudformation:DescribeStacks"},
			Resources: []string{"arn:aws:cloudformation:REGION:ACCOUNT:stack/CDKToolkit/*"},
		},
		{
			Sid: "CDKBootstrapVersion", For: "the CDK CLI and preflight: read the bootstrap's version",
			Actions:   []string{"ssm:GetParameter"},
			Resources: []string{"arn:aws:ssm:REGION:ACCOUNT:parameter/cdk-bootstrap/QUALIFIER/version"},
		},
		{
			Sid: "CDKBootstrapRoles", For: "the CDK CLI: assume the bootstrap's deploy, lookup and publishing roles",
			Actions:   []string{"sts:AssumeRole"},
			Resources: []string{"arn:aws:iam::ACCOUNT:role/cdk-QUALIFIER-*"},
		},
		{
			Sid: "CDKExecutionRole", For: "tetherctl deploy: hand CloudFormation the bootstrap's execution role, and only CloudFormation",
			Actions:   []string{"iam:PassRole"},
			Resources: []string{"arn:aws:iam::ACCOUNT:role/cdk-QUALIFIER-cfn-exec-role-*"},
			PassedTo:  "cloudformation.amazonaws.com",
		},
		{
			Sid: "CDKAssetsBucket", For: "the CDK CLI: find the bootstrap's assets bucket",
			Actions:   []string{"s3:GetBucketLocation", "s3:ListBucket"},
			Resources: []string{"arn:aws:s3:::cdk-QUALIFIER-assets-ACCOUNT-REGION"},
		},
		{
			Sid: "CDKAssetsObjects", For: "the CDK CLI: upload the templates to the bootstrap's assets bucket",
			Actions:   []string{"s3:GetObject", "s3:PutObject"},
			Resources: []string{"arn:aws:s3:::cdk-QUALIFIER-assets-ACCOUNT-REGION/*"},
		},
		{
			Sid: "ECRLogin", For: "tetherctl images push: log in to the deployment's ECR registry",
			Actions:   []string{"ecr:GetAuthorizationToken"},
			Resources: []string{"*"},
		},
		{
			Sid: "ECRPush", For: "tetherctl images push and migrate: copy the release's images into the repositories <name>/docsvc and <name>/agent and verify them by digest",
			Actions: []string{
				"ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload",
				"ecr:PutImage", "ecr:BatchGetImage", "ecr:DescribeImages", "ecr:GetDownloadUrlForLayer",
			},
			Resources: []string{"arn:aws:ecr:REGION:ACCOUNT:repository/NAME/*"},
		},
		{
			Sid: "MigrateRun", For: "tetherctl migrate, tokens and jobs: run the migrate task definition (tokens runs docsvc's token command in it) and the worker's (jobs runs docsvc's dead-letter commands in it)",
			Actions:   []string{"ecs:RunTask"},
			Resources: []string{"arn:aws:ecs:REGION:ACCOUNT:task-definition/tether-NAME-migrate:*", "arn:aws:ecs:REGION:ACCOUNT:task-definition/tether-NAME-worker:*"},
		},
		{
			Sid: "MigrateTaskDefinition", For: "tetherctl migrate: read the migrate task definition's image and container (the action takes no resource)",
			Actions:   []string{"ecs:DescribeTaskDefinition"},
			Resources: []string{"*"},
		},
		{
			Sid: "MigrateWait", For: "tetherctl migrate and tokens: wait for the task and read its exit code",
			Actions:   []string{"ecs:DescribeTasks"},
			Resources: []string{"arn:aws:ecs:REGION:ACCOUNT:task/tether-NAME/*"},
		},
		{
			Sid: "MigratePassRoles", For: "tetherctl migrate and tokens: hand the migrate task its task and execution roles, which the cluster stack creates, to ECS only",
			Actions:   []string{"iam:PassRole"},
			Resources: []string{"arn:aws:iam::ACCOUNT:role/NAME-*"},
			PassedTo:  "ecs-tasks.amazonaws.com",
		},
		{
			Sid: "Logs", For: "tetherctl migrate and images push (build): show the migrate task's and the image build's log",
			Actions:   []string{"logs:DescribeLogStreams", "logs:GetLogEvents", "logs:FilterLogEvents"},
			Resources: []string{"arn:aws:logs:REGION:ACCOUNT:log-group:NAME-*", "arn:aws:logs:REGION:ACCOUNT:log-group:/tether/NAME/*", "arn:aws:logs:REGION:ACCOUNT:log-group:/aws/codebuild/tether-NAME-images:*"},
		},
		{
			Sid: "Markers", For: "tetherctl: record and read the verified and migrated image markers, the deployment's parameters and the upgrade history under /tether/<name>/, and delete the markers and the upgrade history on destroy",
			Actions: []string{
				"ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath", "ssm:PutParameter", "ssm:DeleteParameter", "ssm:DeleteParameters",
			},
			Resources: []string{"arn:aws:ssm:REGION:ACCOUNT:parameter/tether/NAME/*"},
		},
		{
			Sid: "SecretsMetadata", For: "tetherctl secrets, status and preflight: whether each secret exists, has a value and rotates (never the database password itself)",
			Actions: []string{"secretsmanager:DescribeSecret"},
			// rds!db-*: RDS names the database password's secret itself;
			// DescribeSecret is metadata only.
			Resources: []string{"arn:aws:secretsmanager:REGION:ACCOUNT:secret:tether/NAME/*", "arn:aws:secretsmanager:REGION:ACCOUNT:secret:rds!db-*"},
		},
		{
			Sid: "SecretsCheck", For: "tetherctl secrets, status, preflight, migrate and upgrade: read the license (upgrade: its channels), the AI key and the agent identity to judge them (the database secret is left out: tetherctl never reads it)",
			Actions: []string{"secretsmanager:GetSecretValue"},
			Resources: []string{"arn:aws:secretsmanager:REGION:ACCOUNT:secret:tether/NAME/license-*", "arn:aws:secretsmanager:REGION:ACCOUNT:secret:tether/NAME/ai-*",
				"arn:aws:secretsmanager:REGION:ACCOUNT:secret:tether/NAME/agent-identity-*"},
		},
		{
			Sid: "SecretsSet", For: "tetherctl secrets set and rotate: the license and the AI key, which the operator sets, and the agent identity's pending key (secrets rotate agent puts it as AWSPENDING; the agent promotes it)",
			Actions: []string{"secretsmanager:PutSecretValue"},
			Resources: []string{"arn:aws:secretsmanager:REGION:ACCOUNT:secret:tether/NAME/license-*", "arn:aws:secretsmanager:REGION:ACCOUNT:secret:tether/NAME/ai-*",
				"arn:aws:secretsmanager:REGION:ACCOUNT:secret:tether/NAME/agent-identity-*"},
		},
		{
			Sid: "RotateRestart", For: "tetherctl secrets rotate: restart the services that read the rotated secret (a forced new deployment, one task at a time)",
			Actions:   []string{"ecs:UpdateService"},
			Resources: []string{"arn:aws:ecs:REGION:ACCOUNT:service/tether-NAME/*"},
		},
		{
			Sid: "DeployServicesList", For: "tetherctl deploy and secrets rotate: list the cluster's services to wait until they are stable (the action takes no resource)",
			Actions:   []string{"ecs:ListServices"},
			Resources: []string{"*"},
		},
		{
			Sid: "StatusServices", For: "tetherctl status and deploy: the api, worker and agent ECS services",
			Actions:   []string{"ecs:DescribeServices"},
			Resources: []string{"arn:aws:ecs:REGION:ACCOUNT:service/tether-NAME/*"},
		},
		{
			Sid: "StatusMetrics", For: "tetherctl status: the queues' depth and oldest message's age (from SQS's CloudWatch metrics: tetherctl never calls SQS, which carries the jobs), the documents bucket's size and the database's free storage (S3's and RDS's metrics), and the alarms; CloudWatch's read actions take no resource",
			Actions:   []string{"cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms"},
			Resources: []string{"*"},
		},
		{
			Sid: "UpgradeSnapshot", For: "tetherctl upgrade and rollback: snapshot the database (instance tether-<name>-…) as tether-<name>-pre-upgrade-<time>, tagged, and wait for it",
			Actions:   []string{"rds:CreateDBSnapshot", "rds:DescribeDBSnapshots", "rds:AddTagsToResource"},
			Resources: []string{"arn:aws:rds:REGION:ACCOUNT:db:tether-NAME-*", "arn:aws:rds:REGION:ACCOUNT:snapshot:tether-NAME-pre-upgrade-*"},
		},
		{
			Sid: "DestroyDatabase", For: "tetherctl destroy: read the database's (instance tether-<name>-…) deletion protection, and turn it off once the operator confirmed, so that CloudFormation can take its final snapshot and delete it; tetherctl status: read its allocated storage",
			Actions:   []string{"rds:DescribeDBInstances", "rds:ModifyDBInstance"},
			Resources: []string{"arn:aws:rds:REGION:ACCOUNT:db:tether-NAME-*"},
		},
		{
			Sid: "PreflightReads", For: "tetherctl preflight: the caller, the region and its zones, an existing VPC's subnets and route tables, the quotas, the certificate or hosted zone, the Bedrock model; tetherctl status: the certificate's expiry",
			Actions: []string{
				"sts:GetCallerIdentity", "ec2:DescribeRegions", "ec2:DescribeAvailabilityZones", "ec2:DescribeVpcs", "ec2:DescribeAddresses",
				"ec2:DescribeSubnets", "ec2:DescribeRouteTables",
				"servicequotas:GetServiceQuota", "acm:DescribeCertificate", "route53:GetHostedZone",
				"bedrock:GetFoundationModel", "bedrock:GetFoundationModelAvailability",
			},
			Resources: []string{"*"},
		},
		{
			Sid: "PreflightSimulate", For: "tetherctl preflight's permissions check: simulate this policy for the caller",
			Actions:   []string{"iam:SimulatePrincipalPolicy"},
			Resources: []string{"arn:aws:iam::ACCOUNT:user/*", "arn:aws:iam::ACCOUNT:role/*"},
		},
		{
			Sid: "PreflightCallerRole", For: "tetherctl preflight's permissions check: find the path of the role the caller's session belongs to",
			Actions:   []string{"iam:GetRole"},
			Resources: []string{"arn:aws:iam::ACCOUNT:role/*"},
		},
		{
			Sid: "ImageBuildSource", For: "tetherctl images push with images.source build: upload the source bundle to the images stack's bucket",
			Actions:   []string{"s3:PutObject"},
			Resources: []string{"arn:aws:s3:::NAME-images-*/*"},
			BuildOnly: true,
		},
		{
			Sid: "ImageBuildRun", For: "tetherctl images push with images.source build: run the images stack's CodeBuild project and wait for it",
			Actions:   []string{"codebuild:StartBuild", "codebuild:BatchGetBuilds"},
			Resources: []string{"arn:aws:codebuild:REGION:ACCOUNT:project/tether-NAME-images"},
			BuildOnly: true,
		},
	}
}

// permissionsFor is the list a deployment needs.
func permissionsFor(dc *deployconfig.Config) []permission {
	var out []permission
	for _, p := range deployerPermissions() {
		if !p.BuildOnly || dc.Images.Source == deployconfig.ImagesBuild {
			out = append(out, p)
		}
	}
	return out
}

// resolveResource fills a resource's placeholders from deployment.yaml.
func resolveResource(r string, dc *deployconfig.Config) string {
	q := dc.CDK.Qualifier
	if q == "" {
		q = defaultQualifier
	}
	return strings.NewReplacer(phAccount, dc.Account, phRegion, dc.Region, phName, dc.Name, phQualifier, q).Replace(r)
}

// policyDocument is an IAM policy granting perms, placeholders as they are.
func policyDocument(perms []permission) ([]byte, error) {
	type statement struct {
		Sid       string
		Effect    string
		Action    []string
		Resource  []string
		Condition map[string]map[string]string `json:",omitempty"`
	}
	doc := struct {
		Version   string
		Statement []statement
	}{Version: "2012-10-17"}
	for _, p := range perms {
		st := statement{Sid: p.Sid, Effect: "Allow", Action: p.Actions, Resource: p.Resources}
		if p.PassedTo != "" {
			st.Condition = map[string]map[string]string{"StringEquals": {"iam:PassedToService": p.PassedTo}}
		}
		doc.Statement = append(doc.Statement, st)
	}
	return json.MarshalIndent(doc, "", "  ")
}

// simulationARN is the principal SimulatePrincipalPolicy takes for the
// caller STS names: an assumed role's session is simulated as its role
// (with its path, when iam:GetRole may read it); a user as itself. The
// account's root user and federated users cannot be simulated: why is
// returned instead.
func simulationARN(ctx context.Context, c *iam.Client, callerARN string) (arn, why string) {
	parts := strings.SplitN(callerARN, ":", 6)
	if len(parts) != 6 {
		return "", fmt.Sprintf("the caller's ARN %q is not one IAM can simulate", callerARN)
	}
	account, resource := parts[4], parts[5]
	switch {
	case resource == "root":
		return "", "the credentials are the account's root user, which IAM cannot simulate and AWS advises against using; deploy with an IAM role or user"
	case strings.HasPrefix(resource, "assumed-role/"):
		role, _, _ := strings.Cut(strings.TrimPrefix(resource, "assumed-role/"), "/")
		arn = "arn:" + parts[1] + ":iam::" + account + ":role/" + role
		if c != nil {
			if out, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(role)}); err == nil && out.Role != nil {
				arn = aws.ToString(out.Role.Arn) // the role's path is in its ARN, not in the session's
			}
		}
		return arn, ""
	case strings.HasPrefix(resource, "federated-user/"):
		return "", "the credentials are a federated user's (GetFederationToken), which IAM cannot simulate"
	case strings.HasPrefix(resource, "user/"), strings.HasPrefix(resource, "role/"):
		return "arn:" + parts[1] + ":iam::" + account + ":" + resource, ""
	}
	return "", fmt.Sprintf("the caller %q is not an IAM user or role, which IAM cannot simulate", callerARN)
}

// deniedAction is one action on one resource the simulation did not allow.
type deniedAction struct {
	Action, Resource, Decision string
}

// deniedIn reads SimulatePrincipalPolicy's results: every action whose
// decision, for a resource, is not "allowed".
func deniedIn(results []iamtypes.EvaluationResult) []deniedAction {
	var out []deniedAction
	for _, r := range results {
		action := aws.ToString(r.EvalActionName)
		if len(r.ResourceSpecificResults) == 0 {
			if r.EvalDecision != iamtypes.PolicyEvaluationDecisionTypeAllowed {
				out = append(out, deniedAction{action, aws.ToString(r.EvalResourceName), string(r.EvalDecision)})
			}
			continue
		}
		for _, rr := range r.ResourceSpecificResults {
			if rr.EvalResourceDecision != iamtypes.PolicyEvaluationDecisionTypeAllowed {
				out = append(out, deniedAction{action, aws.ToString(rr.EvalResourceName), string(rr.EvalResourceDecision)})
			}
		}
	}
	return out
}

// simulationResource is the ARN a resource pattern is simulated on: its
// wildcards stand for one name that matches them.
func simulationResource(r string) string {
	if r == "*" {
		return r
	}
	return strings.ReplaceAll(r, "*", "x")
}

// isAccessDenied reports IAM's refusal of the call itself.
func isAccessDenied(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode() == "AccessDenied" || apiErr.ErrorCode() == "AccessDeniedException")
}

// simulatePermissions runs IAM's policy simulator for principal over the
// deployment's permissions, one call per statement so each action is
// judged on its own statement's resources.
func simulatePermissions(ctx context.Context, c *iam.Client, principal string, dc *deployconfig.Config) ([]deniedAction, error) {
	perms := permissionsFor(dc)
	denied := make([][]deniedAction, len(perms))
	errs := make([]error, len(perms))
	var wg sync.WaitGroup
	for i, p := range perms {
		wg.Go(func() {
			var arns []string
			for _, r := range p.Resources {
				arns = append(arns, simulationResource(resolveResource(r, dc)))
			}
			in := &iam.SimulatePrincipalPolicyInput{PolicySourceArn: aws.String(principal), ActionNames: p.Actions, ResourceArns: arns}
			if p.PassedTo != "" {
				in.ContextEntries = []iamtypes.ContextEntry{{ContextKeyName: aws.String("iam:PassedToService"),
					ContextKeyType: iamtypes.ContextKeyTypeEnumString, ContextKeyValues: []string{p.PassedTo}}}
			}
			pg := iam.NewSimulatePrincipalPolicyPaginator(c, in)
			for pg.HasMorePages() {
				out, err := pg.NextPage(ctx)
				if err != nil {
					errs[i] = err
					return
				}
				denied[i] = append(denied[i], deniedIn(out.EvaluationResults)...)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err // the first; the others are usually the same
		}
	}
	return slices.Concat(denied...), nil
}

func (a *awsSession) iamClient() *iam.Client {
	return iam.NewFromConfig(a.cfg, func(o *iam.Options) { setEndpoint(&o.BaseEndpoint, a.serviceEndpoint("IAM")) })
}

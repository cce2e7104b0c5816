package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscodebuild"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecr"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// Images holds the customer's own ECR repositories, the only place tasks
// pull from. With images.source vendor, tetherctl copies the vendor's
// images in by digest and verifies them; with build, a CodeBuild project in
// the account builds them from the vendor's source bundle. Either way the
// services stack names images by digest through CloudFormation parameters.
type Images struct {
	Stack  awscdk.Stack
	Docsvc awsecr.IRepository
	Agent  awsecr.IRepository
	Build  awscodebuild.Project // nil unless images.source is build
}

// Where tetherctl uploads the vendor's source bundle for an in-account build.
const buildSourceKey = "source/tether-source.zip"

func newImages(app awscdk.App, cfg *deployconfig.Config, net *Network, data *Data) *Images {
	stack := newStack(app, cfg, "images", "Tether "+cfg.Name+": container image repositories (retained)", true)
	im := &Images{Stack: stack}
	// The repositories are retained with their images and keep the names
	// tetherctl and the build address them by; a deployment created again
	// after destroy adopts them (adopt.repositories) instead of colliding.
	repo := func(id, name string) awsecr.IRepository {
		if cfg.Adopt.Repositories {
			return awsecr.Repository_FromRepositoryName(stack, str(id), str(RepositoryName(cfg, name)))
		}
		return awsecr.NewRepository(stack, str(id), &awsecr.RepositoryProps{
			RepositoryName:     str(RepositoryName(cfg, name)),
			ImageScanOnPush:    jsii.Bool(true),
			ImageTagMutability: awsecr.TagMutability_IMMUTABLE,
			Encryption:         awsecr.RepositoryEncryption_KMS(),
			LifecycleRules:     &[]*awsecr.LifecycleRule{{MaxImageCount: num(100), Description: str("keep the last 100 releases for rollback")}},
			RemovalPolicy:      awscdk.RemovalPolicy_RETAIN,
		})
	}
	im.Docsvc = repo("DocsvcRepository", "docsvc")
	im.Agent = repo("AgentRepository", "agent")
	awscdk.NewCfnOutput(stack, str("DocsvcRepositoryUri"), &awscdk.CfnOutputProps{Value: im.Docsvc.RepositoryUri()})
	awscdk.NewCfnOutput(stack, str("AgentRepositoryUri"), &awscdk.CfnOutputProps{Value: im.Agent.RepositoryUri()})

	if cfg.Images.Source == deployconfig.ImagesBuild {
		im.newBuild(cfg, net, data)
	} else if cfg.Adopt.Repositories {
		// CloudFormation refuses a template without resources, and with both
		// repositories adopted this stack creates none; it still carries the
		// outputs tetherctl reads, so it stays, holding this no-op.
		awscdk.NewCfnWaitConditionHandle(stack, str("AdoptedRepositories"), &awscdk.CfnWaitConditionHandleProps{})
	}
	return im
}

// RepositoryName is the name of the deployment's ECR repository for one
// image (docsvc, agent): <name>/<image>.
func RepositoryName(cfg *deployconfig.Config, image string) string { return cfg.Name + "/" + image }

func (im *Images) newBuild(cfg *deployconfig.Config, net *Network, data *Data) {
	stack := im.Stack
	key := retainedKey(stack, cfg, "BuildKey", "build", "image build sources and artifacts")
	sources := awss3.NewBucket(stack, str("BuildSources"), &awss3.BucketProps{
		Encryption:             awss3.BucketEncryption_KMS,
		EncryptionKey:          key,
		BlockPublicAccess:      awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:             jsii.Bool(true),
		ObjectOwnership:        awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		Versioned:              jsii.Bool(true),
		ServerAccessLogsBucket: data.AccessLogs,
		ServerAccessLogsPrefix: str("s3/build-sources/"),
		LifecycleRules:         &[]*awss3.LifecycleRule{{NoncurrentVersionExpiration: awscdk.Duration_Days(num(90))}},
		RemovalPolicy:          awscdk.RemovalPolicy_RETAIN,
	})
	// Its policy (TLS only) stays with it when the stack is deleted.
	if p := sources.Policy(); p != nil {
		p.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN)
	}
	logs := awslogs.NewLogGroup(stack, str("BuildLogs"), &awslogs.LogGroupProps{
		Retention:     retention(cfg),
		EncryptionKey: net.LogsKey,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	// The registry host is the repository URI up to its first slash.
	registry := awscdk.Fn_Select(num(0), awscdk.Fn_Split(str("/"), im.Docsvc.RepositoryUri(), nil))
	project := awscodebuild.NewProject(stack, str("Build"), &awscodebuild.ProjectProps{
		ProjectName:   str(cfg.ResourceName("images")),
		Description:   str("Builds Tether's docsvc and agent images from the vendor's source bundle inside this account"),
		Source:        awscodebuild.Source_S3(&awscodebuild.S3SourceProps{Bucket: sources, Path: str(buildSourceKey)}),
		EncryptionKey: key,
		Timeout:       awscdk.Duration_Minutes(num(60)),
		Environment: &awscodebuild.BuildEnvironment{
			BuildImage: awscodebuild.LinuxBuildImage_STANDARD_7_0(),
			// docker build needs the privileged Docker daemon.
			Privileged:  jsii.Bool(true),
			ComputeType: awscodebuild.ComputeType_MEDIUM,
		},
		EnvironmentVariables: &map[string]*awscodebuild.BuildEnvironmentVariable{
			"REGISTRY":    {Value: registry},
			"DOCSVC_REPO": {Value: im.Docsvc.RepositoryUri()},
			"AGENT_REPO":  {Value: im.Agent.RepositoryUri()},
		},
		// TETHER_VERSION is passed by `tetherctl` on start-build; tags are
		// immutable, and the digests the build prints are what the services
		// stack's parameters take.
		BuildSpec: awscodebuild.BuildSpec_FromObject(&map[string]any{
			"version": "0.2",
			"phases": map[string]any{
				"pre_build": map[string]any{"commands": []string{
					`test -n "$TETHER_VERSION"`,
					`aws ecr get-login-password | docker login --username AWS --password-stdin "$REGISTRY"`,
				}},
				"build": map[string]any{"commands": []string{
					`docker build -f build/docsvc.Dockerfile -t "$DOCSVC_REPO:$TETHER_VERSION" .`,
					`docker build -f build/agent.Dockerfile -t "$AGENT_REPO:$TETHER_VERSION" .`,
				}},
				"post_build": map[string]any{"commands": []string{
					`docker push "$DOCSVC_REPO:$TETHER_VERSION"`,
					`docker push "$AGENT_REPO:$TETHER_VERSION"`,
					`docker inspect --format '{{index .RepoDigests 0}}' "$DOCSVC_REPO:$TETHER_VERSION" "$AGENT_REPO:$TETHER_VERSION"`,
				}},
			},
		}),
		Logging: &awscodebuild.LoggingOptions{CloudWatch: &awscodebuild.CloudWatchLoggingOptions{LogGroup: logs}},
	})
	im.Docsvc.GrantPullPush(project)
	im.Agent.GrantPullPush(project)
	suppress(project, "AwsSolutions-IAM5", "CodeBuild's generated policy: ecr:GetAuthorizationToken has no resource-level permissions, and log streams and report groups are created under the project's own name.",
		"Resource::*",
		resourceMatching(`arn:<AWS::Partition>:logs:[a-z0-9-]+:[0-9]+:log-group:/aws/codebuild/<Build[0-9A-F]+>:\*`),
		resourceMatching(`arn:<AWS::Partition>:codebuild:[a-z0-9-]+:[0-9]+:report-group/<Build[0-9A-F]+>-\*`),
		// CodeBuild's grants on its source bucket and key, both its own.
		resourceEnding("/*"), "Action::s3:GetObject*", "Action::s3:GetBucket*", "Action::s3:List*",
		"Action::kms:ReEncrypt*", "Action::kms:GenerateDataKey*")
	im.Build = project
	awscdk.NewCfnOutput(stack, str("BuildProject"), &awscdk.CfnOutputProps{Value: project.ProjectName()})
	awscdk.NewCfnOutput(stack, str("BuildSourceLocation"), &awscdk.CfnOutputProps{
		Value: awscdk.Fn_Join(str(""), &[]*string{str("s3://"), sources.BucketName(), str("/" + buildSourceKey)}),
	})
}

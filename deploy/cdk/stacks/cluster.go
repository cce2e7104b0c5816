package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsservicediscovery"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// Cluster is what must exist before any service starts: the ECS cluster,
// docsvc's configuration and the migrate task that brings the schema up to
// a release. tetherctl runs that task (from this stack's outputs) and only
// then records the release as migrated, which the services stack requires
// (see imageParameter). Stateless: replacing it loses nothing but the
// task definition revisions.
type Cluster struct {
	Stack   awscdk.Stack
	Cluster awsecs.Cluster
	// Migrate is the migrate task definition, its container migrateContainer.
	Migrate     awsecs.FargateTaskDefinition
	MigrateRole awsiam.Role
	// MigrateDigest is the docsvc image digest the migrate task runs; an
	// upgrade moves it first.
	MigrateDigest awscdk.CfnParameter
	MigrateLogs   awslogs.LogGroup
}

// migrateContainer is the migrate task's one container, whose exit code
// tetherctl reads.
const migrateContainer = "migrate"

func newCluster(app awscdk.App, cfg *deployconfig.Config, net *Network, data *Data, images *Images) *Cluster {
	stack := newStack(app, cfg, "cluster", "Tether "+cfg.Name+": ECS cluster, docsvc configuration and the migrate task (stateless)", false)
	c := &Cluster{Stack: stack}
	t := newTasks(stack, cfg, data)

	c.MigrateDigest = awscdk.NewCfnParameter(stack, str("MigrateImageDigest"), &awscdk.CfnParameterProps{
		Type: str("String"),
		Description: str("The docsvc image digest the migrate task runs. tetherctl sets it to a release's digest, runs the task, " +
			"and records the release as migrated (/tether/" + cfg.Name + "/migrated/) only when the task exits 0."),
		AllowedPattern:        str("^sha256:[0-9a-f]{64}$"),
		ConstraintDescription: str("an image digest, sha256:<64 hex>"),
	})
	if cfg.Images.DocsvcDigest != "" {
		c.MigrateDigest.SetDefault(str(cfg.Images.DocsvcDigest))
	}

	c.Cluster = awsecs.NewCluster(stack, str("Cluster"), &awsecs.ClusterProps{
		ClusterName:         str(clusterName(cfg)),
		Vpc:                 net.Vpc,
		ContainerInsightsV2: awsecs.ContainerInsights_ENABLED,
		// A private namespace so the agent reaches the api without going
		// through the public load balancer (which hides /readyz and /metrics).
		DefaultCloudMapNamespace: &awsecs.CloudMapNamespaceOptions{
			Name: str(namespace(cfg)),
			Type: awsservicediscovery.NamespaceType_DNS_PRIVATE,
			Vpc:  net.Vpc,
		},
	})
	// docsvc's settings live here, not in the services stack: the migrate
	// task reads them before the services stack can exist.
	t.newDocsvcConfig()
	c.MigrateLogs = t.newLogGroup("migrate", net.LogsKey)

	c.MigrateRole = t.taskRole("MigrateTaskRole", "docsvc migrate task: schema changes and the database password only", nil)
	t.grantDatabasePassword(c.MigrateRole)
	c.Migrate = t.taskDefinition(migrateContainer, c.MigrateRole, images.Docsvc, c.MigrateDigest.ValueAsString(), 256, 512, []string{"migrate"},
		t.docsvcSecrets(), nil, 0)

	out := func(id, desc string, v *string) {
		awscdk.NewCfnOutput(stack, str(id), &awscdk.CfnOutputProps{Description: str(desc), Value: v})
	}
	out("ClusterName", "The ECS cluster", c.Cluster.ClusterName())
	out("MigrateTaskDefinitionArn", "The migrate task definition (its image is MigrateImageDigest)", c.Migrate.TaskDefinitionArn())
	out("MigrateSecurityGroupId", "The migrate task's security group", net.Groups["migrate"].SecurityGroupId())
	out("MigrateSubnets", "The migrate task's subnets, comma-separated", awscdk.Fn_Join(str(","), net.Vpc.SelectSubnets(taskSubnets(false)).SubnetIds))
	out("MigrateLogGroupName", "The migrate task's log group", c.MigrateLogs.LogGroupName())
	out("MigrateContainerName", "The migrate task's container, whose exit code says whether the migration succeeded", str(migrateContainer))
	// cfn-lint W6001 flags outputs that re-export another stack's export.
	ignoreLint(stack, map[string]string{
		"W6001": "MigrateSubnets and MigrateSecurityGroupId repeat the network stack's values on purpose: tetherctl's migrate run-task reads all its inputs from this stack's outputs.",
	})
	return c
}

package ctl_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwschemas "github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/tetherhq/tether/internal/awstest"
)

// Digests of a release, and the markers tetherctl writes for it (contract).
const (
	docsvcHex = "1111111111111111111111111111111111111111111111111111111111111111"
	agentHex  = "2222222222222222222222222222222222222222222222222222222222222222"
)

// stackTemplates are small stand-ins for the five stacks: what status and
// destroy read of them (the data stack's queues by their CDK logical IDs,
// the retained resources, the services stack's image parameters), in the
// shapes deploy/cdk synthesizes, without the rest.
var stackTemplates = map[string]string{
	"network": `{"Resources":{"Handle":{"Type":"AWS::CloudFormation::WaitConditionHandle"}}}`,
	"data": `{"Resources":{
  "JobsDeadLetter4FD84C94":{"Type":"AWS::SQS::Queue","DeletionPolicy":"Retain","UpdateReplacePolicy":"Retain"},
  "JobsDF1CC2D4":{"Type":"AWS::SQS::Queue","DeletionPolicy":"Retain","UpdateReplacePolicy":"Retain"},
  "Documents7E5B2978":{"Type":"AWS::S3::Bucket","DeletionPolicy":"Retain","UpdateReplacePolicy":"Retain"},
  "DataKey17AFBB84":{"Type":"AWS::KMS::Key","DeletionPolicy":"Retain","Properties":{"KeyPolicy":{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}]}}},
  "DatabaseLogs":{"Type":"AWS::Logs::LogGroup","DeletionPolicy":"Retain","Properties":{"LogGroupName":"/tether/NAME/database"}},
  "Scratch":{"Type":"AWS::SQS::Queue"}}}`,
	"images":  `{"Resources":{"Handle":{"Type":"AWS::CloudFormation::WaitConditionHandle"}}}`,
	"cluster": `{"Resources":{"Handle":{"Type":"AWS::CloudFormation::WaitConditionHandle"}}}`,
	"services": `{"Parameters":{
  "DocsvcImage":{"Type":"AWS::SSM::Parameter::Value<String>","Default":"/tether/NAME/migrated/sha256-` + docsvcHex + `"},
  "AgentImage":{"Type":"AWS::SSM::Parameter::Value<String>","Default":"/tether/NAME/verified/agent/sha256-` + agentHex + `"}},
 "Resources":{"Handle":{"Type":"AWS::CloudFormation::WaitConditionHandle"}}}`,
}

// deployStacks creates the named stacks (suffixes) of deployment name, in
// order, and the gate's markers first so the services stack's parameters
// resolve.
func deployStacks(t testing.TB, srv *awstest.Server, name string, suffixes ...string) {
	t.Helper()
	srv.PutParameter(t, "/tether/"+name+"/migrated/sha256-"+docsvcHex, "sha256:"+docsvcHex, false)
	srv.PutParameter(t, "/tether/"+name+"/verified/agent/sha256-"+agentHex, "sha256:"+agentHex, false)
	cfn := cloudformation.NewFromConfig(srv.AWSConfig())
	for _, s := range suffixes {
		_, err := cfn.CreateStack(context.Background(), &cloudformation.CreateStackInput{
			StackName:    aws.String(name + "-" + s),
			TemplateBody: aws.String(strings.ReplaceAll(stackTemplates[s], "NAME", name)),
		})
		if err != nil {
			t.Fatalf("create stack %s-%s: %v", name, s, err)
		}
	}
}

// allStacks are the five stack suffixes in deployment order.
var allStacks = []string{"network", "data", "images", "cluster", "services"}

// runServices creates the ECS cluster and its three services. moto reports
// every service's running count as MOTO_ECS_SERVICE_RUNNING, 0 for the
// shared emulator, so a service with desired > 0 is always short of tasks.
func runServices(t testing.TB, srv *awstest.Server, name string, desired int32) {
	t.Helper()
	ctx := context.Background()
	c := ecs.NewFromConfig(srv.AWSConfig())
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("tether-" + name)}); err != nil {
		t.Fatal(err)
	}
	for _, family := range []string{"api", "worker", "agent", "exchange"} { // status.go's serviceFamilies
		td, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
			Family:               aws.String("tether-" + name + "-" + family),
			ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String(family), Image: aws.String("example/" + family), Memory: aws.Int32(512)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.CreateService(ctx, &ecs.CreateServiceInput{
			Cluster: aws.String("tether-" + name), ServiceName: aws.String("tether-" + name + "-" + family),
			TaskDefinition: td.TaskDefinition.TaskDefinitionArn, DesiredCount: aws.Int32(desired),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// putAlarm creates a metric alarm and sets its state.
func putAlarm(t testing.TB, srv *awstest.Server, name string, state cwtypes.StateValue) {
	t.Helper()
	ctx := context.Background()
	cw := cloudwatch.NewFromConfig(srv.AWSConfig(), queryProtocol)
	_, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String(name), Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String("HTTPCode_Target_5XX_Count"),
		Statistic: cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(10),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String(name), StateValue: state, StateReason: aws.String("test: " + string(state))})
	if err != nil {
		t.Fatal(err)
	}
}

// putQueueMetric publishes one of a queue's SQS metrics, as SQS does every
// minute (moto publishes no SQS metrics itself).
func putQueueMetric(t testing.TB, srv *awstest.Server, queueName, metric string, value float64) {
	t.Helper()
	_, err := cloudwatch.NewFromConfig(srv.AWSConfig(), queryProtocol).PutMetricData(context.Background(), &cloudwatch.PutMetricDataInput{
		Namespace: aws.String("AWS/SQS"),
		MetricData: []cwtypes.MetricDatum{{
			MetricName: aws.String(metric), Value: aws.Float64(value), Timestamp: aws.Time(time.Now().Add(-time.Minute)),
			Dimensions: []cwtypes.Dimension{{Name: aws.String("QueueName"), Value: aws.String(queueName)}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// stackResource is the physical ID of one logical resource of a stack.
func stackResource(t testing.TB, srv *awstest.Server, stack, logical string) string {
	t.Helper()
	out, err := cloudformation.NewFromConfig(srv.AWSConfig()).DescribeStackResource(context.Background(),
		&cloudformation.DescribeStackResourceInput{StackName: aws.String(stack), LogicalResourceId: aws.String(logical)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.StackResourceDetail.PhysicalResourceId)
}

// stackStatus is a stack's status, or "" when DescribeStacks does not know it.
func stackStatus(t testing.TB, srv *awstest.Server, stack string) cfntypes.StackStatus {
	t.Helper()
	out, err := cloudformation.NewFromConfig(srv.AWSConfig()).DescribeStacks(context.Background(),
		&cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return ""
		}
		t.Fatal(err)
	}
	return out.Stacks[0].StackStatus
}

// queryProtocol makes a CloudWatch client speak the query protocol, the one
// moto serves (docs/decisions/0007-aws-api-emulator.md), as tetherctl's does.
func queryProtocol(o *cloudwatch.Options) {
	o.Protocol = awsquery.New(cwschemas.GraniteServiceVersion20100801)
}

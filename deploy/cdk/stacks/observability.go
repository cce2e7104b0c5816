package stacks

import (
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/jsii-runtime-go"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// circuitOpenMessage is internal/analyze.CircuitOpenMessage (checked by
// TestProviderAlarmMatchesTheWorkerLog).
const circuitOpenMessage = "analyze: circuit open"

// aiProviderAlarm is the alarm tetherctl status reads the AI provider's
// state from (internal/ctl/statusai.go).
const aiProviderAlarm = "ai-provider"

func metricOpts(stat string, minutes float64) *awscloudwatch.MetricOptions {
	return &awscloudwatch.MetricOptions{Statistic: str(stat), Period: awscdk.Duration_Minutes(num(minutes))}
}

// newObservability adds the alarms (three of which roll deployments back),
// the topic they notify, and the deployment's dashboard.
func (s *services) newObservability() {
	cfg, d := s.cfg, s.data
	stack := s.Stack

	// CloudWatch can publish only to topics whose key lets it; an AWS-managed
	// SNS key does not, so the topic has its own.
	// It protects only notifications in flight, so it goes with the stack
	// (after KMS's 7-day wait) instead of being retained, which would leave
	// one orphaned key per re-creation of this stack.
	key := awskms.NewKey(stack, str("AlarmsKey"), &awskms.KeyProps{
		Alias:             str("alias/tether/" + cfg.Name + "/alarms"),
		Description:       str("Tether " + cfg.Name + ": alarm notifications"),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_DESTROY,
		PendingWindow:     awscdk.Duration_Days(num(7)),
	})
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(str("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey"),
		Resources:  jsii.Strings("*"),
	}), nil)
	topic := awssns.NewTopic(stack, str("Alarms"), &awssns.TopicProps{
		DisplayName: str("Tether " + cfg.Name + " alarms"),
		MasterKey:   key,
		EnforceSSL:  jsii.Bool(true),
	})
	if cfg.Observe.AlarmEmail != "" {
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(str(cfg.Observe.AlarmEmail), nil))
	}
	notify := awscloudwatchactions.NewSnsAction(topic)

	alarm := func(short, description string, metric awscloudwatch.IMetric, threshold, periods float64, op awscloudwatch.ComparisonOperator) awscloudwatch.Alarm {
		a := awscloudwatch.NewAlarm(stack, str("Alarm-"+short), &awscloudwatch.AlarmProps{
			AlarmName:          str(alarmName(cfg, short)),
			AlarmDescription:   str(description),
			Metric:             metric,
			Threshold:          num(threshold),
			EvaluationPeriods:  num(periods),
			ComparisonOperator: op,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		a.AddAlarmAction(notify)
		a.AddOkAction(notify)
		return a
	}
	gte := awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD

	m := s.LoadBalancer.Metrics()
	fiveXX := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: str("100 * (FILL(t5, 0) + FILL(e5, 0)) / MAX([FILL(req, 0), 1])"),
		Label:      str("5xx % of requests"),
		UsingMetrics: &map[string]awscloudwatch.IMetric{
			"t5":  m.HttpCodeTarget(awselasticloadbalancingv2.HttpCodeTarget_TARGET_5XX_COUNT, metricOpts("Sum", 1)),
			"e5":  m.HttpCodeElb(awselasticloadbalancingv2.HttpCodeElb_ELB_5XX_COUNT, metricOpts("Sum", 1)),
			"req": m.RequestCount(metricOpts("Sum", 1)),
		},
		Period: awscdk.Duration_Minutes(num(1)),
	})
	alarms := map[string]awscloudwatch.Alarm{}
	alarms["api"] = alarm(deployAlarm["api"], "More than 5% of API requests failed with 5xx for 3 minutes; rolls back an API deployment.", fiveXX, 5, 3, gte)

	// Error-level log lines per family: the worker and agent have no request
	// metric, and a release that starts but fails its work shows here first.
	for _, family := range []string{"worker", "agent"} {
		filter := awslogs.NewMetricFilter(stack, str("Errors-"+family), &awslogs.MetricFilterProps{
			LogGroup:        s.LogGroups[family],
			MetricNamespace: str("Tether/" + cfg.Name),
			MetricName:      str(family + "-errors"),
			FilterPattern:   awslogs.FilterPattern_StringValue(str("$.level"), str("="), str("ERROR")),
			MetricValue:     str("1"),
			DefaultValue:    num(0),
		})
		alarms[family] = alarm(deployAlarm[family], fmt.Sprintf("The %s logged 10 or more errors a minute for 3 minutes; rolls back a %s deployment.", family, family),
			filter.Metric(metricOpts("Sum", 1)), 10, 3, gte)
	}
	// The AI provider: each time the worker's circuit to it opens, the
	// worker logs internal/analyze's CircuitOpenMessage; during an outage
	// that is every cooldown (30s). Its construct ID does not start with
	// "Alarm", so an upgrade's health gate (tetherctl readHealth) ignores
	// it: a provider's outage says nothing about the release.
	if cfg.AI.Provider != deployconfig.AILocal {
		opened := awslogs.NewMetricFilter(stack, str("AIProviderCircuitOpen"), &awslogs.MetricFilterProps{
			LogGroup:        s.LogGroups["worker"],
			MetricNamespace: str("Tether/" + cfg.Name),
			MetricName:      str("ai-provider-circuit-open"),
			FilterPattern:   awslogs.FilterPattern_StringValue(str("$.msg"), str("="), str(circuitOpenMessage)),
			MetricValue:     str("1"),
			DefaultValue:    num(0),
		})
		a := awscloudwatch.NewAlarm(stack, str("ProviderAlarm"), &awscloudwatch.AlarmProps{
			AlarmName:          str(alarmName(cfg, aiProviderAlarm)),
			AlarmDescription:   str("The worker's circuit to the AI provider (" + cfg.AI.Provider + ") opened in the last 5 minutes: analysis is failing and jobs wait. See docs/runbooks/ai-provider-outage.md."),
			Metric:             opened.Metric(metricOpts("Sum", 5)),
			Threshold:          num(1),
			EvaluationPeriods:  num(1),
			ComparisonOperator: gte,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		a.AddAlarmAction(notify)
		a.AddOkAction(notify)
	}

	// ECS must find the alarms when a deployment starts.
	s.API.Node().AddDependency(alarms["api"])
	s.Worker.Node().AddDependency(alarms["worker"])
	s.Agent.Node().AddDependency(alarms["agent"])

	// The storage-growth alarms fire at deployment.yaml's
	// observability.thresholds (tetherctl status warns at the same values).
	th := cfg.Observe.Thresholds
	alarm("queue-age", fmt.Sprintf("The oldest job has waited more than %d minutes: workers are failing or at their maximum (tetherctl scale workers; observability.thresholds.queue_age_minutes).", th.QueueAgeMinutes),
		d.Jobs.MetricApproximateAgeOfOldestMessage(metricOpts("Maximum", 5)), float64(th.QueueAgeMinutes*60), 3, gte)
	alarm("dead-letter-depth", fmt.Sprintf("%d or more jobs reached the dead-letter queue after repeated failures (observability.thresholds.dead_letters); see docs/runbooks/storage-growth.md.", th.DeadLetters),
		d.DeadLetter.MetricApproximateNumberOfMessagesVisible(metricOpts("Maximum", 5)), float64(th.DeadLetters), 1, gte)
	alarm("database-cpu", "Database CPU above 80% for 15 minutes; consider a larger sizing.database_class.",
		d.Database.MetricCPUUtilization(metricOpts("Average", 5)), 80, 3, gte)
	freeBytes := float64(cfg.Sizing.DatabaseStorageGiB) * (1 << 30) * float64(th.DatabaseFreePercent) / 100
	alarm("database-storage", fmt.Sprintf("Database free storage below %d%% of its initial %d GiB (observability.thresholds.database_free_percent); storage autoscaling grows it up to four times that.", th.DatabaseFreePercent, cfg.Sizing.DatabaseStorageGiB),
		d.Database.MetricFreeStorageSpace(metricOpts("Minimum", 5)), freeBytes, 1, awscloudwatch.ComparisonOperator_LESS_THAN_OR_EQUAL_TO_THRESHOLD)
	// S3 publishes a bucket's size once a day.
	bucketSize := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:  str("AWS/S3"),
		MetricName: str("BucketSizeBytes"),
		DimensionsMap: &map[string]*string{
			"BucketName":  d.Documents.BucketName(),
			"StorageType": str("StandardStorage"),
		},
		Statistic: str("Maximum"),
		Period:    awscdk.Duration_Days(num(1)),
	})
	alarm("documents-size", fmt.Sprintf("The documents bucket holds more than %d GiB (observability.thresholds.documents_gib); see docs/runbooks/storage-growth.md.", th.DocumentsGiB),
		bucketSize, float64(th.DocumentsGiB)*(1<<30), 1, gte)

	// The TLS certificate, 30 days before it expires (ACM publishes
	// DaysToExpiry daily for every certificate it holds, renewed or
	// imported). Not an "Alarm-" construct: an expiring certificate says
	// nothing about a release, so upgrades do not watch it. The agent names
	// it in the heartbeat while it fires (wire.WarningNames).
	daysLeft := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:     str("AWS/CertificateManager"),
		MetricName:    str("DaysToExpiry"),
		DimensionsMap: &map[string]*string{"CertificateArn": s.Certificate.CertificateArn()},
		Statistic:     str("Minimum"),
		Period:        awscdk.Duration_Days(num(1)),
	})
	certAlarm := awscloudwatch.NewAlarm(stack, str("CertificateAlarm"), &awscloudwatch.AlarmProps{
		AlarmName:          str(alarmName(cfg, "certificate-expiry")),
		AlarmDescription:   str("The load balancer's TLS certificate expires within 30 days; ACM renews certificates it issued, an imported one must be replaced. See docs/runbooks/certificate-renewal.md."),
		Metric:             daysLeft,
		Threshold:          num(30),
		EvaluationPeriods:  num(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_LESS_THAN_OR_EQUAL_TO_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	certAlarm.AddAlarmAction(notify)
	certAlarm.AddOkAction(notify)

	backlog := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: str("visible + inflight"),
		Label:      str("jobs waiting or in flight"),
		UsingMetrics: &map[string]awscloudwatch.IMetric{
			"visible":  d.Jobs.MetricApproximateNumberOfMessagesVisible(metricOpts("Maximum", 1)),
			"inflight": d.Jobs.MetricApproximateNumberOfMessagesNotVisible(metricOpts("Maximum", 1)),
		},
		Period: awscdk.Duration_Minutes(num(1)),
	})
	graph := func(title string, metrics ...awscloudwatch.IMetric) awscloudwatch.IWidget {
		return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{Title: str(title), Left: &metrics, Width: num(8)})
	}
	dash := awscloudwatch.NewDashboard(stack, str("Dashboard"), &awscloudwatch.DashboardProps{
		DashboardName: str(cfg.ResourceName("")),
	})
	dash.AddWidgets(
		graph("API requests", m.RequestCount(metricOpts("Sum", 1))),
		graph("API 5xx %", fiveXX),
		graph("API latency p90", m.TargetResponseTime(metricOpts("p90", 1))),
	)
	dash.AddWidgets(
		graph("Job backlog", backlog),
		graph("Oldest job age (s)", d.Jobs.MetricApproximateAgeOfOldestMessage(metricOpts("Maximum", 5))),
		graph("Dead-letter depth", d.DeadLetter.MetricApproximateNumberOfMessagesVisible(metricOpts("Maximum", 5))),
	)
	dash.AddWidgets(
		graph("Database CPU %", d.Database.MetricCPUUtilization(metricOpts("Average", 5))),
		graph("Database free storage", d.Database.MetricFreeStorageSpace(metricOpts("Minimum", 5))),
		graph("Running tasks",
			s.API.Metric(str("CPUUtilization"), metricOpts("SampleCount", 1)),
			s.Worker.Metric(str("CPUUtilization"), metricOpts("SampleCount", 1))),
	)
	dash.AddWidgets(graph("Documents bucket size (daily)", bucketSize))
	awscdk.NewCfnOutput(stack, str("AlarmTopicArn"), &awscdk.CfnOutputProps{Value: topic.TopicArn()})
	awscdk.NewCfnOutput(stack, str("DashboardName"), &awscdk.CfnOutputProps{Value: dash.DashboardName()})
}

// newOutputs tells the operator where the service is and what to do next.
func (s *services) newOutputs() {
	cfg := s.cfg
	out := func(id, desc string, v *string) {
		awscdk.NewCfnOutput(s.Stack, str(id), &awscdk.CfnOutputProps{Description: str(desc), Value: v})
	}
	out("ServiceUrl", "Where users reach the service", str(cfg.PublicURL()))
	out("LoadBalancerDnsName", "Point domain.name here (CNAME or alias) if the stack did not create the DNS record", s.LoadBalancer.LoadBalancerDnsName())
	var groups []*string
	for _, family := range []string{"api", "worker", "agent"} {
		groups = append(groups, s.LogGroups[family].LogGroupName())
	}
	out("LogGroups", "Log groups of api, worker and agent, in that order (migrate's is the cluster stack's MigrateLogGroupName output)", awscdk.Fn_Join(str(","), &groups))
	out("ConfigParameterPath", "Non-secret configuration in SSM Parameter Store", str(cfg.ParameterPath()))
	// A stack output is fixed at deploy time, so it states what registration
	// will happen and where to see it, not a live state.
	registration := "air-gapped: no plane; import releases with tetherctl airgap import"
	if cfg.Plane.URL != "" {
		registration = "pending until the agent's first start: it activates once with " + cfg.Plane.URL +
			" using the license's one-time token; its log line 'activated' (log group above) confirms it"
	}
	out("PlaneRegistration", "The agent's registration with the vendor plane", str(registration))

	// This stack exists only once tetherctl has checked the secrets,
	// verified the images and run the migrate task (the DocsvcImage and
	// AgentImage markers), so what is left is to watch it come up.
	steps := []string{
		"1) check that the ECS services in cluster " + clusterName(cfg) + " are steady and the agent's log shows it reached the plane (" + cfg.PublicURL() + " answers 404 for /readyz and /metrics: they are served inside the VPC only)",
		"2) upgrade with tetherctl deploy: it verifies the release's images, runs its migrate task and then moves DocsvcImage and AgentImage; an update naming a release it has not recorded stops before changing anything",
	}
	if cfg.Domain.HostedZone == nil {
		steps = append(steps, "3) create a DNS record "+cfg.Domain.Name+" -> LoadBalancerDnsName")
	}
	out("NextSteps", "What the operator does after the first deploy, and how to upgrade", str(strings.Join(steps, "; ")))
}

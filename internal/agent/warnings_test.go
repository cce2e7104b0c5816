package agent

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwschemas "github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/tetherhq/tether/internal/awstest"
)

// TestHeartbeatNamesFiringCapacityAlarms: the heartbeat names the
// deployment's capacity alarms in ALARM, by their fixed short names and
// sorted; an alarm of another kind, in another state or of another
// deployment is not named.
func TestHeartbeatNamesFiringCapacityAlarms(t *testing.T) {
	t.Parallel()
	srv := awstest.Start(t)
	cfg := srv.AWSConfig()
	// The query protocol: moto serves no other (docs/decisions/0007-aws-api-emulator.md).
	cw := cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
		o.Protocol = awsquery.New(cwschemas.GraniteServiceVersion20100801)
	})
	ctx := context.Background()
	for name, state := range map[string]cwtypes.StateValue{
		"tether-acme-docs-certificate-expiry": cwtypes.StateValueAlarm,
		"tether-acme-docs-database-storage":   cwtypes.StateValueAlarm,
		"tether-acme-docs-queue-age":          cwtypes.StateValueOk,
		"tether-acme-docs-api-5xx":            cwtypes.StateValueAlarm, // not a capacity alarm
		"tether-globex-documents-size":        cwtypes.StateValueAlarm, // another deployment
	} {
		if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String(name), Namespace: aws.String("Tether/test"),
			MetricName: aws.String("m"), Statistic: cwtypes.StatisticMaximum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1),
			Threshold: aws.Float64(1), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold}); err != nil {
			t.Fatal(err)
		}
		if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String(name), StateValue: state, StateReason: aws.String("test")}); err != nil {
			t.Fatal(err)
		}
	}
	b := setup(t)
	b.cfg.AlarmPrefix, b.opts.AWSConfig = "tether-acme-docs-", &cfg
	b.start()
	hb := b.waitHeartbeats(1)[0]
	if want := []string{"certificate-expiry", "database-storage"}; !slices.Equal(hb.Warnings, want) {
		t.Fatalf("heartbeat warnings %q, want %q", hb.Warnings, want)
	}
}

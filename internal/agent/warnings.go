package agent

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/tetherhq/tether/internal/wire"
)

// warnings names the capacity alarms (wire.WarningNames) now in ALARM, read
// from CloudWatch. Only the fixed names leave, never a value; an unreadable
// state is logged and reported as no warning.
func (a *Agent) warnings(ctx context.Context) []string {
	if a.alarms == nil {
		return nil
	}
	names := wire.WarningNames()
	for i, n := range names {
		names[i] = a.cfg.AlarmPrefix + n
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := a.alarms.DescribeAlarms(cctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: names, StateValue: cwtypes.StateValueAlarm})
	if err != nil {
		a.log.Warn("alarm states unreadable", "err", err)
		return nil
	}
	var firing []string
	for _, al := range out.MetricAlarms {
		n, ok := strings.CutPrefix(aws.ToString(al.AlarmName), a.cfg.AlarmPrefix)
		if ok && al.StateValue == cwtypes.StateValueAlarm && slices.Contains(wire.WarningNames(), n) {
			firing = append(firing, n)
		}
	}
	slices.Sort(firing)
	return slices.Compact(firing)
}

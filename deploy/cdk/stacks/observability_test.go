package stacks

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// A deployment with a remote AI provider has an alarm on the worker's
// circuit to it opening, counted from the worker's own log line; one with
// the local analyzer (which cannot have an outage) has none. The alarm is
// not one the upgrade health gate reads (its logical ID does not start
// with "Alarm").
func TestProviderAlarmMatchesTheWorkerLog(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "..", "internal", "analyze", "resilient.go"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "const CircuitOpenMessage = " + strconv.Quote(circuitOpenMessage); !strings.Contains(string(src), want) {
		t.Fatalf("internal/analyze/resilient.go has no %s: the alarm would count a line the worker never logs", want)
	}
	forEachExample(t, func(t *testing.T, s *synthesized) {
		var alarmIDs []string
		for id, r := range resources(s, "services", "AWS::CloudWatch::Alarm") {
			if props(r)["AlarmName"] == "tether-"+s.cfg.Name+"-ai-provider" {
				alarmIDs = append(alarmIDs, id)
				if strings.HasPrefix(id, "Alarm") {
					t.Errorf("the ai-provider alarm's logical ID %s starts with Alarm: upgrades would roll back on a provider outage", id)
				}
				if asJSON(props(r)["Namespace"]) != `"Tether/`+s.cfg.Name+`"` || props(r)["MetricName"] != "ai-provider-circuit-open" || props(r)["AlarmActions"] == nil {
					t.Errorf("ai-provider alarm: %s", asJSON(r))
				}
			}
		}
		var filters []string
		for _, r := range resources(s, "services", "AWS::Logs::MetricFilter") {
			if p := asJSON(props(r)["FilterPattern"]); strings.Contains(p, circuitOpenMessage) {
				filters = append(filters, p)
			}
		}
		remote := s.cfg.AI.Provider != deployconfig.AILocal
		if remote != (len(alarmIDs) == 1) || remote != (len(filters) == 1) {
			t.Errorf("provider %s: %d ai-provider alarms, %d filters on the circuit log line", s.cfg.AI.Provider, len(alarmIDs), len(filters))
		}
	})
}

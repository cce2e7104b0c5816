package ctl

import (
	"fmt"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// The AI provider in tetherctl status (docs/runbooks/ai-provider-outage.md).
// docsvc's worker keeps a circuit to the provider and logs each time it
// opens; the services stack counts those lines and alarms on them
// (tether-<name>-ai-provider). /readyz's ai_provider check says the same
// inside the VPC, where tetherctl does not reach.

// aiProviderAlarm is that alarm's short name (deploy/cdk/stacks/observability.go).
const aiProviderAlarm = "ai-provider"

type aiProviderState struct {
	Provider string `json:"provider"`
	// Status is ok, degraded, unknown (the alarms could not be read) or
	// local (the in-process analyzer, which has no outage to watch).
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// judgeAIProvider reads the provider's state from the alarms status read.
func judgeAIProvider(dc *deployconfig.Config, alarms alarmsState) aiProviderState {
	st := aiProviderState{Provider: dc.AI.Provider}
	name := alarmPrefix(dc) + aiProviderAlarm
	switch {
	case dc.AI.Provider == deployconfig.AILocal:
		st.Status, st.Detail = "local", "the in-process analyzer: no outside provider to fail"
		return st
	case alarms.Error != "":
		st.Status, st.Detail = "unknown", "the alarms could not be read"
		return st
	}
	for _, al := range alarms.Firing {
		if al.Name == name {
			st.Status = "degraded"
			st.Detail = fmt.Sprintf("the workers' calls to %s keep failing (alarm %s since %s): analysis is paused and jobs wait, nothing is lost; see docs/runbooks/ai-provider-outage.md",
				dc.AI.Provider, name, al.Since.UTC().Format("2006-01-02 15:04 MST"))
			return st
		}
	}
	st.Status, st.Detail = "ok", "no failed calls in the last 5 minutes (alarm "+name+")"
	return st
}

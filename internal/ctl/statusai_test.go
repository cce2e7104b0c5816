package ctl_test

import (
	"encoding/json"
	"testing"

	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/ctl"
)

// status says the AI provider is degraded while the services stack's
// ai-provider alarm (the workers' circuit to it opening) is in ALARM.
func TestStatusAIProvider(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, provider string
		state          cwtypes.StateValue // "" for no alarm at all
		want           string
		wantText       string
	}{
		{"outage", "openai", cwtypes.StateValueAlarm, "degraded", "openai degraded: the workers' calls to openai keep failing"},
		{"recovered", "openai", cwtypes.StateValueOk, "ok", "openai ok: no failed calls"},
		{"local analyzer", "local", "", "local", "local local: the in-process analyzer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := awstest.Start(t)
			v := newVendor(t)
			d := defaultDeployment(v)
			if c.provider != "local" {
				d.AIProvider, d.AIModel, d.AIBaseURL = c.provider, "llama-3", "https://llm.acme.example/v1"
				srv.CreateSecret(t, "tether/acme-docs/ai", "key-123")
			}
			config := d.write(t)
			deployStacks(t, srv, "acme-docs", allStacks...)
			runServices(t, srv, "acme-docs", 0)
			srv.CreateSecret(t, "tether/acme-docs/license", v.validLicense(t))
			if c.state != "" {
				putAlarm(t, srv, "tether-acme-docs-ai-provider", c.state)
			}
			in := invocation{env: envOf(srv.Env())}
			out := in.run(testContext(t), "status", "--config", config, "--output", "json")
			var s struct {
				Healthy    bool
				Problems   []string
				AIProvider struct{ Provider, Status, Detail string } `json:"ai_provider"`
			}
			if err := json.Unmarshal([]byte(out.stdout), &s); err != nil {
				t.Fatalf("%v\n%s", err, out.all())
			}
			if s.AIProvider.Provider != c.provider || s.AIProvider.Status != c.want {
				t.Errorf("ai_provider = %+v, want %s", s.AIProvider, c.want)
			}
			degraded := c.want == "degraded"
			if degraded != (out.err != nil) || degraded == s.Healthy || (out.err != nil && ctl.IsUsage(out.err)) {
				t.Errorf("degraded=%v but exit %v, healthy %v: %v", degraded, out.err, s.Healthy, s.Problems)
			}
			text := in.run(testContext(t), "status", "--config", config)
			if !hasLine(text.stdout, "ai ", c.wantText) {
				t.Errorf("no ai row saying %q:\n%s", c.wantText, text.stdout)
			}
		})
	}
}

package ctl_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/ctl"
)

// statusJSON is tetherctl status --output json, as a script reads it.
type statusJSON struct {
	Healthy  bool     `json:"healthy"`
	Problems []string `json:"problems"`
	Release  struct {
		Docsvc, Agent struct{ Parameter, Value, Digest, Error string }
	} `json:"release"`
	Stacks []struct {
		Name     string `json:"name"`
		Deployed bool   `json:"deployed"`
		Status   string `json:"status"`
	} `json:"stacks"`
	Services []struct {
		Name                      string `json:"name"`
		Deployed                  bool   `json:"deployed"`
		Desired, Running, Pending int32
		Rollout                   string `json:"rollout"`
	} `json:"services"`
	Queues []struct {
		Role     string   `json:"role"`
		Visible  *int64   `json:"visible"`
		Oldest   *float64 `json:"oldest_age_seconds"`
		Error    string   `json:"error"`
		InFlight *int64   `json:"in_flight"`
	} `json:"queues"`
	License struct {
		Verdict *struct{ Status, Detail string } `json:"verdict"`
		Error   string                           `json:"error"`
	} `json:"license"`
	Alarms struct {
		Firing []struct{ Name, Reason string } `json:"firing"`
	} `json:"alarms"`
	Warnings []string `json:"warnings"`
}

func parseStatus(t *testing.T, o output) statusJSON {
	t.Helper()
	var s statusJSON
	if err := json.Unmarshal([]byte(o.stdout), &s); err != nil {
		t.Fatalf("status --output json printed no JSON object: %v\n%s", err, o.all())
	}
	return s
}

// healthyDeployment is every stack, the services at rest, a valid
// license, two waiting jobs whose oldest is 42s old, and an alarm of
// another deployment firing (which is not this one's).
func healthyDeployment(t *testing.T) (*awstest.Server, invocation, string) {
	t.Helper()
	srv := awstest.Start(t)
	v := newVendor(t)
	config := defaultDeployment(v).write(t)
	deployStacks(t, srv, "acme-docs", allStacks...)
	// moto's tasks never run (see runServices): at rest, nothing is short.
	runServices(t, srv, "acme-docs", 0)
	srv.CreateSecret(t, "tether/acme-docs/license", v.validLicense(t))
	jobs := stackResource(t, srv, "acme-docs-data", "JobsDF1CC2D4")
	jobs = jobs[strings.LastIndex(jobs, "/")+1:]
	dlq := stackResource(t, srv, "acme-docs-data", "JobsDeadLetter4FD84C94")
	dlq = dlq[strings.LastIndex(dlq, "/")+1:]
	putQueueMetric(t, srv, jobs, "ApproximateNumberOfMessagesVisible", 2)
	putQueueMetric(t, srv, jobs, "ApproximateNumberOfMessagesNotVisible", 1)
	putQueueMetric(t, srv, jobs, "ApproximateAgeOfOldestMessage", 42)
	putQueueMetric(t, srv, dlq, "ApproximateNumberOfMessagesVisible", 0)
	putAlarm(t, srv, "tether-acme-docs-api-5xx", cwtypes.StateValueOk)
	putAlarm(t, srv, "tether-acme-docs2-api-5xx", cwtypes.StateValueAlarm)
	return srv, invocation{env: envOf(srv.Env())}, config
}

func TestStatusHealthy(t *testing.T) {
	t.Parallel()
	_, in, config := healthyDeployment(t)
	out := in.run(testContext(t), "status", "--config", config, "--output", "json")
	if out.err != nil {
		t.Fatalf("status: %v\n%s", out.err, out.all())
	}
	s := parseStatus(t, out)
	if !s.Healthy || len(s.Problems) != 0 {
		t.Errorf("not healthy: %v", s.Problems)
	}
	// moto reports an SSM-typed parameter's resolved value as its
	// ParameterValue, with no ResolvedValue (AWS reports the path and the
	// value): the digest is what both agree on.
	if s.Release.Docsvc.Digest != "sha256:"+docsvcHex || s.Release.Agent.Digest != "sha256:"+agentHex || s.Release.Docsvc.Parameter != "DocsvcImage" {
		t.Errorf("release: %+v", s.Release)
	}
	if len(s.Stacks) != 5 || s.Stacks[3].Name != "acme-docs-cluster" {
		t.Fatalf("stacks: %+v", s.Stacks)
	}
	for _, st := range s.Stacks {
		if !st.Deployed || st.Status != "CREATE_COMPLETE" {
			t.Errorf("stack %+v", st)
		}
	}
	if len(s.Services) != 4 || !s.Services[2].Deployed || s.Services[2].Name != "tether-acme-docs-agent" || s.Services[0].Rollout != "COMPLETED" ||
		!s.Services[3].Deployed || s.Services[3].Name != "tether-acme-docs-exchange" {
		t.Errorf("services: %+v", s.Services)
	}
	if strings.Contains(strings.Join(s.Warnings, "\n"), "exchange") {
		t.Errorf("warnings with the exchange service running: %v", s.Warnings)
	}
	if len(s.Queues) != 2 || s.Queues[0].Visible == nil || *s.Queues[0].Visible != 2 || s.Queues[0].InFlight == nil || *s.Queues[0].InFlight != 1 ||
		s.Queues[0].Oldest == nil || *s.Queues[0].Oldest != 42 ||
		s.Queues[1].Role != "dead-letter" || s.Queues[1].Error != "" || s.Queues[1].Visible == nil || *s.Queues[1].Visible != 0 || s.Queues[1].Oldest != nil {
		t.Errorf("queues: %+v", s.Queues)
	}
	if s.License.Verdict == nil || s.License.Verdict.Status != "PASS" {
		t.Errorf("license: %+v", s.License)
	}
	if len(s.Alarms.Firing) != 0 {
		t.Errorf("another deployment's alarm is shown: %+v", s.Alarms.Firing)
	}

	text := in.run(testContext(t), "status", "--config", config)
	for _, want := range []string{"acme-docs: account " + awstest.Account, "HEALTHY", "sha256:" + docsvcHex, "acme-docs-services", "CREATE_COMPLETE",
		"tether-acme-docs-worker", "2 waiting, 1 in flight, delayed unknown, oldest 42s", "0 waiting", "none in ALARM", "PASS tether/acme-docs/license"} {
		if !strings.Contains(text.stdout, want) {
			t.Errorf("the text does not show %q:\n%s", want, text.stdout)
		}
	}
}

func TestStatusAlarmFiring(t *testing.T) {
	t.Parallel()
	srv, in, config := healthyDeployment(t)
	putAlarm(t, srv, "tether-acme-docs-worker-dlq", cwtypes.StateValueAlarm)
	out := in.run(testContext(t), "status", "--config", config)
	if out.err == nil || ctl.IsUsage(out.err) {
		t.Fatalf("want exit 1, got %v", out.err)
	}
	for _, want := range []string{"UNHEALTHY", "tether-acme-docs-worker-dlq since", "test: ALARM", "alarm tether-acme-docs-worker-dlq is firing"} {
		if !strings.Contains(out.stdout, want) {
			t.Errorf("the text does not show %q:\n%s", want, out.stdout)
		}
	}
	if strings.Contains(out.stdout, "acme-docs2") {
		t.Errorf("another deployment's alarm is shown:\n%s", out.stdout)
	}
}

// A services stack from before tether-exchange (after an image-only
// upgrade) runs the agent with nothing mirroring it: healthy, with a
// warning that says what to deploy.
func TestStatusWithoutExchangeService(t *testing.T) {
	t.Parallel()
	srv, in, config := healthyDeployment(t)
	if _, err := ecs.NewFromConfig(srv.AWSConfig()).DeleteService(testContext(t), &ecs.DeleteServiceInput{
		Cluster: aws.String("tether-acme-docs"), Service: aws.String("tether-acme-docs-exchange"), Force: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	out := in.run(testContext(t), "status", "--config", config, "--output", "json")
	s := parseStatus(t, out)
	if out.err != nil || !s.Healthy || !strings.Contains(strings.Join(s.Warnings, "\n"), "service tether-acme-docs-exchange is not deployed") ||
		!strings.Contains(strings.Join(s.Warnings, "\n"), "tetherctl deploy") {
		t.Errorf("status without the exchange service: %v, healthy %v, warnings %v", out.err, s.Healthy, s.Warnings)
	}
}

// Services short of tasks are unhealthy.
func TestStatusServicesShort(t *testing.T) {
	t.Parallel()
	srv := awstest.Start(t)
	v := newVendor(t)
	config := defaultDeployment(v).write(t)
	deployStacks(t, srv, "acme-docs", allStacks...)
	runServices(t, srv, "acme-docs", 2) // moto runs none of them
	srv.CreateSecret(t, "tether/acme-docs/license", v.validLicense(t))
	out := invocation{env: envOf(srv.Env())}.run(testContext(t), "status", "--config", config, "--output", "json")
	s := parseStatus(t, out)
	if out.err == nil || s.Healthy || !strings.Contains(strings.Join(s.Problems, "\n"), "service tether-acme-docs-agent runs 0 of 2 tasks") {
		t.Errorf("want unhealthy with the agent short of tasks: %v %v", out.err, s.Problems)
	}
}

// A deployment half there is shown as such, and is not healthy.
func TestStatusMissingStacks(t *testing.T) {
	t.Parallel()
	srv := awstest.Start(t)
	config := defaultDeployment(newVendor(t)).write(t)
	deployStacks(t, srv, "acme-docs", "network", "data")
	in := invocation{env: envOf(srv.Env())}
	out := in.run(testContext(t), "status", "--config", config)
	if out.err == nil || ctl.IsUsage(out.err) {
		t.Fatalf("want exit 1, got %v", out.err)
	}
	for _, want := range [][2]string{{"acme-docs-images", "not deployed"}, {"acme-docs-services", "not deployed"},
		{"release", "none: the services stack is not deployed"}, {"tether-acme-docs-api", "not deployed"},
		{"acme-docs-data", "CREATE_COMPLETE"}, {"- stack acme-docs-cluster", "is not deployed"}, {"license", "tether/acme-docs/license does not exist"}} {
		if !hasLine(out.stdout, want[0], want[1]) {
			t.Errorf("no line shows %q then %q:\n%s", want[0], want[1], out.stdout)
		}
	}
}

// hasLine says whether one line of text holds first and, after it, then.
func hasLine(text, first, then string) bool {
	for _, line := range strings.Split(text, "\n") {
		if _, rest, ok := strings.Cut(line, first); ok && strings.Contains(rest, then) {
			return true
		}
	}
	return false
}

// A service that cannot be reached shows why in its rows; the rest is shown.
func TestStatusUnreachableEndpoint(t *testing.T) {
	t.Parallel()
	_, in, config := healthyDeployment(t)
	in.env["AWS_ENDPOINT_URL_CLOUDWATCH"] = "http://127.0.0.1:1"
	out := in.run(testContext(t), "status", "--config", config, "--output", "json", "--timeout", "5s")
	if out.err == nil || ctl.IsUsage(out.err) {
		t.Fatalf("want exit 1, got %v", out.err)
	}
	s := parseStatus(t, out)
	if len(s.Queues) != 2 || !strings.Contains(s.Queues[0].Error, "cannot reach http://127.0.0.1:1") || !strings.Contains(s.Queues[1].Error, "cannot reach") {
		t.Errorf("queues: %+v", s.Queues)
	}
	if p := strings.Join(s.Problems, "\n"); !strings.Contains(p, "the jobs queue could not be read") || !strings.Contains(p, "the alarms could not be read: CloudWatch DescribeAlarms: cannot reach") {
		t.Errorf("problems: %v", s.Problems)
	}
	if !s.Stacks[4].Deployed || s.Release.Docsvc.Digest == "" || s.License.Verdict == nil {
		t.Errorf("what could be read is not shown: %+v", s)
	}
}

package stacks

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/tetherhq/tether/internal/deployconfig"
)

var update = flag.Bool("update", false, "rewrite testdata/*.template.json from the current synth")

// The contrasting examples every test runs against: the smallest, the
// strictest, and one in the customer's existing VPC.
var examples = []string{"minimal", "strict", "existing-vpc"}

// synthesized is one example config's whole app, synthesized once per test
// binary (a synth with cdk-nag takes tens of seconds).
type synthesized struct {
	example   string
	cfg       *deployconfig.Config
	d         *Deployment
	templates map[string]assertions.Template // by stack suffix: network, data, images, cluster, services
	json      map[string]map[string]any
	outdir    string // the cloud assembly: <stack name>.template.json as cdk deploy would use them
}

var (
	synthMu    sync.Mutex
	synthCache = map[string]*synthesized{}
	// synthDirs are every cloud assembly written; the cached ones outlive
	// the test that made them, so TestMain removes them all.
	dirMu     sync.Mutex
	synthDirs []string
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range synthDirs {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

func synth(t *testing.T, example string) *synthesized {
	t.Helper()
	synthMu.Lock()
	defer synthMu.Unlock()
	if s, ok := synthCache[example]; ok {
		return s
	}
	cfg, err := deployconfig.Load(filepath.Join("..", "examples", example+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := synthConfig(t, example, cfg)
	synthCache[example] = s
	return s
}

// synthConfig synthesizes one config's app (uncached).
func synthConfig(t *testing.T, example string, cfg *deployconfig.Config) *synthesized {
	t.Helper()
	outdir, err := os.MkdirTemp("", "tether-cdk-"+example)
	if err != nil {
		t.Fatal(err)
	}
	dirMu.Lock()
	synthDirs = append(synthDirs, outdir)
	dirMu.Unlock()
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(outdir)})
	d := New(app, cfg)
	app.Synth(nil)
	s := &synthesized{example: example, cfg: cfg, d: d, templates: map[string]assertions.Template{}, json: map[string]map[string]any{}, outdir: outdir}
	for _, st := range d.Stacks() {
		suffix := strings.TrimPrefix(*st.StackName(), cfg.Name+"-")
		tpl := assertions.Template_FromStack(st, nil)
		s.templates[suffix] = tpl
		s.json[suffix] = *tpl.ToJSON()
	}
	return s
}

// check runs an assertions call, turning its panic into a test error.
func check(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	f()
}

// adoptingExamples adopt what an earlier deployment retained, so the
// resources a first deployment creates are missing from them: the tests
// that look at those run on examples, the others (cdk-nag, the linters,
// snapshots, teardown, the agent's denials, adoption) on these too.
var adoptingExamples = []string{"recreate"}

func forEachExample(t *testing.T, f func(t *testing.T, s *synthesized)) {
	for _, ex := range examples {
		t.Run(ex, func(t *testing.T) { f(t, synth(t, ex)) })
	}
}

func forAllExamples(t *testing.T, f func(t *testing.T, s *synthesized)) {
	forEachExample(t, f)
	for _, ex := range adoptingExamples {
		t.Run(ex, func(t *testing.T) { f(t, synth(t, ex)) })
	}
}

// resources returns a template's resources of one type, by logical ID.
func resources(s *synthesized, stack, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range s.json[stack]["Resources"].(map[string]any) {
		res := r.(map[string]any)
		if res["Type"] == typ {
			out[id] = res
		}
	}
	return out
}

func props(r map[string]any) map[string]any {
	p, _ := r["Properties"].(map[string]any)
	return p
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestNagFindsNothingUnsuppressed(t *testing.T) {
	forAllExamples(t, func(t *testing.T, s *synthesized) {
		for _, st := range s.d.Stacks() {
			ann := assertions.Annotations_FromStack(st)
			errs := ann.FindError(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*")))
			for _, m := range *errs {
				t.Errorf("%s: %s: %v", *st.StackName(), *m.Id, m.Entry.Data)
			}
			warns := ann.FindWarning(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("(AwsSolutions-|CdkNagValidationFailure).*")))
			for _, m := range *warns {
				t.Errorf("%s: warning %s: %v", *st.StackName(), *m.Id, m.Entry.Data)
			}
		}
		// Every suppression names its rule and gives a specific reason.
		for stack, tpl := range s.json {
			for id, r := range tpl["Resources"].(map[string]any) {
				md, _ := r.(map[string]any)["Metadata"].(map[string]any)
				nag, _ := md["cdk_nag"].(map[string]any)
				rules, _ := nag["rules_to_suppress"].([]any)
				for _, rule := range rules {
					rm := rule.(map[string]any)
					ruleID, _ := rm["id"].(string)
					reason, _ := rm["reason"].(string)
					if !regexp.MustCompile(`^(AwsSolutions-[A-Z0-9]+|CdkNagValidationFailure)$`).MatchString(ruleID) || len(reason) < 40 {
						t.Errorf("%s/%s: suppression %q has no specific reason: %q", stack, id, ruleID, reason)
					}
				}
			}
		}
	})
}

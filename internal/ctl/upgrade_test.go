package ctl

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/deployconfig"
	"github.com/tetherhq/tether/internal/release"
	"github.com/tetherhq/tether/internal/release/publish"
	"github.com/tetherhq/tether/internal/wire"
)

// vendorRepo is a vendor's signing keys and release repository, made with
// the vendor's own code (internal/release), publishing at now.
type vendorRepo struct {
	t                *testing.T
	keys, repo, root string
}

func newVendorRepo(t *testing.T, now time.Time) *vendorRepo {
	t.Helper()
	v := &vendorRepo{t: t, keys: filepath.Join(t.TempDir(), "keys"), repo: t.TempDir()}
	res, err := publish.InitKeys(v.keys, publish.KeyOptions{}, now)
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.ReadFile(res.RootPath)
	if err != nil {
		t.Fatal(err)
	}
	v.root = string(root)
	return v
}

func hex64(c string) string { return strings.Repeat(c, 64) }

func (v *vendorRepo) publish(now time.Time, version, minFrom, docsvcHex, agentHex string) {
	v.t.Helper()
	_, err := publish.Publish(context.Background(), v.repo, v.keys, publish.PublishOptions{
		Version: version, Channel: "stable", MinFrom: minFrom, SchemaMin: 1, SchemaMax: 4,
		Images: map[string]string{
			"docsvc": "registry.vendor.example/tether/docsvc@sha256:" + hex64(docsvcHex),
			"agent":  "registry.vendor.example/tether/agent@sha256:" + hex64(agentHex),
		},
	}, now)
	if err != nil {
		v.t.Fatal(err)
	}
}

func (v *vendorRepo) export() string {
	v.t.Helper()
	var buf bytes.Buffer
	if err := publish.Export(v.repo, "stable", &buf); err != nil {
		v.t.Fatal(err)
	}
	p := filepath.Join(v.t.TempDir(), "stable.tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		v.t.Fatal(err)
	}
	return p
}

// unsign rewrites an export with every signature of timestamp.json removed.
func unsign(t *testing.T, bundle string) string {
	t.Helper()
	data, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out bytes.Buffer
	gw := gzip.NewWriter(&out)
	tw := tar.NewWriter(gw)
	stripped := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if strings.HasSuffix(h.Name, "timestamp.json") {
			var md map[string]any
			if err := json.Unmarshal(body, &md); err != nil {
				t.Fatal(err)
			}
			md["signatures"] = []any{}
			body, _ = json.Marshal(md)
			h.Size = int64(len(body))
			stripped = true
		}
		tw.WriteHeader(h)
		tw.Write(body)
	}
	tw.Close()
	gw.Close()
	if !stripped {
		t.Fatal("the export has no timestamp.json to unsign")
	}
	p := filepath.Join(t.TempDir(), "unsigned.tar.gz")
	os.WriteFile(p, out.Bytes(), 0o600)
	return p
}

// refusedExport is an export a trusted root must refuse, and why.
type refusedExport struct{ name, bundle, root, want string }

// refusedExports are good (v's export) signed by another key, unsigned, and
// an expired one.
func refusedExports(t *testing.T, now time.Time, v *vendorRepo, good string) []refusedExport {
	other := newVendorRepo(t, now)
	expired := newVendorRepo(t, now.Add(-72*time.Hour))
	expired.publish(now.Add(-72*time.Hour), "1.0.0", "", "a", "b")
	return []refusedExport{
		{"signed by another key", good, other.root, "not signed by the keys"},
		{"unsigned", unsign(t, good), v.root, "not signed by the keys"},
		{"expired", expired.export(), expired.root, "expired"},
	}
}

func upgradeDeployment(root string) *deployconfig.Config {
	return &deployconfig.Config{Name: "acme-docs", Account: awstest.Account, Region: awstest.Region,
		Plane: deployconfig.Plane{Channel: "stable", TrustedRoot: root}}
}

// A release is used only after the agent's TUF checks pass against
// deployment.yaml's trusted root; each refusal says why and what to do.
func TestVerifiedReleases(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	v := newVendorRepo(t, now)
	v.publish(now, "1.0.0", "", "a", "b")
	v.publish(now, "1.1.0", "1.0.0", "c", "d")
	good := v.export()
	dc := upgradeDeployment(v.root)

	ms, err := verifiedReleases(ctx, dc, t.TempDir(), good, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Version != "1.1.0" {
		t.Fatalf("verified %+v, want 1.1.0 then 1.0.0", ms)
	}
	rel, err := imagesOf(ms[0])
	if err != nil || rel.DocsvcDigest != "sha256:"+hex64("c") || rel.AgentDigest != "sha256:"+hex64("d") {
		t.Fatalf("images of 1.1.0: %+v, %v", rel, err)
	}

	other := newVendorRepo(t, now)
	for _, c := range refusedExports(t, now, v, good) {
		t.Run(c.name, func(t *testing.T) {
			_, err := verifiedReleases(ctx, upgradeDeployment(c.root), t.TempDir(), c.bundle, time.Now())
			if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a refusal saying %q", err, c.want)
			}
		})
	}

	t.Run("older export after a newer one", func(t *testing.T) {
		state := t.TempDir()
		old := newVendorRepo(t, now)
		old.publish(now, "1.0.0", "", "a", "b")
		first := old.export()
		old.publish(now, "1.1.0", "1.0.0", "c", "d")
		if _, err := verifiedReleases(ctx, upgradeDeployment(old.root), state, old.export(), time.Now()); err != nil {
			t.Fatal(err)
		}
		_, err := verifiedReleases(ctx, upgradeDeployment(old.root), state, first, time.Now())
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("an export older than one verified before: %v, want it refused", err)
		}
	})

	t.Run("another root than before", func(t *testing.T) {
		state := t.TempDir()
		if _, err := verifiedReleases(ctx, dc, state, good, time.Now()); err != nil {
			t.Fatal(err)
		}
		_, err := verifiedReleases(ctx, upgradeDeployment(other.root), state, good, time.Now())
		if err == nil || !strings.Contains(err.Error(), "plane.trusted_root is not the root") {
			t.Fatalf("changed trusted root: %v", err)
		}
	})

	t.Run("another channel", func(t *testing.T) {
		beta := upgradeDeployment(v.root)
		beta.Plane.Channel = "beta"
		state := t.TempDir()
		_, err := verifiedReleases(ctx, beta, state, good, time.Now())
		if err == nil || !strings.Contains(err.Error(), `is for channel "stable"`) {
			t.Fatalf("bundle of another channel: %v", err)
		}
		// The refused export left the trusted metadata as it was: only the
		// root, so nothing of stable's is trusted for this deployment.
		entries, _ := os.ReadDir(filepath.Join(state, "tuf"))
		if len(entries) != 1 || entries[0].Name() != "root.json" {
			t.Fatalf("a refused export changed the trusted metadata: %v", entries)
		}
	})
}

func TestCheckApplies(t *testing.T) {
	m := release.Manifest{Version: "1.2.0", Channel: "stable", MinFrom: "1.1.0"}
	for _, c := range []struct {
		current  string
		rollback bool
		want     string // "" = applies
	}{
		{"1.1.0", false, ""},
		{"1.1.5", false, ""},
		{"1.0.0", false, "upgrades from 1.1.0 or newer"},
		{"1.2.0", false, "is the one running"},
		{"1.3.0", false, "older than the running 1.3.0"},
		{"1.3.0", true, ""},
		{"1.1.0", true, "newer than the running"},
		{"", false, "no verified release names"},
	} {
		err := checkApplies(m, c.current, "stable", c.rollback)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("1.2.0 over %q (rollback %v): %v, want %q", c.current, c.rollback, err, c.want)
		}
	}
	if err := checkApplies(m, "1.1.0", "beta", false); err == nil || !strings.Contains(err.Error(), `channel "stable"`) {
		t.Errorf("another channel: %v", err)
	}
}

// moto's ECS keeps no deployment rollout state (no circuit breaker, no
// rolloutState), its CloudWatch does not evaluate alarms from metrics, and
// its CloudFormation neither creates nor lists AWS::CloudWatch::Alarm (so
// readHealth cannot find a stack's alarms there): the verdict is tested on
// the SDK's own output types (decision 0007).
func TestHealthProblems(t *testing.T) {
	svc := func(name string, running, desired int32, states ...ecstypes.DeploymentRolloutState) ecstypes.Service {
		s := ecstypes.Service{ServiceName: aws.String(name), RunningCount: running, DesiredCount: desired}
		for i, st := range states {
			s.Deployments = append(s.Deployments, ecstypes.Deployment{Id: aws.String("ecs-svc/" + name + string(rune('0'+i))), RolloutState: st,
				RolloutStateReason: aws.String("ECS deployment circuit breaker: tasks failed to start.")})
		}
		return s
	}
	ok := cwtypes.MetricAlarm{AlarmName: aws.String("acme-docs api 5xx"), StateValue: cwtypes.StateValueOk}
	firing := cwtypes.MetricAlarm{AlarmName: aws.String("acme-docs queue age"), StateValue: cwtypes.StateValueAlarm, StateReason: aws.String("Threshold Crossed")}

	settled, problems := healthProblems([]ecstypes.Service{svc("api", 2, 2, ecstypes.DeploymentRolloutStateCompleted)}, []cwtypes.MetricAlarm{ok})
	if !settled || len(problems) != 0 {
		t.Fatalf("healthy: settled %v, %v", settled, problems)
	}
	settled, _ = healthProblems([]ecstypes.Service{svc("api", 1, 2, ecstypes.DeploymentRolloutStateInProgress, ecstypes.DeploymentRolloutStateCompleted)}, nil)
	if settled {
		t.Fatal("a rollout in progress counted as settled")
	}
	_, problems = healthProblems([]ecstypes.Service{svc("worker", 0, 1, ecstypes.DeploymentRolloutStateFailed)}, []cwtypes.MetricAlarm{firing})
	if len(problems) != 2 || !strings.Contains(problems[0], "circuit breaker") || !strings.Contains(problems[1], "queue age is in ALARM") {
		t.Fatalf("failed rollout and alarm: %v", problems)
	}
}

// The history lives in SSM, through the real SDK against moto.
func TestReleaseHistory(t *testing.T) {
	srv := awstest.Start(t)
	dc := upgradeDeployment("")
	a := testSession(t, srv, dc)
	ctx := context.Background()
	if h, err := readHistory(ctx, a, dc); err != nil || len(h) != 0 {
		t.Fatalf("no history yet: %v, %v", h, err)
	}
	d := func(c string) string { return "sha256:" + hex64(c) }
	for i := range maxOutcomes + 2 {
		o := releaseOutcome{Action: "upgrade", From: fmt.Sprintf("1.0.%d", i), To: fmt.Sprintf("1.0.%d", i+1),
			FromDocsvc: d("a"), FromAgent: d("b"), DocsvcDigest: d("c"), AgentDigest: d("e"), Outcome: "succeeded", At: time.Date(2026, 12, 1, 0, i, 0, 0, time.UTC)}
		if err := recordOutcome(ctx, a, dc, o); err != nil {
			t.Fatal(err)
		}
	}
	h, err := readHistory(ctx, a, dc)
	if err != nil || len(h) != maxOutcomes || h[0].To != fmt.Sprintf("1.0.%d", maxOutcomes+2) {
		t.Fatalf("history: %d outcomes, newest %+v, %v", len(h), h, err)
	}
	cur := deployedRelease{DocsvcDigest: d("c"), AgentDigest: d("e")}
	if prev, ok := previousRelease(h, cur); !ok || prev.FromDocsvc != d("a") {
		t.Fatalf("previous: %+v, %v", prev, ok)
	}
	if _, ok := previousRelease(h, deployedRelease{DocsvcDigest: d("f"), AgentDigest: d("e")}); ok {
		t.Fatal("a previous release offered though the services no longer run what the last upgrade installed")
	}

	srv.PutParameter(t, dc.ReleaseRecordParameter(), `[{"action":"upgrade","outcome":"succeeded","docsvc_digest":"latest"}]`, false)
	if _, err := readHistory(ctx, a, dc); err == nil || !strings.Contains(err.Error(), "delete") {
		t.Fatalf("a hand-edited history: %v", err)
	}
}

func FuzzParseHistory(f *testing.F) {
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"action":"rollback","outcome":"rolled-back","docsvc_digest":"sha256:` + hex64("a") + `"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := parseHistory("/tether/x/state/releases", data)
		if err != nil {
			if !strings.Contains(err.Error(), "/tether/x/state/releases") {
				t.Fatalf("error does not name the parameter: %v", err)
			}
			return
		}
		for _, o := range h {
			if !slices.Contains(wire.UpgradeOutcomes, o.Outcome) || checkDigest("d", o.DocsvcDigest) != nil {
				t.Fatalf("accepted %+v", o)
			}
		}
	})
}

func TestDigestOfMarker(t *testing.T) {
	dc := upgradeDeployment("")
	h := hex64("0")
	if d, err := digestOfMarker(dc, "DocsvcImage", "/tether/acme-docs/migrated/sha256-"+h); err != nil || d != "sha256:"+h {
		t.Fatalf("%q, %v", d, err)
	}
	for _, bad := range []string{"/tether/acme-docs/verified/agent/sha256-" + h, "/tether/other/migrated/sha256-" + h, "/tether/acme-docs/migrated/sha256-" + h + "0", "sha256:" + h, ""} {
		if _, err := digestOfMarker(dc, "DocsvcImage", bad); err == nil || !strings.Contains(err.Error(), "tetherctl deploy") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// The parameter-only change set, through the real SDK against moto: the
// named parameter changes, the others keep their values, the template
// stays, and a declined change set changes nothing.
func TestSetStackParameters(t *testing.T) {
	srv := awstest.Start(t)
	dc := upgradeDeployment("")
	a := testSession(t, srv, dc)
	ctx := context.Background()
	const tpl = `{"Parameters":{"DocsvcImage":{"Type":"String"},"AgentImage":{"Type":"String"}},
"Resources":{"Seen":{"Type":"AWS::SSM::Parameter","Properties":{"Name":"/test/seen","Type":"String","Value":{"Fn::Join":["|",[{"Ref":"DocsvcImage"},{"Ref":"AgentImage"}]]}}}}}`
	cfn := a.CloudFormation()
	if _, err := cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String("acme-docs-services"), TemplateBody: aws.String(tpl),
		Parameters: []cfntypes.Parameter{
			{ParameterKey: aws.String("DocsvcImage"), ParameterValue: aws.String("/tether/acme-docs/migrated/sha256-" + hex64("a"))},
			{ParameterKey: aws.String("AgentImage"), ParameterValue: aws.String("/tether/acme-docs/verified/agent/sha256-" + hex64("b"))},
		}}); err != nil {
		t.Fatal(err)
	}
	seen := func() string {
		out, err := a.SSM().GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/test/seen")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Parameter.Value)
	}
	before := seen()
	newDocsvc := "/tether/acme-docs/migrated/sha256-" + hex64("c")

	var w bytes.Buffer
	declined := Env{Now: time.Now, Stdin: strings.NewReader("n\n"), Stdout: &w, Stderr: &w, Getenv: func(string) string { return "" }}
	if err := setStackParameters(ctx, declined, a, "acme-docs-services", map[string]string{"DocsvcImage": newDocsvc}, false, &w); err == nil || !strings.Contains(err.Error(), "not confirmed") {
		t.Fatalf("declined: %v", err)
	}
	if got := seen(); got != before {
		t.Fatalf("a declined change set changed the stack: %q", got)
	}
	if !strings.Contains(w.String(), "parameter DocsvcImage = "+newDocsvc) {
		t.Errorf("the change set was not shown before the question:\n%s", w.String())
	}

	w.Reset()
	if err := setStackParameters(ctx, declined, a, "acme-docs-services", map[string]string{"DocsvcImage": newDocsvc}, true, &w); err != nil {
		t.Fatalf("%v\n%s", err, w.String())
	}
	if got, want := seen(), newDocsvc+"|/tether/acme-docs/verified/agent/sha256-"+hex64("b"); got != want {
		t.Fatalf("after the change set the stack sees %q, want %q", got, want)
	}
	cur, err := currentRelease(ctx, a, dc, nil)
	if err != nil || cur.DocsvcDigest != "sha256:"+hex64("c") || cur.AgentDigest != "sha256:"+hex64("b") {
		t.Fatalf("current release after the change: %+v, %v", cur, err)
	}

	if err := setStackParameters(ctx, declined, a, "acme-docs-services", map[string]string{"DocsvcDigest": "x"}, true, &w); err == nil || !strings.Contains(err.Error(), "has no parameter DocsvcDigest") {
		t.Fatalf("unknown parameter: %v", err)
	}
}

// An upgrade takes releases only from a channel the deployment's license
// allows, as the agent would; a license it cannot read or verify stops it
// too, naming the secret.
func TestUpgradeChecksTheLicensedChannel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	priv, pubPEM := testKey(t)
	other, _ := testKey(t)
	year := time.Now().AddDate(1, 0, 0)
	for _, c := range []struct {
		name, secret, want string
	}{
		{"allowed", string(issue(t, priv, year, "beta", "stable")), ""},
		{"other channels", string(issue(t, priv, year, "beta", "lts")), "does not allow channel stable (it allows beta, lts)"},
		{"another vendor's", string(issue(t, other, year, "stable")), "does not verify against license.public_key"},
		{"no secret", "", "GetSecretValue on tether/acme-docs/license"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := awstest.Start(t)
			dc := upgradeDeployment("")
			dc.License.PublicKey = pubPEM
			if c.secret != "" {
				srv.CreateSecret(t, dc.SecretName(kindLicense), c.secret)
			}
			err := checkLicensedChannel(ctx, testSession(t, srv, dc), dc)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("a license allowing the channel: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("want an error saying %q, got %v", c.want, err)
			}
		})
	}
}

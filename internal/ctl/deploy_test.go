package ctl

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/deployconfig"
)

// deployFixture is an empty account in moto (only the CDK bootstrap and a
// certificate for the domain), the vendor's registry holding a release,
// an ECR registry, and the cloud assembly made from deploy/cdk's
// snapshot templates (motoassembly_test.go).
type deployFixture struct {
	srv      *awstest.Server
	a        *awsSession
	dc       *deployconfig.Config
	config   string
	asm      *motoAssembly
	env      Env
	stdout   *bytes.Buffer
	stderr   *bytes.Buffer
	priv     ed25519.PrivateKey
	rel      releaseImages
	manifest map[string][]byte // digest -> manifest, for moto's ECR API
}

func newDeployFixture(t *testing.T, edits ...func(suffix string, tpl map[string]any)) *deployFixture {
	t.Helper()
	f := &deployFixture{srv: awstest.Start(t), manifest: map[string][]byte{}}
	bootstrapMoto(t, f.srv, "21")
	cert := importTestCertificate(t, f.srv, "docs.acme.example")

	vendor, ecrRegistry := newTestRegistry(t), newTestRegistry(t)
	ecrRegistry.password = ecrPassword
	transport := registryTransport(map[string]*testRegistry{"registry.vendor.example": vendor, ecrHost: ecrRegistry})
	push := func(imgName string, img remote.Taggable) string {
		ref, err := name.ParseReference("registry.vendor.example/tether/" + imgName + ":1.4.0")
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Push(ref, img, remote.WithTransport(transport)); err != nil {
			t.Fatal(err)
		}
		raw, _ := img.RawManifest()
		d, _, _ := v1.SHA256(bytes.NewReader(raw))
		f.manifest[d.String()] = raw
		return d.String()
	}
	docsvc, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := random.Image(2048, 1)
	if err != nil {
		t.Fatal(err)
	}
	f.rel = releaseImages{DocsvcDigest: push("docsvc", docsvc), AgentDigest: push("agent", agent)}
	f.asm = newMotoAssembly(t, assemblyOptions{certificateARN: cert, edit: func(suffix string, tpl map[string]any) {
		containerMemory(suffix, tpl)
		synthesizedDefaults(suffix, tpl, f.rel)
		for _, e := range edits {
			e(suffix, tpl)
		}
	}})

	var pubPEM string
	f.priv, pubPEM = testKey(t)
	yaml := fmt.Sprintf(`version: 1
name: acme-docs
account: "%s"
region: %s
domain:
  name: docs.acme.example
  certificate_arn: %s
auth:
  provider: oidc
  issuer: https://login.acme.example/realms/staff
  client_id: tether-docs
email_sender: noreply@acme.example
ai:
  provider: local
images:
  source: vendor
  vendor_registry: registry.vendor.example/tether
  docsvc_digest: %s
  agent_digest: %s
plane:
  channel: stable
  trusted_root: '{"signed":{"_type":"root"},"signatures":[]}'
license:
  public_key: |
%s
`, awstest.Account, awstest.Region, cert, f.rel.DocsvcDigest, f.rel.AgentDigest, indent(pubPEM, "    "))
	f.config = filepath.Join(t.TempDir(), "deployment.yaml")
	mustWriteFile(t, f.config, []byte(yaml))
	dc, err := deployconfig.Load(f.config)
	if err != nil {
		t.Fatal(err)
	}
	f.dc = dc
	f.a = testSession(t, f.srv, dc)
	vars := testAWSEnv(t, f.srv) // with the AWS CLI, which uploads large templates
	f.warmUp(t)
	f.stdout, f.stderr = &bytes.Buffer{}, &bytes.Buffer{}
	f.env = Env{Now: time.Now, Stdin: strings.NewReader(""), Stdout: f.stdout, Stderr: f.stderr,
		Getenv: func(k string) string { return vars[k] }, HTTPTransport: transport}
	return f
}

// containerMemory gives the migrate container the task's memory: moto's
// RunTask adds up container-level memory and fails (TypeError) on a Fargate
// task definition that sets it only per task, as the cluster stack's does.
func containerMemory(suffix string, tpl map[string]any) {
	if suffix != "cluster" {
		return
	}
	for _, r := range tpl["Resources"].(map[string]any) {
		res := r.(map[string]any)
		if res["Type"] != "AWS::ECS::TaskDefinition" {
			continue
		}
		props := res["Properties"].(map[string]any)
		mem, _ := strconv.Atoi(fmt.Sprint(props["Memory"]))
		for _, c := range props["ContainerDefinitions"].([]any) {
			c.(map[string]any)["Memory"] = mem
		}
	}
}

// synthesizedDefaults gives the services stack's image parameters the
// defaults a synthesis with this release's digests has (the snapshot has
// placeholders there). moto resolves an SSM-typed parameter's default even
// when a value is given, and fails when it names no parameter.
func synthesizedDefaults(suffix string, tpl map[string]any, rel releaseImages) {
	if suffix != "services" {
		return
	}
	params := tpl["Parameters"].(map[string]any)
	params["DocsvcImage"].(map[string]any)["Default"] = "/tether/acme-docs/migrated/" + markerName(rel.DocsvcDigest)
	params["AgentImage"].(map[string]any)["Default"] = "/tether/acme-docs/verified/agent/" + markerName(rel.AgentDigest)
}

// warmUp makes the first call to each service preflight asks at once:
// moto loads a service's code on its first call, which on a loaded machine
// can take longer than a preflight check's 10 seconds. The answers do not
// matter.
func (f *deployFixture) warmUp(t *testing.T) {
	t.Helper()
	ctx := releaseContext(t)
	_, _ = f.a.CloudFormation().DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String("acme-docs-data")})
	_, _ = f.a.ServiceQuotas().GetServiceQuota(ctx, &servicequotas.GetServiceQuotaInput{ServiceCode: aws.String("vpc"), QuotaCode: aws.String("L-F678F1CE")})
	_, _ = f.a.EC2().DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
	_, _ = f.a.SecretsManager().ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	_, _ = f.a.ECS().ListClusters(ctx, &ecs.ListClustersInput{})
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}

// importTestCertificate imports a self-signed certificate for host into
// moto's ACM (imported certificates are ISSUED at once, as in ACM).
func importTestCertificate(t testing.TB, srv *awstest.Server, host string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	out, err := acm.NewFromConfig(srv.AWSConfig()).ImportCertificate(context.Background(), &acm.ImportCertificateInput{
		Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		PrivateKey:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.CertificateArn)
}

// setSecrets does what the data stack, RDS and the operator do: the stack
// creates the secrets (moto cannot: AWS::SecretsManager::Secret is
// swapped), RDS creates the database's with 7-day rotation (moto cannot:
// AWS::RDS::DBInstance is swapped; moto runs no rotation, and with
// RotateImmediately false only records the schedule), the operator sets
// the license through tetherctl secrets set.
func (f *deployFixture) setSecrets(t *testing.T) {
	t.Helper()
	for _, k := range []string{kindLicense, kindAgentIdentity} {
		f.srv.CreateSecret(t, f.dc.SecretName(k), "")
	}
	db := f.srv.CreateSecret(t, motoRDSSecretName, `{"username":"tether","password":"generated"}`)
	if _, err := secretsmanager.NewFromConfig(f.srv.AWSConfig()).RotateSecret(context.Background(), &secretsmanager.RotateSecretInput{
		SecretId: aws.String(db), RotateImmediately: aws.Bool(false),
		RotationRules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(7)},
	}); err != nil {
		t.Fatalf("rotate %s: %v", db, err)
	}
	file := filepath.Join(t.TempDir(), "license.json")
	mustWriteFile(t, file, issue(t, f.priv, time.Now().AddDate(1, 0, 0), "stable"))
	var out bytes.Buffer
	env := f.env
	env.Stdout, env.Stderr = &out, &out
	if err := RunEnv(releaseContext(t), []string{"secrets", "set", "license", "--config", f.config, "--from-file", file}, env); err != nil {
		t.Fatalf("secrets set license: %v\n%s", err, out.String())
	}
}

// registerInECRAPI records the pushed images in moto's ECR API, as ECR
// records a push: moto has no registry data plane, so the images went to
// the test registry standing for ECR's.
func (f *deployFixture) registerInECRAPI(ctx context.Context) error {
	for imgName, d := range map[string]string{"docsvc": f.rel.DocsvcDigest, "agent": f.rel.AgentDigest} {
		_, err := ecr.NewFromConfig(f.srv.AWSConfig()).PutImage(ctx, &ecr.PutImageInput{
			RepositoryName: aws.String("acme-docs/" + imgName), ImageManifest: aws.String(string(f.manifest[d])),
			ImageManifestMediaType: aws.String("application/vnd.docker.distribution.manifest.v2+json"), ImageDigest: aws.String(d)})
		if err != nil {
			return err
		}
	}
	return nil
}

// steps are deploy's real steps, recorded, with two changes for moto:
//   - after pushImages, the images are recorded in moto's ECR API, as ECR
//     records a push (moto has no registry; the test registry stands in);
//   - the wait: moto's services never become stable (their running count is
//     fixed when created and their rollout stays IN_PROGRESS), so it is
//     replaced by a check that the three services exist in the cluster
//     (waitServices is tested in cfn_test.go).
func (f *deployFixture) steps(t *testing.T, calls *[]string) deploySteps {
	return deploySteps{
		push: func(ctx context.Context, env Env, a *awsSession, cfg *deployconfig.Config, rel releaseImages, opt imageOptions) error {
			*calls = append(*calls, "push")
			if err := pushImages(ctx, env, a, cfg, rel, opt); err != nil {
				return err
			}
			return f.registerInECRAPI(ctx)
		},
		migrate: func(ctx context.Context, env Env, a *awsSession, cfg *deployconfig.Config, digest string) error {
			*calls = append(*calls, "migrate")
			return runMigration(ctx, env, a, cfg, digest)
		},
		wait: func(ctx context.Context, a *awsSession, cluster string, w io.Writer) error {
			*calls = append(*calls, "wait "+cluster)
			services, err := describeServices(ctx, a.ECS(), cluster)
			if err != nil {
				return err
			}
			var names []string
			for _, s := range services {
				names = append(names, aws.ToString(s.ServiceName))
			}
			slices.Sort(names)
			if want := []string{"tether-acme-docs-agent", "tether-acme-docs-api", "tether-acme-docs-exchange", "tether-acme-docs-worker"}; !slices.Equal(names, want) {
				return fmt.Errorf("services %v, want %v", names, want)
			}
			return nil
		},
	}
}

func (f *deployFixture) deploy(t *testing.T, steps deploySteps, extra ...string) error {
	t.Helper()
	f.stdout.Reset()
	f.stderr.Reset()
	args := append([]string{"--config", f.config, "--cdk-out", f.asm.Dir, "--yes", "--method", "direct"}, extra...)
	return deployWith(releaseContext(t), args, f.env, steps)
}

// stackExistsNow reports whether moto has the stack.
func (f *deployFixture) stackExistsNow(t *testing.T, suffix string) bool {
	t.Helper()
	ok, err := stackExists(releaseContext(t), f.a, "acme-docs-"+suffix)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// operations lists the calls of the given operations (by target) in the
// order they reached moto, with the stack or parameter they named.
func (f *deployFixture) operations(t *testing.T, ops ...string) []string {
	t.Helper()
	var out []string
	for _, r := range f.srv.Requests() {
		if !slices.Contains(ops, r.Target) {
			continue
		}
		what := ""
		if strings.HasPrefix(r.Target, "AmazonSSM.") {
			var p struct{ Name string }
			_ = json.Unmarshal(r.Body, &p)
			what = p.Name
		} else {
			form, _ := parseForm(r.Body)
			what = form.Get("StackName")
		}
		out = append(out, strings.TrimPrefix(r.Target, "AmazonSSM.")+" "+what)
	}
	return out
}

// From an empty account: the first deploy stops after the data stack for
// the license; once it is set, the next deploys every stack in order with
// the images and the migration between them, and prints the URL; a third
// changes nothing.
func TestDeployFromEmptyAccount(t *testing.T) {
	t.Parallel()
	f := newDeployFixture(t)
	f.asm.logSwapped(t)
	var calls []string

	err := f.deploy(t, f.steps(t, &calls))
	if err == nil || !strings.Contains(err.Error(), "stopped after the acme-docs-data stack") ||
		!strings.Contains(err.Error(), "tetherctl secrets set license --from-file license.json") ||
		!strings.Contains(err.Error(), "run tetherctl deploy again") {
		t.Fatalf("first deploy: %v\n%s", err, f.stdout.String())
	}
	if !f.stackExistsNow(t, "data") || f.stackExistsNow(t, "images") || len(calls) > 0 {
		t.Fatalf("the first deploy did not stop right after the data stack (steps run: %v)", calls)
	}
	t.Logf("first deploy:\n%s\n%v", f.stdout.String(), err)

	f.setSecrets(t)
	if err := f.deploy(t, f.steps(t, &calls)); err != nil {
		t.Fatalf("second deploy: %v\n%s\n%s", err, f.stdout.String(), f.stderr.String())
	}
	out := f.stdout.String()
	t.Logf("second deploy:\n%s", out)
	if want := []string{"push", "migrate", "wait tether-acme-docs"}; !slices.Equal(calls, want) {
		t.Errorf("steps %v, want %v", calls, want)
	}
	got := f.operations(t, "CreateStack", "UpdateStack", "AmazonSSM.PutParameter")
	wantOrder := []string{"CreateStack acme-docs-network", "CreateStack acme-docs-data",
		"UpdateStack acme-docs-network", "UpdateStack acme-docs-data", "CreateStack acme-docs-images",
		"PutParameter " + agentMarkerPath(f.dc, f.rel.AgentDigest), "CreateStack acme-docs-cluster",
		"PutParameter " + migratedMarkerPath(f.dc, f.rel.DocsvcDigest), "CreateStack acme-docs-services"}
	if !slices.Equal(got, wantOrder) {
		t.Errorf("calls in this order:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(wantOrder, "\n  "))
	}
	for _, want := range []string{
		"Plan: deploy acme-docs to account " + awstest.Account,
		"stack acme-docs-cluster: create", "MigrateImageDigest = " + f.rel.DocsvcDigest,
		"DocsvcImage = " + migratedMarkerPath(f.dc, f.rel.DocsvcDigest), "AgentImage = " + agentMarkerPath(f.dc, f.rel.AgentDigest),
		"acme-docs-cluster outputs:\n  ClusterName = tether-acme-docs",
		"Tether acme-docs is deployed: https://docs.acme.example",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q", want)
		}
	}
	svc, err := readStack(releaseContext(t), f.a, f.dc, "services")
	if err != nil {
		t.Fatal(err)
	}
	if got := svc.Parameters["DocsvcImage"]; got != f.rel.DocsvcDigest {
		t.Errorf("the services stack's DocsvcImage resolved to %q, want the migrated marker's %s", got, f.rel.DocsvcDigest)
	}
	f.asm.checkNothingSkipped(t, releaseContext(t), f.a)

	// Again, for --output json: every step runs again and finds its work
	// done (moto updates a stack even when nothing changed, so "no changes"
	// is tested with change sets in TestDeployStackThroughChangeSets).
	if err := f.deploy(t, f.steps(t, &calls), "--output", "json"); err != nil {
		t.Fatalf("third deploy: %v\n%s", err, f.stderr.String())
	}
	var rep deployReport
	if err := json.Unmarshal(f.stdout.Bytes(), &rep); err != nil {
		t.Fatalf("--output json: %v\n%s", err, f.stdout.String())
	}
	if rep.URL != "https://docs.acme.example" || len(rep.Stacks) != 5 || len(rep.Preflight) == 0 || rep.DocsvcDigest != f.rel.DocsvcDigest {
		t.Errorf("report: %+v", rep)
	}
	for i, s := range rep.Stacks {
		if s.Stack != "acme-docs-"+snapshotStacks[i].suffix || !strings.HasSuffix(s.Status, "_COMPLETE") {
			t.Errorf("third deploy, stack %d: %+v", i, s)
		}
	}
	if !strings.Contains(f.stderr.String(), "[9/9] wait") {
		t.Errorf("--output json: the progress is not on standard error:\n%s", f.stderr.String())
	}
}

// A migration that fails stops the deploy before the services stack is
// touched, with the reason. The real pushImages and runMigration run.
func TestDeployStopsWhenTheMigrationFails(t *testing.T) {
	t.Parallel()
	f := newDeployFixture(t)
	f.setSecrets(t)
	var calls []string
	steps := f.steps(t, &calls)
	// The images reach the registry but not moto's ECR API, as if ECR had
	// lost them since: runMigration's check of the docsvc image fails.
	steps.push = pushImages
	steps.migrate = runMigration
	err := f.deploy(t, steps)
	if err == nil || !strings.Contains(err.Error(), "migrat") || !strings.Contains(err.Error(), "The acme-docs-services stack was not touched") {
		t.Fatalf("got %v\nstdout:\n%s\nstderr:\n%s", err, f.stdout.String(), f.stderr.String())
	}
	t.Logf("the failure: %v", err)
	if !strings.Contains(err.Error(), "has no image with digest "+f.rel.DocsvcDigest) {
		t.Errorf("the error does not give the migration's reason: %v", err)
	}
	if f.stackExistsNow(t, "services") {
		t.Error("the services stack was created after the migration failed")
	}
	if _, ok := parameter(t, f.a, migratedMarkerPath(f.dc, f.rel.DocsvcDigest)); ok {
		t.Error("the migrated marker was written")
	}
	for _, c := range calls {
		if strings.HasPrefix(c, "wait") {
			t.Error("deploy waited for services after the migration failed")
		}
	}
}

// Preflight failures stop the deploy before anything is created; the
// plan needs confirmation without --yes.
func TestDeployPreflightAndConfirmation(t *testing.T) {
	t.Parallel()
	f := newDeployFixture(t)
	var calls []string
	// Not bootstrapped: preflight's cdk-bootstrap check fails.
	f.srv.PutParameter(t, "/cdk-bootstrap/hnb659fds/version", "3", false)
	err := f.deploy(t, f.steps(t, &calls))
	if err == nil || !strings.Contains(err.Error(), "preflight: 1 of") || !strings.Contains(f.stdout.String(), "fix: tetherctl bootstrap") {
		t.Fatalf("got %v\n%s", err, f.stdout.String())
	}
	if f.stackExistsNow(t, "network") {
		t.Error("a stack was created after preflight failed")
	}

	f.srv.PutParameter(t, "/cdk-bootstrap/hnb659fds/version", "21", false)
	f.env.Stdin = strings.NewReader("no\n")
	f.stdout.Reset()
	err = deployWith(releaseContext(t), []string{"--config", f.config, "--cdk-out", f.asm.Dir}, f.env, f.steps(t, &calls))
	if err == nil || !strings.Contains(err.Error(), "not confirmed; nothing was changed") {
		t.Fatalf("declined: %v", err)
	}
	for i, want := range []string{"stack acme-docs-network: create", "stack acme-docs-data: create", "secrets:", "stack acme-docs-images: create",
		"images: into ECR", "stack acme-docs-cluster: create", "migration:", "stack acme-docs-services: create", "wait:"} {
		if !strings.Contains(f.stdout.String(), fmt.Sprintf("%2d. %s", i+1, want)) {
			t.Errorf("the plan lacks step %d %q:\n%s", i+1, want, f.stdout.String())
		}
	}
	if f.stackExistsNow(t, "network") {
		t.Error("a stack was created without confirmation")
	}
}

func parseForm(body []byte) (url.Values, error) { return url.ParseQuery(string(body)) }

// A stack that fails stops the deploy with the stack, the reason and the
// fix; nothing after it runs.
func TestDeployStopsAtAFailingStack(t *testing.T) {
	t.Parallel()
	f := newDeployFixture(t, func(suffix string, tpl map[string]any) {
		if suffix != "images" {
			return
		}
		// A policy moto refuses, as IAM would: its resource is not an ARN.
		tpl["Resources"].(map[string]any)["BrokenPolicy"] = map[string]any{
			"Type": "AWS::IAM::ManagedPolicy",
			"Properties": map[string]any{"PolicyDocument": map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
				"Effect": "Allow", "Action": "ecr:BatchGetImage", "Resource": "not-an-arn"}}}},
		}
	})
	f.setSecrets(t)
	var calls []string
	err := f.deploy(t, f.steps(t, &calls))
	if err == nil || !strings.Contains(err.Error(), "stack acme-docs-images") || !strings.Contains(err.Error(), "not-an-arn") ||
		!strings.Contains(err.Error(), "then run tetherctl deploy again") {
		t.Fatalf("got %v\n%s", err, f.stdout.String())
	}
	t.Logf("the failure: %v", err)
	if len(calls) > 0 || f.stackExistsNow(t, "cluster") {
		t.Errorf("the deploy went on after the images stack failed: %v", calls)
	}
}

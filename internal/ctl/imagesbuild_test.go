package ctl

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codebuild"
	cbtypes "github.com/aws/aws-sdk-go-v2/service/codebuild/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/deployconfig"
)

// What moto's CodeBuild lacks, and how these tests use it: StartBuild
// records a build but runs nothing, and ignores the environment variable
// overrides and the source version; the first BatchGetBuilds reports it
// SUCCEEDED with every phase SUCCEEDED; its logs name no CloudWatch group
// or stream (only an ARN with "null" in both places). So the images a real
// build pushes are put into moto's ECR by the test, tagged with the
// version, as the build's post_build phase pushes them; what tetherctl
// sent is checked on the recorded StartBuild request; a failed build is
// tested on codebuild types.Build values (TestBuildOutcome); and following
// a log is tested on migrate's (TestRunMigration).

const (
	buildProject = "tether-acme-docs-images"
	buildBucket  = "acme-docs-build-sources"
	buildKey     = "source/bundle.zip"
)

type buildFixture struct {
	*imagesFixture
	bundle  string
	content []byte
}

func newBuildFixture(t *testing.T) *buildFixture {
	t.Helper()
	f := &buildFixture{imagesFixture: &imagesFixture{srv: awstest.Start(t), manifests: map[string][]byte{}, mediaTypes: map[string]string{}}}
	f.dc, _ = testDeployment(t, deployconfig.ImagesBuild)
	f.a = testSession(t, f.srv, f.dc)
	ctx := context.Background()
	s3c := f.srv.S3() // the test may use S3; tetherctl may not
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(buildBucket)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(buildBucket),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	_, err := codebuild.NewFromConfig(f.srv.AWSConfig()).CreateProject(ctx, &codebuild.CreateProjectInput{
		Name:        aws.String(buildProject),
		Source:      &cbtypes.ProjectSource{Type: cbtypes.SourceTypeS3, Location: aws.String(buildBucket + "/" + buildKey)},
		Artifacts:   &cbtypes.ProjectArtifacts{Type: cbtypes.ArtifactsTypeNoArtifacts},
		Environment: &cbtypes.ProjectEnvironment{Type: cbtypes.EnvironmentTypeLinuxContainer, Image: aws.String("aws/codebuild/standard:7.0"), ComputeType: cbtypes.ComputeTypeBuildGeneral1Medium},
		ServiceRole: aws.String("arn:aws:iam::" + awstest.Account + ":role/tether-acme-docs-build"),
	})
	if err != nil {
		t.Fatal(err)
	}
	createStack(t, f.a, "acme-docs-images", imagesStackTemplate(f.dc, map[string]any{
		"BuildProject": buildProject, "BuildSourceLocation": "s3://" + buildBucket + "/" + buildKey,
	}), nil)
	f.bundle, f.content = writeBundle(t)
	return f
}

// built records what a build of version would push to ECR, returning the
// two digests.
func (f *buildFixture) built(t *testing.T, version string) (docsvc, agent string) {
	t.Helper()
	for _, p := range []struct {
		name string
		dst  *string
	}{{"docsvc", &docsvc}, {"agent", &agent}} {
		*p.dst, _, _ = recordInECR(t, f.srv, "acme-docs/"+p.name, version)
	}
	return docsvc, agent
}

func TestPushImagesBuild(t *testing.T) {
	t.Parallel()
	f := newBuildFixture(t)
	docsvc, agent := f.built(t, "1.4.0")
	env, _, stderr := testEnv()
	rep, err := pushImagesReport(releaseContext(t), env, f.a, f.dc, releaseImages{Version: "1.4.0"}, imageOptions{SourceBundle: f.bundle})
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if len(rep.Images) != 2 || rep.Images[0].Digest != docsvc || rep.Images[1].Digest != agent || rep.Images[0].Action != "built" ||
		rep.Build == nil || rep.Build.Status != "SUCCEEDED" || rep.Build.SourceVersion == "" {
		t.Fatalf("report %+v %+v", rep, rep.Build)
	}
	if p, ok := parameter(t, f.a, agentMarkerPath(f.dc, agent)); !ok || aws.ToString(p.Value) != agent {
		t.Errorf("agent marker: %v %+v", ok, p)
	}

	// The bundle is in the bucket, and the build was started on exactly
	// that version of it, with TETHER_VERSION.
	obj, err := f.srv.S3().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(buildBucket), Key: aws.String(buildKey)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(obj.Body)
	if string(got) != string(f.content) || aws.ToString(obj.VersionId) != rep.Build.SourceVersion {
		t.Errorf("uploaded %q version %s; report says %s", got, aws.ToString(obj.VersionId), rep.Build.SourceVersion)
	}
	var start struct {
		ProjectName, SourceVersion   string
		EnvironmentVariablesOverride []struct{ Name, Value, Type string }
	}
	for _, r := range f.srv.Requests() {
		if strings.HasSuffix(r.Target, ".StartBuild") {
			if err := json.Unmarshal(r.Body, &start); err != nil {
				t.Fatal(err)
			}
		}
	}
	if start.ProjectName != buildProject || start.SourceVersion != rep.Build.SourceVersion || len(start.EnvironmentVariablesOverride) != 1 ||
		start.EnvironmentVariablesOverride[0].Name != "TETHER_VERSION" || start.EnvironmentVariablesOverride[0].Value != "1.4.0" {
		t.Errorf("StartBuild sent %+v", start)
	}
	if !strings.Contains(stderr.String(), "agent "+agent+": built into "+ecrHost+"/acme-docs/agent") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

func TestPushImagesBuildRefuses(t *testing.T) {
	t.Parallel()
	t.Run("the build is not the release's", func(t *testing.T) {
		t.Parallel()
		f := newBuildFixture(t)
		docsvc, agent := f.built(t, "1.4.0")
		want := "sha256:" + strings.Repeat("1", 64)
		env, _, _ := testEnv()
		err := pushImages(releaseContext(t), env, f.a, f.dc, releaseImages{Version: "1.4.0", DocsvcDigest: want, AgentDigest: agent}, imageOptions{SourceBundle: f.bundle})
		if err == nil || !strings.Contains(err.Error(), "with digest "+docsvc+", but the release names "+want) {
			t.Fatalf("err = %v", err)
		}
		f.noMarker(t, agent)
	})
	t.Run("the build pushed nothing", func(t *testing.T) {
		t.Parallel()
		f := newBuildFixture(t)
		env, _, _ := testEnv()
		err := pushImages(releaseContext(t), env, f.a, f.dc, releaseImages{Version: "1.4.0"}, imageOptions{SourceBundle: f.bundle})
		if err == nil || !strings.Contains(err.Error(), "ECR repository acme-docs/docsvc has no image tagged 1.4.0") {
			t.Fatalf("err = %v", err)
		}
		if called(f.srv, ".PutParameter") {
			t.Error("a marker was written")
		}
	})
	t.Run("no AWS CLI", func(t *testing.T) {
		t.Parallel()
		f := newBuildFixture(t)
		getenv, empty := f.a.getenv, t.TempDir()
		f.a.getenv = func(k string) string {
			if k == "PATH" {
				return empty
			}
			return getenv(k)
		}
		env, _, _ := testEnv()
		err := pushImages(releaseContext(t), env, f.a, f.dc, releaseImages{Version: "1.4.0"}, imageOptions{SourceBundle: f.bundle})
		if err == nil || !strings.Contains(err.Error(), "AWS CLI (aws s3api put-object), which is not on PATH") {
			t.Fatalf("err = %v", err)
		}
		if called(f.srv, ".StartBuild") {
			t.Error("a build was started")
		}
	})
	t.Run("no source bundle", func(t *testing.T) {
		t.Parallel()
		f := newBuildFixture(t)
		env, _, _ := testEnv()
		for _, opt := range []imageOptions{{}, {SourceBundle: os.TempDir()}, {SourceBundle: f.bundle + ".missing"}} {
			err := pushImages(releaseContext(t), env, f.a, f.dc, releaseImages{Version: "1.4.0"}, opt)
			if err == nil || !IsUsage(err) || !strings.Contains(err.Error(), "--source-bundle") {
				t.Errorf("%+v: err = %v", opt, err)
			}
		}
		if called(f.srv, ".StartBuild") {
			t.Error("a build was started")
		}
	})
}

func TestBuildOutcome(t *testing.T) {
	t.Parallel()
	if err := buildOutcome(cbtypes.Build{Id: aws.String("p:1"), BuildStatus: cbtypes.StatusTypeSucceeded}); err != nil {
		t.Fatal(err)
	}
	err := buildOutcome(cbtypes.Build{Id: aws.String("p:2"), BuildStatus: cbtypes.StatusTypeFailed, Phases: []cbtypes.BuildPhase{
		{PhaseType: cbtypes.BuildPhaseTypePreBuild, PhaseStatus: cbtypes.StatusTypeSucceeded},
		{PhaseType: cbtypes.BuildPhaseTypeBuild, PhaseStatus: cbtypes.StatusTypeFailed, Contexts: []cbtypes.PhaseContext{
			{StatusCode: aws.String("COMMAND_EXECUTION_ERROR"), Message: aws.String("Error while executing command: docker build -f build/docsvc.Dockerfile. Reason: exit status 1")}}},
	}})
	for _, want := range []string{"p:2 ended FAILED", "BUILD FAILED: Error while executing command: docker build", "no image was recorded"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "PRE_BUILD") {
		t.Errorf("a succeeded phase is reported: %v", err)
	}
}

package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codebuild"
	cbtypes "github.com/aws/aws-sdk-go-v2/service/codebuild/types"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// images.source build: the vendor's source bundle is uploaded to the
// images stack's bucket and its CodeBuild project builds and pushes both
// images inside the customer's account, tagged with the release version.
// The digests are then read back from ECR by that tag.

// Time limits of a build: the upload, and the build itself (the project's
// own timeout is 60 minutes, plus time in CodeBuild's queue).
const (
	uploadTimeout = 15 * time.Minute
	buildTimeout  = 90 * time.Minute
)

// buildResult is what --output json says about a CodeBuild run.
type buildResult struct {
	Project        string `json:"project"`
	ID             string `json:"id,omitempty"`
	Status         string `json:"status,omitempty"`
	SourceLocation string `json:"source_location"`
	SourceVersion  string `json:"source_version,omitempty"` // the bundle's S3 object version
}

func buildImages(ctx context.Context, env Env, a *awsSession, cfg *deployconfig.Config, rel releaseImages, opt imageOptions,
	stack stackInfo, repos map[string]string,
) (*buildResult, []imageResult, error) {
	if opt.SourceBundle == "" {
		return nil, nil, fmt.Errorf("%w: images.source is build, so the images are built from the vendor's source bundle: pass --source-bundle FILE", errUsage)
	}
	project, err := stack.output("BuildProject")
	if err != nil {
		return nil, nil, err
	}
	loc, err := stack.output("BuildSourceLocation")
	if err != nil {
		return nil, nil, err
	}
	res := &buildResult{Project: project, SourceLocation: loc}
	bucket, key, err := parseS3Location(loc)
	if err != nil {
		return res, nil, fmt.Errorf("the %s stack's BuildSourceLocation %w: run tetherctl deploy", stack.Name, err)
	}

	f, err := os.Open(opt.SourceBundle)
	if err != nil {
		return res, nil, fmt.Errorf("%w: --source-bundle: %w", errUsage, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return res, nil, fmt.Errorf("%w: --source-bundle %s: not a regular file; give the source bundle file the vendor published for %s", errUsage, opt.SourceBundle, rel.Version)
	}
	fmt.Fprintf(env.Stderr, "uploading %s (%s) to %s\n", opt.SourceBundle, byteCount(fi.Size()), loc)
	if res.SourceVersion, err = uploadBundle(ctx, a, cfg, opt.SourceBundle, bucket, key); err != nil {
		return res, nil, err
	}

	in := &codebuild.StartBuildInput{
		ProjectName: aws.String(project),
		EnvironmentVariablesOverride: []cbtypes.EnvironmentVariable{
			{Name: aws.String("TETHER_VERSION"), Value: aws.String(rel.Version), Type: cbtypes.EnvironmentVariableTypePlaintext},
		},
	}
	if res.SourceVersion != "" {
		// Exactly the bundle just uploaded, whatever else lands there.
		in.SourceVersion = aws.String(res.SourceVersion)
	}
	sctx, cancel := callCtx(ctx)
	started, err := a.CodeBuild().StartBuild(sctx, in)
	cancel()
	if err != nil {
		return res, nil, fmt.Errorf("starting the image build (CodeBuild StartBuild %s): %s", project, describeAWSError(err))
	}
	res.ID = aws.ToString(started.Build.Id)
	fmt.Fprintf(env.Stderr, "build %s started for %s\n", res.ID, rel.Version)

	b, tail, err := waitBuild(ctx, env, a, res.ID)
	if b != nil {
		res.Status = string(b.BuildStatus)
	}
	if err != nil {
		return res, nil, err
	}
	if err := buildOutcome(*b); err != nil {
		return res, nil, fmt.Errorf("%w; %s", err, tail.lastLines())
	}

	var images []imageResult
	for _, img := range []struct{ name, want string }{{"docsvc", rel.DocsvcDigest}, {"agent", rel.AgentDigest}} {
		repo := cfg.Name + "/" + img.name
		dctx, cancel := callCtx(ctx)
		out, err := a.ECR().DescribeImages(dctx, &ecr.DescribeImagesInput{
			RepositoryName: aws.String(repo),
			ImageIds:       []ecrtypes.ImageIdentifier{{ImageTag: aws.String(rel.Version)}},
		})
		cancel()
		var notFound *ecrtypes.ImageNotFoundException
		var details []ecrtypes.ImageDetail
		switch {
		case errors.As(err, &notFound):
		case err != nil:
			return res, images, fmt.Errorf("reading the built %s image from ECR (ECR DescribeImages %s:%s): %s", img.name, repo, rel.Version, describeAWSError(err))
		default:
			details = out.ImageDetails
		}
		d, err := builtDigest(repo, rel.Version, img.want, details)
		if err != nil {
			return res, images, err
		}
		images = append(images, imageResult{Name: img.name, Digest: d, Repository: repos[img.name], Action: "built"})
		fmt.Fprintf(env.Stderr, "%s %s: built into %s\n", img.name, d, repos[img.name])
	}
	return res, images, nil
}

// s3BucketName is the shape of an S3 bucket name.
var s3BucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// parseS3Location splits s3://BUCKET/KEY, refusing anything the AWS CLI
// could read as an option or another location.
func parseS3Location(loc string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(loc, "s3://")
	if ok {
		bucket, key, ok = strings.Cut(rest, "/")
	}
	if !ok || !s3BucketName.MatchString(bucket) || key == "" || strings.HasPrefix(key, "-") || len(key) > 1024 || strings.ContainsAny(key, "\x00\r\n") {
		return "", "", fmt.Errorf("%q is not s3://BUCKET/KEY", loc)
	}
	return bucket, key, nil
}

// uploadBundle puts the bundle at s3://bucket/key with the operator's AWS
// CLI and returns the object's version.
func uploadBundle(ctx context.Context, a *awsSession, cfg *deployconfig.Config, path, bucket, key string) (version string, err error) {
	if path, err = filepath.Abs(path); err != nil {
		return "", fmt.Errorf("%w: --source-bundle: %w", errUsage, err)
	}
	return putObjectWithCLI(ctx, a, cfg.Region, path, bucket, key, "images.source build uploads the source bundle", "the source bundle")
}

// putObjectWithCLI puts the file at path (absolute, so that it cannot read
// as one of the CLI's options) at s3://bucket/key with the operator's AWS
// CLI (aws s3api put-object, same credentials, region and endpoint
// settings) and returns the object's version. tetherctl does not link
// the S3 SDK, so that it cannot read the documents bucket
// (cmd/tetherctl's TestNoDocumentPackages); its writes are the CLI's.
// who says who needs the upload, what names the file, for messages.
func putObjectWithCLI(ctx context.Context, a *awsSession, region, path, bucket, key, who, what string) (version string, err error) {
	cli, err := lookPath(a.getenv("PATH"), "aws")
	if err != nil {
		return "", fmt.Errorf("%s with the AWS CLI (aws s3api put-object), which is not on PATH: install it (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html) and run the command again", who)
	}
	args := []string{"s3api", "put-object", "--bucket", bucket, "--key", key, "--body", path, "--region", region, "--output", "json"}
	if a.profile != "" {
		args = append(args, "--profile", a.profile)
	}
	ctx, cancel := context.WithTimeout(ctx, uploadTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Env = cliEnv(a.getenv)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		why := oneLine(stderr.String())
		if len(why) > 500 {
			why = why[:500] + "..."
		}
		if ctx.Err() != nil {
			why = "no answer within " + uploadTimeout.String()
		}
		return "", fmt.Errorf("uploading %s to s3://%s/%s (%s s3api put-object): %v: %s", what, bucket, key, cli, err, why)
	}
	var out struct{ VersionId string }
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return "", fmt.Errorf("uploading %s to s3://%s/%s: the AWS CLI's answer is not JSON: %v", what, bucket, key, err)
	}
	return out.VersionId, nil
}

// cliEnv is the environment the AWS CLI gets: the variables that say
// which credentials, profile, endpoint and proxy to use, as tetherctl read
// them, and nothing else.
func cliEnv(getenv func(string) string) []string {
	var out []string
	for _, k := range []string{
		"PATH", "HOME", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
		"AWS_CA_BUNDLE", "AWS_EC2_METADATA_DISABLED", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
		"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
	} {
		if v := getenv(k); v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// waitBuild polls the build until it ends, printing phase changes and
// its CloudWatch log as it grows.
func waitBuild(ctx context.Context, env Env, a *awsSession, id string) (*cbtypes.Build, *logTail, error) {
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	cb := a.CodeBuild()
	var tail *logTail
	phase := ""
	for delay := time.Duration(0); ; {
		if err := sleep(ctx, delay); err != nil {
			return nil, tail, fmt.Errorf("the build %s did not finish within %s: follow it in the CodeBuild console and run tetherctl images push again when it has ended", id, buildTimeout)
		}
		delay = nextPoll(delay)
		cctx, ccancel := callCtx(ctx)
		out, err := cb.BatchGetBuilds(cctx, &codebuild.BatchGetBuildsInput{Ids: []string{id}})
		ccancel()
		if err != nil {
			return nil, tail, fmt.Errorf("following the build %s (CodeBuild BatchGetBuilds): %s", id, describeAWSError(err))
		}
		if len(out.Builds) == 0 {
			return nil, tail, fmt.Errorf("following the build %s (CodeBuild BatchGetBuilds): CodeBuild does not know it", id)
		}
		b := out.Builds[0]
		if p := aws.ToString(b.CurrentPhase); p != phase {
			fmt.Fprintf(env.Stderr, "build %s: %s\n", id, p)
			phase = p
		}
		if tail == nil && b.Logs != nil && aws.ToString(b.Logs.GroupName) != "" && aws.ToString(b.Logs.StreamName) != "" {
			tail = &logTail{client: a.Logs(), group: aws.ToString(b.Logs.GroupName), stream: aws.ToString(b.Logs.StreamName), w: env.Stderr, prefix: "  build| "}
		}
		if tail != nil {
			if err := tail.poll(ctx); err != nil {
				fmt.Fprintf(env.Stderr, "warning: %v\n", err)
			}
		}
		if b.BuildStatus != cbtypes.StatusTypeInProgress {
			return &b, tail, nil
		}
	}
}

// buildOutcome accepts a build that SUCCEEDED and explains any other end.
func buildOutcome(b cbtypes.Build) error {
	if b.BuildStatus == cbtypes.StatusTypeSucceeded {
		return nil
	}
	var why []string
	for _, p := range b.Phases {
		if p.PhaseStatus != "" && p.PhaseStatus != cbtypes.StatusTypeSucceeded {
			for _, c := range p.Contexts {
				why = append(why, fmt.Sprintf("%s %s: %s", p.PhaseType, p.PhaseStatus, oneLine(aws.ToString(c.Message))))
			}
		}
	}
	detail := ""
	if len(why) > 0 {
		detail = " (" + strings.Join(why, "; ") + ")"
	}
	return fmt.Errorf("the image build %s ended %s%s: no image was recorded; fix the cause and run tetherctl images push again",
		aws.ToString(b.Id), b.BuildStatus, detail)
}

// builtDigest is the digest of the image the build pushed with the
// release's tag, which must equal the release's digest when the release
// names one.
func builtDigest(repo, tag, want string, details []ecrtypes.ImageDetail) (string, error) {
	var got []string
	for _, d := range details {
		got = append(got, aws.ToString(d.ImageDigest))
	}
	switch {
	case len(got) == 0:
		return "", fmt.Errorf("the build succeeded but ECR repository %s has no image tagged %s: check the build's log (its post_build phase pushes the images)", repo, tag)
	case len(got) > 1:
		return "", fmt.Errorf("ECR repository %s has %d images tagged %s (%s); a tag should name one image", repo, len(got), tag, strings.Join(got, ", "))
	case checkDigest("ECR's digest for "+repo+":"+tag, got[0]) != nil:
		return "", fmt.Errorf("ECR repository %s answered %q for the digest of %s, which is not a sha256 digest", repo, got[0], tag)
	case want != "" && got[0] != want:
		return "", fmt.Errorf("the build of %s pushed %s:%s with digest %s, but the release names %s: the build did not reproduce the vendor's image; nothing was recorded. Report it to the vendor", tag, repo, tag, got[0], want)
	}
	return got[0], nil
}

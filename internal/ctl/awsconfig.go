package ctl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/bedrock"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/codebuild"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// retryMaxBackoff caps the wait between retries of one AWS call.
const retryMaxBackoff = time.Second

// awsSettings are the AWS CLI's own flags, which tetherctl takes the same way.
type awsSettings struct {
	Profile string // --profile
	Region  string // --region
}

// awsSession is the AWS configuration one command uses. Its clients always
// address deployment.yaml's region; Region and RegionSource record the
// region the operator's own settings name, which must be the same.
type awsSession struct {
	cfg          aws.Config
	getenv       func(string) string
	now          func() time.Time
	profile      string // --profile, for the AWS CLI when tetherctl runs it
	Region       string // what --region, the environment or the profile name
	RegionSource string // where Region came from, for messages
}

// loadAWS resolves the AWS configuration the way the AWS CLI and SDK do:
// --profile, then access keys in the environment, then AWS_PROFILE and the
// shared files; --region, then AWS_REGION or AWS_DEFAULT_REGION, then the
// profile's region, then deployment.yaml's. Everything it reads from the
// environment it reads through getenv, and passes to the SDK as explicit
// options, so a caller's environment (a test's) is the one that counts.
// Nothing here contacts AWS: credentials are fetched by the first call.
func loadAWS(ctx context.Context, env Env, s awsSettings, dc *deployconfig.Config) (*awsSession, error) {
	getenv := env.Getenv
	var opts []func(*config.LoadOptions) error
	keyID := firstEnv(getenv, "AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY")
	secret := firstEnv(getenv, "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY")
	switch profile := firstEnv(getenv, "AWS_PROFILE", "AWS_DEFAULT_PROFILE"); {
	case s.Profile != "":
		opts = append(opts, config.WithSharedConfigProfile(s.Profile))
	case keyID != "" && secret != "":
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(keyID, secret, getenv("AWS_SESSION_TOKEN"))))
	case profile != "":
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	if f := getenv("AWS_CONFIG_FILE"); f != "" {
		opts = append(opts, config.WithSharedConfigFiles([]string{f}))
	}
	if f := getenv("AWS_SHARED_CREDENTIALS_FILE"); f != "" {
		opts = append(opts, config.WithSharedCredentialsFiles([]string{f}))
	}
	if strings.EqualFold(getenv("AWS_EC2_METADATA_DISABLED"), "true") {
		opts = append(opts, config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	// An operator waits at the terminal: retry as the SDK does (3 attempts),
	// but back off at most a second rather than 20, so an unreachable
	// endpoint is reported within the commands' time limits.
	opts = append(opts, config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxBackoff = retryMaxBackoff })
	}))
	if base := getenv("AWS_ENDPOINT_URL"); base != "" && !ignoreEndpoints(getenv) {
		opts = append(opts, config.WithBaseEndpoint(base))
	}

	sess := &awsSession{getenv: getenv, now: env.Now, profile: s.Profile}
	switch {
	case s.Region != "":
		sess.Region, sess.RegionSource = s.Region, "--region"
	case getenv("AWS_REGION") != "":
		sess.Region, sess.RegionSource = getenv("AWS_REGION"), "AWS_REGION"
	case getenv("AWS_DEFAULT_REGION") != "":
		sess.Region, sess.RegionSource = getenv("AWS_DEFAULT_REGION"), "AWS_DEFAULT_REGION"
	}
	if sess.Region != "" {
		opts = append(opts, config.WithRegion(sess.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		if s.Profile != "" {
			return nil, fmt.Errorf("--profile %s: %v; name a profile from your AWS config (aws configure list-profiles)", s.Profile, err)
		}
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	switch {
	case sess.Region != "":
	case cfg.Region != "":
		sess.Region, sess.RegionSource = cfg.Region, "the AWS profile"
	default:
		sess.Region, sess.RegionSource = dc.Region, "deployment.yaml"
	}
	cfg.Region = dc.Region
	sess.cfg = cfg
	return sess, nil
}

// regionMismatch explains, or returns "", when the operator's AWS settings
// name another region than the deployment's.
func (a *awsSession) regionMismatch(dc *deployconfig.Config) string {
	if a.Region == dc.Region {
		return ""
	}
	return fmt.Sprintf("the AWS region from %s is %s but deployment.yaml's region is %s", a.RegionSource, a.Region, dc.Region)
}

func firstEnv(getenv func(string) string, names ...string) string {
	for _, n := range names {
		if v := getenv(n); v != "" {
			return v
		}
	}
	return ""
}

func ignoreEndpoints(getenv func(string) string) bool {
	return strings.EqualFold(getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true")
}

// serviceEndpoint is AWS_ENDPOINT_URL_<SERVICE> (the SDK's service ID in
// upper case, spaces as underscores), which wins over AWS_ENDPOINT_URL.
func (a *awsSession) serviceEndpoint(service string) *string {
	if ignoreEndpoints(a.getenv) {
		return nil
	}
	if v := a.getenv("AWS_ENDPOINT_URL_" + service); v != "" {
		return aws.String(v)
	}
	return nil
}

// The clients, each honouring its own endpoint variable.

func (a *awsSession) STS() *sts.Client {
	return sts.NewFromConfig(a.cfg, func(o *sts.Options) { setEndpoint(&o.BaseEndpoint, a.serviceEndpoint("STS")) })
}

func (a *awsSession) EC2() *ec2.Client {
	return ec2.NewFromConfig(a.cfg, func(o *ec2.Options) { setEndpoint(&o.BaseEndpoint, a.serviceEndpoint("EC2")) })
}

func (a *awsSession) ServiceQuotas() *servicequotas.Client {
	return servicequotas.NewFromConfig(a.cfg, func(o *servicequotas.Options) {
		setEndpoint(&o.BaseEndpoint, a.serviceEndpoint("SERVICE_QUOTAS"))
	})
}

func (a *awsSession) SSM() *ssm.Client {
	return ssm.NewFromConfig(a.cfg, func(o *ssm.Options) { setEndpoint(&o.BaseEndpoint, a.serviceEndpoint("SSM")) })
}

func (a *awsSession) ACM() *acm.Client {
	return acm.NewFromConfig(a.cfg, func(o *acm.Options) { setEndpoint(&o.BaseEndpoint, a.serviceEndpoint("ACM")) })
}

func (a *awsSession) Route53() *route53.Client {
	return route53.NewFromConfig(a.cfg, func(o *route53.Options) { setEndpoint(&o.BaseEndpoint, a.serviceEndpoint("ROUTE_53")) })
}

func (a *awsSession) SecretsManager() *secretsmanager.Client {
	return secretsmanager.NewFromConfig(a.cfg, func(o *secretsmanager.Options) {
		setEndpoint(&o.BaseEndpoint, a.serviceEndpoint("SECRETS_MANAGER"))
	})
}

func (a *awsSession) CloudFormation() *cloudformation.Client {
	return cloudformation.NewFromConfig(a.cfg, func(o *cloudformation.Options) {
		setEndpoint(&o.BaseEndpoint, a.serviceEndpoint("CLOUDFORMATION"))
	})
}

func (a *awsSession) RDS() *rds.Client {
	return rds.NewFromConfig(a.cfg, func(o *rds.Options) { setEndpoint(&o.BaseEndpoint, a.serviceEndpoint("RDS")) })
}

func (a *awsSession) Bedrock() *bedrock.Client {
	return bedrock.NewFromConfig(a.cfg, func(o *bedrock.Options) { setEndpoint(&o.BaseEndpoint, a.serviceEndpoint("BEDROCK")) })
}

func (a *awsSession) ECR() *ecr.Client {
	return ecr.NewFromConfig(a.cfg, func(o *ecr.Options) { setEndpoint(&o.BaseEndpoint, a.serviceEndpoint("ECR")) })
}

func (a *awsSession) ECS() *ecs.Client {
	return ecs.NewFromConfig(a.cfg, func(o *ecs.Options) { setEndpoint(&o.BaseEndpoint, a.serviceEndpoint("ECS")) })
}

func (a *awsSession) CodeBuild() *codebuild.Client {
	return codebuild.NewFromConfig(a.cfg, func(o *codebuild.Options) { setEndpoint(&o.BaseEndpoint, a.serviceEndpoint("CODEBUILD")) })
}

func (a *awsSession) Logs() *cloudwatchlogs.Client {
	return cloudwatchlogs.NewFromConfig(a.cfg, func(o *cloudwatchlogs.Options) {
		setEndpoint(&o.BaseEndpoint, a.serviceEndpoint("CLOUDWATCH_LOGS"))
	})
}

func setEndpoint(dst **string, v *string) {
	if v != nil {
		*dst = v
	}
}

// checkAccount confirms the credentials belong to deployment.yaml's account,
// so nothing is read from or written to another account by mistake.
func (a *awsSession) checkAccount(ctx context.Context, dc *deployconfig.Config) (arn string, err error) {
	id, err := a.STS().GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("checking the AWS credentials (STS GetCallerIdentity): %s", describeAWSError(err))
	}
	if got := aws.ToString(id.Account); got != dc.Account {
		return "", fmt.Errorf("the AWS credentials (%s) are for account %s, but deployment.yaml's account is %s; use credentials for %s (--profile or AWS_PROFILE)",
			aws.ToString(id.Arn), got, dc.Account, dc.Account)
	}
	return aws.ToString(id.Arn), nil
}

// describeAWSError says in one line why an AWS call failed: the service's
// error code and message, or what went wrong on the way (no credentials,
// connection refused, no answer in time). SDK errors nest a dozen layers
// deep; the operator needs the innermost cause and where it happened.
func describeAWSError(err error) string {
	var apiErr smithy.APIError
	var netErr *net.OpError
	var urlErr *url.Error
	switch {
	case errors.As(err, &apiErr):
		msg := apiErr.ErrorMessage()
		if msg == "" {
			return apiErr.ErrorCode()
		}
		return oneLine(apiErr.ErrorCode() + ": " + msg)
	case strings.Contains(err.Error(), "get credentials"):
		return "no usable AWS credentials: " + oneLine(innermost(err).Error()) +
			" (pass --profile, set AWS_PROFILE, or run aws configure)"
	case errors.As(err, &netErr) && !netErr.Timeout():
		// Checked before the deadline: a refused connection that was
		// retried until time ran out was still refused.
		if errors.As(err, &urlErr) {
			return fmt.Sprintf("cannot reach %s: %s", endpointOf(urlErr), oneLine(innermost(netErr).Error()))
		}
		return fmt.Sprintf("cannot reach %v: %s", netErr.Addr, oneLine(innermost(netErr).Error()))
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr):
		if errors.As(err, &urlErr) {
			return "no answer from " + endpointOf(urlErr) + " before the time limit"
		}
		return "no answer before the time limit"
	case errors.As(err, &urlErr):
		return fmt.Sprintf("cannot reach %s: %s", endpointOf(urlErr), oneLine(innermost(urlErr).Error()))
	}
	if answered(err) {
		var respErr *smithyhttp.ResponseError
		errors.As(err, &respErr)
		return fmt.Sprintf("HTTP %d: %s", respErr.HTTPStatusCode(), oneLine(innermost(err).Error()))
	}
	return oneLine(innermost(err).Error())
}

// answered reports whether AWS (or the emulator) sent any HTTP response,
// as opposed to the request never arriving or never being answered.
// The SDK reports a request that was never sent as a ResponseError too,
// with status 0.
func answered(err error) bool {
	var respErr *smithyhttp.ResponseError
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return true
	}
	return errors.As(err, &respErr) && respErr.Response != nil && respErr.Response.Response != nil && respErr.HTTPStatusCode() != 0
}

func endpointOf(e *url.Error) string {
	if u, err := url.Parse(e.URL); err == nil && u.Host != "" {
		return u.Scheme + "://" + u.Host
	}
	return e.URL
}

func innermost(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	sqtypes "github.com/aws/aws-sdk-go-v2/service/servicequotas/types"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// What the stacks in deploy/cdk need, restated here because tetherctl
// cannot import that module. Each names where the stacks decide it.
const (
	// minBootstrapVersion is the CDK bootstrap stack version the
	// synthesized templates require: their CheckBootstrapVersion rule
	// refuses to deploy below 6 (deploy/cdk/testdata/*.template.json).
	minBootstrapVersion = 6
	// defaultQualifier is the CDK's default bootstrap qualifier.
	defaultQualifier = "hnb659fds"
	// minNodeMajor is the oldest Node.js the pinned CDK CLI supports
	// (its package.json: "engines": {"node": ">= 18.0.0"}).
	minNodeMajor = 18
	// Fargate task sizes in vCPU (deploy/cdk/stacks/services.go): the api
	// and worker services roll with up to 200% of their tasks, the agent
	// stops its one task before starting the next, migrate runs once.
	apiTaskVCPU     = 0.5
	workerTaskVCPU  = 1.0
	agentTaskVCPU   = 0.25
	migrateTaskVCPU = 0.25
	// certRenewalWarning is how close to expiry a certificate warns.
	certRenewalWarning = 30 * 24 * time.Hour
)

// Service quota codes (Service Quotas console and API).
var (
	quotaFargateVCPU = quotaRef{service: "fargate", code: "L-3032A538", name: "Fargate On-Demand vCPU resource count"}
	quotaVPCs        = quotaRef{service: "vpc", code: "L-F678F1CE", name: "VPCs per Region"}
	quotaElasticIPs  = quotaRef{service: "ec2", code: "L-0263D0A3", name: "EC2-VPC Elastic IPs"}
	quotaALBs        = quotaRef{service: "elasticloadbalancing", code: "L-53DA6B97", name: "Application Load Balancers per Region"}
)

type quotaRef struct{ service, code, name string }

// preflightChecks is the checklist, in the order it is printed. It is
// also the source of docs/preflight.md.
func preflightChecks() []check {
	return []check{
		{
			ID: "aws-credentials", Title: "AWS credentials and account", AWS: true,
			What: "STS GetCallerIdentity answers with the credentials the AWS CLI would use (--profile, the environment, or the shared config), and their account is deployment.yaml's `account`.",
			Fix:  "Use credentials for the deployment's account: `--profile NAME`, `AWS_PROFILE`, or `aws configure`.",
			run:  checkCredentials,
		},
		{
			ID: "permissions", Title: "Permissions to deploy and operate", AWS: true,
			What: "IAM's policy simulator (SimulatePrincipalPolicy) judges the caller (an assumed role's session as its role) allowed every action docs/iam.md lists, on the deployment's resources: the stacks, the CDK bootstrap roles and bucket, the ECR repositories, the migrate task, the markers and secrets, the logs, and preflight's own reads. FAIL names the actions denied. WARN when the caller may not run the simulator, or is one it cannot simulate (the root user, a federated user).",
			Fix:  "Attach the least-privilege policy in docs/iam.md (ACCOUNT, REGION, NAME and QUALIFIER filled in) to the role or user that deploys.",
			run:  checkPermissions,
		},
		{
			ID: "aws-region", Title: "Region", AWS: true,
			What: "The region from --region, AWS_REGION, AWS_DEFAULT_REGION or the profile is deployment.yaml's `region`, and EC2 DescribeRegions lists that region as enabled for the account.",
			Fix:  "Pass `--region` (or set AWS_REGION) to deployment.yaml's region; enable an opt-in region under Account settings in the AWS console.",
			run:  checkRegion,
		},
		{
			ID: "availability-zones", Title: "Availability zones", AWS: true,
			What: "EC2 DescribeAvailabilityZones reports at least two zones available in the region: the network spans two.",
			Fix:  "Choose a region with at least two available zones.",
			run:  checkZones,
		},
		{
			ID: "existing-vpc", Title: "Existing VPC and subnets", AWS: true,
			When:    "deployment.yaml sets `network.vpc_id`",
			applies: func(dc *deployconfig.Config) bool { return dc.Network.Existing() },
			What:    "EC2 DescribeVpcs finds `network.vpc_id` in the deployment's account and region; DescribeSubnets finds every subnet `network.subnets` lists (public, private, isolated), each in that VPC and in the zone deployment.yaml gives; with `network.create_endpoints`, DescribeRouteTables finds each private and isolated subnet's `route_table_id` in that VPC. FAIL names each wrong id.",
			Fix:     "Correct `network.vpc_id` and `network.subnets` (id, zone, route_table_id) as `aws ec2 describe-subnets --filters Name=vpc-id,Values=VPC` and `aws ec2 describe-route-tables` list them.",
			run:     checkExistingVPC,
		},
		{
			ID: "quota-fargate-vcpu", Title: "Fargate On-Demand vCPU quota", AWS: true,
			What: "Service Quotas' Fargate On-Demand vCPU quota (L-3032A538) covers the api and worker services at full scale plus the agent and the migrate task (api_tasks × 0.5 + worker_max × 1 + 0.5 vCPU). Below that it FAILs; below what a rolling deployment briefly runs (twice the api and worker tasks) it WARNs. It WARNs too when Service Quotas returns no value.",
			Fix:  "Request an increase: `aws service-quotas request-service-quota-increase --service-code fargate --quota-code L-3032A538 --desired-value N`.",
			run:  checkFargateQuota,
		},
		{
			ID: "quota-vpcs", Title: "VPC quota", AWS: true,
			What: "Service Quotas' VPCs per Region quota (L-F678F1CE), less the VPCs that exist (EC2 DescribeVpcs), leaves room for the one VPC the network stack creates. WARN when Service Quotas returns no value.",
			Fix:  "Delete an unused VPC, or request an increase of L-F678F1CE (service code vpc).",
			run:  checkVPCQuota,
		},
		{
			ID: "quota-elastic-ips", Title: "Elastic IP quota", AWS: true,
			What: "Service Quotas' EC2-VPC Elastic IPs quota (L-0263D0A3), less the addresses allocated (EC2 DescribeAddresses), leaves room for the NAT gateways' addresses (one, two with sizing.multi_az). WARN when Service Quotas returns no value.",
			Fix:  "Release an unused Elastic IP, or request an increase of L-0263D0A3 (service code ec2).",
			run:  checkEIPQuota,
		},
		{
			ID: "quota-albs", Title: "Application Load Balancer quota", AWS: true,
			What: "Service Quotas' Application Load Balancers per Region quota (L-53DA6B97) allows the one load balancer the services stack creates (load balancers already in use are not counted). WARN when Service Quotas returns no value.",
			Fix:  "Request an increase of L-53DA6B97 (service code elasticloadbalancing).",
			run:  checkALBQuota,
		},
		{
			ID: "cdk-bootstrap", Title: "CDK bootstrap", AWS: true,
			What: fmt.Sprintf("The SSM parameter `/cdk-bootstrap/<qualifier>/version` exists (the qualifier is deployment.yaml's `cdk.qualifier`, or the CDK's default `%s`) and holds version %d or later, the oldest the stacks' templates accept.", defaultQualifier, minBootstrapVersion),
			Fix:  "`tetherctl bootstrap`, which runs the pinned CDK CLI's `cdk bootstrap aws://ACCOUNT/REGION --qualifier Q`.",
			run:  checkBootstrap,
		},
		{
			ID: "acm-certificate", Title: "TLS certificate", AWS: true,
			When:    "deployment.yaml sets `domain.certificate_arn`",
			applies: func(dc *deployconfig.Config) bool { return dc.Domain.CertificateARN != "" },
			What:    "ACM DescribeCertificate finds the certificate, its status is ISSUED, and its domain name or one of its subject alternative names covers `domain.name` (a wildcard covers one label). WARN when it expires within 30 days.",
			Fix:     "Request (or import) an ACM certificate for `domain.name` in the deployment's region, complete its validation, and set `domain.certificate_arn` to it.",
			run:     checkCertificate,
		},
		{
			ID: "hosted-zone", Title: "Route 53 hosted zone", AWS: true,
			When:    "deployment.yaml sets `domain.hosted_zone`",
			applies: func(dc *deployconfig.Config) bool { return dc.Domain.HostedZone != nil },
			What:    "Route 53 GetHostedZone finds `domain.hosted_zone.id`, a public zone whose name is `domain.hosted_zone.name` (the stack validates its certificate there).",
			Fix:     "Set `domain.hosted_zone` to the ID and name of the public zone that holds `domain.name` (`aws route53 list-hosted-zones`).",
			run:     checkHostedZone,
		},
		{
			ID: "bedrock-model", Title: "Bedrock model access", AWS: true,
			When:    "`ai.provider` is bedrock",
			applies: func(dc *deployconfig.Config) bool { return dc.AI.Provider == deployconfig.AIBedrock },
			What:    "Bedrock GetFoundationModel finds `ai.model` in the deployment's region, and GetFoundationModelAvailability says the account may use it (authorized, entitled, agreement accepted). WARN when the agreement is still pending, when the model is legacy, or when the caller may not ask for the availability.",
			Fix:     "Request access to the model in the Bedrock console (Model access) in the deployment's region, or set `ai.model` to one the account has access to (`aws bedrock list-foundation-models`).",
			run:     checkBedrockModel,
		},
		{
			ID: "secret-license", Title: "License secret", AWS: true,
			What: "`tether/<name>/license` holds a license that verifies against deployment.yaml's `license.public_key` and is not expired past its grace (WARN in grace, or when it does not include `plane.channel`). Before the data stack is deployed, a missing secret is a WARN: the stack creates it.",
			Fix:  "After the data stack is deployed: `tetherctl secrets set license --from-file license.json`.",
			run:  secretCheck(kindLicense),
		},
		{
			ID: "secret-ai", Title: "AI provider key secret", AWS: true,
			When:    "`ai.provider` is openai or anthropic",
			applies: (*deployconfig.Config).WorkerNeedsInternet,
			What:    "`tether/<name>/ai` holds one token with no whitespace, with the provider's prefix where it has one (sk-ant- for Anthropic's API, sk- for OpenAI's). Before the data stack is deployed, a missing secret is a WARN.",
			Fix:     "After the data stack is deployed: `tetherctl secrets set ai`.",
			run:     secretCheck(kindAI),
		},
		{
			ID: "secret-agent-identity", Title: "Agent identity secret", AWS: true,
			What: "`tether/<name>/agent-identity` is empty (the agent creates its key on first start) or holds the key the agent wrote.",
			Fix:  "Report it to the vendor: the agent writes this secret itself, and tetherctl does not set it.",
			run:  secretCheck(kindAgentIdentity),
		},
		{
			ID: "secret-database", Title: "Database secret", AWS: true,
			What: "The secret RDS keeps the database password in (named by the data stack's `DatabaseSecretArn` output), once the data stack exists, has a value and RDS's 7-day rotation turned on (checked from its metadata; the password is never read).",
			Fix:  "Redeploy the data stack (tetherctl deploy), whose database has RDS manage its password and that secret.",
			run:  secretCheck(kindDatabase),
		},
		{
			ID: "plane-reachable", Title: "Vendor plane reachable",
			What: "An HTTPS GET of `plane.url` gets any HTTP answer (HTTPS_PROXY and NO_PROXY are honoured). Passes without a request when `plane.url` is empty (air-gapped).",
			Fix:  "Allow outbound HTTPS to the plane's host; the agent needs the same from the VPC through its NAT gateway.",
			run:  checkPlane,
		},
		{
			ID: "release-images", Title: "Release images in the vendor registry",
			When: "`images.source` is build, or vendor with `images.docsvc_digest` or `agent_digest` set",
			applies: func(dc *deployconfig.Config) bool {
				return dc.Images.Source == deployconfig.ImagesBuild || dc.Images.DocsvcDigest != "" || dc.Images.AgentDigest != ""
			},
			What: "A registry HEAD of `<images.vendor_registry>/docsvc@<docsvc_digest>` and `<images.vendor_registry>/agent@<agent_digest>`, over the same transport and with the same `docker login` credentials `tetherctl images push` copies them with, finds each image at exactly that digest. FAIL names the image and the registry's answer: missing, unauthorized, or unreachable. With images.source build it passes without a request: the images are built in the account.",
			Fix:  "Check `images.vendor_registry` and the release's digests; `docker login REGISTRY` with the credentials the vendor gave you; allow outbound HTTPS to the registry.",
			run:  checkReleaseImages,
		},
		{
			ID: "nodejs", Title: "Node.js",
			What: fmt.Sprintf("`node --version` on PATH reports %d or newer, which the CDK CLI needs.", minNodeMajor),
			Fix:  fmt.Sprintf("Install Node.js %d or newer.", minNodeMajor),
			run:  checkNode,
		},
		{
			ID: "cdk-cli", Title: "CDK CLI",
			What: "The CDK CLI pinned in `tools/package.json` is installed at `tools/node_modules/.bin/cdk`, at exactly the pinned version (--tools-dir names another directory).",
			Fix:  "From the repository root: `npm ci --prefix tools`.",
			run:  checkCDK,
		},
	}
}

// awsFailure is the verdict for an AWS call that did not work: a service
// error needs a permission or a setting; no answer needs a network path.
func awsFailure(call string, err error) verdict {
	fix := "check the network path to AWS (VPN, proxy, firewall) and any AWS_ENDPOINT_URL setting"
	if answered(err) {
		fix = "grant the credentials the permission the error names, or fix what it names"
	}
	return fail(fix, "%s: %s", call, describeAWSError(err))
}

func checkPermissions(ctx context.Context, p *preflight) verdict {
	id, err := p.aws.STS().GetCallerIdentity(ctx, nil)
	if err != nil {
		return awsFailure("STS GetCallerIdentity", err)
	}
	c := p.aws.iamClient()
	principal, why := simulationARN(ctx, c, aws.ToString(id.Arn))
	if why != "" {
		return warn("compare the caller's permissions with docs/iam.md by hand", "cannot simulate: %s", why)
	}
	denied, err := simulatePermissions(ctx, c, principal, p.dc)
	switch {
	case err != nil && isAccessDenied(err):
		return warn("allow the caller iam:SimulatePrincipalPolicy on itself (statement PreflightSimulate in docs/iam.md) to have this checked, or compare its permissions with docs/iam.md by hand",
			"%s may not run IAM's policy simulator: %s", principal, describeAWSError(err))
	case err != nil && answered(err):
		return warn("compare the caller's permissions with docs/iam.md by hand",
			"IAM's policy simulator did not judge %s: %s", principal, describeAWSError(err))
	case err != nil:
		return awsFailure("IAM SimulatePrincipalPolicy", err)
	case len(denied) > 0:
		const shown = 6
		var list []string
		for i, d := range denied {
			if i == shown {
				list = append(list, fmt.Sprintf("and %d more", len(denied)-shown))
				break
			}
			list = append(list, fmt.Sprintf("%s on %s (%s)", d.Action, d.Resource, d.Decision))
		}
		return fail("", "%s is denied %d of the actions docs/iam.md lists: %s", principal, len(denied), strings.Join(list, "; "))
	}
	n := 0
	for _, perm := range permissionsFor(p.dc) {
		n += len(perm.Actions)
	}
	return pass("%s may do all %d actions docs/iam.md lists, as IAM's policy simulator judges", principal, n)
}

func checkCredentials(ctx context.Context, p *preflight) verdict {
	id, err := p.aws.STS().GetCallerIdentity(ctx, nil)
	if err != nil {
		v := awsFailure("STS GetCallerIdentity", err)
		if !answered(err) && !errors.Is(err, context.DeadlineExceeded) && strings.Contains(v.Detail, "credentials") {
			v.Fix = "configure credentials for the deployment's account: --profile NAME, AWS_PROFILE, or aws configure"
		}
		return v
	}
	account, arn := aws.ToString(id.Account), aws.ToString(id.Arn)
	if account != p.dc.Account {
		return fail(fmt.Sprintf("use credentials for account %s: --profile NAME or AWS_PROFILE", p.dc.Account),
			"the credentials (%s) are for account %s, but deployment.yaml's account is %s", arn, account, p.dc.Account)
	}
	return pass("%s in account %s", arn, account)
}

func checkRegion(ctx context.Context, p *preflight) verdict {
	out, err := p.aws.EC2().DescribeRegions(ctx, &ec2.DescribeRegionsInput{AllRegions: aws.Bool(true)})
	if err != nil {
		return awsFailure("EC2 DescribeRegions", err)
	}
	var found *ec2types.Region
	for i, r := range out.Regions {
		if aws.ToString(r.RegionName) == p.dc.Region {
			found = &out.Regions[i]
		}
	}
	switch {
	case found == nil:
		return fail("set region in deployment.yaml to a commercial region this account can use",
			"EC2 does not know region %s", p.dc.Region)
	case aws.ToString(found.OptInStatus) == "not-opted-in":
		return fail(fmt.Sprintf("enable %s for the account (AWS console, Account, AWS Regions), or choose another region", p.dc.Region),
			"%s is an opt-in region not enabled for this account", p.dc.Region)
	}
	if why := p.aws.regionMismatch(p.dc); why != "" {
		return fail(fmt.Sprintf("pass --region %s, or change %s: tetherctl and the AWS CLI commands in the documents use it", p.dc.Region, p.aws.RegionSource), "%s", why)
	}
	return pass("%s (from %s), enabled for the account", p.dc.Region, p.aws.RegionSource)
}

func checkZones(ctx context.Context, p *preflight) verdict {
	out, err := p.aws.EC2().DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{
		Filters: []ec2types.Filter{{Name: aws.String("zone-type"), Values: []string{"availability-zone"}}},
	})
	if err != nil {
		return awsFailure("EC2 DescribeAvailabilityZones", err)
	}
	var names []string
	for _, z := range out.AvailabilityZones {
		if z.State == ec2types.AvailabilityZoneStateAvailable {
			names = append(names, aws.ToString(z.ZoneName))
		}
	}
	if len(names) < 2 {
		return fail("choose a region with at least two available zones",
			"%d availability zone(s) available in %s; the network spans two", len(names), p.dc.Region)
	}
	return pass("%d available (%s); the network uses the first two", len(names), strings.Join(names, ", "))
}

// quotaValue reads a quota's applied value, or its AWS default when the
// account has no applied value (GetServiceQuota answers NoSuchResource then).
func (p *preflight) quotaValue(ctx context.Context, q quotaRef) (float64, error) {
	sq := p.aws.ServiceQuotas()
	out, err := sq.GetServiceQuota(ctx, &servicequotas.GetServiceQuotaInput{ServiceCode: aws.String(q.service), QuotaCode: aws.String(q.code)})
	if err == nil && out.Quota != nil && out.Quota.Value != nil {
		return *out.Quota.Value, nil
	}
	var nsr *sqtypes.NoSuchResourceException
	if err != nil && !errors.As(err, &nsr) {
		return 0, err
	}
	def, derr := sq.GetAWSDefaultServiceQuota(ctx, &servicequotas.GetAWSDefaultServiceQuotaInput{ServiceCode: aws.String(q.service), QuotaCode: aws.String(q.code)})
	if derr == nil && def.Quota != nil && def.Quota.Value != nil {
		return *def.Quota.Value, nil
	}
	switch {
	case derr != nil && !answered(derr):
		return 0, derr
	case err != nil:
		return 0, err
	case derr != nil:
		return 0, derr
	}
	return 0, errors.New("the answer carried no value")
}

// quotaVerdict compares a quota with what is in use and what the stacks need.
// It returns the quota's value too, 0 when there is none.
func (p *preflight) quotaVerdict(ctx context.Context, q quotaRef, used float64, need float64, usedNote string) (verdict, float64) {
	value, err := p.quotaValue(ctx, q)
	lookup := fmt.Sprintf("aws service-quotas get-service-quota --service-code %s --quota-code %s --region %s", q.service, q.code, p.dc.Region)
	if err != nil {
		if !answered(err) {
			return awsFailure("Service Quotas GetServiceQuota", err), 0
		}
		return warn(fmt.Sprintf("look the quota up yourself (%s) and compare it with %s", lookup, num(need+used)),
			"Service Quotas returned no value for %s (%s): %s", q.name, q.code, describeAWSError(err)), 0
	}
	if value-used < need {
		return fail(fmt.Sprintf("request an increase: aws service-quotas request-service-quota-increase --service-code %s --quota-code %s --desired-value %s --region %s",
			q.service, q.code, num(used+need), p.dc.Region),
			"%s is %s%s; the stacks need %s more", q.name, num(value), usedNote, num(need)), value
	}
	return pass("%s is %s%s; the stacks need %s", q.name, num(value), usedNote, num(need)), value
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func checkFargateQuota(ctx context.Context, p *preflight) verdict {
	s := p.dc.Sizing
	steady := float64(s.APITasks)*apiTaskVCPU + float64(s.WorkerMax)*workerTaskVCPU + agentTaskVCPU + migrateTaskVCPU
	rolling := 2*float64(s.APITasks)*apiTaskVCPU + 2*float64(s.WorkerMax)*workerTaskVCPU + agentTaskVCPU + migrateTaskVCPU
	v, value := p.quotaVerdict(ctx, quotaFargateVCPU, 0, steady, " vCPU (other Fargate tasks in the region share it)")
	if v.Status != statusPass {
		return v
	}
	if value < rolling {
		return warn(fmt.Sprintf("request %s: aws service-quotas request-service-quota-increase --service-code fargate --quota-code L-3032A538 --desired-value %s --region %s",
			num(rolling), num(rolling), p.dc.Region),
			"%s is %s vCPU: enough for %s at full scale, not for the %s a rolling deployment at full scale briefly runs", quotaFargateVCPU.name, num(value), num(steady), num(rolling))
	}
	return v
}

func checkVPCQuota(ctx context.Context, p *preflight) verdict {
	used := 0
	pages := ec2.NewDescribeVpcsPaginator(p.aws.EC2(), &ec2.DescribeVpcsInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return awsFailure("EC2 DescribeVpcs", err)
		}
		used += len(page.Vpcs)
	}
	v, _ := p.quotaVerdict(ctx, quotaVPCs, float64(used), 1, fmt.Sprintf(" with %d in use", used))
	return v
}

func checkEIPQuota(ctx context.Context, p *preflight) verdict {
	out, err := p.aws.EC2().DescribeAddresses(ctx, &ec2.DescribeAddressesInput{})
	if err != nil {
		return awsFailure("EC2 DescribeAddresses", err)
	}
	need := 1.0 // one NAT gateway, or one per zone with Multi-AZ (deploy/cdk/stacks/network.go)
	if p.dc.Sizing.MultiAZ {
		need = 2
	}
	used := len(out.Addresses)
	v, _ := p.quotaVerdict(ctx, quotaElasticIPs, float64(used), need, fmt.Sprintf(" with %d allocated", used))
	return v
}

func checkALBQuota(ctx context.Context, p *preflight) verdict {
	v, _ := p.quotaVerdict(ctx, quotaALBs, 0, 1, "")
	return v
}

func checkBootstrap(ctx context.Context, p *preflight) verdict {
	q := qualifierOf(p.dc)
	name := bootstrapParameter(q)
	fix := "tetherctl bootstrap"
	version, found, err := bootstrapVersion(ctx, p.aws, name)
	var ce *awsCallError
	switch {
	case errors.As(err, &ce):
		return awsFailure(ce.call, ce.err)
	case err != nil:
		return fail(fix, "%v", err)
	case !found:
		return fail(fix, "not bootstrapped with qualifier %s: there is no SSM parameter %s", q, name)
	case version < minBootstrapVersion:
		return fail(fix, "bootstrap version %d (qualifier %s) is older than %d, which the stacks' templates require", version, q, minBootstrapVersion)
	}
	return pass("version %d, qualifier %s (the stacks need %d or later)", version, q, minBootstrapVersion)
}

func checkCertificate(ctx context.Context, p *preflight) verdict {
	arn := p.dc.Domain.CertificateARN
	out, err := p.aws.ACM().DescribeCertificate(ctx, &acm.DescribeCertificateInput{CertificateArn: aws.String(arn)})
	var nf *acmtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		return fail("set domain.certificate_arn to a certificate in the deployment's account and region (aws acm list-certificates)",
			"no certificate %s in account %s, %s", arn, p.dc.Account, p.dc.Region)
	case err != nil:
		return awsFailure("ACM DescribeCertificate", err)
	}
	c := out.Certificate
	names := append([]string{aws.ToString(c.DomainName)}, c.SubjectAlternativeNames...)
	names = uniqueNonEmpty(names)
	if c.Status != acmtypes.CertificateStatusIssued {
		return fail("complete the certificate's validation in ACM (the DNS record it lists), or request a new one for "+p.dc.Domain.Name,
			"certificate status is %s, not ISSUED", c.Status)
	}
	if !certCovers(names, p.dc.Domain.Name) {
		return fail(fmt.Sprintf("request a certificate for %s in %s and set domain.certificate_arn to it", p.dc.Domain.Name, p.dc.Region),
			"the certificate covers %s, not %s", strings.Join(names, ", "), p.dc.Domain.Name)
	}
	if c.NotAfter != nil && c.NotAfter.Sub(p.now) < certRenewalWarning {
		return warn("renew or re-import the certificate before it expires (ACM renews only certificates it issued and can validate)",
			"ISSUED and covers %s, but expires on %s", p.dc.Domain.Name, c.NotAfter.UTC().Format(dateFormat))
	}
	return pass("ISSUED, covers %s (%s)", p.dc.Domain.Name, strings.Join(names, ", "))
}

// certCovers reports whether one of a certificate's names covers host: the
// same name, or a wildcard for exactly one label in front of the rest.
func certCovers(names []string, host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, n := range names {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		if n == host {
			return true
		}
		if rest, ok := strings.CutPrefix(n, "*."); ok {
			if label, parent, found := strings.Cut(host, "."); found && label != "" && parent == rest {
				return true
			}
		}
	}
	return false
}

func uniqueNonEmpty(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func checkHostedZone(ctx context.Context, p *preflight) verdict {
	z := p.dc.Domain.HostedZone
	out, err := p.aws.Route53().GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: aws.String(z.ID)})
	var nf *r53types.NoSuchHostedZone
	switch {
	case errors.As(err, &nf):
		return fail("set domain.hosted_zone.id to the zone that holds "+p.dc.Domain.Name+" (aws route53 list-hosted-zones-by-name)",
			"no hosted zone %s in account %s", z.ID, p.dc.Account)
	case err != nil:
		return awsFailure("Route 53 GetHostedZone", err)
	}
	name := strings.TrimSuffix(aws.ToString(out.HostedZone.Name), ".")
	if !strings.EqualFold(name, z.Name) {
		return fail("set domain.hosted_zone.name to the zone's name, or the id to the zone named "+z.Name,
			"hosted zone %s is %s, but deployment.yaml says %s", z.ID, name, z.Name)
	}
	if out.HostedZone.Config != nil && out.HostedZone.Config.PrivateZone {
		return fail("use the public hosted zone for "+z.Name,
			"hosted zone %s (%s) is private; certificate validation and the service's DNS record need a public zone", z.ID, name)
	}
	return pass("public zone %s (%s) holds %s", name, z.ID, p.dc.Domain.Name)
}

// secretCheck judges one of the deployment's secrets the way
// 'tetherctl secrets show' does. A missing secret is expected before the
// data stack is deployed (the stack creates it), and a failure after.
func secretCheck(kind string) func(context.Context, *preflight) verdict {
	return func(ctx context.Context, p *preflight) verdict {
		k, err := lookupSecretKind(p.dc, kind)
		if err != nil {
			return fail("", "%v", err)
		}
		sm := p.aws.SecretsManager()
		st, err := describeKind(ctx, p.aws, p.dc, k)
		if err != nil {
			return awsFailureText(err)
		}
		if !st.Exists {
			deployed, err := p.dataStackDeployed(ctx)
			if err != nil {
				return awsFailureText(err)
			}
			switch {
			case !deployed && kind == kindDatabase:
				return pass("not there yet: RDS creates it with the database of the %s-data stack", p.dc.Name)
			case !deployed && (kind == kindLicense || kind == kindAI):
				return warn(fmt.Sprintf("after deploying, run tetherctl secrets set %s", kind),
					"%s does not exist yet: the %s-data stack creates it, and then it needs its value", st.SecretName, p.dc.Name)
			case !deployed:
				return pass("%s does not exist yet: the %s-data stack creates it", st.SecretName, p.dc.Name)
			case st.unknown != "":
				return fail("tetherctl deploy", "%s", st.unknown)
			case kind == kindDatabase:
				return fail("check the database's master credentials in the RDS console, then run tetherctl deploy",
					"%s, the %s-data stack's %s, does not exist", st.ARN, p.dc.Name, databaseSecretOutput)
			}
			// A secret deleted with a recovery window still exists (and is
			// reported as scheduled for deletion); this one is gone.
			fix := "ask the vendor how to recreate it: CloudFormation still counts it as part of the data stack"
			if k.Refusal == "" {
				fix = "set it again, which creates it under the stack's name: tetherctl secrets set " + kind
			}
			return fail(fix, "%s does not exist, though the %s-data stack does: it was deleted outside CloudFormation", st.SecretName, p.dc.Name)
		}
		v, err := secretVerdict(ctx, sm, p.dc, st, p.now)
		if err != nil {
			return awsFailureText(err)
		}
		if st.Exists && v.Status == statusPass {
			v.Detail = st.SecretName + ": " + v.Detail
		}
		return v
	}
}

// awsFailureText is awsFailure for an error already described by
// describeAWSError and wrapped with the call's name.
func awsFailureText(err error) verdict {
	return fail("check the network path to AWS and the credentials' Secrets Manager and CloudFormation permissions", "%v", err)
}

// stackExists asks CloudFormation whether a stack exists. CloudFormation
// answers ValidationError "Stack with id X does not exist" when it does not.
func stackExists(ctx context.Context, a *awsSession, name string) (bool, error) {
	s, err := describeStack(ctx, a.CloudFormation(), name)
	return s != nil, err
}

func checkPlane(ctx context.Context, p *preflight) verdict {
	u := p.dc.Plane.URL
	if u == "" {
		return pass("air-gapped (no plane.url): nothing needs to reach the vendor; releases come by tetherctl airgap import")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fail("set plane.url to the https URL the vendor gave you", "plane.url %q: %v", u, err)
	}
	client := &http.Client{
		Transport: p.transport(),
		// Any answer means the plane is reachable; a redirect is one.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	start := p.env.Now()
	resp, err := client.Do(req)
	if err != nil {
		reason := oneLine(innermost(err).Error())
		if errors.Is(err, context.DeadlineExceeded) {
			reason = "no answer before the time limit"
		}
		return fail(fmt.Sprintf("allow outbound HTTPS from here to %s (set HTTPS_PROXY if you use a proxy); the agent needs the same from the VPC through its NAT gateway", req.URL.Host),
			"cannot reach %s: %s", u, reason)
	}
	resp.Body.Close()
	return pass("%s answered HTTP %d in %s", u, resp.StatusCode, p.env.Now().Sub(start).Round(time.Millisecond))
}

var nodeVersionRE = regexp.MustCompile(`^v([0-9]+)\.([0-9]+)\.([0-9]+)`)

func checkNode(ctx context.Context, p *preflight) verdict {
	install := fmt.Sprintf("install Node.js %d or newer and put node on PATH", minNodeMajor)
	path, err := lookPath(p.env.Getenv("PATH"), "node")
	if err != nil {
		return fail(install, "node is not on PATH")
	}
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.Env = []string{"PATH=" + p.env.Getenv("PATH")}
	out, err := cmd.Output()
	if err != nil {
		return fail(install, "%s --version failed: %v", path, err)
	}
	m := nodeVersionRE.FindStringSubmatch(strings.TrimSpace(string(out)))
	if m == nil {
		return fail(install, "%s --version printed %q, not a Node.js version", path, truncateText(strings.TrimSpace(string(out)), 40))
	}
	major, _ := strconv.Atoi(m[1])
	if major < minNodeMajor {
		return fail(install, "node %s at %s is older than %d", m[0], path, minNodeMajor)
	}
	return pass("node %s at %s", m[0], path)
}

// lookPath finds an executable on a PATH given as a value, not read from
// the process environment.
func lookPath(pathEnv, name string) (string, error) {
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH", name)
}

func checkCDK(_ context.Context, p *preflight) verdict {
	install := "npm ci --prefix " + p.toolsDir + " (from the repository root)"
	pkgFile := filepath.Join(p.toolsDir, "package.json")
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	data, err := os.ReadFile(pkgFile)
	if err == nil {
		err = json.Unmarshal(data, &pkg)
	}
	if err != nil {
		return fail("run tetherctl from the repository root, or pass --tools-dir with the directory holding the tools package.json",
			"cannot read the CDK CLI pin: %v", err)
	}
	pin := pkg.Dependencies["aws-cdk"]
	if pin == "" {
		return fail("pass --tools-dir with the directory whose package.json pins aws-cdk", "%s pins no aws-cdk", pkgFile)
	}
	bin := filepath.Join(p.toolsDir, "node_modules", ".bin", "cdk")
	if fi, err := os.Stat(bin); err != nil || fi.Mode().Perm()&0o111 == 0 {
		return fail(install, "the pinned CDK CLI %s is not installed at %s", pin, bin)
	}
	var installed struct {
		Version string `json:"version"`
	}
	data, err = os.ReadFile(filepath.Join(p.toolsDir, "node_modules", "aws-cdk", "package.json"))
	if err == nil {
		err = json.Unmarshal(data, &installed)
	}
	if err != nil || installed.Version == "" {
		return fail(install, "cannot tell which CDK CLI is installed at %s", bin)
	}
	if installed.Version != pin {
		return fail(install, "the CDK CLI at %s is %s, but %s pins %s", bin, installed.Version, pkgFile, pin)
	}
	return pass("CDK CLI %s at %s, as %s pins", installed.Version, bin, pkgFile)
}

func truncateText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

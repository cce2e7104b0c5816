package ctl

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrock"
	bedrocktypes "github.com/aws/aws-sdk-go-v2/service/bedrock/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// This file holds the checks of what deployment.yaml names outside the
// stacks: the customer's VPC, the Bedrock model, the vendor's images.

// namedSubnet is a configured subnet with the role it is listed under.
type namedSubnet struct {
	role string // public, private or isolated
	deployconfig.Subnet
}

func configuredSubnets(n deployconfig.Network) []namedSubnet {
	var out []namedSubnet
	for _, r := range []struct {
		role string
		list []deployconfig.Subnet
	}{{"public", n.Subnets.Public}, {"private", n.Subnets.Private}, {"isolated", n.Subnets.Isolated}} {
		for _, s := range r.list {
			out = append(out, namedSubnet{r.role, s})
		}
	}
	return out
}

func checkExistingVPC(ctx context.Context, p *preflight) verdict {
	n := p.dc.Network
	where := fmt.Sprintf("account %s, %s", p.dc.Account, p.dc.Region)
	c := p.aws.EC2()
	vpcs, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{n.VpcID}}}})
	if err != nil {
		return awsFailure("EC2 DescribeVpcs", err)
	}
	if len(vpcs.Vpcs) == 0 {
		return fail(fmt.Sprintf("set network.vpc_id to a VPC in %s (aws ec2 describe-vpcs --region %s)", where, p.dc.Region),
			"no VPC %s in %s", n.VpcID, where)
	}

	subnets := configuredSubnets(n)
	found := map[string]ec2types.Subnet{}
	var ids []string
	for _, s := range subnets {
		ids = append(ids, s.ID)
	}
	pages := ec2.NewDescribeSubnetsPaginator(c, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("subnet-id"), Values: ids}}})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return awsFailure("EC2 DescribeSubnets", err)
		}
		for _, s := range page.Subnets {
			found[aws.ToString(s.SubnetId)] = s
		}
	}
	var problems []string
	for _, s := range subnets {
		got, ok := found[s.ID]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s subnet %s does not exist", s.role, s.ID))
		case aws.ToString(got.VpcId) != n.VpcID:
			problems = append(problems, fmt.Sprintf("%s subnet %s is in %s, not %s", s.role, s.ID, aws.ToString(got.VpcId), n.VpcID))
		case aws.ToString(got.AvailabilityZone) != s.Zone:
			problems = append(problems, fmt.Sprintf("%s subnet %s is in zone %s, not %s as deployment.yaml says", s.role, s.ID, aws.ToString(got.AvailabilityZone), s.Zone))
		}
	}

	tables := 0
	if n.Endpoints() {
		// The S3 gateway endpoint adds a route to the private and isolated
		// subnets' tables (deployconfig.Subnet.RouteTableID).
		want := map[string]namedSubnet{}
		var tableIDs []string
		for _, s := range subnets {
			if s.RouteTableID != "" && s.role != "public" {
				if _, dup := want[s.RouteTableID]; !dup {
					tableIDs = append(tableIDs, s.RouteTableID)
				}
				want[s.RouteTableID] = s
			}
		}
		have := map[string]ec2types.RouteTable{}
		if len(tableIDs) > 0 {
			pages := ec2.NewDescribeRouteTablesPaginator(c, &ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{{Name: aws.String("route-table-id"), Values: tableIDs}}})
			for pages.HasMorePages() {
				page, err := pages.NextPage(ctx)
				if err != nil {
					return awsFailure("EC2 DescribeRouteTables", err)
				}
				for _, rt := range page.RouteTables {
					have[aws.ToString(rt.RouteTableId)] = rt
				}
			}
		}
		for _, id := range tableIDs {
			rt, ok := have[id]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("route table %s (of %s subnet %s) does not exist", id, want[id].role, want[id].ID))
			case aws.ToString(rt.VpcId) != n.VpcID:
				problems = append(problems, fmt.Sprintf("route table %s (of %s subnet %s) is in %s, not %s", id, want[id].role, want[id].ID, aws.ToString(rt.VpcId), n.VpcID))
			}
		}
		tables = len(tableIDs)
	}

	if len(problems) > 0 {
		return fail(fmt.Sprintf("correct network.subnets in deployment.yaml: each id, zone and route_table_id as `aws ec2 describe-subnets --filters Name=vpc-id,Values=%s --region %s` and `aws ec2 describe-route-tables --filters Name=vpc-id,Values=%s --region %s` list them", n.VpcID, p.dc.Region, n.VpcID, p.dc.Region),
			"VPC %s: %s", n.VpcID, strings.Join(problems, "; "))
	}
	detail := fmt.Sprintf("VPC %s holds all %d subnets in the zones deployment.yaml gives", n.VpcID, len(subnets))
	if tables > 0 {
		detail += fmt.Sprintf(", and the %d route tables the S3 endpoint adds its route to", tables)
	}
	return pass("%s", detail)
}

// bedrockAccessFix is what gives an account a Bedrock model.
func bedrockAccessFix(model, region string) string {
	return fmt.Sprintf("request access to %s in the Bedrock console (Model access, region %s), or set ai.model to a model the account has access to", model, region)
}

func checkBedrockModel(ctx context.Context, p *preflight) verdict {
	c := p.aws.Bedrock()
	model := p.dc.AI.Model
	fm, err := c.GetFoundationModel(ctx, &bedrock.GetFoundationModelInput{ModelIdentifier: aws.String(model)})
	if err != nil {
		return bedrockModelVerdict(model, p.dc.Region, nil, err, nil, nil)
	}
	av, avErr := c.GetFoundationModelAvailability(ctx, &bedrock.GetFoundationModelAvailabilityInput{ModelId: aws.String(model)})
	return bedrockModelVerdict(model, p.dc.Region, fm, nil, av, avErr)
}

// bedrockModelVerdict judges Bedrock's answers about ai.model: whether the
// model exists in the region (GetFoundationModel), and whether the account
// may invoke it (GetFoundationModelAvailability).
func bedrockModelVerdict(model, region string, fm *bedrock.GetFoundationModelOutput, fmErr error,
	av *bedrock.GetFoundationModelAvailabilityOutput, avErr error) verdict {
	list := fmt.Sprintf("aws bedrock list-foundation-models --region %s", region)
	var nf *bedrocktypes.ResourceNotFoundException
	var invalid *bedrocktypes.ValidationException
	switch {
	case errors.As(fmErr, &nf), errors.As(fmErr, &invalid):
		return fail(fmt.Sprintf("set ai.model to a model ID Bedrock offers in %s (%s)", region, list),
			"Bedrock has no model %s in %s: %s", model, region, describeAWSError(fmErr))
	case fmErr != nil:
		return awsFailure("Bedrock GetFoundationModel", fmErr)
	}
	name := model
	if d := fm.ModelDetails; d != nil && aws.ToString(d.ProviderName) != "" {
		name = fmt.Sprintf("%s (%s %s)", model, aws.ToString(d.ProviderName), aws.ToString(d.ModelName))
	}
	switch {
	case avErr != nil && !answered(avErr):
		return awsFailure("Bedrock GetFoundationModelAvailability", avErr)
	case avErr != nil:
		return warn(fmt.Sprintf("allow the caller bedrock:GetFoundationModelAvailability (statement PreflightReads in docs/iam.md) to have access checked, or look under Model access in the Bedrock console (region %s)", region),
			"%s exists in %s, but whether the account may use it is unknown: %s", name, region, describeAWSError(avErr))
	}
	var refusals []string
	if av.RegionAvailability == bedrocktypes.RegionAvailabilityNotAvailable {
		return fail(fmt.Sprintf("set ai.model to a model Bedrock serves in %s (%s)", region, list),
			"%s is not available in %s", name, region)
	}
	if av.AuthorizationStatus == bedrocktypes.AuthorizationStatusNotAuthorized {
		refusals = append(refusals, "the account is not authorized to use it")
	}
	if av.EntitlementAvailability == bedrocktypes.EntitlementAvailabilityNotAvailable {
		refusals = append(refusals, "the account has no entitlement to it")
	}
	if a := av.AgreementAvailability; a != nil {
		switch a.Status {
		case bedrocktypes.AgreementStatusPending:
			if len(refusals) == 0 {
				return warn("wait a few minutes for the model's agreement to complete, then run tetherctl preflight again",
					"the account's agreement for %s in %s is still pending", name, region)
			}
		case bedrocktypes.AgreementStatusNotAvailable:
			refusals = append(refusals, "its agreement (EULA) has not been accepted")
		case bedrocktypes.AgreementStatusError:
			refusals = append(refusals, "its agreement failed: "+oneLine(aws.ToString(a.ErrorMessage)))
		}
	}
	if len(refusals) > 0 {
		return fail(bedrockAccessFix(model, region), "access to %s in %s is not granted: %s", name, region, strings.Join(refusals, "; "))
	}
	if d := fm.ModelDetails; d != nil && d.ModelLifecycle != nil && d.ModelLifecycle.Status == bedrocktypes.FoundationModelLifecycleStatusLegacy {
		return warn(fmt.Sprintf("plan a move to a current model (%s); Bedrock retires legacy models", list),
			"%s is a legacy model in %s: access is granted, but Bedrock will retire it", name, region)
	}
	return pass("%s exists in %s and the account has access to it", name, region)
}

func checkReleaseImages(ctx context.Context, p *preflight) verdict {
	im := p.dc.Images
	if im.Source == deployconfig.ImagesBuild {
		return pass("images.source is build: the images are built in the account by the images stack's CodeBuild project, not pulled from a registry")
	}
	var reached, problems []string
	for _, img := range []struct{ name, digest string }{{"docsvc", im.DocsvcDigest}, {"agent", im.AgentDigest}} {
		if img.digest == "" {
			continue
		}
		ref, err := vendorImageRef(p.dc, img.name, img.digest)
		if err != nil {
			return fail("", "%v", err)
		}
		desc, err := remote.Head(ref, vendorRegistryOptions(ctx, p.transport())...)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s (%s): %s", img.name, ref, releaseImageError(err, ref.RegistryStr())))
		case desc.Digest.String() != img.digest:
			problems = append(problems, fmt.Sprintf("%s (%s): the registry answered digest %s", img.name, ref, desc.Digest))
		default:
			reached = append(reached, img.name)
		}
	}
	if len(problems) > 0 {
		return fail("", "%s", strings.Join(problems, "; "))
	}
	return pass("%s reachable by digest in %s", strings.Join(reached, " and "), im.VendorRegistry)
}

// releaseImageError says why the vendor registry did not serve an image,
// and what fixes it.
func releaseImageError(err error, registry string) string {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Sprintf("the registry refused access (HTTP %d); log in with the credentials the vendor gave you: docker login %s", te.StatusCode, registry)
		case http.StatusNotFound:
			return "not in the registry (HTTP 404); check images.vendor_registry and that images.docsvc_digest and agent_digest are the release's digests"
		}
	}
	why := registryError(err, fmt.Sprintf("allow outbound HTTPS from here to %s (set HTTPS_PROXY if you use a proxy)", registry))
	if te != nil {
		return "the registry answered " + why
	}
	return "unreachable: " + why
}

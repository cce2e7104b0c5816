package ctl

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrock"
	bedrocktypes "github.com/aws/aws-sdk-go-v2/service/bedrock/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/deployconfig"
)

func checkByID(t *testing.T, id string) check {
	t.Helper()
	for _, c := range preflightChecks() {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no check %s", id)
	return check{}
}

// runCheck runs one check as preflight does, under its time limit.
func runCheck(t *testing.T, p *preflight, id string) verdict {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return runOne(ctx, p, checkByID(t, id), 20*time.Second)
}

// wantVerdict fails the test unless got has status and says every one of details.
func wantVerdict(t *testing.T, got verdict, status status, details []string) {
	t.Helper()
	if got.Status != status {
		t.Fatalf("%s %q (fix %q), want %s", got.Status, got.Detail, got.Fix, status)
	}
	for _, want := range details {
		if !strings.Contains(got.Detail, want) {
			t.Errorf("detail %q does not say %q", got.Detail, want)
		}
	}
}

// customerVPC is an existing VPC in moto with a public, a private and an
// isolated subnet in each of two zones, each private and isolated subnet
// with its own route table.
type customerVPC struct {
	vpcID, otherVPC string
	network         deployconfig.Network
}

func newCustomerVPC(t *testing.T, c *ec2.Client) customerVPC {
	t.Helper()
	ctx := context.Background()
	vpc := func(cidr string) string {
		out, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(cidr)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Vpc.VpcId)
	}
	v := customerVPC{vpcID: vpc("10.20.0.0/16"), otherVPC: vpc("10.30.0.0/16")}
	yes := true
	v.network = deployconfig.Network{VpcID: v.vpcID, CreateEndpoints: &yes}
	n := 0
	subnet := func(zone string, table bool) deployconfig.Subnet {
		n++
		out, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(v.vpcID), AvailabilityZone: aws.String(zone),
			CidrBlock: aws.String(fmt.Sprintf("10.20.%d.0/24", n))})
		if err != nil {
			t.Fatal(err)
		}
		s := deployconfig.Subnet{ID: aws.ToString(out.Subnet.SubnetId), Zone: zone}
		if table {
			rt, err := c.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: aws.String(v.vpcID)})
			if err != nil {
				t.Fatal(err)
			}
			s.RouteTableID = aws.ToString(rt.RouteTable.RouteTableId)
		}
		return s
	}
	for _, zone := range []string{"us-east-1a", "us-east-1b"} {
		v.network.Subnets.Public = append(v.network.Subnets.Public, subnet(zone, false))
		v.network.Subnets.Private = append(v.network.Subnets.Private, subnet(zone, true))
		v.network.Subnets.Isolated = append(v.network.Subnets.Isolated, subnet(zone, true))
	}
	return v
}

func TestExistingVPCCheck(t *testing.T) {
	t.Parallel()
	srv := awstest.Start(t)
	dc, _ := testDeployment(t, deployconfig.ImagesVendor)
	a := testSession(t, srv, dc)
	c := a.EC2()
	v := newCustomerVPC(t, c)
	foreign, err := c.CreateSubnet(context.Background(), &ec2.CreateSubnetInput{VpcId: aws.String(v.otherVPC),
		AvailabilityZone: aws.String("us-east-1a"), CidrBlock: aws.String("10.30.1.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	foreignSubnet := aws.ToString(foreign.Subnet.SubnetId)
	foreignTable, err := c.CreateRouteTable(context.Background(), &ec2.CreateRouteTableInput{VpcId: aws.String(v.otherVPC)})
	if err != nil {
		t.Fatal(err)
	}

	if applies := checkByID(t, "existing-vpc").applies; applies(dc) || !applies(&deployconfig.Config{Network: v.network}) {
		t.Fatal("existing-vpc should run exactly when network.vpc_id is set")
	}
	no := false
	for _, tc := range []struct {
		name    string
		change  func(n *deployconfig.Network)
		status  status
		details []string
	}{
		{"as created", func(*deployconfig.Network) {}, statusPass, []string{"holds all 6 subnets", "the 4 route tables"}},
		{"no endpoints, so no route tables", func(n *deployconfig.Network) {
			n.CreateEndpoints = &no
			n.Subnets.Private[0].RouteTableID = "rtb-0000000000000dead"
		}, statusPass, []string{"holds all 6 subnets"}},
		{"no such VPC", func(n *deployconfig.Network) { n.VpcID = "vpc-0000000000000dead" }, statusFail, []string{"no VPC vpc-0000000000000dead"}},
		{"wrong subnets", func(n *deployconfig.Network) {
			n.Subnets.Public[1].ID = "subnet-0000000000000dead"
			n.Subnets.Private[0].ID = foreignSubnet
			n.Subnets.Isolated[1].Zone = "us-east-1c"
		}, statusFail, []string{
			"public subnet subnet-0000000000000dead does not exist",
			"private subnet " + foreignSubnet + " is in " + v.otherVPC,
			"isolated subnet " + v.network.Subnets.Isolated[1].ID + " is in zone us-east-1b, not us-east-1c",
		}},
		{"wrong route tables", func(n *deployconfig.Network) {
			n.Subnets.Private[1].RouteTableID = "rtb-0000000000000dead"
			n.Subnets.Isolated[0].RouteTableID = aws.ToString(foreignTable.RouteTable.RouteTableId)
		}, statusFail, []string{
			"route table rtb-0000000000000dead (of private subnet " + v.network.Subnets.Private[1].ID + ") does not exist",
			"route table " + aws.ToString(foreignTable.RouteTable.RouteTableId) + " (of isolated subnet " + v.network.Subnets.Isolated[0].ID + ") is in " + v.otherVPC,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := *dc
			d.Network = v.network
			d.Network.Subnets = deployconfig.Subnets{
				Public:   append([]deployconfig.Subnet(nil), v.network.Subnets.Public...),
				Private:  append([]deployconfig.Subnet(nil), v.network.Subnets.Private...),
				Isolated: append([]deployconfig.Subnet(nil), v.network.Subnets.Isolated...),
			}
			tc.change(&d.Network)
			got := runCheck(t, &preflight{dc: &d, aws: a}, "existing-vpc")
			wantVerdict(t, got, tc.status, tc.details)
			if got.Status == statusFail && !strings.Contains(got.Fix, "network.") {
				t.Errorf("fix %q does not name what to change in deployment.yaml", got.Fix)
			}
		})
	}
}

// moto's bedrock implements neither GetFoundationModel nor
// GetFoundationModelAvailability (nor ListFoundationModels): it serves
// model customization, custom models, logging configuration and tags
// only, and answers GetFoundationModel with an HTTP 500 page. So the check is run against moto only to see that it does not
// pass on an answer it cannot have, and its decisions are tested on the
// bedrock SDK's output and error types.
func TestBedrockModelCheckAgainstMoto(t *testing.T) {
	t.Parallel()
	srv := awstest.Start(t)
	dc, _ := testDeployment(t, deployconfig.ImagesVendor)
	dc.AI.Provider, dc.AI.Model = deployconfig.AIBedrock, "anthropic.claude-3-5-haiku-20241022-v1:0"
	if applies := checkByID(t, "bedrock-model").applies; !applies(dc) || applies(&deployconfig.Config{AI: deployconfig.AI{Provider: deployconfig.AIAnthropic}}) {
		t.Fatal("bedrock-model should run exactly when ai.provider is bedrock")
	}
	got := runCheck(t, &preflight{dc: dc, aws: testSession(t, srv, dc)}, "bedrock-model")
	t.Logf("moto: %s %q", got.Status, got.Detail)
	if got.Status != statusFail || !strings.Contains(got.Detail, "Bedrock GetFoundationModel") {
		t.Fatalf("against moto, which lacks GetFoundationModel: %s %q, want a FAIL naming the call", got.Status, got.Detail)
	}
}

func TestBedrockModelDecision(t *testing.T) {
	t.Parallel()
	const model, region = "anthropic.claude-3-5-haiku-20241022-v1:0", "eu-central-1"
	found := &bedrock.GetFoundationModelOutput{ModelDetails: &bedrocktypes.FoundationModelDetails{
		ModelId: aws.String(model), ProviderName: aws.String("Anthropic"), ModelName: aws.String("Claude 3.5 Haiku"),
		ModelLifecycle: &bedrocktypes.FoundationModelLifecycle{Status: bedrocktypes.FoundationModelLifecycleStatusActive},
	}}
	legacy := &bedrock.GetFoundationModelOutput{ModelDetails: &bedrocktypes.FoundationModelDetails{
		ModelId:        aws.String(model),
		ModelLifecycle: &bedrocktypes.FoundationModelLifecycle{Status: bedrocktypes.FoundationModelLifecycleStatusLegacy},
	}}
	granted := func(change func(*bedrock.GetFoundationModelAvailabilityOutput)) *bedrock.GetFoundationModelAvailabilityOutput {
		av := &bedrock.GetFoundationModelAvailabilityOutput{
			ModelId:                 aws.String(model),
			AuthorizationStatus:     bedrocktypes.AuthorizationStatusAuthorized,
			EntitlementAvailability: bedrocktypes.EntitlementAvailabilityAvailable,
			RegionAvailability:      bedrocktypes.RegionAvailabilityAvailable,
			AgreementAvailability:   &bedrocktypes.AgreementAvailability{Status: bedrocktypes.AgreementStatusAvailable},
		}
		if change != nil {
			change(av)
		}
		return av
	}
	denied := &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform bedrock:GetFoundationModelAvailability"}
	for _, tc := range []struct {
		name        string
		fm          *bedrock.GetFoundationModelOutput
		fmErr       error
		av          *bedrock.GetFoundationModelAvailabilityOutput
		avErr       error
		status      status
		detail, fix string
	}{
		{name: "granted", fm: found, av: granted(nil), status: statusPass, detail: "Anthropic Claude 3.5 Haiku) exists in eu-central-1 and the account has access"},
		{name: "no such model", fmErr: &bedrocktypes.ResourceNotFoundException{Message: aws.String("model not found")},
			status: statusFail, detail: "Bedrock has no model " + model + " in eu-central-1", fix: "aws bedrock list-foundation-models --region eu-central-1"},
		{name: "malformed model id", fmErr: &bedrocktypes.ValidationException{Message: aws.String("invalid identifier")},
			status: statusFail, detail: "Bedrock has no model", fix: "set ai.model"},
		{name: "not authorized", fm: found, av: granted(func(av *bedrock.GetFoundationModelAvailabilityOutput) {
			av.AuthorizationStatus = bedrocktypes.AuthorizationStatusNotAuthorized
		}), status: statusFail, detail: "not authorized to use it", fix: "request access to " + model + " in the Bedrock console (Model access, region eu-central-1)"},
		{name: "no entitlement, agreement not accepted", fm: found, av: granted(func(av *bedrock.GetFoundationModelAvailabilityOutput) {
			av.EntitlementAvailability = bedrocktypes.EntitlementAvailabilityNotAvailable
			av.AgreementAvailability.Status = bedrocktypes.AgreementStatusNotAvailable
		}), status: statusFail, detail: "no entitlement to it; its agreement (EULA) has not been accepted", fix: "Bedrock console"},
		{name: "agreement failed", fm: found, av: granted(func(av *bedrock.GetFoundationModelAvailabilityOutput) {
			av.AgreementAvailability = &bedrocktypes.AgreementAvailability{Status: bedrocktypes.AgreementStatusError, ErrorMessage: aws.String("payment\ninstrument missing")}
		}), status: statusFail, detail: "its agreement failed: payment instrument missing", fix: "Bedrock console"},
		{name: "agreement pending", fm: found, av: granted(func(av *bedrock.GetFoundationModelAvailabilityOutput) {
			av.AgreementAvailability.Status = bedrocktypes.AgreementStatusPending
		}), status: statusWarn, detail: "still pending", fix: "wait a few minutes"},
		{name: "not in the region", fm: found, av: granted(func(av *bedrock.GetFoundationModelAvailabilityOutput) {
			av.RegionAvailability = bedrocktypes.RegionAvailabilityNotAvailable
		}), status: statusFail, detail: "not available in eu-central-1", fix: "list-foundation-models --region eu-central-1"},
		{name: "legacy model", fm: legacy, av: granted(nil), status: statusWarn, detail: "legacy model", fix: "current model"},
		{name: "availability not allowed", fm: found, avErr: denied, status: statusWarn,
			detail: "whether the account may use it is unknown: AccessDeniedException", fix: "bedrock:GetFoundationModelAvailability"},
		{name: "model lookup denied", fmErr: denied, status: statusFail, detail: "Bedrock GetFoundationModel: AccessDeniedException", fix: "grant the credentials the permission"},
		{name: "no answer", fmErr: context.DeadlineExceeded, status: statusFail, detail: "Bedrock GetFoundationModel", fix: "network path"},
		{name: "no answer on availability", fm: found, avErr: errors.New("dial tcp: connection refused"), status: statusFail,
			detail: "Bedrock GetFoundationModelAvailability", fix: "network path"},
	} {
		got := bedrockModelVerdict(model, region, tc.fm, tc.fmErr, tc.av, tc.avErr)
		if got.Status != tc.status || !strings.Contains(got.Detail, tc.detail) || !strings.Contains(got.Fix, tc.fix) {
			t.Errorf("%s: %s %q (fix %q), want %s with %q (fix %q)", tc.name, got.Status, got.Detail, got.Fix, tc.status, tc.detail, tc.fix)
		}
	}
}

func TestReleaseImagesCheck(t *testing.T) {
	t.Parallel()
	vendorReg := newTestRegistry(t)
	tr := registryTransport(map[string]*testRegistry{"registry.vendor.example": vendorReg})
	f := &imagesFixture{manifests: map[string][]byte{}, mediaTypes: map[string]string{}, opt: imageOptions{Transport: tr}}
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := random.Index(512, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	docsvc, agent := f.push(t, "docsvc", img), f.push(t, "agent", idx)
	absent := "sha256:" + strings.Repeat("0", 64)

	dc, _ := testDeployment(t, deployconfig.ImagesVendor)
	applies := checkByID(t, "release-images").applies
	if applies(dc) {
		t.Fatal("release-images should not run in vendor mode without digests")
	}
	for _, tc := range []struct {
		name            string
		source          string
		docsvcD, agentD string
		transport       http.RoundTripper
		password        string
		status          status
		details         []string
	}{
		{name: "both present", docsvcD: docsvc, agentD: agent, status: statusPass,
			details: []string{"docsvc and agent reachable by digest in registry.vendor.example/tether"}},
		{name: "agent digest not in the registry", docsvcD: docsvc, agentD: absent, status: statusFail,
			details: []string{"agent (registry.vendor.example/tether/agent@" + absent + "): not in the registry (HTTP 404)"}},
		{name: "registry wants a login", docsvcD: docsvc, agentD: agent, password: "s3cret", status: statusFail,
			details: []string{"docsvc (registry.vendor.example/tether/docsvc@" + docsvc + "): the registry refused access (HTTP 401)", "docker login registry.vendor.example", "agent ("}},
		{name: "registry unreachable", docsvcD: docsvc, transport: registryTransport(map[string]*testRegistry{"elsewhere.example": vendorReg}), status: statusFail,
			details: []string{"docsvc (registry.vendor.example/tether/docsvc@" + docsvc + "): unreachable: ", "allow outbound HTTPS from here to registry.vendor.example"}},
		{name: "build mode", source: deployconfig.ImagesBuild, transport: registryTransport(map[string]*testRegistry{"elsewhere.example": vendorReg}), status: statusPass,
			details: []string{"built in the account"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := *dc
			d.Images.DocsvcDigest, d.Images.AgentDigest = tc.docsvcD, tc.agentD
			if tc.source != "" {
				d.Images = deployconfig.Images{Source: tc.source}
			}
			if !applies(&d) {
				t.Fatal("release-images does not apply")
			}
			vendorReg.mu.Lock()
			vendorReg.password = tc.password
			vendorReg.mu.Unlock()
			env := Env{Now: time.Now, HTTPTransport: tr, Getenv: func(string) string { return "" }}
			if tc.transport != nil {
				env.HTTPTransport = tc.transport
			}
			before := vendorReg.requests()
			got := runCheck(t, &preflight{dc: &d, env: env}, "release-images")
			wantVerdict(t, got, tc.status, tc.details)
			if tc.source == deployconfig.ImagesBuild && vendorReg.requests() != before {
				t.Error("build mode asked the registry")
			}
		})
	}
}

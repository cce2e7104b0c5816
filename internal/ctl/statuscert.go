package ctl

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// The TLS certificate in tetherctl status (docs/runbooks/certificate-renewal.md):
// deployment.yaml's domain.certificate_arn, or the certificate the
// services stack created in domain.hosted_zone. ACM renews the
// certificates it issued; status warns certRenewalWarning before NotAfter
// all the same, since a renewal that cannot validate does not happen.

type certificateState struct {
	ARN      string     `json:"arn,omitempty"`
	Status   string     `json:"status,omitempty"`
	Type     string     `json:"type,omitempty"` // AMAZON_ISSUED | IMPORTED | PRIVATE
	NotAfter *time.Time `json:"not_after,omitempty"`
	DaysLeft *int       `json:"days_left,omitempty"`
	// Renewal is ACM's managed renewal status, when it has one.
	Renewal string `json:"renewal,omitempty"`
	Error   string `json:"error,omitempty"`
}

// readCertificate finds and describes the certificate in use; nil when
// there is none yet (a hosted-zone deployment whose services stack is not
// deployed, or has no certificate resource).
func readCertificate(ctx context.Context, a *awsSession, dc *deployconfig.Config, now time.Time) *certificateState {
	c := &certificateState{ARN: dc.Domain.CertificateARN}
	if c.ARN == "" {
		out, err := a.CloudFormation().DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String(dc.Name + "-services")})
		switch {
		case isStackMissing(err):
			return nil
		case err != nil:
			c.Error = "CloudFormation DescribeStackResources: " + describeAWSError(err)
			return c
		}
		for _, r := range out.StackResources {
			if aws.ToString(r.ResourceType) == "AWS::CertificateManager::Certificate" {
				c.ARN = aws.ToString(r.PhysicalResourceId)
			}
		}
		if c.ARN == "" {
			// Not there yet (the stack is being created), or a stack
			// from before the certificate moved into it.
			return nil
		}
	}
	out, err := a.ACM().DescribeCertificate(ctx, &acm.DescribeCertificateInput{CertificateArn: aws.String(c.ARN)})
	var nf *acmtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		c.Error = "ACM has no certificate " + c.ARN + ": the load balancer cannot serve HTTPS with it; set domain.certificate_arn to one that exists and run tetherctl deploy"
		return c
	case err != nil:
		c.Error = "ACM DescribeCertificate: " + describeAWSError(err)
		return c
	}
	cert := out.Certificate
	c.Status, c.Type = string(cert.Status), string(cert.Type)
	if rs := cert.RenewalSummary; rs != nil {
		c.Renewal = string(rs.RenewalStatus)
	}
	if cert.NotAfter != nil {
		t := cert.NotAfter.UTC()
		days := daysLeft(t, now)
		c.NotAfter, c.DaysLeft = &t, &days
	}
	return c
}

// daysLeft is whole days until notAfter, rounded down; negative once past.
func daysLeft(notAfter, now time.Time) int {
	return int(math.Floor(notAfter.Sub(now).Hours() / 24))
}

// certificateVerdict is a problem (expired, or not ISSUED) or a warning
// (expires within certRenewalWarning), or neither.
func certificateVerdict(c *certificateState, now time.Time) (problem, warning string) {
	if c == nil || c.Error != "" || c.NotAfter == nil {
		return "", ""
	}
	switch {
	case !c.NotAfter.After(now):
		return fmt.Sprintf("the TLS certificate %s expired on %s: browsers refuse the service; see docs/runbooks/certificate-renewal.md", c.ARN, c.NotAfter.Format(dateFormat)), ""
	case c.Status != string(acmtypes.CertificateStatusIssued):
		return fmt.Sprintf("the TLS certificate %s is %s, not ISSUED; see docs/runbooks/certificate-renewal.md", c.ARN, c.Status), ""
	case c.NotAfter.Sub(now) < certRenewalWarning:
		how := "ACM has not renewed it yet (its renewal status is " + orDefault(c.Renewal, "unknown") + "): check that its DNS validation record is still in place"
		if c.Type == string(acmtypes.CertificateTypeImported) {
			how = "it is imported, so ACM does not renew it: import its renewal"
		}
		return "", fmt.Sprintf("the TLS certificate %s expires in %d days (%s); %s; see docs/runbooks/certificate-renewal.md", c.ARN, *c.DaysLeft, c.NotAfter.Format(dateFormat), how)
	}
	return "", ""
}

package ctl_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/ctl"
)

// certDeployment is healthyDeployment's stacks for a deployment that names
// its certificate (domain.certificate_arn): one imported into moto's ACM,
// expiring at notAfter.
func certDeployment(t *testing.T, notAfter time.Time) (invocation, string, string) {
	t.Helper()
	srv := awstest.Start(t)
	v := newVendor(t)
	d := defaultDeployment(v)
	d.CertARN = importCertificate(t, srv.AWSConfig(), notAfter, "docs.acme.example")
	deployStacks(t, srv, "acme-docs", allStacks...)
	runServices(t, srv, "acme-docs", 0)
	srv.CreateSecret(t, "tether/acme-docs/license", v.validLicense(t))
	return invocation{env: envOf(srv.Env())}, d.write(t), d.CertARN
}

type certJSON struct {
	Healthy     bool     `json:"healthy"`
	Problems    []string `json:"problems"`
	Warnings    []string `json:"warnings"`
	Certificate *struct {
		ARN      string `json:"arn"`
		Status   string `json:"status"`
		Type     string `json:"type"`
		DaysLeft *int   `json:"days_left"`
	} `json:"certificate"`
}

// status shows the certificate's expiry and warns within 30 days. (An
// expired one cannot be imported into ACM, moto included: that verdict is
// tested in TestCertificateVerdict.)
func TestStatusCertificate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name        string
		left        time.Duration
		wantDays    int
		wantWarning string
		wantProblem string
	}{
		{"far from expiry", 90*24*time.Hour + time.Hour, 90, "", ""},
		{"within 30 days", 12*24*time.Hour + time.Hour, 12, "expires in 12 days", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			in, config, arn := certDeployment(t, time.Now().Add(c.left))
			out := in.run(testContext(t), "status", "--config", config, "--output", "json")
			var s certJSON
			if err := json.Unmarshal([]byte(out.stdout), &s); err != nil {
				t.Fatalf("%v\n%s", err, out.all())
			}
			if s.Certificate == nil || s.Certificate.ARN != arn || s.Certificate.Type != "IMPORTED" || s.Certificate.DaysLeft == nil || *s.Certificate.DaysLeft != c.wantDays {
				t.Fatalf("certificate: %+v", s.Certificate)
			}
			warnings, problems := strings.Join(s.Warnings, "\n"), strings.Join(s.Problems, "\n")
			switch {
			case c.wantWarning != "":
				if !strings.Contains(warnings, c.wantWarning) || !strings.Contains(warnings, "it is imported, so ACM does not renew it") || out.err != nil {
					t.Errorf("want a warning %q and exit 0: %v\nwarnings: %s", c.wantWarning, out.err, warnings)
				}
			case c.wantProblem != "":
				if !strings.Contains(problems, c.wantProblem) || out.err == nil || ctl.IsUsage(out.err) || s.Healthy {
					t.Errorf("want a problem %q and exit 1: %v\nproblems: %s", c.wantProblem, out.err, problems)
				}
			default:
				if strings.Contains(warnings, "certificate") || strings.Contains(problems, "certificate") || out.err != nil {
					t.Errorf("a certificate far from expiry is reported: %v\n%s\n%s", out.err, warnings, problems)
				}
			}
			text := in.run(testContext(t), "status", "--config", config)
			if !hasLine(text.stdout, "cert", arn) {
				t.Errorf("no cert row:\n%s", text.stdout)
			}
		})
	}
}

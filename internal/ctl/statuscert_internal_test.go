package ctl

import (
	"strings"
	"testing"
	"time"
)

// The verdicts on what ACM DescribeCertificate says, including the states
// moto cannot produce (an expired certificate cannot be imported; moto's
// certificates have no managed renewal).
func TestCertificateVerdict(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	state := func(status, typ, renewal string, left time.Duration) *certificateState {
		na := now.Add(left)
		d := daysLeft(na, now)
		return &certificateState{ARN: "arn:aws:acm:eu-west-1:111122223333:certificate/x", Status: status, Type: typ, Renewal: renewal, NotAfter: &na, DaysLeft: &d}
	}
	for _, c := range []struct {
		name             string
		c                *certificateState
		problem, warning string
	}{
		{"none", nil, "", ""},
		{"unreadable", &certificateState{Error: "ACM DescribeCertificate: denied"}, "", ""},
		{"fine", state("ISSUED", "AMAZON_ISSUED", "SUCCESS", 31*24*time.Hour), "", ""},
		{"expired", state("EXPIRED", "AMAZON_ISSUED", "FAILED", -time.Hour), "expired on 2026-12-02", ""},
		{"expires now", state("ISSUED", "IMPORTED", "", 0), "expired on", ""},
		{"revoked", state("REVOKED", "AMAZON_ISSUED", "", 60*24*time.Hour), "is REVOKED, not ISSUED", ""},
		{"amazon, renewal pending", state("ISSUED", "AMAZON_ISSUED", "PENDING_VALIDATION", 29*24*time.Hour), "",
			"expires in 29 days (2026-12-31); ACM has not renewed it yet (its renewal status is PENDING_VALIDATION): check that its DNS validation record is still in place"},
		{"imported", state("ISSUED", "IMPORTED", "", 5*24*time.Hour+time.Minute), "", "expires in 5 days (2026-12-07); it is imported, so ACM does not renew it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, w := certificateVerdict(c.c, now)
			if (c.problem == "") != (p == "") || !strings.Contains(p, c.problem) {
				t.Errorf("problem = %q, want %q", p, c.problem)
			}
			if (c.warning == "") != (w == "") || !strings.Contains(w, c.warning) {
				t.Errorf("warning = %q, want %q", w, c.warning)
			}
		})
	}
	if d := daysLeft(now.Add(36*time.Hour), now); d != 1 {
		t.Errorf("daysLeft(36h) = %d, want 1", d)
	}
	if d := daysLeft(now.Add(-time.Minute), now); d != -1 {
		t.Errorf("daysLeft(-1m) = %d, want -1", d)
	}
}

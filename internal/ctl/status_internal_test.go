package ctl

import (
	"strings"
	"testing"
)

// What moto cannot produce (docs/decisions/0007-aws-api-emulator.md): a
// service deployment that failed, a stack that rolled back, a stack in
// progress. Judged here on the values AWS documents.
func TestJudgeStatus(t *testing.T) {
	settled := []stackState{}
	for _, s := range stackSuffixes {
		settled = append(settled, stackState{Name: "x-" + s, Deployed: true, Status: "UPDATE_COMPLETE"})
	}
	healthy := func() *statusReport {
		return &statusReport{Stacks: append([]stackState(nil), settled...),
			Services: []serviceState{{Name: "x-api", Deployed: true, Status: "ACTIVE", Desired: 2, Running: 2, Rollout: "COMPLETED"}}}
	}
	if p := judgeStatus(healthy()); len(p) != 0 {
		t.Fatalf("healthy report judged %v", p)
	}
	for _, tc := range []struct {
		name string
		edit func(*statusReport)
		want string
	}{
		{"rollout failed", func(r *statusReport) {
			r.Services[0].Rollout, r.Services[0].Reason = "FAILED", "circuit breaker: tasks failed to start"
		}, "x-api's deployment failed: circuit breaker"},
		{"rolled back on create", func(r *statusReport) { r.Stacks[1].Status = "ROLLBACK_COMPLETE" }, "stack x-data is ROLLBACK_COMPLETE"},
		{"update in progress", func(r *statusReport) { r.Stacks[4].Status = "UPDATE_IN_PROGRESS" }, "stack x-services is UPDATE_IN_PROGRESS"},
		{"service draining", func(r *statusReport) { r.Services[0].Status = "DRAINING" }, "service x-api is DRAINING"},
		{"image unreadable", func(r *statusReport) {
			r.Release.Docsvc = imageRef{Parameter: "DocsvcImage", Error: "ParameterNotFound"}
		}, "DocsvcImage: ParameterNotFound"},
		{"license expired", func(r *statusReport) { r.License.Verdict = &verdict{Status: statusFail, Detail: "expired"} }, "the license: expired"},
	} {
		r := healthy()
		tc.edit(r)
		if p := strings.Join(judgeStatus(r), "\n"); !strings.Contains(p, tc.want) {
			t.Errorf("%s: judged %q, want %q", tc.name, p, tc.want)
		}
	}
	r := healthy()
	r.Stacks[2].Status = "UPDATE_ROLLBACK_COMPLETE" // the last update failed, the stack works as before
	if p := judgeStatus(r); len(p) != 0 {
		t.Errorf("a stack rolled back to its last good state judged %v", p)
	}
}

func TestIsCDKLogicalID(t *testing.T) {
	for id, want := range map[string]bool{
		"JobsDF1CC2D4": true, "JobsDeadLetter4FD84C94": false, "Jobs": false, "JobsDF1CC2D4X": false, "JobsZZZZZZZZ": false,
	} {
		if got := isCDKLogicalID(id, "Jobs"); got != want {
			t.Errorf("isCDKLogicalID(%q, Jobs) = %v", id, got)
		}
	}
	if !isCDKLogicalID("JobsDeadLetter4FD84C94", "JobsDeadLetter") {
		t.Error("the dead-letter queue's ID is not recognised")
	}
}

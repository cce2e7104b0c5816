package ctl_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/ctl"
	"github.com/tetherhq/tether/internal/diagspool"
	"github.com/tetherhq/tether/internal/wire"
)

// A refused diag command says what is wrong and what to do, in the
// operator's terms, and changes nothing.
func TestDiagRefusalsSayWhatToDo(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	req := wire.DiagnosticRequest{ID: "dg_waiting", Reason: "slow uploads", RequestedAt: at}
	if err := diagspool.Record(data, req, []diagspool.PreviewFile{{Name: "versions.json", Content: []byte("{}\n")}}, diagspool.StatePending, at); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := ctl.RunEnv(context.Background(), append(args, "--data-dir", data), ctl.Env{Stdout: &out})
		return out.String(), err
	}
	// A record from an agent that predates requesters says so.
	if out, err := run("diag", "list"); err != nil || !strings.Contains(out, "(not recorded)") || !strings.Contains(out, "slow uploads") {
		t.Fatalf("diag list: %v\n%s", err, out)
	}
	for _, cmd := range []string{"preview", "approve", "decline"} {
		_, err := run("diag", cmd, "dg_unknown")
		if err == nil || !strings.Contains(err.Error(), "there is no request dg_unknown in "+data) ||
			!strings.Contains(err.Error(), "tetherctl diag list") || !strings.Contains(err.Error(), "nothing was changed") {
			t.Errorf("diag %s of an unknown ID: %v", cmd, err)
		}
	}
	if _, err := run("diag", "approve", "dg_waiting"); err != nil {
		t.Fatalf("approve: %v", err)
	}
	_, err := run("diag", "decline", "dg_waiting")
	if err == nil || !strings.Contains(err.Error(), "not waiting for a decision") || !strings.Contains(err.Error(), "approved") {
		t.Errorf("decline after approve: %v", err)
	}
	ds, err := diagspool.List(data)
	if err != nil || len(ds) != 1 || ds[0].State != diagspool.StateApproved {
		t.Fatalf("after the refusals: %+v, %v; want the one request still approved", ds, err)
	}
}

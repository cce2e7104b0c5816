package diagreview

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/diagspool"
	"github.com/tetherhq/tether/internal/wire"
)

// The round trip both sides rely on: the agent records, tetherctl lists,
// previews and approves or declines, the agent reads and moves on.
func TestRecordListPreviewApproveDecline(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	files := []diagspool.PreviewFile{{Name: "versions.json", Content: []byte("{}\n")}, {Name: "agent-log.txt", Content: []byte("log\n")}}
	for i, id := range []string{"dg_one", "dg_two"} {
		r := wire.DiagnosticRequest{ID: id, Reason: "why " + id, RequestedAt: at.Add(time.Duration(i) * time.Minute)}
		if err := diagspool.Record(data, r, files, diagspool.StatePending, at); err != nil {
			t.Fatalf("diagspool.Record %s: %v", id, err)
		}
		if !diagspool.Recorded(data, id) {
			t.Fatalf("diagspool.Recorded(%s) = false after diagspool.Record", id)
		}
	}
	ds, err := diagspool.List(data)
	if err != nil || len(ds) != 2 || ds[0].ID != "dg_one" || ds[0].State != diagspool.StatePending || ds[1].Reason != "why dg_two" {
		t.Fatalf("diagspool.List = %+v, %v", ds, err)
	}
	got, err := Preview(data, "dg_one")
	if err != nil || len(got) != 2 || got[0].Name != "agent-log.txt" || got[1].Size != 3 {
		t.Fatalf("Preview = %+v, %v", got, err)
	}
	if req, err := diagspool.Read(data, "dg_one"); err != nil || req.Reason != "why dg_one" {
		t.Fatalf("diagspool.Read = %+v, %v", req, err)
	}
	if err := Approve(data, "dg_one", at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := Decline(data, "dg_one", at.Add(time.Hour)); !errors.Is(err, diagspool.ErrNotPending) {
		t.Fatalf("decline after approve = %v, want diagspool.ErrNotPending", err)
	}
	if err := Decline(data, "dg_two", at.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if d, err := diagspool.Read(data, "dg_two"); err != nil || d.State != diagspool.StateDeclined || !d.UpdatedAt.Equal(at.Add(2*time.Hour)) {
		t.Fatalf("diagspool.Read after decline = %+v, %v", d, err)
	}
	if err := Approve(data, "../../etc", at); !errors.Is(err, diagspool.ErrUnknownDiagnostic) {
		t.Fatalf("approve with a path = %v", err)
	}
	if _, err := Preview(data, "dg_missing"); !errors.Is(err, diagspool.ErrUnknownDiagnostic) {
		t.Fatalf("preview of a missing request = %v", err)
	}

	// A collected file changed after it was built is neither shown nor sent.
	if err := os.WriteFile(filepath.Join(data, "diagnostics", "dg_one", "bundle", "versions.json"), []byte(`{"x":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := diagspool.ReadBundle(data, "dg_one"); !errors.Is(err, diagspool.ErrBundleChanged) || !strings.Contains(err.Error(), "versions.json") {
		t.Fatalf("diagspool.ReadBundle of a changed bundle = %v", err)
	}
}

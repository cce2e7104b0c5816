package diagspool

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/boundary"
	"github.com/tetherhq/tether/internal/wire"
)

// A bundle built before manifests were written holds the collected files
// and nothing else.
func TestReadBundleWithoutManifest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bundle"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range append(legacyFiles(), "stray.swp") {
		if err := os.WriteFile(filepath.Join(dir, "bundle", name), []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	files, err := readBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != strings.Join(legacyFiles(), ",") {
		t.Fatalf("bundle without a manifest = %v, want %v", names, legacyFiles())
	}
}

// The round trip both sides rely on: the agent records, tetherctl lists,
// previews and approves or declines, the agent reads and moves on.
func TestRecordListPreviewApproveDecline(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	files := []PreviewFile{{Name: "versions.json", Content: []byte("{}\n")}, {Name: "agent-log.txt", Content: []byte("log\n")}}
	for i, id := range []string{"dg_one", "dg_two"} {
		r := wire.DiagnosticRequest{ID: id, Reason: "why " + id, RequestedAt: at.Add(time.Duration(i) * time.Minute)}
		if err := Record(data, r, files, StatePending, at); err != nil {
			t.Fatalf("Record %s: %v", id, err)
		}
		if !Recorded(data, id) {
			t.Fatalf("Recorded(%s) = false after Record", id)
		}
	}
	ds, err := List(data)
	if err != nil || len(ds) != 2 || ds[0].ID != "dg_one" || ds[0].State != StatePending || ds[1].Reason != "why dg_two" {
		t.Fatalf("List = %+v, %v", ds, err)
	}
	got, err := Preview(data, "dg_one")
	if err != nil || len(got) != 2 || got[0].Name != "agent-log.txt" || got[1].Size != 3 {
		t.Fatalf("Preview = %+v, %v", got, err)
	}
	if req, err := ReadRequest(data, "dg_one"); err != nil || req.Reason != "why dg_one" {
		t.Fatalf("ReadRequest = %+v, %v", req, err)
	}
	if err := Approve(data, "dg_one"); err != nil {
		t.Fatal(err)
	}
	if err := Decline(data, "dg_one"); !errors.Is(err, ErrNotPending) {
		t.Fatalf("decline after approve = %v, want ErrNotPending", err)
	}
	if err := Decline(data, "dg_two"); err != nil {
		t.Fatal(err)
	}
	if d, err := Read(data, "dg_two"); err != nil || d.State != StateDeclined {
		t.Fatalf("Read after decline = %+v, %v", d, err)
	}
	if err := Approve(data, "../../etc"); !errors.Is(err, ErrUnknownDiagnostic) {
		t.Fatalf("approve with a path = %v", err)
	}
	if _, err := Preview(data, "dg_missing"); !errors.Is(err, ErrUnknownDiagnostic) {
		t.Fatalf("preview of a missing request = %v", err)
	}

	// A collected file changed after it was built is neither shown nor sent.
	if err := os.WriteFile(filepath.Join(data, "diagnostics", "dg_one", "bundle", "versions.json"), []byte(`{"x":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBundle(data, "dg_one"); !errors.Is(err, ErrBundleChanged) || !strings.Contains(err.Error(), "versions.json") {
		t.Fatalf("ReadBundle of a changed bundle = %v", err)
	}
}

// tetherctl links this package, so it may not pull in the agent or any
// package that reads documents, their storage or their queue.
func TestImportsNeitherAgentNorDocuments(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := append(boundary.DocumentReaders(), boundary.AgentPackage)
	for _, p := range strings.Fields(string(out)) {
		if boundary.Matches(p, forbidden) {
			t.Errorf("diagspool links %s", p)
		}
	}
}

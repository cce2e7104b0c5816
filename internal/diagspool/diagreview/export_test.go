package diagreview_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/diagspool"
	"github.com/tetherhq/tether/internal/diagspool/diagreview"
)

func exportJSON(t testing.TB, files []diagspool.PreviewFile) []byte {
	b, err := json.Marshal(files)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseExport(t *testing.T) {
	good := []diagspool.PreviewFile{
		{Name: "versions.json", Size: 2, Content: []byte("{}")},
		{Name: "agent-log.txt", Size: 3, Content: []byte("ok\n")},
	}
	files, err := diagreview.ParseExport(exportJSON(t, good))
	if err != nil || len(files) != 2 || files[0].Name != "agent-log.txt" {
		t.Fatalf("ParseExport = %+v, %v; want both files sorted by name", files, err)
	}
	for name, bad := range map[string][]byte{
		"not JSON":      []byte("<html>"),
		"empty":         []byte("[]"),
		"unknown field": []byte(`[{"name":"a","size":0,"content":"","extra":1}]`),
		"path":          exportJSON(t, []diagspool.PreviewFile{{Name: "../etc/passwd", Size: 0}}),
		"hidden":        exportJSON(t, []diagspool.PreviewFile{{Name: ".swp", Size: 0}}),
		"twice":         exportJSON(t, []diagspool.PreviewFile{{Name: "a", Size: 0}, {Name: "a", Size: 0}}),
		"size":          exportJSON(t, []diagspool.PreviewFile{{Name: "a", Size: 5, Content: []byte("x")}}),
		"trailing":      append(exportJSON(t, good), []byte("[]")...),
	} {
		if _, err := diagreview.ParseExport(bad); !errors.Is(err, diagreview.ErrBadExport) {
			t.Errorf("%s: ParseExport = %v, want ErrBadExport", name, err)
		}
	}
}

// Whatever ParseExport accepts are plain, distinct, sorted file names whose
// sizes are their contents' lengths.
func FuzzParseExport(f *testing.F) {
	f.Add([]byte(`[{"name":"versions.json","size":2,"content":"e30="}]`))
	f.Add([]byte(`[{"name":"a","size":0,"content":null},{"name":"b","size":1,"content":"eA=="}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		files, err := diagreview.ParseExport(b)
		if err != nil {
			return
		}
		for i, file := range files {
			if strings.ContainsAny(file.Name, "/\\") || strings.HasPrefix(file.Name, ".") || file.Size != int64(len(file.Content)) {
				t.Fatalf("accepted %+v", file)
			}
			if i > 0 && files[i-1].Name >= file.Name {
				t.Fatalf("not sorted or repeated: %q then %q", files[i-1].Name, file.Name)
			}
		}
	})
}

package diagreview

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"

	"github.com/tetherhq/tether/internal/diagspool"
)

// ErrBadExport means the agent's answer to a bundle export is not a bundle.
var ErrBadExport = errors.New("diagreview: the agent's diagnostics bundle does not parse")

// Bounds on an exported bundle: the agent collects five files, the largest
// its log's last 256 KiB.
const (
	maxExportFiles = 20
	maxExportBytes = 8 << 20
)

var exportName = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$`)

// ParseExport reads the bundle the agent's status page builds on request
// (GET /diagnostics/bundle.json: the files a diagnostics request would get,
// redacted) and returns its files sorted by name, as a request's preview
// and upload order them, each with its size. Names must be plain file
// names, each once.
func ParseExport(b []byte) ([]diagspool.PreviewFile, error) {
	if len(b) > 2*maxExportBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than a bundle can be", ErrBadExport, len(b))
	}
	var files []diagspool.PreviewFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&files); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadExport, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the file list", ErrBadExport)
	}
	if len(files) == 0 || len(files) > maxExportFiles {
		return nil, fmt.Errorf("%w: %d files, want 1 to %d", ErrBadExport, len(files), maxExportFiles)
	}
	seen := map[string]bool{}
	var total int64
	for i, f := range files {
		if !exportName.MatchString(f.Name) || seen[f.Name] {
			return nil, fmt.Errorf("%w: file name %q is not a plain file name given once", ErrBadExport, truncate(f.Name))
		}
		seen[f.Name] = true
		// The agent leaves the size out (0); one given must be right.
		if f.Size != 0 && f.Size != int64(len(f.Content)) {
			return nil, fmt.Errorf("%w: %s says %d bytes and holds %d", ErrBadExport, f.Name, f.Size, len(f.Content))
		}
		files[i].Size = int64(len(f.Content))
		if total += f.Size; total > maxExportBytes {
			return nil, fmt.Errorf("%w: more than %d bytes", ErrBadExport, maxExportBytes)
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, nil
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

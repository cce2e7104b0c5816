package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tetherhq/tether/internal/atomicfile"
)

// writeFileAtomic is atomicfile.Write: a crash leaves the old file or the
// new one, never half.
var writeFileAtomic = atomicfile.Write

// writeJSONAtomic writes v as indented JSON (these files are for operators
// to read) with writeFileAtomic.
func writeJSONAtomic(path string, v any, perm os.FileMode) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	return writeFileAtomic(path, append(data, '\n'), perm)
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return nil
}

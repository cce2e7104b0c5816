package planecmd

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// writeNew copies r into a new file at path (0600, never overwriting) and
// returns the size and hex SHA-256 of what was written.
func writeNew(path string, r io.Reader) (int64, string, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, "", fmt.Errorf("--out %s: %w (it is never overwritten; choose another name)", path, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return 0, "", fmt.Errorf("write %s: %w", path, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

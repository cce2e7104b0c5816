package agent

import (
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"sync"

	"github.com/tetherhq/tether/internal/atomicfile"
)

func encodePub(k ed25519.PrivateKey) string {
	return base64.RawURLEncoding.EncodeToString(k.Public().(ed25519.PublicKey))
}

// loadHistory reads the saved health history; a missing or unreadable file
// just starts a new one (it is a diagnostic aid, not a record).
func loadHistory(path string) []HealthRecord {
	var h []HealthRecord
	if atomicfile.ReadJSON(path, &h) != nil || len(h) > maxHistory {
		return nil
	}
	return h
}

// rotatingFile is the agent's log file: appended to, and moved to ".1"
// (replacing the previous one) when it passes max bytes, so the agent's own
// logs never use more than twice max on disk.
type rotatingFile struct {
	mu   sync.Mutex
	path string
	max  int64
	f    *os.File
	size int64
}

func openRotating(path string, max int64) (*rotatingFile, error) {
	r := &rotatingFile{path: path, max: max}
	return r, r.open()
}

func (r *rotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size = f, fi.Size()
	return nil
}

func (r *rotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return len(p), nil // closed: stderr still has the line
	}
	if r.size+int64(len(p)) > r.max && r.size > 0 {
		r.f.Close()
		r.f = nil // until open succeeds
		if err := os.Rename(r.path, r.path+".1"); err != nil {
			return 0, err
		}
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *rotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

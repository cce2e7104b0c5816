// Package diagreview is tetherctl's side of the agent's diagnostics
// requests (internal/diagspool): the operator previews a bundle, then
// approves or declines it. The agent records, reads and uploads but never
// runs these, so they live apart and the agent does not link them; the
// on-disk format and the state transitions stay in diagspool.
package diagreview

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/tetherhq/tether/internal/diagspool"
)

// ErrBundleNotReady: the agent has not built the request's bundle yet.
var ErrBundleNotReady = errors.New("diagspool: the agent has not built this bundle yet")

// Preview returns the bundle's files, which are exactly what an approval
// uploads: the files the agent collected, as their manifest records them.
// Anything else in bundle/ is neither shown nor sent, and a collected file
// that changed since is refused (diagspool.ErrBundleChanged).
func Preview(dataDir, id string) ([]diagspool.PreviewFile, error) {
	if _, err := diagspool.Read(dataDir, id); err != nil {
		return nil, fmt.Errorf("diagspool: preview %s: %w", id, err)
	}
	files, err := diagspool.ReadBundle(dataDir, id)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("diagspool: preview %s: %w", id, ErrBundleNotReady)
	}
	if err != nil {
		return nil, fmt.Errorf("diagspool: preview %s: %w", id, err)
	}
	return files, nil
}

// Approve lets the running agent upload the bundle on its next heartbeat.
// It works whether or not the agent is running; the approval is a file, so
// it survives restarts. now is when it was decided.
func Approve(dataDir, id string, now time.Time) error {
	return diagspool.Transition(dataDir, id, diagspool.StatePending, diagspool.StateApproved, now)
}

// Decline marks a request declined; nothing is ever sent for it.
func Decline(dataDir, id string, now time.Time) error {
	return diagspool.Transition(dataDir, id, diagspool.StatePending, diagspool.StateDeclined, now)
}

package reqverify

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrNonceStoreFull is returned by MemoryNonces.Remember when it holds Max
// unexpired nonces. Refusing is the safe failure: forgetting a live nonce
// would let that request be replayed.
var ErrNonceStoreFull = errors.New("reqsign: nonce store is full")

// DefaultMaxNonces bounds a MemoryNonces with Max unset. At one request per
// install per few seconds and a ten-minute window it covers thousands of
// installs.
const DefaultMaxNonces = 1 << 20

// MemoryNonces is a NonceStore in memory, for tests and single-node planes.
// Entries expire at their until time and are swept when the store fills.
// The zero value is ready to use.
type MemoryNonces struct {
	Max int              // default DefaultMaxNonces
	Now func() time.Time // default time.Now

	mu   sync.Mutex
	seen map[nonceKey]time.Time
}

type nonceKey struct{ install, nonce string }

// Remember implements NonceStore.
func (m *MemoryNonces) Remember(_ context.Context, installID, nonce string, until time.Time) (bool, error) {
	clock := m.Now
	if clock == nil {
		clock = time.Now
	}
	now := clock()
	max := m.Max
	if max <= 0 {
		max = DefaultMaxNonces
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = make(map[nonceKey]time.Time)
	}
	k := nonceKey{installID, nonce}
	if exp, ok := m.seen[k]; ok && now.Before(exp) {
		return false, nil
	}
	if len(m.seen) >= max {
		// Sweeping only when full keeps Remember O(1) amortized.
		for k, exp := range m.seen {
			if !now.Before(exp) {
				delete(m.seen, k)
			}
		}
		if len(m.seen) >= max {
			return false, ErrNonceStoreFull
		}
	}
	m.seen[k] = until
	return true, nil
}

// Len returns how many nonces are held, expired ones included until the next
// sweep.
func (m *MemoryNonces) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.seen)
}

package plane

import (
	"context"
	"crypto/ed25519"
	"sync"
	"time"
)

// keyCache remembers install public keys for a few seconds, sparing the
// database a lookup on every signed request. Only successful lookups are
// cached (unknown IDs cannot fill it), and a revoke or re-key through this
// process drops the entry at once (a lookup racing it is not cached either);
// another plane process sharing the database sees a revoke or re-key within
// keyCacheTTL. Heartbeats are refused by the store's own
// revoked check regardless.
type keyCache struct {
	ttl    time.Duration
	now    func() time.Time
	lookup func(ctx context.Context, installID string) (ed25519.PublicKey, error)

	mu sync.Mutex
	m  map[string]cachedKey
	// forgets counts forget calls, so a lookup that started before one
	// (and may have read the old key) does not put its answer back.
	forgets uint64
}

type cachedKey struct {
	key     ed25519.PublicKey
	expires time.Time
}

const keyCacheTTL = 5 * time.Second

func (c *keyCache) get(ctx context.Context, installID string) (ed25519.PublicKey, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[installID]
	gen := c.forgets
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.key, nil
	}
	k, err := c.lookup(ctx, installID)
	if err != nil {
		c.forget(installID)
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.forgets {
		return k, nil // a revoke or re-key ran meanwhile: use the answer once, cache nothing
	}
	if c.m == nil || len(c.m) > 100_000 {
		c.m = map[string]cachedKey{} // a crude bound; a fleet is far smaller
	}
	c.m[installID] = cachedKey{key: k, expires: now.Add(c.ttl)}
	return k, nil
}

func (c *keyCache) forget(installID string) {
	c.mu.Lock()
	delete(c.m, installID)
	c.forgets++
	c.mu.Unlock()
}

// Package testtime is time for tests: a clock that moves only when the test
// moves it, and a wait for a condition that polls instead of sleeping a
// guessed length of time.
package testtime

import (
	"sync"
	"testing"
	"time"
)

// Clock is a clock a test sets. Its Now method is what the code under test
// is given as its clock. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// pollEvery is how often Until checks its condition.
const pollEvery = 20 * time.Millisecond

// Until returns as soon as ok reports true, checking it every few
// milliseconds, and fails the test if it has not after limit. The limit
// only bounds a broken test; it is not a performance assertion, so make it
// generous.
func Until(t testing.TB, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	if !Wait(limit, ok) {
		t.Fatalf("gave up after %s waiting for %s", limit, what)
	}
}

// Wait is Until for a caller that reports the failure itself: it returns
// whether ok came true within limit.
func Wait(limit time.Duration, ok func() bool) bool {
	giveUp := time.NewTimer(limit)
	defer giveUp.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for !ok() {
		select {
		case <-giveUp.C:
			return ok()
		case <-tick.C:
		}
	}
	return true
}

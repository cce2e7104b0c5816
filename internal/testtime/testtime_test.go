package testtime

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestClockMovesOnlyWhenAdvanced(t *testing.T) {
	t.Parallel()
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c := NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now = %v, want %v", got, start)
	}
	c.Advance(90 * time.Second)
	if got, want := c.Now(), start.Add(90*time.Second); !got.Equal(want) {
		t.Fatalf("after Advance(90s) Now = %v, want %v", got, want)
	}
}

func TestUntilReturnsWhenTheConditionHolds(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	Until(t, time.Minute, "the third check", func() bool { return calls.Add(1) >= 3 })
	if n := calls.Load(); n != 3 {
		t.Fatalf("condition checked %d times, want 3 (Until must stop as soon as it holds)", n)
	}
}

// fatalRecorder records a Fatalf instead of ending the test.
type fatalRecorder struct {
	testing.TB
	failed string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.failed = format
	panic(f)
}

func TestUntilFailsAfterTheLimit(t *testing.T) {
	t.Parallel()
	rec := &fatalRecorder{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil && r != any(rec) {
				panic(r)
			}
		}()
		Until(rec, time.Millisecond, "something that never happens", func() bool { return false })
	}()
	if rec.failed == "" {
		t.Fatal("Until returned for a condition that never held")
	}
}

package api

import (
	"testing"
	"time"
)

func TestPacedDeadline(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		rate, n int64
		want    time.Duration // after start
	}{
		{1000, 0, 30 * time.Second},
		{1000, 1000, 31 * time.Second},
		{1000, 1500, 31500 * time.Millisecond},
		{8 << 10, 32 << 20, 30*time.Second + 4096*time.Second},
		{1, 5 << 30, 30*time.Second + (5<<30)*time.Second}, // no overflow at the largest upload and slowest rate
		{1 << 30, 5<<30 + 1<<29, 35500 * time.Millisecond},
	} {
		p := &paced{start: start, grace: 30 * time.Second, rate: tc.rate, n: tc.n}
		if got := p.deadline().Sub(start); got != tc.want {
			t.Errorf("rate %d, %d bytes: deadline %v after start, want %v", tc.rate, tc.n, got, tc.want)
		}
	}
}

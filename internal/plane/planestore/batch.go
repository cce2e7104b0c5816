package planestore

import (
	"context"
	"sync"
	"time"
)

// batcher groups concurrent calls into shared database round trips: while a
// batch is being written, new arrivals queue, and the next batch takes them
// all (up to max). Under light load every batch has one item and nothing
// waits; under heavy load one transaction commits many heartbeats or nonces,
// which is what lets the plane keep up with a large fleet.
//
// Each caller still gets its own result, and only after its batch committed,
// so batching changes no guarantee a caller sees.
type batcher[In, Out any] struct {
	max     int // items per batch
	workers int // batches written at once
	write   func(ctx context.Context, in []In) ([]Out, error)

	mu      sync.Mutex
	queue   []*batchCall[In, Out]
	running int
}

type batchCall[In, Out any] struct {
	in   In
	out  Out
	err  error
	done chan struct{}
}

// batchTimeout bounds one batch's write. A batch serves many requests, so it
// runs on its own context rather than any one caller's.
const batchTimeout = 30 * time.Second

// do queues in and waits for its batch. If ctx ends first the caller stops
// waiting, but the item is still written with its batch.
func (b *batcher[In, Out]) do(ctx context.Context, in In) (Out, error) {
	c := &batchCall[In, Out]{in: in, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	if b.running < b.workers {
		b.running++
		go b.loop()
	}
	b.mu.Unlock()
	select {
	case <-c.done:
		return c.out, c.err
	case <-ctx.Done():
		var zero Out
		return zero, ctx.Err()
	}
}

func (b *batcher[In, Out]) loop() {
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.running--
			b.mu.Unlock()
			return
		}
		n := min(len(b.queue), b.max)
		batch := make([]*batchCall[In, Out], n)
		copy(batch, b.queue)
		b.queue = b.queue[n:]
		b.mu.Unlock()

		ins := make([]In, n)
		for i, c := range batch {
			ins[i] = c.in
		}
		ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
		outs, err := b.write(ctx, ins)
		cancel()
		for i, c := range batch {
			if err != nil {
				c.err = err
			} else {
				c.out = outs[i]
			}
			close(c.done)
		}
	}
}

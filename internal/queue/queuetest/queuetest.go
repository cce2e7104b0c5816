// Package queuetest is the conformance suite every queue.Queue must pass, so
// the database queue of the embedded default and SQS in production give the
// document service the same delivery semantics.
//
// Where SQS is deliberately looser than the database queue, the suite checks
// what both promise and the database queue's own tests check the rest:
// deleting with a superseded or unknown receipt handle may succeed on SQS
// (as AWS documents), but it must never delete the current delivery.
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/queue"
	"github.com/tetherhq/tether/internal/testtime"
)

// Subject is a queue under test.
type Subject struct {
	Queue queue.Queue
	// Now is the clock the queue stamps its messages with.
	Now func() time.Time
	// Advance moves the queue's clock forward by d. It is nil for a real
	// server (the SQS emulators), whose clock a test cannot set: the suite
	// then waits the time out in its receives, with 1-second visibility
	// timeouts, the shortest SQS's whole-second granularity allows.
	Advance func(d time.Duration)
}

// elapse lets d pass on the queue's clock and returns how long the next
// receive must wait to see what that time brings: nothing when the clock
// was moved, d when only real time will do.
func (s Subject) elapse(d time.Duration) time.Duration {
	if s.Advance == nil {
		return d
	}
	s.Advance(d)
	return 0
}

// Run exercises a Queue. newQueue must return an empty queue that
// dead-letters a message on the receive after its maxReceives-th delivery.
// Subtests run in parallel, each with its own queue. With a queue whose
// clock the suite can move it takes no time; on a real server it waits out
// 1-second visibility timeouts, several seconds in all.
func Run(t *testing.T, newQueue func(t *testing.T, maxReceives int) Subject) {
	RunWithGaps(t, newQueue, Gaps{})
}

// Gaps names behaviour that an emulator used in tests is known to get wrong
// where AWS does not, each with the reason; the suite logs such a check
// instead of making it. Only emulators have gaps: a Queue the product ships
// runs with none.
type Gaps struct {
	// SupersededHandles: the server still honours a delivery's receipt
	// handle after the message was delivered again, so a stale Extend
	// succeeds and a stale Delete removes the current delivery.
	SupersededHandles string
	// ConcurrentReceives: two receivers asking at the same moment may be
	// handed the same message.
	ConcurrentReceives string
}

// RunWithGaps is Run, minus the checks gaps names.
func RunWithGaps(t *testing.T, newQueue func(t *testing.T, maxReceives int) Subject, gaps Gaps) {
	tests := []struct {
		name string
		fn   func(*testing.T, func(*testing.T, int) Subject)
	}{
		{"SendReceiveDelete", testSendReceiveDelete},
		{"Redelivery", func(t *testing.T, nq func(*testing.T, int) Subject) { testRedelivery(t, nq, gaps) }},
		{"Extend", testExtend},
		{"DeadLetter", testDeadLetter},
		{"Stats", testStats},
		{"ConcurrentReceivers", func(t *testing.T, nq func(*testing.T, int) Subject) { testConcurrentReceivers(t, nq, gaps) }},
		{"InvalidInput", testInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newQueue)
		})
	}
}

func send(t *testing.T, q queue.Queue, body string) {
	t.Helper()
	if err := q.Send(context.Background(), []byte(body)); err != nil {
		t.Fatalf("Send(%q): %v", body, err)
	}
}

// receiveN receives until it has n messages, failing after 10 seconds.
func receiveN(t *testing.T, q queue.Queue, n int, visibility time.Duration) []queue.Message {
	t.Helper()
	var got []queue.Message
	giveUp := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case <-giveUp:
			t.Fatalf("received %d messages in 10s, want %d", len(got), n)
		default:
		}
		msgs, err := q.Receive(context.Background(), min(n-len(got), queue.MaxBatch), visibility, time.Second)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		got = append(got, msgs...)
	}
	if len(got) > n {
		t.Fatalf("received %d messages, want %d", len(got), n)
	}
	return got
}

func receiveOne(t *testing.T, q queue.Queue, visibility, wait time.Duration) queue.Message {
	t.Helper()
	msgs, err := q.Receive(context.Background(), 1, visibility, wait)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if len(msgs) != 1 {
		t.Fatalf("Receive returned %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

func wantNone(t *testing.T, q queue.Queue, wait time.Duration, why string) {
	t.Helper()
	msgs, err := q.Receive(context.Background(), queue.MaxBatch, time.Second, wait)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if len(msgs) != 0 {
		t.Fatalf("Receive returned %d messages (first %q, receive count %d); want none: %s",
			len(msgs), msgs[0].Body, msgs[0].ReceiveCount, why)
	}
}

func del(t *testing.T, q queue.Queue, m queue.Message) {
	t.Helper()
	if err := q.Delete(context.Background(), m.ReceiptHandle); err != nil {
		t.Fatalf("Delete(%s): %v", m.ID, err)
	}
}

// wantStats polls Stats until the counts match (SQS's are approximate and
// may lag), failing after 5 seconds.
func wantStats(t *testing.T, q queue.Queue, visible, inFlight, dead int) queue.Stats {
	t.Helper()
	var s queue.Stats
	testtime.Until(t, 5*time.Second, fmt.Sprintf("Stats to show Visible %d, InFlight %d, DeadLetter %d", visible, inFlight, dead), func() bool {
		var err error
		if s, err = q.Stats(context.Background()); err != nil {
			t.Fatalf("Stats: %v", err)
		}
		return s.Visible == visible && s.InFlight == inFlight && s.DeadLetter == dead
	})
	return s
}

func testSendReceiveDelete(t *testing.T, newQueue func(*testing.T, int) Subject) {
	s := newQueue(t, 5)
	q := s.Queue
	before := s.Now()
	bodies := map[string]bool{`{"document_id":"d1"}`: true, "plain": true, "ünïcødé ✓": true}
	for b := range bodies {
		send(t, q, b)
	}
	got := receiveN(t, q, len(bodies), 30*time.Second)
	ids, handles := map[string]bool{}, map[string]bool{}
	for _, m := range got {
		if !bodies[string(m.Body)] {
			t.Errorf("received unexpected or repeated body %q", m.Body)
		}
		delete(bodies, string(m.Body))
		if m.ReceiveCount != 1 {
			t.Errorf("first delivery has ReceiveCount %d, want 1", m.ReceiveCount)
		}
		if m.SentAt.Before(before.Add(-time.Minute)) || m.SentAt.After(s.Now().Add(time.Minute)) {
			t.Errorf("SentAt %v is not around the send at %v", m.SentAt, before)
		}
		if m.ID == "" || ids[m.ID] || m.ReceiptHandle == "" || handles[m.ReceiptHandle] {
			t.Errorf("message ID %q / handle %q empty or repeated", m.ID, m.ReceiptHandle)
		}
		ids[m.ID], handles[m.ReceiptHandle] = true, true
	}
	for _, m := range got {
		del(t, q, m)
	}
	wantNone(t, q, s.elapse(time.Second), "every message was deleted")
	wantStats(t, q, 0, 0, 0)
}

func testRedelivery(t *testing.T, newQueue func(*testing.T, int) Subject, gaps Gaps) {
	ctx := context.Background()
	s := newQueue(t, 5)
	q := s.Queue
	send(t, q, "job")
	first := receiveOne(t, q, time.Second, 2*time.Second)
	wantNone(t, q, 0, "the only message is in flight")

	second := receiveOne(t, q, 30*time.Second, s.elapse(2*time.Second)+3*time.Second)
	if second.ID != first.ID || string(second.Body) != "job" {
		t.Fatalf("redelivered %s %q, want %s %q", second.ID, second.Body, first.ID, "job")
	}
	if second.ReceiveCount != 2 {
		t.Errorf("redelivery has ReceiveCount %d, want 2", second.ReceiveCount)
	}
	if second.ReceiptHandle == first.ReceiptHandle {
		t.Fatal("redelivery reused the first delivery's receipt handle")
	}

	// The first receiver lost the message: it can no longer extend it, and
	// its delete must not take the message from the current receiver.
	if gaps.SupersededHandles != "" {
		t.Logf("superseded receipt handles not checked: %s", gaps.SupersededHandles)
	} else {
		if err := q.Extend(ctx, first.ReceiptHandle, 30*time.Second); !errors.Is(err, queue.ErrReceiptInvalid) {
			t.Errorf("Extend with a superseded handle = %v, want ErrReceiptInvalid", err)
		}
		if err := q.Delete(ctx, first.ReceiptHandle); err != nil && !errors.Is(err, queue.ErrReceiptInvalid) {
			t.Errorf("Delete with a superseded handle = %v, want nil or ErrReceiptInvalid", err)
		}
	}
	if err := q.Extend(ctx, second.ReceiptHandle, 30*time.Second); err != nil {
		t.Fatalf("current delivery lost after a superseded handle's Delete: Extend = %v", err)
	}
	wantStats(t, q, 0, 1, 0)
	del(t, q, second)
	wantNone(t, q, 0, "the message was deleted")
}

func testExtend(t *testing.T, newQueue func(*testing.T, int) Subject) {
	ctx := context.Background()
	s := newQueue(t, 5)
	q := s.Queue
	send(t, q, "long job")
	m := receiveOne(t, q, time.Second, 2*time.Second)
	if err := q.Extend(ctx, m.ReceiptHandle, 5*time.Second); err != nil {
		t.Fatalf("Extend: %v", err)
	}
	// Longer than the original 1s visibility, shorter than the extension.
	wantNone(t, q, s.elapse(2*time.Second), "the in-flight message was extended")
	del(t, q, m)
	if err := q.Extend(ctx, m.ReceiptHandle, 5*time.Second); !errors.Is(err, queue.ErrReceiptInvalid) {
		t.Errorf("Extend after Delete = %v, want ErrReceiptInvalid", err)
	}
	wantStats(t, q, 0, 0, 0)
}

func testDeadLetter(t *testing.T, newQueue func(*testing.T, int) Subject) {
	ctx := context.Background()
	s := newQueue(t, 2)
	q := s.Queue
	send(t, q, "poison")
	var id string
	for i := 1; i <= 2; i++ {
		wait := 3 * time.Second
		if i > 1 {
			wait = s.elapse(2*time.Second) + time.Second
		}
		m := receiveOne(t, q, time.Second, wait)
		if m.ReceiveCount != i {
			t.Fatalf("delivery %d has ReceiveCount %d", i, m.ReceiveCount)
		}
		id = m.ID
	}
	// The message becomes visible after 1s and the next receive moves it to
	// the dead-letter queue instead of delivering it a third time.
	wantNone(t, q, s.elapse(2*time.Second), "the message used up its 2 receives")
	wantNone(t, q, 0, "the message is dead-lettered")
	if st := wantStats(t, q, 0, 0, 1); st.OldestAge != 0 {
		t.Errorf("OldestAge = %v with only a dead letter, want 0", st.OldestAge)
	}

	r, ok := q.(queue.Redriver)
	if !ok {
		return
	}
	dead, err := r.DeadLetters(ctx, 10)
	if err != nil {
		t.Fatalf("DeadLetters: %v", err)
	}
	if len(dead) != 1 || dead[0].ID != id || string(dead[0].Body) != "poison" {
		t.Fatalf("DeadLetters = %+v, want the one poison message %s", dead, id)
	}
	wantStats(t, q, 0, 0, 1) // listing changed nothing
	if err := r.Redrive(ctx, "no-such-message"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Redrive of an unknown ID = %v, want ErrNotFound", err)
	}
	if err := r.Redrive(ctx, id); err != nil {
		t.Fatalf("Redrive: %v", err)
	}
	m := receiveOne(t, q, 30*time.Second, 3*time.Second)
	if string(m.Body) != "poison" || m.ReceiveCount != 1 {
		t.Fatalf("after Redrive received %q with ReceiveCount %d, want poison with 1", m.Body, m.ReceiveCount)
	}
	del(t, q, m)
	wantStats(t, q, 0, 0, 0)
}

func testStats(t *testing.T, newQueue func(*testing.T, int) Subject) {
	s := newQueue(t, 5)
	q := s.Queue
	if st := wantStats(t, q, 0, 0, 0); st.OldestAge != 0 {
		t.Errorf("empty queue has OldestAge %v", st.OldestAge)
	}
	for i := range 3 {
		send(t, q, fmt.Sprintf("s%d", i))
	}
	// So that ages are measurably above zero. A real server stamps messages
	// with its own clock, which only real time moves.
	if s.Advance != nil {
		s.Advance(50 * time.Millisecond)
	} else {
		time.Sleep(50 * time.Millisecond)
	}
	first := receiveOne(t, q, 30*time.Second, time.Second)
	st := wantStats(t, q, 2, 1, 0)
	if st.OldestAge <= 0 || st.OldestAge > time.Minute {
		t.Errorf("OldestAge = %v, want between 0 and a minute", st.OldestAge)
	}
	del(t, q, first)
	for _, m := range receiveN(t, q, 2, 30*time.Second) {
		del(t, q, m)
	}
	if st := wantStats(t, q, 0, 0, 0); st.OldestAge != 0 {
		t.Errorf("drained queue has OldestAge %v", st.OldestAge)
	}
}

func testConcurrentReceivers(t *testing.T, newQueue func(*testing.T, int) Subject, gaps Gaps) {
	q := newQueue(t, 5).Queue
	const n, receivers = 30, 5
	for i := range n {
		send(t, q, fmt.Sprintf("c%02d", i))
	}
	var mu sync.Mutex
	var got []queue.Message
	distinct := map[string]bool{}
	var errs []error
	giveUp, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range receivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for giveUp.Err() == nil {
				mu.Lock()
				done := len(distinct) >= n
				mu.Unlock()
				if done {
					return
				}
				// Long visibility: any message seen twice was handed to two
				// receivers at once.
				msgs, err := q.Receive(context.Background(), 4, time.Minute, time.Second)
				mu.Lock()
				got = append(got, msgs...)
				for _, m := range msgs {
					distinct[m.ID] = true
				}
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("Receive: %v", errors.Join(errs...))
	}
	seen := map[string]int{}
	for _, m := range got {
		seen[m.ID]++
	}
	var dup []string
	for id, c := range seen {
		if c > 1 {
			dup = append(dup, fmt.Sprintf("%s×%d", id, c))
		}
	}
	switch {
	case len(dup) > 0 && gaps.ConcurrentReceives != "":
		t.Logf("messages delivered to more than one receiver at once, not checked (%s): %s", gaps.ConcurrentReceives, strings.Join(dup, ", "))
	case len(dup) > 0:
		t.Fatalf("messages delivered to more than one receiver at once: %s", strings.Join(dup, ", "))
	}
	if len(seen) != n {
		t.Fatalf("receivers got %d distinct messages, want %d", len(seen), n)
	}
	latest := map[string]queue.Message{} // a message's last delivery holds the handle that counts
	for _, m := range got {
		latest[m.ID] = m
	}
	for _, m := range latest {
		del(t, q, m)
	}
	wantStats(t, q, 0, 0, 0)
}

func testInvalidInput(t *testing.T, newQueue func(*testing.T, int) Subject) {
	ctx := context.Background()
	q := newQueue(t, 5).Queue
	for name, body := range map[string][]byte{
		"empty":    nil,
		"NUL":      []byte("a\x00b"),
		"bad UTF8": {0xff, 0xfe},
		"too big":  []byte(strings.Repeat("x", queue.MaxBodyBytes+1)),
	} {
		if err := q.Send(ctx, body); !errors.Is(err, queue.ErrInvalidBody) {
			t.Errorf("Send(%s) = %v, want ErrInvalidBody", name, err)
		}
	}
	if err := q.Send(ctx, []byte(strings.Repeat("x", queue.MaxBodyBytes))); err != nil {
		t.Errorf("Send of exactly MaxBodyBytes: %v", err)
	}
	for _, c := range []struct {
		max       int
		vis, wait time.Duration
	}{
		{0, time.Second, 0}, {queue.MaxBatch + 1, time.Second, 0},
		{1, 0, 0}, {1, -time.Second, 0}, {1, queue.MaxVisibility + time.Second, 0},
		{1, time.Second, -time.Second}, {1, time.Second, queue.MaxWait + time.Second},
	} {
		if _, err := q.Receive(ctx, c.max, c.vis, c.wait); err == nil {
			t.Errorf("Receive(max %d, visibility %v, wait %v) succeeded", c.max, c.vis, c.wait)
		}
	}
	for _, h := range []string{"garbage", "", "x.y", "a.b.c"} {
		if err := q.Extend(ctx, h, time.Second); !errors.Is(err, queue.ErrReceiptInvalid) {
			t.Errorf("Extend(%q) = %v, want ErrReceiptInvalid", h, err)
		}
		if err := q.Delete(ctx, h); err != nil && !errors.Is(err, queue.ErrReceiptInvalid) {
			t.Errorf("Delete(%q) = %v, want nil or ErrReceiptInvalid", h, err)
		}
	}
	// None of that touched the one valid message.
	wantStats(t, q, 1, 0, 0)
}

// Package queue is the document service's job queue with SQS's semantics on
// every backend: at-least-once delivery, a visibility timeout the consumer
// extends while it works, a receive count, and a dead-letter queue after a
// configured number of receives. The embedded default keeps jobs in a
// database table; production uses Amazon SQS.
package queue

import (
	"context"
	"errors"
	"time"
)

// ErrReceiptInvalid is returned by Extend and Delete when the receipt handle
// no longer names an in-flight delivery (the message became visible again and
// was received by someone else, or was already deleted).
var ErrReceiptInvalid = errors.New("queue: receipt handle no longer valid")

// ErrNotFound is returned by Redrive for an ID that names no dead-lettered
// message.
var ErrNotFound = errors.New("queue: no such dead-lettered message")

// ErrInvalidBody is returned by Send for a body no backend can carry: empty,
// larger than MaxBodyBytes, or not text SQS accepts.
var ErrInvalidBody = errors.New("queue: invalid message body")

// Message is one delivery of a job.
type Message struct {
	ID            string
	Body          []byte
	ReceiptHandle string // names this delivery, for Extend and Delete
	ReceiveCount  int    // 1 on the first delivery
	SentAt        time.Time
}

// Stats is what /readyz, metrics and the agent's heartbeat report.
type Stats struct {
	Visible    int           // waiting to be received
	InFlight   int           // received, not yet deleted, still invisible
	DeadLetter int           // moved to the dead-letter queue
	OldestAge  time.Duration // age of the oldest message not dead-lettered; 0 when empty (see SQS.Stats)
}

// Queue is the seam between the document service and its job queue.
type Queue interface {
	// Send enqueues body.
	Send(ctx context.Context, body []byte) error
	// Receive returns up to max messages, each invisible for visibility, waiting
	// up to wait for one to arrive. A message received more times than the
	// queue's max receive count is moved to the dead-letter queue instead of
	// being returned.
	Receive(ctx context.Context, max int, visibility, wait time.Duration) ([]Message, error)
	// Extend makes an in-flight message invisible for visibility from now.
	Extend(ctx context.Context, receiptHandle string, visibility time.Duration) error
	// Delete acknowledges a message so it is never delivered again.
	Delete(ctx context.Context, receiptHandle string) error
	// Stats counts messages by state.
	Stats(ctx context.Context) (Stats, error)
}

// Redriver is implemented by queues whose dead letters an operator can list
// and move back for another try (after fixing what made them fail).
type Redriver interface {
	// DeadLetters lists up to max dead-lettered messages without changing
	// them. ReceiptHandle is empty: a dead letter cannot be extended or
	// deleted through the queue.
	DeadLetters(ctx context.Context, max int) ([]Message, error)
	// Redrive moves the dead-lettered message id back to the queue with a
	// fresh receive count, or returns ErrNotFound.
	Redrive(ctx context.Context, id string) error
}

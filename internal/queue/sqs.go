package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// SQS is the production queue: an Amazon SQS standard queue whose
// RedrivePolicy (maxReceiveCount) moves a message to the dead-letter queue
// after that many receives. Dead-lettering is SQS's job; this type only reads
// the dead-letter queue for Stats, DeadLetters and Redrive.
//
// Differences from DB that callers should know:
//   - Visibility and wait are whole seconds on SQS; shorter values round up.
//   - Delete with a superseded receipt handle returns success. fauxqs then
//     leaves the message alone; AWS documents that it might or might not
//     delete it. Handlers are idempotent by document ID, so either is safe.
//   - Redrive re-sends the body, so the message comes back with a new ID.
//   - The SDK leaves a zero WaitTimeSeconds out of the request, so Receive
//     with wait 0 waits for the queue's ReceiveMessageWaitTimeSeconds; keep
//     that attribute at 0 and let callers choose the wait.
type SQS struct {
	client   *sqs.Client
	url      string
	dlqURL   string
	now      func() time.Time
	mu       sync.Mutex
	inFlight map[string]delivery // by receipt handle, for Stats.OldestAge
}

type delivery struct {
	sentAt, until time.Time
}

// NewSQS returns the queue at queueURL. deadLetterURL is the queue its
// RedrivePolicy names; "" leaves Stats.DeadLetter at 0 and makes DeadLetters
// and Redrive fail.
func NewSQS(client *sqs.Client, queueURL, deadLetterURL string) *SQS {
	return &SQS{client: client, url: queueURL, dlqURL: deadLetterURL, now: time.Now, inFlight: map[string]delivery{}}
}

// seconds rounds d up to whole seconds, SQS's unit.
func seconds(d time.Duration) int32 {
	return int32((d + time.Second - 1) / time.Second)
}

// Send enqueues body.
func (q *SQS) Send(ctx context.Context, body []byte) error {
	if err := checkBody(body); err != nil {
		return fmt.Errorf("queue: send: %w", err)
	}
	_, err := q.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String(string(body))})
	if err != nil {
		return fmt.Errorf("queue: send: %w", err)
	}
	return nil
}

// Receive long-polls SQS for up to wait (rounded up to whole seconds).
func (q *SQS) Receive(ctx context.Context, max int, visibility, wait time.Duration) ([]Message, error) {
	if err := checkReceive(max, visibility, wait); err != nil {
		return nil, err
	}
	msgs, err := q.receive(ctx, q.url, max, visibility, wait)
	if err != nil {
		return nil, fmt.Errorf("queue: receive: %w", err)
	}
	q.track(msgs, visibility)
	return msgs, nil
}

func (q *SQS) receive(ctx context.Context, url string, max int, visibility, wait time.Duration) ([]Message, error) {
	out, err := q.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(url),
		MaxNumberOfMessages: int32(max),
		VisibilityTimeout:   seconds(visibility),
		WaitTimeSeconds:     seconds(wait),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{
			types.MessageSystemAttributeNameApproximateReceiveCount,
			types.MessageSystemAttributeNameSentTimestamp,
		},
	})
	if err != nil {
		return nil, err
	}
	msgs := make([]Message, 0, len(out.Messages))
	for _, m := range out.Messages {
		msg := Message{
			ID:            aws.ToString(m.MessageId),
			Body:          []byte(aws.ToString(m.Body)),
			ReceiptHandle: aws.ToString(m.ReceiptHandle),
		}
		// Both attributes were requested; a missing or garbled one leaves
		// the zero value rather than failing a delivery SQS already made.
		msg.ReceiveCount, _ = strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
		if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
			msg.SentAt = time.UnixMilli(ms)
		}
		msgs = append(msgs, msg)
	}
	return msgs, nil
}

// Extend changes the delivery's visibility timeout (whole seconds, rounded up).
func (q *SQS) Extend(ctx context.Context, receiptHandle string, visibility time.Duration) error {
	if err := checkVisibility(visibility); err != nil {
		return fmt.Errorf("queue: extend: %w", err)
	}
	if receiptHandle == "" {
		return fmt.Errorf("queue: extend: %w", ErrReceiptInvalid)
	}
	_, err := q.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(q.url), ReceiptHandle: aws.String(receiptHandle), VisibilityTimeout: seconds(visibility),
	})
	if err != nil {
		return fmt.Errorf("queue: extend: %w", receiptError(err))
	}
	q.mu.Lock()
	if d, ok := q.inFlight[receiptHandle]; ok {
		d.until = q.now().Add(visibility)
		q.inFlight[receiptHandle] = d
	}
	q.mu.Unlock()
	return nil
}

// Delete acknowledges the delivery. See the type's doc for superseded handles.
func (q *SQS) Delete(ctx context.Context, receiptHandle string) error {
	if receiptHandle == "" {
		return fmt.Errorf("queue: delete: %w", ErrReceiptInvalid)
	}
	_, err := q.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.url), ReceiptHandle: aws.String(receiptHandle)})
	if err != nil {
		return fmt.Errorf("queue: delete: %w", receiptError(err))
	}
	q.mu.Lock()
	delete(q.inFlight, receiptHandle)
	q.mu.Unlock()
	return nil
}

// receiptError maps SQS's ways of saying "that handle names no in-flight
// delivery" to ErrReceiptInvalid, keeping SQS's error in the chain.
func receiptError(err error) error {
	var invalid *types.ReceiptHandleIsInvalid
	var notInflight *types.MessageNotInflight
	if errors.As(err, &invalid) || errors.As(err, &notInflight) {
		return fmt.Errorf("%w: %w", ErrReceiptInvalid, err)
	}
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "InvalidParameterValue" &&
		strings.Contains(strings.ToLower(api.ErrorMessage()), "receipthandle") {
		return fmt.Errorf("%w: %w", ErrReceiptInvalid, err)
	}
	return err
}

// Stats reads the approximate counts SQS keeps for both queues; Visible
// includes delayed messages.
//
// OldestAge: SQS publishes the true figure only as the CloudWatch metric
// ApproximateAgeOfOldestMessage, the one to alarm on. Here it is the
// age of the oldest message this process has received and neither deleted
// nor let lapse back into the queue: a lower bound that shows a stuck worker,
// and 0 in a process that does not receive (the api).
func (q *SQS) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	attrs, err := q.counts(ctx, q.url)
	if err != nil {
		return Stats{}, fmt.Errorf("queue: stats: %w", err)
	}
	s.Visible = attrs[types.QueueAttributeNameApproximateNumberOfMessages] + attrs[types.QueueAttributeNameApproximateNumberOfMessagesDelayed]
	s.InFlight = attrs[types.QueueAttributeNameApproximateNumberOfMessagesNotVisible]
	if q.dlqURL != "" {
		dl, err := q.counts(ctx, q.dlqURL)
		if err != nil {
			return Stats{}, fmt.Errorf("queue: stats: dead-letter queue: %w", err)
		}
		for _, n := range dl {
			s.DeadLetter += n
		}
	}
	s.OldestAge = q.oldestInFlight()
	return s, nil
}

func (q *SQS) counts(ctx context.Context, url string) (map[types.QueueAttributeName]int, error) {
	names := []types.QueueAttributeName{
		types.QueueAttributeNameApproximateNumberOfMessages,
		types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
	}
	out, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: names})
	if err != nil {
		return nil, err
	}
	counts := make(map[types.QueueAttributeName]int, len(names))
	for _, name := range names {
		n, err := strconv.Atoi(out.Attributes[string(name)])
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", name, err)
		}
		counts[name] = n
	}
	return counts, nil
}

func (q *SQS) track(msgs []Message, visibility time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	q.pruneLocked(now)
	for _, m := range msgs {
		q.inFlight[m.ReceiptHandle] = delivery{sentAt: m.SentAt, until: now.Add(visibility)}
	}
}

// pruneLocked forgets deliveries whose visibility lapsed: the queue, not
// this process, holds those messages now.
func (q *SQS) pruneLocked(now time.Time) {
	for h, d := range q.inFlight {
		if !now.Before(d.until) {
			delete(q.inFlight, h)
		}
	}
}

func (q *SQS) oldestInFlight() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	q.pruneLocked(now)
	var oldest time.Time
	for _, d := range q.inFlight {
		if oldest.IsZero() || d.sentAt.Before(oldest) {
			oldest = d.sentAt
		}
	}
	if oldest.IsZero() || !oldest.Before(now) {
		return 0
	}
	return now.Sub(oldest)
}

// peekVisibility hides dead letters from other readers while DeadLetters or
// Redrive looks through them; each is released as soon as it was looked at.
const peekVisibility = 30 * time.Second

// DeadLetters lists up to max messages from the dead-letter queue. SQS has
// no way to read without receiving, so each is received and at once made
// visible again; this raises the dead letter's receive count, which nothing
// acts on (the dead-letter queue has no redrive policy of its own).
func (q *SQS) DeadLetters(ctx context.Context, max int) ([]Message, error) {
	if max < 1 || max > maxDeadLetters {
		return nil, fmt.Errorf("queue: dead letters: max %d out of range 1..%d", max, maxDeadLetters)
	}
	var found []Message
	err := q.scanDeadLetters(ctx, func(m Message) (consumed, stop bool, err error) {
		m.ReceiptHandle = ""
		found = append(found, m)
		return false, len(found) >= max, nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue: dead letters: %w", err)
	}
	return found, nil
}

// Redrive finds the dead letter id and sends its body to the queue again,
// then deletes the dead letter. A crash between the two leaves a duplicate,
// never a loss; handlers are idempotent.
func (q *SQS) Redrive(ctx context.Context, id string) error {
	moved := false
	err := q.scanDeadLetters(ctx, func(m Message) (consumed, stop bool, err error) {
		if m.ID != id {
			return false, false, nil
		}
		if _, err := q.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String(string(m.Body))}); err != nil {
			return false, true, err
		}
		if _, err := q.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.dlqURL), ReceiptHandle: aws.String(m.ReceiptHandle)}); err != nil {
			return false, true, err
		}
		moved = true
		return true, true, nil
	})
	if err != nil {
		return fmt.Errorf("queue: redrive %s: %w", id, err)
	}
	if !moved {
		return fmt.Errorf("queue: redrive %s: %w", id, ErrNotFound)
	}
	return nil
}

// scanDeadLetters receives from the dead-letter queue, calling fn once per
// distinct message until fn says stop or a receive comes back empty, then
// makes every message fn did not consume visible again. Receives wait a
// second: long polling asks every SQS server, so an empty answer means empty.
func (q *SQS) scanDeadLetters(ctx context.Context, fn func(Message) (consumed, stop bool, err error)) (err error) {
	if q.dlqURL == "" {
		return errors.New("no dead-letter queue configured")
	}
	seen := map[string]bool{}
	var held []string
	defer func() {
		for _, h := range held {
			// A handle not released here becomes visible anyway when
			// peekVisibility lapses.
			_, relErr := q.client.ChangeMessageVisibility(context.WithoutCancel(ctx), &sqs.ChangeMessageVisibilityInput{
				QueueUrl: aws.String(q.dlqURL), ReceiptHandle: aws.String(h), VisibilityTimeout: 0,
			})
			err = errors.Join(err, relErr)
		}
	}()
	for {
		msgs, err := q.receive(ctx, q.dlqURL, MaxBatch, peekVisibility, time.Second)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			return nil
		}
		for i, m := range msgs {
			if seen[m.ID] {
				held = append(held, m.ReceiptHandle)
				continue
			}
			seen[m.ID] = true
			consumed, stop, err := fn(m)
			if !consumed {
				held = append(held, m.ReceiptHandle)
			}
			if err != nil || stop {
				for _, rest := range msgs[i+1:] {
					held = append(held, rest.ReceiptHandle)
				}
				return err
			}
		}
	}
}

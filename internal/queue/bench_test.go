package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/queue"
	"github.com/tetherhq/tether/internal/sqldb"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
)

// BenchmarkDBJob measures one job's queue traffic (send, receive, delete) on
// each database, to compare the embedded default with PostgreSQL.
func BenchmarkDBJob(b *testing.B) {
	for name, open := range map[string]func(testing.TB) *sqldb.DB{"sqlite": sqldbtest.SQLite, "postgres": sqldbtest.Postgres} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			q := queue.NewDB(open(b), "jobs", queue.DBOptions{})
			body := []byte(`{"document_id":"01HZXBENCH"}`)
			for b.Loop() {
				if err := q.Send(ctx, body); err != nil {
					b.Fatal(err)
				}
				msgs, err := q.Receive(ctx, 1, time.Minute, 0)
				if err != nil || len(msgs) != 1 {
					b.Fatalf("Receive = %d messages, %v", len(msgs), err)
				}
				if err := q.Delete(ctx, msgs[0].ReceiptHandle); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

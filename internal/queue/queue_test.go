package queue_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/fauxqstest"
	"github.com/tetherhq/tether/internal/queue"
	"github.com/tetherhq/tether/internal/queue/queuetest"
	"github.com/tetherhq/tether/internal/sqldb"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
	"github.com/tetherhq/tether/internal/testtime"
)

// dbSubject is a database queue on a clock the suite moves, so visibility
// timeouts pass without waiting.
func dbSubject(db *sqldb.DB, maxReceives int) queuetest.Subject {
	clock := testtime.NewClock(time.UnixMilli(1_800_000_000_000))
	q := queue.NewDB(db, "jobs", queue.DBOptions{MaxReceives: maxReceives, Clock: clock.Now, PollInterval: 10 * time.Millisecond})
	return queuetest.Subject{Queue: q, Now: clock.Now, Advance: clock.Advance}
}

func TestDBSQLiteConformance(t *testing.T) {
	t.Parallel()
	queuetest.Run(t, func(t *testing.T, maxReceives int) queuetest.Subject {
		return dbSubject(sqldbtest.SQLite(t), maxReceives)
	})
}

func TestDBPostgresConformance(t *testing.T) {
	t.Parallel()
	queuetest.Run(t, func(t *testing.T, maxReceives int) queuetest.Subject {
		return dbSubject(sqldbtest.Postgres(t), maxReceives)
	})
}

// The SQS suite runs against both SQS-compatible servers, fauxqs and moto's
// emulator, each through the real SDK. fauxqs is the stricter of the two.
func TestSQSConformance(t *testing.T) {
	t.Parallel()
	for _, server := range []struct {
		name  string
		start func(testing.TB) *sqs.Client
		gaps  queuetest.Gaps
	}{
		{"fauxqs", func(t testing.TB) *sqs.Client { return fauxqstest.Start(t).SQS() }, queuetest.Gaps{}},
		{"moto", func(t testing.TB) *sqs.Client { return awstest.Start(t).SQS() }, queuetest.Gaps{
			SupersededHandles:  "moto 5.2 accepts every receipt handle a message was ever given (AWS accepts only the latest); fauxqs checks it",
			ConcurrentReceives: "moto 5.2's threaded server does not make a receive atomic; fauxqs checks it",
		}},
	} {
		t.Run(server.name, func(t *testing.T) {
			t.Parallel()
			client := server.start(t)
			// A real server: its clock cannot be set, so the suite waits.
			queuetest.RunWithGaps(t, func(t *testing.T, maxReceives int) queuetest.Subject {
				url, dlq := queuetest.NewSQSQueues(t, client, maxReceives)
				return queuetest.Subject{Queue: queue.NewSQS(client, url, dlq), Now: time.Now}
			}, server.gaps)
		})
	}
}

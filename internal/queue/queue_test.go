package queue_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/fauxqstest"
	"github.com/tetherhq/tether/internal/queue"
	"github.com/tetherhq/tether/internal/queue/queuetest"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
)

func TestDBSQLiteConformance(t *testing.T) {
	t.Parallel()
	queuetest.Run(t, func(t *testing.T, maxReceives int) queue.Queue {
		return queue.NewDB(sqldbtest.SQLite(t), "jobs", queue.DBOptions{MaxReceives: maxReceives})
	})
}

func TestDBPostgresConformance(t *testing.T) {
	t.Parallel()
	queuetest.Run(t, func(t *testing.T, maxReceives int) queue.Queue {
		return queue.NewDB(sqldbtest.Postgres(t), "jobs", queue.DBOptions{MaxReceives: maxReceives})
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
			queuetest.RunWithGaps(t, func(t *testing.T, maxReceives int) queue.Queue {
				url, dlq := queuetest.NewSQSQueues(t, client, maxReceives)
				return queue.NewSQS(client, url, dlq)
			}, server.gaps)
		})
	}
}

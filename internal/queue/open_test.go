package queue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tetherhq/tether/internal/fauxqstest"
	"github.com/tetherhq/tether/internal/queue"
	"github.com/tetherhq/tether/internal/queue/queuetest"
	"github.com/tetherhq/tether/internal/sqldb"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
)

func TestOpen(t *testing.T) {
	t.Parallel()
	db := sqldbtest.SQLite(t)
	const (
		awsURL = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"
		awsDLQ = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs-dlq"
	)
	tests := []struct {
		name    string
		url     string
		o       queue.Options
		noDB    bool
		want    string // type name on success
		wantErr string
	}{
		{name: "db", url: "db://jobs", want: "*queue.DB"},
		{name: "sqs", url: awsURL, o: queue.Options{DeadLetterURL: awsDLQ}, want: "*queue.SQS"},
		{name: "sqs china", url: "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/jobs",
			o: queue.Options{DeadLetterURL: "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/dlq"}, want: "*queue.SQS"},
		{name: "custom endpoint", url: "http://sqs.us-east-1.localhost:4566/000000000000/jobs",
			o: queue.Options{Endpoint: "http://127.0.0.1:4566", DeadLetterURL: "http://sqs.us-east-1.localhost:4566/000000000000/dlq"}, want: "*queue.SQS"},
		{name: "db without database", url: "db://jobs", noDB: true, wantErr: "needs a database"},
		{name: "db bad name", url: "db://jobs!", wantErr: "db://<name>"},
		{name: "db with path", url: "db://jobs/x", wantErr: "db://<name>"},
		{name: "sqs without dlq", url: awsURL, wantErr: "dead-letter queue URL"},
		{name: "sqs dlq other region", url: awsURL, o: queue.Options{DeadLetterURL: "https://sqs.us-east-1.amazonaws.com/123456789012/d"}, wantErr: "one region"},
		{name: "sqs http", url: "http://sqs.eu-west-1.amazonaws.com/123456789012/jobs", o: queue.Options{DeadLetterURL: awsDLQ}, wantErr: "regional form"},
		{name: "sqs other host", url: "https://evil.example.com/123456789012/jobs", o: queue.Options{DeadLetterURL: awsDLQ}, wantErr: "regional form"},
		{name: "sqs bad path", url: "https://sqs.eu-west-1.amazonaws.com/jobs", o: queue.Options{DeadLetterURL: awsDLQ}, wantErr: "12-digit account"},
		{name: "sqs credentials in URL", url: "https://AKIA:secret@sqs.eu-west-1.amazonaws.com/123456789012/jobs", wantErr: "user"},
		{name: "scheme", url: "amqp://broker/jobs", wantErr: `unsupported scheme "amqp"`},
		{name: "unparseable", url: "::", wantErr: "does not parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := db
			if tt.noDB {
				d = nil
			}
			tt.o.AWS = aws.Config{Region: "us-east-1"}
			q, err := queue.Open(context.Background(), tt.url, d, tt.o)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open(%q) = %v, want error containing %q", tt.url, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error leaks a credential: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.url, err)
			}
			if got := typeName(q); got != tt.want {
				t.Errorf("Open(%q) built %s, want %s", tt.url, got, tt.want)
			}
		})
	}
}

func typeName(q queue.Queue) string {
	switch q.(type) {
	case *queue.DB:
		return "*queue.DB"
	case *queue.SQS:
		return "*queue.SQS"
	}
	return "other"
}

func TestOpenSQSAgainstEndpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := fauxqstest.Start(t)
	url, dlq := queuetest.NewSQSQueues(t, srv.SQS(), 3)
	q, err := queue.Open(ctx, url, nil, queue.Options{AWS: srv.AWSConfig(), Endpoint: srv.Endpoint(), DeadLetterURL: dlq})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Send(ctx, []byte("via Open")); err != nil {
		t.Fatal(err)
	}
	msgs, err := q.Receive(ctx, 1, time.Second, time.Second)
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != "via Open" {
		t.Fatalf("Receive = %+v, %v", msgs, err)
	}
}

// FuzzOpen feeds arbitrary queue URLs to Open: it must never panic, and
// anything it accepts must be one of the documented forms.
func FuzzOpen(f *testing.F) {
	for _, s := range []string{"db://jobs", "https://sqs.us-east-1.amazonaws.com/123456789012/jobs", "db://", "https://x/1/2", "::", "db://a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := queue.Open(context.Background(), raw, &sqldb.DB{}, queue.Options{
			DeadLetterURL: "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
		})
		if err != nil {
			return
		}
		switch q.(type) {
		case *queue.DB:
			if !strings.HasPrefix(strings.ToLower(raw), "db://") {
				t.Fatalf("Open(%q) built a DB queue", raw)
			}
		case *queue.SQS:
			if !strings.HasPrefix(strings.ToLower(raw), "https://sqs.us-east-1.amazonaws.com/") {
				t.Fatalf("Open(%q) built an SQS queue outside us-east-1's SQS host", raw)
			}
		}
	})
}

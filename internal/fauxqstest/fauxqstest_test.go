package fauxqstest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tetherhq/tether/internal/fauxqstest"
)

func TestStartServesS3AndSQS(t *testing.T) {
	ctx := context.Background()
	srv := fauxqstest.Start(t)
	if !strings.HasPrefix(srv.Endpoint(), "http://127.0.0.1:") {
		t.Fatalf("Endpoint = %q, want a loopback URL", srv.Endpoint())
	}
	if _, err := srv.S3().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("probe")}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	if _, err := srv.S3().HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("probe")}); err != nil {
		t.Fatalf("HeadBucket: %v", err)
	}
	q, err := srv.SQS().CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("probe")})
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	if _, err := srv.SQS().SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String("x")}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
}

func TestCleanupStopsServer(t *testing.T) {
	var endpoint string
	t.Run("owner", func(t *testing.T) {
		endpoint = fauxqstest.Start(t).Endpoint()
	})
	// The subtest's cleanup has run: nothing may answer any more.
	resp, err := http.Get(endpoint + "/health")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("fauxqs still answers at %s after its test finished", endpoint)
	}
}

package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3 stores objects in an S3 bucket under an optional prefix, encrypted at
// rest with the customer's KMS key (SSE-KMS) when one is configured, else
// with S3-managed keys (SSE-S3). The encryption is requested on every
// PutObject rather than left to the bucket default, so a bucket whose default
// was changed still receives only encrypted objects.
type S3 struct {
	client   *s3.Client
	bucket   string
	prefix   string // "" or ends with "/"
	kmsKeyID string

	// plainHTTP is set for an http:// endpoint (an S3-compatible server in
	// development or tests). The SDK signs a body's SHA-256 or streams a
	// trailing checksum, and both need TLS or a seekable body; a streamed
	// upload has neither, so over plain HTTP the payload goes unsigned.
	// Against AWS (always HTTPS) the SDK's trailing CRC checksum is kept.
	plainHTTP bool
}

// NewS3 returns a store for bucket. prefix ("" or e.g. "tenant/docs") is put
// in front of every key; kmsKeyID selects SSE-KMS with that key.
func NewS3(client *s3.Client, bucket, prefix, kmsKeyID string) *S3 {
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	plain := strings.HasPrefix(aws.ToString(client.Options().BaseEndpoint), "http://")
	return &S3{client: client, bucket: bucket, prefix: prefix, kmsKeyID: kmsKeyID, plainHTTP: plain}
}

func (s *S3) objectKey(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// Put uploads exactly size bytes from r under key in one PutObject request.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	k, err := s.objectKey(key)
	if err != nil {
		return fmt.Errorf("blob: put: %w", err)
	}
	if size < 0 {
		return fmt.Errorf("blob: put %s: negative size %d", key, size)
	}
	body := newExactReader(ctx, r, size)
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(k),
		Body:          body,
		ContentLength: aws.Int64(size),
		ContentType:   aws.String("application/octet-stream"),
	}
	if s.kmsKeyID != "" {
		in.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		in.SSEKMSKeyId = aws.String(s.kmsKeyID)
	} else {
		in.ServerSideEncryption = types.ServerSideEncryptionAes256
	}
	var opts []func(*s3.Options)
	if s.plainHTTP {
		opts = append(opts, func(o *s3.Options) {
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
		})
	}
	if _, err := s.client.PutObject(ctx, in, opts...); err != nil {
		return fmt.Errorf("blob: put %s: %w", key, body.cause(err))
	}
	return nil
}

// Get opens the object under key, or returns ErrNotFound.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return nil, fmt.Errorf("blob: get: %w", err)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
	if isNotFound(err) {
		return nil, fmt.Errorf("blob: get %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blob: get %s: %w", key, err)
	}
	return out.Body, nil
}

// Delete removes key. S3 answers success for a missing key.
func (s *S3) Delete(ctx context.Context, key string) error {
	k, err := s.objectKey(key)
	if err != nil {
		return fmt.Errorf("blob: delete: %w", err)
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)}); err != nil {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	return nil
}

// Ping checks the bucket exists and the caller may reach it (HeadBucket).
func (s *S3) Ping(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)}); err != nil {
		return fmt.Errorf("blob: ping bucket: %w", err)
	}
	return nil
}

// Usage lists every object under the prefix (1000 per request) and totals
// them. On a large bucket this is many requests; S3 Storage Lens or the
// bucket's CloudWatch metrics are cheaper when available.
func (s *S3) Usage(ctx context.Context) (objects, bytes int64, err error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket)}
	if s.prefix != "" {
		in.Prefix = aws.String(s.prefix)
	}
	p := s3.NewListObjectsV2Paginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("blob: usage: %w", err)
		}
		for _, o := range page.Contents {
			objects++
			bytes += aws.ToInt64(o.Size)
		}
	}
	return objects, bytes, nil
}

func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	// A missing bucket is also a 404, but it is a misconfiguration, not a
	// missing object, and must not read as one.
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "NoSuchBucket" {
		return false
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}

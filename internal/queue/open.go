package queue

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tetherhq/tether/internal/sqldb"
)

// Options configures the queues Open can build.
type Options struct {
	AWS           aws.Config // credentials for SQS; the region comes from the queue URL
	DeadLetterURL string     // the SQS dead-letter queue's URL; required for SQS
	// MaxReceives is the DB queue's deliveries before dead-lettering (default
	// 5). SQS takes it from the queue's RedrivePolicy instead.
	MaxReceives int
	// Endpoint sends SQS requests to an SQS-compatible server instead of
	// AWS, and lets the queue URLs be any http(s) URL.
	Endpoint string
	Clock    func() time.Time // for the DB queue; default time.Now
}

const acceptedQueueForms = `"db://<name>", or an SQS queue URL as the SQS console shows it (https, path /<account>/<name>)`

var (
	queueName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)
	sqsHost   = regexp.MustCompile(`^sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$`)
	sqsPath   = regexp.MustCompile(`^/[0-9]{12}/[A-Za-z0-9_-]{1,80}$`)
	anyPath   = regexp.MustCompile(`^/[^/]+/[A-Za-z0-9_-]{1,80}$`)
)

// Open builds the queue rawURL names: "db://<name>" for the jobs table in db,
// or an SQS queue URL. db may be nil for SQS.
func Open(ctx context.Context, rawURL string, db *sqldb.DB, o Options) (Queue, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("queue: queue URL %q does not parse; want %s", rawURL, acceptedQueueForms)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("queue: queue URL %q has parts a queue URL does not take (user, query, fragment); want %s", u.Redacted(), acceptedQueueForms)
	}
	switch u.Scheme {
	case "db":
		if !queueName.MatchString(u.Host) || u.Path != "" {
			return nil, fmt.Errorf("queue: queue URL %q: want db://<name>, name of 1-80 letters, digits, '-' or '_'", rawURL)
		}
		if db == nil {
			return nil, fmt.Errorf("queue: queue URL %q needs a database, and none was given", rawURL)
		}
		return NewDB(db, u.Host, DBOptions{MaxReceives: o.MaxReceives, Clock: o.Clock}), nil
	case "https", "http":
		region, err := sqsRegion(u, o.Endpoint != "")
		if err != nil {
			return nil, fmt.Errorf("queue: queue URL %q: %w; want %s", rawURL, err, acceptedQueueForms)
		}
		if o.DeadLetterURL == "" {
			return nil, fmt.Errorf("queue: queue URL %q: an SQS queue needs its dead-letter queue URL too", rawURL)
		}
		dl, err := url.Parse(o.DeadLetterURL)
		if err != nil {
			return nil, fmt.Errorf("queue: dead-letter queue URL %q does not parse", o.DeadLetterURL)
		}
		dlRegion, err := sqsRegion(dl, o.Endpoint != "")
		if err != nil {
			return nil, fmt.Errorf("queue: dead-letter queue URL %q: %w", o.DeadLetterURL, err)
		}
		if dlRegion != region {
			return nil, fmt.Errorf("queue: dead-letter queue is in %s, the queue in %s; SQS needs both in one region", dlRegion, region)
		}
		client := sqs.NewFromConfig(o.AWS, func(so *sqs.Options) {
			if region != "" {
				so.Region = region
			}
			if o.Endpoint != "" {
				so.BaseEndpoint = aws.String(o.Endpoint)
			}
		})
		return NewSQS(client, rawURL, o.DeadLetterURL), nil
	default:
		return nil, fmt.Errorf("queue: queue URL %q has unsupported scheme %q; want %s", rawURL, u.Scheme, acceptedQueueForms)
	}
}

// sqsRegion checks an SQS queue URL and returns the region in its host. With
// a custom endpoint any http(s) URL ending /<account>/<name> passes, and the
// region is left to the AWS config.
func sqsRegion(u *url.URL, customEndpoint bool) (string, error) {
	if customEndpoint {
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !anyPath.MatchString(u.Path) {
			return "", errors.New("not an http(s) URL ending /<account>/<name>")
		}
		return "", nil
	}
	m := sqsHost.FindStringSubmatch(u.Host)
	if u.Scheme != "https" || m == nil {
		return "", errors.New("not an SQS queue URL in AWS's regional form (set an endpoint to use another SQS-compatible server)")
	}
	if !sqsPath.MatchString(u.Path) {
		return "", errors.New("path is not /<12-digit account>/<queue name>")
	}
	return m[1], nil
}

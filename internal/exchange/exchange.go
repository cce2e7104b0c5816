// Package exchange is the agent exchange bucket: one S3 bucket per AWS
// deployment through which an operator, from a workstation and with IAM
// permissions only, reviews and decides the vendor's diagnostics requests
// and checks the egress ledger of an agent whose data directory only the
// agent can mount. Its keys and what each holds are in docs/agent.md ("The
// exchange bucket").
//
// The agent (Mirror) writes everything but decision.json and reads only
// decision.json. It applies a decision as a local approval or decline
// (diagspool.Transition) and approves only when the approval names the
// manifest the agent itself built and every bundle file still matches it;
// the bundle it uploads is read from its own data directory, never from the
// bucket, so a file or manifest changed in the bucket is refused and nothing
// is sent. tetherctl's half, which reads the rest and writes decision.json,
// is internal/exchange/operator, which the agent does not link.
//
// This package is the one way the agent and tetherctl reach S3
// (boundary.Gateways): it addresses only the bucket it is given, and only
// those keys.
package exchange

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	jsonv2 "github.com/go-json-experiment/json"

	"github.com/tetherhq/tether/internal/wire"
)

// Key prefixes and names in the bucket.
const (
	DiagnosticsPrefix = "diagnostics/"
	LedgerPrefix      = "ledger/"
	DecisionFile      = "decision.json"
	SegmentPrefix     = LedgerPrefix + "egress.ledger/"
	HeadKey           = LedgerPrefix + "egress.ledger.head"
	// LedgerBytesMeta is the head object's metadata key for the ledger's
	// length it goes with.
	LedgerBytesMeta = "ledger-bytes"
)

// maxObject bounds what is read back from the bucket: a ledger segment
// (the mirror writes at most segmentBytes plus one line, itself at most
// about 32 MiB), a bundle file, a record's JSON.
const maxObject = 48 << 20

var (
	// ErrNotFound is a key (or request) the bucket does not hold.
	ErrNotFound = errors.New("exchange: not in the bucket")
	// ErrDecided means decision.json already exists: a request is decided
	// once.
	ErrDecided = errors.New("exchange: the request already has a decision")
)

// DeniedError is a call that IAM or the bucket policy refused. Action is
// the IAM action that was missing (s3:GetObject, ...), Resource the ARN.
type DeniedError struct {
	Action, Resource string
	Err              error
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("access denied: %s on %s was refused (%s)", e.Action, e.Resource, apiMessage(e.Err))
}

func (e *DeniedError) Unwrap() error { return e.Err }

// Client reads and writes one exchange bucket.
type Client struct {
	s3     *s3.Client
	bucket string
}

// New returns a client of bucket. endpoint, when not nil, overrides the S3
// endpoint (AWS_ENDPOINT_URL_S3); a custom endpoint (an S3-compatible
// server, a test's emulator) is addressed path-style.
func New(cfg aws.Config, bucket string, endpoint *string) *Client {
	return &Client{bucket: bucket, s3: s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != nil {
			o.BaseEndpoint = endpoint
		}
		o.UsePathStyle = o.BaseEndpoint != nil
		// Objects here are small and written without a checksum; the
		// SDK's note about skipping validation would only be noise on the
		// operator's terminal and in the agent's log.
		o.DisableLogOutputChecksumValidationSkipped = true
	})}
}

// Bucket is the bucket's name.
func (c *Client) Bucket() string { return c.bucket }

func (c *Client) arn(key string) string {
	if key == "" {
		return "arn:aws:s3:::" + c.bucket
	}
	return "arn:aws:s3:::" + c.bucket + "/" + key
}

// wrap names the call, the permission it needed and the resource.
func (c *Client) wrap(action, key string, err error) error {
	if err == nil {
		return nil
	}
	var apiErr smithy.APIError
	var respErr *smithyhttp.ResponseError
	status := 0
	if errors.As(err, &respErr) {
		status = respErr.HTTPStatusCode()
	}
	code := ""
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	switch {
	case code == "AccessDenied" || code == "Forbidden" || code == "AllAccessDisabled" || status == http.StatusForbidden:
		return &DeniedError{Action: action, Resource: c.arn(key), Err: err}
	case code == "NoSuchKey" || code == "NotFound" || (status == http.StatusNotFound && code != "NoSuchBucket"):
		return fmt.Errorf("%w: s3://%s/%s", ErrNotFound, c.bucket, key)
	case code == "NoSuchBucket":
		return fmt.Errorf("exchange: there is no bucket %s (%s): check the deployment's data stack", c.bucket, action)
	}
	return fmt.Errorf("exchange: %s s3://%s/%s: %s", action, c.bucket, key, apiMessage(err))
}

func apiMessage(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if m := apiErr.ErrorMessage(); m != "" {
			return apiErr.ErrorCode() + ": " + m
		}
		return apiErr.ErrorCode()
	}
	return err.Error()
}

// Put writes key; with once it refuses to replace an object there
// (ErrDecided).
func (c *Client) Put(ctx context.Context, key string, body []byte, once bool) error {
	return c.putMeta(ctx, key, body, once, nil)
}

func (c *Client) putMeta(ctx context.Context, key string, body []byte, once bool, meta map[string]string) error {
	in := &s3.PutObjectInput{Bucket: &c.bucket, Key: &key, Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))), Metadata: meta}
	if once {
		in.IfNoneMatch = aws.String("*")
	}
	_, err := c.s3.PutObject(ctx, in)
	var apiErr smithy.APIError
	if once && errors.As(err, &apiErr) && (apiErr.ErrorCode() == "PreconditionFailed" || apiErr.ErrorCode() == "ConditionalRequestConflict") {
		return fmt.Errorf("%w (s3://%s/%s)", ErrDecided, c.bucket, key)
	}
	return c.wrap("s3:PutObject", key, err)
}

// Get reads key (ErrNotFound if there is none).
func (c *Client) Get(ctx context.Context, key string) ([]byte, error) {
	data, _, err := c.GetMeta(ctx, key)
	return data, err
}

// GetMeta reads key and its metadata, at most maxObject bytes.
func (c *Client) GetMeta(ctx context.Context, key string) ([]byte, map[string]string, error) {
	out, err := c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &c.bucket, Key: &key})
	if err != nil {
		return nil, nil, c.wrap("s3:GetObject", key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, maxObject+1))
	if err != nil {
		return nil, nil, c.wrap("s3:GetObject", key, err)
	}
	if len(data) > maxObject {
		return nil, nil, fmt.Errorf("exchange: s3://%s/%s is over %d bytes, more than the agent ever writes there", c.bucket, key, maxObject)
	}
	return data, out.Metadata, nil
}

// Object is a key listed in the bucket.
type Object struct {
	Key  string
	Size int64
}

// List lists the keys under prefix, in key order.
func (c *Client) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	p := s3.NewListObjectsV2Paginator(c.s3, &s3.ListObjectsV2Input{Bucket: &c.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, c.wrap("s3:ListBucket", "", err)
		}
		for _, o := range page.Contents {
			out = append(out, Object{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size)})
		}
	}
	return out, nil
}

// RecordKey is the key of a request's file name (request.json, bundle/<file>, ...).
func RecordKey(id, name string) string { return DiagnosticsPrefix + id + "/" + name }

// Decisions an operator writes.
const (
	Approve = "approve"
	Decline = "decline"
)

// maxDecision bounds decision.json; a real one is about 300 bytes.
const maxDecision = 4096

// Decision is diagnostics/<id>/decision.json.
type Decision struct {
	Decision string    `json:"decision"` // approve or decline
	By       string    `json:"by"`       // the caller's ARN (sts:GetCallerIdentity)
	At       time.Time `json:"at"`
	// ManifestSHA256 is the hex SHA-256 of the manifest.json the operator
	// previewed; the agent approves only the bundle it names. Required to
	// approve; optional to decline.
	ManifestSHA256 string `json:"manifest_sha256,omitempty"`
}

// ParseDecision reads a decision.json strictly: one JSON object with only
// the fields above, each once and well-formed.
func ParseDecision(data []byte) (Decision, error) {
	var d Decision
	if len(data) > maxDecision {
		return d, fmt.Errorf("decision.json is %d bytes, over %d: it is not one tetherctl wrote; write it with tetherctl diag approve|decline", len(data), maxDecision)
	}
	if err := jsonv2.Unmarshal(data, &d, jsonv2.RejectUnknownMembers(true)); err != nil {
		return Decision{}, fmt.Errorf("decision.json is not a decision (%v); write it with tetherctl diag approve|decline", err)
	}
	switch d.Decision {
	case Approve:
		if !wire.ValidSHA256(d.ManifestSHA256) {
			return Decision{}, fmt.Errorf("decision.json: manifest_sha256 %q is not 64 lowercase hex digits; an approval names the manifest previewed", d.ManifestSHA256)
		}
	case Decline:
		if d.ManifestSHA256 != "" && !wire.ValidSHA256(d.ManifestSHA256) {
			return Decision{}, fmt.Errorf("decision.json: manifest_sha256 %q is not 64 lowercase hex digits", d.ManifestSHA256)
		}
	default:
		return Decision{}, fmt.Errorf("decision.json: decision %q: want approve or decline", d.Decision)
	}
	if !validARN(d.By) {
		return Decision{}, fmt.Errorf("decision.json: by %q is not an ARN (arn:...): it names who decided", d.By)
	}
	if d.At.IsZero() {
		return Decision{}, errors.New("decision.json: at is missing: it says when the decision was made")
	}
	return d, nil
}

func validARN(s string) bool {
	if len(s) > 2048 || !strings.HasPrefix(s, "arn:") || strings.Count(s, ":") < 5 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r > '~' {
			return false
		}
	}
	return true
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// CheckBucketName checks an S3 bucket name (3-63 characters of a-z, 0-9,
// '.' and '-', starting and ending with a letter or digit, no "..", not
// an IP address) and says what is wrong.
func CheckBucketName(name string) error {
	if len(name) < 3 || len(name) > 63 {
		return fmt.Errorf("%q is not an S3 bucket name: it must be 3 to 63 characters", name)
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '.' && r != '-' {
			return fmt.Errorf("%q is not an S3 bucket name: only a-z, 0-9, '.' and '-' (the bucket's name, not an ARN or URL)", name)
		}
	}
	isAlnum := func(b byte) bool { return (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') }
	if !isAlnum(name[0]) || !isAlnum(name[len(name)-1]) || strings.Contains(name, "..") || net.ParseIP(name) != nil {
		return fmt.Errorf("%q is not an S3 bucket name: it starts and ends with a letter or digit, has no '..' and is not an IP address", name)
	}
	return nil
}

// Package exchange is the agent exchange bucket: one S3 bucket per AWS
// deployment through which an operator, from a workstation and with IAM
// permissions only (no shell in a container, no inbound port), reviews and
// decides the vendor's diagnostics requests and checks the egress ledger
// of an agent whose data directory only the agent can mount.
//
// In the bucket:
//
//	diagnostics/<id>/request.json      the vendor's request     } copied by the agent
//	diagnostics/<id>/manifest.json     the bundle's manifest    } byte for byte from its
//	diagnostics/<id>/bundle/<file>     each file the manifest   } data dir (internal/diagspool),
//	                                   lists, hash-checked      } state.json last, and again
//	diagnostics/<id>/state.json        pending, approved, ...   } at each change
//	diagnostics/<id>/decision.json     written once by the operator (tetherctl diag
//	                                   approve|decline): approve or decline, the
//	                                   caller's ARN, the time and, for an approval,
//	                                   the SHA-256 of the manifest.json it saw
//	ledger/egress.ledger/<offset>      the ledger's bytes from byte <offset> (20
//	                                   digits) on: append-only segments
//	ledger/egress.ledger.head          the ledger's head file, as of the last segment;
//	                                   its metadata ledger-bytes says how many of
//	                                   the ledger's bytes it goes with
//
// The agent (Mirror) writes everything but decision.json, and reads only
// decision.json. It applies a decision exactly as a local approval or
// decline (diagspool.Transition), and approves only when the approval names
// the manifest the agent itself built and every bundle file still matches
// it; the bundle it then uploads is read from its own data directory, never
// from the bucket. A file changed in the bucket is therefore refused by
// tetherctl's preview (its hash no longer matches the manifest), and a
// manifest changed in the bucket makes the approval name another manifest,
// which the agent refuses: in neither case is anything sent.
//
// The mirror carries nothing new: the request and the redacted bundle the
// operator previews, their states, and the ledger of what was sent.
//
// This package is the one way the agent and tetherctl reach S3
// (boundary.Gateways): it addresses only the bucket it is given, and only
// the keys above.
package exchange

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
)

// Key prefixes and names in the bucket.
const (
	DiagnosticsPrefix = "diagnostics/"
	LedgerPrefix      = "ledger/"
	DecisionFile      = "decision.json"
	segmentPrefix     = LedgerPrefix + "egress.ledger/"
	headKey           = LedgerPrefix + "egress.ledger.head"
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

func (c *Client) put(ctx context.Context, key string, body []byte, once bool) error {
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

func (c *Client) get(ctx context.Context, key string) ([]byte, error) {
	data, _, err := c.getMeta(ctx, key)
	return data, err
}

func (c *Client) getMeta(ctx context.Context, key string) ([]byte, map[string]string, error) {
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

type object struct {
	key  string
	size int64
}

func (c *Client) list(ctx context.Context, prefix string) ([]object, error) {
	var out []object
	p := s3.NewListObjectsV2Paginator(c.s3, &s3.ListObjectsV2Input{Bucket: &c.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, c.wrap("s3:ListBucket", "", err)
		}
		for _, o := range page.Contents {
			out = append(out, object{key: aws.ToString(o.Key), size: aws.ToInt64(o.Size)})
		}
	}
	return out, nil
}

func recordKey(id, name string) string { return DiagnosticsPrefix + id + "/" + name }

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
// the fields above, each well-formed.
func ParseDecision(data []byte) (Decision, error) {
	var d Decision
	if len(data) > maxDecision {
		return d, fmt.Errorf("decision.json is %d bytes, over %d: it is not one tetherctl wrote; write it with tetherctl diag approve|decline", len(data), maxDecision)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return Decision{}, fmt.Errorf("decision.json is not a decision (%v); write it with tetherctl diag approve|decline", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Decision{}, errors.New("decision.json has more after its object; write it with tetherctl diag approve|decline")
	}
	switch d.Decision {
	case Approve:
		if !isSHA256(d.ManifestSHA256) {
			return Decision{}, fmt.Errorf("decision.json: manifest_sha256 %q is not 64 lowercase hex digits; an approval names the manifest previewed", d.ManifestSHA256)
		}
	case Decline:
		if d.ManifestSHA256 != "" && !isSHA256(d.ManifestSHA256) {
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

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
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

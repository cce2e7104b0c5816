package exchange

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/tetherhq/tether/internal/wire"
)

const testARN = "arn:aws:iam::123456789012:user/operator"

func TestParseDecision(t *testing.T) {
	t.Parallel()
	sum := strings.Repeat("ab", 32)
	good := []string{
		`{"decision":"approve","by":"` + testARN + `","at":"2026-12-01T10:00:00Z","manifest_sha256":"` + sum + `"}`,
		`{"decision":"decline","by":"arn:aws:sts::123456789012:assumed-role/Ops/jane","at":"2026-12-01T10:00:00Z"}`,
	}
	for _, s := range good {
		if _, err := ParseDecision([]byte(s)); err != nil {
			t.Errorf("ParseDecision(%s) = %v", s, err)
		}
	}
	bad := map[string]string{
		`{"decision":"approve","by":"` + testARN + `","at":"2026-12-01T10:00:00Z"}`:                                                  "manifest_sha256",
		`{"decision":"approve","by":"` + testARN + `","at":"2026-12-01T10:00:00Z","manifest_sha256":"` + strings.ToUpper(sum) + `"}`: "manifest_sha256",
		`{"decision":"yes","by":"` + testARN + `","at":"2026-12-01T10:00:00Z"}`:                                                      `"yes"`,
		`{"decision":"decline","by":"jane","at":"2026-12-01T10:00:00Z"}`:                                                             `"jane"`,
		`{"decision":"decline","by":"` + testARN + `"}`:                                                                              "at is missing",
		`{"decision":"decline","by":"` + testARN + `","at":"2026-12-01T10:00:00Z","extra":1}`:                                        "extra",
		`{"decision":"decline","by":"` + testARN + `","at":"2026-12-01T10:00:00Z"} {}`:                                               "after top-level value",
		`{"decision":"decline","decision":"approve","by":"` + testARN + `","at":"2026-12-01T10:00:00Z"}`:                             "duplicate",
		`[]`: "not a decision",
		``:   "not a decision",
		`{"decision":"decline","by":"` + testARN + `","at":"2026-12-01T10:00:00Z","manifest_sha256":"` + strings.Repeat("a", 5000) + `"}`: "over 4096",
	}
	for in, want := range bad {
		if _, err := ParseDecision([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseDecision(%.80s) = %v, want an error naming %q", in, err, want)
		}
	}
}

// FuzzParseDecision: whatever is in the bucket, parsing never panics, and a
// decision it accepts is one of the two, with a caller ARN and a time, and
// reads back the same.
func FuzzParseDecision(f *testing.F) {
	f.Add([]byte(`{"decision":"approve","by":"` + testARN + `","at":"2026-12-01T10:00:00Z","manifest_sha256":"` + strings.Repeat("0", 64) + `"}`))
	f.Add([]byte(`{"decision":"decline","by":"` + testARN + `","at":"2026-12-01T10:00:00Z"}`))
	f.Add([]byte(`{"decision":"approve"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDecision(data)
		if err != nil {
			return
		}
		if (d.Decision != Approve && d.Decision != Decline) || !validARN(d.By) || d.At.IsZero() ||
			(d.Decision == Approve && !wire.ValidSHA256(d.ManifestSHA256)) {
			t.Fatalf("accepted %+v", d)
		}
	})
}

// moto's server enforces IAM only when started with
// INITIAL_NO_AUTH_ACTION_COUNT, for the whole process, and awstest's
// servers are shared and started without it (decision 0007), so no test
// here gets a real AccessDenied from S3. The decision on the SDK's own
// error shape is tested instead: a 403 AccessDenied, as aws-sdk-go-v2
// returns it, names the permission that was missing and the resource.
func TestAccessDeniedNamesThePermission(t *testing.T) {
	t.Parallel()
	c := New(aws.Config{Region: "us-east-1"}, "tether-acme-exchange", nil)
	sdkErr := &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: http.StatusForbidden}},
			Err:      &smithy.GenericAPIError{Code: "AccessDenied", Message: "User is not authorized to perform: s3:GetObject"},
		},
	}}
	err := c.wrap("s3:GetObject", "diagnostics/dg_x/state.json", sdkErr)
	var denied *DeniedError
	if !errors.As(err, &denied) || denied.Action != "s3:GetObject" || denied.Resource != "arn:aws:s3:::tether-acme-exchange/diagnostics/dg_x/state.json" {
		t.Fatalf("wrap(AccessDenied) = %#v", err)
	}
	if !strings.Contains(err.Error(), "s3:GetObject on arn:aws:s3:::tether-acme-exchange/diagnostics/dg_x/state.json was refused") {
		t.Fatalf("message: %v", err)
	}
	notFound := &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: &smithy.GenericAPIError{Code: "NoSuchKey"}}
	if err := c.wrap("s3:GetObject", "k", notFound); !errors.Is(err, ErrNotFound) {
		t.Fatalf("wrap(NoSuchKey) = %v", err)
	}
}

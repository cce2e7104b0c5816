package blob

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Options configures the stores Open can build.
type Options struct {
	AWS          aws.Config // credentials and region for s3:// stores
	KMSKeyID     string     // SSE-KMS key for s3:// stores; "" means SSE-S3
	Endpoint     string     // S3-compatible endpoint instead of AWS's, e.g. in tests
	UsePathStyle bool       // bucket in the URL path; S3-compatible servers often need it
}

const acceptedForms = `"file:///absolute/dir" or "s3://bucket" or "s3://bucket/prefix"`

// bucketName is S3's naming rule for general purpose buckets, loosely: it
// catches typos and pasted ARNs early; S3 has the final word.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// Open builds the store that rawURL names: "file:///abs/dir" for a directory,
// "s3://bucket/optional/prefix" for S3. It does no I/O beyond creating the
// directory of a file store; call Ping to check the store is reachable.
func Open(ctx context.Context, rawURL string, o Options) (Store, error) {
	loc, err := parseStoreURL(rawURL)
	if err != nil {
		return nil, err
	}
	if loc.dir != "" {
		return NewFile(loc.dir)
	}
	client := s3.NewFromConfig(o.AWS, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = o.UsePathStyle
	})
	return NewS3(client, loc.bucket, loc.prefix, o.KMSKeyID), nil
}

// storeURL is a parsed storage URL: dir for a file store, else bucket and
// prefix (without slashes at either end) for S3.
type storeURL struct {
	dir            string
	bucket, prefix string
}

func parseStoreURL(rawURL string) (storeURL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return storeURL{}, fmt.Errorf("blob: storage URL %q does not parse; want %s", rawURL, acceptedForms)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return storeURL{}, fmt.Errorf("blob: storage URL %q has parts a store URL does not take (user, query, fragment); want %s", u.Redacted(), acceptedForms)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" || !filepath.IsAbs(u.Path) {
			return storeURL{}, fmt.Errorf("blob: storage URL %q is not an absolute file URL (note the three slashes); want %s", rawURL, acceptedForms)
		}
		return storeURL{dir: filepath.Clean(u.Path)}, nil
	case "s3":
		if !bucketName.MatchString(u.Host) {
			return storeURL{}, fmt.Errorf("blob: storage URL %q: %q is not a valid S3 bucket name; want %s", rawURL, u.Host, acceptedForms)
		}
		prefix := strings.TrimSuffix(strings.TrimPrefix(u.Path, "/"), "/")
		if prefix != "" {
			if err := ValidateKey(prefix); err != nil {
				return storeURL{}, fmt.Errorf("blob: storage URL %q: prefix: %w", rawURL, err)
			}
		}
		return storeURL{bucket: u.Host, prefix: prefix}, nil
	default:
		return storeURL{}, fmt.Errorf("blob: storage URL %q has unsupported scheme %q; want %s", u.Redacted(), u.Scheme, acceptedForms)
	}
}

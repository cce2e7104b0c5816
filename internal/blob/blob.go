// Package blob stores document bytes in storage the customer owns: a local
// directory on the embedded default, S3 with SSE-KMS in production.
package blob

import (
	"context"
	"errors"
	"io"
)

// ErrNotFound is returned by Get for a key that holds nothing.
var ErrNotFound = errors.New("blob: not found")

// ErrInvalidKey is returned for a key that ValidateKey rejects.
var ErrInvalidKey = errors.New("blob: invalid key")

// ErrSizeMismatch is returned by Put when the reader holds fewer or more
// bytes than the size the caller declared.
var ErrSizeMismatch = errors.New("blob: body length does not match declared size")

// Store is the seam between the document service and object storage.
// Keys are opaque, slash-separated, and chosen by the caller (the document
// service uses "documents/<id>"); they never contain user-supplied names.
type Store interface {
	// Put writes exactly size bytes from r under key, replacing any previous
	// value. A Put that fails leaves no partial object visible under key.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens the object under key, or returns ErrNotFound.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Ping checks the store is reachable, for /readyz.
	Ping(ctx context.Context) error
}

// Measurer is implemented by stores that can total what they hold, for the
// coarse storage figures in the agent's heartbeat. It walks every object, so
// call it minutes apart, not per request.
type Measurer interface {
	Usage(ctx context.Context) (objects, bytes int64, err error)
}

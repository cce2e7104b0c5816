package blob

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// MaxKeyLen bounds keys well inside S3's 1024-byte limit, leaving room for a
// bucket prefix.
const MaxKeyLen = 512

// ValidateKey reports whether key is safe to use as both a relative file path
// and an S3 object key. A key is one or more segments separated by single
// slashes; each segment uses only [A-Za-z0-9._-] and does not start with a
// dot. That rules out absolute paths, "..", backslashes and hidden names, so a
// key can never step outside the store's directory or collide with the file
// store's temporary files (which start with a dot).
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidKey, MaxKeyLen)
	}
	if strings.Contains(key, "..") {
		return fmt.Errorf("%w: contains \"..\"", ErrInvalidKey)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" {
			return fmt.Errorf("%w: empty path segment (leading, trailing or doubled slash)", ErrInvalidKey)
		}
		if seg[0] == '.' {
			return fmt.Errorf("%w: segment starts with a dot", ErrInvalidKey)
		}
		for i := 0; i < len(seg); i++ {
			if !keyByte(seg[i]) {
				// The byte's position, not the key: keys are IDs, but an
				// invalid one may be anything the caller was handed.
				return fmt.Errorf("%w: byte %#x not in [A-Za-z0-9._/-]", ErrInvalidKey, seg[i])
			}
		}
	}
	return nil
}

func keyByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// exactReader passes through exactly size bytes of r and fails with
// ErrSizeMismatch if r ends early or holds more. The excess check happens
// before the last bytes are handed out, not on a later read: an HTTP client
// stops reading at Content-Length, so the server would otherwise receive a
// complete-looking body and store a truncated object.
type exactReader struct {
	ctx  context.Context
	r    io.Reader
	left int64
	err  error // the first failure, kept because an SDK retry can mask it
}

func newExactReader(ctx context.Context, r io.Reader, size int64) *exactReader {
	return &exactReader{ctx: ctx, r: r, left: size}
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if err := e.ctx.Err(); err != nil {
		return 0, e.fail(err)
	}
	if e.left == 0 {
		if err := e.checkEnd(); err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	switch {
	case err == io.EOF && e.left > 0:
		return 0, e.fail(fmt.Errorf("%w: body ended %d bytes short", ErrSizeMismatch, e.left))
	case err != nil && err != io.EOF:
		return 0, e.fail(err)
	case e.left == 0:
		// Withhold these last bytes (n = 0) if more follow, so the body
		// never reaches its declared length.
		if err := e.checkEnd(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// checkEnd fails with ErrSizeMismatch if r still holds data.
func (e *exactReader) checkEnd() error {
	var one [1]byte
	n, err := io.ReadFull(e.r, one[:])
	if n > 0 {
		return e.fail(fmt.Errorf("%w: body longer than declared", ErrSizeMismatch))
	}
	if err != io.EOF && err != io.ErrUnexpectedEOF {
		return e.fail(err)
	}
	return nil
}

func (e *exactReader) fail(err error) error {
	e.err = err
	return err
}

// cause returns why reading failed, in preference to err: a store's client
// may report a read failure as something vaguer ("cannot rewind for retry").
func (e *exactReader) cause(err error) error {
	if e.err != nil {
		return e.err
	}
	return err
}

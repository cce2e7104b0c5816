package document

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/tetherhq/tether/internal/blob"
	"github.com/tetherhq/tether/internal/extract"
	"github.com/tetherhq/tether/internal/queue"
)

var (
	// ErrTooLarge means an upload exceeded the configured size limit.
	ErrTooLarge = errors.New("document: upload exceeds the size limit")
	// ErrEmpty means an upload had no bytes.
	ErrEmpty = errors.New("document: upload is empty")
	// ErrIncomplete means the upload's bytes could not be read to the end:
	// the client's body was cut off or malformed.
	ErrIncomplete = errors.New("document: the upload was cut off or malformed")
)

// Uploads accepts documents: it stores the bytes in the blob store, records
// the document, and queues its job, in that order, so a job never points at
// bytes that are not there.
type Uploads struct {
	Store    *Store
	Blobs    blob.Store
	Queue    queue.Queue
	MaxBytes int64
	TempDir  string // spool directory for uploads in flight; "" for the OS default
	Log      *slog.Logger
}

// Upload reads one document from r and queues it for owner (the uploading
// principal, who alone can read it back). filename is kept for the
// document's readers only, normalised by NormalizeFilename; a refused one
// fails with a *FilenameError before any byte of r is read. Unsupported
// types fail with an error wrapping extract.ErrUnsupported, oversize ones
// with ErrTooLarge.
func (u *Uploads) Upload(ctx context.Context, owner, filename string, r io.Reader) (Document, error) {
	return u.UploadAs(ctx, Viewer{Owner: owner}, filename, r)
}

// UploadAs is Upload for v.Owner, shared with v.Groups: their members see
// the document too (Store.Visible).
func (u *Uploads) UploadAs(ctx context.Context, v Viewer, filename string, r io.Reader) (Document, error) {
	filename, err := NormalizeFilename(filename)
	if err != nil {
		return Document{}, err
	}
	// Spool to disk first: the size and type are only known once every byte
	// has arrived, and nothing may be stored for a rejected upload.
	f, err := os.CreateTemp(u.TempDir, "upload-*")
	if err != nil {
		return Document{}, fmt.Errorf("document: spool upload: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := io.Copy(f, io.LimitReader(r, u.MaxBytes+1))
	if err != nil {
		return Document{}, fmt.Errorf("%w: %w", ErrIncomplete, err)
	}
	if n > u.MaxBytes {
		return Document{}, fmt.Errorf("%w (%d bytes)", ErrTooLarge, u.MaxBytes)
	}
	if n == 0 {
		return Document{}, ErrEmpty
	}
	head := make([]byte, min(n, 8192))
	if _, err := f.ReadAt(head, 0); err != nil {
		return Document{}, fmt.Errorf("document: read upload: %w", err)
	}
	_, mediaType, err := extract.Detect(head, filename)
	if err != nil {
		return Document{}, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Document{}, fmt.Errorf("document: rewind upload: %w", err)
	}

	d := Document{ID: NewID(), Status: Queued, Filename: filename, MediaType: mediaType, Size: n, owner: v.Owner, groups: v.Groups}
	d.blobKey = blobKey(d.ID)
	if err := u.Blobs.Put(ctx, d.blobKey, f, n); err != nil {
		return Document{}, fmt.Errorf("document: store bytes of %s: %w", d.ID, err)
	}
	if err := u.Store.Create(ctx, d); err != nil {
		// The bytes would be orphaned without a row; remove them.
		if derr := u.Blobs.Delete(context.WithoutCancel(ctx), d.blobKey); derr != nil {
			u.Log.Warn("orphaned blob after a failed create", "document_id", d.ID, "err", derr)
		}
		return Document{}, err
	}
	if err := Enqueue(ctx, u.Store, u.Queue, d.ID); err != nil {
		// The row is durable and unmarked; the worker's outbox sweep sends it.
		u.Log.Warn("job not sent; the worker will send it", "document_id", d.ID, "err", err)
	}
	u.Log.Info("document accepted", "document_id", d.ID, "size_bytes", n, "media_type", mediaType)
	return u.Store.Get(ctx, d.ID)
}

// Enqueue sends a document's job and records that it was sent.
func Enqueue(ctx context.Context, s *Store, q queue.Queue, id string) error {
	body, err := json.Marshal(Job{DocumentID: id})
	if err != nil {
		return err
	}
	if err := q.Send(ctx, body); err != nil {
		return fmt.Errorf("document: enqueue %s: %w", id, err)
	}
	return s.MarkEnqueued(ctx, id)
}

// Remove deletes one of owner's documents: its stored bytes first, then its
// rows. That order makes a failure retryable: if the bytes cannot be
// deleted the document is still listed and DELETE can be sent again, and
// deleting bytes already gone is not an error.
func Remove(ctx context.Context, s *Store, blobs blob.Store, owner, id string) error {
	d, err := s.Owned(ctx, owner, id)
	if err != nil {
		return err
	}
	if err := blobs.Delete(ctx, d.blobKey); err != nil {
		return fmt.Errorf("document: delete bytes of %s: %w", id, err)
	}
	_, err = s.Delete(ctx, owner, id)
	return err
}

// Open returns the stored bytes of a document.
func Open(ctx context.Context, blobs blob.Store, d Document) (io.ReadCloser, error) {
	return blobs.Get(ctx, d.blobKey)
}

// Package document is the document service's domain: a document's lifecycle
// (queued → processing → succeeded | failed), its durable record, and the
// upload path that puts bytes in customer-owned storage before a job is queued.
package document

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"
)

// Status is where a document is in its lifecycle.
type Status string

const (
	Queued     Status = "queued"
	Processing Status = "processing"
	Succeeded  Status = "succeeded"
	Failed     Status = "failed"
)

// Terminal reports whether no more work will happen on a document.
func (s Status) Terminal() bool { return s == Succeeded || s == Failed }

var (
	// ErrNotFound means no document has the given ID.
	ErrNotFound = errors.New("document: not found")
	// ErrNotFinished means a result was asked for before processing ended.
	ErrNotFinished = errors.New("document: processing has not finished")
	// ErrNoResult means the document ended without a result (it failed).
	ErrNoResult = errors.New("document: no result")
)

// Document is the service's record of one upload. Filename is shown to the
// document's readers and never logged.
type Document struct {
	ID        string    `json:"id"`
	Status    Status    `json:"status"`
	Filename  string    `json:"filename"`
	MediaType string    `json:"media_type"`
	Size      int64     `json:"size_bytes"`
	Error     string    `json:"error"`
	Attempts  int       `json:"attempts"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	blobKey   string
	owner     string   // the principal that uploaded it; never shown or logged
	groups    []string // the shared groups it was uploaded into (Create only)
}

// Viewer is who asks for documents: the owner string they upload under,
// and the shared groups (each "<issuer> <group>") whose members' documents
// they may also see. Groups come from the caller's verified token at each
// request (auth.Principal.Groups), never from the request itself.
type Viewer struct {
	Owner  string
	Groups []string
}

// OwnedBy reports whether owner uploaded d.
func (d Document) OwnedBy(owner string) bool { return d.owner == owner }

// Result is what processing produced.
type Result struct {
	DocumentID string    `json:"document_id"`
	Text       string    `json:"text"`
	Summary    string    `json:"summary"`
	Keywords   []string  `json:"keywords"`
	Pages      int       `json:"pages"`
	Provider   string    `json:"provider"`
	Model      string    `json:"model,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// Job is the queue message body: a document ID and nothing else, so the
// queue never holds document content.
type Job struct {
	DocumentID string `json:"document_id"`
}

// NewID returns a random document ID ("doc_" and 26 hex digits).
func NewID() string {
	var b [13]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("document: crypto/rand failed: " + err.Error()) // the OS RNG never fails on Linux
	}
	return "doc_" + hex.EncodeToString(b[:])
}

// ValidID reports whether s has the shape NewID produces, so handlers can
// reject garbage before it reaches the database.
func ValidID(s string) bool {
	if len(s) != 4+26 || s[:4] != "doc_" {
		return false
	}
	for _, c := range s[4:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func blobKey(id string) string { return "documents/" + id }

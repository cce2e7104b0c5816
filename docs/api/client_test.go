package apidoc_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	ht "github.com/ogen-go/ogen/http"
	"github.com/ogen-go/ogen/ogenerrors"

	apidoc "github.com/tetherhq/tether/docs/api"
	"github.com/tetherhq/tether/docs/api/docsvcclient"
	"github.com/tetherhq/tether/internal/testtime"
)

// token is the client's credential: an API token as a bearer token, and
// neither of the web page's (session cookie and header).
type token string

func (tk token) Bearer(context.Context, docsvcclient.OperationName) (docsvcclient.Bearer, error) {
	return docsvcclient.Bearer{Token: string(tk)}, nil
}

func (token) PageHeader(context.Context, docsvcclient.OperationName) (docsvcclient.PageHeader, error) {
	return docsvcclient.PageHeader{}, ogenerrors.ErrSkipClientSecurity
}

func (token) Session(context.Context, docsvcclient.OperationName) (docsvcclient.Session, error) {
	return docsvcclient.Session{}, ogenerrors.ErrSkipClientSecurity
}

// The checked-in client was generated from the checked-in document.
func TestGeneratedClientIsCurrent(t *testing.T) {
	want, err := os.ReadFile("docsvcclient/docsvc.openapi.json.sha256")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(apidoc.Docsvc)
	if got := hex.EncodeToString(sum[:]); got != strings.TrimSpace(string(want)) {
		t.Fatalf("docs/api/docsvcclient was generated from another docsvc.openapi.json (sha256 %s, now %s): run go generate ./docs/api/docsvcclient", strings.TrimSpace(string(want)), got)
	}
}

// The client generated from the document (docs/api/docsvcclient) does the
// whole round trip against a live docsvc with a worker: upload, poll,
// result, list, delete; and gets the document's typed errors.
func TestGeneratedClient(t *testing.T) {
	url, tok := startDocsvc(t, "worker")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := docsvcclient.NewClient(url, token(tok))
	if err != nil {
		t.Fatal(err)
	}
	text := "Quarterly report. Revenue rose twelve percent in the third quarter, led by the northern region."
	up, err := c.UploadDocument(ctx, &docsvcclient.UploadDocumentReq{File: ht.MultipartFile{Name: "q3.txt", File: strings.NewReader(text)}})
	if err != nil {
		t.Fatal(err)
	}
	doc, ok := up.(*docsvcclient.Document)
	if !ok || doc.Status != docsvcclient.StatusQueued || doc.Filename != "q3.txt" || doc.SizeBytes != len(text) {
		t.Fatalf("upload: %#v; want a queued Document named q3.txt of %d bytes", up, len(text))
	}
	testtime.Until(t, time.Minute, "document "+doc.ID+" to finish", func() bool {
		got, err := c.GetDocument(ctx, docsvcclient.GetDocumentParams{ID: doc.ID})
		if err != nil {
			t.Fatal(err)
		}
		if doc, ok = got.(*docsvcclient.Document); !ok {
			t.Fatalf("get: %#v", got)
		}
		return doc.Status == docsvcclient.StatusSucceeded || doc.Status == docsvcclient.StatusFailed
	})
	if doc.Status != docsvcclient.StatusSucceeded {
		t.Fatalf("document %s: %s %q", doc.ID, doc.Status, doc.Error)
	}
	res, err := c.GetResult(ctx, docsvcclient.GetResultParams{ID: doc.ID})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := res.(*docsvcclient.Result); !ok || r.DocumentID != doc.ID || !strings.Contains(r.Text, "Revenue rose twelve percent") || r.Pages < 1 {
		t.Fatalf("result: %#v", res)
	}
	list, err := c.ListDocuments(ctx, docsvcclient.ListDocumentsParams{Limit: docsvcclient.NewOptInt(10)})
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := list.(*docsvcclient.DocumentList); !ok || len(l.Documents) != 1 || l.Documents[0].ID != doc.ID || l.NextCursor != "" {
		t.Fatalf("list: %#v", list)
	}
	del, err := c.DeleteDocument(ctx, docsvcclient.DeleteDocumentParams{ID: doc.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := del.(*docsvcclient.DeleteDocumentNoContent); !ok {
		t.Fatalf("delete: %#v", del)
	}
	gone, err := c.GetDocument(ctx, docsvcclient.GetDocumentParams{ID: doc.ID})
	if err != nil {
		t.Fatal(err)
	}
	if nf, ok := gone.(*docsvcclient.GetDocumentNotFound); !ok || nf.Error != "no such document" {
		t.Fatalf("get after delete: %#v; want GetDocumentNotFound", gone)
	}
	// A wrong token gets the document's 401, with its challenge header.
	bad, err := docsvcclient.NewClient(url, token("tt_nope_nope"))
	if err != nil {
		t.Fatal(err)
	}
	un, err := bad.ListDocuments(ctx, docsvcclient.ListDocumentsParams{})
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := un.(*docsvcclient.UnauthorizedHeaders); !ok || !strings.HasPrefix(u.WWWAuthenticate.Or(""), "Bearer") {
		t.Fatalf("list with a wrong token: %#v; want UnauthorizedHeaders with a Bearer challenge", un)
	}
}

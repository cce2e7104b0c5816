package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tetherhq/tether/internal/document"
)

// rawPart builds a multipart body whose file part carries exactly the
// Content-Disposition given, as a client that does not escape would send it.
func rawPart(t *testing.T, disposition string, content []byte) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", disposition)
	h.Set("Content-Type", "application/octet-stream")
	pw, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	pw.Write(content)
	mw.Close()
	return &buf, mw.FormDataContentType()
}

func TestUploadFilenames(t *testing.T) {
	t.Parallel()
	b := setup(t, 1<<20)
	text := []byte("A short shipping notice for the filename tests.")
	nfd := strings.Repeat("e\u0301", 100) + ".txt" // 304 bytes as sent, 204 in NFC
	for _, tc := range []struct {
		name        string
		disposition string
		wantCode    int
		wantText    []string // each must appear in the answer
		wantName    string   // the stored filename, for 202
	}{
		{"255 bytes", `form-data; name="file"; filename="` + strings.Repeat("a", 251) + `.txt"`, http.StatusAccepted, nil, strings.Repeat("a", 251) + ".txt"},
		{"256 bytes", `form-data; name="file"; filename="` + strings.Repeat("a", 252) + `.txt"`, http.StatusBadRequest,
			[]string{"256 bytes long", "limit is 255 bytes"}, ""},
		{"over the limit before NFC, within it after", `form-data; name="file"; filename="` + nfd + `"`, http.StatusAccepted, nil,
			strings.Repeat("\u00e9", 100) + ".txt"},
		{"multibyte over the limit", `form-data; name="file"; filename="` + strings.Repeat("\u00e9", 128) + `.txt"`, http.StatusBadRequest,
			[]string{"260 bytes long", "255 bytes"}, ""},
		{"100 KB filename", `form-data; name="file"; filename="` + strings.Repeat("x", 100<<10) + `.txt"`, http.StatusBadRequest,
			[]string{"65536 bytes", "filename may be at most 255 bytes"}, ""},
		{"raw control character", "form-data; name=\"file\"; filename=\"a\x01b.txt\"", http.StatusBadRequest,
			[]string{"filename contains a control character (U+0001)"}, ""},
		{"raw DEL", "form-data; name=\"file\"; filename=\"a\x7fb.txt\"", http.StatusBadRequest,
			[]string{"filename contains a control character (U+007F)"}, ""},
		{"tab", "form-data; name=\"file\"; filename=\"a\tb.txt\"", http.StatusBadRequest,
			[]string{"filename contains a control character (U+0009)"}, ""},
		{"percent-encoded control character", `form-data; name="file"; filename*=UTF-8''a%0Ab.txt`, http.StatusBadRequest,
			[]string{"filename contains a control character (U+000A)"}, ""},
		{"C1 control character", "form-data; name=\"file\"; filename=\"a\u0085b.txt\"", http.StatusBadRequest,
			[]string{"filename contains a control character (U+0085)"}, ""},
		{"invalid UTF-8", "form-data; name=\"file\"; filename=\"a\xffb.txt\"", http.StatusBadRequest,
			[]string{"not valid UTF-8"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, ct := rawPart(t, tc.disposition, text)
			code, out := b.do(t, "POST", "/v1/documents", b.token, body, ct)
			var answer map[string]any
			if err := json.Unmarshal(out, &answer); err != nil {
				t.Fatalf("answer is not JSON: %d %q", code, out)
			}
			if code != tc.wantCode {
				t.Fatalf("got %d %s, want %d", code, out, tc.wantCode)
			}
			for _, want := range tc.wantText {
				if msg, _ := answer["error"].(string); !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
			if code == http.StatusAccepted && answer["filename"] != tc.wantName {
				t.Errorf("stored filename %q, want %q", answer["filename"], tc.wantName)
			}
		})
	}
	// Only the two accepted uploads were stored.
	docs, _, err := b.store.List(context.Background(), b.owner, 100, "")
	if err != nil || len(docs) != 2 {
		t.Fatalf("%d documents stored (%v), want 2", len(docs), err)
	}
}

// Every list answer has a size bound by construction: the page size is
// capped and every field of a record is cut when read, even for rows that
// hold megabytes (written before filenames were limited).
func TestListIsBounded(t *testing.T) {
	t.Parallel()
	b := setup(t, 1<<20)
	const rows = 20
	huge := strings.Repeat("<\u00e9", 1<<19) // 1.5 MB, and "<" is escaped to 6 bytes in JSON
	now := time.Now().UnixMilli()
	for i := range rows {
		id := document.NewID()
		if _, err := b.db.ExecContext(context.Background(), `INSERT INTO documents
			(id, status, filename, media_type, size_bytes, blob_key, owner, error, created_at, updated_at)
			VALUES ($1, 'failed', $2, $3, 1, $4, $5, $2, $6, $6)`, id, huge, "text/plain"+huge, "documents/"+id, b.owner, now+int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if code, _ := b.do(t, "GET", fmt.Sprintf("/v1/documents?limit=%d", document.MaxListLimit+1), b.token, nil, ""); code != http.StatusBadRequest {
		t.Fatalf("limit over the cap: %d, want 400", code)
	}
	code, out := b.do(t, "GET", fmt.Sprintf("/v1/documents?limit=%d", document.MaxListLimit), b.token, nil, "")
	if code != http.StatusOK {
		t.Fatalf("list: %d %.200s", code, out)
	}
	// The bound per record: fixed fields, plus the three text fields at
	// their limits (255 + 255 + 1024 bytes), each byte at worst a 6-byte
	// JSON escape.
	const perRecord = 512 + 6*(255+255+1024)
	if len(out) > rows*perRecord {
		t.Fatalf("a page of %d records is %d bytes, over the bound of %d", rows, len(out), rows*perRecord)
	}
	var page struct {
		Documents []document.Document `json:"documents"`
	}
	if err := json.Unmarshal(out, &page); err != nil || len(page.Documents) != rows {
		t.Fatalf("list: %v, %d documents", err, len(page.Documents))
	}
	for _, d := range page.Documents {
		if len(d.Filename) > document.MaxFilenameBytes || !utf8.ValidString(d.Filename) || !strings.HasSuffix(d.Filename, "…") {
			t.Fatalf("listed filename of %d bytes, want at most %d, cut on a character and marked", len(d.Filename), document.MaxFilenameBytes)
		}
		if len(d.Error) > 1024 || len(d.MediaType) > 255 {
			t.Fatalf("listed error of %d bytes, media type of %d", len(d.Error), len(d.MediaType))
		}
	}
	// One document's own answer is held to the same bounds.
	code, out = b.do(t, "GET", "/v1/documents/"+page.Documents[0].ID, b.token, nil, "")
	if code != http.StatusOK || len(out) > perRecord {
		t.Fatalf("get: %d, %d bytes", code, len(out))
	}
}

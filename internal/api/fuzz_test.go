package api_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
)

// FuzzUploadRequest sends arbitrary bodies and content types to the upload
// endpoint: every answer is one of the documented statuses, and a refused
// upload stores nothing.
func FuzzUploadRequest(f *testing.F) {
	f.Add([]byte("--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello world\r\n--x--\r\n"), "multipart/form-data; boundary=x")
	f.Add([]byte("--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n%PDF-1.4 trunc\r\n--x--"), "multipart/form-data; boundary=x")
	f.Add([]byte("--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\x01b.txt\"\r\n\r\nhello\r\n--x--\r\n"), "multipart/form-data; boundary=x")
	f.Add([]byte("--x\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''a%0Ab.txt\r\n\r\nhello\r\n--x--\r\n"), "multipart/form-data; boundary=x")
	f.Add([]byte("--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\""+strings.Repeat("n", 300)+"\"\r\n\r\nhello\r\n--x--\r\n"), "multipart/form-data; boundary=x")
	f.Add([]byte("plain"), "text/plain")
	f.Add([]byte(""), "multipart/form-data")
	b := setup(f, 4096)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		for _, c := range []byte(contentType) {
			if c < 0x20 && c != '\t' || c == 0x7f {
				return // not a header value an HTTP client can send
			}
		}
		before, _, _ := b.store.List(context.Background(), b.owner, 500, "")
		code, _ := b.do(t, "POST", "/v1/documents", b.token, bytes.NewReader(body), contentType)
		switch code {
		case http.StatusAccepted:
			return
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		default:
			t.Fatalf("upload answered %d", code)
		}
		after, _, _ := b.store.List(context.Background(), b.owner, 500, "")
		if len(after) != len(before) {
			t.Fatalf("a refused upload (%d) stored a document", code)
		}
	})
}

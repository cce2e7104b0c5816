package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/api"
	"github.com/tetherhq/tether/internal/blob"
)

// An authenticated upload that trickles is cut off with 408 once it falls
// behind the minimum rate, and nothing of it is kept: no blob, no document
// row, no queued job, no spool file.
func TestTricklingUploadIsCutOff(t *testing.T) {
	t.Parallel()
	b := setupWith(t, 1<<20, func(s *api.Server, _ *bundle) {
		s.UploadMinRate = 1000 // bytes per second
		s.UploadGrace = 300 * time.Millisecond
	})
	// The test's own bound on a hang; not a performance assertion.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", strings.TrimPrefix(b.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	context.AfterFunc(ctx, func() { conn.Close() })

	const boundary = "x"
	head := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.txt\"\r\n\r\n"
	content := strings.Repeat("Slowly, one byte at a time. ", 40) // 1120 bytes; never all sent
	tail := "\r\n--" + boundary + "--\r\n"
	fmt.Fprintf(conn, "POST /v1/documents HTTP/1.1\r\nHost: docs\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: multipart/form-data; boundary=%s\r\nContent-Length: %d\r\n\r\n%s",
		b.token, boundary, len(head)+len(content)+len(tail), head)

	answered := make(chan *http.Response, 1)
	go func() {
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			close(answered)
			return
		}
		answered <- res
	}()
	var res *http.Response
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
trickle:
	for i := 0; ; i++ {
		select {
		case res = <-answered:
			break trickle
		case <-ctx.Done():
			t.Fatal("the trickling upload was never cut off")
		case <-tick.C:
			if i < len(content) {
				conn.Write([]byte{content[i]}) // fails once the server closes; the answer is what counts
			}
		}
	}
	if res == nil {
		t.Fatal("the connection closed without an answer")
	}
	defer res.Body.Close()
	var answer struct {
		Error string `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&answer); err != nil {
		t.Fatalf("answer %d is not JSON: %v", res.StatusCode, err)
	}
	if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(answer.Error, "slower than 1000 bytes per second") {
		t.Fatalf("got %d %q, want 408 naming the rate", res.StatusCode, answer.Error)
	}

	docs, _, err := b.store.List(ctx, b.owner, 10, "")
	if err != nil || len(docs) != 0 {
		t.Fatalf("a cut-off upload left %d documents (%v)", len(docs), err)
	}
	qs, err := b.queue.Stats(ctx)
	if err != nil || qs.Visible+qs.InFlight+qs.DeadLetter != 0 {
		t.Fatalf("a cut-off upload queued a job: %+v, %v", qs, err)
	}
	for _, dir := range []string{b.blobDir, b.spool} {
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				t.Errorf("a cut-off upload left %s", path)
			}
			return nil
		})
	}
}

// slowBlobs stores like its Store after a pause, giving up if the
// request's context ends first.
type slowBlobs struct {
	blob.Store
	pause time.Duration
}

func (s slowBlobs) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	select {
	case <-time.After(s.pause):
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Store.Put(ctx, key, r, size)
}

// An upload whose bytes all arrived in time is stored however long the
// storing takes: the deadline bounds the client, not the server's work.
func TestPacedUploadIsStoredAfterItsDeadline(t *testing.T) {
	t.Parallel()
	b := setupWith(t, 1<<20, func(s *api.Server, _ *bundle) {
		s.UploadMinRate = 1 << 20
		s.UploadGrace = 100 * time.Millisecond
		s.Uploads.Blobs = slowBlobs{Store: s.Uploads.Blobs, pause: 500 * time.Millisecond} // past the deadline
	})
	code, d := b.upload(t, "steady.txt", []byte("Every byte arrived at once."))
	if code != http.StatusAccepted {
		t.Fatalf("upload: %d %v", code, d)
	}
}

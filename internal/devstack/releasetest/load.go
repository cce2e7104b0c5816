package releasetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Doc is one document the load uploaded: its ID and the unique text in it.
type Doc struct {
	ID, Text, Filename string
	Size               int64
}

// Load uploads and reads documents against a document service in a loop
// until stopped (at most maxRequests requests, and never past its context),
// counting every failed request.
type Load struct {
	api, token string
	c          *http.Client
	cancel     context.CancelFunc
	done       chan struct{}

	mu       sync.Mutex
	docs     []Doc
	requests int
	failures []string
}

const (
	maxRequests = 20000
	pause       = 20 * time.Millisecond
)

// StartLoad starts workers goroutines, each uploading a small document and
// reading one back in turn.
func StartLoad(t testing.TB, api, token string, workers int) *Load {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	l := &Load{api: api, token: token, cancel: cancel, done: make(chan struct{}),
		c: &http.Client{Timeout: 30 * time.Second}}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && l.count() < maxRequests {
				if d, err := l.Upload(ctx); err != nil {
					l.fail(ctx, err)
				} else {
					l.add(d)
				}
				if d, ok := l.pick(); ok {
					if err := l.Read(ctx, d); err != nil {
						l.fail(ctx, err)
					}
				}
				// A steady load, not a flood: the swaps must happen with
				// requests in flight, and every document is checked after.
				select {
				case <-ctx.Done():
				case <-time.After(pause):
				}
			}
		}()
	}
	go func() { wg.Wait(); close(l.done) }()
	t.Cleanup(func() { l.Stop() })
	return l
}

// Stop ends the load and returns the requests sent and the failures seen.
func (l *Load) Stop() (requests int, failures []string) {
	l.cancel()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.requests, append([]string(nil), l.failures...)
}

// Docs returns every document uploaded so far.
func (l *Load) Docs() []Doc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Doc(nil), l.docs...)
}

func (l *Load) count() int { l.mu.Lock(); defer l.mu.Unlock(); return l.requests }

func (l *Load) add(d Doc) { l.mu.Lock(); l.docs = append(l.docs, d); l.mu.Unlock() }

func (l *Load) pick() (Doc, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.docs) == 0 {
		return Doc{}, false
	}
	return l.docs[(l.requests*7919)%len(l.docs)], true
}

func (l *Load) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // stopped mid-request: not the service's failure
	}
	l.mu.Lock()
	l.failures = append(l.failures, err.Error())
	l.mu.Unlock()
}

func (l *Load) counted() { l.mu.Lock(); l.requests++; l.mu.Unlock() }

// Upload sends one new document. The request carries an Idempotency-Key,
// which lets Go's HTTP client resend it when a keep-alive connection the
// old api closed while draining turns out dead before any of the request
// was read: the standard HTTP/1.1 answer to a server closing an idle
// connection, which any server that stops must do.
func (l *Load) Upload(ctx context.Context) (Doc, error) {
	l.counted()
	b := make([]byte, 8)
	rand.Read(b)
	d := Doc{Text: "upgrade probe " + hex.EncodeToString(b), Filename: "probe-" + hex.EncodeToString(b) + ".txt"}
	d.Size = int64(len(d.Text))
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", d.Filename)
	io.WriteString(fw, d.Text)
	mw.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, l.api+"/v1/documents", bytes.NewReader(body.Bytes()))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+l.token)
	req.Header.Set("Idempotency-Key", hex.EncodeToString(b))
	res, err := l.c.Do(req)
	if err != nil {
		return d, fmt.Errorf("upload: %w", err)
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		return d, fmt.Errorf("upload: %s: %s", res.Status, strings.TrimSpace(string(rb)))
	}
	var got struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(rb, &got); err != nil || got.ID == "" {
		return d, fmt.Errorf("upload: answer %q has no id", rb)
	}
	d.ID = got.ID
	return d, nil
}

// Read fetches a document and checks it is the one uploaded.
func (l *Load) Read(ctx context.Context, d Doc) error {
	l.counted()
	var got struct {
		ID       string `json:"id"`
		Filename string `json:"filename"`
		Size     int64  `json:"size_bytes"`
	}
	if err := GetJSON(ctx, l.c, l.api+"/v1/documents/"+d.ID, l.token, &got); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if got.ID != d.ID || got.Filename != d.Filename || got.Size != d.Size {
		return fmt.Errorf("read %s: got %+v, want filename %s size %d", d.ID, got, d.Filename, d.Size)
	}
	return nil
}

// GetJSON GETs url with the token and decodes a 200 answer into v.
func GetJSON(ctx context.Context, c *http.Client, url, token string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, res.Status, strings.TrimSpace(string(b)))
	}
	return json.Unmarshal(b, v)
}

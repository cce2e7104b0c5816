package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherhq/tether/docs/api/apitest"
	"github.com/tetherhq/tether/internal/agent/collect"
	"github.com/tetherhq/tether/internal/analyze"
	"github.com/tetherhq/tether/internal/api"
	"github.com/tetherhq/tether/internal/auth"
	"github.com/tetherhq/tether/internal/blob"
	"github.com/tetherhq/tether/internal/document"
	"github.com/tetherhq/tether/internal/extract"
	"github.com/tetherhq/tether/internal/queue"
	"github.com/tetherhq/tether/internal/sqldb"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
	"github.com/tetherhq/tether/internal/testtime"
	"github.com/tetherhq/tether/internal/worker"
)

// bundle is a running API on the embedded defaults, plus a worker the test
// can start when it wants documents processed.
type bundle struct {
	url    string
	token  string
	db     *sqldb.DB
	store  *document.Store
	blobs  blob.Store
	queue  queue.Queue
	worker *worker.Worker

	blobDir string // the blob store's directory
	spool   string // where uploads in flight are spooled
	gate    error  // what the license gate answers; nil allows uploads

	srv        *api.Server
	otherToken string // a second principal, for isolation tests
	owner      string // the owner string of token's documents
}

func setup(t testing.TB, maxUpload int64) *bundle {
	t.Helper()
	return setupWith(t, maxUpload, nil)
}

// setupWith is setup with a change to the server before it starts; b.url
// is already set.
func setupWith(t testing.TB, maxUpload int64, mod func(s *api.Server, b *bundle)) *bundle {
	t.Helper()
	return setupOn(t, sqldbtest.SQLite(t), maxUpload, mod)
}

// setupOn is setupWith on db.
func setupOn(t testing.TB, db *sqldb.DB, maxUpload int64, mod func(s *api.Server, b *bundle)) *bundle {
	t.Helper()
	ctx := context.Background()
	blobDir, spool := t.TempDir(), t.TempDir()
	blobs, err := blob.NewFile(blobDir)
	if err != nil {
		t.Fatal(err)
	}
	q := queue.NewDB(db, "jobs", queue.DBOptions{MaxReceives: 3, PollInterval: 50 * time.Millisecond})
	store := document.NewStore(db, time.Now)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	authn, err := auth.NewAuthenticator(ctx, db, auth.OIDC{}, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	token, tokenID, err := auth.CreateToken(ctx, db, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := auth.CreateToken(ctx, db, "another client", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{token: token, otherToken: other, owner: auth.KindToken + ":" + tokenID, db: db, store: store, blobs: blobs,
		queue: q, blobDir: blobDir, spool: spool}
	srv := &api.Server{
		Gate: func(time.Time) error { return b.gate },
		DB:   db, Store: store, Blobs: blobs, Queue: q,
		Uploads:  &document.Uploads{Store: store, Blobs: blobs, Queue: q, MaxBytes: maxUpload, TempDir: spool, Log: log},
		Auth:     authn.Middleware,
		CORS:     []string{"https://docs.customer.example"},
		Registry: prometheus.NewRegistry(), Log: log, Now: time.Now,
	}
	ts := httptest.NewUnstartedServer(nil)
	b.url = "http://" + ts.Listener.Addr().String()
	if mod != nil {
		mod(srv, b)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	w := &worker.Worker{
		Store: store, Blobs: blobs, Queue: q,
		Analyzer:    analyze.NewResilient(analyze.NewLocal(), analyze.ResilientOptions{}),
		Limits:      extract.DefaultLimits(),
		Concurrency: 2, Visibility: 5 * time.Second, MaxReceives: 3,
		Metrics: worker.NewMetrics(prometheus.NewRegistry()), Log: log,
	}
	b.worker, b.srv = w, srv
	return b
}

func (b *bundle) runWorker(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.worker.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func (b *bundle) do(t *testing.T, method, path, token string, body io.Reader, contentType string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, b.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	// Every answer the tests see is one the API's document describes.
	apitest.Docsvc().Check(t, req, res, out)
	return res.StatusCode, out
}

func multipartBody(t *testing.T, field, filename string, content []byte) (io.Reader, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile(field, filename)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(content)
	mw.Close()
	return &buf, mw.FormDataContentType()
}

func (b *bundle) upload(t *testing.T, filename string, content []byte) (int, map[string]any) {
	t.Helper()
	body, ct := multipartBody(t, "file", filename, content)
	code, out := b.do(t, "POST", "/v1/documents", b.token, body, ct)
	var m map[string]any
	json.Unmarshal(out, &m)
	return code, m
}

func (b *bundle) waitFinal(t *testing.T, id string) map[string]any {
	t.Helper()
	var d map[string]any
	testtime.Until(t, 60*time.Second, "document "+id+" to finish", func() bool {
		code, out := b.do(t, "GET", "/v1/documents/"+id, b.token, nil, "")
		if code != 200 {
			t.Fatalf("GET document: %d %s", code, out)
		}
		d = nil
		json.Unmarshal(out, &d)
		return d["status"] == "succeeded" || d["status"] == "failed"
	})
	return d
}

func TestAuthRequired(t *testing.T) {
	t.Parallel()
	b := setup(t, 1<<20)
	for _, tc := range []struct{ name, token string }{
		{"no token", ""},
		{"wrong token", "tt_nope_nope"},
		{"garbage", "Basic abc"},
		{"token with a changed secret", b.token + "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _ := b.do(t, "GET", "/v1/documents", tc.token, nil, "")
			if code != http.StatusUnauthorized {
				t.Fatalf("got %d, want 401", code)
			}
		})
	}
	if code, _ := b.do(t, "GET", "/healthz", "", nil, ""); code != 200 {
		t.Fatalf("healthz needs no token: got %d", code)
	}
}

func TestUploadProcessReadDelete(t *testing.T) {
	t.Parallel()
	b := setup(t, 1<<20)
	code, d := b.upload(t, "notice.txt", []byte("Shipping notice.\n\nThe pallets for order 4471 left the Rotterdam depot on Tuesday."))
	if code != http.StatusAccepted || d["status"] != "queued" {
		t.Fatalf("upload: %d %v", code, d)
	}
	id := d["id"].(string)
	if code, out := b.do(t, "GET", "/v1/documents/"+id+"/result", b.token, nil, ""); code != http.StatusConflict {
		t.Fatalf("result before processing: %d %s, want 409", code, out)
	}
	b.runWorker(t)
	if final := b.waitFinal(t, id); final["status"] != "succeeded" {
		t.Fatalf("final: %v", final)
	}
	code, out := b.do(t, "GET", "/v1/documents/"+id+"/result", b.token, nil, "")
	var r struct {
		Text     string   `json:"text"`
		Summary  string   `json:"summary"`
		Keywords []string `json:"keywords"`
		Pages    int      `json:"pages"`
	}
	if err := json.Unmarshal(out, &r); code != 200 || err != nil {
		t.Fatalf("result: %d %s", code, out)
	}
	if !strings.Contains(r.Text, "Rotterdam depot") || r.Summary == "" || len(r.Keywords) == 0 || r.Pages < 1 {
		t.Fatalf("result = %+v", r)
	}
	code, out = b.do(t, "GET", "/v1/documents?limit=10", b.token, nil, "")
	if code != 200 || !strings.Contains(string(out), id) {
		t.Fatalf("list: %d %s", code, out)
	}
	if code, _ := b.do(t, "DELETE", "/v1/documents/"+id, b.token, nil, ""); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := b.do(t, "GET", "/v1/documents/"+id, b.token, nil, ""); code != http.StatusNotFound {
		t.Fatalf("get after delete: %d", code)
	}
	if _, err := b.blobs.Get(context.Background(), "documents/"+id); err == nil {
		t.Fatal("stored bytes survived DELETE")
	}
}

func TestUploadRejections(t *testing.T) {
	t.Parallel()
	b := setup(t, 4096)
	random := make([]byte, 2048)
	for i := range random {
		random[i] = byte(i*7919 + i/3)
	}
	for _, tc := range []struct {
		name     string
		content  []byte
		field    string
		wantCode int
		wantText string
	}{
		{"random bytes", random, "file", http.StatusUnsupportedMediaType, "PDF"},
		{"over the limit", bytes.Repeat([]byte("a"), 5000), "file", http.StatusRequestEntityTooLarge, "4096"},
		{"empty", nil, "file", http.StatusBadRequest, "empty"},
		{"wrong field", []byte("hello"), "document", http.StatusBadRequest, "file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, ct := multipartBody(t, tc.field, "x.bin", tc.content)
			code, out := b.do(t, "POST", "/v1/documents", b.token, body, ct)
			if code != tc.wantCode || !strings.Contains(string(out), tc.wantText) {
				t.Fatalf("got %d %s; want %d mentioning %q", code, out, tc.wantCode, tc.wantText)
			}
		})
	}
	// Nothing was stored for a rejected upload.
	docs, _, err := b.store.List(context.Background(), b.owner, 10, "")
	if err != nil || len(docs) != 0 {
		t.Fatalf("rejected uploads left %d documents (%v)", len(docs), err)
	}
	if code, _ := b.do(t, "POST", "/v1/documents", b.token, strings.NewReader("x"), "text/plain"); code != http.StatusBadRequest {
		t.Fatalf("non-multipart body: %d", code)
	}
	if code, _ := b.do(t, "GET", "/v1/documents/../../etc/passwd", b.token, nil, ""); code == 200 {
		t.Fatal("path traversal answered 200")
	}
	if code, _ := b.do(t, "GET", "/v1/documents?limit=0", b.token, nil, ""); code != 400 {
		t.Fatalf("limit=0: %d", code)
	}
}

func TestReadyzAndMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, 1<<20)
	code, out := b.do(t, "GET", "/readyz", "", nil, "")
	var rz struct {
		Status string                       `json:"status"`
		Checks map[string]map[string]string `json:"checks"`
	}
	if err := json.Unmarshal(out, &rz); err != nil || code != 200 {
		t.Fatalf("readyz: %d %s", code, out)
	}
	for _, c := range []string{"database", "blob", "queue"} {
		if rz.Checks[c]["status"] != "ok" {
			t.Errorf("readyz %s = %v", c, rz.Checks[c])
		}
	}
	// The worker publishes the AI provider's state for the api to show.
	if err := b.store.SetHealth(context.Background(), "ai_provider", "degraded", "openai http_503"); err != nil {
		t.Fatal(err)
	}
	_, out = b.do(t, "GET", "/readyz", "", nil, "")
	json.Unmarshal(out, &rz)
	if rz.Status != "degraded" || rz.Checks["ai_provider"]["status"] != "degraded" {
		t.Fatalf("readyz with a degraded provider: %s", out)
	}
	b.do(t, "GET", "/v1/documents", b.token, nil, "")
	_, out = b.do(t, "GET", "/metrics", "", nil, "")
	if !strings.Contains(string(out), `docsvc_http_requests_total{code="200",route="GET /v1/documents"}`) {
		t.Fatalf("metrics lack the request counter:\n%s", out)
	}
	for _, want := range []string{`docsvc_documents{status="queued"} 0`, "docsvc_stored_bytes 0", "docsvc_result_pages 0", "docsvc_schema_version "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// The agent's view of docsvc is /metrics/summary, decoded by the agent's
// own decoder: this holds the two to one format.
func TestSummaryDecodesForTheAgent(t *testing.T) {
	b := setup(t, 1<<20)
	ctx := context.Background()
	if err := b.store.SetHealth(ctx, "ai_provider", "degraded", "openai http_503"); err != nil {
		t.Fatal(err)
	}
	if code, out := b.upload(t, "a.txt", []byte("hello")); code != 202 {
		t.Fatalf("upload: %d %v", code, out)
	}
	code, out := b.do(t, "GET", "/metrics/summary", "", nil, "")
	if code != 200 {
		t.Fatalf("summary: %d %s", code, out)
	}
	s, err := collect.Decode(out)
	if err != nil {
		t.Fatalf("the agent cannot decode docsvc's summary: %v\n%s", err, out)
	}
	if s.Status != "degraded" || s.Checks["database"] != "ok" || s.Checks["ai_provider"] != "degraded" || s.AIProvider != "openai" {
		t.Errorf("health: %+v", s)
	}
	if s.Totals == nil || s.Totals.Queued != 1 || s.Totals.StoredBytes != 5 || s.Queue.Visible != 1 || s.SchemaVersion < 1 {
		t.Errorf("counts: %+v %+v", s.Totals, s.Queue)
	}
	if s.Requests < 1 || s.ServerErrors != 0 { // the upload; the summary itself is counted when it is done
		t.Errorf("requests %d, 5xx %d", s.Requests, s.ServerErrors)
	}
	if strings.Contains(string(out), "http_503") {
		t.Errorf("the summary carries a check's detail: %s", out)
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t, 1<<20)
	res, err := http.Get(b.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("CSP = %q", res.Header.Get("Content-Security-Policy"))
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	b := setup(t, 1<<20)
	for _, tc := range []struct {
		origin string
		allow  bool
	}{{"https://docs.customer.example", true}, {"https://evil.example", false}} {
		req, _ := http.NewRequest("OPTIONS", b.url+"/v1/documents", nil)
		req.Header.Set("Origin", tc.origin)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("Access-Control-Allow-Origin") == tc.origin; got != tc.allow {
			t.Errorf("origin %s allowed = %v, want %v", tc.origin, got, tc.allow)
		}
	}
}

func TestExpiredLicenseRefusesUploadsOnly(t *testing.T) {
	t.Parallel()
	b := setup(t, 1<<20)
	code, d := b.upload(t, "a.txt", []byte("Uploaded while the license was valid."))
	if code != http.StatusAccepted {
		t.Fatalf("upload: %d", code)
	}
	id := d["id"].(string)
	b.gate = errors.New("the license expired on 2026-10-01 and its grace period ended on 2026-10-15")
	code, d = b.upload(t, "b.txt", []byte("Uploaded after the grace period."))
	if code != http.StatusForbidden || !strings.Contains(fmt.Sprint(d["error"]), "grace period ended") {
		t.Fatalf("upload past grace: %d %v, want 403 naming the license", code, d)
	}
	if code, _ := b.do(t, "GET", "/v1/documents/"+id, b.token, nil, ""); code != 200 {
		t.Fatalf("reading an existing document past grace: %d", code)
	}
	if code, _ := b.do(t, "GET", "/v1/documents", b.token, nil, ""); code != 200 {
		t.Fatalf("listing past grace: %d", code)
	}
}

func TestOnlyTheUploaderSeesADocument(t *testing.T) {
	t.Parallel()
	b := setup(t, 1<<20)
	code, d := b.upload(t, "private.txt", []byte("Only the uploader may read this."))
	if code != http.StatusAccepted {
		t.Fatalf("upload: %d", code)
	}
	id := d["id"].(string)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/documents/" + id},
		{"GET", "/v1/documents/" + id + "/result"},
		{"DELETE", "/v1/documents/" + id},
	} {
		if code, out := b.do(t, tc.method, tc.path, b.otherToken, nil, ""); code != http.StatusNotFound {
			t.Errorf("%s %s by another principal: %d %s, want 404", tc.method, tc.path, code, out)
		}
	}
	if _, out := b.do(t, "GET", "/v1/documents", b.otherToken, nil, ""); strings.Contains(string(out), id) {
		t.Errorf("another principal's list shows the document: %s", out)
	}
	if code, _ := b.do(t, "GET", "/v1/documents/"+id, b.token, nil, ""); code != 200 {
		t.Fatalf("the uploader cannot read its document: %d", code)
	}
}

// With an internal listener, /readyz and /metrics leave the public address,
// however the path is spelled.
func TestInternalRoutesSplit(t *testing.T) {
	t.Parallel()
	b := setup(t, 1<<20)
	pub := httptest.NewServer(b.srv.Handler())
	defer pub.Close()
	b.srv.SplitInternal = true
	split := httptest.NewServer(b.srv.Handler())
	defer split.Close()
	internal := httptest.NewServer(b.srv.InternalHandler())
	defer internal.Close()
	get := func(base, path string) int {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, p := range []string{"/readyz", "/metrics", "/metrics/summary", "/%72eadyz", "/%6detrics"} {
		if code := get(split.URL, p); code != http.StatusNotFound {
			t.Errorf("public %s = %d, want 404", p, code)
		}
	}
	for _, p := range []string{"/readyz", "/metrics", "/metrics/summary", "/healthz"} {
		if code := get(internal.URL, p); code != http.StatusOK {
			t.Errorf("internal %s = %d, want 200", p, code)
		}
	}
	if code := get(split.URL, "/healthz"); code != 200 {
		t.Errorf("public /healthz = %d", code)
	}
	if code := get(internal.URL, "/v1/documents"); code != http.StatusNotFound {
		t.Errorf("the internal listener serves the API: %d", code)
	}
}

package boundary_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/boundary"
	"github.com/tetherhq/tether/internal/ctl"
	"github.com/tetherhq/tether/internal/devstack"
	"github.com/tetherhq/tether/internal/diagspool/diagreview"
	"github.com/tetherhq/tether/internal/ledger/ledgerread"
	"github.com/tetherhq/tether/internal/testtime"
	"github.com/tetherhq/tether/internal/toolproc"
)

// TestCanary is the end-to-end proof of the data boundary. Documents holding
// unique canary strings (in their text and their filenames) go through the
// whole local stack; heartbeats, opted-in telemetry, an approved diagnostics
// bundle and release checks all run; then every byte the plane received
// (recorded by a proxy in front of it), everything the plane stored, and the
// agent's egress ledger are scanned for the canaries and the document IDs in
// every encoding. Zero hits is the only pass.
func TestCanary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole stack")
	}
	dataDir := t.TempDir()
	canaries := []string{newCanary(), newCanary(), newCanary(), newCanary(), newCanary()}
	rec := startRecorder(t)
	opts := devstack.Options{
		DataDir: dataDir, APIAddr: toolproc.FreeAddr(t), PlaneAddr: toolproc.FreeAddr(t), AgentStatusAddr: toolproc.FreeAddr(t),
		Heartbeat: time.Second, Telemetry: true, AgentPlaneURL: rec.url,
	}
	rec.target = "http://" + opts.PlaneAddr
	api := "http://" + opts.APIAddr
	plane := "http://" + opts.PlaneAddr

	// Phase 1: documents through the service, diagnostics requested and approved.
	stop := runDev(t, opts)
	token := readFile(t, filepath.Join(dataDir, "dev-token"))
	adminToken := readFile(t, filepath.Join(dataDir, "plane-admin-token"))
	docs := []struct{ name, content string }{
		{canaries[0] + ".txt", "Quarterly report. Marker " + canaries[1] + " appears in the body.\n"},
		{"minutes-" + canaries[2] + ".html", "<html><body><p>Board minutes " + canaries[3] + " approved.</p></body></html>"},
		{"contract.docx", string(docx(t, "Contract clause "+canaries[4]+" binds both parties."))},
	}
	var ids []string
	for _, d := range docs {
		ids = append(ids, upload(t, api, token, d.name, []byte(d.content)))
	}
	for _, id := range ids {
		testtime.Until(t, 60*time.Second, "document "+id+" to succeed", func() bool {
			return getJSON(t, api+"/v1/documents/"+id, token)["status"] == "succeeded"
		})
	}
	installID := waitInstall(t, plane, adminToken)
	diagID := requestDiagnostics(t, plane, adminToken, installID)
	agentDir := filepath.Join(dataDir, "agent")
	testtime.Until(t, 60*time.Second, "the agent to build the diagnostics bundle", func() bool {
		_, err := diagreview.Preview(agentDir, diagID)
		return err == nil
	})
	if err := ctl.Run(context.Background(), []string{"diag", "approve", diagID, "--data-dir", dataDir}, os.Getenv, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	var bundle []byte
	testtime.Until(t, 60*time.Second, "the bundle to reach the plane", func() bool {
		bundle = getBytes(t, plane+"/v1/admin/diagnostics/"+diagID+"/bundle", adminToken)
		return bundle != nil
	})
	// Phase 2 reports the day's counts: wait until the agent has counted the
	// processed documents (its telemetry state), not for a guessed time.
	testtime.Until(t, 60*time.Second, "the agent to count the processed documents", func() bool {
		var st struct {
			LastSucceeded int64 `json:"last_succeeded"`
		}
		data, err := os.ReadFile(filepath.Join(agentDir, "telemetry.json"))
		return err == nil && json.Unmarshal(data, &st) == nil && st.LastSucceeded >= int64(len(docs))
	})
	// The bundle an operator exports to send by their own means: the same
	// collectors, so the same promise.
	exported := filepath.Join(t.TempDir(), "diagnostics.zip")
	if err := ctl.Run(context.Background(), []string{"diag", "export", "--agent-status-addr", opts.AgentStatusAddr, "--out", exported, "--yes"}, os.Getenv, io.Discard, io.Discard); err != nil {
		t.Fatalf("diag export: %v", err)
	}
	exportedZip, err := os.ReadFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	if zr, err := zip.NewReader(bytes.NewReader(exportedZip), int64(len(exportedZip))); err != nil || len(zr.File) != 5 {
		t.Fatalf("the exported bundle is not the agent's five files: %v", err)
	}
	stop()

	// Phase 2: the UTC day turns (simulated by moving the agent's telemetry
	// day back), so the opted-in agent sends the day's aggregate counts.
	statePath := filepath.Join(agentDir, "telemetry.json")
	var st map[string]any
	if err := json.Unmarshal([]byte(readFile(t, statePath)), &st); err != nil {
		t.Fatalf("telemetry state: %v", err)
	}
	st["day"] = time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	b, _ := json.Marshal(st)
	os.WriteFile(statePath, b, 0o600)
	stop = runDev(t, opts)
	testtime.Until(t, 60*time.Second, "telemetry to be sent", func() bool { return rec.sawPath("/v1/telemetry") })
	stop()

	// What must have happened, so that zero hits means something.
	for _, p := range []string{"/v1/activate", "/v1/heartbeat", "/v1/telemetry", "/v1/diagnostics/" + diagID + "/bundle", "/v1/tuf/stable/metadata/timestamp.json"} {
		if !rec.sawPath(p) {
			t.Errorf("the plane never received %s", p)
		}
	}
	entries, err := ledgerread.Read(filepath.Join(agentDir, "egress.ledger"), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledgerread.Verify(filepath.Join(agentDir, "egress.ledger")); err != nil {
		t.Fatalf("ledger: %v", err)
	}
	// Every body that left was in the ledger first.
	ledgered := map[string]bool{}
	for _, e := range entries {
		ledgered[e.PayloadSHA256] = true
	}
	for _, r := range rec.all() {
		if len(r.body) > 0 && !ledgered[sha256hex(r.body)] {
			t.Errorf("%s %s sent a body that is not in the egress ledger", r.method, r.path)
		}
	}

	needles := append(append([]string{}, canaries...), ids...)
	// Positive control: the canaries did reach the customer's own storage.
	if !foundUnder(t, filepath.Join(dataDir, "docsvc.db"), needles[1:2]) && !foundUnder(t, dataDir, needles[1:2]) {
		t.Fatal("positive control failed: the canary is not even in the customer's database")
	}

	var leaks []string
	check := func(where string, data []byte) {
		for _, h := range boundary.Scan(data, needles) {
			leaks = append(leaks, fmt.Sprintf("%s: %s (%s)", where, h.Canary, h.Form))
		}
	}
	for _, r := range rec.all() {
		check("received "+r.method+" "+r.path, []byte(r.method+" "+r.rawURL+"\n"+r.headers+"\n"))
		check("received "+r.method+" "+r.path+" body", r.body)
	}
	check("downloaded bundle", bundle)
	check("exported bundle", exportedZip)
	filepath.WalkDir(filepath.Join(dataDir, "plane"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(p, string(filepath.Separator)+"repo"+string(filepath.Separator)) {
			data, _ := os.ReadFile(p)
			check("plane stored "+p, data)
		}
		return nil
	})
	raw, _ := os.ReadFile(filepath.Join(agentDir, "egress.ledger"))
	check("egress ledger", raw)
	for _, e := range entries {
		b, _ := e.Bytes()
		check(fmt.Sprintf("egress ledger entry %d (%s)", e.Seq, e.Kind), b)
	}
	if len(leaks) > 0 {
		t.Fatalf("document content, filenames or IDs crossed the boundary:\n%s", strings.Join(leaks, "\n"))
	}
	t.Logf("scanned %d requests the plane received, %d ledger entries and the plane's stored state: zero hits", len(rec.all()), len(entries))
}

// --- the recording proxy between the agent and the plane ---

type recorded struct {
	method, path, rawURL, headers string
	body                          []byte
}

type recorder struct {
	url, target string
	mu          sync.Mutex
	reqs        []recorded
}

func startRecorder(t *testing.T) *recorder {
	r := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var hdr strings.Builder
		req.Header.Write(&hdr)
		r.mu.Lock()
		r.reqs = append(r.reqs, recorded{req.Method, req.URL.Path, req.URL.String(), hdr.String(), body})
		target := r.target
		r.mu.Unlock()
		u, _ := url.Parse(target)
		req.Body = io.NopCloser(bytes.NewReader(body))
		httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

func (r *recorder) sawPath(p string) bool {
	for _, q := range r.all() {
		if q.path == p {
			return true
		}
	}
	return false
}

// --- helpers ---

func runDev(t *testing.T, o devstack.Options) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out bytes.Buffer
	var mu sync.Mutex
	go func() {
		done <- devstack.Run(ctx, o, lockedWriter{&mu, &out}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	dump := func() { mu.Lock(); defer mu.Unlock(); t.Logf("tetherctl dev output:\n%s", out.String()) }
	testtime.Until(t, 240*time.Second, "tetherctl dev to serve", func() bool {
		select {
		case err := <-done:
			dump()
			t.Fatalf("tetherctl dev exited: %v", err)
		default:
		}
		res, err := http.Get("http://" + o.APIAddr + "/healthz")
		if err == nil {
			res.Body.Close()
		}
		_, terr := os.Stat(filepath.Join(o.DataDir, "dev-token"))
		return err == nil && res.StatusCode == 200 && terr == nil
	})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("tetherctl dev: %v", err)
			}
			if t.Failed() {
				dump()
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func newCanary() string {
	b := make([]byte, 10)
	rand.Read(b)
	return "CANARY" + strings.ToUpper(hex.EncodeToString(b))
}

func readFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func upload(t *testing.T, api, token, name string, content []byte) string {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", name)
	fw.Write(content)
	mw.Close()
	req, _ := http.NewRequest("POST", api+"/v1/documents", &buf)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var d struct{ ID string }
	if err := json.NewDecoder(res.Body).Decode(&d); err != nil || res.StatusCode != 202 {
		t.Fatalf("upload %s: %d %v", name, res.StatusCode, err)
	}
	return d.ID
}

func getBytes(t *testing.T, u, token string) []byte {
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return nil
	}
	b, _ := io.ReadAll(res.Body)
	return b
}

func getJSON(t *testing.T, u, token string) map[string]any {
	var m map[string]any
	json.Unmarshal(getBytes(t, u, token), &m)
	return m
}

func waitInstall(t *testing.T, plane, adminToken string) string {
	var id string
	testtime.Until(t, 60*time.Second, "the install to appear on the plane", func() bool {
		var installs []struct {
			ID string `json:"id"`
		}
		json.Unmarshal(getBytes(t, plane+"/v1/admin/installs", adminToken), &installs)
		if len(installs) == 1 {
			id = installs[0].ID
		}
		return id != ""
	})
	return id
}

func requestDiagnostics(t *testing.T, plane, adminToken, installID string) string {
	body, _ := json.Marshal(map[string]string{"install_id": installID, "reason": "Support ticket 4471: slow processing"})
	req, _ := http.NewRequest("POST", plane+"/v1/admin/diagnostics", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var d struct{ ID string }
	if err := json.NewDecoder(res.Body).Decode(&d); err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("request diagnostics: %d %v", res.StatusCode, err)
	}
	return d.ID
}

func docx(t *testing.T, text string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("[Content_Types].xml")
	io.WriteString(w, `<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`)
	w, _ = zw.Create("_rels/.rels")
	io.WriteString(w, `<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>`)
	w, _ = zw.Create("word/document.xml")
	io.WriteString(w, `<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>`+text+`</w:t></w:r></w:p></w:body></w:document>`)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func foundUnder(t *testing.T, root string, needles []string) bool {
	found := false
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !found {
			data, _ := os.ReadFile(p)
			found = len(boundary.Scan(data, needles)) > 0
		}
		return nil
	})
	return found
}

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

package plane_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/blob"
	"github.com/tetherhq/tether/internal/plane"
	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/release/publish"
	"github.com/tetherhq/tether/internal/reqsign"
	"github.com/tetherhq/tether/internal/sqldb"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
	"github.com/tetherhq/tether/internal/wire"
)

// A plane cluster: replicas that share nothing but one PostgreSQL schema
// and one bucket of moto's S3, each with its own store handle, its own data
// directory and its own HTTP server, as separate processes would.
type cluster struct {
	ctx      context.Context
	clock    *clock
	s3       *s3.Client
	bucket   string
	repo     publish.ObjectStore // the shared release store, as a publisher reaches it
	replicas []*replica
}

type replica struct {
	name   string
	db     *sqldb.DB
	store  *planestore.Store
	server *plane.Server
	http   *httptest.Server
}

const clusterBucket = "tether-plane-state"

func startCluster(t *testing.T, n int, webhook string) *cluster {
	t.Helper()
	ctx := context.Background()
	aws3 := awstest.Start(t).S3()
	if _, err := aws3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(clusterBucket)}); err != nil {
		t.Fatal(err)
	}
	if _, err := aws3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(clusterBucket),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	c := &cluster{ctx: ctx, clock: newClock(), s3: aws3, bucket: clusterBucket,
		repo: blob.NewS3(aws3, clusterBucket, "plane/repo", "")}
	pgURL := sqldbtest.PostgresURL(t)
	for i := range n {
		db, err := sqldb.Open(ctx, pgURL)
		if err != nil {
			t.Fatal(err)
		}
		st, err := planestore.Open(ctx, db, c.clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		srv, err := plane.New(plane.Config{
			Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: c.clock.Now,
			DataDir: t.TempDir(), AdminToken: adminToken, AlertWebhook: webhook,
			Bundles: blob.NewS3(aws3, clusterBucket, "plane/bundles", ""),
			Repo:    blob.NewS3(aws3, clusterBucket, "plane/repo", ""),
		})
		if err != nil {
			t.Fatal(err)
		}
		r := &replica{name: fmt.Sprintf("replica-%d", i), db: db, store: st, server: srv, http: httptest.NewServer(srv.Handler())}
		t.Cleanup(func() { r.http.Close(); r.db.Close() })
		c.replicas = append(c.replicas, r)
	}
	return c
}

// kill ends a replica the way a crashed task ends: open connections are
// cut, the listener closes and its database handle goes.
func (r *replica) kill() {
	r.http.CloseClientConnections()
	r.http.Close()
	r.db.Close()
}

type clusterAgent struct {
	c   *cluster
	id  string
	key ed25519.PrivateKey
}

func (c *cluster) license(t *testing.T, id string) string {
	t.Helper()
	token := "tok_" + strings.Repeat(id, 3) + "_0123456789"
	sum := sha256.Sum256([]byte(token))
	err := c.replicas[0].store.AddLicense(c.ctx, planestore.LicenseRecord{ID: id, Customer: "Customer " + id,
		IssuedAt: c.clock.Now(), ExpiresAt: c.clock.Now().Add(90 * 24 * time.Hour), GraceSeconds: 14 * 86400,
		Channels: []string{"stable"}, TokenHash: hex.EncodeToString(sum[:])})
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// activate activates a new install through replica i.
func (c *cluster) activate(t *testing.T, licenseID string, i int) *clusterAgent {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(nil)
	body, _ := json.Marshal(wire.ActivationRequest{ActivationToken: c.license(t, licenseID),
		PublicKey: base64.RawURLEncoding.EncodeToString(pub), AgentVersion: "1.3.0"})
	resp, err := http.Post(c.replicas[i].http.URL+"/v1/activate", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ar, err := wire.Decode[wire.ActivationResponse](out)
	if resp.StatusCode != 200 || err != nil {
		t.Fatalf("activate through %s: %d %s %v", c.replicas[i].name, resp.StatusCode, out, err)
	}
	return &clusterAgent{c: c, id: ar.InstallID, key: priv}
}

// request signs a request for replica i; it is not sent.
func (a *clusterAgent) request(i int, method, path string, body []byte) (*http.Request, error) {
	req, err := http.NewRequest(method, a.c.replicas[i].http.URL+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	return req, reqsign.Sign(req, body, a.id, a.key, a.c.clock.Now())
}

func do(req *http.Request) (int, []byte, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

func (a *clusterAgent) call(t *testing.T, i int, method, path string, body []byte) (int, []byte) {
	t.Helper()
	req, err := a.request(i, method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	code, out, err := do(req)
	if err != nil {
		t.Fatalf("%s %s through replica %d: %v", method, path, i, err)
	}
	return code, out
}

func (c *cluster) admin(t *testing.T, i int, method, path string, body any) (int, []byte, http.Header) {
	t.Helper()
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(method, c.replicas[i].http.URL+path, bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out, resp.Header
}

func heartbeats(t *testing.T, st *planestore.Store, id string) int64 {
	t.Helper()
	in, err := st.Install(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return in.Heartbeats
}

func TestClusterSharesStateAcrossReplicas(t *testing.T) {
	hook := &webhook{}
	hs := httptest.NewServer(hook)
	defer hs.Close()
	c := startCluster(t, 2, hs.URL)
	var agents []*clusterAgent
	for i := range 4 {
		agents = append(agents, c.activate(t, fmt.Sprintf("lic_%d", i), i%2))
	}

	t.Run("heartbeats round-robin", func(t *testing.T) {
		for round := range 6 {
			for _, a := range agents {
				if code, out := a.call(t, round%2, "POST", "/v1/heartbeat", heartbeatJSON(t, c.clock.Now(), "ok")); code != 200 {
					t.Fatalf("heartbeat to replica %d: %d %s", round%2, code, out)
				}
			}
		}
		for _, a := range agents {
			if n := heartbeats(t, c.replicas[1].store, a.id); n != 6 {
				t.Fatalf("install %s: %d heartbeats recorded, want 6", a.id, n)
			}
		}
	})

	t.Run("a request replayed to the other replica is refused", func(t *testing.T) {
		a := agents[0]
		body := heartbeatJSON(t, c.clock.Now(), "ok")
		req, err := a.request(0, "POST", "/v1/heartbeat", body)
		if err != nil {
			t.Fatal(err)
		}
		replay := req.Clone(c.ctx)
		replay.URL, _ = url.Parse(c.replicas[1].http.URL + "/v1/heartbeat")
		replay.Host = replay.URL.Host
		replay.Body = io.NopCloser(bytes.NewReader(body))
		if code, out, err := do(req); err != nil || code != 200 {
			t.Fatalf("original: %d %s %v", code, out, err)
		}
		code, out, err := do(replay)
		if err != nil || code != http.StatusUnauthorized || errorCode(out) != "replayed" {
			t.Fatalf("replay to the other replica: %d %s %v; want 401 replayed", code, out, err)
		}
	})

	t.Run("a bundle uploaded through one downloads through the other", func(t *testing.T) {
		a := agents[1]
		code, out, _ := c.admin(t, 0, "POST", "/v1/admin/diagnostics", plane.DiagnosticRequestBody{InstallID: a.id, Reason: "cluster test"})
		if code != 201 {
			t.Fatalf("request diagnostics: %d %s", code, out)
		}
		var d planestore.Diagnostic
		_ = json.Unmarshal(out, &d)
		zipped := zipBundle(t, map[string]string{"health.json": `{"ok":true}`})
		if code, out := a.call(t, 1, "POST", "/v1/diagnostics/"+d.ID+"/bundle", zipped); code != 204 {
			t.Fatalf("upload through replica 1: %d %s", code, out)
		}
		code, got, hdr := c.admin(t, 0, "GET", "/v1/admin/diagnostics/"+d.ID+"/bundle", nil)
		sum := sha256.Sum256(zipped)
		if code != 200 || !bytes.Equal(got, zipped) || hdr.Get("Tether-Bundle-Sha256") != hex.EncodeToString(sum[:]) {
			t.Fatalf("download through replica 0: %d, %d bytes, sha %s", code, len(got), hdr.Get("Tether-Bundle-Sha256"))
		}
		// In the bucket, under the plane's prefix, encrypted at rest.
		list, err := c.s3.ListObjectsV2(c.ctx, &s3.ListObjectsV2Input{Bucket: aws.String(c.bucket),
			Prefix: aws.String("plane/bundles/" + d.ID + "-" + hex.EncodeToString(sum[:8]) + "-")})
		if err != nil || len(list.Contents) != 1 {
			t.Fatalf("bundle objects: %v, %d; want one", err, len(list.Contents))
		}
		head, err := c.s3.HeadObject(c.ctx, &s3.HeadObjectInput{Bucket: aws.String(c.bucket), Key: list.Contents[0].Key})
		if err != nil || head.ServerSideEncryption == "" {
			t.Fatalf("bundle object: %v, encryption %q", err, head.ServerSideEncryption)
		}
	})

	t.Run("a release published through one is served by both", func(t *testing.T) {
		keys := filepath.Join(t.TempDir(), "keys")
		if _, err := publish.InitKeys(keys, publish.KeyOptions{RootKeys: 1, RootThreshold: 1}, c.clock.Now()); err != nil {
			t.Fatal(err)
		}
		work := t.TempDir()
		err := plane.WriteReleases(c.ctx, c.replicas[0].store, "publisher", c.repo, work, []string{"stable"},
			func(ctx context.Context, dir string) error {
				// While this writer holds the lease, the other replica's
				// hourly re-signing stands aside.
				other := plane.WriteReleases(ctx, c.replicas[1].store, "replica-1", c.repo, t.TempDir(), nil,
					func(context.Context, string) error { return errors.New("ran while the lease was held") })
				if !errors.Is(other, planestore.ErrLeaseHeld) {
					return fmt.Errorf("second writer: %v, want ErrLeaseHeld", other)
				}
				_, err := publish.Publish(ctx, dir, keys, publish.PublishOptions{Version: "1.4.0", Channel: "stable",
					Images:  map[string]string{"api": "registry.example.com/docsvc@sha256:" + strings.Repeat("a", 64)},
					MinFrom: "1.3.0", SchemaMin: 1, SchemaMax: 3, Notes: "n"}, c.clock.Now())
				return err
			})
		if err != nil {
			t.Fatalf("publish through the shared store: %v", err)
		}
		var served [][]byte
		for i := range c.replicas {
			code, out := agents[0].call(t, i, "GET", "/v1/tuf/stable/metadata/timestamp.json", nil)
			if code != 200 {
				t.Fatalf("timestamp from replica %d: %d %s", i, code, out)
			}
			served = append(served, out)
			code, out = agents[0].call(t, i, "GET", "/v1/tuf/stable/metadata/1.targets.json", nil)
			if code != 200 || !strings.Contains(string(out), "releases/") {
				t.Fatalf("targets from replica %d: %d %s", i, code, out)
			}
			code, out, _ = c.admin(t, i, "GET", "/v1/admin/releases", nil)
			var rs []plane.ChannelReleases
			_ = json.Unmarshal(out, &rs)
			if code != 200 || len(rs) != 1 || len(rs[0].Releases) != 1 || rs[0].Releases[0].Version != "1.4.0" {
				t.Fatalf("releases listed by replica %d: %d %s", i, code, out)
			}
		}
		if !bytes.Equal(served[0], served[1]) {
			t.Fatal("the replicas serve different timestamp.json")
		}
		// The lease was given back: the next writer (a replica's refresh) runs.
		if err := plane.WriteReleases(c.ctx, c.replicas[1].store, "replica-1", c.repo, t.TempDir(), nil,
			func(ctx context.Context, dir string) error { return publish.Refresh(ctx, dir, keys, c.clock.Now()) }); err != nil {
			t.Fatalf("refresh after the publish: %v", err)
		}
	})

	t.Run("a dashboard session started on one replica works on the other", func(t *testing.T) {
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noRedirect.PostForm(c.replicas[0].http.URL+"/login", url.Values{"token": {adminToken}, "next": {"/"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var cookie *http.Cookie
		for _, ck := range resp.Cookies() {
			if ck.Name == "tether_plane_session" {
				cookie = ck
			}
		}
		if cookie == nil {
			t.Fatalf("login on replica 0: %d, no session cookie", resp.StatusCode)
		}
		page := func(i int, path string) int {
			req, _ := http.NewRequest("GET", c.replicas[i].http.URL+path, nil)
			req.AddCookie(cookie)
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if code := page(1, "/"); code != 200 {
			t.Fatalf("dashboard on replica 1 with replica 0's session: %d", code)
		}
		req, _ := http.NewRequest("POST", c.replicas[1].http.URL+"/logout", nil)
		req.AddCookie(cookie)
		if resp, err := noRedirect.Do(req); err != nil {
			t.Fatal(err)
		} else {
			resp.Body.Close()
		}
		if code := page(0, "/"); code != http.StatusSeeOther {
			t.Fatalf("dashboard on replica 0 after logout on replica 1: %d, want a redirect to the login", code)
		}
	})

	t.Run("an alert fires once", func(t *testing.T) {
		c.clock.Advance(10 * time.Minute) // every install misses three intervals
		var wg sync.WaitGroup
		for range 3 {
			for _, r := range c.replicas {
				wg.Add(1)
				go func() { defer wg.Done(); r.server.Sweep(c.ctx) }()
			}
		}
		wg.Wait()
		perInstall := map[string]int{}
		hook.mu.Lock()
		for _, p := range hook.got {
			if p.Kind == "stale" {
				perInstall[p.InstallID]++
			}
		}
		hook.mu.Unlock()
		for _, a := range agents {
			if perInstall[a.id] != 1 {
				t.Fatalf("stale alerts per install = %v, want exactly one for each of %d installs", perInstall, len(agents))
			}
		}
	})

	t.Run("failed admin logins are counted across replicas", func(t *testing.T) {
		wrong := func(i int) int {
			req, _ := http.NewRequest("GET", c.replicas[i].http.URL+"/v1/admin/installs", nil)
			req.Header.Set("Authorization", "Bearer not-the-token")
			code, _, err := do(req)
			if err != nil {
				t.Fatal(err)
			}
			return code
		}
		for n := range 10 {
			if code := wrong(n % 2); code != http.StatusUnauthorized {
				t.Fatalf("wrong token %d: %d, want 401", n+1, code)
			}
		}
		for i := range c.replicas {
			if code := wrong(i); code != http.StatusTooManyRequests {
				t.Fatalf("11th wrong token on replica %d: %d, want 429", i, code)
			}
			if code, _, _ := c.admin(t, i, "GET", "/v1/admin/installs", nil); code != http.StatusTooManyRequests {
				t.Fatalf("right token while blocked on replica %d: %d, want 429", i, code)
			}
		}
		c.clock.Advance(time.Minute + time.Second)
		if code, out, _ := c.admin(t, 1, "GET", "/v1/admin/installs", nil); code != 200 {
			t.Fatalf("right token after the window: %d %s", code, out)
		}
	})
}

// Agents heartbeat round-robin while one replica is killed mid-load: every
// heartbeat a replica accepted is recorded, and each agent's failed attempt
// is followed at once by a successful one on the other replica (no agent
// fails for longer than one retry).
func TestClusterKillingAReplicaLosesNoAcceptedHeartbeat(t *testing.T) {
	c := startCluster(t, 2, "")
	const nAgents, perAgent = 8, 24
	var agents []*clusterAgent
	for i := range nAgents {
		agents = append(agents, c.activate(t, fmt.Sprintf("lic_%d", i), 0))
	}
	var accepted atomic.Int64
	var killOnce sync.Once
	killAt := int64(nAgents * perAgent / 3)
	type tally struct{ accepted, attempts, retried int }
	tallies := make([]tally, nAgents)
	var wg sync.WaitGroup
	errs := make(chan error, nAgents)
	for n, a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := n % 2
			for range perAgent {
				ok := false
				for attempt := 0; attempt < 2 && !ok; attempt++ {
					req, err := a.request(next, "POST", "/v1/heartbeat", heartbeatJSON(t, c.clock.Now(), "ok"))
					if err != nil {
						errs <- err
						return
					}
					next = (next + 1) % 2 // round-robin, and a retry goes to the other replica
					tallies[n].attempts++
					code, _, err := do(req)
					if err == nil && code == 200 {
						ok = true
						tallies[n].accepted++
						if accepted.Add(1) == killAt {
							killOnce.Do(c.replicas[1].kill)
						}
						continue
					}
					tallies[n].retried++
				}
				if !ok {
					errs <- fmt.Errorf("agent %d: a heartbeat failed twice in a row", n)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	retried := 0
	for n, a := range agents {
		got := heartbeats(t, c.replicas[0].store, a.id)
		tl := tallies[n]
		if tl.accepted != perAgent || got < int64(tl.accepted) || got > int64(tl.attempts) {
			t.Fatalf("agent %d: %d accepted of %d attempts, %d recorded; want all %d accepted and recorded", n, tl.accepted, tl.attempts, got, perAgent)
		}
		retried += tl.retried
	}
	if retried == 0 {
		t.Fatal("no agent ever hit the killed replica; the test did not test the kill")
	}
	t.Logf("%d heartbeats accepted; %d attempts hit the killed replica and were retried on the other", nAgents*perAgent, retried)
}

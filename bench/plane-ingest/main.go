// Command plane-ingest measures how many signed heartbeats per second the
// plane sustains on PostgreSQL, from simulated agents that each hold their
// own Ed25519 key, beside the machine's single-core Ed25519 verify rate
// measured in the same run. The ratio (heartbeats/s ÷ verifies/s on one
// core) says how close the whole path — HTTP, signature check, nonce
// insert, heartbeat transaction — comes to the cost of the signature check
// alone; the goal is ≥ 0.25.
//
//	go run ./bench/plane-ingest [-agents 200] [-concurrency 64] [-requests 30000] [-replicas 1,2] [-json]
//
// With several replica counts (the default, 1 and 2) it runs the same load
// against one plane and then against that many replicas sharing one
// PostgreSQL schema, each with its own store handle and HTTP listener, the
// requests spread round-robin as a load balancer would, and reports the
// throughputs side by side with their ratio to the single replica's.
//
// Requests are signed before the clock starts, so the client's signing does
// not compete with the plane for the CPU; the HTTP client does, since both
// run on this machine. PostgreSQL comes from TETHER_TEST_POSTGRES_URL
// (default postgres://tether_test:tether_test@127.0.0.1:5432/test); a fresh schema is made
// and dropped.
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherhq/tether/internal/license/issuer"
	"github.com/tetherhq/tether/internal/plane"
	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/reqsign"
	"github.com/tetherhq/tether/internal/sqldb"
	"github.com/tetherhq/tether/internal/wire"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "plane-ingest:", err)
		os.Exit(1)
	}
}

type result struct {
	Replicas        int     `json:"replicas"`
	Agents          int     `json:"agents"`
	Concurrency     int     `json:"concurrency"`
	Requests        int     `json:"requests"`
	Failed          int64   `json:"failed"`
	Seconds         float64 `json:"seconds"`
	HeartbeatsPerS  float64 `json:"heartbeats_per_second"`
	P50Ms           float64 `json:"p50_ms"`
	P99Ms           float64 `json:"p99_ms"`
	VerifyPerS1Core float64 `json:"ed25519_verify_per_second_one_core"` // median of the samples
	VerifyMin       float64 `json:"ed25519_verify_per_second_min"`
	VerifyMax       float64 `json:"ed25519_verify_per_second_max"`
	Ratio           float64 `json:"ratio"`
	Goal            float64 `json:"goal"`
	CPUs            int     `json:"cpus"`
	Database        string  `json:"database"`
	// VsOneReplica is this run's heartbeats/s over the one-replica run's.
	VsOneReplica float64 `json:"vs_one_replica,omitempty"`
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("plane-ingest", flag.ContinueOnError)
	agents := fs.Int("agents", 200, "simulated agents, each with its own key and license")
	conc := fs.Int("concurrency", 64, "requests in flight")
	requests := fs.Int("requests", 30000, "signed heartbeats to send")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the load phase to this file")
	replicaList := fs.String("replicas", "1,2", "comma-separated replica counts to measure, side by side")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var counts []int
	for _, f := range strings.Split(*replicaList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 8 {
			return fmt.Errorf("-replicas %q: want counts between 1 and 8, e.g. 1,2", *replicaList)
		}
		counts = append(counts, n)
	}
	pgURL := os.Getenv("TETHER_TEST_POSTGRES_URL")
	if pgURL == "" {
		pgURL = "postgres://tether_test:tether_test@127.0.0.1:5432/test"
	}
	var results []result
	for _, n := range counts {
		res, err := measure(ctx, pgURL, n, *agents, *conc, *requests, *cpuProfile)
		if err != nil {
			return err
		}
		if len(results) > 0 && results[0].Replicas == 1 {
			res.VsOneReplica = res.HeartbeatsPerS / results[0].HeartbeatsPerS
		}
		results = append(results, res)
	}
	if *jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(results)
	} else {
		for _, res := range results {
			fmt.Printf("plane-ingest: %d signed heartbeats from %d agents, %d in flight, %d replica(s) on one PostgreSQL, %d CPUs\n",
				res.Requests, res.Agents, res.Concurrency, res.Replicas, res.CPUs)
			fmt.Printf("  sustained:        %.0f heartbeats/s over %.1fs (%d failed)\n", res.HeartbeatsPerS, res.Seconds, res.Failed)
			fmt.Printf("  latency:          p50 %.2f ms, p99 %.2f ms\n", res.P50Ms, res.P99Ms)
			fmt.Printf("  baseline:         %.0f Ed25519 verifies/s on one core (median; samples %.0f-%.0f)\n",
				res.VerifyPerS1Core, res.VerifyMin, res.VerifyMax)
			fmt.Printf("  ratio:            %.3f (goal >= %.2f)\n", res.Ratio, res.Goal)
		}
		if len(results) > 1 {
			fmt.Printf("side by side:")
			for _, res := range results {
				fmt.Printf("  %d replica(s) %.0f/s", res.Replicas, res.HeartbeatsPerS)
				if res.VsOneReplica != 0 {
					fmt.Printf(" (x%.2f)", res.VsOneReplica)
				}
			}
			fmt.Println()
		}
	}
	for _, res := range results {
		if res.Failed > 0 {
			return fmt.Errorf("%d heartbeats failed with %d replica(s)", res.Failed, res.Replicas)
		}
	}
	return nil
}

// measure runs the load against n replicas on a fresh schema: each its own
// database handle, plane and listener; requests round-robin between them.
func measure(ctx context.Context, pgURL string, n, agents, conc, requests int, cpuProfile string) (result, error) {
	schemaURL, cleanup, err := freshSchema(ctx, pgURL)
	if err != nil {
		return result{}, err
	}
	defer cleanup()
	dataDir, err := os.MkdirTemp("", "plane-ingest-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dataDir)
	token, _, err := plane.LoadOrCreateAdminToken(dataDir)
	if err != nil {
		return result{}, err
	}
	var bases []string
	var store *planestore.Store
	for i := range n {
		db, err := sqldb.Open(ctx, schemaURL)
		if err != nil {
			return result{}, err
		}
		defer db.Close()
		st, err := planestore.Open(ctx, db, time.Now)
		if err != nil {
			return result{}, err
		}
		if store == nil {
			store = st
		}
		srv, err := plane.New(plane.Config{Store: st, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
			Now: time.Now, DataDir: filepath.Join(dataDir, fmt.Sprintf("data-%d", i)), AdminToken: token})
		if err != nil {
			return result{}, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return result{}, err
		}
		hs := &http.Server{Handler: srv.Handler()}
		go func() { _ = hs.Serve(ln) }()
		defer hs.Close()
		bases = append(bases, "http://"+ln.Addr().String())
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}}

	type agent struct {
		id  string
		key ed25519.PrivateKey
	}
	as := make([]agent, agents)
	for i := range as {
		tok := make([]byte, 32)
		_, _ = rand.Read(tok)
		token := base64.RawURLEncoding.EncodeToString(tok)
		if err := store.AddLicense(ctx, planestore.LicenseRecord{ID: fmt.Sprintf("lic_%d", i), Customer: "bench",
			IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), Channels: []string{"stable"},
			TokenHash: issuer.TokenHash(token)}); err != nil {
			return result{}, err
		}
		pub, priv, _ := ed25519.GenerateKey(nil)
		body, _ := json.Marshal(wire.ActivationRequest{ActivationToken: token,
			PublicKey: base64.RawURLEncoding.EncodeToString(pub), AgentVersion: "1.4.0"})
		resp, err := client.Post(bases[i%n]+"/v1/activate", "application/json", bytes.NewReader(body))
		if err != nil {
			return result{}, err
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ar, err := wire.Decode[wire.ActivationResponse](out)
		if err != nil {
			return result{}, fmt.Errorf("activate: %d %s", resp.StatusCode, out)
		}
		as[i] = agent{id: ar.InstallID, key: priv}
	}

	// Sign every request up front (fresh nonces, current time; the run is
	// far shorter than the five-minute skew window).
	type signed struct {
		body []byte
		hdr  http.Header
	}
	reqs := make([]signed, requests)
	now := time.Now()
	for i := range reqs {
		a := as[i%len(as)]
		body := heartbeat(now, i)
		r, _ := http.NewRequest("POST", bases[0]+"/v1/heartbeat", nil)
		if err := reqsign.Sign(r, body, a.id, a.key, now); err != nil {
			return result{}, err
		}
		reqs[i] = signed{body: body, hdr: r.Header}
	}

	before := verifySamples()

	if cpuProfile != "" {
		f, err := os.Create(fmt.Sprintf("%s.%d", cpuProfile, n))
		if err != nil {
			return result{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return result{}, err
		}
		defer pprof.StopCPUProfile()
	}
	lat := make([]time.Duration, len(reqs))
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(reqs) {
					return
				}
				r, _ := http.NewRequest("POST", bases[i%n]+"/v1/heartbeat", bytes.NewReader(reqs[i].body))
				r.Header = reqs[i].hdr
				t0 := time.Now()
				resp, err := client.Do(r)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				lat[i] = time.Since(t0)
				if err != nil || resp.StatusCode != 200 {
					if failed.Add(1) <= 3 {
						status := 0
						if resp != nil {
							status = resp.StatusCode
						}
						fmt.Fprintf(os.Stderr, "plane-ingest: heartbeat %d failed: status %d, err %v\n", i, status, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	// The machine may be shared, so the baseline is sampled right before and
	// right after the load and the median taken: the same conditions the
	// plane ran under, as near as one core can be measured.
	samples := append(before, verifySamples()...)
	slices.Sort(samples)
	verifyRate := samples[len(samples)/2]
	slices.Sort(lat)
	res := result{
		Replicas: n, Agents: agents, Concurrency: conc, Requests: len(reqs), Failed: failed.Load(),
		Seconds:         elapsed.Seconds(),
		HeartbeatsPerS:  float64(int64(len(reqs))-failed.Load()) / elapsed.Seconds(),
		P50Ms:           ms(lat[len(lat)/2]),
		P99Ms:           ms(lat[len(lat)*99/100]),
		VerifyPerS1Core: verifyRate,
		VerifyMin:       samples[0],
		VerifyMax:       samples[len(samples)-1],
		Goal:            0.25,
		CPUs:            runtime.NumCPU(),
		Database:        "postgres",
	}
	res.Ratio = res.HeartbeatsPerS / res.VerifyPerS1Core
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// heartbeat is a realistic heartbeat body (~600 bytes) that varies per request.
func heartbeat(now time.Time, i int) []byte {
	statuses := []string{"ok", "ok", "ok", "degraded"}
	hb := wire.Heartbeat{
		SentAt:   now,
		Versions: wire.Versions{Docsvc: "1.4.0", Agent: "1.4.0", Schema: 3},
		Channel:  "stable",
		Components: []wire.ComponentHealth{{Name: "api", Status: "ok"}, {Name: "worker", Status: statuses[i%4]},
			{Name: "database", Status: "ok"}, {Name: "queue", Status: "ok"}},
		Queue:      wire.QueueStats{Depth: int64(i % 50), InFlight: 2, OldestAgeSeconds: 3},
		ErrorRate:  0.001,
		AIProvider: wire.ProviderHealth{Kind: "bedrock", Status: "ok"},
		License:    wire.LicenseStatus{State: "valid", ExpiresAt: now.Add(90 * 24 * time.Hour)},
		Storage:    wire.StorageTotals{ObjectsBucket: "100-9999", BytesBucket: "1-10GB"},
	}
	b, _ := json.Marshal(hb)
	return b
}

// verifySamples measures Ed25519 verifies per second on a single goroutine
// (so at most one core): five samples of 400ms each.
func verifySamples() []float64 {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := reqsign.Canonical("POST", "/v1/heartbeat", heartbeat(time.Now(), 0), time.Now().Unix(), "bm9uY2Vub25jZW5vbmNl", "in_bench")
	sig := ed25519.Sign(priv, msg)
	var out []float64
	for range 5 {
		n := 0
		start := time.Now()
		for time.Since(start) < 400*time.Millisecond {
			for range 50 {
				if !ed25519.Verify(pub, msg, sig) {
					panic("verify failed")
				}
			}
			n += 50
		}
		out = append(out, float64(n)/time.Since(start).Seconds())
	}
	return out
}

// freshSchema makes an empty schema and returns a URL whose search_path
// selects it; cleanup drops it.
func freshSchema(ctx context.Context, base string) (string, func(), error) {
	admin, err := sqldb.Open(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("PostgreSQL is required (set TETHER_TEST_POSTGRES_URL): %w", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "plane_bench_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return "", nil, err
	}
	cleanup := func() {
		_, _ = admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	}
	u, err := url.Parse(base)
	if err != nil {
		cleanup()
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), cleanup, nil
}

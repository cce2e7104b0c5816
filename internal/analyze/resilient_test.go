package analyze

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// scripted is a fake Analyzer that returns the queued results in order and
// then keeps returning the last one.
type scripted struct {
	mu      sync.Mutex
	results []error
	calls   int
}

func (s *scripted) Name() string { return "fake" }

func (s *scripted) Analyze(ctx context.Context, text string) (Analysis, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	err := s.results[0]
	if len(s.results) > 1 {
		s.results = s.results[1:]
	}
	if err != nil {
		return Analysis{}, err
	}
	return Analysis{Summary: "ok", Provider: "fake"}, nil
}

func (s *scripted) set(results ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.results = results
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// fakeClock is a clock that only moves when something sleeps on it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type bundle struct {
	inner *scripted
	clock *fakeClock
	r     *Resilient
	logs  *bytes.Buffer
}

func setup(t *testing.T, o ResilientOptions, results ...error) bundle {
	t.Helper()
	b := bundle{
		inner: &scripted{results: results},
		clock: &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		logs:  &bytes.Buffer{},
	}
	o.Clock, o.Sleep = b.clock.Now, b.clock.Sleep
	o.Logger = slog.New(slog.NewTextHandler(b.logs, nil))
	b.r = NewResilient(b.inner, o)
	return b
}

func unavailable(class string) error {
	return &ProviderError{Provider: "fake", Op: "call", Class: class, Kind: ErrUnavailable}
}

var opts = ResilientOptions{
	MaxAttempts:      3,
	BaseDelay:        time.Second,
	MaxDelay:         8 * time.Second,
	FailureThreshold: 3,
	Cooldown:         time.Minute,
}

func TestResilientRetriesThenSucceeds(t *testing.T) {
	b := setup(t, opts, unavailable("http_503"), unavailable("timeout"), nil)
	got, err := b.r.Analyze(context.Background(), "text")
	if err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	if got.Summary != "ok" || b.inner.count() != 3 {
		t.Errorf("got %+v after %d calls, want success on the 3rd", got, b.inner.count())
	}
	// Equal jitter: the n-th wait is in [base*2^(n-1)/2, base*2^(n-1)].
	if len(b.clock.sleeps) != 2 {
		t.Fatalf("sleeps = %v, want 2", b.clock.sleeps)
	}
	for i, d := range b.clock.sleeps {
		hi := opts.BaseDelay << i
		if d < hi/2 || d > hi {
			t.Errorf("wait %d = %v, want in [%v, %v]", i+1, d, hi/2, hi)
		}
	}
	if st := b.r.State(); st.Status != "ok" || st.ConsecutiveFailures != 0 {
		t.Errorf("state = %+v, want ok with no failures", st)
	}
}

func TestResilientBackoffIsCapped(t *testing.T) {
	o := opts
	o.MaxAttempts, o.FailureThreshold = 8, 100
	b := setup(t, o, unavailable("http_503"))
	_, err := b.r.Analyze(context.Background(), "text")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if b.inner.count() != 8 || len(b.clock.sleeps) != 7 {
		t.Fatalf("%d calls, %d sleeps; want 8 and 7", b.inner.count(), len(b.clock.sleeps))
	}
	for _, d := range b.clock.sleeps {
		if d > o.MaxDelay {
			t.Errorf("wait %v exceeds MaxDelay %v", d, o.MaxDelay)
		}
	}
	if last := b.clock.sleeps[6]; last < o.MaxDelay/2 {
		t.Errorf("late wait %v, want at least MaxDelay/2", last)
	}
	if st := b.r.State(); st.Status != "degraded" || st.ConsecutiveFailures != 8 || st.LastErrorClass != "http_503" {
		t.Errorf("state = %+v, want degraded after 8 failures", st)
	}
}

func TestResilientHonoursRetryAfter(t *testing.T) {
	throttled := &ProviderError{Provider: "fake", Op: "call", Class: "http_429", RetryAfter: 5 * time.Second, Kind: ErrUnavailable}
	b := setup(t, opts, throttled, nil)
	if _, err := b.r.Analyze(context.Background(), "text"); err != nil {
		t.Fatal(err)
	}
	if len(b.clock.sleeps) != 1 || b.clock.sleeps[0] != 5*time.Second {
		t.Errorf("sleeps = %v, want [5s] from Retry-After", b.clock.sleeps)
	}
}

func TestResilientCircuit(t *testing.T) {
	b := setup(t, opts, unavailable("http_503"))
	ctx := context.Background()

	// An outage: three failed attempts open the circuit.
	_, err := b.r.Analyze(ctx, "text")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	st := b.r.State()
	wantRetry := b.clock.Now().Add(opts.Cooldown)
	if st.Status != "down" || st.ConsecutiveFailures != 3 || st.LastErrorClass != "http_503" || !st.RetryAfter.Equal(wantRetry) {
		t.Fatalf("state = %+v, want down, 3 failures, http_503, retry at %v", st, wantRetry)
	}

	// While open, calls fail at once without reaching the provider.
	_, err = b.r.Analyze(ctx, "text")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "circuit open") {
		t.Fatalf("err = %v, want an open-circuit ErrUnavailable", err)
	}
	if b.inner.count() != 3 {
		t.Fatalf("provider called %d times, want 3: an open circuit must not call it", b.inner.count())
	}

	// WaitUntilAvailable sleeps out the cooldown.
	sleptBefore := len(b.clock.sleeps)
	if err := b.r.WaitUntilAvailable(ctx); err != nil {
		t.Fatal(err)
	}
	if b.clock.Now().Before(wantRetry) || len(b.clock.sleeps) == sleptBefore {
		t.Fatalf("WaitUntilAvailable returned at %v, before the cooldown ended at %v", b.clock.Now(), wantRetry)
	}

	// A failed probe reopens the circuit at once, with a new cooldown.
	_, err = b.r.Analyze(ctx, "text")
	if !errors.Is(err, ErrUnavailable) || b.inner.count() != 4 {
		t.Fatalf("probe: err = %v after %d calls, want one failed probe", err, b.inner.count())
	}
	if st := b.r.State(); st.Status != "down" || !st.RetryAfter.Equal(b.clock.Now().Add(opts.Cooldown)) {
		t.Fatalf("after failed probe state = %+v, want down with a fresh cooldown", st)
	}

	// The provider recovers: after the cooldown one probe succeeds and
	// closes the circuit.
	b.inner.set(nil)
	b.clock.advance(opts.Cooldown)
	if st := b.r.State(); st.Status != "down" {
		t.Fatalf("state before probe = %+v, want still down until a probe succeeds", st)
	}
	if _, err := b.r.Analyze(ctx, "text"); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if st := b.r.State(); st.Status != "ok" || st.ConsecutiveFailures != 0 || !st.RetryAfter.IsZero() {
		t.Fatalf("state = %+v, want ok", st)
	}
	if err := b.r.WaitUntilAvailable(ctx); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"circuit open", "half-open", "circuit closed"} {
		if !strings.Contains(b.logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, b.logs)
		}
	}
}

func TestResilientOnlyOneProbe(t *testing.T) {
	o := opts
	o.FailureThreshold, o.MaxAttempts = 1, 1
	b := setup(t, o, unavailable("network"))
	ctx := context.Background()
	if _, err := b.r.Analyze(ctx, "text"); !errors.Is(err, ErrUnavailable) {
		t.Fatal(err)
	}
	b.clock.advance(o.Cooldown)
	probe, err := b.r.admit()
	if err != nil || !probe {
		t.Fatalf("admit = %v, %v; want the probe", probe, err)
	}
	if _, err := b.r.admit(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("second admit during the probe: err = %v, want ErrUnavailable", err)
	}
	if st := b.r.State(); st.Status != "degraded" {
		t.Errorf("state during probe = %+v, want degraded", st)
	}
	// While the probe runs, WaitUntilAvailable polls; a probe that ends
	// (here: the caller gave up) lets the next call probe.
	b.r.abandoned(true)
	if probe, err := b.r.admit(); err != nil || !probe {
		t.Fatalf("admit after abandoned probe = %v, %v; want a new probe", probe, err)
	}
}

func TestResilientRejectedIsNotRetriedNorCounted(t *testing.T) {
	o := opts
	o.FailureThreshold = 1
	rejected := &ProviderError{Provider: "fake", Op: "call", Class: "http_400", Kind: ErrRejected}
	b := setup(t, o, rejected)
	for range 5 {
		_, err := b.r.Analyze(context.Background(), "text")
		if !errors.Is(err, ErrRejected) {
			t.Fatalf("err = %v, want ErrRejected", err)
		}
	}
	if b.inner.count() != 5 || len(b.clock.sleeps) != 0 {
		t.Errorf("%d calls, %d sleeps; want 5 calls and no retries", b.inner.count(), len(b.clock.sleeps))
	}
	if st := b.r.State(); st.Status != "ok" || st.ConsecutiveFailures != 0 {
		t.Errorf("state = %+v, want ok: rejections do not trip the breaker", st)
	}
}

func TestResilientRejectedResetsFailures(t *testing.T) {
	rejected := &ProviderError{Provider: "fake", Op: "call", Class: "http_400", Kind: ErrRejected}
	o := opts
	o.MaxAttempts = 1
	b := setup(t, o, unavailable("http_503"), unavailable("http_503"), rejected, unavailable("http_503"))
	for range 4 {
		_, _ = b.r.Analyze(context.Background(), "text")
	}
	if st := b.r.State(); st.Status != "degraded" || st.ConsecutiveFailures != 1 {
		t.Errorf("state = %+v, want 1 consecutive failure: the rejection showed the provider answering", st)
	}
}

func TestResilientAuth(t *testing.T) {
	auth := &ProviderError{Provider: "fake", Op: "call", Class: "auth", Kind: ErrAuth}
	b := setup(t, opts, auth)
	for i := range 3 {
		_, err := b.r.Analyze(context.Background(), "text")
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("call %d: err = %v, want ErrAuth", i, err)
		}
	}
	if b.inner.count() != 3 || len(b.clock.sleeps) != 0 {
		t.Errorf("%d calls, %d sleeps; want 3 calls and no retries: the same keys fail again", b.inner.count(), len(b.clock.sleeps))
	}
	if st := b.r.State(); st.Status != "down" || st.LastErrorClass != "auth" {
		t.Errorf("state = %+v, want down with class auth, so workers stop taking jobs", st)
	}
}

func TestResilientCallerCancel(t *testing.T) {
	b := setup(t, opts, unavailable("http_503"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := b.r.Analyze(ctx, "text")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if err := b.r.WaitUntilAvailable(ctx); err != nil {
		t.Fatalf("WaitUntilAvailable on a closed circuit = %v, want nil", err)
	}
	b.r.failed(false, unavailable("http_503"))
	b.r.failed(false, unavailable("http_503"))
	b.r.failed(false, unavailable("http_503"))
	if err := b.r.WaitUntilAvailable(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitUntilAvailable on an open circuit with a cancelled ctx = %v, want context.Canceled", err)
	}
}

func TestResilientConcurrent(t *testing.T) {
	// Run with -race: many workers sharing one Resilient over a flaky
	// provider only ever see success or ErrUnavailable.
	b := setup(t, opts, unavailable("http_503"), nil, unavailable("http_503"), unavailable("http_503"), nil)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 20 {
				_ = b.r.WaitUntilAvailable(context.Background())
				if _, err := b.r.Analyze(context.Background(), "text"); err != nil && !errors.Is(err, ErrUnavailable) {
					t.Errorf("err = %v", err)
				}
				_ = b.r.State()
			}
		})
	}
	wg.Wait()
}

func TestResilientWithProvider(t *testing.T) {
	// The breaker over a real provider client: 503s from the server open
	// it, the client is not called while open, and the error class in State
	// comes from the HTTP status.
	wr := openAIWire()
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		wr.fail(w, http.StatusServiceUnavailable, "overloaded "+errCanary)
	})
	clock := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	var logs bytes.Buffer
	o := opts
	o.Clock, o.Sleep, o.Logger = clock.Now, clock.Sleep, slog.New(slog.NewJSONHandler(&logs, nil))
	r := NewResilient(wr.build(t, srv.Server, Config{}), o)
	for range 3 {
		_, err := r.Analyze(context.Background(), "text "+docCanary)
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v", err)
		}
	}
	if srv.requests != 3 {
		t.Errorf("%d requests, want 3 (one call's attempts, then the circuit is open)", srv.requests)
	}
	st := r.State()
	if st.Provider != "openai" || st.Status != "down" || st.LastErrorClass != "http_503" {
		t.Errorf("state = %+v", st)
	}
	if strings.Contains(logs.String(), "CANARY") {
		t.Errorf("logs leak content: %s", logs.String())
	}
	// The services stack's ai-provider alarm counts exactly this JSON
	// field: {$.msg = CircuitOpenMessage}.
	if !strings.Contains(logs.String(), `"msg":"`+CircuitOpenMessage+`"`) {
		t.Errorf("no %q log line for the alarm to count: %s", CircuitOpenMessage, logs.String())
	}
}

package analyze

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// ResilientOptions tunes Resilient. Zero values take the defaults noted.
type ResilientOptions struct {
	MaxAttempts int           // attempts per Analyze call, including the first; default 3
	BaseDelay   time.Duration // backoff before the second attempt; default 1s
	MaxDelay    time.Duration // backoff cap; default 30s
	// FailureThreshold is how many consecutive transient failures (counted
	// per attempt) open the circuit; default 5.
	FailureThreshold int
	Cooldown         time.Duration // how long the circuit stays open before a probe; default 30s
	Clock            func() time.Time
	// Sleep waits for d or until ctx is done; default a timer.
	Sleep  func(ctx context.Context, d time.Duration) error
	Logger *slog.Logger // default discards
}

// ProviderState is the provider's health as the status page and heartbeat
// show it. It holds only fixed tokens and counts, never provider text.
type ProviderState struct {
	Provider            string
	Status              string // "ok" | "degraded" | "down"
	ConsecutiveFailures int
	LastErrorClass      string // e.g. "timeout", "http_503", "auth"; empty when none yet
	RetryAfter          time.Time
}

type circuit int

const (
	closed   circuit = iota
	open             // refusing calls until openUntil
	halfOpen         // one probe call in flight
)

// Resilient wraps an Analyzer with retries and a circuit breaker.
//
// Transient failures (ErrUnavailable) are retried with exponential backoff
// and jitter, honouring a provider's Retry-After. ErrAuth is not retried (the
// same keys will fail again) but, like an outage, counts towards the breaker:
// either way no job can succeed until something outside changes, and an open
// breaker makes workers stop taking jobs (WaitUntilAvailable) instead of
// burning their receive counts. ErrRejected is about one input, so it is
// neither retried nor counted, and shows the provider is answering.
//
// After FailureThreshold consecutive failed attempts the circuit opens: calls
// fail at once with ErrUnavailable for Cooldown. Then one call is let through
// as a probe; success closes the circuit, failure reopens it.
type Resilient struct {
	inner Analyzer
	o     ResilientOptions

	mu        sync.Mutex
	state     circuit
	failures  int
	lastClass string
	openUntil time.Time
}

// CircuitOpenMessage is the log message of each time the circuit opens
// (again): the provider failed FailureThreshold times in a row, or its
// probe failed. The services stack counts it in the worker's log group and
// alarms on it (deploy/cdk/stacks/observability.go, ai-provider), which is
// how tetherctl status tells that the provider is degraded.
const CircuitOpenMessage = "analyze: circuit open"

// NewResilient wraps inner.
func NewResilient(inner Analyzer, o ResilientOptions) *Resilient {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.BaseDelay <= 0 {
		o.BaseDelay = time.Second
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 30 * time.Second
	}
	if o.FailureThreshold <= 0 {
		o.FailureThreshold = 5
	}
	if o.Cooldown <= 0 {
		o.Cooldown = 30 * time.Second
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Resilient{inner: inner, o: o}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Name is the wrapped provider's name.
func (r *Resilient) Name() string { return r.inner.Name() }

// Analyze calls the wrapped analyzer, retrying transient failures.
func (r *Resilient) Analyze(ctx context.Context, text string) (Analysis, error) {
	var lastErr error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return Analysis{}, fmt.Errorf("analyze: %s: %w", r.Name(), err)
		}
		probe, err := r.admit()
		if err != nil {
			return Analysis{}, err
		}
		a, err := r.inner.Analyze(ctx, text)
		if err == nil {
			r.succeeded()
			return a, nil
		}
		if ctx.Err() != nil {
			// The caller gave up; say nothing about the provider.
			r.abandoned(probe)
			return Analysis{}, fmt.Errorf("analyze: %s: %w", r.Name(), ctx.Err())
		}
		if errors.Is(err, ErrRejected) {
			r.succeeded() // the provider answered
			return Analysis{}, err
		}
		lastErr = err
		if opened := r.failed(probe, err); opened || errors.Is(err, ErrAuth) || attempt >= r.o.MaxAttempts {
			return Analysis{}, err
		}
		if err := r.o.Sleep(ctx, r.backoff(attempt, err)); err != nil {
			return Analysis{}, fmt.Errorf("analyze: %s: wait to retry: %w (last error: %w)", r.Name(), err, lastErr)
		}
	}
}

// backoff is the wait after the attempt-th failure: BaseDelay doubling, capped
// at MaxDelay, with "equal jitter" (half fixed, half random) so workers that
// failed together do not retry together; never less than the provider's
// Retry-After.
func (r *Resilient) backoff(attempt int, err error) time.Duration {
	d := r.o.BaseDelay
	for i := 1; i < attempt && d < r.o.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, r.o.MaxDelay)
	d = d/2 + rand.N(d/2+1)
	var pe *ProviderError
	if errors.As(err, &pe) && pe.RetryAfter > d {
		d = min(pe.RetryAfter, r.o.MaxDelay)
	}
	return d
}

// admit decides whether a call may go to the provider now. probe reports
// that this call is the half-open probe.
func (r *Resilient) admit() (probe bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.state {
	case closed:
		return false, nil
	case open:
		if !r.o.Clock().Before(r.openUntil) {
			r.state = halfOpen
			r.o.Logger.Info("analyze: circuit half-open, probing", "provider", r.Name())
			return true, nil
		}
	}
	return false, fmt.Errorf("analyze: %s: circuit open after %d consecutive failures (last %s): %w",
		r.Name(), r.failures, r.lastClass, ErrUnavailable)
}

// succeeded records that the provider answered. Any answer closes the
// circuit, even one to a call admitted before it opened: the provider is up.
func (r *Resilient) succeeded() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != closed {
		r.o.Logger.Info("analyze: circuit closed", "provider", r.Name(), "after_failures", r.failures)
	}
	r.state = closed
	r.openUntil = time.Time{}
	r.failures = 0
}

// abandoned releases a probe whose caller gave up, so the next call probes.
func (r *Resilient) abandoned(probe bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if probe && r.state == halfOpen {
		r.state = open // openUntil has passed: the next admit probes again
	}
}

// failed records a transient failure and reports whether the circuit is now
// open.
func (r *Resilient) failed(probe bool, err error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures++
	r.lastClass = errorClass(err)
	if probe || (r.state == closed && r.failures >= r.o.FailureThreshold) {
		r.state = open
		r.openUntil = r.o.Clock().Add(r.o.Cooldown)
		r.o.Logger.Warn(CircuitOpenMessage, "provider", r.Name(),
			"consecutive_failures", r.failures, "error_class", r.lastClass, "cooldown", r.o.Cooldown)
		return true
	}
	return r.state == open
}

// errorClass is the fixed token for err: the ProviderError's Class, or a
// coarse token for errors from analyzers that do not return one.
func errorClass(err error) string {
	var pe *ProviderError
	switch {
	case errors.As(err, &pe):
		return pe.Class
	case errors.Is(err, ErrAuth):
		return "auth"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	default:
		return "unavailable"
	}
}

// State reports the provider's health.
func (r *Resilient) State() ProviderState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := ProviderState{
		Provider:            r.Name(),
		Status:              "ok",
		ConsecutiveFailures: r.failures,
		LastErrorClass:      r.lastClass,
	}
	switch {
	case r.state == open:
		st.Status = "down"
		st.RetryAfter = r.openUntil
	case r.state == halfOpen || r.failures > 0:
		st.Status = "degraded"
	}
	return st
}

// WaitUntilAvailable blocks while the circuit is open, so a worker does not
// take a job it cannot process. It returns nil once a call would be let
// through (the circuit is closed, or the cooldown is over and a probe may
// start), or ctx's error. While another call is probing it polls every
// BaseDelay.
func (r *Resilient) WaitUntilAvailable(ctx context.Context) error {
	for {
		r.mu.Lock()
		state, until := r.state, r.openUntil
		r.mu.Unlock()
		var wait time.Duration
		switch state {
		case closed:
			return nil
		case open:
			wait = until.Sub(r.o.Clock())
			if wait <= 0 {
				return nil
			}
		case halfOpen:
			wait = r.o.BaseDelay
		}
		if err := r.o.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("analyze: %s: wait for provider: %w", r.Name(), err)
		}
	}
}

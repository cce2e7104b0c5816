// Package analyze summarises extracted text and ranks its keywords, with the
// AI provider the customer chose: an offline local analyzer by default, or an
// OpenAI-compatible endpoint, Anthropic, or Amazon Bedrock in the customer's
// own account.
//
// Document text only ever goes to the provider named in Config. Errors and
// logs from this package carry provider names, HTTP status classes and counts,
// never document text or the provider's response text, because both can hold
// the customer's content.
package analyze

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
)

// Analysis is the result of analysing one document's text.
type Analysis struct {
	Summary  string
	Keywords []string
	Provider string // "local", "openai", "anthropic", "bedrock"
	Model    string
}

// Analyzer turns text into an Analysis. Implementations are safe for
// concurrent use.
type Analyzer interface {
	Analyze(ctx context.Context, text string) (Analysis, error)
	Name() string // "local", "openai", "anthropic", "bedrock"
}

// The three ways an analysis can fail. Every error this package returns wraps
// exactly one of them (or the caller's context error), so the worker decides
// with errors.Is whether a job waits, retries or fails.
var (
	// ErrUnavailable is transient: outage, 429, 5xx, timeout, network error,
	// a malformed model reply, or an open circuit. The job must wait and
	// retry, never fail for this.
	ErrUnavailable = errors.New("analyze: provider unavailable")
	// ErrRejected is permanent for this input: a 4xx other than
	// 401/403/404/408/429, a content filter, or empty text. The job fails.
	ErrRejected = errors.New("analyze: provider rejected the input")
	// ErrAuth means the provider refused its configuration: the credentials
	// (401/403) or the model or endpoint (404). It is transient from the
	// job's view, because the operator fixes the configuration,
	// but is reported distinctly so the status page can say so.
	ErrAuth = errors.New("analyze: provider credentials rejected")
)

// ProviderError is what every provider returns on failure. Class is a short
// fixed token ("timeout", "network", "http_503", "auth", "bad_response",
// "content_filter", ...) safe to log and to send in a heartbeat; it is never
// built from provider text.
type ProviderError struct {
	Provider string
	Op       string // what was being done, e.g. "chat completion"
	Class    string
	// RetryAfter is the provider's own hint (Retry-After header), or zero.
	RetryAfter time.Duration
	Kind       error // ErrUnavailable, ErrRejected or ErrAuth
}

func (e *ProviderError) Error() string {
	return fmt.Sprintf("analyze: %s %s: %s: %v", e.Provider, e.Op, e.Class, e.Kind)
}

func (e *ProviderError) Unwrap() error { return e.Kind }

// Config selects and configures the provider.
type Config struct {
	Provider string // local | openai | anthropic | bedrock
	Model    string // required except for local
	// BaseURL: openai: OpenAI-compatible base URL (OpenAI, Azure OpenAI's
	// /openai/v1, vLLM), required; anthropic:
	// optional override; bedrock: optional endpoint override (tests, VPC
	// endpoints).
	BaseURL       string
	APIKey        string        // openai, anthropic
	Region        string        // bedrock
	Timeout       time.Duration // per request; default DefaultTimeout
	MaxInputChars int           // text sent to a provider is cut to this; default DefaultMaxInputChars
}

// Defaults applied by New when the Config leaves a value zero.
const (
	DefaultTimeout       = 120 * time.Second
	DefaultMaxInputChars = 100_000
)

// Bounds on what any analyzer hands back, so a verbose model (or a hostile
// document steering it) cannot blow up a database row or a web page.
const (
	maxSummaryChars = 2000
	maxKeywords     = 10
	maxKeywordChars = 80
)

// New builds the analyzer cfg names. httpClient may be nil, meaning
// http.DefaultClient's behaviour; tests pass one that trusts their server.
func New(ctx context.Context, cfg Config, httpClient *http.Client) (Analyzer, error) {
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("analyze: config: timeout must not be negative")
	}
	if cfg.MaxInputChars < 0 {
		return nil, fmt.Errorf("analyze: config: max input chars must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxInputChars == 0 {
		cfg.MaxInputChars = DefaultMaxInputChars
	}
	if cfg.Provider != "local" && cfg.Provider != "" && cfg.Model == "" {
		return nil, fmt.Errorf("analyze: config: provider %q needs a model", cfg.Provider)
	}
	switch cfg.Provider {
	case "local", "":
		return NewLocal(), nil
	case "openai":
		if cfg.BaseURL == "" {
			return nil, fmt.Errorf("analyze: config: provider openai needs the endpoint's base URL (nothing is assumed)")
		}
		if cfg.APIKey == "" {
			return nil, fmt.Errorf("analyze: config: provider openai needs an API key")
		}
		return newOpenAI(cfg, httpClient), nil
	case "anthropic":
		if cfg.APIKey == "" {
			return nil, fmt.Errorf("analyze: config: provider anthropic needs an API key")
		}
		return newAnthropic(cfg, httpClient), nil
	case "bedrock":
		if cfg.Region == "" {
			return nil, fmt.Errorf("analyze: config: provider bedrock needs a region")
		}
		return newBedrock(ctx, cfg, httpClient)
	default:
		return nil, fmt.Errorf("analyze: config: unknown provider %q (want local, openai, anthropic or bedrock)", cfg.Provider)
	}
}

// errNoText is returned for empty or whitespace-only input by every analyzer,
// before anything is sent anywhere.
var errNoText = fmt.Errorf("analyze: no text to analyze: %w", ErrRejected)

// truncateRunes cuts s to at most n characters without splitting a UTF-8
// sequence. Invalid bytes count as one character each.
func truncateRunes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n { // byte length bounds rune count
		return s
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

// isBlank reports whether s has nothing to analyse: only white space and
// control characters.
func isBlank(s string) bool {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) == ""
}

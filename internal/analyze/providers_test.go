package analyze

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Each remote provider is tested against an httptest server that answers as
// that provider's API does: the request is checked field by field and the
// responses, including errors, are in the provider's wire format. The same
// suite runs against all three, so they map failures the same way.

// Canaries: none of these may ever appear in an error message.
const (
	docCanary   = "CANARY-DOC-5512"
	errCanary   = "CANARY-ERRBODY-8841"
	replyCanary = "CANARY-REPLY-3307"
)

// wire describes one provider's API.
type wire struct {
	name  string
	model string
	// build returns the analyzer pointed at srv.
	build func(t *testing.T, srv *httptest.Server, cfg Config) Analyzer
	// checkRequest asserts the request shape and returns the document text
	// the request carried.
	checkRequest func(t *testing.T, r *http.Request, body []byte) (document string)
	// reply writes a successful response whose model output is text;
	// stop is the provider's stop reason, "" for the normal one.
	reply func(w http.ResponseWriter, text, stop string)
	// fail writes an error response.
	fail func(w http.ResponseWriter, status int, message string)
	// filtered is the stop reason that means a content filter fired.
	filtered string
}

func wires() []wire {
	return []wire{openAIWire(), anthropicWire(), bedrockWire()}
}

func decodeJSON(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("request body is not JSON: %v", err)
	}
	return m
}

// path walks a decoded JSON document: path(m, "messages", 0, "content").
func path(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			s, ok := v.([]any)
			if !ok || k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func openAIWire() wire {
	return wire{
		name:  "openai",
		model: "gpt-4o-mini",
		build: func(t *testing.T, srv *httptest.Server, cfg Config) Analyzer {
			cfg.Provider, cfg.Model, cfg.APIKey = "openai", "gpt-4o-mini", "sk-test"
			cfg.BaseURL = srv.URL + "/v1/"
			a, err := New(context.Background(), cfg, srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			return a
		},
		checkRequest: func(t *testing.T, r *http.Request, body []byte) string {
			t.Helper()
			if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
				t.Errorf("request %s %s, want POST /v1/chat/completions", r.Method, r.URL.Path)
			}
			if got := r.Header.Get("Authorization"); got != "Bearer sk-test" {
				t.Errorf("Authorization = %q", got)
			}
			m := decodeJSON(t, body)
			if m["model"] != "gpt-4o-mini" {
				t.Errorf("model = %v", m["model"])
			}
			if got := path(m, "response_format", "type"); got != "json_object" {
				t.Errorf("response_format.type = %v", got)
			}
			if got := path(m, "max_completion_tokens"); got != float64(maxOutputTokens) {
				t.Errorf("max_completion_tokens = %v", got)
			}
			if path(m, "messages", 0, "role") != "system" || path(m, "messages", 1, "role") != "user" {
				t.Errorf("messages roles = %v, %v", path(m, "messages", 0, "role"), path(m, "messages", 1, "role"))
			}
			if sys, _ := path(m, "messages", 0, "content").(string); !strings.Contains(sys, `"summary"`) {
				t.Errorf("system prompt does not ask for the JSON shape: %q", sys)
			}
			doc, _ := path(m, "messages", 1, "content").(string)
			return doc
		},
		reply: func(w http.ResponseWriter, text, stop string) {
			if stop == "" {
				stop = "stop"
			}
			writeJSON(w, 200, map[string]any{
				"id": "chatcmpl-abc123", "object": "chat.completion", "created": 1735689600, "model": "gpt-4o-mini-2024-07-18",
				"choices": []any{map[string]any{
					"index":         0,
					"message":       map[string]any{"role": "assistant", "content": text, "refusal": nil},
					"logprobs":      nil,
					"finish_reason": stop,
				}},
				"usage": map[string]any{"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160},
			})
		},
		fail: func(w http.ResponseWriter, status int, message string) {
			w.Header().Set("x-request-id", "req_123")
			writeJSON(w, status, map[string]any{"error": map[string]any{
				"message": message, "type": "invalid_request_error", "param": nil, "code": "some_code",
			}})
		},
		filtered: "content_filter",
	}
}

func anthropicWire() wire {
	return wire{
		name:  "anthropic",
		model: "claude-haiku-4-5",
		build: func(t *testing.T, srv *httptest.Server, cfg Config) Analyzer {
			cfg.Provider, cfg.Model, cfg.APIKey = "anthropic", "claude-haiku-4-5", "sk-ant-test"
			cfg.BaseURL = srv.URL
			a, err := New(context.Background(), cfg, srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			return a
		},
		checkRequest: func(t *testing.T, r *http.Request, body []byte) string {
			t.Helper()
			if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
				t.Errorf("request %s %s, want POST /v1/messages", r.Method, r.URL.Path)
			}
			if got := r.Header.Get("X-Api-Key"); got != "sk-ant-test" {
				t.Errorf("X-Api-Key = %q", got)
			}
			if got := r.Header.Get("Anthropic-Version"); got == "" {
				t.Error("no anthropic-version header")
			}
			m := decodeJSON(t, body)
			if m["model"] != "claude-haiku-4-5" {
				t.Errorf("model = %v", m["model"])
			}
			if m["max_tokens"] != float64(maxOutputTokens) {
				t.Errorf("max_tokens = %v", m["max_tokens"])
			}
			if sys, _ := path(m, "system", 0, "text").(string); !strings.Contains(sys, `"summary"`) {
				t.Errorf("system prompt does not ask for the JSON shape: %q", sys)
			}
			if path(m, "messages", 0, "role") != "user" || path(m, "messages", 0, "content", 0, "type") != "text" {
				t.Errorf("messages = %v", m["messages"])
			}
			doc, _ := path(m, "messages", 0, "content", 0, "text").(string)
			return doc
		},
		reply: func(w http.ResponseWriter, text, stop string) {
			if stop == "" {
				stop = "end_turn"
			}
			writeJSON(w, 200, map[string]any{
				"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
				"content":     []any{map[string]any{"type": "text", "text": text}},
				"stop_reason": stop, "stop_sequence": nil,
				"usage": map[string]any{"input_tokens": 120, "output_tokens": 40},
			})
		},
		fail: func(w http.ResponseWriter, status int, message string) {
			typ := map[int]string{400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
				404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}[status]
			w.Header().Set("request-id", "req_011CSHoEeqs5C35K2UUqR7Fy")
			writeJSON(w, status, map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": message}})
		},
		filtered: "refusal",
	}
}

func bedrockWire() wire {
	const model = "anthropic.claude-3-haiku-20240307-v1:0"
	return wire{
		name:  "bedrock",
		model: model,
		build: func(t *testing.T, srv *httptest.Server, cfg Config) Analyzer {
			cfg.Provider, cfg.Model, cfg.Region, cfg.BaseURL = "bedrock", model, "eu-west-1", srv.URL
			if cfg.Timeout == 0 {
				cfg.Timeout = DefaultTimeout
			}
			if cfg.MaxInputChars == 0 {
				cfg.MaxInputChars = DefaultMaxInputChars
			}
			awsCfg := aws.Config{
				Region:      "eu-west-1",
				Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
				HTTPClient:  srv.Client(),
			}
			return newBedrockFromAWS(awsCfg, cfg)
		},
		checkRequest: func(t *testing.T, r *http.Request, body []byte) string {
			t.Helper()
			if want := "/model/" + model + "/converse"; r.Method != http.MethodPost || r.URL.Path != want {
				t.Errorf("request %s %s, want POST %s", r.Method, r.URL.Path, want)
			}
			auth := r.Header.Get("Authorization")
			if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDTEST/") || !strings.Contains(auth, "/eu-west-1/bedrock/aws4_request") {
				t.Errorf("Authorization = %q, want a SigV4 signature for bedrock in eu-west-1", auth)
			}
			if r.Header.Get("X-Amz-Date") == "" {
				t.Error("no X-Amz-Date header")
			}
			m := decodeJSON(t, body)
			if got := path(m, "inferenceConfig", "maxTokens"); got != float64(maxOutputTokens) {
				t.Errorf("inferenceConfig.maxTokens = %v", got)
			}
			if sys, _ := path(m, "system", 0, "text").(string); !strings.Contains(sys, `"summary"`) {
				t.Errorf("system prompt does not ask for the JSON shape: %q", sys)
			}
			if path(m, "messages", 0, "role") != "user" {
				t.Errorf("messages = %v", m["messages"])
			}
			doc, _ := path(m, "messages", 0, "content", 0, "text").(string)
			return doc
		},
		reply: func(w http.ResponseWriter, text, stop string) {
			if stop == "" {
				stop = "end_turn"
			}
			writeJSON(w, 200, map[string]any{
				"output":     map[string]any{"message": map[string]any{"role": "assistant", "content": []any{map[string]any{"text": text}}}},
				"stopReason": stop,
				"usage":      map[string]any{"inputTokens": 120, "outputTokens": 40, "totalTokens": 160},
				"metrics":    map[string]any{"latencyMs": 412},
			})
		},
		fail: func(w http.ResponseWriter, status int, message string) {
			typ := map[int]string{400: "ValidationException", 401: "UnrecognizedClientException", 403: "AccessDeniedException",
				404: "ResourceNotFoundException", 408: "ModelTimeoutException", 413: "ValidationException",
				429: "ThrottlingException", 500: "InternalServerException", 503: "ServiceUnavailableException"}[status]
			if typ == "" {
				typ = "InternalServerException"
			}
			w.Header().Set("X-Amzn-ErrorType", typ+":http://internal.amazon.com/coral/com.amazon.bedrock/")
			w.Header().Set("X-Amzn-RequestId", "0f3a5f8e-2f0e-4c59-9f3e-1d2b3c4d5e6f")
			writeJSON(w, status, map[string]any{"message": message})
		},
		filtered: "content_filtered",
	}
}

// server is an httptest server whose handler a test can swap, recording
// every request.
type server struct {
	*httptest.Server
	mu       sync.Mutex
	handler  http.HandlerFunc
	requests int
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	s := &server{handler: h}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests++
		h := s.handler
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestProviderSuccess(t *testing.T) {
	for _, wr := range wires() {
		t.Run(wr.name, func(t *testing.T) {
			text := "The lease for unit 4B runs to 2027. " + docCanary
			var sentDoc string
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				sentDoc = wr.checkRequest(t, r, body)
				wr.reply(w, "```json\n{\"summary\": \"A lease to 2027.\", \"keywords\": [\"lease\", \"unit 4B\"]}\n```", "")
			})
			a := wr.build(t, srv.Server, Config{})
			if a.Name() != wr.name {
				t.Errorf("Name() = %q", a.Name())
			}
			got, err := a.Analyze(context.Background(), text)
			if err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			if got.Summary != "A lease to 2027." || strings.Join(got.Keywords, "|") != "lease|unit 4B" {
				t.Errorf("got %+v", got)
			}
			if got.Provider != wr.name || got.Model != wr.model {
				t.Errorf("provider/model = %q/%q", got.Provider, got.Model)
			}
			if !strings.Contains(sentDoc, text) {
				t.Errorf("request did not carry the document: %q", sentDoc)
			}
		})
	}
}

func TestProviderTruncatesInput(t *testing.T) {
	for _, wr := range wires() {
		t.Run(wr.name, func(t *testing.T) {
			var sentDoc string
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				sentDoc = wr.checkRequest(t, r, body)
				wr.reply(w, `{"summary": "S.", "keywords": []}`, "")
			})
			a := wr.build(t, srv.Server, Config{MaxInputChars: 10})
			if _, err := a.Analyze(context.Background(), "0123456789ABCDEF"); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(sentDoc, "0123456789") || strings.Contains(sentDoc, "A") {
				t.Errorf("sent %q, want the text cut to 10 characters", sentDoc)
			}
		})
	}
}

func TestProviderErrors(t *testing.T) {
	tests := []struct {
		status    int
		want      error
		wantClass string
	}{
		{400, ErrRejected, "http_400"},
		{401, ErrAuth, "auth"},
		{403, ErrAuth, "auth"},
		{404, ErrAuth, "not_found"},
		{413, ErrRejected, "http_413"},
		{429, ErrUnavailable, "http_429"},
		{500, ErrUnavailable, "http_500"},
		{503, ErrUnavailable, "http_503"},
	}
	for _, wr := range wires() {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/%d", wr.name, tt.status), func(t *testing.T) {
				srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
					if tt.status == 429 {
						w.Header().Set("Retry-After", "7")
					}
					wr.fail(w, tt.status, "details "+errCanary)
				})
				a := wr.build(t, srv.Server, Config{})
				_, err := a.Analyze(context.Background(), "text "+docCanary)
				checkErr(t, err, tt.want, tt.wantClass)
				if srv.requests != 1 {
					t.Errorf("%d requests, want 1: the SDK must not retry, Resilient does", srv.requests)
				}
				var pe *ProviderError
				if tt.status == 429 && errors.As(err, &pe) && pe.RetryAfter != 7*time.Second {
					t.Errorf("RetryAfter = %v, want 7s from the header", pe.RetryAfter)
				}
			})
		}
	}
}

func TestProviderUnusableReplies(t *testing.T) {
	tests := []struct {
		name      string
		reply     string
		filtered  bool
		want      error
		wantClass string
	}{
		{"prose instead of JSON", "I think this document is about " + replyCanary, false, ErrUnavailable, "bad_response"},
		{"empty", "", false, ErrUnavailable, "bad_response"},
		{"content filter", `{"summary": "x", "keywords": []}`, true, ErrRejected, ""},
	}
	for _, wr := range wires() {
		for _, tt := range tests {
			t.Run(wr.name+"/"+tt.name, func(t *testing.T) {
				srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
					stop := ""
					if tt.filtered {
						stop = wr.filtered
					}
					wr.reply(w, tt.reply, stop)
				})
				a := wr.build(t, srv.Server, Config{})
				_, err := a.Analyze(context.Background(), "text "+docCanary)
				checkErr(t, err, tt.want, tt.wantClass)
			})
		}
	}
}

func TestProviderTimeout(t *testing.T) {
	for _, wr := range wires() {
		t.Run(wr.name, func(t *testing.T) {
			release := make(chan struct{})
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-release:
				}
			})
			t.Cleanup(func() { close(release) }) // runs before the server's Close
			a := wr.build(t, srv.Server, Config{Timeout: 50 * time.Millisecond})
			_, err := a.Analyze(context.Background(), "text")
			checkErr(t, err, ErrUnavailable, "timeout")
		})
	}
}

func TestProviderNetworkError(t *testing.T) {
	for _, wr := range wires() {
		t.Run(wr.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
			a := wr.build(t, srv.Server, Config{})
			srv.Close() // connection refused from now on
			_, err := a.Analyze(context.Background(), "text")
			checkErr(t, err, ErrUnavailable, "")
		})
	}
}

func TestProviderCallerCancel(t *testing.T) {
	for _, wr := range wires() {
		t.Run(wr.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			release := make(chan struct{})
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				cancel()
				select {
				case <-r.Context().Done():
				case <-release:
				}
			})
			t.Cleanup(func() { close(release) }) // runs before the server's Close
			a := wr.build(t, srv.Server, Config{})
			_, err := a.Analyze(ctx, "text")
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrRejected) || errors.Is(err, ErrAuth) {
				t.Errorf("err = %v: the caller's cancellation is not the provider's fault", err)
			}
		})
	}
}

func TestProviderNoText(t *testing.T) {
	for _, wr := range wires() {
		t.Run(wr.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
			a := wr.build(t, srv.Server, Config{})
			_, err := a.Analyze(context.Background(), " \n\t")
			if !errors.Is(err, ErrRejected) {
				t.Errorf("err = %v, want ErrRejected", err)
			}
			if srv.requests != 0 {
				t.Errorf("%d requests for blank text, want 0", srv.requests)
			}
		})
	}
}

// checkErr asserts err wraps want, carries wantClass (when set), and quotes no
// document, error body or reply text.
func checkErr(t *testing.T, err, want error, wantClass string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	for _, c := range []string{docCanary, errCanary, replyCanary} {
		if strings.Contains(err.Error(), c) {
			t.Errorf("error message leaks content: %q", err)
		}
	}
	var pe *ProviderError
	if !errors.As(err, &pe) {
		t.Fatalf("err %v is not a *ProviderError", err)
	}
	if wantClass != "" && pe.Class != wantClass {
		t.Errorf("class = %q, want %q", pe.Class, wantClass)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		want    string
		wantErr string
	}{
		{name: "default is local", cfg: Config{}, want: "local"},
		{name: "local", cfg: Config{Provider: "local"}, want: "local"},
		{name: "openai", cfg: Config{Provider: "openai", Model: "m", APIKey: "k", BaseURL: "https://llm.example.com/v1"}, want: "openai"},
		{name: "anthropic", cfg: Config{Provider: "anthropic", Model: "m", APIKey: "k"}, want: "anthropic"},
		{name: "unknown", cfg: Config{Provider: "gemini", Model: "m"}, wantErr: "unknown provider"},
		{name: "openai without model", cfg: Config{Provider: "openai", APIKey: "k"}, wantErr: "needs a model"},
		{name: "openai without key", cfg: Config{Provider: "openai", Model: "m", BaseURL: "https://llm.example.com/v1"}, wantErr: "needs an API key"},
		{name: "openai without endpoint", cfg: Config{Provider: "openai", Model: "m", APIKey: "k"}, wantErr: "base URL"},
		{name: "anthropic without key", cfg: Config{Provider: "anthropic", Model: "m"}, wantErr: "needs an API key"},
		{name: "bedrock without region", cfg: Config{Provider: "bedrock", Model: "m"}, wantErr: "needs a region"},
		{name: "negative timeout", cfg: Config{Provider: "local", Timeout: -1}, wantErr: "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(context.Background(), tt.cfg, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Name() != tt.want {
				t.Errorf("Name() = %q, want %q", a.Name(), tt.want)
			}
		})
	}
}

// TestNewBedrockUsesDefaultCredentialChain builds Bedrock through New, so the
// standard AWS chain (here: environment variables) supplies credentials and
// BaseURL becomes the endpoint.
func TestNewBedrockUsesDefaultCredentialChain(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", dir+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	wr := bedrockWire()
	var auth string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		wr.reply(w, `{"summary": "S.", "keywords": ["k"]}`, "")
	})
	a, err := New(context.Background(), Config{Provider: "bedrock", Model: wr.model, Region: "us-east-1", BaseURL: srv.URL}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Analyze(context.Background(), "text")
	if err != nil {
		t.Fatal(err)
	}
	if got.Summary != "S." {
		t.Errorf("summary = %q", got.Summary)
	}
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDENV/") || !strings.Contains(auth, "/us-east-1/bedrock/") {
		t.Errorf("Authorization = %q", auth)
	}
}

// TestProviderIgnoresSDKEnvironment: the SDKs read OPENAI_BASE_URL,
// ANTHROPIC_BASE_URL and API keys from the environment by default; only the
// operator's Config may decide where document text goes and with whose key.
func TestProviderIgnoresSDKEnvironment(t *testing.T) {
	t.Setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1/")
	t.Setenv("OPENAI_API_KEY", "sk-from-env")
	t.Setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:1")
	t.Setenv("ANTHROPIC_API_KEY", "sk-ant-from-env")
	for _, wr := range []wire{openAIWire(), anthropicWire()} {
		t.Run(wr.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				wr.checkRequest(t, r, body) // asserts the configured key
				wr.reply(w, `{"summary": "S.", "keywords": []}`, "")
			})
			if _, err := wr.build(t, srv.Server, Config{}).Analyze(context.Background(), "text"); err != nil {
				t.Fatal(err)
			}
			if srv.requests != 1 {
				t.Errorf("%d requests reached the configured server, want 1", srv.requests)
			}
		})
	}
}

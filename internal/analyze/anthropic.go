package analyze

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"
)

// anthropicAnalyzer uses Anthropic's Messages API.
type anthropicAnalyzer struct {
	messages anthropic.MessageService
	model    string
	timeout  time.Duration
	maxInput int
}

func newAnthropic(cfg Config, httpClient *http.Client) *anthropicAnalyzer {
	// WithoutEnvironmentDefaults: the SDK would otherwise read ANTHROPIC_*
	// variables and profile files, letting the environment change where
	// document text goes or whose credentials are used.
	opts := []option.RequestOption{
		option.WithoutEnvironmentDefaults(),
		option.WithAPIKey(cfg.APIKey),
		option.WithMaxRetries(0), // Resilient owns retries and backoff
	}
	if cfg.BaseURL != "" {
		opts = append(opts, option.WithBaseURL(cfg.BaseURL))
	}
	if httpClient != nil {
		opts = append(opts, option.WithHTTPClient(httpClient))
	}
	client := anthropic.NewClient(opts...)
	return &anthropicAnalyzer{
		messages: client.Messages,
		model:    cfg.Model,
		timeout:  cfg.Timeout,
		maxInput: cfg.MaxInputChars,
	}
}

func (a *anthropicAnalyzer) Name() string { return "anthropic" }

func (a *anthropicAnalyzer) Analyze(ctx context.Context, text string) (Analysis, error) {
	const op = "messages"
	if isBlank(text) {
		return Analysis{}, errNoText
	}
	reqCtx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	msg, err := a.messages.New(reqCtx, anthropic.MessageNewParams{
		Model:     a.model,
		MaxTokens: maxOutputTokens,
		System:    []anthropic.TextBlockParam{{Text: systemPrompt}},
		Messages: []anthropic.MessageParam{
			anthropic.NewUserMessage(anthropic.NewTextBlock(userPrompt(truncateRunes(text, a.maxInput)))),
		},
	})
	if err != nil {
		var apiErr *anthropic.Error
		if errors.As(err, &apiErr) && apiErr.Response != nil {
			return Analysis{}, classifyErr(ctx, a.Name(), op, err, apiErr.StatusCode, apiErr.Response.Header)
		}
		return Analysis{}, classifyErr(ctx, a.Name(), op, err, 0, nil)
	}
	if msg.StopReason == anthropic.StopReasonRefusal {
		return Analysis{}, replyError(a.Name(), op, "refusal", ErrRejected)
	}
	var reply strings.Builder
	for _, block := range msg.Content {
		if block.Type == "text" {
			reply.WriteString(block.Text)
		}
	}
	return finish(a.Name(), a.model, op, reply.String())
}

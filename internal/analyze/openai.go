package analyze

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
	"github.com/openai/openai-go/shared"
)

// openAIAnalyzer talks to any OpenAI-compatible chat completions endpoint:
// OpenAI, Azure OpenAI's /openai/v1, vLLM.
type openAIAnalyzer struct {
	chat     openai.ChatCompletionService
	model    string
	timeout  time.Duration
	maxInput int
}

func newOpenAI(cfg Config, httpClient *http.Client) *openAIAnalyzer {
	base := cfg.BaseURL // required: New refuses an empty one
	// The service is built from explicit options only (not openai.NewClient)
	// so OPENAI_* variables in the environment cannot redirect document text
	// to an endpoint the operator did not configure.
	opts := []option.RequestOption{
		option.WithBaseURL(base),
		option.WithAPIKey(cfg.APIKey),
		option.WithMaxRetries(0), // Resilient owns retries and backoff
	}
	if httpClient != nil {
		opts = append(opts, option.WithHTTPClient(httpClient))
	}
	return &openAIAnalyzer{
		chat:     openai.NewChatCompletionService(opts...),
		model:    cfg.Model,
		timeout:  cfg.Timeout,
		maxInput: cfg.MaxInputChars,
	}
}

func (a *openAIAnalyzer) Name() string { return "openai" }

func (a *openAIAnalyzer) Analyze(ctx context.Context, text string) (Analysis, error) {
	const op = "chat completion"
	if isBlank(text) {
		return Analysis{}, errNoText
	}
	reqCtx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	resp, err := a.chat.New(reqCtx, openai.ChatCompletionNewParams{
		Model: a.model,
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage(systemPrompt),
			openai.UserMessage(userPrompt(truncateRunes(text, a.maxInput))),
		},
		ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{
			OfJSONObject: &shared.ResponseFormatJSONObjectParam{},
		},
		MaxCompletionTokens: openai.Int(maxOutputTokens),
	})
	if err != nil {
		var apiErr *openai.Error
		if errors.As(err, &apiErr) && apiErr.Response != nil {
			return Analysis{}, classifyErr(ctx, a.Name(), op, err, apiErr.StatusCode, apiErr.Response.Header)
		}
		return Analysis{}, classifyErr(ctx, a.Name(), op, err, 0, nil)
	}
	if len(resp.Choices) == 0 {
		return Analysis{}, replyError(a.Name(), op, "bad_response", ErrUnavailable)
	}
	choice := resp.Choices[0]
	if choice.FinishReason == "content_filter" {
		return Analysis{}, replyError(a.Name(), op, "content_filter", ErrRejected)
	}
	if choice.Message.Refusal != "" {
		return Analysis{}, replyError(a.Name(), op, "refusal", ErrRejected)
	}
	return finish(a.Name(), a.model, op, choice.Message.Content)
}

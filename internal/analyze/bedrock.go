package analyze

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// bedrockAnalyzer uses Amazon Bedrock's Converse API in the customer's own
// account, authenticated by the task's IAM role: no API key exists to leak.
type bedrockAnalyzer struct {
	client   *bedrockruntime.Client
	model    string
	timeout  time.Duration
	maxInput int
}

// newBedrock loads AWS configuration the standard way (task role, instance
// profile, environment) for cfg.Region.
func newBedrock(ctx context.Context, cfg Config, httpClient *http.Client) (*bedrockAnalyzer, error) {
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(cfg.Region))
	if err != nil {
		return nil, fmt.Errorf("analyze: bedrock: load AWS config: %w", err)
	}
	// The caller's client is used for Bedrock calls only, not set through
	// LoadDefaultConfig: that rejects a plain *http.Client when AWS_CA_BUNDLE
	// is set, and credential lookups should keep the SDK's own client.
	if httpClient != nil {
		awsCfg.HTTPClient = httpClient
	}
	return newBedrockFromAWS(awsCfg, cfg), nil
}

func newBedrockFromAWS(awsCfg aws.Config, cfg Config) *bedrockAnalyzer {
	client := bedrockruntime.NewFromConfig(awsCfg, func(o *bedrockruntime.Options) {
		if cfg.BaseURL != "" {
			o.BaseEndpoint = aws.String(cfg.BaseURL)
		}
		o.RetryMaxAttempts = 1 // Resilient owns retries and backoff
	})
	return &bedrockAnalyzer{client: client, model: cfg.Model, timeout: cfg.Timeout, maxInput: cfg.MaxInputChars}
}

func (a *bedrockAnalyzer) Name() string { return "bedrock" }

func (a *bedrockAnalyzer) Analyze(ctx context.Context, text string) (Analysis, error) {
	const op = "converse"
	if isBlank(text) {
		return Analysis{}, errNoText
	}
	reqCtx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	out, err := a.client.Converse(reqCtx, &bedrockruntime.ConverseInput{
		ModelId: aws.String(a.model),
		System:  []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: systemPrompt}},
		Messages: []types.Message{{
			Role: types.ConversationRoleUser,
			Content: []types.ContentBlock{
				&types.ContentBlockMemberText{Value: userPrompt(truncateRunes(text, a.maxInput))},
			},
		}},
		InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(maxOutputTokens)},
	})
	if err != nil {
		return Analysis{}, classifyBedrockErr(ctx, op, err)
	}
	switch out.StopReason {
	case types.StopReasonContentFiltered, types.StopReasonGuardrailIntervened:
		return Analysis{}, replyError(a.Name(), op, "content_filter", ErrRejected)
	}
	msg, ok := out.Output.(*types.ConverseOutputMemberMessage)
	if !ok {
		return Analysis{}, replyError(a.Name(), op, "bad_response", ErrUnavailable)
	}
	var reply strings.Builder
	for _, block := range msg.Value.Content {
		if t, ok := block.(*types.ContentBlockMemberText); ok {
			reply.WriteString(t.Value)
		}
	}
	return finish(a.Name(), a.model, op, reply.String())
}

// classifyBedrockErr maps Bedrock's errors. Mostly by HTTP status, but
// ServiceQuotaExceededException arrives as a 400 and is a quota, not a
// problem with the input.
func classifyBedrockErr(ctx context.Context, op string, err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "ServiceQuotaExceededException" && ctx.Err() == nil {
		return &ProviderError{Provider: "bedrock", Op: op, Class: "quota", Kind: ErrUnavailable}
	}
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) && respErr.Response != nil && respErr.Response.Response != nil {
		return classifyErr(ctx, "bedrock", op, err, respErr.HTTPStatusCode(), respErr.Response.Header)
	}
	return classifyErr(ctx, "bedrock", op, err, 0, nil)
}

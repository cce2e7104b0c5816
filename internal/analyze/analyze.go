// Package analyze summarises extracted text and ranks its keywords, with the
// AI provider the customer chose: an offline local analyzer by default, or an
// OpenAI-compatible endpoint, Anthropic, or Amazon Bedrock in the customer's
// own account.
package analyze

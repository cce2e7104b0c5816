package config_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/config"
)

// minimal is the smallest valid environment: the embedded defaults.
func minimal() map[string]string {
	return map[string]string{
		"DOCSVC_DATABASE_URL": "sqlite:///var/lib/docsvc/docsvc.db",
		"DOCSVC_BLOB_URL":     "file:///var/lib/docsvc/blobs",
		"DOCSVC_QUEUE_URL":    "db://jobs",
	}
}

// production is a full AWS-shaped environment.
func production() map[string]string {
	return map[string]string{
		"DOCSVC_ADDR":               ":8080",
		"DOCSVC_PUBLIC_URL":         "https://docs.example.com/",
		"DOCSVC_CORS_ORIGINS":       "https://app.example.com, http://localhost:3000",
		"DOCSVC_OIDC_ISSUER":        "https://login.example.com/tenant/v2.0",
		"DOCSVC_OIDC_AUDIENCE":      "docsvc",
		"DOCSVC_OIDC_CALLBACK_URL":  "https://docs.example.com/auth/callback",
		"DOCSVC_DATABASE_URL":       "postgres://app:pw-prod-1@db.internal.example.com:5432/docs?sslmode=require",
		"DOCSVC_BLOB_URL":           "s3://acme-docs/tether",
		"DOCSVC_S3_KMS_KEY_ID":      "alias/tether-docs",
		"DOCSVC_QUEUE_URL":          "https://sqs.example.com/123456789012/tether-jobs",
		"DOCSVC_DLQ_URL":            "https://sqs.example.com/123456789012/tether-jobs-dlq",
		"DOCSVC_QUEUE_MAX_RECEIVES": "3",
		"DOCSVC_QUEUE_VISIBILITY":   "2m",
		"AWS_REGION":                "eu-west-1",
		"DOCSVC_AI_PROVIDER":        "openai",
		"DOCSVC_AI_MODEL":           "gpt-4o-mini",
		"DOCSVC_AI_BASE_URL":        "https://llm.example.com/v1",
		"DOCSVC_AI_API_KEY":         "sk-prod-key-1",
		"DOCSVC_AI_TIMEOUT":         "30",
		"DOCSVC_EMAIL_FROM":         "Docs <docs@example.com>",
		"DOCSVC_MAX_UPLOAD_BYTES":   "10MB",
		"DOCSVC_WORKER_CONCURRENCY": "8",
		"DOCSVC_LOG_LEVEL":          "DEBUG",
	}
}

func getenv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func with(base map[string]string, kv ...string) map[string]string {
	env := map[string]string{}
	for k, v := range base {
		env[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(env, kv[i])
		} else {
			env[kv[i]] = kv[i+1]
		}
	}
	return env
}

func TestLoadDefaults(t *testing.T) {
	c, err := config.Load(context.Background(), getenv(minimal()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.PublicURL != "http://127.0.0.1:8080" {
		t.Errorf("Addr/PublicURL = %q %q", c.Addr, c.PublicURL)
	}
	if c.MaxReceives != 5 || c.Visibility != 60*time.Second || c.AI.Provider != "local" || c.AI.Timeout != 60*time.Second {
		t.Errorf("queue/AI defaults = %d %s %q %s", c.MaxReceives, c.Visibility, c.AI.Provider, c.AI.Timeout)
	}
	if c.MaxUploadBytes != 32<<20 || c.UploadMinRate != 8<<10 || c.WorkerConcurrency != 2 || c.LogLevel != slog.LevelInfo {
		t.Errorf("misc defaults = %d %d %d %v", c.MaxUploadBytes, c.UploadMinRate, c.WorkerConcurrency, c.LogLevel)
	}
	// The defaults fit the worker's 2GiB task with both jobs at their cap.
	if want := (config.ExtractLimits{MaxMemory: 768 << 20, Timeout: 2 * time.Minute, MaxPages: 5000, MaxText: 32 << 20}); c.Extract != want || c.WorkerMemory != 2<<30 {
		t.Errorf("extraction defaults = %+v, worker memory %d; want %+v, 2GiB", c.Extract, c.WorkerMemory, want)
	}
	if c.UsesSQS() || c.UsesS3() || len(c.CORSOrigins) != 0 {
		t.Errorf("embedded config reports AWS backends or CORS origins")
	}
}

func TestLoadProduction(t *testing.T) {
	c, err := config.Load(context.Background(), getenv(production()), nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"PublicURL", c.PublicURL, "https://docs.example.com"},
		{"CORSOrigins", strings.Join(c.CORSOrigins, " "), "https://app.example.com http://localhost:3000"},
		{"OIDC.Audience", c.OIDC.Audience, "docsvc"},
		{"Visibility", c.Visibility, 2 * time.Minute},
		{"MaxReceives", c.MaxReceives, 3},
		{"AWSRegion", c.AWSRegion, "eu-west-1"},
		{"AI.Timeout", c.AI.Timeout, 30 * time.Second},
		{"AI.APIKey", c.AI.APIKey, "sk-prod-key-1"},
		{"MaxUploadBytes", c.MaxUploadBytes, int64(10_000_000)},
		{"WorkerConcurrency", c.WorkerConcurrency, 8},
		// (2GiB - 512MiB reserve) / 8 jobs.
		{"Extract.MaxMemory", c.Extract.MaxMemory, int64(192 << 20)},
		{"LogLevel", c.LogLevel, slog.LevelDebug},
		{"UsesSQS", c.UsesSQS(), true},
		{"UsesS3", c.UsesS3(), true},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestLoadGoodVariants(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(*config.Config) bool
	}{
		{"DOCSVC_AWS_REGION wins over AWS_REGION", with(production(), "DOCSVC_AWS_REGION", "us-west-2"),
			func(c *config.Config) bool { return c.AWSRegion == "us-west-2" }},
		{"bedrock takes the AWS region", with(minimal(), "DOCSVC_AI_PROVIDER", "Bedrock", "DOCSVC_AI_MODEL", "anthropic.claude-3-haiku", "AWS_REGION", "us-east-1"),
			func(c *config.Config) bool { return c.AI.Provider == "bedrock" && c.AI.Region == "us-east-1" }},
		{"openai on loopback needs no key", with(minimal(), "DOCSVC_AI_PROVIDER", "openai", "DOCSVC_AI_MODEL", "m", "DOCSVC_AI_BASE_URL", "http://127.0.0.1:8000/v1"),
			func(c *config.Config) bool { return c.AI.APIKey == "" }},
		{"plain byte count", with(minimal(), "DOCSVC_MAX_UPLOAD_BYTES", "1048576"),
			func(c *config.Config) bool { return c.MaxUploadBytes == 1<<20 }},
		{"MiB", with(minimal(), "DOCSVC_MAX_UPLOAD_BYTES", "32MiB"),
			func(c *config.Config) bool { return c.MaxUploadBytes == 32<<20 }},
		{"upload rate", with(minimal(), "DOCSVC_UPLOAD_MIN_RATE", "64KB"),
			func(c *config.Config) bool { return c.UploadMinRate == 64000 }},
		{"SQS with endpoint", with(minimal(), "DOCSVC_QUEUE_URL", "http://127.0.0.1:4566/000000000000/jobs", "DOCSVC_DLQ_URL", "http://127.0.0.1:4566/000000000000/jobs-dlq", "DOCSVC_SQS_ENDPOINT", "http://127.0.0.1:4566", "AWS_REGION", "us-east-1"),
			func(c *config.Config) bool { return c.UsesSQS() && c.SQSEndpoint == "http://127.0.0.1:4566" }},
		{"S3 path style", with(minimal(), "DOCSVC_BLOB_URL", "s3://docs-bucket", "DOCSVC_S3_PATH_STYLE", "true", "DOCSVC_S3_ENDPOINT", "http://127.0.0.1:4566", "AWS_REGION", "us-east-1"),
			func(c *config.Config) bool { return c.S3PathStyle }},
		{"postgres without password", with(minimal(), "DOCSVC_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
			func(c *config.Config) bool { return strings.HasPrefix(c.DatabaseURL, "postgres://") }},
		{"loopback http issuer", with(minimal(), "DOCSVC_OIDC_ISSUER", "http://127.0.0.1:9000", "DOCSVC_OIDC_AUDIENCE", "a"),
			func(c *config.Config) bool { return c.OIDC.Issuer == "http://127.0.0.1:9000" }},
		{"callback from the public URL", with(minimal(), "DOCSVC_OIDC_ISSUER", "https://login.example.com", "DOCSVC_OIDC_AUDIENCE", "a", "DOCSVC_PUBLIC_URL", "https://docs.example.com/"),
			func(c *config.Config) bool { return c.OIDC.CallbackURL == "https://docs.example.com/auth/callback" }},
		{"client ID and secret", with(minimal(), "DOCSVC_OIDC_ISSUER", "https://login.example.com", "DOCSVC_OIDC_AUDIENCE", "api://docs", "DOCSVC_OIDC_CLIENT_ID", "web", "DOCSVC_OIDC_CLIENT_SECRET", "s3cret-value"),
			func(c *config.Config) bool {
				return c.OIDC.ClientID == "web" && c.OIDC.ClientSecret == "s3cret-value" && !strings.Contains(c.String(), "s3cret-value")
			}},
		{"internal listener", with(minimal(), "DOCSVC_INTERNAL_ADDR", "127.0.0.1:9090"),
			func(c *config.Config) bool {
				return c.InternalAddr == "127.0.0.1:9090" && strings.Contains(c.String(), `DOCSVC_INTERNAL_ADDR="127.0.0.1:9090"`)
			}},
		{"addr on a named host", with(minimal(), "DOCSVC_ADDR", "localhost:9090"),
			func(c *config.Config) bool { return c.PublicURL == "http://localhost:9090" }},
		{"shared groups", with(minimal(), "DOCSVC_OIDC_ISSUER", "https://login.example.com", "DOCSVC_OIDC_AUDIENCE", "a",
			"DOCSVC_OIDC_GROUPS_CLAIM", "cognito:groups", "DOCSVC_OIDC_SHARED_GROUPS", " finance, legal team ,finance"),
			func(c *config.Config) bool {
				return c.OIDC.GroupsClaim == "cognito:groups" && slices.Equal(c.OIDC.SharedGroups, []string{"finance", "legal team"})
			}},
		{"no groups by default", minimal(),
			func(c *config.Config) bool { return c.OIDC.GroupsClaim == "" && c.OIDC.SharedGroups == nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(context.Background(), getenv(tt.env), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Fatalf("unexpected config: %+v", *c)
			}
		})
	}
}

func TestLoadBadValues(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string // the variable a problem line must start with
		wantIn  string // and a word the line must contain
	}{
		{"no blob URL", with(minimal(), "DOCSVC_BLOB_URL", ""), "DOCSVC_BLOB_URL", "missing; set file:///path/to/dir or s3://bucket/prefix"},
		{"no database", with(minimal(), "DOCSVC_DATABASE_URL", ""), "DOCSVC_DATABASE_URL", "missing"},
		{"no queue", with(minimal(), "DOCSVC_QUEUE_URL", ""), "DOCSVC_QUEUE_URL", "missing"},
		{"openai without its endpoint", with(production(), "DOCSVC_AI_BASE_URL", ""), "DOCSVC_AI_BASE_URL", "required with provider openai"},
		{"license without its key", with(minimal(), "DOCSVC_LICENSE", `{"payload":{}}`), "DOCSVC_LICENSE_PUBLIC_KEY", "together"},
		{"internal addr without port", with(minimal(), "DOCSVC_INTERNAL_ADDR", "localhost"), "DOCSVC_INTERNAL_ADDR", "host:port"},
		{"bad addr", with(minimal(), "DOCSVC_ADDR", "8080"), "DOCSVC_ADDR", "host:port"},
		{"addr on all interfaces without public URL", with(minimal(), "DOCSVC_ADDR", ":8080"), "DOCSVC_PUBLIC_URL", "all interfaces"},
		{"relative public URL", with(minimal(), "DOCSVC_PUBLIC_URL", "docs.example.com"), "DOCSVC_PUBLIC_URL", "absolute"},
		{"ftp public URL", with(minimal(), "DOCSVC_PUBLIC_URL", "ftp://docs.example.com"), "DOCSVC_PUBLIC_URL", "absolute"},
		{"URL with credentials", with(minimal(), "DOCSVC_PUBLIC_URL", "https://u:pw@docs.example.com"), "DOCSVC_PUBLIC_URL", "credentials"},
		{"password never echoed", with(minimal(), "DOCSVC_S3_ENDPOINT", "ftp://u:hunter2@s3.example.com"), "DOCSVC_S3_ENDPOINT", `"ftp://u@s3.example.com" (password removed)`},
		{"wildcard CORS", with(minimal(), "DOCSVC_CORS_ORIGINS", "*"), "DOCSVC_CORS_ORIGINS", "wildcard"},
		{"CORS with path", with(minimal(), "DOCSVC_CORS_ORIGINS", "https://a.example.com/"), "DOCSVC_CORS_ORIGINS", "not an origin"},
		{"issuer without audience", with(minimal(), "DOCSVC_OIDC_ISSUER", "https://login.example.com"), "DOCSVC_OIDC_AUDIENCE", "missing"},
		{"audience without issuer", with(minimal(), "DOCSVC_OIDC_AUDIENCE", "x"), "DOCSVC_OIDC_ISSUER", "missing"},
		{"plain http issuer", with(minimal(), "DOCSVC_OIDC_ISSUER", "http://login.example.com", "DOCSVC_OIDC_AUDIENCE", "x"), "DOCSVC_OIDC_ISSUER", "https"},
		{"callback on another path", with(minimal(), "DOCSVC_OIDC_ISSUER", "https://login.example.com", "DOCSVC_OIDC_AUDIENCE", "x", "DOCSVC_OIDC_CALLBACK_URL", "https://docs.example.com/cb"), "DOCSVC_OIDC_CALLBACK_URL", "/auth/callback"},
		{"client ID without issuer", with(minimal(), "DOCSVC_OIDC_CLIENT_ID", "web"), "DOCSVC_OIDC_CLIENT_ID", "without"},
		{"client secret without issuer", with(minimal(), "DOCSVC_OIDC_CLIENT_SECRET", "s"), "DOCSVC_OIDC_CLIENT_SECRET", "without"},
		{"client ID with a space", with(minimal(), "DOCSVC_OIDC_ISSUER", "https://login.example.com", "DOCSVC_OIDC_AUDIENCE", "x", "DOCSVC_OIDC_CLIENT_ID", "a b"), "DOCSVC_OIDC_CLIENT_ID", "white space"},
		{"callback without issuer", with(minimal(), "DOCSVC_OIDC_CALLBACK_URL", "https://docs.example.com/cb"), "DOCSVC_OIDC_CALLBACK_URL", "without"},
		{"groups without issuer", with(minimal(), "DOCSVC_OIDC_GROUPS_CLAIM", "groups", "DOCSVC_OIDC_SHARED_GROUPS", "finance"), "DOCSVC_OIDC_GROUPS_CLAIM", "without DOCSVC_OIDC_ISSUER"},
		{"groups claim without groups", with(minimal(), "DOCSVC_OIDC_ISSUER", "https://login.example.com", "DOCSVC_OIDC_AUDIENCE", "x", "DOCSVC_OIDC_GROUPS_CLAIM", "groups"), "DOCSVC_OIDC_SHARED_GROUPS", "finance,legal"},
		{"groups without a claim", with(minimal(), "DOCSVC_OIDC_ISSUER", "https://login.example.com", "DOCSVC_OIDC_AUDIENCE", "x", "DOCSVC_OIDC_SHARED_GROUPS", "finance"), "DOCSVC_OIDC_GROUPS_CLAIM", "cognito:groups"},
		{"claim name with a space", with(minimal(), "DOCSVC_OIDC_ISSUER", "https://login.example.com", "DOCSVC_OIDC_AUDIENCE", "x", "DOCSVC_OIDC_GROUPS_CLAIM", "my groups", "DOCSVC_OIDC_SHARED_GROUPS", "finance"), "DOCSVC_OIDC_GROUPS_CLAIM", "not a claim name"},
		{"empty group", with(minimal(), "DOCSVC_OIDC_ISSUER", "https://login.example.com", "DOCSVC_OIDC_AUDIENCE", "x", "DOCSVC_OIDC_GROUPS_CLAIM", "groups", "DOCSVC_OIDC_SHARED_GROUPS", "finance,,legal"), "DOCSVC_OIDC_SHARED_GROUPS", "1-256 bytes"},
		{"mysql", with(minimal(), "DOCSVC_DATABASE_URL", "mysql://db/x"), "DOCSVC_DATABASE_URL", "not supported"},
		{"empty sqlite path", with(minimal(), "DOCSVC_DATABASE_URL", "sqlite://"), "DOCSVC_DATABASE_URL", "no file path"},
		{"relative blob dir", with(minimal(), "DOCSVC_BLOB_URL", "file://data/blobs"), "DOCSVC_BLOB_URL", "absolute"},
		{"bad bucket", with(minimal(), "DOCSVC_BLOB_URL", "s3://Bad_Bucket/x", "AWS_REGION", "us-east-1"), "DOCSVC_BLOB_URL", "bucket"},
		{"gs blob", with(minimal(), "DOCSVC_BLOB_URL", "gs://b/x"), "DOCSVC_BLOB_URL", "not supported"},
		{"S3 option with file blob", with(minimal(), "DOCSVC_S3_KMS_KEY_ID", "k"), "DOCSVC_S3_KMS_KEY_ID", "not s3://"},
		{"bad path style", with(minimal(), "DOCSVC_BLOB_URL", "s3://docs-bucket", "DOCSVC_S3_PATH_STYLE", "maybe", "AWS_REGION", "us-east-1"), "DOCSVC_S3_PATH_STYLE", "boolean"},
		{"S3 without region", with(minimal(), "DOCSVC_BLOB_URL", "s3://docs-bucket"), "DOCSVC_AWS_REGION", "missing"},
		{"bad region", with(minimal(), "AWS_REGION", "Europe"), "AWS_REGION", "region"},
		{"SQS without DLQ", with(production(), "DOCSVC_DLQ_URL", ""), "DOCSVC_DLQ_URL", "missing"},
		{"DLQ is the queue", with(production(), "DOCSVC_DLQ_URL", production()["DOCSVC_QUEUE_URL"]), "DOCSVC_DLQ_URL", "same"},
		{"queue URL without account", with(production(), "DOCSVC_QUEUE_URL", "https://sqs.example.com/jobs"), "DOCSVC_QUEUE_URL", "SQS queue URL"},
		{"DLQ with db queue", with(minimal(), "DOCSVC_DLQ_URL", "https://sqs.example.com/1/x"), "DOCSVC_DLQ_URL", "embedded"},
		{"bad db queue name", with(minimal(), "DOCSVC_QUEUE_URL", "db://"), "DOCSVC_QUEUE_URL", "queue name"},
		{"max receives zero", with(minimal(), "DOCSVC_QUEUE_MAX_RECEIVES", "0"), "DOCSVC_QUEUE_MAX_RECEIVES", "1 to 1000"},
		{"visibility words", with(minimal(), "DOCSVC_QUEUE_VISIBILITY", "a minute"), "DOCSVC_QUEUE_VISIBILITY", "duration"},
		{"visibility too long", with(minimal(), "DOCSVC_QUEUE_VISIBILITY", "13h"), "DOCSVC_QUEUE_VISIBILITY", "outside"},
		{"unknown provider", with(minimal(), "DOCSVC_AI_PROVIDER", "gemini"), "DOCSVC_AI_PROVIDER", "not a provider"},
		{"openai without model", with(minimal(), "DOCSVC_AI_PROVIDER", "openai", "DOCSVC_AI_API_KEY", "k"), "DOCSVC_AI_MODEL", "missing"},
		{"anthropic without key", with(minimal(), "DOCSVC_AI_PROVIDER", "anthropic", "DOCSVC_AI_MODEL", "m"), "DOCSVC_AI_API_KEY", "missing"},
		{"openai non-loopback http", with(minimal(), "DOCSVC_AI_PROVIDER", "openai", "DOCSVC_AI_MODEL", "m", "DOCSVC_AI_BASE_URL", "http://llm.example.com/v1"), "DOCSVC_AI_BASE_URL", "plain http"},
		{"bedrock with key", with(minimal(), "DOCSVC_AI_PROVIDER", "bedrock", "DOCSVC_AI_MODEL", "m", "AWS_REGION", "us-east-1", "DOCSVC_AI_API_KEY", "k"), "DOCSVC_AI_API_KEY", "IAM role"},
		{"bedrock without region", with(minimal(), "DOCSVC_AI_PROVIDER", "bedrock", "DOCSVC_AI_MODEL", "m"), "DOCSVC_AI_REGION", "missing"},
		{"model with local", with(minimal(), "DOCSVC_AI_MODEL", "m"), "DOCSVC_AI_MODEL", "local"},
		{"AI timeout zero", with(minimal(), "DOCSVC_AI_TIMEOUT", "0s"), "DOCSVC_AI_TIMEOUT", "outside"},
		{"bad email", with(minimal(), "DOCSVC_EMAIL_FROM", "docs at example"), "DOCSVC_EMAIL_FROM", "email"},
		{"size unit", with(minimal(), "DOCSVC_MAX_UPLOAD_BYTES", "32 parsecs"), "DOCSVC_MAX_UPLOAD_BYTES", "size"},
		{"size too big", with(minimal(), "DOCSVC_MAX_UPLOAD_BYTES", "6GiB"), "DOCSVC_MAX_UPLOAD_BYTES", "5GiB"},
		{"upload rate zero", with(minimal(), "DOCSVC_UPLOAD_MIN_RATE", "0"), "DOCSVC_UPLOAD_MIN_RATE", "1 byte to 1GiB per second"},
		{"upload rate unit", with(minimal(), "DOCSVC_UPLOAD_MIN_RATE", "8 KiB/s"), "DOCSVC_UPLOAD_MIN_RATE", "rate"},
		{"concurrency", with(minimal(), "DOCSVC_WORKER_CONCURRENCY", "-1"), "DOCSVC_WORKER_CONCURRENCY", "whole number"},
		{"log level", with(minimal(), "DOCSVC_LOG_LEVEL", "loud"), "DOCSVC_LOG_LEVEL", "log level"},
		{"extract memory unit", with(minimal(), "DOCSVC_EXTRACT_MAX_MEMORY", "lots"), "DOCSVC_EXTRACT_MAX_MEMORY", "\"lots\" is not a size from 16MiB to 4GiB"},
		{"extract memory over wasm", with(minimal(), "DOCSVC_EXTRACT_MAX_MEMORY", "5GiB", "DOCSVC_WORKER_MEMORY", "64GiB"), "DOCSVC_EXTRACT_MAX_MEMORY", "4GiB"},
		{"extract memory over the task", with(minimal(), "DOCSVC_EXTRACT_MAX_MEMORY", "1GiB"), "DOCSVC_EXTRACT_MAX_MEMORY",
			"2 jobs at once (DOCSVC_WORKER_CONCURRENCY) × 1GiB each, plus 512MiB for the worker itself, is 2560MiB, more than the worker's 2GiB (DOCSVC_WORKER_MEMORY); set DOCSVC_EXTRACT_MAX_MEMORY to at most 768MiB"},
		{"concurrency over the task", with(minimal(), "DOCSVC_WORKER_CONCURRENCY", "64"), "DOCSVC_EXTRACT_MAX_MEMORY", "lower DOCSVC_WORKER_CONCURRENCY"},
		{"worker memory small", with(minimal(), "DOCSVC_WORKER_MEMORY", "512MiB"), "DOCSVC_WORKER_MEMORY", "from 1GiB"},
		{"extract timeout", with(minimal(), "DOCSVC_EXTRACT_TIMEOUT", "0s"), "DOCSVC_EXTRACT_TIMEOUT", "outside"},
		{"extract pages", with(minimal(), "DOCSVC_EXTRACT_MAX_PAGES", "0"), "DOCSVC_EXTRACT_MAX_PAGES", "whole number"},
		{"extract cache relative", with(minimal(), "DOCSVC_EXTRACT_CACHE_DIR", "cache"), "DOCSVC_EXTRACT_CACHE_DIR", "absolute path"},
		{"extract text", with(minimal(), "DOCSVC_EXTRACT_MAX_TEXT", "2GiB"), "DOCSVC_EXTRACT_MAX_TEXT", "1KiB to 1GiB"},
		{"internal addr", with(minimal(), "DOCSVC_INTERNAL_ADDR", "9090"), "DOCSVC_INTERNAL_ADDR", "host:port"},
		{"secret both ways", with(minimal(), "DOCSVC_DATABASE_URL_FILE", "/nonexistent"), "DOCSVC_DATABASE_URL", "only one"},
		{"secret file missing", with(minimal(), "DOCSVC_DATABASE_URL", "", "DOCSVC_DATABASE_URL_FILE", "/nonexistent/db-url"), "DOCSVC_DATABASE_URL_FILE", "/nonexistent/db-url"},
		{"ARN without AWS", with(minimal(), "DOCSVC_DATABASE_URL", "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"), "DOCSVC_DATABASE_URL", "no AWS region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(context.Background(), getenv(tt.env), nil)
			var cerr *config.Error
			if !errors.As(err, &cerr) {
				t.Fatalf("err = %v, want *config.Error", err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.HasPrefix(line, tt.wantVar+": ") && strings.Contains(line, tt.wantIn) {
					return
				}
			}
			t.Fatalf("no line for %s containing %q in:\n%s", tt.wantVar, tt.wantIn, err)
		})
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	_, err := config.Load(context.Background(), getenv(map[string]string{"DOCSVC_WORKER_CONCURRENCY": "many"}), nil)
	if err == nil {
		t.Fatal("empty environment loaded")
	}
	lines := strings.Split(err.Error(), "\n")
	var vars []string
	for _, l := range lines {
		v, _, _ := strings.Cut(l, ":")
		vars = append(vars, v)
		if !strings.Contains(l, "; ") {
			t.Errorf("line %q has no fix", l)
		}
	}
	for _, want := range []string{"DOCSVC_DATABASE_URL", "DOCSVC_BLOB_URL", "DOCSVC_QUEUE_URL", "DOCSVC_WORKER_CONCURRENCY"} {
		if !slices.Contains(vars, want) {
			t.Errorf("no line for %s in:\n%s", want, err)
		}
	}
}

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dbFile := write("db", "postgres://app:file-pw-9@db.example.com/docs\n")
	keyFile := write("key", "sk-file-key-9\r\n")
	empty := write("empty", "\n")

	env := with(minimal(), "DOCSVC_DATABASE_URL", "", "DOCSVC_DATABASE_URL_FILE", dbFile,
		"DOCSVC_AI_PROVIDER", "anthropic", "DOCSVC_AI_MODEL", "claude", "DOCSVC_AI_API_KEY_FILE", keyFile)
	c, err := config.Load(context.Background(), getenv(env), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "postgres://app:file-pw-9@db.example.com/docs" || c.AI.APIKey != "sk-file-key-9" {
		t.Fatalf("file secrets = %q, %q (trailing newline not trimmed?)", c.DatabaseURL, c.AI.APIKey)
	}
	if src := source(c, "DOCSVC_DATABASE_URL"); src != config.SourceFile {
		t.Fatalf("database URL source = %q, want file", src)
	}

	_, err = config.Load(context.Background(), getenv(with(env, "DOCSVC_DATABASE_URL_FILE", empty)), nil)
	if err == nil || !strings.Contains(err.Error(), "DOCSVC_DATABASE_URL_FILE: \""+empty+"\" is empty") {
		t.Fatalf("empty file: err = %v", err)
	}
	// A file holding something that is not a URL is reported without its text.
	bad := write("bad", "not a url at all: p@ss%zz\n")
	_, err = config.Load(context.Background(), getenv(with(env, "DOCSVC_DATABASE_URL_FILE", bad)), nil)
	if err == nil || strings.Contains(err.Error(), "p@ss") {
		t.Fatalf("bad file: err = %v", err)
	}
}

func source(c *config.Config, name string) string {
	for _, s := range c.Effective() {
		if s.Name == name {
			return s.Source
		}
	}
	return ""
}

func TestSecretsManagerARN(t *testing.T) {
	ctx := context.Background()
	srv := awstest.Start(t)
	dbARN := srv.CreateSecret(t, "tether/prod/db", "postgres://app:sm-pw-7@db.example.com/docs")
	aiARN := srv.CreateSecret(t, "tether/prod/ai", `{"api_key":"sk-sm-key-7","org":"acme","port":5432}`)
	r := config.NewSecretsManagerResolver(secretsmanager.NewFromConfig(srv.AWSConfig()))

	base := with(minimal(), "DOCSVC_DATABASE_URL", dbARN,
		"DOCSVC_AI_PROVIDER", "openai", "DOCSVC_AI_MODEL", "m", "DOCSVC_AI_BASE_URL", "https://llm.example.com/v1", "DOCSVC_AI_API_KEY", aiARN+"#api_key")
	c, err := config.Load(ctx, getenv(base), r)
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "postgres://app:sm-pw-7@db.example.com/docs" || c.AI.APIKey != "sk-sm-key-7" {
		t.Fatalf("resolved = %q, %q", c.DatabaseURL, c.AI.APIKey)
	}
	if src := source(c, "DOCSVC_AI_API_KEY"); src != config.SourceSecretsManager {
		t.Fatalf("AI key source = %q", src)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[0].Target != "secretsmanager.GetSecretValue" || !strings.Contains(string(reqs[1].Body), aiARN) || strings.Contains(string(reqs[1].Body), "#") {
		t.Fatalf("requests = %+v", reqs)
	}

	bad := []struct {
		name, key, wantIn string
	}{
		{"missing secret", "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AAAAAA", "ResourceNotFoundException"},
		{"missing field", aiARN + "#nope", `no field "nope"`},
		{"not JSON", dbARN + "#password", "not a JSON object"},
		{"number field", aiARN + "#port", ""},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(ctx, getenv(with(base, "DOCSVC_AI_API_KEY", tt.key)), r)
			if tt.wantIn == "" {
				if err != nil || c.AI.APIKey != "5432" {
					t.Fatalf("numeric field: key %v, err %v", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "DOCSVC_AI_API_KEY: ") || !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("err = %v, want DOCSVC_AI_API_KEY line with %q", err, tt.wantIn)
			}
			for _, secret := range []string{"sm-pw-7", "sk-sm-key-7", "acme"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error echoes secret %q: %v", secret, err)
				}
			}
		})
	}
}

func TestRedaction(t *testing.T) {
	secrets := []string{"pw-prod-1", "sk-prod-key-1", "tok-in-query"}
	env := with(production(), "DOCSVC_DATABASE_URL", "postgres://app:pw-prod-1@db.internal.example.com:5432/docs?sslmode=require&password=tok-in-query")
	c, err := config.Load(context.Background(), getenv(env), nil)
	if err != nil {
		t.Fatal(err)
	}
	var text, js bytes.Buffer
	if err := config.WriteCheck(&text, c, "text"); err != nil {
		t.Fatal(err)
	}
	if err := config.WriteCheck(&js, c, "json"); err != nil {
		t.Fatal(err)
	}
	var eff strings.Builder
	for _, s := range c.Effective() {
		eff.WriteString(s.Name + "=" + s.Value + "\n")
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("start", "config", c)
	formatted := fmt.Sprintf("%v %+v %#v %v", c, *c, c, *c)
	for _, out := range []string{text.String(), js.String(), eff.String(), logged.String(), formatted} {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Fatalf("output contains secret %q:\n%s", s, out)
			}
		}
	}
	// What an operator needs to recognise the values is still there.
	for _, want := range []string{"app:***@db.internal.example.com:5432/docs", "sslmode=require", "set (redacted)", "https://docs.example.com"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, text.String())
		}
	}
	var parsed struct{ Settings []config.Setting }
	if err := json.Unmarshal(js.Bytes(), &parsed); err != nil || len(parsed.Settings) != len(c.Effective()) {
		t.Fatalf("json output: %v, %d settings", err, len(parsed.Settings))
	}
	if err := config.WriteCheck(&text, c, "yaml"); err == nil {
		t.Fatal("unknown format accepted")
	}
}

func TestEffectiveSources(t *testing.T) {
	c, err := config.Load(context.Background(), getenv(production()), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"DOCSVC_ADDR":             config.SourceEnv,
		"DOCSVC_AI_API_KEY":       config.SourceEnv,
		"AWS_REGION":              config.SourceEnv,
		"DOCSVC_SQS_ENDPOINT":     config.SourceDefault,
		"DOCSVC_MAX_UPLOAD_BYTES": config.SourceEnv,
	}
	for name, src := range want {
		if got := source(c, name); got != src {
			t.Errorf("%s source = %q, want %q", name, got, src)
		}
	}
	c, err = config.Load(context.Background(), getenv(minimal()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := source(c, "DOCSVC_PUBLIC_URL"); got != config.SourceDefault {
		t.Errorf("defaulted public URL source = %q", got)
	}
}

func TestRedactDatabaseURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://app:s3cret@db:5432/docs", "postgres://app:***@db:5432/docs"},
		{"postgres://app@db/docs?sslmode=verify-full", "postgres://app@db/docs?sslmode=verify-full"},
		{"postgres://db/docs?password=s3cret&sslmode=require", "postgres://db/docs?password=***&sslmode=require"},
		{"sqlite:///var/lib/docsvc/docsvc.db", "sqlite:///var/lib/docsvc/docsvc.db"},
		{"postgres://app:s3cret@db:bad/x", "(unparseable, redacted)"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := config.RedactDatabaseURL(tt.in); got != tt.want {
			t.Errorf("RedactDatabaseURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0", 0, false},
		{"512", 512, false},
		{"32MiB", 32 << 20, false},
		{"10MB", 10_000_000, false},
		{"1 gib", 1 << 30, false},
		{"4KB", 4000, false},
		{"MB", 0, true},
		{"-1", 0, true},
		{"1.5MB", 0, true},
		{"99999999999999999999", 0, true},
		{"9223372036854775807GiB", 0, true},
	}
	for _, tt := range tests {
		got, err := config.ParseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// canary marks secret values in FuzzLoad; it starts with letters so it can
// never be read as a port number.
const canary = "ZqCanary7x"

type canaryResolver struct{}

func (canaryResolver) Resolve(_ context.Context, ref string) (string, error) {
	if strings.HasSuffix(ref, "-fail") {
		return "", errors.New("simulated failure")
	}
	return `{"k":"sk-` + canary + `","url":"postgres://u:` + canary + `@h/db"}`, nil
}

// FuzzLoad feeds arbitrary environments ("KEY=VALUE" lines) through Load and
// checks it never panics and never prints a secret, whether the secret came
// from the environment, a file or Secrets Manager.
func FuzzLoad(f *testing.F) {
	f.Add("DOCSVC_BLOB_URL=file:///d\nDOCSVC_QUEUE_URL=db://jobs\nDB=@h/db\nMODE=env", "")
	f.Add("DOCSVC_BLOB_URL=s3://b-b/x\nDOCSVC_QUEUE_URL=https://q.example.com/1/q\nAWS_REGION=us-east-1\nDB=@h:5432/db?sslmode=require\nMODE=file\nDOCSVC_AI_PROVIDER=openai\nDOCSVC_AI_MODEL=m", "tail")
	f.Add("DOCSVC_ADDR=:1\nMODE=arn\nDOCSVC_AI_PROVIDER=anthropic\nDB=x", "#url")
	f.Add("MODE=arn\nDOCSVC_DATABASE_URL_FILE=/dev/null\nDOCSVC_PUBLIC_URL=%zz", "-fail")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, envText, suffix string) {
		if strings.Contains(envText+suffix, canary) {
			t.Skip()
		}
		env := map[string]string{}
		for _, line := range strings.Split(envText, "\n") {
			k, v, _ := strings.Cut(line, "=")
			env[k] = v
		}
		dbURL := "postgres://u:" + canary + env["DB"]
		key := "sk-" + canary + suffix
		switch env["MODE"] {
		case "file":
			p := filepath.Join(dir, "secret")
			if err := os.WriteFile(p, []byte(dbURL+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			env["DOCSVC_DATABASE_URL_FILE"] = p
		case "arn":
			env["DOCSVC_DATABASE_URL"] = "arn:aws:secretsmanager:us-east-1:1:secret:x" + suffix + "#url"
			key = "arn:aws:secretsmanager:us-east-1:1:secret:y" + suffix + "#k"
		default:
			env["DOCSVC_DATABASE_URL"] = dbURL
		}
		env["DOCSVC_AI_API_KEY"] = key

		c, err := config.Load(context.Background(), getenv(env), canaryResolver{})
		if err != nil {
			if strings.Contains(err.Error(), canary) {
				t.Fatalf("error echoes a secret: %v", err)
			}
			return
		}
		if s := fmt.Sprintf("%+v %#v", c, *c); strings.Contains(s, canary) {
			t.Fatalf("formatted config echoes a secret: %s", s)
		}
		for _, format := range []string{"text", "json"} {
			var buf bytes.Buffer
			if err := config.WriteCheck(&buf, c, format); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(buf.String(), canary) {
				t.Fatalf("%s check output echoes a secret:\n%s", format, buf.String())
			}
		}
	})
}

func TestResolvers(t *testing.T) {
	ctx := context.Background()
	if _, err := config.NoAWSResolver().Resolve(ctx, "arn:aws:secretsmanager:us-east-1:1:secret:x"); !errors.Is(err, config.ErrNoAWS) {
		t.Fatalf("NoAWSResolver: err = %v, want ErrNoAWS", err)
	}
	srv := awstest.Start(t)
	srv.CreateSecret(t, "plain", "v1")
	r := config.NewSecretsManagerResolver(secretsmanager.NewFromConfig(srv.AWSConfig()))
	if v, err := r.Resolve(ctx, "plain"); err != nil || v != "v1" {
		t.Fatalf("Resolve(plain) = %q, %v", v, err)
	}
	_, err := r.Resolve(ctx, "missing")
	var nf *smtypes.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("Resolve(missing): err = %v, want a wrapped ResourceNotFoundException", err)
	}
}

func TestDatabasePassword(t *testing.T) {
	ctx := context.Background()
	pg := with(minimal(), "DOCSVC_DATABASE_URL", "postgres://docsvc@db.internal:5432/docs")

	t.Run("file is read again when refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "pw")
		os.WriteFile(path, []byte("pw-one\n"), 0o600)
		c, err := config.Load(ctx, getenv(with(pg, "DOCSVC_DATABASE_PASSWORD_FILE", path)), nil)
		if err != nil {
			t.Fatal(err)
		}
		pw := c.DatabasePasswordFunc(config.NoAWSResolver())
		if v, _ := pw(ctx, ""); v != "pw-one" {
			t.Fatalf("first = %q", v)
		}
		os.WriteFile(path, []byte("pw-two\n"), 0o600)
		if v, _ := pw(ctx, ""); v != "pw-one" {
			t.Fatalf("before a refusal the password is re-read: %q", v)
		}
		if v, err := pw(ctx, "pw-one"); err != nil || v != "pw-two" {
			t.Fatalf("after a refusal = %q, %v; want the file's new content", v, err)
		}
	})

	t.Run("secret: AWSCURRENT, then AWSPENDING mid-rotation", func(t *testing.T) {
		srv := awstest.Start(t)
		// Named as RDS names the secret of a managed master password.
		arn := srv.CreateSecret(t, "rds!db-3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b", `{"username":"docsvc","password":"pw-one"}`)
		r := config.NewSecretsManagerResolver(secretsmanager.NewFromConfig(srv.AWSConfig()))
		c, err := config.Load(ctx, getenv(with(pg, "DOCSVC_DATABASE_PASSWORD", arn+"#password")), r)
		if err != nil {
			t.Fatal(err)
		}
		if c.DatabasePassword != "pw-one" || source(c, "DOCSVC_DATABASE_PASSWORD") != config.SourceSecretsManager {
			t.Fatalf("loaded %q from %s", c.DatabasePassword, source(c, "DOCSVC_DATABASE_PASSWORD"))
		}
		if strings.Contains(c.String(), "pw-one") {
			t.Fatal("the effective configuration shows the password")
		}
		pw := c.DatabasePasswordFunc(r)
		// Outside a rotation there is no AWSPENDING: the current one stays.
		if v, err := pw(ctx, "pw-one"); err != nil || v != "pw-one" {
			t.Fatalf("no rotation: %q, %v", v, err)
		}
		sm := secretsmanager.NewFromConfig(srv.AWSConfig())
		if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn),
			SecretString: aws.String(`{"password":"pw-two"}`), VersionStages: []string{"AWSPENDING"}}); err != nil {
			t.Fatal(err)
		}
		if v, err := pw(ctx, "pw-one"); err != nil || v != "pw-two" {
			t.Fatalf("mid-rotation: %q, %v; want AWSPENDING's", v, err)
		}
	})

	bad := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"with sqlite", with(minimal(), "DOCSVC_DATABASE_PASSWORD", "pw"), "DOCSVC_DATABASE_PASSWORD: set but DOCSVC_DATABASE_URL is not postgres://"},
		{"twice", with(pg, "DOCSVC_DATABASE_URL", "postgres://docsvc:in-url@db.internal/docs", "DOCSVC_DATABASE_PASSWORD", "pw"), "holds a password too"},
		{"lifetime", with(pg, "DOCSVC_DATABASE_CONN_LIFETIME", "0s"), "DOCSVC_DATABASE_CONN_LIFETIME: 0s is outside"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(ctx, getenv(tt.env), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "in-url") {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

package config

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Setting is one configuration value as `docsvc config check` shows it.
type Setting struct {
	Name   string `json:"name"`   // the environment variable
	Value  string `json:"value"`  // secrets redacted
	Source string `json:"source"` // env, file, secretsmanager or default
}

// Effective lists every setting with where its value came from. Secrets are
// redacted: the database URL keeps its host and database but not its
// password, and the AI key only says whether it is set.
func (c *Config) Effective() []Setting {
	key := ""
	if c.AI.APIKey != "" {
		key = "set (redacted)"
	}
	region := "DOCSVC_AWS_REGION"
	if c.sources[region] == "" && c.sources["AWS_REGION"] != "" {
		region = "AWS_REGION"
	}
	rows := []struct{ name, value string }{
		{"DOCSVC_ADDR", c.Addr},
		{"DOCSVC_PUBLIC_URL", c.PublicURL},
		{"DOCSVC_CORS_ORIGINS", strings.Join(c.CORSOrigins, ",")},
		{"DOCSVC_OIDC_ISSUER", c.OIDC.Issuer},
		{"DOCSVC_OIDC_AUDIENCE", c.OIDC.Audience},
		{"DOCSVC_OIDC_CLIENT_ID", c.OIDC.ClientID},
		{"DOCSVC_OIDC_CLIENT_SECRET", setOrEmpty(c.OIDC.ClientSecret, "")},
		{"DOCSVC_OIDC_CALLBACK_URL", c.OIDC.CallbackURL},
		{"DOCSVC_OIDC_GROUPS_CLAIM", c.OIDC.GroupsClaim},
		{"DOCSVC_OIDC_SHARED_GROUPS", strings.Join(c.OIDC.SharedGroups, ",")},
		{"DOCSVC_DATABASE_URL", RedactDatabaseURL(c.DatabaseURL)},
		{"DOCSVC_DATABASE_PASSWORD", setOrEmpty(c.DatabasePassword, "")},
		{"DOCSVC_DATABASE_CONN_LIFETIME", c.DatabaseConnLifetime.String()},
		{"DOCSVC_BLOB_URL", c.BlobURL},
		{"DOCSVC_S3_KMS_KEY_ID", c.S3KMSKeyID},
		{"DOCSVC_S3_ENDPOINT", c.S3Endpoint},
		{"DOCSVC_S3_PATH_STYLE", strconv.FormatBool(c.S3PathStyle)},
		{"DOCSVC_QUEUE_URL", c.QueueURL},
		{"DOCSVC_DLQ_URL", c.DeadLetterQueueURL},
		{"DOCSVC_SQS_ENDPOINT", c.SQSEndpoint},
		{"DOCSVC_QUEUE_MAX_RECEIVES", strconv.Itoa(c.MaxReceives)},
		{"DOCSVC_QUEUE_VISIBILITY", c.Visibility.String()},
		{region, c.AWSRegion},
		{"DOCSVC_AI_PROVIDER", c.AI.Provider},
		{"DOCSVC_AI_MODEL", c.AI.Model},
		{"DOCSVC_AI_BASE_URL", c.AI.BaseURL},
		{"DOCSVC_AI_API_KEY", key},
		{"DOCSVC_AI_REGION", c.AI.Region},
		{"DOCSVC_AI_TIMEOUT", c.AI.Timeout.String()},
		{"DOCSVC_EMAIL_FROM", c.EmailFrom},
		{"DOCSVC_MAX_UPLOAD_BYTES", strconv.FormatInt(c.MaxUploadBytes, 10)},
		{"DOCSVC_UPLOAD_MIN_RATE", strconv.FormatInt(c.UploadMinRate, 10)},
		{"DOCSVC_WORKER_CONCURRENCY", strconv.Itoa(c.WorkerConcurrency)},
		{"DOCSVC_WORKER_MEMORY", FormatSize(c.WorkerMemory)},
		{"DOCSVC_EXTRACT_MAX_MEMORY", FormatSize(c.Extract.MaxMemory)},
		{"DOCSVC_EXTRACT_TIMEOUT", c.Extract.Timeout.String()},
		{"DOCSVC_EXTRACT_MAX_PAGES", strconv.Itoa(c.Extract.MaxPages)},
		{"DOCSVC_EXTRACT_MAX_TEXT", FormatSize(c.Extract.MaxText)},
		{"DOCSVC_EXTRACT_CACHE_DIR", c.Extract.CacheDir},
		{"DOCSVC_INTERNAL_ADDR", c.InternalAddr},
		{"DOCSVC_LICENSE", setOrEmpty(c.License, c.LicenseFile)},
		{"DOCSVC_LICENSE_PUBLIC_KEY", setOrEmpty(c.LicenseKey, "")},
		{"DOCSVC_LOG_LEVEL", strings.ToLower(c.LogLevel.String())},
	}
	out := make([]Setting, len(rows))
	for i, r := range rows {
		src := c.sources[r.name]
		if src == "" {
			src = SourceDefault
		}
		out[i] = Setting{Name: r.name, Value: r.value, Source: src}
	}
	return out
}

// WriteCheck prints the effective configuration in format "text" (an aligned
// table for people) or "json" (for scripts).
func WriteCheck(w io.Writer, c *Config, format string) error {
	settings := c.Effective()
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Settings []Setting `json:"settings"`
		}{settings}); err != nil {
			return fmt.Errorf("config: write check: %w", err)
		}
		return nil
	case "text":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VARIABLE\tSOURCE\tVALUE")
		for _, s := range settings {
			v := s.Value
			if v == "" {
				v = "(unset)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, s.Source, v)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("config: write check: %w", err)
		}
		return nil
	default:
		return fmt.Errorf("config: unknown check format %q (want text or json)", format)
	}
}

// safeQueryKeys are database URL parameters shown as they are; every other
// parameter's value is redacted, since drivers accept passwords there too.
var safeQueryKeys = map[string]bool{
	"sslmode": true, "search_path": true, "connect_timeout": true,
	"application_name": true, "target_session_attrs": true,
}

// RedactDatabaseURL shows a database URL with its password and any unknown
// query values replaced by ***, keeping what an operator needs to recognise
// it: scheme, user, host, port and database.
func RedactDatabaseURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return "(unparseable, redacted)"
	}
	var b strings.Builder
	b.WriteString(u.Scheme + "://")
	if u.User != nil {
		b.WriteString(url.PathEscape(u.User.Username()))
		if _, ok := u.User.Password(); ok {
			b.WriteString(":***")
		}
		b.WriteString("@")
	}
	b.WriteString(u.Host)
	b.WriteString(u.EscapedPath())
	if q := u.Query(); len(q) > 0 {
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			sep := "&"
			if i == 0 {
				sep = "?"
			}
			v := "***"
			if safeQueryKeys[k] {
				v = url.QueryEscape(q.Get(k))
			}
			b.WriteString(sep + url.QueryEscape(k) + "=" + v)
		}
	}
	return b.String()
}

// String, GoString and LogValue make a Config print as its redacted
// settings, so logging or formatting one by accident cannot leak a secret.
func (c Config) String() string {
	var b strings.Builder
	for i, s := range (&c).Effective() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s.Name + "=" + strconv.Quote(s.Value))
	}
	return b.String()
}

// GoString is String, for %#v.
func (c Config) GoString() string { return "config.Config{" + c.String() + "}" }

// LogValue is the redacted settings as a slog group.
func (c Config) LogValue() slog.Value {
	settings := (&c).Effective()
	attrs := make([]slog.Attr, len(settings))
	for i, s := range settings {
		attrs[i] = slog.String(s.Name, s.Value)
	}
	return slog.GroupValue(attrs...)
}

// setOrEmpty shows that a value is present without showing it (a license
// holds its one-time activation token), and the path it came from, if any.
func setOrEmpty(v, path string) string {
	switch {
	case v == "":
		return ""
	case path != "":
		return "set (from " + path + ")"
	default:
		return "set (redacted)"
	}
}

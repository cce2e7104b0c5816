// Package config parses the document service's configuration from its
// environment, once, at start.
//
// Every deployment-specific value comes from here, never from code. Load
// checks everything and reports every problem at once, one line per variable,
// each saying what is wrong and how to fix it, so an operator fixes a task
// definition in one pass. Secrets (the database URL, the AI key) may be given
// directly, as a file (NAME_FILE), or as a Secrets Manager ARN; they are never
// echoed in errors or in `docsvc config check` output.
package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/auth/groupname"
)

// Config is the document service's validated configuration.
type Config struct {
	Addr        string   // DOCSVC_ADDR
	PublicURL   string   // DOCSVC_PUBLIC_URL, without a trailing slash
	CORSOrigins []string // DOCSVC_CORS_ORIGINS
	OIDC        struct {
		Issuer, Audience string
		// ClientID is the web page's client at the provider
		// (DOCSVC_OIDC_CLIENT_ID, default Audience); ClientSecret
		// (secret) is set only for a confidential client.
		ClientID, ClientSecret string
		// CallbackURL is the sign-in's redirect URI: DOCSVC_OIDC_CALLBACK_URL,
		// else DOCSVC_PUBLIC_URL + /auth/callback while an issuer is set.
		CallbackURL string
		// GroupsClaim (DOCSVC_OIDC_GROUPS_CLAIM) names the token claim
		// listing a person's groups; SharedGroups (DOCSVC_OIDC_SHARED_GROUPS,
		// comma-separated) are those whose members see each other's
		// documents. Both unset shares nothing.
		GroupsClaim  string
		SharedGroups []string
	}
	DatabaseURL string // secret: may carry a password
	// DatabasePassword is DOCSVC_DATABASE_PASSWORD (secret): the PostgreSQL
	// password kept out of the URL, so that a rotated one is read again
	// (see DatabasePasswordFunc) instead of needing a restart.
	DatabasePassword string
	// databasePasswordRef is where it came from: a Secrets Manager
	// reference (ARN[#field]) or a file path, read again on refusal.
	databasePasswordRef  string
	DatabaseConnLifetime time.Duration // DOCSVC_DATABASE_CONN_LIFETIME

	BlobURL     string // file:///abs/dir or s3://bucket/prefix
	S3KMSKeyID  string
	S3Endpoint  string
	S3PathStyle bool

	QueueURL           string // db://name or an SQS queue URL
	DeadLetterQueueURL string
	SQSEndpoint        string
	MaxReceives        int
	Visibility         time.Duration

	AWSRegion string

	AI struct {
		Provider, Model, BaseURL string
		APIKey                   string // secret
		Region                   string
		Timeout                  time.Duration
	}

	EmailFrom         string
	InternalAddr      string // DOCSVC_INTERNAL_ADDR: listener for /readyz and /metrics kept off the public address; empty serves them on DOCSVC_ADDR
	MaxUploadBytes    int64
	UploadMinRate     int64 // DOCSVC_UPLOAD_MIN_RATE: bytes per second an upload must average after its first 30 seconds
	WorkerConcurrency int
	WorkerMemory      int64 // DOCSVC_WORKER_MEMORY: the memory the worker's task has; sizes the default extraction memory
	Extract           ExtractLimits
	License           string // DOCSVC_LICENSE (or _FILE, or a Secrets Manager ARN): the signed license; unset runs unlicensed (development)
	LicenseFile       string // the path, when the license came from DOCSVC_LICENSE_FILE, so a renewed file is picked up without a restart
	LicenseKey        string // DOCSVC_LICENSE_PUBLIC_KEY (or _FILE): the vendor's license.pub (PEM) that verifies it
	LogLevel          slog.Level

	// sources records where each variable's value came from, for Effective.
	sources map[string]string
}

// ExtractLimits bound the work spent on one document's text extraction.
type ExtractLimits struct {
	MaxMemory int64         // DOCSVC_EXTRACT_MAX_MEMORY: PDFium's memory for one PDF
	Timeout   time.Duration // DOCSVC_EXTRACT_TIMEOUT
	MaxPages  int           // DOCSVC_EXTRACT_MAX_PAGES
	MaxText   int64         // DOCSVC_EXTRACT_MAX_TEXT: extracted text, in bytes
	// CacheDir is DOCSVC_EXTRACT_CACHE_DIR: where PDFium's compiled code
	// is kept between starts; empty means the user's cache directory,
	// "off" none.
	CacheDir string
}

// AI providers.
const (
	ProviderLocal     = "local"
	ProviderOpenAI    = "openai"
	ProviderAnthropic = "anthropic"
	ProviderBedrock   = "bedrock"
)

// Where a setting's value came from.
const (
	SourceEnv            = "env"
	SourceFile           = "file"
	SourceSecretsManager = "secretsmanager"
	SourceDefault        = "default"
)

// UsesSQS reports whether the job queue is SQS rather than the database.
func (c *Config) UsesSQS() bool { return !strings.HasPrefix(c.QueueURL, "db://") }

// UsesS3 reports whether documents are stored in S3 rather than a directory.
func (c *Config) UsesS3() bool { return strings.HasPrefix(c.BlobURL, "s3://") }

// Problem is one bad or missing value.
type Problem struct {
	Var     string // the environment variable to change
	Problem string // what is wrong; never contains a secret's value
	Fix     string // what to set instead
}

func (p Problem) String() string { return p.Var + ": " + p.Problem + "; " + p.Fix }

// Error is every problem Load found, one per line.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Limits on numeric settings. SQS allows a receive count of 1–1000 and a
// visibility timeout of up to 12 hours; the upload cap stays under S3's 5 GiB
// single-PUT limit.
const (
	maxUploadLimit      = 5 << 30
	maxUploadMinRate    = 1 << 30
	maxVisibility       = 12 * time.Hour
	maxAITimeout        = 10 * time.Minute
	maxWorkerConcurrent = 256
	// workerReserve is the worker's memory besides its documents': the Go
	// runtime, PDFium's compiled code, and each job's input and text.
	workerReserve = 512 << 20
)

// Load reads and validates the configuration. getenv is os.Getenv in
// production and a map lookup in tests; r resolves Secrets Manager ARNs (nil
// means none are allowed). On any problem it returns an *Error listing them
// all.
func Load(ctx context.Context, getenv func(string) string, r SecretResolver) (*Config, error) {
	if r == nil {
		r = NoAWSResolver()
	}
	l := &loader{ctx: ctx, getenv: getenv, resolver: r, sources: map[string]string{}}
	c := &Config{sources: l.sources}

	l.loadHTTP(c)
	l.loadStorage(c)
	l.loadQueue(c)
	l.loadRegion(c)
	l.loadAI(c)
	l.loadMisc(c)

	if len(l.problems) > 0 {
		return nil, &Error{Problems: l.problems}
	}
	return c, nil
}

// loader accumulates problems instead of stopping at the first.
type loader struct {
	ctx      context.Context
	getenv   func(string) string
	resolver SecretResolver
	problems []Problem
	sources  map[string]string
}

func (l *loader) fail(name, problem, fix string) {
	l.problems = append(l.problems, Problem{Var: name, Problem: problem, Fix: fix})
}

// str returns the trimmed value of name, or def (recorded as the default)
// when it is unset or blank.
func (l *loader) str(name, def string) string {
	if v := strings.TrimSpace(l.getenv(name)); v != "" {
		l.sources[name] = SourceEnv
		return v
	}
	if def != "" {
		l.sources[name] = SourceDefault
	}
	return def
}

func (l *loader) set(name string) bool { return strings.TrimSpace(l.getenv(name)) != "" }

func (l *loader) intIn(name string, def, lo, hi int) int {
	v := l.str(name, "")
	if v == "" {
		l.sources[name] = SourceDefault
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		l.fail(name, fmt.Sprintf("%s is not a whole number from %d to %d", show(v), lo, hi), fmt.Sprintf("set a number such as %d", def))
		return def
	}
	return n
}

// duration accepts Go durations ("90s", "2m") and plain seconds ("90").
func (l *loader) duration(name string, def, lo, hi time.Duration) time.Duration {
	v := l.str(name, "")
	if v == "" {
		l.sources[name] = SourceDefault
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.Atoi(v)
		if nerr != nil {
			l.fail(name, show(v)+" is not a duration", "set e.g. "+def.String()+" or a number of seconds")
			return def
		}
		d = time.Duration(n) * time.Second
	}
	if d < lo || d > hi {
		l.fail(name, fmt.Sprintf("%s is outside %s–%s", d, lo, hi), "set a duration in that range")
		return def
	}
	return d
}

// httpURL checks v is an absolute http(s) URL without credentials. With
// requireTLS, plain http is accepted only for loopback hosts, because these
// URLs carry tokens or document text.
func (l *loader) httpURL(name, v, fix string, requireTLS bool) bool {
	u, err := url.Parse(v)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
		l.fail(name, show(v)+" is not an absolute http(s) URL", fix)
	case u.User != nil:
		l.fail(name, "URL must not contain credentials", "remove the user:password@ part")
	case requireTLS && u.Scheme == "http" && !IsLoopback(u.Hostname()):
		l.fail(name, show(v)+" uses plain http to a non-loopback host", "use https")
	default:
		return true
	}
	return false
}

func (l *loader) loadHTTP(c *Config) {
	c.Addr = l.str("DOCSVC_ADDR", "127.0.0.1:8080")
	host, port, err := net.SplitHostPort(c.Addr)
	if p, perr := strconv.Atoi(port); err != nil || perr != nil || p < 1 || p > 65535 {
		l.fail("DOCSVC_ADDR", show(c.Addr)+" is not host:port", "set e.g. 127.0.0.1:8080 or :8080")
		host = "127.0.0.1"
	}

	if l.set("DOCSVC_PUBLIC_URL") {
		c.PublicURL = l.str("DOCSVC_PUBLIC_URL", "")
		if l.httpURL("DOCSVC_PUBLIC_URL", c.PublicURL, "set e.g. https://docs.example.com", false) {
			u, _ := url.Parse(c.PublicURL)
			if u.RawQuery != "" || u.Fragment != "" {
				l.fail("DOCSVC_PUBLIC_URL", "URL has a query or fragment", "set only scheme://host[:port][/path]")
			}
		}
		c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	} else if host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
		// Listening on every interface says nothing about the name users
		// reach the service by, so there is no sensible default.
		l.fail("DOCSVC_PUBLIC_URL", "missing (DOCSVC_ADDR listens on all interfaces)", "set the URL users reach the service at, e.g. https://docs.example.com")
	} else {
		c.PublicURL = "http://" + c.Addr
		l.sources["DOCSVC_PUBLIC_URL"] = SourceDefault
	}

	if v := l.str("DOCSVC_CORS_ORIGINS", ""); v != "" {
		for _, o := range strings.Split(v, ",") {
			o = strings.TrimSpace(o)
			if o == "" {
				continue
			}
			if l.origin(o) {
				c.CORSOrigins = append(c.CORSOrigins, o)
			}
		}
	}

	c.OIDC.Issuer = l.str("DOCSVC_OIDC_ISSUER", "")
	c.OIDC.Audience = l.str("DOCSVC_OIDC_AUDIENCE", "")
	c.OIDC.ClientID = l.str("DOCSVC_OIDC_CLIENT_ID", "")
	c.OIDC.ClientSecret = l.secret("DOCSVC_OIDC_CLIENT_SECRET")
	c.OIDC.CallbackURL = l.str("DOCSVC_OIDC_CALLBACK_URL", "")
	switch {
	case c.OIDC.Issuer != "" && c.OIDC.Audience == "":
		l.fail("DOCSVC_OIDC_AUDIENCE", "missing while DOCSVC_OIDC_ISSUER is set", "set the client ID your identity provider puts in tokens' aud claim")
	case c.OIDC.Issuer == "" && c.OIDC.Audience != "":
		l.fail("DOCSVC_OIDC_ISSUER", "missing while DOCSVC_OIDC_AUDIENCE is set", "set your identity provider's issuer URL, e.g. https://login.example.com/tenant/v2.0")
	}
	if c.OIDC.Issuer != "" {
		l.httpURL("DOCSVC_OIDC_ISSUER", c.OIDC.Issuer, "set e.g. https://login.example.com/tenant/v2.0", true)
		if strings.ContainsAny(c.OIDC.Issuer, " \t\n") {
			l.fail("DOCSVC_OIDC_ISSUER", "contains white space", "set the issuer URL exactly as the provider's discovery document names it")
		}
	}
	for _, name := range []string{"DOCSVC_OIDC_CLIENT_ID", "DOCSVC_OIDC_CLIENT_SECRET"} {
		if c.OIDC.Issuer == "" && (l.set(name) || l.set(name+"_FILE")) {
			l.fail(name, "set without DOCSVC_OIDC_ISSUER", "set DOCSVC_OIDC_ISSUER and DOCSVC_OIDC_AUDIENCE too, or unset it")
		}
	}
	if c.OIDC.ClientID != "" && strings.IndexFunc(c.OIDC.ClientID, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		l.fail("DOCSVC_OIDC_CLIENT_ID", show(c.OIDC.ClientID)+" contains white space or control characters", "set the client ID exactly as the provider shows it")
	}
	if c.OIDC.CallbackURL != "" {
		if c.OIDC.Issuer == "" {
			l.fail("DOCSVC_OIDC_CALLBACK_URL", "set without DOCSVC_OIDC_ISSUER", "set DOCSVC_OIDC_ISSUER and DOCSVC_OIDC_AUDIENCE too, or unset it")
		}
		if l.httpURL("DOCSVC_OIDC_CALLBACK_URL", c.OIDC.CallbackURL, "set e.g. https://docs.example.com/auth/callback", true) {
			if u, _ := url.Parse(c.OIDC.CallbackURL); !strings.HasSuffix(u.Path, "/auth/callback") || u.RawQuery != "" || u.Fragment != "" {
				l.fail("DOCSVC_OIDC_CALLBACK_URL", show(c.OIDC.CallbackURL)+" does not end in /auth/callback, the route docsvc serves it on", "set <DOCSVC_PUBLIC_URL>/auth/callback, or unset it for that default")
			}
		}
	} else if c.OIDC.Issuer != "" && c.PublicURL != "" {
		c.OIDC.CallbackURL = c.PublicURL + "/auth/callback"
		l.sources["DOCSVC_OIDC_CALLBACK_URL"] = SourceDefault
	}
	l.loadGroups(c)
}

// loadGroups reads the shared groups: a claim name and the groups, both or
// neither, and only with an issuer.
func (l *loader) loadGroups(c *Config) {
	const claimVar, groupsVar = "DOCSVC_OIDC_GROUPS_CLAIM", "DOCSVC_OIDC_SHARED_GROUPS"
	c.OIDC.GroupsClaim = l.str(claimVar, "")
	groups := l.str(groupsVar, "")
	switch {
	case c.OIDC.GroupsClaim == "" && groups == "":
		return
	case c.OIDC.Issuer == "":
		l.fail(claimVar, "set without DOCSVC_OIDC_ISSUER", "set DOCSVC_OIDC_ISSUER and DOCSVC_OIDC_AUDIENCE too, or unset "+claimVar+" and "+groupsVar)
		return
	case c.OIDC.GroupsClaim == "":
		l.fail(claimVar, "missing while "+groupsVar+" is set", "set the name of the token claim that lists a person's groups, e.g. groups or cognito:groups")
		return
	case groups == "":
		l.fail(groupsVar, "missing while "+claimVar+" is set", "set the groups whose members share their documents, comma-separated, e.g. finance,legal")
		return
	}
	if strings.IndexFunc(c.OIDC.GroupsClaim, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 || len(c.OIDC.GroupsClaim) > 256 {
		l.fail(claimVar, show(c.OIDC.GroupsClaim)+" is not a claim name", "set the claim's name exactly as in the token, e.g. groups")
	}
	for _, g := range strings.Split(groups, ",") {
		g = strings.TrimSpace(g)
		if err := groupname.Valid(g); err != nil {
			l.fail(groupsVar, "group "+show(g)+": "+strings.TrimPrefix(err.Error(), groupname.ErrBad.Error()+": "), "list group names exactly as the token's claim carries them, separated by commas, e.g. finance,legal")
			continue
		}
		if !slices.Contains(c.OIDC.SharedGroups, g) {
			c.OIDC.SharedGroups = append(c.OIDC.SharedGroups, g)
		}
	}
}

// origin checks one CORS origin: exactly scheme://host[:port], as browsers
// send it in the Origin header.
func (l *loader) origin(o string) bool {
	const name = "DOCSVC_CORS_ORIGINS"
	if o == "*" {
		l.fail(name, "wildcard origin", "list each allowed origin, e.g. https://app.example.com")
		return false
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || strings.HasSuffix(o, "?") {
		l.fail(name, show(o)+" is not an origin", "set scheme://host[:port] with no path or trailing slash, e.g. https://app.example.com")
		return false
	}
	return true
}

var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func (l *loader) loadStorage(c *Config) {
	const dbFix = "set sqlite:///path/to/docsvc.db or postgres://user@host:5432/db (directly, via DOCSVC_DATABASE_URL_FILE, or as a Secrets Manager ARN)"
	c.DatabaseURL = l.secret("DOCSVC_DATABASE_URL")
	if c.DatabaseURL == "" {
		if !l.failedOn("DOCSVC_DATABASE_URL") {
			l.fail("DOCSVC_DATABASE_URL", "missing", dbFix)
		}
	} else if problem := checkDatabaseURL(c.DatabaseURL); problem != "" {
		// The URL may hold a password: the problem text never quotes it.
		l.fail("DOCSVC_DATABASE_URL", problem, dbFix)
	}
	c.DatabasePassword = l.secret("DOCSVC_DATABASE_PASSWORD")
	switch l.sources["DOCSVC_DATABASE_PASSWORD"] {
	case SourceSecretsManager:
		c.databasePasswordRef = strings.TrimSpace(l.getenv("DOCSVC_DATABASE_PASSWORD"))
	case SourceFile:
		c.databasePasswordRef = strings.TrimSpace(l.getenv("DOCSVC_DATABASE_PASSWORD_FILE"))
	}
	if u, err := url.Parse(c.DatabaseURL); c.DatabasePassword != "" && err == nil {
		_, inURL := u.User.Password()
		switch {
		case !strings.HasPrefix(u.Scheme, "postgres"):
			l.fail("DOCSVC_DATABASE_PASSWORD", "set but DOCSVC_DATABASE_URL is not postgres://", "unset it: SQLite has no password")
		case inURL:
			l.fail("DOCSVC_DATABASE_PASSWORD", "set, and DOCSVC_DATABASE_URL holds a password too", "keep the password in one place: drop it from the URL")
		}
	}
	c.DatabaseConnLifetime = l.duration("DOCSVC_DATABASE_CONN_LIFETIME", 10*time.Minute, time.Second, 24*time.Hour)

	const blobFix = "set file:///path/to/dir or s3://bucket/prefix"
	c.BlobURL = l.str("DOCSVC_BLOB_URL", "")
	if c.BlobURL == "" {
		l.fail("DOCSVC_BLOB_URL", "missing", blobFix)
	} else if u, err := url.Parse(c.BlobURL); err != nil || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		l.fail("DOCSVC_BLOB_URL", show(c.BlobURL)+" is not a file:// or s3:// URL", blobFix)
	} else {
		switch u.Scheme {
		case "file":
			if (u.Host != "" && u.Host != "localhost") || !path.IsAbs(u.Path) || u.Path == "/" {
				l.fail("DOCSVC_BLOB_URL", show(c.BlobURL)+" does not name an absolute directory", "set file:///path/to/dir (three slashes)")
			}
		case "s3":
			if !bucketName.MatchString(u.Host) || strings.Contains(u.Host, "..") {
				l.fail("DOCSVC_BLOB_URL", show(u.Host)+" is not a valid S3 bucket name", "set s3://bucket/prefix with a 3–63 character lowercase bucket name")
			}
		default:
			l.fail("DOCSVC_BLOB_URL", "scheme "+show(u.Scheme)+" is not supported", blobFix)
		}
	}

	c.S3KMSKeyID = l.str("DOCSVC_S3_KMS_KEY_ID", "")
	c.S3Endpoint = l.str("DOCSVC_S3_ENDPOINT", "")
	if c.S3Endpoint != "" {
		l.httpURL("DOCSVC_S3_ENDPOINT", c.S3Endpoint, "set e.g. http://127.0.0.1:4566", false)
	}
	if v := l.str("DOCSVC_S3_PATH_STYLE", ""); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			l.fail("DOCSVC_S3_PATH_STYLE", show(v)+" is not a boolean", "set true or false")
		}
		c.S3PathStyle = b
	}
	if c.BlobURL != "" && !c.UsesS3() {
		for _, name := range []string{"DOCSVC_S3_KMS_KEY_ID", "DOCSVC_S3_ENDPOINT", "DOCSVC_S3_PATH_STYLE"} {
			if l.set(name) {
				l.fail(name, "set but DOCSVC_BLOB_URL is not s3://", "unset it, or store documents in S3")
			}
		}
	}
}

// checkDatabaseURL returns what is wrong with a database URL, in words that
// never include the URL itself.
func checkDatabaseURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return "value is not a valid URL (percent-encode special characters in the password)"
	}
	switch u.Scheme {
	case "sqlite":
		if u.Host+u.Path == "" {
			return "sqlite URL has no file path"
		}
	case "postgres", "postgresql":
	default:
		return "scheme " + show(u.Scheme) + " is not supported"
	}
	return ""
}

var queueName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

func (l *loader) loadQueue(c *Config) {
	const fix = "set db://jobs (the embedded queue) or an SQS queue URL"
	c.QueueURL = l.str("DOCSVC_QUEUE_URL", "")
	c.DeadLetterQueueURL = l.str("DOCSVC_DLQ_URL", "")
	c.SQSEndpoint = l.str("DOCSVC_SQS_ENDPOINT", "")
	switch {
	case c.QueueURL == "":
		l.fail("DOCSVC_QUEUE_URL", "missing", fix)
	case strings.HasPrefix(c.QueueURL, "db://"):
		if !queueName.MatchString(strings.TrimPrefix(c.QueueURL, "db://")) {
			l.fail("DOCSVC_QUEUE_URL", show(c.QueueURL)+" has no valid queue name", "set db://jobs")
		}
		// The embedded queue keeps dead letters in its own table.
		for _, name := range []string{"DOCSVC_DLQ_URL", "DOCSVC_SQS_ENDPOINT"} {
			if l.set(name) {
				l.fail(name, "set but DOCSVC_QUEUE_URL is the embedded db:// queue", "unset it, or use an SQS queue")
			}
		}
	default:
		if l.sqsURL("DOCSVC_QUEUE_URL", c.QueueURL) {
			switch {
			case c.DeadLetterQueueURL == "":
				l.fail("DOCSVC_DLQ_URL", "missing (required with an SQS queue)", "set the URL of the queue's dead-letter queue")
			case c.DeadLetterQueueURL == c.QueueURL:
				l.fail("DOCSVC_DLQ_URL", "same as DOCSVC_QUEUE_URL", "set the URL of a separate dead-letter queue")
			default:
				l.sqsURL("DOCSVC_DLQ_URL", c.DeadLetterQueueURL)
			}
		}
		if c.SQSEndpoint != "" {
			l.httpURL("DOCSVC_SQS_ENDPOINT", c.SQSEndpoint, "set e.g. http://127.0.0.1:4566", false)
		}
	}
	c.MaxReceives = l.intIn("DOCSVC_QUEUE_MAX_RECEIVES", 5, 1, 1000)
	c.Visibility = l.duration("DOCSVC_QUEUE_VISIBILITY", 60*time.Second, time.Second, maxVisibility)
}

// sqsURL checks an SQS queue URL's shape: http(s)://host/account/name.
func (l *loader) sqsURL(name, v string) bool {
	if !l.httpURL(name, v, "set the queue URL as SQS reports it: scheme://host/ACCOUNT/QUEUE", false) {
		return false
	}
	u, _ := url.Parse(v)
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 2 || parts[0] == "" || !queueName.MatchString(strings.TrimSuffix(parts[1], ".fifo")) {
		l.fail(name, show(v)+" is not an SQS queue URL", "set the queue URL as SQS reports it: scheme://host/ACCOUNT/QUEUE")
		return false
	}
	return true
}

var regionName = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)

func (l *loader) loadRegion(c *Config) {
	name := "DOCSVC_AWS_REGION"
	c.AWSRegion = l.str(name, "")
	if c.AWSRegion == "" {
		name = "AWS_REGION"
		c.AWSRegion = l.str(name, "")
	}
	if c.AWSRegion != "" && !regionName.MatchString(c.AWSRegion) {
		l.fail(name, show(c.AWSRegion)+" is not an AWS region", "set e.g. us-east-1")
	}
	if c.AWSRegion == "" && (c.BlobURL != "" && c.UsesS3() || c.QueueURL != "" && c.UsesSQS()) {
		l.fail("DOCSVC_AWS_REGION", "missing (required by the S3 or SQS backend)", "set DOCSVC_AWS_REGION or AWS_REGION, e.g. us-east-1")
	}
}

func (l *loader) loadAI(c *Config) {
	ai := &c.AI
	ai.Provider = strings.ToLower(l.str("DOCSVC_AI_PROVIDER", ProviderLocal))
	ai.Model = l.str("DOCSVC_AI_MODEL", "")
	ai.BaseURL = l.str("DOCSVC_AI_BASE_URL", "")
	ai.APIKey = l.secret("DOCSVC_AI_API_KEY")
	ai.Region = l.str("DOCSVC_AI_REGION", "")
	ai.Timeout = l.duration("DOCSVC_AI_TIMEOUT", 60*time.Second, time.Second, maxAITimeout)

	switch ai.Provider {
	case ProviderLocal, ProviderOpenAI, ProviderAnthropic, ProviderBedrock:
	default:
		l.fail("DOCSVC_AI_PROVIDER", show(ai.Provider)+" is not a provider", "set local, openai, anthropic or bedrock")
		return
	}
	if ai.Provider == ProviderLocal {
		// The offline analyzer takes no model, endpoint or key; one set here
		// means the operator expected a remote provider.
		for _, name := range []string{"DOCSVC_AI_MODEL", "DOCSVC_AI_BASE_URL", "DOCSVC_AI_API_KEY", "DOCSVC_AI_API_KEY_FILE", "DOCSVC_AI_REGION"} {
			if l.set(name) {
				l.fail(name, "set but DOCSVC_AI_PROVIDER is local", "set DOCSVC_AI_PROVIDER to the provider it is for, or unset it")
			}
		}
		return
	}
	if ai.Model == "" {
		l.fail("DOCSVC_AI_MODEL", "missing (required with provider "+ai.Provider+")", "set the model ID your provider serves")
	}
	// Document text goes to this URL, so it must be TLS unless it stays on
	// the machine (a local vLLM, say).
	baseOK := ai.BaseURL == "" || l.httpURL("DOCSVC_AI_BASE_URL", ai.BaseURL, "set e.g. https://llm.example.com/v1", true)
	if ai.Provider == ProviderOpenAI && ai.BaseURL == "" && !l.failedOn("DOCSVC_AI_BASE_URL") {
		// No default: which endpoint receives document text is the customer's
		// explicit choice, never something compiled in.
		l.fail("DOCSVC_AI_BASE_URL", "missing (required with provider openai)",
			"set your OpenAI-compatible endpoint's base URL: OpenAI's public API, Azure OpenAI's /openai/v1, or your vLLM")
	}
	switch ai.Provider {
	case ProviderOpenAI, ProviderAnthropic:
		if ai.APIKey == "" && !l.failedOn("DOCSVC_AI_API_KEY") && !(baseOK && ai.BaseURL != "" && isLoopbackURL(ai.BaseURL)) {
			l.fail("DOCSVC_AI_API_KEY", "missing (required with provider "+ai.Provider+")", "set DOCSVC_AI_API_KEY, DOCSVC_AI_API_KEY_FILE, or a Secrets Manager ARN")
		}
		if ai.Region != "" {
			l.fail("DOCSVC_AI_REGION", "set but only bedrock uses it", "unset it")
		}
	case ProviderBedrock:
		// Bedrock authenticates with the task's IAM role, never a key.
		if l.set("DOCSVC_AI_API_KEY") || l.set("DOCSVC_AI_API_KEY_FILE") {
			l.fail("DOCSVC_AI_API_KEY", "set but bedrock authenticates with the task's IAM role", "unset it")
		}
		if ai.Region == "" {
			ai.Region = c.AWSRegion
			if ai.Region == "" {
				l.fail("DOCSVC_AI_REGION", "missing (required with provider bedrock)", "set DOCSVC_AI_REGION or DOCSVC_AWS_REGION, e.g. us-east-1")
			}
		} else if !regionName.MatchString(ai.Region) {
			l.fail("DOCSVC_AI_REGION", show(ai.Region)+" is not an AWS region", "set e.g. us-east-1")
		}
	}
}

func (l *loader) loadMisc(c *Config) {
	if c.EmailFrom = l.str("DOCSVC_EMAIL_FROM", ""); c.EmailFrom != "" {
		if _, err := mail.ParseAddress(c.EmailFrom); err != nil {
			l.fail("DOCSVC_EMAIL_FROM", show(c.EmailFrom)+" is not an email address", "set e.g. docs@example.com or \"Docs <docs@example.com>\"")
		}
	}

	c.MaxUploadBytes = 32 << 20
	if v := l.str("DOCSVC_MAX_UPLOAD_BYTES", ""); v != "" {
		n, err := ParseSize(v)
		if err != nil || n < 1 || n > maxUploadLimit {
			l.fail("DOCSVC_MAX_UPLOAD_BYTES", show(v)+" is not a size from 1 byte to 5GiB", "set e.g. 32MiB, 10MB or a number of bytes")
		} else {
			c.MaxUploadBytes = n
		}
	} else {
		l.sources["DOCSVC_MAX_UPLOAD_BYTES"] = SourceDefault
	}

	// A client that sends slower than this (after a grace period) is cut
	// off, so a trickle cannot hold a connection and a spool file forever.
	c.UploadMinRate = 8 << 10
	if v := l.str("DOCSVC_UPLOAD_MIN_RATE", ""); v != "" {
		n, err := ParseSize(v)
		if err != nil || n < 1 || n > maxUploadMinRate {
			l.fail("DOCSVC_UPLOAD_MIN_RATE", show(v)+" is not a rate from 1 byte to 1GiB per second", "set bytes per second, e.g. 8KiB, 64KB or 1000")
		} else {
			c.UploadMinRate = n
		}
	} else {
		l.sources["DOCSVC_UPLOAD_MIN_RATE"] = SourceDefault
	}

	if c.InternalAddr = l.str("DOCSVC_INTERNAL_ADDR", ""); c.InternalAddr != "" {
		if _, _, err := net.SplitHostPort(c.InternalAddr); err != nil {
			l.fail("DOCSVC_INTERNAL_ADDR", show(c.InternalAddr)+" is not host:port", "set e.g. :9090, or leave it empty")
		}
	}
	c.WorkerConcurrency = l.intIn("DOCSVC_WORKER_CONCURRENCY", 2, 1, maxWorkerConcurrent)
	l.loadExtract(c)
	if c.License = l.secret("DOCSVC_LICENSE"); l.sources["DOCSVC_LICENSE"] == SourceFile {
		c.LicenseFile = strings.TrimSpace(l.getenv("DOCSVC_LICENSE_FILE"))
	}
	// The public key is no secret, but it comes the same three ways.
	c.LicenseKey = l.secret("DOCSVC_LICENSE_PUBLIC_KEY")
	if (c.License == "") != (c.LicenseKey == "") && !l.failedOn("DOCSVC_LICENSE") && !l.failedOn("DOCSVC_LICENSE_PUBLIC_KEY") {
		l.fail("DOCSVC_LICENSE_PUBLIC_KEY", "the license and its public key must be set together",
			"set DOCSVC_LICENSE(_FILE) and DOCSVC_LICENSE_PUBLIC_KEY(_FILE) (the vendor's license.pub), or neither for an unlicensed development run")
	}

	c.LogLevel = slog.LevelInfo
	if v := l.str("DOCSVC_LOG_LEVEL", ""); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			l.fail("DOCSVC_LOG_LEVEL", show(v)+" is not a log level", "set debug, info, warn or error")
		}
	} else {
		l.sources["DOCSVC_LOG_LEVEL"] = SourceDefault
	}
}

// loadExtract reads the extraction limits. The default memory per document
// shares the worker's memory, less a reserve, among its concurrent jobs, so
// that every job at its cap at once still fits: 768MiB each for the default
// 2GiB and two jobs.
func (l *loader) loadExtract(c *Config) {
	c.WorkerMemory = l.size("DOCSVC_WORKER_MEMORY", 2<<30, 1<<30, 1<<40, "set the memory of the worker's task, e.g. 2GiB or 4096MiB")
	perJob := min(max((c.WorkerMemory-workerReserve)/int64(c.WorkerConcurrency), 64<<20), 2<<30) &^ (1<<20 - 1)
	c.Extract.MaxMemory = l.size("DOCSVC_EXTRACT_MAX_MEMORY", perJob, 16<<20, 4<<30, "set e.g. 512MiB (PDFium cannot use more than 4GiB)")
	c.Extract.Timeout = l.duration("DOCSVC_EXTRACT_TIMEOUT", 2*time.Minute, time.Second, time.Hour)
	c.Extract.MaxPages = l.intIn("DOCSVC_EXTRACT_MAX_PAGES", 5000, 1, 1_000_000)
	c.Extract.MaxText = l.size("DOCSVC_EXTRACT_MAX_TEXT", 32<<20, 1<<10, 1<<30, "set e.g. 32MiB")
	if c.Extract.CacheDir = l.str("DOCSVC_EXTRACT_CACHE_DIR", ""); c.Extract.CacheDir != "" && c.Extract.CacheDir != "off" && !filepath.IsAbs(c.Extract.CacheDir) {
		l.fail("DOCSVC_EXTRACT_CACHE_DIR", show(c.Extract.CacheDir)+" is not an absolute path", "set a directory such as /var/cache/docsvc, or off")
	}
	if l.failedOn("DOCSVC_WORKER_MEMORY") || l.failedOn("DOCSVC_EXTRACT_MAX_MEMORY") || l.failedOn("DOCSVC_WORKER_CONCURRENCY") {
		return
	}
	if need := int64(c.WorkerConcurrency)*c.Extract.MaxMemory + workerReserve; need > c.WorkerMemory {
		l.fail("DOCSVC_EXTRACT_MAX_MEMORY", fmt.Sprintf("%d jobs at once (DOCSVC_WORKER_CONCURRENCY) × %s each, plus %s for the worker itself, is %s, more than the worker's %s (DOCSVC_WORKER_MEMORY)",
			c.WorkerConcurrency, FormatSize(c.Extract.MaxMemory), FormatSize(workerReserve), FormatSize(need), FormatSize(c.WorkerMemory)),
			fmt.Sprintf("set DOCSVC_EXTRACT_MAX_MEMORY to at most %s, lower DOCSVC_WORKER_CONCURRENCY, or give the worker more memory and set DOCSVC_WORKER_MEMORY to match",
				FormatSize(max((c.WorkerMemory-workerReserve)/int64(c.WorkerConcurrency), 0)&^(1<<20-1))))
	}
}

// size reads a byte count within lo–hi (see ParseSize).
func (l *loader) size(name string, def, lo, hi int64, fix string) int64 {
	v := l.str(name, "")
	if v == "" {
		l.sources[name] = SourceDefault
		return def
	}
	n, err := ParseSize(v)
	if err != nil || n < lo || n > hi {
		l.fail(name, fmt.Sprintf("%s is not a size from %s to %s", show(v), FormatSize(lo), FormatSize(hi)), fix)
		return def
	}
	return n
}

// FormatSize shows a byte count in the largest binary unit that divides it.
func FormatSize(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// failedOn reports whether a problem was already recorded for name or its
// _FILE variant, so a bad secret is not also reported as missing.
func (l *loader) failedOn(name string) bool {
	for _, p := range l.problems {
		if p.Var == name || p.Var == name+"_FILE" {
			return true
		}
	}
	return false
}

// ParseSize reads a byte count: plain bytes ("1048576"), or a number with a
// decimal (KB, MB, GB) or binary (KiB, MiB, GiB) unit, case-insensitive.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errors.New("config: size must start with a number")
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("config: parse size: %w", err)
	}
	unit := strings.ToLower(strings.TrimSpace(s[i:]))
	mult := map[string]int64{
		"": 1, "b": 1,
		"kb": 1e3, "mb": 1e6, "gb": 1e9,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("config: unknown size unit %q", unit)
	}
	if n > (1<<63-1)/mult {
		return 0, errors.New("config: size overflows")
	}
	return n * mult, nil
}

// IsLoopback reports whether host (a name or IP, no port) is this machine.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isLoopbackURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && IsLoopback(u.Hostname())
}

// show quotes a non-secret value for a problem line, cut short so a
// mistakenly pasted blob does not flood the log.
func show(v string) string {
	const max = 80
	note := ""
	// A URL's password is a secret even in a variable that is not.
	if u, err := url.Parse(v); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.User(u.User.Username())
			v, note = u.String(), " (password removed)"
		}
	}
	if len(v) > max {
		v = v[:max] + "…"
	}
	return strconv.Quote(v) + note
}

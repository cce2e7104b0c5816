package analyze

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseReply(t *testing.T) {
	tests := []struct {
		name         string
		reply        string
		wantSummary  string
		wantKeywords []string
		wantErr      bool
	}{
		{
			name:         "plain object",
			reply:        `{"summary": "A contract.", "keywords": ["contract", "renewal"]}`,
			wantSummary:  "A contract.",
			wantKeywords: []string{"contract", "renewal"},
		},
		{
			name:         "code fence and leading text",
			reply:        "Sure! Here it is:\n```json\n{\"summary\": \"A contract.\", \"keywords\": [\"contract\"]}\n```\nHope that helps.",
			wantSummary:  "A contract.",
			wantKeywords: []string{"contract"},
		},
		{
			name:         "braces in leading text are skipped",
			reply:        `Format {x} noted. {"summary": "S.", "keywords": []}`,
			wantSummary:  "S.",
			wantKeywords: []string{},
		},
		{
			name:         "keywords as one string",
			reply:        `{"summary": "S.", "keywords": "alpha, beta ,alpha"}`,
			wantSummary:  "S.",
			wantKeywords: []string{"alpha", "beta"},
		},
		{
			name:         "keywords with non-strings",
			reply:        `{"summary": "S.", "keywords": ["alpha", 3, null, {"x": 1}, "beta"]}`,
			wantSummary:  "S.",
			wantKeywords: []string{"alpha", "beta"},
		},
		{
			name:         "keywords missing",
			reply:        `{"summary": "S."}`,
			wantSummary:  "S.",
			wantKeywords: []string{},
		},
		{
			name:         "whitespace collapsed, duplicates and blanks dropped",
			reply:        "{\"summary\": \"  Two\\nlines\\t here. \", \"keywords\": [\" Alpha \", \"alpha\", \"\", \"  \", \"#beta.\"]}",
			wantSummary:  "Two lines here.",
			wantKeywords: []string{"Alpha", "beta"},
		},
		{name: "empty reply", reply: "", wantErr: true},
		{name: "prose only", reply: "I cannot help with that.", wantErr: true},
		{name: "empty summary", reply: `{"summary": "", "keywords": ["a"]}`, wantErr: true},
		{name: "summary not a string", reply: `{"summary": ["a"], "keywords": ["a"]}`, wantErr: true},
		{name: "truncated JSON", reply: `{"summary": "A contract that`, wantErr: true},
		{name: "array", reply: `["summary"]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			summary, keywords, err := parseReply(tt.reply)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if summary != tt.wantSummary {
				t.Errorf("summary = %q, want %q", summary, tt.wantSummary)
			}
			if !slices.Equal(keywords, tt.wantKeywords) {
				t.Errorf("keywords = %q, want %q", keywords, tt.wantKeywords)
			}
		})
	}
}

func TestParseReplyBoundsOutput(t *testing.T) {
	long := strings.Repeat("word ", 2000)
	kws := make([]string, 0, 50)
	for i := range 50 {
		kws = append(kws, `"kw`+strings.Repeat("x", i)+`"`)
	}
	kws = append(kws, `"`+strings.Repeat("y", 500)+`"`)
	summary, keywords, err := parseReply(`{"summary": "` + long + `", "keywords": [` + strings.Join(kws, ",") + `]}`)
	if err != nil {
		t.Fatal(err)
	}
	checkBounded(t, Analysis{Summary: summary, Keywords: keywords})
	if len(keywords) != maxKeywords {
		t.Errorf("got %d keywords, want the first %d", len(keywords), maxKeywords)
	}
}

func TestParseReplyErrorNamesNoContent(t *testing.T) {
	_, _, err := parseReply(`CANARY-7731 {"summary": 1}`)
	if err == nil || strings.Contains(err.Error(), "CANARY") {
		t.Fatalf("err = %v, want an error that does not quote the reply", err)
	}
}

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{
		`{"summary": "S.", "keywords": ["a", "b"]}`,
		"```json\n{\"summary\": \"S.\", \"keywords\": \"a, b\"}\n```",
		`{"summary": "", "keywords": []}`,
		`{{{{{{`,
		`{"summary": "\u0000\ud800", "keywords": [1, "x"]}`,
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, reply string) {
		summary, keywords, err := parseReply(reply)
		if err != nil {
			if summary != "" || keywords != nil {
				t.Fatal("output alongside an error")
			}
			return
		}
		checkBounded(t, Analysis{Summary: summary, Keywords: keywords})
	})
}

func TestClassifyStatus(t *testing.T) {
	tests := []struct {
		status    int
		wantKind  error
		wantClass string
	}{
		{400, ErrRejected, "http_400"},
		{401, ErrAuth, "auth"},
		{403, ErrAuth, "auth"},
		{404, ErrAuth, "not_found"},
		{408, ErrUnavailable, "http_408"},
		{413, ErrRejected, "http_413"},
		{422, ErrRejected, "http_422"},
		{429, ErrUnavailable, "http_429"},
		{500, ErrUnavailable, "http_500"},
		{503, ErrUnavailable, "http_503"},
		{529, ErrUnavailable, "http_529"}, // Anthropic "overloaded"
		{302, ErrUnavailable, "http_other"},
		{999, ErrUnavailable, "http_other"},
	}
	for _, tt := range tests {
		kind, class := classifyStatus(tt.status)
		if kind != tt.wantKind || class != tt.wantClass {
			t.Errorf("classifyStatus(%d) = %v, %q; want %v, %q", tt.status, kind, class, tt.wantKind, tt.wantClass)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{" 2 ", 2 * time.Second},
		{"0", 0},
		{"-3", 0},
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0},
		{"99999999", time.Hour},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.header != "" {
			h.Set("Retry-After", tt.header)
		}
		if got := retryAfter(h); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}

func TestProviderErrorUnwraps(t *testing.T) {
	err := error(&ProviderError{Provider: "openai", Op: "chat completion", Class: "http_503", Kind: ErrUnavailable})
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrRejected) {
		t.Errorf("errors.Is mismatch for %v", err)
	}
	if got, want := err.Error(), "analyze: openai chat completion: http_503: analyze: provider unavailable"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestTruncateRunes(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"héllo", 2, "hé"},
		{"héllo", 5, "héllo"},
		{"héllo", 50, "héllo"},
		{"日本語", 1, "日"},
		{"abc", 0, ""},
	}
	for _, tt := range tests {
		if got := truncateRunes(tt.in, tt.n); got != tt.want {
			t.Errorf("truncateRunes(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

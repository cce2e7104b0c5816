package ctl

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Any typed answer to any question is either refused with a reason or
// recorded exactly: what is written back is read back as the same value,
// whatever quoting it needs.
func FuzzInitAnswer(f *testing.F) {
	for _, s := range []string{"acme-docs", "012345678901", "yes", "null", "- x", "a: b", "#x", "'q\"", "line\nline", " x ", "\x00", "é", "\xff"} {
		f.Add(uint8(0), s)
	}
	f.Add(uint8(4), "arn:aws:acm:eu-west-1:012345678901:certificate/12345678-1234-1234-1234-123456789012")
	questions := initQuestions()
	f.Fuzz(func(t *testing.T, which uint8, raw string) {
		q := questions[int(which)%len(questions)]
		if q.file {
			return // a path: reading files is not what this fuzzes
		}
		a := answers{"name": "acme-docs", "account": "012345678901", "region": "eu-west-1", "domain.name": "docs.acme.example",
			"auth.provider": "oidc", "ai.provider": "openai", "images.source": "vendor"}
		before, had := a[q.path]
		if problem := q.check(a, raw); problem != "" {
			if after, has := a[q.path]; has != had || after != before {
				t.Fatalf("refused %q (%s) but changed the answer kept to %q", raw, problem, after)
			}
			return
		}
		var doc map[string]any
		if err := yaml.Unmarshal(renderAnswers(questions, a, true), &doc); err != nil {
			t.Fatalf("accepted %q but wrote YAML that does not read back: %v", raw, err)
		}
		var v any = doc
		for _, p := range strings.Split(q.path, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%s: no mapping on the way to %s", q.path, p)
			}
			v = m[p]
		}
		if q.bool {
			if want, _ := q.value(raw); v != (want == "true") {
				t.Fatalf("%s: typed %q, read back %v", q.path, raw, v)
			}
			return
		}
		if got, _ := v.(string); got != raw {
			t.Fatalf("%s: typed %q, read back %q", q.path, raw, v)
		}
	})
}

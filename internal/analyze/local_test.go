package analyze

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLocal(t *testing.T) {
	report, err := os.ReadFile("testdata/report.txt")
	if err != nil {
		t.Fatal(err)
	}
	invoice, err := os.ReadFile("testdata/invoice.txt")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		text string
		// summaryHas are substrings the summary must contain, in order.
		summaryHas []string
		// summaryHasNot are sentences that must not be picked.
		summaryHasNot []string
		keywordsHave  []string
	}{
		{
			name:         "single short sentence",
			text:         "Hello world.",
			summaryHas:   []string{"Hello world."},
			keywordsHave: []string{"hello world"},
		},
		{
			name:         "order number",
			text:         "order 4471",
			summaryHas:   []string{"order 4471"},
			keywordsHave: []string{"order 4471"},
		},
		{
			name:         "number alone is a keyword only when nothing else is",
			text:         "4471",
			summaryHas:   []string{"4471"},
			keywordsHave: []string{"4471"},
		},
		{
			name:         "names and IDs keep their case, sentence-initial capitals do not",
			text:         "Shipping to Berlin today. We ship to Berlin weekly under contract INV-2024-001.",
			keywordsHave: []string{"Berlin today", "contract INV-2024-001", "shipping"},
		},
		{
			name: "report: central sentences in original order",
			text: string(report),
			summaryHas: []string{
				"European market",
				"European market expansion",
			},
			summaryHasNot: []string{"The next report is due in March."},
			keywordsHave:  []string{"European market"},
		},
		{
			name:         "invoice: lines are fields, so phrases do not cross them",
			text:         string(invoice),
			keywordsHave: []string{"invoice number", "INV-2024-001", "ACME Corp", "1,250.00 EUR"},
		},
		{
			name:         "abbreviations do not end sentences",
			text:         "Dr. Jones met Mr. J. Smith at the plant.",
			summaryHas:   []string{"Dr. Jones met Mr. J. Smith at the plant."},
			keywordsHave: []string{"Smith", "plant"},
		},
		{
			name:         "non-English text still gets a summary and keywords",
			text:         "Der Vertrag läuft bis Dezember. Die Kündigung erfolgt schriftlich.",
			summaryHas:   []string{"Vertrag"},
			keywordsHave: []string{"Vertrag", "Kündigung"},
		},
	}
	a := NewLocal()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.Analyze(context.Background(), tt.text)
			if err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			if got.Provider != "local" || got.Model == "" {
				t.Errorf("provider/model = %q/%q", got.Provider, got.Model)
			}
			checkBounded(t, got)
			rest := got.Summary
			for _, s := range tt.summaryHas {
				i := strings.Index(rest, s)
				if i < 0 {
					t.Errorf("summary %q lacks %q (or not in order)", got.Summary, s)
					break
				}
				rest = rest[i+len(s):]
			}
			for _, s := range tt.summaryHasNot {
				if strings.Contains(got.Summary, s) {
					t.Errorf("summary %q has %q", got.Summary, s)
				}
			}
			for _, k := range tt.keywordsHave {
				if !slices.Contains(got.Keywords, k) {
					t.Errorf("keywords %q lack %q", got.Keywords, k)
				}
			}
		})
	}
}

func TestLocalSummaryLength(t *testing.T) {
	a := NewLocal()
	tests := []struct {
		name          string
		sentences     int
		wantSentences int
	}{
		{"one", 1, 1},
		{"three", 3, 1},
		{"five", 5, 2},
		{"twenty", 20, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			for i := range tt.sentences {
				// Distinct sentences sharing a topic word so all score.
				b.WriteString("Pump station " + strings.Repeat("x", i+2) + " reported pressure readings. ")
			}
			got, err := a.Analyze(context.Background(), b.String())
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(got.Summary, "."); n != tt.wantSentences {
				t.Errorf("summary has %d sentences, want %d: %q", n, tt.wantSentences, got.Summary)
			}
		})
	}
}

func TestLocalLongSentenceIsCut(t *testing.T) {
	text := strings.Repeat("pressure valve ", 1000) + "failed."
	got, err := NewLocal().Analyze(context.Background(), text)
	if err != nil {
		t.Fatal(err)
	}
	if n := utf8.RuneCountInString(got.Summary); n > maxSentenceChars {
		t.Errorf("summary has %d chars, want <= %d", n, maxSentenceChars)
	}
	if !strings.HasSuffix(got.Summary, "…") {
		t.Errorf("cut summary should end with an ellipsis: %q", got.Summary[len(got.Summary)-10:])
	}
}

func TestLocalKeywordsNeverOnlyStopwords(t *testing.T) {
	a := NewLocal().(*localAnalyzer)
	for _, text := range []string{
		"It is what it is.",
		"The report of the board, and the minutes of the meeting, were filed.",
		"We will do it, if they would.",
	} {
		got, err := a.Analyze(context.Background(), text)
		if err != nil {
			t.Fatal(err)
		}
		if got.Summary == "" {
			t.Errorf("%q: empty summary", text)
		}
		for _, k := range got.Keywords {
			allStop := true
			for _, w := range strings.Fields(strings.ToLower(k)) {
				allStop = allStop && a.stop[w]
			}
			if allStop {
				t.Errorf("%q: keyword %q is only stopwords", text, k)
			}
		}
	}
}

func TestLocalNoText(t *testing.T) {
	for _, text := range []string{"", "   ", "\n\t\r\n"} {
		_, err := NewLocal().Analyze(context.Background(), text)
		if !errors.Is(err, ErrRejected) {
			t.Errorf("Analyze(%q) = %v, want ErrRejected", text, err)
		}
		if err != nil && !strings.Contains(err.Error(), "no text to analyze") {
			t.Errorf("error %q should say there is no text", err)
		}
	}
}

func TestLocalDeterministic(t *testing.T) {
	text, err := os.ReadFile("testdata/report.txt")
	if err != nil {
		t.Fatal(err)
	}
	first, err := NewLocal().Analyze(context.Background(), string(text))
	if err != nil {
		t.Fatal(err)
	}
	// Map iteration order differs run to run; many runs would expose any
	// dependence on it.
	for range 50 {
		got, err := NewLocal().Analyze(context.Background(), string(text))
		if err != nil {
			t.Fatal(err)
		}
		if got.Summary != first.Summary || !slices.Equal(got.Keywords, first.Keywords) {
			t.Fatalf("run differs:\n%q %q\nvs\n%q %q", got.Summary, got.Keywords, first.Summary, first.Keywords)
		}
	}
}

// checkBounded asserts the limits every analyzer's output keeps.
func checkBounded(t *testing.T, a Analysis) {
	t.Helper()
	if a.Summary == "" {
		t.Error("empty summary")
	}
	if n := utf8.RuneCountInString(a.Summary); n > maxSummaryChars {
		t.Errorf("summary has %d chars, want <= %d", n, maxSummaryChars)
	}
	if !utf8.ValidString(a.Summary) {
		t.Error("summary is not valid UTF-8")
	}
	if len(a.Keywords) > maxKeywords {
		t.Errorf("%d keywords, want <= %d", len(a.Keywords), maxKeywords)
	}
	for _, k := range a.Keywords {
		if k == "" || utf8.RuneCountInString(k) > maxKeywordChars || !utf8.ValidString(k) {
			t.Errorf("bad keyword %q", k)
		}
	}
}

func FuzzLocal(f *testing.F) {
	for _, s := range []string{
		"Hello world.",
		"order 4471",
		"Dr. J. Smith, e.g. 1,250.00 EUR... INV-2024-001!?",
		"line one\n\nline two\nline three",
		"日本語の文章です。二つ目の文。",
		"\xff\xfe invalid utf8 \x80",
		strings.Repeat("a-", 100),
		"# Title\n\n```go\nx := 1\n```\n| a | b |\n|---|---|\n| 1 | 2 |\n~~~\nunclosed",
		"|||\n```\n```\n- \n# ",
	} {
		f.Add(s)
	}
	a := NewLocal()
	f.Fuzz(func(t *testing.T, text string) {
		got, err := a.Analyze(context.Background(), text)
		if isBlank(text) {
			if !errors.Is(err, ErrRejected) {
				t.Fatalf("blank text: err = %v, want ErrRejected", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Analyze: %v", err)
		}
		checkBounded(t, got)
	})
}

// BenchmarkLocal measures the local analyzer on a realistic 100 KB document
// (the default input cap for providers) and on adversarial shapes, to show
// the cost stays linear: compare ns/op per byte across the cases.
func BenchmarkLocal(b *testing.B) {
	report, err := os.ReadFile("testdata/report.txt")
	if err != nil {
		b.Fatal(err)
	}
	cases := map[string]string{
		"report-100KB":          strings.Repeat(string(report)+"\n\n", 100_000/len(report)),
		"one-sentence-100KB":    strings.Repeat("pump valve ", 10_000),
		"initials-100KB":        strings.Repeat("J. ", 33_000),
		"newlines-spaces-100KB": strings.Repeat("\n"+strings.Repeat(" ", 99), 1000),
		"punctuation-100KB":     strings.Repeat("a.b, ", 20_000),
	}
	a := NewLocal()
	for _, name := range []string{"report-100KB", "one-sentence-100KB", "initials-100KB", "newlines-spaces-100KB", "punctuation-100KB"} {
		text := cases[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := a.Analyze(context.Background(), text); err != nil && !errors.Is(err, ErrRejected) {
					b.Fatal(err)
				}
			}
		})
	}
}

// A Markdown document's summary is prose: no code fences, table pipes or
// heading markers, even where the code and the table hold the document's
// most frequent words.
func TestLocalMarkdownSummaryIsProse(t *testing.T) {
	md := "# Pump station maintenance\n\n" +
		"The pump station maintenance schedule sets the inspection of every pump each quarter.\n\n" +
		"```sh\npump-station maintenance --pump all --inspect pump pump pump\n```\n\n" +
		"| pump | station | maintenance |\n|------|:-------:|-------------|\n| pump 1 | north station | pump maintenance done |\n| pump 2 | south station | pump maintenance due |\n\n" +
		"- Each pump inspection is logged by the station engineer.\n"
	a, err := NewLocal().Analyze(context.Background(), md)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"```", "|", "# ", "--inspect", "---"} {
		if strings.Contains(a.Summary, bad) {
			t.Errorf("summary %q contains markup %q", a.Summary, bad)
		}
	}
	if !strings.Contains(a.Summary, "maintenance schedule") {
		t.Errorf("summary %q misses the prose sentence", a.Summary)
	}
	for _, k := range a.Keywords {
		if strings.Contains(k, "inspect pump pump") || strings.HasPrefix(k, "-") {
			t.Errorf("keyword %q comes from the code block", k)
		}
	}

	// With nothing but code, the code is what there is to summarise.
	a, err = NewLocal().Analyze(context.Background(), "```\nmake install\n```\n")
	if err != nil {
		t.Fatal(err)
	}
	if a.Summary != "make install" {
		t.Errorf("code-only summary = %q, want the code without fences", a.Summary)
	}
}

package analyze

import (
	"cmp"
	"context"
	_ "embed"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The local analyzer needs no network and no model: it is the default, and
// what runs when a customer does not want text to leave their account at all.
// It is extractive and deterministic: the same text always gives the same
// Analysis.
//
//   - Summary: TF-IDF centrality. Each sentence is a TF-IDF vector over its
//     content words; the sentences closest (cosine) to the whole document's
//     vector are the most representative. The best one to three are kept in
//     their original order.
//   - Keywords: RAKE (Rose et al., 2010). Candidate phrases are runs of
//     content words between stopwords and punctuation; a word scores
//     degree/frequency (it favours words that appear inside longer phrases),
//     a phrase the sum of its words, weighted up by how often it recurs.

//go:embed stopwords_en.txt
var stopwordsEN string

const (
	localModel = "extractive-v1"
	// localMaxInputChars bounds the work per document; every step is linear
	// in the input, so this bounds time and memory.
	localMaxInputChars = 500_000
	maxSentenceChars   = 400 // a summary sentence longer than this is cut
	maxPhraseWords     = 3   // longer stopword-free runs are split into words
	maxTokenChars      = 40  // longer tokens (URLs, base64) never make keywords
)

type localAnalyzer struct {
	stop map[string]bool
	// abbrev holds abbreviations whose trailing period does not end a
	// sentence.
	abbrev map[string]bool
}

// NewLocal returns the offline analyzer.
func NewLocal() Analyzer {
	stop := make(map[string]bool)
	for _, line := range strings.Split(stopwordsEN, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			stop[line] = true
		}
	}
	abbrev := make(map[string]bool)
	for _, a := range []string{"mr", "mrs", "ms", "dr", "prof", "st", "vs", "e.g", "i.e", "inc", "ltd", "co", "jr", "sr", "no", "fig", "approx"} {
		abbrev[a] = true
	}
	return &localAnalyzer{stop: stop, abbrev: abbrev}
}

func (l *localAnalyzer) Name() string { return "local" }

func (l *localAnalyzer) Analyze(ctx context.Context, text string) (Analysis, error) {
	if isBlank(text) {
		return Analysis{}, errNoText
	}
	if err := ctx.Err(); err != nil {
		return Analysis{}, err
	}
	text = strings.ToValidUTF8(truncateRunes(text, localMaxInputChars), "\uFFFD")
	sentences := l.split(text)
	if len(sentences) == 0 { // only punctuation or symbols
		sentences = []sentence{{text: strings.TrimSpace(text)}}
	}
	// Code's identifiers make poor keywords, unless code is all there is.
	words := slices.DeleteFunc(slices.Clone(sentences), func(s sentence) bool { return s.markup == blockCode })
	if len(words) == 0 {
		words = sentences
	}
	return Analysis{
		Summary:  summarize(sentences),
		Keywords: l.keywords(words),
		Provider: "local",
		Model:    localModel,
	}, nil
}

// token is one word as it appears in a sentence.
type token struct {
	norm    string // lower case, curly apostrophes straightened
	surface string // as written
	stop    bool   // a stopword, a single letter, or too long to be a keyword
	numeric bool   // no letters at all
	// breakBefore is set when punctuation separates this token from the
	// previous one, which ends a RAKE candidate phrase.
	breakBefore bool
}

type sentence struct {
	text   string
	tokens []token
	// markup is a Markdown table row or code block: its words count
	// towards the summary's centre and (for tables) the keywords, but it is
	// no summary sentence, which should read as prose.
	markup blockKind
}

// blockKind classifies a run of lines of Markdown (or plain text, where
// the same shapes mean the same: a pasted table is not prose either).
type blockKind int

const (
	blockProse blockKind = iota
	blockTable           // lines with table pipes
	blockCode            // a fenced code block, fences included
)

type block struct {
	kind blockKind
	text string
}

// blocks cuts text into runs of prose, table rows and fenced code.
func blocks(text string) []block {
	var out []block
	add := func(k blockKind, line string) {
		if n := len(out); n > 0 && out[n-1].kind == k {
			out[n-1].text += line
			return
		}
		out = append(out, block{k, line})
	}
	fence := "" // the open fence ("```" or "~~~"), if inside one
	for line := range strings.Lines(text) {
		t := strings.TrimSpace(line)
		switch {
		case fence != "":
			add(blockCode, line)
			if strings.HasPrefix(t, fence) && strings.Trim(t, fence[:1]) == "" {
				fence = ""
			}
		case strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~"):
			fence = t[:3]
			add(blockCode, line)
		case strings.HasPrefix(t, "|") || strings.Count(t, "|") >= 2:
			add(blockTable, line)
		default:
			add(blockProse, line)
		}
	}
	return out
}

// tableCells turns a table row into its cells' text, separated by
// semicolons; a delimiter row (|---|:--:|) has none.
func tableCells(row string) string {
	var cells []string
	for c := range strings.SplitSeq(row, "|") {
		if c = strings.TrimSpace(c); strings.Trim(c, ":- ") != "" {
			cells = append(cells, c)
		}
	}
	return strings.Join(cells, "; ")
}

// proseLine drops the Markdown markers that start a heading, quote or list
// item, which are not part of the sentence.
func proseLine(s string) string {
	s = strings.TrimLeft(s, " \t")
	t := strings.TrimLeft(s, "#>")
	if t != s && (t == "" || t[0] == ' ') {
		return strings.TrimLeft(t, " ")
	}
	for _, bullet := range []string{"- ", "* ", "+ "} {
		if rest, ok := strings.CutPrefix(s, bullet); ok {
			return rest
		}
	}
	return s
}

// split cuts text into sentences and tokenises them. A sentence ends at .!?
// followed by white space (unless the period ends a known abbreviation or a
// single letter), or at a blank line, because extracted documents often have
// headings and list items with no final punctuation. Markdown tables become
// one sentence a row and fenced code one a block, both marked as markup.
func (l *localAnalyzer) split(text string) []sentence {
	var out []sentence
	for _, b := range blocks(text) {
		switch b.kind {
		case blockProse:
			out = l.splitProse(out, b.text)
		case blockTable:
			for row := range strings.Lines(b.text) {
				if toks := l.tokenize(tableCells(row)); len(toks) > 0 {
					out = append(out, sentence{text: tableCells(row), tokens: toks, markup: blockTable})
				}
			}
		case blockCode:
			var code []string
			for line := range strings.Lines(b.text) {
				if t := strings.TrimSpace(line); !strings.HasPrefix(t, "```") && !strings.HasPrefix(t, "~~~") {
					code = append(code, t)
				}
			}
			c := strings.Join(strings.Fields(strings.Join(code, " ")), " ")
			if toks := l.tokenize(c); len(toks) > 0 {
				out = append(out, sentence{text: c, tokens: toks, markup: blockCode})
			}
		}
	}
	return out
}

// splitProse appends the sentences of a run of prose lines to out.
func (l *localAnalyzer) splitProse(out []sentence, text string) []sentence {
	add := func(s string) {
		var lines []string
		for line := range strings.Lines(s) {
			lines = append(lines, proseLine(line))
		}
		s = strings.Join(lines, "")
		toks := l.tokenize(s)
		if len(toks) == 0 {
			return
		}
		out = append(out, sentence{text: strings.Join(strings.Fields(s), " "), tokens: toks})
	}
	start := 0
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		next := i + size
		switch {
		case r == '\n':
			// A blank line: newline, optional spaces, newline.
			j := next
			for j < len(text) && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r') {
				j++
			}
			if j < len(text) && text[j] == '\n' {
				add(text[start:i])
				start = j + 1
				next = j + 1
			}
		case r == '.' || r == '!' || r == '?' || r == '。' || r == '！' || r == '？':
			atEnd := next >= len(text)
			if !atEnd {
				nr, _ := utf8.DecodeRuneInString(text[next:])
				if !unicode.IsSpace(nr) && r < 0x3000 {
					break
				}
			}
			if r == '.' && l.endsWithAbbreviation(text[start:i]) {
				break
			}
			add(text[start:next])
			start = next
		}
		i = next
	}
	if start < len(text) {
		add(text[start:])
	}
	return out
}

func (l *localAnalyzer) endsWithAbbreviation(s string) bool {
	k := strings.LastIndexFunc(s, unicode.IsSpace)
	word := strings.ToLower(s[k+1:])
	if utf8.RuneCountInString(word) == 1 && unicode.IsLetter([]rune(word)[0]) {
		return true // an initial, as in "J. Smith"
	}
	return l.abbrev[word]
}

// isJoiner reports whether r may sit inside a token between two letters or
// digits: hyphenated words, contractions, IDs such as INV-2024-001, v1.2.
func isJoiner(r rune) bool {
	return r == '-' || r == '_' || r == '\'' || r == '’' || r == '.' || r == '/'
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)
}

func (l *localAnalyzer) tokenize(s string) []token {
	var toks []token
	sawBreak := false
	runes := []rune(s)
	for i := 0; i < len(runes); {
		if !isWordRune(runes[i]) {
			// Punctuation and line ends both end a keyword phrase: in
			// extracted forms a line is usually one field.
			if !unicode.IsSpace(runes[i]) || runes[i] == '\n' {
				sawBreak = true
			}
			i++
			continue
		}
		j := i + 1
		for j < len(runes) {
			if isWordRune(runes[j]) {
				j++
				continue
			}
			if j+1 < len(runes) && (isJoiner(runes[j]) && isWordRune(runes[j+1]) ||
				runes[j] == ',' && unicode.IsDigit(runes[j-1]) && unicode.IsDigit(runes[j+1])) {
				j += 2
				continue
			}
			break
		}
		surface := string(runes[i:j])
		norm := strings.ToLower(strings.ReplaceAll(surface, "’", "'"))
		hasLetter := strings.IndexFunc(norm, unicode.IsLetter) >= 0
		n := j - i
		if _, size := utf8.DecodeRuneInString(surface); len(toks) == 0 && surface[size:] == strings.ToLower(surface[size:]) {
			// A capital that only starts the sentence says nothing about
			// whether the word is a name.
			surface = strings.ToLower(surface)
		}
		toks = append(toks, token{
			norm:        norm,
			surface:     surface,
			stop:        l.stop[norm] || (n == 1 && hasLetter) || n > maxTokenChars,
			numeric:     !hasLetter,
			breakBefore: sawBreak,
		})
		sawBreak = false
		i = j
	}
	return toks
}

// summarize picks the most central sentences.
func summarize(sentences []sentence) string {
	n := len(sentences)
	// Term frequencies per sentence, and document frequencies.
	tfs := make([]map[string]float64, n)
	df := make(map[string]int)
	for i, s := range sentences {
		tf := make(map[string]float64)
		for _, t := range s.tokens {
			if !t.stop {
				tf[t.norm]++
			}
		}
		for w := range tf {
			df[w]++
		}
		tfs[i] = tf
	}
	idf := func(w string) float64 { return math.Log(1 + float64(n)/float64(df[w])) }
	centroid := make(map[string]float64)
	for _, tf := range tfs {
		for w, c := range tf {
			centroid[w] += c * idf(w)
		}
	}
	var cNorm float64
	for _, v := range centroid {
		cNorm += v * v
	}
	cNorm = math.Sqrt(cNorm)

	type scored struct {
		idx   int
		score float64
	}
	scores := make([]scored, n)
	for i, tf := range tfs {
		var dot, sNorm float64
		for w, c := range tf {
			v := c * idf(w)
			dot += v * centroid[w]
			sNorm += v * v
		}
		score := 0.0
		if sNorm > 0 && cNorm > 0 {
			score = dot / (math.Sqrt(sNorm) * cNorm)
		}
		// Very short sentences (headings, "Thanks.") are rarely the point,
		// however central their one word is.
		score *= math.Min(1, float64(len(tf))/4)
		scores[i] = scored{i, score}
	}
	// A summary reads as prose: tables and code count towards the centre
	// above, but are picked only when there is nothing else.
	if prose := slices.DeleteFunc(slices.Clone(scores), func(s scored) bool { return sentences[s.idx].markup != blockProse }); len(prose) > 0 {
		scores = prose
	}
	slices.SortStableFunc(scores, func(a, b scored) int { return cmp.Compare(b.score, a.score) })

	k := 1
	switch {
	case len(scores) > 8:
		k = 3
	case len(scores) > 3:
		k = 2
	}
	picked := make([]int, 0, k)
	for _, s := range scores[:k] {
		picked = append(picked, s.idx)
	}
	slices.Sort(picked)

	parts := make([]string, 0, k)
	for _, i := range picked {
		s := sentences[i].text
		if utf8.RuneCountInString(s) > maxSentenceChars {
			s = strings.TrimSpace(truncateRunes(s, maxSentenceChars-1)) + "…"
		}
		parts = append(parts, s)
	}
	return cleanSummary(strings.Join(parts, " "))
}

// keywords ranks RAKE candidate phrases.
func (l *localAnalyzer) keywords(sentences []sentence) []string {
	type phrase struct {
		words   []string // normalised
		key     string
		count   int
		first   int  // order of first appearance, for stable ties
		numeric bool // every word is a number
	}
	phrases := make(map[string]*phrase)
	var order []*phrase
	freq := make(map[string]float64)
	degree := make(map[string]float64)
	// lowerSeen records words written in lower case at least once: those are
	// shown in lower case; words only ever capitalised (names, acronyms, IDs)
	// keep their first written form.
	lowerSeen := make(map[string]bool)
	surface := make(map[string]string)

	var addCandidate func(run []token)
	addCandidate = func(run []token) {
		if len(run) == 0 {
			return
		}
		if len(run) > maxPhraseWords {
			for i := range run {
				addCandidate(run[i : i+1])
			}
			return
		}
		words := make([]string, len(run))
		numeric := true
		for i, t := range run {
			words[i] = t.norm
			numeric = numeric && t.numeric
		}
		key := strings.Join(words, " ")
		p, ok := phrases[key]
		if !ok {
			p = &phrase{words: words, key: key, first: len(order), numeric: numeric}
			phrases[key] = p
			order = append(order, p)
		}
		p.count++
		for _, w := range words {
			freq[w]++
			degree[w] += float64(len(words))
		}
	}
	for _, s := range sentences {
		var run []token
		for _, t := range s.tokens {
			if t.stop || t.breakBefore {
				addCandidate(run)
				run = run[:0:0]
			}
			if t.stop {
				continue
			}
			if t.surface == t.norm {
				lowerSeen[t.norm] = true
			}
			if _, ok := surface[t.norm]; !ok {
				surface[t.norm] = t.surface
			}
			run = append(run, t)
		}
		addCandidate(run)
	}

	score := func(p *phrase) float64 {
		var s float64
		for _, w := range p.words {
			s += degree[w] / freq[w]
		}
		return s * (1 + math.Log(float64(p.count)))
	}
	ranked := slices.Clone(order)
	slices.SortStableFunc(ranked, func(a, b *phrase) int {
		// Phrases with a word in them outrank bare numbers: "order 4471"
		// is a keyword, "4471" alone only when nothing else is.
		if a.numeric != b.numeric {
			if a.numeric {
				return 1
			}
			return -1
		}
		if c := cmp.Compare(score(b), score(a)); c != 0 {
			return c
		}
		return cmp.Compare(a.first, b.first)
	})

	var out []string
	var chosen [][]string
	for _, p := range ranked {
		if len(out) == maxKeywords {
			break
		}
		if p.numeric && len(out) > 0 {
			break
		}
		if overlaps(p.words, chosen) {
			continue
		}
		shown := make([]string, len(p.words))
		for i, w := range p.words {
			shown[i] = w
			if !lowerSeen[w] {
				shown[i] = surface[w]
			}
		}
		out = append(out, strings.Join(shown, " "))
		chosen = append(chosen, p.words)
	}
	return cleanKeywords(out)
}

// overlaps reports whether words run contiguously inside a phrase already
// chosen, or contain one, so "invoice" is not listed after "invoice number"
// (nor "invoice number" after "invoice").
func overlaps(words []string, chosen [][]string) bool {
	for _, q := range chosen {
		if contains(q, words) || contains(words, q) {
			return true
		}
	}
	return false
}

func contains(long, short []string) bool {
	for i := 0; i+len(short) <= len(long); i++ {
		if slices.Equal(long[i:i+len(short)], short) {
			return true
		}
	}
	return false
}

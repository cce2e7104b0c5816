package doccheck

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the repository's root, seen from this package's directory.
var root = filepath.Join("..", "..")

// document is one Markdown file, by its path from the repository's root.
type document struct {
	path string // slash-separated, from the root
	text string
}

// skipDirs are not documentation: tools and generated or vendored trees.
var skipDirs = map[string]bool{".git": true, "tools": true, "node_modules": true, "cdk.out": true, "testdata": true, ".tether-dev": true}

// repoFiles calls fn with the path (slash-separated, from the root) and
// text of every file of the repository whose name ends in suffix.
func repoFiles(t *testing.T, suffix string, fn func(path, text string)) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (skipDirs[d.Name()] || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, suffix) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fn(filepath.ToSlash(rel), string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// documents returns every Markdown document of the repository.
func documents(t *testing.T) []document {
	t.Helper()
	var docs []document
	repoFiles(t, ".md", func(path, text string) { docs = append(docs, document{path: path, text: text}) })
	if len(docs) < 10 {
		t.Fatalf("found only %d Markdown documents under %s", len(docs), root)
	}
	return docs
}

// block is one fenced code block.
type block struct {
	lang  string
	line  int // of its first line of content
	lines []string
}

var fenceRE = regexp.MustCompile("^\\s*(```+|~~~+)\\s*([A-Za-z0-9_+-]*)")

// split returns a document's fenced code blocks, and its text with their
// contents blanked (line breaks kept, so positions still give line numbers).
func split(text string) (blocks []block, prose string) {
	lines := strings.Split(text, "\n")
	out := make([]string, len(lines))
	var cur *block
	var fence string
	for i, l := range lines {
		m := fenceRE.FindStringSubmatch(l)
		switch {
		case cur == nil && m != nil:
			cur, fence = &block{lang: m[2], line: i + 2}, m[1]
		case cur != nil && m != nil && strings.HasPrefix(m[1], fence) && m[2] == "":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.lines = append(cur.lines, l)
		default:
			out[i] = l
		}
	}
	return blocks, strings.Join(out, "\n")
}

// span is one inline code span of the prose.
type span struct {
	line int
	text string
}

var spanRE = regexp.MustCompile("`([^`]+)`")

func spans(prose string) []span {
	var out []span
	for _, m := range spanRE.FindAllStringSubmatchIndex(prose, -1) {
		text := prose[m[2]:m[3]]
		// In a table a pipe inside code is written \|.
		text = strings.ReplaceAll(text, `\|`, "|")
		out = append(out, span{line: 1 + strings.Count(prose[:m[0]], "\n"), text: strings.Join(strings.Fields(text), " ")})
	}
	return out
}

// commands joins a block's continued lines (a trailing \, | or &&) and
// returns its commands with their line numbers: prompts ("$ ") and comments
// removed.
func commands(b block) []span {
	var out []span
	var cur strings.Builder
	start := 0
	for i, l := range b.lines {
		if cur.Len() == 0 {
			start = b.line + i
		}
		l = strings.TrimSpace(stripComment(strings.TrimPrefix(strings.TrimSpace(l), "$ ")))
		switch {
		case strings.HasSuffix(l, `\`):
			cur.WriteString(strings.TrimSuffix(l, `\`) + " ")
			continue
		case strings.HasSuffix(l, "|"), strings.HasSuffix(l, "&&"):
			// The command goes on on the next line.
			cur.WriteString(l + " ")
			continue
		}
		cur.WriteString(l)
		if c := strings.TrimSpace(cur.String()); c != "" {
			out = append(out, span{line: start, text: c})
		}
		cur.Reset()
	}
	return out
}

// stripComment removes a shell comment: a # at the start or after a blank,
// outside quotes.
func stripComment(s string) string {
	var quote rune
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return s[:i]
		}
	}
	return s
}

// words splits a command line as a shell would, without expanding anything:
// quotes are removed, and the operators that end a command (&&, ||, ;, |)
// become words of their own.
func words(s string) []string {
	var out []string
	var cur strings.Builder
	var quote rune
	inWord := false
	flush := func() {
		if inWord {
			out = append(out, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			flush()
		case r == ';' || r == '|' || r == '&':
			// A pipe inside a word (show|verify) is a documented alternative,
			// not an operator.
			if r == '|' && inWord && i+1 < len(rs) && rs[i+1] != ' ' && rs[i+1] != '|' {
				cur.WriteRune(r)
				continue
			}
			flush()
			op := string(r)
			if i+1 < len(rs) && (rs[i+1] == r) {
				op += string(r)
				i++
			}
			out = append(out, op)
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	flush()
	return out
}

// isOperator reports whether w ends a command.
func isOperator(w string) bool {
	switch w {
	case "&&", "||", ";", "|", "&":
		return true
	}
	return false
}

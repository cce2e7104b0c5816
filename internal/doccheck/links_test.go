package doccheck

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// pendingRunbooks are runbooks other changes write in parallel with the
// documents that link to them. A link to one is reported, not failed, while
// it is missing; once it exists, this list must lose it (the test says so).
// Merging the changes that write them empties it.
var pendingRunbooks = map[string]bool{}

// externalLinks are the only links that leave the repository, each with why
// the reader does not need it to install or run Tether.
var externalLinks = map[string]string{
	"https://theupdateframework.io/": "background on the update framework; docs/releases.md and docs/security.md say what Tether relies on",
}

var (
	inlineLinkRE = regexp.MustCompile(`!?\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refDefRE     = regexp.MustCompile(`(?m)^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(\s|$)`)
	autolinkRE   = regexp.MustCompile(`<(https?://[^>\s]+)>`)
	headingRE    = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	anchorTagRE  = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
	linkTextRE   = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// link is one link of a document's prose.
type link struct {
	line   int
	target string
}

func links(prose string) []link {
	// Code spans are not links.
	prose = spanRE.ReplaceAllStringFunc(prose, func(s string) string { return strings.Repeat(" ", len(s)) })
	var out []link
	add := func(re *regexp.Regexp, group int) {
		for _, m := range re.FindAllStringSubmatchIndex(prose, -1) {
			out = append(out, link{line: 1 + strings.Count(prose[:m[0]], "\n"), target: prose[m[2*group]:m[2*group+1]]})
		}
	}
	add(inlineLinkRE, 2)
	add(refDefRE, 1)
	add(autolinkRE, 1)
	return out
}

// anchors are the fragments a document answers: GitHub's slugs of its
// headings, and explicit anchors.
func anchors(text string) map[string]bool {
	_, prose := split(text)
	out := map[string]bool{}
	seen := map[string]int{}
	for _, l := range strings.Split(prose, "\n") {
		if m := headingRE.FindStringSubmatch(l); m != nil {
			s := slug(m[1])
			if n := seen[s]; n > 0 {
				out[fmt.Sprintf("%s-%d", s, n)] = true
			} else {
				out[s] = true
			}
			seen[s]++
		}
		for _, m := range anchorTagRE.FindAllStringSubmatch(l, -1) {
			out[m[1]] = true
		}
	}
	return out
}

// slug is GitHub's anchor for a heading: link text kept, lower case, spaces
// to hyphens, and every other character that is not a letter, digit, hyphen
// or underscore dropped.
func slug(heading string) string {
	heading = linkTextRE.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Every link between documents resolves, to a file of the repository and,
// with a fragment, to a heading of that document; no document links outside
// the repository except to the few pages externalLinks names.
func TestLinksResolve(t *testing.T) {
	docs := documents(t)
	byPath := map[string]document{}
	for _, d := range docs {
		byPath[d.path] = d
	}
	for p := range pendingRunbooks {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s exists now: remove it from pendingRunbooks, so that links to it are checked", p)
		}
	}
	checked := 0
	for _, d := range docs {
		_, prose := split(d.text)
		for _, l := range links(prose) {
			where := fmt.Sprintf("%s:%d", d.path, l.line)
			target := l.target
			switch {
			case strings.HasPrefix(target, "http://"), strings.HasPrefix(target, "https://"), strings.HasPrefix(target, "mailto:"):
				if _, ok := externalLinks[target]; !ok {
					t.Errorf("%s: %s leaves the repository: put what the reader needs in the documents, or add it to externalLinks with why it is not needed", where, target)
				}
				continue
			case strings.Contains(target, "://"):
				t.Errorf("%s: %s: not a link within the repository", where, target)
				continue
			}
			checked++
			file, frag, _ := strings.Cut(target, "#")
			dest := d.path
			if file != "" {
				dest = path.Clean(path.Join(path.Dir(d.path), file))
				if strings.HasPrefix(dest, "../") {
					t.Errorf("%s: %s points outside the repository", where, target)
					continue
				}
				if pendingRunbooks[dest] {
					if _, err := os.Stat(filepath.Join(root, dest)); err != nil {
						t.Logf("%s: %s: pending (written by another change)", where, target)
						continue
					}
				}
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(dest))); err != nil {
					t.Errorf("%s: %s: no such file %s", where, target, dest)
					continue
				}
			}
			if frag == "" {
				continue
			}
			td, ok := byPath[dest]
			if !ok {
				if strings.HasSuffix(dest, ".md") {
					t.Errorf("%s: %s: %s is not a document this test reads", where, target, dest)
				}
				continue
			}
			if !anchors(td.text)[frag] {
				t.Errorf("%s: %s: %s has no heading with the anchor #%s", where, target, dest, frag)
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d links within the repository found: the parser missed them", checked)
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"12. Support from your workstation":                                 "12-support-from-your-workstation",
		"Putting the images in your ECR: `tetherctl images push`":           "putting-the-images-in-your-ecr-tetherctl-images-push",
		"What the vendor can and cannot see":                                "what-the-vendor-can-and-cannot-see",
		"The agent exchange bucket (support)":                               "the-agent-exchange-bucket-support",
		"Bring your data back after `destroy`":                              "bring-your-data-back-after-destroy",
		"[`deploy/cdk`](../deploy/cdk/README.md) stacks — one region, only": "deploycdk-stacks--one-region-only",
	} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}

// promiseRE finds a document promising what does not exist: the documents
// say what is true today and what is decided, never what is planned.
var promiseRE = regexp.MustCompile(`(?i)\b(planned|coming soon|on the roadmap|will be (added|supported))\b`)

func TestNoPromises(t *testing.T) {
	for _, d := range documents(t) {
		for i, l := range strings.Split(d.text, "\n") {
			if m := promiseRE.FindString(l); m != "" {
				t.Errorf("%s:%d: %q: say what exists today, or what a decision record decided", d.path, i+1, m)
			}
		}
	}
}

var docNameRE = regexp.MustCompile(`\bdocs/[A-Za-z0-9_./-]+\.md\b`)

// Every document the code names (in help texts, hints, errors, comments)
// exists, so that a moved document cannot leave a command pointing at
// nothing.
func TestCodeNamesExistingDocuments(t *testing.T) {
	named := 0
	repoFiles(t, ".go", func(p, text string) {
		for i, l := range strings.Split(text, "\n") {
			for _, name := range docNameRE.FindAllString(l, -1) {
				named++
				if pendingRunbooks[name] {
					continue
				}
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(name))); err != nil {
					t.Errorf("%s:%d names %s, which does not exist", p, i+1, name)
				}
			}
		}
	})
	if named < 10 {
		t.Errorf("the code names only %d documents: the search missed them", named)
	}
}

var testNameRE = regexp.MustCompile(`\bTest[A-Z][A-Za-z0-9_]*\b`)

// Every test a document names exists: the documents point readers at tests
// as proof (security.md's enforcements, the rollback runbook), so a renamed
// test must not leave them citing nothing.
func TestNamedTestsExist(t *testing.T) {
	defined := map[string]bool{}
	funcRE := regexp.MustCompile(`(?m)^func (Test[A-Za-z0-9_]*)\(`)
	repoFiles(t, "_test.go", func(_, text string) {
		for _, m := range funcRE.FindAllStringSubmatch(text, -1) {
			defined[m[1]] = true
		}
	})
	named := 0
	for _, d := range documents(t) {
		for i, l := range strings.Split(d.text, "\n") {
			for _, name := range testNameRE.FindAllString(l, -1) {
				// In a -run pattern ("-run 'TestAgent|...'") a name is a
				// prefix: a prefix of a defined test counts there.
				named++
				if !defined[name] && !(strings.Contains(l, "-run") && prefixOfAny(name, defined)) {
					t.Errorf("%s:%d names %s, which no test file defines", d.path, i+1, name)
				}
			}
		}
	}
	if named < 10 {
		t.Errorf("the documents name only %d tests: the search missed them", named)
	}
}

func prefixOfAny(prefix string, names map[string]bool) bool {
	for n := range names {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

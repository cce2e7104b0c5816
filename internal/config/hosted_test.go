package config_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// allowedHosts are the only hosts a non-test string literal may name. Any
// other deployment-specific host belongs in configuration, not in code.
var allowedHosts = []struct {
	host   string // exact host, or a suffix when it starts with "."
	reason string
}{
	{"localhost", "this machine"},
	{"example.com", "RFC 2606 documentation domain"},
	{".example.com", "RFC 2606 documentation domain"},
	{"example.org", "RFC 2606 documentation domain"},
	{".example.org", "RFC 2606 documentation domain"},
	{"example.net", "RFC 2606 documentation domain"},
	{".example.net", "RFC 2606 documentation domain"},
	{".invalid", "RFC 2606 TLD that never resolves"},
	{".test", "RFC 2606 TLD reserved for testing"},
	{"schemas.openxmlformats.org", "DOCX XML namespace name, an identifier never fetched"},
	{"schemas.microsoft.com", "Office XML namespace name, never fetched"},
	{"www.w3.org", "XML/HTML/SVG namespace name, never fetched"},
	{"purl.org", "Dublin Core namespace in DOCX core properties, never fetched"},
	{"nodejs.org", "where to install Node.js, in the fix an error names; never fetched"},
	{"docs.aws.amazon.com", "AWS documentation cited in the fix an error names; never fetched"},
}

// partitionSuffixes are the AWS partitions' DNS suffixes: a literal that is
// exactly one names a partition, not an endpoint (tetherctl builds the S3
// URL CloudFormation reads a large template from with it, as the CDK CLI
// does; the region comes from configuration).
var partitionSuffixes = map[string]bool{"amazonaws.com": true, "amazonaws.com.cn": true}

var (
	urlInLiteral   = regexp.MustCompile(`(?i)https?://[^\s"'\x60]*`)
	emailInLiteral = regexp.MustCompile(`[A-Za-z0-9._%+-]+@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})`)
	// An IAM service principal ("ecs-tasks.amazonaws.com") names a service,
	// not an endpoint, and the CDK app needs them; anything else under
	// amazonaws.com is an endpoint the SDK should derive from the region.
	servicePrincipal = regexp.MustCompile(`^[a-z0-9-]+\.amazonaws\.com$`)
	emailDomainOK    = regexp.MustCompile(`(?i)(^|\.)example\.(com|org|net)$`)
)

// urlHost extracts the host from scheme://[user@]host[:port][/...]. It does
// not use url.Parse, which rejects format templates such as "http://%s/".
func urlHost(u string) string {
	_, rest, _ := strings.Cut(strings.TrimRight(u, ".,;:)]"), "://")
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	if strings.HasPrefix(rest, "[") {
		host, _, _ := strings.Cut(rest[1:], "]")
		return host
	}
	host, _, _ := strings.Cut(rest, ":")
	return host
}

func hostAllowed(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	// An empty or templated host ("https://" + host, "https://%s/") is filled
	// in from configuration at run time.
	if host == "" || strings.ContainsAny(host, "%{$") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	for _, a := range allowedHosts {
		if host == a.host || strings.HasPrefix(a.host, ".") && strings.HasSuffix(host, a.host) {
			return true
		}
	}
	return false
}

// hostedValues reports every string literal in one Go source file that names
// a hosted service, an AWS endpoint, or a real email address.
func hostedValues(filename string, src []byte) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filename, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var found []string
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil {
			return true
		}
		var why []string
		for _, m := range urlInLiteral.FindAllString(s, -1) {
			if h := urlHost(m); !hostAllowed(h) {
				why = append(why, "hosted URL "+h)
			}
		}
		if strings.Contains(strings.ToLower(s), "amazonaws.com") && !servicePrincipal.MatchString(s) && !partitionSuffixes[s] && len(why) == 0 {
			why = append(why, "AWS endpoint")
		}
		for _, m := range emailInLiteral.FindAllStringSubmatch(s, -1) {
			if !emailDomainOK.MatchString(m[1]) {
				why = append(why, "email address @"+m[1])
			}
		}
		if len(why) > 0 {
			found = append(found, fmt.Sprintf("%s: %s in %.80q", fset.Position(lit.Pos()), strings.Join(why, ", "), s))
		}
		return true
	})
	return found, nil
}

// TestNoHostedValues keeps deployment-specific values out of code: every
// host, endpoint and sender address must come from configuration, so one
// build runs in any customer's account. It reads string literals, not
// comments, so documentation may still cite real hosts.
func TestNoHostedValues(t *testing.T) {
	root := moduleRoot(t)
	skipDirs := map[string]bool{
		"testdata": true, "docs": true, "node_modules": true, "cdk.out": true,
	}
	files := 0
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
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		found, err := hostedValues(rel, src)
		if err != nil {
			t.Errorf("parse %s: %v", rel, err)
			return nil
		}
		files++
		for _, f := range found {
			t.Errorf("%s (move it to configuration, or add it to allowedHosts with a reason)", f)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 {
		t.Fatalf("checked only %d files under %s; is the walk broken?", files, root)
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/tetherhq/tether\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("module root not found above the working directory")
		}
		dir = parent
	}
}

// TestHostedValuesDetector shows the check can fail, and that it reads
// literals only.
func TestHostedValuesDetector(t *testing.T) {
	tests := []struct {
		name, src string
		want      int
	}{
		{"hosted URL", `var u = "https://api.openai.com/v1"`, 1},
		{"AWS endpoint without scheme", `var u = "sqs.us-east-1.amazonaws.com"`, 1},
		{"AWS endpoint URL", `var u = "https://s3.amazonaws.com/b"`, 1},
		{"AWS endpoint template", `var u = "not an https://sqs.<region>.amazonaws.com URL"`, 1},
		{"real email", `var e = "ops@acme.io"`, 1},
		{"raw string", "var u = `see http://evil.example.co.uk/x`", 1},
		{"comment only", "// https://api.openai.com/v1 ops@acme.io\nvar x = 1", 0},
		{"loopback and docs", `var a = []string{"http://127.0.0.1:8080", "http://[::1]:1/x", "https://docs.example.com", "http://localhost/"}`, 0},
		{"reserved TLDs", `var a = []string{"https://idp.test/", "http://x.invalid"}`, 0},
		{"namespaces", `var a = []string{"http://schemas.openxmlformats.org/wordprocessingml/2006/main", "http://www.w3.org/1999/xhtml", "http://purl.org/dc/elements/1.1/"}`, 0},
		{"service principal", `var p = "ecs-tasks.amazonaws.com"`, 0},
		{"templated host", `var f = "https://%s/v1"; var g = "http://" + "x"; var h = "Web: http://%[1]s/"`, 0},
		{"example email", `var e = "Docs <docs@example.com>"`, 0},
		{"struct tag", "type T struct{ A string `json:\"a\"` }", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			found, err := hostedValues("x.go", []byte("package x\n"+tt.src+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != tt.want {
				t.Fatalf("found %d %q, want %d", len(found), found, tt.want)
			}
		})
	}
}

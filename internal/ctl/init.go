package ctl

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/tetherhq/tether/internal/atomicfile"
	"github.com/tetherhq/tether/internal/deployconfig"
)

const initUsage = `tetherctl init — write deployment.yaml by answering questions, or from flags

Usage:
  tetherctl init [--config deployment.yaml] [--yes] [--force] [--name N] [--account A] [--region R] ...

On a terminal, asks for each setting in turn, showing its default in
[brackets] (Enter takes it), and checks each answer as it is typed with the
same rules tetherctl and the CDK app apply to deployment.yaml; a wrong
answer is explained and asked again. A flag given on the command line
becomes that question's default.

When standard input is not a terminal, or with --yes, nothing is asked:
every answer comes from its flag or its default, and all problems are
reported at once, each naming its flag.

The trusted root and the license public key are asked for as file paths
(the vendor's root.json and license.pub); their content goes into the file.
The whole file is checked again before it is written, in one step, so a
failed run leaves nothing behind. An existing file is never replaced
without --force. init calls no AWS API. docs/deployment-config.md
describes every field; sizing and the other settings not asked for keep
their documented defaults and can be added to the file by hand.

Exit status: 0 when the file was written, 2 for a wrong answer given by
flag or an existing file, 1 otherwise.

Flags:
`

// maxAnswerFile bounds a file named as an answer (root.json, license.pub):
// both are a few KiB; deployment.yaml itself is bounded by deployconfig.
const maxAnswerFile = 64 << 10

// question is one setting init asks for. Its answer is stored under path,
// the field's place in deployment.yaml, which is also how deployconfig
// names it in a problem.
type question struct {
	path string
	flag string
	text string                         // the question, as asked
	def  func(a answers, e Env) string  // the default; nil for none
	when func(a answers) bool           // whether it is asked; nil for always
	file bool                           // the answer names a file whose content is the value
	bool bool                           // the answer is yes or no, written as true or false
	keep func(a answers, v string) bool // whether an empty answer is still written (nil: only non-empty)
}

// answers maps deployment.yaml field paths to values.
type answers map[string]string

func hasCert(a answers) bool { return a["domain.certificate_arn"] != "" }

// initQuestions are asked in this order, which is also the file's order.
func initQuestions() []question {
	is := func(path, want string) func(answers) bool { return func(a answers) bool { return a[path] == want } }
	return []question{
		{path: "name", flag: "name", text: "Deployment name (prefixes every stack and resource; 3–24 lowercase letters, digits, '-')"},
		{path: "account", flag: "account", text: "AWS account ID (12 digits)"},
		{path: "region", flag: "region", text: "AWS region",
			def: func(_ answers, e Env) string { return firstEnv(e.Getenv, "AWS_REGION", "AWS_DEFAULT_REGION") }},
		{path: "domain.name", flag: "domain", text: "Host name users reach the service on (e.g. docs.example.com)"},
		{path: "domain.certificate_arn", flag: "certificate-arn", text: "ACM certificate ARN for that name (empty: the stack requests one, validated in a Route 53 hosted zone)"},
		{path: "domain.hosted_zone.id", flag: "hosted-zone-id", text: "Route 53 public hosted zone ID holding the name",
			when: func(a answers) bool { return !hasCert(a) }, keep: func(answers, string) bool { return true }},
		{path: "domain.hosted_zone.name", flag: "hosted-zone-name", text: "That hosted zone's domain name",
			when: func(a answers) bool { return !hasCert(a) }, keep: func(answers, string) bool { return true },
			def: func(a answers, _ Env) string {
				if _, parent, ok := strings.Cut(a["domain.name"], "."); ok && strings.Contains(parent, ".") {
					return parent
				}
				return a["domain.name"]
			}},
		{path: "auth.provider", flag: "auth-provider", text: "Sign-in: oidc (your identity provider) or cognito (the stack creates a user pool)",
			def: func(answers, Env) string { return deployconfig.AuthOIDC }},
		{path: "auth.issuer", flag: "oidc-issuer", text: "OIDC issuer URL", when: is("auth.provider", deployconfig.AuthOIDC)},
		{path: "auth.client_id", flag: "oidc-client-id", text: "OIDC client ID registered for this service", when: is("auth.provider", deployconfig.AuthOIDC)},
		{path: "auth.cognito_domain_prefix", flag: "cognito-domain-prefix", text: "Cognito sign-in domain prefix (unique in the region)",
			when: is("auth.provider", deployconfig.AuthCognito),
			def:  func(a answers, _ Env) string { return a["name"] }},
		{path: "email_sender", flag: "email-sender", text: "Address notifications are sent from",
			def: func(a answers, _ Env) string {
				if z := a["domain.hosted_zone.name"]; z != "" {
					return "noreply@" + z
				}
				return "noreply@" + a["domain.name"]
			}},
		{path: "ai.provider", flag: "ai-provider", text: "AI provider: local, openai, anthropic or bedrock",
			def: func(answers, Env) string { return deployconfig.AILocal }},
		{path: "ai.model", flag: "ai-model", text: "AI model name",
			when: func(a answers) bool { return a["ai.provider"] != deployconfig.AILocal }},
		{path: "ai.base_url", flag: "ai-base-url", text: "AI endpoint base URL (required for openai; empty for Anthropic's default)",
			when: func(a answers) bool {
				return a["ai.provider"] == deployconfig.AIOpenAI || a["ai.provider"] == deployconfig.AIAnthropic
			},
			keep: func(a answers, _ string) bool { return a["ai.provider"] == deployconfig.AIOpenAI }},
		{path: "images.source", flag: "image-source", text: "Images: vendor (copied from the vendor's registry) or build (built in your account)",
			def: func(answers, Env) string { return deployconfig.ImagesVendor }},
		{path: "images.vendor_registry", flag: "vendor-registry", text: "Vendor registry and path to copy images from",
			when: is("images.source", deployconfig.ImagesVendor)},
		{path: "images.docsvc_digest", flag: "docsvc-digest", text: "docsvc image digest sha256:… for the first install (empty: the release's)"},
		{path: "images.agent_digest", flag: "agent-digest", text: "agent image digest sha256:… for the first install (empty: the release's)"},
		{path: "plane.url", flag: "plane-url", text: "Vendor plane URL (empty: air-gapped)"},
		{path: "plane.channel", flag: "channel", text: "Release channel",
			def: func(answers, Env) string { return deployconfig.DefaultChannel }},
		{path: "agent.telemetry", flag: "telemetry", text: "Let the agent send daily aggregate usage counts to the vendor (yes/no)", bool: true,
			def: func(answers, Env) string { return "no" }, keep: func(answers, string) bool { return true }},
		{path: "agent.diagnostics_approval", flag: "diagnostics-approval", text: "Diagnostics bundles: manual (you approve each) or automatic",
			def: func(answers, Env) string { return deployconfig.DiagnosticsManual }},
		{path: "plane.trusted_root", flag: "trusted-root", text: "Path to the vendor's root.json (trusted root)", file: true},
		{path: "license.public_key", flag: "license-public-key", text: "Path to the vendor's license.pub (license public key)", file: true},
		{path: "observability.alarm_email", flag: "alarm-email", text: "Address alarm notifications go to (empty: none)"},
		{path: "cdk.qualifier", flag: "cdk-qualifier", text: "CDK bootstrap qualifier (empty: the CDK's default)"},
	}
}

func initCmd(ctx context.Context, args []string, env Env) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	configPath := fs.String("config", "./deployment.yaml", "where to write `deployment.yaml`")
	yes := fs.Bool("yes", false, "ask nothing: take every answer from its flag or its default")
	force := fs.Bool("force", false, "replace an existing file")
	questions := initQuestions()
	given := map[string]*string{}
	for _, q := range questions {
		what := q.path
		if q.file {
			what += " (a file `path`; its content is written)"
		}
		given[q.flag] = fs.String(q.flag, "", what)
	}
	if help, err := parseFlagsOnly(env, fs, args, initUsage+flagHelp(fs)); help || err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if _, err := os.Lstat(*configPath); err == nil && !*force {
		return fmt.Errorf("%w: --config %s already exists; pass --force to replace it, or another --config path", errUsage, *configPath)
	}

	var a answers
	var problems []string
	if f, ok := env.Stdin.(*os.File); ok && !*yes && term.IsTerminal(int(f.Fd())) {
		var err error
		if a, err = askAll(ctx, env, questions, given, set); err != nil {
			return err
		}
	} else {
		a, problems = answersFromFlags(env, questions, given, set)
	}
	data := renderAnswers(questions, a, false)
	if _, err := deployconfig.Parse(data); err != nil {
		problems = append(problems, withFlags(questions, err)...)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: tetherctl init: nothing was written:\n  %s", errUsage, strings.Join(problems, "\n  "))
	}
	if err := atomicfile.Write(*configPath, data, 0o644); err != nil {
		return fmt.Errorf("tetherctl init: writing %s: %w", *configPath, err)
	}
	fmt.Fprintf(env.Stdout, "Wrote %s for %s (account %s, region %s).\nNext: tetherctl preflight --config %s\n",
		*configPath, a["name"], a["account"], a["region"], *configPath)
	return nil
}

// answersFromFlags takes each asked-for answer from its flag or default,
// and lists the flags that could not be used.
func answersFromFlags(env Env, questions []question, given map[string]*string, set map[string]bool) (answers, []string) {
	a := answers{}
	var problems []string
	for _, q := range questions {
		if q.when != nil && !q.when(a) {
			if set[q.flag] {
				problems = append(problems, fmt.Sprintf("--%s: not used with these answers (%s); remove it", q.flag, q.path))
			}
			continue
		}
		raw := q.defaultValue(a, env, given, set)
		v, err := q.value(raw)
		if err != nil {
			problems = append(problems, fmt.Sprintf("--%s: %v", q.flag, err))
			continue
		}
		a[q.path] = v
	}
	return a, problems
}

// askAll asks each question on the terminal until its answer is valid.
func askAll(ctx context.Context, env Env, questions []question, given map[string]*string, set map[string]bool) (answers, error) {
	in := bufio.NewReader(env.Stdin)
	a := answers{}
	fmt.Fprintf(env.Stderr, "Describe the deployment (docs/deployment-config.md explains each field). Enter takes the [default].\n\n")
	for _, q := range questions {
		if q.when != nil && !q.when(a) {
			continue
		}
		def := q.defaultValue(a, env, given, set)
		for {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if def != "" {
				fmt.Fprintf(env.Stderr, "%s [%s]: ", q.text, def)
			} else {
				fmt.Fprintf(env.Stderr, "%s: ", q.text)
			}
			line, err := in.ReadString('\n')
			if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
				fmt.Fprintln(env.Stderr)
				return nil, fmt.Errorf("tetherctl init: no answer for %s (%v); nothing was written", q.path, err)
			}
			raw := strings.TrimSpace(line)
			if raw == "" {
				raw = def
			}
			problem := q.check(a, raw)
			if problem == "" {
				break
			}
			fmt.Fprintf(env.Stderr, "  %s\n", problem)
		}
	}
	fmt.Fprintln(env.Stderr)
	return a, nil
}

// check judges one answer in the context of the earlier ones, with the
// same rules as deployconfig (it renders the answers so far and parses
// them), and records it in a if it is good, else leaves a as it was. It
// returns the problem, or "".
func (q question) check(a answers, raw string) string {
	v, err := q.value(raw)
	if err != nil {
		return err.Error()
	}
	before, had := a[q.path]
	a[q.path] = v
	if problems := fieldProblems(renderAnswers(initQuestions(), a, true), q.path); len(problems) > 0 {
		if had {
			a[q.path] = before
		} else {
			delete(a, q.path)
		}
		return strings.Join(problems, "\n  ")
	}
	return ""
}

// defaultValue is the flag's value when given, else the question's default.
func (q question) defaultValue(a answers, env Env, given map[string]*string, set map[string]bool) string {
	if set[q.flag] {
		return *given[q.flag]
	}
	if q.def != nil {
		return q.def(a, env)
	}
	return ""
}

// value turns a typed answer into the field's value: for a file question
// it reads the file named.
func (q question) value(raw string) (string, error) {
	if q.bool {
		switch strings.ToLower(raw) {
		case "y", "yes", "true":
			return "true", nil
		case "n", "no", "false":
			return "false", nil
		}
		return "", fmt.Errorf("%s: %q is not yes or no", q.path, truncateText(raw, 40))
	}
	if !q.file || raw == "" {
		return raw, typedProblem(q.path, raw)
	}
	f, err := os.Open(raw)
	if err != nil {
		return "", fmt.Errorf("%s: %v; give the path of the file the vendor sent", q.path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxAnswerFile+1))
	if err != nil {
		return "", fmt.Errorf("%s: reading %s: %v", q.path, raw, err)
	}
	if len(b) > maxAnswerFile {
		return "", fmt.Errorf("%s: %s is larger than %d bytes; is it the right file?", q.path, raw, maxAnswerFile)
	}
	if !utf8.Valid(b) || bytes.ContainsRune(b, 0) {
		return "", fmt.Errorf("%s: %s is not UTF-8 text; is it the right file?", q.path, raw)
	}
	return string(b), nil
}

// typedProblem refuses what no field takes and YAML cannot carry: invalid
// UTF-8 and control characters.
func typedProblem(path, raw string) error {
	if !utf8.ValidString(raw) {
		return fmt.Errorf("%s: the answer is not valid UTF-8 text; type it again", path)
	}
	if i := strings.IndexFunc(raw, unicode.IsControl); i >= 0 {
		return fmt.Errorf("%s: the answer holds a control character (%U); type it again", path, []rune(raw[i:])[0])
	}
	return nil
}

// fieldProblems parses a rendered deployment.yaml and returns
// deployconfig's problems with the field at path.
func fieldProblems(data []byte, path string) []string {
	_, err := deployconfig.Parse(data)
	var cfgErr *deployconfig.Error
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &cfgErr):
		return []string{err.Error()}
	}
	var out []string
	for _, p := range cfgErr.Problems {
		if strings.HasPrefix(p, path+": ") {
			out = append(out, p)
		}
	}
	return out
}

// withFlags lists deployconfig's problems, each followed by the flag that
// sets its field.
func withFlags(questions []question, err error) []string {
	var cfgErr *deployconfig.Error
	if !errors.As(err, &cfgErr) {
		return []string{err.Error()}
	}
	out := make([]string, 0, len(cfgErr.Problems))
	for _, p := range cfgErr.Problems {
		path, _, _ := strings.Cut(p, ": ")
		for _, q := range questions {
			if q.path == path {
				p += " (--" + q.flag + ")"
			}
		}
		out = append(out, p)
	}
	return out
}

// renderAnswers writes the answers as deployment.yaml, in question order.
// Empty answers are left out unless the question keeps them, or all is set
// (which validation uses, so that a required field answered empty is
// reported as required rather than missing from its parent).
func renderAnswers(questions []question, a answers, all bool) []byte {
	root := &yaml.Node{Kind: yaml.MappingNode}
	add := func(parent *yaml.Node, key string) *yaml.Node {
		for i := 0; i+1 < len(parent.Content); i += 2 {
			if parent.Content[i].Value == key {
				return parent.Content[i+1]
			}
		}
		k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}
		v := &yaml.Node{Kind: yaml.MappingNode}
		parent.Content = append(parent.Content, k, v)
		return v
	}
	version := add(root, "version")
	*version = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: fmt.Sprint(deployconfig.SchemaVersion)}
	for _, q := range questions {
		v, ok := a[q.path]
		if !ok || (v == "" && !all && (q.keep == nil || !q.keep(a, v))) {
			continue
		}
		parts := strings.Split(q.path, ".")
		parent := root
		for _, p := range parts[:len(parts)-1] {
			parent = add(parent, p)
		}
		leaf := add(parent, parts[len(parts)-1])
		*leaf = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
		if q.bool {
			leaf.Tag = "!!bool"
		}
		if strings.Contains(v, "\n") {
			leaf.Style = yaml.LiteralStyle
		}
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root},
		HeadComment: "Written by tetherctl init. Every field is described in docs/deployment-config.md."}
	out, err := yaml.Marshal(doc)
	if err != nil {
		// Scalars and mappings of strings always encode.
		panic(fmt.Sprintf("tetherctl init: encoding deployment.yaml: %v", err))
	}
	return out
}

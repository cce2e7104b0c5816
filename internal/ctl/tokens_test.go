package ctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/apitoken"
)

// runTaskCommand is the command override of the one RunTask call made.
func runTaskCommand(t *testing.T, f *migrateFixture) []string {
	t.Helper()
	var run struct {
		StartedBy string
		Overrides struct {
			ContainerOverrides []struct {
				Name    string
				Command []string
			}
		}
	}
	n := 0
	for _, r := range f.srv.Requests() {
		if strings.HasSuffix(r.Target, ".RunTask") {
			n++
			if err := json.Unmarshal(r.Body, &run); err != nil {
				t.Fatal(err)
			}
		}
	}
	if o := run.Overrides.ContainerOverrides; n != 1 || len(o) != 1 || o[0].Name != "migrate" || run.StartedBy != "tetherctl-tokens" {
		t.Fatalf("%d RunTask calls, the last %+v", n, run)
	}
	return run.Overrides.ContainerOverrides[0].Command
}

// tokens create makes the token here and sends only its hash: the RunTask
// override carries docsvc tokens add --hash ID:SHA256 and the expiry,
// counted from tetherctl's clock, and no request to AWS carries the token's
// secret.
func TestTokensCreateCommand(t *testing.T) {
	t.Parallel()
	f := newMigrateFixture(t)
	holdTasks(t, f.srv)
	done := finishTask(releaseContext(t), t, f.srv, []string{"added token"})
	config := writeDeploymentYAML(t, f.dc)
	var stdout, stderr bytes.Buffer
	now := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	env := Env{Now: func() time.Time { return now }, Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr}
	if err := runCmd(t, f.srv, env, "tokens", "create", "--name", "nightly export", "--expires", "90d", "--config", config, "--output", "json", "--yes"); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var out struct{ ID, Name, Token string }
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	id, secret, ok := apitoken.Parse(out.Token)
	if !ok || id != out.ID || out.Name != "nightly export" {
		t.Fatalf("printed %s", stdout.String())
	}
	cmd := runTaskCommand(t, f)
	if len(cmd) != 8 || strings.Join(cmd[:6], " ") != "tokens add --name nightly export --hash "+id+":"+apitoken.Hash(secret) ||
		cmd[6] != "--expires" || cmd[7] != "2031-08-04T07:08:09Z" {
		t.Fatalf("RunTask command %q", cmd)
	}
	for _, r := range f.srv.Requests() {
		if bytes.Contains(r.Body, []byte(secret)) {
			t.Fatalf("%s carried the token's secret", r.Target)
		}
	}
	if strings.Contains(stderr.String(), secret) || !strings.Contains(stderr.String(), "  docsvc| added token") {
		t.Fatalf("stderr:\n%s", stderr.String())
	}
}

// tokens list reads docsvc's JSON from the task's log, also when awslogs
// split it into several events.
func TestTokensListCommand(t *testing.T) {
	t.Parallel()
	f := newMigrateFixture(t)
	holdTasks(t, f.srv)
	list := `{"tokens":[{"id":"0123456789abcdef","name":"ci","created_at":"2026-01-02T03:04:05Z","expires_at":null,"last_used_at":"2026-02-01T00:00:00Z","revoked_at":null}]}`
	done := finishTask(releaseContext(t), t, f.srv, []string{`{"level":"INFO","msg":"config loaded"}`, list[:40], list[40:]})
	config := writeDeploymentYAML(t, f.dc)
	var stdout bytes.Buffer
	env := Env{Now: time.Now, Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: io.Discard}
	if err := runCmd(t, f.srv, env, "tokens", "list", "--config", config); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if cmd := runTaskCommand(t, f); strings.Join(cmd, " ") != "tokens list --output json" {
		t.Fatalf("RunTask command %q", cmd)
	}
	if got := stdout.String(); !strings.Contains(got, "0123456789abcdef  2026-01-02T03:04:05Z  -                     2026-02-01T00:00:00Z  -                     ci") {
		t.Fatalf("list shows:\n%s", got)
	}
}

func TestTokenList(t *testing.T) {
	if _, err := tokenList([]string{"migrated", `{"tokens": broken`}); err == nil {
		t.Fatal("a broken list was read")
	}
	rows, err := tokenList([]string{`{"tokens":[]}`})
	if err != nil || len(rows) != 0 {
		t.Fatalf("empty list: %v, %v", rows, err)
	}
}

func FuzzTokenList(f *testing.F) {
	f.Add(`{"tokens":[{"id":"0123456789abcdef","name":"ci"}]}`, 10)
	f.Fuzz(func(t *testing.T, s string, cut int) {
		lines := []string{s}
		if cut > 0 && cut < len(s) {
			lines = []string{s[:cut], s[cut:]}
		}
		rows, err := tokenList(lines)
		if err == nil && !strings.HasPrefix(s, `{"tokens":`) {
			t.Fatalf("read %v from %q", rows, s)
		}
	})
}

// Mistakes are usage errors before any AWS call; a pasted token is not
// repeated.
func TestTokensUsage(t *testing.T) {
	t.Parallel()
	tok, _ := apitoken.New()
	for _, args := range [][]string{
		{"tokens"}, {"tokens", "frob"}, {"tokens", "create"}, {"tokens", "create", "--name", "x", "--expires", "yesterday"},
		{"tokens", "revoke"}, {"tokens", "revoke", tok.Plaintext}, {"tokens", "list", "extra"},
	} {
		env, _, stderr := testEnv()
		err := RunEnv(releaseContext(t), args, env)
		if !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
		if err != nil && strings.Contains(err.Error()+stderr.String(), tok.Plaintext[20:]) {
			t.Errorf("%q: the error repeats the token", args)
		}
	}
}

package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/maintest"
	"github.com/tetherhq/tether/internal/releasestate"
)

const asMain = "TETHER_UPGRADE_TEST_AS_MAIN"

func TestMain(m *testing.M) { maintest.Hook(m, asMain, main) }

// The real main against moto: exit 0 with nothing staged, 2 for a usage
// mistake, 1 when a staged release cannot be applied (here: no services
// stack), and --help on stdout.
func TestExitStatus(t *testing.T) {
	srv := awstest.Start(t)
	const record = "/tether/acme-docs/state/releases"
	env := append(srv.Env(),
		"TETHER_RELEASE_RECORD="+record,
		// Every day, all day: the run is inside the window whenever it runs.
		"TETHER_UPGRADE_WINDOW=Mon 00:00-24:00; Tue 00:00-24:00; Wed 00:00-24:00; Thu 00:00-24:00; Fri 00:00-24:00; Sat 00:00-24:00; Sun 00:00-24:00",
		"TETHER_SERVICES_STACK=acme-docs-services",
		"TETHER_UPGRADE_ROLE_ARN=arn:aws:iam::"+awstest.Account+":role/acme-docs-upgrade")
	run := func(args ...string) maintest.Result { return maintest.Run(t, asMain, env, args...) }

	if r := run("--help"); r.Code != 0 || !strings.Contains(r.Stdout, "usage: tether-upgrade") {
		t.Fatalf("--help: exit %d, stdout %q", r.Code, r.Stdout)
	}
	if r := run("--services-stack", "acme docs"); r.Code != 2 || !strings.Contains(r.Stderr, "--services-stack (TETHER_SERVICES_STACK)") {
		t.Fatalf("bad flag: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if r := run(); r.Code != 0 || !strings.Contains(r.Stderr, "no release is staged") {
		t.Fatalf("nothing staged: exit %d, stderr %q", r.Code, r.Stderr)
	}
	d := func(c string) string { return "sha256:" + strings.Repeat(c, 64) }
	h, _ := json.Marshal([]releasestate.Outcome{{Action: "upgrade", From: "1.0.0", To: "1.1.0", DocsvcDigest: d("c"), AgentDigest: d("e"),
		Outcome: "staged", By: "tetherctl", At: time.Now().UTC()}})
	srv.PutParameter(t, record, string(h), false)
	if r := run(); r.Code != 1 || !strings.Contains(r.Stderr, "DescribeStacks acme-docs-services") {
		t.Fatalf("staged, no stack: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

package exchange_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/diagspool"
	"github.com/tetherhq/tether/internal/exchange"
)

func TestNewConfig(t *testing.T) {
	t.Parallel()
	c, err := exchange.NewConfig("/data/agent", "acme-docs-data-exchange", "30s")
	if err != nil || c.DataDir != "/data/agent" || c.Bucket != "acme-docs-data-exchange" || c.Interval != 30*time.Second {
		t.Fatalf("NewConfig = %+v, %v", c, err)
	}
	for _, tc := range []struct {
		dir, bucket, interval string
		want                  []string
	}{
		{"", "acme-docs-data-exchange", "1m", []string{"--data-dir (TETHER_DATA_DIR): is required"}},
		{"/d", "s3://acme", "1m", []string{`--exchange-bucket (TETHER_EXCHANGE_BUCKET): "s3://acme" is not an S3 bucket name`}},
		{"/d", "acme-docs-data-exchange", "soon", []string{`--interval (TETHER_EXCHANGE_INTERVAL): "soon" must be a duration`}},
		{"/d", "acme-docs-data-exchange", "2h", []string{`"2h" must be a duration from 1s to 1h`}},
		{"", "", "0s", []string{"--data-dir", "--exchange-bucket", "--interval"}},
	} {
		_, err := exchange.NewConfig(tc.dir, tc.bucket, tc.interval)
		if !errors.Is(err, exchange.ErrUsage) {
			t.Errorf("NewConfig(%q, %q, %q) = %v, want a usage error", tc.dir, tc.bucket, tc.interval, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("NewConfig(%q, %q, %q) = %v, want it to name %q", tc.dir, tc.bucket, tc.interval, err, w)
			}
		}
	}
}

// FuzzNewConfig: whatever the task's environment holds, a configuration
// accepted is one the mirror can run on.
func FuzzNewConfig(f *testing.F) {
	f.Add("/data/agent", "acme-docs-data-exchange", "60s")
	f.Add("", "a..b", "-1s")
	f.Fuzz(func(t *testing.T, dir, bucket, interval string) {
		c, err := exchange.NewConfig(dir, bucket, interval)
		if err != nil {
			if !errors.Is(err, exchange.ErrUsage) {
				t.Fatalf("a bad value is not a usage error: %v", err)
			}
			return
		}
		if c.DataDir == "" || exchange.CheckBucketName(c.Bucket) != nil || c.Interval < time.Second || c.Interval > time.Hour {
			t.Fatalf("accepted %+v", c)
		}
	})
}

// A round logs what it copied and decided, and nothing when there was
// nothing to do; a second mirror on the same data dir skips its round
// rather than interleave its writes with the first's.
func TestRoundLogsOnlyWhatHappened(t *testing.T) {
	t.Parallel()
	c, _ := newBucket(t)
	ctx := context.Background()
	dir, led := agentDir(t, []string{"dg_one"}, 2)
	m := exchange.NewMirror(c, dir, time.Now)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	round := func() string {
		t.Helper()
		logs.Reset()
		if err := m.Round(ctx, log); err != nil {
			t.Fatalf("Round: %v", err)
		}
		return logs.String()
	}
	if out := round(); !strings.Contains(out, `"msg":"copied to the exchange bucket"`) || !strings.Contains(out, `"dg_one":"pending"`) {
		t.Fatalf("first round logged %q", out)
	}
	if out := round(); out != "" {
		t.Fatalf("an idle round logged %q", out)
	}
	approve(t, c, "dg_one")
	if out := round(); !strings.Contains(out, `"msg":"diagnostic request decided in the exchange bucket"`) || strings.Contains(out, "user/operator") {
		t.Fatalf("the round with an approval logged %q", out)
	}
	if d, _ := diagspool.Read(dir, "dg_one"); d.State != diagspool.StateApproved {
		t.Fatalf("state after the round = %s", d.State)
	}
	appendN(t, led, 1)
	if out := round(); !strings.Contains(out, `"dg_one":"approved"`) || !strings.Contains(out, `"ledger_bytes"`) {
		t.Fatalf("the round after the approval logged %q", out)
	}

	f, err := os.OpenFile(filepath.Join(dir, "exchange.lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	if err := m.Round(ctx, log); err == nil || !strings.Contains(logs.String(), "another tether-exchange") {
		t.Fatalf("Round with the lock held elsewhere = %v, logged %q", err, logs.String())
	}
}

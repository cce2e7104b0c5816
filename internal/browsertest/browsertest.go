// Package browsertest starts headless Chromium (Debian's /usr/bin/chromium)
// for tests of the product's web pages, with the flags this closed network
// needs: no background networking, no component updates, no sync.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// New returns a browser tab context (with chromedp v0.23's generic API:
// chromedp.Do and chromedp.Run) that lives until the test ends, bounded to
// two minutes. A test
// fails (never skips) when Chromium is missing: scripts/test-deps.sh installs it.
func New(t testing.TB) context.Context {
	t.Helper()
	path := os.Getenv("TETHER_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		t.Fatalf("headless Chromium not found at %s: run scripts/test-deps.sh (or set TETHER_CHROMIUM)", path)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(actx)
	// The first Do starts the browser, which lives as long as that call's
	// context: start it without a deadline, then bound the test's steps.
	// The bound is for a hung browser, not a slow one: a test of several
	// pages on a loaded two-core CI machine took 46 s.
	if err := chromedp.Do(tab); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(tab, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	return ctx
}

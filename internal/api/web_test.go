package api_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tetherhq/tether/internal/browsertest"
)

// TestWebPage drives the page as a person would: sign in with a token,
// upload a file, watch it finish, read its result.
func TestWebPage(t *testing.T) {
	t.Parallel()
	b := setup(t, 1<<20)
	b.runWorker(t)
	file := filepath.Join(t.TempDir(), "minutes.md")
	os.WriteFile(file, []byte("# Board minutes\n\nThe board approved the budget for the new warehouse in Lyon.\n"), 0o600)

	ctx := browsertest.New(t)
	var summary, status string
	err := chromedp.Do(ctx,
		chromedp.Navigate(b.url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), "wrong-token"),
		chromedp.Click(chromedp.CSS("#token-form button[type=submit]")),
	)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Poll[string](`document.querySelector("#signin-error").textContent`))
	if err != nil || !strings.Contains(msg, "not accepted") {
		t.Fatalf("a wrong token shows %q (%v)", msg, err)
	}
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#token"), b.token),
		chromedp.Click(chromedp.CSS("#token-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#upload-form")),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{file}),
		chromedp.Click(chromedp.CSS("#upload-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("button.show-result")),
		chromedp.Click(chromedp.CSS("button.show-result")),
		chromedp.WaitVisible(chromedp.CSS("#result")),
	)
	if err != nil {
		if png, serr := chromedp.Run(context.WithoutCancel(ctx), chromedp.CaptureScreenshot()); serr == nil {
			shot := filepath.Join(os.TempDir(), "tether-web-test.png")
			os.WriteFile(shot, png, 0o600)
			t.Logf("screenshot: %s", shot)
		}
		t.Fatal(err)
	}
	if status, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#docs tbody tr .status"))); err != nil {
		t.Fatal(err)
	}
	if summary, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#result-summary"))); err != nil {
		t.Fatal(err)
	}
	text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#result-text")))
	if status != "succeeded" || summary == "" || !strings.Contains(text, "warehouse in Lyon") {
		t.Fatalf("page shows status %q, summary %q, text %q", status, summary, text)
	}
}

package api_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// chromiumPath finds the browser: CHROMIUM_PATH, the Debian package's
// /usr/bin/chromium, or chromium / chromium-browser on PATH.
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestDashboardBrowser signs in through the real login form in headless
// Chromium, loads the dashboard over the worked example, and reads the
// rendered SVG and table back: the charts must show the seeded figures.
// The screenshot goes to the test's artifact directory (kept with
// `go test -artifacts -outputdir DIR`); its path is logged.
func TestDashboardBrowser(t *testing.T) {
	t.Parallel()
	exe := chromiumPath()
	if exe == "" {
		t.Skip("chromium not found (scripts/install-deps.sh installs the Debian package): browser test skipped")
	}
	f := setupFinance(t)

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 1800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()

	page := f.srv.URL + "/dashboard?from=2026-01-01&to=2026-04-30&interval=month&currency=usd"
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("browser: %s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("browser: text of %s: %v", sel, err)
		}
		return v
	}
	attrs := func(sel string) []map[string]string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.AttributesAll(chromedp.CSSAll(sel)))
		if err != nil {
			t.Fatalf("browser: attributes of %s: %v", sel, err)
		}
		return v
	}
	submit := func(token string) {
		t.Helper()
		do("open sign-in", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("token")),
			chromedp.SendKeys(chromedp.ID("token"), token))
		if _, err := chromedp.Run(ctx, chromedp.WaitEvent(cdppage.LoadEventFired, nil, chromedp.Click(chromedp.ID("login")))); err != nil {
			t.Fatalf("browser: sign in: %v", err)
		}
	}

	// A wrong token first: the form says so and no session starts.
	submit("bd_fin_not-a-token")
	if msg := text("#login-error"); msg == "" {
		t.Error("a wrong token showed no error on the login form")
	}
	submit(f.finance)
	// The sign-in lands on /dashboard without the query: ask again for
	// the worked example's range, now with the session cookie.
	do("load dashboard", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)))

	var mrr []string
	for _, a := range attrs(`#mrr-chart circle.mrr-point`) {
		mrr = append(mrr, a["data-mrr"])
	}
	churn := attrs(`#movements-chart rect[data-kind="churn"]`)
	expansion := attrs(`#movements-chart rect[data-kind="expansion"]`)
	csvHref, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("csv"), "href"))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"MRRPoints", mrr, []string{"4000", "6000", "6000", "2000"}},
		{"ChurnBars", len(churn), 1},
		{"ExpansionBars", len(expansion), 1},
		{"AprilMRRCell", text(`tr[data-period="2026-04-01"] td[data-col="mrr"]`), "20.00"},
		{"AprilARRCell", text(`tr[data-period="2026-04-01"] td[data-col="arr"]`), "240.00"},
		{"AprilCustomerChurn", text(`tr[data-period="2026-04-01"] td[data-col="customer_churn_rate"]`), "50.00%"},
		{"JanChurnRateUndefined", text(`tr[data-period="2026-01-01"] td[data-col="customer_churn_rate"]`), "—"},
		{"FebExpansionCell", text(`tr[data-period="2026-02-01"] td[data-col="expansion"]`), "20.00"},
		{"SummaryMRRCard", text(`#card-mrr strong`), "20.00 USD"},
		{"CSVLink", csvHref.Value, "/v1/metrics/revenue?from=2026-01-01&to=2026-04-30&interval=month&livemode=true&currency=usd&format=csv"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	if len(churn) == 1 && (churn[0]["data-value"] != "4000" || churn[0]["data-period"] != "2026-04-01") {
		t.Errorf("churn bar %v, want 4000 at 2026-04-01", churn[0])
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.ArtifactDir(), "dashboard.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard screenshot: %s (%d bytes)", path, len(shot))
}

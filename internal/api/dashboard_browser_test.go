package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/api"
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

// browser is one headless Chromium tab on the dashboard, with the page's
// console collected: an exception or a CSP violation fails the test.
type browser struct {
	t       *testing.T
	ctx     context.Context
	base    string
	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	exe := chromiumPath()
	if exe == "" {
		t.Skip("chromium not found (scripts/install-deps.sh installs the Debian package): browser test skipped")
	}
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
	t.Cleanup(cancelAlloc)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(cancelCtx)
	// Generous: two cores shared by several test runs. Only a hang fails.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	t.Cleanup(cancel)
	b := &browser{t: t, ctx: ctx, base: base}
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("browser: start: %v", err)
	}
	// Every document records the CSP violations it sees: a chart that
	// needed an inline style or a script from elsewhere would show here.
	if _, err := chromedp.Call(ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.__csp = []; document.addEventListener("securitypolicyviolation",
			(e) => window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline")));`,
	}); err != nil {
		t.Fatalf("browser: CSP listener: %v", err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	return b
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// eval runs a JavaScript expression in the page and decodes its value.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("browser: eval %s: %v", expr, err)
	}
	return v
}

// texts is the trimmed text of every element matching sel.
func (b *browser) texts(sel string) []string {
	b.t.Helper()
	return eval[[]string](b, fmt.Sprintf(`[...document.querySelectorAll(%q)].map((e) => e.textContent.trim())`, sel))
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`(document.querySelector(%q) || {textContent: "<missing>"}).textContent.trim()`, sel))
}

func (b *browser) attr(sel, name string) []string {
	b.t.Helper()
	return eval[[]string](b, fmt.Sprintf(`[...document.querySelectorAll(%q)].map((e) => e.getAttribute(%q))`, sel, name))
}

// open loads a dashboard URL and waits until its figures are drawn.
func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path))
	b.waitReady()
}

// change sets a control and fires its change event, as a user does.
func (b *browser) change(id, value string) {
	b.t.Helper()
	eval[bool](b, fmt.Sprintf(`(() => { const e = document.getElementById(%q); e.value = %q;
		e.dispatchEvent(new Event("change")); return true })()`, id, value))
}

// waitReady waits until the figures are drawn; an error shown instead
// fails at once, quoting it.
func (b *browser) waitReady() {
	b.t.Helper()
	b.do("wait for figures", chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"], #error:not([hidden])`)))
	if msg := b.text(`#error:not([hidden])`); msg != "<missing>" {
		b.t.Fatalf("the dashboard shows an error instead of figures: %s", msg)
	}
	b.noCSPViolations()
}

func (b *browser) noCSPViolations() {
	b.t.Helper()
	if v := eval[[]string](b, `window.__csp || ["no CSP listener"]`); len(v) > 0 {
		b.t.Errorf("Content-Security-Policy violations: %q", v)
	}
}

// screenshot keeps the page as an artifact (`go test -artifacts
// -outputdir DIR` keeps the directory); the path is logged.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	shot, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(b.t.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s (%d bytes)", path, len(shot))
}

// pageErrors are the exceptions, console errors and CSP reports so far.
// (A 404 of an endpoint this server lacks is a network entry, not one.)
func (b *browser) pageErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		if m.IsException() || m.Type == chromedp.ConsoleError && m.Source != "network" ||
			m.Source == "security" || strings.Contains(m.Text, "Content Security Policy") {
			out = append(out, m.String())
		}
	}
	return out
}

// forget drops the console messages up to the first containing text,
// waiting for it as long as the browser's context allows (a loaded machine
// may deliver it late; only a message that never comes fails); it reports
// whether it came.
func (b *browser) forget(text string) bool {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		b.mu.Lock()
		for i, m := range b.console {
			if strings.Contains(m.Text, text) {
				b.console = slices.Delete(b.console, 0, i+1)
				b.mu.Unlock()
				return true
			}
		}
		b.mu.Unlock()
		select {
		case <-b.ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

func (b *browser) signIn(token string) {
	b.t.Helper()
	b.do("open sign-in", chromedp.Navigate(b.base+"/dashboard"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token))
	if _, err := chromedp.Run(b.ctx, chromedp.WaitEvent(cdppage.LoadEventFired, nil, chromedp.Click(chromedp.ID("login")))); err != nil {
		b.t.Fatalf("browser: sign in: %v", err)
	}
}

type check struct {
	name      string
	got, want any
}

func verify(t *testing.T, checks []check) {
	t.Helper()
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

// overlapJS counts pairs of axis labels that overlap, across every chart.
const overlapJS = `(() => {
	let n = 0;
	for (const svg of document.querySelectorAll("svg")) {
		const boxes = [...svg.querySelectorAll("text.x-tick, text.y-tick")].map((t) => t.getBoundingClientRect());
		for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
			const a = boxes[i], b = boxes[j];
			if (a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5) n++;
		}
	}
	return n;
})()`

// dashboardExample is financeExample (metrics.md's worked example and a
// yen customer, live) with B on a plan of its own, so MRR by plan has two
// plans, plus a test-mode euro customer, so switching modes has other
// currencies to show.
func dashboardExample() map[string][]billing.SubscriptionVersion {
	ex := financeExample()
	ex[refB][0].State.Items[0].PriceID = "price_yearly"
	test := billing.Subscription{Status: billing.StatusActive, Livemode: false, Currency: "eur",
		Items: []billing.Item{{PriceID: "price_test", Quantity: 1, UnitAmount: 1500, Interval: billing.IntervalMonth, IntervalCount: 1}}}
	ex["00000000-0000-4000-8000-00000000000d"] = []billing.SubscriptionVersion{{SubscriptionRef: "10000000-0000-4000-8000-00000000000d",
		At: at("2026-03-05T10:00:00Z"), Event: "evt_test_d", State: test}}
	return ex
}

// dashboardRates are daily euro reference rates: 1 EUR = 1.25 USD until
// February, 1.00 USD from March 1, 160 JPY throughout, and no dollar rate
// from April 24 to 30 (more than the 4 days a rate carries over), so the
// April 30 boundary has none.
func dashboardRates() []billing.FXRate {
	var rates []billing.FXRate
	for d := at("2025-12-01T00:00:00Z"); !d.After(at("2026-06-01T00:00:00Z")); d = d.AddDate(0, 0, 1) {
		rates = append(rates, billing.FXRate{Day: d, Currency: "jpy", PerEUR: "160"})
		usd := "1.25"
		if !d.Before(at("2026-03-01T00:00:00Z")) {
			usd = "1.00"
		}
		if d.Before(at("2026-04-24T00:00:00Z")) || d.After(at("2026-04-30T00:00:00Z")) {
			rates = append(rates, billing.FXRate{Day: d, Currency: "usd", PerEUR: usd})
		}
	}
	return rates
}

// TestDashboardBrowser signs in through the real login form in headless
// Chromium and checks every view of the dashboard against the seeded
// figures (metrics.md's worked example, a yen customer and a test-mode
// euro customer; the server's clock at 2026-06-01). Each view's
// screenshot is kept as an artifact.
func TestDashboardBrowser(t *testing.T) {
	t.Parallel()
	if chromiumPath() == "" {
		t.Skip("chromium not found (scripts/install-deps.sh installs the Debian package): browser test skipped")
	}
	f := setupFinanceWith(t, dashboardExample())
	// A is acct_a, B's account was erased, the yen customer is unlinked:
	// the movers list shows each as such.
	linkFixture(t, f)
	if _, err := f.store.EraseAccount(context.Background(), billing.ErasureRequest{AccountID: "acct_b", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	// The same data, served with a reporting currency and its rates.
	if _, err := f.store.PutFXRates(context.Background(), dashboardRates(), "import"); err != nil {
		t.Fatal(err)
	}
	srv := &api.Server{Log: slog.New(slog.DiscardHandler), Tokens: f.store, Revenue: f.store, Sessions: f.store,
		FX: f.store, ReportingCurrency: "eur", Now: func() time.Time { return at("2026-06-01T00:00:00Z") }}
	f.srv = httptest.NewServer(srv.Handler())
	t.Cleanup(f.srv.Close)
	b := newBrowser(t, f.srv.URL)
	const example = "/dashboard?from=2026-01-01&to=2026-04-30&interval=month&currency=usd"

	// A wrong token first: the form says so and no session starts.
	b.signIn("bd_fin_not-a-token")
	if msg := b.text("#login-error"); msg == "" {
		t.Error("a wrong token showed no error on the login form")
	}
	b.signIn(f.finance)

	t.Run("MonthView", func(t *testing.T) {
		b.t = t
		b.open(example)
		verify(t, []check{
			{"MRRPoints", b.attr(`#mrr-chart circle.mrr-point`, "data-mrr"), []string{"4000", "6000", "6000", "2000"}},
			{"MRRTicks", b.texts(`#mrr-chart .y-tick`), []string{"0", "20", "40", "60"}},
			{"MovementTicks", b.texts(`#movements-chart .y-tick`), []string{"−40", "−20", "0", "20", "40"}},
			{"ChurnTicks", b.texts(`#churn-chart .y-tick`), []string{"−50%", "0%", "50%", "100%"}},
			{"ChurnBar", b.attr(`#movements-chart rect[data-kind="churn"]`, "data-value"), []string{"4000"}},
			{"ChurnBarPeriod", b.attr(`#movements-chart rect[data-kind="churn"]`, "data-period"), []string{"2026-04-01"}},
			{"ExpansionBars", len(b.attr(`#movements-chart rect[data-kind="expansion"]`, "data-value")), 1},
			{"NoPartialBand", len(b.attr(`.partial-band`, "data-period")), 0},
			{"RowsNewestFirst", b.attr(`#periods tbody tr`, "data-period"), []string{"2026-04-01", "2026-03-01", "2026-02-01", "2026-01-01"}},
			{"AprilMRRCell", b.text(`tr[data-period="2026-04-01"] td[data-col="mrr"]`), "20.00"},
			{"AprilARRCell", b.text(`tr[data-period="2026-04-01"] td[data-col="arr"]`), "240.00"},
			{"AprilCustomerChurn", b.text(`tr[data-period="2026-04-01"] td[data-col="customer_churn_rate"]`), "50.00%"},
			{"AprilChurnedCustomers", b.text(`tr[data-period="2026-04-01"] td[data-col="churned_customers"]`), "1"},
			{"AprilQuickRatio", b.text(`tr[data-period="2026-04-01"] td[data-col="quick_ratio"]`), "0.00"},
			{"AprilLTV", b.text(`tr[data-period="2026-04-01"] td[data-col="ltv"]`), "40.00"},
			{"AprilGRR", b.text(`tr[data-period="2026-04-01"] td[data-col="gross_revenue_retention"]`), "33.33%"},
			{"AprilTrials", b.text(`tr[data-period="2026-04-01"] td[data-col="trial_starts"]`), "0"},
			{"MarchQuickRatioUndefined", b.text(`tr[data-period="2026-03-01"] td[data-col="quick_ratio"]`), "—"},
			{"JanChurnRateUndefined", b.text(`tr[data-period="2026-01-01"] td[data-col="customer_churn_rate"]`), "—"},
			{"FebExpansionCell", b.text(`tr[data-period="2026-02-01"] td[data-col="expansion"]`), "20.00"},
			{"SummaryMRRCard", b.text(`#card-mrr strong`), "20.00 USD"},
			{"ChurnedCustomersCard", b.text(`#card-churned strong`), "1"},
			{"QuickRatioCard", b.text(`#card-quick-ratio strong`), "1.50"}, // (40 + 20) ÷ 40
			{"LTVCard", b.text(`#card-ltv strong`), "40.00 USD"},           // ARPA 20.00 ÷ 50%
			{"LTVCardMonth", b.text(`#card-ltv small`), "Apr 2026"},
			{"NetNewCard", b.text(`#card-net-new strong`), "20.00 USD"},
			{"CSVLink", eval[string](b, `document.getElementById("csv").getAttribute("href")`),
				"/v1/metrics/revenue?from=2026-01-01&to=2026-04-30&interval=month&livemode=true&currency=usd&format=csv"},
			{"OnceCouponDefinition", strings.Contains(b.text(".definitions"), "A once coupon discounts one invoice and does not reduce MRR"), true},
			{"LabelOverlaps", eval[int](b, overlapJS), 0},
		})
		b.screenshot("month")
	})

	t.Run("StrictCSPInForce", func(t *testing.T) {
		b.t = t
		b.open(example)
		// The listener sees a violation when there is one: an inline style
		// is refused under the dashboard's policy.
		v, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`new Promise((ok) => {
			document.body.setAttribute("style", "color: red");
			// The report is an event that comes when it comes: wait for it,
			// then a moment for any second one.
			const seen = () => window.__csp.length ? setTimeout(() => ok(window.__csp), 50) : setTimeout(seen, 10);
			seen(); })`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if len(v) != 1 || !strings.HasPrefix(v[0], "style-src") {
			t.Errorf("an inline style was not reported as a CSP violation: %q", v)
		}
		// The console reports it too (pageErrors would catch any other):
		// forget this one.
		if !b.forget("Applying inline style violates") {
			t.Error("the console did not report the CSP violation")
		}
		if n := eval[int](b, `[...document.querySelectorAll("script, link")].filter((e) =>
			!(e.src || e.href).startsWith(location.origin + "/dashboard/static/")).length`); n != 0 {
			t.Errorf("%d scripts or stylesheets come from elsewhere", n)
		}
	})

	t.Run("PlanBreakdown", func(t *testing.T) {
		b.t = t
		b.open(example)
		type bar struct{ Plan, Period, MRR string }
		bars := eval[[]bar](b, `[...document.querySelectorAll("#plans-chart rect.plan")].map((r) =>
			({Plan: r.dataset.plan, Period: r.dataset.period, MRR: r.dataset.mrr}))`)
		// A's monthly seats on price_1 (20.00, 40.00, 40.00, churned in
		// April), B's yearly plan 20.00 a month throughout; each stack is
		// the month's MRR.
		verify(t, []check{
			{"Bars", bars, []bar{
				{"price_yearly", "2026-01-01", "2000"}, {"price_1", "2026-01-01", "2000"},
				{"price_yearly", "2026-02-01", "2000"}, {"price_1", "2026-02-01", "4000"},
				{"price_yearly", "2026-03-01", "2000"}, {"price_1", "2026-03-01", "4000"},
				{"price_yearly", "2026-04-01", "2000"},
			}},
			{"Legend", b.texts(`#plans-chart .legend .key`), []string{"price_yearly", "price_1"}},
			{"Visible", eval[bool](b, `!document.getElementById("plans").hidden`), true},
		})
	})

	t.Run("MoversFromABar", func(t *testing.T) {
		b.t = t
		b.open(example)
		if !eval[bool](b, `!document.getElementById("movers-hint").hidden`) ||
			len(b.attr(`#movements-chart rect.bar.clickable`, "data-kind")) != 3 {
			t.Fatal("the movement bars are not links to their accounts")
		}
		b.do("select April's churn", chromedp.Click(chromedp.CSS(`#movements-chart rect[data-kind="churn"]`)),
			chromedp.WaitVisible(chromedp.ID("movers-table")))
		type row struct{ Account, Date, Change, Before, After, PlansBefore, PlansAfter string }
		rows := func() []row {
			return eval[[]row](b, `[...document.querySelectorAll("#movers-table tbody tr")].map((r) => {
				const c = [...r.cells].map((td) => td.textContent);
				return {Account: c[0], Date: c[1], Change: c[2], Before: c[3], After: c[4], PlansBefore: c[5], PlansAfter: c[6]}; })`)
		}
		verify(t, []check{
			{"Title", b.text("#movers-title"), "Churn in Apr 2026: 40.00 USD"},
			{"Rows", rows(), []row{{"acct_a", "2026-04-03", "−40.00", "40.00", "0.00", "price_1", "—"}}},
			{"BarSelected", b.attr(`#movements-chart rect.selected`, "data-kind"), []string{"churn"}},
			{"URL", eval[string](b, `location.search`), "?from=2026-01-01&to=2026-04-30&interval=month&currency=usd&livemode=true&movers=2026-04-01%3Achurn"},
			{"CSV", eval[string](b, `document.getElementById("movers-csv").getAttribute("href")`),
				"/v1/metrics/movements?from=2026-04-01&to=2026-04-30&type=churn&livemode=true&currency=usd&format=csv"},
		})
		b.screenshot("movers")
		// The link reopens the list; January's new accounts, newest first,
		// B's erased account by its amounts only.
		b.open("/dashboard?from=2026-01-01&to=2026-04-30&interval=month&currency=usd&livemode=true&movers=2026-01-01:new")
		b.do("wait for the list", chromedp.WaitVisible(chromedp.ID("movers-table")))
		verify(t, []check{
			{"Title", b.text("#movers-title"), "New in Jan 2026: 40.00 USD"},
			{"Rows", rows(), []row{
				{"erased account", "2026-01-20", "+20.00", "0.00", "20.00", "—", "price_yearly"},
				{"acct_a", "2026-01-03", "+20.00", "0.00", "20.00", "—", "price_1"},
			}},
		})
		if strings.Contains(b.text("#movers"), refB) || strings.Contains(b.text("#movers"), "acct_b") {
			t.Error("the movers list names the erased account")
		}
		b.do("close", chromedp.Click(chromedp.ID("movers-close")))
		verify(t, []check{
			{"Closed", eval[bool](b, `document.getElementById("movers").hidden`), true},
			{"URLWithoutMovers", eval[string](b, `location.search`), "?from=2026-01-01&to=2026-04-30&interval=month&currency=usd&livemode=true"},
		})
		// The bars are reachable without a mouse: focus, Enter.
		b.do("open February's expansion from the keyboard", chromedp.Focus(chromedp.CSS(`#movements-chart rect[data-kind="expansion"]`)),
			chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.ID("movers-table")))
		verify(t, []check{
			{"KeyboardTitle", b.text("#movers-title"), "Expansion in Feb 2026: 20.00 USD"},
			{"KeyboardRows", rows(), []row{{"acct_a", "2026-02-10", "+20.00", "20.00", "40.00", "price_1", "price_1"}}},
		})
	})

	t.Run("CohortHeatMap", func(t *testing.T) {
		b.t = t
		b.open(example)
		type cohort struct {
			Cohort, Customers string
			Cells             []string
			Classes           []string
		}
		read := func() []cohort {
			return eval[[]cohort](b, `[...document.querySelectorAll("#cohort-table tbody tr")].map((r) => {
				const c = [...r.cells];
				return {Cohort: c[0].textContent, Customers: c[1].textContent,
					Cells: c.slice(2).map((td) => td.textContent), Classes: c.slice(2).map((td) => td.className)}; })`)
		}
		// metrics.md's example: the January cohort (A and B, 40.00) is at
		// 150% of its MRR in February and March (A's second seat), 50%
		// once A churned in April; June is not over.
		got := read()
		verify(t, []check{
			{"Cohorts", len(got), 1},
		})
		if len(got) == 1 {
			verify(t, []check{
				{"Cohort", got[0].Cohort, "2026-01"},
				{"Customers", got[0].Customers, "2"},
				{"NetMRRRetention", got[0].Cells, []string{"100%", "150%", "150%", "50%", "50%", "50%"}},
				{"Shades", got[0].Classes, []string{"h10", "h10", "h10", "h5", "h5", "h5 partial"}},
			})
		}
		b.do("customer basis", chromedp.Click(chromedp.ID("basis-customers")))
		b.waitReady()
		got = read()
		if len(got) == 1 {
			verify(t, []check{{"CustomerRetention", got[0].Cells, []string{"100%", "100%", "100%", "50%", "50%", "50%"}}})
		}
		verify(t, []check{
			{"URL", eval[string](b, `location.search`), "?from=2026-01-01&to=2026-04-30&interval=month&currency=usd&livemode=true&basis=customers"},
			{"Pressed", b.attr(`#cohorts button[aria-pressed="true"]`, "id"), []string{"basis-customers"}},
		})
		b.screenshot("cohorts")
	})

	t.Run("RoundTicks", func(t *testing.T) {
		b.t = t
		// The ranges the finance reader saw ticks at 480.70, 344.85 and
		// 17.65% for, and others: every tick must be a whole multiple of
		// 1, 2 or 5 × 10^k, and the labels plain.
		cases := []struct {
			Lo, Hi  float64
			MinStep float64
			Kind    string // money in USD cents, money in yen, a rate
			Want    []string
		}{
			{0, 48070, 1, "usd", []string{"0", "100", "200", "300", "400", "500"}},
			{-34485, 52877, 1, "usd", []string{"−400", "−200", "0", "200", "400", "600"}},
			{0, 0.1765, 0.0001, "rate", []string{"0%", "5%", "10%", "15%", "20%"}},
			{-0.031, 0.012, 0.0001, "rate", []string{"−4%", "−3%", "−2%", "−1%", "0%", "1%", "2%"}},
			{0, 37, 1, "usd", []string{"0.00", "0.10", "0.20", "0.30", "0.40"}},
			{0, 123456789, 1, "usd", []string{"0", "500k", "1M", "1.5M"}},
			{0, 7, 1, "jpy", []string{"0", "2", "4", "6", "8"}},
			{0, 0, 1, "usd", []string{"0.00", "0.01"}},
		}
		in, _ := json.Marshal(cases)
		type result struct {
			Ticks  []float64
			Step   float64
			Labels []string
		}
		got, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]result](`import("/dashboard/static/format.js").then((m) =>
			`+string(in)+`.map((c) => {
				const s = m.niceScale(c.Lo, c.Hi, 5, c.MinStep);
				const label = c.Kind === "rate" ? (v) => m.pctTick(v, s.step) : (v) => m.moneyTick(v, c.Kind === "jpy" ? 0 : 2, c.Kind === "jpy" ? 0 : 2, s.step);
				return {Ticks: s.ticks, Step: s.step, Labels: s.ticks.map(label)};
			}))`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range cases {
			r := got[i]
			mant := r.Step / math.Pow(10, math.Floor(math.Log10(r.Step)+1e-9))
			if math.Abs(mant-1) > 1e-9 && math.Abs(mant-2) > 1e-9 && math.Abs(mant-5) > 1e-9 {
				t.Errorf("%v..%v: step %v is not 1, 2 or 5 × 10^k", c.Lo, c.Hi, r.Step)
			}
			if r.Ticks[0] > c.Lo || r.Ticks[len(r.Ticks)-1] < c.Hi {
				t.Errorf("%v..%v: ticks %v do not cover the range", c.Lo, c.Hi, r.Ticks)
			}
			if !reflect.DeepEqual(r.Labels, c.Want) {
				t.Errorf("%v..%v: labels %q, want %q", c.Lo, c.Hi, r.Labels, c.Want)
			}
		}
	})

	t.Run("DefaultRangeFromFirstDataAndPartialPeriod", func(t *testing.T) {
		b.t = t
		b.open("/dashboard?currency=usd")
		// The first movement is on 2026-01-03 (usd); the server's today is
		// 2026-06-01, so June is the partial bucket.
		verify(t, []check{
			{"URL", eval[string](b, `location.search`), "?from=2026-01-01&to=2026-06-01&interval=month&currency=usd&livemode=true"},
			{"FromControl", eval[string](b, `document.getElementById("from").value`), "2026-01-01"},
			{"MRRPoints", b.attr(`#mrr-chart circle.mrr-point`, "data-mrr"), []string{"4000", "6000", "6000", "2000", "2000", "2000"}},
			{"PartialPoint", b.attr(`#mrr-chart circle.mrr-point.partial`, "data-period"), []string{"2026-06-01"}},
			{"PartialBands", b.attr(`.partial-band`, "data-period"), []string{"2026-06-01", "2026-06-01", "2026-06-01", "2026-06-01"}},
			{"PartialLabel", b.texts(`#mrr-chart .partial-label`), []string{"so far"}},
			{"DashedChurnSegments", len(b.attr(`#churn-chart polyline.partial`, "data-series")) > 0, true},
			{"PartialRowFirst", b.text(`#periods tbody tr:first-child td[data-col="start"]`), "2026-06-01 (so far)"},
			{"PartialRowClass", b.attr(`#periods tbody tr.partial`, "data-period"), []string{"2026-06-01"}},
			// The last complete month (May) had no churn: no LTV estimate.
			{"LTVCard", b.text(`#card-ltv strong`), "—"},
			{"LTVCardNote", b.text(`#card-ltv small`), "no churn in May 2026"},
			{"CurrencyOptions", b.attr(`#currency option`, "value"), []string{"jpy", "usd", "all", "reporting"}},
		})
		b.screenshot("default-partial")
	})

	t.Run("DayView", func(t *testing.T) {
		b.t = t
		b.open("/dashboard?from=2026-01-01&to=2026-04-30&interval=day&currency=usd")
		type row struct{ Period, From, To, Class string }
		rows := eval[[]row](b, `[...document.querySelectorAll("#periods tbody tr")].map((r) =>
			({Period: r.dataset.period || "", From: r.dataset.from || "", To: r.dataset.to || "", Class: r.className}))`)
		want := []row{
			{From: "2026-04-04", To: "2026-04-30", Class: "quiet"}, {Period: "2026-04-03"},
			{From: "2026-02-11", To: "2026-04-02", Class: "quiet"}, {Period: "2026-02-10"},
			{From: "2026-01-21", To: "2026-02-09", Class: "quiet"}, {Period: "2026-01-20"},
			{From: "2026-01-04", To: "2026-01-19", Class: "quiet"}, {Period: "2026-01-03"},
			{From: "2026-01-01", To: "2026-01-02", Class: "quiet"},
		}
		verify(t, []check{
			{"Rows", rows, want},
			{"QuietRowText", b.text(`#periods tr.quiet`), "4 Apr 2026 – 30 Apr 2026: 27 days without movement · MRR 20.00"},
			{"NoDots", len(b.attr(`#mrr-chart circle`, "cx")), 0},
			{"HoverColumns", len(b.attr(`#mrr-chart rect.hover`, "x")), 120},
			{"ChurnBar", b.attr(`#movements-chart rect[data-kind="churn"]`, "data-period"), []string{"2026-04-03"}},
			{"LTVOnlyMonthly", b.text(`#card-ltv small`), "monthly view only"},
			{"LabelOverlaps", eval[int](b, overlapJS), 0},
		})
		if n := len(b.texts(`#mrr-chart .x-tick`)); n < 4 || n > 20 {
			t.Errorf("day view shows %d date labels, want a readable handful", n)
		}
		b.screenshot("day")
	})

	t.Run("AllCurrenciesSideBySide", func(t *testing.T) {
		b.t = t
		b.open("/dashboard?from=2026-01-01&to=2026-04-30&interval=month&currency=all")
		fig := func(cur, k string) string {
			return b.text(fmt.Sprintf(`.currency-panel[data-currency=%q] dd[data-figure=%q]`, cur, k))
		}
		verify(t, []check{
			{"Panels", b.attr(`.currency-panel`, "data-currency"), []string{"jpy", "usd"}},
			{"USDMRR", fig("usd", "mrr"), "20.00"},
			{"JPYMRR", fig("jpy", "mrr"), "5,000"},
			{"USDQuickRatio", fig("usd", "quick-ratio"), "1.50"},
			{"USDChurned", fig("usd", "churned"), "1"},
			{"JPYQuickRatio", fig("jpy", "quick-ratio"), "—"},
			{"JPYChartTicks", b.texts(`.currency-panel[data-currency="jpy"] .y-tick`), []string{"0", "2,000", "4,000", "6,000"}},
			{"ChartsNotScaled", eval[int](b, `[...document.querySelectorAll(".currency-panel svg")].filter((svg) =>
				Math.abs(svg.getBoundingClientRect().width - svg.width.baseVal.value) > 1).length`), 0},
			{"SingleViewsHidden", eval[bool](b, `getComputedStyle(document.getElementById("mrr-chart").parentElement).display === "none"`), true},
			{"CSVAllCurrencies", eval[string](b, `document.getElementById("csv").getAttribute("href")`),
				"/v1/metrics/revenue?from=2026-01-01&to=2026-04-30&interval=month&livemode=true&format=csv"},
		})
		b.screenshot("all-currencies")
	})

	t.Run("ReportingCurrencyTotal", func(t *testing.T) {
		b.t = t
		b.open("/dashboard?from=2026-01-01&to=2026-03-31&interval=month&currency=reporting")
		// In euros: January 40 USD at 1.25 = 32.00 (new); February the yen
		// customer's 5,000 JPY at 160 = 31.25 new and A's 20 USD at 1.25 =
		// 16.00 expansion, MRR 79.25; March nothing moved but the dollar
		// went to 1.00: MRR 60 + 31.25 = 91.25, an FX effect of 12.00.
		verify(t, []check{
			{"MRRPoints", b.attr(`#mrr-chart circle.mrr-point`, "data-mrr"), []string{"3200", "7925", "9125"}},
			{"FXBar", b.attr(`#movements-chart rect[data-kind="fx_effect"]`, "data-value"), []string{"1200"}},
			{"FXBarPeriod", b.attr(`#movements-chart rect[data-kind="fx_effect"]`, "data-period"), []string{"2026-03-01"}},
			{"FebNew", b.text(`tr[data-period="2026-02-01"] td[data-col="new"]`), "31.25"},
			{"FebExpansion", b.text(`tr[data-period="2026-02-01"] td[data-col="expansion"]`), "16.00"},
			{"MarFX", b.text(`tr[data-period="2026-03-01"] td[data-col="fx_effect"]`), "12.00"},
			{"MarPaying", b.text(`tr[data-period="2026-03-01"] td[data-col="paying_customers"]`), "3"},
			{"MRRCard", b.text(`#card-mrr strong`), "91.25 EUR"},
			{"MRRCardWhen", b.text(`#card-mrr small`), "on 2026-03-31"},
			{"NetNewCard", b.text(`#card-net-new strong`), "79.25 EUR"},
			{"FXCard", b.text(`#card-fx strong`), "12.00 EUR"},
			{"Legend", b.texts(`#movements-chart .legend .key`), []string{"New", "Expansion", "Reactivation", "Contraction", "Churn", "FX effect"}},
			{"NoMovers", eval[bool](b, `document.getElementById("movers-hint").hidden && document.getElementById("plans").hidden`), true},
			{"Selected", eval[string](b, `document.getElementById("currency").value`), "reporting"},
		})
		b.screenshot("reporting")
		// April lacks dollar rates: the error names the days and no chart
		// of the previous range stays.
		b.do("range without rates", chromedp.SetValue(chromedp.ID("to"), "2026-04-30"), chromedp.Click(chromedp.ID("apply")),
			chromedp.WaitVisible(chromedp.ID("error")))
		msg := b.text("#error")
		if !strings.HasPrefix(msg, "Could not load figures: no exchange rate for usd on ") || !strings.Contains(msg, "2026-04-30") {
			t.Errorf("error %q does not name the currency and days without a rate", msg)
		}
		verify(t, []check{{"NoCharts", len(b.attr("svg", "role")), 0}})
	})

	t.Run("StateInURL", func(t *testing.T) {
		b.t = t
		b.open(example)
		b.change("interval", "week")
		b.waitReady()
		u := eval[string](b, `location.search`)
		if u != "?from=2026-01-01&to=2026-04-30&interval=week&currency=usd&livemode=true" {
			t.Fatalf("URL after choosing weeks: %s", u)
		}
		// The link alone reopens the same view.
		b.open("/dashboard" + u)
		verify(t, []check{
			{"Interval", eval[string](b, `document.getElementById("interval").value`), "week"},
			{"NewestWeekFirst", b.attr(`#periods tbody tr:first-child`, "data-to"), []string{"2026-04-27"}},
			{"ChurnWeek", b.attr(`#movements-chart rect[data-kind="churn"]`, "data-period"), []string{"2026-03-30"}},
		})
	})

	t.Run("ErrorClearsStaleCharts", func(t *testing.T) {
		b.t = t
		b.open(example)
		b.do("ask for an impossible range", chromedp.SetValue(chromedp.ID("from"), "2026-05-01"),
			chromedp.SetValue(chromedp.ID("to"), "2026-04-01"), chromedp.Click(chromedp.ID("apply")),
			chromedp.WaitVisible(chromedp.ID("error")))
		verify(t, []check{
			{"Error", b.text("#error"), "Could not load figures: from must not be after to"},
			{"NoCharts", len(b.attr("svg", "role")), 0},
			{"NoCards", b.text("#summary"), ""},
			{"NoRows", len(b.attr("#periods tr", "data-period")), 0},
			{"NotReady", eval[bool](b, `document.body.dataset.ready === undefined`), true},
		})
		b.screenshot("error")
		b.do("fix the range", chromedp.SetValue(chromedp.ID("from"), "2026-01-01"),
			chromedp.SetValue(chromedp.ID("to"), "2026-04-30"), chromedp.Click(chromedp.ID("apply")))
		b.waitReady()
		if !eval[bool](b, `document.getElementById("error").hidden`) || len(b.attr(`#mrr-chart circle`, "data-mrr")) != 4 {
			t.Error("the error stayed or the charts did not return once the range was fixed")
		}
	})

	t.Run("ModeSwitchRefillsCurrencies", func(t *testing.T) {
		b.t = t
		b.open(example)
		b.change("livemode", "false")
		b.waitReady()
		verify(t, []check{
			{"TestCurrencies", b.attr(`#currency option`, "value"), []string{"eur", "reporting"}},
			{"TestMRRCard", b.text(`#card-mrr strong`), "15.00 EUR"},
			{"TestMRRChart", b.attr(`#mrr-chart svg`, "data-currency"), []string{"eur"}},
			{"URL", eval[string](b, `location.search`), "?from=2026-01-01&to=2026-04-30&interval=month&currency=eur&livemode=false"},
		})
		b.screenshot("test-mode")
		b.change("livemode", "true")
		b.waitReady()
		verify(t, []check{{"LiveCurrencies", b.attr(`#currency option`, "value"), []string{"jpy", "usd", "all", "reporting"}}})
	})

	t.Run("Readable400px", func(t *testing.T) {
		b.t = t
		b.do("narrow", chromedp.EmulateViewport(400, 900))
		b.open(example + "&movers=2026-04-01:churn")
		b.do("wait for the list", chromedp.WaitVisible(chromedp.ID("movers-table")))
		type sizes struct {
			Scroll, Client  int
			SVGAttr, SVGBox float64
			Font            string
		}
		s := eval[sizes](b, `(() => { const svg = document.querySelector("#mrr-chart svg");
			return {Scroll: document.documentElement.scrollWidth, Client: document.documentElement.clientWidth,
				SVGAttr: svg.width.baseVal.value, SVGBox: svg.getBoundingClientRect().width,
				Font: getComputedStyle(document.querySelector("#mrr-chart .y-tick")).fontSize} })()`)
		if s.Scroll > s.Client {
			t.Errorf("the page scrolls sideways at 400 px: %d > %d", s.Scroll, s.Client)
		}
		if s.SVGAttr > 400 || s.SVGBox < s.SVGAttr-1 || s.SVGBox > s.SVGAttr+1 {
			t.Errorf("chart drawn %v px wide, shown %v px: it is scaled, so its text is not 11 px", s.SVGAttr, s.SVGBox)
		}
		verify(t, []check{
			{"TickFont", s.Font, "11px"},
			{"LabelOverlaps", eval[int](b, overlapJS), 0},
			{"MRRPoints", b.attr(`#mrr-chart circle.mrr-point`, "data-mrr"), []string{"4000", "6000", "6000", "2000"}},
		})
		b.screenshot("narrow-400")
		b.do("wide again", chromedp.EmulateReset())
	})

	if errs := b.pageErrors(); len(errs) > 0 {
		t.Errorf("the page logged errors (exceptions or CSP violations): %s", strings.Join(errs, "\n"))
	}
}

package dashboard_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/client"
	"github.com/domo-framework/domo/dashboard"
	"github.com/domo-framework/domo/examples/coffee"
	"github.com/domo-framework/domo/examples/tea"
	"github.com/domo-framework/domo/examples/water"
	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/journal"
	"github.com/domo-framework/domo/worker"
)

var updateScreenshots = flag.Bool("update-screenshots", os.Getenv("DOMO_UPDATE_SCREENSHOTS") != "",
	"save screenshots of the dashboard's pages into docs/screenshots (also DOMO_UPDATE_SCREENSHOTS=1)")

// chromiumPath finds Debian's chromium (or $DOMO_CHROMIUM). Without one
// the test is skipped, except in CI (CI=true), where it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("DOMO_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium not found: install Debian's chromium (apt-get install chromium, or make deps) or set DOMO_CHROMIUM"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestBrowser runs a broker under load with its events recorded in a
// SQLite journal, serves the dashboard, and drives a real Chromium through
// it: the services appear, a failed request is found by its id, and its
// detail shows its timeline. With -update-screenshots it saves the main
// pages into docs/screenshots.
func TestBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The broker, its events folded into a journal by a Recorder.
	events := make(chan broker.Event, 65536)
	b, ep := testbroker.Start(t, func(c *broker.Config) { c.Events = events })
	store := openStore(t)
	if *updateScreenshots {
		// History for the charts: the last 15 minutes, before this run.
		writeAll(t, store, synthetic(40_000, time.Now().Add(-5*time.Second), 15*time.Minute, 1, 11), 5000)
	}
	rec := journal.NewRecorder(store, journal.Config{Broker: "test", FlushInterval: 50 * time.Millisecond})
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // after the client, browser and server below are closed
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := rec.Run(ctx, events); err != nil {
			t.Errorf("recorder: %v", err)
		}
	}()

	// Workers: tea, water (twice), coffee.
	wopts := []worker.Option{worker.WithBroker(ep), worker.WithHeartbeat(testbroker.HeartbeatInterval, testbroker.HeartbeatLiveness)}
	for _, w := range []*worker.Worker{tea.New(wopts...), water.New(wopts...), water.New(wopts...), coffee.New(wopts...)} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Run(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("worker: %v", err)
			}
		}()
	}
	c, err := client.New(client.WithBroker(ep))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitServices(t, c, "tea", "water", "coffee")

	// Load: a few callers in loops, one call in eight a failing water.boil.
	loadStart := time.Now()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; loadCtx.Err() == nil; i++ {
				cctx, ccancel := context.WithTimeout(loadCtx, 2*time.Second)
				switch (i + g) % 8 {
				case 0:
					_ = c.Call(cctx, "water.boil", water.Kettle{Celsius: 120}, nil) // fails: invalid
				case 1, 2:
					_ = c.Call(cctx, "water.pour", water.Glass{ML: 250}, nil)
				case 3:
					_ = c.Call(cctx, "coffee.order", coffee.Order{Size: []string{"small", "medium", "large"}[i%3]}, nil)
				case 4:
					_ = c.Call(cctx, "tea.menu", nil, nil)
				default:
					_ = c.Call(cctx, "tea.brew", tea.BrewRequest{Kind: "green", Sugar: i % 3}, nil)
				}
				ccancel()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}

	// A failed request, as the journal has it: the one we look for.
	var failed journal.Record
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := rec.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		p, err := store.List(ctx, journal.Filter{Service: "water", Method: "boil", Status: journal.StatusFailed, From: loadStart, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Records) > 0 && p.Records[0].RequestID != "" {
			failed = p.Records[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no failed water.boil in the journal")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("looking for failed request %s (journal id %s)", failed.RequestID, failed.ID)

	dash := dashboard.New(dashboard.Config{Broker: b, Journal: store, Contracts: dashboard.MMIDocs(c),
		Title: "browser test", Interval: 250 * time.Millisecond})
	srv := httptest.NewServer(dash)
	defer srv.Close()
	defer dash.Close() // runs first: ends the event streams

	// Chromium, headless, on loopback only.
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1440, 900),
	)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer bcancel()
	if err := chromedp.Do(bctx); err != nil { // starts the browser, which lives as long as bctx
		t.Fatalf("start chromium: %v", err)
	}
	tctx, tcancel := context.WithTimeout(bctx, 60*time.Second)
	defer tcancel()
	start := time.Now()
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	// text reads an element's text in one script: the page re-renders
	// with live data, and a node found first and read after may be gone.
	text := func(sel string) string {
		t.Helper()
		q, _ := json.Marshal(sel)
		s, err := chromedp.Run(tctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%s).innerText`, q)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	// click clicks an element in one script, for the same reason: a row
	// found by WaitVisible may be re-rendered before a separate click
	// ("Could not find node with given id"). It fails if there is none.
	click := func(sel string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			q, _ := json.Marshal(sel)
			found, err := chromedp.Evaluate[bool](fmt.Sprintf(
				`(() => { const e = document.querySelector(%s); if (e) e.click(); return !!e })()`, q))(ctx, tg)
			if err == nil && !found {
				err = fmt.Errorf("no %s to click", sel)
			}
			return chromedp.Void{}, err
		}
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// shoot saves a screenshot of the page with -update-screenshots, after
	// a moment for charts and live data to fill in.
	shoot := func(name string, full bool) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			if !*updateScreenshots {
				return chromedp.Void{}, nil
			}
			if _, err := chromedp.Sleep(1500*time.Millisecond)(ctx, tg); err != nil {
				return chromedp.Void{}, err
			}
			shot := chromedp.CaptureScreenshot() // the viewport
			if full {
				shot = chromedp.FullScreenshot(100) // the whole page
			}
			png, err := shot(ctx, tg)
			if err != nil {
				return chromedp.Void{}, err
			}
			path := filepath.Join("..", "docs", "screenshots", name+".png")
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return chromedp.Void{}, err
			}
			t.Logf("wrote %s (%d bytes)", path, len(png))
			return chromedp.Void{}, os.WriteFile(path, png, 0o644)
		}
	}
	if *updateScreenshots {
		if resp, err := http.Get(srv.URL + "/api/health"); err == nil { // starts the sampler
			resp.Body.Close()
		}
		time.Sleep(5 * time.Second) // live samples for the queue chart
	}

	// The overview shows the services.
	do("overview",
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(css(`#services-table tr[data-href="#/services/water"]`)),
		chromedp.WaitVisible(css(`#services-table tr[data-href="#/services/tea"]`)),
		chromedp.WaitVisible(css(`#live.on`)),
		shoot("overview", false),
	)
	services := text(`#services-table`)
	for _, s := range []string{"tea", "water", "coffee"} {
		if !strings.Contains(services, s) {
			t.Errorf("overview's services table %q lacks %s", services, s)
		}
	}

	// The services page lists water's methods with their docs and workers.
	do("services",
		chromedp.Navigate(srv.URL+"/#/services"),
		chromedp.WaitVisible(css(`#svc-water table.methods`)),
		shoot("services", true),
	)
	if w := text(`#svc-water`); !strings.Contains(w, "boil") || !strings.Contains(w, "asking for more than 100 degrees is a typed error") {
		t.Errorf("water's panel lacks boil and its doc: %q", w)
	}

	// The requests page: search the failed request by its id, open it.
	row := fmt.Sprintf(`#requests-table tr[data-request-id=%q]`, failed.RequestID)
	do("search and open "+failed.RequestID,
		chromedp.Navigate(srv.URL+"/#/requests"),
		chromedp.WaitVisible(css(`#requests-table tr[data-id]`)),
		// The summary strip fills in after the list and moves the form
		// down: wait for it, so that no click lands where a button was.
		chromedp.WaitVisible(css(`#req-summary b`)),
		shoot("requests", false),
		chromedp.SetValue(css(`#search`), failed.RequestID),
		chromedp.SendKeys(css(`#search`), "\r"), // Enter: the form's submit, wherever its button is
		chromedp.WaitVisible(css(row)),
		chromedp.WaitVisible(css(`#req-summary b`)),
		click(row),
		chromedp.WaitVisible(css(`#timeline li.failed`)),
		shoot("request", false),
	)
	detail := strings.ToLower(text(`#timeline`)) // the page capitalizes the steps
	for _, want := range []string{"received", "dispatched", "failed", "water boils at 100 degrees, not 120"} {
		if !strings.Contains(detail, want) {
			t.Errorf("timeline %q lacks %q", detail, want)
		}
	}
	if e := text(`#error`); !strings.Contains(e, "invalid") {
		t.Errorf("error box %q lacks the code invalid", e)
	}

	// The failed tab lists failures only.
	do("failed requests",
		chromedp.Navigate(srv.URL+"/#/requests?status=failed"),
		chromedp.WaitVisible(css(`#requests-table tr[data-id]`)),
		shoot("requests-failed", false),
	)
	if l := text(`#requests-table tbody`); strings.Contains(l, "completed") {
		t.Errorf("the failed tab lists a completed request: %q", l)
	}
	t.Logf("browser steps took %v", time.Since(start).Round(time.Millisecond))
	stopLoad()
}

// waitServices waits until each service has a ready worker.
func waitServices(t *testing.T, c *client.Client, services ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		infos, err := c.Services(ctx)
		cancel()
		ready := map[string]bool{}
		for _, in := range infos {
			ready[in.Name] = in.Ready > 0
		}
		all := err == nil
		for _, s := range services {
			all = all && ready[s]
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("services %v not ready: %v %v", services, infos, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

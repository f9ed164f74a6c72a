package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/domo-framework/domo/dashboard"
	"github.com/domo-framework/domo/journal"
	"github.com/domo-framework/domo/mdp"
)

func get(t *testing.T, srv *httptest.Server, path string, want int, out any) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s = %d %s; want %d", path, resp.StatusCode, body, want)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
}

func serve(t *testing.T, cfg dashboard.Config) (*dashboard.Dashboard, *httptest.Server) {
	t.Helper()
	d := dashboard.New(cfg)
	srv := httptest.NewServer(d)
	t.Cleanup(func() {
		d.Close() // ends the event streams first, so that srv.Close need not wait for them
		srv.Close()
	})
	return d, srv
}

func TestAPI(t *testing.T) {
	store := openStore(t)
	now := time.Now()
	recs := synthetic(2000, now.Add(-2*time.Second), 10*time.Minute, 42, 1)
	writeAll(t, store, recs, 500)
	// One failed water.boil we look for by its request id, and one in progress.
	failed := journal.Record{ID: journal.ID{Run: 7, Seq: 1}, RequestID: "feedf00d-1", Service: "water", Method: "boil",
		Status: journal.StatusFailed, Code: "invalid", Message: "water boils at 100 degrees, not 120", Attempts: 1, Worker: "w1",
		Received: now.Add(-time.Second), Dispatched: now.Add(-time.Second + time.Millisecond),
		LastDispatched: now.Add(-time.Second + time.Millisecond), Ended: now.Add(-time.Second + 3*time.Millisecond)}
	busy := journal.Record{ID: journal.ID{Run: 7, Seq: 2}, RequestID: "feedf00d-2", Service: "coffee", Method: "order",
		Status: journal.StatusProcessing, Attempts: 1, Worker: "w2", Received: now.Add(-500 * time.Millisecond),
		Dispatched: now.Add(-499 * time.Millisecond), LastDispatched: now.Add(-499 * time.Millisecond)}
	writeAll(t, store, []journal.Record{failed, busy}, 10)

	contracts := func(context.Context) ([]mdp.ServiceContract, error) {
		return []mdp.ServiceContract{{Service: "water", Doc: "Water", Methods: []mdp.MethodContract{
			{Name: "boil", Doc: "Boil the kettle.", Request: json.RawMessage(`{"type":"object"}`)}, {Name: "pour", Doc: "Pour a glass."}}}}, nil
	}
	_, srv := serve(t, dashboard.Config{Broker: &fakeBroker{stats: fakeStats()}, Journal: store, Contracts: contracts, Title: "test"})

	t.Run("index", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "assets/app.js") {
			t.Fatalf("GET / = %d %.200s", resp.StatusCode, body)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("CSP = %q", csp)
		}
		for _, a := range []string{"/assets/app.js", "/assets/app.css", "/assets/favicon.svg"} {
			get(t, srv, a, 200, nil)
		}
		get(t, srv, "/nope", 404, nil)
		get(t, srv, "/api/nope", 404, nil)
	})

	t.Run("health", func(t *testing.T) {
		var h dashboard.Health
		get(t, srv, "/api/health", 200, &h)
		if !h.Up || h.Brokers != 2 || h.Services != 2 || h.Workers != 3 || h.Ready != 3 || h.Queued != 2 || h.Capacity != 48 || !h.Journal || h.Title != "test" {
			t.Fatalf("health = %+v", h)
		}
		if h.LastMinute == nil || h.LastMinute.Failed < 1 {
			t.Fatalf("last minute = %+v; want the failed request", h.LastMinute)
		}
	})

	t.Run("services", func(t *testing.T) {
		var ss []dashboard.Service
		get(t, srv, "/api/services", 200, &ss)
		if len(ss) != 2 || ss[0].Name != "tea" || ss[1].Name != "water" {
			t.Fatalf("services = %+v", ss)
		}
		w := ss[1]
		if len(w.WorkerList) != 2 || len(w.MethodList) != 2 || w.MethodList[0].Doc != "Boil the kettle." || w.Doc != "Water" {
			t.Fatalf("water = %+v", w)
		}
		if w.Recent == nil || w.Recent.Total == 0 || w.MethodList[0].Recent == nil {
			t.Fatalf("water recent = %+v", w.Recent)
		}
	})

	t.Run("search", func(t *testing.T) {
		var p dashboard.RequestPage
		get(t, srv, "/api/requests?q=feedf00d-1", 200, &p)
		if len(p.Requests) != 1 || p.Requests[0].ID != "7-1" || p.Requests[0].Status != "failed" {
			t.Fatalf("search = %+v", p)
		}
		// A journal id finds it too.
		get(t, srv, "/api/requests?q=7-1", 200, &p)
		if len(p.Requests) != 1 || p.Requests[0].RequestID != "feedf00d-1" {
			t.Fatalf("search by journal id = %+v", p)
		}
		get(t, srv, "/api/requests?q=nothing", 200, &p)
		if len(p.Requests) != 0 {
			t.Fatalf("search nothing = %+v", p)
		}
	})

	t.Run("filters", func(t *testing.T) {
		var p dashboard.RequestPage
		get(t, srv, "/api/requests?status=in_progress", 200, &p)
		if len(p.Requests) != 1 || p.Requests[0].ID != "7-2" {
			t.Fatalf("in progress = %+v", p)
		}
		get(t, srv, "/api/requests?status=failed&service=water&method=boil&since=1h&limit=10", 200, &p)
		if len(p.Requests) != 10 || p.Next == "" {
			t.Fatalf("failed water.boil: %d requests, next %q", len(p.Requests), p.Next)
		}
		for _, r := range p.Requests {
			if r.Status != "failed" || r.Service != "water" || r.Method != "boil" {
				t.Fatalf("filtered request %+v", r)
			}
		}
		// Keyset paging: the next page continues, older, with no overlap.
		var p2 dashboard.RequestPage
		get(t, srv, "/api/requests?status=failed&service=water&method=boil&since=1h&limit=10&after="+url.QueryEscape(p.Next), 200, &p2)
		if len(p2.Requests) == 0 || !p2.Requests[0].Received.Before(p.Requests[9].Received) && p2.Requests[0].ID == p.Requests[9].ID {
			t.Fatalf("page 2 = %+v", p2.Requests)
		}
		for _, bad := range []string{"status=nope", "limit=0", "limit=1000", "since=x", "after=zz", "from=yesterday"} {
			get(t, srv, "/api/requests?"+bad, 400, nil)
		}
	})

	t.Run("detail", func(t *testing.T) {
		var d dashboard.RequestDetail
		get(t, srv, "/api/requests/7-1", 200, &d)
		if d.Status != "failed" || d.Code != "invalid" || len(d.Timeline) != 3 || d.Timeline[2].What != "failed" || d.TotalMS != 3 {
			t.Fatalf("detail = %+v", d)
		}
		get(t, srv, "/api/requests/7-99", 404, nil)
		get(t, srv, "/api/requests/x", 400, nil)
	})

	t.Run("summary", func(t *testing.T) {
		var s dashboard.WindowSummary
		get(t, srv, "/api/summary?since=1h", 200, &s)
		if s.Total != 2002 || s.InProgress != 1 || s.P50 <= 0 || s.P99 < s.P50 || s.ErrorRate <= 0 {
			t.Fatalf("summary = %+v", s)
		}
		var ser dashboard.Series
		get(t, srv, "/api/series?range=15m&buckets=30", 200, &ser)
		total := 0
		for _, p := range ser.Points {
			total += p.Total
		}
		if len(ser.Points) != 30 || ser.Step != 30 || total != 2002 {
			t.Fatalf("series: %d points, step %v, total %d", len(ser.Points), ser.Step, total)
		}
		get(t, srv, "/api/series?range=1y", 400, nil)
	})

	t.Run("events", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/api/events")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("content type %q", ct)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var tick dashboard.Tick
				if err := json.Unmarshal([]byte(data), &tick); err != nil {
					t.Fatal(err)
				}
				if !tick.Health.Up || tick.Latest != "7-2" || tick.Sample.Workers != 3 {
					t.Fatalf("tick = %+v", tick)
				}
				return
			}
		}
		t.Fatalf("no tick: %v", sc.Err())
	})
}

func TestJournalOff(t *testing.T) {
	_, srv := serve(t, dashboard.Config{Broker: &fakeBroker{stats: fakeStats()}})
	var h dashboard.Health
	get(t, srv, "/api/health", 200, &h)
	if h.Journal || h.LastMinute != nil || !h.Up {
		t.Fatalf("health = %+v", h)
	}
	for _, p := range []string{"/api/requests", "/api/requests/1-1", "/api/summary", "/api/series"} {
		var body map[string]any
		get(t, srv, p, 503, &body)
		if body["journal"] != false {
			t.Errorf("GET %s = %v; want journal false", p, body)
		}
	}
	var ss []dashboard.Service
	get(t, srv, "/api/services", 200, &ss)
	if len(ss) != 2 || ss[0].Recent != nil || len(ss[0].MethodList) != 0 {
		t.Fatalf("services = %+v", ss)
	}
}

func TestBrokerDown(t *testing.T) {
	_, srv := serve(t, dashboard.Config{Broker: &fakeBroker{err: errors.New("domo: closed")}})
	var h dashboard.Health
	get(t, srv, "/api/health", 200, &h)
	if h.Up || h.Error == "" {
		t.Fatalf("health = %+v", h)
	}
	get(t, srv, "/api/services", 503, nil)
}

package dashboard_test

import (
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/domo-framework/domo/dashboard"
)

// TestLargeJournal fills a SQLite journal with many requests (200,000 by
// default, 20,000 with -short or -race; DOMO_DASHBOARD_ROWS changes it,
// e.g. 1000000) and logs how long
// the requests pages' endpoints take. It asserts results, not times: the
// times are for the log (go test -v -run TestLargeJournal).
func TestLargeJournal(t *testing.T) {
	rows := 200_000
	if testing.Short() || raceEnabled {
		rows = 20_000
	}
	if s := os.Getenv("DOMO_DASHBOARD_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1000 {
			t.Fatalf("DOMO_DASHBOARD_ROWS=%q: want a number of at least 1000", s)
		}
		rows = n
	}
	store := openStore(t)
	now := time.Now()
	start := time.Now()
	recs := synthetic(rows, now.Add(-time.Second), time.Hour, 99, 3)
	needle := recs[rows/3] // a request in the middle, to search for
	writeAll(t, store, recs, 10_000)
	recs = nil
	t.Logf("wrote %d records in %v", rows, time.Since(start).Round(time.Millisecond))

	_, srv := serve(t, dashboard.Config{Broker: &fakeBroker{stats: fakeStats()}, Journal: store})

	timed := func(name, path string, out any) {
		t.Helper()
		start := time.Now()
		get(t, srv, path, 200, out)
		t.Logf("%-44s %8.1f ms", name, float64(time.Since(start).Microseconds())/1000)
	}

	var p dashboard.RequestPage
	timed("requests: newest page", "/api/requests", &p)
	if len(p.Requests) != 50 || p.Next == "" {
		t.Fatalf("first page: %d requests, next %q", len(p.Requests), p.Next)
	}
	next := p.Next
	for i := 2; i <= 20; i++ { // page down: keyset, each as cheap as the first
		get(t, srv, "/api/requests?after="+url.QueryEscape(next), 200, &p)
		next = p.Next
	}
	timed("requests: page 21 (keyset)", "/api/requests?after="+url.QueryEscape(next), &p)
	if len(p.Requests) != 50 {
		t.Fatalf("page 21: %d requests", len(p.Requests))
	}
	timed("requests: failed", "/api/requests?status=failed", &p)
	if len(p.Requests) == 0 || p.Requests[0].Status != "failed" {
		t.Fatalf("failed: %+v", p.Requests)
	}
	timed("requests: failed, water.boil, last hour", "/api/requests?status=failed&service=water&method=boil&since=1h", &p)
	if len(p.Requests) == 0 {
		t.Fatal("no failed water.boil")
	}
	timed("requests: in progress (none)", "/api/requests?status=in_progress", &p)
	timed("requests: dropped", "/api/requests?status=dropped", &p)
	timed("requests: search by request id", "/api/requests?q="+url.QueryEscape(needle.RequestID), &p)
	if len(p.Requests) != 1 || p.Requests[0].ID != needle.ID.String() {
		t.Fatalf("search %s: %+v", needle.RequestID, p.Requests)
	}
	var det dashboard.RequestDetail
	timed("request detail", "/api/requests/"+needle.ID.String(), &det)

	var s dashboard.WindowSummary
	timed("summary: last 5 minutes", "/api/summary?since=5m", &s)
	timed("summary: last 2 hours (every row)", "/api/summary?since=2h", &s)
	if s.Total != rows {
		t.Fatalf("summary of the last hour: total %d; want %d", s.Total, rows)
	}
	timed("summary: water.boil, last hour", "/api/summary?since=1h&service=water&method=boil", &s)

	var ser dashboard.Series
	timed("series: 15 minutes in 60 windows, cold", "/api/series?range=15m&buckets=60", &ser)
	timed("series: 15 minutes in 60 windows, warm", "/api/series?range=15m&buckets=60", &ser)
	timed("series: 1 hour in 60 windows, cold", "/api/series?range=1h&buckets=60", &ser)
	var h dashboard.Health
	timed("health (with the last minute's summary)", "/api/health", &h)
	var ss []dashboard.Service
	timed("services (each with its last 5 minutes)", "/api/services", &ss)
}

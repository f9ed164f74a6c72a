package journal_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/internal/loadgen"
	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/journal"
	"github.com/domo-framework/domo/journal/journaltest"
	"github.com/domo-framework/domo/journal/postgres"
	"github.com/domo-framework/domo/journal/sqlite"
	"github.com/domo-framework/domo/worker"
	"github.com/jackc/pgx/v5"
)

// TestJournalCost measures what the journal costs the broker: `domo bench`'s
// load (2 echo workers of concurrency 32, 8 clients with 8 requests in
// flight, 64-byte payloads) through one in-process broker with the journal
// off, on SQLite and on PostgreSQL (DOMO_TEST_POSTGRES), in alternating
// rounds. Run with DOMO_JOURNAL_BENCH=1 (rounds: DOMO_JOURNAL_BENCH_ROUNDS,
// default 3; seconds per run: DOMO_JOURNAL_BENCH_SECONDS, default 5).
// docs/benchmarks.md ("The journal's cost") has the figures.
func TestJournalCost(t *testing.T) {
	if os.Getenv("DOMO_JOURNAL_BENCH") == "" {
		t.Skip("set DOMO_JOURNAL_BENCH=1 to measure the journal's cost")
	}
	rounds := envInt("DOMO_JOURNAL_BENCH_ROUNDS", 3)
	secs := envInt("DOMO_JOURNAL_BENCH_SECONDS", 5)
	modes := []string{"off", "sqlite"}
	pgDSN := os.Getenv("DOMO_TEST_POSTGRES")
	if pgDSN != "" {
		modes = append(modes, "postgres")
	} else {
		t.Log("DOMO_TEST_POSTGRES not set: PostgreSQL not measured")
	}
	results := map[string][]loadgen.Result{}
	stats := map[string][]string{}
	for round := 0; round < rounds; round++ {
		for _, mode := range modes {
			res, note := costRun(t, mode, pgDSN, time.Duration(secs)*time.Second)
			t.Logf("round %d %-8s %v %s", round+1, mode, res, note)
			results[mode] = append(results[mode], res)
			stats[mode] = append(stats[mode], note)
		}
	}
	median := func(rs []loadgen.Result) loadgen.Result {
		s := slices.Clone(rs)
		slices.SortFunc(s, func(a, b loadgen.Result) int { return int(a.Rate() - b.Rate()) })
		return s[len(s)/2]
	}
	off := median(results["off"]).Rate()
	var b strings.Builder
	fmt.Fprintf(&b, "\n| journal | req/s (median of %d) | vs off | p50 | p99 | all runs req/s |\n| --- | --- | --- | --- | --- | --- |\n", rounds)
	for _, mode := range modes {
		m := median(results[mode])
		var all []string
		for _, r := range results[mode] {
			all = append(all, fmt.Sprintf("%.0f", r.Rate()))
		}
		fmt.Fprintf(&b, "| %s | %.0f | %+.1f%% | %v | %v | %s |\n", mode, m.Rate(), 100*(m.Rate()-off)/off,
			m.P50.Round(time.Microsecond), m.P99.Round(time.Microsecond), strings.Join(all, ", "))
	}
	t.Log(b.String())
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func costRun(t *testing.T, mode, pgDSN string, d time.Duration) (loadgen.Result, string) {
	t.Helper()
	var (
		ch    chan broker.Event
		store journal.Store
		err   error
	)
	ctx := context.Background()
	switch mode {
	case "sqlite":
		store, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "journal.db"))
	case "postgres":
		conn, cerr := pgx.Connect(ctx, pgDSN)
		if cerr != nil {
			t.Fatal(cerr)
		}
		schema := fmt.Sprintf("journal_cost_%d", time.Now().UnixNano())
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
			t.Fatal(err)
		}
		defer func() {
			conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			conn.Close(ctx)
		}()
		store, err = postgres.Open(ctx, pgDSN+" search_path="+schema)
	}
	if err != nil {
		t.Fatal(err)
	}
	var rec *journal.Recorder
	var stop func()
	if store != nil {
		ch = make(chan broker.Event, 65536)
		rec = journal.NewRecorder(store, journal.Config{Broker: "bench"})
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- rec.Run(rctx, ch) }()
		stop = func() { cancel(); <-done; store.Close() }
	}
	var res loadgen.Result
	var bs broker.Stats
	var cpuPerReq time.Duration // the whole process's: broker, workers, clients and journal
	t.Run(mode, func(t *testing.T) {
		b, ep := testbroker.Start(t, func(c *broker.Config) {
			if ch != nil {
				c.Events = ch
			}
		})
		for i := 0; i < 2; i++ {
			w := worker.New("bench", worker.WithBroker(ep), worker.WithConcurrency(32),
				worker.WithHeartbeat(testbroker.HeartbeatInterval, testbroker.HeartbeatLiveness))
			w.HandleFunc("echo", func(_ context.Context, r *worker.Request) ([]byte, error) { return r.Payload, nil })
			wdone := make(chan error, 1)
			go func() { wdone <- w.Run(ctx) }()
			t.Cleanup(func() { w.Close(); <-wdone })
		}
		time.Sleep(300 * time.Millisecond) // workers ready
		cpu0 := journaltest.CPUTime()
		res, err = loadgen.Run(ctx, loadgen.Config{Broker: ep, Method: "bench.echo", Clients: 8, InFlight: 8,
			Size: 64, Duration: d, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if res.Requests > 0 {
			cpuPerReq = (journaltest.CPUTime() - cpu0) / time.Duration(res.Requests)
		}
		bs, _ = b.Stats(ctx)
	})
	note := fmt.Sprintf("CPU %.1f µs/req", float64(cpuPerReq)/float64(time.Microsecond))
	if rec != nil {
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		rec.Flush(fctx)
		cancel()
		st := rec.Stats()
		n, _ := store.Summary(ctx, journal.Window{Service: "bench"})
		note += fmt.Sprintf(" (journal: %d rows, %d batches, %d dropped by the recorder, %d by the broker, %d write errors)",
			n.Total, st.Batches, st.Dropped, bs.Counters.EventsDropped, st.WriteErrors)
		stop()
	}
	return res, note
}

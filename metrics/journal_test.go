package metrics_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/journal"
	"github.com/domo-framework/domo/journal/sqlite"
	"github.com/domo-framework/domo/metrics"
)

// TestJournalCollector scrapes the counters of a Recorder writing to a
// SQLite journal: three requests ended, one still in progress.
func TestJournalCollector(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rec := journal.NewRecorder(store, journal.Config{})
	events := make(chan broker.Event, 16)
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- rec.Run(runCtx, events) }()
	defer func() {
		stop()
		<-ran
	}()

	now := time.Now()
	for seq := uint64(1); seq <= 4; seq++ {
		e := broker.Event{Seq: seq, Service: "tea", Method: "brew", Received: now, Time: now}
		kinds := []broker.EventKind{broker.Received, broker.Dispatched, broker.Completed}
		if seq == 4 {
			kinds = kinds[:2] // still at its worker
		}
		for _, k := range kinds {
			e.Kind = k
			events <- e
		}
	}
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(metrics.Handler(metrics.NewRegistry(metrics.NewJournalCollector(rec))))
	defer srv.Close()
	got := scrape(t, srv.URL)
	for series, want := range map[string]float64{
		"domo_journal_events_total":       11,
		"domo_journal_written_total":      4,
		"domo_journal_dropped_total":      0,
		"domo_journal_write_errors_total": 0,
		"domo_journal_lost_total":         0,
		"domo_journal_trimmed_total":      0,
		"domo_journal_trim_errors_total":  0,
		"domo_journal_pending":            0,
		"domo_journal_live":               1,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v); want %v", series, v, ok, want)
		}
	}
	if got["domo_journal_batches_total"] < 1 {
		t.Errorf("domo_journal_batches_total = %v; want at least 1", got["domo_journal_batches_total"])
	}
}

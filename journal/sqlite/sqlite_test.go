package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/domo-framework/domo/journal"
	"github.com/domo-framework/domo/journal/journaltest"
	"github.com/domo-framework/domo/journal/sqlite"
)

func TestConformance(t *testing.T) {
	journaltest.Run(t, func(t *testing.T) journal.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "journal.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestOpenSpec(t *testing.T) {
	s, err := journal.Open("sqlite:" + filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := journal.Open("sqlite::memory:"); err == nil {
		t.Errorf("Open(sqlite::memory:) = nil error")
	}
}

// TestRollupBackfill opens a journal written before the rollups existed:
// Open builds them from the rows.
func TestRollupBackfill(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
	var recs []journal.Record
	for i := range 3000 {
		recv := base.Add(time.Duration(i) * 100 * time.Millisecond)
		r := journal.Record{ID: journal.ID{Run: 1, Seq: int64(i)}, Service: "tea", Method: "brew",
			Status: journal.StatusCompleted, Received: recv, Ended: recv.Add(time.Duration(i%977+1) * time.Millisecond)}
		if i%7 == 0 {
			r.Status = journal.StatusFailed
		}
		recs = append(recs, r)
	}
	if err := s.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	w := journal.Window{From: base, To: base.Add(5 * time.Minute)}
	want, err := s.Summary(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB.ExecContext(ctx, `DELETE FROM domo_journal_minutes`); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Summary(ctx, w); got.Total == want.Total {
		t.Fatalf("Summary without rollups = %+v; want fewer than %d", got, want.Total)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.Summary(ctx, w); err != nil || got != want {
		t.Errorf("Summary after backfill = %+v, %v\nwant %+v", got, err, want)
	}
}

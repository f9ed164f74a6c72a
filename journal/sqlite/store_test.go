package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domo-framework/domo/journal"
	"github.com/domo-framework/domo/journal/sqlite"
)

// openTemp opens a new journal in the test's temporary directory, closed
// when the test ends.
func openTemp(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// finalRecord is a completed record of run 1 received at base+i ms.
func finalRecord(base time.Time, run, seq int64, i int) journal.Record {
	recv := base.Add(time.Duration(i) * time.Millisecond)
	return journal.Record{ID: journal.ID{Run: run, Seq: seq}, RequestID: "r" + strconv.FormatInt(seq, 10), Service: "tea", Method: "brew",
		Status: journal.StatusCompleted, Received: recv, Dispatched: recv, LastDispatched: recv, Ended: recv.Add(time.Millisecond)}
}

// TestListConcurrentNoPoolDeadlock lists from more goroutines than the
// store has connections (4). List reads the segments' ids with one query
// and each segment's data with another while the first is open, so each
// List holds a connection while it waits for a second: four at once hold
// all four and wait until their contexts end (here, the deadline), and
// every Write, Get and Summary meanwhile waits for a connection too.
func TestListConcurrentNoPoolDeadlock(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 300 { // a write a record: a segment a record
		if err := s.Write(ctx, []journal.Record{finalRecord(base, 1, int64(i), i)}); err != nil {
			t.Fatal(err)
		}
	}
	lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 5 {
				if p, err := s.List(lctx, journal.Filter{Limit: 1000}); err != nil || len(p.Records) != 300 {
					errs <- fmt.Errorf("List = %d records, %v", len(p.Records), err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestListDuringSegmentRewrites lists while another goroutine writes
// records again, which moves them to new segments (the old ones deleted or
// rewritten) or between domo_journal and a segment. Every page must hold
// every record once, as written. List reads the segments' ids and run in
// one statement and each one's data in another, each at its own moment,
// without a common snapshot: a segment deleted in between fails the List
// (sql.ErrNoRows), an id reused by a segment of another run is decoded as
// the first run's, and a record read in domo_journal before it moved to a
// segment is read there too.
func TestListDuringSegmentRewrites(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	known := make(map[journal.ID]bool)
	for i := range 100 {
		r := finalRecord(base, 1, int64(i), 10+i)
		known[r.ID] = true
		if err := s.Write(ctx, []journal.Record{r}); err != nil {
			t.Fatal(err)
		}
	}
	// Received first, so read last: a, b and c, written again and again.
	// a and b are final: each write deletes their segments and makes new
	// ones, in an order that alternates, so that a segment id goes to a's
	// run one time and b's the next. c alternates in progress and final.
	a, b, c := finalRecord(base, 1, 1000, 0), finalRecord(base, 2, 2000, 1), finalRecord(base, 3, 3000, 2)
	known[a.ID], known[b.ID], known[c.ID] = true, true, true
	open := c
	open.Status, open.Ended = journal.StatusProcessing, time.Time{}
	if err := s.Write(ctx, []journal.Record{a, b, c}); err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	var writer sync.WaitGroup
	writer.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			batch := []journal.Record{a, b, c}
			if i%2 == 1 {
				batch = []journal.Record{b, a, open}
			}
			if err := s.Write(ctx, batch); err != nil {
				t.Errorf("Write = %v", err)
				return
			}
		}
	})
	defer writer.Wait()
	defer close(done)

	fails := 0
	for i := 0; i < 100 && fails < 5; i++ {
		p, err := s.List(ctx, journal.Filter{Limit: 1000})
		if err != nil {
			t.Errorf("List %d = %v", i, err)
			fails++
			continue
		}
		seen := make(map[journal.ID]int)
		for _, r := range p.Records {
			seen[r.ID]++
		}
		var wrong []string
		for id, n := range seen {
			if !known[id] || n != 1 {
				wrong = append(wrong, fmt.Sprintf("%v ×%d", id, n))
			}
		}
		if len(wrong) > 0 || len(p.Records) != len(known) {
			t.Errorf("List %d: %d records; want %d, each once; unknown or repeated: %v", i, len(p.Records), len(known), wrong)
			fails++
		}
	}
}

// TestTrimFailedCommitKeepsLiveSet makes the commit of Trim's last
// transaction fail (a deferred foreign key on a row it deletes; in
// production a cancelled context, as the Recorder's on shutdown, or a full
// disk). The rows in progress it deleted are then back, but trimBefore has
// already taken their ids out of the store's set of rows in progress: a
// later Write that makes one final leaves its row in domo_journal, and the
// record is in two places (Get returns the stale row in progress, List
// gives it twice).
func TestTrimFailedCommitKeepsLiveSet(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	// One connection, so that the pragma holds for every statement.
	s.DB.SetMaxOpenConns(1)
	for _, q := range []string{`PRAGMA foreign_keys = ON`,
		`CREATE TABLE guard (run INTEGER, seq INTEGER,
			FOREIGN KEY (run, seq) REFERENCES domo_journal (run, seq) DEFERRABLE INITIALLY DEFERRED)`} {
		if _, err := s.DB.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	done := finalRecord(base, 1, 2, 60_000)
	old := finalRecord(base, 1, 1, 0)
	inProgress := old
	inProgress.Status, inProgress.Ended = journal.StatusProcessing, time.Time{}
	if err := s.Write(ctx, []journal.Record{inProgress, done}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB.ExecContext(ctx, `INSERT INTO guard VALUES (?, ?)`, old.ID.Run, old.ID.Seq); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Trim(ctx, base.Add(time.Second), 0); err == nil || !strings.Contains(err.Error(), "FOREIGN KEY") {
		t.Fatalf("Trim with a deferred foreign key on the row it deletes = %v; want its commit to fail", err)
	}
	if _, err := s.DB.ExecContext(ctx, `DELETE FROM guard`); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, old.ID); err != nil || got.Status != journal.StatusProcessing {
		t.Fatalf("after the failed Trim, Get(%v) = %v, %v; want the row in progress, kept", old.ID, got.Status, err)
	}
	s.DB.SetMaxOpenConns(4) // List takes two at once

	if err := s.Write(ctx, []journal.Record{old}); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := s.DB.QueryRowContext(ctx, `SELECT count(*) FROM domo_journal WHERE run = ? AND seq = ?`, old.ID.Run, old.ID.Seq).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("%v written final: %d rows left in domo_journal, %v; want 0", old.ID, rows, err)
	}
	if got, err := s.Get(ctx, old.ID); err != nil || got.Status != journal.StatusCompleted {
		t.Errorf("Get(%v) = %v, %v; want completed", old.ID, got.Status, err)
	}
	p, err := s.List(ctx, journal.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.Records); n != 2 {
		t.Errorf("List: %d records %v; want 2", n, ids(p.Records))
	}
}

// TestTrimMaxRowsOverlapping trims by count a journal whose segments
// overlap in receipt time (batches of three runs, each batch's records
// spread wider than the gap between batches, many sharing a receipt time),
// some rewritten (records written final again) and with rows in progress
// among them: each Trim keeps exactly the newest maxRows, in List's order.
func TestTrimMaxRowsOverlapping(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cur := make(map[journal.ID]journal.Record)
	seq := int64(0)
	for b := range 60 {
		var batch []journal.Record
		for i := range 40 {
			seq++
			ms := b*50 + (i*37+b*11)%200 // a batch spans 200 ms; batches start 50 ms apart
			r := finalRecord(base, int64(1+i%3), seq, ms/10*10)
			if i%15 == 0 {
				r.Status, r.Ended = journal.StatusProcessing, time.Time{}
			}
			batch = append(batch, r)
		}
		if b > 0 { // the batch before's first record (in progress) and second (final), written final
			for _, id := range []journal.ID{{Run: 1, Seq: seq - 79}, {Run: 2, Seq: seq - 78}} {
				again := cur[id]
				again.Status, again.Ended = journal.StatusFailed, again.Received.Add(time.Second)
				batch = append(batch, again)
			}
		}
		if err := s.Write(ctx, batch); err != nil {
			t.Fatal(err)
		}
		for _, r := range batch {
			cur[r.ID] = r
		}
	}
	all := slices.SortedFunc(func(yield func(journal.Record) bool) {
		for _, r := range cur {
			if !yield(r) {
				return
			}
		}
	}, newestFirst)
	prev := len(all)
	for _, keep := range []int{prev + 5, prev, prev - 1, 1500, 999, 333, 100, 37, 2, 1} {
		n, err := s.Trim(ctx, time.Time{}, keep)
		if err != nil {
			t.Fatalf("Trim(%d) = %v", keep, err)
		}
		if want := max(prev-keep, 0); n != want {
			t.Errorf("Trim(%d) deleted %d; want %d", keep, n, want)
		}
		want := all[:min(keep, prev)]
		if got := listAll(t, s, journal.Filter{Limit: 1000}); !slices.Equal(ids(got), ids(want)) {
			t.Fatalf("after Trim(%d): %d records, oldest %v; want %d, oldest %v", keep, len(got), ids(got)[max(len(got)-1, 0):], len(want), want[len(want)-1].ID)
		}
		prev = len(want)
	}
}

// TestUnreadableSegment damages one segment of three (as a bad disk, or a
// later version's encoding, would): reads skip it, a write of its records
// again still lands, and a trim that reaches it deletes it. One bad
// segment never stops the journal.
func TestUnreadableSegment(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for b := range 3 { // segments of 10 records, a second apart
		var recs []journal.Record
		for i := range 10 {
			seq := int64(b*10 + i)
			recs = append(recs, finalRecord(base, 1, seq, int(seq)*100))
		}
		if err := s.Write(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	// The middle segment (seqs 10-19) now holds a version byte no reader knows.
	if _, err := s.DB.ExecContext(ctx, `UPDATE domo_journal_segments SET data = x'0900' WHERE min_seq = 10`); err != nil {
		t.Fatal(err)
	}
	page, err := s.List(ctx, journal.Filter{})
	if err != nil || len(page.Records) != 20 {
		t.Fatalf("List = %d records, %v; want the 20 of the readable segments", len(page.Records), err)
	}
	if _, err := s.Get(ctx, journal.ID{Run: 1, Seq: 15}); !errors.Is(err, journal.ErrNotFound) {
		t.Errorf("Get(a record of the bad segment) = %v; want ErrNotFound", err)
	}
	if r, err := s.Get(ctx, journal.ID{Run: 1, Seq: 25}); err != nil || r.ID.Seq != 25 {
		t.Errorf("Get(1-25) = %v, %v", r.ID, err)
	}
	for _, w := range []journal.Window{{}, {From: base, To: base.Add(3 * time.Second)}} {
		if sum, err := s.Summary(ctx, w); err != nil || sum.Completed != 20 {
			t.Errorf("Summary(%v) = %+v, %v; want the 20 readable", w, sum, err)
		}
	}
	// Written again (a Recorder retrying), record 12 lands beside the bad segment.
	if err := s.Write(ctx, []journal.Record{finalRecord(base, 1, 12, 1200)}); err != nil {
		t.Fatalf("Write over the bad segment's range = %v", err)
	}
	if r, err := s.Get(ctx, journal.ID{Run: 1, Seq: 12}); err != nil || r.ID.Seq != 12 {
		t.Errorf("Get(1-12) after writing it again = %v, %v", r.ID, err)
	}
	if s.Unreadable() != 1 {
		t.Errorf("Unreadable = %d; want 1", s.Unreadable())
	}
	// Reopened without rollups (they are built from the segments), the
	// bad segment is skipped, not a reason to refuse the journal.
	var seq int
	var name, path string
	if err := s.DB.QueryRowContext(ctx, `PRAGMA database_list`).Scan(&seq, &name, &path); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB.ExecContext(ctx, `DELETE FROM domo_journal_minutes`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = sqlite.Open(ctx, path); err != nil {
		t.Fatalf("Open with a bad segment and no rollups = %v", err)
	}
	defer s.Close()
	if sum, err := s.Summary(ctx, journal.Window{}); err != nil || sum.Completed != 21 {
		t.Errorf("Summary after the rollups were rebuilt = %+v, %v; want the 21 readable", sum, err)
	}
	// A trim by age whose edge falls inside the bad segment deletes it whole.
	n, err := s.Trim(ctx, base.Add(1500*time.Millisecond), 0)
	if err != nil {
		t.Fatalf("Trim = %v", err)
	}
	var left int
	if err := s.DB.QueryRowContext(ctx, `SELECT count(*) FROM domo_journal_segments WHERE data = x'0900'`).Scan(&left); err != nil || left != 0 {
		t.Errorf("after Trim: %d bad segments, %v; want none", left, err)
	}
	if n != 10+10+1 { // the first segment, the bad one as it says it held, record 12 again
		t.Errorf("Trim = %d; want 21", n)
	}
}

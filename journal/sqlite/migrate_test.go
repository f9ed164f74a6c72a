package sqlite_test

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domo-framework/domo/journal"
	"github.com/domo-framework/domo/journal/sqlite"
	_ "github.com/mattn/go-sqlite3"
)

// earlierLayout is the schema of the journal before segments (main's
// sqlite.go and sqlstore.Indexes), frozen here: a row a record, with four
// indexes, and the rollup table not yet created (a journal older than the
// rollups, which Open must build from the rows).
var earlierLayout = []string{
	`CREATE TABLE IF NOT EXISTS domo_journal (
			run INTEGER NOT NULL, seq INTEGER NOT NULL,
			broker TEXT NOT NULL, request_id TEXT NOT NULL, service TEXT NOT NULL, method TEXT NOT NULL,
			client TEXT NOT NULL, worker TEXT NOT NULL,
			status INTEGER NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL, attempts INTEGER NOT NULL,
			request_bytes INTEGER NOT NULL, reply_bytes INTEGER NOT NULL,
			received_us INTEGER NOT NULL, dispatched_us INTEGER NOT NULL, last_dispatched_us INTEGER NOT NULL,
			ended_us INTEGER NOT NULL, queue_us INTEGER NOT NULL, handling_us INTEGER NOT NULL, total_us INTEGER NOT NULL,
			request_body BLOB, reply_body BLOB,
			PRIMARY KEY (run, seq)) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS domo_journal_received ON domo_journal (received_us, run, seq)`,
	`CREATE INDEX IF NOT EXISTS domo_journal_service ON domo_journal (service, method, received_us)`,
	`DROP INDEX IF EXISTS domo_journal_status`,
	`CREATE INDEX IF NOT EXISTS domo_journal_not_completed ON domo_journal (status, received_us) WHERE status <> 3`,
	`CREATE INDEX IF NOT EXISTS domo_journal_request_id ON domo_journal (request_id) WHERE request_id <> ''`,
}

const earlierInsert = `INSERT INTO domo_journal (run, seq, broker, request_id, service, method, client, worker,
	status, code, message, attempts, request_bytes, reply_bytes,
	received_us, dispatched_us, last_dispatched_us, ended_us, queue_us, handling_us, total_us,
	request_body, reply_body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// micros is the earlier layout's time column: µs since the epoch, 0 for
// the zero time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// earlierRow is r's row in the earlier layout, as its store wrote it.
func earlierRow(r *journal.Record) []any {
	return []any{r.ID.Run, r.ID.Seq, r.Broker, r.RequestID, r.Service, r.Method, r.Client, r.Worker,
		int64(r.Status), r.Code, r.Message, r.Attempts, r.RequestBytes, r.ReplyBytes,
		micros(r.Received), micros(r.Dispatched), micros(r.LastDispatched), micros(r.Ended),
		r.QueueWait().Microseconds(), r.Handling().Microseconds(), r.Total().Microseconds(),
		r.RequestBody, r.ReplyBody}
}

// migrationRecords returns the records of the earlier journal: finals
// final records over about six minutes and three runs (completed, some
// failed, some dropped; some sharing a receipt time; bodies nil, empty or
// not; one request id on two records), and inProgress records in progress
// among them. Times are whole microseconds, as the journal keeps them.
func migrationRecords(finals, inProgress int) []journal.Record {
	base := time.Date(2026, 3, 1, 12, 0, 17, 250_000, time.UTC)
	runs := []int64{7_000_000_001, 7_000_000_002, 42}
	services := []string{"tea", "coffee", "cocoa"}
	methods := []string{"brew", "pour"}
	body := func(i int, what string) []byte {
		switch i % 5 {
		case 0:
			return nil
		case 1:
			return []byte{}
		}
		return []byte(what + strconv.Itoa(i))
	}
	var recs []journal.Record
	seqs := make(map[int64]int64)
	for i := range finals + inProgress {
		run := runs[i%len(runs)]
		seqs[run]++
		recv := base.Add(time.Duration(i) * 120 * time.Millisecond)
		if i%10 == 9 { // the same receipt as the record before: ordered by run, then seq
			recv = recs[i-1].Received
		}
		r := journal.Record{
			ID: journal.ID{Run: run, Seq: seqs[run]}, Broker: "b" + strconv.Itoa(i%2),
			RequestID: "3fa9c2d1-" + strconv.FormatInt(int64(i), 36), Service: services[(i/7)%3], Method: methods[i%2],
			Client: "00c" + strconv.Itoa(i%4), Worker: "00w" + strconv.Itoa(i%6), Attempts: 1,
			RequestBytes: 100 + i, ReplyBytes: 2 * i, RequestBody: body(i, "q"), ReplyBody: body(i/5, "a"),
			Received: recv, Dispatched: recv.Add(time.Duration(i%300) * time.Microsecond),
		}
		r.LastDispatched = r.Dispatched
		if i%13 == 0 {
			r.RequestID = ""
		}
		if i == 100 || i == 2000 {
			r.RequestID = "dup"
		}
		if i%9 == 0 {
			r.Attempts, r.LastDispatched = 2, r.Dispatched.Add(time.Millisecond)
		}
		end := r.LastDispatched.Add(time.Duration(1+i%997) * 137 * time.Microsecond)
		switch {
		case i >= finals: // in progress: spread among the finals
			r.ID.Seq += 1_000_000
			r.Received = base.Add(time.Duration((i-finals)*finals/max(inProgress, 1)) * 120 * time.Millisecond)
			r.Status, r.Dispatched, r.LastDispatched, r.Attempts = journal.StatusReceived, time.Time{}, time.Time{}, 0
			if i%2 == 0 {
				r.Status, r.Dispatched, r.LastDispatched, r.Attempts = journal.StatusProcessing, r.Received.Add(time.Millisecond), r.Received.Add(time.Millisecond), 1
			}
			r.ReplyBytes, r.ReplyBody = 0, nil
		case i%17 == 0:
			r.Status, r.Code, r.Dispatched, r.LastDispatched, r.Attempts, r.Worker = journal.StatusDropped, "E_EXPIRED", time.Time{}, time.Time{}, 0, ""
			r.Ended, r.ReplyBytes, r.ReplyBody = end, 0, nil
		case i%11 == 0:
			r.Status, r.Code, r.Message, r.Ended = journal.StatusFailed, "E_WORKER", "boom "+strconv.Itoa(i), end
		default:
			r.Status, r.Ended = journal.StatusCompleted, end
		}
		recs = append(recs, r)
	}
	return recs
}

// writeEarlierJournal creates the file at path in the earlier layout,
// holding recs.
func writeEarlierJournal(t *testing.T, path string, recs []journal.Record) {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range append([]string{`PRAGMA page_size = 16384`, `PRAGMA journal_mode = WAL`}, earlierLayout...) {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, earlierInsert)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if _, err := st.ExecContext(ctx, earlierRow(&recs[i])...); err != nil {
			t.Fatalf("insert %v: %v", recs[i].ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var indexes, rollups int
	err = db.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE type = 'index'), count(*) FILTER (WHERE name = 'domo_journal_minutes')
		FROM sqlite_master`).Scan(&indexes, &rollups)
	if err != nil || indexes != 4 || rollups != 0 {
		t.Fatalf("earlier journal: %d indexes, %d rollup tables, %v; want 4 and none", indexes, rollups, err)
	}
}

// normRecord returns r with its times in UTC, so that reflect.DeepEqual
// compares instants and still tells a nil body from an empty one.
func normRecord(r journal.Record) journal.Record {
	for _, t := range []*time.Time{&r.Received, &r.Dispatched, &r.LastDispatched, &r.Ended} {
		*t = t.UTC()
	}
	return r
}

func sameRecord(got, want journal.Record) bool {
	return reflect.DeepEqual(normRecord(got), normRecord(want))
}

// newestFirst is List's order.
func newestFirst(a, b journal.Record) int {
	return cmp.Or(cmp.Compare(micros(b.Received), micros(a.Received)), cmp.Compare(b.ID.Run, a.ID.Run), cmp.Compare(b.ID.Seq, a.ID.Seq))
}

// selects is what List's filter f means, for one record.
func selects(f journal.Filter, r journal.Record) bool {
	us := micros(r.Received)
	switch {
	case f.Service != "" && r.Service != f.Service, f.Method != "" && r.Method != f.Method,
		f.RequestID != "" && r.RequestID != f.RequestID,
		f.InProgress && r.Status.Done(), !f.InProgress && f.Status != 0 && r.Status != f.Status,
		!f.From.IsZero() && us < f.From.UnixMicro(), !f.To.IsZero() && us >= f.To.UnixMicro():
		return false
	}
	return true
}

// listAll pages through f's records, a page of f.Limit at a time.
func listAll(t *testing.T, s journal.Store, f journal.Filter) []journal.Record {
	t.Helper()
	var out []journal.Record
	for range 10_000 {
		p, err := s.List(context.Background(), f)
		if err != nil {
			t.Fatalf("List(%+v) = %v", f, err)
		}
		out = append(out, p.Records...)
		if p.Next == "" {
			return out
		}
		f.After = p.Next
	}
	t.Fatalf("List(%+v): no last page", f)
	return nil
}

func ids(recs []journal.Record) []journal.ID {
	out := make([]journal.ID, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// tableDigest hashes what query returns, row by row, to tell whether a
// table changed.
func tableDigest(t *testing.T, db *sql.DB, query string) string {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	h := sha256.New()
	n := 0
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%#v\n", vals)
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d rows %x", n, h.Sum(nil))
}

// TestMigration opens a journal of the earlier layout, without rollups:
// Open moves its final rows to segments, drops its indexes and builds the
// rollups; every record reads back as written, by Get, List and Summary;
// and opening it again changes nothing.
func TestMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal.db")
	recs := migrationRecords(3000, 40)
	writeEarlierJournal(t, path, recs)

	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	checkMigrated(t, s, recs)
	digests := func() []string {
		return []string{
			tableDigest(t, s.DB, `SELECT * FROM domo_journal_segments ORDER BY id`),
			tableDigest(t, s.DB, `SELECT * FROM domo_journal ORDER BY run, seq`),
			tableDigest(t, s.DB, `SELECT * FROM domo_journal_minutes ORDER BY minute_us, service, method, status`),
			tableDigest(t, s.DB, `SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name`),
		}
	}
	before := digests()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	defer s.Close()
	if after := digests(); !slices.Equal(after, before) {
		t.Errorf("second Open changed the journal:\nbefore %q\nafter  %q", before, after)
	}
	checkMigrated(t, s, recs)

	// The ids of the rows in progress were loaded: one ending moves to a
	// segment, its row gone.
	var r journal.Record
	for _, c := range recs {
		if !c.Status.Done() {
			r = c
			break
		}
	}
	r.Status, r.Ended = journal.StatusCompleted, r.Received.Add(time.Second)
	if err := s.Write(ctx, []journal.Record{r}); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := s.DB.QueryRow(`SELECT count(*) FROM domo_journal WHERE run = ? AND seq = ?`, r.ID.Run, r.ID.Seq).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("%v ended: %d rows in domo_journal, %v; want 0", r.ID, rows, err)
	}
	if got, err := s.Get(ctx, r.ID); err != nil || !sameRecord(got, r) {
		t.Errorf("Get(%v) after it ended = %+v, %v\nwant %+v", r.ID, got, err, r)
	}
}

// checkMigrated checks that s holds recs, migrated: finals in segments,
// the others in domo_journal, no index of the earlier layout left.
func checkMigrated(t *testing.T, s *sqlite.Store, recs []journal.Record) {
	t.Helper()
	ctx := context.Background()
	for i, r := range recs {
		if i%10 != 0 && r.Status.Done() { // a sample: List below reads every record
			continue
		}
		got, err := s.Get(ctx, r.ID)
		if err != nil {
			t.Fatalf("Get(%v) = %v", r.ID, err)
		}
		if !sameRecord(got, r) {
			t.Fatalf("Get(%v) =\n%#v\nwant\n%#v", r.ID, normRecord(got), normRecord(r))
		}
	}

	sorted := slices.SortedFunc(slices.Values(recs), newestFirst)
	mid := sorted[len(sorted)/2].Received
	filters := []journal.Filter{
		{Limit: 1000},
		{Limit: 97},
		{Service: "coffee", Limit: 97},
		{Service: "tea", Method: "pour", Limit: 50},
		{Method: "brew", Limit: 200},
		{Status: journal.StatusFailed},
		{Status: journal.StatusDropped, Service: "cocoa"},
		{Status: journal.StatusCompleted, Limit: 1000},
		{InProgress: true, Limit: 7},
		{Status: journal.StatusProcessing},
		{RequestID: "dup"},
		{RequestID: recs[1234].RequestID},
		{From: mid.Add(-time.Minute), To: mid, Limit: 100},
		{From: mid, Service: "tea", Limit: 100},
	}
	for _, f := range filters {
		var want []journal.Record
		for _, r := range sorted {
			if selects(f, r) {
				want = append(want, r)
			}
		}
		got := listAll(t, s, f)
		if !slices.Equal(ids(got), ids(want)) {
			t.Errorf("List(%+v): %d records %v...\nwant %d: %v...", f, len(got), ids(got)[:min(len(got), 8)], len(want), ids(want)[:min(len(want), 8)])
			continue
		}
		for i := range got {
			if !sameRecord(got[i], want[i]) {
				t.Errorf("List(%+v): %v =\n%#v\nwant\n%#v", f, got[i].ID, normRecord(got[i]), normRecord(want[i]))
				break
			}
		}
	}

	windows := []journal.Window{
		{},
		{Service: "coffee"},
		{From: mid.Add(-150 * time.Second), To: mid.Add(70 * time.Second), Service: "tea", Method: "brew"}, // whole minutes and edges
		{From: mid.Add(-20 * time.Second), To: mid.Add(10 * time.Second)},                                  // shorter than a minute
	}
	for _, w := range windows {
		var want journal.Summary
		var maxTotal time.Duration
		for _, r := range recs {
			us := micros(r.Received)
			if (w.Service != "" && r.Service != w.Service) || (w.Method != "" && r.Method != w.Method) ||
				(!w.From.IsZero() && us < w.From.UnixMicro()) || (!w.To.IsZero() && us >= w.To.UnixMicro()) {
				continue
			}
			want.Total++
			switch r.Status {
			case journal.StatusReceived:
				want.Received++
			case journal.StatusProcessing:
				want.Processing++
			case journal.StatusCompleted:
				want.Completed++
			case journal.StatusFailed:
				want.Failed++
			case journal.StatusDropped:
				want.Dropped++
			}
			if r.Status == journal.StatusCompleted || r.Status == journal.StatusFailed {
				maxTotal = max(maxTotal, r.Total())
			}
		}
		got, err := s.Summary(ctx, w)
		if err != nil {
			t.Fatalf("Summary(%+v) = %v", w, err)
		}
		want.P50, want.P90, want.P99 = got.P50, got.P90, got.P99 // estimated from the rollups: not compared
		want.Max = maxTotal
		if got != want {
			t.Errorf("Summary(%+v) =\n%+v\nwant\n%+v", w, got, want)
		}
	}

	rows, err := s.DB.Query(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'domo_journal'`)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for rows.Next() {
		var name string
		rows.Scan(&name)
		left = append(left, name)
	}
	rows.Close()
	if len(left) > 0 {
		t.Errorf("indexes of the earlier layout left: %v", left)
	}

	var live []journal.ID
	rows, err = s.DB.Query(`SELECT run, seq FROM domo_journal ORDER BY run, seq`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id journal.ID
		rows.Scan(&id.Run, &id.Seq)
		live = append(live, id)
	}
	rows.Close()
	var wantLive []journal.ID
	finals := 0
	for _, r := range recs {
		if r.Status.Done() {
			finals++
		} else {
			wantLive = append(wantLive, r.ID)
		}
	}
	slices.SortFunc(wantLive, func(a, b journal.ID) int { return cmp.Or(cmp.Compare(a.Run, b.Run), cmp.Compare(a.Seq, b.Seq)) })
	if !slices.Equal(live, wantLive) {
		t.Errorf("domo_journal holds %d rows %v...; want the %d in progress", len(live), live[:min(len(live), 5)], len(wantLive))
	}
	var inSegments int
	if err := s.DB.QueryRow(`SELECT coalesce(sum(records), 0) FROM domo_journal_segments`).Scan(&inSegments); err != nil || inSegments != finals {
		t.Errorf("segments hold %d records, %v; want the %d final", inSegments, err, finals)
	}
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
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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

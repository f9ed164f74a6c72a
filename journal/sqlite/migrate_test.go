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

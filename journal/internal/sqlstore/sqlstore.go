// Package sqlstore is the SQL shared by the journal's stores: one table,
// the same queries, with the differences between SQLite and PostgreSQL (DDL,
// placeholders, the batch write) given by a Dialect.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/domo-framework/domo/journal"
)

// Table is the journal's table.
const Table = "domo_journal"

// Columns lists the table's columns in the order Values and Scan use.
var Columns = []string{
	"run", "seq", "broker", "request_id", "service", "method", "client", "worker",
	"status", "code", "message", "attempts", "request_bytes", "reply_bytes",
	"received_us", "dispatched_us", "last_dispatched_us", "ended_us",
	"queue_us", "handling_us", "total_us", "request_body", "reply_body",
}

// notCompleted is the partial status index's condition. A query that
// wants the index must say it in these words (SQLite uses a partial index
// only for a query that has its condition as one of its own terms; with a
// bound status, neither database can prove the implication).
var notCompleted = fmt.Sprintf("status <> %d", int64(journal.StatusCompleted))

// Indexes are created by both dialects: keyset pagination over everything,
// by service and method, by request id, and by status for the rows not
// completed (in progress, failed, dropped). Completed rows, nearly all of
// them, stay out of the status index: each index costs every write
// (BenchmarkWrite: 0.4 µs of 4.2 a row for this one), and a list of
// completed requests finds them quickly in the received index.
var Indexes = []string{
	`CREATE INDEX IF NOT EXISTS domo_journal_received ON domo_journal (received_us, run, seq)`,
	`CREATE INDEX IF NOT EXISTS domo_journal_service ON domo_journal (service, method, received_us)`,
	`DROP INDEX IF EXISTS domo_journal_status`, // the full status index of older journals
	`CREATE INDEX IF NOT EXISTS domo_journal_not_completed ON domo_journal (status, received_us) WHERE ` + notCompleted,
	`CREATE INDEX IF NOT EXISTS domo_journal_request_id ON domo_journal (request_id) WHERE request_id <> ''`,
}

// usesStatusIndex reports a filter on statuses the partial status index
// holds (all but completed).
func usesStatusIndex(f journal.Filter) bool {
	return f.InProgress || (f.Status != 0 && f.Status != journal.StatusCompleted)
}

// inProgress selects the rows in progress, in words that let the planner
// use the partial status index.
var inProgress = fmt.Sprintf("status IN (%d, %d) AND %s", int64(journal.StatusReceived), int64(journal.StatusProcessing), notCompleted)

// Dialect is what differs between databases.
type Dialect struct {
	// Placeholder returns the n-th (1-based) parameter marker.
	Placeholder func(n int) string
	// Schema creates the table and its indexes (idempotent).
	Schema []string
	// Write upserts recs in tx, which is open on conn, and returns those
	// that are final and whose rows were not (absent, or in progress)
	// before: Store.Write adds them to the rollups. SQLite's writes go
	// through conn.Raw (the driver's statements, in tx since the
	// connection is tx's); PostgreSQL's through tx, ignoring conn.
	Write func(ctx context.Context, conn *sql.Conn, tx *sql.Tx, recs []journal.Record) ([]*journal.Record, error)
}

// Store is a journal.Store over database/sql.
type Store struct {
	DB *sql.DB
	d  Dialect

	closeOnce sync.Once
	closeErr  error
}

// New creates the schema in db and returns a Store over it.
func New(ctx context.Context, db *sql.DB, d Dialect) (*Store, error) {
	for _, q := range d.Schema {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("journal: schema: %w", err)
		}
	}
	s := &Store{DB: db, d: d}
	if err := Backfill(ctx, db); err != nil {
		return nil, fmt.Errorf("journal: schema: rollups: %w", err)
	}
	return s, nil
}

// Micros converts a time to the stored form: microseconds since the epoch,
// 0 for the zero time.
func Micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us)
}

// AppendValues appends r's column values in Columns order to dst.
func AppendValues(dst []any, r *journal.Record) []any {
	s := anySink(dst)
	EachValue(r, &s)
	return s
}

// A ValueSink takes a record's column values one by one, unboxed.
type ValueSink interface {
	Int(int64)
	Text(string)
	Blob([]byte) // nil: NULL
}

// EachValue gives r's column values to s in Columns order.
func EachValue(r *journal.Record, s ValueSink) {
	s.Int(r.ID.Run)
	s.Int(r.ID.Seq)
	for _, v := range [...]string{r.Broker, r.RequestID, r.Service, r.Method, r.Client, r.Worker} {
		s.Text(v)
	}
	s.Int(int64(r.Status))
	s.Text(r.Code)
	s.Text(r.Message)
	for _, v := range [...]int64{int64(r.Attempts), int64(r.RequestBytes), int64(r.ReplyBytes),
		Micros(r.Received), Micros(r.Dispatched), Micros(r.LastDispatched), Micros(r.Ended),
		r.QueueWait().Microseconds(), r.Handling().Microseconds(), r.Total().Microseconds()} {
		s.Int(v)
	}
	s.Blob(r.RequestBody)
	s.Blob(r.ReplyBody)
}

type anySink []any

func (a *anySink) Int(v int64)   { *a = append(*a, v) }
func (a *anySink) Text(v string) { *a = append(*a, v) }
func (a *anySink) Blob(v []byte) { *a = append(*a, v) }

// UpsertSet is the "SET col = excluded.col, ..." of an upsert on (run, seq).
func UpsertSet() string {
	var b strings.Builder
	for i, c := range Columns[2:] {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s = excluded.%s", c, c)
	}
	return b.String()
}

// ScanRecord scans a row of Columns into a record.
func ScanRecord(s interface{ Scan(...any) error }) (journal.Record, error) {
	var (
		r                                    journal.Record
		status, attempts, reqBytes, repBytes int64
		rec, disp, last, end, q, h, tot      int64
	)
	err := s.Scan(&r.ID.Run, &r.ID.Seq, &r.Broker, &r.RequestID, &r.Service, &r.Method, &r.Client, &r.Worker,
		&status, &r.Code, &r.Message, &attempts, &reqBytes, &repBytes,
		&rec, &disp, &last, &end, &q, &h, &tot, &r.RequestBody, &r.ReplyBody)
	if err != nil {
		return r, err
	}
	r.Status, r.Attempts, r.RequestBytes, r.ReplyBytes = journal.Status(status), int(attempts), int(reqBytes), int(repBytes)
	r.Received, r.Dispatched, r.LastDispatched, r.Ended = fromMicros(rec), fromMicros(disp), fromMicros(last), fromMicros(end)
	return r, nil
}

// Write upserts recs in one transaction, and adds those that reach a final
// status for the first time to their minutes' rollups in it.
func (s *Store) Write(ctx context.Context, recs []journal.Record) error {
	if len(recs) == 0 {
		return nil
	}
	recs = ValidText(recs)
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("journal: write: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("journal: write: %w", err)
	}
	finals, err := s.d.Write(ctx, conn, tx, recs)
	if err == nil {
		err = AddRollups(ctx, tx, s.d.Placeholder, finals)
	}
	if err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("journal: write: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("journal: write: commit: %w", err)
	}
	return nil
}

// ValidText is what every store does to a batch before writing it: recs
// with every text valid UTF-8, free of NUL and within its length bound (a
// copy if any record needs mending, else recs itself). Service and method
// names, request ids and messages come from callers, and one record
// PostgreSQL cannot take fails its whole batch: its text takes neither a
// NUL nor bytes that are not UTF-8, and an index entry over about 2.7 KB is
// refused. SQLite would keep them; both stores mend them alike, so they
// answer alike.
func ValidText(recs []journal.Record) []journal.Record {
	var out []journal.Record
	for i := range recs {
		if !slices.ContainsFunc(textFields(&recs[i]), textField.bad) {
			continue
		}
		if out == nil {
			out = slices.Clone(recs)
		}
		for _, f := range textFields(&out[i]) {
			f.mend()
		}
	}
	if out == nil {
		return recs
	}
	return out
}

// textField is a text column of a record and the most bytes it keeps:
// the indexed ones well within PostgreSQL's bound on an index entry.
type textField struct {
	s   *string
	max int
}

func textFields(r *journal.Record) []textField {
	return []textField{{&r.Broker, 256}, {&r.RequestID, 256}, {&r.Service, 256}, {&r.Method, 256},
		{&r.Client, 512}, {&r.Worker, 512}, {&r.Code, 256}, {&r.Message, 8192}}
}

func (f textField) bad() bool {
	return len(*f.s) > f.max || !utf8.ValidString(*f.s) || strings.IndexByte(*f.s, 0) >= 0
}

// mend makes the text valid UTF-8 (U+FFFD for what is not, and for NUL)
// and cuts it at a rune boundary within max bytes, marking the cut with
// an ellipsis.
func (f textField) mend() {
	v := strings.ReplaceAll(strings.ToValidUTF8(*f.s, "\uFFFD"), "\x00", "\uFFFD")
	if len(v) > f.max {
		n := f.max - len("…")
		for n > 0 && !utf8.RuneStart(v[n]) {
			n--
		}
		v = v[:n] + "…"
	}
	*f.s = v
}

// trimChunk bounds one DELETE, so that writes interleave with a long trim.
const trimChunk = 10_000

// Trim deletes by age, then by count, in chunks.
func (s *Store) Trim(ctx context.Context, olderThan time.Time, maxRows int) (int, error) {
	p := s.d.Placeholder
	total := 0
	del := func(where string, args ...any) error {
		q := fmt.Sprintf(`DELETE FROM %s WHERE (run, seq) IN (SELECT run, seq FROM %s WHERE %s LIMIT %d)`,
			Table, Table, where, trimChunk)
		for {
			res, err := s.DB.ExecContext(ctx, q, args...)
			if err != nil {
				return fmt.Errorf("journal: trim: %w", err)
			}
			n, _ := res.RowsAffected()
			total += int(n)
			if n < trimChunk {
				return nil
			}
		}
	}
	if !olderThan.IsZero() {
		if err := del("received_us < "+p(1), olderThan.UnixMicro()); err != nil {
			return total, err
		}
		if err := TrimRollups(ctx, s.DB, s.d.Placeholder, olderThan.UnixMicro()); err != nil {
			return total, err
		}
	}
	if maxRows > 0 {
		var us, run, seq int64
		err := s.DB.QueryRowContext(ctx, fmt.Sprintf(
			`SELECT received_us, run, seq FROM %s ORDER BY received_us DESC, run DESC, seq DESC LIMIT 1 OFFSET %d`,
			Table, maxRows)).Scan(&us, &run, &seq)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return total, fmt.Errorf("journal: trim: %w", err)
		default:
			if err := del(fmt.Sprintf("(received_us, run, seq) <= (%s, %s, %s)", p(1), p(2), p(3)), us, run, seq); err != nil {
				return total, err
			}
			if err := TrimRollups(ctx, s.DB, s.d.Placeholder, us); err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

type where struct {
	p     func(int) string
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	// cond has one %s per arg.
	marks := make([]any, len(args))
	for i := range args {
		marks[i] = w.p(len(w.args) + i + 1)
	}
	w.conds = append(w.conds, fmt.Sprintf(cond, marks...))
	w.args = append(w.args, args...)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// maxUnionMethods bounds the methods a service-only List reads one index
// range each for; a service with more is sorted instead.
const maxUnionMethods = 32

// List returns a page of records, newest first, by keyset.
func (s *Store) List(ctx context.Context, f journal.Filter) (journal.Page, error) {
	// The (service, method, received_us) index gives one method's rows in
	// time order, not a whole service's: a service alone would sort all
	// its rows (0.25 s at a million). So a service alone is read as one
	// index range per method, each cut at a page, merged.
	// Not with a status the partial status index serves better.
	if f.Service != "" && f.Method == "" && f.RequestID == "" && !usesStatusIndex(f) {
		methods, err := s.methods(ctx, f.Service)
		if err != nil {
			return journal.Page{}, fmt.Errorf("journal: list: %w", err)
		}
		switch {
		case len(methods) == 0:
			return journal.Page{}, nil
		case len(methods) == 1:
			f.Method = methods[0] // one range: no union needed
		case len(methods) <= maxUnionMethods:
			return s.list(ctx, f, methods)
		}
	}
	return s.list(ctx, f, nil)
}

// methods returns the service's distinct methods, found by one index seek
// each (a loose index scan of the (service, method, received_us) index).
func (s *Store) methods(ctx context.Context, service string) ([]string, error) {
	p := s.d.Placeholder
	q := fmt.Sprintf(`WITH RECURSIVE m(method) AS (
			SELECT min(method) FROM %[1]s WHERE service = %[2]s
			UNION ALL
			SELECT (SELECT min(method) FROM %[1]s WHERE service = %[3]s AND method > m.method) FROM m WHERE m.method IS NOT NULL)
		SELECT method FROM m WHERE method IS NOT NULL LIMIT %[4]d`, Table, p(1), p(2), maxUnionMethods+1)
	rows, err := s.DB.QueryContext(ctx, q, service, service)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var methods []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return nil, err
		}
		methods = append(methods, m)
	}
	return methods, rows.Err()
}

// list runs the page query: over the rows f selects, or, with methods,
// over the union of f with each of them as its method.
func (s *Store) list(ctx context.Context, f journal.Filter, methods []string) (journal.Page, error) {
	limit := f.PageLimit()
	order := "ORDER BY received_us DESC, run DESC, seq DESC"
	cols := strings.Join(Columns, ", ")
	var q string
	var args []any
	if methods == nil {
		w, err := filter(f, s.d.Placeholder, nil)
		if err != nil {
			return journal.Page{}, err
		}
		q = fmt.Sprintf(`SELECT %s FROM %s%s %s LIMIT %d`, cols, Table, w, order, limit+1)
		args = w.args
	} else {
		parts := make([]string, len(methods))
		for i, m := range methods {
			f := f
			f.Method = m
			w, err := filter(f, s.d.Placeholder, args)
			if err != nil {
				return journal.Page{}, err
			}
			args = w.args
			parts[i] = fmt.Sprintf(`SELECT * FROM (SELECT %s FROM %s%s %s LIMIT %d) AS m%d`, cols, Table, w, order, limit+1, i)
		}
		q = fmt.Sprintf(`%s %s LIMIT %d`, strings.Join(parts, " UNION ALL "), order, limit+1)
	}
	rows, err := s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return journal.Page{}, fmt.Errorf("journal: list: %w", err)
	}
	defer rows.Close()
	var page journal.Page
	for rows.Next() {
		r, err := ScanRecord(rows)
		if err != nil {
			return journal.Page{}, fmt.Errorf("journal: list: %w", err)
		}
		page.Records = append(page.Records, r)
	}
	if err := rows.Err(); err != nil {
		return journal.Page{}, fmt.Errorf("journal: list: %w", err)
	}
	if len(page.Records) > limit {
		page.Records = page.Records[:limit]
		last := page.Records[limit-1]
		page.Next = journal.Cursor(last.Received, last.ID)
	}
	return page, nil
}

// Where returns f's conditions on the table's columns (" WHERE ..." or
// empty) and their arguments, with parameter markers from p.
func Where(f journal.Filter, p func(int) string) (string, []any, error) {
	w, err := filter(f, p, nil)
	if err != nil {
		return "", nil, err
	}
	return w.String(), w.args, nil
}

// filter turns f into conditions whose parameters follow those in prior.
func filter(f journal.Filter, p func(int) string, prior []any) (*where, error) {
	w := &where{p: p, args: prior}
	if f.Service != "" {
		w.add("service = %s", f.Service)
	}
	if f.Method != "" {
		w.add("method = %s", f.Method)
	}
	if f.RequestID != "" {
		// The second condition lets the planner use the partial index on
		// request_id, which it cannot prove applies to a bound parameter.
		w.add("request_id = %s AND request_id <> ''", f.RequestID)
	}
	switch {
	case f.InProgress:
		w.add(inProgress)
	case usesStatusIndex(f):
		w.add("status = %s AND "+notCompleted, int64(f.Status))
	case f.Status != 0:
		w.add("status = %s", int64(f.Status)) // completed: found through the received index
	}
	if !f.From.IsZero() {
		w.add("received_us >= %s", f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		w.add("received_us < %s", f.To.UnixMicro())
	}
	if f.After != "" {
		us, id, err := journal.ParseCursor(f.After)
		if err != nil {
			return nil, err
		}
		w.add("(received_us, run, seq) < (%s, %s, %s)", us, id.Run, id.Seq)
	}
	return w, nil
}

// Get returns one record.
func (s *Store) Get(ctx context.Context, id journal.ID) (journal.Record, error) {
	p := s.d.Placeholder
	q := fmt.Sprintf(`SELECT %s FROM %s WHERE run = %s AND seq = %s`, strings.Join(Columns, ", "), Table, p(1), p(2))
	r, err := ScanRecord(s.DB.QueryRowContext(ctx, q, id.Run, id.Seq))
	if errors.Is(err, sql.ErrNoRows) {
		return r, journal.ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("journal: get %s: %w", id, err)
	}
	return r, nil
}

// Summary counts by status and takes nearest-rank percentiles of the total
// time of answered requests. A window holding a whole minute or more
// (including an unbounded one over a journal that spans one) is answered
// from the per-minute rollups, plus rows for its partial minutes and the
// requests in progress: counts and Max are exact, P50, P90 and P99 are
// estimated within one histogram bucket (see Buckets). A shorter window
// counts and sorts its rows: exact.
func (s *Store) Summary(ctx context.Context, win journal.Window) (journal.Summary, error) {
	if sum, ok, err := s.rollupSummary(ctx, win); err != nil {
		return sum, fmt.Errorf("journal: summary: %w", err)
	} else if ok {
		return sum, nil
	}
	w := &where{p: s.d.Placeholder}
	if win.Service != "" {
		w.add("service = %s", win.Service)
	}
	if win.Method != "" {
		w.add("method = %s", win.Method)
	}
	if !win.From.IsZero() {
		w.add("received_us >= %s", win.From.UnixMicro())
	}
	if !win.To.IsZero() {
		w.add("received_us < %s", win.To.UnixMicro())
	}
	var sum journal.Summary
	rows, err := s.DB.QueryContext(ctx, fmt.Sprintf(`SELECT status, count(*) FROM %s%s GROUP BY status`, Table, w), w.args...)
	if err != nil {
		return sum, fmt.Errorf("journal: summary: %w", err)
	}
	for rows.Next() {
		var st, n int64
		if err := rows.Scan(&st, &n); err != nil {
			rows.Close()
			return sum, fmt.Errorf("journal: summary: %w", err)
		}
		sum.Total += int(n)
		switch journal.Status(st) {
		case journal.StatusReceived:
			sum.Received = int(n)
		case journal.StatusProcessing:
			sum.Processing = int(n)
		case journal.StatusCompleted:
			sum.Completed = int(n)
		case journal.StatusFailed:
			sum.Failed = int(n)
		case journal.StatusDropped:
			sum.Dropped = int(n)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return sum, fmt.Errorf("journal: summary: %w", err)
	}
	answered := sum.Completed + sum.Failed
	if answered == 0 {
		return sum, nil
	}
	rank := func(p float64) int64 { return int64(max(1, math.Ceil(p*float64(answered)))) }
	ranks := []int64{rank(0.50), rank(0.90), rank(0.99), int64(answered)}
	w.add("status IN (%s, %s)", int64(journal.StatusCompleted), int64(journal.StatusFailed))
	base := len(w.args)
	p := s.d.Placeholder
	q := fmt.Sprintf(`SELECT rn, total_us FROM (SELECT total_us, row_number() OVER (ORDER BY total_us) AS rn FROM %s%s) t WHERE rn IN (%s, %s, %s, %s)`,
		Table, w, p(base+1), p(base+2), p(base+3), p(base+4))
	args := append(w.args, ranks[0], ranks[1], ranks[2], ranks[3])
	rows, err = s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return sum, fmt.Errorf("journal: summary: %w", err)
	}
	defer rows.Close()
	vals := map[int64]time.Duration{}
	for rows.Next() {
		var rn, us int64
		if err := rows.Scan(&rn, &us); err != nil {
			return sum, fmt.Errorf("journal: summary: %w", err)
		}
		vals[rn] = time.Duration(us) * time.Microsecond
	}
	if err := rows.Err(); err != nil {
		return sum, fmt.Errorf("journal: summary: %w", err)
	}
	sum.P50, sum.P90, sum.P99, sum.Max = vals[ranks[0]], vals[ranks[1]], vals[ranks[2]], vals[ranks[3]]
	return sum, nil
}

// Close closes the database. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.DB.Close() })
	return s.closeErr
}

package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/domo-framework/domo/journal"
)

// Per-minute rollups. Every record that reaches a final status (completed,
// failed, dropped) is added, once, to the row of RollupTable for its
// receipt minute, service, method and status: a count, the sum and the
// maximum of the total times, and a histogram of the total times in
// Buckets fixed, log-spaced buckets. Summary answers the whole minutes of a
// long window from these rows, so its cost grows with the minutes in the
// window, not with the requests.

// RollupTable is the table of per-minute rollups.
const RollupTable = "domo_journal_minutes"

// Minute is the width of a rollup row, in microseconds.
const Minute = int64(time.Minute / time.Microsecond)

// Buckets is the number of histogram buckets. Bucket 0 holds total times
// under BucketBounds[0] (50 µs); bucket k (1 to Buckets-2) holds
// [BucketBounds[k-1], BucketBounds[k]); the last holds 60 s and more. Each
// bound is about 1.45 times the one before, so a percentile estimated from
// the histogram is within one bucket (±45%) of the exact one.
const Buckets = 40

// BucketBounds are the buckets' upper bounds in microseconds (exclusive).
var BucketBounds = func() [Buckets - 1]int64 {
	var b [Buckets - 1]int64
	const lo, hi = 50.0, 60e6
	for k := range b {
		b[k] = int64(math.Round(lo * math.Pow(hi/lo, float64(k)/float64(len(b)-1))))
	}
	return b
}()

// BucketOf returns the histogram bucket of a total time in microseconds.
func BucketOf(us int64) int {
	return sort.Search(len(BucketBounds), func(k int) bool { return us < BucketBounds[k] })
}

// BucketRange returns bucket k's bounds [lo, hi) in microseconds; the last
// bucket's hi is math.MaxInt64.
func BucketRange(k int) (lo, hi int64) {
	if k > 0 {
		lo = BucketBounds[k-1]
	}
	hi = math.MaxInt64
	if k < len(BucketBounds) {
		hi = BucketBounds[k]
	}
	return lo, hi
}

func histCols() []string {
	c := make([]string, Buckets)
	for k := range c {
		c[k] = fmt.Sprintf("h%02d", k)
	}
	return c
}

var rollupKey = []string{"minute_us", "service", "method", "status"}

// RollupColumns lists the rollup table's columns in the order the upsert
// uses.
var RollupColumns = append(append(slices.Clone(rollupKey), "requests", "total_sum_us", "total_max_us"), histCols()...)

// RollupSchema creates the rollup table; suffix ends the CREATE TABLE
// (" WITHOUT ROWID" for SQLite).
func RollupSchema(suffix string) []string {
	var b strings.Builder
	fmt.Fprintf(&b, `CREATE TABLE IF NOT EXISTS %s (
			minute_us BIGINT NOT NULL, service TEXT NOT NULL, method TEXT NOT NULL, status SMALLINT NOT NULL,
			requests BIGINT NOT NULL, total_sum_us BIGINT NOT NULL, total_max_us BIGINT NOT NULL`, RollupTable)
	for _, c := range histCols() {
		fmt.Fprintf(&b, ", %s BIGINT NOT NULL DEFAULT 0", c)
	}
	b.WriteString(",\n\t\t\tPRIMARY KEY (minute_us, service, method, status))" + suffix)
	return []string{b.String()}
}

// bucketExpr is a CASE expression giving the bucket of total_us in SQL.
var bucketExpr = func() string {
	var b strings.Builder
	b.WriteString("CASE")
	for k, ub := range BucketBounds {
		fmt.Fprintf(&b, " WHEN total_us < %d THEN %d", ub, k)
	}
	fmt.Fprintf(&b, " ELSE %d END", Buckets-1)
	return b.String()
}()

// Backfill builds the rollups of a journal written before they existed:
// when the rollup table is empty and the journal's table is not.
func Backfill(ctx context.Context, db *sql.DB) error {
	var n int
	err := db.QueryRowContext(ctx, fmt.Sprintf(
		`SELECT (SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 1) a) + 2 * (SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 1) b)`,
		Table, RollupTable)).Scan(&n)
	if err != nil || n != 1 { // 1: rows but no rollups
		return err
	}
	var sums []string
	for k := range Buckets {
		sums = append(sums, fmt.Sprintf("sum(CASE WHEN b = %d THEN 1 ELSE 0 END)", k))
	}
	q := fmt.Sprintf(`INSERT INTO %s (%s) SELECT m, service, method, status, count(*), sum(total_us), max(total_us), %s
		FROM (SELECT (received_us / %d) * %d AS m, service, method, status, total_us, %s AS b FROM %s WHERE status >= %d) t
		GROUP BY m, service, method, status`,
		RollupTable, strings.Join(RollupColumns, ", "), strings.Join(sums, ", "),
		Minute, Minute, bucketExpr, Table, int64(journal.StatusCompleted))
	_, err = db.ExecContext(ctx, q)
	return err
}

type rollupKeyT struct {
	minute          int64
	service, method string
	status          journal.Status
}

type rollup struct {
	n, sum, max int64
	h           [Buckets]int64
}

func (r *rollup) add(us int64) {
	r.n++
	r.sum += us
	r.max = max(r.max, us)
	r.h[BucketOf(us)]++
}

// rollupChunk bounds the rows of one rollup upsert.
const rollupChunk = 50

// AddRollups adds finals, records that have just become final, to their
// minutes' rollups in tx; p gives parameter markers.
func AddRollups(ctx context.Context, tx *sql.Tx, p func(int) string, finals []*journal.Record) error {
	if len(finals) == 0 {
		return nil
	}
	m := map[rollupKeyT]*rollup{}
	var lastKey rollupKeyT
	var ru *rollup
	for _, r := range finals {
		us := Micros(r.Received)
		k := rollupKeyT{minute: FloorMinute(us), service: r.Service, method: r.Method, status: r.Status}
		if ru == nil || k != lastKey { // most records share the one before's
			if ru = m[k]; ru == nil {
				ru = &rollup{}
				m[k] = ru
			}
			lastKey = k
		}
		ru.add(r.Total().Microseconds())
	}
	// A fixed order, so that brokers sharing a database lock rows in the
	// same order.
	keys := make([]rollupKeyT, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b rollupKeyT) int {
		return cmp.Or(cmp.Compare(a.minute, b.minute), cmp.Compare(a.service, b.service),
			cmp.Compare(a.method, b.method), cmp.Compare(a.status, b.status))
	})
	for len(keys) > 0 {
		chunk := keys[:min(rollupChunk, len(keys))]
		keys = keys[len(chunk):]
		var vals []string
		var args []any
		for _, k := range chunk {
			ru := m[k]
			row := []any{k.minute, k.service, k.method, int64(k.status), ru.n, ru.sum, ru.max}
			for _, h := range ru.h {
				row = append(row, h)
			}
			marks := make([]string, len(row))
			for i := range row {
				marks[i] = p(len(args) + i + 1)
			}
			args = append(args, row...)
			vals = append(vals, "("+strings.Join(marks, ", ")+")")
		}
		if _, err := tx.ExecContext(ctx, rollupUpsert+strings.Join(vals, ", ")+rollupConflict, args...); err != nil {
			return err
		}
	}
	return nil
}

var rollupUpsert = fmt.Sprintf(`INSERT INTO %s (%s) VALUES `, RollupTable, strings.Join(RollupColumns, ", "))

var rollupConflict = func() string {
	t := RollupTable
	set := []string{
		fmt.Sprintf("requests = %s.requests + excluded.requests", t),
		fmt.Sprintf("total_sum_us = %s.total_sum_us + excluded.total_sum_us", t),
		fmt.Sprintf("total_max_us = CASE WHEN excluded.total_max_us > %s.total_max_us THEN excluded.total_max_us ELSE %s.total_max_us END", t, t),
	}
	for _, c := range histCols() {
		set = append(set, fmt.Sprintf("%s = %s.%s + excluded.%s", c, t, c, c))
	}
	return fmt.Sprintf(" ON CONFLICT (%s) DO UPDATE SET %s", strings.Join(rollupKey, ", "), strings.Join(set, ", "))
}()

// FloorMinute returns the start of the minute holding us.
func FloorMinute(us int64) int64 {
	m := us / Minute * Minute
	if m > us {
		m -= Minute
	}
	return m
}

// CeilMinute returns the first minute boundary at or after us.
func CeilMinute(us int64) int64 {
	m := FloorMinute(us)
	if m < us {
		m += Minute
	}
	return m
}

// TrimRollups deletes the rollups of minutes that end at or before
// cutoffUs.
func TrimRollups(ctx context.Context, db *sql.DB, p func(int) string, cutoffUs int64) error {
	_, err := db.ExecContext(ctx, fmt.Sprintf(`DELETE FROM %s WHERE minute_us <= %s`, RollupTable, p(1)), cutoffUs-Minute)
	if err != nil {
		return fmt.Errorf("journal: trim rollups: %w", err)
	}
	return nil
}

// minRollupMinutes is the fewest whole minutes for which a window is
// answered from rollups; shorter windows count their rows.
const minRollupMinutes = 1

// Hist is a window's answered requests (completed and failed) by bucket.
type Hist struct {
	h   [Buckets]int64
	n   int64
	max int64
}

// Add counts an answered request of total time us.
func (h *Hist) Add(us int64) {
	h.h[BucketOf(us)]++
	h.n++
	h.max = max(h.max, us)
}

// Summarize sets sum's percentiles and Max from h.
func (h *Hist) Summarize(sum *journal.Summary) {
	sum.P50, sum.P90, sum.P99 = h.percentile(0.50), h.percentile(0.90), h.percentile(0.99)
	sum.Max = time.Duration(h.max) * time.Microsecond
}

// percentile estimates the p-th percentile (nearest rank, as the row-level
// Summary) by interpolating within the bucket holding that rank; the
// estimate is within that bucket's bounds (and at most max).
func (h *Hist) percentile(p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(max(1, math.Ceil(p*float64(h.n))))
	var cum int64
	for k, c := range h.h {
		if c == 0 || cum+c < rank {
			cum += c
			continue
		}
		lo, hi := BucketRange(k)
		hi = min(hi, h.max)
		lo = min(lo, hi)
		us := lo + int64(float64(hi-lo)*float64(rank-cum)/float64(c))
		return time.Duration(us) * time.Microsecond
	}
	return time.Duration(h.max) * time.Microsecond
}

// AddStatus counts n requests of status st in sum.
func AddStatus(sum *journal.Summary, st journal.Status, n int) {
	sum.Total += n
	switch st {
	case journal.StatusReceived:
		sum.Received += n
	case journal.StatusProcessing:
		sum.Processing += n
	case journal.StatusCompleted:
		sum.Completed += n
	case journal.StatusFailed:
		sum.Failed += n
	case journal.StatusDropped:
		sum.Dropped += n
	}
}

// rollupSummary answers a window from rollups when it holds at least
// minRollupMinutes whole minutes: those minutes from the rollup table, the
// partial minutes at its edges and the requests in progress from rows. ok
// is false when the window is too short (or the journal empty): the caller
// then counts rows.
//
// The window's start is first raised to the oldest row's receipt, so the
// rollups of a minute that retention has trimmed in part are never used.
func (s *Store) rollupSummary(ctx context.Context, win journal.Window) (sum journal.Summary, ok bool, err error) {
	var oldest, newest sql.NullInt64
	err = s.DB.QueryRowContext(ctx, fmt.Sprintf(`SELECT (SELECT min(received_us) FROM %s), (SELECT max(received_us) FROM %s)`,
		Table, Table)).Scan(&oldest, &newest)
	if err != nil || !oldest.Valid {
		return sum, false, err
	}
	from, to := oldest.Int64, newest.Int64+1
	if !win.From.IsZero() {
		from = max(from, win.From.UnixMicro())
	}
	if !win.To.IsZero() {
		to = win.To.UnixMicro()
	}
	m0, m1 := CeilMinute(from), FloorMinute(to)
	if m1-m0 < minRollupMinutes*Minute {
		return sum, false, nil
	}
	p := s.d.Placeholder
	filter := func(w *where, noIndex bool) {
		// noIndex keeps the planner off the (service, method) index, which
		// without a method would visit every request of the service: the
		// received index finds the edges' rows (under two minutes), the
		// status index those in progress (few). With a method, the
		// (service, method) index suits the edges best.
		col := func(c string) string {
			if noIndex {
				return c + " || ''"
			}
			return c
		}
		if win.Service != "" {
			w.add(col("service")+" = %s", win.Service)
		}
		if win.Method != "" {
			w.add(col("method")+" = %s", win.Method)
		}
	}
	sum, h, err := RollupMinutes(ctx, s.DB, p, win.Service, win.Method, m0, m1)
	if err != nil {
		return sum, false, err
	}
	// The edges' final rows, by status and bucket; and the window's rows in
	// progress.
	queries := []struct {
		lo, hi int64
		final  bool
	}{{from, m0, true}, {m1, to, true}, {from, to, false}}
	for _, q := range queries {
		if q.lo >= q.hi {
			continue
		}
		w := &where{p: p}
		filter(w, !q.final || win.Method == "")
		w.add("received_us >= %s AND received_us < %s", q.lo, q.hi)
		var sel string
		if q.final {
			w.add("status >= %s", int64(journal.StatusCompleted))
			sel = fmt.Sprintf(`SELECT status, %s AS b, count(*), max(total_us) FROM %s%s GROUP BY status, b`, bucketExpr, Table, w)
		} else {
			w.add(inProgress)
			sel = fmt.Sprintf(`SELECT status, 0, count(*), 0 FROM %s%s GROUP BY status`, Table, w)
		}
		rows, err := s.DB.QueryContext(ctx, sel, w.args...)
		if err != nil {
			return sum, false, err
		}
		for rows.Next() {
			var st, b, n, mx int64
			if err := rows.Scan(&st, &b, &n, &mx); err != nil {
				rows.Close()
				return sum, false, err
			}
			AddStatus(&sum, journal.Status(st), int(n))
			if s := journal.Status(st); s == journal.StatusCompleted || s == journal.StatusFailed {
				h.n += n
				h.max = max(h.max, mx)
				h.h[b] += n
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return sum, false, err
		}
	}
	sum.P50, sum.P90, sum.P99 = h.percentile(0.50), h.percentile(0.90), h.percentile(0.99)
	sum.Max = time.Duration(h.max) * time.Microsecond
	return sum, true, nil
}

// Querier runs queries: a *sql.DB, *sql.Conn or *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// RollupMinutes sums the rollups of the whole minutes [m0, m1) (of one
// service, and method, if given): counts by final status, and the answered
// requests' histogram.
func RollupMinutes(ctx context.Context, db Querier, p func(int) string, service, method string, m0, m1 int64) (sum journal.Summary, h Hist, err error) {
	w := &where{p: p}
	if service != "" {
		w.add("service = %s", service)
	}
	if method != "" {
		w.add("method = %s", method)
	}
	w.add("minute_us >= %s AND minute_us < %s", m0, m1)
	cols := histCols()
	for i, c := range cols {
		cols[i] = "CAST(sum(" + c + ") AS BIGINT)"
	}
	rows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT status, CAST(sum(requests) AS BIGINT), max(total_max_us), %s FROM %s%s GROUP BY status`,
		strings.Join(cols, ", "), RollupTable, w), w.args...)
	if err != nil {
		return sum, h, err
	}
	for rows.Next() {
		var st, n, mx int64
		var b [Buckets]int64
		dst := []any{&st, &n, &mx}
		for k := range b {
			dst = append(dst, &b[k])
		}
		if err := rows.Scan(dst...); err != nil {
			rows.Close()
			return sum, h, err
		}
		AddStatus(&sum, journal.Status(st), int(n))
		if s := journal.Status(st); s == journal.StatusCompleted || s == journal.StatusFailed {
			h.n += n
			h.max = max(h.max, mx)
			for k := range b {
				h.h[k] += b[k]
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return sum, h, err
	}
	return sum, h, nil
}

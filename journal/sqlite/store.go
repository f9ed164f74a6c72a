package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/domo-framework/domo/journal"
	"github.com/domo-framework/domo/journal/internal/sqlstore"
)

// maxSegment bounds the records of one segment: a batch bigger than this
// (the Recorder's grow while the store is slow) is cut into several.
const maxSegment = 4096

// Write writes recs in one transaction: final records to a new segment a
// run, the others to rows of domo_journal. A final record stored before (a
// row in progress, or in an older segment when written final twice) leaves its
// old place, so every record is in one place, as the last write says.
// Records that become final with this write are added to the rollups.
func (s *Store) Write(ctx context.Context, recs []journal.Record) error {
	if len(recs) == 0 {
		return nil
	}
	recs = sqlstore.ValidText(recs)
	latest := lastOfEach(recs)
	s.mu.Lock()
	defer s.mu.Unlock()
	finals := make([]*journal.Record, 0, len(latest))
	counted := make([]*journal.Record, 0, len(latest))
	var open []*journal.Record
	var wasLive []journal.ID
	for _, r := range latest {
		if r.Status.Done() {
			finals = append(finals, r)
		} else {
			open = append(open, r)
		}
	}
	_, err := s.inTx(ctx, func(conn *sql.Conn, tx *sql.Tx) (int, error) {
		// Records in segments already: final before, so counted in the
		// rollups; they move to where this write puts them.
		seek := make([]*journal.Record, 0, len(latest))
		for _, r := range latest {
			if !s.live[r.ID] {
				seek = append(seek, r)
			}
		}
		stale, err := s.inSegments(ctx, tx, seek)
		if err != nil {
			return 0, err
		}
		for _, r := range finals {
			if s.live[r.ID] {
				wasLive = append(wasLive, r.ID)
			}
			if _, before := stale[r.ID]; !before { // first final: counted
				counted = append(counted, r)
			}
		}
		if err := s.removeFromSegments(ctx, tx, stale); err != nil {
			return 0, err
		}
		for _, id := range wasLive {
			if _, err := tx.ExecContext(ctx, `DELETE FROM domo_journal WHERE run = ? AND seq = ?`, id.Run, id.Seq); err != nil {
				return 0, err
			}
		}
		if len(open) > 0 {
			if err := writeLive(ctx, conn, open); err != nil {
				return 0, err
			}
		}
		if err := s.insertSegments(ctx, tx, finals); err != nil {
			return 0, err
		}
		return 0, sqlstore.AddRollups(ctx, tx, placeholder, counted)
	})
	if err != nil {
		return fmt.Errorf("journal: write: %w", err)
	}
	for _, id := range wasLive {
		delete(s.live, id)
	}
	for _, r := range open {
		s.live[r.ID] = true
	}
	return nil
}

// lastOfEach returns recs' records, the last of each id only. A batch
// rarely holds an id twice (the Recorder's never do): sorting the ids
// tells, for less than a map would cost.
func lastOfEach(recs []journal.Record) []*journal.Record {
	out := make([]*journal.Record, len(recs))
	for i := range recs {
		out[i] = &recs[i]
	}
	ids := make([]journal.ID, len(recs))
	for i := range recs {
		ids[i] = recs[i].ID
	}
	byID := func(a, b journal.ID) int { return cmp.Or(cmp.Compare(a.Run, b.Run), cmp.Compare(a.Seq, b.Seq)) }
	slices.SortFunc(ids, byID)
	if len(slices.CompactFunc(ids, func(a, b journal.ID) bool { return a == b })) == len(recs) {
		return out
	}
	last := make(map[journal.ID]int, len(recs))
	for i := range recs {
		last[recs[i].ID] = i
	}
	return slices.DeleteFunc(out, func(r *journal.Record) bool { return &recs[last[r.ID]] != r })
}

// seqGap splits a run's sorted seqs into ranges looked up apart: a record
// much older than the rest of its batch (a slow request) is not looked for
// across every segment written since.
const seqGap = 1 << 12

// eachSegment calls fn with the id, run and data of every segment that
// where (a condition on domo_journal_segments, with args) selects, until fn
// returns an error.
func eachSegment(ctx context.Context, q sqlstore.Querier, where string, args []any, fn func(id, run int64, data []byte) error) error {
	rows, err := q.QueryContext(ctx, `SELECT id, run, data FROM domo_journal_segments WHERE `+where, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, run int64
		var data []byte
		if err := rows.Scan(&id, &run, &data); err != nil {
			return err
		}
		if err := fn(id, run, data); err != nil {
			return err
		}
	}
	return rows.Err()
}

// errFound ends an eachSegment early.
var errFound = errors.New("found")

// inSegments returns which of recs are in a segment, with its id.
func (s *Store) inSegments(ctx context.Context, tx *sql.Tx, recs []*journal.Record) (map[journal.ID]int64, error) {
	found := make(map[journal.ID]int64)
	for run, rs := range byRun(recs) {
		seqs := make([]int64, len(rs))
		for i, r := range rs {
			seqs[i] = r.ID.Seq
		}
		slices.Sort(seqs)
		for len(seqs) > 0 {
			n := 1
			for n < len(seqs) && seqs[n]-seqs[n-1] <= seqGap {
				n++
			}
			lo, hi := seqs[0], seqs[n-1]
			want := seqs[:n]
			seqs = seqs[n:]
			err := eachSegment(ctx, tx, `run = ? AND max_seq >= ? AND min_seq <= ?`, []any{run, lo, hi}, func(id, run int64, data []byte) error {
				keys, err := segmentKeys(data)
				if err != nil {
					s.unreadable(id, err) // holds nothing this write can move
					return nil
				}
				for _, k := range keys {
					if _, ok := slices.BinarySearch(want, k.seq); ok {
						found[journal.ID{Run: run, Seq: k.seq}] = id
					}
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return found, nil
}

// removeFromSegments rewrites the segments holding ids without them.
func (s *Store) removeFromSegments(ctx context.Context, tx *sql.Tx, ids map[journal.ID]int64) error {
	bySeg := make(map[int64]map[int64]bool)
	for id, seg := range ids {
		if bySeg[seg] == nil {
			bySeg[seg] = make(map[int64]bool)
		}
		bySeg[seg][id.Seq] = true
	}
	for seg, seqs := range bySeg {
		if _, err := s.rewriteSegment(ctx, tx, seg, func(k segKey) bool { return !seqs[k.seq] }); err != nil {
			return err
		}
	}
	return nil
}

// rewriteSegment keeps only the records of segment id that keep accepts,
// deleting the segment if none is left, and returns how many it removed.
func (s *Store) rewriteSegment(ctx context.Context, tx *sql.Tx, id int64, keep func(segKey) bool) (int, error) {
	var run, records int64
	var data []byte
	if err := tx.QueryRowContext(ctx, `SELECT run, records, data FROM domo_journal_segments WHERE id = ?`, id).Scan(&run, &records, &data); err != nil {
		return 0, err
	}
	keys, err := segmentKeys(data)
	var kept []journal.Record
	if err == nil {
		kept, err = decodeSegment(run, data, keep)
	}
	if err != nil {
		// Unreadable: nothing of it can be kept (Trim, at its edge, is
		// what asks), so it goes whole.
		s.unreadable(id, err)
		_, err := tx.ExecContext(ctx, `DELETE FROM domo_journal_segments WHERE id = ?`, id)
		return int(records), err
	}
	removed := len(keys) - len(kept)
	if removed == 0 {
		return 0, nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM domo_journal_segments WHERE id = ?`, id); err != nil {
		return 0, err
	}
	if len(kept) > 0 {
		recs := make([]*journal.Record, len(kept))
		for i := range kept {
			recs[i] = &kept[i]
		}
		if err := s.insertSegments(ctx, tx, recs); err != nil {
			return 0, err
		}
	}
	return removed, nil
}

// insertSegments writes final records as segments: one a run (in the
// order first seen), of at most maxSegment records each.
func (s *Store) insertSegments(ctx context.Context, tx *sql.Tx, recs []*journal.Record) error {
	for run, rs := range byRun(recs) {
		for rs := range slices.Chunk(rs, maxSegment) {
			if err := s.insertSegment(ctx, tx, run, rs); err != nil {
				return err
			}
		}
	}
	return nil
}

// byRun yields recs by run, in the order each run first appears; recs
// itself when they are all of one run (a Recorder's batches are).
func byRun(recs []*journal.Record) iter.Seq2[int64, []*journal.Record] {
	return func(yield func(int64, []*journal.Record) bool) {
		if len(recs) == 0 {
			return
		}
		run := recs[0].ID.Run
		if !slices.ContainsFunc(recs, func(r *journal.Record) bool { return r.ID.Run != run }) {
			yield(run, recs)
			return
		}
		var runs []int64
		m := make(map[int64][]*journal.Record)
		for _, r := range recs {
			if _, ok := m[r.ID.Run]; !ok {
				runs = append(runs, r.ID.Run)
			}
			m[r.ID.Run] = append(m[r.ID.Run], r)
		}
		for _, run := range runs {
			if !yield(run, m[run]) {
				return
			}
		}
	}
}

func (s *Store) insertSegment(ctx context.Context, tx *sql.Tx, run int64, recs []*journal.Record) error {
	minSeq, maxSeq := int64(math.MaxInt64), int64(math.MinInt64)
	minRecv, maxRecv := int64(math.MaxInt64), int64(math.MinInt64)
	var completed, failed, dropped, ids int
	for _, r := range recs {
		us := sqlstore.Micros(r.Received)
		minSeq, maxSeq = min(minSeq, r.ID.Seq), max(maxSeq, r.ID.Seq)
		minRecv, maxRecv = min(minRecv, us), max(maxRecv, us)
		switch r.Status {
		case journal.StatusCompleted:
			completed++
		case journal.StatusFailed:
			failed++
		case journal.StatusDropped:
			dropped++
		}
		if r.RequestID != "" {
			ids++
		}
	}
	bloom := []byte{}
	if ids > 0 {
		bloom = newBloom(ids)
		for _, r := range recs {
			if r.RequestID != "" {
				bloomAdd(bloom, r.RequestID)
			}
		}
	}
	s.buf = encodeSegment(s.buf[:0], recs)
	_, err := tx.ExecContext(ctx, `INSERT INTO domo_journal_segments (run, min_seq, max_seq, min_received_us, max_received_us,
		records, completed, failed, dropped, names, request_ids, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		run, minSeq, maxSeq, minRecv, maxRecv, len(recs), completed, failed, dropped, segmentNames(recs), bloom, s.buf)
	return err
}

// Get returns one record.
func (s *Store) Get(ctx context.Context, id journal.ID) (journal.Record, error) {
	var r journal.Record
	err := s.read(ctx, func(q sqlstore.Querier) error {
		var err error
		r, err = sqlstore.ScanRecord(q.QueryRowContext(ctx, fmt.Sprintf(`SELECT %s FROM domo_journal WHERE run = ? AND seq = ?`,
			strings.Join(sqlstore.Columns, ", ")), id.Run, id.Seq))
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		err = eachSegment(ctx, q, `run = ? AND max_seq >= ? AND min_seq <= ?`, []any{id.Run, id.Seq, id.Seq}, func(seg, run int64, data []byte) error {
			recs, err := decodeSegment(run, data, func(k segKey) bool { return k.seq == id.Seq })
			if err != nil {
				s.unreadable(seg, err)
				return nil
			}
			if len(recs) > 0 {
				r = recs[0]
				return errFound
			}
			return nil
		})
		switch {
		case errors.Is(err, errFound):
			return nil
		case err != nil:
			return err
		}
		return journal.ErrNotFound
	})
	if err != nil && !errors.Is(err, journal.ErrNotFound) {
		err = fmt.Errorf("journal: get %s: %w", id, err)
	}
	return r, err
}

// read runs fn in a read transaction on a connection of its own: every
// query fn makes sees the same snapshot of the journal (a record moving
// from domo_journal to a segment, or between segments, is seen once),
// and the queries fn nests share the connection.
func (s *Store) read(ctx context.Context, fn func(sqlstore.Querier) error) error {
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A deferred transaction (not database/sql's, which this file's DSN
	// makes BEGIN IMMEDIATE, a writer's lock): a reader in WAL mode
	// neither waits for writers nor holds them up.
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	return fn(conn)
}

// newer orders records newest first: by receipt, then run, then seq, all
// descending (the order of List and of its cursors).
func newer(a, b *journal.Record) int {
	return cmp.Or(cmp.Compare(sqlstore.Micros(b.Received), sqlstore.Micros(a.Received)),
		cmp.Compare(b.ID.Run, a.ID.Run), cmp.Compare(b.ID.Seq, a.ID.Seq))
}

// A position is a record's place in List's order (receipt, run, seq), or
// none (set false).
type position struct {
	set          bool
	us, run, seq int64
}

// older reports whether the record (us, run, seq) comes after p in List's
// order (is older), or p is none.
func (p position) older(us, run, seq int64) bool {
	if !p.set {
		return true
	}
	return cmp.Or(cmp.Compare(us, p.us), cmp.Compare(run, p.run), cmp.Compare(seq, p.seq)) < 0
}

// List returns a page of records, newest first, by keyset: the records in
// progress from domo_journal, the final ones from the segments that may hold
// matches, walked newest first until no older segment can hold a record
// newer than the page's last.
func (s *Store) List(ctx context.Context, f journal.Filter) (journal.Page, error) {
	limit := f.PageLimit()
	var pos position
	if f.After != "" {
		us, id, err := journal.ParseCursor(f.After)
		if err != nil {
			return journal.Page{}, err
		}
		pos = position{true, us, id.Run, id.Seq}
	}
	var out []journal.Record
	err := s.read(ctx, func(q sqlstore.Querier) error {
		var err error
		out, err = s.list(ctx, q, f, pos, limit)
		return err
	})
	if err != nil {
		return journal.Page{}, fmt.Errorf("journal: list: %w", err)
	}
	slices.SortFunc(out, func(a, b journal.Record) int { return newer(&a, &b) })
	var page journal.Page
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		page.Next = journal.Cursor(last.Received, last.ID)
	}
	page.Records = out
	return page, nil
}

// list returns the records of f's page and maybe more (newest first once
// sorted): the rows in progress, then those of the segments.
func (s *Store) list(ctx context.Context, q sqlstore.Querier, f journal.Filter, pos position, limit int) ([]journal.Record, error) {
	var out []journal.Record
	if f.InProgress || !f.Status.Done() {
		w, args, err := sqlstore.Where(f, placeholder)
		if err != nil {
			return nil, err
		}
		rows, err := q.QueryContext(ctx, fmt.Sprintf(`SELECT %s FROM domo_journal%s ORDER BY received_us DESC, run DESC, seq DESC LIMIT %d`,
			strings.Join(sqlstore.Columns, ", "), w, limit+1), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			r, err := sqlstore.ScanRecord(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	if !f.InProgress && (f.Status == 0 || f.Status.Done()) {
		match := func(r *journal.Record) bool {
			us := sqlstore.Micros(r.Received)
			return (f.Service == "" || r.Service == f.Service) && (f.Method == "" || r.Method == f.Method) &&
				(f.RequestID == "" || r.RequestID == f.RequestID) && (f.Status == 0 || r.Status == f.Status) &&
				(f.From.IsZero() || us >= f.From.UnixMicro()) && (f.To.IsZero() || us < f.To.UnixMicro()) &&
				pos.older(us, r.ID.Run, r.ID.Seq)
		}
		return s.scanSegments(ctx, q, f, pos, limit+1, out, match)
	}
	return out, nil
}

// scanSegments appends to out the records match accepts from the segments
// that may hold records of f before pos, newest segments first, and stops
// once out holds want records and no segment left can hold a newer one.
func (s *Store) scanSegments(ctx context.Context, q sqlstore.Querier, f journal.Filter, pos position, want int, out []journal.Record,
	match func(*journal.Record) bool) ([]journal.Record, error) {
	conds := []string{"1"}
	var args []any
	if pos.set {
		conds, args = append(conds, "min_received_us <= ?"), append(args, pos.us)
	}
	if !f.From.IsZero() {
		conds, args = append(conds, "max_received_us >= ?"), append(args, f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		conds, args = append(conds, "min_received_us < ?"), append(args, f.To.UnixMicro())
	}
	switch f.Status {
	case journal.StatusCompleted:
		conds = append(conds, "completed > 0")
	case journal.StatusFailed:
		conds = append(conds, "failed > 0")
	case journal.StatusDropped:
		conds = append(conds, "dropped > 0")
	}
	if f.Service != "" {
		conds, args = append(conds, "instr(names, ?) > 0"), append(args, namePattern(f.Service, f.Method))
	}
	idCol := "x''"
	if f.RequestID != "" {
		idCol = "request_ids"
	}
	rows, err := q.QueryContext(ctx, fmt.Sprintf(`SELECT id, run, max_received_us, %s FROM domo_journal_segments WHERE %s ORDER BY max_received_us DESC`,
		idCol, strings.Join(conds, " AND ")), args...)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, run, maxUs int64
		var ids []byte
		if err := rows.Scan(&id, &run, &maxUs, &ids); err != nil {
			return out, err
		}
		if len(out) >= want {
			slices.SortFunc(out, func(a, b journal.Record) int { return newer(&a, &b) })
			out = out[:want]
			if maxUs < sqlstore.Micros(out[want-1].Received) {
				break // every record left is older than the page
			}
		}
		if f.RequestID != "" && !bloomHas(ids, f.RequestID) {
			continue
		}
		recs, err := s.segment(ctx, q, id, run)
		if err != nil {
			return out, err
		}
		for i := range recs {
			if match(&recs[i]) {
				out = append(out, recs[i])
			}
		}
	}
	return out, rows.Err()
}

// segment decodes segment id's records; an unreadable segment has none.
func (s *Store) segment(ctx context.Context, q sqlstore.Querier, id, run int64) ([]journal.Record, error) {
	var data []byte
	if err := q.QueryRowContext(ctx, `SELECT data FROM domo_journal_segments WHERE id = ?`, id).Scan(&data); err != nil {
		return nil, fmt.Errorf("segment %d: %w", id, err)
	}
	recs, err := decodeSegment(run, data, nil)
	if err != nil {
		s.unreadable(id, err)
		return nil, nil
	}
	return recs, nil
}

// unreadable reports a segment that cannot be decoded (a damaged file, or
// one written by a later version of this code), once: readers skip it,
// writers leave it be, and Trim deletes it when it reaches it, so one bad
// segment never stops the journal.
func (s *Store) unreadable(id int64, err error) {
	if _, seen := s.bad.LoadOrStore(id, true); !seen {
		s.badN.Add(1)
		slog.Warn("journal: a segment cannot be read; skipped", "segment", id, "err", err)
	}
}

// Unreadable returns how many segments this Store found it cannot read.
func (s *Store) Unreadable() int { return int(s.badN.Load()) }

// Summary counts by status and takes the percentiles of the total time of
// answered requests, as journal.Store says: a window holding a whole
// minute or more from the rollups, plus the records of its partial minutes
// and those in progress; a shorter one from its records, exactly.
func (s *Store) Summary(ctx context.Context, win journal.Window) (journal.Summary, error) {
	var sum journal.Summary
	err := s.read(ctx, func(q sqlstore.Querier) error {
		var err error
		sum, err = s.summary(ctx, q, win)
		return err
	})
	if err != nil {
		return sum, fmt.Errorf("journal: summary: %w", err)
	}
	return sum, nil
}

func (s *Store) summary(ctx context.Context, q sqlstore.Querier, win journal.Window) (journal.Summary, error) {
	var sum journal.Summary
	var oldest, newest sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT min(a), max(b) FROM (
			SELECT min(min_received_us) AS a, max(max_received_us) AS b FROM domo_journal_segments
			UNION ALL SELECT min(received_us), max(received_us) FROM domo_journal)`).Scan(&oldest, &newest)
	if err != nil || !oldest.Valid {
		return sum, err
	}
	// The window's start is raised to the oldest record's receipt, so the
	// rollups of a minute that retention has trimmed in part are never
	// used.
	from, to := oldest.Int64, newest.Int64+1
	if !win.From.IsZero() {
		from = max(from, win.From.UnixMicro())
	}
	if !win.To.IsZero() {
		to = win.To.UnixMicro()
	}
	m0, m1 := sqlstore.CeilMinute(from), sqlstore.FloorMinute(to)
	exact := m1-m0 < sqlstore.Minute
	var h sqlstore.Hist
	var totals []int64 // exact: the answered requests' total times
	if !exact {
		if sum, h, err = sqlstore.RollupMinutes(ctx, q, placeholder, win.Service, win.Method, m0, m1); err != nil {
			return sum, err
		}
	}
	// Final records received in [lo, hi): the whole window when exact, else
	// its edges.
	count := func(r tally, lo, hi int64) {
		if r.receivedUs < lo || r.receivedUs >= hi || (win.Service != "" && r.service != win.Service) || (win.Method != "" && r.method != win.Method) {
			return
		}
		sqlstore.AddStatus(&sum, r.status, 1)
		if r.status == journal.StatusCompleted || r.status == journal.StatusFailed {
			if exact {
				totals = append(totals, r.totalUs)
			} else {
				h.Add(r.totalUs)
			}
		}
	}
	edges := [][2]int64{{from, to}}
	if !exact {
		edges = [][2]int64{{from, m0}, {m1, to}}
	}
	for _, e := range edges {
		if e[0] >= e[1] {
			continue
		}
		f := journal.Filter{Service: win.Service, Method: win.Method, From: time.UnixMicro(e[0]), To: time.UnixMicro(e[1])}
		if err := s.eachFinal(ctx, q, f, func(r tally) { count(r, e[0], e[1]) }); err != nil {
			return sum, err
		}
	}
	// Records in progress.
	w, args, err := sqlstore.Where(journal.Filter{Service: win.Service, Method: win.Method,
		From: time.UnixMicro(from), To: time.UnixMicro(to)}, placeholder)
	if err != nil {
		return sum, err
	}
	rows, err := q.QueryContext(ctx, `SELECT status, count(*) FROM domo_journal`+w+` GROUP BY status`, args...)
	if err != nil {
		return sum, err
	}
	for rows.Next() {
		var st, n int64
		if err := rows.Scan(&st, &n); err != nil {
			rows.Close()
			return sum, err
		}
		sqlstore.AddStatus(&sum, journal.Status(st), int(n))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return sum, err
	}
	if !exact {
		h.Summarize(&sum)
		return sum, nil
	}
	if len(totals) > 0 {
		slices.Sort(totals)
		rank := func(p float64) time.Duration {
			i := int(max(1, math.Ceil(p*float64(len(totals))))) - 1
			return time.Duration(totals[i]) * time.Microsecond
		}
		sum.P50, sum.P90, sum.P99, sum.Max = rank(0.50), rank(0.90), rank(0.99), rank(1)
	}
	return sum, nil
}

// eachFinal calls fn with the tally of every final record of the segments
// that may hold records of f (by service, method and receipt time; fn
// filters).
func (s *Store) eachFinal(ctx context.Context, q sqlstore.Querier, f journal.Filter, fn func(tally)) error {
	conds := []string{"max_received_us >= ?", "min_received_us < ?"}
	args := []any{f.From.UnixMicro(), f.To.UnixMicro()}
	if f.Service != "" {
		conds, args = append(conds, "instr(names, ?) > 0"), append(args, namePattern(f.Service, f.Method))
	}
	var ts []tally
	return eachSegment(ctx, q, strings.Join(conds, " AND "), args, func(id, _ int64, data []byte) error {
		// Gathered first: a segment found unreadable half-way counts for
		// nothing.
		ts = ts[:0]
		if err := tallySegment(data, func(t tally) { ts = append(ts, t) }); err != nil {
			s.unreadable(id, err)
			return nil
		}
		for _, t := range ts {
			fn(t)
		}
		return nil
	})
}

// Trim deletes by age, then by count: whole segments where it can, the
// records of the segments at the edge by rewriting them.
func (s *Store) Trim(ctx context.Context, olderThan time.Time, maxRows int) (int, error) {
	total := 0
	if !olderThan.IsZero() {
		cut := olderThan.UnixMicro()
		n, err := s.trimBefore(ctx, position{true, cut, math.MinInt64, math.MinInt64})
		total += n
		if err != nil {
			return total, fmt.Errorf("journal: trim: %w", err)
		}
		if err := sqlstore.TrimRollups(ctx, s.DB, placeholder, cut); err != nil {
			return total, err
		}
	}
	if maxRows > 0 {
		var keep position
		var ok bool
		err := s.read(ctx, func(q sqlstore.Querier) error {
			var err error
			keep, ok, err = s.nthNewest(ctx, q, maxRows)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("journal: trim: %w", err)
		}
		if ok {
			n, err := s.trimBefore(ctx, keep)
			total += n
			if err != nil {
				return total, fmt.Errorf("journal: trim: %w", err)
			}
			if err := sqlstore.TrimRollups(ctx, s.DB, placeholder, keep.us); err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

// trimChunk bounds the segments deleted in one transaction, so that
// writes interleave with a long trim.
const trimChunk = 256

// trimBefore deletes every record older than p (in List's order): the
// segments wholly older, a chunk a transaction (writes interleave); then,
// in one transaction, the older records of the segments that straddle p
// and the rows in progress.
func (s *Store) trimBefore(ctx context.Context, p position) (int, error) {
	total := 0
	for {
		n, err := s.inTx(ctx, func(_ *sql.Conn, tx *sql.Tx) (int, error) {
			rows, err := tx.QueryContext(ctx, `DELETE FROM domo_journal_segments WHERE id IN (
				SELECT id FROM domo_journal_segments WHERE max_received_us < ? LIMIT ?) RETURNING records`, p.us, trimChunk)
			if err != nil {
				return 0, err
			}
			defer rows.Close()
			n := 0
			for rows.Next() {
				var records int
				if err := rows.Scan(&records); err != nil {
					return 0, err
				}
				n += records
			}
			return n, rows.Err()
		})
		total += n
		if err != nil {
			return total, err
		}
		if n == 0 {
			break
		}
	}
	// The edges change records in progress: Write must not run meanwhile
	// (it reads and changes s.live around its transaction).
	s.mu.Lock()
	defer s.mu.Unlock()
	var gone []journal.ID
	n, err := s.inTx(ctx, func(_ *sql.Conn, tx *sql.Tx) (int, error) {
		rows, err := tx.QueryContext(ctx, `SELECT id, run FROM domo_journal_segments WHERE min_received_us <= ?`, p.us)
		if err != nil {
			return 0, err
		}
		var segs [][2]int64
		for rows.Next() {
			var id, run int64
			if err := rows.Scan(&id, &run); err != nil {
				rows.Close()
				return 0, err
			}
			segs = append(segs, [2]int64{id, run})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
		n := 0
		for _, g := range segs {
			run := g[1]
			m, err := s.rewriteSegment(ctx, tx, g[0], func(k segKey) bool { return !p.older(k.receivedUs, run, k.seq) })
			if err != nil {
				return 0, err
			}
			n += m
		}
		ids, err := deleteLive(ctx, tx, p)
		if err != nil {
			return 0, err
		}
		gone = ids
		return n + len(ids), nil
	})
	if err != nil {
		return total, err
	}
	for _, id := range gone { // committed: the rows are gone
		delete(s.live, id)
	}
	return total + n, nil
}

// deleteLive deletes the rows in progress older than p and returns their
// ids.
func deleteLive(ctx context.Context, tx *sql.Tx, p position) ([]journal.ID, error) {
	rows, err := tx.QueryContext(ctx, `DELETE FROM domo_journal WHERE (received_us, run, seq) < (?, ?, ?) RETURNING run, seq`,
		p.us, p.run, p.seq)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []journal.ID
	for rows.Next() {
		var id journal.ID
		if err := rows.Scan(&id.Run, &id.Seq); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// nthNewest returns the position of the n-th newest record, and false if
// there are n or fewer. It counts from the oldest end: a journal at its cap
// is trimmed every TrimInterval by the few records over it, so only about
// that many keys are decoded, not the n kept.
func (s *Store) nthNewest(ctx context.Context, q sqlstore.Querier, n int) (position, bool, error) {
	var total int
	if err := q.QueryRowContext(ctx, `SELECT (SELECT coalesce(sum(records), 0) FROM domo_journal_segments)
		+ (SELECT count(*) FROM domo_journal)`).Scan(&total); err != nil {
		return position{}, false, err
	}
	if total <= n {
		return position{}, false, nil
	}
	over := total - n // the records to trim; the one after them is the n-th newest
	var keys []position
	rows, err := q.QueryContext(ctx, `SELECT received_us, run, seq FROM domo_journal`)
	if err != nil {
		return position{}, false, err
	}
	for rows.Next() {
		var p position
		if err := rows.Scan(&p.us, &p.run, &p.seq); err != nil {
			rows.Close()
			return position{}, false, err
		}
		p.set = true
		keys = append(keys, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return position{}, false, err
	}
	byAge := func(a, b position) int {
		return cmp.Or(cmp.Compare(a.us, b.us), cmp.Compare(a.run, b.run), cmp.Compare(a.seq, b.seq))
	}
	// Segments oldest first (by their oldest record), until no segment left
	// can hold a record older than the (over+1)-th oldest so far. Their ids
	// first, their data one at a time: a sort carrying the data would read
	// every segment.
	rows, err = q.QueryContext(ctx, `SELECT id, run, min_received_us FROM domo_journal_segments ORDER BY min_received_us`)
	if err != nil {
		return position{}, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, run, minUs int64
		if err := rows.Scan(&id, &run, &minUs); err != nil {
			return position{}, false, err
		}
		if len(keys) > over {
			slices.SortFunc(keys, byAge)
			keys = keys[:over+1]
			if minUs > keys[over].us {
				break // every record left is newer than the cut
			}
		}
		var data []byte
		if err := q.QueryRowContext(ctx, `SELECT data FROM domo_journal_segments WHERE id = ?`, id).Scan(&data); err != nil {
			return position{}, false, err
		}
		ks, err := segmentKeys(data)
		if err != nil {
			s.unreadable(id, err) // not counted: it goes once it is wholly older
			continue
		}
		for _, k := range ks {
			keys = append(keys, position{true, k.receivedUs, run, k.seq})
		}
	}
	if err := rows.Err(); err != nil {
		return position{}, false, err
	}
	if len(keys) <= over {
		return position{}, false, nil // fewer than counted (unreadable segments)
	}
	slices.SortFunc(keys, byAge)
	return keys[over], true, nil
}

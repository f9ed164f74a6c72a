// Package sqlite is the journal's embedded store: one SQLite file in WAL
// mode (the C SQLite through cgo, github.com/mattn/go-sqlite3). Importing it
// registers "sqlite" with journal.Open:
//
//	import _ "github.com/domo-framework/domo/journal/sqlite"
//	store, err := journal.Open("sqlite:/var/lib/domo/journal.db")
//
// The first Open in a process turns off SQLite's memory statistics for
// every database the process opens (see Open).
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/domo-framework/domo/journal"
	"github.com/domo-framework/domo/journal/internal/sqlstore"
	_ "github.com/mattn/go-sqlite3" // the "sqlite3" database/sql driver
)

func init() {
	journal.Register("sqlite", func(ctx context.Context, path string) (journal.Store, error) {
		return Open(ctx, path)
	})
}

// Store is a journal.Store in a SQLite file. It is safe from several
// goroutines; one process writes a file at a time (see Open).
type Store struct {
	DB *sql.DB

	mu   sync.Mutex          // Write and Trim, one at a time
	live map[journal.ID]bool // the ids of domo_journal's rows (guarded by mu)
	buf  []byte              // a segment's encoding (guarded by mu)

	bad  sync.Map     // ids of the segments found unreadable (see unreadable)
	badN atomic.Int64 // how many

	closeOnce sync.Once
	closeErr  error
}

var _ journal.Store = (*Store)(nil)

// The tables: records not yet final, one row each (domo_journal, the
// journal's table of old, without its indexes); final records in segments
// (domo_journal_segments, see segment.go); and the per-minute rollups.
var schema = append([]string{
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
	`CREATE TABLE IF NOT EXISTS domo_journal_segments (
			id INTEGER PRIMARY KEY,
			run INTEGER NOT NULL, min_seq INTEGER NOT NULL, max_seq INTEGER NOT NULL,
			min_received_us INTEGER NOT NULL, max_received_us INTEGER NOT NULL,
			records INTEGER NOT NULL, completed INTEGER NOT NULL, failed INTEGER NOT NULL, dropped INTEGER NOT NULL,
			names TEXT NOT NULL, request_ids BLOB NOT NULL,
			data BLOB NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS domo_journal_segments_received ON domo_journal_segments (max_received_us, min_received_us)`,
	`CREATE INDEX IF NOT EXISTS domo_journal_segments_seq ON domo_journal_segments (run, max_seq, min_seq)`,
}, sqlstore.RollupSchema(" WITHOUT ROWID")...)

// Open opens (creating if needed) the journal in the SQLite file at path,
// in WAL mode with synchronous=NORMAL: a crash may lose the last
// transactions, never corrupt the file. A journal of the earlier layout
// (a row a record) is moved to segments first. It blocks.
//
// One process writes a journal file at a time: a Store keeps the ids of
// the records in progress in memory.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.HasPrefix(path, ":memory:") {
		return nil, fmt.Errorf("journal/sqlite: want a file path, got %q", path)
	}
	// SQLite counts every allocation under a process-wide mutex unless
	// told not to before it initializes (on the first database opened in
	// the process). This turns the count off for the whole process, so
	// sqlite3_memory_used reports 0 and no soft heap limit applies; if
	// SQLite was initialized already, it does nothing.
	memstatusOff()
	if err := createWithPageSize(ctx, path); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_journal_mode", "WAL")
	q.Add("_synchronous", "NORMAL")
	q.Add("_busy_timeout", "10000")
	q.Add("_txlock", "immediate")
	// database/sql gives a connection to one goroutine at a time, so
	// SQLite's per-connection mutex, taken on every call (each bind, step
	// and reset), guards nothing here.
	q.Add("_mutex", "no")
	db, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("journal/sqlite: %w", err)
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	s := &Store{DB: db, live: make(map[journal.ID]bool)}
	if err := s.open(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("journal/sqlite: %s: %w", path, err)
	}
	return s, nil
}

// open creates the schema, moves the rows of an earlier layout to
// segments and loads the ids of the records in progress.
func (s *Store) open(ctx context.Context) error {
	for _, q := range schema {
		if _, err := s.DB.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
	}
	// A journal of the first layout may lack rollups: built from its rows
	// while they are rows.
	if err := sqlstore.Backfill(ctx, s.DB); err != nil {
		return fmt.Errorf("schema: rollups: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		return fmt.Errorf("schema: segments: %w", err)
	}
	if err := s.backfill(ctx); err != nil {
		return fmt.Errorf("schema: rollups: %w", err)
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT run, seq FROM domo_journal`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id journal.ID
		if err := rows.Scan(&id.Run, &id.Seq); err != nil {
			return err
		}
		s.live[id] = true
	}
	return rows.Err()
}

// migrate moves the final rows of the earlier layout (every record a row,
// with four indexes) into segments, a chunk per transaction, oldest first,
// and drops that layout's indexes.
func (s *Store) migrate(ctx context.Context) error {
	const chunk = 2000
	var rows int
	if err := s.DB.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FROM domo_journal WHERE status >= %d`,
		int64(journal.StatusCompleted))).Scan(&rows); err != nil {
		return err
	}
	if rows > 0 {
		slog.Info("journal: moving the rows of the earlier layout to segments", "rows", rows)
	}
	// Every index but the received one (the order the rows move in) first:
	// each would cost every row's delete.
	for _, ix := range []string{"domo_journal_service", "domo_journal_status", "domo_journal_not_completed", "domo_journal_request_id"} {
		if _, err := s.DB.ExecContext(ctx, "DROP INDEX IF EXISTS "+ix); err != nil {
			return err
		}
	}
	q := fmt.Sprintf(`SELECT %s FROM domo_journal WHERE status >= %d ORDER BY received_us, run, seq LIMIT %d`,
		strings.Join(sqlstore.Columns, ", "), int64(journal.StatusCompleted), chunk)
	for {
		n, err := s.inTx(ctx, func(conn *sql.Conn, tx *sql.Tx) (int, error) {
			rows, err := tx.QueryContext(ctx, q)
			if err != nil {
				return 0, err
			}
			var recs []*journal.Record
			for rows.Next() {
				r, err := sqlstore.ScanRecord(rows)
				if err != nil {
					rows.Close()
					return 0, err
				}
				recs = append(recs, &r)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return 0, err
			}
			if len(recs) == 0 {
				return 0, nil
			}
			if err := s.insertSegments(ctx, tx, recs); err != nil {
				return 0, err
			}
			// The chunk is the oldest final rows: one range delete (through
			// the received index, still there) instead of a delete a row.
			last := recs[len(recs)-1]
			_, err = tx.ExecContext(ctx, fmt.Sprintf(`DELETE FROM domo_journal WHERE status >= %d AND (received_us, run, seq) <= (?, ?, ?)`,
				int64(journal.StatusCompleted)), sqlstore.Micros(last.Received), last.ID.Run, last.ID.Seq)
			return len(recs), err
		})
		if err != nil {
			return err
		}
		if n < chunk {
			break
		}
	}
	_, err := s.DB.ExecContext(ctx, "DROP INDEX IF EXISTS domo_journal_received")
	return err
}

// backfill builds the rollups from the segments when there are none (a
// journal whose rollup table was lost or emptied).
func (s *Store) backfill(ctx context.Context) error {
	var n int
	err := s.DB.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM (SELECT 1 FROM domo_journal_segments LIMIT 1))
		+ 2 * (SELECT count(*) FROM (SELECT 1 FROM domo_journal_minutes LIMIT 1))`).Scan(&n)
	if err != nil || n != 1 { // 1: segments but no rollups
		return err
	}
	// A few segments at a time: a big journal does not fit in memory as
	// records.
	_, err = s.inTx(ctx, func(_ *sql.Conn, tx *sql.Tx) (int, error) {
		for after := int64(0); ; {
			var finals []*journal.Record
			read := 0
			err := eachSegment(ctx, tx, `id > ? ORDER BY id LIMIT 16`, []any{after}, func(id, run int64, data []byte) error {
				after, read = id, read+1
				recs, err := decodeSegment(run, data, nil)
				if err != nil {
					s.unreadable(id, err)
					return nil
				}
				for i := range recs {
					finals = append(finals, &recs[i])
				}
				return nil
			})
			if err != nil {
				return 0, err
			}
			if read == 0 {
				return 0, nil
			}
			if err := sqlstore.AddRollups(ctx, tx, placeholder, finals); err != nil {
				return 0, err
			}
		}
	})
	return err
}

// inTx runs fn in a transaction on a connection of its own, and commits
// if fn returns no error.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Conn, *sql.Tx) (int, error)) (int, error) {
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	// A transaction begun with a context that can end gets a goroutine of
	// its own from database/sql, to roll it back then: ctx is looked at
	// before the commit instead (SQLite's busy timeout bounds the wait for
	// the file's lock).
	tx, err := conn.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return 0, err
	}
	n, err := fn(conn, tx)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		_ = tx.Rollback()
		return n, err
	}
	return n, tx.Commit()
}

// Close closes the database. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.DB.Close() })
	return s.closeErr
}

func placeholder(int) string { return "?" }

// upsertLive writes a record in progress: its row, new or replaced.
var upsertLive = fmt.Sprintf(`INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (run, seq) DO UPDATE SET %s`,
	sqlstore.Table, strings.Join(sqlstore.Columns, ", "),
	strings.TrimSuffix(strings.Repeat("?, ", len(sqlstore.Columns)), ", "), sqlstore.UpsertSet())

// checkEvery is how many records writeLive writes between looks at its
// context.
const checkEvery = 64

// writeLive writes the rows of recs, records in progress, in the
// transaction open on conn.
//
// It runs its statement on the driver's connection (conn.Raw), which
// spares database/sql's work per statement (converting and checking each
// argument, locking), binding a row's values in one cgo call (rowexec.go)
// when the driver's statement handle can be had, and with a context that
// cannot be cancelled: given one that can, the driver runs each statement
// in a goroutine of its own, to interrupt it on cancellation, which
// doubled the CPU time of a row. Instead, writeLive looks at ctx every
// checkEvery records; a statement takes microseconds.
func writeLive(ctx context.Context, conn *sql.Conn, recs []*journal.Record) error {
	return conn.Raw(func(dc any) error {
		c, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return fmt.Errorf("journal/sqlite: driver connection %T", dc)
		}
		st, err := c.PrepareContext(context.WithoutCancel(ctx), upsertLive)
		if err != nil {
			return err
		}
		defer st.Close()
		ex, ok := st.(driver.StmtExecContext)
		if !ok {
			return fmt.Errorf("journal/sqlite: driver statement %T", st)
		}
		raw := rawStmt(st)
		var a rowArgs
		var vals []any
		args := make([]driver.NamedValue, len(sqlstore.Columns))
		for i, r := range recs {
			if i%checkEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if raw != nil {
				a.reset()
				sqlstore.EachValue(r, &a)
				if _, err := a.execRow(raw); err != nil {
					return err
				}
				continue
			}
			vals = sqlstore.AppendValues(vals[:0], r)
			for j, v := range vals {
				args[j] = driver.NamedValue{Ordinal: j + 1, Value: v}
			}
			if _, err := ex.ExecContext(context.WithoutCancel(ctx), args); err != nil {
				return err
			}
		}
		return nil
	})
}

// createWithPageSize creates the file at path, if there is none, with
// pages of 16 KiB instead of SQLite's 4 KiB: a journal appends rows, and
// bigger pages mean fewer WAL frames and checkpoint writes per row. The
// page size of an existing file is kept (it is fixed once written).
func createWithPageSize(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		return fmt.Errorf("journal/sqlite: %w", err)
	}
	defer db.Close()
	for _, q := range []string{`PRAGMA page_size = 16384`, `PRAGMA journal_mode = WAL`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("journal/sqlite: %s: %s: %w", path, q, err)
		}
	}
	return nil
}

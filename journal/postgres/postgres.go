// Package postgres is the journal's shared store: one PostgreSQL table that
// many brokers write to (github.com/jackc/pgx/v5). Importing it registers
// "postgres" and "postgresql" with journal.Open:
//
//	import _ "github.com/domo-framework/domo/journal/postgres"
//	store, err := journal.Open("postgres:host=db dbname=domo user=domo")
//	store, err := journal.Open("postgres://domo@db/domo")
package postgres

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/domo-framework/domo/journal"
	"github.com/domo-framework/domo/journal/internal/sqlstore"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

func init() {
	open := func(ctx context.Context, dsn string) (journal.Store, error) { return Open(ctx, dsn) }
	journal.Register("postgres", open)
	journal.Register("postgresql", open)
}

// Store is a journal.Store in PostgreSQL. It is safe from several
// goroutines, and many Stores (many brokers) may share one database.
type Store struct {
	*sqlstore.Store
}

var _ journal.Store = (*Store)(nil)

// Open connects to the database dsn names (a libpq keyword string or a
// postgres:// URL) and creates the journal's table if needed. It blocks.
func Open(ctx context.Context, dsn string) (*Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("journal/postgres: %w", err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("journal/postgres: %w", err)
	}
	s, err := sqlstore.New(ctx, db, sqlstore.Dialect{
		Placeholder: func(n int) string { return "$" + strconv.Itoa(n) },
		Schema: append(append([]string{
			// Serialize concurrent schema creation by brokers starting together.
			`SELECT pg_advisory_xact_lock(7236211)`,
			`CREATE TABLE IF NOT EXISTS domo_journal (
			run BIGINT NOT NULL, seq BIGINT NOT NULL,
			broker TEXT NOT NULL, request_id TEXT NOT NULL, service TEXT NOT NULL, method TEXT NOT NULL,
			client TEXT NOT NULL, worker TEXT NOT NULL,
			status SMALLINT NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL, attempts INTEGER NOT NULL,
			request_bytes INTEGER NOT NULL, reply_bytes INTEGER NOT NULL,
			received_us BIGINT NOT NULL, dispatched_us BIGINT NOT NULL, last_dispatched_us BIGINT NOT NULL,
			ended_us BIGINT NOT NULL, queue_us BIGINT NOT NULL, handling_us BIGINT NOT NULL, total_us BIGINT NOT NULL,
			request_body BYTEA, reply_body BYTEA,
			PRIMARY KEY (run, seq))`}, sqlstore.Indexes...), sqlstore.RollupSchema("")...),
		Write: write,
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("journal/postgres: %w", err)
	}
	return &Store{s}, nil
}

// A batch is one statement: each column is sent as an array and unnest
// turns the arrays back into rows, so a batch costs one round trip. The
// upsert updates only rows not yet final and returns the rows it wrote:
// those of the batch that are final became final with it, which is what
// the rollups count, learnt without a query before the write. (Such a
// lookup, `seq IN (...)` over a table the planner had no statistics for
// yet, scanned the broker's whole run: 150 ms a lookup at 100,000 rows.)
// A record whose row is final already (rare: the Recorder writes a
// request again only when its end was seen twice) is updated by a second
// statement, not counted again.
var pgTypes = []string{
	"bigint", "bigint", "text", "text", "text", "text", "text", "text",
	"smallint", "text", "text", "integer", "integer", "integer",
	"bigint", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint", "bytea", "bytea",
}

// unnestRows is the FROM item that turns the column arrays $1..$n back into
// rows named t, with the table's column names. Each array is sent as one
// text parameter, an array literal the server parses: pgx encodes an array
// argument element by element through an any (19 allocations and 5-7 µs of
// the broker's CPU a row); building the literals costs well under one.
var unnestRows = func() string {
	params := make([]string, len(pgTypes))
	for i, t := range pgTypes {
		params[i] = fmt.Sprintf("$%d::text::%s[]", i+1, t)
	}
	return fmt.Sprintf("unnest(%s) AS t (%s)", strings.Join(params, ", "), strings.Join(sqlstore.Columns, ", "))
}()

var (
	upsert = fmt.Sprintf(`INSERT INTO %[1]s (%[2]s) SELECT * FROM %[3]s
		ON CONFLICT (run, seq) DO UPDATE SET %[4]s WHERE %[1]s.status < %[5]d
		RETURNING run, seq`,
		sqlstore.Table, strings.Join(sqlstore.Columns, ", "), unnestRows, sqlstore.UpsertSet(), int64(journal.StatusCompleted))
	updateFinal = func() string {
		set := make([]string, 0, len(sqlstore.Columns))
		for _, c := range sqlstore.Columns[2:] {
			set = append(set, c+" = t."+c)
		}
		return fmt.Sprintf(`UPDATE %s AS j SET %s FROM %s WHERE j.run = t.run AND j.seq = t.seq`,
			sqlstore.Table, strings.Join(set, ", "), unnestRows)
	}()
)

// lastOfEach returns recs, but of records sharing an id only the last:
// one statement may not upsert a row twice.
func lastOfEach(recs []journal.Record) []*journal.Record {
	all := make([]*journal.Record, 0, len(recs))
	seen := make(map[journal.ID]bool, len(recs))
	for i := len(recs) - 1; i >= 0; i-- {
		if !seen[recs[i].ID] {
			seen[recs[i].ID] = true
			all = append(all, &recs[i])
		}
	}
	slices.Reverse(all)
	return all
}

// columns returns recs as one array literal per column, in pgTypes order.
func columns(recs []*journal.Record) []any {
	c := columnSink{cols: make([][]byte, len(pgTypes))}
	for i := range c.cols {
		c.cols[i] = append(make([]byte, 0, 16*len(recs)), '{')
	}
	for _, r := range recs {
		c.next = 0
		sqlstore.EachValue(r, &c)
	}
	args := make([]any, len(c.cols))
	for i, col := range c.cols {
		if len(col) > 1 {
			col = col[:len(col)-1] // the last element's comma
		}
		args[i] = string(append(col, '}'))
	}
	return args
}

// columnSink appends a record's values to their columns' array literals,
// each element followed by a comma.
type columnSink struct {
	cols [][]byte
	next int
}

func (c *columnSink) Int(v int64) {
	c.cols[c.next] = append(strconv.AppendInt(c.cols[c.next], v, 10), ',')
	c.next++
}

func (c *columnSink) Text(v string) {
	c.cols[c.next] = append(appendQuoted(c.cols[c.next], v), ',')
	c.next++
}

func (c *columnSink) Blob(v []byte) {
	col := c.cols[c.next]
	if v == nil {
		col = append(col, "NULL,"...)
	} else {
		col = append(col, `"\\x`...) // the element \x..., a bytea in hex, its backslash escaped
		col = hex.AppendEncode(col, v)
		col = append(col, `",`...)
	}
	c.cols[c.next] = col
	c.next++
}

// appendQuoted appends v as a quoted array element: double quotes around
// it, a backslash before each double quote and backslash in it.
func appendQuoted(dst []byte, v string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, v[i])
	}
	return append(dst, '"')
}

func write(ctx context.Context, _ *sql.Conn, tx *sql.Tx, recs []journal.Record) ([]*journal.Record, error) {
	all := lastOfEach(recs)
	rows, err := tx.QueryContext(ctx, upsert, columns(all)...)
	if err != nil {
		return nil, err
	}
	written := make(map[journal.ID]bool, len(recs))
	for rows.Next() {
		var id journal.ID
		if err := rows.Scan(&id.Run, &id.Seq); err != nil {
			rows.Close()
			return nil, err
		}
		written[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var finals, again []*journal.Record
	for _, r := range all {
		switch {
		case !written[r.ID]:
			again = append(again, r)
		case r.Status.Done():
			finals = append(finals, r)
		}
	}
	if len(again) > 0 {
		if _, err := tx.ExecContext(ctx, updateFinal, columns(again)...); err != nil {
			return nil, err
		}
	}
	return finals, nil
}

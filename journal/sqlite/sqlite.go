// Package sqlite is the journal's embedded store: one SQLite file in WAL
// mode (the C SQLite through cgo, github.com/mattn/go-sqlite3). Importing it
// registers "sqlite" with journal.Open:
//
//	import _ "github.com/domo-framework/domo/journal/sqlite"
//	store, err := journal.Open("sqlite:/var/lib/domo/journal.db")
package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"

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
// goroutines.
type Store struct {
	*sqlstore.Store
}

var _ journal.Store = (*Store)(nil)

// Open opens (creating if needed) the journal in the SQLite file at path,
// in WAL mode with synchronous=NORMAL: a crash may lose the last
// transactions, never corrupt the file. It blocks.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.HasPrefix(path, ":memory:") {
		return nil, fmt.Errorf("journal/sqlite: want a file path, got %q", path)
	}
	q := url.Values{}
	q.Add("_journal_mode", "WAL")
	q.Add("_synchronous", "NORMAL")
	q.Add("_busy_timeout", "10000")
	q.Add("_txlock", "immediate")
	db, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("journal/sqlite: %w", err)
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	s, err := sqlstore.New(ctx, db, sqlstore.Dialect{
		Placeholder: func(int) string { return "?" },
		Schema: append(append([]string{`CREATE TABLE IF NOT EXISTS domo_journal (
			run INTEGER NOT NULL, seq INTEGER NOT NULL,
			broker TEXT NOT NULL, request_id TEXT NOT NULL, service TEXT NOT NULL, method TEXT NOT NULL,
			client TEXT NOT NULL, worker TEXT NOT NULL,
			status INTEGER NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL, attempts INTEGER NOT NULL,
			request_bytes INTEGER NOT NULL, reply_bytes INTEGER NOT NULL,
			received_us INTEGER NOT NULL, dispatched_us INTEGER NOT NULL, last_dispatched_us INTEGER NOT NULL,
			ended_us INTEGER NOT NULL, queue_us INTEGER NOT NULL, handling_us INTEGER NOT NULL, total_us INTEGER NOT NULL,
			request_body BLOB, reply_body BLOB,
			PRIMARY KEY (run, seq)) WITHOUT ROWID`}, sqlstore.Indexes...), sqlstore.RollupSchema(" WITHOUT ROWID")...),
		Write: write,
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("journal/sqlite: %s: %w", path, err)
	}
	return &Store{s}, nil
}

var upsert = fmt.Sprintf(`INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (run, seq) DO UPDATE SET %s`,
	sqlstore.Table, strings.Join(sqlstore.Columns, ", "),
	strings.TrimSuffix(strings.Repeat("?, ", len(sqlstore.Columns)), ", "), sqlstore.UpsertSet())

func write(ctx context.Context, tx *sql.Tx, recs []journal.Record) error {
	st, err := tx.PrepareContext(ctx, upsert)
	if err != nil {
		return err
	}
	defer st.Close()
	for i := range recs {
		if _, err := st.ExecContext(ctx, sqlstore.Values(&recs[i])...); err != nil {
			return err
		}
	}
	return nil
}

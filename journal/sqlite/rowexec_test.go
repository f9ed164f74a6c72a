package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/domo-framework/domo/journal"
)

// TestRowExecIsUsed fails if the driver's statement layout changed so that
// rows go through the driver one bound value per cgo call again.
func TestRowExecIsUsed(t *testing.T) {
	if !stmtHandleOK {
		t.Fatal("mattn/go-sqlite3's SQLiteStmt has no sqlite3_stmt field named s")
	}
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (a INTEGER, b TEXT, c BLOB, d BLOB)`); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		st, err := dc.(driver.ConnPrepareContext).PrepareContext(ctx, `INSERT INTO t VALUES (?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer st.Close()
		raw := rawStmt(st)
		if raw == nil {
			t.Fatal("rawStmt = nil")
		}
		var a rowArgs
		for i := range 3 {
			a.reset()
			a.Int(int64(i))
			a.Text("tea")
			a.Blob([]byte{1, 2})
			a.Blob(nil)
			if n, err := a.execRow(raw); err != nil || n != 1 {
				t.Fatalf("execRow = %d, %v", n, err)
			}
		}
		a.reset()
		if _, err := a.execRow(raw); err == nil {
			t.Error("execRow with no values: no error")
		}
		// An empty text is bound as '', not NULL.
		a.reset()
		a.Int(9)
		a.Text("")
		a.Blob(nil)
		a.Blob(nil)
		if n, err := a.execRow(raw); err != nil || n != 1 {
			t.Fatalf("execRow with an empty text = %d, %v", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var n, sum int64
	var b string
	var c []byte
	if err := db.QueryRowContext(ctx, `SELECT count(*), sum(a), max(b), max(c) FROM t WHERE d IS NULL AND a < 9`).Scan(&n, &sum, &b, &c); err != nil {
		t.Fatal(err)
	}
	if n != 3 || sum != 3 || b != "tea" || string(c) != "\x01\x02" {
		t.Errorf("rows: count %d sum %d b %q c %x; want 3 3 tea 0102", n, sum, b, c)
	}
	var empty int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM t WHERE a = 9 AND b = '' AND c IS NULL`).Scan(&empty); err != nil || empty != 1 {
		t.Errorf("rows with an empty text: %d, %v; want 1", empty, err)
	}
}

// TestNewJournalPageSize: a journal file Open creates has 16 KiB pages and
// is in WAL mode; one that exists keeps its page size.
func TestNewJournalPageSize(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var size int
	var mode string
	if err := s.DB.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&size); err != nil {
		t.Fatal(err)
	}
	if err := s.DB.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if size != 16384 || mode != "wal" {
		t.Errorf("page_size %d, journal_mode %s; want 16384, wal", size, mode)
	}
	old := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite3", "file:"+old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE x (a)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s2, err := Open(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.DB.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&size); err != nil || size != 4096 {
		t.Errorf("existing file's page_size = %d, %v; want 4096 kept", size, err)
	}
}

// TestDriverPathWhenNoHandle: with the statement handle unavailable, rows
// in progress go through the driver (new, then replaced), and the journal
// reads the same as through rowexec.
func TestDriverPathWhenNoHandle(t *testing.T) {
	ok := stmtHandleOK
	defer func() { stmtHandleOK = ok }()
	for _, handle := range []bool{ok, false} {
		stmtHandleOK = handle
		t.Run(fmt.Sprintf("handle=%v", handle), testLiveRows)
	}
}

func testLiveRows(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec := journal.Record{ID: journal.ID{Run: 1, Seq: 7}, Broker: "b", Service: "tea", Method: "brew",
		Status: journal.StatusProcessing, Received: time.Unix(100, 0)}
	if err := s.Write(ctx, []journal.Record{rec}); err != nil {
		t.Fatal(err)
	}
	rec.Worker, rec.Attempts = "w2", 2 // moved to another worker: the row is replaced
	if err := s.Write(ctx, []journal.Record{rec}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, rec.ID); err != nil || got.Worker != "w2" || got.Attempts != 2 {
		t.Fatalf("Get after the second write in progress = %+v, %v", got, err)
	}
	rec.Status, rec.Ended = journal.StatusCompleted, time.Unix(101, 0)
	if err := s.Write(ctx, []journal.Record{rec}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, rec.ID)
	if err != nil || got.Status != journal.StatusCompleted || got.Total() != time.Second {
		t.Fatalf("Get = %+v, %v; want completed after 1s", got, err)
	}
}

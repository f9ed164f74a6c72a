package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/domo-framework/domo/journal"
	"github.com/domo-framework/domo/journal/journaltest"
	"github.com/domo-framework/domo/journal/postgres"
	"github.com/jackc/pgx/v5"
)

// dsn returns the test server's DSN from DOMO_TEST_POSTGRES
// (scripts/postgres-test.sh starts one). Without it the tests skip, except
// in CI (CI set), where they must run.
func dsn(t testing.TB) string {
	t.Helper()
	d := os.Getenv("DOMO_TEST_POSTGRES")
	if d == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("DOMO_TEST_POSTGRES is not set, and CI is: .ci/run must start PostgreSQL (scripts/postgres-test.sh)")
		}
		t.Skip("DOMO_TEST_POSTGRES not set: start a server with eval \"$(scripts/postgres-test.sh start)\"")
	}
	return d
}

// freshSchema creates a schema of its own for one test and returns a DSN
// whose search_path is it; the schema is dropped when the test ends.
func freshSchema(t testing.TB) string {
	t.Helper()
	base := dsn(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect %q: %v", base, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "journal_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
		conn.Close(ctx)
	})
	return base + " search_path=" + schema
}

func TestConformance(t *testing.T) {
	journaltest.Run(t, func(t *testing.T) journal.Store {
		s, err := postgres.Open(context.Background(), freshSchema(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestOpenSpec(t *testing.T) {
	s, err := journal.Open("postgres:" + freshSchema(t))
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if _, err := journal.Open("postgres:host=127.0.0.1 port=1 connect_timeout=2"); err == nil {
		t.Errorf("Open(nothing listening) = nil error")
	}
}

// BenchmarkWrite: journaltest.BenchmarkWrite against the test server. Its
// cpu-ns/row is what a batch costs the broker's process (encoding, the
// driver); the server's own CPU is not in it.
func BenchmarkWrite(b *testing.B) {
	s, err := postgres.Open(context.Background(), freshSchema(b))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	journaltest.BenchmarkWrite(b, s)
}

package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/domo-framework/domo/journal/journaltest"
	"github.com/domo-framework/domo/journal/sqlite"
)

// BenchmarkWrite: journaltest.BenchmarkWrite on a new journal file.
func BenchmarkWrite(b *testing.B) {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "journal.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	journaltest.BenchmarkWrite(b, s)
}

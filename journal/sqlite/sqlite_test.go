package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/domo-framework/domo/journal"
	"github.com/domo-framework/domo/journal/journaltest"
	"github.com/domo-framework/domo/journal/sqlite"
)

func TestConformance(t *testing.T) {
	journaltest.Run(t, func(t *testing.T) journal.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "journal.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestOpenSpec(t *testing.T) {
	s, err := journal.Open("sqlite:" + filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := journal.Open("sqlite::memory:"); err == nil {
		t.Errorf("Open(sqlite::memory:) = nil error")
	}
}

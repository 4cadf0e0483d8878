package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestDiskFullIsNamed: SQLITE_FULL and ENOSPC become ErrDiskFull, the cause kept.
func TestDiskFullIsNamed(t *testing.T) {
	for _, err := range []error{
		errors.New("database or disk is full (13)"),
		fmt.Errorf("write: %w", syscall.ENOSPC),
		errors.New("ERROR: could not extend file: No space left on device (SQLSTATE 53100)"),
	} {
		if got := classify(err); !errors.Is(got, ErrDiskFull) || !errors.Is(got, err) || !strings.Contains(got.Error(), "disk full") {
			t.Errorf("classify(%v) = %v", err, got)
		}
	}
	if got := classify(errors.New("UNIQUE constraint failed")); errors.Is(got, ErrDiskFull) {
		t.Errorf("a constraint error named a full disk: %v", got)
	}

	// A real SQLite that cannot grow: the store's error says so.
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "latchkey.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.raw.SetMaxOpenConns(1)
	var pages int
	if err := s.raw.QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.raw.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", pages)); err != nil {
		t.Fatal(err)
	}
	var last error
	for i := 0; i < 200 && last == nil; i++ {
		last = s.Audit(ctx, Event{Event: "fill", Detail: strings.Repeat("x", 4000)})
	}
	if !errors.Is(last, ErrDiskFull) {
		t.Fatalf("writing into a database that cannot grow: %v, want ErrDiskFull", last)
	}
}

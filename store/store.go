// Package store keeps Latchkey's state: users, passkey public keys, invites, recovery-code hashes,
// ceremony state, sessions, API-token hashes and the audit log. It speaks plain database/sql to an
// embedded SQLite file (the default) or to PostgreSQL, with embedded, versioned migrations.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver (pure Go, no cgo)
)

// Sentinel errors. Callers compare with errors.Is.
var (
	ErrNotFound      = errors.New("store: not found")
	ErrConflict      = errors.New("store: already exists")
	ErrUsed          = errors.New("store: already used or expired")
	ErrSchemaTooNew  = errors.New("store: database schema is newer than this binary")
	ErrUnsupportedDB = errors.New("store: unsupported database")
)

//go:embed migrations
var migrations embed.FS

// Dialect names a supported database.
type Dialect string

// Supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Store is a handle on the database. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect Dialect
	path    string // SQLite file, for Backup
	now     func() time.Time
}

// Options configure Open.
type Options struct {
	// Path is the SQLite database file. Its directory is created with mode 0700, the file with 0600.
	Path string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Open opens (creating when needed) the SQLite database at opts.Path and applies pending migrations.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Path == "" {
		return nil, errors.New("store: no database path")
	}
	dir := filepath.Dir(opts.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create %s: %w", dir, err)
	}
	// Create the database and its WAL side files with owner-only modes, whatever the umask: the
	// file holds no secret that signs anyone in, but user names, e-mail addresses and audit rows
	// are nobody else's business.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		f, err := os.OpenFile(opts.Path+suffix, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("store: open %s: %w", opts.Path+suffix, err)
		}
		f.Close()
		if err := os.Chmod(opts.Path+suffix, 0o600); err != nil {
			return nil, fmt.Errorf("store: chmod %s: %w", opts.Path+suffix, err)
		}
	}
	dsn := "file:" + opts.Path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", opts.Path, err)
	}
	s, err := newStore(ctx, db, SQLite, opts.Now)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", opts.Path, err)
	}
	s.path = opts.Path
	return s, nil
}

// OpenDB wraps an already opened database of the given dialect and applies pending migrations.
// It is how the PostgreSQL backend (and tests) come in.
func OpenDB(ctx context.Context, db *sql.DB, dialect Dialect, now func() time.Time) (*Store, error) {
	return newStore(ctx, db, dialect, now)
}

func newStore(ctx context.Context, db *sql.DB, dialect Dialect, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	s := &Store{db: db, dialect: dialect, now: now}
	if err := db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("ping: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// DB exposes the underlying handle for statistics and tests.
func (s *Store) DB() *sql.DB { return s.db }

// Dialect reports which database this is.
func (s *Store) Dialect() Dialect { return s.dialect }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// q rebinds ? placeholders to $n for PostgreSQL, so that one set of queries serves both dialects.
func (s *Store) q(query string) string {
	if s.dialect != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

type migration struct {
	version int
	name    string
	sql     string
}

func (s *Store) loadMigrations() ([]migration, error) {
	dir := "migrations/" + string(s.dialect)
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedDB, s.dialect)
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a version number", name)
		}
		body, err := fs.ReadFile(migrations, dir+"/"+name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// LatestVersion is the schema version this binary knows for its dialect.
func (s *Store) LatestVersion() int {
	ms, _ := s.loadMigrations()
	if len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// SchemaVersion is the version the database is at.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_version").Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return int(v.Int64), nil
}

func (s *Store) migrate(ctx context.Context) error {
	ms, err := s.loadMigrations()
	if err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	current, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	latest := 0
	if len(ms) > 0 {
		latest = ms[len(ms)-1].version
	}
	if current > latest {
		return fmt.Errorf("%w: the database is at version %d, this binary knows up to %d; "+
			"upgrade latchkey or restore a backup", ErrSchemaTooNew, current, latest)
	}
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		if err := s.tx(ctx, func(tx *sql.Tx) error {
			// Another process (a replica, the CLI) may have applied it since we looked: look again
			// inside the write transaction, which serializes migrators.
			var done sql.NullInt64
			if err := tx.QueryRowContext(ctx, s.q("SELECT MAX(version) FROM schema_version WHERE version >= ?"), m.version).Scan(&done); err != nil {
				return err
			}
			if done.Valid {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, s.q("INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)"),
				m.version, m.name, s.now().UnixMilli())
			return err
		}); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

// tx runs fn in a transaction (BEGIN IMMEDIATE on SQLite, so writers queue instead of failing
// with SQLITE_BUSY on upgrade).
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Backup writes a consistent copy of the database to path (which must not exist).
func (s *Store) Backup(ctx context.Context, path string) error {
	if s.dialect != SQLite {
		return fmt.Errorf("store: backup: %w: use pg_dump for PostgreSQL", ErrUnsupportedDB)
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("store: backup: %s already exists", path)
	}
	if _, err := s.db.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return fmt.Errorf("store: backup to %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("store: backup: chmod %s: %w", path, err)
	}
	return nil
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func joinList(l []string) string { return strings.Join(l, ",") }

// isUnique reports a unique-constraint violation on either dialect.
func isUnique(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint") || strings.Contains(msg, "SQLSTATE 23505") ||
		strings.Contains(msg, "constraint failed: PRIMARY KEY") || strings.Contains(msg, "duplicate key")
}

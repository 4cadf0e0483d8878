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
	raw     *sql.DB // the write pool (SQLite: BEGIN IMMEDIATE); DB() exposes it
	rraw    *sql.DB // the read pool (SQLite: deferred transactions); raw on PostgreSQL
	db      timed   // raw under the timeout
	rdb     timed   // rraw under the timeout
	dialect Dialect
	path    string // SQLite file, for Backup
	now     func() time.Time
	audit   time.Duration // audit retention; 0 keeps every row
}

// Options configure Open and OpenPostgres.
type Options struct {
	// Path is the SQLite database file. Its directory is created with mode 0700, the file with 0600.
	Path string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Timeout bounds every store call (storage.timeout); zero means DefaultTimeout.
	Timeout time.Duration
	// AuditRetention is how long Sweep keeps audit rows (audit.retention); zero keeps them all.
	AuditRetention time.Duration
}

// Errors of Open on a file that is there but is not a Latchkey database: starting afresh on it
// would silently lose every user (issue 17).
var (
	ErrEmptyDatabase   = errors.New("store: the database file is empty")
	ErrForeignDatabase = errors.New("store: the database file holds no Latchkey schema")
)

// Open opens the SQLite database at opts.Path and applies pending migrations. Only a missing file
// is created; an existing file that is empty or has no Latchkey schema is refused.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Path == "" {
		return nil, errors.New("store: no database path")
	}
	dir := filepath.Dir(opts.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create %s: %w", dir, err)
	}
	fresh := false
	switch fi, err := os.Stat(opts.Path); {
	case errors.Is(err, fs.ErrNotExist):
		fresh = true
	case err != nil:
		return nil, fmt.Errorf("store: open %s: %w", opts.Path, err)
	case fi.Size() == 0:
		return nil, fmt.Errorf("%w: %s is 0 bytes long. Restore it from a backup, or delete the file "+
			"to start afresh with no users", ErrEmptyDatabase, opts.Path)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if fresh {
		if err := createFresh(ctx, opts.Path, timeout); err != nil {
			return nil, err
		}
	}
	// The WAL side files get owner-only modes, whatever the umask: the file holds no secret that
	// signs anyone in, but user names, e-mail addresses and audit rows are nobody else's business.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		f, err := os.OpenFile(opts.Path+suffix, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("store: open %s: %w", opts.Path+suffix, classify(err))
		}
		f.Close()
		if err := os.Chmod(opts.Path+suffix, 0o600); err != nil {
			return nil, fmt.Errorf("store: chmod %s: %w", opts.Path+suffix, err)
		}
	}
	s, err := openSQLite(ctx, opts.Path, timeout, false)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", opts.Path, err)
	}
	s.now, s.audit = opts.Now, opts.AuditRetention
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// createFresh builds a new database beside path and links it into place only when it is
// complete, so that a file at path is always a whole Latchkey database: a concurrent opener (the
// CLI while the server starts) never sees a half-made or empty file, and an empty file is always
// someone else's mistake.
func createFresh(ctx context.Context, path string, timeout time.Duration) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".new-*")
	if err != nil {
		return fmt.Errorf("store: create %s: %w", path, classify(err))
	}
	tmp := f.Name()
	f.Close()
	defer func() {
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			os.Remove(tmp + suffix)
		}
	}()
	s, err := openSQLite(ctx, tmp, timeout, true)
	if err != nil {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	if err := s.Close(); err != nil {
		return fmt.Errorf("store: create %s: %w", path, classify(err))
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fmt.Errorf("store: chmod %s: %w", tmp, err)
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("store: create %s: %w", path, classify(err))
	}
	return nil
}

func openSQLite(ctx context.Context, path string, timeout time.Duration, fresh bool) (*Store, error) {
	// SQLite waits for a lock at most as long as the store call may take.
	base := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(" +
		strconv.FormatInt(timeout.Milliseconds(), 10) + ")&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	// Writes take the write lock at BEGIN (IMMEDIATE), so writers queue instead of failing with
	// SQLITE_BUSY on upgrade; reads are deferred transactions on their own pool and never take it
	// (issue 17: a snapshot must not block logins).
	db, err := sql.Open("sqlite", base+"&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	rdb, err := sql.Open("sqlite", base+"&_txlock=deferred&_pragma=query_only(1)")
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{raw: db, rraw: rdb, dialect: SQLite, path: path}
	if err := s.init(ctx, timeout, fresh); err != nil {
		db.Close()
		rdb.Close()
		return nil, err
	}
	return s, nil
}

// OpenDB wraps an already opened database of the given dialect and applies pending migrations.
// It is how tests bring their own handle.
func OpenDB(ctx context.Context, db *sql.DB, dialect Dialect, now func() time.Time) (*Store, error) {
	s := &Store{raw: db, rraw: db, dialect: dialect, now: now}
	if err := s.init(ctx, DefaultTimeout, false); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) init(ctx context.Context, timeout time.Duration, fresh bool) error {
	if s.now == nil {
		s.now = time.Now
	}
	s.db, s.rdb = timed{db: s.raw, timeout: timeout}, timed{db: s.rraw, timeout: timeout}
	if err := s.raw.PingContext(ctx); err != nil {
		return fmt.Errorf("ping: %w", classify(err))
	}
	if s.dialect == SQLite && s.path != "" {
		if err := s.sqliteSetup(ctx, fresh); err != nil {
			return err
		}
	}
	return s.migrate(ctx)
}

// sqliteSetup refuses a file that is not ours and turns on incremental vacuum, which must be set
// before the first table exists, or be followed by one VACUUM on a database made without it.
func (s *Store) sqliteSetup(ctx context.Context, fresh bool) error {
	if !fresh {
		var tables, ours int
		err := s.raw.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(name = 'schema_version'), 0)
			FROM sqlite_master WHERE type = 'table'`).Scan(&tables, &ours)
		if err != nil {
			return fmt.Errorf("%w (%w): restore it from a backup, or delete the file to start afresh", ErrForeignDatabase, err)
		}
		if ours == 0 {
			return fmt.Errorf("%w (%d other tables): restore the right file from a backup, or delete it "+
				"to start afresh with no users", ErrForeignDatabase, tables)
		}
	}
	var mode int
	if err := s.raw.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&mode); err != nil {
		return fmt.Errorf("auto_vacuum: %w", classify(err))
	}
	if mode == 2 {
		return nil
	}
	if _, err := s.raw.ExecContext(ctx, "PRAGMA auto_vacuum = INCREMENTAL"); err != nil {
		return fmt.Errorf("auto_vacuum: %w", classify(err))
	}
	if !fresh {
		// One full VACUUM rewrites the file so that the mode takes effect; later sweeps reclaim
		// free pages with PRAGMA incremental_vacuum.
		if _, err := s.raw.ExecContext(ctx, "VACUUM"); err != nil {
			return fmt.Errorf("vacuum: %w", classify(err))
		}
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	err := s.raw.Close()
	if s.rraw != s.raw {
		err = errors.Join(err, s.rraw.Close())
	}
	return err
}

// DB exposes the underlying (write) handle for statistics and tests.
func (s *Store) DB() *sql.DB { return s.raw }

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

// tx runs fn in a write transaction (BEGIN IMMEDIATE on SQLite, so writers queue instead of
// failing with SQLITE_BUSY on upgrade), bounded by the timeout as a whole.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, cancel, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer cancel()
	if err := fn(tx); err != nil {
		tx.Rollback()
		return classify(err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", classify(err))
	}
	return nil
}

// readTx runs fn in one consistent read transaction that never takes the write lock: a deferred
// transaction on SQLite's read pool, REPEATABLE READ READ ONLY on PostgreSQL.
func (s *Store) readTx(ctx context.Context, fn func(*sql.Tx) error) error {
	var opts *sql.TxOptions
	if s.dialect == Postgres {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	tx, cancel, err := s.rdb.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	defer cancel()
	defer tx.Rollback()
	return classify(fn(tx))
}

// Backup writes a consistent copy of the database to path (which must not exist).
func (s *Store) Backup(ctx context.Context, path string) error {
	if s.dialect != SQLite {
		return fmt.Errorf("store: backup: %w: use pg_dump for PostgreSQL", ErrUnsupportedDB)
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("store: backup: %s already exists", path)
	}
	// No timeout: a backup of a large file takes as long as it takes.
	if _, err := s.raw.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
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

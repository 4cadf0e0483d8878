package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// migrationLock is the key of the PostgreSQL advisory lock held while migrations run, so that
// replicas starting together against a fresh database do not race to create the same tables.
const migrationLock int64 = 0x4c617463686b6579 // "Latchkey"

// OpenPostgres connects to the PostgreSQL database named by dsn (a URL or key=value string, as
// libpq takes) and applies pending migrations. Of opts, Path is ignored.
//
// Several Latchkey replicas may share one database: every single-use consume is one atomic SQL
// statement, and each replica's in-memory view follows the shared change log.
func OpenPostgres(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if dsn == "" {
		return nil, errors.New("store: postgres: empty dsn")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		// The error of a malformed DSN may quote it, password included: say what it is instead.
		return nil, fmt.Errorf("store: postgres: the dsn does not parse: %w", redact(err, dsn))
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(5)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	s, err := openPostgresDB(ctx, db, opts)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: postgres: %w", redact(err, dsn))
	}
	return s, nil
}

func openPostgresDB(ctx context.Context, db *sql.DB, opts Options) (*Store, error) {
	// Hold a session-level advisory lock on one connection while the migrations run on others:
	// a second replica waits here, then finds the schema current.
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock)
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	s := &Store{raw: db, rraw: db, dialect: Postgres, now: opts.Now, audit: opts.AuditRetention}
	if err := s.init(ctx, timeout, false); err != nil {
		return nil, err
	}
	return s, nil
}

// redact replaces the DSN in an error message, which may carry a password.
func redact(err error, dsn string) error {
	if err == nil || dsn == "" {
		return err
	}
	if strings.Contains(err.Error(), dsn) {
		return errors.New("connection failed (details withheld: the message quoted the dsn)")
	}
	return err
}

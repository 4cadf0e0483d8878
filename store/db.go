package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"
)

// DefaultTimeout bounds every store call when Options.Timeout is zero (storage.timeout).
const DefaultTimeout = 2 * time.Second

// ErrDiskFull names a full disk (SQLITE_FULL, ENOSPC, PostgreSQL's disk_full) so that logs and
// errors say what an operator must fix instead of a driver code.
var ErrDiskFull = errors.New("store: disk full")

// timed is a *sql.DB whose every call runs under the store's timeout (issue 17: a frozen database
// must not hang a check). It is the one place the timeout is applied: the query methods of the
// store go through it, and transactions get it from BeginTx, whose context database/sql watches
// for the whole transaction (a deadline rolls it back).
type timed struct {
	db      *sql.DB
	timeout time.Duration
}

func (t timed) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, t.timeout)
}

func (t timed) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	res, err := t.db.ExecContext(ctx, query, args...)
	return res, classify(err)
}

// QueryRowContext returns a row whose Scan releases the timeout afterwards: cancelling before
// Scan would make database/sql discard the row.
func (t timed) QueryRowContext(ctx context.Context, query string, args ...any) *row {
	ctx, cancel := t.ctx(ctx)
	return &row{row: t.db.QueryRowContext(ctx, query, args...), cancel: cancel}
}

// QueryContext returns rows whose Close releases the timeout.
func (t timed) QueryContext(ctx context.Context, query string, args ...any) (*rows, error) {
	ctx, cancel := t.ctx(ctx)
	rs, err := t.db.QueryContext(ctx, query, args...)
	if err != nil {
		cancel()
		return nil, classify(err)
	}
	return &rows{Rows: rs, cancel: cancel}, nil
}

// BeginTx starts a transaction bounded by the timeout as a whole.
func (t timed) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, context.CancelFunc, error) {
	ctx, cancel := t.ctx(ctx)
	tx, err := t.db.BeginTx(ctx, opts)
	if err != nil {
		cancel()
		return nil, nil, classify(err)
	}
	return tx, cancel, nil
}

type row struct {
	row    *sql.Row
	cancel context.CancelFunc
}

func (r *row) Scan(dest ...any) error {
	defer r.cancel()
	return classify(r.row.Scan(dest...))
}

type rows struct {
	*sql.Rows
	cancel context.CancelFunc
}

func (r *rows) Close() error {
	err := r.Rows.Close()
	r.cancel()
	return err
}

func (r *rows) Err() error { return classify(r.Rows.Err()) }

// classify maps driver errors that an operator must act on to sentinels, keeping the cause.
func classify(err error) error {
	if err == nil || errors.Is(err, ErrDiskFull) {
		return err
	}
	if isDiskFull(err) {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return err
}

func isDiskFull(err error) bool {
	if errors.Is(err, syscall.ENOSPC) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "database or disk is full") || strings.Contains(msg, "SQLITE_FULL") ||
		strings.Contains(msg, "SQLSTATE 53100") || strings.Contains(msg, "no space left on device")
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Change kinds: what a row of the change log names, and what a view re-reads for it.
const (
	ChangeSession = "session" // Ref is a session ID: re-read that session
	ChangeUser    = "user"    // Ref is a user ID: re-read the user with their sessions and tokens
	ChangeToken   = "token"   // Ref is a token ID: re-read that token
	ChangeAll     = "all"     // everything may have changed (a migration): load everything again
)

// Change is one row of the change log.
type Change struct {
	Rev  int64
	Kind string
	Ref  string
}

// ErrChangesPruned reports that the change log no longer holds every row after the revision a
// view asked from (it was offline for longer than the log is kept): it must load everything.
var ErrChangesPruned = errors.New("store: change log pruned past the requested revision")

// record takes the next revision and logs one change, inside the caller's write transaction.
// UPDATE ... RETURNING holds the revision row's lock until commit, so writers take revisions one
// after another and each becomes visible only after every lower one has committed: a reader
// polling for rows after its cursor never skips a late-committing lower revision (PostgreSQL
// included).
func (s *Store) record(ctx context.Context, tx *sql.Tx, kind, ref string) (int64, error) {
	var rev int64
	if err := tx.QueryRowContext(ctx, "UPDATE revision SET n = n + 1 WHERE id = 1 RETURNING n").Scan(&rev); err != nil {
		return 0, fmt.Errorf("store: next revision: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q("INSERT INTO changes (rev, kind, ref, at) VALUES (?, ?, ?, ?)"),
		rev, kind, ref, ms(s.now())); err != nil {
		return 0, fmt.Errorf("store: log change: %w", err)
	}
	return rev, nil
}

// Revision is the revision of the latest change.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	var n int64
	if err := s.rdb.QueryRowContext(ctx, "SELECT n FROM revision WHERE id = 1").Scan(&n); err != nil {
		return 0, fmt.Errorf("store: revision: %w", err)
	}
	return n, nil
}

// Changes returns up to limit changes after revision since, oldest first, and the latest revision,
// read together. An empty answer with head == since confirms that the caller is up to date.
// ErrChangesPruned means rows after since are gone.
func (s *Store) Changes(ctx context.Context, since int64, limit int) (out []Change, head int64, err error) {
	if limit <= 0 {
		limit = 1000
	}
	err = s.readTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "SELECT n FROM revision WHERE id = 1").Scan(&head); err != nil {
			return err
		}
		if head <= since {
			return nil
		}
		rows, err := tx.QueryContext(ctx, s.q("SELECT rev, kind, ref FROM changes WHERE rev > ? ORDER BY rev LIMIT ?"), since, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c Change
			if err := rows.Scan(&c.Rev, &c.Kind, &c.Ref); err != nil {
				return err
			}
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: changes: %w", err)
	}
	// Revisions are taken one by one in the transactions that log them, so the log has no holes:
	// a first row other than since+1 means the rows in between were pruned.
	if head > since && (len(out) == 0 || out[0].Rev != since+1) {
		return nil, head, ErrChangesPruned
	}
	return out, head, nil
}

// SessionRead is a session with its user, as of revision Rev.
type SessionRead struct {
	Rev       int64
	Session   Session
	Found     bool // the session row exists (revoked or not)
	User      User
	UserFound bool
}

// ReadSession reads a session and its user in one read transaction, with the revision they reflect.
func (s *Store) ReadSession(ctx context.Context, id string) (SessionRead, error) {
	var r SessionRead
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "SELECT n FROM revision WHERE id = 1").Scan(&r.Rev); err != nil {
			return err
		}
		se, err := scanSession(tx.QueryRowContext(ctx, s.q("SELECT "+sessionCols+" FROM sessions WHERE id = ?"), id))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		r.Session, r.Found = se, true
		u, err := scanUser(tx.QueryRowContext(ctx, s.q("SELECT "+userCols+" FROM users WHERE id = ?"), se.UserID))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		r.User, r.UserFound = u, err == nil
		return err
	})
	if err != nil {
		return SessionRead{}, fmt.Errorf("store: read session: %w", err)
	}
	return r, nil
}

// UserRead is a user with the sessions and tokens that have not expired (revoked ones included,
// so that a view learns of the revocation), as of revision Rev.
type UserRead struct {
	Rev      int64
	User     User
	Found    bool
	Sessions []Session
	Tokens   []Token
}

// ReadUser reads a user with their unexpired sessions and tokens in one read transaction.
func (s *Store) ReadUser(ctx context.Context, id string) (UserRead, error) {
	var r UserRead
	now := ms(s.now())
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "SELECT n FROM revision WHERE id = 1").Scan(&r.Rev); err != nil {
			return err
		}
		u, err := scanUser(tx.QueryRowContext(ctx, s.q("SELECT "+userCols+" FROM users WHERE id = ?"), id))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		r.User, r.Found = u, true
		rows, err := tx.QueryContext(ctx, s.q("SELECT "+sessionCols+" FROM sessions WHERE user_id = ? AND expires_at > ?"), id, now)
		if err != nil {
			return err
		}
		for rows.Next() {
			se, err := scanSession(rows)
			if err != nil {
				rows.Close()
				return err
			}
			r.Sessions = append(r.Sessions, se)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, s.q("SELECT "+tokenCols+" FROM api_tokens WHERE user_id = ? AND expires_at > ?"), id, now)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			t, err := scanToken(rows)
			if err != nil {
				return err
			}
			r.Tokens = append(r.Tokens, t)
		}
		return rows.Err()
	})
	if err != nil {
		return UserRead{}, fmt.Errorf("store: read user: %w", err)
	}
	return r, nil
}

// TokenRead is a token with its user, as of revision Rev.
type TokenRead struct {
	Rev       int64
	Token     Token
	Found     bool
	User      User
	UserFound bool
}

// ReadToken reads a token (by ID) and its user in one read transaction.
func (s *Store) ReadToken(ctx context.Context, id string) (TokenRead, error) {
	var r TokenRead
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "SELECT n FROM revision WHERE id = 1").Scan(&r.Rev); err != nil {
			return err
		}
		t, err := scanToken(tx.QueryRowContext(ctx, s.q("SELECT "+tokenCols+" FROM api_tokens WHERE id = ?"), id))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		r.Token, r.Found = t, true
		u, err := scanUser(tx.QueryRowContext(ctx, s.q("SELECT "+userCols+" FROM users WHERE id = ?"), t.UserID))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		r.User, r.UserFound = u, err == nil
		return err
	})
	if err != nil {
		return TokenRead{}, fmt.Errorf("store: read token: %w", err)
	}
	return r, nil
}

// Heartbeat is the readiness probe: one small write, so that a full disk, a read-only file or a
// lock held elsewhere shows as not ready, while a healthy store answers in a millisecond.
func (s *Store) Heartbeat(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, s.q("UPDATE heartbeat SET at = ? WHERE id = 1"), ms(s.now())); err != nil {
		return fmt.Errorf("store: heartbeat write: %w", err)
	}
	return nil
}

// LogFullReload logs a change that makes every view load everything again (after a bulk copy
// such as `latchkey migrate`). tx is a write transaction on this store's database.
func (s *Store) LogFullReload(ctx context.Context, tx *sql.Tx) error {
	_, err := s.record(ctx, tx, ChangeAll, "")
	return err
}

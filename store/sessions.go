package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

const sessionCols = "id, user_id, credential_id, method, created_at, verified_at, last_seen_at, expires_at, " +
	"revoked_at, user_agent, ip, backup_eligible, aaguid, domain"

func scanSession(sc interface{ Scan(...any) error }) (Session, error) {
	var se Session
	var created, verified, seen, expires, revoked int64
	var be int
	if err := sc.Scan(&se.ID, &se.UserID, &se.CredentialID, &se.Method, &created, &verified, &seen, &expires,
		&revoked, &se.UserAgent, &se.IP, &be, &se.AAGUID, &se.Domain); err != nil {
		return Session{}, err
	}
	se.CreatedAt, se.VerifiedAt, se.LastSeenAt = fromMS(created), fromMS(verified), fromMS(seen)
	se.ExpiresAt, se.RevokedAt = fromMS(expires), fromMS(revoked)
	se.BackupEligible = be != 0
	return se, nil
}

// CreateSession inserts a session.
func (s *Store) CreateSession(ctx context.Context, se Session) error {
	_, err := s.CreateSessionRev(ctx, se)
	return err
}

// CreateSessionRev inserts a session and returns the revision of its change, so that the view of
// the process that made it can hold it at once with the right revision.
func (s *Store) CreateSessionRev(ctx context.Context, se Session) (int64, error) {
	var rev int64
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q("INSERT INTO sessions ("+sessionCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
			se.ID, se.UserID, nonNil(se.CredentialID), se.Method, ms(se.CreatedAt), ms(se.VerifiedAt), ms(se.LastSeenAt),
			ms(se.ExpiresAt), ms(se.RevokedAt), se.UserAgent, se.IP, b2i(se.BackupEligible), nonNil(se.AAGUID), se.Domain)
		if err != nil {
			return fmt.Errorf("store: create session: %w", err)
		}
		rev, err = s.record(ctx, tx, ChangeSession, se.ID)
		return err
	})
	return rev, err
}

// Session finds a session by ID, revoked or not.
func (s *Store) Session(ctx context.Context, id string) (Session, error) {
	se, err := scanSession(s.db.QueryRowContext(ctx, s.q("SELECT "+sessionCols+" FROM sessions WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("store: session: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("store: session: %w", err)
	}
	return se, nil
}

// Sessions lists a user's live sessions, most recently seen first.
func (s *Store) Sessions(ctx context.Context, userID string) ([]Session, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT "+sessionCols+` FROM sessions
		WHERE user_id = ? AND revoked_at = 0 AND expires_at > ? ORDER BY last_seen_at DESC`), userID, ms(s.now()))
	if err != nil {
		return nil, fmt.Errorf("store: sessions of %s: %w", userID, err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		se, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("store: sessions of %s: %w", userID, err)
		}
		out = append(out, se)
	}
	return out, rows.Err()
}

// RevokeSession ends one session (of userID, or of anyone when userID is empty).
func (s *Store) RevokeSession(ctx context.Context, userID, id string) error {
	return s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		query, args := "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at = 0", []any{ms(s.now()), id}
		if userID != "" {
			query, args = query+" AND user_id = ?", append(args, userID)
		}
		res, err := tx.ExecContext(ctx, s.q(query), args...)
		if err != nil {
			return fmt.Errorf("store: revoke session: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("store: revoke session: %w", ErrNotFound)
		}
		_, err = s.record(ctx, tx, ChangeSession, id)
		return err
	})
}

// RevokeSessions ends every session of a user and reports how many.
func (s *Store) RevokeSessions(ctx context.Context, userID string) (int64, error) {
	var n int64
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at = 0"),
			ms(s.now()), userID)
		if err != nil {
			return fmt.Errorf("store: revoke sessions: %w", err)
		}
		n, _ = res.RowsAffected()
		_, err = s.record(ctx, tx, ChangeUser, userID)
		return err
	})
	return n, err
}

// VerifySession records a fresh passkey verification on a session (step-up).
func (s *Store) VerifySession(ctx context.Context, id string, at time.Time, credentialID []byte, backupEligible bool, aaguid []byte) error {
	return s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE sessions SET verified_at = ?, credential_id = ?, backup_eligible = ?, aaguid = ?
			WHERE id = ? AND revoked_at = 0`), ms(at), credentialID, b2i(backupEligible), nonNil(aaguid), id)
		if err != nil {
			return fmt.Errorf("store: verify session: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("store: verify session: %w", ErrNotFound)
		}
		_, err = s.record(ctx, tx, ChangeSession, id)
		return err
	})
}

// TouchSessions writes last-seen times gathered in memory by the forward-auth check.
func (s *Store) TouchSessions(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	// Many rows per statement, each statement its own short write (and its own timeout): with
	// 100k sessions seen, one statement per row in one transaction outlived the store timeout
	// and held the write lock long enough to delay every login and logout behind it. The CASTs
	// type the VALUES columns for PostgreSQL; SQLite names them column1, column2 as PostgreSQL does.
	const batch = 400
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	for len(ids) > 0 {
		n := min(batch, len(ids))
		var q strings.Builder
		q.WriteString("UPDATE sessions SET last_seen_at = v.column2 FROM (VALUES ")
		args := make([]any, 0, 2*n)
		for i, id := range ids[:n] {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(CAST(? AS TEXT), CAST(? AS BIGINT))")
			args = append(args, id, ms(seen[id]))
		}
		q.WriteString(") AS v WHERE sessions.id = v.column1 AND sessions.last_seen_at < v.column2")
		if _, err := s.db.ExecContext(ctx, s.q(q.String()), args...); err != nil {
			return fmt.Errorf("store: touch sessions: %w", err)
		}
		ids = ids[n:]
	}
	return nil
}

// CountActiveSessions counts sessions that are neither revoked nor expired.
func (s *Store) CountActiveSessions(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM sessions WHERE revoked_at = 0 AND expires_at > ?"), ms(s.now())).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count sessions: %w", err)
	}
	return n, nil
}

// PutCeremony stores ceremony state.
func (s *Store) PutCeremony(ctx context.Context, c Ceremony) error {
	_, err := s.db.ExecContext(ctx, s.q("INSERT INTO ceremonies (id, kind, data, expires_at) VALUES (?, ?, ?, ?)"),
		c.ID, c.Kind, c.Data, ms(c.ExpiresAt))
	if err != nil {
		return fmt.Errorf("store: put ceremony: %w", err)
	}
	return nil
}

// TakeCeremony atomically removes and returns ceremony state. Two callers racing on one ID get
// it at most once; an expired ceremony is removed and reported as ErrNotFound.
func (s *Store) TakeCeremony(ctx context.Context, id, kind string) (Ceremony, error) {
	var c Ceremony
	var expires int64
	err := s.db.QueryRowContext(ctx, s.q("DELETE FROM ceremonies WHERE id = ? RETURNING id, kind, data, expires_at"), id).
		Scan(&c.ID, &c.Kind, &c.Data, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Ceremony{}, fmt.Errorf("store: ceremony: %w", ErrNotFound)
	}
	if err != nil {
		return Ceremony{}, fmt.Errorf("store: take ceremony: %w", err)
	}
	c.ExpiresAt = fromMS(expires)
	if !s.now().Before(c.ExpiresAt) || c.Kind != kind {
		return Ceremony{}, fmt.Errorf("store: ceremony: %w", ErrNotFound)
	}
	return c, nil
}

// CountCeremonies counts ceremonies in flight (for the cap that keeps the table bounded).
func (s *Store) CountCeremonies(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM ceremonies").Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count ceremonies: %w", err)
	}
	return n, nil
}

// DropOldestCeremonies deletes the n ceremonies closest to expiry. The ceremony cap uses it so
// that a flood from many addresses pushes out the flood's own oldest rows instead of refusing
// every new sign-in (a global lockout).
func (s *Store) DropOldestCeremonies(ctx context.Context, n int) error {
	_, err := s.db.ExecContext(ctx, s.q("DELETE FROM ceremonies WHERE id IN (SELECT id FROM ceremonies ORDER BY expires_at LIMIT ?)"), n)
	if err != nil {
		return fmt.Errorf("store: drop oldest ceremonies: %w", err)
	}
	return nil
}

// Retention of rows nobody reads any more (issue 17).
const (
	keepEnded   = 7 * 24 * time.Hour // revoked or expired sessions and tokens, used or expired invites
	keepChanges = time.Hour          // change-log rows: views poll every second
)

// SweepResult counts what one Sweep removed.
type SweepResult struct {
	Ceremonies, Invites, Sessions, Tokens, Changes, Audit int64
}

// Sweep deletes expired ceremonies, used and expired invites, revoked and expired sessions and
// tokens, old change-log rows and (with an audit retention) old audit rows; on SQLite it then
// returns free pages to the file system and truncates the WAL.
func (s *Store) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	now := s.now()
	ended := ms(now.Add(-keepEnded))
	stmts := []struct {
		n     *int64
		query string
		args  []any
	}{
		{&res.Ceremonies, "DELETE FROM ceremonies WHERE expires_at <= ?", []any{ms(now)}},
		{&res.Invites, "DELETE FROM invites WHERE expires_at <= ? OR (used_at > 0 AND used_at <= ?)", []any{ended, ended}},
		{&res.Sessions, "DELETE FROM sessions WHERE expires_at <= ? OR (revoked_at > 0 AND revoked_at <= ?)", []any{ended, ended}},
		{&res.Tokens, "DELETE FROM api_tokens WHERE expires_at <= ? OR (revoked_at > 0 AND revoked_at <= ?)", []any{ended, ended}},
		// The newest row always stays: it is how Changes tells "nothing new" from "pruned".
		{&res.Changes, "DELETE FROM changes WHERE at <= ? AND rev < (SELECT MAX(rev) FROM changes)", []any{ms(now.Add(-keepChanges))}},
	}
	if s.audit > 0 {
		stmts = append(stmts, struct {
			n     *int64
			query string
			args  []any
		}{&res.Audit, "DELETE FROM audit WHERE at <= ?", []any{ms(now.Add(-s.audit))}})
	}
	for _, st := range stmts {
		r, err := s.db.ExecContext(ctx, s.q(st.query), st.args...)
		if err != nil {
			return res, fmt.Errorf("store: sweep: %w", err)
		}
		*st.n, _ = r.RowsAffected()
	}
	if s.dialect == SQLite {
		for _, pragma := range []string{"PRAGMA incremental_vacuum", "PRAGMA wal_checkpoint(TRUNCATE)"} {
			if _, err := s.db.ExecContext(ctx, pragma); err != nil {
				return res, fmt.Errorf("store: sweep: %s: %w", pragma, err)
			}
		}
	}
	return res, nil
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrLastPasskey refuses to remove a user's only passkey while they hold no unused recovery code:
// that would leave no way into the account but an administrator.
var ErrLastPasskey = errors.New("store: last passkey and no unused recovery code")

// RemoveOwnCredential removes one of a user's passkeys and revokes the sessions it made, unless it
// is the user's last passkey and they have no unused recovery code (ErrLastPasskey). The check and
// the delete are one transaction that first locks the user's row, so two removals racing on a
// user's last two passkeys cannot both pass the check (on SQLite the transaction is IMMEDIATE; on
// PostgreSQL the row lock serialises them).
func (s *Store) RemoveOwnCredential(ctx context.Context, userID string, id []byte) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("UPDATE users SET name = name WHERE id = ?"), userID)
		if err != nil {
			return fmt.Errorf("store: remove credential: lock user: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("store: remove credential: user %s: %w", userID, ErrNotFound)
		}
		var mine, others, codes int
		err = tx.QueryRowContext(ctx, s.q(`SELECT
			(SELECT COUNT(*) FROM credentials WHERE user_id = ? AND id = ?),
			(SELECT COUNT(*) FROM credentials WHERE user_id = ? AND id <> ?),
			(SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at = 0)`),
			userID, id, userID, id, userID).Scan(&mine, &others, &codes)
		if err != nil {
			return fmt.Errorf("store: remove credential: %w", err)
		}
		if mine == 0 {
			return fmt.Errorf("store: remove credential: %w", ErrNotFound)
		}
		if others == 0 && codes == 0 {
			return fmt.Errorf("store: remove credential: %w", ErrLastPasskey)
		}
		if _, err := tx.ExecContext(ctx, s.q("DELETE FROM credentials WHERE id = ? AND user_id = ?"), id, userID); err != nil {
			return fmt.Errorf("store: remove credential: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.q("UPDATE sessions SET revoked_at = ? WHERE credential_id = ? AND revoked_at = 0"),
			ms(s.now()), id); err != nil {
			return fmt.Errorf("store: remove credential: %w", err)
		}
		_, err = s.record(ctx, tx, ChangeUser, userID)
		return err
	})
}

// UnusedRecoveryCodes counts a user's recovery codes that are still usable.
func (s *Store) UnusedRecoveryCodes(ctx context.Context, userID string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at = 0"), userID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count recovery codes: %w", err)
	}
	return n, nil
}

// Revoked counts what a revocation ended.
type Revoked struct {
	Sessions int64 // sessions, recovery sessions included
	Tokens   int64 // API tokens
	Links    int64 // unused enrolment links and recovery (magic) links
}

// DisableUser disables a user and, in the same transaction, ends everything that lets them in
// without a new passkey ceremony: their sessions, their API tokens, and their unused enrolment
// and recovery links. Each is revoked for good (revoked_at set, links expired now), so enabling
// the user later brings none of it back (issue 16). Passkeys and recovery codes stay: they are
// what the person holds, and an enabled user signs in with them again.
func (s *Store) DisableUser(ctx context.Context, id string) (Revoked, error) {
	var out Revoked
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("UPDATE users SET disabled = 1 WHERE id = ?"), id)
		if err != nil {
			return fmt.Errorf("store: disable user %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("store: user %s: %w", id, ErrNotFound)
		}
		now := ms(s.now())
		for _, st := range []struct {
			query string
			args  []any
			n     *int64
		}{
			{"UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at = 0", []any{now, id}, &out.Sessions},
			{"UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at = 0", []any{now, id}, &out.Tokens},
			{"UPDATE invites SET expires_at = ? WHERE user_id = ? AND used_at = 0 AND expires_at > ?", []any{now, id, now}, &out.Links},
		} {
			res, err := tx.ExecContext(ctx, s.q(st.query), st.args...)
			if err != nil {
				return fmt.Errorf("store: disable user %s: %w", id, err)
			}
			*st.n, _ = res.RowsAffected()
		}
		_, err = s.record(ctx, tx, ChangeUser, id)
		return err
	})
	return out, err
}

// RevokeAccess ends every session of a user and, when tokens is set, every API token too, in one
// transaction ("sign out everywhere"), and reports how many of each it ended.
func (s *Store) RevokeAccess(ctx context.Context, userID string, tokens bool) (Revoked, error) {
	var out Revoked
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := ms(s.now())
		res, err := tx.ExecContext(ctx, s.q("UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at = 0"), now, userID)
		if err != nil {
			return fmt.Errorf("store: revoke sessions: %w", err)
		}
		out.Sessions, _ = res.RowsAffected()
		if tokens {
			res, err := tx.ExecContext(ctx, s.q("UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at = 0"), now, userID)
			if err != nil {
				return fmt.Errorf("store: revoke tokens: %w", err)
			}
			out.Tokens, _ = res.RowsAffected()
		}
		_, err = s.record(ctx, tx, ChangeUser, userID)
		return err
	})
	return out, err
}

// SetUserEmail changes a user's e-mail address and, in the same transaction, expires their
// unused recovery links: a link mailed to the old address must not outlive the change.
func (s *Store) SetUserEmail(ctx context.Context, userID, email string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("UPDATE users SET email = ? WHERE id = ?"), email, userID)
		if err != nil {
			return fmt.Errorf("store: set e-mail of %s: %w", userID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("store: user %s: %w", userID, ErrNotFound)
		}
		now := ms(s.now())
		if _, err := tx.ExecContext(ctx, s.q("UPDATE invites SET expires_at = ? WHERE user_id = ? AND purpose = ? AND used_at = 0 AND expires_at > ?"),
			now, userID, PurposeRecover, now); err != nil {
			return fmt.Errorf("store: set e-mail of %s: %w", userID, err)
		}
		_, err = s.record(ctx, tx, ChangeUser, userID)
		return err
	})
}

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
	return s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
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

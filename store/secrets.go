package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// CreateInvite stores a one-time link (its token hash only) and returns its ID.
func (s *Store) CreateInvite(ctx context.Context, in Invite) (int64, error) {
	if in.CreatedAt.IsZero() {
		in.CreatedAt = s.now()
	}
	var id int64
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO invites (token_hash, user_id, purpose, email, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`), in.TokenHash, in.UserID, in.Purpose, in.Email, ms(in.CreatedAt), ms(in.ExpiresAt)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("store: create invite: %w", err)
	}
	return id, nil
}

// Invite finds an invite by token hash, used or not.
func (s *Store) Invite(ctx context.Context, tokenHash []byte) (Invite, error) {
	var in Invite
	var created, expires, used int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT id, token_hash, user_id, purpose, email, created_at, expires_at, used_at
		FROM invites WHERE token_hash = ?`), tokenHash).
		Scan(&in.ID, &in.TokenHash, &in.UserID, &in.Purpose, &in.Email, &created, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return Invite{}, fmt.Errorf("store: invite: %w", ErrNotFound)
	}
	if err != nil {
		return Invite{}, fmt.Errorf("store: invite: %w", err)
	}
	in.CreatedAt, in.ExpiresAt, in.UsedAt = fromMS(created), fromMS(expires), fromMS(used)
	return in, nil
}

// UseInvite marks an invite used; ErrUsed when it was used already or has expired.
func (s *Store) UseInvite(ctx context.Context, id int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return s.useInvite(ctx, tx, id, s.now()) })
}

func (s *Store) useInvite(ctx context.Context, tx *sql.Tx, id int64, now time.Time) error {
	res, err := tx.ExecContext(ctx, s.q("UPDATE invites SET used_at = ? WHERE id = ? AND used_at = 0 AND expires_at > ?"),
		ms(now), id, ms(now))
	if err != nil {
		return fmt.Errorf("store: use invite: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: invite: %w", ErrUsed)
	}
	return nil
}

// RevokeInvites expires every unused invite of a user with the given purpose (a new invite
// replaces the old ones).
func (s *Store) RevokeInvites(ctx context.Context, userID, purpose string) error {
	_, err := s.db.ExecContext(ctx, s.q("UPDATE invites SET expires_at = ? WHERE user_id = ? AND purpose = ? AND used_at = 0 AND expires_at > ?"),
		ms(s.now()), userID, purpose, ms(s.now()))
	if err != nil {
		return fmt.Errorf("store: revoke invites: %w", err)
	}
	return nil
}

// ReplaceRecoveryCodes sets a user's recovery codes (hashes), dropping the old ones.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return s.replaceCodes(ctx, tx, userID, hashes) })
}

func (s *Store) replaceCodes(ctx context.Context, tx *sql.Tx, userID string, hashes [][]byte) error {
	if _, err := tx.ExecContext(ctx, s.q("DELETE FROM recovery_codes WHERE user_id = ?"), userID); err != nil {
		return fmt.Errorf("store: replace recovery codes: %w", err)
	}
	for _, h := range hashes {
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, ?)"), userID, h); err != nil {
			return fmt.Errorf("store: replace recovery codes: %w", err)
		}
	}
	return nil
}

// RecoveryCodes lists a user's recovery codes (hashes), used or not.
func (s *Store) RecoveryCodes(ctx context.Context, userID string) ([]RecoveryCode, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT id, user_id, code_hash, used_at FROM recovery_codes WHERE user_id = ? ORDER BY id"), userID)
	if err != nil {
		return nil, fmt.Errorf("store: recovery codes: %w", err)
	}
	defer rows.Close()
	var out []RecoveryCode
	for rows.Next() {
		var c RecoveryCode
		var used int64
		if err := rows.Scan(&c.ID, &c.UserID, &c.Hash, &used); err != nil {
			return nil, fmt.Errorf("store: recovery codes: %w", err)
		}
		c.UsedAt = fromMS(used)
		out = append(out, c)
	}
	return out, rows.Err()
}

// UseRecoveryCode marks a code used; ErrUsed when someone used it first.
func (s *Store) UseRecoveryCode(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, s.q("UPDATE recovery_codes SET used_at = ? WHERE id = ? AND used_at = 0"), ms(s.now()), id)
	if err != nil {
		return fmt.Errorf("store: use recovery code: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: recovery code: %w", ErrUsed)
	}
	return nil
}

const tokenCols = "id, user_id, name, token_hash, hosts, created_at, expires_at, last_used_at, revoked_at"

func scanToken(sc interface{ Scan(...any) error }) (Token, error) {
	var t Token
	var hosts string
	var created, expires, used, revoked int64
	if err := sc.Scan(&t.ID, &t.UserID, &t.Name, &t.Hash, &hosts, &created, &expires, &used, &revoked); err != nil {
		return Token{}, err
	}
	t.Hosts = splitList(hosts)
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt, t.RevokedAt = fromMS(created), fromMS(expires), fromMS(used), fromMS(revoked)
	return t, nil
}

// CreateToken stores an API token (its hash only).
func (s *Store) CreateToken(ctx context.Context, t Token) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now()
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q("INSERT INTO api_tokens ("+tokenCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
			t.ID, t.UserID, t.Name, t.Hash, joinList(t.Hosts), ms(t.CreatedAt), ms(t.ExpiresAt), ms(t.LastUsedAt), ms(t.RevokedAt))
		if err != nil {
			return fmt.Errorf("store: create token: %w", err)
		}
		_, err = s.record(ctx, tx, ChangeToken, t.ID)
		return err
	})
}

// Tokens lists a user's tokens, newest first, revoked ones included.
func (s *Store) Tokens(ctx context.Context, userID string) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT "+tokenCols+" FROM api_tokens WHERE user_id = ? ORDER BY created_at DESC"), userID)
	if err != nil {
		return nil, fmt.Errorf("store: tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("store: tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken revokes one of a user's tokens.
func (s *Store) RevokeToken(ctx context.Context, userID, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at = 0"),
			ms(s.now()), id, userID)
		if err != nil {
			return fmt.Errorf("store: revoke token: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("store: revoke token: %w", ErrNotFound)
		}
		_, err = s.record(ctx, tx, ChangeToken, id)
		return err
	})
}

// RevokeTokens revokes every live API token of a user and reports how many.
func (s *Store) RevokeTokens(ctx context.Context, userID string) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at = 0"),
			ms(s.now()), userID)
		if err != nil {
			return fmt.Errorf("store: revoke tokens: %w", err)
		}
		if n, _ = res.RowsAffected(); n == 0 {
			return nil
		}
		_, err = s.record(ctx, tx, ChangeUser, userID)
		return err
	})
	return n, err
}

// TouchTokens writes last-use times gathered in memory.
func (s *Store) TouchTokens(ctx context.Context, used map[string]time.Time) error {
	for id, at := range used {
		if _, err := s.db.ExecContext(ctx, s.q("UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND last_used_at < ?"),
			ms(at), id, ms(at)); err != nil {
			return fmt.Errorf("store: touch tokens: %w", err)
		}
	}
	return nil
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const credentialCols = "id, user_id, name, public_key, sign_count, aaguid, transports, backup_eligible, " +
	"backup_state, attestation_format, attestation_type, created_at, last_used_at"

func scanCredential(sc interface{ Scan(...any) error }) (Credential, error) {
	var c Credential
	var transports string
	var count int64
	var be, bs int
	var created, used int64
	if err := sc.Scan(&c.ID, &c.UserID, &c.Name, &c.PublicKey, &count, &c.AAGUID, &transports, &be, &bs,
		&c.AttestationFormat, &c.AttestationType, &created, &used); err != nil {
		return Credential{}, err
	}
	c.SignCount = uint32(count)
	c.Transports = splitList(transports)
	c.BackupEligible, c.BackupState = be != 0, bs != 0
	c.CreatedAt, c.LastUsedAt = fromMS(created), fromMS(used)
	return c, nil
}

// Credentials lists a user's passkeys, oldest first.
func (s *Store) Credentials(ctx context.Context, userID string) ([]Credential, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT "+credentialCols+" FROM credentials WHERE user_id = ? ORDER BY created_at, id"), userID)
	if err != nil {
		return nil, fmt.Errorf("store: credentials of %s: %w", userID, err)
	}
	defer rows.Close()
	var out []Credential
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, fmt.Errorf("store: credentials of %s: %w", userID, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Credential finds a passkey by credential ID.
func (s *Store) Credential(ctx context.Context, id []byte) (Credential, error) {
	c, err := scanCredential(s.db.QueryRowContext(ctx, s.q("SELECT "+credentialCols+" FROM credentials WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Credential{}, fmt.Errorf("store: credential: %w", ErrNotFound)
	}
	if err != nil {
		return Credential{}, fmt.Errorf("store: credential: %w", err)
	}
	return c, nil
}

// Enrolment is what RegisterCredential writes in one transaction.
type Enrolment struct {
	Credential Credential
	// InviteID, when set, is consumed (it must be unused and unexpired, or ErrUsed).
	InviteID int64
	// RecoveryCodes, when set, replace the user's recovery codes (hashes).
	RecoveryCodes [][]byte
}

// RegisterCredential stores a new passkey, consuming the invite that allowed it, atomically:
// either everything is written or nothing is. A credential ID that exists gives ErrConflict.
func (s *Store) RegisterCredential(ctx context.Context, e Enrolment) error {
	c := e.Credential
	now := s.now()
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if e.InviteID != 0 {
			if err := s.useInvite(ctx, tx, e.InviteID, now); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, s.q("INSERT INTO credentials ("+credentialCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
			c.ID, c.UserID, c.Name, c.PublicKey, int64(c.SignCount), nonNil(c.AAGUID), joinList(c.Transports),
			b2i(c.BackupEligible), b2i(c.BackupState), c.AttestationFormat, c.AttestationType, ms(c.CreatedAt), ms(c.LastUsedAt))
		if isUnique(err) {
			return fmt.Errorf("store: credential: %w", ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("store: add credential: %w", err)
		}
		if e.RecoveryCodes != nil {
			if err := s.replaceCodes(ctx, tx, c.UserID, e.RecoveryCodes); err != nil {
				return err
			}
		}
		return nil
	})
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// CredentialUse is what a successful login updates on a passkey.
type CredentialUse struct {
	ID             []byte
	OldSignCount   uint32 // the value read before the ceremony: a concurrent update makes this fail
	SignCount      uint32
	BackupEligible bool
	BackupState    bool
	At             time.Time
}

// UseCredential records a login with a passkey. It fails with ErrUsed when the counter moved in
// between, so that two logins racing with one assertion cannot both count.
func (s *Store) UseCredential(ctx context.Context, u CredentialUse) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE credentials SET sign_count = ?, backup_eligible = ?, backup_state = ?,
		last_used_at = ? WHERE id = ? AND sign_count = ?`),
		int64(u.SignCount), b2i(u.BackupEligible), b2i(u.BackupState), ms(u.At), u.ID, int64(u.OldSignCount))
	if err != nil {
		return fmt.Errorf("store: use credential: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: use credential: %w", ErrUsed)
	}
	return nil
}

// RenameCredential sets the label of one of the user's passkeys.
func (s *Store) RenameCredential(ctx context.Context, userID string, id []byte, name string) error {
	res, err := s.db.ExecContext(ctx, s.q("UPDATE credentials SET name = ? WHERE id = ? AND user_id = ?"), name, id, userID)
	if err != nil {
		return fmt.Errorf("store: rename credential: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: rename credential: %w", ErrNotFound)
	}
	return nil
}

// DeleteCredential removes a passkey (of userID, or of anyone when userID is empty) and revokes the
// sessions it made.
func (s *Store) DeleteCredential(ctx context.Context, userID string, id []byte) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var owner string
		query, args := "SELECT user_id FROM credentials WHERE id = ?", []any{id}
		if userID != "" {
			query, args = query+" AND user_id = ?", append(args, userID)
		}
		err := tx.QueryRowContext(ctx, s.q(query), args...).Scan(&owner)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: delete credential: %w", ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: delete credential: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.q("DELETE FROM credentials WHERE id = ?"), id); err != nil {
			return fmt.Errorf("store: delete credential: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.q("UPDATE sessions SET revoked_at = ? WHERE credential_id = ? AND revoked_at = 0"),
			ms(s.now()), id); err != nil {
			return fmt.Errorf("store: delete credential: %w", err)
		}
		_, err = s.record(ctx, tx, ChangeUser, owner)
		return err
	})
}

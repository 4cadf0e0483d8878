package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const userCols = "id, name, display_name, email, user_groups, disabled, created_at"

func scanUser(sc interface{ Scan(...any) error }) (User, error) {
	var u User
	var groups string
	var disabled int
	var created int64
	if err := sc.Scan(&u.ID, &u.Name, &u.DisplayName, &u.Email, &groups, &disabled, &created); err != nil {
		return User{}, err
	}
	u.Groups = splitList(groups)
	u.Disabled = disabled != 0
	u.CreatedAt = fromMS(created)
	return u, nil
}

// CreateUser inserts u. A taken name gives ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u User) error {
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.now()
	}
	return s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// Names are matched without regard to case wherever a person types one, so "Alice"
		// cannot be created next to "alice": the check and the insert are one statement.
		res, err := tx.ExecContext(ctx, s.q("INSERT INTO users ("+userCols+") SELECT ?, ?, ?, ?, ?, ?, ? "+
			"WHERE NOT EXISTS (SELECT 1 FROM users WHERE lower(name) = lower(?))"),
			u.ID, u.Name, u.DisplayName, u.Email, joinList(u.Groups), b2i(u.Disabled), ms(u.CreatedAt), u.Name)
		if isUnique(err) {
			return fmt.Errorf("store: user %q: %w", u.Name, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("store: create user %q: %w", u.Name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("store: user %q: %w", u.Name, ErrConflict)
		}
		_, err = s.record(ctx, tx, ChangeUser, u.ID)
		return err
	})
}

// UpdateUser writes the profile fields (display name, e-mail, groups) of u.
func (s *Store) UpdateUser(ctx context.Context, u User) error {
	return s.changeUser(ctx, u.ID, "UPDATE users SET display_name = ?, email = ?, user_groups = ? WHERE id = ?",
		u.DisplayName, u.Email, joinList(u.Groups), u.ID)
}

// UserByName finds a user by login name, without regard to ASCII case (people type "Alice" for
// "alice"). An exact match wins over a case variant, for databases made before names were
// compared that way.
func (s *Store) UserByName(ctx context.Context, name string) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, s.q("SELECT "+userCols+" FROM users WHERE lower(name) = lower(?) "+
		"ORDER BY CASE WHEN name = ? THEN 0 ELSE 1 END LIMIT 1"), name, name))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("store: user %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: user %q: %w", name, err)
	}
	return u, nil
}

// UserByID finds a user by ID.
func (s *Store) UserByID(ctx context.Context, id string) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, s.q("SELECT "+userCols+" FROM users WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("store: user %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: user %s: %w", id, err)
	}
	return u, nil
}

// Users lists every user by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+userCols+" FROM users ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// SetUserDisabled disables or enables a user. Disabling is DisableUser: it also ends, for good,
// the user's sessions, API tokens and unused links.
func (s *Store) SetUserDisabled(ctx context.Context, id string, disabled bool) error {
	if disabled {
		_, err := s.DisableUser(ctx, id)
		return err
	}
	return s.changeUser(ctx, id, "UPDATE users SET disabled = 0 WHERE id = ?", id)
}

// DeleteUser removes a user with everything that belongs to them (audit rows stay).
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.changeUser(ctx, id, "DELETE FROM users WHERE id = ?", id)
}

func (s *Store) changeUser(ctx context.Context, id, query string, args ...any) error {
	return s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(query), args...)
		if err != nil {
			return fmt.Errorf("store: user %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("store: user %s: %w", id, ErrNotFound)
		}
		_, err = s.record(ctx, tx, ChangeUser, id)
		return err
	})
}

// HasAnyPasskey reports whether any user has a passkey (after that, no bootstrap link is made).
func (s *Store) HasAnyPasskey(ctx context.Context) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM (SELECT 1 FROM credentials LIMIT 1) AS c").Scan(&n); err != nil {
		return false, fmt.Errorf("store: count passkeys: %w", err)
	}
	return n > 0, nil
}

// Snapshot loads users, live sessions and live tokens in one read transaction.
func (s *Store) Snapshot(ctx context.Context) (Snapshot, error) {
	var snap Snapshot
	bulk := timed{db: s.rraw, timeout: max(bulkTimeout, s.rdb.timeout)}
	err := s.readTxWithin(ctx, bulk, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		snap, err = s.snapshot(ctx, tx)
		return err
	})
	return snap, err
}

func (s *Store) snapshot(ctx context.Context, tx *sql.Tx) (Snapshot, error) {
	var snap Snapshot
	if err := tx.QueryRowContext(ctx, "SELECT n FROM revision WHERE id = 1").Scan(&snap.Revision); err != nil {
		return snap, fmt.Errorf("store: snapshot: %w", err)
	}
	rows, err := tx.QueryContext(ctx, "SELECT "+userCols+" FROM users")
	if err != nil {
		return snap, fmt.Errorf("store: snapshot users: %w", err)
	}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return snap, fmt.Errorf("store: snapshot users: %w", err)
		}
		snap.Users = append(snap.Users, u)
	}
	rows.Close()
	now := ms(s.now())
	rows, err = tx.QueryContext(ctx, s.q("SELECT "+sessionCols+" FROM sessions WHERE revoked_at = 0 AND expires_at > ?"), now)
	if err != nil {
		return snap, fmt.Errorf("store: snapshot sessions: %w", err)
	}
	for rows.Next() {
		se, err := scanSession(rows)
		if err != nil {
			rows.Close()
			return snap, fmt.Errorf("store: snapshot sessions: %w", err)
		}
		snap.Sessions = append(snap.Sessions, se)
	}
	rows.Close()
	rows, err = tx.QueryContext(ctx, s.q("SELECT "+tokenCols+" FROM api_tokens WHERE revoked_at = 0 AND expires_at > ?"), now)
	if err != nil {
		return snap, fmt.Errorf("store: snapshot tokens: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return snap, fmt.Errorf("store: snapshot tokens: %w", err)
		}
		snap.Tokens = append(snap.Tokens, t)
	}
	return snap, rows.Err()
}

// Audit records a security event.
func (s *Store) Audit(ctx context.Context, e Event) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	_, err := s.db.ExecContext(ctx, s.q("INSERT INTO audit (at, user_id, event, detail, ip) VALUES (?, ?, ?, ?, ?)"),
		ms(e.At), e.UserID, e.Event, e.Detail, e.IP)
	if err != nil {
		return fmt.Errorf("store: audit %s: %w", e.Event, err)
	}
	return nil
}

// AuditFilter selects audit events; zero fields select everything.
type AuditFilter struct {
	UserID string
	Event  string
	Since  time.Time
	Until  time.Time // exclusive; zero: no end
	Limit  int       // default 100
	Offset int
}

// AuditEvents lists events, newest first.
func (s *Store) AuditEvents(ctx context.Context, f AuditFilter) ([]Event, error) {
	query := "SELECT id, at, user_id, event, detail, ip FROM audit WHERE at >= ?"
	args := []any{ms(f.Since)}
	if f.UserID != "" {
		query += " AND user_id = ?"
		args = append(args, f.UserID)
	}
	if f.Event != "" {
		query += " AND event = ?"
		args = append(args, f.Event)
	}
	if !f.Until.IsZero() {
		query += " AND at < ?"
		args = append(args, ms(f.Until))
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	query += " ORDER BY id DESC LIMIT ? OFFSET ?"
	args = append(args, f.Limit, f.Offset)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: audit events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.UserID, &e.Event, &e.Detail, &e.IP); err != nil {
			return nil, fmt.Errorf("store: audit events: %w", err)
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

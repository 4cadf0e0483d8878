-- Latchkey schema, version 1. Times are Unix milliseconds (UTC). Tokens and codes are SHA-256 hashes.
CREATE TABLE users (
    id           TEXT PRIMARY KEY,          -- UUID v4; its 16 bytes are the WebAuthn user handle
    name         TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL DEFAULT '',
    email        TEXT NOT NULL DEFAULT '',
    user_groups  TEXT NOT NULL DEFAULT '',  -- comma separated
    disabled     INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
);

CREATE TABLE credentials (
    id                 BLOB PRIMARY KEY,
    user_id            TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name               TEXT NOT NULL DEFAULT '',
    public_key         BLOB NOT NULL,
    sign_count         INTEGER NOT NULL DEFAULT 0,
    aaguid             BLOB NOT NULL DEFAULT X'',
    transports         TEXT NOT NULL DEFAULT '',
    backup_eligible    INTEGER NOT NULL DEFAULT 0,
    backup_state       INTEGER NOT NULL DEFAULT 0,
    attestation_format TEXT NOT NULL DEFAULT '',
    attestation_type   TEXT NOT NULL DEFAULT '',
    created_at         INTEGER NOT NULL,
    last_used_at       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX credentials_user ON credentials(user_id);

CREATE TABLE invites (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash BLOB NOT NULL UNIQUE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,               -- enrol | recover
    email      TEXT NOT NULL DEFAULT '',    -- the address a magic link went to
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX invites_user ON invites(user_id);

CREATE TABLE recovery_codes (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    used_at   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX recovery_codes_user ON recovery_codes(user_id);

CREATE TABLE ceremonies (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    data       BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX ceremonies_expiry ON ceremonies(expires_at);

CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id   BLOB NOT NULL DEFAULT X'',
    method          TEXT NOT NULL,           -- passkey | recovery_code | magic_link
    created_at      INTEGER NOT NULL,
    verified_at     INTEGER NOT NULL DEFAULT 0,
    last_seen_at    INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    revoked_at      INTEGER NOT NULL DEFAULT 0,
    user_agent      TEXT NOT NULL DEFAULT '',
    ip              TEXT NOT NULL DEFAULT '',
    backup_eligible INTEGER NOT NULL DEFAULT 0,
    aaguid          BLOB NOT NULL DEFAULT X''
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   BLOB NOT NULL UNIQUE,
    hosts        TEXT NOT NULL DEFAULT '',   -- comma separated
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL DEFAULT 0,
    revoked_at   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    user_id TEXT NOT NULL DEFAULT '',
    event   TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT '',
    ip      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit(at);
CREATE INDEX audit_user ON audit(user_id, at);

-- revision is bumped by every change that the forward-auth view must see (revocations, disabled
-- users, removed passkeys, tokens); servers poll it to stay in step with the CLI and other replicas.
CREATE TABLE revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO revision (id, n) VALUES (1, 1);

-- OpenID Provider (issue 22). Depends only on 0001: users and sessions. Times are Unix
-- milliseconds (UTC). Client secrets, codes and tokens are stored only as SHA-256 hashes; signing
-- keys only sealed with a key derived from the session block key, which never enters the database.
CREATE TABLE oidc_clients (
    id               TEXT PRIMARY KEY,          -- client_id
    name             TEXT NOT NULL UNIQUE,
    secret_hash      BLOB NOT NULL DEFAULT X'', -- SHA-256 of the secret; empty for public clients
    redirect_uris    TEXT NOT NULL,             -- newline separated: a URI may hold a comma
    post_logout_uris TEXT NOT NULL DEFAULT '',  -- newline separated
    public           INTEGER NOT NULL DEFAULT 0,
    trusted          INTEGER NOT NULL DEFAULT 0, -- no consent page
    allowed_groups   TEXT NOT NULL DEFAULT '',  -- comma separated; empty: every user
    backchannel_logout_uri TEXT NOT NULL DEFAULT '', -- OpenID back-channel logout; empty: none
    created_at       INTEGER NOT NULL
);

CREATE TABLE oidc_keys (
    id         TEXT PRIMARY KEY,                -- kid
    alg        TEXT NOT NULL,                   -- RS256 | ES256
    sealed     BLOB NOT NULL,                   -- AES-GCM sealed PKCS#8 private key
    created_at INTEGER NOT NULL,
    retired_at INTEGER NOT NULL DEFAULT 0       -- rotated out: verifies, no longer signs
);

-- An authorization in progress: the validated request, then the user who approved it, then the
-- code (hashed), which can be redeemed once. The row outlives the redemption so that a second use
-- of the code is recognised and revokes what the first one issued.
CREATE TABLE oidc_auth_requests (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES oidc_clients(id) ON DELETE CASCADE,
    request         BLOB NOT NULL,              -- JSON of the validated parameters; no secret
    user_id         TEXT NOT NULL DEFAULT '',
    session_id      TEXT NOT NULL DEFAULT '',
    auth_time       INTEGER NOT NULL DEFAULT 0,
    code_hash       BLOB UNIQUE,
    code_expires_at INTEGER NOT NULL DEFAULT 0,
    code_used_at    INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);
CREATE INDEX oidc_auth_requests_expiry ON oidc_auth_requests(expires_at);

-- Access and refresh tokens. family is the authorization a token descends from: every token of
-- one code and of its rotated refresh tokens. Revoking a family revokes them all.
CREATE TABLE oidc_tokens (
    hash       BLOB PRIMARY KEY,                -- SHA-256 of the token (or of the access token's ID)
    kind       TEXT NOT NULL,                   -- access | refresh
    family     TEXT NOT NULL,
    client_id  TEXT NOT NULL REFERENCES oidc_clients(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    session_id TEXT NOT NULL,                   -- the Latchkey session that authorized the family
    scopes     TEXT NOT NULL DEFAULT '',        -- space separated
    auth_time  INTEGER NOT NULL,
    amr        TEXT NOT NULL DEFAULT '',        -- space separated
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    family_expires_at INTEGER NOT NULL,         -- absolute end of the family (refresh rotation)
    used_at    INTEGER NOT NULL DEFAULT 0,      -- a refresh token that was rotated
    revoked_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX oidc_tokens_family ON oidc_tokens(family);
CREATE INDEX oidc_tokens_expiry ON oidc_tokens(expires_at);

CREATE TABLE oidc_consents (
    id         TEXT PRIMARY KEY,                -- user_id + ' ' + client_id
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES oidc_clients(id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL DEFAULT '',        -- space separated: what the user agreed to
    granted_at INTEGER NOT NULL
);

-- Which Latchkey session signed in to which client, for back-channel logout: once the session is
-- revoked (or gone), every client that registered a logout URI is told, once (notified_at).
-- user_id has no foreign key: a removed user's sessions end too, and their clients are told.
CREATE TABLE oidc_sessions (
    id          TEXT PRIMARY KEY,               -- session_id + ' ' + client_id
    session_id  TEXT NOT NULL,
    client_id   TEXT NOT NULL REFERENCES oidc_clients(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    notified_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX oidc_sessions_pending ON oidc_sessions(notified_at);

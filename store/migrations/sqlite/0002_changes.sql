-- Version 2 (issue 17): an ordered change log instead of a bare revision counter. Every change
-- that the forward-auth view depends on takes the next revision.n and inserts one row here in the
-- same transaction; views poll rows after the revision they reflect and re-read only what a row
-- names. kind: session (ref: session id), user (ref: user id; the user with their sessions and
-- tokens), token (ref: token id), all (a full reload, e.g. after `latchkey migrate`).
CREATE TABLE changes (
    rev  INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    ref  TEXT NOT NULL DEFAULT '',
    at   INTEGER NOT NULL
);
CREATE INDEX changes_at ON changes(at);

-- heartbeat is the readiness probe's cheap write: one row, updated in place.
CREATE TABLE heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL
);
INSERT INTO heartbeat (id, at) VALUES (1, 0);

-- Removing a passkey revokes the sessions it made; retention prunes by these times.
CREATE INDEX sessions_credential ON sessions(credential_id);
CREATE INDEX sessions_expiry ON sessions(expires_at);
CREATE INDEX invites_expiry ON invites(expires_at);

-- The admin console: accounts, their sessions, and the audit log.

-- People who may sign in at /admin/. The console does not exist (404)
-- while this table is empty.
CREATE TABLE admins (
    id             INTEGER PRIMARY KEY,
    email          TEXT NOT NULL,            -- as given
    email_key      TEXT NOT NULL UNIQUE,     -- lowercased: the sign-in name
    password_hash  TEXT NOT NULL,            -- PHC string, Argon2id
    created_at     TEXT NOT NULL,            -- RFC 3339 UTC
    last_login_at  TEXT
);

-- One row per signed-in browser. Only a BLAKE3 hash of the cookie's token
-- is kept, so a copy of the database signs nobody in. The CSRF token of the
-- session's forms is kept as it is (it is no credential on its own).
CREATE TABLE admin_sessions (
    token_hash     TEXT PRIMARY KEY,         -- 64 hex digits
    admin_id       INTEGER NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    csrf           TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    last_seen_at   TEXT NOT NULL,            -- the idle limit counts from here
    client         TEXT                      -- the address it signed in from
) WITHOUT ROWID;
CREATE INDEX admin_sessions_admin ON admin_sessions(admin_id);

-- Who did what, when. `admin` is the address as it was (the row outlives
-- the account); `target` names rows by id, never a subscriber's address,
-- so an erasure leaves nothing personal here.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    admin    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT,
    detail   TEXT,
    client   TEXT
);

-- Dashboard sessions held server-side. The cookie carries a
-- random session ID; only its SHA-256 is stored. Signing out deletes the
-- row, so a copied cookie stops working, and the limits are the server's:
-- expires_at is the lifetime cap (DASHBOARD_SESSION_TTL), idle_expires_at
-- moves forward with use (DASHBOARD_SESSION_IDLE) but never past the cap.
-- No IP address or user agent: sessions are bound to nothing personal.
CREATE TABLE dashboard_sessions (
    session_hash     bytea PRIMARY KEY CHECK (octet_length(session_hash) = 32),
    token_id         bigint NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    idle_expires_at  timestamptz NOT NULL,
    CHECK (created_at < expires_at AND idle_expires_at <= expires_at)
);
-- Revoking a token deletes its sessions.
CREATE INDEX dashboard_sessions_token_id_idx ON dashboard_sessions (token_id);

-- The key that signed the old stateless cookies signs nothing any more: a
-- stolen copy of it (instance_keys) must not be worth anything.
DELETE FROM instance_keys WHERE name = 'dashboard_session';

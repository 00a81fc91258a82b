-- Passkeys (WebAuthn). Each user gets one stable random WebAuthn user handle: it is how a
-- discoverable assertion names its user.
ALTER TABLE users ADD COLUMN webauthn_handle TEXT;
CREATE UNIQUE INDEX users_webauthn_handle ON users(webauthn_handle);

CREATE TABLE passkeys (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    aaguid TEXT,
    credential TEXT NOT NULL,
    backup_eligible BOOLEAN NOT NULL,
    flagged BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_user ON passkeys(user_id);

-- Registration and authentication ceremonies in progress: 5 minutes, consumed on first use.
CREATE TABLE webauthn_ceremonies (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    user_id TEXT,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies(expires_at);

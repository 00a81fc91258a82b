-- OAuth 2.0 Device Authorization Grant (RFC 8628). The device code and the user code are
-- stored only as SHA-256 hex digests (the user code normalized: upper case, no dash).
-- `status` is pending, approved or denied; the approving session's user, sid, auth_time, amr
-- and acr are copied here at approval and go into the grant when the device redeems it.
CREATE TABLE device_authorizations (
    device_code_hash TEXT PRIMARY KEY NOT NULL,
    user_code_hash TEXT NOT NULL UNIQUE,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    status TEXT NOT NULL,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    session_id TEXT,
    auth_time BIGINT,
    amr TEXT,
    acr TEXT,
    interval_secs BIGINT NOT NULL,
    last_polled_at BIGINT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decided_at BIGINT,
    consumed_at BIGINT,
    -- Where the device asked from, shown to the approving person (RFC 8628 §5.4).
    device_ip TEXT
);
CREATE INDEX device_authorizations_expiry ON device_authorizations(expires_at);

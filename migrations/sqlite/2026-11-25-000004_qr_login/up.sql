-- QR cross-device sign-in (README "QR sign-in"). A row is one QR code: created for a
-- browser's parked authorization request, claimed by the first phone that scans it,
-- approved or denied there, and redeemed once by the browser that holds the private key.
-- The id in the QR URL is stored only as its SHA-256 digest, as is the login grant.
CREATE TABLE qr_logins (
    id_hash TEXT PRIMARY KEY NOT NULL,
    browser_hash TEXT NOT NULL,
    request_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    browser_key TEXT NOT NULL,
    desktop_user_agent TEXT,
    desktop_ip TEXT,
    state TEXT NOT NULL,
    match_code TEXT NOT NULL,
    claimed_by TEXT,
    claimed_at BIGINT,
    phone_user_agent TEXT,
    phone_ip TEXT,
    wrong_codes INTEGER NOT NULL DEFAULT 0,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    approved_amr TEXT,
    grant_hash TEXT,
    sealed_grant TEXT,
    grant_expires_at BIGINT,
    version INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX qr_logins_expiry ON qr_logins(expires_at);

-- Companion apps enrolled as devices of a user: a P-256 public key (JWK) that signs QR
-- approvals. Enrollment codes and per-QR challenges are single use and stored as digests.
CREATE TABLE devices (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX devices_user ON devices(user_id);

CREATE TABLE device_enrollments (
    code_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);

CREATE TABLE device_challenges (
    challenge_hash TEXT PRIMARY KEY NOT NULL,
    qr_id_hash TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX device_challenges_expiry ON device_challenges(expires_at);

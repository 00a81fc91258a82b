-- Sign-ups in progress (README "Sign-up"): an address waiting for its verification code, then
-- for the new account's first credential. Bound to the parked authorization request, and so
-- to the browser holding its cookie. The code is an HMAC under the instance key, as in
-- otp_challenges. `code_sent` is FALSE when the address already had an account: its owner was
-- mailed a warning instead, and no code can ever verify this row.
CREATE TABLE signups (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    auth_request_id TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    code_sent BOOLEAN NOT NULL,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    -- The WebAuthn user handle the new account gets if its first credential is a passkey.
    webauthn_handle TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    code_expires_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    verified_at BIGINT,
    completed_at BIGINT
);
CREATE INDEX signups_expiry ON signups(expires_at);

-- Invitation links: single use (`used_at`, set by one conditional UPDATE), 7 days. The token
-- is stored as its SHA-256 digest; `email` is normalized and fixed by the invitation.
CREATE TABLE invitations (
    id TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    invited_by TEXT NOT NULL,
    -- The WebAuthn user handle the account gets if its first credential is a passkey.
    webauthn_handle TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX invitations_org ON invitations(org_id, created_at);

-- Organizations decide which sign-in methods their applications offer (`auth_config`, JSON:
-- see src/authn/methods.rs) and how the hosted pages look. Users may hold the admin role of
-- their organization (the admin console).
ALTER TABLE organizations ADD COLUMN auth_config TEXT NOT NULL DEFAULT '{}';
ALTER TABLE organizations ADD COLUMN logo_url TEXT;
ALTER TABLE organizations ADD COLUMN primary_color TEXT;
ALTER TABLE organizations ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
CREATE INDEX users_phone ON users(org_id, phone_number);
-- Clients allowed to obtain the admin scope with the client-credentials grant.
ALTER TABLE clients ADD COLUMN admin_api BOOLEAN NOT NULL DEFAULT FALSE;

-- Email and SMS one-time codes: the code is stored only as an HMAC under the instance key,
-- bound to the parked authorization request it was sent for. `user_id` is NULL when no
-- account holds the address (nothing was sent; the challenge exists so that the answer is
-- the same).
CREATE TABLE otp_challenges (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    auth_request_id TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT
);
CREATE INDEX otp_challenges_expiry ON otp_challenges(expires_at);

-- Admin API bearer tokens (created with the CLI), stored as SHA-256 digests. `org_id` NULL:
-- the token manages every organization and the signing keys.
CREATE TABLE admin_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    org_id TEXT REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);

-- Every admin change and every sign-in outcome. `actor` names who acted (admin token, admin
-- user, client, or the person signing in); `detail` is JSON without secrets.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    outcome TEXT NOT NULL,
    ip TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_org_at ON audit_log(org_id, at);

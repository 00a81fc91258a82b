-- Codes and links of the account's own flows (recovery by code, recovery link sent by an
-- admin, email change). The secret is stored only as an HMAC under the instance key (codes)
-- or a SHA-256 digest (links). `holder` is the digest of the browser-bound cookie (recovery)
-- or the session id (email change) that alone may use the code; `user_id` is NULL when no
-- account holds the address (nothing was sent; the row exists so that the answer is the same).
CREATE TABLE account_codes (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    address TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    holder TEXT,
    auth_request_id TEXT,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    verified_at BIGINT,
    completed_at BIGINT
);
CREATE INDEX account_codes_secret ON account_codes(secret_hash);
CREATE INDEX account_codes_holder ON account_codes(holder);
CREATE INDEX account_codes_expiry ON account_codes(expires_at);

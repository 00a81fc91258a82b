-- Sign-in through upstream OpenID Connect providers (README "Upstream identity providers").
-- An identity is one account at one issuer (issuer + sub), linked to one Tessera user.
CREATE TABLE upstream_identities (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider_id TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    email TEXT,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    UNIQUE (org_id, issuer, subject)
);
CREATE INDEX upstream_identities_user ON upstream_identities(user_id);

-- A trip to a provider in flight: the `state` sent upstream is stored only as its digest;
-- the PKCE verifier and the nonce are derived from it with the instance key, so nothing
-- here lets a copy of the database finish someone's sign-in.
CREATE TABLE upstream_logins (
    state_hash TEXT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    reauthenticate BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX upstream_logins_expiry ON upstream_logins(expires_at);

-- An upstream identity whose email matches an account that must first prove it is the
-- same person (sign in with one of its own methods, in the same browser) before the link.
CREATE TABLE upstream_pending_links (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider_id TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    email TEXT,
    expires_at BIGINT NOT NULL
);
CREATE INDEX upstream_pending_links_request ON upstream_pending_links(request_id);
CREATE INDEX upstream_pending_links_expiry ON upstream_pending_links(expires_at);

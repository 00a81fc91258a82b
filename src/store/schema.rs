//! One `table!` schema for both backends: every column uses a portable type
//! (Text, BigInt, Bool, Binary), so the same query text compiles for SQLite and PostgreSQL.

diesel::table! {
    organizations (id) {
        id -> Text,
        slug -> Text,
        name -> Text,
        created_at -> BigInt,
        auth_config -> Text,
        logo_url -> Nullable<Text>,
        primary_color -> Nullable<Text>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        org_id -> Text,
        email -> Text,
        email_normalized -> Text,
        email_verified -> Bool,
        name -> Nullable<Text>,
        given_name -> Nullable<Text>,
        family_name -> Nullable<Text>,
        phone_number -> Nullable<Text>,
        phone_number_verified -> Bool,
        locale -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        disabled -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
        webauthn_handle -> Nullable<Text>,
        role -> Text,
    }
}

diesel::table! {
    clients (id) {
        id -> Text,
        org_id -> Text,
        name -> Text,
        secret_hash -> Nullable<Text>,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        created_at -> BigInt,
        backchannel_logout_uri -> Nullable<Text>,
        backchannel_logout_session_required -> Bool,
        admin_api -> Bool,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        state -> Text,
        private_key -> Binary,
        encrypted -> Bool,
        public_jwk -> Text,
        created_at -> BigInt,
        activated_at -> Nullable<BigInt>,
        retired_at -> Nullable<BigInt>,
        publish_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    instance_secrets (name) {
        name -> Text,
        value -> Binary,
        encrypted -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        secret_hash -> Text,
        user_id -> Text,
        org_id -> Text,
        auth_time -> BigInt,
        amr -> Text,
        acr -> Text,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        expires_at -> BigInt,
        absolute_expires_at -> BigInt,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Text>,
        revoked_at -> Nullable<BigInt>,
        logout_sent_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    authorization_requests (id) {
        id -> Text,
        browser_hash -> Text,
        client_id -> Text,
        params -> Text,
        csrf -> Text,
        authenticated_session_id -> Nullable<Text>,
        interaction_done -> Bool,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    grants (id) {
        id -> Text,
        client_id -> Text,
        user_id -> Nullable<Text>,
        session_id -> Nullable<Text>,
        scope -> Text,
        auth_time -> Nullable<BigInt>,
        amr -> Text,
        acr -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Text,
        grant_id -> Text,
        client_id -> Text,
        user_id -> Text,
        session_id -> Text,
        redirect_uri -> Text,
        scope -> Text,
        nonce -> Nullable<Text>,
        code_challenge -> Nullable<Text>,
        auth_time -> BigInt,
        amr -> Text,
        acr -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        grant_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    rate_limits (bucket) {
        bucket -> Text,
        hits -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    passkeys (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        aaguid -> Nullable<Text>,
        credential -> Text,
        backup_eligible -> Bool,
        flagged -> Bool,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    webauthn_ceremonies (id) {
        id -> Text,
        kind -> Text,
        user_id -> Nullable<Text>,
        state -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    qr_logins (id_hash) {
        id_hash -> Text,
        browser_hash -> Text,
        request_id -> Text,
        client_id -> Text,
        browser_key -> Text,
        desktop_user_agent -> Nullable<Text>,
        desktop_ip -> Nullable<Text>,
        state -> Text,
        match_code -> Text,
        claimed_by -> Nullable<Text>,
        claimed_at -> Nullable<BigInt>,
        phone_user_agent -> Nullable<Text>,
        phone_ip -> Nullable<Text>,
        wrong_codes -> Integer,
        user_id -> Nullable<Text>,
        approved_amr -> Nullable<Text>,
        grant_hash -> Nullable<Text>,
        sealed_grant -> Nullable<Text>,
        grant_expires_at -> Nullable<BigInt>,
        version -> Integer,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    devices (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        public_key -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    device_enrollments (code_hash) {
        code_hash -> Text,
        user_id -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    device_challenges (challenge_hash) {
        challenge_hash -> Text,
        qr_id_hash -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    device_authorizations (device_code_hash) {
        device_code_hash -> Text,
        user_code_hash -> Text,
        grant_id -> Text,
        client_id -> Text,
        scope -> Text,
        status -> Text,
        user_id -> Nullable<Text>,
        session_id -> Nullable<Text>,
        auth_time -> Nullable<BigInt>,
        amr -> Nullable<Text>,
        acr -> Nullable<Text>,
        interval_secs -> BigInt,
        last_polled_at -> Nullable<BigInt>,
        created_at -> BigInt,
        expires_at -> BigInt,
        decided_at -> Nullable<BigInt>,
        consumed_at -> Nullable<BigInt>,
        device_ip -> Nullable<Text>,
    }
}

diesel::table! {
    otp_challenges (id) {
        id -> Text,
        org_id -> Text,
        channel -> Text,
        address -> Text,
        user_id -> Nullable<Text>,
        auth_request_id -> Text,
        code_hash -> Text,
        failed_attempts -> BigInt,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    admin_tokens (id) {
        id -> Text,
        token_hash -> Text,
        org_id -> Nullable<Text>,
        name -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        org_id -> Nullable<Text>,
        at -> BigInt,
        actor -> Text,
        action -> Text,
        target -> Nullable<Text>,
        outcome -> Text,
        ip -> Nullable<Text>,
        detail -> Text,
    }
}

diesel::table! {
    account_codes (id) {
        id -> Text,
        org_id -> Text,
        user_id -> Nullable<Text>,
        purpose -> Text,
        address -> Text,
        secret_hash -> Text,
        holder -> Nullable<Text>,
        auth_request_id -> Nullable<Text>,
        failed_attempts -> BigInt,
        created_at -> BigInt,
        expires_at -> BigInt,
        verified_at -> Nullable<BigInt>,
        completed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    signups (id) {
        id -> Text,
        org_id -> Text,
        email -> Text,
        auth_request_id -> Text,
        code_hash -> Text,
        code_sent -> Bool,
        failed_attempts -> BigInt,
        webauthn_handle -> Text,
        created_at -> BigInt,
        code_expires_at -> BigInt,
        expires_at -> BigInt,
        verified_at -> Nullable<BigInt>,
        completed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    invitations (id) {
        id -> Text,
        token_hash -> Text,
        org_id -> Text,
        email -> Text,
        invited_by -> Text,
        webauthn_handle -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    upstream_identities (id) {
        id -> Text,
        org_id -> Text,
        user_id -> Text,
        provider_id -> Text,
        issuer -> Text,
        subject -> Text,
        email -> Nullable<Text>,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    upstream_logins (state_hash) {
        state_hash -> Text,
        request_id -> Text,
        org_id -> Text,
        provider_id -> Text,
        reauthenticate -> Bool,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    upstream_pending_links (id) {
        id -> Text,
        request_id -> Text,
        org_id -> Text,
        user_id -> Text,
        provider_id -> Text,
        issuer -> Text,
        subject -> Text,
        email -> Nullable<Text>,
        expires_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    upstream_identities,
    upstream_logins,
    upstream_pending_links,
    account_codes,
    signups,
    invitations,
    otp_challenges,
    admin_tokens,
    audit_log,
    qr_logins,
    devices,
    device_enrollments,
    device_challenges,
    device_authorizations,
    passkeys,
    webauthn_ceremonies,
    organizations,
    users,
    clients,
    signing_keys,
    instance_secrets,
    sessions,
    authorization_requests,
    grants,
    authorization_codes,
    refresh_tokens,
    rate_limits,
);

//! OpenID Connect Discovery 1.0 §3: every value here describes what the server really does.

use axum::extract::Request;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::Response;
use serde_json::json;

use crate::app::AppState;
use crate::config::Config;

pub struct Prepared {
    pub body: bytes::Bytes,
    pub etag: HeaderValue,
}

impl Prepared {
    pub fn new(config: &Config) -> Prepared {
        let doc = document(config);
        let body = serde_json::to_vec_pretty(&doc).expect("static JSON");
        Prepared {
            etag: crate::oidc::etag_of(&body),
            body: bytes::Bytes::from(body),
        }
    }
}

pub fn document(config: &Config) -> serde_json::Value {
    let e = |p: &str| config.endpoint(p);
    json!({
        "issuer": config.issuer,
        "authorization_endpoint": e("/authorize"),
        "token_endpoint": e("/token"),
        "userinfo_endpoint": e("/userinfo"),
        "jwks_uri": e("/jwks"),
        "end_session_endpoint": e("/logout"),
        "revocation_endpoint": e("/revoke"),
        "introspection_endpoint": e("/introspect"),
        "device_authorization_endpoint": e("/device_authorization"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        "scopes_supported": crate::oidc::scope::SUPPORTED,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            crate::oidc::token::device_code::GRANT_TYPE
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "acr_values_supported": crate::authn::ACR_VALUES_SUPPORTED,
        "display_values_supported": ["page", "popup"],
        "claim_types_supported": ["normal"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid",
            "at_hash", config.reauthentication_claim,
            "name", "given_name", "family_name", "locale", "updated_at",
            "email", "email_verified", "phone_number", "phone_number_verified"
        ],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "ui_locales_supported": ["en"],
        "claims_locales_supported": ["en"],
    })
}

pub async fn handler(State(app): State<AppState>, request: Request) -> Response {
    crate::oidc::prepared_json(
        request.headers(),
        app.discovery.body.clone(),
        &app.discovery.etag,
        "public, max-age=300",
    )
}

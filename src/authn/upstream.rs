//! Sign-in through upstream OpenID Connect providers (Google, an Auth0 tenant, any issuer that
//! publishes discovery). Tessera is a relying party toward them, through the `openidconnect`
//! crate: discovery, the authorization code flow with PKCE, `state` and `nonce`, and ID token
//! validation (signature against the provider's JWKS, `iss`, `aud`, `exp`, `nonce`). Toward
//! its own applications it stays the identity provider and issues its own ID tokens.
//!
//! Nothing a provider returns is kept beyond the sign-in except the link (issuer + `sub`):
//! its tokens are dropped once the ID token and, when needed, userinfo have been read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};

use super::{ACR_SINGLE_FACTOR, Authentication};
use crate::security::master_key::MasterKey;

/// How long discovery documents (with their JWKS) are reused before being fetched again.
const METADATA_TTL: Duration = Duration::from_secs(15 * 60);
/// A trip to a provider must come back within this time.
pub const LOGIN_TTL_SECS: i64 = 10 * 60;
/// A link waiting for the account holder's proof lasts this long.
pub const PENDING_LINK_TTL_SECS: i64 = 10 * 60;
/// With `reauthenticate_upstream`, the provider's `auth_time` may precede the relying party's
/// request by at most this much: the two clocks are not the same clock.
const CLOCK_SKEW_SECS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Google,
    Auth0,
    Oidc,
}

pub(crate) fn yes() -> bool {
    true
}

pub fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into(), "profile".into()]
}

/// One provider entry of an organization's `auth_config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamProvider {
    /// A slug naming the entry in URLs and links (`google`, `acme-sso`).
    pub id: String,
    pub kind: Kind,
    pub display_name: String,
    /// The issuer URL for `oidc`; the tenant domain (`acme.eu.auth0.com`) for `auth0`;
    /// ignored for `google`.
    #[serde(default)]
    pub issuer: String,
    pub client_id: String,
    /// The client secret sealed with a key derived from the instance key (base64url); never
    /// shown once saved. `None`: a public client, PKCE only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_sealed: Option<String>,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The provider vouches for the emails it reports as verified: a first sign-in whose
    /// verified email matches an account links to it without further proof.
    #[serde(default)]
    pub trusted_for_email: bool,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A first sign-in with no matching account creates one (else it is refused).
    #[serde(default = "yes")]
    pub create_accounts: bool,
    /// When an application asks for reauthentication, send the person back to this provider
    /// with `prompt=login` and `max_age=0` rather than refusing the provider for it.
    #[serde(default)]
    pub reauthenticate_upstream: bool,
}

impl UpstreamProvider {
    /// The issuer whose discovery document is fetched and whose `iss` the ID token must carry.
    pub fn issuer_url(&self) -> String {
        match self.kind {
            Kind::Google => "https://accounts.google.com".into(),
            // Auth0's issuer is the tenant's URL with a trailing slash.
            Kind::Auth0 => format!("https://{}/", self.issuer.trim().trim_end_matches('/')),
            Kind::Oidc => self.issuer.trim().to_owned(),
        }
    }

    /// What an admin may save: a slug id, a name, a client id, and an issuer that is https
    /// (plain http only for loopback hosts, which local development and tests use).
    pub fn check(&self) -> Result<(), String> {
        let slug_ok = !self.id.is_empty()
            && self.id.len() <= 40
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !slug_ok {
            return Err("a provider id is 1 to 40 lower-case letters, digits and dashes".into());
        }
        let name = self.display_name.trim();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err("a provider needs a display name (at most 100 characters)".into());
        }
        if self.client_id.trim().is_empty()
            || self.client_id.len() > 500
            || self.client_id.chars().any(char::is_control)
        {
            return Err("a provider needs a client id (at most 500 characters)".into());
        }
        if self.scopes.len() > 20
            || self
                .scopes
                .iter()
                .any(|s| s.is_empty() || s.len() > 100 || !s.chars().all(|c| c.is_ascii_graphic()))
        {
            return Err("scopes are at most 20 space-free values".into());
        }
        if self.kind == Kind::Auth0 {
            let domain = self.issuer.trim().trim_end_matches('/');
            let ok = !domain.is_empty()
                && domain.len() <= 253
                && domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
            if !ok {
                return Err(
                    "an auth0 provider needs its tenant domain, e.g. acme.eu.auth0.com".into(),
                );
            }
        }
        check_issuer(&self.issuer_url())
    }

    /// The scopes sent upstream, always with `openid`.
    fn request_scopes(&self) -> Vec<String> {
        let mut scopes = self.scopes.clone();
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".into());
        }
        scopes
    }
}

/// An issuer must be an https URL without query or fragment, or http on a loopback host.
pub fn check_issuer(issuer: &str) -> Result<(), String> {
    let url = url::Url::parse(issuer).map_err(|e| format!("issuer {issuer:?}: {e}"))?;
    if url.query().is_some() || url.fragment().is_some() || issuer.len() > 500 {
        return Err("an issuer URL has no query or fragment".into());
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        _ => Err(format!(
            "issuer {issuer:?} must be https (http only for 127.0.0.1, ::1 or localhost)"
        )),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Seals and opens provider client secrets: AES-256-GCM under a key derived from the instance
/// key (itself sealed with `TESSERA_MASTER_KEY` when one is configured), bound to the
/// organization and provider id so a sealed value cannot be moved to another entry.
pub fn secret_key(instance_key: &[u8]) -> MasterKey {
    MasterKey::from_bytes(&crate::security::hmac_sha256(
        instance_key,
        b"tessera upstream client secret",
    ))
    .expect("an HMAC-SHA256 output is 32 bytes")
}

fn secret_label(org_id: &str, provider_id: &str) -> String {
    format!("upstream-secret:{org_id}:{provider_id}")
}

pub fn seal_secret(key: &MasterKey, org_id: &str, provider_id: &str, secret: &str) -> String {
    crate::security::b64url(&key.seal(&secret_label(org_id, provider_id), secret.as_bytes()))
}

fn open_secret(
    key: &MasterKey,
    org_id: &str,
    provider: &UpstreamProvider,
) -> Result<Option<String>, Failure> {
    let Some(sealed) = &provider.client_secret_sealed else {
        return Ok(None);
    };
    let bytes = crate::security::b64url_decode(sealed)
        .ok_or_else(|| Failure::Misconfigured("sealed client secret is not base64url".into()))?;
    let plain = key
        .open(&secret_label(org_id, &provider.id), &bytes)
        .map_err(Failure::Misconfigured)?;
    String::from_utf8(plain)
        .map(Some)
        .map_err(|_| Failure::Misconfigured("client secret is not text".into()))
}

/// Why an upstream sign-in did not produce a verified identity. Every variant becomes a page
/// for the person, never a 5xx.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("the provider could not be reached or its discovery document is invalid: {0}")]
    Discovery(String),
    #[error("the provider's configuration here is unusable: {0}")]
    Misconfigured(String),
    #[error("the token request failed: {0}")]
    Token(String),
    #[error("the provider's ID token was refused: {0}")]
    IdToken(String),
    #[error("the provider's userinfo failed: {0}")]
    UserInfo(String),
    #[error("the provider did not re-check the person: {0}")]
    NotReauthenticated(String),
}

impl Failure {
    /// A short reason for the audit log and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::Discovery(_) => "upstream_unreachable",
            Failure::Misconfigured(_) => "upstream_misconfigured",
            Failure::Token(_) => "upstream_token_failed",
            Failure::IdToken(_) => "upstream_id_token_invalid",
            Failure::UserInfo(_) => "upstream_userinfo_failed",
            Failure::NotReauthenticated(_) => "upstream_not_reauthenticated",
        }
    }
}

/// Discovery documents (with their key sets) by issuer, reused for [`METADATA_TTL`].
#[derive(Default)]
pub struct MetadataCache {
    entries: Mutex<HashMap<String, (Instant, CoreProviderMetadata)>>,
}

impl MetadataCache {
    /// The provider's metadata and JWKS: from the cache unless `refresh`, else fetched (the
    /// crate checks that the document's `issuer` is the one asked for, OIDC Discovery §4.3).
    async fn get(
        &self,
        http: &openidconnect::reqwest::Client,
        issuer: &str,
        refresh: bool,
    ) -> Result<CoreProviderMetadata, Failure> {
        if !refresh {
            let entries = self.entries.lock().expect("metadata cache lock");
            if let Some((at, metadata)) = entries.get(issuer)
                && at.elapsed() < METADATA_TTL
            {
                return Ok(metadata.clone());
            }
        }
        let url =
            IssuerUrl::new(issuer.to_owned()).map_err(|e| Failure::Discovery(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(url, http)
            .await
            .map_err(|e| Failure::Discovery(error_chain(&e)))?;
        let mut entries = self.entries.lock().expect("metadata cache lock");
        // Bounded: one entry per configured issuer in practice; a full clear is enough.
        if entries.len() > 1000 {
            entries.clear();
        }
        entries.insert(issuer.to_owned(), (Instant::now(), metadata.clone()));
        Ok(metadata)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The PKCE verifier and nonce of a trip are derived from its `state` with the instance key,
/// so the database holds only the state's digest and nothing that completes a sign-in.
fn derived(instance_key: &[u8], purpose: &str, state: &str) -> String {
    crate::security::b64url(&crate::security::hmac_sha256(
        instance_key,
        format!("tessera upstream {purpose}\0{state}").as_bytes(),
    ))
}

/// Where to send the browser to start a sign-in at `provider`.
pub async fn authorization_url(
    cache: &MetadataCache,
    http: &openidconnect::reqwest::Client,
    instance_key: &[u8],
    provider: &UpstreamProvider,
    redirect_uri: &str,
    state: &str,
    reauthenticate: bool,
) -> Result<String, Failure> {
    let metadata = cache.get(http, &provider.issuer_url(), false).await?;
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|e| Failure::Misconfigured(e.to_string()))?;
    // No secret is needed to build the URL.
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(provider.client_id.clone()),
        None,
    )
    .set_redirect_uri(redirect);
    let verifier = PkceCodeVerifier::new(derived(instance_key, "pkce", state));
    let nonce = derived(instance_key, "nonce", state);
    let state = state.to_owned();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state),
            move || Nonce::new(nonce),
        )
        .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(&verifier));
    for scope in provider.request_scopes() {
        if scope != "openid" {
            request = request.add_scope(Scope::new(scope));
        }
    }
    if reauthenticate {
        // OIDC Core §3.1.2.1: the provider must re-prompt, and report `auth_time`.
        request = request
            .add_prompt(CoreAuthPrompt::Login)
            .set_max_age(Duration::ZERO);
    }
    Ok(request.url().0.to_string())
}

/// What a verified upstream sign-in says about the person.
#[derive(Debug, Clone)]
pub struct Verified {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    /// Only `true` when the provider said so (in the ID token or userinfo).
    pub email_verified: bool,
    pub name: Option<String>,
    /// The provider's `amr`, empty when it sent none.
    pub amr: Vec<String>,
    pub auth_time: Option<i64>,
}

impl Verified {
    /// The `amr` of the Tessera sign-in: the provider's own values when it sent some (they
    /// describe what the person actually did), else `fed` (RFC 8176 §2: federated).
    pub fn authentication(&self) -> Authentication {
        let amr = if self.amr.is_empty() {
            vec!["fed".to_owned()]
        } else {
            self.amr.clone()
        };
        Authentication {
            amr,
            acr: ACR_SINGLE_FACTOR,
            at: self.auth_time,
        }
    }
}

/// Redeems the code of a trip that came back and verifies the ID token; reads userinfo when
/// the ID token carries no email.
#[allow(clippy::too_many_arguments)]
pub async fn finish(
    cache: &MetadataCache,
    http: &openidconnect::reqwest::Client,
    instance_key: &[u8],
    secrets: &MasterKey,
    org_id: &str,
    provider: &UpstreamProvider,
    redirect_uri: &str,
    state: &str,
    code: &str,
    // The relying party's request time when it asked for a fresh sign-in that was forwarded.
    reauthenticated_since: Option<i64>,
) -> Result<Verified, Failure> {
    let issuer = provider.issuer_url();
    let secret = open_secret(secrets, org_id, provider)?;
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|e| Failure::Misconfigured(e.to_string()))?;
    let mut metadata = cache.get(http, &issuer, false).await?;
    let client = |metadata: CoreProviderMetadata| {
        CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(provider.client_id.clone()),
            secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect.clone())
    };
    let verifier = PkceCodeVerifier::new(derived(instance_key, "pkce", state));
    let nonce = Nonce::new(derived(instance_key, "nonce", state));
    let token_client = client(metadata.clone());
    let tokens = token_client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|e| Failure::Misconfigured(e.to_string()))?
        .set_pkce_verifier(verifier)
        .request_async(http)
        .await
        .map_err(|e| Failure::Token(error_chain(&e)))?;
    let id_token = tokens
        .id_token()
        .ok_or_else(|| Failure::Token("no id_token in the token response".into()))?;
    let allowed_algs = |metadata: &CoreProviderMetadata| -> Vec<CoreJwsSigningAlgorithm> {
        metadata
            .id_token_signing_alg_values_supported()
            .iter()
            .filter(|a| **a != CoreJwsSigningAlgorithm::None)
            .cloned()
            .collect()
    };
    let mut refreshed = false;
    let claims = loop {
        let verifying = client(metadata.clone());
        let verifier = verifying
            .id_token_verifier()
            .set_allowed_algs(allowed_algs(&metadata));
        match id_token.claims(&verifier, &nonce) {
            Ok(claims) => break claims.clone(),
            // A key the cached JWKS does not hold: the provider may have rotated, so fetch
            // its keys once more (OIDC Core §10.1.1) before refusing.
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(
                openidconnect::SignatureVerificationError::NoMatchingKey,
            )) if !refreshed => {
                refreshed = true;
                metadata = cache.get(http, &issuer, true).await?;
            }
            Err(e) => return Err(Failure::IdToken(error_chain(&e))),
        }
    };
    let auth_time = claims.auth_time().map(|t| t.timestamp());
    // OIDC Core §3.1.2.1 (`prompt=login`, `max_age`): the person must have signed in at the
    // provider after the relying party asked. Within the clock skew, the request's own time
    // stands in, so `prompt=login` accepts the session it produces.
    let reauthenticated_at = match reauthenticated_since {
        None => None,
        Some(since) => match auth_time {
            Some(t) if t >= since - CLOCK_SKEW_SECS => Some(t.max(since)),
            _ => {
                return Err(Failure::NotReauthenticated(
                    "the ID token's auth_time is missing or older than the request".into(),
                ));
            }
        },
    };
    let mut verified = Verified {
        issuer: claims.issuer().to_string(),
        subject: claims.subject().to_string(),
        email: claims.email().map(|e| e.to_string()),
        email_verified: claims.email_verified() == Some(true),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string()),
        amr: claims
            .auth_method_refs()
            .map(|v| v.iter().map(|a| a.to_string()).collect())
            .unwrap_or_default(),
        // Only a forwarded reauthentication vouches for a moment (checked above): the session's
        // `auth_time` is then the provider's. Otherwise the sign-in here is the event.
        auth_time: reauthenticated_at,
    };
    if verified.email.is_none() {
        let userinfo_client = client(metadata);
        if let Ok(request) = userinfo_client.user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        ) {
            let info: openidconnect::core::CoreUserInfoClaims =
                request
                    .request_async(http)
                    .await
                    .map_err(|e| Failure::UserInfo(error_chain(&e)))?;
            verified.email = info.email().map(|e| e.to_string());
            verified.email_verified = info.email_verified() == Some(true);
            if verified.name.is_none() {
                verified.name = info.name().and_then(|n| n.get(None)).map(|n| n.to_string());
            }
        }
    }
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(kind: Kind, issuer: &str) -> UpstreamProvider {
        UpstreamProvider {
            id: "p".into(),
            kind,
            display_name: "P".into(),
            issuer: issuer.into(),
            client_id: "c".into(),
            client_secret_sealed: None,
            scopes: default_scopes(),
            trusted_for_email: false,
            enabled: true,
            create_accounts: true,
            reauthenticate_upstream: false,
        }
    }

    #[test]
    fn issuers_must_be_https_except_loopback() {
        provider(Kind::Oidc, "https://id.example.com")
            .check()
            .unwrap();
        provider(Kind::Oidc, "http://127.0.0.1:9000")
            .check()
            .unwrap();
        provider(Kind::Oidc, "http://localhost:9000/x")
            .check()
            .unwrap();
        provider(Kind::Oidc, "http://[::1]:9000").check().unwrap();
        assert!(
            provider(Kind::Oidc, "http://id.example.com")
                .check()
                .is_err()
        );
        assert!(
            provider(Kind::Oidc, "https://id.example.com?x=1")
                .check()
                .is_err()
        );
        assert!(provider(Kind::Oidc, "").check().is_err());
        provider(Kind::Google, "").check().unwrap();
        let auth0 = provider(Kind::Auth0, "acme.eu.auth0.com");
        auth0.check().unwrap();
        assert_eq!(auth0.issuer_url(), "https://acme.eu.auth0.com/");
        assert!(provider(Kind::Auth0, "evil.com/path?").check().is_err());
    }

    #[test]
    fn sealed_secrets_are_bound_to_their_entry() {
        let key = secret_key(&[1u8; 32]);
        let mut p = provider(Kind::Google, "");
        p.client_secret_sealed = Some(seal_secret(&key, "org", "p", "s3cret"));
        assert_eq!(
            open_secret(&key, "org", &p).unwrap().as_deref(),
            Some("s3cret")
        );
        assert!(open_secret(&key, "other-org", &p).is_err());
    }
}

//! The shared flow of every authorization module: the suite's `AbstractOIDCCServerTest`
//! (`configure`, `createAuthorizationRequest`, `processCallback`,
//! `onAuthorizationCallbackResponse`, `requestAuthorizationCode`,
//! `PerformStandardIdTokenChecks`, `requestProtectedResource`) with the same conditions at
//! the same severities. A module is a sequence of these steps; a condition called with
//! `callAndStopOnFailure` ends it through [`Halt::Stop`].

use std::collections::BTreeMap;
use std::sync::Arc;

use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreProviderMetadata};
use openidconnect::{ClientId, ClientSecret, IssuerUrl, Nonce, reqwest};
use serde_json::Value;

use super::Outcome;
use super::browser::{Browser, Callback, Interactions, Nav, Person, Start};
use super::checks::{self, Check};
use super::jose::{self, Jwt};
use super::target::{ClientCreds, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sev {
    Failure,
    Warning,
}

/// Why a module ended early.
#[derive(Debug)]
pub enum Halt {
    /// A condition called with `callAndStopOnFailure` failed (already recorded).
    Stop,
    /// The suite's `fireTestSkipped`.
    Skip(String),
}

pub type Step<T> = Result<T, Halt>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// client_secret_basic
    Basic,
    /// client_secret_post
    Post,
}

/// One raw HTTP response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// A module's environment (the suite's `env`) and its log of failed conditions.
pub struct T {
    pub target: Arc<Target>,
    pub http: reqwest::Client,
    pub browser: Browser,
    pub form_post: bool,
    pub client: ClientCreds,
    pub client_auth: ClientAuth,
    /// `client.scope` (the suite's `SetScopeInClientConfigurationToOpenId` and friends).
    pub scope: String,
    pub redirect_uri: String,
    pub server: Value,
    pub jwks: Value,
    pub provider: Option<CoreProviderMetadata>,
    /// Prefix for messages, like the suite's `currentClientString()`.
    pub block: String,
    failures: Vec<String>,
    warnings: Vec<String>,
    pub notes: Vec<String>,
}

impl T {
    pub fn new(target: &Arc<Target>, form_post: bool) -> T {
        let http = target.http();
        T {
            browser: Browser::new(
                http.clone(),
                &target.issuer,
                &target.account.email,
                &target.account.password,
            ),
            http,
            target: target.clone(),
            form_post,
            client: target.client.clone(),
            client_auth: ClientAuth::Basic,
            scope: "openid".into(),
            redirect_uri: target.redirect_uri.clone(),
            server: Value::Null,
            jwks: Value::Null,
            provider: None,
            block: String::new(),
            failures: Vec::new(),
            warnings: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// `callAndContinueOnFailure(condition, severity)`.
    pub fn check(&mut self, sev: Sev, condition: &str, result: Check) {
        if let Err(message) = result {
            let line = format!("{}{condition}: {message}", self.block);
            match sev {
                Sev::Failure => self.failures.push(line),
                Sev::Warning => self.warnings.push(line),
            }
        }
    }

    /// `callAndStopOnFailure(condition)`.
    pub fn require(&mut self, condition: &str, result: Check) -> Step<()> {
        match result {
            Ok(()) => Ok(()),
            Err(message) => {
                self.failures
                    .push(format!("{}{condition}: {message}", self.block));
                Err(Halt::Stop)
            }
        }
    }

    /// A failure that stops the module, for things the suite would only see as a test that
    /// never completes (no callback arrives): recorded as FAILED with what happened.
    pub fn stop(&mut self, what: &str, message: String) -> Halt {
        self.failures
            .push(format!("{}{what}: {message}", self.block));
        Halt::Stop
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    pub fn outcome(self, halt: Option<Halt>) -> (Outcome, Vec<String>) {
        let outcome = if !self.failures.is_empty() {
            let mut all = self.failures;
            all.extend(self.warnings.into_iter().map(|w| format!("(warning) {w}")));
            Outcome::Failed(all)
        } else if let Some(Halt::Skip(reason)) = halt {
            // fireTestSkipped overrides earlier warnings.
            Outcome::Skipped(reason)
        } else if !self.warnings.is_empty() {
            Outcome::Warning(self.warnings)
        } else {
            Outcome::Passed
        };
        (outcome, self.notes)
    }

    pub async fn get(&mut self, what: &str, url: &str) -> Step<Resp> {
        let r = self.http.get(url).send().await;
        self.finish(what, r).await
    }

    pub async fn finish(
        &mut self,
        what: &str,
        r: Result<reqwest::Response, reqwest::Error>,
    ) -> Step<Resp> {
        let response = match r {
            Ok(r) => r,
            Err(e) => return Err(self.stop(what, format!("request failed: {e}"))),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = match response.text().await {
            Ok(b) => b,
            Err(e) => return Err(self.stop(what, format!("reading the body failed: {e}"))),
        };
        Ok(Resp {
            status,
            headers,
            body,
        })
    }
}

pub fn random_alnum(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; len];
    aws_lc_rs::rand::fill(&mut bytes).expect("random bytes");
    bytes
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect()
}

// ---------------------------------------------------------------- configure

/// `AbstractOIDCCServerTest.configure` for a static client with discovery.
pub async fn configure(t: &mut T) -> Step<()> {
    let discovery_url = t.target.discovery_url.clone();
    let r = t
        .get("GetDynamicServerConfiguration", &discovery_url)
        .await?;
    let server = match serde_json::from_str::<Value>(&r.body) {
        Ok(v) if v.is_object() => v,
        _ => {
            return Err(t.stop(
                "GetDynamicServerConfiguration",
                format!("HTTP {}: the body is not a JSON object", r.status),
            ));
        }
    };
    t.server = server;
    let server = t.server.clone();
    t.require(
        "CheckServerConfiguration",
        checks::check_server_configuration(&server),
    )?;
    let jwks_uri = match server["jwks_uri"].as_str() {
        Some(u) => u.to_owned(),
        None => return Err(t.stop("FetchServerKeys", "no jwks_uri".into())),
    };
    let r = t.get("FetchServerKeys", &jwks_uri).await?;
    let jwks = match serde_json::from_str::<Value>(&r.body) {
        Ok(v) if v.is_object() => v,
        _ => {
            return Err(t.stop(
                "FetchServerKeys",
                format!("HTTP {}: the JWKS is not JSON", r.status),
            ));
        }
    };
    t.jwks = jwks.clone();
    t.check(
        Sev::Warning,
        "CheckServerKeysIsValid",
        checks::server_keys_is_valid(&jwks),
    );
    t.require("ValidateServerJWKs", checks::validate_server_jwks(&jwks))?;
    t.check(
        Sev::Failure,
        "CheckForKeyIdInServerJWKs",
        checks::key_id_in_server_jwks(&jwks),
    );
    t.check(
        Sev::Failure,
        "CheckDistinctKeyIdValueInServerJWKs",
        checks::distinct_key_ids(&jwks),
    );
    t.check(
        Sev::Failure,
        "EnsureServerJwksDoesNotContainPrivateOrSymmetricKeys",
        checks::no_private_or_symmetric_keys(&jwks),
    );
    // completeClientConfiguration
    match t.client_auth {
        ClientAuth::Basic => t.check(
            Sev::Failure,
            "EnsureServerConfigurationSupportsClientSecretBasic",
            checks::supports_client_secret_basic(&server),
        ),
        ClientAuth::Post => t.check(
            Sev::Failure,
            "EnsureServerConfigurationSupportsClientSecretPost",
            checks::supports_client_secret_post(&server),
        ),
    }
    // The runner's own relying party: openidconnect discovers the same issuer.
    match IssuerUrl::new(t.target.issuer.clone()) {
        Ok(issuer) => match CoreProviderMetadata::discover_async(issuer, &t.http).await {
            Ok(meta) => t.provider = Some(meta),
            Err(e) => t.check(
                Sev::Failure,
                "openidconnect discovery (runner's RP cross-check)",
                Err(error_chain(&e)),
            ),
        },
        Err(e) => t.check(
            Sev::Failure,
            "openidconnect discovery (runner's RP cross-check)",
            Err(e.to_string()),
        ),
    }
    Ok(())
}

/// `skipTestIfScopesNotSupported` of the claims modules.
pub fn skip_if_scopes_not_supported(t: &mut T) -> Step<()> {
    let server = t.server.clone();
    if checks::scopes_supported_contain(&server, &t.scope).is_err() {
        return Err(Halt::Skip("scopes_supported from the discovery endpoint indicates the server doesn't support the scopes required for this test; so the test has been skipped".into()));
    }
    Ok(())
}

/// `SetProtectedResourceUrlToUserInfoEndpoint`
pub fn userinfo_endpoint(t: &mut T) -> Step<String> {
    match t.server["userinfo_endpoint"].as_str() {
        Some(u) => Ok(u.to_owned()),
        None => Err(t.stop(
            "SetProtectedResourceUrlToUserInfoEndpoint",
            "no userinfo_endpoint in the server configuration".into(),
        )),
    }
}

pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

// ---------------------------------------------------------------- authorization request

/// The authorization request (the suite's `authorization_endpoint_request`), in insertion
/// order, plus what the checks compare against.
#[derive(Debug, Clone, Default)]
pub struct AuthRequest {
    pub params: Vec<(String, String)>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_verifier: Option<String>,
}

impl AuthRequest {
    pub fn set(&mut self, key: &str, value: &str) {
        match self.params.iter_mut().find(|(k, _)| k == key) {
            Some(p) => p.1 = value.to_owned(),
            None => self.params.push((key.to_owned(), value.to_owned())),
        }
    }
    pub fn remove(&mut self, key: &str) {
        self.params.retain(|(k, _)| k != key);
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `CreateAuthorizationRequestSteps`: client_id, redirect_uri, scope, state, nonce,
/// response_type and (form post plans) response_mode.
pub fn create_authorization_request(
    t: &T,
    state_len: usize,
    nonce_len: Option<usize>,
) -> AuthRequest {
    let mut req = AuthRequest::default();
    req.set("client_id", &t.client.id.clone());
    req.set("redirect_uri", &t.redirect_uri.clone());
    req.set("scope", &t.scope.clone());
    let state = random_alnum(state_len);
    req.set("state", &state);
    req.state = Some(state);
    if let Some(n) = nonce_len {
        let nonce = random_alnum(n);
        req.set("nonce", &nonce);
        req.nonce = Some(nonce);
    }
    req.set("response_type", "code");
    if t.form_post {
        req.set("response_mode", "form_post");
    }
    req
}

/// `BuildPlainRedirectToAuthorizationEndpoint` (or, reordered, in reverse alphabetical order).
pub fn authorization_url(t: &T, req: &AuthRequest, reverse_order: bool) -> String {
    let endpoint = t.server["authorization_endpoint"].as_str().unwrap_or("");
    let mut url = url::Url::parse(endpoint).expect("checked by CheckServerConfiguration");
    let mut params = req.params.clone();
    if reverse_order {
        params.sort_by(|a, b| b.0.cmp(&a.0));
    }
    url.query_pairs_mut().extend_pairs(params.iter());
    url.to_string()
}

/// Sends the browser to the authorization endpoint and lets the person act.
pub async fn redirect(t: &mut T, start: Start, person: Person) -> Step<(Nav, Interactions)> {
    match t.browser.navigate(start, person).await {
        Ok(x) => Ok(x),
        Err(e) => Err(t.stop("browser", e)),
    }
}

/// `processCallback`: where the response is read from, and the form_post checks. With
/// form_post the suite reads `callback_body_form_params`; a response that did not arrive in
/// a POST body leaves `authorization_endpoint_response` missing, and the first condition that
/// needs it (`ValidateIssIfPresentInAuthorizationResponse`, then the stopping
/// `CheckIfAuthorizationEndpointError`) fails.
pub fn process_callback(t: &mut T, cb: &Callback) -> Step<BTreeMap<String, String>> {
    let query = cb.query_map();
    if !t.form_post {
        return Ok(query);
    }
    t.check(
        Sev::Failure,
        "CheckCallbackHttpMethodIsPost",
        checks::callback_method_is_post(&cb.method),
    );
    t.check(
        Sev::Failure,
        "CheckCallbackContentTypeIsFormUrlEncoded",
        checks::callback_content_type_form(cb.content_type.as_deref()),
    );
    t.check(
        Sev::Failure,
        "RejectAuthCodeInUrlQuery",
        checks::no_code_in_url_query(&query),
    );
    t.check(
        Sev::Failure,
        "RejectErrorInUrlQuery",
        checks::no_error_in_url_query(&query),
    );
    if cb.method != "POST" {
        let missing = format!(
            "authorization_endpoint_response (callback_body_form_params) is missing: the response came as a {} to {}",
            cb.method, cb.url
        );
        t.check(
            Sev::Failure,
            "ValidateIssIfPresentInAuthorizationResponse",
            Err(missing.clone()),
        );
        return Err(t.stop("CheckIfAuthorizationEndpointError", missing));
    }
    Ok(cb.body_map())
}

/// `onAuthorizationCallbackResponse` up to `ExtractAuthorizationCodeFromAuthorizationResponse`.
pub fn success_response(
    t: &mut T,
    cb: &Callback,
    params: &BTreeMap<String, String>,
    req: &AuthRequest,
) -> Step<String> {
    let redirect_uri = t.redirect_uri.clone();
    let issuer = t.server["issuer"].as_str().unwrap_or("").to_owned();
    t.check(
        Sev::Failure,
        "CheckMatchingCallbackParameters",
        checks::matching_callback_parameters(&redirect_uri, &cb.url),
    );
    t.check(
        Sev::Failure,
        "ValidateIssIfPresentInAuthorizationResponse",
        checks::iss_if_present(params, &issuer),
    );
    t.require(
        "CheckIfAuthorizationEndpointError",
        checks::no_authorization_endpoint_error(params),
    )?;
    t.check(
        Sev::Failure,
        "CheckStateInAuthorizationResponse",
        checks::state_in_authorization_response(params, req.state.as_deref()),
    );
    match params.get("code") {
        Some(c) if !c.is_empty() => Ok(c.clone()),
        _ => Err(t.stop(
            "ExtractAuthorizationCodeFromAuthorizationResponse",
            "no code in the authorization response".into(),
        )),
    }
}

/// `performGenericAuthorizationEndpointErrorResponseValidation`
pub fn generic_error_validation(
    t: &mut T,
    params: &BTreeMap<String, String>,
    expected_state: Option<&str>,
) {
    let issuer = t.server["issuer"].as_str().unwrap_or("").to_owned();
    t.check(
        Sev::Failure,
        "CheckStateInAuthorizationResponse",
        checks::state_in_authorization_response(params, expected_state),
    );
    t.check(
        Sev::Failure,
        "ValidateIssIfPresentInAuthorizationResponse",
        checks::iss_if_present(params, &issuer),
    );
    t.check(
        Sev::Failure,
        "EnsureErrorFromAuthorizationEndpointResponse",
        checks::error_present(params),
    );
    t.check(
        Sev::Failure,
        "RejectAuthCodeInAuthorizationEndpointResponse",
        checks::no_code_in_error_response(params),
    );
    t.check(
        Sev::Warning,
        "CheckForUnexpectedParametersInErrorResponseFromAuthorizationEndpoint",
        checks::no_unexpected_error_parameters(params),
    );
    t.check(
        Sev::Warning,
        "CheckErrorDescriptionFromAuthorizationEndpointResponseErrorContainsCRLFTAB",
        checks::error_description_has_no_crlftab(params),
    );
    t.check(
        Sev::Failure,
        "ValidateErrorDescriptionFromAuthorizationEndpointResponseError",
        checks::authorization_error_description_chars(params),
    );
    t.check(
        Sev::Failure,
        "ValidateErrorUriFromAuthorizationEndpointResponseError",
        checks::error_uri_valid(params.get("error_uri").map(String::as_str)),
    );
}

// ---------------------------------------------------------------- token endpoint

/// A token endpoint POST with the client authentication of the variant.
pub async fn call_token_endpoint(
    t: &mut T,
    what: &str,
    mut form: Vec<(String, String)>,
    client: &ClientCreds,
    auth: ClientAuth,
) -> Step<Resp> {
    let endpoint = t.server["token_endpoint"].as_str().unwrap_or("").to_owned();
    let mut request = t.http.post(&endpoint);
    match auth {
        ClientAuth::Basic => {
            // RFC 6749 §2.3.1: form-urlencode both parts before base64.
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            request = request.basic_auth(enc(&client.id), Some(enc(&client.secret)));
        }
        ClientAuth::Post => {
            form.push(("client_id".into(), client.id.clone()));
            form.push(("client_secret".into(), client.secret.clone()));
        }
    }
    let r = request
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .body(super::browser::encode_form(&form))
        .send()
        .await;
    t.finish(what, r).await
}

pub fn code_grant_form(t: &T, code: &str, req: &AuthRequest) -> Vec<(String, String)> {
    let mut form = vec![
        ("grant_type".to_owned(), "authorization_code".to_owned()),
        ("code".to_owned(), code.to_owned()),
        ("redirect_uri".to_owned(), t.redirect_uri.clone()),
    ];
    if let Some(v) = &req.code_verifier {
        form.push(("code_verifier".into(), v.clone()));
    }
    form
}

#[derive(Debug, Clone)]
pub struct Tokens {
    pub response: Value,
    pub access_token: String,
    pub id_token: Jwt,
    pub refresh_token: Option<String>,
    pub code_grant_form: Vec<(String, String)>,
}

/// Extra ID token conditions a module adds to `performIdTokenValidation`.
pub type IdTokenExtra<'a> = Option<&'a (dyn Fn(&mut T, &Jwt) + Sync)>;

/// `createAuthorizationCodeRequest` + `requestAuthorizationCode`, then the standard ID token
/// checks on the token endpoint's ID token.
pub async fn exchange_code(
    t: &mut T,
    code: &str,
    req: &AuthRequest,
    extra: IdTokenExtra<'_>,
) -> Step<Tokens> {
    let form = code_grant_form(t, code, req);
    let client = t.client.clone();
    let auth = t.client_auth;
    let r = call_token_endpoint(t, "CallTokenEndpoint", form.clone(), &client, auth).await?;
    if r.status != 200 {
        return Err(t.stop(
            "CallTokenEndpoint",
            format!("token endpoint returned HTTP {}: {}", r.status, r.body),
        ));
    }
    let body = match r.json() {
        Some(v) if v.is_object() => v,
        _ => {
            return Err(t.stop(
                "CallTokenEndpoint",
                format!("token endpoint response is not a JSON object: {}", r.body),
            ));
        }
    };
    t.require(
        "CheckIfTokenEndpointResponseError",
        match body["error"].as_str() {
            Some(e) => Err(format!("token endpoint returned error {e}")),
            None => Ok(()),
        },
    )?;
    t.require(
        "CheckForAccessTokenValue",
        match (body["access_token"].as_str(), body["token_type"].as_str()) {
            (Some(a), Some(tt)) if !a.is_empty() && !tt.is_empty() => Ok(()),
            _ => Err("access_token or token_type missing or empty".into()),
        },
    )?;
    let access_token = body["access_token"].as_str().unwrap_or("").to_owned();
    if !body["expires_in"].is_null() {
        t.check(
            Sev::Failure,
            "ValidateExpiresIn",
            checks::validate_expires_in(&body["expires_in"]),
        );
    }
    let id_token = match body["id_token"].as_str().map(jose::parse) {
        Some(Ok(j)) => j,
        Some(Err(e)) => return Err(t.stop("ExtractIdTokenFromTokenResponse", e)),
        None => {
            return Err(t.stop(
                "ExtractIdTokenFromTokenResponse",
                "no id_token in the token endpoint response".into(),
            ));
        }
    };
    id_token_checks(t, &id_token, req.nonce.as_deref(), Some(&access_token));
    if let Some(extra) = extra {
        extra(t, &id_token);
    }
    Ok(Tokens {
        refresh_token: body["refresh_token"].as_str().map(str::to_owned),
        response: body,
        access_token,
        id_token,
        code_grant_form: form,
    })
}

/// `PerformStandardIdTokenChecks`, plus the runner's own relying party (openidconnect's
/// `IdTokenVerifier`) verifying the same token.
pub fn id_token_checks(t: &mut T, jwt: &Jwt, nonce: Option<&str>, _access_token: Option<&str>) {
    let issuer = t.server["issuer"].as_str().unwrap_or("").to_owned();
    let client_id = t.client.id.clone();
    let jwks = t.jwks.clone();
    t.check(
        Sev::Failure,
        "ValidateIdToken",
        checks::validate_id_token(jwt, &issuer, &client_id),
    );
    t.check(
        Sev::Failure,
        "ValidateIdTokenStandardClaims",
        checks::standard_claims(&jwt.claims),
    );
    t.check(
        Sev::Failure,
        "ValidateIdTokenNonce",
        checks::id_token_nonce(jwt, nonce),
    );
    // ValidateIdTokenACRClaimAgainstRequest applies only to an essential acr claims request,
    // which no module of these plans makes.
    t.check(
        Sev::Failure,
        "ValidateIdTokenSignature",
        checks::id_token_signature(jwt, &jwks),
    );
    t.check(
        Sev::Failure,
        "ValidateIdTokenSignatureUsingKid",
        checks::id_token_signature_using_kid(jwt, &jwks),
    );
    t.check(
        Sev::Failure,
        "CheckForSubjectInIdToken",
        checks::subject_in_id_token(jwt),
    );
    t.check(
        Sev::Failure,
        "EnsureIdTokenUpdatedAtValid",
        checks::updated_at_valid(&jwt.claims),
    );
    let cross = openidconnect_verify(t, jwt, nonce);
    t.check(
        Sev::Failure,
        "openidconnect IdTokenVerifier (runner's RP cross-check)",
        cross,
    );
}

fn openidconnect_verify(t: &T, jwt: &Jwt, nonce: Option<&str>) -> Check {
    let Some(meta) = &t.provider else {
        return Ok(()); // discovery failure already recorded
    };
    let verifier = CoreIdTokenVerifier::new_confidential_client(
        ClientId::new(t.client.id.clone()),
        ClientSecret::new(t.client.secret.clone()),
        meta.issuer().clone(),
        meta.jwks().clone(),
    );
    let token: CoreIdToken = jwt
        .raw
        .parse()
        .map_err(|e: serde_json::Error| format!("does not parse: {e}"))?;
    let result = match nonce {
        Some(n) => token
            .claims(&verifier, &Nonce::new(n.to_owned()))
            .map(|_| ()),
        None => token
            .claims(&verifier, |n: Option<&Nonce>| match n {
                None => Ok(()),
                Some(_) => Err("nonce present although none was requested".to_owned()),
            })
            .map(|_| ()),
    };
    result.map_err(|e| error_chain(&e))
}

/// `requestProtectedResource`: GET userinfo with the bearer token; 200 expected.
pub async fn request_protected_resource(t: &mut T, access_token: &str) -> Step<()> {
    let endpoint = userinfo_endpoint(t)?;
    let r = t.http.get(&endpoint).bearer_auth(access_token).send().await;
    let r = t.finish("CallProtectedResource", r).await?;
    t.check(
        Sev::Failure,
        "EnsureHttpStatusCodeIs200",
        if r.status == 200 {
            Ok(())
        } else {
            Err(format!("userinfo returned HTTP {}: {}", r.status, r.body))
        },
    );
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserInfoCall {
    Get,
    PostHeader,
    PostBody,
}

pub async fn call_userinfo(t: &mut T, access_token: &str, how: UserInfoCall) -> Step<Resp> {
    let endpoint = userinfo_endpoint(t)?;
    let request = match how {
        UserInfoCall::Get => t.http.get(&endpoint).bearer_auth(access_token),
        UserInfoCall::PostHeader => t.http.post(&endpoint).bearer_auth(access_token),
        UserInfoCall::PostBody => t
            .http
            .post(&endpoint)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(super::browser::encode_form(&[(
                "access_token".to_owned(),
                access_token.to_owned(),
            )])),
    };
    let r = request.send().await;
    let name = match how {
        UserInfoCall::PostBody => "CallUserInfoEndpointWithBearerTokenInBody",
        _ => "CallUserInfoEndpoint",
    };
    t.finish(name, r).await
}

/// `ExtractUserInfoFromUserInfoEndpointResponse` (stop on failure).
pub fn extract_userinfo(t: &mut T, r: &Resp) -> Step<Value> {
    match r.json() {
        Some(v) if v.is_object() => Ok(v),
        _ => Err(t.stop(
            "ExtractUserInfoFromUserInfoEndpointResponse",
            format!("userinfo response is not a JSON object: {}", r.body),
        )),
    }
}

/// `validateExtractedUserInfoResponse` of the userinfo modules.
pub fn validate_userinfo(t: &mut T, userinfo: &Value) {
    t.check(
        Sev::Failure,
        "ValidateUserInfoStandardClaims",
        checks::standard_claims(userinfo),
    );
    t.check(
        Sev::Failure,
        "EnsureUserInfoContainsSub",
        checks::userinfo_contains_sub(userinfo),
    );
    t.check(
        Sev::Failure,
        "EnsureUserInfoUpdatedAtValid",
        checks::updated_at_valid(userinfo),
    );
    t.check(
        Sev::Failure,
        "EnsureMemberValuesInClaimNameReferenceToMemberNamesInClaimSources",
        checks::claim_names_reference_sources(userinfo),
    );
}

// ---------------------------------------------------------------- whole flows

/// How one authorization is driven.
#[derive(Clone, Copy)]
pub struct Drive<'a> {
    pub person: Person,
    /// Send the request as a form POST (`oidcc-ensure-post-request-succeeds`).
    pub post: bool,
    /// Parameters in reverse alphabetical order (`oidcc-alternate-happy-flow`).
    pub reorder: bool,
    /// `EnsureMinimumAuthorizationCodeLength` / `…Entropy` (`oidcc-server`).
    pub code_checks: bool,
    pub id_token_extra: IdTokenExtra<'a>,
}

impl Default for Drive<'_> {
    fn default() -> Self {
        Drive {
            person: Person::Interacts,
            post: false,
            reorder: false,
            code_checks: false,
            id_token_extra: None,
        }
    }
}

pub struct Authorized {
    pub code: String,
    pub interactions: Interactions,
}

/// `performAuthorizationFlow` → `processCallback` → `onAuthorizationCallbackResponse`
/// expecting success; returns the code.
pub async fn authorize(t: &mut T, req: &AuthRequest, drive: Drive<'_>) -> Step<Authorized> {
    let start = if drive.post {
        let endpoint = t.server["authorization_endpoint"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        Start::PostForm(endpoint, req.params.clone())
    } else {
        Start::Get(authorization_url(t, req, drive.reorder))
    };
    let (nav, interactions) = redirect(t, start, drive.person).await?;
    let cb = match nav {
        Nav::Callback(cb) => cb,
        Nav::Page { status, url, body } => {
            let what = if drive.person == Person::Absent {
                "the OP showed a page to the user where the authorization had to complete without interaction"
            } else {
                "the OP showed a page instead of returning to the client"
            };
            return Err(t.stop(
                "authorization endpoint",
                format!("{what} (HTTP {status} at {url}): {}", page_summary(&body)),
            ));
        }
    };
    let params = process_callback(t, &cb)?;
    let code = success_response(t, &cb, &params, req)?;
    if drive.code_checks {
        t.check(
            Sev::Failure,
            "EnsureMinimumAuthorizationCodeLength",
            checks::code_length(&code),
        );
        t.check(
            Sev::Failure,
            "EnsureMinimumAuthorizationCodeEntropy",
            checks::entropy("authorization code", &code, 96.0),
        );
    }
    Ok(Authorized { code, interactions })
}

/// The whole happy flow of `AbstractOIDCCServerTest`: authorize, exchange the code, check
/// the ID token, call userinfo.
pub async fn standard_flow(
    t: &mut T,
    req: &AuthRequest,
    drive: Drive<'_>,
) -> Step<(Authorized, Tokens)> {
    let authorized = authorize(t, req, drive).await?;
    let tokens = exchange_code(t, &authorized.code, req, drive.id_token_extra).await?;
    request_protected_resource(t, &tokens.access_token.clone()).await?;
    Ok((authorized, tokens))
}

/// A short description of an HTML page: its title and first alert, for reports.
pub fn page_summary(body: &str) -> String {
    let between = |open: &str, close: &str| -> Option<String> {
        let start = body.find(open)? + open.len();
        let start = start + body[start..].find('>')? + 1;
        let end = start + body[start..].find(close)?;
        Some(
            super::browser::unescape_html(body[start..end].trim())
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        )
    };
    let title = between("<title", "</title>").unwrap_or_default();
    let alert = between("role=\"alert\"", "</p>").unwrap_or_default();
    let mut s = format!("{title} — {alert}");
    s.truncate(300);
    s
}

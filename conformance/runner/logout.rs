//! The logout plans: RP-Initiated Logout OP (`OIDCCRpInitiatedLogoutTestPlan`, 11 modules)
//! and Back-Channel Logout OP (`OIDCCBackchannelRpInitiatedLogoutTestPlan`, 2 modules), read
//! from the suite's `AbstractOIDCCRpInitiatedLogout`, `OIDCCRpInitiatedLogout*`,
//! `OIDCCBackChannelRpInitiatedLogout` and their conditions.
//!
//! Common flow: a normal authorization (128-character state) and code exchange; the browser
//! is sent to `end_session_endpoint` with `id_token_hint`, `post_logout_redirect_uri`
//! (test base + `/post_logout_redirect`) and a VSCHAR `state`, each module changing that
//! request; where the OP asks the person to confirm, the runner's browser submits the
//! confirmation form as the person would. Modules expecting a redirect then check it and
//! make a `prompt=none` authorization that must fail with an error needing a user interface.
//! Modules expecting a page stand for the suite's screenshot placeholders (REVIEW): the
//! runner checks what the screenshot would show and notes it.
//!
//! The Back-Channel module runs an HTTP listener inside the runner as the client's
//! `backchannel_logout_uri` (test base + `/backchannel_logout`) and verifies the logout
//! token with the suite's conditions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Outcome;
use super::browser::{Callback, Nav, Person, Start, is_login_page, parse_forms, resolve};
use super::checks::{self, Check};
use super::flow::{self, Drive, Halt, Sev, Step, T};
use super::jose::{self, Jwt};
use super::target::Target;

const STATE_LEN: usize = 128;
const NONCE_LEN: usize = 10;
/// How long the runner waits for the OP's back-channel logout request after the redirect
/// (Tessera delivers in the background; the suite waits for both requests in any order).
const BACKCHANNEL_WAIT: Duration = Duration::from_secs(20);

pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

pub async fn run(target: &Arc<Target>, module: &str) -> (Outcome, Vec<String>) {
    let mut t = T::new(target, false);
    let halt = dispatch(&mut t, module).await.err();
    t.outcome(halt)
}

/// What a module expects after the end-session request.
#[derive(Clone, Copy)]
enum Expect {
    /// The post-logout redirect with the request's `state` (`CheckPostLogoutState`), or
    /// without any (`CheckNoPostLogoutState`), then the prompt=none check.
    Redirect { state: bool },
    /// No redirect: an error page or a page asking to confirm (placeholder → REVIEW).
    NoRedirect {
        placeholder: &'static str,
        why: &'static str,
    },
    /// The person is logged out and sees a "logged out" page (placeholder → REVIEW).
    LoggedOutPage { why: &'static str },
}

/// The end-session request, as `CreateEndSessionEndpointRequest` builds it and a module
/// changes it.
#[derive(Clone, Default)]
struct EndSession {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

async fn dispatch(t: &mut T, module: &str) -> Step<()> {
    match module {
        "oidcc-rp-initiated-logout-discovery-endpoint-verification" => {
            discovery(t, false).await
        }
        "oidcc-backchannel-logout-discovery-endpoint-verification" => discovery(t, true).await,
        "oidcc-rp-initiated-logout" => {
            rp_initiated(t, |_, _| {}, Expect::Redirect { state: true }).await
        }
        "oidcc-rp-initiated-logout-no-state" => {
            rp_initiated(
                t,
                |_, r| r.state = None, // RemoveStateFromEndSessionEndpointRequest
                Expect::Redirect { state: false },
            )
            .await
        }
        "oidcc-rp-initiated-logout-bad-post-logout-redirect-uri" => {
            let bad = format!("{}/bad_post_logout_redirect_uri", t.target.redirect_base());
            rp_initiated(
                t,
                move |_, r| r.post_logout_redirect_uri = Some(bad.clone()),
                Expect::NoRedirect {
                    placeholder: "ExpectPostLogoutRedirectUriNotRegisteredErrorPage",
                    why: "OP has incorrectly called the registered post_logout_redirect_uri even though a different uri was requested.",
                },
            )
            .await
        }
        "oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri" => {
            rp_initiated(
                t,
                |_, r| {
                    if let Some(u) = &mut r.post_logout_redirect_uri {
                        u.push_str("?foo=bar");
                    }
                },
                Expect::NoRedirect {
                    placeholder: "ExpectPostLogoutRedirectUriNotRegisteredErrorPage",
                    why: "OP has incorrectly called the registered post_logout_redirect_uri even though a different uri was requested.",
                },
            )
            .await
        }
        "oidcc-rp-initiated-logout-modified-id-token-hint" => {
            rp_initiated(
                t,
                |_, r| {
                    // ChangeIdTokenToAlgNone: the same claims, header alg none, no signature.
                    if let Some(hint) = &r.id_token_hint {
                        if let Ok(jwt) = jose::parse(hint) {
                            r.id_token_hint = Some(alg_none(&jwt));
                        }
                    }
                },
                Expect::NoRedirect {
                    placeholder: "ExpectInvalidIdTokenHintErrorPage",
                    why: "OP has incorrectly called the registered post_logout_redirect_uri even though an invalid id_token_hint was provided.",
                },
            )
            .await
        }
        "oidcc-rp-initiated-logout-bad-id-token-hint" => {
            rp_initiated(
                t,
                |t, r| {
                    // GenerateFakeIdTokenClaims + SignFakeIdToken: "issued" by the client,
                    // signed with the suite's own key.
                    let issuer = t.server["issuer"].as_str().unwrap_or("").to_owned();
                    let now = checks::now();
                    let claims = json!({
                        "iss": t.client.id,
                        "sub": "SubjectID",
                        "aud": issuer,
                        "nonce": "flibble",
                        "iat": now,
                        "exp": now + 300,
                    });
                    r.id_token_hint = Some(sign_with_suite_key(&claims));
                },
                Expect::NoRedirect {
                    placeholder: "ExpectInvalidIdTokenHintErrorPage",
                    why: "OP has incorrectly called the registered post_logout_redirect_uri even though an invalid id_token_hint was provided.",
                },
            )
            .await
        }
        "oidcc-rp-initiated-logout-no-id-token-hint" => {
            rp_initiated(
                t,
                |_, r| r.id_token_hint = None,
                Expect::NoRedirect {
                    placeholder: "ExpectIdTokenHintRequiredErrorPage",
                    why: "OP has incorrectly called the registered post_logout_redirect_uri even though no id_token_hint was provided.",
                },
            )
            .await
        }
        "oidcc-rp-initiated-logout-no-params" => {
            rp_initiated(
                t,
                |_, r| *r = EndSession::default(), // RemoveAllParametersFromEndSessionEndpointRequest
                Expect::LoggedOutPage {
                    why: "OP has incorrectly called the registered post_logout_redirect_uri when it wasn't in the request.",
                },
            )
            .await
        }
        "oidcc-rp-initiated-logout-no-post-logout-redirect-uri" => {
            rp_initiated(
                t,
                |_, r| r.post_logout_redirect_uri = None,
                Expect::LoggedOutPage {
                    why: "OP has incorrectly called the registered post_logout_redirect_uri when it wasn't in the request.",
                },
            )
            .await
        }
        "oidcc-rp-initiated-logout-only-state" => {
            rp_initiated(
                t,
                |_, r| {
                    r.id_token_hint = None;
                    r.post_logout_redirect_uri = None;
                },
                Expect::LoggedOutPage {
                    why: "OP has incorrectly called the registered post_logout_redirect_uri when it wasn't in the request.",
                },
            )
            .await
        }
        "oidcc-backchannel-rp-initiated-logout" => backchannel(t).await,
        other => Err(Halt::Skip(format!("unknown module {other}"))),
    }
}

// ---------------------------------------------------------------- discovery modules

/// `OIDCCRpInitiatedLogoutDiscoveryEndpointVerification` and
/// `OIDCCBackchannelLogoutDiscoveryEndpointVerification`.
async fn discovery(t: &mut T, backchannel: bool) -> Step<()> {
    let discovery_url = t.target.discovery_url.clone();
    let r = t
        .get("GetDynamicServerConfiguration", &discovery_url)
        .await?;
    let server = match r.json() {
        Some(v) if v.is_object() && r.status == 200 => v,
        _ => {
            return Err(t.stop(
                "GetDynamicServerConfiguration",
                format!("HTTP {}: not a JSON object", r.status),
            ));
        }
    };
    t.check(
        Sev::Failure,
        "CheckDiscEndpointAllEndpointsAreHttps",
        all_endpoints_https(&server),
    );
    if backchannel {
        t.check(
            Sev::Failure,
            "CheckDiscEndpointBackchannelLogoutSupported",
            must_be_true(&server, "backchannel_logout_supported"),
        );
        t.check(
            Sev::Failure,
            "CheckDiscEndpointBackchannelLogoutSessionSupported",
            must_be_true(&server, "backchannel_logout_session_supported"),
        );
    }
    t.check(
        Sev::Failure,
        "CheckDiscEndSessionEndpoint",
        https_url(&server, "end_session_endpoint"),
    );
    Ok(())
}

fn must_be_true(s: &Value, key: &str) -> Check {
    match &s[key] {
        Value::Bool(true) => Ok(()),
        Value::Null => Err(format!("{key} is missing")),
        other => Err(format!("{key} must be true, found {other}")),
    }
}

fn https_url(s: &Value, key: &str) -> Check {
    let v = s[key]
        .as_str()
        .ok_or_else(|| format!("{key} is missing or not a string"))?;
    let u = url::Url::parse(v).map_err(|e| format!("{key} is not a URL: {e}"))?;
    if u.scheme() != "https" {
        return Err(format!("{key} is not https: {v}"));
    }
    Ok(())
}

/// `CheckDiscEndpointAllEndpointsAreHttps`: every key ending in `_endpoint`.
fn all_endpoints_https(s: &Value) -> Check {
    let bad: Vec<String> = s
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.ends_with("_endpoint"))
        .filter(|(_, v)| {
            !v.as_str()
                .and_then(|u| url::Url::parse(u).ok())
                .is_some_and(|u| u.scheme() == "https")
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("endpoints that are not https: {}", bad.join(", ")))
    }
}

// ---------------------------------------------------------------- RP-initiated modules

/// `AbstractOIDCCRpInitiatedLogout`: login, end-session request changed by `customise`,
/// then what the module expects.
async fn rp_initiated(
    t: &mut T,
    customise: impl FnOnce(&T, &mut EndSession),
    expect: Expect,
) -> Step<()> {
    let (id_token, _) = login(t).await?;
    let mut request = end_session_request(t, &id_token);
    customise(t, &mut request);
    let nav = end_session(t, &request).await?;
    match expect {
        Expect::Redirect { state } => {
            let cb = expect_post_logout_redirect(t, nav)?;
            check_post_logout_redirect(t, &cb, &request, state);
            prompt_none_must_fail(t).await
        }
        Expect::NoRedirect { placeholder, why } => no_redirect(t, nav, placeholder, why),
        Expect::LoggedOutPage { why } => logged_out_page(t, nav, why).await,
    }
}

/// The first (normal) authorization and code exchange; returns the ID token.
async fn login(t: &mut T) -> Step<(Jwt, String)> {
    flow::configure(t).await?;
    let req = flow::create_authorization_request(t, STATE_LEN, Some(NONCE_LEN));
    let (_, tokens) = flow::standard_flow(t, &req, Drive::default()).await?;
    Ok((tokens.id_token, tokens.access_token))
}

/// `CreateRandomEndSessionState` + `CreateEndSessionEndpointRequest`.
fn end_session_request(t: &T, id_token: &Jwt) -> EndSession {
    EndSession {
        id_token_hint: Some(id_token.raw.clone()),
        post_logout_redirect_uri: Some(t.target.post_logout_redirect_uri()),
        state: Some(vschar_state()),
    }
}

/// `RFC6749AppendixASyntaxUtils.generateVSChar(50, 10, 30)` with `+` and space replaced by
/// `~`: printable ASCII, so the OP must carry characters like `"&<%#` through unharmed.
fn vschar_state() -> String {
    let mut bytes = [0u8; 80];
    aws_lc_rs::rand::fill(&mut bytes).expect("random bytes");
    let len = 50 + (bytes[0] as usize % 11);
    bytes[1..=len]
        .iter()
        .map(|b| {
            let c = (0x20 + (*b as u32 % 95)) as u8 as char;
            if c == '+' || c == ' ' { '~' } else { c }
        })
        .collect()
}

/// `BuildRedirectToEndSessionEndpoint` and the browser following it; a confirmation page
/// is confirmed as the person would.
async fn end_session(t: &mut T, request: &EndSession) -> Step<Nav> {
    let endpoint = t.server["end_session_endpoint"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let mut url = match url::Url::parse(&endpoint) {
        Ok(u) => u,
        Err(e) => {
            return Err(t.stop(
                "BuildRedirectToEndSessionEndpoint",
                format!("end_session_endpoint {endpoint:?}: {e}"),
            ));
        }
    };
    {
        let mut q = url.query_pairs_mut();
        if let Some(h) = &request.id_token_hint {
            q.append_pair("id_token_hint", h);
        }
        if let Some(p) = &request.post_logout_redirect_uri {
            q.append_pair("post_logout_redirect_uri", p);
        }
        if let Some(s) = &request.state {
            q.append_pair("state", s);
        }
    }
    let mut url = url.to_string();
    if url.ends_with('?') {
        url.pop();
    }
    let (nav, _) = flow::redirect(t, Start::Get(url), Person::Interacts).await?;
    confirm_if_asked(t, nav).await
}

/// If the OP shows its logout confirmation, the person confirms (submits the form with its
/// hidden fields and the "Sign out" button).
async fn confirm_if_asked(t: &mut T, nav: Nav) -> Step<Nav> {
    let Nav::Page { status, url, body } = &nav else {
        return Ok(nav);
    };
    if *status != 200 {
        return Ok(nav);
    }
    let forms = parse_forms(body);
    let Some(form) = forms.iter().find(|f| {
        resolve(url, &f.action)
            .ok()
            .and_then(|a| url::Url::parse(&a).ok())
            .is_some_and(|a| a.path().ends_with("/logout/confirm"))
    }) else {
        return Ok(nav);
    };
    let action = match resolve(url, &form.action) {
        Ok(a) => a,
        Err(e) => return Err(t.stop("logout confirmation", e)),
    };
    let mut fields: Vec<(String, String)> = form
        .inputs
        .iter()
        .filter(|i| i.kind == "hidden")
        .map(|i| (i.name.clone(), i.value.clone()))
        .collect();
    // The submit button the person clicks.
    match form
        .inputs
        .iter()
        .find(|i| i.kind == "submit" && i.name == "decision" && i.value == "logout")
    {
        Some(b) => fields.push((b.name.clone(), b.value.clone())),
        None => fields.push(("decision".into(), "logout".into())),
    }
    t.note("the OP asked the person to confirm signing out; the runner's browser confirmed (POST /logout/confirm, decision=logout)");
    let (next, _) = flow::redirect(t, Start::PostForm(action, fields), Person::Interacts).await?;
    Ok(next)
}

fn is_post_logout_redirect(t: &T, cb: &Callback) -> bool {
    let expected = t.target.post_logout_redirect_uri();
    let strip = |u: &str| u.split(['?', '#']).next().unwrap_or("").to_owned();
    strip(&cb.url) == strip(&expected)
}

fn expect_post_logout_redirect(t: &mut T, nav: Nav) -> Step<Callback> {
    match nav {
        Nav::Callback(cb) if is_post_logout_redirect(t, &cb) => Ok(cb),
        Nav::Callback(cb) => Err(t.stop(
            "post_logout_redirect",
            format!(
                "the OP sent the browser to {} instead of the post_logout_redirect_uri",
                cb.url
            ),
        )),
        Nav::Page { status, url, body } => Err(t.stop(
            "post_logout_redirect",
            format!(
                "the OP never sent the browser to the post_logout_redirect_uri; it showed a page (HTTP {status} at {url}): {}",
                flow::page_summary(&body)
            ),
        )),
    }
}

/// `CheckPostLogoutState` (or `CheckNoPostLogoutState`) and
/// `CheckForUnexpectedParametersInPostLogoutRedirect`.
fn check_post_logout_redirect(t: &mut T, cb: &Callback, request: &EndSession, with_state: bool) {
    let params = cb.query_map();
    if with_state {
        let expected = request.state.clone().unwrap_or_default();
        t.check(
            Sev::Failure,
            "CheckPostLogoutState",
            match params.get("state") {
                None => Err("state not present in query params passed to post logout redirect uri.".into()),
                Some(s) if *s != expected => Err(format!(
                    "state in query params passed to post logout redirect uri does not match state passed in the end_session request (actual {s:?}, expected {expected:?})"
                )),
                Some(_) => Ok(()),
            },
        );
    } else {
        t.check(
            Sev::Failure,
            "CheckNoPostLogoutState",
            match params.get("state") {
                Some(s) => Err(format!(
                    "state is present in query params passed to post logout redirect uri, although no state was sent: {s:?}"
                )),
                None => Ok(()),
            },
        );
    }
    t.check(
        Sev::Warning,
        "CheckForUnexpectedParametersInPostLogoutRedirect",
        unexpected(&params, &["state"], "post_logout_redirect", "in url query"),
    );
}

fn unexpected(
    params: &BTreeMap<String, String>,
    expected: &[&str],
    what: &str,
    place: &str,
) -> Check {
    let extra: Vec<&String> = params
        .keys()
        .filter(|k| !expected.contains(&k.as_str()))
        .collect();
    if extra.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{what} includes unexpected parameters {place}: {extra:?}"
        ))
    }
}

/// The second authorization, with prompt=none: an error needing a user interface proves
/// the session ended (`performGenericAuthorizationEndpointErrorResponseValidation` +
/// `CheckErrorFromAuthorizationEndpointIsOneThatRequiredAUserInterface`).
async fn prompt_none_must_fail(t: &mut T) -> Step<()> {
    t.block = "Second authorization: ".into();
    let mut req = flow::create_authorization_request(t, STATE_LEN, Some(NONCE_LEN));
    req.set("prompt", "none");
    let url = flow::authorization_url(t, &req, false);
    let (nav, _) = flow::redirect(t, Start::Get(url), Person::Absent).await?;
    let cb = match nav {
        Nav::Callback(cb) => cb,
        Nav::Page { status, body, .. } => {
            return Err(t.stop(
                "authorization endpoint",
                format!(
                    "with prompt=none the OP must redirect back with an error, but it showed a page (HTTP {status}): {}",
                    flow::page_summary(&body)
                ),
            ));
        }
    };
    let params = flow::process_callback(t, &cb)?;
    if params.contains_key("code") {
        t.note(
            "the prompt=none authorization after logout returned a code: the session was not ended",
        );
    }
    flow::generic_error_validation(t, &params, req.state.as_deref());
    t.check(
        Sev::Failure,
        "CheckErrorFromAuthorizationEndpointIsOneThatRequiredAUserInterface",
        checks::error_requires_user_interface(&params),
    );
    t.block.clear();
    Ok(())
}

/// Modules whose OP must not redirect: the suite fails on a call to post_logout_redirect and
/// otherwise asks for a screenshot of the error or confirmation page.
fn no_redirect(t: &mut T, nav: Nav, placeholder: &str, why: &str) -> Step<()> {
    match nav {
        Nav::Callback(cb) => {
            if is_post_logout_redirect(t, &cb) || cb.url.contains("/bad_post_logout_redirect_uri") {
                Err(t.stop(
                    "post_logout_redirect",
                    format!("{why} (browser sent to {})", cb.url),
                ))
            } else {
                Err(t.stop(
                    placeholder,
                    format!(
                        "the OP sent the browser to {} instead of showing a page",
                        cb.url
                    ),
                ))
            }
        }
        Nav::Page { status, body, .. } => {
            if is_login_page(&body) {
                return Err(t.stop(
                    placeholder,
                    "expected an error or logout confirmation page, but the OP showed its sign-in page".into(),
                ));
            }
            let kind = if t.notes.iter().any(|n| n.contains("confirm")) {
                "the person confirmed signing out; the OP then showed"
            } else if status >= 400 {
                "the OP showed an error page"
            } else {
                "the OP showed"
            };
            t.note(format!(
                "suite: screenshot placeholder ({placeholder}) → REVIEW; no redirect to the client — {kind}: HTTP {status}, \"{}\"",
                flow::page_summary(&body)
            ));
            Ok(())
        }
    }
}

/// Modules where the OP must log the person out and show a "logged out" page.
async fn logged_out_page(t: &mut T, nav: Nav, why: &str) -> Step<()> {
    let (status, body) = match nav {
        Nav::Callback(cb) => {
            return Err(t.stop(
                "post_logout_redirect",
                format!("{why} (browser sent to {})", cb.url),
            ));
        }
        Nav::Page { status, body, .. } => (status, body),
    };
    if is_login_page(&body) || status >= 400 {
        return Err(t.stop(
            "ExpectSuccessfulLogoutPage",
            format!(
                "expected a \"logged out\" page, got HTTP {status}: {}",
                flow::page_summary(&body)
            ),
        ));
    }
    // What the screenshot shows must be true: the session has ended. The runner asks the OP
    // with prompt=none (the same check the redirect modules make).
    let mut req = flow::create_authorization_request(t, STATE_LEN, Some(NONCE_LEN));
    req.set("prompt", "none");
    let url = flow::authorization_url(t, &req, false);
    let (after, _) = flow::redirect(t, Start::Get(url), Person::Absent).await?;
    let ended = match &after {
        Nav::Callback(cb) => {
            let q = cb.query_map();
            checks::error_requires_user_interface(&q).is_ok() && !q.contains_key("code")
        }
        Nav::Page { .. } => false,
    };
    if !ended {
        return Err(t.stop(
            "ExpectSuccessfulLogoutPage",
            "the OP showed a page but the person is still signed in (a prompt=none authorization did not fail with login_required)".into(),
        ));
    }
    t.note(format!(
        "suite: screenshot placeholder (ExpectSuccessfulLogoutPage) → REVIEW; the runner saw HTTP {status} \"{}\" (heading \"{}\") and a prompt=none authorization afterwards failed (session ended)",
        flow::page_summary(&body),
        heading(&body)
    ));
    Ok(())
}

/// The page's first `<h1>`, for notes.
fn heading(body: &str) -> String {
    let Some(start) = body.find("<h1") else {
        return String::new();
    };
    let rest = &body[start..];
    let Some(open) = rest.find('>') else {
        return String::new();
    };
    let rest = &rest[open + 1..];
    let end = rest.find("</h1>").unwrap_or(rest.len());
    super::browser::unescape_html(rest[..end].trim())
}

/// ChangeIdTokenToAlgNone
fn alg_none(jwt: &Jwt) -> String {
    let mut header = jwt.header.clone();
    header["alg"] = json!("none");
    format!(
        "{}.{}.",
        jose::b64url(header.to_string().as_bytes()),
        jose::b64url(jwt.claims.to_string().as_bytes())
    )
}

/// SignFakeIdToken: RS256 with a key the suite generated (not the OP's).
fn sign_with_suite_key(claims: &Value) -> String {
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "conformance-suite-client-key"});
    let input = format!(
        "{}.{}",
        jose::b64url(header.to_string().as_bytes()),
        jose::b64url(claims.to_string().as_bytes())
    );
    let mut sig = vec![0u8; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .expect("RS256 signature");
    format!("{input}.{}", jose::b64url(&sig))
}

// ---------------------------------------------------------------- back-channel module

/// One request the listener received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    content_type: Option<String>,
    form: Vec<(String, String)>,
}

/// The client's `backchannel_logout_uri`: a listener on loopback that records every request
/// and answers 200 with `Cache-Control: no-store`, as the suite's endpoint does.
async fn start_listener(
    base_path: &str,
) -> Result<
    (
        String,
        mpsc::UnboundedReceiver<Received>,
        tokio::task::JoinHandle<()>,
    ),
    String,
> {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, Uri};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(Received {
                    method: method.to_string(),
                    path: uri.path().to_owned(),
                    content_type: headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                    form: form_urlencoded::parse(&body).into_owned().collect(),
                });
                ([("cache-control", "no-store")], "")
            }
        },
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((
        format!("http://{addr}{base_path}/backchannel_logout"),
        rx,
        task,
    ))
}

/// `oidcc-backchannel-rp-initiated-logout` (`OIDCCBackChannelRpInitiatedLogout`).
async fn backchannel(t: &mut T) -> Step<()> {
    let base_path = url::Url::parse(&t.target.redirect_base())
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    let (uri, mut rx, task) = match start_listener(&base_path).await {
        Ok(x) => x,
        Err(e) => return Err(t.stop("CreateBackchannelLogoutUri", e)),
    };
    let result = backchannel_inner(t, &uri, &mut rx).await;
    task.abort();
    result
}

async fn backchannel_inner(
    t: &mut T,
    uri: &str,
    rx: &mut mpsc::UnboundedReceiver<Received>,
) -> Step<()> {
    // CreateBackchannelLogoutUri; the tester registers it on the static client.
    t.client = match t.target.register_backchannel_client(uri).await {
        Ok(c) => c,
        Err(e) => {
            return Err(Halt::Skip(format!(
                "no client with the runner's backchannel_logout_uri: {e}"
            )));
        }
    };
    t.note(format!(
        "backchannel_logout_uri is the runner's listener {uri} (plain http on loopback, which Tessera allows; the suite's is https under the test base)"
    ));
    let (id_token, _) = login(t).await?;
    let request = end_session_request(t, &id_token);
    let nav = end_session(t, &request).await?;
    let cb = expect_post_logout_redirect(t, nav)?;
    // The suite waits for both the redirect and the back-channel request, in any order.
    let received = match tokio::time::timeout(BACKCHANNEL_WAIT, rx.recv()).await {
        Ok(Some(r)) => r,
        _ => {
            return Err(t.stop(
                "backchannel_logout",
                format!(
                    "the OP did not call the backchannel_logout_uri within {}s of the post-logout redirect",
                    BACKCHANNEL_WAIT.as_secs()
                ),
            ));
        }
    };

    // Verify backchannel logout request
    t.note("EnsureIncomingTls12WithSecureCipherOrTls13 (WARNING) not evaluated: the runner's listener is plain http on loopback");
    if received.method != "POST" {
        t.check(
            Sev::Failure,
            "ExtractLogoutTokenFromBackchannelLogoutRequest",
            Err(format!(
                "the back-channel request was a {}, not a POST",
                received.method
            )),
        );
    }
    let form: BTreeMap<String, String> = received.form.iter().cloned().collect();
    let token = match form.get("logout_token") {
        Some(tok) if !tok.is_empty() => tok.clone(),
        _ => {
            return Err(t.stop(
                "ExtractLogoutTokenFromBackchannelLogoutRequest",
                format!(
                    "no logout_token in the form body (content-type {:?}, path {})",
                    received.content_type, received.path
                ),
            ));
        }
    };
    let logout = match jose::parse(&token) {
        Ok(j) => j,
        Err(e) => return Err(t.stop("ExtractLogoutTokenFromBackchannelLogoutRequest", e)),
    };
    t.check(
        Sev::Failure,
        "CheckForUnexpectedParametersInBackchannelLogoutRequest",
        unexpected(
            &form,
            &["logout_token"],
            "backchannel_logout_request",
            "in the body",
        ),
    );
    let jwks = t.jwks.clone();
    t.check(
        Sev::Failure,
        "ValidateLogoutTokenSignature",
        checks::id_token_signature(&logout, &jwks)
            .map_err(|e| e.replace("ID token", "logout token")),
    );
    let issuer = t.server["issuer"].as_str().unwrap_or("").to_owned();
    let client_id = t.client.id.clone();
    t.check(
        Sev::Failure,
        "ValidateLogoutTokenClaims",
        logout_token_claims(&logout.claims, &issuer, &client_id),
    );
    if let Some(sub) = logout.claims.get("sub") {
        t.check(
            Sev::Failure,
            "CheckIdTokenSubMatchesLogoutToken",
            same_claim(&id_token.claims, sub, "sub"),
        );
    }
    if let Some(sid) = logout.claims.get("sid") {
        t.check(
            Sev::Failure,
            "CheckIdTokenSidMatchesLogoutToken",
            same_claim(&id_token.claims, sid, "sid"),
        );
    }
    t.check(
        Sev::Failure,
        "CheckLogoutTokenNoNonce",
        match logout.claims.get("nonce") {
            Some(n) => Err(format!("the logout token contains a nonce: {n}")),
            None => Ok(()),
        },
    );
    t.check(
        Sev::Failure,
        "CheckLogoutTokenHasSubOrSid",
        if logout.claims.get("sub").is_some() || logout.claims.get("sid").is_some() {
            Ok(())
        } else {
            Err("the logout token has neither sub nor sid".into())
        },
    );
    t.note(format!(
        "logout token header {}; claims {}",
        logout.header, logout.claims
    ));

    // Verify frontchannel post logout redirect
    check_post_logout_redirect(t, &cb, &request, true);
    // Only one back-channel request is expected for one session.
    if let Ok(extra) = rx.try_recv() {
        t.note(format!(
            "the OP made another back-channel request ({} {})",
            extra.method, extra.path
        ));
    }
    prompt_none_must_fail(t).await
}

/// `ValidateLogoutTokenClaims`: iss, aud, iat (not in the future beyond 5 minutes' skew),
/// jti, and events with exactly the back-channel logout member, an empty object.
fn logout_token_claims(c: &Value, issuer: &str, client_id: &str) -> Check {
    match c["iss"].as_str() {
        None => return Err("Missing 'iss'".into()),
        Some(i) if i != issuer => {
            return Err(format!("Issuer mismatch (expected {issuer}, actual {i})"));
        }
        _ => {}
    }
    match &c["aud"] {
        Value::Null => return Err("Missing audience".into()),
        Value::Array(a) => {
            if !a.iter().any(|v| v.as_str() == Some(client_id)) {
                return Err(format!(
                    "Audience not found (expected {client_id}, actual {c})",
                    c = c["aud"]
                ));
            }
        }
        v => {
            if v.as_str() != Some(client_id) {
                return Err(format!(
                    "Audience mismatch (expected {client_id}, actual {v})"
                ));
            }
        }
    }
    match c["iat"].as_i64() {
        None => return Err("Missing issuance time".into()),
        Some(iat) if iat > checks::now() + checks::SKEW_SECS => {
            return Err(format!("Token issued in the future (iat {iat})"));
        }
        _ => {}
    }
    if c["jti"].as_str().is_none() {
        return Err("jti missing".into());
    }
    let events = c["events"]
        .as_object()
        .ok_or("'events' claim is not a json object")?;
    if events.len() != 1 {
        return Err(format!(
            "'events' object does not contain exactly 1 entry: {}",
            c["events"]
        ));
    }
    match events.get(EVENT).and_then(Value::as_object) {
        None => Err(format!("{EVENT} is not an object")),
        Some(o) if !o.is_empty() => Err(format!("{EVENT} is not an empty object")),
        Some(_) => Ok(()),
    }
}

fn same_claim(id_token: &Value, logout_value: &Value, name: &str) -> Check {
    if id_token.get(name) == Some(logout_value) {
        Ok(())
    } else {
        Err(format!(
            "{name} in the logout token ({logout_value}) does not match the id_token's ({})",
            id_token.get(name).cloned().unwrap_or(Value::Null)
        ))
    }
}

//! The Basic OP plan (`OIDCCBasicTestPlan`) and, with `response_mode=form_post`, the Form
//! Post OP plan (`OIDCCFormPostBasicTestPlan`): every module that applies to static clients,
//! in the suite's order.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::Outcome;
use super::browser::{Nav, Person, Start, is_login_page};
use super::checks;
use super::flow::{self, AuthRequest, ClientAuth, Drive, Halt, Sev, Step, T, UserInfoCall};
use super::jose::{self, Jwt};
use super::target::Target;

/// `OIDCCBasicTestPlan.testModulesWithVariants()` without the three modules that are
/// `@VariantNotApplicable(ClientRegistration = static_client)`. `oidcc-alternate-happy-flow`
/// is the current suite's name for what older versions called
/// `oidcc-ensure-other-scope-order-succeeds` (scope order reversed; now parameters too).
pub const MODULES: &[&str] = &[
    "oidcc-server",
    "oidcc-response-type-missing",
    "oidcc-userinfo-get",
    "oidcc-userinfo-post-header",
    "oidcc-userinfo-post-body",
    "oidcc-ensure-request-without-nonce-succeeds-for-code-flow",
    "oidcc-scope-profile",
    "oidcc-scope-email",
    "oidcc-scope-address",
    "oidcc-scope-phone",
    "oidcc-scope-all",
    "oidcc-alternate-happy-flow",
    "oidcc-display-page",
    "oidcc-display-popup",
    "oidcc-prompt-login",
    "oidcc-prompt-none-not-logged-in",
    "oidcc-prompt-none-logged-in",
    "oidcc-max-age-1",
    "oidcc-max-age-10000",
    "oidcc-ensure-request-with-unknown-parameter-succeeds",
    "oidcc-id-token-hint",
    "oidcc-login-hint",
    "oidcc-ui-locales",
    "oidcc-claims-locales",
    "oidcc-ensure-request-with-acr-values-succeeds",
    "oidcc-codereuse",
    "oidcc-codereuse-30seconds",
    "oidcc-ensure-registered-redirect-uri",
    "oidcc-ensure-post-request-succeeds",
    "oidcc-server-client-secret-post",
    "oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported",
    "oidcc-claims-essential",
    "oidcc-ensure-request-object-with-redirect-uri",
    "oidcc-refresh-token",
    "oidcc-ensure-request-with-valid-pkce-succeeds",
];

const STATE_LEN: usize = 10;
const NONCE_LEN: usize = 10;

pub async fn run(target: &Arc<Target>, module: &str, form_post: bool) -> (Outcome, Vec<String>) {
    let mut t = T::new(target, form_post);
    if module == "oidcc-server-client-secret-post" {
        // OIDCCServerTestClientSecretPost copies the `client_secret_post` client into `client`.
        t.client = target.client_post.clone();
        t.client_auth = ClientAuth::Post;
    }
    let halt = dispatch(&mut t, module).await.err();
    t.outcome(halt)
}

async fn dispatch(t: &mut T, module: &str) -> Step<()> {
    match module {
        "oidcc-server" => server(t).await,
        "oidcc-response-type-missing" => response_type_missing(t).await,
        "oidcc-userinfo-get" => userinfo(t, UserInfoCall::Get).await,
        "oidcc-userinfo-post-header" => userinfo(t, UserInfoCall::PostHeader).await,
        "oidcc-userinfo-post-body" => userinfo(t, UserInfoCall::PostBody).await,
        "oidcc-ensure-request-without-nonce-succeeds-for-code-flow" => without_nonce(t).await,
        "oidcc-scope-profile" => scope(t, "openid profile", false, false).await,
        "oidcc-scope-email" => scope(t, "openid email", true, false).await,
        "oidcc-scope-address" => scope(t, "openid address", false, false).await,
        "oidcc-scope-phone" => scope(t, "openid phone", false, false).await,
        "oidcc-scope-all" => scope(t, "openid email phone address profile", false, false).await,
        "oidcc-alternate-happy-flow" => scope(t, "openid email", true, true).await,
        "oidcc-display-page" => with_params(t, &[("display", "page")]).await,
        "oidcc-display-popup" => with_params(t, &[("display", "popup")]).await,
        "oidcc-prompt-login" => prompt_login(t).await,
        "oidcc-prompt-none-not-logged-in" => prompt_none_not_logged_in(t).await,
        "oidcc-prompt-none-logged-in" => same_auth_twice(t, SecondAuth::PromptNone).await,
        "oidcc-max-age-1" => max_age_1(t).await,
        "oidcc-max-age-10000" => same_auth_twice(t, SecondAuth::MaxAge10000).await,
        "oidcc-ensure-request-with-unknown-parameter-succeeds" => {
            with_params(t, &[("extra", "foobar")]).await
        }
        "oidcc-id-token-hint" => same_auth_twice(t, SecondAuth::IdTokenHint).await,
        "oidcc-login-hint" => login_hint(t).await,
        "oidcc-ui-locales" => with_params(t, &[("ui_locales", "se")]).await,
        "oidcc-claims-locales" => with_params(t, &[("claims_locales", "se")]).await,
        "oidcc-ensure-request-with-acr-values-succeeds" => acr_values(t).await,
        "oidcc-codereuse" => code_reuse(t, false).await,
        "oidcc-codereuse-30seconds" => code_reuse(t, true).await,
        "oidcc-ensure-registered-redirect-uri" => registered_redirect_uri(t).await,
        "oidcc-ensure-post-request-succeeds" => post_request(t).await,
        "oidcc-server-client-secret-post" => happy(t).await,
        "oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported" => {
            unsigned_request_object(t).await
        }
        "oidcc-claims-essential" => claims_essential(t).await,
        "oidcc-ensure-request-object-with-redirect-uri" => request_object_redirect_uri(t).await,
        "oidcc-refresh-token" => refresh_token(t).await,
        "oidcc-ensure-request-with-valid-pkce-succeeds" => pkce(t).await,
        other => Err(Halt::Skip(format!("unknown module {other}"))),
    }
}

fn new_request(t: &T) -> AuthRequest {
    flow::create_authorization_request(t, STATE_LEN, Some(NONCE_LEN))
}

/// `AbstractOIDCCServerTest` unchanged (e.g. `oidcc-server-client-secret-post`).
async fn happy(t: &mut T) -> Step<()> {
    flow::configure(t).await?;
    let req = new_request(t);
    flow::standard_flow(t, &req, Drive::default()).await?;
    Ok(())
}

/// The shared flow with extra authorization request parameters (display, locales, …).
async fn with_params(t: &mut T, extra: &[(&str, &str)]) -> Step<()> {
    flow::configure(t).await?;
    let mut req = new_request(t);
    for (k, v) in extra {
        req.set(k, v);
    }
    flow::standard_flow(t, &req, Drive::default()).await?;
    Ok(())
}

/// `oidcc-server` (`OIDCCServerTest`)
async fn server(t: &mut T) -> Step<()> {
    flow::configure(t).await?;
    let req = new_request(t);
    let extra = |t: &mut T, id: &Jwt| {
        t.check(
            Sev::Warning,
            "EnsureIdTokenDoesNotContainName",
            checks::id_token_has_no_name(id),
        );
    };
    let drive = Drive {
        code_checks: true,
        id_token_extra: Some(&extra),
        ..Drive::default()
    };
    let authorized = flow::authorize(t, &req, drive).await?;
    let tokens = flow::exchange_code(t, &authorized.code, &req, drive.id_token_extra).await?;
    // performTokenEndpointIdTokenValidation: at_hash / c_hash optional, correct if present.
    if let Some(r) = checks::hash_claim(&tokens.id_token, "at_hash", &tokens.access_token) {
        t.check(Sev::Failure, "ValidateAtHash", r);
    }
    if let Some(r) = checks::hash_claim(&tokens.id_token, "c_hash", &authorized.code) {
        t.check(Sev::Failure, "ValidateCHash", r);
    }
    flow::request_protected_resource(t, &tokens.access_token).await?;
    Ok(())
}

/// `oidcc-response-type-missing`: an error redirect (invalid_request or
/// unsupported_response_type) or an error page (the suite asks for a screenshot: REVIEW).
async fn response_type_missing(t: &mut T) -> Step<()> {
    flow::configure(t).await?;
    let mut req = new_request(t);
    req.remove("response_type");
    let url = flow::authorization_url(t, &req, false);
    // The tester would sign in if asked; the error may come after that.
    let (nav, _) = flow::redirect(t, Start::Get(url), Person::Interacts).await?;
    match nav {
        Nav::Callback(cb) => {
            let params = flow::process_callback(t, &cb)?;
            flow::generic_error_validation(t, &params, req.state.as_deref());
            t.check(
                Sev::Failure,
                "CheckErrorFromAuthorizationEndpointErrorInvalidRequestOrUnsupportedResponseType",
                checks::error_invalid_request_or_unsupported_response_type(&params),
            );
            t.note(format!(
                "Tessera chose the error redirect (error={}) over an error page",
                params.get("error").map(String::as_str).unwrap_or("?")
            ));
            Ok(())
        }
        Nav::Page { status, body, .. } => error_page(
            t,
            "ExpectResponseTypeMissingErrorPage",
            status,
            &body,
            "an error saying the response type is missing",
        ),
    }
}

/// A module that accepts an error page where the suite would ask for a screenshot (REVIEW):
/// the runner checks that it is an error page, not the sign-in page or a success.
fn error_page(t: &mut T, placeholder: &str, status: u16, body: &str, expected: &str) -> Step<()> {
    if is_login_page(body) {
        return Err(t.stop(
            placeholder,
            format!("expected {expected}, but the OP showed its sign-in page"),
        ));
    }
    if status < 400 {
        return Err(t.stop(
            placeholder,
            format!(
                "expected {expected}, got HTTP {status}: {}",
                flow::page_summary(body)
            ),
        ));
    }
    t.note(format!(
        "suite: screenshot placeholder ({placeholder}) → REVIEW; the runner saw an error page instead of a redirect: HTTP {status}, \"{}\"",
        flow::page_summary(body)
    ));
    Ok(())
}

/// `oidcc-userinfo-get`, `-post-header`, `-post-body` (`AbstractOIDCCUserInfoTest`)
async fn userinfo(t: &mut T, how: UserInfoCall) -> Step<()> {
    flow::configure(t).await?;
    let req = new_request(t);
    let (_, tokens) = flow::standard_flow(t, &req, Drive::default()).await?;
    let r = flow::call_userinfo(t, &tokens.access_token, how).await?;
    if how == UserInfoCall::PostBody {
        if !(200..300).contains(&r.status) {
            t.check(
                Sev::Warning,
                "UserInfoEndpointWithAccessTokenInBodyNotSupported",
                Err(format!(
                    "the userinfo endpoint returned HTTP {} for an access token in the body",
                    r.status
                )),
            );
            return Ok(());
        }
    } else {
        t.check(
            Sev::Failure,
            "EnsureHttpStatusCodeIs200",
            if r.status == 200 {
                Ok(())
            } else {
                Err(format!("userinfo returned HTTP {}", r.status))
            },
        );
    }
    t.check(
        Sev::Failure,
        "EnsureContentTypeJson",
        checks::content_type_json(r.header("content-type")),
    );
    let info = flow::extract_userinfo(t, &r)?;
    flow::validate_userinfo(t, &info);
    Ok(())
}

/// `oidcc-ensure-request-without-nonce-succeeds-for-code-flow`: ends at the code.
async fn without_nonce(t: &mut T) -> Step<()> {
    flow::configure(t).await?;
    let req = flow::create_authorization_request(t, STATE_LEN, None);
    flow::authorize(t, &req, Drive::default()).await?;
    Ok(())
}

/// The scope modules (`AbstractOIDCCReturnedClaimsServerTest`), `oidcc-scope-email` and
/// `oidcc-alternate-happy-flow` (reversed scope, parameters in reverse alphabetical order).
async fn scope(t: &mut T, scope: &str, email: bool, alternate: bool) -> Step<()> {
    flow::configure(t).await?;
    t.scope = scope.to_owned();
    flow::skip_if_scopes_not_supported(t)?;
    let mut req = new_request(t);
    if alternate {
        // ReverseScopeOrderInAuthorizationEndpointRequest
        let reversed: Vec<&str> = scope.split(' ').rev().collect();
        req.set("scope", &reversed.join(" "));
    }
    let extra = |t: &mut T, id: &Jwt| {
        t.check(
            Sev::Warning,
            "EnsureIdTokenDoesNotContainName",
            checks::id_token_has_no_name(id),
        );
        t.check(
            Sev::Warning,
            "EnsureIdTokenDoesNotContainEmailForScopeEmail",
            checks::id_token_has_no_email(id),
        );
    };
    let drive = Drive {
        reorder: alternate,
        id_token_extra: if email { Some(&extra) } else { None },
        ..Drive::default()
    };
    let (_, tokens) = flow::standard_flow(t, &req, drive).await?;
    let r = flow::call_userinfo(t, &tokens.access_token, UserInfoCall::Get).await?;
    let info = flow::extract_userinfo(t, &r)?;
    validate_returned_claims(t, &info, req.get("scope").unwrap_or(scope));
    if email {
        t.check(
            Sev::Warning,
            "EnsureUserInfoDoesNotContainName",
            checks::userinfo_has_no_name(&info),
        );
    }
    Ok(())
}

/// `AbstractOIDCCReturnedClaimsServerTest.validateUserInfoResponse`
fn validate_returned_claims(t: &mut T, info: &Value, requested_scope: &str) {
    t.check(
        Sev::Failure,
        "ValidateUserInfoStandardClaims",
        checks::standard_claims(info),
    );
    t.check(
        Sev::Failure,
        "EnsureUserInfoContainsSub",
        checks::userinfo_contains_sub(info),
    );
    t.check(
        Sev::Failure,
        "EnsureUserInfoBirthDateValid",
        checks::birthdate_valid(info),
    );
    t.check(
        Sev::Failure,
        "EnsureUserInfoUpdatedAtValid",
        checks::updated_at_valid(info),
    );
    t.check(
        Sev::Failure,
        "EnsureMemberValuesInClaimNameReferenceToMemberNamesInClaimSources",
        checks::claim_names_reference_sources(info),
    );
    t.check(
        Sev::Warning,
        "VerifyScopesReturnedInUserInfoClaims",
        checks::scopes_returned_in_claims(info, requested_scope),
    );
}

/// `oidcc-prompt-login`: a second authorization, a second later, with prompt=login must ask
/// the user to sign in again (the suite's screenshot) and give a later auth_time.
async fn prompt_login(t: &mut T) -> Step<()> {
    flow::configure(t).await?;
    let req = new_request(t);
    let (_, first) = flow::standard_flow(t, &req, Drive::default()).await?;
    t.block = "Second authorization: ".into();
    tokio::time::sleep(Duration::from_secs(1)).await; // WaitForOneSecond
    let mut req2 = new_request(t);
    req2.set("prompt", "login");
    let (authorized, second) = flow::standard_flow(t, &req2, Drive::default()).await?;
    expect_second_login_page(t, authorized.interactions.login_pages)?;
    t.check(
        Sev::Failure,
        "CheckSecondIdTokenAuthTimeIsLaterIfPresent",
        checks::second_auth_time_later(&first.id_token, &second.id_token, "prompt=login"),
    );
    Ok(())
}

/// `ExpectSecondLoginPage`: the suite asks the tester for a screenshot of the second sign-in
/// (REVIEW). The runner checks that the OP did show its sign-in form.
fn expect_second_login_page(t: &mut T, login_pages: u32) -> Step<()> {
    if login_pages == 0 {
        return Err(t.stop(
            "ExpectSecondLoginPage",
            "the OP did not ask the user to sign in again; it returned to the client at once"
                .into(),
        ));
    }
    t.note("suite: screenshot of the second sign-in (ExpectSecondLoginPage) → REVIEW; the runner saw the OP ask for the password again and signed in");
    Ok(())
}

/// `oidcc-prompt-none-not-logged-in`: no session, prompt=none, 128-character state: an error
/// redirect that requires a user interface.
async fn prompt_none_not_logged_in(t: &mut T) -> Step<()> {
    flow::configure(t).await?;
    let mut req = flow::create_authorization_request(t, 128, Some(NONCE_LEN));
    req.set("prompt", "none");
    let url = flow::authorization_url(t, &req, false);
    t.browser.clear_cookies();
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
    flow::generic_error_validation(t, &params, req.state.as_deref());
    t.check(
        Sev::Failure,
        "CheckErrorFromAuthorizationEndpointIsOneThatRequiredAUserInterface",
        checks::error_requires_user_interface(&params),
    );
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SecondAuth {
    PromptNone,
    IdTokenHint,
    MaxAge10000,
}

/// `AbstractOIDCCSameAuthTwiceServerTest`: `oidcc-prompt-none-logged-in`,
/// `oidcc-id-token-hint`, `oidcc-max-age-10000`. The second authorization must complete
/// without the user (the suite's browser would wait for a callback that never comes).
async fn same_auth_twice(t: &mut T, second: SecondAuth) -> Step<()> {
    flow::configure(t).await?;
    let mut req = new_request(t);
    if second == SecondAuth::MaxAge10000 {
        req.set("max_age", "15000");
    }
    let (_, first) = flow::standard_flow(t, &req, Drive::default()).await?;
    if second == SecondAuth::MaxAge10000 {
        t.check(
            Sev::Failure,
            "CheckIdTokenAuthTimeClaimPresentDueToMaxAge",
            checks::auth_time_present_due_to_max_age(&first.id_token),
        );
    }
    t.block = "Second authorization: ".into();
    let mut req2 = new_request(t);
    match second {
        SecondAuth::PromptNone => req2.set("prompt", "none"),
        SecondAuth::IdTokenHint => {
            req2.set("prompt", "none");
            req2.set("id_token_hint", &first.id_token.raw);
        }
        SecondAuth::MaxAge10000 => req2.set("max_age", "10000"),
    }
    let drive = Drive {
        person: Person::Absent,
        ..Drive::default()
    };
    let (_, second_tokens) = flow::standard_flow(t, &req2, drive).await?;
    if second == SecondAuth::MaxAge10000 {
        t.check(
            Sev::Failure,
            "CheckIdTokenAuthTimeClaimPresentDueToMaxAge",
            checks::auth_time_present_due_to_max_age(&second_tokens.id_token),
        );
    }
    t.check(
        Sev::Failure,
        "CheckIdTokenAuthTimeClaimsSameIfPresent",
        checks::auth_time_same(&first.id_token, &second_tokens.id_token),
    );
    t.check(
        Sev::Failure,
        "CheckIdTokenSubConsistentForSecondAuthorization",
        checks::sub_consistent(&first.id_token, &second_tokens.id_token),
    );
    Ok(())
}

/// `oidcc-max-age-1`: wait 2 s, then max_age=1 must make the user sign in again.
async fn max_age_1(t: &mut T) -> Step<()> {
    flow::configure(t).await?;
    let req = new_request(t);
    let (_, first) = flow::standard_flow(t, &req, Drive::default()).await?;
    t.block = "Second authorization: ".into();
    tokio::time::sleep(Duration::from_secs(2)).await; // WaitFor2Seconds
    let mut req2 = new_request(t);
    req2.set("max_age", "1");
    let first_id = first.id_token.clone();
    let extra = move |t: &mut T, id: &Jwt| {
        t.check(
            Sev::Failure,
            "CheckIdTokenAuthTimeClaimPresentDueToMaxAge",
            checks::auth_time_present_due_to_max_age(id),
        );
        t.check(
            Sev::Failure,
            "CheckSecondIdTokenAuthTimeIsLaterIfPresent",
            checks::second_auth_time_later(&first_id, id, "max_age=1"),
        );
        t.check(
            Sev::Failure,
            "CheckIdTokenAuthTimeIsRecentIfPresent",
            checks::auth_time_recent(id),
        );
    };
    let drive = Drive {
        id_token_extra: Some(&extra),
        ..Drive::default()
    };
    let (authorized, _) = flow::standard_flow(t, &req2, drive).await?;
    expect_second_login_page(t, authorized.interactions.login_pages)?;
    Ok(())
}

/// `oidcc-login-hint`: login_hint is the suite's `server.login_hint` setting, which a
/// tester sets to the test account's email.
async fn login_hint(t: &mut T) -> Step<()> {
    let hint = t.target.account.email.clone();
    with_params(t, &[("login_hint", &hint)]).await
}

/// `oidcc-ensure-request-with-acr-values-succeeds`: acr_values from acr_values_supported
/// (else "1 2"); an acr claim with one of them is expected (WARNING otherwise).
async fn acr_values(t: &mut T) -> Step<()> {
    flow::configure(t).await?;
    let acr_values = match t.server["acr_values_supported"].as_array() {
        Some(a) if !a.is_empty() => a
            .iter()
            .filter_map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => "1 2".to_owned(),
    };
    let mut req = new_request(t);
    req.set("acr_values", &acr_values);
    let requested = acr_values.clone();
    let extra = move |t: &mut T, id: &Jwt| {
        t.check(
            Sev::Warning,
            "ValidateIdTokenACRClaimAgainstAcrValuesRequest",
            checks::acr_against_acr_values(id, &requested),
        );
    };
    let drive = Drive {
        id_token_extra: Some(&extra),
        ..Drive::default()
    };
    flow::standard_flow(t, &req, drive).await?;
    Ok(())
}

/// `oidcc-codereuse` and `oidcc-codereuse-30seconds` (`AbstractOIDCCAuthCodeReuse`).
async fn code_reuse(t: &mut T, after_30s: bool) -> Step<()> {
    flow::configure(t).await?;
    let req = new_request(t);
    let (_, tokens) = flow::standard_flow(t, &req, Drive::default()).await?;
    if after_30s {
        tokio::time::sleep(Duration::from_secs(30)).await; // WaitFor30Seconds
    }
    t.block = "Attempting reuse of authorization code: ".into();
    let client = t.client.clone();
    let auth = t.client_auth;
    let r = flow::call_token_endpoint(
        t,
        "CallTokenEndpointAndReturnFullResponse",
        tokens.code_grant_form.clone(),
        &client,
        auth,
    )
    .await?;
    if !after_30s && r.status == 200 {
        t.check(
            Sev::Warning,
            "ServerAllowedReusingAuthorisationCode",
            Err("the token endpoint accepted the same authorization code a second time".into()),
        );
        return Ok(());
    }
    token_error_checks(t, &r);
    if after_30s {
        // CallProtectedResourceWithBearerTokenExpectingError (WARNING): RFC 6749 §4.1.2
        // says the tokens issued from a reused code SHOULD be revoked.
        let endpoint = flow::userinfo_endpoint(t)?;
        let res = t
            .http
            .get(&endpoint)
            .bearer_auth(&tokens.access_token)
            .send()
            .await;
        let res = t
            .finish("CallProtectedResourceWithBearerTokenExpectingError", res)
            .await?;
        let verdict = if (400..500).contains(&res.status) {
            Ok(())
        } else {
            match res.json() {
                Some(v) if v["error"].as_str().is_some_and(|e| !e.is_empty()) => Ok(()),
                _ => Err(format!(
                    "No error from resource endpoint: the access token issued for the reused code still works (HTTP {})",
                    res.status
                )),
            }
        };
        t.check(
            Sev::Warning,
            "CallProtectedResourceWithBearerTokenExpectingError",
            verdict,
        );
    }
    Ok(())
}

/// `AbstractOIDCCAuthCodeReuse.checkResponse`
fn token_error_checks(t: &mut T, r: &flow::Resp) {
    let body = r.json().unwrap_or(Value::Null);
    t.check(
        Sev::Failure,
        "CheckTokenEndpointHttpStatus400",
        if r.status == 400 {
            Ok(())
        } else {
            Err(format!("expected HTTP 400, got {}", r.status))
        },
    );
    t.check(
        Sev::Failure,
        "CheckTokenEndpointReturnedJsonContentType",
        checks::content_type_json(r.header("content-type")),
    );
    t.check(
        Sev::Failure,
        "CheckErrorFromTokenEndpointResponseErrorInvalidGrant",
        checks::token_error_is_invalid_grant(&body),
    );
    t.check(
        Sev::Failure,
        "ValidateErrorFromTokenEndpointResponseError",
        checks::token_error_valid(&body),
    );
    t.check(
        Sev::Warning,
        "CheckErrorDescriptionFromTokenEndpointResponseErrorContainsCRLFTAB",
        checks::token_error_description_no_crlftab(&body),
    );
    t.check(
        Sev::Failure,
        "ValidateErrorDescriptionFromTokenEndpointResponseError",
        checks::token_error_description_chars(&body),
    );
    t.check(
        Sev::Failure,
        "ValidateErrorUriFromTokenEndpointResponseError",
        checks::error_uri_valid(body["error_uri"].as_str()),
    );
}

/// `oidcc-ensure-registered-redirect-uri`: an unregistered redirect_uri must give an error
/// page (the suite's screenshot, REVIEW), never a redirect.
async fn registered_redirect_uri(t: &mut T) -> Step<()> {
    flow::configure(t).await?;
    // CreateBadRedirectUri: base_url + "/" + 10 random alphanumerics.
    t.redirect_uri = format!("{}/{}", t.target.redirect_base(), flow::random_alnum(10));
    let req = new_request(t);
    let url = flow::authorization_url(t, &req, false);
    let (nav, _) = flow::redirect(t, Start::Get(url), Person::Interacts).await?;
    match nav {
        Nav::Callback(cb) => Err(t.stop(
            "ExpectRedirectUriErrorPage",
            format!(
                "the OP redirected to {} although the redirect_uri is not registered",
                cb.url
            ),
        )),
        Nav::Page { status, body, .. } => error_page(
            t,
            "ExpectRedirectUriErrorPage",
            status,
            &body,
            "an error saying the redirect uri is invalid",
        ),
    }
}

/// `oidcc-ensure-post-request-succeeds`: the authorization request as a form POST; the
/// callback must come (WARNING if it does not within 30 seconds, e.g. a 405 page).
async fn post_request(t: &mut T) -> Step<()> {
    flow::configure(t).await?;
    let req = new_request(t);
    let endpoint = t.server["authorization_endpoint"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let (nav, _) = flow::redirect(
        t,
        Start::PostForm(endpoint, req.params.clone()),
        Person::Interacts,
    )
    .await?;
    let cb = match nav {
        Nav::Callback(cb) => cb,
        Nav::Page { status, body, .. } => {
            t.check(
                Sev::Warning,
                "ExpectRedirectUriHasBeenCalled",
                Err(format!(
                    "the redirect_uri was not called within 30 seconds; the OP showed HTTP {status}: {}",
                    flow::page_summary(&body)
                )),
            );
            return Ok(());
        }
    };
    let params = flow::process_callback(t, &cb)?;
    let code = flow::success_response(t, &cb, &params, &req)?;
    let tokens = flow::exchange_code(t, &code, &req, None).await?;
    flow::request_protected_resource(t, &tokens.access_token).await?;
    Ok(())
}

/// `AbstractOIDCCRequestObjectServerTest.skipTestIfNoneUnsupported`
fn skip_if_none_unsupported(t: &T) -> Step<()> {
    if let Some(algs) = t.server["request_object_signing_alg_values_supported"].as_array()
        && !algs.iter().any(|a| a == "none")
    {
        return Err(Halt::Skip("'none' is not listed in request_object_signing_alg_values_supported - assuming it is not supported.".into()));
    }
    Ok(())
}

/// `ConvertAuthorizationEndpointRequestToRequestObject`, `SerializeRequestObjectWithNullAlgorithm`
/// and `BuildRequestObjectByValueRedirectToAuthorizationEndpoint`: every parameter goes into an
/// `alg: none` object; response_type, client_id, scope and redirect_uri (and any parameter
/// whose outside value differs) are repeated outside, in alphabetical order.
fn request_object_url(t: &T, object_params: &AuthRequest, outside: &AuthRequest) -> String {
    let mut claims = serde_json::Map::new();
    for (k, v) in &object_params.params {
        claims.insert(k.clone(), Value::String(v.clone()));
    }
    let request = jose::unsigned(&Value::Object(claims));
    let mut params: std::collections::BTreeMap<String, String> = Default::default();
    params.insert("request".into(), request);
    for (k, v) in &outside.params {
        let inside = object_params.get(k);
        if ["response_type", "client_id", "scope", "redirect_uri"].contains(&k.as_str())
            || inside != Some(v.as_str())
        {
            params.insert(k.clone(), v.clone());
        }
    }
    let endpoint = t.server["authorization_endpoint"].as_str().unwrap_or("");
    let mut url = url::Url::parse(endpoint).expect("checked");
    url.query_pairs_mut().extend_pairs(params.iter());
    url.to_string()
}

/// `oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported`
async fn unsigned_request_object(t: &mut T) -> Step<()> {
    flow::configure(t).await?;
    skip_if_none_unsupported(t)?;
    let req = new_request(t);
    let url = request_object_url(t, &req, &req);
    let (nav, _) = flow::redirect(t, Start::Get(url), Person::Interacts).await?;
    let cb = match nav {
        Nav::Callback(cb) => cb,
        Nav::Page { status, body, .. } => {
            return Err(t.stop(
                "authorization endpoint",
                format!(
                    "expected the request object to be processed or rejected with request_not_supported, but the OP showed a page (HTTP {status}): {}",
                    flow::page_summary(&body)
                ),
            ));
        }
    };
    let params = flow::process_callback(t, &cb)?;
    if params.get("error").map(String::as_str) == Some("request_not_supported") {
        t.note("Tessera's choice: request objects are rejected as unsupported (error=request_not_supported; request_parameter_supported=false in discovery)");
        return Err(Halt::Skip("The 'request_not_supported' error from the authorization endpoint indicates that it does not support request objects (which is permitted behaviour), so request objects cannot be tested.".into()));
    }
    let supported = t.server["request_parameter_supported"] == Value::Bool(true);
    t.check(
        Sev::Warning,
        "CheckDiscEndpointRequestParameterSupported",
        if supported {
            Ok(())
        } else {
            Err(format!(
                "request_parameter_supported must be true (absent means false), discovery has {}",
                t.server["request_parameter_supported"]
            ))
        },
    );
    let code = flow::success_response(t, &cb, &params, &req)?;
    let tokens = flow::exchange_code(t, &code, &req, None).await?;
    flow::request_protected_resource(t, &tokens.access_token).await?;
    Ok(())
}

/// `oidcc-ensure-request-object-with-redirect-uri`: the object carries the registered
/// redirect_uri, the query an invalid one. Either the object wins and the flow succeeds, or
/// the OP shows an invalid-redirect_uri error page (screenshot, REVIEW).
async fn request_object_redirect_uri(t: &mut T) -> Step<()> {
    flow::configure(t).await?;
    skip_if_none_unsupported(t)?;
    let req = new_request(t);
    let mut outside = req.clone();
    // AddInvalidRedirectUriToAuthorizationRequest: path + "_invalid".
    outside.set("redirect_uri", &format!("{}_invalid", t.redirect_uri));
    let url = request_object_url(t, &req, &outside);
    let (nav, _) = flow::redirect(t, Start::Get(url), Person::Interacts).await?;
    match nav {
        Nav::Page { status, body, .. } => {
            error_page(
                t,
                "ExpectRedirectUriErrorPage",
                status,
                &body,
                "an error saying the redirect_uri is invalid",
            )?;
            t.note("Tessera's choice: the invalid redirect_uri outside the request object is refused with an error page (Tessera does not process request objects)");
            Ok(())
        }
        Nav::Callback(cb) => {
            let params = flow::process_callback(t, &cb)?;
            if params.get("error").map(String::as_str) == Some("request_not_supported") {
                return Err(t.stop(
                    "EnsureOPDoesNotUseDefaultRedirectUriInCaseOfInvalidRedirectUri",
                    format!(
                        "the OP redirected to {} with request_not_supported although the redirect_uri outside the request object was invalid",
                        cb.url
                    ),
                ));
            }
            let code = flow::success_response(t, &cb, &params, &req)?;
            let tokens = flow::exchange_code(t, &code, &req, None).await?;
            flow::request_protected_resource(t, &tokens.access_token).await?;
            Ok(())
        }
    }
}

/// `oidcc-claims-essential`: name requested as an essential userinfo claim.
async fn claims_essential(t: &mut T) -> Step<()> {
    flow::configure(t).await?;
    let mut req = new_request(t);
    req.set(
        "claims",
        &serde_json::json!({"userinfo": {"name": {"essential": true}}}).to_string(),
    );
    let (_, tokens) = flow::standard_flow(t, &req, Drive::default()).await?;
    let r = flow::call_userinfo(t, &tokens.access_token, UserInfoCall::Get).await?;
    let info = flow::extract_userinfo(t, &r)?;
    let scope = t.scope.clone();
    validate_returned_claims(t, &info, &scope);
    t.check(
        Sev::Warning,
        "EnsureUserInfoContainsName",
        checks::userinfo_contains_name(&info),
    );
    t.check(
        Sev::Warning,
        "EnsureIdTokenDoesNotContainName",
        checks::id_token_has_no_name(&tokens.id_token),
    );
    Ok(())
}

/// `oidcc-ensure-request-with-valid-pkce-succeeds`
async fn pkce(t: &mut T) -> Step<()> {
    flow::configure(t).await?;
    let mut req = new_request(t);
    let verifier = flow::random_alnum(64);
    let challenge = jose::b64url(&jose::sha256(verifier.as_bytes()));
    req.set("code_challenge", &challenge);
    req.set("code_challenge_method", "S256");
    req.code_verifier = Some(verifier);
    flow::standard_flow(t, &req, Drive::default()).await?;
    Ok(())
}

/// `oidcc-refresh-token` (`OIDCCRefreshToken` over `AbstractOIDCCMultipleClient`).
async fn refresh_token(t: &mut T) -> Step<()> {
    flow::configure(t).await?;
    // SetScopeInClientConfigurationToOpenIdOfflineAccessIfServerSupportsOfflineAccess
    let offline = t.server["scopes_supported"]
        .as_array()
        .is_some_and(|a| a.iter().any(|s| s == "offline_access"));
    t.scope = if offline {
        "openid offline_access".into()
    } else {
        "openid".into()
    };
    let first_client = t.client.clone();
    let second_client = t.target.client2.clone();

    // Client 1.
    refresh_round(t, false).await?;
    // Client 2 (same browser, so the user is still signed in), 43-character nonce.
    t.client = second_client.clone();
    t.block = "Second client: ".into();
    let rt2 = refresh_round(t, true).await?;

    // performSecondClientTests: client 2's refresh token presented by client 1.
    t.client = first_client.clone();
    t.block = "Attempting to use refresh_token issued to client 2 with client 1: ".into();
    let mut form = vec![
        ("grant_type".to_owned(), "refresh_token".to_owned()),
        ("refresh_token".to_owned(), rt2),
    ];
    form.push(("scope".into(), t.scope.clone()));
    let auth = t.client_auth;
    let r = flow::call_token_endpoint(
        t,
        "CallTokenEndpointAndReturnFullResponse",
        form,
        &first_client,
        auth,
    )
    .await?;
    let body = r.json().unwrap_or(Value::Null);
    t.require(
        "ValidateErrorFromTokenEndpointResponseError",
        checks::token_error_valid(&body),
    )?;
    t.check(
        Sev::Failure,
        "CheckTokenEndpointHttpStatus400",
        if r.status == 400 {
            Ok(())
        } else {
            Err(format!("expected HTTP 400, got {}", r.status))
        },
    );
    t.check(
        Sev::Failure,
        "CheckTokenEndpointReturnedJsonContentType",
        checks::content_type_json(r.header("content-type")),
    );
    t.check(
        Sev::Failure,
        "CheckErrorFromTokenEndpointResponseErrorInvalidGrant",
        checks::token_error_is_invalid_grant(&body),
    );
    Ok(())
}

/// One client's part of `oidcc-refresh-token`: authorize (prompt=consent with offline_access),
/// exchange, then `RefreshTokenRequestSteps`. Returns the refresh token left in the
/// environment (the rotated one if the server returned a new one).
async fn refresh_round(t: &mut T, second_client: bool) -> Step<String> {
    let nonce_len = if second_client { 43 } else { NONCE_LEN };
    let mut req = flow::create_authorization_request(t, STATE_LEN, Some(nonce_len));
    if t.scope.split(' ').any(|s| s == "offline_access") {
        // AddPromptConsentToAuthorizationEndpointRequestIfScopeContainsOfflineAccess
        req.set("prompt", "consent");
    }
    let authorized = flow::authorize(t, &req, Drive::default()).await?;
    if authorized.interactions.consent_pages > 0 {
        t.note(format!(
            "{}the OP asked for consent (prompt=consent with offline_access); the runner allowed it",
            t.block
        ));
    }
    let first = flow::exchange_code(t, &authorized.code, &req, None).await?;
    let Some(refresh_token) = first.refresh_token.clone() else {
        let listed = t.server["grant_types_supported"]
            .as_array()
            .is_some_and(|a| a.iter().any(|g| g == "refresh_token"));
        t.check(
            Sev::Warning,
            "EnsureServerConfigurationDoesNotSupportRefreshToken",
            if listed {
                Err(
                    "grant_types_supported lists refresh_token, but no refresh token was issued"
                        .into(),
                )
            } else {
                Ok(())
            },
        );
        return Err(Halt::Skip(
            "Refresh tokens cannot be tested. No refresh token was issued.".into(),
        ));
    };
    let listed = t.server["grant_types_supported"]
        .as_array()
        .is_some_and(|a| a.iter().any(|g| g == "refresh_token"));
    t.check(
        Sev::Warning,
        "EnsureServerConfigurationSupportsRefreshToken",
        if listed {
            Ok(())
        } else {
            Err(
                "a refresh token was issued, but grant_types_supported does not list refresh_token"
                    .into(),
            )
        },
    );
    t.check(
        Sev::Failure,
        "EnsureRefreshTokenContainsAllowedCharactersOnly",
        checks::vschar_only("refresh token", &refresh_token),
    );

    // RefreshTokenRequestSteps
    let mut form = vec![
        ("grant_type".to_owned(), "refresh_token".to_owned()),
        ("refresh_token".to_owned(), refresh_token.clone()),
    ];
    if !second_client {
        form.push(("scope".into(), t.scope.clone())); // AddScopeToTokenEndpointRequest
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // WaitForOneSecond
    let client = t.client.clone();
    let auth = t.client_auth;
    let r =
        flow::call_token_endpoint(t, "CallTokenEndpoint (refresh)", form, &client, auth).await?;
    t.check(
        Sev::Failure,
        "CheckTokenEndpointHttpStatus200",
        if r.status == 200 {
            Ok(())
        } else {
            Err(format!("refresh returned HTTP {}: {}", r.status, r.body))
        },
    );
    t.check(
        Sev::Failure,
        "CheckTokenEndpointReturnedJsonContentType",
        checks::content_type_json(r.header("content-type")),
    );
    t.check(
        Sev::Failure,
        "CheckTokenEndpointCacheHeaders",
        checks::token_endpoint_cache_headers(r.header("cache-control"), r.header("pragma")),
    );
    let body = r.json().unwrap_or(Value::Null);
    t.require(
        "CheckIfTokenEndpointResponseError",
        match body["error"].as_str() {
            Some(e) => Err(format!("token endpoint returned error {e}")),
            None if body.is_object() => Ok(()),
            None => Err(format!("not a JSON object: {}", r.body)),
        },
    )?;
    let access_token = match body["access_token"].as_str() {
        Some(a) if !a.is_empty() => a.to_owned(),
        _ => {
            return Err(t.stop(
                "ExtractAccessTokenFromTokenResponse",
                "no access_token in the refresh response".into(),
            ));
        }
    };
    t.check(
        Sev::Failure,
        "CheckTokenTypeIsBearer",
        match body["token_type"].as_str() {
            Some(tt) if tt.eq_ignore_ascii_case("bearer") => Ok(()),
            other => Err(format!("token_type is not Bearer: {other:?}")),
        },
    );
    t.check(
        Sev::Failure,
        "EnsureMinimumAccessTokenEntropy",
        checks::entropy("access token", &access_token, 96.0),
    );
    t.check(
        Sev::Failure,
        "EnsureAccessTokenContainsAllowedCharactersOnly",
        checks::vschar_only("access token", &access_token),
    );
    if body["expires_in"].is_null() {
        t.check(
            Sev::Warning,
            "ExtractExpiresInFromTokenEndpointResponse",
            Err("expires_in missing from the refresh response".into()),
        );
    } else {
        t.check(
            Sev::Failure,
            "ValidateExpiresIn",
            checks::validate_expires_in(&body["expires_in"]),
        );
    }
    let mut current = refresh_token;
    if let Some(new_rt) = body["refresh_token"].as_str() {
        t.check(
            Sev::Failure,
            "EnsureMinimumRefreshTokenLength",
            if new_rt.len() * 8 >= 128 {
                Ok(())
            } else {
                Err(format!(
                    "refresh token has {} bits, 128 required",
                    new_rt.len() * 8
                ))
            },
        );
        t.check(
            Sev::Failure,
            "EnsureMinimumRefreshTokenEntropy",
            checks::entropy("refresh token", new_rt, 96.0),
        );
        current = new_rt.to_owned();
    }
    if let Some(raw) = body["id_token"].as_str() {
        match jose::parse(raw) {
            Ok(second) => t.check(
                Sev::Failure,
                "CompareIdTokenClaims",
                checks::compare_id_token_claims(&first.id_token, &second),
            ),
            // ExtractIdTokenFromTokenResponse is INFO here: a refresh may omit the ID token.
            Err(e) => t.note(format!("refresh response id_token does not parse: {e}")),
        }
    }
    flow::request_protected_resource(t, &access_token).await?;
    Ok(current)
}

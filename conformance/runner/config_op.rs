//! The Config OP plan (`OIDCCConfigTestPlan`): its one module,
//! `oidcc-discovery-endpoint-verification` (`OIDCCDiscoveryEndpointVerification`, static
//! client variant), condition by condition.

use std::sync::Arc;

use serde_json::Value;

use super::Outcome;
use super::checks::{self, Check};
use super::flow::{Halt, Sev, Step, T};
use super::target::Target;

pub async fn run(target: &Arc<Target>) -> (Outcome, Vec<String>) {
    let mut t = T::new(target, false);
    let halt = verify(&mut t).await.err();
    t.outcome(halt)
}

async fn verify(t: &mut T) -> Step<()> {
    let discovery_url = t.target.discovery_url.clone();
    let r = t
        .get("GetDynamicServerConfiguration", &discovery_url)
        .await?;
    let server = match r.json() {
        Some(v) if v.is_object() => v,
        _ => {
            return Err(t.stop(
                "GetDynamicServerConfiguration",
                format!("HTTP {}: not a JSON object", r.status),
            ));
        }
    };
    t.check(
        Sev::Failure,
        "EnsureDiscoveryEndpointResponseStatusCodeIs200",
        status_200(r.status),
    );
    t.check(
        Sev::Failure,
        "CheckDiscoveryEndpointReturnedJsonContentType",
        checks::content_type_json(r.header("content-type")),
    );
    let s = &server;
    t.check(
        Sev::Failure,
        "OIDCCCheckDiscEndpointResponseTypesSupported",
        response_types_supported(s),
    );
    t.check(
        Sev::Failure,
        "CheckDiscEndpointDiscoveryUrl",
        discovery_url_check(&discovery_url),
    );
    t.check(
        Sev::Failure,
        "CheckDiscEndpointIssuer",
        issuer_matches(s, &discovery_url),
    );
    t.check(
        Sev::Failure,
        "CheckDiscEndpointIssuerIsValidUrl",
        issuer_valid_url(s),
    );
    t.check(
        Sev::Failure,
        "ValidateServerMetadataAgainstSchema",
        metadata_schema(s),
    );
    t.check(
        Sev::Warning,
        "CheckForUnexpectedParametersInServerMetadata",
        unexpected_parameters(s),
    );
    t.check(
        Sev::Failure,
        "CheckDiscEndpointSubjectTypesSupported",
        contains_any(s, "subject_types_supported", &["public", "pairwise"]),
    );
    t.check(
        Sev::Failure,
        "OIDCCCheckDiscEndpointIdTokenSigningAlgValuesSupported",
        contains_any(s, "id_token_signing_alg_values_supported", &["RS256"]),
    );
    if !s["userinfo_signing_alg_values_supported"].is_null() {
        t.check(
            Sev::Failure,
            "OIDCCCheckDiscEndpointUserinfoSigningAlgValuesSupported",
            if s["userinfo_signing_alg_values_supported"].is_array() {
                Ok(())
            } else {
                Err("userinfo_signing_alg_values_supported is not an array".into())
            },
        );
    }
    t.check(
        Sev::Failure,
        "CheckDiscEndpointAuthorizationEndpoint",
        https_endpoint(s, "authorization_endpoint"),
    );
    t.check(
        Sev::Failure,
        "CheckDiscEndpointTokenEndpoint",
        https_endpoint(s, "token_endpoint"),
    );
    if s["userinfo_endpoint"].is_null() {
        // skipIfElementMissing … onSkip(WARNING): userinfo is recommended.
        t.check(
            Sev::Warning,
            "CheckDiscEndpointUserinfoEndpoint",
            Err("userinfo_endpoint is missing (recommended)".into()),
        );
    } else {
        t.check(
            Sev::Failure,
            "CheckDiscEndpointUserinfoEndpoint",
            https_endpoint(s, "userinfo_endpoint"),
        );
    }
    if s["registration_endpoint"].is_null() {
        t.note("registration_endpoint absent (static clients only; INFO in the suite)");
    } else {
        t.check(
            Sev::Failure,
            "CheckDiscEndpointRegistrationEndpoint",
            https_endpoint(s, "registration_endpoint"),
        );
    }
    t.check(Sev::Failure, "CheckJwksUri", https_endpoint(s, "jwks_uri"));
    let jwks_uri = s["jwks_uri"].as_str().unwrap_or("").to_owned();
    let jr = t.get("FetchServerKeys", &jwks_uri).await?;
    let jwks = match jr.json() {
        Some(v) if jr.status == 200 && v.is_object() => v,
        _ => {
            return Err(t.stop(
                "FetchServerKeys",
                format!("HTTP {}: the JWKS is not JSON", jr.status),
            ));
        }
    };
    t.check(
        Sev::Failure,
        "ValidateServerJWKs",
        checks::validate_server_jwks(&jwks),
    );
    t.check(
        Sev::Failure,
        "EnsureServerJwksDoesNotContainPrivateOrSymmetricKeys",
        checks::no_private_or_symmetric_keys(&jwks),
    );
    for key in [
        "request_parameter_supported",
        "request_uri_parameter_supported",
        "claims_parameter_supported",
    ] {
        t.note(format!("{key} = {} (INFO)", s[key]));
    }
    if let Some(algs) = s["request_object_signing_alg_values_supported"].as_array() {
        t.check(
            Sev::Warning,
            "CheckDiscEndpointRequestObjectSigningAlgValuesSupportedIncludesRS256",
            if algs.iter().any(|a| a == "RS256") {
                Ok(())
            } else {
                Err("request_object_signing_alg_values_supported does not include RS256".into())
            },
        );
    }
    t.check(
        Sev::Warning,
        "OIDCCCheckDiscEndpointClaimsSupported",
        if s["claims_supported"].is_array() {
            Ok(())
        } else {
            Err("claims_supported is missing or not an array (recommended)".into())
        },
    );
    t.check(
        Sev::Failure,
        "OIDCCCheckDiscEndpointGrantTypesSupported",
        match &s["grant_types_supported"] {
            Value::Null => Ok(()),
            Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_string) => Ok(()),
            other => Err(format!(
                "grant_types_supported must be a non-empty array: {other}"
            )),
        },
    );
    if s["scopes_supported"].is_null() {
        t.check(
            Sev::Warning,
            "CheckDiscEndpointScopesSupportedContainsOpenId",
            Err("scopes_supported is missing".into()),
        );
    } else {
        t.check(
            Sev::Failure,
            "CheckDiscEndpointScopesSupportedContainsOpenId",
            contains_any(s, "scopes_supported", &["openid"]),
        );
    }
    t.check(
        Sev::Failure,
        "CheckDiscEndpointScopesSupportedSyntax",
        scopes_syntax(s),
    );
    t.check(
        Sev::Failure,
        "CheckDiscEndpointLocalesSyntax",
        locales(s, false),
    );
    t.check(
        Sev::Warning,
        "CheckDiscEndpointLocalesCanonicalCasing",
        locales(s, true),
    );
    t.check(
        Sev::Failure,
        "CheckDiscEndpointAllEndpointsAreHttps",
        all_endpoints_https(s),
    );
    t.check(
        Sev::Failure,
        "EnsureServerConfigurationCodeChallengeMethodsSupportedIsAnArray",
        match &s["code_challenge_methods_supported"] {
            Value::Null => Ok(()),
            Value::Array(a) if a.is_empty() => Ok(()),
            Value::Array(a) if a.iter().any(|m| m == "S256" || m == "plain") => Ok(()),
            other => Err(format!(
                "code_challenge_methods_supported contains neither S256 nor plain: {other}"
            )),
        },
    );
    let _ = Halt::Stop;
    Ok(())
}

fn status_200(status: u16) -> Check {
    if status == 200 {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

fn strings(s: &Value, key: &str) -> Option<Vec<String>> {
    s[key].as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    })
}

/// `OIDCCCheckDiscEndpointResponseTypesSupported` (static client variant)
fn response_types_supported(s: &Value) -> Check {
    let values = strings(s, "response_types_supported")
        .ok_or("response_types_supported is missing or not an array")?;
    let normalize = |v: &str| {
        let mut parts: Vec<&str> = v.split(' ').filter(|p| !p.is_empty()).collect();
        parts.sort();
        parts.join(" ")
    };
    let known = [
        "code",
        "code id_token",
        "id_token",
        "id_token token",
        "code id_token token",
        "code token",
    ]
    .map(normalize);
    if values.iter().any(|v| known.contains(&normalize(v))) {
        Ok(())
    } else {
        Err(format!(
            "response_types_supported contains none of the OIDC response types: {values:?}"
        ))
    }
}

/// `CheckDiscEndpointDiscoveryUrl`
fn discovery_url_check(url: &str) -> Check {
    let u = url::Url::parse(url).map_err(|e| e.to_string())?;
    if u.scheme() != "https" {
        return Err(format!("the discovery URL is not https: {url}"));
    }
    if !u.path().ends_with("/.well-known/openid-configuration") {
        return Err(format!(
            "the discovery URL does not end with /.well-known/openid-configuration: {url}"
        ));
    }
    Ok(())
}

/// `CheckDiscEndpointIssuer`
fn issuer_matches(s: &Value, discovery_url: &str) -> Check {
    let issuer = s["issuer"].as_str().ok_or("issuer is missing")?;
    let expected = discovery_url
        .trim_end_matches(".well-known/openid-configuration")
        .trim_end_matches('/');
    if issuer.trim_end_matches('/') == expected {
        Ok(())
    } else {
        Err(format!(
            "issuer {issuer} does not match the discovery URL's prefix {expected}"
        ))
    }
}

/// `CheckDiscEndpointIssuerIsValidUrl`
fn issuer_valid_url(s: &Value) -> Check {
    let issuer = s["issuer"].as_str().ok_or("issuer is missing")?;
    let u = url::Url::parse(issuer).map_err(|e| format!("issuer is not a URL: {e}"))?;
    if u.scheme() != "https" {
        return Err(format!("issuer is not an https URL: {issuer}"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err("issuer has no host".into());
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err("issuer must not have a query or fragment".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("issuer must not contain user information".into());
    }
    Ok(())
}

fn https_endpoint(s: &Value, key: &str) -> Check {
    let v = s[key]
        .as_str()
        .ok_or_else(|| format!("{key} is missing or not a string"))?;
    let u = url::Url::parse(v).map_err(|e| format!("{key} is not a URL: {e}"))?;
    if u.scheme() != "https" {
        return Err(format!("{key} is not https: {v}"));
    }
    Ok(())
}

fn contains_any(s: &Value, key: &str, wanted: &[&str]) -> Check {
    let values = strings(s, key).ok_or_else(|| format!("{key} is missing or not an array"))?;
    if values.iter().any(|v| wanted.contains(&v.as_str())) {
        Ok(())
    } else {
        Err(format!("{key} contains none of {wanted:?}: {values:?}"))
    }
}

/// `CheckDiscEndpointAllEndpointsAreHttps`: every key ending in `_endpoint`.
fn all_endpoints_https(s: &Value) -> Check {
    let mut bad = Vec::new();
    for (k, v) in s.as_object().into_iter().flatten() {
        if k.ends_with("_endpoint") {
            let ok = v
                .as_str()
                .and_then(|u| url::Url::parse(u).ok())
                .is_some_and(|u| u.scheme() == "https");
            if !ok {
                bad.push(format!("{k}={v}"));
            }
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("endpoints that are not https: {}", bad.join(", ")))
    }
}

/// `CheckDiscEndpointScopesSupportedSyntax`: RFC 6749 A.4 scope-token.
fn scopes_syntax(s: &Value) -> Check {
    for scope in strings(s, "scopes_supported").unwrap_or_default() {
        let ok = !scope.is_empty()
            && scope
                .chars()
                .all(|c| matches!(c as u32, 0x21 | 0x23..=0x5B | 0x5D..=0x7E));
        if !ok {
            return Err(format!("{scope:?} is not an RFC 6749 scope-token"));
        }
    }
    Ok(())
}

/// `CheckDiscEndpointLocalesSyntax` / `CheckDiscEndpointLocalesCanonicalCasing`: BCP 47
/// language tags (well-formedness of language, script, region and variant subtags).
fn locales(s: &Value, casing: bool) -> Check {
    for key in ["ui_locales_supported", "claims_locales_supported"] {
        if s[key].is_null() {
            continue;
        }
        let values = strings(s, key).ok_or_else(|| format!("{key} is not an array"))?;
        for tag in values {
            let parts: Vec<&str> = tag.split('-').collect();
            let alpha = |p: &str, range: std::ops::RangeInclusive<usize>| {
                range.contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphabetic())
            };
            let mut well_formed =
                !parts.is_empty() && alpha(parts[0], 2..=8) && parts[0].len() != 4;
            let mut canonical = parts[0] == parts[0].to_ascii_lowercase();
            for p in &parts[1..] {
                if alpha(p, 4..=4) {
                    let title = format!(
                        "{}{}",
                        p[..1].to_ascii_uppercase(),
                        p[1..].to_ascii_lowercase()
                    );
                    canonical &= *p == title;
                } else if alpha(p, 2..=2) || (p.len() == 3 && p.chars().all(|c| c.is_ascii_digit()))
                {
                    canonical &= *p == p.to_ascii_uppercase();
                } else if (5..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric())
                    || (p.len() == 4 && p.starts_with(|c: char| c.is_ascii_digit()))
                {
                    canonical &= *p == p.to_ascii_lowercase();
                } else {
                    well_formed = false;
                }
            }
            if !well_formed {
                return Err(format!(
                    "{key}: {tag:?} is not a well-formed BCP 47 language tag"
                ));
            }
            if casing && !canonical {
                return Err(format!("{key}: {tag:?} is not in canonical casing"));
            }
        }
    }
    Ok(())
}

/// The suite's `json-schemas/rfc8414/oauth_authorization_server_metadata.json`: known keys
/// and their types (`ValidateServerMetadataAgainstSchema`); anything else is unexpected
/// (`CheckForUnexpectedParametersInServerMetadata`, WARNING).
const SCHEMA: &[(&str, &str)] = &[
    ("issuer", "uri"),
    ("authorization_endpoint", "uri"),
    ("token_endpoint", "uri"),
    ("jwks_uri", "uri"),
    ("registration_endpoint", "uri"),
    ("scopes_supported", "strings"),
    ("response_types_supported", "strings"),
    ("response_modes_supported", "strings"),
    ("grant_types_supported", "strings"),
    ("token_endpoint_auth_methods_supported", "strings"),
    (
        "token_endpoint_auth_signing_alg_values_supported",
        "strings",
    ),
    ("service_documentation", "uri"),
    ("ui_locales_supported", "strings"),
    ("op_policy_uri", "uri"),
    ("op_tos_uri", "uri"),
    ("revocation_endpoint", "uri"),
    ("revocation_endpoint_auth_methods_supported", "strings"),
    (
        "revocation_endpoint_auth_signing_alg_values_supported",
        "strings",
    ),
    ("global_token_revocation_endpoint", "uri"),
    (
        "global_token_revocation_endpoint_auth_methods_supported",
        "strings",
    ),
    ("introspection_endpoint", "uri"),
    ("introspection_endpoint_auth_methods_supported", "strings"),
    (
        "introspection_endpoint_auth_signing_alg_values_supported",
        "strings",
    ),
    ("code_challenge_methods_supported", "strings"),
    ("userinfo_endpoint", "uri"),
    ("end_session_endpoint", "uri"),
    ("check_session_iframe", "uri"),
    ("subject_types_supported", "strings"),
    ("id_token_signing_alg_values_supported", "strings"),
    ("id_token_encryption_alg_values_supported", "strings"),
    ("id_token_encryption_enc_values_supported", "strings"),
    ("userinfo_signing_alg_values_supported", "strings"),
    ("userinfo_encryption_alg_values_supported", "strings"),
    ("userinfo_encryption_enc_values_supported", "strings"),
    ("request_object_signing_alg_values_supported", "strings"),
    ("request_object_encryption_alg_values_supported", "strings"),
    ("request_object_encryption_enc_values_supported", "strings"),
    ("display_values_supported", "strings"),
    ("claim_types_supported", "strings"),
    ("claims_supported", "strings"),
    ("claims_locales_supported", "strings"),
    ("claims_parameter_supported", "boolean"),
    ("request_parameter_supported", "boolean"),
    ("request_uri_parameter_supported", "boolean"),
    ("require_request_uri_registration", "boolean"),
    ("acr_values_supported", "strings"),
    ("frontchannel_logout_supported", "boolean"),
    ("frontchannel_logout_session_supported", "boolean"),
    ("backchannel_logout_supported", "boolean"),
    ("backchannel_logout_session_supported", "boolean"),
    ("dpop_signing_alg_values_supported", "strings"),
    ("pushed_authorization_request_endpoint", "uri"),
    ("require_pushed_authorization_requests", "boolean"),
    ("authorization_details_types_supported", "strings"),
    ("authorization_challenge_endpoint", "uri"),
    ("backchannel_authentication_endpoint", "uri"),
    ("backchannel_token_delivery_modes_supported", "strings"),
    (
        "backchannel_authentication_request_signing_alg_values_supported",
        "strings",
    ),
    ("backchannel_user_code_parameter_supported", "boolean"),
    ("authorization_signing_alg_values_supported", "strings"),
    ("authorization_encryption_alg_values_supported", "strings"),
    ("authorization_encryption_enc_values_supported", "strings"),
    ("client_attestation_signing_alg_values_supported", "strings"),
    (
        "client_attestation_pop_signing_alg_values_supported",
        "strings",
    ),
    ("challenge_endpoint", "uri"),
    ("mtls_endpoint_aliases", "object"),
    ("tls_client_certificate_bound_access_tokens", "boolean"),
    ("signed_metadata", "string"),
    ("pre-authorized_grant_anonymous_access_supported", "boolean"),
    ("authorization_response_iss_parameter_supported", "boolean"),
    ("device_authorization_endpoint", "uri"),
    ("require_signed_request_object", "boolean"),
    ("introspection_signing_alg_values_supported", "strings"),
    ("introspection_encryption_alg_values_supported", "strings"),
    ("introspection_encryption_enc_values_supported", "strings"),
    ("prompt_values_supported", "strings"),
    ("signed_jwks_uri", "uri"),
    ("jwks", "object"),
    ("organization_name", "string"),
    ("organization_uri", "uri"),
    ("display_name", "string"),
    ("description", "string"),
    ("keywords", "strings"),
    ("contacts", "strings"),
    ("logo_uri", "uri"),
    ("information_uri", "uri"),
    ("federation_registration_endpoint", "uri"),
    ("client_registration_types_supported", "strings"),
    ("client_id_metadata_document_supported", "boolean"),
    ("trust_frameworks_supported", "strings"),
    ("evidence_supported", "strings"),
    ("documents_supported", "strings"),
    ("documents_check_methods_supported", "strings"),
    ("documents_methods_supported", "strings"),
    ("electronic_records_supported", "strings"),
    ("attachments_supported", "strings"),
    ("claims_in_verified_claims_supported", "strings"),
    ("transformed_claims_functions_supported", "strings"),
    ("transformed_claims_predefined", "any"),
    ("grant_management_endpoint", "uri"),
    ("grant_management_actions_supported", "strings"),
    ("grant_management_action_required", "boolean"),
    ("request_authentication_methods_supported", "any"),
    (
        "request_authentication_signing_alg_values_supported",
        "strings",
    ),
    ("protected_resources", "strings"),
    ("status_list_aggregation_endpoint", "uri"),
];

fn metadata_schema(s: &Value) -> Check {
    let mut problems = Vec::new();
    for (key, value) in s.as_object().into_iter().flatten() {
        let Some((_, kind)) = SCHEMA.iter().find(|(k, _)| k == key) else {
            continue;
        };
        let ok = match *kind {
            "uri" => value.as_str().is_some_and(|v| url::Url::parse(v).is_ok()),
            "string" => value.is_string(),
            "strings" => value
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string)),
            "boolean" => value.is_boolean(),
            "object" => value.is_object(),
            _ => true,
        };
        if !ok {
            problems.push(format!("{key} is not a valid {kind}: {value}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn unexpected_parameters(s: &Value) -> Check {
    let unexpected: Vec<&String> = s
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .filter(|k| !SCHEMA.iter().any(|(known, _)| known == k))
        .collect();
    if unexpected.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the discovery document contains keys the suite does not know: {unexpected:?}"
        ))
    }
}

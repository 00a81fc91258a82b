//! Malformed, oversized and hostile input to every endpoint: each gets the error the spec
//! names or a plain page, never a 5xx, and the server keeps answering normal requests.

mod common;

use common::{TestServer, plain_client};
use reqwest::Method;

const REDIRECT: &str = "https://rp.example.com/cb";

struct Case {
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    /// The status the spec names for this input.
    expect: u16,
}

fn case(
    method: Method,
    path: impl Into<String>,
    content_type: Option<&'static str>,
    body: impl Into<Vec<u8>>,
    expect: u16,
) -> Case {
    Case {
        method,
        path: path.into(),
        content_type,
        body: body.into(),
        expect,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_requests_get_specific_errors_and_no_5xx() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let secret = secret.unwrap();
    let form = Some("application/x-www-form-urlencoded");
    let big = "a".repeat(1024 * 1024);
    let authorize = format!(
        "/authorize?client_id={client_id}&redirect_uri={REDIRECT}&response_type=code&scope=openid"
    );
    let alg_none = format!(
        "{}.{}.",
        tessera::security::b64url(br#"{"alg":"none"}"#),
        tessera::security::b64url(br#"{"sub":"x","iss":"y"}"#)
    );
    let cases = vec![
        // Authorization endpoint: pages before the redirect URI is trusted, redirects after.
        case(Method::GET, "/authorize", None, "", 400),
        case(
            Method::GET,
            "/authorize?client_id=%FF%FE&redirect_uri=%",
            None,
            "",
            400,
        ),
        case(
            Method::GET,
            format!("/authorize?client_id={client_id}&client_id=x"),
            None,
            "",
            400,
        ),
        case(
            Method::GET,
            format!("/authorize?client_id=<script>&redirect_uri={REDIRECT}"),
            None,
            "",
            400,
        ),
        case(
            Method::GET,
            format!("{authorize}&state=%00%0d%0aSet-Cookie:%20x=1"),
            None,
            "",
            303,
        ),
        case(
            Method::GET,
            format!("{authorize}&nonce={}", "n".repeat(20_000)),
            None,
            "",
            303,
        ),
        case(
            Method::GET,
            format!("{authorize}&login_hint=%3Cimg%20src=x%3E"),
            None,
            "",
            303,
        ),
        case(
            Method::GET,
            format!("{authorize}&id_token_hint={alg_none}"),
            None,
            "",
            303,
        ),
        case(
            Method::GET,
            format!("{authorize}&id_token_hint={}", "e".repeat(30_000)),
            None,
            "",
            303,
        ),
        case(
            Method::POST,
            "/authorize",
            Some("application/json"),
            r#"{"client_id":"x"}"#,
            400,
        ),
        case(
            Method::POST,
            "/authorize",
            form,
            vec![0xff, 0xfe, 0x00],
            400,
        ),
        // Token endpoint.
        case(Method::POST, "/token", None, "", 400),
        case(
            Method::POST,
            "/token",
            form,
            "grant_type=authorization_code&grant_type=refresh_token",
            400,
        ),
        case(
            Method::POST,
            "/token",
            form,
            format!("grant_type=authorization_code&client_id={client_id}&client_secret={secret}"),
            400,
        ),
        case(
            Method::POST,
            "/token",
            form,
            format!(
                "grant_type=authorization_code&code={big}&client_id={client_id}&client_secret={secret}"
            ),
            413,
        ),
        case(
            Method::POST,
            "/token",
            form,
            vec![b'x'; 10 * 1024 * 1024],
            413,
        ),
        case(
            Method::POST,
            "/token",
            Some("application/json"),
            r#"{"grant_type":"client_credentials"}"#,
            400,
        ),
        case(
            Method::POST,
            "/token",
            form,
            "grant_type=client_credentials&client_id=%00%ff",
            401,
        ),
        case(
            Method::POST,
            "/token",
            form,
            format!(
                "grant_type=refresh_token&refresh_token=%00&client_id={client_id}&client_secret={secret}"
            ),
            400,
        ),
        // Userinfo.
        case(Method::GET, "/userinfo", None, "", 401),
        case(
            Method::POST,
            "/userinfo",
            form,
            format!("access_token={alg_none}"),
            401,
        ),
        case(
            Method::POST,
            "/userinfo",
            form,
            "access_token=a&access_token=b",
            400,
        ),
        // Sign-in forms.
        case(Method::GET, "/login", None, "", 400),
        case(
            Method::GET,
            format!("/login?request={}", "r".repeat(5000)),
            None,
            "",
            400,
        ),
        case(Method::POST, "/login", form, "request=x", 400),
        case(
            Method::POST,
            "/login",
            form,
            "request=x&csrf=y&email=a&password=b",
            400,
        ),
        case(
            Method::POST,
            "/login",
            Some("application/json"),
            r#"{"request":"x"}"#,
            400,
        ),
        case(
            Method::POST,
            "/consent",
            form,
            "request=x&csrf=y&decision=allow",
            400,
        ),
        case(
            Method::POST,
            "/select-account",
            form,
            "request=x&csrf=y&choice=current",
            400,
        ),
        case(Method::GET, "/authorize/resume?request=nope", None, "", 400),
        case(Method::GET, "/static/..%2F..%2FCargo.toml", None, "", 404),
    ];
    let http = plain_client();
    let mut sent = 0;
    for c in &cases {
        let mut request = http.request(c.method.clone(), format!("{}{}", server.url, c.path));
        if let Some(ct) = c.content_type {
            request = request.header("content-type", ct);
        }
        let response = match request.body(c.body.clone()).send().await {
            Ok(r) => r,
            // The server answers 413 from the Content-Length alone and closes the connection
            // without reading the body, so the client may still be writing when it goes.
            Err(e) if c.expect == 413 && e.is_request() => {
                sent += 1;
                continue;
            }
            Err(e) => panic!("{} {}: {e}", c.method, &c.path[..c.path.len().min(120)]),
        };
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap_or("").to_owned());
        let body = response.text().await.unwrap_or_default();
        assert_eq!(
            status,
            c.expect,
            "{} {}: {body}",
            c.method,
            &c.path[..c.path.len().min(120)]
        );
        assert!(status < 500, "{} {} gave {status}", c.method, c.path);
        if let Some(location) = location {
            assert!(
                location.starts_with(REDIRECT) || location.starts_with("/login?request="),
                "redirect only to the registered URI or Tessera's own sign-in page: {location}"
            );
            assert!(!location.contains('\r') && !location.contains('\n'));
        }
        assert!(
            !body.contains("<script>") && !body.contains("<img src=x>"),
            "nothing reflected unescaped"
        );
        assert!(!body.contains("panicked") && !body.contains("backtrace"));
        sent += 1;
    }
    // The server still answers normal requests.
    let response = server.get("/.well-known/openid-configuration").await;
    assert_eq!(response.status(), 200);
    println!("hostile input: {sent} cases sent, 0 answered with 5xx");
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_describes_what_the_server_does() {
    let server = TestServer::start().await;
    let doc: serde_json::Value = server
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    let issuer = server.issuer();
    assert_eq!(doc["issuer"], issuer.as_str());
    for (field, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
    ] {
        assert_eq!(doc[field], format!("{issuer}{path}").as_str());
    }
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    let claims: Vec<&str> = doc["claims_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(claims.contains(&"auth_time") && claims.contains(&"can_reauthenticate"));
    let scopes = doc["scopes_supported"].as_array().unwrap();
    assert!(scopes.iter().any(|s| s == "offline_access"));
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_carry_security_headers() {
    let server = TestServer::start().await;
    for path in ["/", "/login?request=x", "/demo"] {
        let r = server.get(path).await;
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'")
                && csp.contains("frame-ancestors 'none'")
                && !csp.contains("unsafe-inline")
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(
            !r.text().await.unwrap().contains("<script>"),
            "no inline script on {path}"
        );
    }
}

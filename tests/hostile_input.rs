//! Malformed, oversized and hostile input to every endpoint: each gets the error the spec
//! names or a plain page, never a 5xx, and the server keeps answering normal requests.

mod common;
#[path = "hostile_input/harness.rs"]
mod harness;

use common::{Browser, PASSWORD, TestServer, plain_client};
use harness::{Answer, Hostile, MARKUP};
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
    // JSON and the router's fallback too: the headers are layers around every route.
    for path in ["/", "/login?request=x", "/demo", "/jwks", "/no-such-page"] {
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

/// HSTS only where the issuer is https (TLS ends at a proxy in front of Tessera): over plain
/// http the header would be ignored by browsers (RFC 6797 §8.1), and on a `localhost` demo it
/// would pin the name to https for a year.
#[tokio::test]
async fn hsts_is_sent_only_under_an_https_issuer() {
    const HSTS: &str = "strict-transport-security";
    let plain = TestServer::start().await;
    for path in ["/jwks", "/no-such-page"] {
        let r = plain.get(path).await;
        assert!(!r.headers().contains_key(HSTS), "{path} over http");
    }
    let behind_tls =
        TestServer::start_with(|c| c.issuer = "https://id.example.test".to_owned()).await;
    for path in [
        "/jwks",
        "/.well-known/openid-configuration",
        "/no-such-page",
    ] {
        let r = behind_tls.get(path).await;
        assert_eq!(
            r.headers()[HSTS],
            "max-age=31536000; includeSubDomains",
            "{path} under an https issuer"
        );
    }
}

const FORM: &str = "application/x-www-form-urlencoded";
const TEN_MB: usize = 10 * 1024 * 1024;

fn enc(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A server whose issuer is `http://localhost:PORT`, so the passkey endpoints are enabled.
async fn server_with_passkeys() -> TestServer {
    TestServer::start_with(|c| c.issuer = c.issuer.replace("127.0.0.1", "localhost")).await
}

/// What each POST endpoint answers to a body it cannot use, in the order of [`MALFORMED`].
struct PostEndpoint {
    path: &'static str,
    /// Statuses for: empty form, invalid UTF-8 form, JSON body, text/plain body.
    refusals: [u16; 4],
    /// Statuses for a 10 MB body without a length, sent as a form and as JSON: 413 once the
    /// limit is reached, or 415 / 400 for a content type refused before any byte is read.
    chunked: [u16; 2],
}

const MALFORMED: [(&str, Option<&str>, &[u8]); 4] = [
    ("empty form", Some(FORM), b""),
    (
        "invalid UTF-8 form",
        Some(FORM),
        b"\xff\xfe=\xc0\x80&%FF%00=%E0%80",
    ),
    (
        "JSON body",
        Some("application/json"),
        br#"{"a":[[[[[[[[[[{"b":"\u0000"}]]]]]]]]]]}"#,
    ),
    (
        "text/plain body",
        Some("text/plain"),
        b"grant_type=client_credentials",
    ),
];

const POST_ENDPOINTS: &[PostEndpoint] = &[
    PostEndpoint {
        path: "/authorize",
        refusals: [400, 400, 400, 400],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/token",
        refusals: [400, 400, 400, 400],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/userinfo",
        refusals: [401, 401, 401, 401],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/revoke",
        refusals: [401, 401, 400, 400],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/introspect",
        refusals: [401, 401, 400, 400],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/logout",
        refusals: [200, 200, 200, 200],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/logout/confirm",
        refusals: [200, 200, 200, 200],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/login",
        refusals: [400, 400, 400, 400],
        chunked: [413, 400],
    },
    PostEndpoint {
        path: "/select-account",
        refusals: [422, 422, 415, 415],
        chunked: [413, 415],
    },
    PostEndpoint {
        path: "/consent",
        refusals: [422, 422, 415, 415],
        chunked: [413, 415],
    },
    PostEndpoint {
        path: "/login/passkey/options",
        refusals: [400, 400, 400, 400],
        chunked: [400, 413],
    },
    PostEndpoint {
        path: "/login/passkey/finish",
        refusals: [400, 400, 400, 400],
        chunked: [400, 413],
    },
    PostEndpoint {
        path: "/account/passkeys/options",
        refusals: [400, 400, 400, 400],
        chunked: [400, 413],
    },
    PostEndpoint {
        path: "/account/passkeys/finish",
        refusals: [400, 400, 400, 400],
        chunked: [400, 413],
    },
    PostEndpoint {
        path: "/passkeys/offer/dismiss",
        refusals: [422, 422, 415, 415],
        chunked: [413, 415],
    },
    PostEndpoint {
        path: "/account/sessions/end",
        refusals: [401, 401, 401, 401],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/account/sign-out-everywhere",
        refusals: [401, 401, 401, 401],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/account/passkeys/rename",
        refusals: [401, 401, 401, 401],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/account/passkeys/delete",
        refusals: [401, 401, 401, 401],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/device_authorization",
        refusals: [401, 401, 400, 400],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/device",
        refusals: [303, 303, 303, 303],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/qr/start",
        refusals: [400, 400, 400, 400],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/qr/AAAAAAAAAAAAAAAAAAAAAA/redeem",
        refusals: [400, 400, 400, 400],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/qr/AAAAAAAAAAAAAAAAAAAAAA",
        refusals: [401, 401, 401, 401],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/api/devices",
        refusals: [400, 400, 400, 400],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/api/qr/AAAAAAAAAAAAAAAAAAAAAA/challenge",
        refusals: [404, 404, 404, 404],
        // Answered before the body is read: there is no such QR code.
        chunked: [404, 404],
    },
    PostEndpoint {
        path: "/api/qr/AAAAAAAAAAAAAAAAAAAAAA/scan",
        refusals: [400, 400, 400, 400],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/api/qr/AAAAAAAAAAAAAAAAAAAAAA/decision",
        refusals: [400, 400, 400, 400],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/account/devices/enroll",
        refusals: [401, 401, 401, 401],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/account/devices/delete",
        refusals: [401, 401, 401, 401],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/login/code/send",
        refusals: [422, 422, 415, 415],
        chunked: [413, 415],
    },
    PostEndpoint {
        path: "/login/code/verify",
        refusals: [422, 422, 415, 415],
        chunked: [413, 415],
    },
    PostEndpoint {
        path: "/admin/methods",
        refusals: [401, 401, 401, 401],
        chunked: [413, 413],
    },
    PostEndpoint {
        path: "/admin/users",
        refusals: [401, 401, 401, 401],
        chunked: [413, 413],
    },
    // The admin API answers 401 before reading a body when no token is presented.
    PostEndpoint {
        path: "/admin/api/v1/orgs",
        refusals: [401, 401, 401, 401],
        chunked: [401, 401],
    },
    PostEndpoint {
        path: "/admin/api/v1/orgs/default/users",
        refusals: [401, 401, 401, 401],
        chunked: [401, 401],
    },
    PostEndpoint {
        path: "/admin/api/v1/keys/rotate",
        refusals: [401, 401, 401, 401],
        chunked: [401, 401],
    },
];

/// Every POST endpoint: bodies of 10 MB (with and without a length), a 1 MB parameter, and
/// bodies it cannot read. Oversized bodies get 413 before they are buffered whole
/// (`MAX_BODY_BYTES`); the rest get the endpoint's own refusal.
#[tokio::test(flavor = "multi_thread")]
async fn every_post_endpoint_refuses_oversized_and_unreadable_bodies() {
    let server = server_with_passkeys().await;
    let mut hostile = Hostile::new(&server, harness::unpooled_client(), &[]);
    let huge_param = format!("request={}&csrf=x", "r".repeat(1024 * 1024));
    for endpoint in POST_ENDPOINTS {
        let path = endpoint.path;
        let label = format!("POST {path} 10 MB body");
        let answer = hostile
            .send(
                &label,
                Method::POST,
                path,
                &[("content-type", FORM)],
                vec![b'a'; TEN_MB],
            )
            .await;
        hostile.expect_status(&label, &answer, 413);
        let label = format!("POST {path} 1 MB parameter");
        let answer = hostile
            .send(
                &label,
                Method::POST,
                path,
                &[("content-type", FORM)],
                huge_param.clone(),
            )
            .await;
        hostile.expect_status(&label, &answer, 413);
        for (content_type, expected) in [FORM, "application/json"].into_iter().zip(endpoint.chunked)
        {
            let label = format!("POST {path} 10 MB chunked {content_type}");
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
            );
            let status = hostile.send_raw(&label, head.as_bytes(), TEN_MB).await;
            if status != Some(expected) {
                hostile.fail(&label, format!("expected {expected}, got {status:?}"));
            }
        }
        for ((case, content_type, body), expected) in MALFORMED.iter().zip(endpoint.refusals) {
            let label = format!("POST {path} {case}");
            let headers: Vec<(&str, &str)> = content_type
                .iter()
                .map(|ct| ("content-type", *ct))
                .collect();
            let answer = hostile
                .send(&label, Method::POST, path, &headers, body.to_vec())
                .await;
            hostile.expect_status(&label, &answer, expected);
        }
    }
    hostile.finish("POST bodies");
}

/// Request targets that are not valid HTTP or not valid UTF-8 / percent-encoding, and a
/// 1 MB query parameter, to every GET endpoint.
#[tokio::test(flavor = "multi_thread")]
async fn every_get_endpoint_survives_hostile_query_strings() {
    let server = server_with_passkeys().await;
    let mut hostile = Hostile::new(&server, harness::unpooled_client(), &[]);
    let paths = [
        "/authorize",
        "/authorize/resume",
        "/userinfo",
        "/logout",
        "/login",
        "/select-account",
        "/consent",
        "/passkeys/offer",
        "/account",
        "/account/login",
        "/account/callback",
        "/demo/callback",
        "/qr/AAAAAAAAAAAAAAAAAAAAAA",
        "/qr/AAAAAAAAAAAAAAAAAAAAAA/status",
        "/qr/AAAAAAAAAAAAAAAAAAAAAA/code.svg",
        "/qr/AAAAAAAAAAAAAAAAAAAAAA/events",
        "/device",
        "/admin",
        "/admin/users",
        "/admin/login",
        "/admin/callback",
        "/demo/outbox",
        "/branding/AAAAAAAAAAAAAAAAAAAAAA.css",
    ];
    let megabyte = "q".repeat(1024 * 1024);
    for path in paths {
        for (case, query) in [
            ("bad percent-encoding", "request=%&client_id=%G1%ZZ&state=%"),
            (
                "NUL and CR/LF",
                "request=%00%0d%0aX-Injected:%201&state=%0d%0aLocation:%20https://evil.example",
            ),
            (
                "duplicated",
                "request=a&request=b&client_id=x&client_id=y&state=1&state=2",
            ),
            (
                "empty values",
                "request=&client_id=&redirect_uri=&state=&code=",
            ),
        ] {
            let label = format!("GET {path} {case}");
            let answer = hostile
                .send(&label, Method::GET, &format!("{path}?{query}"), &[], "")
                .await;
            if answer
                .as_ref()
                .is_some_and(|a| a.status == 200 && path == "/authorize")
            {
                hostile.fail(
                    &label,
                    "an unusable authorization request was accepted".into(),
                );
            }
        }
        // Invalid UTF-8 raw in the request target: the HTTP layer refuses it with 400.
        let label = format!("GET {path} raw invalid UTF-8");
        let head = [
            b"GET ".as_slice(),
            path.as_bytes(),
            b"?state=\xff\xfe\xc0 HTTP/1.1\r\nHost: localhost\r\n\r\n",
        ]
        .concat();
        let status = hostile.send_raw(&label, &head, 0).await;
        if status != Some(400) {
            hostile.fail(&label, format!("expected 400, got {status:?}"));
        }
        // A 1 MB request line exceeds what the HTTP layer buffers (RFC 9110 §15.5.15: 414,
        // or RFC 6585 §5: 431); either way it is refused before any handler runs.
        let label = format!("GET {path} 1 MB parameter");
        let answer = hostile
            .send(
                &label,
                Method::GET,
                &format!("{path}?state={megabyte}"),
                &[],
                "",
            )
            .await;
        if let Some(a) = &answer
            && !matches!(a.status, 414 | 431)
        {
            hostile.fail(&label, format!("expected 414 or 431, got {}", a.status));
        }
    }
    hostile.finish("GET query strings");
}

const WEB_REDIRECT: &str = "https://app.example.com/cb";
const LOOPBACK_REDIRECT: &str = "http://127.0.0.1/callback";
const LOGOUT_REDIRECT: &str = "https://app.example.com/signed-out";

async fn client_with(
    server: &TestServer,
    redirect: &str,
    public: bool,
) -> (String, Option<String>) {
    tessera::admin::create_client(
        &server.app().store,
        tessera::admin::NewClient {
            org_id: &server.app().default_org.id,
            name: "Hostile test app",
            redirect_uris: &[redirect.to_owned()],
            post_logout_redirect_uris: &[LOGOUT_REDIRECT.to_owned()],
            public,
            id: None,
            secret: None,
            backchannel_logout_uri: None,
        },
    )
    .await
    .expect("client created")
}

/// RFC 9700 §4.1.1 and §4.1.3: a redirect URI that is not exactly a registered one gets an
/// error page and no redirect (not even an error redirect); a logout redirect likewise.
#[tokio::test(flavor = "multi_thread")]
async fn redirect_uri_attacks_never_redirect() {
    let server = TestServer::start().await;
    let (web, _) = client_with(&server, WEB_REDIRECT, false).await;
    let (native, _) = client_with(&server, LOOPBACK_REDIRECT, true).await;
    let mut hostile = Hostile::new(
        &server,
        harness::unpooled_client(),
        &[WEB_REDIRECT, LOGOUT_REDIRECT],
    );
    let web_attacks = [
        "https://APP.example.com/cb",
        "https://app.example.com/CB",
        "HTTPS://app.example.com/cb",
        "https://app.example.com/cb/",
        "https://app.example.com/cb/extra",
        "https://app.example.com/cb/../cb",
        "https://app.example.com/x/../cb",
        "https://app.example.com/cb%2F..%2Fevil",
        "https://app.example.com@evil.example/cb",
        "https://evil.example@app.example.com/cb",
        "https://app.example.com/cb#fragment",
        "https://app.example.com/cb?injected=1",
        "https://app.example.com:443/cb",
        "https://app.example.com:8443/cb",
        "https://app.example.com.evil.example/cb",
        "https://xn--pp-7ka.example.com/cb",
        "https://\u{0430}pp.example.com/cb",
        "https://app.example.com/cb\u{0000}",
        "https://app.example.com/cb\r\nLocation: https://evil.example",
        "http://app.example.com/cb",
        "//evil.example/cb",
        "javascript:alert(7)//app.example.com/cb",
        MARKUP,
    ];
    for attack in web_attacks {
        let path = format!(
            "/authorize?client_id={web}&redirect_uri={}&response_type=code&scope=openid&state=s",
            enc(attack)
        );
        let label = format!("authorize redirect_uri {attack:?}");
        let answer = hostile.send(&label, Method::GET, &path, &[], "").await;
        hostile.expect_page(&label, &answer, 400);
    }
    // RFC 8252 §7.3: only the port of a loopback redirect may vary.
    for (attack, allowed) in [
        ("http://127.0.0.1:51000/callback", true),
        ("http://127.0.0.1:51000/callback/", false),
        ("http://127.0.0.1:51000/other", false),
        ("http://localhost:51000/callback", false),
        ("http://[::1]:51000/callback", false),
        ("http://user@127.0.0.1:51000/callback", false),
        ("http://127.0.0.1:51000/callback#x", false),
        ("https://127.0.0.1:51000/callback", false),
        ("http://127.0.0.2:51000/callback", false),
        ("http://127.0.0.1.evil.example:51000/callback", false),
    ] {
        let challenge = tessera::oidc::authorize::pkce::s256(&"v".repeat(43));
        let path = format!(
            "/authorize?client_id={native}&redirect_uri={}&response_type=code&scope=openid&code_challenge={challenge}&code_challenge_method=S256",
            enc(attack)
        );
        let label = format!("loopback redirect_uri {attack}");
        let answer = hostile.send(&label, Method::GET, &path, &[], "").await;
        if allowed {
            // Accepted: the person is sent to Tessera's own sign-in page.
            hostile.expect_status(&label, &answer, 303);
        } else {
            hostile.expect_page(&label, &answer, 400);
        }
    }
    // RP-Initiated Logout §3: post_logout_redirect_uri must match a registered one exactly.
    for attack in web_attacks.iter().copied().chain([
        "https://app.example.com/signed-out/",
        "https://app.example.com/signed-out?next=https://evil.example",
        "https://app.example.com/cb",
        "https://evil.example/signed-out",
    ]) {
        for method in [Method::GET, Method::POST] {
            let query = format!(
                "client_id={web}&post_logout_redirect_uri={}&state=s",
                enc(attack)
            );
            let label = format!("{method} logout post_logout_redirect_uri {attack:?}");
            let answer = if method == Method::GET {
                hostile
                    .send(&label, method, &format!("/logout?{query}"), &[], "")
                    .await
            } else {
                hostile
                    .send(&label, method, "/logout", &[("content-type", FORM)], query)
                    .await
            };
            hostile.expect_page(&label, &answer, 400);
        }
    }
    // Without a client the URI cannot be checked, so nobody is redirected.
    let label = "logout redirect without client";
    let path = format!("/logout?post_logout_redirect_uri={}", enc(LOGOUT_REDIRECT));
    let answer = hostile.send(label, Method::GET, &path, &[], "").await;
    hostile.expect_page(label, &answer, 400);
    // The registered one still works, and a hostile state stays inside its parameter.
    let label = "logout to the registered URI with a hostile state";
    let path = format!(
        "/logout?client_id={web}&post_logout_redirect_uri={}&state={}",
        enc(LOGOUT_REDIRECT),
        enc(&format!("\r\n{MARKUP}\0"))
    );
    let answer = hostile.send(label, Method::GET, &path, &[], "").await;
    hostile.expect_status(label, &answer, 303);
    if let Some(location) = answer.and_then(|a| a.location) {
        let state = common::query_of(&location)
            .remove("state")
            .unwrap_or_default();
        assert!(location.starts_with(&format!("{LOGOUT_REDIRECT}?state=")));
        assert_eq!(state, format!("\r\n{MARKUP}\0"));
    }
    hostile.finish("redirect URIs");
}

/// The forged and broken JWTs of RFC 8725 §2, as `id_token_hint` (authorize, logout) and
/// as bearer token (userinfo header and form, introspect, revoke).
#[tokio::test(flavor = "multi_thread")]
async fn hostile_jwts_are_refused_wherever_a_jwt_is_accepted() {
    let server = TestServer::start().await;
    let (client_id, secret) = client_with(&server, WEB_REDIRECT, false).await;
    let secret = secret.unwrap();
    let email = "jwt@example.com";
    server.user(email).await;
    let browser = Browser::new(&server.url);
    let (url, verifier) = common::authorize_url(&server, &client_id, WEB_REDIRECT, &[]);
    let code = browser.authorize(&url, email, PASSWORD).await.params()["code"].clone();
    let (status, tokens) = common::exchange(
        &server,
        &client_id,
        Some(&secret),
        &code,
        WEB_REDIRECT,
        &verifier,
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    let access_token = tokens["access_token"].as_str().unwrap().to_owned();
    let issuer = server.issuer();
    let kid = common::header_of(&id_token)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let b64 = |v: &[u8]| tessera::security::b64url(v);
    let claims = common::claims_of(&access_token);
    let claims_json = claims.to_string();
    let foreign = tessera::tokens::keys::KeySet::generate().unwrap();
    let forged = |header: &str, payload: &str, signature: &[u8]| {
        format!(
            "{}.{}.{}",
            b64(header.as_bytes()),
            b64(payload.as_bytes()),
            b64(signature)
        )
    };
    let (signed_part, _) = access_token.rsplit_once('.').unwrap();
    let foreign_signature = foreign.active.sign(signed_part.as_bytes());
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let jwts: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(br#"{"alg":"none","typ":"at+jwt"}"#),
                b64(claims_json.as_bytes())
            ),
        ),
        (
            "alg None",
            forged(
                &format!(r#"{{"alg":"None","kid":"{kid}","typ":"at+jwt"}}"#),
                &claims_json,
                b"",
            ),
        ),
        (
            "alg HS256 keyed with the kid",
            forged(
                &format!(r#"{{"alg":"HS256","kid":"{kid}","typ":"at+jwt"}}"#),
                &claims_json,
                &tessera::security::hmac_sha256(kid.as_bytes(), signed_part.as_bytes()),
            ),
        ),
        (
            "unknown kid",
            forged(
                r#"{"alg":"RS256","kid":"no-such-key","typ":"at+jwt"}"#,
                &claims_json,
                b"sig",
            ),
        ),
        (
            "no kid",
            forged(r#"{"alg":"RS256","typ":"at+jwt"}"#, &claims_json, b"sig"),
        ),
        (
            "foreign key under our kid",
            format!("{signed_part}.{}", b64(&foreign_signature)),
        ),
        (
            "foreign key under its own kid",
            tessera::fuzzing::signed_with_payload(&foreign, "at+jwt", claims_json.as_bytes()),
        ),
        (
            "truncated signature",
            access_token[..access_token.len() - 10].to_owned(),
        ),
        ("signature removed", format!("{signed_part}.")),
        ("payload altered", {
            let mut altered = claims.clone();
            altered["sub"] = serde_json::json!("someone-else");
            format!(
                "{}.{}.{}",
                signed_part.split('.').next().unwrap(),
                b64(altered.to_string().as_bytes()),
                access_token.rsplit('.').next().unwrap()
            )
        }),
        ("ID token as bearer token", id_token.clone()),
        ("four segments", format!("{access_token}.x")),
        (
            "15 KB header",
            forged(
                &format!(
                    r#"{{"alg":"RS256","kid":"{kid}","x":"{}"}}"#,
                    "h".repeat(15_000)
                ),
                "{}",
                b"s",
            ),
        ),
        (
            "1 MB header",
            forged(
                &format!(r#"{{"alg":"RS256","x":"{}"}}"#, "h".repeat(1024 * 1024)),
                "{}",
                b"s",
            ),
        ),
        (
            "deeply nested header",
            forged(&deep[..12_000.min(deep.len())], "{}", b"s"),
        ),
        (
            "nested JSON payload",
            format!(
                "{}.{}.c2ln",
                signed_part.split('.').next().unwrap(),
                b64(format!("{}{}", "{\"a\":".repeat(3000), "}".repeat(3000)).as_bytes())
            ),
        ),
        ("not base64", "@@@.###.$$$".to_owned()),
        ("markup", MARKUP.to_owned()),
        ("control characters", "a\r\nb.\0.c".to_owned()),
    ];
    let mut hostile = Hostile::new(&server, harness::unpooled_client(), &[WEB_REDIRECT]);
    let (authorize, _) = common::authorize_url(&server, &client_id, WEB_REDIRECT, &[]);
    let authorize = authorize.trim_start_matches(&server.url).to_owned();
    let basic = format!(
        "Basic {}",
        base64_standard(format!("{client_id}:{secret}").as_bytes())
    );
    for (name, jwt) in &jwts {
        let big = jwt.len() > 64 * 1024;
        // A genuine ID token is a valid hint (OIDC Core §3.1.2.1), though never a bearer token.
        let valid_hint = *name == "ID token as bearer token";
        let label = format!("id_token_hint {name} at authorize");
        let answer = hostile
            .send(
                &label,
                Method::GET,
                &format!("{authorize}&id_token_hint={}", enc(jwt)),
                &[],
                "",
            )
            .await;
        if big {
            expect_refused_head(&mut hostile, &label, &answer);
        } else if valid_hint {
            // Accepted; with no session in this client the person is asked to sign in.
            hostile.expect_status(&label, &answer, 303);
            if answer.as_ref().is_some_and(|a| a.error().is_some()) {
                hostile.fail(&label, "a genuine hint was refused".into());
            }
        } else {
            // OIDC Core §3.1.2.6: the client is known good, so the error goes back to it.
            hostile.expect_error(&label, &answer, 303, "invalid_request");
        }
        let label = format!("id_token_hint {name} at logout");
        let answer = hostile
            .send(
                &label,
                Method::GET,
                &format!("/logout?id_token_hint={}", enc(jwt)),
                &[],
                "",
            )
            .await;
        if big {
            expect_refused_head(&mut hostile, &label, &answer);
        } else {
            // A valid hint without a session: already signed out, the signed-out page.
            hostile.expect_page(&label, &answer, if valid_hint { 200 } else { 400 });
        }
        let label = format!("bearer {name} at userinfo (header)");
        let header_safe = !jwt.contains(['\r', '\n', '\0']);
        if header_safe {
            let bearer = format!("Bearer {jwt}");
            let answer = hostile
                .send(
                    &label,
                    Method::GET,
                    "/userinfo",
                    &[("authorization", &bearer)],
                    "",
                )
                .await;
            if big {
                expect_refused_head(&mut hostile, &label, &answer);
            } else {
                // RFC 6750 §3.1.
                hostile.expect_status(&label, &answer, 401);
                let challenge = answer
                    .as_ref()
                    .and_then(|a| a.www_authenticate.clone())
                    .unwrap_or_default();
                if !challenge.contains("error=\"invalid_token\"") {
                    hostile.fail(&label, format!("WWW-Authenticate: {challenge}"));
                }
            }
        }
        let form = format!("access_token={}", enc(jwt));
        let label = format!("bearer {name} at userinfo (form)");
        let answer = hostile
            .send(
                &label,
                Method::POST,
                "/userinfo",
                &[("content-type", FORM)],
                form,
            )
            .await;
        let expected = if form_len(jwt) > 64 * 1024 { 413 } else { 401 };
        hostile.expect_status(&label, &answer, expected);
        for (endpoint, inactive) in [("/introspect", r#"{"active":false}"#), ("/revoke", "")] {
            let label = format!("token {name} at {endpoint}");
            let body = format!("token={}", enc(jwt));
            let answer = hostile
                .send(
                    &label,
                    Method::POST,
                    endpoint,
                    &[("content-type", FORM), ("authorization", &basic)],
                    body,
                )
                .await;
            if form_len(jwt) > 64 * 1024 {
                hostile.expect_status(&label, &answer, 413);
            } else {
                // RFC 7662 §2.2 / RFC 7009 §2.2: an invalid token is inactive, or revoked "fine".
                hostile.expect_status(&label, &answer, 200);
                if answer
                    .as_ref()
                    .is_some_and(|a| a.body.replace(' ', "") != inactive)
                {
                    hostile.fail(&label, format!("body {:?}", answer.map(|a| a.body)));
                }
            }
        }
    }
    // None of that touched the genuine tokens.
    let answer = hostile
        .send(
            "genuine access token",
            Method::GET,
            "/userinfo",
            &[("authorization", &format!("Bearer {access_token}"))],
            "",
        )
        .await;
    hostile.expect_status("genuine access token", &answer, 200);
    let label = "genuine id_token_hint";
    let answer = hostile
        .send(
            label,
            Method::GET,
            &format!("{authorize}&id_token_hint={id_token}&prompt=none"),
            &[],
            "",
        )
        .await;
    hostile.expect_status(label, &answer, 303);
    if answer.as_ref().and_then(Answer::error).as_deref() == Some("invalid_request") {
        hostile.fail(label, "a genuine hint was refused".into());
    }
    let _ = issuer;
    hostile.finish("JWTs");
}

fn form_len(value: &str) -> usize {
    enc(value).len() + 16
}

fn base64_standard(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A request head too large for the HTTP layer: refused with 414/431, or the connection is
/// closed; never handled.
fn expect_refused_head(hostile: &mut Hostile<'_>, label: &str, answer: &Option<Answer>) {
    if let Some(a) = answer
        && !matches!(a.status, 413 | 414 | 431)
    {
        hostile.fail(label, format!("expected 413, 414 or 431, got {}", a.status));
    }
}

/// Client authentication (RFC 6749 §2.3.1, §5.2): malformed Basic credentials are
/// `invalid_client` with 401 and a Basic challenge; two methods at once are `invalid_request`.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_client_authentication_is_invalid_client() {
    let server = TestServer::start().await;
    let (client_id, secret) = client_with(&server, WEB_REDIRECT, false).await;
    let secret = secret.unwrap();
    let mut hostile = Hostile::new(&server, harness::unpooled_client(), &[]);
    let b = |s: &[u8]| base64_standard(s);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("scheme only", "Basic".into(), 401, "invalid_client"),
        ("empty credentials", "Basic ".into(), 401, "invalid_client"),
        ("not base64", "Basic !!!$$$".into(), 401, "invalid_client"),
        (
            "no colon",
            format!("Basic {}", b(b"no-separator")),
            401,
            "invalid_client",
        ),
        (
            "empty client id",
            format!("Basic {}", b(b":secret")),
            401,
            "invalid_client",
        ),
        (
            "invalid UTF-8",
            format!("Basic {}", b(b"\xff\xfe:\xc0\x80")),
            401,
            "invalid_client",
        ),
        (
            "NUL in id",
            format!("Basic {}", b(b"a\0b:secret")),
            401,
            "invalid_client",
        ),
        (
            "markup in id",
            format!("Basic {}", b(format!("{}:x", enc(MARKUP)).as_bytes())),
            401,
            "invalid_client",
        ),
        (
            "huge id",
            format!(
                "Basic {}",
                b(format!("{}:x", "i".repeat(20_000)).as_bytes())
            ),
            401,
            "invalid_client",
        ),
        (
            "wrong secret",
            format!("Basic {}", b(format!("{client_id}:wrong").as_bytes())),
            401,
            "invalid_client",
        ),
        (
            "other scheme",
            "Digest username=x".into(),
            401,
            "invalid_client",
        ),
        ("bearer instead", "Bearer abc".into(), 401, "invalid_client"),
    ];
    for endpoint in ["/token", "/revoke", "/introspect"] {
        for (case, header, status, code) in &cases {
            let label = format!("{endpoint} {case}");
            let answer = hostile
                .send(
                    &label,
                    Method::POST,
                    endpoint,
                    &[("content-type", FORM), ("authorization", header)],
                    "grant_type=client_credentials&token=t",
                )
                .await;
            hostile.expect_error(&label, &answer, *status, code);
            if answer.as_ref().is_some_and(|a| {
                !a.www_authenticate
                    .as_deref()
                    .unwrap_or("")
                    .starts_with("Basic")
            }) {
                hostile.fail(
                    &label,
                    "401 invalid_client without a Basic challenge".into(),
                );
            }
        }
        let good = format!("Basic {}", b(format!("{client_id}:{secret}").as_bytes()));
        let label = format!("{endpoint} Basic and client_secret");
        let answer = hostile
            .send(
                &label,
                Method::POST,
                endpoint,
                &[("content-type", FORM), ("authorization", &good)],
                format!("grant_type=client_credentials&token=t&client_secret={secret}"),
            )
            .await;
        hostile.expect_error(&label, &answer, 400, "invalid_request");
        let label = format!("{endpoint} duplicated client_secret");
        let answer = hostile
            .send(
                &label,
                Method::POST,
                endpoint,
                &[("content-type", FORM)],
                format!("grant_type=client_credentials&token=t&client_id={client_id}&client_secret={secret}&client_secret=x"),
            )
            .await;
        hostile.expect_error(&label, &answer, 400, "invalid_request");
    }
    // The genuine credentials still work after the failures above (under the lockout limit).
    let (status, body) = common::token_request(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    hostile.finish("client authentication");
}

/// NUL, CR/LF and markup in every value that travels back to the person or the client:
/// `state`, `nonce`, `login_hint`, error descriptions. Redirects carry them encoded inside
/// their own parameter; pages carry them HTML-escaped.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_values_are_never_reflected_raw() {
    let server = TestServer::start().await;
    let (client_id, _) = client_with(&server, WEB_REDIRECT, false).await;
    let browser = Browser::new(&server.url);
    let mut hostile = Hostile::new(&server, browser.http.clone(), &[WEB_REDIRECT]);
    let evil = format!("\0\r\nSet-Cookie: injected=1\r\n{MARKUP}");
    for (name, extra) in [
        ("state", vec![("state", evil.as_str())]),
        ("nonce", vec![("nonce", evil.as_str())]),
        ("login_hint", vec![("login_hint", evil.as_str())]),
        // Error descriptions that quote the request: the redirect carries them encoded.
        (
            "prompt (error description)",
            vec![("prompt", evil.as_str()), ("state", evil.as_str())],
        ),
        (
            "scope (error description)",
            vec![("scope", evil.as_str()), ("state", evil.as_str())],
        ),
        (
            "response_mode (error description)",
            vec![("response_mode", evil.as_str())],
        ),
        (
            "max_age (error description)",
            vec![("max_age", evil.as_str())],
        ),
        (
            "code_challenge (error description)",
            vec![("code_challenge", evil.as_str())],
        ),
    ] {
        let (url, _) = common::authorize_url(&server, &client_id, WEB_REDIRECT, &extra);
        let path = url.trim_start_matches(&server.url).to_owned();
        let label = format!("authorize with hostile {name}");
        let answer = hostile.send(&label, Method::GET, &path, &[], "").await;
        let Some(location) = answer.as_ref().and_then(|a| a.location.clone()) else {
            hostile.fail(&label, "no redirect".into());
            continue;
        };
        if location.starts_with(WEB_REDIRECT) {
            let query = common::query_of(&location);
            if !query.contains_key("error") {
                hostile.fail(
                    &label,
                    format!("redirected to the client without an error: {location}"),
                );
            }
            // RFC 6749 §4.1.2.1: state comes back exactly as sent, inside its own parameter.
            if extra.iter().any(|(k, _)| *k == "state") && query.get("state") != Some(&evil) {
                hostile.fail(&label, format!("state altered: {:?}", query.get("state")));
            }
            if query.get("iss").map(String::as_str) != Some(server.issuer().as_str()) {
                hostile.fail(&label, "error redirect without iss (RFC 9207)".into());
            }
        } else {
            // Accepted (nonce, login_hint): the sign-in page shows, with the hint escaped.
            let page = hostile
                .send(
                    &format!("{label}: sign-in page"),
                    Method::GET,
                    &location,
                    &[],
                    "",
                )
                .await;
            hostile.expect_page(&label, &page, 200);
            let escaped = ["&lt;script&gt;alert(7)", "&#60;script&#62;alert(7)"];
            if name == "login_hint"
                && page
                    .as_ref()
                    .is_some_and(|p| !escaped.iter().any(|e| p.body.contains(e)))
            {
                hostile.fail(
                    &label,
                    "the hint is neither shown escaped nor dropped".into(),
                );
            }
        }
    }
    // A form_post error answer is a page: every value is an escaped attribute.
    let (url, _) = common::authorize_url(
        &server,
        &client_id,
        WEB_REDIRECT,
        &[
            ("response_mode", "form_post"),
            ("state", &evil),
            ("prompt", "bogus"),
        ],
    );
    let label = "form_post error with hostile state";
    let answer = hostile
        .send(
            label,
            Method::GET,
            url.trim_start_matches(&server.url),
            &[],
            "",
        )
        .await;
    hostile.expect_page(label, &answer, 200);
    if answer
        .as_ref()
        .is_some_and(|a| !a.body.contains(&format!("action=\"{WEB_REDIRECT}\"")))
    {
        hostile.fail(label, "the form does not post to the registered URI".into());
    }
    hostile.finish("reflection");
}

/// The signed-in forms and passkey JSON calls: missing, wrong, duplicated and empty CSRF
/// tokens and fields are refused, and the session they were sent with still works.
#[tokio::test(flavor = "multi_thread")]
async fn signed_in_forms_refuse_hostile_input_and_keep_the_session() {
    let server = server_with_passkeys().await;
    let email = "forms@example.com";
    server.user(email).await;
    let browser = Browser::new(&server.issuer());
    let start = browser.follow("/account/login").await;
    let common::Landing::Page(200, page) = start else {
        panic!("no sign-in page for the account console");
    };
    // After a password sign-in the passkey offer may show first; the session exists either way.
    if let common::Landing::Page(status, body) = browser.submit_login(&page, email, PASSWORD).await
    {
        assert_eq!(status, 200, "{body}");
    }
    let account = browser
        .http
        .get(format!("{}/account", server.issuer()))
        .send()
        .await
        .unwrap();
    let account = account.text().await.unwrap();
    assert!(
        account.contains("sign-out-everywhere"),
        "not signed in: {account}"
    );
    let csrf = common::hidden(&account, "csrf");
    let mut hostile = Hostile::new(&server, browser.http.clone(), &[]).via_issuer();
    let forms = [
        "/account/sessions/end",
        "/account/sign-out-everywhere",
        "/account/passkeys/rename",
        "/account/passkeys/delete",
        "/logout/confirm",
        "/passkeys/offer/dismiss",
    ];
    for path in forms {
        for (case, body, expected) in [
            (
                "missing csrf",
                "session=x&id=x&name=x&decision=logout&request=x".to_owned(),
                [403, 422],
            ),
            (
                "wrong csrf",
                format!(
                    "csrf={}&session=x&id=x&name=x&decision=logout&request=x",
                    "A".repeat(43)
                ),
                [403, 400],
            ),
            // The genuine token second: a form that took the last value would act.
            (
                "duplicated csrf",
                format!("csrf=x&csrf={csrf}&session=x&id=x&name=x&decision=logout&request=x"),
                [403, 422],
            ),
            (
                "markup everywhere",
                format!(
                    "csrf={}&session={0}&id={0}&name={0}&decision={0}&request={0}",
                    enc(MARKUP)
                ),
                [403, 400],
            ),
        ] {
            // The offer is dismissed for a pending request, which `request=x` does not name.
            let expected = if path == "/passkeys/offer/dismiss" {
                [400, 400]
            } else {
                expected
            };
            let label = format!("{path} {case}");
            let answer = hostile
                .send(&label, Method::POST, path, &[("content-type", FORM)], body)
                .await;
            if !answer
                .as_ref()
                .is_some_and(|a| expected.contains(&a.status))
            {
                hostile.fail(
                    &label,
                    format!(
                        "expected one of {expected:?}, got {:?}",
                        answer.as_ref().map(|a| (a.status, a.body.clone()))
                    ),
                );
            }
        }
    }
    for path in [
        "/account/passkeys/options",
        "/account/passkeys/finish",
        "/login/passkey/options",
        "/login/passkey/finish",
    ] {
        for (case, body, expected) in [
            ("wrong csrf", format!(r#"{{"csrf":"{}","request":"x","ceremony":"x","credential":{{}},"name":"n"}}"#, "A".repeat(43)), [400, 403]),
            ("markup", serde_json::json!({"csrf": MARKUP, "request": MARKUP, "ceremony": MARKUP, "credential": {"id": MARKUP}, "name": MARKUP, "email": MARKUP}).to_string(), [400, 403]),
            ("wrong types", r#"{"csrf":1,"request":[],"ceremony":null,"credential":"x"}"#.to_owned(), [400, 400]),
            ("deep nesting", format!("{}{}", "[".repeat(20_000), "]".repeat(20_000)), [400, 400]),
        ] {
            let label = format!("{path} {case}");
            let answer = hostile.send(&label, Method::POST, path, &[("content-type", "application/json")], body).await;
            if !answer.as_ref().is_some_and(|a| expected.contains(&a.status)) {
                hostile.fail(&label, format!("expected one of {expected:?}, got {:?}", answer.as_ref().map(|a| (a.status, a.body.clone()))));
            }
            if answer.as_ref().is_some_and(|a| a.status == 200) {
                hostile.fail(&label, "accepted".into());
            }
        }
    }
    // The session survived all of it.
    let label = "account page after the hostile forms";
    let answer = hostile.send(label, Method::GET, "/account", &[], "").await;
    hostile.expect_page(label, &answer, 200);
    if answer.as_ref().is_some_and(|a| !a.body.contains(email)) {
        hostile.fail(label, "the session was lost".into());
    }
    hostile.finish("signed-in forms");
}

//! Prometheus metrics: served on their own listener only, and the counters move with the
//! right labels when a real flow runs. One test in this binary, because the registry is
//! process-wide and the test asserts exact increments.

mod common;

use std::collections::HashMap;

use common::{Browser, Landing, TestServer, authorize_url, refresh, sign_in};

const REDIRECT: &str = "https://rp.example.com/cb";

/// `name{labels}` → value, for every sample line of an exposition.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(server: &TestServer) -> (String, HashMap<String, f64>) {
    let addr = server
        .running
        .as_ref()
        .unwrap()
        .metrics_addr
        .expect("metrics enabled");
    let response = common::plain_client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    let parsed = samples(&text);
    (text, parsed)
}

fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, series: &str) -> f64 {
    after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flow_moves_the_counters_with_route_templates_and_outcomes() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let secret = secret.unwrap();
    server.user("metrics@example.com").await;

    assert_eq!(
        server.get("/metrics").await.status(),
        404,
        "metrics are never on the public listener"
    );
    let (_, before) = scrape(&server).await;

    let (_browser, tokens) =
        sign_in(&server, &client_id, Some(&secret), "metrics@example.com").await;
    let (status, _) = refresh(
        &server,
        &client_id,
        &secret,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let wrong = Browser::new(&server.url);
    let (url, _) = authorize_url(&server, &client_id, REDIRECT, &[]);
    match wrong
        .authorize(&url, "metrics@example.com", "not the password")
        .await
    {
        Landing::Page(401, _) => {}
        _ => panic!("a wrong password shows the form again with 401"),
    }

    let (text, after) = scrape(&server).await;
    let expect = |series: &str, n: f64| {
        assert_eq!(delta(&before, &after, series), n, "{series} in\n{text}");
    };
    expect(
        "tessera_sign_ins_total{method=\"password\",outcome=\"success\"}",
        1.0,
    );
    expect(
        "tessera_sign_ins_total{method=\"password\",outcome=\"failure\"}",
        1.0,
    );
    expect(
        "tessera_tokens_issued_total{grant=\"authorization_code\"}",
        1.0,
    );
    expect("tessera_tokens_issued_total{grant=\"refresh_token\"}", 1.0);
    expect(
        "tessera_http_requests_total{route=\"/token\",method=\"POST\",status=\"200\"}",
        2.0,
    );
    expect(
        "tessera_http_requests_total{route=\"/login\",method=\"POST\",status=\"401\"}",
        1.0,
    );
    expect(
        "tessera_http_request_duration_seconds_count{route=\"/token\",method=\"POST\"}",
        2.0,
    );
    expect(
        "tessera_http_request_duration_seconds_bucket{route=\"/token\",method=\"POST\",le=\"+Inf\"}",
        2.0,
    );
    // An access token and an ID token per token response.
    expect("tessera_signing_duration_seconds_count", 4.0);
    assert!(
        after
            .keys()
            .any(|k| k
                .starts_with("tessera_http_requests_total{route=\"/authorize\",method=\"GET\"")),
        "{text}"
    );
    assert!(
        !text.contains("route=\"/authorize?"),
        "labels carry route templates, never raw URLs with codes"
    );
    assert_eq!(after["tessera_active_sessions"], 1.0, "{text}");
    assert_eq!(after["tessera_db_pool_connections{state=\"max\"}"], 8.0);
    assert!(after["tessera_db_pool_connections{state=\"open\"}"] >= 1.0);
    assert_eq!(after["tessera_up"], 1.0);

    // Passkeys need a hostname issuer: a second server, same process-wide counters.
    let pk_server = common::passkey::server().await;
    let (pk_client, _) = pk_server.client(false, REDIRECT).await;
    pk_server.user("pk-metrics@example.com").await;
    let mut soft = webauthn_authenticator_rs::softpasskey::SoftPasskey::new(true);
    let browser = Browser::new(&pk_server.issuer());
    let (page, _) = common::passkey::sign_in_page(&pk_server, &browser, &pk_client, &[]).await;
    let Landing::Page(200, offer) = browser
        .submit_login(&page, "pk-metrics@example.com", common::PASSWORD)
        .await
    else {
        panic!("the passkey offer follows a password sign-in")
    };
    let origin = common::passkey::origin(&pk_server);
    common::passkey::register(&browser, &offer, &mut soft, origin.clone(), "Key").await;
    let (_, before) = scrape(&pk_server).await;
    let fresh = Browser::new(&pk_server.issuer());
    let (page, _) = common::passkey::sign_in_page(&pk_server, &fresh, &pk_client, &[]).await;
    let (status, finished, replay) = common::passkey::passkey_sign_in(
        &fresh,
        &page,
        "pk-metrics@example.com",
        &mut soft,
        origin,
    )
    .await;
    assert_eq!(status, 200, "{finished}");
    let (status, _) = common::passkey::post_json(&fresh, "/login/passkey/finish", replay).await;
    assert_eq!(status, 400, "a replayed ceremony is refused");
    let (text, after) = scrape(&pk_server).await;
    for (outcome, n) in [("success", 1.0), ("failure", 1.0)] {
        let series = format!("tessera_sign_ins_total{{method=\"passkey\",outcome=\"{outcome}\"}}");
        assert_eq!(delta(&before, &after, &series), n, "{series} in\n{text}");
    }
}

//! Micro-benchmarks of the hot pure pieces (`cargo bench --bench micro`): RS256 signing of an
//! ID token, sealing an opaque access token, hashing a token for storage, and parsing plus
//! validating an authorization request against a real (SQLite) store.
//!
//! They explain the load test's figures: the token endpoint's ceiling is about
//! 1 / (signatures per response × signing time) per core.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use tessera::oidc::scope::Scope;
use tessera::store::users::User;
use tessera::tokens::access_token;
use tessera::tokens::id_token::{self, IdTokenInput};
use tessera::tokens::jws;
use tessera::tokens::keys::KeySet;

fn user() -> User {
    User {
        id: "usr_8Qm2x1cZpA0tY7wB".into(),
        org_id: "default".into(),
        email: "ada@example.com".into(),
        email_normalized: "ada@example.com".into(),
        email_verified: true,
        name: Some("Ada Lovelace".into()),
        given_name: Some("Ada".into()),
        family_name: Some("Lovelace".into()),
        phone_number: None,
        phone_number_verified: false,
        locale: None,
        password_hash: None,
        disabled: false,
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
        webauthn_handle: None,
        role: "member".into(),
    }
}

fn tokens(c: &mut Criterion) {
    let keys = KeySet::generate().expect("RSA key");
    let key = &keys.active;
    let user = user();
    let scope = Scope::parse("openid email profile offline_access");
    let amr = vec!["pwd".to_owned()];
    let claims = id_token::claims(&IdTokenInput {
        issuer: "https://id.example.com",
        client_id: "app_3c9dJq",
        user: &user,
        scope: &scope,
        nonce: Some("n-0S6_WzA2Mj"),
        auth_time: 1_700_000_000,
        amr: &amr,
        acr: "1",
        sid: Some("sid_1f8a"),
        access_token: Some("tat_example"),
        now: 1_700_000_100,
        ttl_secs: 3600,
        reauthentication_claim: "can_reauthenticate",
        can_reauthenticate: true,
    });
    c.bench_function("id_token: RS256 sign (RSA-2048, aws-lc-rs)", |b| {
        b.iter(|| jws::sign(key, "JWT", black_box(&claims)))
    });
    let sealing_key = access_token::sealing_key(&[7u8; 32]);
    let at_claims = json!({
        "iss": "https://id.example.com", "sub": user.id, "aud": "https://id.example.com",
        "client_id": "app_3c9dJq", "scope": "openid email", "iat": 1_700_000_100,
        "exp": 1_700_001_000, "jti": "b0e1c2", "gid": "grt_77Aa",
    });
    c.bench_function("access_token: opaque seal (AES-256-GCM)", |b| {
        b.iter(|| access_token::seal(&sealing_key, black_box(&at_claims)))
    });
    let refresh_token = tessera::security::random_secret();
    c.bench_function("token hashing: SHA-256 digest for storage", |b| {
        b.iter(|| tessera::security::digest(black_box(&refresh_token)))
    });
}

fn authorization_request(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let data = tempfile::tempdir().expect("temp dir");
    let app = runtime.block_on(async {
        let mut config = tessera::config::Config::default();
        config.data_dir = data.path().to_owned();
        config.demo = false;
        config.validate().expect("config");
        tessera::app::build(config).await.expect("app")
    });
    let redirect_uris = vec!["https://rp.example.com/cb".to_owned()];
    let (client_id, _) = runtime.block_on(async {
        tessera::admin::create_client(
            &app.store,
            tessera::admin::NewClient {
                org_id: &app.default_org.id,
                name: "bench",
                redirect_uris: &redirect_uris,
                post_logout_redirect_uris: &[],
                public: false,
                id: None,
                secret: None,
                backchannel_logout_uri: None,
            },
        )
        .await
        .expect("client")
    });
    let query = format!(
        "response_type=code&client_id={client_id}&redirect_uri=https%3A%2F%2Frp.example.com%2Fcb\
         &scope=openid%20email%20offline_access&state=af0ifjsldkj&nonce=n-0S6_WzA2Mj\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256\
         &prompt=login&max_age=300"
    );
    c.bench_function(
        "authorize: parse + validate a request (client from SQLite)",
        |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let params = tessera::http::params::Params::parse(black_box(query.as_bytes()));
                    tessera::oidc::authorize::request::validate(&app, &params)
                        .await
                        .map(|_| ())
                        .map_err(|r| r.description)
                        .expect("a valid request")
                })
            })
        },
    );
}

criterion_group!(benches, tokens, authorization_request);
criterion_main!(benches);

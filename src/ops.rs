//! Operations: health and readiness probes, embedded static files, panic answers and the
//! housekeeping that keeps tables bounded.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::store;

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers and a signing key is loaded.
pub async fn readyz(State(app): State<AppState>) -> Response {
    match app.store.ping().await {
        Ok(()) if !app.keys.current().active.kid.is_empty() => "ready".into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response(),
    }
}

/// Static files are compiled into the binary, so the server runs from any directory.
const STATIC_FILES: &[(&str, &str, &str)] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../static/style.css"),
    ),
    (
        "form_post.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/form_post.js"),
    ),
    (
        "webauthn.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/webauthn.js"),
    ),
    (
        "qr.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/qr.js"),
    ),
];

pub async fn static_file(Path(file): Path<String>) -> Response {
    match STATIC_FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => {
            let mut response = (*body).into_response();
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            response
        }
        None => crate::error::Error::page(StatusCode::NOT_FOUND, "Not found", "No such file.")
            .into_response(),
    }
}

/// A panic becomes a generic 500: the message is logged, never sent.
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    crate::error::Error::Internal(format!("handler panicked: {detail}")).into_response()
}

/// Deletes what has expired, so that every table stays bounded by rate × lifetime: codes,
/// device authorizations and rotated refresh tokens (kept `tokens.reuse_detection_secs` past
/// use or expiry so that a late replay is still recognised), pending requests, sessions,
/// grants, rate-limit windows, retired keys, WebAuthn ceremonies, QR sign-ins and companion
/// challenges. First, sessions that ended without anyone calling (idle or absolute expiry)
/// get their back-channel logout, so that purging never drops an unnotified session.
pub async fn housekeeping(app: &AppState) {
    match crate::session::logout::sweep_ended(app).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(n, "ended sessions notified"),
        Err(e) => tracing::warn!(error = %e, "sweeping ended sessions failed"),
    }
    let now = store::now();
    let reuse_window = app.config.tokens.reuse_detection_secs;
    let results = [
        (
            "codes",
            store::codes::purge_expired(&app.store, now - reuse_window).await,
        ),
        (
            "device authorizations",
            store::device_authorizations::purge_expired(&app.store, now - reuse_window).await,
        ),
        (
            "rotated refresh tokens",
            store::refresh_tokens::purge_used(&app.store, now - reuse_window).await,
        ),
        (
            "authorization requests",
            store::auth_requests::purge_expired(&app.store, now).await,
        ),
        (
            "sessions",
            store::sessions::purge_ended(&app.store, now, reuse_window).await,
        ),
        (
            "grants",
            store::grants::purge_ended(&app.store, now, reuse_window).await,
        ),
        (
            "one-time codes",
            store::otp_challenges::purge_expired(&app.store, now).await,
        ),
        (
            "account codes and links",
            store::account_codes::purge_expired(&app.store, now).await,
        ),
        (
            "sign-ups in progress",
            store::signups::purge_expired(&app.store, now).await,
        ),
        (
            "audit entries",
            store::audit::purge_older_than(
                &app.store,
                now - app.config.audit_retention_days * 86_400,
            )
            .await,
        ),
        (
            "rate limits",
            store::rate_limits::purge_expired(&app.store, now).await,
        ),
        (
            "retired keys",
            store::keys::purge_retired(&app.store, now).await,
        ),
        (
            "WebAuthn ceremonies",
            store::passkeys::purge_expired_ceremonies(&app.store, now).await,
        ),
        (
            "QR sign-ins",
            store::qr_logins::purge_expired(&app.store, now).await,
        ),
        (
            "device challenges and enrollment codes",
            store::devices::purge_expired(&app.store, now).await,
        ),
        (
            "upstream sign-ins and pending links",
            store::upstream_identities::purge_expired(&app.store, now).await,
        ),
    ];
    for (what, result) in results {
        match result {
            Ok(0) => {}
            Ok(n) => tracing::debug!(what, n, "purged expired rows"),
            Err(e) => tracing::warn!(what, error = %e, "housekeeping failed"),
        }
    }
}

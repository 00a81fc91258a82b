//! QR sign-in over HTTP (the steps live in `authn::qr`). The waiting browser starts a QR
//! code, watches it over a WebSocket (or polls), and redeems the sealed grant; the phone
//! opens the QR URL, sees what is asking, and approves with the match code or denies.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::views::{QrApprovePage, QrDecidedPage};
use crate::app::{App, AppState};
use crate::authn::methods::Method;
use crate::authn::qr::{self, Approver, Decided, Decision, Scan, Status};
use crate::error::{Error, JsonError, PageError};
use crate::http::cookies;
use crate::http::params::Params;
use crate::oidc::authorize::response::redirect;
use crate::security::jwe::P256Jwk;
use crate::session::{self, Current};
use crate::store::{self, qr_logins};
use crate::ui::interaction::{SignInContext, sign_in_failed};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/qr/start", post(start))
        .route("/qr/{id}", get(phone_page).post(phone_decide))
        .route("/qr/{id}/code.svg", get(code_svg))
        .route("/qr/{id}/status", get(poll))
        .route("/qr/{id}/events", get(events))
        .route("/qr/{id}/redeem", post(redeem))
}

/// How often a watcher re-reads its row even without a notification (a lost notification
/// during a reconnect, and expiry, which nobody announces).
const RECHECK: Duration = Duration::from_secs(2);

fn browser(app: &App, headers: &HeaderMap) -> Result<String, Error> {
    app.cookies.read(headers, cookies::BROWSER).ok_or_else(|| {
        Error::page(
            StatusCode::NOT_FOUND,
            "QR code not found",
            "This browser has no sign-in in progress. Start again from the application.",
        )
    })
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
struct StartBody {
    request: String,
    csrf: String,
    key: P256Jwk,
}

async fn start(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, JsonError> {
    let body: StartBody = crate::http::json_body(&body)?;
    let context =
        SignInContext::open(&app, &headers, &body.request, &body.csrf, Method::Qr).await?;
    let browser = browser(&app, &headers)?;
    let started = qr::start(
        &app,
        &browser,
        &context.pending,
        &body.key,
        crate::http::user_agent(&headers),
        Some(crate::http::client_ip(&connect)),
    )
    .await?;
    let id = &started.id;
    Ok(no_store(
        axum::Json(serde_json::json!({
            "id": id,
            "url": started.url,
            "svg": format!("/qr/{id}/code.svg"),
            "status": format!("/qr/{id}/status"),
            "events": format!("/qr/{id}/events"),
            "expires_in": started.expires_in,
        }))
        .into_response(),
    ))
}

async fn code_svg(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let browser = browser(&app, &headers)?;
    qr::for_browser(&app, &id, &browser).await?;
    let url = app.config.endpoint(&format!("/qr/{id}"));
    let svg = qrcode::QrCode::with_error_correction_level(url.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| Error::Internal(format!("QR encoding: {e}")))?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(240, 240)
        .build();
    let mut response = no_store(svg.into_response());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    Ok(response)
}

async fn poll(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, JsonError> {
    let browser = browser(&app, &headers)?;
    let row = qr::for_browser(&app, &id, &browser).await?;
    Ok(no_store(
        axum::Json(qr::status(&row, store::now())).into_response(),
    ))
}

/// A cookie-bound WebSocket must come from our own pages (cross-site WebSocket hijacking:
/// browsers send cookies on cross-origin WebSocket handshakes).
fn same_origin(app: &App, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        // Not a browser (a companion, a test client): the cookie binding still applies.
        return true;
    };
    let issuer = url::Url::parse(&app.config.issuer).ok();
    let origin = url::Url::parse(origin).ok();
    matches!((issuer, origin), (Some(a), Some(b)) if a.origin() == b.origin())
}

async fn events(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, JsonError> {
    if !same_origin(&app, &headers) {
        return Err(Error::page(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "This page cannot watch that sign-in.",
        )
        .into());
    }
    let browser = browser(&app, &headers)?;
    let row = qr::for_browser(&app, &id, &browser).await?;
    let key = qr::watch_key(&row);
    Ok(upgrade
        .max_message_size(4096)
        .on_upgrade(move |socket| watch(app, row.id_hash, key, socket)))
}

fn is_final(status: &Status) -> bool {
    matches!(status.state, "approved" | "denied" | "expired" | "redeemed")
}

/// Sends the QR code's status whenever it changes, until it reaches a final state.
async fn watch(app: AppState, id_hash: String, key: String, mut socket: WebSocket) {
    let mut changes = app.changes.subscribe();
    let mut sent: Option<(&'static str, i32)> = None;
    let mut recheck = tokio::time::interval(RECHECK);
    loop {
        let status = match qr_logins::find(&app.store, &id_hash).await {
            Ok(Some(row)) => qr::status(&row, store::now()),
            // Purged after expiry.
            Ok(None) => Status {
                state: "expired",
                match_code: None,
                grant: None,
                expires_in: 0,
                version: i32::MAX,
            },
            Err(e) => {
                tracing::warn!(error = %e, "QR watcher could not read its row");
                tokio::time::sleep(RECHECK).await;
                continue;
            }
        };
        if sent != Some((status.state, status.version)) {
            let Ok(text) = serde_json::to_string(&status) else {
                return;
            };
            if socket.send(Message::Text(text.into())).await.is_err() {
                return;
            }
            sent = Some((status.state, status.version));
        }
        if is_final(&status) {
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
        // Wait for something that concerns this QR code.
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(k) if k == key => break,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return,
                },
                _ = recheck.tick() => break,
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                    Some(Ok(_)) => continue,
                },
            }
        }
    }
}

#[derive(Deserialize)]
struct RedeemBody {
    request: String,
    csrf: String,
    grant: String,
}

async fn redeem(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, JsonError> {
    let body: RedeemBody = crate::http::json_body(&body)?;
    let context =
        SignInContext::open(&app, &headers, &body.request, &body.csrf, Method::Qr).await?;
    let pending = &context.pending;
    let browser = browser(&app, &headers)?;
    let ip = Some(crate::http::client_ip(&connect));
    let (user, authentication) = match qr::redeem(&app, &id, &browser, pending, &body.grant).await {
        Ok(done) => done,
        Err(e) => {
            sign_in_failed(
                &app,
                &context.org.id,
                Method::Qr,
                None,
                ip,
                "qr_not_redeemed",
            )
            .await;
            return Err(e.into());
        }
    };
    if let Some(hinted) = &pending.request.hinted_subject {
        // Reauthentication never switches accounts silently.
        if hinted != &user.id {
            return Err(Error::page(
                StatusCode::FORBIDDEN,
                "Different account",
                crate::ui::interaction::WRONG_ACCOUNT,
            )
            .into());
        }
    }
    let (next, cookie) = crate::ui::interaction::finish_sign_in(
        &app,
        &headers,
        &context,
        &user,
        Method::Qr,
        &authentication,
        ip,
    )
    .await?;
    let response = no_store(axum::Json(serde_json::json!({ "next": next })).into_response());
    Ok(crate::oidc::authorize::with_cookie(response, cookie))
}

/// Where a phone that is not signed in (or not recently) goes first; it comes back here.
fn sign_in_first(id: &str, fresh: bool) -> Response {
    let next = form_urlencoded::byte_serialize(format!("/qr/{id}").as_bytes()).collect::<String>();
    let prompt = if fresh { "&prompt=login" } else { "" };
    redirect(&format!("/account/login?next={next}{prompt}"))
}

async fn phone_page(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let Some(current) = session::current(&app, &headers).await? else {
        return Ok(sign_in_first(&id, false));
    };
    let scan = qr::scan(
        &app,
        &id,
        &Approver::Session(&current),
        crate::http::user_agent(&headers).as_deref(),
        Some(crate::http::client_ip(&connect)),
    )
    .await?;
    match scan {
        Scan::NeedsVerification => Ok(sign_in_first(&id, true)),
        Scan::Claimed(context) => Ok(approve_page(&app, &id, &current, &context, None)),
    }
}

fn approve_page(
    app: &App,
    id: &str,
    current: &Current,
    context: &qr::Context,
    error: Option<&str>,
) -> Response {
    super::render_status(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        &QrApprovePage {
            id,
            csrf: &super::account::csrf(app, &current.session.id),
            email: &current.user.email,
            client_name: &context.client_name,
            redirect_host: &context.redirect_host,
            desktop_browser: &context.desktop_browser,
            desktop_ip: &context.desktop_ip,
            phone_ip: &context.phone_ip,
            network_verdict: context.network_verdict,
            new_browser: context.new_browser,
            started_at: &super::account::when(context.row.created_at),
            seconds_left: context.seconds_left,
            error,
        },
    )
}

async fn phone_decide(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let params = Params::parse(&body);
    let current =
        super::account::signed_in_with_csrf(&app, &headers, params.get("csrf").unwrap_or(""))
            .await?;
    let decision = match params.get("decision") {
        Some("approve") => Decision::Approve {
            typed_code: params.get("code").unwrap_or(""),
        },
        Some("deny") => Decision::Deny,
        _ => {
            return Err(Error::bad_request_page("Invalid form", "Choose Approve or Deny.").into());
        }
    };
    match qr::decide(&app, &id, &Approver::Session(&current), decision).await? {
        Decided::Approved => Ok(super::render(&QrDecidedPage { approved: true })),
        Decided::Denied => Ok(super::render(&QrDecidedPage { approved: false })),
        Decided::WrongCode { tries_left: 0 } => Err(Error::page(
            StatusCode::FORBIDDEN,
            "Sign-in refused",
            "The code was wrong too many times, so this sign-in was refused. Start again on the other screen.",
        )
        .into()),
        Decided::WrongCode { tries_left } => {
            let scan = qr::scan(
                &app,
                &id,
                &Approver::Session(&current),
                crate::http::user_agent(&headers).as_deref(),
                Some(crate::http::client_ip(&connect)),
            )
            .await?;
            let Scan::Claimed(context) = scan else {
                return Ok(sign_in_first(&id, true));
            };
            let message = format!(
                "That is not the code shown on the other screen. {tries_left} {} left.",
                if tries_left == 1 { "try" } else { "tries" }
            );
            Ok(approve_page(&app, &id, &current, &context, Some(&message)))
        }
    }
}

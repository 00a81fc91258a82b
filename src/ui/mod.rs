//! The hosted pages people see: sign-in, account choice, consent, errors. Handlers here
//! turn form posts into calls to `authn` and `session`; the view structs live in `views`.

pub mod account;
pub mod admin_console;
pub mod branding;
pub mod companion;
pub mod device_grant;
pub mod interaction;
pub mod one_time_codes;
pub mod passkeys;
pub mod qr;
pub mod recovery;
pub mod signup;
pub mod upstream;
pub mod views;

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// Renders a page with `Cache-Control: no-store` (pages carry CSRF tokens and personal data).
pub fn render_status(status: StatusCode, view: &impl Template) -> Response {
    match view.render() {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "An unexpected error occurred.",
            )
                .into_response()
        }
    }
}

pub fn render(view: &impl Template) -> Response {
    render_status(StatusCode::OK, view)
}

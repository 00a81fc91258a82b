//! An organization's colours as a stylesheet, so the strict CSP (`style-src 'self'`, no inline
//! styles) still lets each organization theme its pages.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::AppState;
use crate::error::PageError;
use crate::store::orgs;

pub fn routes() -> Router<AppState> {
    Router::new().route("/branding/{file}", get(stylesheet))
}

async fn stylesheet(
    State(app): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, PageError> {
    let org = match file.strip_suffix(".css") {
        Some(id) => orgs::find(&app.store, id).await?,
        None => None,
    };
    let Some(org) = org else {
        return Ok((StatusCode::NOT_FOUND, "").into_response());
    };
    // Stored colours were checked to be `#` and six hex digits; check again before writing
    // them into CSS.
    let css = match org.primary_color.as_deref() {
        Some(c) if c.len() == 7 && c[1..].chars().all(|d| d.is_ascii_hexdigit()) => {
            format!(":root {{ --accent: {c}; }}\n")
        }
        _ => String::new(),
    };
    let mut response = css.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

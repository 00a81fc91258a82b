//! One error type for the whole server. Each variant knows its HTTP status and its OAuth
//! `error` code, so handlers never build error bodies by hand. [`Error`] renders as the
//! JSON the OAuth specs name; [`PageError`] renders the same error as a plain page for people.
//! Internal details are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

/// OAuth 2.0 / OIDC error codes (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1; OIDC Core §3.1.2.6;
/// RFC 8628 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    AccountSelectionRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    RegistrationNotSupported,
    InvalidToken,
    InsufficientScope,
    UnsupportedTokenType,
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidRequest => "invalid_request",
            Code::InvalidClient => "invalid_client",
            Code::InvalidGrant => "invalid_grant",
            Code::UnauthorizedClient => "unauthorized_client",
            Code::UnsupportedGrantType => "unsupported_grant_type",
            Code::UnsupportedResponseType => "unsupported_response_type",
            Code::InvalidScope => "invalid_scope",
            Code::AccessDenied => "access_denied",
            Code::ServerError => "server_error",
            Code::TemporarilyUnavailable => "temporarily_unavailable",
            Code::LoginRequired => "login_required",
            Code::ConsentRequired => "consent_required",
            Code::InteractionRequired => "interaction_required",
            Code::AccountSelectionRequired => "account_selection_required",
            Code::RequestNotSupported => "request_not_supported",
            Code::RequestUriNotSupported => "request_uri_not_supported",
            Code::RegistrationNotSupported => "registration_not_supported",
            Code::InvalidToken => "invalid_token",
            Code::InsufficientScope => "insufficient_scope",
            Code::UnsupportedTokenType => "unsupported_token_type",
            Code::AuthorizationPending => "authorization_pending",
            Code::SlowDown => "slow_down",
            Code::ExpiredToken => "expired_token",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An OAuth error answered as JSON with status 400 (RFC 6749 §5.2).
    #[error("{}: {description}", code.as_str())]
    OAuth { code: Code, description: String },
    /// Client authentication failed: 401 with `WWW-Authenticate` (RFC 6749 §5.2).
    #[error("invalid_client: {0}")]
    InvalidClient(String),
    /// A protected resource refused the bearer token (RFC 6750 §3). No code when the request
    /// carried no credentials at all (§3.1).
    #[error("bearer: {description}")]
    Bearer {
        code: Option<Code>,
        description: String,
        status: StatusCode,
    },
    /// Too many failures: 429 with `Retry-After`.
    #[error("rate limited: {description}")]
    RateLimited {
        retry_after_secs: i64,
        description: String,
    },
    /// A plain page for people: the request cannot go back to a client (unknown client,
    /// unregistered redirect URI, expired sign-in request, …).
    #[error("{title}: {message}")]
    Page {
        status: StatusCode,
        title: String,
        message: String,
    },
    #[error("request body too large")]
    PayloadTooLarge,
    /// The database cannot be reached: 503, so load balancers and clients retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure: logged in full, answered with a generic 500.
    #[error("internal: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn oauth(code: Code, description: impl Into<String>) -> Error {
        Error::OAuth {
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Error {
        Error::oauth(Code::InvalidRequest, description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Error {
        Error::oauth(Code::InvalidGrant, description)
    }

    pub fn page(status: StatusCode, title: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Page {
            status,
            title: title.into(),
            message: message.into(),
        }
    }

    pub fn bad_request_page(title: impl Into<String>, message: impl Into<String>) -> Error {
        Error::page(StatusCode::BAD_REQUEST, title, message)
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::OAuth { .. } => StatusCode::BAD_REQUEST,
            Error::InvalidClient(_) => StatusCode::UNAUTHORIZED,
            Error::Bearer { status, .. } => *status,
            Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Page { status, .. } => *status,
            Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> Code {
        match self {
            Error::OAuth { code, .. } => *code,
            Error::InvalidClient(_) => Code::InvalidClient,
            Error::Bearer { code, .. } => code.unwrap_or(Code::InvalidRequest),
            Error::RateLimited { .. } => Code::InvalidRequest,
            Error::Page { .. } | Error::PayloadTooLarge => Code::InvalidRequest,
            Error::Unavailable(_) => Code::TemporarilyUnavailable,
            Error::Internal(_) => Code::ServerError,
        }
    }

    /// The description safe to show: internal causes are replaced by a generic sentence.
    pub fn public_description(&self) -> String {
        match self {
            Error::OAuth { description, .. }
            | Error::Bearer { description, .. }
            | Error::RateLimited { description, .. } => description.clone(),
            Error::InvalidClient(d) => d.clone(),
            Error::Page { message, .. } => message.clone(),
            Error::PayloadTooLarge => "The request is too large.".into(),
            Error::Unavailable(_) => {
                "The service is temporarily unavailable. Please try again shortly.".into()
            }
            Error::Internal(_) => "An unexpected error occurred.".into(),
        }
    }

    fn log(&self) {
        match self {
            Error::Internal(detail) => tracing::error!(error = %detail, "internal error"),
            Error::Unavailable(detail) => tracing::warn!(error = %detail, "database unavailable"),
            _ => {}
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        match e {
            StoreError::Unavailable(d) => Error::Unavailable(d),
            // Connection loss surfaces as a query error from an already pooled connection.
            other if other.is_connection_loss() => Error::Unavailable(other.to_string()),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<crate::cpu::CpuError> for Error {
    fn from(e: crate::cpu::CpuError) -> Error {
        Error::Internal(e.to_string())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        if let Error::Page { .. } = self {
            return PageError(self).into_response();
        }
        let mut response = match &self {
            Error::Bearer { code: None, .. } => status.into_response(),
            _ => {
                let body = json!({
                    "error": self.code().as_str(),
                    "error_description": self.public_description(),
                });
                (status, axum::Json(body)).into_response()
            }
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            Error::InvalidClient(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"tessera\", charset=\"UTF-8\""),
                );
            }
            Error::Bearer {
                code, description, ..
            } => {
                let value = match code {
                    None => "Bearer realm=\"tessera\"".to_owned(),
                    Some(code) => format!(
                        "Bearer realm=\"tessera\", error=\"{}\", error_description=\"{}\"",
                        code.as_str(),
                        header_safe(description)
                    ),
                };
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            Error::RateLimited {
                retry_after_secs, ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

/// RFC 6750 §3: error_description is limited to printable ASCII without `"` and `\`.
fn header_safe(text: &str) -> String {
    text.chars()
        .filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\')
        .collect()
}

/// The same errors, rendered as an HTML page for people.
#[derive(Debug)]
pub struct PageError(pub Error);

impl<E: Into<Error>> From<E> for PageError {
    fn from(e: E) -> PageError {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let error = self.0;
        error.log();
        let status = error.status();
        let (title, message) = match &error {
            Error::Page { title, message, .. } => (title.clone(), message.clone()),
            Error::RateLimited { .. } => {
                ("Too many attempts".to_owned(), error.public_description())
            }
            Error::Unavailable(_) => (
                "Temporarily unavailable".to_owned(),
                error.public_description(),
            ),
            Error::Internal(_) => (
                "Something went wrong".to_owned(),
                error.public_description(),
            ),
            _ => (
                "The request was refused".to_owned(),
                error.public_description(),
            ),
        };
        let mut response = crate::ui::render_status(
            status,
            &crate::ui::views::ErrorPage {
                title: &title,
                message: &message,
            },
        );
        if let Error::RateLimited {
            retry_after_secs, ..
        } = error
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

/// The same errors for JSON APIs (the QR page's calls, companion apps): a page error becomes
/// `{"error", "error_description"}` with the page's status instead of HTML.
#[derive(Debug)]
pub struct JsonError(pub Error);

impl From<Error> for JsonError {
    fn from(e: Error) -> Self {
        JsonError(e)
    }
}

impl From<StoreError> for JsonError {
    fn from(e: StoreError) -> Self {
        JsonError(e.into())
    }
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        match self.0 {
            Error::Page {
                status, message, ..
            } => {
                let code = match status {
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "access_denied",
                    StatusCode::NOT_FOUND => "not_found",
                    StatusCode::CONFLICT | StatusCode::GONE => "invalid_state",
                    _ => "invalid_request",
                };
                let mut response = (
                    status,
                    axum::Json(json!({"error": code, "error_description": message})),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                response
            }
            other => other.into_response(),
        }
    }
}

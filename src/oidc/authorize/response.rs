//! Authorization responses to the client: query redirect or form post, always with `iss`
//! (RFC 9207) and the client's `state`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::request::{ReplyTo, ResponseMode};
use crate::error::Code;
use crate::ui::views::FormPostPage;

pub fn success(issuer: &str, reply: &ReplyTo, code: &str) -> Response {
    let mut params = vec![("code".to_owned(), code.to_owned())];
    finish(issuer, reply, &mut params)
}

pub fn error(issuer: &str, reply: &ReplyTo, code: Code, description: &str) -> Response {
    let mut params = vec![
        ("error".to_owned(), code.as_str().to_owned()),
        ("error_description".to_owned(), description.to_owned()),
    ];
    finish(issuer, reply, &mut params)
}

fn finish(issuer: &str, reply: &ReplyTo, params: &mut Vec<(String, String)>) -> Response {
    if let Some(state) = &reply.state {
        params.push(("state".into(), state.clone()));
    }
    params.push(("iss".into(), issuer.to_owned()));
    match reply.response_mode {
        ResponseMode::Query => {
            let Ok(mut url) = url::Url::parse(&reply.redirect_uri) else {
                return crate::error::Error::Internal(
                    "registered redirect URI does not parse".into(),
                )
                .into_response();
            };
            url.query_pairs_mut().extend_pairs(params.iter());
            redirect(url.as_str())
        }
        ResponseMode::FormPost => crate::ui::render(&FormPostPage {
            action: &reply.redirect_uri,
            fields: params,
        }),
    }
}

/// 303 See Other: the browser follows with GET whatever method brought it here.
pub fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            response.headers_mut().insert(header::LOCATION, v);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => crate::error::Error::Internal("redirect location is not a header value".into())
            .into_response(),
    }
}

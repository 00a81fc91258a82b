//! HTTP plumbing shared by every endpoint: cookies, security headers, client address,
//! strict form parsing.

pub mod cookies;
pub mod params;
pub mod security_headers;

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;

/// The peer address. Tessera does not trust `X-Forwarded-For` (it would let anyone pick the
/// address that rate limits count against); behind a proxy, limits apply per proxy address.
pub fn client_ip(connect_info: &ConnectInfo<SocketAddr>) -> IpAddr {
    connect_info.0.ip()
}

pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect())
}

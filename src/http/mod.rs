//! HTTP plumbing shared by every endpoint: cookies, security headers, client address,
//! strict form parsing.

pub mod cookies;
pub mod params;
pub mod request_id;
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

/// "Chrome on Linux"-style summary of a User-Agent, for people reading session lists.
pub fn describe_user_agent(ua: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| *name)
    .unwrap_or("Unknown browser");
    let os = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| *name);
    match os {
        Some(os) => format!("{browser} on {os}"),
        None => browser.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_agents_are_summarised() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
        assert_eq!(super::describe_user_agent(chrome), "Chrome on Linux");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(super::describe_user_agent(iphone), "Safari on iOS");
        assert_eq!(super::describe_user_agent("x"), "Unknown browser");
    }
}

/// A JSON request body, or `invalid_request` (the QR page's calls and the companion API).
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, crate::error::Error> {
    serde_json::from_slice(body)
        .map_err(|_| crate::error::Error::invalid_request("malformed JSON body"))
}

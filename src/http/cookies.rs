//! Cookies: HttpOnly, SameSite=Lax, and under https `Secure` with the `__Host-` prefix
//! (which pins them to this host and path `/`).

use axum::http::{HeaderMap, HeaderValue, header};

pub const SESSION: &str = "tessera_session";
/// Identifies a browser before anyone signs in, binding pending authorization requests to it.
pub const BROWSER: &str = "tessera_browser";

#[derive(Clone, Copy, Debug)]
pub struct CookiePolicy {
    pub secure: bool,
}

impl CookiePolicy {
    pub fn name(&self, base: &str) -> String {
        if self.secure {
            format!("__Host-{base}")
        } else {
            base.to_owned()
        }
    }

    pub fn read(&self, headers: &HeaderMap, base: &str) -> Option<String> {
        read(headers, &self.name(base))
    }

    pub fn set(&self, base: &str, value: &str, max_age_secs: i64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}",
            self.name(base)
        ))
        .expect("cookie values are base64url")
    }

    pub fn clear(&self, base: &str) -> HeaderValue {
        self.set(base, "", 0)
    }
}

/// Reads a cookie by exact name; the first occurrence wins.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_prefix_and_secure_under_https() {
        let p = CookiePolicy { secure: true };
        let v = p.set(SESSION, "abc", 60);
        let s = v.to_str().unwrap();
        assert!(s.starts_with("__Host-tessera_session=abc; Path=/; HttpOnly; SameSite=Lax"));
        assert!(s.ends_with("; Secure"));
        let p = CookiePolicy { secure: false };
        assert!(
            !p.set(SESSION, "abc", 60)
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }

    #[test]
    fn reads_the_named_cookie_only() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; tessera_session=xyz; b=2"),
        );
        assert_eq!(read(&h, "tessera_session").as_deref(), Some("xyz"));
        assert_eq!(read(&h, "missing"), None);
    }
}

//! Redirect URI matching: exact string comparison (RFC 9700 §4.1.1), except that a native
//! app's loopback redirect may use any port (RFC 8252 §7.3).

use url::Url;

pub fn is_registered(registered: &[String], requested: &str) -> bool {
    registered
        .iter()
        .any(|r| r == requested || loopback_matches(r, requested))
}

fn loopback_matches(registered: &str, requested: &str) -> bool {
    let (Ok(reg), Ok(req)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    let loopback = |u: &Url| {
        u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"))
    };
    loopback(&reg)
        && loopback(&req)
        && reg.host_str() == req.host_str()
        && reg.path() == req.path()
        && reg.query() == req.query()
        && req.fragment().is_none()
        && req.username().is_empty()
        && req.password().is_none()
        // The requested string must be what the parsed URL says: no normalisation tricks.
        && req.as_str().trim_end_matches('/') == requested.trim_end_matches('/')
}

/// What a client may register: absolute, no fragment (RFC 6749 §3.1.2), https except loopback
/// or a private-use scheme of a native app (RFC 8252 §7.1).
pub fn validate_for_registration(uri: &str) -> Result<(), String> {
    let url = Url::parse(uri).map_err(|e| format!("{uri}: not an absolute URI ({e})"))?;
    if url.fragment().is_some() {
        return Err(format!("{uri}: redirect URIs must not contain a fragment"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if crate::config::is_loopback_host(url.host_str().unwrap_or("")) => Ok(()),
        "http" => Err(format!(
            "{uri}: plain http is allowed only for loopback hosts"
        )),
        scheme if scheme.contains('.') => Ok(()),
        scheme => Err(format!(
            "{uri}: scheme {scheme} is neither https nor a reverse-domain private-use scheme"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(uris: &[&str]) -> Vec<String> {
        uris.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_match_only_for_web_clients() {
        let r = reg(&["https://app.example.com/cb"]);
        assert!(is_registered(&r, "https://app.example.com/cb"));
        for attack in [
            "https://app.example.com/cb/",
            "https://APP.example.com/cb",
            "https://app.example.com/cb/../evil",
            "https://app.example.com/cb?x=1",
            "https://app.example.com/cb#frag",
            "https://app.example.com@evil.com/cb",
            "https://app.example.com:8443/cb",
            "https://app.example.com.evil.com/cb",
            "https://xn--pp-7ka.example.com/cb",
        ] {
            assert!(!is_registered(&r, attack), "{attack} must not match");
        }
    }

    #[test]
    fn loopback_port_is_flexible() {
        let r = reg(&["http://127.0.0.1/callback"]);
        assert!(is_registered(&r, "http://127.0.0.1:53121/callback"));
        assert!(!is_registered(&r, "http://127.0.0.1:53121/other"));
        assert!(!is_registered(&r, "http://[::1]:53121/callback"));
        assert!(!is_registered(&r, "http://user@127.0.0.1:5000/callback"));
    }

    #[test]
    fn registration_rules() {
        assert!(validate_for_registration("https://a.example/cb").is_ok());
        assert!(validate_for_registration("http://localhost:3000/cb").is_ok());
        assert!(validate_for_registration("com.example.app:/cb").is_ok());
        assert!(validate_for_registration("http://a.example/cb").is_err());
        assert!(validate_for_registration("https://a.example/cb#x").is_err());
        assert!(validate_for_registration("/relative").is_err());
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any change to a registered web redirect URI is refused: exact matching only.
        #[test]
        fn altered_web_uris_never_match(path in "[a-z]{1,8}", extra in "[a-zA-Z0-9/._~%-]{1,8}") {
            let registered = vec![format!("https://app.example.com/{path}")];
            prop_assert!(is_registered(&registered, &registered[0]));
            let altered = format!("https://app.example.com/{path}{extra}");
            prop_assert!(!is_registered(&registered, &altered));
            let prefixed = format!("https://app.example.com.{extra}/{path}");
            prop_assert!(!is_registered(&registered, &prefixed));
        }

        /// Loopback redirects match on any port, and on nothing else.
        #[test]
        fn loopback_matches_any_port_only(port in 1u16.., path in "[a-z]{1,8}", other in "[a-z]{1,8}") {
            let registered = vec![format!("http://127.0.0.1/{path}")];
            let with_port = format!("http://127.0.0.1:{port}/{path}");
            prop_assert!(is_registered(&registered, &with_port));
            prop_assume!(other != path);
            let other_path = format!("http://127.0.0.1:{port}/{other}");
            prop_assert!(!is_registered(&registered, &other_path));
        }
    }
}

//! Scope values (RFC 6749 §3.3): space-delimited, order-insensitive, duplicates collapsed.

use std::fmt;

pub const SUPPORTED: &[&str] = &[
    "openid",
    "profile",
    "email",
    "phone",
    "address",
    "offline_access",
];

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope(Vec<String>);

impl Scope {
    pub fn parse(text: &str) -> Scope {
        let mut values: Vec<String> = Vec::new();
        for v in text.split(' ').filter(|v| !v.is_empty()) {
            if !values.iter().any(|x| x == v) {
                values.push(v.to_owned());
            }
        }
        Scope(values)
    }

    pub fn has(&self, value: &str) -> bool {
        self.0.iter().any(|v| v == value)
    }

    /// Unknown scope values are ignored, as OIDC Core §3.1.2.1 allows, rather than refused.
    pub fn supported_only(&self) -> Scope {
        Scope(
            self.0
                .iter()
                .filter(|v| SUPPORTED.contains(&v.as_str()))
                .cloned()
                .collect(),
        )
    }

    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.iter().all(|v| other.has(v))
    }

    pub fn without(&self, value: &str) -> Scope {
        Scope(self.0.iter().filter(|v| *v != value).cloned().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn values(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_dedups_and_ignores_extra_spaces() {
        let s = Scope::parse("openid  email openid profile");
        assert_eq!(s.to_string(), "openid email profile");
        assert!(Scope::parse("email openid").is_subset_of(&s));
        assert!(!Scope::parse("phone").is_subset_of(&s));
        assert_eq!(
            Scope::parse("openid foo").supported_only().to_string(),
            "openid"
        );
    }
}

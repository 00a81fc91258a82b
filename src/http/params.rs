//! Strict parsing of `application/x-www-form-urlencoded` parameters (query strings and bodies).
//! RFC 6749 §3.1 / §3.2: parameters sent without a value are treated as omitted, and request
//! parameters must not be included more than once.

use std::collections::HashMap;

#[derive(Debug, Default, Clone)]
pub struct Params {
    values: HashMap<String, String>,
    duplicated: Vec<String>,
}

/// Longest value we accept for any single parameter; larger ones are refused, not truncated.
pub const MAX_PARAM_LEN: usize = 8 * 1024;

impl Params {
    pub fn parse(input: &[u8]) -> Params {
        let mut params = Params::default();
        for (k, v) in form_urlencoded::parse(input) {
            if v.is_empty() {
                continue;
            }
            if params.values.contains_key(k.as_ref()) {
                if !params.duplicated.iter().any(|d| d == &k) {
                    params.duplicated.push(k.into_owned());
                }
                continue;
            }
            params.values.insert(k.into_owned(), v.into_owned());
        }
        params
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The first parameter (from `names`) that was sent more than once.
    pub fn duplicated_among<'a>(&self, names: &[&'a str]) -> Option<&'a str> {
        names
            .iter()
            .copied()
            .find(|n| self.duplicated.iter().any(|d| d == n))
    }

    pub fn is_duplicated(&self, name: &str) -> bool {
        self.duplicated.iter().any(|d| d == name)
    }

    /// A parameter longer than [`MAX_PARAM_LEN`], if any.
    pub fn oversized(&self) -> Option<&str> {
        self.values
            .iter()
            .find(|(_, v)| v.len() > MAX_PARAM_LEN)
            .map(|(k, _)| k.as_str())
    }

    pub fn merge_missing(&mut self, other: Params) {
        for (k, v) in other.values {
            self.values.entry(k).or_insert(v);
        }
        self.duplicated.extend(other.duplicated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_empty_values() {
        let p = Params::parse(b"a=1&b=&a=2&c=x%20y");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
        assert!(p.is_duplicated("a"));
        assert_eq!(p.duplicated_among(&["c", "a"]), Some("a"));
    }
}

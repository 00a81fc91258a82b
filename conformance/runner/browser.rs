//! The person at the browser, over HTTP: a cookie jar for the OP, redirects followed one hop
//! at a time, and the OP's pages acted on as a person would (sign in with the test account,
//! allow consent, continue with the current account). A form that auto-submits to the client
//! (`response_mode=form_post`) is submitted as the browser's script would submit it: its
//! method, action, `enctype` and fields as written in the page.
//!
//! The browser stops when a request would leave the OP and returns that request as the
//! [`Callback`] the suite's callback endpoint would have received.

use std::collections::BTreeMap;
use std::sync::Mutex;

use openidconnect::reqwest;
use url::Url;

/// The request the browser made to the client (the suite's callback endpoint).
#[derive(Debug, Clone)]
pub struct Callback {
    pub method: String,
    pub url: String,
    /// `Content-Type` of the request, if it had a body.
    pub content_type: Option<String>,
    pub query: Vec<(String, String)>,
    pub body: Vec<(String, String)>,
}

impl Callback {
    pub fn query_map(&self) -> BTreeMap<String, String> {
        self.query.iter().cloned().collect()
    }
    pub fn body_map(&self) -> BTreeMap<String, String> {
        self.body.iter().cloned().collect()
    }
}

/// Where navigation ended.
#[derive(Debug, Clone)]
pub enum Nav {
    /// The browser was sent to the client.
    Callback(Callback),
    /// The OP showed a page that the person cannot act on (an error page, or a sign-in page
    /// when signing in was not allowed).
    Page {
        status: u16,
        url: String,
        body: String,
    },
}

/// The OP pages the person acted on during one navigation.
#[derive(Debug, Clone, Default)]
pub struct Interactions {
    pub login_pages: u32,
    pub consent_pages: u32,
    pub select_account_pages: u32,
}

impl Interactions {
    pub fn any(&self) -> bool {
        self.login_pages + self.consent_pages + self.select_account_pages > 0
    }
}

/// Whether the person signs in when the OP asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Person {
    /// Signs in, allows consent, continues with the current account.
    Interacts,
    /// Does nothing: any page the OP shows ends the navigation.
    Absent,
}

pub struct Browser {
    http: reqwest::Client,
    op_origin: String,
    email: String,
    password: String,
    jar: Mutex<BTreeMap<String, String>>,
}

pub enum Start {
    Get(String),
    /// An authorization request sent as a form POST (`oidcc-ensure-post-request-succeeds`).
    PostForm(String, Vec<(String, String)>),
}

impl Browser {
    pub fn new(http: reqwest::Client, issuer: &str, email: &str, password: &str) -> Browser {
        Browser {
            http,
            op_origin: origin(issuer),
            email: email.to_owned(),
            password: password.to_owned(),
            jar: Mutex::new(BTreeMap::new()),
        }
    }

    fn on_op(&self, url: &str) -> bool {
        origin(url) == self.op_origin
    }

    fn cookie_header(&self) -> Option<String> {
        let jar = self.jar.lock().unwrap();
        if jar.is_empty() {
            return None;
        }
        Some(
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    fn store_cookies(&self, response: &reqwest::Response) {
        let mut jar = self.jar.lock().unwrap();
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let mut parts = text.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.trim().split_once('=')) else {
                continue;
            };
            let expired = parts.any(|a| {
                let a = a.trim().to_ascii_lowercase();
                a == "max-age=0" || a.starts_with("max-age=-")
            });
            if expired || value.is_empty() {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    /// Forgets every OP cookie (a browser with no session).
    pub fn clear_cookies(&self) {
        self.jar.lock().unwrap().clear();
    }

    async fn send(
        &self,
        method: &str,
        url: &str,
        form: Option<&[(String, String)]>,
    ) -> Result<reqwest::Response, String> {
        let mut request = match method {
            "POST" => self.http.post(url),
            _ => self.http.get(url),
        };
        if let Some(cookies) = self.cookie_header() {
            request = request.header(reqwest::header::COOKIE, cookies);
        }
        if let Some(fields) = form {
            request = request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(encode_form(fields));
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {url}: {e}"))?;
        self.store_cookies(&response);
        Ok(response)
    }

    /// Navigates from `start` until the browser leaves the OP or stops on a page.
    pub async fn navigate(
        &self,
        start: Start,
        person: Person,
    ) -> Result<(Nav, Interactions), String> {
        let mut interactions = Interactions::default();
        let (mut method, mut url, mut form) = match start {
            Start::Get(u) => ("GET".to_owned(), u, None),
            Start::PostForm(u, f) => ("POST".to_owned(), u, Some(f)),
        };
        for _ in 0..25 {
            if !self.on_op(&url) {
                return Ok((
                    Nav::Callback(leaving(&method, &url, form.as_deref(), None)),
                    interactions,
                ));
            }
            let response = self.send(&method, &url, form.as_deref()).await?;
            let status = response.status().as_u16();
            if (300..400).contains(&status) {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("{status} from {url} without Location"))?;
                let next = resolve(&url, location)?;
                // 307/308 repeat the method and body; 301/302/303 become GET.
                if !matches!(status, 307 | 308) {
                    method = "GET".into();
                    form = None;
                }
                url = next;
                continue;
            }
            let page_url = url.clone();
            let body = response.text().await.map_err(|e| e.to_string())?;
            let forms = parse_forms(&body);
            // A form the page's script submits to the client: form_post.
            if let Some(f) = forms.iter().find(|f| {
                resolve(&page_url, &f.action)
                    .map(|a| !self.on_op(&a))
                    .unwrap_or(false)
            }) {
                let action = resolve(&page_url, &f.action)?;
                let fields: Vec<(String, String)> = f
                    .inputs
                    .iter()
                    .filter(|i| i.kind != "submit" && i.kind != "button")
                    .map(|i| (i.name.clone(), i.value.clone()))
                    .collect();
                let method = f.method.to_ascii_uppercase();
                let enctype = f
                    .enctype
                    .clone()
                    .unwrap_or_else(|| "application/x-www-form-urlencoded".to_owned());
                if method == "POST" {
                    return Ok((
                        Nav::Callback(leaving("POST", &action, Some(&fields), Some(enctype))),
                        interactions,
                    ));
                }
                let mut target = Url::parse(&action).map_err(|e| e.to_string())?;
                target.query_pairs_mut().extend_pairs(fields.iter());
                return Ok((
                    Nav::Callback(leaving("GET", target.as_str(), None, None)),
                    interactions,
                ));
            }
            if person == Person::Absent || status != 200 {
                return Ok((
                    Nav::Page {
                        status,
                        url: page_url,
                        body,
                    },
                    interactions,
                ));
            }
            let op_form = |path: &str| {
                forms.iter().find(|f| {
                    resolve(&page_url, &f.action)
                        .ok()
                        .and_then(|a| Url::parse(&a).ok())
                        .is_some_and(|a| a.path() == path)
                })
            };
            let (f, fill): (&Form, Vec<(String, String)>) = if let Some(f) = op_form("/login") {
                if interactions.login_pages >= 2 {
                    // Signed in twice for one request and still asked: stop here.
                    return Ok((
                        Nav::Page {
                            status,
                            url: page_url,
                            body,
                        },
                        interactions,
                    ));
                }
                interactions.login_pages += 1;
                (
                    f,
                    vec![
                        ("email".into(), self.email.clone()),
                        ("password".into(), self.password.clone()),
                    ],
                )
            } else if let Some(f) = op_form("/consent") {
                interactions.consent_pages += 1;
                (f, vec![("decision".into(), "allow".into())])
            } else if let Some(f) = op_form("/select-account") {
                interactions.select_account_pages += 1;
                (f, vec![("choice".into(), "current".into())])
            } else {
                return Ok((
                    Nav::Page {
                        status,
                        url: page_url,
                        body,
                    },
                    interactions,
                ));
            };
            let mut fields: Vec<(String, String)> = f
                .inputs
                .iter()
                .filter(|i| i.kind == "hidden")
                .map(|i| (i.name.clone(), i.value.clone()))
                .collect();
            fields.extend(fill);
            method = f.method.to_ascii_uppercase();
            url = resolve(&page_url, &f.action)?;
            form = Some(fields);
        }
        Err("more than 25 navigations without reaching the client".into())
    }
}

fn leaving(
    method: &str,
    url: &str,
    form: Option<&[(String, String)]>,
    content_type: Option<String>,
) -> Callback {
    let query = Url::parse(url)
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
    Callback {
        method: method.to_owned(),
        url: url.to_owned(),
        content_type: if form.is_some() {
            content_type.or(Some("application/x-www-form-urlencoded".into()))
        } else {
            None
        },
        query,
        body: form.map(|f| f.to_vec()).unwrap_or_default(),
    }
}

pub fn origin(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => String::new(),
    }
}

pub fn resolve(base: &str, reference: &str) -> Result<String, String> {
    let base = Url::parse(base).map_err(|e| format!("{base}: {e}"))?;
    base.join(reference)
        .map(|u| u.to_string())
        .map_err(|e| format!("{reference}: {e}"))
}

pub fn encode_form(fields: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter())
        .finish()
}

#[derive(Debug, Clone)]
pub struct Form {
    pub method: String,
    pub action: String,
    pub enctype: Option<String>,
    pub inputs: Vec<Input>,
}

#[derive(Debug, Clone)]
pub struct Input {
    pub kind: String,
    pub name: String,
    pub value: String,
}

/// Finds the forms of a page: enough HTML for the OP's own templates (quoted attributes,
/// `<input>` and named `<button>` elements).
pub fn parse_forms(html: &str) -> Vec<Form> {
    let lower = html.to_ascii_lowercase();
    let mut forms = Vec::new();
    let mut at = 0;
    while let Some(start) = lower[at..].find("<form").map(|i| i + at) {
        let Some(tag_end) = lower[start..].find('>').map(|i| i + start) else {
            break;
        };
        let attrs = attributes(&html[start + 5..tag_end]);
        let end = lower[tag_end..]
            .find("</form")
            .map(|i| i + tag_end)
            .unwrap_or(lower.len());
        let inner = &html[tag_end..end];
        let inner_lower = &lower[tag_end..end];
        let mut inputs = Vec::new();
        let mut i = 0;
        while let Some(pos) = inner_lower[i..].find('<').map(|p| p + i) {
            let rest = &inner_lower[pos + 1..];
            let is_input = rest.starts_with("input");
            let is_button = rest.starts_with("button");
            let Some(close) = inner_lower[pos..].find('>').map(|p| p + pos) else {
                break;
            };
            if is_input || is_button {
                let skip = if is_input { 6 } else { 7 };
                let a = attributes(&inner[pos + skip..close]);
                if let Some(name) = a.get("name") {
                    let default_kind = if is_button { "submit" } else { "text" };
                    inputs.push(Input {
                        kind: a
                            .get("type")
                            .map(|t| t.to_ascii_lowercase())
                            .unwrap_or_else(|| default_kind.to_owned()),
                        name: name.clone(),
                        value: a.get("value").cloned().unwrap_or_default(),
                    });
                }
            }
            i = close + 1;
        }
        forms.push(Form {
            method: attrs.get("method").cloned().unwrap_or_else(|| "get".into()),
            action: attrs.get("action").cloned().unwrap_or_default(),
            enctype: attrs.get("enctype").cloned(),
            inputs,
        });
        at = end.max(tag_end + 1);
    }
    forms
}

fn attributes(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == '/') {
            i += 1;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '=' && chars[i] != '/' {
            i += 1;
        }
        if start == i {
            i += 1;
            continue;
        }
        let name: String = chars[start..i]
            .iter()
            .collect::<String>()
            .to_ascii_lowercase();
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i < chars.len() && chars[i] == '=' {
            i += 1;
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            let value: String = if i < chars.len() && (chars[i] == '"' || chars[i] == '\'') {
                let quote = chars[i];
                i += 1;
                let s = i;
                while i < chars.len() && chars[i] != quote {
                    i += 1;
                }
                let v = chars[s..i].iter().collect();
                i += 1;
                v
            } else {
                let s = i;
                while i < chars.len() && !chars[i].is_whitespace() {
                    i += 1;
                }
                chars[s..i].iter().collect()
            };
            out.insert(name, unescape_html(&value));
        } else {
            out.insert(name, String::new());
        }
    }
    out
}

/// Decodes HTML character references (named basics and numeric).
pub fn unescape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let Some(semi) = tail.find(';').filter(|s| *s <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if entity.starts_with("#x") || entity.starts_with("#X") => {
                u32::from_str_radix(&entity[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
            }
            _ if entity.starts_with('#') => entity[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// True when `page` is the OP's sign-in page.
pub fn is_login_page(body: &str) -> bool {
    parse_forms(body)
        .iter()
        .any(|f| f.action.ends_with("/login") && f.inputs.iter().any(|i| i.name == "password"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_form_post_page() {
        let page = r#"<form method="post" action="https://rp.example/cb?x=1&amp;y=2" id="form-post">
<input type="hidden" name="code" value="a&#x2F;b&amp;c">
<input type="hidden" name="state" value="s">
<noscript><button type="submit">Continue</button></noscript></form>"#;
        let forms = parse_forms(page);
        assert_eq!(forms.len(), 1);
        assert_eq!(forms[0].action, "https://rp.example/cb?x=1&y=2");
        assert_eq!(forms[0].inputs[0].value, "a/b&c");
        assert_eq!(forms[0].inputs.len(), 2);
    }
}

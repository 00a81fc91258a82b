//! Which sign-in methods an organization offers (`auth_config`). Configuration flows one way:
//! an admin saves it on the organization, the hosted pages read it on every load, and each
//! method's endpoint refuses a request when its method is off, whatever the browser sends.

use serde::{Deserialize, Serialize};

/// The methods an organization can switch on and off, by their `auth_config` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Password,
    Passkey,
    /// Cross-device sign-in by approving a QR code on a phone that is already signed in.
    Qr,
    EmailOtp,
    PhoneOtp,
    /// An upstream OpenID provider (one button per enabled entry of `upstream`). Not in
    /// [`Method::ALL`]: it is switched per provider, not as one toggle.
    Upstream,
}

impl Method {
    pub const ALL: [Method; 5] = [
        Method::Password,
        Method::Passkey,
        Method::Qr,
        Method::EmailOtp,
        Method::PhoneOtp,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Method::Password => "password",
            Method::Passkey => "passkey",
            Method::Qr => "qr",
            Method::EmailOtp => "email_otp",
            Method::PhoneOtp => "phone_otp",
            Method::Upstream => "upstream",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Method::Password => "Password",
            Method::Passkey => "Passkey",
            Method::Qr => "QR code (approve on a phone)",
            Method::EmailOtp => "Email code",
            Method::PhoneOtp => "Text message code",
            Method::Upstream => "Another provider",
        }
    }

    pub fn from_key(key: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.key() == key)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub password: Toggle,
    pub passkey: Toggle,
    pub qr: Toggle,
    pub email_otp: OtpSettings,
    pub phone_otp: OtpSettings,
    /// Who may create an account (README "Sign-up"). Configurations saved before sign-up
    /// modes existed hold `self_registration: true|false`, read as `open` or `closed`.
    #[serde(alias = "self_registration", deserialize_with = "Signup::read")]
    pub signup: Signup,
    /// Upstream OpenID providers a person can sign in with (README "Upstream identity
    /// providers"). Managed through their own admin calls; saving the rest of the
    /// configuration keeps the stored list.
    pub upstream: Vec<crate::authn::upstream::UpstreamProvider>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignupMode {
    /// Admins create or invite users.
    #[default]
    Closed,
    /// Only with an invitation link (admin console, admin API or CLI).
    Invite,
    /// Anyone whose address is in an allowed domain.
    Open,
}

impl SignupMode {
    pub fn key(self) -> &'static str {
        match self {
            SignupMode::Closed => "closed",
            SignupMode::Invite => "invite",
            SignupMode::Open => "open",
        }
    }

    pub fn from_key(key: &str) -> Option<SignupMode> {
        [SignupMode::Closed, SignupMode::Invite, SignupMode::Open]
            .into_iter()
            .find(|m| m.key() == key)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Signup {
    pub mode: SignupMode,
    /// For `open`: the email domains that may sign up (exact match, lower case); empty = any.
    pub allowed_domains: Vec<String>,
}

impl Signup {
    /// An invitation's address is the admin's choice: the domain list applies to `open` only.
    pub fn open_to(&self, normalized_email: &str) -> bool {
        self.mode == SignupMode::Open && self.domain_allowed(normalized_email)
    }

    pub fn domain_allowed(&self, normalized_email: &str) -> bool {
        let domain = normalized_email.rsplit_once('@').map_or("", |(_, d)| d);
        self.allowed_domains.is_empty() || self.allowed_domains.iter().any(|d| d == domain)
    }

    /// Reads the current form or the boolean of the former `self_registration` key.
    fn read<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Signup, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Legacy(bool),
            Current(Signup),
        }
        Ok(match Stored::deserialize(d)? {
            Stored::Legacy(open) => Signup {
                mode: if open {
                    SignupMode::Open
                } else {
                    SignupMode::Closed
                },
                allowed_domains: Vec::new(),
            },
            Stored::Current(signup) => signup,
        })
    }

    /// Domains as people type them (`@Example.COM `) become `example.com`; refuses what
    /// cannot be a domain.
    pub fn normalize(&mut self) -> Result<(), String> {
        const MAX_DOMAINS: usize = 100;
        if self.allowed_domains.len() > MAX_DOMAINS {
            return Err(format!("at most {MAX_DOMAINS} sign-up domains"));
        }
        let mut domains = Vec::with_capacity(self.allowed_domains.len());
        for raw in &self.allowed_domains {
            let d = raw.trim().trim_start_matches('@').to_lowercase();
            if d.is_empty() {
                continue;
            }
            let valid = d.len() <= 253
                && d.contains('.')
                && !d.starts_with('.')
                && !d.ends_with('.')
                && d.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !valid {
                return Err(format!("{raw:?} is not an email domain (like example.com)"));
            }
            if !domains.contains(&d) {
                domains.push(d);
            }
        }
        self.allowed_domains = domains;
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Toggle {
    pub enabled: bool,
}

impl Default for Toggle {
    fn default() -> Self {
        Toggle { enabled: true }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtpSettings {
    pub enabled: bool,
    /// Count a verified address towards the reauthentication claim. Off by default: a code
    /// proves access to a mailbox or a phone number, which is often open on the very device
    /// whose session a relying party wants to re-check, and a number can be taken over at the
    /// carrier (SIM swap). README "Email and SMS codes" has the reasoning.
    pub counts_for_reauthentication: bool,
}

impl Default for AuthConfig {
    /// A new organization offers what needs no delivery set-up: password, passkey and QR.
    fn default() -> Self {
        AuthConfig {
            password: Toggle::default(),
            passkey: Toggle::default(),
            qr: Toggle::default(),
            email_otp: OtpSettings::default(),
            phone_otp: OtpSettings::default(),
            signup: Signup::default(),
            upstream: Vec::new(),
        }
    }
}

impl AuthConfig {
    pub fn from_json(text: &str) -> Result<AuthConfig, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain data serializes")
    }

    pub fn enabled(&self, method: Method) -> bool {
        match method {
            Method::Password => self.password.enabled,
            Method::Passkey => self.passkey.enabled,
            Method::Qr => self.qr.enabled,
            Method::EmailOtp => self.email_otp.enabled,
            Method::PhoneOtp => self.phone_otp.enabled,
            Method::Upstream => self.upstream.iter().any(|p| p.enabled),
        }
    }

    pub fn set_enabled(&mut self, method: Method, on: bool) {
        match method {
            Method::Password => self.password.enabled = on,
            Method::Passkey => self.passkey.enabled = on,
            Method::Qr => self.qr.enabled = on,
            Method::EmailOtp => self.email_otp.enabled = on,
            Method::PhoneOtp => self.phone_otp.enabled = on,
            Method::Upstream => self.upstream.iter_mut().for_each(|p| p.enabled = on),
        }
    }

    /// An enabled provider entry by its id.
    pub fn upstream_provider(&self, id: &str) -> Option<&crate::authn::upstream::UpstreamProvider> {
        self.upstream.iter().find(|p| p.enabled && p.id == id)
    }

    /// This configuration for display: provider secrets show as `"set"`, never sealed bytes.
    pub fn redacted(&self) -> AuthConfig {
        let mut shown = self.clone();
        for p in &mut shown.upstream {
            if p.client_secret_sealed.is_some() {
                p.client_secret_sealed = Some("set".into());
            }
        }
        shown
    }

    pub fn enabled_methods(&self) -> Vec<Method> {
        Method::ALL
            .into_iter()
            .filter(|m| self.enabled(*m))
            .collect()
    }

    /// The part of the lock-out guard that needs no data: some method must let a person
    /// start a sign-in on their own. QR alone does not: approving a QR code needs a phone
    /// that signed in with another method.
    pub fn check_static(&self) -> Result<(), String> {
        let standalone = [
            Method::Password,
            Method::Passkey,
            Method::EmailOtp,
            Method::PhoneOtp,
            Method::Upstream,
        ];
        if standalone.iter().any(|m| self.enabled(*m)) {
            return Ok(());
        }
        if self.qr.enabled {
            return Err("QR sign-in cannot be the only method: the approving phone must sign in with another one. Enable password, passkey or a one-time code too.".into());
        }
        Err("at least one sign-in method must stay enabled, or nobody could sign in".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_json_reads_as_defaults_and_round_trips() {
        let config = AuthConfig::from_json("{}").unwrap();
        assert_eq!(config, AuthConfig::default());
        assert_eq!(
            config.enabled_methods(),
            vec![Method::Password, Method::Passkey, Method::Qr]
        );
        assert_eq!(AuthConfig::from_json(&config.to_json()).unwrap(), config);
        assert!(AuthConfig::from_json(r#"{"sms":{"enabled":true}}"#).is_err());
    }

    #[test]
    fn former_self_registration_reads_as_a_signup_mode() {
        let open = AuthConfig::from_json(r#"{"self_registration":true}"#).unwrap();
        assert_eq!(open.signup.mode, SignupMode::Open);
        assert!(open.signup.open_to("ada@anywhere.example"));
        let closed = AuthConfig::from_json(r#"{"self_registration":false}"#).unwrap();
        assert_eq!(closed.signup, Signup::default());
        assert!(!closed.to_json().contains("self_registration"));
        let current = AuthConfig::from_json(
            r#"{"signup":{"mode":"open","allowed_domains":["example.com"]}}"#,
        )
        .unwrap();
        assert!(current.signup.open_to("ada@example.com"));
        assert!(!current.signup.open_to("ada@evil.example"));
        assert!(!current.signup.open_to("ada@sub.example.com"));
        assert!(AuthConfig::from_json(r#"{"signup":{"mode":"sometimes"}}"#).is_err());
        assert!(AuthConfig::from_json(r#"{"signup":{"mode":"open","x":1}}"#).is_err());
    }

    #[test]
    fn signup_domains_are_normalized_or_refused() {
        let mut config = AuthConfig::default();
        config.signup.allowed_domains =
            vec![" @Example.COM ".into(), "example.com".into(), "".into()];
        config.signup.normalize().unwrap();
        assert_eq!(config.signup.allowed_domains, vec!["example.com"]);
        config.signup.allowed_domains = vec!["not a domain".into()];
        assert!(config.signup.normalize().is_err());
    }

    #[test]
    fn lock_out_guard() {
        let mut config = AuthConfig::default();
        config.check_static().unwrap();
        for m in Method::ALL {
            config.set_enabled(m, false);
        }
        assert!(config.check_static().is_err());
        config.upstream = serde_json::from_str(
            r#"[{"id":"g","kind":"google","display_name":"Google","client_id":"c"}]"#,
        )
        .unwrap();
        config.check_static().unwrap();
        config.set_enabled(Method::Upstream, false);
        assert!(config.check_static().is_err());
        config.set_enabled(Method::Qr, true);
        assert!(config.check_static().unwrap_err().contains("QR"));
        config.set_enabled(Method::EmailOtp, true);
        config.check_static().unwrap();
        for m in Method::ALL {
            assert_eq!(Method::from_key(m.key()), Some(m));
        }
    }
}

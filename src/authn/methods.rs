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
    /// A person whose address has no account gets one on their first verified email code.
    /// Off: codes sign in existing accounts only (and the answer is the same either way).
    pub self_registration: bool,
    /// Upstream OpenID providers a person can sign in with (README "Upstream identity
    /// providers"). Managed through their own admin calls; saving the rest of the
    /// configuration keeps the stored list.
    pub upstream: Vec<crate::authn::upstream::UpstreamProvider>,
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
            self_registration: false,
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

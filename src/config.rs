//! Every setting with its default, in one place. A TOML file (`--config FILE` or
//! `TESSERA_CONFIG`) is read first; `TESSERA_*` environment variables override it.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::security::rate_limit::Policy;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The issuer URL (`iss`). Plain `http://` is accepted only for localhost / loopback.
    pub issuer: String,
    /// Address the HTTP server listens on.
    pub bind: SocketAddr,
    /// Address of the Prometheus `/metrics` listener, kept apart from `bind` so metrics are
    /// never public; `off` disables it. Port 0 picks a free port (tests).
    pub metrics_bind: String,
    /// Folder for the SQLite database and other local state.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` (default: `DATA_DIR/tessera.db`) or `postgres://…`.
    pub database_url: Option<String>,
    /// Pool size per process.
    pub database_max_connections: usize,
    /// Base64 of 32 random bytes; encrypts signing keys and instance secrets at rest.
    pub master_key: Option<String>,
    /// Seed and mount the demo relying party at `/demo`.
    pub demo: bool,
    /// `text` or `json`.
    pub log_format: String,
    /// A `tracing` filter, e.g. `info` or `tessera=debug`.
    pub log_level: String,
    pub tokens: TokenSettings,
    pub sessions: SessionSettings,
    pub rate_limits: RateLimitSettings,
    pub qr: QrSettings,
    /// Email and SMS one-time codes: lifetime and tries (README "Email and SMS codes").
    pub otp: OtpSettings,
    /// How email leaves Tessera (one-time codes).
    pub email: EmailSettings,
    /// How text messages leave Tessera (one-time codes).
    pub sms: SmsSettings,
    /// How long audit log entries are kept.
    pub audit_retention_days: i64,
    /// Name of the reauthentication claim in ID tokens and userinfo.
    pub reauthentication_claim: String,
    /// The demo app's freshness window for its sensitive operation (seconds since `auth_time`).
    pub demo_reauthenticate_after_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSettings {
    pub id_token_ttl_secs: i64,
    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    pub code_ttl_secs: i64,
    /// Lifetime of a device code and its user code (RFC 8628 §3.2 `expires_in`).
    pub device_code_ttl_secs: i64,
    /// How long a validated authorization request waits for the user to sign in.
    pub authorization_request_ttl_secs: i64,
    /// Allowed clock difference when validating times in tokens we receive.
    pub leeway_secs: i64,
    /// `jwt` (RFC 9068, RS256: one more RSA signature per token response) or `opaque`
    /// (sealed with AES-256-GCM under a key derived from the instance secret: no signature,
    /// no database write; only Tessera can read it, at userinfo and introspection).
    pub access_token_format: AccessTokenFormat,
    /// How long used codes and rotated refresh tokens are kept after use, so that a replay is
    /// recognised as one (and revokes its grant) rather than answered as an unknown token.
    pub reuse_detection_secs: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessTokenFormat {
    Jwt,
    Opaque,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSettings {
    /// Rolling idle lifetime, renewed on use.
    pub idle_ttl_secs: i64,
    /// Absolute cap from the sign-in, whatever the activity.
    pub absolute_ttl_secs: i64,
    /// How often housekeeping runs: it notifies relying parties of sessions that expired
    /// (Back-Channel Logout) and purges what has expired. An expired session's logout token
    /// goes out at most this long after the expiry.
    pub sweep_interval_secs: u64,
}

/// QR cross-device sign-in lifetimes (README "QR sign-in"): short on purpose, since a QR
/// code that lives long is one an attacker has time to relay.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QrSettings {
    /// How long a QR code can be scanned; the page shows a new one when it expires.
    pub code_ttl_secs: i64,
    /// How long the phone has to decide after scanning.
    pub decide_within_secs: i64,
    /// How long the waiting browser has to redeem the approval.
    pub grant_ttl_secs: i64,
}

impl Default for QrSettings {
    fn default() -> Self {
        QrSettings {
            code_ttl_secs: 120,
            decide_within_secs: 60,
            grant_ttl_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtpSettings {
    /// How long a code can be used.
    pub code_ttl_secs: i64,
    /// Wrong codes allowed per code; the code is dead after that.
    pub max_attempts: i64,
}

impl Default for OtpSettings {
    fn default() -> Self {
        OtpSettings {
            code_ttl_secs: 600,
            max_attempts: 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTransport {
    /// Keep messages in memory and show them at `/dev/outbox` (demo mode only): no mail server.
    Outbox,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP: only for a relay on the same host or network.
    None,
    /// Upgrade with STARTTLS, and refuse a server that does not offer it.
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailSettings {
    pub transport: EmailTransport,
    /// `From:` of every message, e.g. `Tessera <no-reply@example.com>`.
    pub from: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_tls: SmtpTls,
    pub smtp_username: Option<String>,
    /// Prefer `TESSERA_SMTP_PASSWORD` to keep it out of the file.
    pub smtp_password: Option<String>,
    pub smtp_timeout_secs: u64,
}

impl Default for EmailSettings {
    fn default() -> Self {
        EmailSettings {
            transport: EmailTransport::Outbox,
            from: "Tessera <no-reply@localhost>".into(),
            smtp_host: "localhost".into(),
            smtp_port: 25,
            smtp_tls: SmtpTls::Starttls,
            smtp_username: None,
            smtp_password: None,
            smtp_timeout_secs: 10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsSenderKind {
    /// Keep messages in memory and show them at `/dev/outbox` (demo mode only).
    Outbox,
    /// POST `{"to", "body"}` as JSON to `webhook_url` with the shared secret in a header.
    Webhook,
    /// Twilio's Messages API (or a compatible one at `twilio_base_url`).
    Twilio,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsSettings {
    pub sender: SmsSenderKind,
    pub webhook_url: Option<String>,
    /// Sent as `X-Tessera-Webhook-Secret`; prefer `TESSERA_SMS_WEBHOOK_SECRET`.
    pub webhook_secret: Option<String>,
    pub twilio_base_url: String,
    pub twilio_account_sid: Option<String>,
    /// Prefer `TESSERA_TWILIO_AUTH_TOKEN`.
    pub twilio_auth_token: Option<String>,
    /// The sending number (E.164) or messaging service.
    pub twilio_from: Option<String>,
}

impl Default for SmsSettings {
    fn default() -> Self {
        SmsSettings {
            sender: SmsSenderKind::Outbox,
            webhook_url: None,
            webhook_secret: None,
            twilio_base_url: "https://api.twilio.com".into(),
            twilio_account_sid: None,
            twilio_auth_token: None,
            twilio_from: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Failed password sign-ins per account.
    pub login_per_account: Policy,
    /// Failed password sign-ins per client IP.
    pub login_per_ip: Policy,
    /// Failed client authentications per client at the token endpoint.
    pub client_auth_per_client: Policy,
    /// Wrong user codes typed on the device verification page, per signed-in session.
    pub device_user_code_per_session: Policy,
    /// One-time codes sent per address (email or phone), short window: the resend throttle.
    /// `max_failures` counts sends here.
    pub otp_send_per_address: Policy,
    /// One-time codes sent per address, long window.
    pub otp_send_per_address_hourly: Policy,
    /// One-time codes sent per client IP, short window.
    pub otp_send_per_ip: Policy,
    /// One-time codes sent per client IP, long window.
    pub otp_send_per_ip_hourly: Policy,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            issuer: "http://localhost:8080".into(),
            bind: "127.0.0.1:8080".parse().expect("static address"),
            metrics_bind: "127.0.0.1:9464".into(),
            data_dir: PathBuf::from("tessera-data"),
            database_url: None,
            database_max_connections: 16,
            master_key: None,
            demo: true,
            log_format: "text".into(),
            log_level: "info".into(),
            tokens: TokenSettings::default(),
            sessions: SessionSettings::default(),
            rate_limits: RateLimitSettings::default(),
            qr: QrSettings::default(),
            otp: OtpSettings::default(),
            email: EmailSettings::default(),
            sms: SmsSettings::default(),
            audit_retention_days: 400,
            reauthentication_claim: "can_reauthenticate".into(),
            demo_reauthenticate_after_secs: 300,
        }
    }
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            id_token_ttl_secs: 3600,
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            code_ttl_secs: 60,
            device_code_ttl_secs: 600,
            authorization_request_ttl_secs: 30 * 60,
            leeway_secs: 30,
            access_token_format: AccessTokenFormat::Jwt,
            reuse_detection_secs: 24 * 3600,
        }
    }
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            idle_ttl_secs: 7 * 24 * 3600,
            absolute_ttl_secs: 30 * 24 * 3600,
            sweep_interval_secs: 60,
        }
    }
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            login_per_account: Policy {
                max_failures: 5,
                window_secs: 15 * 60,
            },
            login_per_ip: Policy {
                max_failures: 50,
                window_secs: 15 * 60,
            },
            client_auth_per_client: Policy {
                max_failures: 20,
                window_secs: 5 * 60,
            },
            device_user_code_per_session: Policy {
                max_failures: 5,
                window_secs: 10 * 60,
            },
            otp_send_per_address: Policy {
                max_failures: 1,
                window_secs: 30,
            },
            otp_send_per_address_hourly: Policy {
                max_failures: 5,
                window_secs: 3600,
            },
            otp_send_per_ip: Policy {
                max_failures: 5,
                window_secs: 30,
            },
            otp_send_per_ip_hourly: Policy {
                max_failures: 30,
                window_secs: 3600,
            },
        }
    }
}

impl Config {
    /// Reads the optional file, then the environment, then checks the result.
    pub fn load(file: Option<&std::path::Path>) -> Result<Config, String> {
        let file = file
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("TESSERA_CONFIG").map(PathBuf::from));
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        config.validate()?;
        Ok(config)
    }

    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        if let Some(v) = get("TESSERA_ISSUER") {
            self.issuer = v;
        }
        if let Some(v) = get("TESSERA_BIND") {
            self.bind = v
                .parse()
                .map_err(|_| format!("TESSERA_BIND: not an address: {v}"))?;
        }
        if let Some(v) = get("TESSERA_METRICS_BIND") {
            self.metrics_bind = v;
        }
        if let Some(v) = get("TESSERA_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("TESSERA_DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = get("TESSERA_MASTER_KEY") {
            self.master_key = Some(v);
        }
        if let Some(v) = get("TESSERA_DEMO") {
            self.demo = matches!(v.as_str(), "1" | "true" | "yes" | "on");
        }
        if let Some(v) = get("TESSERA_LOG_FORMAT") {
            self.log_format = v;
        }
        if let Some(v) = get("TESSERA_LOG") {
            self.log_level = v;
        }
        if let Some(v) = get("TESSERA_REAUTHENTICATION_CLAIM") {
            self.reauthentication_claim = v;
        }
        if let Some(v) = get("TESSERA_ACCESS_TOKEN_FORMAT") {
            self.tokens.access_token_format = match v.as_str() {
                "jwt" => AccessTokenFormat::Jwt,
                "opaque" => AccessTokenFormat::Opaque,
                _ => {
                    return Err(format!(
                        "TESSERA_ACCESS_TOKEN_FORMAT: jwt or opaque, not {v}"
                    ));
                }
            };
        }
        if let Some(v) = get("TESSERA_SMTP_PASSWORD") {
            self.email.smtp_password = Some(v);
        }
        if let Some(v) = get("TESSERA_SMS_WEBHOOK_SECRET") {
            self.sms.webhook_secret = Some(v);
        }
        if let Some(v) = get("TESSERA_TWILIO_AUTH_TOKEN") {
            self.sms.twilio_auth_token = Some(v);
        }
        if let Some(v) = get("TESSERA_DEMO_REAUTHENTICATE_AFTER_SECS") {
            self.demo_reauthenticate_after_secs = v.parse().map_err(|_| {
                format!("TESSERA_DEMO_REAUTHENTICATE_AFTER_SECS: not a number: {v}")
            })?;
        }
        Ok(())
    }

    pub fn validate(&mut self) -> Result<(), String> {
        let issuer = url::Url::parse(&self.issuer)
            .map_err(|e| format!("issuer {:?} is not a URL: {e}", self.issuer))?;
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return Err("issuer must not have a query or fragment (Discovery 1.0 §2)".into());
        }
        match issuer.scheme() {
            "https" => {}
            "http" if is_loopback_host(issuer.host_str().unwrap_or("")) => {}
            "http" => {
                return Err(format!(
                    "issuer {} uses plain http on a non-local host: use https",
                    self.issuer
                ));
            }
            other => return Err(format!("issuer scheme {other} is not http(s)")),
        }
        // The issuer is compared as a string by relying parties: keep it without a trailing slash.
        self.issuer = self.issuer.trim_end_matches('/').to_owned();
        if let Some(key) = &self.master_key {
            crate::security::master_key::MasterKey::from_base64(key)?;
        }
        let claim_ok = !self.reauthentication_claim.is_empty()
            && self.reauthentication_claim.len() <= 128
            && !self
                .reauthentication_claim
                .chars()
                .any(|c| c.is_control() || c == '"');
        const RESERVED: &[&str] = &[
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "azp",
            "sid",
            "at_hash",
            "name",
            "email",
            "email_verified",
            "scope",
            "client_id",
            "jti",
        ];
        if !claim_ok || RESERVED.contains(&self.reauthentication_claim.as_str()) {
            return Err(
                "reauthentication_claim must be a printable claim name that no standard claim uses"
                    .into(),
            );
        }
        if self.sessions.sweep_interval_secs < 1 {
            return Err("sessions.sweep_interval_secs must be at least 1".into());
        }
        if self.audit_retention_days < 1 {
            return Err("audit_retention_days must be at least 1".into());
        }
        if self.otp.code_ttl_secs < 1 || self.otp.max_attempts < 1 {
            return Err("otp.code_ttl_secs and otp.max_attempts must be at least 1".into());
        }
        match self.sms.sender {
            SmsSenderKind::Webhook => {
                let url = self.sms.webhook_url.as_deref().unwrap_or("");
                url::Url::parse(url).map_err(|e| format!("sms.webhook_url {url:?}: {e}"))?;
                if self.sms.webhook_secret.as_deref().unwrap_or("").len() < 16 {
                    return Err("sms.webhook_secret must be at least 16 characters".into());
                }
            }
            SmsSenderKind::Twilio => {
                if self.sms.twilio_account_sid.is_none()
                    || self.sms.twilio_auth_token.is_none()
                    || self.sms.twilio_from.is_none()
                {
                    return Err(
                        "sms.sender = twilio needs twilio_account_sid, twilio_auth_token and twilio_from"
                            .into(),
                    );
                }
                url::Url::parse(&self.sms.twilio_base_url)
                    .map_err(|e| format!("sms.twilio_base_url: {e}"))?;
            }
            SmsSenderKind::Outbox => {}
        }
        if self.tokens.device_code_ttl_secs < 1 {
            return Err("tokens.device_code_ttl_secs must be at least 1".into());
        }
        if self.tokens.reuse_detection_secs < 60 {
            return Err("tokens.reuse_detection_secs must be at least 60".into());
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(format!(
                "log_format must be text or json, not {}",
                self.log_format
            ));
        }
        if !self.metrics_disabled() && self.metrics_bind.parse::<SocketAddr>().is_err() {
            return Err(format!(
                "metrics_bind must be an address such as 127.0.0.1:9464, or off; not {}",
                self.metrics_bind
            ));
        }
        Ok(())
    }

    fn metrics_disabled(&self) -> bool {
        matches!(self.metrics_bind.trim(), "" | "off" | "none" | "false")
    }

    /// Where `/metrics` is served; `None` when disabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        if self.metrics_disabled() {
            None
        } else {
            self.metrics_bind.parse().ok()
        }
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("tessera.db").display()))
    }

    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    pub fn master_key(&self) -> Option<crate::security::master_key::MasterKey> {
        self.master_key
            .as_deref()
            .and_then(|k| crate::security::master_key::MasterKey::from_base64(k).ok())
    }

    /// The issuer's host for cookies and WebAuthn.
    pub fn issuer_url(&self) -> url::Url {
        url::Url::parse(&self.issuer).expect("validated at load")
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

pub fn is_loopback_host(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1")
        || host.ends_with(".localhost")
        || host.starts_with("127.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_env(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let mut c = Config::default();
        c.apply_env(|k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn http_issuer_only_for_localhost() {
        assert!(with_env(&[("TESSERA_ISSUER", "http://localhost:9000")]).is_ok());
        assert!(with_env(&[("TESSERA_ISSUER", "http://127.0.0.1:9000/")]).is_ok());
        assert!(with_env(&[("TESSERA_ISSUER", "http://id.example.com")]).is_err());
        assert!(with_env(&[("TESSERA_ISSUER", "https://id.example.com")]).is_ok());
        assert!(with_env(&[("TESSERA_ISSUER", "https://id.example.com?x=1")]).is_err());
    }

    #[test]
    fn env_overrides_and_defaults() {
        let c = with_env(&[
            ("TESSERA_DATA_DIR", "/tmp/x"),
            ("TESSERA_BIND", "0.0.0.0:9999"),
            ("TESSERA_ISSUER", "https://id.example.com/"),
        ])
        .unwrap();
        assert_eq!(c.database_url(), "sqlite:///tmp/x/tessera.db");
        assert_eq!(c.bind.port(), 9999);
        assert_eq!(c.issuer, "https://id.example.com");
        assert!(c.is_https());
        assert!(with_env(&[("TESSERA_MASTER_KEY", "short")]).is_err());
        assert_eq!(c.metrics_addr(), Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(
            with_env(&[("TESSERA_METRICS_BIND", "off")])
                .unwrap()
                .metrics_addr(),
            None
        );
        assert!(with_env(&[("TESSERA_METRICS_BIND", "nowhere")]).is_err());
    }

    #[test]
    fn toml_file_parses_with_nested_sections() {
        let c: Config = toml::from_str(
            "issuer = \"https://id.example.com\"\n[tokens]\naccess_token_ttl_secs = 60\n",
        )
        .unwrap();
        assert_eq!(c.tokens.access_token_ttl_secs, 60);
        assert_eq!(c.tokens.id_token_ttl_secs, 3600);
        assert!(toml::from_str::<Config>("nonsense_key = 1").is_err());
    }
}

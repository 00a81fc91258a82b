//! The reference companion app, inside the binary (`tessera device enroll|approve`), so QR
//! sign-in with a device key is usable and testable without a phone. It speaks only the
//! documented companion API (README "Companion API") over HTTP, like a phone app would, and
//! keeps its P-256 key in a local file (mode 0600).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::authn::companion::{ENROLLMENT_TYP, QR_TYP};
use crate::security::device_key::DeviceKey;
use crate::security::{b64url, b64url_decode};

#[derive(Subcommand)]
pub enum DeviceCommand {
    /// Enroll this machine as a companion device with a code from the account page.
    Enroll {
        #[arg(long)]
        code: String,
        /// The Tessera issuer URL (default: the configured issuer).
        #[arg(long)]
        issuer: Option<String>,
        /// A name shown on the account page.
        #[arg(long, default_value = "tessera device")]
        name: String,
        #[arg(long, default_value = "tessera-device.json")]
        key_file: PathBuf,
    },
    /// Approve (or deny) the QR sign-in at URL: prints what is asking, then asks for the
    /// code shown on the other screen and a confirmation.
    Approve {
        url: String,
        #[arg(long, default_value = "tessera-device.json")]
        key_file: PathBuf,
        /// The match code shown on the other screen (asked for when absent).
        #[arg(long)]
        code: Option<String>,
        /// Do not ask for confirmation (scripts).
        #[arg(long)]
        yes: bool,
        /// Deny instead of approving.
        #[arg(long)]
        deny: bool,
    },
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    issuer: String,
    device_id: String,
    name: String,
    /// PKCS#8 of the P-256 key, base64url.
    pkcs8: String,
}

pub async fn run(default_issuer: &str, command: DeviceCommand) -> Result<Value, String> {
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    match command {
        DeviceCommand::Enroll {
            code,
            issuer,
            name,
            key_file,
        } => {
            enroll(
                &http,
                issuer.as_deref().unwrap_or(default_issuer),
                &code,
                &name,
                &key_file,
            )
            .await
        }
        DeviceCommand::Approve {
            url,
            key_file,
            code,
            yes,
            deny,
        } => approve(&http, &url, &key_file, code, yes, deny).await,
    }
}

type Http = openidconnect::reqwest::Client;

async fn post(http: &Http, url: &str, body: &Value) -> Result<Value, String> {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        let why = value
            .get("error_description")
            .and_then(Value::as_str)
            .unwrap_or("no details");
        return Err(format!("{url}: {status}: {why}"));
    }
    Ok(value)
}

fn now() -> i64 {
    crate::store::now()
}

async fn enroll(
    http: &Http,
    issuer: &str,
    code: &str,
    name: &str,
    key_file: &Path,
) -> Result<Value, String> {
    let issuer = issuer.trim_end_matches('/');
    let (key, pkcs8) = DeviceKey::generate()?;
    let proof = key.sign(
        ENROLLMENT_TYP,
        None,
        &json!({"aud": issuer, "code": code, "iat": now()}),
    )?;
    let answer = post(
        http,
        &format!("{issuer}/api/devices"),
        &json!({"code": code, "name": name, "public_key": key.public_jwk(), "proof": proof}),
    )
    .await?;
    let device_id = answer["device_id"]
        .as_str()
        .ok_or("the server did not return a device id")?
        .to_owned();
    let file = KeyFile {
        issuer: issuer.to_owned(),
        device_id: device_id.clone(),
        name: name.to_owned(),
        pkcs8: b64url(&pkcs8),
    };
    write_private(
        key_file,
        &serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?,
    )?;
    Ok(json!({"enrolled": device_id, "key_file": key_file.display().to_string()}))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(bytes)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn ask(prompt: &str) -> Result<String, String> {
    eprint!("{prompt}");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    Ok(line.trim().to_owned())
}

async fn approve(
    http: &Http,
    url: &str,
    key_file: &Path,
    code: Option<String>,
    yes: bool,
    deny: bool,
) -> Result<Value, String> {
    let text = std::fs::read(key_file).map_err(|e| format!("{}: {e}", key_file.display()))?;
    let file: KeyFile = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
    let key = DeviceKey::from_pkcs8(&b64url_decode(&file.pkcs8).ok_or("bad key file")?)?;
    // Only QR codes of the issuer this device is enrolled with: a QR URL on another host is
    // someone else's page.
    let id = url
        .strip_prefix(&format!("{}/qr/", file.issuer))
        .filter(|id| {
            !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .ok_or_else(|| format!("{url} is not a QR sign-in of {}", file.issuer))?
        .to_owned();
    let api = format!("{}/api/qr/{id}", file.issuer);
    let sign = |challenge: &str, decision: &str, code: Option<&str>| {
        let mut claims = json!({
            "aud": file.issuer, "qr": id, "challenge": challenge, "decision": decision, "iat": now(),
        });
        if let Some(code) = code {
            claims["code"] = code.into();
        }
        key.sign(QR_TYP, Some(&file.device_id), &claims)
    };
    let challenge = post(http, &format!("{api}/challenge"), &json!({})).await?;
    let challenge = challenge["challenge"].as_str().ok_or("no challenge")?;
    let context = post(
        http,
        &format!("{api}/scan"),
        &json!({"request": sign(challenge, "scan", None)?}),
    )
    .await?;
    let field = |name: &str| context[name].as_str().unwrap_or("").to_owned();
    eprintln!(
        "Sign in as {} to {}?",
        field("account"),
        field("application")
    );
    eprintln!("  application's site: {}", field("redirect_host"));
    eprintln!(
        "  other screen: {} at {}{}",
        field("requesting_browser"),
        field("requesting_ip"),
        if context["new_browser"] == true {
            " (never used with this account)"
        } else {
            ""
        }
    );
    eprintln!("  {}", field("network"));
    eprintln!("Only continue if you just started this on a screen in front of you.");
    let next = context["challenge"]
        .as_str()
        .ok_or("no challenge")?
        .to_owned();
    let request = if deny {
        sign(&next, "deny", None)?
    } else {
        let code = match code {
            Some(c) => c,
            None => ask("Type the code shown on the other screen: ")?,
        };
        if !yes && !ask("Approve this sign-in? [y/N] ")?.eq_ignore_ascii_case("y") {
            sign(&next, "deny", None)?
        } else {
            sign(&next, "approve", Some(&code))?
        }
    };
    post(
        http,
        &format!("{api}/decision"),
        &json!({"request": request}),
    )
    .await
}

//! Text messages: a webhook of the operator's (JSON with a shared secret header), or Twilio's
//! Messages API at a configurable base URL (so Twilio-compatible providers work too).

use crate::config::{SmsSenderKind, SmsSettings};

pub const WEBHOOK_SECRET_HEADER: &str = "X-Tessera-Webhook-Secret";

pub enum SmsSender {
    Webhook {
        url: String,
        secret: String,
    },
    Twilio {
        messages_url: String,
        account_sid: String,
        auth_token: String,
        from: String,
    },
}

impl SmsSender {
    pub fn from_settings(settings: &SmsSettings) -> Result<SmsSender, String> {
        let missing = |what: &str| format!("sms.{what} is not set");
        match settings.sender {
            SmsSenderKind::Webhook => Ok(SmsSender::Webhook {
                url: settings.webhook_url.clone().ok_or(missing("webhook_url"))?,
                secret: settings
                    .webhook_secret
                    .clone()
                    .ok_or(missing("webhook_secret"))?,
            }),
            SmsSenderKind::Twilio => {
                let account_sid = settings
                    .twilio_account_sid
                    .clone()
                    .ok_or(missing("twilio_account_sid"))?;
                Ok(SmsSender::Twilio {
                    messages_url: format!(
                        "{}/2010-04-01/Accounts/{}/Messages.json",
                        settings.twilio_base_url.trim_end_matches('/'),
                        account_sid
                    ),
                    account_sid,
                    auth_token: settings
                        .twilio_auth_token
                        .clone()
                        .ok_or(missing("twilio_auth_token"))?,
                    from: settings.twilio_from.clone().ok_or(missing("twilio_from"))?,
                })
            }
            SmsSenderKind::Outbox => Err("the outbox is not an SMS sender".into()),
        }
    }

    pub async fn send(
        &self,
        http: &openidconnect::reqwest::Client,
        to: &str,
        body: &str,
    ) -> Result<(), String> {
        let request = match self {
            SmsSender::Webhook { url, secret } => http
                .post(url)
                .header(WEBHOOK_SECRET_HEADER, secret)
                .header("content-type", "application/json")
                .body(serde_json::json!({ "to": to, "body": body }).to_string()),
            SmsSender::Twilio {
                messages_url,
                account_sid,
                auth_token,
                from,
            } => http
                .post(messages_url)
                .basic_auth(account_sid, Some(auth_token))
                .form(&[("To", to), ("From", from), ("Body", body)]),
        };
        let response = request.send().await.map_err(|e| format!("SMS: {e}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("SMS: the sender answered {}", response.status()))
        }
    }
}

//! Messages that leave Tessera (one-time codes): email over SMTP, text messages through a
//! webhook or a Twilio-compatible API, or, in the demo, an in-memory outbox shown at
//! `/dev/outbox` so the quick start needs no mail server.

mod email;
pub mod messages;
mod sms;

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::config::{Config, EmailTransport, SmsSenderKind};

pub use email::EmailSender;
pub use sms::SmsSender;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

/// One message as sent (kept only by the outbox).
#[derive(Debug, Clone)]
pub struct Message {
    pub channel: Channel,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub at: i64,
}

/// The demo's outbox: the newest messages, in memory only (codes are never written to disk).
#[derive(Default)]
pub struct Outbox {
    messages: Mutex<VecDeque<Message>>,
}

const OUTBOX_CAPACITY: usize = 200;

impl Outbox {
    fn push(&self, message: Message) {
        let mut messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        if messages.len() == OUTBOX_CAPACITY {
            messages.pop_back();
        }
        messages.push_front(message);
    }

    /// Newest first.
    pub fn recent(&self) -> Vec<Message> {
        let messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        messages.iter().cloned().collect()
    }
}

pub struct Delivery {
    email: Option<EmailSender>,
    sms: Option<SmsSender>,
    pub outbox: Outbox,
}

impl Delivery {
    pub fn from_config(config: &Config) -> Result<Delivery, String> {
        let email = match config.email.transport {
            EmailTransport::Outbox => None,
            EmailTransport::Smtp => Some(EmailSender::from_settings(&config.email)?),
        };
        let sms = match config.sms.sender {
            SmsSenderKind::Outbox => None,
            _ => Some(SmsSender::from_settings(&config.sms)?),
        };
        if (email.is_none() || sms.is_none()) && !config.demo {
            tracing::warn!(
                "email or SMS delivery is the in-memory outbox and demo mode is off: one-time codes are not delivered (configure [email] and [sms])"
            );
        }
        Ok(Delivery {
            email,
            sms,
            outbox: Outbox::default(),
        })
    }

    /// Sends in the background and logs a failure: an answer must not wait for (or, by its
    /// timing, reveal) an SMTP round trip that happens only for some addresses.
    pub fn send_in_background(
        self: &std::sync::Arc<Self>,
        http: &openidconnect::reqwest::Client,
        channel: Channel,
        to: String,
        subject: String,
        body: String,
    ) {
        let (delivery, http) = (std::sync::Arc::clone(self), http.clone());
        tokio::spawn(async move {
            if let Err(e) = delivery.send(&http, channel, &to, &subject, &body).await {
                tracing::warn!(channel = channel.as_str(), error = %e, "sending a message failed");
            }
        });
    }

    pub async fn send(
        &self,
        http: &openidconnect::reqwest::Client,
        channel: Channel,
        to: &str,
        subject: &str,
        body: &str,
    ) -> Result<(), String> {
        match (channel, &self.email, &self.sms) {
            (Channel::Email, Some(sender), _) => sender.send(to, subject, body).await,
            (Channel::Sms, _, Some(sender)) => sender.send(http, to, body).await,
            _ => {
                self.outbox.push(Message {
                    channel,
                    to: to.to_owned(),
                    subject: subject.to_owned(),
                    body: body.to_owned(),
                    at: crate::store::now(),
                });
                Ok(())
            }
        }
    }
}

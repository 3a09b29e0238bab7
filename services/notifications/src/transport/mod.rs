//! Where emails leave: SendGrid's HTTP API or SMTP, chosen by `MAIL_TRANSPORT`.
//!
//! A transport classifies every failure by what it proves, because the send guard
//! (`crate::delivery`) depends on it: a failure that proves the provider did not accept the
//! message (refused connection, an answer before the message was handed over, 429, 5xx)
//! may be retried; anything else (a timeout or a dropped connection once the message may
//! have been handed over) may have been delivered, and is never retried.

mod sendgrid;
mod smtp;

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;

pub use sendgrid::SendGrid;
pub use smtp::Smtp;

use crate::config::{Config, TransportConfig};

/// One email, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub from: Mailbox,
    pub to: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// Unique per email (event and template): the `Message-ID` with SMTP, a custom
    /// argument with SendGrid, so the provider's logs lead back to the event.
    pub id: String,
}

/// Why a send failed, and what that proves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The provider did not accept the message, and may later: retry (after `after`, when
    /// it said how long).
    #[error("not accepted, try again later: {reason}")]
    Transient {
        reason: String,
        after: Option<Duration>,
    },
    /// The provider refused the message for good (a malformed request, a rejected
    /// recipient): retrying would be refused again.
    #[error("refused: {0}")]
    Refused(String),
    /// The message may have been accepted (the connection failed or timed out after it was
    /// handed over): retrying could deliver it twice.
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

/// What sends emails; `Send + Sync` so one is shared by every listener.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync {
    /// The transport's name, for logs and metrics.
    fn name(&self) -> &'static str;

    /// Hands `email` to the provider; `Ok` means it accepted it.
    async fn send(&self, email: &Email) -> Result<(), SendError>;
}

/// The transport `config` names.
pub fn from_config(config: &Config) -> anyhow::Result<Arc<dyn Mailer>> {
    Ok(match &config.transport {
        TransportConfig::SendGrid { api_key, api_url } => Arc::new(SendGrid::new(
            api_url,
            api_key.clone(),
            config.send_timeout,
        )?),
        TransportConfig::Smtp { host, port } => {
            Arc::new(Smtp::new(host, *port, config.send_timeout))
        }
    })
}

/// At most `max` characters of a provider's answer, on one line: for logs and dead letters.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect()
}

//! Plain SMTP (`MAIL_TRANSPORT=smtp://host:port`): one connection per email, driven step
//! by step so that a failure is known to be before or after the message was handed over.

use std::time::Duration;

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Quit, Rcpt};
use lettre::transport::smtp::extension::ClientId;

use super::{Email, Mailer, SendError, excerpt};

pub struct Smtp {
    host: String,
    port: u16,
    timeout: Duration,
}

impl Smtp {
    pub fn new(host: &str, port: u16, timeout: Duration) -> Self {
        Self {
            host: host.to_owned(),
            port,
            timeout,
        }
    }
}

/// How far a send got: a failure before [`Step::Message`] proves the message was not
/// accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Connect,
    Envelope,
    Message,
}

#[async_trait::async_trait]
impl Mailer for Smtp {
    fn name(&self) -> &'static str {
        "smtp"
    }

    async fn send(&self, email: &Email) -> Result<(), SendError> {
        let message = build(email)?;
        let mut step = Step::Connect;
        let sent = tokio::time::timeout(self.timeout, self.deliver(&message, &mut step)).await;
        match sent {
            Ok(result) => result,
            Err(_) if step == Step::Message => Err(SendError::Unknown(format!(
                "no answer within {:?} after the message was sent",
                self.timeout
            ))),
            Err(_) => Err(SendError::Transient {
                reason: format!("timed out after {:?} during {step:?}", self.timeout),
                after: None,
            }),
        }
    }
}

impl Smtp {
    async fn deliver(&self, message: &Message, step: &mut Step) -> Result<(), SendError> {
        let envelope = message.envelope();
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(self.timeout),
            &ClientId::Domain("gittix-notifications".into()),
            None,
            None,
        )
        .await
        .map_err(|err| classify(&err, Step::Connect))?;
        *step = Step::Envelope;
        let result = async {
            conn.command(Mail::new(envelope.from().cloned(), vec![]))
                .await
                .map_err(|err| classify(&err, Step::Envelope))?;
            for to in envelope.to() {
                conn.command(Rcpt::new(to.clone(), vec![]))
                    .await
                    .map_err(|err| classify(&err, Step::Envelope))?;
            }
            conn.command(Data)
                .await
                .map_err(|err| classify(&err, Step::Envelope))?;
            // From here on the server may have the message.
            *step = Step::Message;
            conn.message(&message.formatted())
                .await
                .map_err(|err| classify(&err, Step::Message))?;
            Ok(())
        }
        .await;
        // Accepted or not, the connection is done with; a failed QUIT changes nothing.
        let _ = conn.command(Quit).await;
        result
    }
}

fn build(email: &Email) -> Result<Message, SendError> {
    let to: Mailbox = email
        .to
        .parse()
        .map_err(|err| SendError::Refused(format!("invalid recipient: {err}")))?;
    let domain = email.from.email.domain().to_owned();
    Message::builder()
        .from(email.from.clone())
        .to(to)
        .subject(&email.subject)
        .message_id(Some(format!("<{}@{domain}>", email.id)))
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .map_err(|err| SendError::Refused(format!("cannot build the message: {err}")))
}

/// What an SMTP error proves, given how far the send got.
fn classify(err: &lettre::transport::smtp::Error, step: Step) -> SendError {
    let reason = excerpt(&err.to_string(), 300);
    if err.is_permanent() {
        // A 5xx answer: the server refused (the recipient, the sender or the message).
        SendError::Refused(reason)
    } else if err.is_transient() {
        // A 4xx answer (greylisting, a full queue): not accepted now.
        SendError::Transient {
            reason,
            after: None,
        }
    } else if step == Step::Message {
        SendError::Unknown(reason)
    } else {
        // Refused connection, or the connection failed before the message was sent.
        SendError::Transient {
            reason,
            after: None,
        }
    }
}

//! Where mails go: an SMTP relay (`smtp://` plain or opportunistic STARTTLS,
//! `smtp://…?tls=required` STARTTLS, `smtps://` implicit TLS, credentials in the URL), or a
//! directory that receives one RFC 5322 `.eml` file per mail — the default, so that a local run
//! shows its mails without any mail server.

use std::path::{Path, PathBuf};

use lettre::message::{Mailbox, MultiPart, header};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::store::OutboxRecord;

#[derive(Clone)]
pub enum Transport {
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>),
    Directory(PathBuf),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The URL may carry credentials: never print it.
            Transport::Smtp(_) => f.write_str("Transport::Smtp"),
            Transport::Directory(dir) => write!(f, "Transport::Directory({})", dir.display()),
        }
    }
}

impl Transport {
    /// SMTP when a URL is given, else the directory.
    pub fn from_config(smtp_url: Option<&str>, mail_dir: &Path) -> Result<Self, String> {
        match smtp_url {
            Some(url) => AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map(|builder| Transport::Smtp(Box::new(builder.build())))
                .map_err(|e| format!("invalid SMTP URL: {e}")),
            None => {
                std::fs::create_dir_all(mail_dir).map_err(|e| {
                    format!(
                        "cannot create the mail directory {}: {e}",
                        mail_dir.display()
                    )
                })?;
                Ok(Transport::Directory(mail_dir.to_path_buf()))
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Transport::Smtp(_) => "SMTP".into(),
            Transport::Directory(dir) => format!("directory {}", dir.display()),
        }
    }

    /// Sends one outbox mail.
    pub async fn deliver(&self, mail: &OutboxRecord, from: &Mailbox) -> Result<(), String> {
        let message = build(mail, from)?;
        match self {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| format!("SMTP: {e}")),
            Transport::Directory(dir) => {
                // Named by the outbox id and written by rename: a retry replaces the same file.
                let file = dir.join(format!("{}.eml", mail.id));
                let partial = dir.join(format!(".{}.eml.part", mail.id));
                tokio::fs::write(&partial, message.formatted())
                    .await
                    .map_err(|e| format!("writing {}: {e}", partial.display()))?;
                tokio::fs::rename(&partial, &file)
                    .await
                    .map_err(|e| format!("renaming to {}: {e}", file.display()))
            }
        }
    }
}

fn build(mail: &OutboxRecord, from: &Mailbox) -> Result<Message, String> {
    let to: Mailbox = mail
        .recipient
        .parse()
        .map_err(|e| format!("recipient {:?}: {e}", mail.recipient))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .message_id(Some(mail.message_id.clone()))
        .header(header::MIME_VERSION_1_0)
        .multipart(MultiPart::alternative_plain_html(
            mail.text_body.clone(),
            mail.html_body.clone(),
        ))
        .map_err(|e| format!("building the message: {e}"))
}

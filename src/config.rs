//! Configuration of the server, from flags and environment (`SWITCHBOARD_*`, `DATABASE_URL`).
//! Secrets never appear in `Debug` output.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What `switchboard serve` runs with.
#[derive(Clone)]
pub struct ServeConfig {
    /// Address to listen on, e.g. `127.0.0.1:8080` (port 0 picks a free port).
    pub listen: String,
    /// Database URL: `sqlite://PATH` or `postgres://…`.
    pub database_url: String,
    /// Public base URL (scheme and host) used in `Location` and `meta.location`; derived from the
    /// request's `Host` when unset.
    pub public_url: Option<String>,
    /// JWT signing secret; when unset, one is generated on first start and kept in the database.
    pub jwt_secret: Option<String>,
    /// Most levels of nested groups.
    pub max_group_depth: usize,
    /// Requests per second each account may make (bursts of twice that); 0 turns limiting off.
    pub rate_limit: u32,
    /// Where invitation mails go.
    pub mail: MailConfig,
}

/// The mail transport: SMTP when `smtp_url` is set, else `.eml` files in `mail_dir`.
#[derive(Clone)]
pub struct MailConfig {
    /// `smtp://[user:pass@]host[:port]`, `smtp://…?tls=required` (STARTTLS), `smtps://…` (TLS).
    pub smtp_url: Option<String>,
    pub mail_dir: PathBuf,
    /// The `From` of invitation mails.
    pub from: String,
    /// How often an idle outbox worker looks for due mails.
    pub poll_interval: Duration,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            smtp_url: None,
            mail_dir: PathBuf::from("data/mail"),
            from: "Switchboard <no-reply@switchboard.invalid>".into(),
            poll_interval: Duration::from_millis(500),
        }
    }
}

impl fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailConfig")
            .field("smtp_url", &self.smtp_url.as_deref().map(redact_url))
            .field("mail_dir", &self.mail_dir)
            .field("from", &self.from)
            .field("poll_interval", &self.poll_interval)
            .finish()
    }
}

impl fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeConfig")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("public_url", &self.public_url)
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("max_group_depth", &self.max_group_depth)
            .field("rate_limit", &self.rate_limit)
            .field("mail", &self.mail)
            .finish()
    }
}

/// A database URL with any password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://sb:s3cret@db:5432/x"),
            "postgres://sb:***@db:5432/x"
        );
        assert_eq!(
            redact_url("sqlite://data/switchboard.db"),
            "sqlite://data/switchboard.db"
        );
    }
}

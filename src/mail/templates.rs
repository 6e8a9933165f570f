//! Invitation e-mails: the built-in welcome and transfer templates, an account's custom welcome
//! templates, and their rendering with minijinja (HTML parts auto-escaped, undefined variables
//! an error). A custom template is rendered against sample values when it is saved, so that a
//! mistake surfaces in the admin API, never at send time.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

/// What a template can use.
#[derive(Debug, Clone, Serialize)]
pub struct MailContext {
    /// The user's display name (or e-mail when they have none).
    pub user_name: String,
    pub given_name: Option<String>,
    pub user_email: String,
    pub account_name: String,
    pub extension: Option<String>,
    pub phone_number: Option<String>,
    /// The invitation page: accept (and for a transfer, decline) from there.
    pub accept_link: String,
    /// RFC 3339 expiry of the link.
    pub expires_at: String,
    /// For a transfer: the account the profile leaves.
    pub from_account_name: Option<String>,
}

impl MailContext {
    /// Sample values with every optional one missing.
    pub fn sparse() -> Self {
        MailContext {
            given_name: None,
            extension: None,
            phone_number: None,
            from_account_name: None,
            ..MailContext::sample()
        }
    }

    /// Sample values, to try a template when it is saved.
    pub fn sample() -> Self {
        MailContext {
            user_name: "Ana Silva".into(),
            given_name: Some("Ana".into()),
            user_email: "ana@example.com".into(),
            account_name: "Example Corp".into(),
            extension: Some("1042".into()),
            phone_number: Some("+33142868200".into()),
            accept_link: "https://switchboard.example.com/invitations/TOKEN".into(),
            expires_at: "2030-01-31T00:00:00Z".into(),
            from_account_name: Some("Previous Corp".into()),
        }
    }
}

// The built-in templates are files beside this module (`templates/*.j2`), embedded at build time.

/// Subject, plain-text and HTML parts of a template.
#[derive(Debug, Clone)]
pub struct MailTemplate {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub const WELCOME_SUBJECT: &str = include_str!("templates/welcome.subject.j2");
pub const WELCOME_TEXT: &str = include_str!("templates/welcome.txt.j2");
pub const WELCOME_HTML: &str = include_str!("templates/welcome.html.j2");

pub const TRANSFER_SUBJECT: &str = include_str!("templates/transfer.subject.j2");
pub const TRANSFER_TEXT: &str = include_str!("templates/transfer.txt.j2");
pub const TRANSFER_HTML: &str = include_str!("templates/transfer.html.j2");

pub fn welcome() -> MailTemplate {
    MailTemplate {
        subject: WELCOME_SUBJECT.into(),
        text: WELCOME_TEXT.into(),
        html: WELCOME_HTML.into(),
    }
}

pub fn transfer() -> MailTemplate {
    MailTemplate {
        subject: TRANSFER_SUBJECT.into(),
        text: TRANSFER_TEXT.into(),
        html: TRANSFER_HTML.into(),
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env
}

/// Renders the three parts; the error names the part and the template's own message.
pub fn render(template: &MailTemplate, ctx: &MailContext) -> Result<RenderedMail, String> {
    let env = environment();
    // The link is ours (base URL and a base64url token): marked safe so that HTML escaping
    // leaves it readable in `href`s.
    let values = minijinja::context! {
        user_name => ctx.user_name,
        given_name => ctx.given_name,
        user_email => ctx.user_email,
        account_name => ctx.account_name,
        extension => ctx.extension,
        phone_number => ctx.phone_number,
        accept_link => minijinja::Value::from_safe_string(ctx.accept_link.clone()),
        expires_at => ctx.expires_at,
        from_account_name => ctx.from_account_name,
    };
    let part = |name: &str, source: &str| {
        env.render_named_str(name, source, &values)
            .map_err(|e| format!("{name}: {e}"))
    };
    // A value with a line break (a name, say) must not break the header: one line, always.
    let subject = part("subject.txt", &template.subject)?
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(RenderedMail {
        subject,
        text: part("text.txt", &template.text)?,
        html: part("body.html", &template.html)?,
    })
}

/// Checks a template before it is saved: it must compile and render with sample values.
pub fn validate(template: &MailTemplate) -> Result<(), String> {
    for (name, source, limit) in [
        ("subject", &template.subject, 512),
        ("text", &template.text, 65_536),
        ("html", &template.html, 262_144),
    ] {
        if source.trim().is_empty() || source.len() > limit {
            return Err(format!("{name}: must be 1 to {limit} bytes"));
        }
    }
    if template.subject.contains(['\r', '\n']) {
        return Err("subject: must be a single line".into());
    }
    // With every value, and with every optional value missing (a user without a number…).
    render(template, &MailContext::sample())?;
    render(template, &MailContext::sparse()).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_render_and_escape_html() {
        let mut ctx = MailContext::sample();
        ctx.account_name = "<Acme & Co>".into();
        let mail = render(&welcome(), &ctx).unwrap();
        assert_eq!(mail.subject, "Welcome to <Acme & Co>");
        assert!(mail.text.contains("Your extension: 1042"));
        assert!(mail.html.contains("&lt;Acme &amp; Co&gt;"));
        assert!(mail.html.contains(&ctx.accept_link));
        assert!(
            render(&transfer(), &ctx)
                .unwrap()
                .text
                .contains("Previous Corp")
        );
    }

    #[test]
    fn mistakes_are_caught_when_a_template_is_saved() {
        let broken = MailTemplate {
            subject: "Hi {{ user_name }".into(),
            ..welcome()
        };
        assert!(validate(&broken).unwrap_err().starts_with("subject"));
        let unknown = MailTemplate {
            text: "{{ no_such_variable }}".into(),
            ..welcome()
        };
        assert!(validate(&unknown).unwrap_err().starts_with("text"));
        let needs_a_number = MailTemplate {
            text: "{{ phone_number|length }}".into(),
            ..welcome()
        };
        assert!(
            validate(&needs_a_number).is_err(),
            "fails for a user without a number"
        );
        let mut ctx = MailContext::sample();
        ctx.given_name = Some("E\nx".into());
        let two_lines = MailTemplate {
            subject: "Welcome {{ given_name }}".into(),
            ..welcome()
        };
        assert_eq!(render(&two_lines, &ctx).unwrap().subject, "Welcome E x");
        assert!(validate(&welcome()).is_ok());
    }
}

//! Welcome and transfer invitations, delivered to a real SMTP server process on loopback
//! (`aiosmtpd`, installed from PyPI into the target directory on first use).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::provisioning::{TokenRole, accounts};

use crate::helpers::{
    Backend, Reply, TestApp, fresh_database, patch_body, spawn, spawn_with_smtp, start_app,
    user_body,
};

const EXT: &str = "urn:switchboard:scim:schemas:extension:uc:1.0:User";

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if std::env::var("SWITCHBOARD_TEST_POSTGRES_URL").is_ok() {
                        super::$name(crate::helpers::Backend::Postgres).await;
                    }
                }
            )*
        }
    };
}

on_both!(
    a_new_user_gets_one_welcome_mail_with_a_working_link,
    an_e_mail_known_elsewhere_gets_a_transfer_and_accept_moves_the_profile,
    declining_a_transfer_suspends_and_frees_the_seat,
    a_resend_replaces_the_link_and_counts,
    suppressed_welcome_mails_are_not_sent,
    custom_templates_are_checked_when_saved_and_used,
    a_crash_between_commit_and_send_delays_the_mail_but_never_loses_it,
    two_servers_on_one_database_send_each_mail_once,
    an_expired_link_is_gone_and_changes_nothing,
    housekeeping_expires_links_and_audits_it,
);

// ---------------------------------------------------------------------------------------------
// A real SMTP server
// ---------------------------------------------------------------------------------------------

static PYTHON: Mutex<Option<PathBuf>> = Mutex::new(None);

/// A Python with `aiosmtpd`, in a venv under the target directory (installed once).
fn python_with_aiosmtpd() -> PathBuf {
    let mut guard = PYTHON.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(python) = guard.as_ref() {
        return python.clone();
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("smtpd-venv");
    let python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready(&python) {
        let created = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 -m venv");
        assert!(created.success(), "creating the aiosmtpd venv failed");
        let installed = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "aiosmtpd==1.4.6",
            ])
            .status()
            .expect("pip install aiosmtpd");
        assert!(installed.success(), "pip install aiosmtpd failed");
    }
    *guard = Some(python.clone());
    python
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub struct Smtpd {
    child: Child,
    pub port: u16,
    maildir: PathBuf,
}

impl Smtpd {
    /// An SMTP server on a free port.
    pub fn start() -> Smtpd {
        Smtpd::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Smtpd {
        let python = python_with_aiosmtpd();
        let maildir =
            std::env::temp_dir().join(format!("switchboard-smtpd-{}", uuid::Uuid::new_v4()));
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Smtpd {
            child,
            port,
            maildir,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The raw messages received so far.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) {
                for entry in entries.flatten() {
                    if let Ok(text) = std::fs::read_to_string(entry.path()) {
                        out.push(text);
                    }
                }
            }
        }
        out
    }

    /// Waits until `n` messages arrived (and a little longer, to catch duplicates).
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                tokio::time::sleep(Duration::from_millis(700)).await;
                return self.messages();
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} mails, got {}",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message's header value.
fn header<'m>(message: &'m str, name: &str) -> Option<&'m str> {
    message.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (key, value) = l.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// The invitation token in a message's link.
fn token_of(message: &str) -> String {
    let decoded = message
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let start = decoded.find("/invitations/").expect("a link in the mail") + "/invitations/".len();
    decoded[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

fn to(message: &str) -> String {
    header(message, "To").unwrap_or_default().to_string()
}

async fn json_get(app: &TestApp, path: &str) -> Reply {
    app.send(
        Method::GET,
        path,
        None,
        None,
        &[("accept", "application/json")],
    )
    .await
}

async fn act(app: &TestApp, token: &str, action: &str) -> Reply {
    app.send(
        Method::POST,
        &format!("/invitations/{token}/{action}"),
        None,
        None,
        &[("accept", "application/json")],
    )
    .await
}

fn ext(user: &Value) -> &Value {
    &user[EXT]
}

async fn smtp_app(backend: Backend, smtpd: &Smtpd) -> Option<TestApp> {
    spawn_with_smtp(backend, smtpd.url()).await
}

async fn seats_used(app: &TestApp) -> i64 {
    app.get("/admin/v1/products").await.body["products"][0]["seatsUsed"]
        .as_i64()
        .unwrap()
}

async fn events_of(app: &TestApp, user: &str) -> Vec<String> {
    let audit = app
        .get(&format!(
            "/admin/v1/audit?resourceType=User&resourceId={user}"
        ))
        .await;
    audit.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

async fn a_new_user_gets_one_welcome_mail_with_a_working_link(backend: Backend) {
    let smtpd = Smtpd::start();
    let Some(app) = smtp_app(backend, &smtpd).await else {
        return;
    };
    let created = app.post("/Users", &user_body("ana@example.com")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(ext(&created.body)["accountStatus"], "inviteSent");
    assert_eq!(ext(&created.body)["invitationSentCount"], 1);
    assert!(ext(&created.body)["invitationLastSentAt"].is_string());

    let mails = smtpd.wait_for(1).await;
    assert_eq!(mails.len(), 1, "exactly one mail");
    let mail = &mails[0];
    assert!(to(mail).contains("ana@example.com"), "{mail}");
    assert!(header(mail, "Message-ID").is_some_and(|m| m.contains("@switchboard>")));
    assert!(header(mail, "Subject").is_some_and(|s| s.contains("Welcome to default")));
    assert!(
        mail.contains(&format!("{}/invitations/", app.base)),
        "link on the public URL"
    );
    let token = token_of(mail);
    assert!(token.len() >= 40, "a long random token: {token}");

    // Looking at the link changes nothing (mail scanners prefetch links).
    let page = app
        .send(
            Method::GET,
            &format!("/invitations/{token}"),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let view = json_get(&app, &format!("/invitations/{token}")).await;
    assert_eq!(view.body["kind"], "welcome");
    assert_eq!(view.body["status"], "pending");
    assert_eq!(view.body["userName"], "ana@example.com");
    assert_eq!(
        app.get(&format!("/Users/{id}")).await.body[EXT]["accountStatus"],
        "inviteSent"
    );

    let accepted = act(&app, &token, "accept").await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    assert_eq!(accepted.body["accountStatus"], "active");
    let user = app.get(&format!("/Users/{id}")).await;
    assert_eq!(ext(&user.body)["accountStatus"], "active");

    // One time only; forged tokens are not found; nothing changes.
    act(&app, &token, "accept").await.assert_error(410, None);
    json_get(&app, &format!("/invitations/{token}"))
        .await
        .assert_error(410, None);
    let forged = "A".repeat(43);
    act(&app, &forged, "accept").await.assert_error(404, None);
    let html = app
        .send(
            Method::GET,
            &format!("/invitations/{forged}"),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(html.status, StatusCode::NOT_FOUND);
    assert!(
        html.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let after = app.get(&format!("/Users/{id}")).await;
    assert_eq!(after.body["meta"]["version"], user.body["meta"]["version"]);

    let events = events_of(&app, &id).await;
    assert!(
        events.contains(&"invitation.sent".to_string()),
        "{events:?}"
    );
    assert!(
        events.contains(&"invitation.accepted".to_string()),
        "{events:?}"
    );
    assert_eq!(smtpd.messages().len(), 1, "still one mail");

    let outbox = app.get("/admin/v1/outbox").await;
    assert_eq!(outbox.body["mails"][0]["status"], "sent", "{}", outbox.body);
    assert_eq!(outbox.body["mails"][0]["attempts"], 1);
}

async fn an_e_mail_known_elsewhere_gets_a_transfer_and_accept_moves_the_profile(backend: Backend) {
    let smtpd = Smtpd::start();
    let Some(app) = smtp_app(backend, &smtpd).await else {
        return;
    };
    accounts::create_account(&app.store, "previous")
        .await
        .unwrap();
    let previous = app.token_for("previous", TokenRole::SuperAdmin).await;
    let old = app
        .send(
            Method::POST,
            "/Users",
            Some(&previous),
            Some(&user_body("ana@example.com")),
            &[],
        )
        .await;
    assert_eq!(old.status, StatusCode::CREATED, "{}", old.body);
    let old_id = old.body["id"].as_str().unwrap().to_string();
    for (kind, title) in [
        ("pastSession", "Kick-off"),
        ("recording", "Kick-off recording"),
    ] {
        let record = app
            .send(
                Method::POST,
                &format!("/admin/v1/users/{old_id}/records"),
                Some(&previous),
                Some(&json!({"kind": kind, "title": title, "occurredAt": "2026-01-05T10:00:00Z"})),
                &[],
            )
            .await;
        assert_eq!(record.status, StatusCode::CREATED, "{}", record.body);
    }
    smtpd.wait_for(1).await; // the old account's welcome mail

    let created = app.post("/Users", &user_body("Ana@Example.com")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(ext(&created.body)["accountStatus"], "transferPending");
    let mails = smtpd.wait_for(2).await;
    assert_eq!(mails.len(), 2);
    let transfer = mails
        .iter()
        .find(|m| header(m, "Subject").is_some_and(|s| s.contains("move your profile")))
        .expect("a transfer mail");
    let token = token_of(transfer);
    let view = json_get(&app, &format!("/invitations/{token}")).await;
    assert_eq!(view.body["kind"], "transfer");
    assert_eq!(view.body["fromAccountName"], "previous");

    let accepted = act(&app, &token, "accept").await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    assert_eq!(accepted.body["recordsMoved"], 2);
    assert_eq!(
        app.get(&format!("/Users/{id}")).await.body[EXT]["accountStatus"],
        "active"
    );
    let records = app.get(&format!("/admin/v1/users/{id}/records")).await;
    let titles: Vec<&str> = records.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Kick-off", "Kick-off recording"]);

    // The profile left the old account.
    let gone = app
        .send(
            Method::GET,
            &format!("/Users/{old_id}"),
            Some(&previous),
            None,
            &[],
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let old_audit = app
        .send(
            Method::GET,
            &format!("/admin/v1/audit?resourceType=User&resourceId={old_id}"),
            Some(&previous),
            None,
            &[],
        )
        .await;
    assert_eq!(
        old_audit.body["events"][0]["action"],
        "user.transferred-out"
    );
    act(&app, &token, "decline").await.assert_error(410, None);
}

async fn declining_a_transfer_suspends_and_frees_the_seat(backend: Backend) {
    let smtpd = Smtpd::start();
    let Some(app) = smtp_app(backend, &smtpd).await else {
        return;
    };
    let product = app
        .send(
            Method::PUT,
            "/admin/v1/products/phone",
            Some(&app.token),
            Some(&json!({"seats": 1})),
            &[],
        )
        .await;
    assert_eq!(product.status, StatusCode::OK, "{}", product.body);
    accounts::create_account(&app.store, "previous")
        .await
        .unwrap();
    let previous = app.token_for("previous", TokenRole::SuperAdmin).await;
    let old = app
        .send(
            Method::POST,
            "/Users",
            Some(&previous),
            Some(&user_body("bo@example.com")),
            &[],
        )
        .await;
    let old_id = old.body["id"].as_str().unwrap().to_string();
    smtpd.wait_for(1).await;

    let mut body = user_body("bo@example.com");
    body["entitlements"] = json!([{"value": "phone", "type": "License"}]);
    let created = app.post("/Users", &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        seats_used(&app).await,
        1,
        "a pending transfer holds its seat"
    );
    let mails = smtpd.wait_for(2).await;
    let transfer = mails
        .iter()
        .find(|m| header(m, "Subject").is_some_and(|s| s.contains("move your profile")))
        .expect("a transfer mail");
    let token = token_of(transfer);

    let declined = act(&app, &token, "decline").await;
    assert_eq!(declined.status, StatusCode::OK, "{}", declined.body);
    let user = app.get(&format!("/Users/{id}")).await;
    assert_eq!(ext(&user.body)["accountStatus"], "transferDeclined");
    assert_eq!(
        user.body["active"], true,
        "SCIM active stays as the IdP set it"
    );
    assert_eq!(seats_used(&app).await, 0, "the seat is reclaimed");
    // An IdP re-sending the user does not take the seat back.
    let resent = app
        .patch(
            &format!("/Users/{id}"),
            &patch_body(json!([{"op": "replace", "path": "title", "value": "Rep"}])),
        )
        .await;
    assert_eq!(resent.status, StatusCode::OK, "{}", resent.body);
    assert_eq!(seats_used(&app).await, 0);
    // The profile stays where it was.
    let old = app
        .send(
            Method::GET,
            &format!("/Users/{old_id}"),
            Some(&previous),
            None,
            &[],
        )
        .await;
    assert_eq!(old.status, StatusCode::OK);
    act(&app, &token, "accept").await.assert_error(410, None);
    assert!(
        events_of(&app, &id)
            .await
            .contains(&"invitation.declined".to_string())
    );
}

async fn a_resend_replaces_the_link_and_counts(backend: Backend) {
    let smtpd = Smtpd::start();
    let Some(app) = smtp_app(backend, &smtpd).await else {
        return;
    };
    let created = app.post("/Users", &user_body("cy@example.com")).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let first = token_of(&smtpd.wait_for(1).await[0]);

    let resent = app
        .send(
            Method::POST,
            &format!("/admin/v1/users/{id}/invitations"),
            Some(&app.token),
            None,
            &[],
        )
        .await;
    assert_eq!(resent.status, StatusCode::CREATED, "{}", resent.body);
    assert_eq!(resent.body["invitationSentCount"], 2);
    let mails = smtpd.wait_for(2).await;
    assert_eq!(mails.len(), 2);
    let second = mails
        .iter()
        .map(|m| token_of(m))
        .find(|t| *t != first)
        .expect("a new link");
    let ids: std::collections::HashSet<_> = mails.iter().map(|m| header(m, "Message-ID")).collect();
    assert_eq!(ids.len(), 2, "each mail its own Message-ID");

    act(&app, &first, "accept").await.assert_error(410, None);
    let user = app.get(&format!("/Users/{id}")).await;
    assert_eq!(ext(&user.body)["invitationSentCount"], 2);
    assert_eq!(ext(&user.body)["accountStatus"], "inviteSent");
    assert_eq!(act(&app, &second, "accept").await.status, StatusCode::OK);
    let again = app
        .send(
            Method::POST,
            &format!("/admin/v1/users/{id}/invitations"),
            Some(&app.token),
            None,
            &[],
        )
        .await;
    again.assert_error(409, None);
    let invitations = app.get(&format!("/admin/v1/users/{id}/invitations")).await;
    let statuses: Vec<&str> = invitations.body["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["accepted", "superseded"]);
}

async fn suppressed_welcome_mails_are_not_sent(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let mut body = user_body("di@example.com");
    body[EXT] = json!({"sendWelcomeEmail": false});
    let created = app.post("/Users", &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(ext(&created.body)["accountStatus"], "active");
    assert_eq!(ext(&created.body)["invitationSentCount"], 0);

    // The default transport drops .eml files in the mail directory.
    app.post("/Users", &user_body("ed@example.com")).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let files = loop {
        let files: Vec<PathBuf> = std::fs::read_dir(&app.mail_dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        let emls: Vec<PathBuf> = files
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        if !emls.is_empty() || Instant::now() > deadline {
            break emls;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(files.len(), 1, "one mail: ed's, none for di");
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    assert!(to(&eml).contains("ed@example.com"));
}

async fn custom_templates_are_checked_when_saved_and_used(backend: Backend) {
    let smtpd = Smtpd::start();
    let Some(app) = smtp_app(backend, &smtpd).await else {
        return;
    };
    let broken = app
        .send(
            Method::PUT,
            "/admin/v1/email-templates/Sales",
            Some(&app.token),
            Some(&json!({"subject": "Hi {{ user_name }", "text": "x", "html": "<p>x</p>"})),
            &[],
        )
        .await;
    broken.assert_error(400, Some("invalidValue"));
    let unknown_variable = app
        .send(
            Method::PUT,
            "/admin/v1/email-templates/Sales",
            Some(&app.token),
            Some(&json!({"subject": "Hi", "text": "{{ password }}", "html": "<p>x</p>"})),
            &[],
        )
        .await;
    unknown_variable.assert_error(400, Some("invalidValue"));
    let saved = app
        .send(
            Method::PUT,
            "/admin/v1/email-templates/Sales",
            Some(&app.token),
            Some(&json!({
                "subject": "Sales welcomes {{ user_name }}",
                "text": "Extension {{ extension }}. Start: {{ accept_link }}",
                "html": "<p>Extension {{ extension }}. <a href=\"{{ accept_link }}\">Start</a></p>",
            })),
            &[],
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);

    let mut body = user_body("fa@example.com");
    body[EXT] = json!({"welcomeEmailTemplate": "Sales"});
    let created = app.post("/Users", &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let mail = &smtpd.wait_for(1).await[0];
    assert!(
        header(mail, "Subject").is_some_and(|s| s.starts_with("Sales welcomes")),
        "{mail}"
    );
    assert!(mail.contains("Extension 1000"), "{mail}");
    let token = token_of(mail);
    assert_eq!(
        json_get(&app, &format!("/invitations/{token}"))
            .await
            .status,
        StatusCode::OK
    );
}

async fn a_crash_between_commit_and_send_delays_the_mail_but_never_loses_it(backend: Backend) {
    let Some(database) = fresh_database(backend).await else {
        return;
    };
    // The relay is down when the user is created: the mail cannot leave before the crash.
    let port = free_port();
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let serve = |listen: u16| {
        Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--listen", &format!("127.0.0.1:{listen}")])
            .args(["--database", &database, "--smtp-url", &smtp_url])
            .args(["--jwt-secret", crate::helpers::JWT_SECRET])
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start switchboard")
    };
    let http = free_port();
    let mut first = serve(http);
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{http}");
    wait_healthy(&client, &base).await;
    let token = {
        let store = switchboard::store::Store::connect(&database).await.unwrap();
        let keys = switchboard::provisioning::tokens::Keys::from_secret(
            crate::helpers::JWT_SECRET.as_bytes(),
        );
        let token = accounts::issue_token(&store, &keys, "default", TokenRole::SuperAdmin, 1)
            .await
            .unwrap()
            .0;
        store.close().await;
        token
    };
    let created = client
        .post(format!("{base}/scim/v2/Users"))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(user_body("gi@example.com").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    // Killed without a chance to clean up.
    first.kill().unwrap();
    first.wait().unwrap();

    let smtpd = Smtpd::start_on(port);
    let mut second = serve(http);
    wait_healthy(&client, &base).await;
    let mails = smtpd.wait_for(1).await;
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(mails.len(), 1, "the mail arrives, once");
    assert!(to(&mails[0]).contains("gi@example.com"));
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(reply) = client.get(format!("{base}/healthz")).send().await
            && reply.status().is_success()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn two_servers_on_one_database_send_each_mail_once(backend: Backend) {
    let Some(database) = fresh_database(backend).await else {
        return;
    };
    let smtpd = Smtpd::start();
    let one = start_app(database.clone(), 0, Some(smtpd.url()), true)
        .await
        .unwrap();
    let two = start_app(database, 0, Some(smtpd.url()), false)
        .await
        .unwrap();
    let users = 30;
    let mut creates = Vec::new();
    for i in 0..users {
        let app = if i % 2 == 0 { one.clone() } else { two.clone() };
        creates.push(tokio::spawn(async move {
            app.post("/Users", &user_body(&format!("user{i}@example.com")))
                .await
                .status
        }));
    }
    for create in creates {
        assert_eq!(create.await.unwrap(), StatusCode::CREATED);
    }
    let mails = smtpd.wait_for(users).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mails = if mails.len() < smtpd.messages().len() {
        smtpd.messages()
    } else {
        mails
    };
    assert_eq!(mails.len(), users, "each mail exactly once");
    let recipients: std::collections::HashSet<String> = mails.iter().map(|m| to(m)).collect();
    assert_eq!(recipients.len(), users);
}

async fn an_expired_link_is_gone_and_changes_nothing(backend: Backend) {
    let smtpd = Smtpd::start();
    let Some(app) = smtp_app(backend, &smtpd).await else {
        return;
    };
    let created = app.post("/Users", &user_body("hu@example.com")).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let token = token_of(&smtpd.wait_for(1).await[0]);
    // Seven days later.
    match &app.store {
        switchboard::store::Store::Sqlite(pools) => {
            let pool = pools.writer();
            sqlx::query("UPDATE invitations SET expires_at = 1")
                .execute(pool)
                .await
                .unwrap();
        }
        switchboard::store::Store::Postgres(pool) => {
            sqlx::query("UPDATE invitations SET expires_at = 1")
                .execute(pool)
                .await
                .unwrap();
        }
    }
    let before = app.get(&format!("/Users/{id}")).await;
    let reply = act(&app, &token, "accept").await;
    reply.assert_error(410, None);
    assert!(reply.body["detail"].as_str().unwrap().contains("expired"));
    json_get(&app, &format!("/invitations/{token}"))
        .await
        .assert_error(410, None);
    let after = app.get(&format!("/Users/{id}")).await;
    assert_eq!(
        after.body["meta"]["version"],
        before.body["meta"]["version"]
    );
    assert_eq!(ext(&after.body)["accountStatus"], "inviteSent");
    // A resend gives a fresh link that works.
    let resent = app
        .send(
            Method::POST,
            &format!("/admin/v1/users/{id}/invitations"),
            Some(&app.token),
            None,
            &[],
        )
        .await;
    assert_eq!(resent.status, StatusCode::CREATED, "{}", resent.body);
    let fresh = smtpd
        .wait_for(2)
        .await
        .iter()
        .map(|m| token_of(m))
        .find(|t| *t != token)
        .unwrap();
    assert_eq!(act(&app, &fresh, "accept").await.status, StatusCode::OK);
}

async fn housekeeping_expires_links_and_audits_it(backend: Backend) {
    let Some(database) = fresh_database(backend).await else {
        return;
    };
    let app = start_app(database.clone(), 0, None, true).await.unwrap();
    let created = app.post("/Users", &user_body("ix@example.com")).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    match &app.store {
        switchboard::store::Store::Sqlite(pools) => {
            let pool = pools.writer();
            sqlx::query("UPDATE invitations SET expires_at = 1")
                .execute(pool)
                .await
                .unwrap();
        }
        switchboard::store::Store::Postgres(pool) => {
            sqlx::query("UPDATE invitations SET expires_at = 1")
                .execute(pool)
                .await
                .unwrap();
        }
    }
    // The housekeeping runs hourly, and once when a server starts.
    let _second = start_app(database, 0, None, false).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = events_of(&app, &id).await;
        if events.contains(&"invitation.expired".to_string()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no invitation.expired event: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let invitations = app.get(&format!("/admin/v1/users/{id}/invitations")).await;
    assert_eq!(invitations.body["invitations"][0]["status"], "expired");
}

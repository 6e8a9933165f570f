//! The operator CLI contract that scripts depend on.

use std::process::Command;

use reqwest::StatusCode;

fn switchboard(database: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .args(["--database", database])
        .env_remove("DATABASE_URL")
        .output()
        .expect("run switchboard")
}

#[test]
fn migrate_account_and_token_commands() {
    let dir = std::env::temp_dir().join(format!("switchboard-cli-{}", uuid::Uuid::new_v4()));
    let database = format!("sqlite://{}", dir.join("cli.db").display());

    assert!(switchboard(&database, &["migrate"]).status.success());
    let created = switchboard(&database, &["account", "create", "acme"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let again = switchboard(&database, &["account", "create", "acme"]);
    assert!(!again.status.success(), "a duplicate account is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let token = switchboard(
        &database,
        &[
            "token",
            "create",
            "--account",
            "acme",
            "--role",
            "super-admin",
            "--ttl",
            "7",
        ],
    );
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let stdout = String::from_utf8(token.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "token create prints the token alone: {stdout:?}"
    );
    assert_eq!(lines[0].split('.').count(), 3, "a JWT");

    let list = switchboard(&database, &["token", "list", "--account", "acme"]);
    let listing = String::from_utf8(list.stdout).unwrap();
    assert!(
        listing.contains("super-admin") && listing.contains("active"),
        "{listing}"
    );
    let token_id = listing
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();

    assert!(
        switchboard(&database, &["token", "revoke", &token_id])
            .status
            .success()
    );
    let listing =
        String::from_utf8(switchboard(&database, &["token", "list", "--account", "acme"]).stdout)
            .unwrap();
    assert!(listing.contains("revoked"), "{listing}");
    assert!(
        !switchboard(&database, &["token", "revoke", &token_id])
            .status
            .success(),
        "revoking twice fails"
    );
    assert!(
        !switchboard(
            &database,
            &["token", "create", "--account", "nobody", "--role", "admin"]
        )
        .status
        .success()
    );
    assert!(
        !switchboard(
            &database,
            &["token", "create", "--account", "acme", "--role", "owner"]
        )
        .status
        .success()
    );
}

#[tokio::test]
async fn serve_bootstraps_an_empty_database_and_serves_the_printed_token() {
    let dir = std::env::temp_dir().join(format!("switchboard-serve-{}", uuid::Uuid::new_v4()));
    let database = format!("sqlite://{}", dir.join("serve.db").display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            &database,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut token = None;
    let mut base = None;
    while let Ok(Ok(Some(line))) =
        tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line()).await
    {
        if line.split('.').count() == 3 && !line.contains(' ') {
            token = Some(line.clone());
        }
        if let Some(url) = line.strip_prefix("SCIM base URL: ") {
            base = Some(url.to_string());
            break;
        }
    }
    let (token, base) = (
        token.expect("a token is printed"),
        base.expect("the base URL is printed"),
    );
    assert_eq!(base, format!("http://127.0.0.1:{port}/scim/v2"));
    let client = reqwest::Client::new();
    let reply = client
        .get(format!("{base}/Users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    child.kill().await.unwrap();
}

#[test]
fn licence_and_number_commands_fill_the_catalogue() {
    let dir = std::env::temp_dir().join(format!("switchboard-cli-{}", uuid::Uuid::new_v4()));
    let database = format!("sqlite://{}", dir.join("cli.db").display());
    assert!(
        switchboard(&database, &["account", "create", "acme"])
            .status
            .success()
    );

    let set = |seats: &str| {
        switchboard(
            &database,
            &[
                "licence",
                "set",
                "--account",
                "acme",
                "--product",
                "phone",
                "--seats",
                seats,
                "--feature",
                "sms",
                "--feature",
                "recording",
            ],
        )
    };
    let created = set("50");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(set("60").status.success(), "set is create-or-update");
    let listing = switchboard(&database, &["licence", "list", "--account", "acme"]);
    let listing = String::from_utf8(listing.stdout).unwrap();
    let row = listing
        .lines()
        .find(|l| l.starts_with("phone"))
        .unwrap_or_else(|| panic!("phone listed: {listing}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells, ["phone", "60", "0", "sms,recording"]);

    let negative = switchboard(
        &database,
        &[
            "licence",
            "set",
            "--account",
            "acme",
            "--product",
            "phone",
            "--seats",
            "-1",
        ],
    );
    assert!(!negative.status.success(), "negative seats are refused");

    let added = switchboard(
        &database,
        &[
            "numbers",
            "add",
            "--account",
            "acme",
            "+33 1 42 86 82 00",
            "+14155550100",
        ],
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    assert!(String::from_utf8_lossy(&added.stderr).contains("2 numbers added"));
    let bad = switchboard(
        &database,
        &[
            "numbers",
            "add",
            "--account",
            "acme",
            "+14155550101",
            "not-a-number",
        ],
    );
    assert!(
        !bad.status.success(),
        "a malformed number refuses the batch"
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not-a-number"));
    let numbers = switchboard(&database, &["numbers", "list", "--account", "acme"]);
    let numbers = String::from_utf8(numbers.stdout).unwrap();
    assert!(numbers.contains("+33142868200"), "{numbers}");
    assert!(numbers.contains("+14155550100"), "{numbers}");
    assert!(
        !numbers.contains("+14155550101"),
        "nothing of a refused batch: {numbers}"
    );

    let unknown = switchboard(
        &database,
        &["numbers", "add", "--account", "nope", "+14155550102"],
    );
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no account named"));
}

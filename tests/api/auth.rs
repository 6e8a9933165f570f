//! Bearer tokens: every refusal is a 401 with a SCIM body and `WWW-Authenticate`, and a token sees
//! only its own account.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::json;
use switchboard::provisioning::{TokenRole, accounts};

use crate::helpers::{JWT_SECRET, TestApp, patch_body, user_body};

crate::on_both_backends!(
    refused_tokens_get_401,
    accounts_are_isolated,
    revoked_tokens_stop_working
);

#[track_caller]
fn assert_401(reply: &crate::helpers::Reply) {
    reply.assert_error(401, None);
    assert!(
        reply
            .header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer")),
        "WWW-Authenticate: Bearer"
    );
}

fn jwt(claims: serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn refused_tokens_get_401(app: TestApp) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims_of = |token: &str| -> serde_json::Value {
        use base64::Engine;
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    let real = claims_of(&app.token);

    assert_401(&app.send(Method::GET, "/Users", None, None, &[]).await);
    assert_401(
        &app.send(
            Method::GET,
            "/Users",
            None,
            None,
            &[("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")],
        )
        .await,
    );
    assert_401(
        &app.send(Method::GET, "/Users", Some("not-a-jwt"), None, &[])
            .await,
    );
    // Signed with another key.
    let mut claims = real.clone();
    claims["exp"] = json!(now + 3600);
    assert_401(
        &app.send(
            Method::GET,
            "/Users",
            Some(&jwt(claims.clone(), "some-other-secret")),
            None,
            &[],
        )
        .await,
    );
    // alg: none.
    use base64::Engine;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(claims.clone())
    );
    assert_401(
        &app.send(Method::GET, "/Users", Some(&unsigned), None, &[])
            .await,
    );
    // Expired, though correctly signed.
    let mut expired = real.clone();
    expired["exp"] = json!(now - 10);
    assert_401(
        &app.send(
            Method::GET,
            "/Users",
            Some(&jwt(expired, JWT_SECRET)),
            None,
            &[],
        )
        .await,
    );
    // Correctly signed, but never issued (no record).
    let mut forged = real.clone();
    forged["sub"] = json!(uuid::Uuid::now_v7().to_string());
    assert_401(
        &app.send(
            Method::GET,
            "/Users",
            Some(&jwt(forged, JWT_SECRET)),
            None,
            &[],
        )
        .await,
    );
    // Correctly signed, record exists, but the claims were changed (other account).
    let mut moved = real.clone();
    moved["acc"] = json!(uuid::Uuid::now_v7().to_string());
    assert_401(
        &app.send(
            Method::GET,
            "/Users",
            Some(&jwt(moved, JWT_SECRET)),
            None,
            &[],
        )
        .await,
    );

    // Health needs no token.
    assert_eq!(
        app.send(Method::GET, "/healthz", None, None, &[])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.send(Method::GET, "/readyz", None, None, &[])
            .await
            .status,
        StatusCode::OK
    );
}

async fn accounts_are_isolated(app: TestApp) {
    let ana = app.create_user("ana@example.com").await;
    let group = app.create_group("Sales", &[&ana]).await;
    let other = app.account("other", TokenRole::SuperAdmin).await;

    app.send(
        Method::GET,
        &format!("/Users/{ana}"),
        Some(&other),
        None,
        &[],
    )
    .await
    .assert_error(404, None);
    app.send(
        Method::GET,
        &format!("/Groups/{group}"),
        Some(&other),
        None,
        &[],
    )
    .await
    .assert_error(404, None);
    assert_eq!(
        app.send(Method::GET, "/Users", Some(&other), None, &[])
            .await
            .body["totalResults"],
        0
    );
    assert_eq!(
        app.send(
            Method::GET,
            "/Users?filter=userName%20eq%20%22ana%40example.com%22",
            Some(&other),
            None,
            &[]
        )
        .await
        .body["totalResults"],
        0
    );
    app.send(
        Method::DELETE,
        &format!("/Users/{ana}"),
        Some(&other),
        None,
        &[],
    )
    .await
    .assert_error(404, None);
    app.send(
        Method::PUT,
        &format!("/Users/{ana}"),
        Some(&other),
        Some(&user_body("ana@example.com")),
        &[],
    )
    .await
    .assert_error(404, None);

    // The same userName may exist in another account.
    let created = app
        .send(
            Method::POST,
            "/Users",
            Some(&other),
            Some(&user_body("ana@example.com")),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);

    // Another account's user cannot be made a member.
    let theirs = app.create_group("Theirs", &[]).await;
    let mine = app.send(Method::POST, "/Groups", Some(&other), Some(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Mine"})), &[]).await;
    let mine = mine.body["id"].as_str().unwrap().to_string();
    app.send(
        Method::PATCH,
        &format!("/Groups/{mine}"),
        Some(&other),
        Some(&patch_body(
            json!([{"op": "add", "path": "members", "value": [{"value": ana}]}]),
        )),
        &[],
    )
    .await
    .assert_error(400, Some("invalidValue"));
    assert!(
        app.get(&format!("/Users/{ana}")).await.body["groups"]
            .as_array()
            .unwrap()
            .len()
            == 1
    );
    assert!(
        app.get(&format!("/Groups/{theirs}"))
            .await
            .body
            .get("members")
            .is_none()
    );
}

async fn revoked_tokens_stop_working(app: TestApp) {
    let token = app.token_for("default", TokenRole::Admin).await;
    assert_eq!(
        app.send(Method::GET, "/Users", Some(&token), None, &[])
            .await
            .status,
        StatusCode::OK
    );
    let tokens = accounts::list_tokens(&app.store, "default").await.unwrap();
    let newest = tokens.iter().max_by_key(|t| t.created_at).unwrap();
    accounts::revoke_token(&app.store, newest.id).await.unwrap();
    // A server trusts a token record it read for at most `RECORD_TTL`: the revocation (written
    // by the CLI, perhaps on another machine) takes effect within that bound.
    let revoked_at = std::time::Instant::now();
    let refused = loop {
        let reply = app
            .send(Method::GET, "/Users", Some(&token), None, &[])
            .await;
        if reply.status == StatusCode::UNAUTHORIZED {
            break reply;
        }
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert!(
            revoked_at.elapsed() < switchboard::provisioning::tokens::RECORD_TTL * 2,
            "a revoked token still works {:?} after the revocation",
            revoked_at.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_401(&refused);
    assert_eq!(
        app.get("/Users").await.status,
        StatusCode::OK,
        "other tokens still work"
    );
}

async fn each_account_has_its_own_request_budget(app: TestApp) {
    // Limit 5/s, bursts of 10: a quick run of 30 requests must hit it.
    let mut limited = None;
    for _ in 0..30 {
        let reply = app.get("/Users").await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(reply);
            break;
        }
    }
    let reply = limited.expect("the burst is limited");
    reply.assert_error(429, None);
    let retry_after: u64 = reply
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after));
    // Another account's budget is untouched.
    let other = app.account("other", TokenRole::SuperAdmin).await;
    assert_eq!(
        app.send(Method::GET, "/Users", Some(&other), None, &[])
            .await
            .status,
        StatusCode::OK
    );
    // Health checks are never limited.
    assert_eq!(
        app.send(Method::GET, "/healthz", None, None, &[])
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_account_has_its_own_request_budget_sqlite() {
    let app = crate::helpers::spawn_with(crate::helpers::Backend::Sqlite, 5)
        .await
        .expect("sqlite app");
    each_account_has_its_own_request_budget(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_account_has_its_own_request_budget_postgres() {
    if let Some(app) = crate::helpers::spawn_with(crate::helpers::Backend::Postgres, 5).await {
        each_account_has_its_own_request_budget(app).await;
    }
}

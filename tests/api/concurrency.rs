//! Concurrent writers lose nothing: membership adds to one group, and PATCHes of one user.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, patch_body};

crate::on_both_backends!(
    concurrent_member_adds_lose_nothing,
    concurrent_user_patches_never_interleave
);

async fn concurrent_member_adds_lose_nothing(app: TestApp) {
    let mut users = Vec::new();
    for i in 0..100 {
        users.push(app.create_user(&format!("u{i}@example.com")).await);
    }
    let group = app.create_group("Everyone", &[]).await;
    let app = Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for user in users {
        let app = app.clone();
        let group = group.clone();
        tasks.spawn(async move {
            let reply = app
                .patch(
                    &format!("/Groups/{group}"),
                    &patch_body(
                        json!([{"op": "add", "path": "members", "value": [{"value": user}]}]),
                    ),
                )
                .await;
            assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
        });
    }
    tasks.join_all().await;
    let reply = app.get(&format!("/Groups/{group}")).await;
    assert_eq!(reply.body["members"].as_array().unwrap().len(), 100);
    assert_eq!(
        reply.body["meta"]["version"], "W/\"101\"",
        "one version per change"
    );
}

async fn concurrent_user_patches_never_interleave(app: TestApp) {
    let id = app.create_user("ana@example.com").await;
    let app = Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let app = app.clone();
        let id = id.clone();
        tasks.spawn(async move {
            // Each writer adds its own phone number and sets title and nickName to its own
            // value together: a torn write would mix them.
            let reply = app
                .patch(&format!("/Users/{id}"), &patch_body(json!([
                    {"op": "add", "path": "phoneNumbers", "value": [{"value": format!("+1555000{i:04}"), "type": "work"}]},
                    {"op": "replace", "path": "title", "value": format!("t{i}")},
                    {"op": "replace", "path": "nickName", "value": format!("t{i}")},
                ])))
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        });
    }
    tasks.join_all().await;
    let user = app.get(&format!("/Users/{id}")).await.body;
    assert_eq!(
        user["phoneNumbers"].as_array().unwrap().len(),
        40,
        "no lost update"
    );
    assert_eq!(user["title"], user["nickName"], "no interleaved half-state");
    assert_eq!(user["meta"]["version"], "W/\"41\"");
}

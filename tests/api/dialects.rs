//! The PATCH and PUT forms real identity providers send, each test named after its sender.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ENTERPRISE, GROUP_SCHEMA, TestApp, USER_SCHEMA, member_ids, patch_body};

crate::on_both_backends!(
    entra_capitalised_ops_and_string_booleans,
    entra_pathless_replace_with_dotted_keys,
    entra_member_removal_with_value_list,
    entra_manager_as_plain_string,
    entra_add_work_email_that_does_not_exist_yet,
    okta_deactivate_with_pathless_replace,
    okta_put_user_with_the_full_profile,
    okta_put_group_with_the_full_member_list,
    okta_member_batches_and_the_per_request_limit,
    okta_group_rename_echoes_the_id,
);

async fn entra_capitalised_ops_and_string_booleans(app: TestApp) {
    let id = app.create_user("ana@example.com").await;
    let reply = app
        .patch(&format!("/Users/{id}"), &patch_body(json!([{"op": "Replace", "path": "active", "value": "False"}, {"op": "Add", "path": "title", "value": "Agent"}])))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["active"], false);
    assert_eq!(reply.body["title"], "Agent");
    let reply = app
        .patch(
            &format!("/Users/{id}"),
            &patch_body(json!([{"op": "Replace", "path": "active", "value": "True"}])),
        )
        .await;
    assert_eq!(reply.body["active"], true);
}

async fn entra_pathless_replace_with_dotted_keys(app: TestApp) {
    let id = app.create_user("ana@example.com").await;
    let reply = app
        .patch(
            &format!("/Users/{id}"),
            &patch_body(json!([{"op": "Replace", "value": {
                "name.givenName": "Anabela",
                "name.familyName": "Sousa",
                "displayName": "Anabela Sousa",
                format!("{ENTERPRISE}:department"): "Finance",
            }}])),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.body["name"],
        json!({"givenName": "Anabela", "familyName": "Sousa"})
    );
    assert_eq!(reply.body["displayName"], "Anabela Sousa");
    assert_eq!(reply.body[ENTERPRISE]["department"], "Finance");
}

async fn entra_member_removal_with_value_list(app: TestApp) {
    let a = app.create_user("a@example.com").await;
    let b = app.create_user("b@example.com").await;
    let group = app.create_group("Sales", &[&a, &b]).await;
    let reply = app
        .patch(
            &format!("/Groups/{group}"),
            &patch_body(json!([{"op": "Remove", "path": "members", "value": [{"value": a}]}])),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(
        member_ids(&app.get(&format!("/Groups/{group}")).await.body),
        vec![b.clone()]
    );
    // Removing someone who is not a member is not an error.
    let reply = app
        .patch(
            &format!("/Groups/{group}"),
            &patch_body(json!([{"op": "Remove", "path": "members", "value": [{"value": a}]}])),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
}

async fn entra_manager_as_plain_string(app: TestApp) {
    let boss = app.create_user("boss@example.com").await;
    let id = app.create_user("ana@example.com").await;
    let reply = app
        .patch(
            &format!("/Users/{id}"),
            &patch_body(
                json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": boss}]),
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body[ENTERPRISE]["manager"]["value"], boss.as_str());
}

async fn entra_add_work_email_that_does_not_exist_yet(app: TestApp) {
    let reply = app
        .post(
            "/Users",
            &json!({"schemas": [USER_SCHEMA], "userName": "ana@example.com"}),
        )
        .await;
    let id = reply.body["id"].as_str().unwrap().to_string();
    let reply = app
        .patch(&format!("/Users/{id}"), &patch_body(json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "ana@example.com"}])))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.body["emails"],
        json!([{"type": "work", "value": "ana@example.com"}])
    );
    assert_eq!(
        app.list(
            "/Users",
            "emails[type eq \"work\"].value eq \"ana@example.com\""
        )
        .await
        .body["totalResults"],
        1
    );
}

async fn okta_deactivate_with_pathless_replace(app: TestApp) {
    let id = app.create_user("ana@example.com").await;
    let reply = app
        .patch(
            &format!("/Users/{id}"),
            &patch_body(json!([{"op": "replace", "value": {"active": false}}])),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["active"], false);
    // A deactivated user stays readable (the IdP checks).
    assert_eq!(app.get(&format!("/Users/{id}")).await.body["active"], false);
    assert_eq!(
        app.list("/Users", "active eq false").await.body["totalResults"],
        1
    );
}

async fn okta_put_user_with_the_full_profile(app: TestApp) {
    let id = app.create_user("ana@example.com").await;
    let mut profile = app.get(&format!("/Users/{id}")).await.body;
    profile["name"]["familyName"] = json!("Costa");
    profile["active"] = json!(false);
    let reply = app.put(&format!("/Users/{id}"), &profile).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["name"]["familyName"], "Costa");
    assert_eq!(reply.body["active"], false);
}

async fn okta_put_group_with_the_full_member_list(app: TestApp) {
    let mut users = Vec::new();
    for i in 0..5 {
        users.push(app.create_user(&format!("u{i}@example.com")).await);
    }
    let group = app
        .create_group("Support", &[&users[0], &users[1], &users[2]])
        .await;
    let full: Vec<Value> = [&users[1], &users[2], &users[3], &users[4]]
        .iter()
        .map(|u| json!({"value": u, "display": "ignored"}))
        .collect();
    let reply = app.put(&format!("/Groups/{group}"), &json!({"schemas": [GROUP_SCHEMA], "id": group, "displayName": "Support", "members": full})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let mut expected = users[1..].to_vec();
    expected.sort();
    assert_eq!(member_ids(&reply.body), expected);
    // Unchanged members were not rewritten: the audit records exactly one added, one removed.
    let audit = app
        .get(&format!(
            "/admin/v1/audit?resourceType=Group&resourceId={group}"
        ))
        .await;
    let change = &audit.body["events"][0]["after"]["membershipChange"];
    assert_eq!(change["removed"], json!([users[0]]));
    assert_eq!(change["added"].as_array().unwrap().len(), 2);
}

async fn okta_member_batches_and_the_per_request_limit(app: TestApp) {
    let group = app.create_group("Everyone", &[]).await;
    let mut users = Vec::new();
    for i in 0..30 {
        users.push(app.create_user(&format!("u{i}@example.com")).await);
    }
    for batch in users.chunks(10) {
        let values: Vec<Value> = batch.iter().map(|u| json!({"value": u})).collect();
        let reply = app
            .patch(
                &format!("/Groups/{group}"),
                &patch_body(json!([{"op": "add", "path": "members", "value": values}])),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
    }
    assert_eq!(
        member_ids(&app.get(&format!("/Groups/{group}")).await.body).len(),
        30
    );
    let too_many: Vec<Value> = (0..1001).map(|_| json!({"value": users[0]})).collect();
    let reply = app
        .patch(
            &format!("/Groups/{group}"),
            &patch_body(json!([{"op": "add", "path": "members", "value": too_many}])),
        )
        .await;
    reply.assert_error(413, None);
}

async fn okta_group_rename_echoes_the_id(app: TestApp) {
    let group = app.create_group("Sales", &[]).await;
    let reply = app
        .patch(
            &format!("/Groups/{group}"),
            &patch_body(
                json!([{"op": "replace", "value": {"id": group, "displayName": "Sales EMEA"}}]),
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(
        app.get(&format!("/Groups/{group}")).await.body["displayName"],
        "Sales EMEA"
    );
}

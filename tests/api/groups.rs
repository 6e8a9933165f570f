//! `/Groups`: membership as IdPs sync it, uniqueness, PUT as a difference, projection.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{GROUP_SCHEMA, TestApp, member_ids, patch_body};

crate::on_both_backends!(
    group_lifecycle_and_user_groups,
    membership_patches_in_every_dialect,
    put_applies_the_member_list,
    display_name_is_unique_and_members_must_exist,
    excluded_members_and_filters,
);

async fn group_lifecycle_and_user_groups(app: TestApp) {
    let ana = app.create_user("ana@example.com").await;
    let created = app.post("/Groups", &json!({"schemas": [GROUP_SCHEMA], "displayName": "Sales", "externalId": "g-1", "members": [{"value": ana, "type": "User"}]})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        created.header("location").unwrap(),
        format!("{}/scim/v2/Groups/{id}", app.base)
    );
    assert_eq!(created.body["members"][0]["value"], ana.as_str());
    assert_eq!(
        created.body["members"][0]["$ref"],
        format!("{}/scim/v2/Users/{ana}", app.base)
    );

    let user = app.get(&format!("/Users/{ana}")).await;
    assert_eq!(user.body["groups"][0]["value"], id.as_str());
    assert_eq!(user.body["groups"][0]["display"], "Sales");
    assert_eq!(user.body["groups"][0]["type"], "direct");

    // The user's groups are read-only: sending them changes nothing.
    let mut body = user.body.clone();
    body["groups"] = json!([]);
    assert_eq!(
        app.put(&format!("/Users/{ana}"), &body).await.body["groups"][0]["value"],
        id.as_str()
    );

    // Deleting the user removes the membership; deleting the group removes the group.
    assert_eq!(
        app.delete(&format!("/Users/{ana}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(
        app.get(&format!("/Groups/{id}"))
            .await
            .body
            .get("members")
            .is_none()
    );
    assert_eq!(
        app.delete(&format!("/Groups/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    app.get(&format!("/Groups/{id}"))
        .await
        .assert_error(404, None);
}

async fn membership_patches_in_every_dialect(app: TestApp) {
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(app.create_user(&format!("u{i}@example.com")).await);
    }
    let id = app.create_group("Engineering", &[]).await;
    let path = format!("/Groups/{id}");

    // Okta: add a batch of members; 204 without a body.
    let reply = app
        .patch(&path, &patch_body(json!([{"op": "add", "path": "members", "value": [{"value": users[0]}, {"value": users[1]}, {"value": users[2]}]}])))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(
        reply.header("etag"),
        Some("W/\"2\""),
        "a 204 still tells the new version"
    );
    // Adding a present member again is harmless.
    app.patch(
        &path,
        &patch_body(json!([{"op": "add", "path": "members", "value": [{"value": users[0]}]}])),
    )
    .await;
    let mut expected = vec![users[0].clone(), users[1].clone(), users[2].clone()];
    expected.sort();
    assert_eq!(member_ids(&app.get(&path).await.body), expected);

    // Okta / RFC: remove with a value filter.
    app.patch(
        &path,
        &patch_body(
            json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", users[0])}]),
        ),
    )
    .await;
    // Entra: capitalised op and a value list, no filter.
    app.patch(
        &path,
        &patch_body(json!([{"op": "Remove", "path": "members", "value": [{"value": users[1]}]}])),
    )
    .await;
    assert_eq!(
        member_ids(&app.get(&path).await.body),
        vec![users[2].clone()]
    );

    // Asked for attributes, PATCH answers 200 with them.
    let reply = app
        .patch(&format!("{path}?attributes=displayName"), &patch_body(json!([{"op": "Replace", "path": "displayName", "value": "Eng"}, {"op": "add", "path": "members", "value": [{"value": users[3]}]}])))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["displayName"], "Eng");
    assert!(reply.body.get("members").is_none());

    // Replace the whole list, then remove all.
    app.patch(
        &path,
        &patch_body(json!([{"op": "replace", "path": "members", "value": [{"value": users[0]}]}])),
    )
    .await;
    assert_eq!(
        member_ids(&app.get(&path).await.body),
        vec![users[0].clone()]
    );
    app.patch(
        &path,
        &patch_body(json!([{"op": "remove", "path": "members"}])),
    )
    .await;
    assert!(member_ids(&app.get(&path).await.body).is_empty());

    // A bad member anywhere in the request: nothing of it is applied.
    let version = app.get(&path).await.body["meta"]["version"].clone();
    app.patch(&path, &patch_body(json!([
        {"op": "add", "path": "members", "value": [{"value": users[1]}]},
        {"op": "add", "path": "members", "value": [{"value": "4c1f0c1e-0000-4000-8000-000000000000"}]},
    ])))
    .await
    .assert_error(400, Some("invalidValue"));
    let after = app.get(&path).await;
    assert!(member_ids(&after.body).is_empty());
    assert_eq!(after.body["meta"]["version"], version);
}

async fn put_applies_the_member_list(app: TestApp) {
    let a = app.create_user("a@example.com").await;
    let b = app.create_user("b@example.com").await;
    let c = app.create_user("c@example.com").await;
    let id = app.create_group("Support", &[&a, &b]).await;
    let reply = app.put(&format!("/Groups/{id}"), &json!({"schemas": [GROUP_SCHEMA], "displayName": "Support", "members": [{"value": b}, {"value": c}]})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let mut expected = vec![b.clone(), c.clone()];
    expected.sort();
    assert_eq!(member_ids(&reply.body), expected);
    assert_eq!(reply.body["meta"]["version"], "W/\"2\"");
    let a_user = app.get(&format!("/Users/{a}")).await;
    assert!(a_user.body.get("groups").is_none());
}

async fn display_name_is_unique_and_members_must_exist(app: TestApp) {
    app.create_group("Sales", &[]).await;
    app.post(
        "/Groups",
        &json!({"schemas": [GROUP_SCHEMA], "displayName": "SALES"}),
    )
    .await
    .assert_error(409, Some("uniqueness"));
    app.post("/Groups", &json!({"schemas": [GROUP_SCHEMA]}))
        .await
        .assert_error(400, Some("invalidValue"));
    app.post("/Groups", &json!({"schemas": [GROUP_SCHEMA], "displayName": "X", "members": [{"value": "not-an-id"}]}))
        .await
        .assert_error(400, Some("invalidValue"));
    let other = app.create_group("Other", &[]).await;
    app.patch(
        &format!("/Groups/{other}"),
        &patch_body(json!([{"op": "replace", "path": "displayName", "value": "sales"}])),
    )
    .await
    .assert_error(409, Some("uniqueness"));
    assert_eq!(
        app.get("/Groups").await.body["totalResults"],
        2,
        "nothing was created"
    );
}

async fn excluded_members_and_filters(app: TestApp) {
    let a = app.create_user("a@example.com").await;
    let id = app.create_group("Sales", &[&a]).await;
    let reply = app
        .get(&format!("/Groups/{id}?excludedAttributes=members"))
        .await;
    assert!(reply.body.get("members").is_none());
    assert_eq!(reply.body["displayName"], "Sales");
    let list = app.get("/Groups?excludedAttributes=members").await;
    assert!(list.body["Resources"][0].get("members").is_none());
    assert_eq!(
        app.list("/Groups", "displayName eq \"sales\"").await.body["totalResults"],
        1
    );
    assert_eq!(
        app.list("/Groups", &format!("members[value eq \"{a}\"]"))
            .await
            .body["totalResults"],
        1
    );
    assert_eq!(
        app.list("/Groups", &format!("members.value eq \"{a}\""))
            .await
            .body["totalResults"],
        1
    );
    assert_eq!(
        app.list("/Groups", &format!("id eq \"{id}\"")).await.body["totalResults"],
        1
    );
    assert_eq!(
        app.list("/Groups", "externalId eq \"nope\"").await.body["totalResults"],
        0
    );
}

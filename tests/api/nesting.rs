//! Nested groups: members of type Group, cycles refused, a depth limit, and indirect
//! membership on users.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{GROUP_SCHEMA, TestApp, patch_body};

crate::on_both_backends!(
    nested_groups_show_indirect_membership,
    cycles_and_depth_are_refused
);

fn add_member(id: &str, kind: &str) -> Value {
    patch_body(json!([{"op": "add", "path": "members", "value": [{"value": id, "type": kind}]}]))
}

async fn nested_groups_show_indirect_membership(app: TestApp) {
    let ana = app.create_user("ana@example.com").await;
    let team = app.create_group("Team", &[&ana]).await;
    let department = app.create_group("Department", &[]).await;
    let company = app.post("/Groups", &json!({"schemas": [GROUP_SCHEMA], "displayName": "Company", "members": [{"value": department, "type": "Group"}]})).await;
    assert_eq!(company.status, StatusCode::CREATED, "{}", company.body);
    assert_eq!(company.body["members"][0]["type"], "Group");
    assert_eq!(
        company.body["members"][0]["$ref"],
        format!("{}/scim/v2/Groups/{department}", app.base)
    );
    let company = company.body["id"].as_str().unwrap().to_string();
    // The type may be left out: the id says what it is.
    let reply = app
        .patch(
            &format!("/Groups/{department}"),
            &patch_body(json!([{"op": "add", "path": "members", "value": [{"value": team}]}])),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);

    let user = app.get(&format!("/Users/{ana}")).await;
    let mut groups: Vec<(String, String)> = user.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["display"].as_str().unwrap().to_string(),
                g["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        vec![
            ("Company".into(), "indirect".into()),
            ("Department".into(), "indirect".into()),
            ("Team".into(), "direct".into())
        ]
    );
    // `members` lists direct members only.
    assert_eq!(
        app.get(&format!("/Groups/{company}")).await.body["members"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.list("/Groups", "members[type eq \"Group\"]").await.body["totalResults"],
        2
    );

    // Deleting a middle group cuts the chain.
    assert_eq!(
        app.delete(&format!("/Groups/{department}")).await.status,
        StatusCode::NO_CONTENT
    );
    let user = app.get(&format!("/Users/{ana}")).await;
    assert_eq!(user.body["groups"].as_array().unwrap().len(), 1);
    assert!(
        app.get(&format!("/Groups/{company}"))
            .await
            .body
            .get("members")
            .is_none()
    );
}

async fn cycles_and_depth_are_refused(app: TestApp) {
    let mut chain = Vec::new();
    for name in ["L1", "L2", "L3", "L4", "L5", "L6"] {
        chain.push(app.create_group(name, &[]).await);
    }
    // L1 ⊃ L2 ⊃ L3 ⊃ L4 ⊃ L5: five levels, the limit.
    for pair in chain[..5].windows(2) {
        let reply = app
            .patch(
                &format!("/Groups/{}", pair[0]),
                &add_member(&pair[1], "Group"),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    }
    let too_deep = app
        .patch(
            &format!("/Groups/{}", chain[4]),
            &add_member(&chain[5], "Group"),
        )
        .await;
    too_deep.assert_error(400, Some("invalidValue"));
    assert!(
        too_deep.body["detail"]
            .as_str()
            .unwrap()
            .contains("at most 5")
    );
    // Putting L6 on top of L1 also makes six levels.
    app.patch(
        &format!("/Groups/{}", chain[5]),
        &add_member(&chain[0], "Group"),
    )
    .await
    .assert_error(400, Some("invalidValue"));

    // Cycles: directly, and through the chain.
    app.patch(
        &format!("/Groups/{}", chain[0]),
        &add_member(&chain[0], "Group"),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    let cycle = app
        .patch(
            &format!("/Groups/{}", chain[3]),
            &add_member(&chain[1], "Group"),
        )
        .await;
    cycle.assert_error(400, Some("invalidValue"));
    assert!(cycle.body["detail"].as_str().unwrap().contains("cycle"));
    // Declared types must match what the id is.
    app.patch(
        &format!("/Groups/{}", chain[5]),
        &add_member(&chain[0], "User"),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    // Nothing of the refused requests stuck.
    assert!(
        app.get(&format!("/Groups/{}", chain[5]))
            .await
            .body
            .get("members")
            .is_none()
    );
    assert_eq!(
        app.get(&format!("/Groups/{}", chain[3])).await.body["members"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

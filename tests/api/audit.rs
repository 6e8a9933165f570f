//! The audit trail: every successful write, in its own transaction, queryable by super-admins.

use reqwest::{Method, StatusCode};
use serde_json::json;
use switchboard::provisioning::TokenRole;

use crate::helpers::{TestApp, patch_body, user_body};

crate::on_both_backends!(
    writes_are_audited_with_before_and_after,
    audit_is_scoped_and_restricted
);

async fn writes_are_audited_with_before_and_after(app: TestApp) {
    let token = app.token.clone();
    let created = app
        .send(
            Method::POST,
            "/Users",
            Some(&token),
            Some(&user_body("ana@example.com")),
            &[
                ("user-agent", "Okta SCIM Client 1.0"),
                ("x-request-id", "req-123"),
            ],
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_string();
    app.patch(
        &format!("/Users/{id}"),
        &patch_body(json!([{"op": "replace", "path": "title", "value": "Lead"}])),
    )
    .await;
    // A refused write leaves no event.
    app.patch(
        &format!("/Users/{id}"),
        &patch_body(json!([{"op": "replace", "path": "userName", "value": "x@example.com"}])),
    )
    .await;
    app.delete(&format!("/Users/{id}")).await;

    let audit = app
        .get(&format!(
            "/admin/v1/audit?resourceType=User&resourceId={id}"
        ))
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
    let events = audit.body["events"].as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "user.delete",
            "user.patch",
            "user.create",
            "invitation.sent"
        ],
        "newest first; the welcome invitation is an event of the user"
    );
    let create = &events[2];
    assert_eq!(create["userAgent"], "Okta SCIM Client 1.0");
    assert_eq!(create["requestId"], "req-123");
    assert!(create["tokenId"].as_str().is_some());
    assert!(create["before"].is_null());
    assert_eq!(create["after"]["userName"], "ana@example.com");
    let patch = &events[1];
    assert!(patch["before"].get("title").is_none());
    assert_eq!(patch["after"]["title"], "Lead");
    assert!(
        patch["requestId"].as_str().is_some_and(|r| !r.is_empty()),
        "a request id is generated when the client sends none"
    );
    assert!(events[0]["after"].is_null());

    let token_id = create["tokenId"].as_str().unwrap();
    let by_token = app
        .get(&format!(
            "/admin/v1/audit?tokenId={token_id}&resourceType=User"
        ))
        .await;
    assert_eq!(by_token.body["events"].as_array().unwrap().len(), 4);
    let future = app.get("/admin/v1/audit?since=2999-01-01T00:00:00Z").await;
    assert!(future.body["events"].as_array().unwrap().is_empty());
    let past = app.get("/admin/v1/audit?until=2000-01-01T00:00:00Z").await;
    assert!(past.body["events"].as_array().unwrap().is_empty());
    let paged = app.get("/admin/v1/audit?resourceType=User&count=2").await;
    assert_eq!(paged.body["events"].as_array().unwrap().len(), 2);
    let cursor = paged.body["nextCursor"].as_str().unwrap();
    let rest = app
        .get(&format!(
            "/admin/v1/audit?resourceType=User&count=2&cursor={cursor}"
        ))
        .await;
    assert_eq!(rest.body["events"][0]["action"], "user.create");
    app.get("/admin/v1/audit?since=yesterday")
        .await
        .assert_error(400, Some("invalidValue"));
}

async fn audit_is_scoped_and_restricted(app: TestApp) {
    app.create_user("ana@example.com").await;
    let admin = app.token_for("default", TokenRole::Admin).await;
    app.send(Method::GET, "/admin/v1/audit", Some(&admin), None, &[])
        .await
        .assert_error(403, None);
    let other = app.account("other", TokenRole::SuperAdmin).await;
    let theirs = app
        .send(
            Method::GET,
            "/admin/v1/audit?resourceType=User",
            Some(&other),
            None,
            &[],
        )
        .await;
    assert!(
        theirs.body["events"].as_array().unwrap().is_empty(),
        "another account's events are invisible"
    );
    app.send(Method::GET, "/admin/v1/audit", None, None, &[])
        .await
        .assert_error(401, None);
}

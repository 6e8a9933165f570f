//! `/Users`: the lifecycle an IdP drives, filters, paging, projection, PUT and PATCH rules.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{ENTERPRISE, TestApp, USER_SCHEMA, patch_body, user_body};

crate::on_both_backends!(
    create_read_list_delete,
    user_name_is_unique_case_insensitively,
    filters_find_users_the_way_idps_look_them_up,
    paging_and_projection,
    put_replaces_and_honours_mutability,
    patch_simple_paths_and_idp_dialects,
    etags_and_preconditions,
    sorting,
    root_search_spans_users_and_groups,
);

async fn create_read_list_delete(app: TestApp) {
    let created = app.post("/Users", &user_body("ana@example.com")).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_str().unwrap().to_string();
    let location = created.header("location").unwrap().to_string();
    assert_eq!(location, format!("{}/scim/v2/Users/{id}", app.base));
    assert_eq!(created.body["meta"]["location"], location);
    assert_eq!(created.body["meta"]["resourceType"], "User");
    assert_eq!(created.body["meta"]["version"], "W/\"1\"");
    assert_eq!(created.header("etag"), Some("W/\"1\""));
    assert_eq!(
        created.body["active"], true,
        "a user created without 'active' is active"
    );
    assert!(
        created
            .header("content-type")
            .unwrap()
            .starts_with("application/scim+json")
    );

    let read = app.get(&format!("/Users/{id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["userName"], "ana@example.com");
    assert_eq!(read.body["name"]["familyName"], "Silva");

    let list = app.get("/Users").await;
    assert_eq!(list.body["totalResults"], 1);
    assert_eq!(
        list.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    );
    assert_eq!(list.body["Resources"][0]["id"], id.as_str());

    // application/json is accepted too.
    let reply = app
        .client
        .post(app.url("/Users"))
        .bearer_auth(&app.token)
        .header("content-type", "application/json; charset=utf-8")
        .body(user_body("bo@example.com").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::CREATED);

    assert_eq!(
        app.delete(&format!("/Users/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    app.get(&format!("/Users/{id}"))
        .await
        .assert_error(404, None);
    app.delete(&format!("/Users/{id}"))
        .await
        .assert_error(404, None);
    app.get("/Users/not-a-uuid").await.assert_error(404, None);
}

async fn user_name_is_unique_case_insensitively(app: TestApp) {
    app.create_user("ana@example.com").await;
    let reply = app.post("/Users", &user_body("ANA@Example.COM")).await;
    reply.assert_error(409, Some("uniqueness"));
    assert_eq!(
        app.get("/Users").await.body["totalResults"],
        1,
        "nothing was created"
    );
}

async fn filters_find_users_the_way_idps_look_them_up(app: TestApp) {
    let mut body = user_body("ana@example.com");
    body["externalId"] = json!("00u1abcd");
    body["displayName"] = json!("Ana Silva");
    body[ENTERPRISE] = json!({"department": "Sales"});
    let ana = app.post("/Users", &body).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.create_user("bob@example.com").await;

    for (filter, expected) in [
        (format!("id eq \"{ana}\""), 1),
        ("userName eq \"ANA@EXAMPLE.COM\"".to_string(), 1),
        ("userName eq \"nobody@example.com\"".to_string(), 0),
        ("externalId eq \"00u1abcd\"".to_string(), 1),
        ("externalId eq \"00U1ABCD\"".to_string(), 0),
        ("displayName eq \"ana silva\"".to_string(), 1),
        ("emails.value eq \"Ana@Example.com\"".to_string(), 1),
        (
            "emails[type eq \"work\" and value eq \"bob@example.com\"]".to_string(),
            1,
        ),
        (
            "emails[type eq \"work\"].value eq \"bob@example.com\"".to_string(),
            1,
        ),
        (
            "userName sw \"a\" or userName ew \"b@example.com\"".to_string(),
            2,
        ),
        (
            "userName co \"example\" and not (userName eq \"bob@example.com\")".to_string(),
            1,
        ),
        (format!("{ENTERPRISE}:department eq \"sales\""), 1),
        (
            "name.familyName eq \"Silva\" and active eq true".to_string(),
            2,
        ),
        (
            "meta.lastModified gt \"2001-01-01T00:00:00Z\"".to_string(),
            2,
        ),
        ("title pr".to_string(), 0),
        ("externalId pr".to_string(), 1),
        ("userName co \"%\"".to_string(), 0),
    ] {
        let reply = app.list("/Users", &filter).await;
        assert_eq!(reply.status, StatusCode::OK, "{filter}: {}", reply.body);
        assert_eq!(
            reply.body["totalResults"], expected,
            "{filter}: {}",
            reply.body
        );
    }
    for bad in [
        "userName eq",
        "userName xx \"a\"",
        "(userName eq \"a\"",
        "nope eq \"x\"",
        "active gt true",
        "meta.created gt \"soon\"",
    ] {
        app.list("/Users", bad)
            .await
            .assert_error(400, Some("invalidFilter"));
    }
}

async fn paging_and_projection(app: TestApp) {
    for i in 0..5 {
        app.create_user(&format!("user{i}@example.com")).await;
    }
    let page = app.get("/Users?startIndex=2&count=2").await;
    assert_eq!(page.body["totalResults"], 5);
    assert_eq!(page.body["startIndex"], 2);
    assert_eq!(page.body["itemsPerPage"], 2);
    assert_eq!(page.body["Resources"][0]["userName"], "user1@example.com");
    let only_total = app.get("/Users?count=0").await;
    assert_eq!(only_total.body["totalResults"], 5);
    assert_eq!(only_total.body["Resources"].as_array().unwrap().len(), 0);
    let clamped = app.get("/Users?startIndex=-4&count=100000").await;
    assert_eq!(clamped.body["startIndex"], 1);
    assert_eq!(clamped.body["itemsPerPage"], 5);
    app.get("/Users?count=many")
        .await
        .assert_error(400, Some("invalidValue"));

    let projected = app.get("/Users?attributes=emails&count=1").await;
    let user = &projected.body["Resources"][0];
    assert!(
        user.get("emails").is_some() && user.get("id").is_some() && user.get("userName").is_some()
    );
    assert!(user.get("name").is_none() && user.get("meta").is_none());
    let excluded = app
        .get("/Users?excludedAttributes=emails,name.givenName&count=1")
        .await;
    let user = &excluded.body["Resources"][0];
    assert!(user.get("emails").is_none());
    assert_eq!(user["name"], json!({"familyName": "Silva"}));

    let search = app
        .post("/Users/.search", &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName eq \"user3@example.com\"", "attributes": ["userName"]}))
        .await;
    assert_eq!(search.status, StatusCode::OK, "{}", search.body);
    assert_eq!(search.body["totalResults"], 1);
    assert!(search.body["Resources"][0].get("name").is_none());
}

async fn put_replaces_and_honours_mutability(app: TestApp) {
    let id = app.create_user("ana@example.com").await;
    let path = format!("/Users/{id}");
    let replaced = app
        .put(&path, &json!({"schemas": [USER_SCHEMA], "id": "ignored", "userName": "ANA@example.com", "title": "Engineer", "groups": [{"value": "x"}], "meta": {"version": "x"}}))
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert_eq!(replaced.body["id"], id.as_str(), "readOnly id ignored");
    assert_eq!(replaced.body["title"], "Engineer");
    assert!(
        replaced.body.get("name").is_none(),
        "PUT replaces: name was not sent"
    );
    assert_eq!(
        replaced.body["userName"], "ana@example.com",
        "same userName in another case keeps the original"
    );
    assert_eq!(replaced.body["meta"]["version"], "W/\"2\"");

    let refused = app
        .put(
            &path,
            &json!({"schemas": [USER_SCHEMA], "userName": "other@example.com"}),
        )
        .await;
    refused.assert_error(400, Some("mutability"));
    let after = app.get(&path).await;
    assert_eq!(after.body["userName"], "ana@example.com");
    assert_eq!(after.body["meta"]["version"], "W/\"2\"", "nothing changed");

    app.put(
        &path,
        &json!({"schemas": [USER_SCHEMA], "userName": "ana@example.com", "active": "yes"}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    // Suspended, then a full PUT that leaves `active` out: still suspended.
    app.patch(
        &path,
        &patch_body(json!([{"op": "replace", "path": "active", "value": false}])),
    )
    .await;
    let reply = app
        .put(
            &path,
            &json!({"schemas": [USER_SCHEMA], "userName": "ana@example.com", "title": "Engineer"}),
        )
        .await;
    assert_eq!(reply.body["active"], false);
    assert_eq!(
        app.list("/Users", "active eq false").await.body["totalResults"],
        1
    );
    app.put(
        "/Users/4c1f0c1e-0000-4000-8000-000000000000",
        &user_body("x@example.com"),
    )
    .await
    .assert_error(404, None);
}

async fn patch_simple_paths_and_idp_dialects(app: TestApp) {
    let id = app.create_user("ana@example.com").await;
    let path = format!("/Users/{id}");

    // Entra: capitalised ops, string booleans, dotted keys in a path-less replace.
    let reply = app
        .patch(&path, &patch_body(json!([
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "value": {"name.givenName": "Anna", "title": "Lead"}},
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "ana@example.com"},
            {"op": "add", "path": format!("{ENTERPRISE}:department"), "value": "Support"},
        ])))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["active"], false);
    assert_eq!(reply.body["name"]["givenName"], "Anna");
    assert_eq!(
        reply.body["name"]["familyName"], "Silva",
        "replace on a complex attribute merges"
    );
    assert_eq!(reply.body["title"], "Lead");
    assert_eq!(reply.body[ENTERPRISE]["department"], "Support");
    assert!(
        reply.body["schemas"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == ENTERPRISE)
    );

    // Okta: path-less replace of active.
    let reply = app
        .patch(
            &path,
            &patch_body(json!([{"op": "replace", "value": {"active": true}}])),
        )
        .await;
    assert_eq!(reply.body["active"], true);

    let reply = app
        .patch(
            &path,
            &patch_body(json!([{"op": "remove", "path": "title"}])),
        )
        .await;
    assert!(reply.body.get("title").is_none());

    // Refusals leave the user unchanged.
    let version = app.get(&path).await.body["meta"]["version"].clone();
    app.patch(&path, &patch_body(json!([{"op": "replace", "path": "title", "value": "X"}, {"op": "replace", "path": "userName", "value": "bob@example.com"}])))
        .await
        .assert_error(400, Some("mutability"));
    app.patch(
        &path,
        &patch_body(json!([{"op": "add", "path": "bogus", "value": 1}])),
    )
    .await
    .assert_error(400, Some("invalidPath"));
    app.patch(&path, &patch_body(json!([{"op": "remove"}])))
        .await
        .assert_error(400, Some("noTarget"));
    app.patch(
        &path,
        &patch_body(json!([{"op": "replace", "path": "groups", "value": []}])),
    )
    .await
    .assert_error(400, Some("mutability"));
    app.patch(&path, &patch_body(json!([{"op": "move", "path": "title"}])))
        .await
        .assert_error(400, Some("invalidSyntax"));
    app.patch(&path, &json!({"Operations": []}))
        .await
        .assert_error(400, Some("invalidSyntax"));
    let after = app.get(&path).await;
    assert_eq!(after.body["meta"]["version"], version);
    assert!(after.body.get("title").is_none());

    // An identical re-send changes nothing, not even the version.
    let reply = app
        .patch(
            &path,
            &patch_body(json!([{"op": "replace", "path": "active", "value": true}])),
        )
        .await;
    assert_eq!(reply.body["meta"]["version"], version);
}

async fn etags_and_preconditions(app: TestApp) {
    let id = app.create_user("ana@example.com").await;
    let path = format!("/Users/{id}");
    let token = app.token.clone();
    let stale = app
        .send(
            Method::PATCH,
            &path,
            Some(&token),
            Some(&patch_body(
                json!([{"op": "add", "path": "title", "value": "A"}]),
            )),
            &[("if-match", "W/\"7\"")],
        )
        .await;
    stale.assert_error(412, None);
    let fresh = app
        .send(
            Method::PATCH,
            &path,
            Some(&token),
            Some(&patch_body(
                json!([{"op": "add", "path": "title", "value": "A"}]),
            )),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK);
    assert_eq!(fresh.header("etag"), Some("W/\"2\""));
    let cached = app
        .send(
            Method::GET,
            &path,
            Some(&token),
            None,
            &[("if-none-match", "W/\"2\"")],
        )
        .await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    assert_eq!(cached.header("etag"), Some("W/\"2\""));
    app.send(
        Method::DELETE,
        &path,
        Some(&token),
        None,
        &[("if-match", "W/\"1\"")],
    )
    .await
    .assert_error(412, None);
    assert_eq!(app.get(&path).await.status, StatusCode::OK);
}

async fn sorting(app: TestApp) {
    for name in ["carol", "alice", "bob"] {
        app.create_user(&format!("{name}@example.com")).await;
    }
    let reply = app.get("/Users?sortBy=userName&sortOrder=descending").await;
    let names: Vec<&str> = reply.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["carol@example.com", "bob@example.com", "alice@example.com"]
    );
    app.get("/Users?sortBy=userName&sortOrder=sideways")
        .await
        .assert_error(400, Some("invalidValue"));
    app.get("/Users?sortBy=nope")
        .await
        .assert_error(400, Some("invalidValue"));
}

async fn root_search_spans_users_and_groups(app: TestApp) {
    let ana = app.create_user("ana@example.com").await;
    app.create_user("bob@example.com").await;
    app.create_group("Sales", &[&ana]).await;
    let request = |body: serde_json::Value| {
        let mut body = body;
        body["schemas"] = json!(["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]);
        body
    };
    let all = app.post("/.search", &request(json!({}))).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(all.body["totalResults"], 3);
    let second_page = app
        .post("/.search", &request(json!({"startIndex": 2, "count": 2})))
        .await;
    let kinds: Vec<&str> = second_page.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["meta"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["User", "Group"], "users first, then groups");
    // An attribute only users have matches no group.
    let by_name = app
        .post(
            "/.search",
            &request(json!({"filter": "userName sw \"ana\"", "attributes": ["userName"]})),
        )
        .await;
    assert_eq!(by_name.body["totalResults"], 1);
    assert!(by_name.body["Resources"][0].get("emails").is_none());
    let by_members = app
        .post(
            "/.search",
            &request(json!({"filter": format!("members.value eq \"{ana}\"")})),
        )
        .await;
    assert_eq!(by_members.body["totalResults"], 1);
    app.post("/.search", &request(json!({"filter": "nothing eq 1"})))
        .await
        .assert_error(400, Some("invalidFilter"));
    app.post("/.search", &request(json!({"sortBy": "userName"})))
        .await
        .assert_error(400, Some("invalidValue"));
}

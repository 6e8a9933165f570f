//! Bad input of every kind gets a precise SCIM error, never a 500, and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, USER_SCHEMA, user_body};

crate::on_both_backends!(
    text_no_database_can_hold,
    malformed_bodies,
    wrong_types_and_unknown_attributes,
    transport_errors
);

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> crate::helpers::Reply {
    // A client of its own: the server may close a connection whose body it refused unread,
    // and that connection must not go back to the shared pool.
    let mut request = reqwest::Client::new()
        .request(method, app.url(path))
        .bearer_auth(&app.token)
        .body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    crate::helpers::Reply {
        status,
        headers,
        body,
    }
}

async fn malformed_bodies(app: TestApp) {
    let scim = Some("application/scim+json");
    raw(
        &app,
        Method::POST,
        "/Users",
        scim,
        b"{\"userName\": ".to_vec(),
    )
    .await
    .assert_error(400, Some("invalidSyntax"));
    raw(
        &app,
        Method::POST,
        "/Users",
        scim,
        b"\xff\xfe garbage".to_vec(),
    )
    .await
    .assert_error(400, Some("invalidSyntax"));
    raw(&app, Method::POST, "/Users", scim, Vec::new())
        .await
        .assert_error(400, Some("invalidSyntax"));
    raw(&app, Method::POST, "/Users", scim, b"[1,2,3]".to_vec())
        .await
        .assert_error(400, Some("invalidSyntax"));
    raw(
        &app,
        Method::POST,
        "/Users",
        scim,
        b"\"just a string\"".to_vec(),
    )
    .await
    .assert_error(400, Some("invalidSyntax"));
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    raw(&app, Method::POST, "/Users", scim, deep.into_bytes())
        .await
        .assert_error(400, Some("invalidSyntax"));
    app.post("/Users", &json!({"userName": "a@example.com"}))
        .await
        .assert_error(400, Some("invalidSyntax"));
    app.post(
        "/Users",
        &json!({"schemas": "nope", "userName": "a@example.com"}),
    )
    .await
    .assert_error(400, Some("invalidSyntax"));
    app.post("/Users", &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "userName": "a@example.com"})).await.assert_error(400, Some("invalidSyntax"));
    app.post("/Users", &json!({"schemas": [USER_SCHEMA]}))
        .await
        .assert_error(400, Some("invalidValue"));
    app.post(
        "/Users",
        &json!({"schemas": [USER_SCHEMA], "userName": "  "}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    app.post(
        "/Users",
        &json!({"schemas": [USER_SCHEMA], "userName": format!("{}@example.com", "a".repeat(200))}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    app.patch(
        "/Users/4c1f0c1e-0000-4000-8000-000000000000",
        &json!({"schemas": ["x"], "Operations": []}),
    )
    .await
    .assert_error(400, Some("invalidSyntax"));
    assert_eq!(
        app.get("/Users").await.body["totalResults"],
        0,
        "nothing was created"
    );
}

async fn wrong_types_and_unknown_attributes(app: TestApp) {
    for (attribute, value) in [
        ("userName", json!(42)),
        ("active", json!("maybe")),
        ("emails", json!({"value": "a@example.com"})),
        ("emails", json!([{"value": 5}])),
        ("name", json!("Ana Silva")),
        ("title", json!(["a"])),
        ("x509Certificates", json!([{"value": "not base64!"}])),
    ] {
        let mut body = user_body("ana@example.com");
        body[attribute] = value.clone();
        let reply = app.post("/Users", &body).await;
        reply.assert_error(400, Some("invalidValue"));
        assert!(
            reply.body["detail"].as_str().unwrap().contains(attribute),
            "detail names the attribute: {}",
            reply.body
        );
    }
    let mut body = user_body("ana@example.com");
    body["favouriteColour"] = json!("blue");
    app.post("/Users", &body)
        .await
        .assert_error(400, Some("invalidSyntax"));
    let mut body = user_body("ana@example.com");
    body["name"] = json!({"middleNameTypo": "x"});
    app.post("/Users", &body)
        .await
        .assert_error(400, Some("invalidSyntax"));
    let mut body = user_body("ana@example.com");
    body["emails"] = json!([{"value": "a@example.com", "primary": true}, {"value": "b@example.com", "primary": true}]);
    app.post("/Users", &body)
        .await
        .assert_error(400, Some("invalidValue"));
    assert_eq!(
        app.get("/Users").await.body["totalResults"],
        0,
        "nothing was created"
    );
}

async fn transport_errors(app: TestApp) {
    raw(
        &app,
        Method::POST,
        "/Users",
        Some("text/plain"),
        user_body("a@example.com").to_string().into_bytes(),
    )
    .await
    .assert_error(415, None);
    raw(
        &app,
        Method::POST,
        "/Users",
        Some("application/xml"),
        b"<user/>".to_vec(),
    )
    .await
    .assert_error(415, None);
    let huge = format!(
        "{{\"schemas\":[\"{USER_SCHEMA}\"],\"userName\":\"a@example.com\",\"title\":\"{}\"}}",
        "x".repeat(3 * 1024 * 1024)
    );
    raw(
        &app,
        Method::POST,
        "/Users",
        Some("application/scim+json"),
        huge.into_bytes(),
    )
    .await
    .assert_error(413, None);
    app.send(
        Method::DELETE,
        "/Users",
        Some(&app.token.clone()),
        None,
        &[],
    )
    .await
    .assert_error(405, None);
    app.send(
        Method::PUT,
        "/ServiceProviderConfig",
        Some(&app.token.clone()),
        None,
        &[],
    )
    .await
    .assert_error(405, None);
    app.get("/NoSuchThing").await.assert_error(404, None);
    app.get("/Users?filter=userName%20eq%20%22a%22%20and%20(((((")
        .await
        .assert_error(400, Some("invalidFilter"));
    let deep = format!("{}userName pr{}", "(".repeat(100), ")".repeat(100));
    app.list("/Users", &deep)
        .await
        .assert_error(400, Some("invalidFilter"));
    let reply = app.get("/Users?startIndex=1&count=abc").await;
    reply.assert_error(400, Some("invalidValue"));
    assert_eq!(app.get("/Users").await.status, StatusCode::OK);
}

async fn text_no_database_can_hold(app: TestApp) {
    // PostgreSQL cannot store NUL in text, and refuses index entries over 2,704 bytes: both are
    // refused up front, the same on either database.
    app.post(
        "/Users",
        &json!({"schemas": [USER_SCHEMA], "userName": "a\u{0}b@example.com"}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    let mut body = user_body("ana@example.com");
    body["title"] = json!("x\u{0}");
    app.post("/Users", &body)
        .await
        .assert_error(400, Some("invalidValue"));
    let mut body = user_body("ana@example.com");
    body["externalId"] = json!("x".repeat(3000));
    app.post("/Users", &body)
        .await
        .assert_error(400, Some("invalidValue"));
    let mut body = user_body("ana@example.com");
    body["emails"] = json!([{"value": format!("{}@example.com", "x".repeat(3000))}]);
    app.post("/Users", &body)
        .await
        .assert_error(400, Some("invalidValue"));
    app.list("/Users", "userName eq \"a\\u0000b\"")
        .await
        .assert_error(400, Some("invalidFilter"));
    app.list("/Users", "groups.value eq \"x\"")
        .await
        .assert_error(400, Some("invalidFilter"));
    assert_eq!(
        app.get("/Users").await.body["totalResults"],
        0,
        "nothing was created"
    );
}

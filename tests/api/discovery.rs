//! Discovery endpoints advertise what works, from the schemas the server enforces.

use reqwest::StatusCode;

use crate::helpers::{ENTERPRISE, TestApp, USER_SCHEMA};

crate::on_both_backends!(
    service_provider_config_resource_types_and_schemas,
    metrics_count_requests_by_route
);

async fn service_provider_config_resource_types_and_schemas(app: TestApp) {
    let spc = app.get("/ServiceProviderConfig").await;
    assert_eq!(spc.status, StatusCode::OK);
    assert_eq!(spc.body["patch"]["supported"], true);
    assert_eq!(spc.body["filter"]["supported"], true);
    assert_eq!(spc.body["filter"]["maxResults"], 200);
    assert_eq!(spc.body["etag"]["supported"], true);
    assert_eq!(spc.body["sort"]["supported"], true);
    assert_eq!(spc.body["bulk"]["supported"], false);
    assert_eq!(spc.body["changePassword"]["supported"], false);
    assert_eq!(
        spc.body["authenticationSchemes"][0]["type"],
        "oauthbearertoken"
    );

    let types = app.get("/ResourceTypes").await;
    assert_eq!(types.body["totalResults"], 4);
    let names: Vec<&str> = types.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for name in ["User", "Group", "Role", "Entitlement"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let user = app.get("/ResourceTypes/User").await;
    assert_eq!(user.body["id"], "User");
    assert_eq!(user.body["endpoint"], "/Users");
    assert_eq!(user.body["schemaExtensions"][0]["schema"], ENTERPRISE);
    assert_eq!(
        user.body["meta"]["location"],
        format!("{}/scim/v2/ResourceTypes/User", app.base)
    );
    app.get("/ResourceTypes/Nope").await.assert_error(404, None);

    let schemas = app.get("/Schemas").await;
    assert_eq!(schemas.body["totalResults"], 7);
    let extension = app
        .get("/Schemas/urn:switchboard:scim:schemas:extension:uc:1.0:User")
        .await;
    assert_eq!(extension.status, 200);
    let schema = app.get(&format!("/Schemas/{USER_SCHEMA}")).await;
    let user_name = schema.body["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "userName")
        .unwrap();
    assert_eq!(user_name["mutability"], "immutable");
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["caseExact"], false);
    app.get("/Schemas/urn:nope").await.assert_error(404, None);
}

async fn metrics_count_requests_by_route(app: TestApp) {
    let id = app.create_user("ana@example.com").await;
    app.get(&format!("/Users/{id}")).await;
    let reply = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let text = reply.text().await.unwrap();
    assert!(text.contains("switchboard_http_requests_total"), "{text}");
    assert!(
        text.contains(r#"route="/scim/v2/Users/{id}""#),
        "routes are templates, not paths: {text}"
    );
    assert!(!text.contains(&id), "no ids in labels");
}

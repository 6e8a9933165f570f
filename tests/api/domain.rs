//! The phone-system domain: account roles and who may grant them, licences and seats, extensions,
//! phone numbers, emergency locations, deactivation and soft delete, group-inherited licences,
//! devices, `/Roles` and `/Entitlements`, and the admin API (`/admin/v1`) that manages the
//! catalogue and inventory (MAPPING.md "Settled product decisions", 2.4, 2.5, 2.7).
//!
//! Every refusal also checks that nothing changed, with [`world`]: the users (roles, licences,
//! telephony attributes, versions) and every product's `seatsUsed`.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::provisioning::TokenRole;

use crate::helpers::{GROUP_SCHEMA, Reply, TestApp, patch_body, user_body};

const EXT: &str = "urn:switchboard:scim:schemas:extension:uc:1.0:User";
const EXT_GROUP: &str = "urn:switchboard:scim:schemas:extension:uc:1.0:Group";
const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// Numbers of the account's inventory used by the tests.
const NUMBER: &str = "+33142868200";
const OTHER_NUMBER: &str = "+33142868201";
const NO_SMS_NUMBER: &str = "+33142868299";

crate::on_both_backends!(
    // Admin API
    account_policy_is_read_by_admins_and_written_by_super_admins,
    products_need_a_super_admin_and_cannot_be_deleted_in_use,
    bundles_and_roles_need_a_super_admin,
    locations_and_templates_are_managed_by_admins,
    number_inventory_adds_validates_and_stays_per_account,
    devices_are_managed_by_the_admin_api_and_shown_read_only,
    // Roles
    an_admin_token_creates_a_member_with_phone_defaults,
    an_admin_token_cannot_grant_the_admin_role,
    an_admin_token_cannot_change_or_delete_an_admin,
    the_last_super_admin_is_protected,
    roles_endpoint_lists_built_in_and_custom_roles,
    // Licences and seats
    no_free_seat_refuses_a_direct_licence_whole,
    concurrent_creates_never_oversell_seats,
    entitlements_must_name_known_products_and_features,
    a_licence_bundle_expands_into_its_licences,
    entitlements_endpoint_shows_seat_counts,
    // Extensions
    extensions_follow_the_account_policy,
    concurrent_creates_get_distinct_extensions,
    explicit_extension_numbers_are_checked,
    // Phone numbers and emergency locations
    a_direct_number_comes_from_the_inventory,
    direct_number_refusals,
    a_released_number_is_quarantined,
    put_without_telephony_attributes_keeps_them,
    emergency_location_by_name_or_id,
    // Lifecycle
    deactivation_releases_the_seat_and_keeps_the_extension,
    reactivation_without_a_free_seat_is_refused,
    delete_is_soft_and_restorable,
    // Groups
    a_group_licence_flows_to_its_members,
    a_group_licence_waits_for_a_free_seat,
    a_parent_group_licence_reaches_indirect_members,
    group_settings_templates_apply_by_precedence,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A call to the admin API (`/admin/v1{path}`) with `token`, the body sent as `application/json`.
async fn admin_as(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Reply {
    app.admin_as(token, method, path, body).await
}

/// An admin API call with the bootstrap (super-admin) token.
async fn admin(app: &TestApp, method: Method, path: &str, body: Option<&Value>) -> Reply {
    let token = app.token.clone();
    admin_as(app, &token, method, path, body).await
}

/// A SCIM call with `token`.
async fn scim_as(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Reply {
    app.send(method, path, Some(token), body, &[]).await
}

async fn admin_token(app: &TestApp) -> String {
    app.token_for("default", TokenRole::Admin).await
}

#[track_caller]
fn assert_status(reply: &Reply, status: u16) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
}

#[track_caller]
fn assert_success(reply: &Reply) {
    assert!(
        reply.status.is_success(),
        "expected success, got {}: {}",
        reply.status,
        reply.body
    );
}

/// A SCIM error with this status whatever its `scimType` (for rules that name no scimType).
#[track_caller]
fn assert_refused(reply: &Reply, status: u16) {
    assert_status(reply, status);
    assert_eq!(
        reply.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
        "{}",
        reply.body
    );
    assert_eq!(reply.body["status"], status.to_string(), "{}", reply.body);
    assert!(
        reply.body["detail"].as_str().is_some_and(|d| d.len() > 10),
        "detail must say something: {}",
        reply.body
    );
}

/// The items of an admin list: `body[key]`, or the body itself when it is an array.
fn items(body: &Value, key: &str) -> Vec<Value> {
    body.get(key)
        .and_then(Value::as_array)
        .or_else(|| body.as_array())
        .unwrap_or_else(|| panic!("expected a list under '{key}': {body}"))
        .clone()
}

/// Creates (or replaces) a product with features `sms` and `recording`.
async fn make_product(app: &TestApp, code: &str, seats: i64) -> Value {
    let reply = admin(
        app,
        Method::PUT,
        &format!("/products/{code}"),
        Some(&json!({"display": code, "seats": seats, "features": ["sms", "recording"]})),
    )
    .await;
    assert_status(&reply, 200);
    reply.body
}

async fn seats_used(app: &TestApp, code: &str) -> i64 {
    let reply = admin(app, Method::GET, "/products", None).await;
    assert_status(&reply, 200);
    items(&reply.body, "products")
        .iter()
        .find(|p| p["code"] == code)
        .unwrap_or_else(|| panic!("no product {code}: {}", reply.body))["seatsUsed"]
        .as_i64()
        .expect("seatsUsed")
}

/// Adds numbers to the inventory.
async fn add_numbers(app: &TestApp, numbers: &[&str], sms_capable: bool) {
    let reply = admin(
        app,
        Method::POST,
        "/numbers",
        Some(&json!({"numbers": numbers, "smsCapable": sms_capable})),
    )
    .await;
    assert_status(&reply, 200);
}

/// Creates an emergency location and returns its id.
async fn make_location(app: &TestApp, name: &str) -> String {
    let reply = admin(
        app,
        Method::POST,
        "/emergency-locations",
        Some(&json!({"name": name, "address": {"streetAddress": "1 rue de la Paix", "locality": "Paris", "postalCode": "75002", "country": "FR"}})),
    )
    .await;
    assert_status(&reply, 201);
    reply.body["id"].as_str().expect("id").to_string()
}

/// A user body with these extension attributes.
fn with_ext(mut body: Value, ext: Value) -> Value {
    body["schemas"].as_array_mut().unwrap().push(json!(EXT));
    body[EXT] = ext;
    body
}

/// A user body asking for the phone licence.
fn licensed(user_name: &str) -> Value {
    let mut body = user_body(user_name);
    body["entitlements"] = json!([{"value": "phone", "type": "License"}]);
    body
}

fn with_roles(mut body: Value, roles: &[&str]) -> Value {
    body["roles"] = roles.iter().map(|r| json!({"value": r})).collect();
    body
}

#[track_caller]
fn created_id(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().expect("id").to_string()
}

/// Creates a user from `body` with the super-admin token and returns its id.
async fn create(app: &TestApp, body: &Value) -> String {
    created_id(&app.post("/Users", body).await)
}

fn ext(user: &Value) -> &Value {
    &user[EXT]
}

fn role_values(user: &Value) -> Vec<String> {
    let mut values: Vec<String> = user["roles"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| r["value"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    values.sort();
    values
}

/// The `licenseStatus` entry of `product`, if any.
fn licence(user: &Value, product: &str) -> Option<Value> {
    ext(user)["licenseStatus"]
        .as_array()?
        .iter()
        .find(|l| l["value"] == product)
        .cloned()
}

async fn count_named(app: &TestApp, user_name: &str) -> i64 {
    let reply = app
        .list("/Users", &format!("userName eq \"{user_name}\""))
        .await;
    assert_status(&reply, 200);
    reply.body["totalResults"].as_i64().expect("totalResults")
}

/// Everything a refused write must leave alone: each user's identity, roles, entitlements,
/// activity, version and phone-system extension, and every product's seat count.
async fn world(app: &TestApp) -> Value {
    let users = app.get("/Users?count=200&sortBy=userName").await;
    assert_status(&users, 200);
    let users: Vec<Value> = users.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|u| {
            json!({
                "id": u["id"],
                "userName": u["userName"],
                "active": u["active"],
                "roles": u["roles"],
                "entitlements": u["entitlements"],
                "version": u["meta"]["version"],
                "ext": u[EXT],
            })
        })
        .collect();
    let products = admin(app, Method::GET, "/products", None).await;
    assert_status(&products, 200);
    let mut seats: Vec<Value> = items(&products.body, "products")
        .iter()
        .map(|p| json!([p["code"], p["seatsUsed"]]))
        .collect();
    seats.sort_by_key(|s| s.to_string());
    json!({"users": users, "seats": seats})
}

#[track_caller]
fn assert_unchanged(before: &Value, after: &Value, what: &str) {
    assert_eq!(after, before, "{what}: nothing may change");
}

fn replace(path: &str, value: Value) -> Value {
    patch_body(json!([{"op": "replace", "path": path, "value": value}]))
}

fn ext_path(attribute: &str) -> String {
    format!("{EXT}:{attribute}")
}

/// Creates a group granting the phone licence, with these members.
async fn licence_group(app: &TestApp, name: &str, members: &[(&str, &str)]) -> String {
    let members: Vec<Value> = members
        .iter()
        .map(|(id, kind)| json!({"value": id, "type": kind}))
        .collect();
    let reply = app
        .post(
            "/Groups",
            &json!({
                "schemas": [GROUP_SCHEMA, EXT_GROUP],
                "displayName": name,
                "members": members,
                EXT_GROUP: {"entitlements": [{"value": "phone", "type": "License"}]},
            }),
        )
        .await;
    created_id(&reply)
}

async fn add_members(app: &TestApp, group: &str, members: &[(&str, &str)]) {
    let members: Vec<Value> = members
        .iter()
        .map(|(id, kind)| json!({"value": id, "type": kind}))
        .collect();
    let reply = app
        .patch(
            &format!("/Groups/{group}"),
            &patch_body(json!([{"op": "add", "path": "members", "value": members}])),
        )
        .await;
    assert!(
        reply.status == StatusCode::NO_CONTENT || reply.status == StatusCode::OK,
        "a group write never fails for want of seats: {}",
        reply.body
    );
}

// ---------------------------------------------------------------------------------------------
// Admin API
// ---------------------------------------------------------------------------------------------

async fn account_policy_is_read_by_admins_and_written_by_super_admins(app: TestApp) {
    let admin_token = admin_token(&app).await;
    let read = admin_as(&app, &admin_token, Method::GET, "/account/policy", None).await;
    assert_status(&read, 200);
    assert_eq!(read.body["extensionFirst"], 1000, "{}", read.body);
    assert_eq!(read.body["extensionLast"], 9999);
    assert_eq!(read.body["quarantineDays"], 30);
    assert_eq!(read.body["retainLicences"], false);

    let policy = json!({"extensionFirst": 200, "extensionLast": 299, "quarantineDays": 10, "retainLicences": false});
    admin_as(
        &app,
        &admin_token,
        Method::PUT,
        "/account/policy",
        Some(&policy),
    )
    .await
    .assert_error(403, None);
    assert_eq!(
        admin(&app, Method::GET, "/account/policy", None).await.body["extensionFirst"],
        1000,
        "a refused policy write changes nothing"
    );

    assert_status(
        &admin(&app, Method::PUT, "/account/policy", Some(&policy)).await,
        200,
    );
    let read = admin(&app, Method::GET, "/account/policy", None).await;
    assert_eq!(read.body["extensionFirst"], 200);
    assert_eq!(read.body["extensionLast"], 299);
    assert_eq!(read.body["quarantineDays"], 10);
}

async fn products_need_a_super_admin_and_cannot_be_deleted_in_use(app: TestApp) {
    let admin_token = admin_token(&app).await;
    admin_as(
        &app,
        &admin_token,
        Method::PUT,
        "/products/phone",
        Some(&json!({"display": "Phone", "seats": 2, "features": ["sms"]})),
    )
    .await
    .assert_error(403, None);
    let listed = admin_as(&app, &admin_token, Method::GET, "/products", None).await;
    assert_status(&listed, 200);
    assert!(
        items(&listed.body, "products").is_empty(),
        "{}",
        listed.body
    );

    let reply = admin(
        &app,
        Method::PUT,
        "/products/phone",
        Some(&json!({"display": "Phone", "seats": 2, "features": ["sms", "recording"]})),
    )
    .await;
    assert_status(&reply, 200);
    assert_eq!(reply.body["code"], "phone");
    assert_eq!(reply.body["display"], "Phone");
    assert_eq!(reply.body["seats"], 2);
    assert_eq!(reply.body["seatsUsed"], 0);
    assert_eq!(reply.body["features"], json!(["sms", "recording"]));
    let listed = admin_as(&app, &admin_token, Method::GET, "/products", None).await;
    assert_eq!(items(&listed.body, "products").len(), 1);

    let ana = create(&app, &licensed("ana@example.com")).await;
    assert_eq!(seats_used(&app, "phone").await, 1);
    let before = world(&app).await;
    assert_refused(
        &admin(&app, Method::DELETE, "/products/phone", None).await,
        409,
    );
    assert_unchanged(&before, &world(&app).await, "deleting a product in use");

    let reply = app
        .patch(
            &format!("/Users/{ana}"),
            &patch_body(json!([{"op": "remove", "path": "entitlements"}])),
        )
        .await;
    assert_status(&reply, 200);
    assert_eq!(seats_used(&app, "phone").await, 0);
    admin_as(&app, &admin_token, Method::DELETE, "/products/phone", None)
        .await
        .assert_error(403, None);
    assert_success(&admin(&app, Method::DELETE, "/products/phone", None).await);
    let listed = admin(&app, Method::GET, "/products", None).await;
    assert!(items(&listed.body, "products").is_empty());
}

async fn bundles_and_roles_need_a_super_admin(app: TestApp) {
    make_product(&app, "phone", 5).await;
    let admin_token = admin_token(&app).await;
    let bundle = json!({"entitlements": [{"value": "phone", "type": "License"}]});

    admin_as(
        &app,
        &admin_token,
        Method::PUT,
        "/bundles/standard",
        Some(&bundle),
    )
    .await
    .assert_error(403, None);
    assert!(
        items(
            &admin(&app, Method::GET, "/bundles", None).await.body,
            "bundles"
        )
        .is_empty()
    );
    assert_success(&admin(&app, Method::PUT, "/bundles/standard", Some(&bundle)).await);
    let listed = admin_as(&app, &admin_token, Method::GET, "/bundles", None).await;
    assert_status(&listed, 200);
    assert_eq!(items(&listed.body, "bundles").len(), 1, "{}", listed.body);
    admin_as(
        &app,
        &admin_token,
        Method::DELETE,
        "/bundles/standard",
        None,
    )
    .await
    .assert_error(403, None);
    assert_success(&admin(&app, Method::DELETE, "/bundles/standard", None).await);
    assert!(
        items(
            &admin(&app, Method::GET, "/bundles", None).await.body,
            "bundles"
        )
        .is_empty()
    );

    let role = json!({"name": "Group managers", "permissions": ["manageGroups"]});
    admin_as(&app, &admin_token, Method::POST, "/roles", Some(&role))
        .await
        .assert_error(403, None);
    let created = admin(&app, Method::POST, "/roles", Some(&role)).await;
    assert_status(&created, 201);
    assert_eq!(created.body["name"], "Group managers");
    assert_eq!(created.body["permissions"], json!(["manageGroups"]));
    let id = created.body["id"].as_str().expect("id").to_string();
    let listed = admin_as(&app, &admin_token, Method::GET, "/roles", None).await;
    assert_status(&listed, 200);
    assert!(
        items(&listed.body, "roles").iter().any(|r| r["id"] == id),
        "{}",
        listed.body
    );
    admin_as(
        &app,
        &admin_token,
        Method::DELETE,
        &format!("/roles/{id}"),
        None,
    )
    .await
    .assert_error(403, None);
    assert_success(&admin(&app, Method::DELETE, &format!("/roles/{id}"), None).await);
    let listed = admin(&app, Method::GET, "/roles", None).await;
    assert!(!items(&listed.body, "roles").iter().any(|r| r["id"] == id));
}

async fn locations_and_templates_are_managed_by_admins(app: TestApp) {
    let admin_token = admin_token(&app).await;
    let created = admin_as(
        &app,
        &admin_token,
        Method::POST,
        "/emergency-locations",
        Some(&json!({"name": "HQ", "address": {"streetAddress": "1 rue de la Paix", "locality": "Paris", "postalCode": "75002", "country": "FR"}})),
    )
    .await;
    assert_status(&created, 201);
    assert_eq!(created.body["name"], "HQ");
    assert_eq!(created.body["address"]["locality"], "Paris");
    let id = created.body["id"].as_str().expect("id").to_string();
    let listed = admin_as(
        &app,
        &admin_token,
        Method::GET,
        "/emergency-locations",
        None,
    )
    .await;
    assert_status(&listed, 200);
    assert_eq!(items(&listed.body, "locations").len(), 1, "{}", listed.body);
    assert_success(
        &admin_as(
            &app,
            &admin_token,
            Method::DELETE,
            &format!("/emergency-locations/{id}"),
            None,
        )
        .await,
    );
    let listed = admin(&app, Method::GET, "/emergency-locations", None).await;
    assert!(items(&listed.body, "locations").is_empty());

    let template = json!({"settings": {"voicemailGreeting": "default", "ringTimeoutSeconds": 20}});
    assert_success(
        &admin_as(
            &app,
            &admin_token,
            Method::PUT,
            "/settings-templates/sales",
            Some(&template),
        )
        .await,
    );
    let listed = admin_as(&app, &admin_token, Method::GET, "/settings-templates", None).await;
    assert_status(&listed, 200);
    assert!(
        items(&listed.body, "templates")
            .iter()
            .any(|t| t["name"] == "sales"),
        "{}",
        listed.body
    );
}

async fn number_inventory_adds_validates_and_stays_per_account(app: TestApp) {
    let admin_token = admin_token(&app).await;
    let reply = admin_as(
        &app,
        &admin_token,
        Method::POST,
        "/numbers",
        Some(&json!({"numbers": [NUMBER, OTHER_NUMBER], "smsCapable": true})),
    )
    .await;
    assert_status(&reply, 200);
    assert_eq!(reply.body["added"], json!([NUMBER, OTHER_NUMBER]));
    assert_eq!(reply.body["alreadyPresent"], json!([]));

    let reply = admin(
        &app,
        Method::POST,
        "/numbers",
        Some(&json!({"numbers": [NUMBER, "+33142868202"], "smsCapable": true})),
    )
    .await;
    assert_status(&reply, 200);
    assert_eq!(reply.body["added"], json!(["+33142868202"]));
    assert_eq!(reply.body["alreadyPresent"], json!([NUMBER]));
    let count = |body: &Value| items(body, "numbers").len();
    assert_eq!(
        count(&admin(&app, Method::GET, "/numbers", None).await.body),
        3
    );

    // A malformed number refuses the whole request.
    admin(
        &app,
        Method::POST,
        "/numbers",
        Some(&json!({"numbers": ["+33142868203", "0142868200"], "smsCapable": false})),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    assert_eq!(
        count(&admin(&app, Method::GET, "/numbers", None).await.body),
        3
    );

    // A number of another account cannot be added here.
    let other = app.account("other", TokenRole::SuperAdmin).await;
    let theirs = admin_as(&app, &other, Method::GET, "/numbers", None).await;
    assert_eq!(count(&theirs.body), 0, "inventories are per account");
    let refused = admin_as(
        &app,
        &other,
        Method::POST,
        "/numbers",
        Some(&json!({"numbers": [NUMBER], "smsCapable": true})),
    )
    .await;
    assert_refused(&refused, 409);
    assert_eq!(
        count(
            &admin_as(&app, &other, Method::GET, "/numbers", None)
                .await
                .body
        ),
        0
    );

    assert_success(
        &admin_as(
            &app,
            &admin_token,
            Method::DELETE,
            &format!("/numbers/{NUMBER}"),
            None,
        )
        .await,
    );
    assert_eq!(
        count(&admin(&app, Method::GET, "/numbers", None).await.body),
        2
    );
}

async fn devices_are_managed_by_the_admin_api_and_shown_read_only(app: TestApp) {
    let ana = app.create_user("ana@example.com").await;
    let admin_token = admin_token(&app).await;
    let created = admin_as(
        &app,
        &admin_token,
        Method::POST,
        "/devices",
        Some(&json!({"macAddress": "00:1a:2b:3c:4d:5e", "model": "X100", "userId": ana})),
    )
    .await;
    assert_status(&created, 201);
    assert_eq!(created.body["macAddress"], "001A2B3C4D5E");
    assert_eq!(created.body["model"], "X100");
    assert_eq!(created.body["userId"], ana.as_str());
    let device = created.body["id"].as_str().expect("id").to_string();

    let user = app.get(&format!("/Users/{ana}")).await;
    let devices = ext(&user.body)["devices"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(devices.len(), 1, "{}", user.body);
    assert_eq!(devices[0]["macAddress"], "001A2B3C4D5E");

    // Read-only over SCIM.
    let before = world(&app).await;
    app.patch(
        &format!("/Users/{ana}"),
        &patch_body(json!([{"op": "add", "path": ext_path("devices"), "value": [{"macAddress": "AABBCCDDEEFF"}]}])),
    )
    .await
    .assert_error(400, Some("mutability"));

    // Malformed, or already on the platform (in any spelling, in any account).
    admin(
        &app,
        Method::POST,
        "/devices",
        Some(&json!({"macAddress": "00:1a:2b:3c", "model": "X100"})),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    admin(
        &app,
        Method::POST,
        "/devices",
        Some(&json!({"macAddress": "00-1A-2B-3C-4D-5E", "model": "X100"})),
    )
    .await
    .assert_error(409, Some("uniqueness"));
    let other = app.account("other", TokenRole::SuperAdmin).await;
    admin_as(
        &app,
        &other,
        Method::POST,
        "/devices",
        Some(&json!({"macAddress": "001a2b3c4d5e", "model": "X100"})),
    )
    .await
    .assert_error(409, Some("uniqueness"));
    let listed = admin(&app, Method::GET, "/devices", None).await;
    assert_eq!(items(&listed.body, "devices").len(), 1, "{}", listed.body);
    assert_unchanged(&before, &world(&app).await, "refused device writes");

    // Unassigned: the user no longer shows it.
    let reply = admin_as(
        &app,
        &admin_token,
        Method::PATCH,
        &format!("/devices/{device}"),
        Some(&json!({"userId": null})),
    )
    .await;
    assert_status(&reply, 200);
    assert!(reply.body["userId"].is_null(), "{}", reply.body);
    let user = app.get(&format!("/Users/{ana}")).await;
    assert!(
        ext(&user.body)["devices"]
            .as_array()
            .is_none_or(|d| d.is_empty()),
        "{}",
        user.body
    );

    assert_success(
        &admin_as(
            &app,
            &admin_token,
            Method::DELETE,
            &format!("/devices/{device}"),
            None,
        )
        .await,
    );
    let listed = admin(&app, Method::GET, "/devices", None).await;
    assert!(items(&listed.body, "devices").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------------------------

async fn an_admin_token_creates_a_member_with_phone_defaults(app: TestApp) {
    make_product(&app, "phone", 5).await;
    let admin_token = admin_token(&app).await;
    let reply = scim_as(
        &app,
        &admin_token,
        Method::POST,
        "/Users",
        Some(&licensed("ana@example.com")),
    )
    .await;
    let id = created_id(&reply);
    assert_eq!(
        role_values(&reply.body),
        ["account:member"],
        "{}",
        reply.body
    );
    let ext = ext(&reply.body);
    assert_eq!(ext["extensionNumber"], "1000", "{}", reply.body);
    assert_eq!(ext["voicemailEnabled"], true);
    assert!(
        ext["accountKey"].as_str().is_some_and(|k| !k.is_empty()),
        "{}",
        reply.body
    );
    let statuses = ext["licenseStatus"].as_array().expect("licenseStatus");
    assert_eq!(statuses.len(), 1, "{}", reply.body);
    assert_eq!(statuses[0]["value"], "phone");
    assert_eq!(statuses[0]["state"], "assigned");
    assert_eq!(statuses[0]["source"], "direct");
    assert_eq!(seats_used(&app, "phone").await, 1);

    let read = app.get(&format!("/Users/{id}")).await;
    assert_status(&read, 200);
    assert_eq!(
        read.body[EXT], reply.body[EXT],
        "GET shows what POST returned"
    );
}

async fn an_admin_token_cannot_grant_the_admin_role(app: TestApp) {
    make_product(&app, "phone", 5).await;
    let admin_token = admin_token(&app).await;
    let body = with_roles(licensed("boss@example.com"), &["account:admin"]);
    let before = world(&app).await;
    scim_as(&app, &admin_token, Method::POST, "/Users", Some(&body))
        .await
        .assert_error(403, None);
    assert_eq!(count_named(&app, "boss@example.com").await, 0);
    assert_eq!(seats_used(&app, "phone").await, 0);
    assert_unchanged(&before, &world(&app).await, "a refused admin create");

    // Nor promote a member it created.
    let ana = created_id(
        &scim_as(
            &app,
            &admin_token,
            Method::POST,
            "/Users",
            Some(&user_body("ana@example.com")),
        )
        .await,
    );
    let before = world(&app).await;
    scim_as(
        &app,
        &admin_token,
        Method::PATCH,
        &format!("/Users/{ana}"),
        Some(&replace("roles", json!([{"value": "account:admin"}]))),
    )
    .await
    .assert_error(403, None);
    assert_unchanged(&before, &world(&app).await, "a refused promotion");

    let reply = app.post("/Users", &body).await;
    created_id(&reply);
    assert_eq!(role_values(&reply.body), ["account:admin"]);
    assert_eq!(seats_used(&app, "phone").await, 1);
}

async fn an_admin_token_cannot_change_or_delete_an_admin(app: TestApp) {
    let boss = create(
        &app,
        &with_roles(user_body("boss@example.com"), &["account:admin"]),
    )
    .await;
    let ana = app.create_user("ana@example.com").await;
    let admin_token = admin_token(&app).await;

    let before = world(&app).await;
    scim_as(
        &app,
        &admin_token,
        Method::DELETE,
        &format!("/Users/{boss}"),
        None,
    )
    .await
    .assert_error(403, None);
    scim_as(
        &app,
        &admin_token,
        Method::PATCH,
        &format!("/Users/{boss}"),
        Some(&replace("title", json!("Boss"))),
    )
    .await
    .assert_error(403, None);
    assert_unchanged(
        &before,
        &world(&app).await,
        "an admin token touching an admin",
    );
    assert_status(&app.get(&format!("/Users/{boss}")).await, 200);

    // The same token may change a member.
    let reply = scim_as(
        &app,
        &admin_token,
        Method::PATCH,
        &format!("/Users/{ana}"),
        Some(&replace("title", json!("Agent"))),
    )
    .await;
    assert_status(&reply, 200);
    assert_eq!(reply.body["title"], "Agent");
}

async fn the_last_super_admin_is_protected(app: TestApp) {
    let root = create(
        &app,
        &with_roles(user_body("root@example.com"), &["account:superAdmin"]),
    )
    .await;
    let path = format!("/Users/{root}");

    let before = world(&app).await;
    assert_refused(
        &app.patch(&path, &replace("active", json!(false))).await,
        409,
    );
    assert_refused(&app.delete(&path).await, 409);
    assert_refused(
        &app.patch(
            &path,
            &replace("roles", json!([{"value": "account:member"}])),
        )
        .await,
        409,
    );
    assert_unchanged(&before, &world(&app).await, "the last super-admin");
    let read = app.get(&path).await;
    assert_eq!(read.body["active"], true);
    assert_eq!(role_values(&read.body), ["account:superAdmin"]);

    let second = create(
        &app,
        &with_roles(user_body("second@example.com"), &["account:superAdmin"]),
    )
    .await;
    let reply = app.patch(&path, &replace("active", json!(false))).await;
    assert_status(&reply, 200);
    assert_eq!(reply.body["active"], false);
    // Now the second one is the last active super-admin.
    assert_refused(
        &app.patch(
            &format!("/Users/{second}"),
            &replace("active", json!(false)),
        )
        .await,
        409,
    );
}

async fn roles_endpoint_lists_built_in_and_custom_roles(app: TestApp) {
    let created = admin(
        &app,
        Method::POST,
        "/roles",
        Some(&json!({"name": "Group managers", "permissions": ["manageGroups"]})),
    )
    .await;
    assert_status(&created, 201);
    let custom = format!("account:custom:{}", created.body["id"].as_str().unwrap());

    let reply = app.get("/Roles").await;
    assert_status(&reply, 200);
    assert_eq!(reply.body["schemas"][0], LIST_RESPONSE);
    let values: Vec<String> = reply.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|r| r["value"].as_str().unwrap_or_default().to_string())
        .collect();
    for expected in [
        "account:member",
        "account:admin",
        "account:superAdmin",
        "pbx:superAdministrator",
        "pbx:configurePbx",
        "pbx:viewInvoices",
        "pbx:payInvoices",
        "pbx:viewReports",
        custom.as_str(),
    ] {
        assert!(
            values.iter().any(|v| v == expected),
            "{expected} missing from {values:?}"
        );
    }
    assert_eq!(
        reply.body["totalResults"].as_u64(),
        Some(values.len() as u64)
    );

    // The custom role is assignable by its published value.
    let reply = app
        .post(
            "/Users",
            &with_roles(user_body("ana@example.com"), &[custom.as_str()]),
        )
        .await;
    created_id(&reply);
    assert_eq!(role_values(&reply.body), [custom]);
}

// ---------------------------------------------------------------------------------------------
// Licences and seats
// ---------------------------------------------------------------------------------------------

async fn no_free_seat_refuses_a_direct_licence_whole(app: TestApp) {
    make_product(&app, "phone", 1).await;
    create(&app, &licensed("ana@example.com")).await;
    let before = world(&app).await;

    let reply = app.post("/Users", &licensed("bob@example.com")).await;
    reply.assert_error(403, None);
    let detail = reply.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("no free seat for product phone") && detail.contains("1 of 1"),
        "{detail}"
    );
    assert_eq!(count_named(&app, "bob@example.com").await, 0);
    assert_eq!(seats_used(&app, "phone").await, 1);
    assert_unchanged(&before, &world(&app).await, "a create without a seat");

    // PATCH and PUT asking for the licence are refused whole too.
    let carol = app.create_user("carol@example.com").await;
    let before = world(&app).await;
    app.patch(
        &format!("/Users/{carol}"),
        &patch_body(json!([
            {"op": "replace", "path": "title", "value": "Agent"},
            {"op": "add", "path": "entitlements", "value": [{"value": "phone", "type": "License"}]},
        ])),
    )
    .await
    .assert_error(403, None);
    app.put(&format!("/Users/{carol}"), &licensed("carol@example.com"))
        .await
        .assert_error(403, None);
    assert_unchanged(&before, &world(&app).await, "a PATCH/PUT without a seat");
}

async fn concurrent_creates_never_oversell_seats(app: TestApp) {
    make_product(&app, "phone", 3).await;
    let app = Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let app = app.clone();
        tasks.spawn(async move {
            app.post("/Users", &licensed(&format!("u{i}@example.com")))
                .await
        });
    }
    let replies = tasks.join_all().await;
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 3, "exactly the free seats are taken");
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        reply.assert_error(403, None);
        assert!(
            reply.body["detail"]
                .as_str()
                .unwrap()
                .contains("no free seat for product phone"),
            "{}",
            reply.body
        );
    }
    assert_eq!(seats_used(&app, "phone").await, 3);
    assert_eq!(app.get("/Users").await.body["totalResults"], 3);
}

async fn entitlements_must_name_known_products_and_features(app: TestApp) {
    make_product(&app, "phone", 5).await;
    let before = world(&app).await;

    let mut body = user_body("ana@example.com");
    body["entitlements"] = json!([{"value": "fax", "type": "License"}]);
    app.post("/Users", &body)
        .await
        .assert_error(400, Some("invalidValue"));

    body["entitlements"] = json!([{"value": "phone:sms", "type": "Feature"}]);
    app.post("/Users", &body)
        .await
        .assert_error(400, Some("invalidValue"));

    body["entitlements"] = json!([
        {"value": "phone", "type": "License"},
        {"value": "phone:video", "type": "Feature"},
    ]);
    assert_refused(&app.post("/Users", &body).await, 400);
    assert_eq!(count_named(&app, "ana@example.com").await, 0);
    assert_unchanged(&before, &world(&app).await, "refused entitlements");

    body["entitlements"] = json!([
        {"value": "phone", "type": "License"},
        {"value": "phone:sms", "type": "Feature"},
    ]);
    let reply = app.post("/Users", &body).await;
    created_id(&reply);
    let values: Vec<&str> = reply.body["entitlements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert!(
        values.contains(&"phone") && values.contains(&"phone:sms"),
        "{values:?}"
    );
    assert_eq!(seats_used(&app, "phone").await, 1);
}

async fn a_licence_bundle_expands_into_its_licences(app: TestApp) {
    make_product(&app, "phone", 5).await;
    assert_success(
        &admin(
            &app,
            Method::PUT,
            "/bundles/standard",
            Some(&json!({"entitlements": [{"value": "phone", "type": "License"}]})),
        )
        .await,
    );
    let reply = app
        .post(
            "/Users",
            &with_ext(
                user_body("ana@example.com"),
                json!({"licenseBundle": "standard"}),
            ),
        )
        .await;
    created_id(&reply);
    assert_eq!(ext(&reply.body)["licenseBundle"], "standard");
    let phone = licence(&reply.body, "phone").expect("phone licence");
    assert_eq!(phone["state"], "assigned", "{}", reply.body);
    assert_eq!(seats_used(&app, "phone").await, 1);

    let before = world(&app).await;
    app.post(
        "/Users",
        &with_ext(
            user_body("bob@example.com"),
            json!({"licenseBundle": "premium"}),
        ),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    assert_unchanged(&before, &world(&app).await, "an unknown bundle");
}

async fn entitlements_endpoint_shows_seat_counts(app: TestApp) {
    make_product(&app, "phone", 3).await;
    create(&app, &licensed("ana@example.com")).await;
    let reply = app.get("/Entitlements").await;
    assert_status(&reply, 200);
    assert_eq!(reply.body["schemas"][0], LIST_RESPONSE);
    let resources = reply.body["Resources"].as_array().expect("Resources");
    let phone = resources
        .iter()
        .find(|e| e["value"] == "phone")
        .unwrap_or_else(|| panic!("no phone entitlement: {}", reply.body));
    assert_eq!(phone["type"], "License");
    assert_eq!(phone["totalAssignmentsPermitted"], 3);
    assert_eq!(phone["totalAssignmentsUsed"], 1);
}

// ---------------------------------------------------------------------------------------------
// Extensions
// ---------------------------------------------------------------------------------------------

async fn extensions_follow_the_account_policy(app: TestApp) {
    assert_status(
        &admin(
            &app,
            Method::PUT,
            "/account/policy",
            Some(&json!({"extensionFirst": 200, "extensionLast": 299, "quarantineDays": 30, "retainLicences": false})),
        )
        .await,
        200,
    );
    let first = app.post("/Users", &user_body("ana@example.com")).await;
    created_id(&first);
    assert_eq!(ext(&first.body)["extensionNumber"], "200", "{}", first.body);
    let second = app.post("/Users", &user_body("bob@example.com")).await;
    created_id(&second);
    let number: i64 = ext(&second.body)["extensionNumber"]
        .as_str()
        .expect("extensionNumber")
        .parse()
        .expect("digits");
    assert!((201..=299).contains(&number), "{number}");
}

async fn concurrent_creates_get_distinct_extensions(app: TestApp) {
    let app = Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let app = app.clone();
        tasks.spawn(async move {
            app.post("/Users", &user_body(&format!("u{i}@example.com")))
                .await
        });
    }
    let mut numbers = Vec::new();
    for reply in tasks.join_all().await {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let number = ext(&reply.body)["extensionNumber"]
            .as_str()
            .expect("extensionNumber")
            .to_string();
        let value: i64 = number.parse().expect("digits");
        assert!((1000..=9999).contains(&value), "{number}");
        numbers.push(number);
    }
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 64, "every user has an extension of its own");
}

async fn explicit_extension_numbers_are_checked(app: TestApp) {
    let ana = app.post("/Users", &user_body("ana@example.com")).await;
    created_id(&ana);
    assert_eq!(ext(&ana.body)["extensionNumber"], "1000");

    let before = world(&app).await;
    let bob = |extension: &str| {
        with_ext(
            user_body("bob@example.com"),
            json!({"extensionNumber": extension}),
        )
    };
    app.post("/Users", &bob("1000"))
        .await
        .assert_error(409, Some("uniqueness"));
    app.post("/Users", &bob("99"))
        .await
        .assert_error(400, Some("invalidValue"));
    app.post("/Users", &bob("10000"))
        .await
        .assert_error(400, Some("invalidValue"));
    app.post("/Users", &bob("12a4"))
        .await
        .assert_error(400, Some("invalidValue"));
    assert_eq!(count_named(&app, "bob@example.com").await, 0);
    assert_unchanged(&before, &world(&app).await, "refused extensions");

    let reply = app.post("/Users", &bob("4321")).await;
    let bob = created_id(&reply);
    assert_eq!(ext(&reply.body)["extensionNumber"], "4321");

    let path = format!("/Users/{bob}");
    let before = world(&app).await;
    app.patch(&path, &replace(&ext_path("extensionNumber"), json!("1000")))
        .await
        .assert_error(409, Some("uniqueness"));
    assert_unchanged(&before, &world(&app).await, "a PATCH to a taken extension");

    let reply = app
        .patch(&path, &replace(&ext_path("extensionNumber"), json!("5555")))
        .await;
    assert_status(&reply, 200);
    assert_eq!(ext(&reply.body)["extensionNumber"], "5555");
    assert_eq!(ext(&app.get(&path).await.body)["extensionNumber"], "5555");
}

// ---------------------------------------------------------------------------------------------
// Phone numbers and emergency locations
// ---------------------------------------------------------------------------------------------

async fn a_direct_number_comes_from_the_inventory(app: TestApp) {
    make_product(&app, "phone", 5).await;
    add_numbers(&app, &[NUMBER], true).await;
    let reply = app
        .post(
            "/Users",
            &with_ext(
                licensed("ana@example.com"),
                json!({"directNumber": NUMBER, "smsEnabled": true}),
            ),
        )
        .await;
    let id = created_id(&reply);
    assert_eq!(ext(&reply.body)["directNumber"], NUMBER, "{}", reply.body);
    assert_eq!(ext(&reply.body)["smsEnabled"], true);
    assert_eq!(
        ext(&app.get(&format!("/Users/{id}")).await.body)["directNumber"],
        NUMBER
    );

    // A number written the way people write them is stored in E.164 form.
    add_numbers(&app, &[OTHER_NUMBER], true).await;
    let reply = app
        .post(
            "/Users",
            &with_ext(
                licensed("bob@example.com"),
                json!({"directNumber": "+33 1 42 86 82 01"}),
            ),
        )
        .await;
    created_id(&reply);
    assert_eq!(
        ext(&reply.body)["directNumber"],
        OTHER_NUMBER,
        "{}",
        reply.body
    );
}

async fn direct_number_refusals(app: TestApp) {
    make_product(&app, "phone", 5).await;
    add_numbers(&app, &[NUMBER, OTHER_NUMBER], true).await;
    add_numbers(&app, &[NO_SMS_NUMBER], false).await;
    create(
        &app,
        &with_ext(licensed("ana@example.com"), json!({"directNumber": NUMBER})),
    )
    .await;
    let before = world(&app).await;

    // Without the phone licence.
    app.post(
        "/Users",
        &with_ext(
            user_body("bob@example.com"),
            json!({"directNumber": OTHER_NUMBER}),
        ),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    // Not in the inventory.
    app.post(
        "/Users",
        &with_ext(
            licensed("bob@example.com"),
            json!({"directNumber": "+33142868999"}),
        ),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    // Someone else's.
    app.post(
        "/Users",
        &with_ext(licensed("bob@example.com"), json!({"directNumber": NUMBER})),
    )
    .await
    .assert_error(409, Some("uniqueness"));
    // SMS on a number that cannot send SMS.
    assert_refused(
        &app.post(
            "/Users",
            &with_ext(
                licensed("bob@example.com"),
                json!({"directNumber": NO_SMS_NUMBER, "smsEnabled": true}),
            ),
        )
        .await,
        400,
    );
    assert_eq!(count_named(&app, "bob@example.com").await, 0);
    assert_unchanged(&before, &world(&app).await, "refused direct numbers");
}

async fn a_released_number_is_quarantined(app: TestApp) {
    make_product(&app, "phone", 5).await;
    add_numbers(&app, &[NUMBER], true).await;
    let ana = create(
        &app,
        &with_ext(licensed("ana@example.com"), json!({"directNumber": NUMBER})),
    )
    .await;
    let reply = app
        .patch(
            &format!("/Users/{ana}"),
            &patch_body(json!([{"op": "remove", "path": ext_path("directNumber")}])),
        )
        .await;
    assert_status(&reply, 200);
    assert!(ext(&reply.body)["directNumber"].is_null(), "{}", reply.body);

    let before = world(&app).await;
    app.post(
        "/Users",
        &with_ext(licensed("bob@example.com"), json!({"directNumber": NUMBER})),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    assert_eq!(count_named(&app, "bob@example.com").await, 0);
    assert_unchanged(&before, &world(&app).await, "a quarantined number");
}

async fn put_without_telephony_attributes_keeps_them(app: TestApp) {
    make_product(&app, "phone", 5).await;
    add_numbers(&app, &[NUMBER], true).await;
    let location = make_location(&app, "HQ").await;
    let ana = create(
        &app,
        &with_ext(
            licensed("ana@example.com"),
            json!({"extensionNumber": "1234", "directNumber": NUMBER, "emergencyLocation": "HQ", "smsEnabled": true}),
        ),
    )
    .await;

    let mut body = licensed("ana@example.com");
    body["title"] = json!("Engineer");
    let reply = app.put(&format!("/Users/{ana}"), &body).await;
    assert_status(&reply, 200);
    assert_eq!(reply.body["title"], "Engineer");
    for user in [reply.body, app.get(&format!("/Users/{ana}")).await.body] {
        let ext = ext(&user);
        assert_eq!(ext["extensionNumber"], "1234", "{user}");
        assert_eq!(ext["directNumber"], NUMBER, "{user}");
        assert_eq!(ext["emergencyLocation"], location.as_str(), "{user}");
        assert_eq!(ext["smsEnabled"], true, "{user}");
    }

    // Only an explicit null clears.
    let mut body = licensed("ana@example.com");
    body = with_ext(body, json!({"directNumber": null, "smsEnabled": false}));
    let reply = app.put(&format!("/Users/{ana}"), &body).await;
    assert_status(&reply, 200);
    assert!(ext(&reply.body)["directNumber"].is_null(), "{}", reply.body);
    assert_eq!(ext(&reply.body)["extensionNumber"], "1234");
    assert_eq!(ext(&reply.body)["emergencyLocation"], location.as_str());
}

async fn emergency_location_by_name_or_id(app: TestApp) {
    let hq = make_location(&app, "HQ").await;
    let reply = app
        .post(
            "/Users",
            &with_ext(
                user_body("ana@example.com"),
                json!({"emergencyLocation": "HQ"}),
            ),
        )
        .await;
    created_id(&reply);
    assert_eq!(ext(&reply.body)["emergencyLocation"], hq.as_str());
    assert_eq!(ext(&reply.body)["emergencyLocationName"], "HQ");

    let reply = app
        .post(
            "/Users",
            &with_ext(
                user_body("bob@example.com"),
                json!({"emergencyLocation": hq}),
            ),
        )
        .await;
    created_id(&reply);
    assert_eq!(ext(&reply.body)["emergencyLocation"], hq.as_str());
    assert_eq!(ext(&reply.body)["emergencyLocationName"], "HQ");

    let before = world(&app).await;
    app.post(
        "/Users",
        &with_ext(
            user_body("carol@example.com"),
            json!({"emergencyLocation": "Nowhere"}),
        ),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    assert_unchanged(&before, &world(&app).await, "an unknown location");
}

// ---------------------------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------------------------

async fn deactivation_releases_the_seat_and_keeps_the_extension(app: TestApp) {
    make_product(&app, "phone", 5).await;
    let ana = create(&app, &licensed("ana@example.com")).await;
    let path = format!("/Users/{ana}");
    assert_eq!(seats_used(&app, "phone").await, 1);

    let reply = app.patch(&path, &replace("active", json!(false))).await;
    assert_status(&reply, 200);
    let read = app.get(&path).await;
    assert_status(&read, 200);
    assert_eq!(read.body["active"], false);
    assert_eq!(ext(&read.body)["extensionNumber"], "1000");
    assert_eq!(seats_used(&app, "phone").await, 0);

    // The extension is held, not given away.
    let before = world(&app).await;
    app.post(
        "/Users",
        &with_ext(
            user_body("bob@example.com"),
            json!({"extensionNumber": "1000"}),
        ),
    )
    .await
    .assert_error(409, Some("uniqueness"));
    assert_unchanged(&before, &world(&app).await, "a held extension");

    let reply = app.patch(&path, &replace("active", json!(true))).await;
    assert_status(&reply, 200);
    assert_eq!(reply.body["active"], true);
    assert_eq!(ext(&reply.body)["extensionNumber"], "1000");
    assert_eq!(
        licence(&reply.body, "phone").expect("phone")["state"],
        "assigned"
    );
    assert_eq!(seats_used(&app, "phone").await, 1);
}

async fn reactivation_without_a_free_seat_is_refused(app: TestApp) {
    make_product(&app, "phone", 1).await;
    let ana = create(&app, &licensed("ana@example.com")).await;
    let path = format!("/Users/{ana}");
    assert_status(
        &app.patch(&path, &replace("active", json!(false))).await,
        200,
    );
    create(&app, &licensed("bob@example.com")).await;
    assert_eq!(seats_used(&app, "phone").await, 1);

    let before = world(&app).await;
    let reply = app.patch(&path, &replace("active", json!(true))).await;
    reply.assert_error(403, None);
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("no free seat for product phone"),
        "{}",
        reply.body
    );
    assert_unchanged(&before, &world(&app).await, "a reactivation without a seat");
    assert_eq!(app.get(&path).await.body["active"], false);
}

async fn delete_is_soft_and_restorable(app: TestApp) {
    make_product(&app, "phone", 5).await;
    let ana = create(&app, &licensed("ana@example.com")).await;
    assert_eq!(seats_used(&app, "phone").await, 1);

    assert_status(&app.delete(&format!("/Users/{ana}")).await, 204);
    app.get(&format!("/Users/{ana}"))
        .await
        .assert_error(404, None);
    assert_eq!(count_named(&app, "ana@example.com").await, 0);
    assert_eq!(seats_used(&app, "phone").await, 0);

    let deleted = admin(&app, Method::GET, "/deleted-users", None).await;
    assert_status(&deleted, 200);
    let users = items(&deleted.body, "users");
    assert!(
        users
            .iter()
            .any(|u| u["id"] == ana.as_str() && u["userName"] == "ana@example.com"),
        "{}",
        deleted.body
    );

    // The userName is free again.
    let again = create(&app, &licensed("ana@example.com")).await;
    assert_ne!(again, ana);
    assert_eq!(seats_used(&app, "phone").await, 1);

    assert_status(&app.delete(&format!("/Users/{again}")).await, 204);
    let restored = admin(
        &app,
        Method::POST,
        &format!("/deleted-users/{ana}/restore"),
        None,
    )
    .await;
    assert_status(&restored, 200);
    assert_eq!(restored.body["id"], ana.as_str());
    assert_eq!(restored.body["userName"], "ana@example.com");
    assert_status(&app.get(&format!("/Users/{ana}")).await, 200);
    assert_eq!(count_named(&app, "ana@example.com").await, 1);
    let deleted = admin(&app, Method::GET, "/deleted-users", None).await;
    assert!(
        !items(&deleted.body, "users")
            .iter()
            .any(|u| u["id"] == ana.as_str()),
        "a restored user is no longer deleted: {}",
        deleted.body
    );
}

// ---------------------------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------------------------

async fn a_group_licence_flows_to_its_members(app: TestApp) {
    make_product(&app, "phone", 5).await;
    let ana = app.create_user("ana@example.com").await;
    let group = licence_group(&app, "Phones", &[]).await;
    assert_eq!(seats_used(&app, "phone").await, 0);

    add_members(&app, &group, &[(ana.as_str(), "User")]).await;
    let user = app.get(&format!("/Users/{ana}")).await;
    let phone = licence(&user.body, "phone").expect("inherited phone licence");
    assert_eq!(phone["state"], "assigned", "{}", user.body);
    assert_eq!(phone["source"], group.as_str());
    assert_eq!(seats_used(&app, "phone").await, 1);
}

async fn a_group_licence_waits_for_a_free_seat(app: TestApp) {
    make_product(&app, "phone", 1).await;
    let bob = create(&app, &licensed("bob@example.com")).await;
    let ana = app.create_user("ana@example.com").await;
    let group = licence_group(&app, "Phones", &[]).await;

    add_members(&app, &group, &[(ana.as_str(), "User")]).await;
    let user = app.get(&format!("/Users/{ana}")).await;
    let phone = licence(&user.body, "phone").expect("pending phone licence");
    assert_eq!(phone["state"], "pendingSeat", "{}", user.body);
    assert_eq!(phone["source"], group.as_str());
    let read = app.get(&format!("/Groups/{group}")).await;
    assert_eq!(read.body[EXT_GROUP]["licenseErrors"], 1, "{}", read.body);
    assert_eq!(seats_used(&app, "phone").await, 1);

    // A seat frees: the pending member gets it.
    assert_status(&app.delete(&format!("/Users/{bob}")).await, 204);
    let user = app.get(&format!("/Users/{ana}")).await;
    let phone = licence(&user.body, "phone").expect("phone licence");
    assert_eq!(phone["state"], "assigned", "{}", user.body);
    assert_eq!(seats_used(&app, "phone").await, 1);
    let read = app.get(&format!("/Groups/{group}")).await;
    assert_eq!(read.body[EXT_GROUP]["licenseErrors"], 0, "{}", read.body);
}

async fn a_parent_group_licence_reaches_indirect_members(app: TestApp) {
    make_product(&app, "phone", 5).await;
    let ana = app.create_user("ana@example.com").await;
    let child = app.create_group("Sales Paris", &[&ana]).await;
    let parent = licence_group(&app, "Sales", &[(child.as_str(), "Group")]).await;

    let user = app.get(&format!("/Users/{ana}")).await;
    let phone = licence(&user.body, "phone").expect("inherited phone licence");
    assert_eq!(phone["state"], "assigned", "{}", user.body);
    assert_eq!(phone["source"], parent.as_str());
    assert_eq!(seats_used(&app, "phone").await, 1);
}

async fn group_settings_templates_apply_by_precedence(app: TestApp) {
    for name in ["Sales", "Night shift"] {
        let reply = admin(
            &app,
            Method::PUT,
            &format!("/settings-templates/{name}"),
            Some(&json!({"settings": {"callRecording": name == "Sales"}})),
        )
        .await;
        assert_success(&reply);
    }
    let user = create(&app, &user_body("ana@example.com")).await;
    let settings = admin(&app, Method::GET, &format!("/users/{user}/settings"), None).await;
    assert_eq!(settings.body["template"], "system");
    assert_eq!(settings.body["source"], "user");
    assert_eq!(settings.body["extension"], 1000);
    assert!(settings.body["voicemailBox"]["created"].is_string());

    let group = |name: &str, template: &str, precedence: i64| {
        json!({
            "schemas": [GROUP_SCHEMA, EXT_GROUP],
            "displayName": name,
            "members": [{"value": user, "type": "User"}],
            EXT_GROUP: {"productSettingsTemplate": template, "precedence": precedence},
        })
    };
    let night = created_id(
        &app.post("/Groups", &group("night", "Night shift", 20))
            .await,
    );
    let settings = admin(&app, Method::GET, &format!("/users/{user}/settings"), None).await;
    assert_eq!(settings.body["template"], "Night shift");
    assert_eq!(settings.body["source"], night);
    assert_eq!(settings.body["settings"]["callRecording"], false);

    let sales = created_id(&app.post("/Groups", &group("sales", "Sales", 10)).await);
    let settings = admin(&app, Method::GET, &format!("/users/{user}/settings"), None).await;
    assert_eq!(settings.body["template"], "Sales", "lower precedence wins");
    assert_eq!(settings.body["source"], sales);
    assert_eq!(settings.body["settings"]["callRecording"], true);

    let unknown = app.post("/Groups", &group("bad", "Nope", 1)).await;
    unknown.assert_error(400, Some("invalidValue"));
}

mod holds {
    use super::*;
    use crate::helpers::{Backend, fresh_database, start_app};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        a_hold_past_the_quarantine_frees_extension_and_number(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if std::env::var("SWITCHBOARD_TEST_POSTGRES_URL").is_ok() {
            a_hold_past_the_quarantine_frees_extension_and_number(Backend::Postgres).await;
        }
    }

    /// The server's hourly janitor also runs once at start: a second server on the same
    /// database releases what the quarantine no longer holds.
    async fn a_hold_past_the_quarantine_frees_extension_and_number(backend: Backend) {
        let database = fresh_database(backend).await.unwrap();
        let app = start_app(database.clone(), 0, None, true).await.unwrap();
        let policy = admin(
            &app,
            Method::PUT,
            "/account/policy",
            Some(&json!({"extensionFirst": 1000, "extensionLast": 9999, "quarantineDays": 0, "retainLicences": false})),
        )
        .await;
        assert_success(&policy);
        make_product(&app, "phone", 5).await;
        add_numbers(&app, &[NUMBER], false).await;
        let body = with_ext(licensed("ana@example.com"), json!({"directNumber": NUMBER}));
        let id = create(&app, &body).await;
        let path = format!("/Users/{id}");
        let deactivated = app
            .patch(
                &path,
                &patch_body(json!([{"op": "replace", "path": "active", "value": false}])),
            )
            .await;
        assert_success(&deactivated);
        assert_eq!(ext(&deactivated.body)["extensionNumber"], "1000");

        let _second = start_app(database, 0, None, false).await.unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let released = loop {
            let user = app.get(&path).await;
            if ext(&user.body).get("extensionNumber").is_none() {
                break user;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the hold was not released"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert!(ext(&released.body).get("directNumber").is_none());
        let numbers = admin(&app, Method::GET, "/numbers", None).await;
        assert_eq!(items(&numbers.body, "numbers")[0]["status"], "quarantined");
        // The extension is free for someone else now.
        let other = with_ext(
            user_body("bo@example.com"),
            json!({"extensionNumber": "1000"}),
        );
        let bo = app.post("/Users", &other).await;
        assert_eq!(bo.status, StatusCode::CREATED, "{}", bo.body);
        // An update while still inactive does not take an extension again.
        let renamed = app
            .patch(
                &path,
                &patch_body(json!([{"op": "replace", "path": "title", "value": "Away"}])),
            )
            .await;
        assert_success(&renamed);
        assert!(ext(&renamed.body).get("extensionNumber").is_none());
        // Coming back, the user gets a new extension.
        let back = app
            .patch(
                &path,
                &patch_body(json!([{"op": "replace", "path": "active", "value": true}])),
            )
            .await;
        assert_success(&back);
        assert_eq!(ext(&back.body)["extensionNumber"], "1001");
        let audit = app
            .get(&format!(
                "/admin/v1/audit?resourceType=User&resourceId={id}&action=user.hold-released"
            ))
            .await;
        assert_eq!(audit.body["events"].as_array().unwrap().len(), 1);
    }
}

mod catalogue_changes {
    use super::*;
    use crate::helpers::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let app = crate::helpers::spawn(Backend::Sqlite).await.unwrap();
        removed_catalogue_items_never_block_deprovisioning(app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(app) = crate::helpers::spawn(Backend::Postgres).await {
            removed_catalogue_items_never_block_deprovisioning(app).await;
        }
    }

    /// An admin removes a template, a location and a bundle users still refer to: the IdP can
    /// still re-send, deactivate and reactivate those users.
    async fn removed_catalogue_items_never_block_deprovisioning(app: TestApp) {
        make_product(&app, "phone", 5).await;
        let bundle = admin(
            &app,
            Method::PUT,
            "/bundles/Basic",
            Some(&json!({"entitlements": [{"value": "phone", "type": "License"}]})),
        )
        .await;
        assert_success(&bundle);
        let template = admin(
            &app,
            Method::PUT,
            "/settings-templates/Sales",
            Some(&json!({"settings": {"callRecording": true}})),
        )
        .await;
        assert_success(&template);
        let location = make_location(&app, "HQ").await;
        let body = with_ext(
            user_body("ana@example.com"),
            json!({"licenseBundle": "Basic", "productSettingsTemplate": "Sales", "emergencyLocation": "HQ"}),
        );
        let id = create(&app, &body).await;
        let path = format!("/Users/{id}");

        for gone in [
            "/settings-templates/Sales".to_string(),
            format!("/emergency-locations/{location}"),
            "/bundles/Basic".to_string(),
        ] {
            assert_success(&admin(&app, Method::DELETE, &gone, None).await);
        }

        // The IdP re-sends the user as it first sent it: accepted.
        let put = app.put(&path, &body).await;
        assert_success(&put);
        assert_eq!(ext(&put.body)["emergencyLocation"], location);
        let off = app
            .patch(
                &path,
                &patch_body(json!([{"op": "replace", "path": "active", "value": false}])),
            )
            .await;
        assert_success(&off);
        let on = app
            .patch(
                &path,
                &patch_body(json!([{"op": "replace", "path": "active", "value": true}])),
            )
            .await;
        assert_success(&on);
        // Control characters in a path or a body are a 400 on both databases, never a 500.
        admin(&app, Method::DELETE, "/bundles/a%00b", None)
            .await
            .assert_error(400, Some("invalidValue"));
        admin(
            &app,
            Method::POST,
            "/emergency-locations",
            Some(&json!({"name": "Annex", "address": {"street": "a\u{0}b"}})),
        )
        .await
        .assert_error(400, Some("invalidValue"));
        // A new reference to something that does not exist is still refused.
        let other = with_ext(
            user_body("bo@example.com"),
            json!({"licenseBundle": "Basic"}),
        );
        app.post("/Users", &other)
            .await
            .assert_error(400, Some("invalidValue"));
    }
}

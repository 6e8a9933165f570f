//! The admin API's catalogue routes (`/admin/v1/…`: policy, products, bundles, roles,
//! emergency locations, settings templates, numbers, devices, deleted users) and the SCIM
//! `/Roles` and `/Entitlements` resource types. Thin: parse, call one provisioning function,
//! answer JSON (`application/json` for the admin API, SCIM JSON for SCIM).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{Caller, ScimBody};
use super::{AppState, list_page, resource_response, scim_json};
use crate::provisioning::catalog::{
    BundleInput, DeviceInput, DevicePatch, LocationInput, NumbersInput, ProductInput, RoleInput,
    TemplateInput, product_json,
};
use crate::scim::error::ScimError;
use crate::scim::list::ListPage;
use crate::store::AccountPolicy;

/// Routes under `/admin/v1`.
pub fn admin_router() -> Router<AppState> {
    Router::new()
        .route("/account/policy", get(get_policy).put(put_policy))
        .route("/products", get(list_products))
        .route("/products/{code}", put(put_product).delete(delete_product))
        .route("/bundles", get(list_bundles))
        .route("/bundles/{name}", put(put_bundle).delete(delete_bundle))
        .route("/roles", get(list_roles).post(create_role))
        .route("/roles/{id}", put(update_role).delete(delete_role))
        .route(
            "/emergency-locations",
            get(list_locations).post(create_location),
        )
        .route(
            "/emergency-locations/{id}",
            axum::routing::delete(delete_location),
        )
        .route("/settings-templates", get(list_templates))
        .route(
            "/settings-templates/{name}",
            put(put_template).delete(delete_template),
        )
        .route("/numbers", get(list_numbers).post(add_numbers))
        .route("/numbers/{number}", axum::routing::delete(delete_number))
        .route("/devices", get(list_devices).post(create_device))
        .route(
            "/devices/{id}",
            axum::routing::patch(patch_device).delete(delete_device),
        )
        .route("/users/{id}/settings", get(user_settings))
        .route(
            "/users/{id}/invitations",
            get(list_invitations).post(resend_invitation),
        )
        .route("/users/{id}/records", get(list_records).post(add_record))
        .route("/outbox", get(outbox))
        .route("/email-templates", get(list_email_templates))
        .route(
            "/email-templates/{name}",
            put(put_email_template).delete(delete_email_template),
        )
        .route("/deleted-users", get(list_deleted))
        .route("/deleted-users/{id}/restore", post(restore))
        .route("/openapi.json", get(openapi))
}

/// `/Roles` and `/Entitlements`, under `/scim/v2`.
pub fn scim_router() -> Router<AppState> {
    Router::new()
        .route("/Roles", get(scim_roles))
        .route("/Roles/{id}", get(scim_role))
        .route("/Entitlements", get(scim_entitlements))
        .route("/Entitlements/{id}", get(scim_entitlement))
}

/// Whether any string (key or value) of a JSON document carries a NUL, which PostgreSQL text
/// and JSONB refuse: caught here as a 400 for both databases alike.
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// A path segment naming a catalogue item (code, name, id, number): control characters — NUL
/// among them, which PostgreSQL refuses — are a 400, not a database error.
struct Key(String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Key {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let Path(key) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::from(ScimError::invalid_syntax(e.body_text())))?;
        if key.chars().any(char::is_control) {
            return Err(ScimError::invalid_value("the path contains a control character").into());
        }
        Ok(Key(key))
    }
}

fn parse<T: DeserializeOwned>(body: Value) -> Result<T, ApiError> {
    if has_nul(&body) {
        return Err(ScimError::invalid_value("the request body contains a NUL character").into());
    }
    serde_json::from_value(body).map_err(|e| {
        ApiError::from(ScimError::invalid_syntax(format!(
            "the request body does not match this endpoint: {e}"
        )))
    })
}

fn ok(body: Value) -> Response {
    (StatusCode::OK, Json(body)).into_response()
}

fn created(body: Value) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

async fn get_policy(State(s): State<AppState>, Caller(ctx): Caller) -> Result<Response, ApiError> {
    Ok(ok(json!(s.provisioner.policy(&ctx).await?)))
}

async fn put_policy(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Input {
        extension_first: i64,
        extension_last: i64,
        quarantine_days: i64,
        retain_licences: bool,
    }
    let input: Input = parse(body)?;
    let policy = AccountPolicy {
        extension_first: input.extension_first,
        extension_last: input.extension_last,
        quarantine_days: input.quarantine_days,
        retain_licences: input.retain_licences,
    };
    Ok(ok(json!(s.provisioner.set_policy(&ctx, policy).await?)))
}

async fn list_products(
    State(s): State<AppState>,
    Caller(ctx): Caller,
) -> Result<Response, ApiError> {
    let products = s.provisioner.products(&ctx).await?;
    Ok(ok(
        json!({"products": products.iter().map(product_json).collect::<Vec<_>>()}),
    ))
}

async fn put_product(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(code): Key,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    let input: ProductInput = parse(body)?;
    let product = s.provisioner.put_product(&ctx, &code, input).await?;
    Ok(ok(product_json(&product)))
}

async fn delete_product(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(code): Key,
) -> Result<Response, ApiError> {
    s.provisioner.delete_product(&ctx, &code).await?;
    Ok(no_content())
}

async fn list_bundles(
    State(s): State<AppState>,
    Caller(ctx): Caller,
) -> Result<Response, ApiError> {
    Ok(ok(json!({"bundles": s.provisioner.bundles(&ctx).await?})))
}

async fn put_bundle(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(name): Key,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    let input: BundleInput = parse(body)?;
    Ok(ok(s.provisioner.put_bundle(&ctx, &name, input).await?))
}

async fn delete_bundle(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(name): Key,
) -> Result<Response, ApiError> {
    s.provisioner.delete_bundle(&ctx, &name).await?;
    Ok(no_content())
}

async fn list_roles(State(s): State<AppState>, Caller(ctx): Caller) -> Result<Response, ApiError> {
    Ok(ok(
        json!({"roles": s.provisioner.custom_roles(&ctx).await?}),
    ))
}

async fn create_role(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    let input: RoleInput = parse(body)?;
    Ok(created(
        s.provisioner.create_custom_role(&ctx, input).await?,
    ))
}

async fn update_role(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(id): Key,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    let input: RoleInput = parse(body)?;
    Ok(ok(s
        .provisioner
        .update_custom_role(&ctx, &id, input)
        .await?))
}

async fn delete_role(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(id): Key,
) -> Result<Response, ApiError> {
    s.provisioner.delete_custom_role(&ctx, &id).await?;
    Ok(no_content())
}

async fn list_locations(
    State(s): State<AppState>,
    Caller(ctx): Caller,
) -> Result<Response, ApiError> {
    Ok(ok(
        json!({"locations": s.provisioner.emergency_locations(&ctx).await?}),
    ))
}

async fn create_location(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    let input: LocationInput = parse(body)?;
    Ok(created(
        s.provisioner.create_emergency_location(&ctx, input).await?,
    ))
}

async fn delete_location(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(id): Key,
) -> Result<Response, ApiError> {
    s.provisioner.delete_emergency_location(&ctx, &id).await?;
    Ok(no_content())
}

async fn list_templates(
    State(s): State<AppState>,
    Caller(ctx): Caller,
) -> Result<Response, ApiError> {
    Ok(ok(
        json!({"templates": s.provisioner.settings_templates(&ctx).await?}),
    ))
}

async fn put_template(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(name): Key,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    let input: TemplateInput = parse(body)?;
    Ok(ok(s
        .provisioner
        .put_settings_template(&ctx, &name, input)
        .await?))
}

async fn delete_template(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(name): Key,
) -> Result<Response, ApiError> {
    s.provisioner.delete_settings_template(&ctx, &name).await?;
    Ok(no_content())
}

async fn list_numbers(
    State(s): State<AppState>,
    Caller(ctx): Caller,
) -> Result<Response, ApiError> {
    Ok(ok(
        json!({"numbers": s.provisioner.phone_numbers(&ctx).await?}),
    ))
}

async fn add_numbers(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    let input: NumbersInput = parse(body)?;
    Ok(ok(s.provisioner.add_phone_numbers(&ctx, input).await?))
}

async fn delete_number(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(number): Key,
) -> Result<Response, ApiError> {
    s.provisioner.delete_phone_number(&ctx, &number).await?;
    Ok(no_content())
}

async fn list_devices(
    State(s): State<AppState>,
    Caller(ctx): Caller,
) -> Result<Response, ApiError> {
    Ok(ok(json!({"devices": s.provisioner.devices(&ctx).await?})))
}

async fn create_device(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    let input: DeviceInput = parse(body)?;
    Ok(created(s.provisioner.create_device(&ctx, input).await?))
}

async fn patch_device(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(id): Key,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    let input: DevicePatch = parse(body)?;
    Ok(ok(s.provisioner.patch_device(&ctx, &id, input).await?))
}

async fn delete_device(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(id): Key,
) -> Result<Response, ApiError> {
    s.provisioner.delete_device(&ctx, &id).await?;
    Ok(no_content())
}

async fn user_settings(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(id): Key,
) -> Result<Response, ApiError> {
    Ok(ok(s.provisioner.user_settings(&ctx, &id).await?))
}

async fn list_invitations(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(id): Key,
) -> Result<Response, ApiError> {
    Ok(ok(
        json!({"invitations": s.provisioner.invitations(&ctx, &id).await?}),
    ))
}

async fn resend_invitation(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(id): Key,
) -> Result<Response, ApiError> {
    Ok(created(s.provisioner.resend_invitation(&ctx, &id).await?))
}

async fn list_records(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(id): Key,
) -> Result<Response, ApiError> {
    Ok(ok(
        json!({"records": s.provisioner.profile_records(&ctx, &id).await?}),
    ))
}

async fn add_record(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(id): Key,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Input {
        kind: String,
        title: String,
        occurred_at: String,
    }
    let input: Input = parse(body)?;
    let occurred_at = time::OffsetDateTime::parse(
        &input.occurred_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map(|t| (t.unix_timestamp_nanos() / 1_000) as i64)
    .map_err(|_| ScimError::invalid_value("occurredAt must be an RFC 3339 date-time"))?;
    Ok(created(
        s.provisioner
            .add_profile_record(&ctx, &id, &input.kind, &input.title, occurred_at)
            .await?,
    ))
}

async fn outbox(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    super::extract::ScimQuery(params): super::extract::ScimQuery<CountParam>,
) -> Result<Response, ApiError> {
    let count = params.count.unwrap_or(100);
    Ok(ok(
        json!({"mails": s.provisioner.outbox(&ctx, count).await?}),
    ))
}

#[derive(Debug, serde::Deserialize)]
struct CountParam {
    count: Option<i64>,
}

async fn list_email_templates(
    State(s): State<AppState>,
    Caller(ctx): Caller,
) -> Result<Response, ApiError> {
    Ok(ok(
        json!({"templates": s.provisioner.email_templates(&ctx).await?}),
    ))
}

async fn put_email_template(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(name): Key,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Input {
        subject: String,
        text: String,
        html: String,
    }
    let input: Input = parse(body)?;
    let template = crate::mail::templates::MailTemplate {
        subject: input.subject,
        text: input.text,
        html: input.html,
    };
    Ok(ok(s
        .provisioner
        .put_email_template(&ctx, &name, template)
        .await?))
}

async fn delete_email_template(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(name): Key,
) -> Result<Response, ApiError> {
    s.provisioner.delete_email_template(&ctx, &name).await?;
    Ok(no_content())
}

async fn list_deleted(
    State(s): State<AppState>,
    Caller(ctx): Caller,
) -> Result<Response, ApiError> {
    Ok(ok(
        json!({"users": s.provisioner.deleted_users(&ctx).await?}),
    ))
}

async fn restore(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(id): Key,
) -> Result<Response, ApiError> {
    let rendered = s.provisioner.restore_user(&ctx, &id).await?;
    Ok(resource_response(StatusCode::OK, rendered))
}

async fn openapi() -> Response {
    (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../../docs/admin-openapi.json"),
    )
        .into_response()
}

fn unpaged(resources: Vec<Value>) -> Response {
    list_page(ListPage {
        total_results: resources.len() as u64,
        resources,
        start_index: Some(1),
        next_cursor: None,
    })
}

fn one(resources: Vec<Value>, id: &str, kind: &str) -> Result<Response, ApiError> {
    resources
        .into_iter()
        .find(|r| r.get("id").and_then(Value::as_str) == Some(id))
        .map(|r| scim_json(StatusCode::OK, &r))
        .ok_or_else(|| ScimError::not_found(format!("{kind} {id} not found")).into())
}

async fn scim_roles(State(s): State<AppState>, Caller(ctx): Caller) -> Result<Response, ApiError> {
    Ok(unpaged(s.provisioner.scim_roles(&ctx).await?))
}

async fn scim_role(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(id): Key,
) -> Result<Response, ApiError> {
    one(s.provisioner.scim_roles(&ctx).await?, &id, "Role")
}

async fn scim_entitlements(
    State(s): State<AppState>,
    Caller(ctx): Caller,
) -> Result<Response, ApiError> {
    Ok(unpaged(s.provisioner.scim_entitlements(&ctx).await?))
}

async fn scim_entitlement(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Key(id): Key,
) -> Result<Response, ApiError> {
    one(
        s.provisioner.scim_entitlements(&ctx).await?,
        &id,
        "Entitlement",
    )
}

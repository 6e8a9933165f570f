//! Discovery (RFC 7644 §4): `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`, served from
//! the schema registry so that what we advertise is what we enforce. ServiceProviderConfig
//! advertises exactly what works.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::Caller;
use super::{AppState, MAX_PAYLOAD_SIZE, scim_json};
use crate::provisioning::cursor::CURSOR_TIMEOUT_SECONDS;
use crate::scim::error::ScimError;
use crate::scim::list::{ListPage, MAX_RESULTS, list_response};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema))
}

/// A representation from `schemas/` with its `meta.location` made absolute.
fn located(representation: &Value, scim_base: &str) -> Value {
    let mut value = representation.clone();
    if let Some(meta) = value.get_mut("meta").and_then(Value::as_object_mut)
        && let Some(location) = meta.get("location").and_then(Value::as_str)
    {
        let absolute = format!("{scim_base}{location}");
        meta.insert("location".into(), Value::String(absolute));
    }
    value
}

async fn service_provider_config(Caller(ctx): Caller) -> Response {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": MAX_PAYLOAD_SIZE},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": MAX_RESULTS,
            "maxPageSize": MAX_RESULTS,
            "cursorTimeout": CURSOR_TIMEOUT_SECONDS
        },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A bearer token issued by the operator (switchboard token create), sent as 'Authorization: Bearer <token>'.",
            "primary": true
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", ctx.scim_base)
        }
    });
    scim_json(StatusCode::OK, &body)
}

/// A ListResponse holding every item on one page (discovery lists are small and unpaged).
fn whole_list(items: Vec<Value>) -> Response {
    let page = ListPage {
        total_results: items.len() as u64,
        resources: items,
        start_index: Some(1),
        next_cursor: None,
    };
    scim_json(StatusCode::OK, &list_response(page))
}

async fn resource_types(State(state): State<AppState>, Caller(ctx): Caller) -> Response {
    let items: Vec<Value> = state
        .provisioner
        .registry()
        .resource_types()
        .iter()
        .map(|rt| located(&rt.representation, &ctx.scim_base))
        .collect();
    whole_list(items)
}

async fn resource_type(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let rt = state
        .provisioner
        .registry()
        .resource_types()
        .iter()
        .find(|rt| rt.id == id)
        .ok_or_else(|| {
            ScimError::not_found(format!("no resource type '{id}'; see /ResourceTypes"))
        })?;
    Ok(scim_json(
        StatusCode::OK,
        &located(&rt.representation, &ctx.scim_base),
    ))
}

async fn schemas(State(state): State<AppState>, Caller(ctx): Caller) -> Response {
    let items: Vec<Value> = state
        .provisioner
        .registry()
        .schemas()
        .iter()
        .map(|s| located(&s.representation, &ctx.scim_base))
        .collect();
    whole_list(items)
}

async fn schema(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let schema = state
        .provisioner
        .registry()
        .schemas()
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ScimError::not_found(format!("no schema '{id}'; see /Schemas")))?;
    Ok(scim_json(
        StatusCode::OK,
        &located(&schema.representation, &ctx.scim_base),
    ))
}

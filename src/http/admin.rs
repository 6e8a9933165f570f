//! The admin API (`/admin/v1`, JSON, same error style as SCIM). For now: the audit trail,
//! readable by super-admin tokens of the account.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use super::extract::{Caller, ScimQuery};
use crate::provisioning::render::timestamp;
use crate::scim::error::ScimError;
use crate::store::AuditQuery;

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(audit))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditParams {
    resource_type: Option<String>,
    resource_id: Option<String>,
    token_id: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
    count: Option<i64>,
}

fn micros(name: &str, value: &Option<String>) -> Result<Option<i64>, ScimError> {
    value
        .as_deref()
        .map(|v| {
            OffsetDateTime::parse(v, &Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000) as i64)
                .map_err(|_| {
                    ScimError::invalid_value(format!(
                        "{name} must be an RFC 3339 date-time such as 2026-01-31T00:00:00Z"
                    ))
                })
        })
        .transpose()
}

/// `GET /admin/v1/audit`: the account's events, newest first, filtered by resource, token,
/// action and time range (`since` inclusive, `until` exclusive); `nextCursor` pages on.
async fn audit(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    ScimQuery(params): ScimQuery<AuditParams>,
) -> Result<Response, ApiError> {
    let token_id = params
        .token_id
        .as_deref()
        .map(|t| {
            Uuid::parse_str(t)
                .map_err(|_| ScimError::invalid_value("tokenId must be a token id (a UUID)"))
        })
        .transpose()?;
    let before_id = params
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                ScimError::invalid_value("cursor must be the nextCursor of a previous page")
            })
        })
        .transpose()?;
    let limit = params.count.unwrap_or(100).clamp(1, 1000);
    let query = AuditQuery {
        resource_type: params.resource_type,
        resource_id: params.resource_id,
        token_id,
        action: params.action,
        since: micros("since", &params.since)?,
        until: micros("until", &params.until)?,
        before_id,
        limit,
    };
    let events = state.provisioner.audit_events(&ctx, &query).await?;
    let next_cursor = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.id.to_string()))
        .flatten();
    let items: Vec<Value> = events
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id,
                "occurredAt": timestamp(e.occurred_at),
                "tokenId": e.token_id.map(|t| t.to_string()),
                "actor": e.actor,
                "requestId": e.request_id,
                "userAgent": e.user_agent,
                "action": e.action,
                "resourceType": e.resource_type,
                "resourceId": e.resource_id,
                "before": e.before_state.map(|j| j.0),
                "after": e.after_state.map(|j| j.0),
            })
        })
        .collect();
    Ok((
        StatusCode::OK,
        Json(json!({"events": items, "nextCursor": next_cursor})),
    )
        .into_response())
}

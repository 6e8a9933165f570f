//! `/Groups` (RFC 7644 §3.3 – §3.6): create, read, list, search, replace, patch, delete.
//! Membership changes go through PATCH (or a full PUT) and touch only the rows that change.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::error::ApiError;
use super::extract::{Caller, ScimBody, ScimQuery, not_modified, precondition};
use super::{AppState, ListParams, ProjectionParams, list_page, resource_response};
use crate::provisioning::render::etag;
use crate::scim::error::ScimError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/Groups", get(list).post(create))
        .route("/Groups/.search", post(search))
        .route(
            "/Groups/{id}",
            get(read).put(replace).patch(patch).delete(delete),
        )
}

async fn create(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    ScimQuery(params): ScimQuery<ProjectionParams>,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    let rt = state.provisioner.resource_type("Group")?;
    let projection = params.parse(&state, rt)?;
    let rendered = state
        .provisioner
        .create_group(&ctx, &body, &projection)
        .await?;
    Ok(resource_response(StatusCode::CREATED, rendered))
}

async fn read(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ScimQuery(params): ScimQuery<ProjectionParams>,
) -> Result<Response, ApiError> {
    let rt = state.provisioner.resource_type("Group")?;
    let projection = params.parse(&state, rt)?;
    let rendered = state.provisioner.get_group(&ctx, &id, &projection).await?;
    if not_modified(&headers, &etag(rendered.version)) {
        // RFC 7232 §4.1: a 304 carries the ETag a 200 would have.
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(axum::http::header::ETAG, etag(rendered.version))],
        )
            .into_response());
    }
    Ok(resource_response(StatusCode::OK, rendered))
}

async fn list(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    ScimQuery(params): ScimQuery<ListParams>,
) -> Result<Response, ApiError> {
    run_list(&state, &ctx, &params).await
}

async fn search(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    let params: ListParams = serde_json::from_value(body)
        .map_err(|e| ScimError::invalid_syntax(format!("the search request is not valid: {e}")))?;
    run_list(&state, &ctx, &params).await
}

async fn run_list(
    state: &AppState,
    ctx: &crate::provisioning::Context,
    params: &ListParams,
) -> Result<Response, ApiError> {
    let rt = state.provisioner.resource_type("Group")?;
    let parsed = params.parse(state, rt)?;
    let page = state
        .provisioner
        .list_groups(ctx, &parsed.query, parsed.sort.as_ref(), &parsed.projection)
        .await?;
    Ok(list_page(page))
}

async fn replace(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ScimQuery(params): ScimQuery<ProjectionParams>,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    let rt = state.provisioner.resource_type("Group")?;
    let projection = params.parse(&state, rt)?;
    let rendered = state
        .provisioner
        .replace_group(&ctx, &id, &body, &precondition(&headers), &projection)
        .await?;
    Ok(resource_response(StatusCode::OK, rendered))
}

async fn patch(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ScimQuery(params): ScimQuery<ProjectionParams>,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    // RFC 7644 §3.5.2 allows 204: without `attributes` the member list is never read back.
    let rt = state.provisioner.resource_type("Group")?;
    let projection = if params.is_empty() {
        None
    } else {
        Some(params.parse(&state, rt)?)
    };
    let rendered = state
        .provisioner
        .patch_group(
            &ctx,
            &id,
            &body,
            &precondition(&headers),
            projection.as_ref(),
        )
        .await?;
    let (version, rendered) = rendered;
    Ok(match rendered {
        Some(rendered) => resource_response(StatusCode::OK, rendered),
        // No body, but the new version, for the client's next If-Match.
        None => (
            StatusCode::NO_CONTENT,
            [(axum::http::header::ETAG, etag(version))],
        )
            .into_response(),
    })
}

async fn delete(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state
        .provisioner
        .delete_group(&ctx, &id, &precondition(&headers))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

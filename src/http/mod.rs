//! The HTTP edge: routing, authentication, SCIM JSON in and out, errors to responses. Handlers
//! are thin: parse, call one provisioning function, render. Each feature module owns its routes.

mod admin;
mod catalog;
mod discovery;
pub mod error;
mod extract;
mod groups;
mod health;
mod invitations;
mod metrics;
mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::config::ServeConfig;
use crate::provisioning::Provisioner;
use crate::provisioning::users::Rendered;
use crate::scim::error::ScimError;
use crate::scim::filter::parse_attr_path;
use crate::scim::list::{ListPage, ListQuery, list_response};
use crate::scim::projection::Projection;
use crate::scim::schema::ResourceType;
use crate::store::SortSpec;
use error::ApiError;

pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// A token bucket per account.
pub type AccountLimiter = governor::RateLimiter<
    uuid::Uuid,
    governor::state::keyed::DefaultKeyedStateStore<uuid::Uuid>,
    governor::clock::DefaultClock,
>;

/// The limiter for `per_second` requests per account, in bursts of twice that; `None` when 0.
pub fn account_limiter(per_second: u32) -> Option<Arc<AccountLimiter>> {
    let rate = std::num::NonZeroU32::new(per_second)?;
    let burst = std::num::NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
    Some(Arc::new(governor::RateLimiter::keyed(
        governor::Quota::per_second(rate).allow_burst(burst),
    )))
}
/// Largest request body accepted, advertised as `bulk.maxPayloadSize`.
pub const MAX_PAYLOAD_SIZE: usize = 2 * 1024 * 1024;

/// The request path as logged: an invitation link's token is a credential, so it never reaches
/// a log line.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/invitations/") {
        Some(rest) => {
            let action = rest.split_once('/').map(|(_, a)| a);
            match action {
                Some(action) => format!("/invitations/<token>/{action}").into(),
                None => "/invitations/<token>".into(),
            }
        }
        None => path.into(),
    }
}

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub provisioner: Provisioner,
    /// Per-account request budget (MAPPING 2.2: each tenant its own bucket); `None`: no limit.
    pub limiter: Option<Arc<AccountLimiter>>,
    pub config: Arc<ServeConfig>,
}

pub fn router(state: AppState) -> Router {
    metrics::install();
    let request_id = HeaderName::from_static("x-request-id");
    let scim = Router::new()
        .merge(discovery::router())
        .merge(users::router())
        .merge(groups::router())
        .merge(catalog::scim_router())
        .route("/.search", axum::routing::post(root_search))
        .fallback(not_found);
    Router::new()
        .nest("/scim/v2", scim)
        .nest("/admin/v1", admin::router().merge(catalog::admin_router()))
        .merge(health::router())
        .merge(invitations::router())
        .route("/metrics", axum::routing::get(metrics::render))
        .route_layer(axum::middleware::from_fn(metrics::track))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_PAYLOAD_SIZE))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("a handler panicked".into()).into_response()
        }))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(60)))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
                    tracing::info_span!("request", method = %req.method(), path = %loggable_path(req.uri().path()), request_id = %id)
                })
                // One line per request at INFO (status and latency), inside the request's span.
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Micros)),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION]))
}

async fn not_found() -> ApiError {
    ScimError::not_found(
        "no such endpoint; SCIM endpoints are under /scim/v2 (see /scim/v2/ResourceTypes)",
    )
    .into()
}

async fn method_not_allowed() -> ApiError {
    ScimError::method_not_allowed("this method is not allowed on this endpoint").into()
}

/// `POST /.search` at the root: users and groups in one list (RFC 7644 §3.4.3).
async fn root_search(
    axum::extract::State(state): axum::extract::State<AppState>,
    extract::Caller(ctx): extract::Caller,
    extract::ScimBody(body): extract::ScimBody,
) -> Result<Response, ApiError> {
    let params: ListParams = serde_json::from_value(body)
        .map_err(|e| ScimError::invalid_syntax(format!("the search request is not valid: {e}")))?;
    if params.sort_by.is_some() {
        return Err(ScimError::invalid_value(
            "sortBy is not supported when searching across resource types; search /Users/.search or /Groups/.search",
        )
        .into());
    }
    let users = state.provisioner.resource_type("User")?;
    let groups = state.provisioner.resource_type("Group")?;
    let parsed = params.parse(&state, users)?;
    let group_projection = params.parse(&state, groups)?.projection;
    let page = state
        .provisioner
        .search_all(&ctx, &parsed.query, &parsed.projection, &group_projection)
        .await?;
    Ok(list_page(page))
}

/// A SCIM JSON response.
pub fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SCIM_CONTENT_TYPE),
    );
    response
}

/// A resource response with its `ETag` (and `Location` when created).
pub fn resource_response(status: StatusCode, rendered: Rendered) -> Response {
    let etag = crate::provisioning::render::etag(rendered.version);
    let mut response = scim_json(status, &Value::Object(rendered.resource));
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    if status == StatusCode::CREATED
        && let Ok(v) = HeaderValue::from_str(&rendered.location)
    {
        headers.insert(header::LOCATION, v);
    }
    response
}

/// The parameters of a list query, as GET query parameters or a `/.search` body
/// (RFC 7644 §3.4.2, §3.4.3).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    pub filter: Option<String>,
    pub start_index: Option<Value>,
    pub count: Option<Value>,
    /// RFC 9865: present (even empty) selects cursor paging.
    pub cursor: Option<Value>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub attributes: Option<Value>,
    pub excluded_attributes: Option<Value>,
}

/// `attributes=a,b` in a query, or `"attributes": ["a","b"]` in a search body.
fn attribute_list(value: &Option<Value>) -> Result<Option<String>, ScimError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ScimError::invalid_value("attribute lists hold strings"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| Some(v.join(","))),
        Some(_) => Err(ScimError::invalid_value(
            "attributes must be a string or an array of strings",
        )),
    }
}

fn number_param(value: &Option<Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) if !other.is_null() => Some(other.to_string()),
        _ => None,
    }
}

pub struct ParsedList {
    pub query: ListQuery,
    pub sort: Option<SortSpec>,
    pub projection: Projection,
}

impl ListParams {
    pub fn parse(&self, state: &AppState, rt: &ResourceType) -> Result<ParsedList, ScimError> {
        let cursor = match &self.cursor {
            None => None,
            Some(Value::Null) => Some(String::new()),
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(ScimError::bad_request(
                    crate::scim::ScimType::InvalidCursor,
                    "cursor must be a string",
                ));
            }
        };
        let query = ListQuery::parse(
            self.filter.as_deref(),
            number_param(&self.start_index).as_deref(),
            number_param(&self.count).as_deref(),
            cursor.as_deref(),
        )?;
        let sort = match self
            .sort_by
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(path) => {
                let path = parse_attr_path(path)
                    .map_err(|e| ScimError::invalid_value(format!("sortBy: {e}")))?;
                let descending = match self
                    .sort_order
                    .as_deref()
                    .map(str::to_ascii_lowercase)
                    .as_deref()
                {
                    None | Some("ascending") => false,
                    Some("descending") => true,
                    Some(other) => {
                        return Err(ScimError::invalid_value(format!(
                            "sortOrder must be 'ascending' or 'descending', not '{other}'"
                        )));
                    }
                };
                Some(SortSpec { path, descending })
            }
        };
        let projection = projection(state, rt, &self.attributes, &self.excluded_attributes)?;
        Ok(ParsedList {
            query,
            sort,
            projection,
        })
    }
}

/// `attributes` / `excludedAttributes` of a single-resource request.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectionParams {
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

impl ProjectionParams {
    pub fn is_empty(&self) -> bool {
        self.attributes.is_none() && self.excluded_attributes.is_none()
    }

    pub fn parse(&self, state: &AppState, rt: &ResourceType) -> Result<Projection, ScimError> {
        Projection::parse(
            state.provisioner.registry(),
            rt,
            self.attributes.as_deref(),
            self.excluded_attributes.as_deref(),
        )
    }
}

fn projection(
    state: &AppState,
    rt: &ResourceType,
    attributes: &Option<Value>,
    excluded: &Option<Value>,
) -> Result<Projection, ScimError> {
    Projection::parse(
        state.provisioner.registry(),
        rt,
        attribute_list(attributes)?.as_deref(),
        attribute_list(excluded)?.as_deref(),
    )
}

/// Renders a page as a ListResponse.
pub fn list_page(page: ListPage) -> Response {
    scim_json(StatusCode::OK, &list_response(page))
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn invitation_tokens_never_reach_the_log() {
        assert_eq!(
            loggable_path("/invitations/abcDEF123"),
            "/invitations/<token>"
        );
        assert_eq!(
            loggable_path("/invitations/abcDEF123/accept"),
            "/invitations/<token>/accept"
        );
        assert_eq!(loggable_path("/scim/v2/Users"), "/scim/v2/Users");
    }
}

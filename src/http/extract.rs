//! Extractors whose rejections are SCIM errors: the JSON body (media type, size, syntax), query
//! parameters, the caller's verified identity, and the request facts the audit trail records.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::AppState;
use super::error::ApiError;
use crate::provisioning::{Context, Precondition, Principal};
use crate::scim::error::ScimError;

/// A request body that is JSON, sent as `application/scim+json` or `application/json`.
pub struct ScimBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for ScimBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
            let essence = content_type
                .to_str()
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if essence != "application/scim+json" && essence != "application/json" {
                return Err(ScimError::unsupported_media_type(format!(
                    "Content-Type '{essence}' is not supported; send application/scim+json (or application/json)"
                ))
                .into());
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ScimError::payload_too_large(format!(
                    "the request body is larger than the {} bytes this server accepts (maxPayloadSize in /ServiceProviderConfig)",
                    super::MAX_PAYLOAD_SIZE
                ))
            } else {
                ScimError::invalid_syntax(format!("could not read the request body: {rejection}"))
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(
                ScimError::invalid_syntax("the request body is empty; send a JSON object").into(),
            );
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}"))
        })?;
        Ok(ScimBody(value))
    }
}

/// Query parameters; a malformed query string is `400 invalidValue`, not a bare text reply.
pub struct ScimQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ScimQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(value) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| {
                ScimError::invalid_value(format!("bad query parameters: {}", e.body_text()))
            })?;
        Ok(ScimQuery(value))
    }
}

/// The verified caller and the request facts every provisioning call needs.
pub struct Caller(pub Context);

pub fn header_string(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(512).collect())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = authenticate(&parts.headers, state).await?;
        if let Some(limiter) = &state.limiter
            && let Err(not_until) = limiter.check_key(&principal.account_id)
        {
            use governor::clock::Clock;
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            return Err(ApiError::RateLimited {
                retry_after_seconds: wait.as_secs().max(1),
            });
        }
        let base = match &state.config.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let host = header_string(&parts.headers, "host")
                    .unwrap_or_else(|| state.config.listen.clone());
                let scheme = header_string(&parts.headers, "x-forwarded-proto")
                    .filter(|p| p == "https")
                    .unwrap_or_else(|| "http".into());
                format!("{scheme}://{host}")
            }
        };
        Ok(Caller(Context {
            principal,
            request_id: header_string(&parts.headers, "x-request-id"),
            user_agent: header_string(&parts.headers, "user-agent"),
            scim_base: format!("{base}/scim/v2"),
        }))
    }
}

async fn authenticate(headers: &HeaderMap, state: &AppState) -> Result<Principal, ApiError> {
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ScimError::unauthorized("this endpoint needs an 'Authorization: Bearer <token>' header")
    })?;
    let value = value
        .to_str()
        .map_err(|_| ScimError::unauthorized("the Authorization header is not valid text"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ScimError::unauthorized("use 'Authorization: Bearer <token>'").into());
    }
    Ok(state.provisioner.authenticate(token.trim()).await?)
}

/// `If-Match` (RFC 7644 §3.14; RFC 7232 §3.1).
pub fn precondition(headers: &HeaderMap) -> Precondition {
    let if_match = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').map(|t| t.trim().to_string()).collect());
    Precondition { if_match }
}

/// True when `If-None-Match` names the current version (weak comparison), for a `304`.
pub fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|t| {
                t.trim() == "*"
                    || t.trim().trim_start_matches("W/") == etag.trim_start_matches("W/")
            })
        })
}

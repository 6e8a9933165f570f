//! The one error type of the HTTP edge. Its single `IntoResponse` always emits a SCIM error body
//! (RFC 7644 §3.12); server-side causes are logged with their whole `source()` chain and never
//! returned to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::provisioning;
use crate::provisioning::tokens::AuthError;
use crate::scim::error::ScimError;
use crate::store::StoreError;

use super::SCIM_CONTENT_TYPE;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Scim(#[from] ScimError),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The account used its request budget (`429` with `Retry-After`).
    #[error("rate limited")]
    RateLimited { retry_after_seconds: u64 },
}

impl From<provisioning::Error> for ApiError {
    fn from(e: provisioning::Error) -> Self {
        match e {
            provisioning::Error::Scim(e) => ApiError::Scim(e),
            provisioning::Error::Store(e) => e.into(),
            provisioning::Error::Internal(message) => ApiError::Internal(message.into()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => ApiError::Scim(ScimError::new(
                409,
                None,
                "the resource was changed by a concurrent request; read it again and retry",
            )),
            StoreError::Busy => ApiError::Scim(ScimError::new(
                503,
                None,
                "the database is busy; retry in a moment (see Retry-After)",
            )),
            StoreError::Unique(name) => ApiError::Scim(ScimError::uniqueness(format!(
                "the change conflicts with an existing resource ({name})"
            ))),
            other => ApiError::Internal(Box::new(other)),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Refused(e) => ApiError::Scim(e),
            AuthError::Store(e) => e.into(),
        }
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut retry_after = None;
        let error = match self {
            ApiError::Scim(e) => e,
            ApiError::RateLimited {
                retry_after_seconds,
            } => {
                retry_after = Some(retry_after_seconds);
                ScimError::new(
                    429,
                    None,
                    format!(
                        "too many requests for this account; retry in {retry_after_seconds} s (Retry-After)"
                    ),
                )
            }
            ApiError::Internal(cause) => {
                tracing::error!(error = %chain(cause.as_ref()), "request failed");
                ScimError::new(
                    500,
                    None,
                    "internal server error; the request id in the X-Request-Id header identifies it in the server log",
                )
            }
        };
        let status =
            StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, error.to_json().to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SCIM_CONTENT_TYPE),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"switchboard\", error=\"invalid_token\""),
            );
        }
        response
    }
}

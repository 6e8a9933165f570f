//! The public invitation endpoints, reached from the links in invitation mails (no bearer
//! token: the link's token is the credential). `GET /invitations/{token}` shows a minimal page —
//! or JSON to a client that asks for it — and never changes anything, so mail scanners that
//! prefetch links do no harm; `POST …/accept` and `POST …/decline` act.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::AppState;
use super::error::ApiError;
use super::extract::header_string;
use crate::provisioning::Error;
use crate::provisioning::invitations::{InvitationOutcome, InvitationView};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/invitations/{token}", get(show))
        .route("/invitations/{token}/accept", post(accept))
        .route("/invitations/{token}/decline", post(decline))
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("json"))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title></head>\
         <body style=\"font-family: sans-serif; max-width: 36em; margin: 3em auto\"><h1>{title}</h1>{body}</body></html>\n",
        title = escape(title)
    );
    let mut response = (status, Html(html)).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// An error as JSON (SCIM error body) or as a page a person can read.
fn failure(headers: &HeaderMap, error: Error) -> Response {
    let scim = match error {
        Error::Scim(e) => e,
        other => return ApiError::from(other).into_response(),
    };
    if wants_json(headers) {
        return ApiError::from(scim).into_response();
    }
    let status = StatusCode::from_u16(scim.status).unwrap_or(StatusCode::BAD_REQUEST);
    let title = match scim.status {
        404 => "Invitation not found",
        410 => "Invitation no longer valid",
        _ => "Invitation",
    };
    page(status, title, &format!("<p>{}</p>", escape(&scim.detail)))
}

async fn show(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    match state.provisioner.view_invitation(&token).await {
        Ok(view) if wants_json(&headers) => (StatusCode::OK, Json(view)).into_response(),
        Ok(view) => page(StatusCode::OK, &title(&view), &form(&view, &token)),
        Err(e) => failure(&headers, e),
    }
}

fn title(view: &InvitationView) -> String {
    match view.kind.as_str() {
        "transfer" => format!("Move your profile to {}", view.account_name),
        _ => format!("Welcome to {}", view.account_name),
    }
}

fn form(view: &InvitationView, token: &str) -> String {
    let token = escape(token);
    let mut body = match view.kind.as_str() {
        "transfer" => format!(
            "<p>{} invites <strong>{}</strong>. If you accept, your profile{} moves to {} with its \
             history: past and upcoming sessions, recordings.</p>",
            escape(&view.account_name),
            escape(&view.user_name),
            view.from_account_name
                .as_deref()
                .map(|a| format!(" leaves {} and", escape(a)))
                .unwrap_or_default(),
            escape(&view.account_name),
        ),
        _ => format!(
            "<p>An account was created for <strong>{}</strong>. Accept to set your password and sign in.</p>",
            escape(&view.user_name)
        ),
    };
    body.push_str(&format!(
        "<form method=\"post\" action=\"/invitations/{token}/accept\"><button type=\"submit\">Accept</button></form>"
    ));
    if view.kind == "transfer" {
        body.push_str(&format!(
            "<form method=\"post\" action=\"/invitations/{token}/decline\"><button type=\"submit\">Decline</button></form>"
        ));
    }
    body.push_str(&format!(
        "<p><small>This link works once and expires on {}.</small></p>",
        escape(&view.expires_at)
    ));
    body
}

async fn accept(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(state, token, headers, true).await
}

async fn decline(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(state, token, headers, false).await
}

async fn answer(state: AppState, token: String, headers: HeaderMap, accept: bool) -> Response {
    let outcome = state
        .provisioner
        .answer_invitation(
            &token,
            accept,
            header_string(&headers, "x-request-id"),
            header_string(&headers, "user-agent"),
        )
        .await;
    match outcome {
        Ok(outcome) if wants_json(&headers) => (StatusCode::OK, Json(outcome)).into_response(),
        Ok(outcome) => page(StatusCode::OK, done_title(&outcome), done_body(&outcome)),
        Err(e) => failure(&headers, e),
    }
}

fn done_title(outcome: &InvitationOutcome) -> &'static str {
    match (outcome.kind.as_str(), outcome.status.as_str()) {
        ("transfer", "accepted") => "Your profile has moved",
        ("transfer", _) => "Invitation declined",
        _ => "Welcome aboard",
    }
}

fn done_body(outcome: &InvitationOutcome) -> &'static str {
    match (outcome.kind.as_str(), outcome.status.as_str()) {
        ("transfer", "accepted") => {
            "<p>Your profile and its history are now in your new account.</p>"
        }
        ("transfer", _) => {
            "<p>You stay where you are. The new account keeps your invitation suspended.</p>"
        }
        _ => "<p>Your account is active. You can now sign in.</p>",
    }
}

//! The one way every change is recorded: an event appended in the change's own transaction.

use serde_json::Value;

use super::Context;
use crate::store::{AuditEvent, StoreError, Tx};

/// Appends an audit event for a change made by the request of `ctx`.
pub async fn record(
    tx: &mut Tx,
    ctx: &Context,
    action: &str,
    resource_type: &str,
    resource_id: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> Result<(), StoreError> {
    tx.append_audit(&AuditEvent {
        account_id: ctx.principal.account_id,
        token_id: ctx.principal.actor.token_id(),
        actor: ctx.principal.actor.audit_name(),
        request_id: ctx.request_id.clone(),
        user_agent: ctx.user_agent.clone(),
        action: action.to_string(),
        resource_type: resource_type.to_string(),
        resource_id: Some(resource_id.to_string()),
        before,
        after,
    })
    .await
}

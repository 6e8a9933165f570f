//! The one way every change is recorded (an event appended in the change's own transaction),
//! and the one way it is read back.

use serde_json::Value;

use super::{Context, Provisioner, Result};
use crate::scim::error::ScimError;
use crate::store::{AuditEvent, AuditQuery, AuditRecord, StoreError, Tx};

impl Provisioner {
    /// The account's events matching `query`, newest first: for super-admins (and the
    /// operator) only.
    pub async fn audit_events(
        &self,
        ctx: &Context,
        query: &AuditQuery,
    ) -> Result<Vec<AuditRecord>> {
        if !ctx.principal.actor.is_super_admin() {
            return Err(
                ScimError::forbidden("reading the audit trail needs a super-admin token").into(),
            );
        }
        let mut read = self.store.read().await?;
        let events = read.audit_events(ctx.principal.account_id, query).await?;
        read.commit().await?;
        Ok(events)
    }
}

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

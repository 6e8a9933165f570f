//! The audit trail: append and query. There is deliberately no update or delete here, and the
//! migrations install triggers that refuse both, so the log stays append-only even for someone
//! with a SQL console.

use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::{StoreError, Tx, bind_all, filter_sql::Bind, now_micros, on_conn};

/// One event to append: who (token), through which request, did what to which resource, and
/// the resource before and after.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub account_id: Uuid,
    pub token_id: Option<Uuid>,
    /// Who acted: `token`, `invitation:<id>`, `operator`, `housekeeping`.
    pub actor: String,
    pub request_id: Option<String>,
    pub user_agent: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub account_id: Uuid,
    pub occurred_at: i64,
    pub token_id: Option<Uuid>,
    pub actor: Option<String>,
    pub request_id: Option<String>,
    pub user_agent: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub before_state: Option<Json<Value>>,
    pub after_state: Option<Json<Value>>,
}

/// Filters of the audit query; every one optional. Results are newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub token_id: Option<Uuid>,
    pub action: Option<String>,
    /// Inclusive lower bound, microseconds.
    pub since: Option<i64>,
    /// Exclusive upper bound, microseconds.
    pub until: Option<i64>,
    /// Only events with an id below this one (keyset paging).
    pub before_id: Option<i64>,
    pub limit: i64,
}

impl Tx {
    /// Appends one event, in the caller's transaction: the event exists if and only if the
    /// change it describes was committed.
    pub async fn append_audit(&mut self, event: &AuditEvent) -> Result<(), StoreError> {
        let before = event.before.as_ref().map(Json);
        let after = event.after.as_ref().map(Json);
        on_conn!(self, |conn| {
            sqlx::query(
                "INSERT INTO audit_log (account_id, occurred_at, token_id, request_id, user_agent, action,
                                        resource_type, resource_id, before_state, after_state, actor)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(event.account_id)
            .bind(now_micros())
            .bind(event.token_id)
            .bind(&event.request_id)
            .bind(&event.user_agent)
            .bind(&event.action)
            .bind(&event.resource_type)
            .bind(&event.resource_id)
            .bind(before)
            .bind(after)
            .bind(&event.actor)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    pub async fn audit_events(
        &mut self,
        account_id: Uuid,
        query: &AuditQuery,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut sql = String::from(
            "SELECT id, account_id, occurred_at, token_id, actor, request_id, user_agent, action, resource_type, resource_id,
                    before_state, after_state
             FROM audit_log WHERE account_id = $1",
        );
        let mut binds = Vec::new();
        let mut push = |sql: &mut String, clause: &str, bind: Bind| {
            binds.push(bind);
            sql.push_str(&format!(" AND {clause} ${}", binds.len() + 1));
        };
        if let Some(v) = &query.resource_type {
            push(&mut sql, "resource_type =", Bind::Text(v.clone()));
        }
        if let Some(v) = &query.resource_id {
            push(&mut sql, "resource_id =", Bind::Text(v.clone()));
        }
        if let Some(v) = query.token_id {
            push(&mut sql, "token_id =", Bind::Uuid(v));
        }
        if let Some(v) = &query.action {
            push(&mut sql, "action =", Bind::Text(v.clone()));
        }
        if let Some(v) = query.since {
            push(&mut sql, "occurred_at >=", Bind::Int(v));
        }
        if let Some(v) = query.until {
            push(&mut sql, "occurred_at <", Bind::Int(v));
        }
        if let Some(v) = query.before_id {
            push(&mut sql, "id <", Bind::Int(v));
        }
        sql.push_str(&format!(
            " ORDER BY id DESC LIMIT {}",
            query.limit.clamp(1, 1000)
        ));
        let sql = sqlx::AssertSqlSafe(sql);
        Ok(on_conn!(self, |conn| {
            bind_all!(
                sqlx::query_as::<_, AuditRecord>(sql).bind(account_id),
                &binds
            )
            .fetch_all(conn)
            .await?
        }))
    }
}

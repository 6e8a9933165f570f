//! Users: the row keeps what is filtered, sorted or unique in columns and the rest of the SCIM
//! document as JSON; e-mail values are mirrored into `user_emails` for indexed lookups. The
//! lower-cased `userName` and the e-mail rows are derived here from the record on every write;
//! the other columns come from the provisioning layer, which derives them from the document.

use serde_json::{Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use super::filter_sql::{SortKey, Table};
use super::list::{KeyValue, Listed};
use super::{StoreError, Tx, on_conn};
use crate::scim::error::ScimError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRecord {
    pub id: Uuid,
    pub account_id: Uuid,
    pub user_name: String,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub active: bool,
    pub doc: Json<Map<String, Value>>,
    pub created_at: i64,
    pub last_modified: i64,
    pub version: i64,
    /// `superAdmin`, `admin`, `member` or `custom:<role id>`.
    pub account_role: String,
    pub extension: Option<i64>,
    /// While the user is inactive: until when their extension and number stay reserved.
    pub held_until: Option<i64>,
}

/// A group a user belongs to, for the user's read-only `groups` attribute.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserGroupRef {
    pub user_id: Uuid,
    pub group_id: Uuid,
    pub display_name: String,
    /// 1 for a direct membership, 0 for one inherited through nested groups.
    pub direct: i64,
}

impl Listed for UserRecord {
    const TABLE: Table = Table::Users;
    const FROM: &'static str = "users";
    const COLUMNS: &'static str = COLUMNS;

    fn id(&self) -> Uuid {
        self.id
    }

    fn key(&self, key: SortKey) -> KeyValue {
        match key {
            SortKey::Created => KeyValue::Int(self.created_at),
            SortKey::LastModified => KeyValue::Int(self.last_modified),
            SortKey::UserName | SortKey::GroupDisplayName => {
                KeyValue::Text(self.user_name.to_lowercase())
            }
            SortKey::Id => KeyValue::Text(self.id.to_string()),
        }
    }
}

const COLUMNS: &str = "r.id, r.account_id, r.user_name, r.external_id, r.display_name, r.active, r.doc, r.created_at, r.last_modified, r.version, r.account_role, r.extension, r.held_until";

struct EmailRow {
    value_lower: String,
    kind: Option<String>,
    primary: bool,
}

fn email_rows(doc: &Map<String, Value>) -> Vec<EmailRow> {
    let Some(Value::Array(emails)) = doc.get("emails") else {
        return Vec::new();
    };
    emails
        .iter()
        .filter_map(|e| {
            let value = e.get("value")?.as_str()?;
            Some(EmailRow {
                value_lower: value.to_lowercase(),
                kind: e.get("type").and_then(Value::as_str).map(str::to_lowercase),
                primary: e.get("primary").and_then(Value::as_bool).unwrap_or(false),
            })
        })
        .collect()
}

impl Tx {
    pub async fn insert_user(&mut self, user: &UserRecord) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query(
                "INSERT INTO users (id, account_id, user_name, user_name_lower, external_id, display_name, active, doc,
                                    created_at, last_modified, version, account_role, extension, held_until)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(user.id)
            .bind(user.account_id)
            .bind(&user.user_name)
            .bind(user.user_name.to_lowercase())
            .bind(&user.external_id)
            .bind(&user.display_name)
            .bind(user.active)
            .bind(&user.doc)
            .bind(user.created_at)
            .bind(user.last_modified)
            .bind(user.version)
            .bind(&user.account_role)
            .bind(user.extension)
            .bind(user.held_until)
            .execute(conn)
            .await?;
        });
        self.write_emails(user, false).await
    }

    async fn write_emails(&mut self, user: &UserRecord, replace: bool) -> Result<(), StoreError> {
        let rows = email_rows(&user.doc);
        on_conn!(self, |conn| {
            if replace {
                sqlx::query("DELETE FROM user_emails WHERE user_id = $1")
                    .bind(user.id)
                    .execute(&mut *conn)
                    .await?;
            }
            for row in &rows {
                sqlx::query("INSERT INTO user_emails (account_id, user_id, value_lower, type, is_primary) VALUES ($1, $2, $3, $4, $5)")
                    .bind(user.account_id)
                    .bind(user.id)
                    .bind(&row.value_lower)
                    .bind(&row.kind)
                    .bind(row.primary)
                    .execute(&mut *conn)
                    .await?;
            }
        });
        Ok(())
    }

    /// One user of the account; `lock` takes a row lock for a read-modify-write.
    pub async fn user(
        &mut self,
        account_id: Uuid,
        id: Uuid,
        lock: bool,
    ) -> Result<Option<UserRecord>, StoreError> {
        let lock = if lock { self.lock_clause() } else { "" };
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users r WHERE r.account_id = $1 AND r.id = $2{lock}"
        ));
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, UserRecord>(sql)
                .bind(account_id)
                .bind(id)
                .fetch_optional(conn)
                .await?
        }))
    }

    /// Writes a changed user whose row this transaction has locked; bumps nothing itself: the
    /// caller sets `version` and `last_modified`.
    pub async fn update_user(&mut self, user: &UserRecord) -> Result<(), StoreError> {
        let updated = on_conn!(self, |conn| {
            sqlx::query(
                "UPDATE users SET external_id = $1, display_name = $2, active = $3, doc = $4, last_modified = $5, version = $6,
                     account_role = $9, extension = $10, held_until = $11
                 WHERE account_id = $7 AND id = $8",
            )
            .bind(&user.external_id)
            .bind(&user.display_name)
            .bind(user.active)
            .bind(&user.doc)
            .bind(user.last_modified)
            .bind(user.version)
            .bind(user.account_id)
            .bind(user.id)
            .bind(&user.account_role)
            .bind(user.extension)
            .bind(user.held_until)
            .execute(conn)
            .await?
            .rows_affected()
        });
        if updated != 1 {
            return Err(StoreError::Conflict);
        }
        self.write_emails(user, true).await
    }

    /// Deletes a user and its memberships; returns false if there was no such user.
    pub async fn delete_user(&mut self, account_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let deleted = on_conn!(self, |conn| {
            sqlx::query("DELETE FROM group_members WHERE account_id = $1 AND member_id = $2")
                .bind(account_id)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            sqlx::query("DELETE FROM users WHERE account_id = $1 AND id = $2")
                .bind(account_id)
                .bind(id)
                .execute(conn)
                .await?
                .rows_affected()
        });
        Ok(deleted == 1)
    }

    /// The groups each of `user_ids` belongs to, directly or through nested groups.
    pub async fn groups_of_users(
        &mut self,
        account_id: Uuid,
        user_ids: &[Uuid],
    ) -> Result<Vec<UserGroupRef>, StoreError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> =
            (0..user_ids.len()).map(|i| format!("${}", i + 2)).collect();
        // Direct memberships, then the groups those groups belong to, transitively (RFC 7643
        // §4.1.2: "direct" / "indirect"). Nesting depth is bounded on write; the recursion bound
        // here only guards against a corrupted graph.
        let sql = sqlx::AssertSqlSafe(format!(
            "WITH RECURSIVE memberships(user_id, group_id, direct, depth) AS (
                 SELECT m.member_id, m.group_id, 1, 0 FROM group_members m
                 WHERE m.account_id = $1 AND m.member_id IN ({})
                 UNION
                 SELECT p.user_id, m.group_id, 0, p.depth + 1 FROM group_members m
                 JOIN memberships p ON m.member_id = p.group_id
                 WHERE m.account_id = $1 AND p.depth < 32
             )
             SELECT p.user_id, g.id AS group_id, g.display_name, CAST(MAX(p.direct) AS BIGINT) AS direct
             FROM memberships p JOIN groups g ON g.id = p.group_id
             GROUP BY p.user_id, g.id, g.display_name, g.display_name_lower
             ORDER BY g.display_name_lower, g.id",
            placeholders.join(", ")
        ));
        Ok(on_conn!(self, |conn| {
            let mut query = sqlx::query_as::<_, UserGroupRef>(sql).bind(account_id);
            for id in user_ids {
                query = query.bind(*id);
            }
            query.fetch_all(conn).await?
        }))
    }
}

/// A list query fails either on the request (a filter or sort the client got wrong) or in the
/// database.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Request(#[from] ScimError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

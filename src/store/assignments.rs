//! What a user holds: licence assignments (and the seats behind them), the extension, the
//! voicemail box, and the soft-deleted users waiting to be restored or purged.

use serde_json::{Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use super::{StoreError, Tx, UserRecord, on_conn};

/// A user's licence for one product: held (`assigned`, a seat taken) or waiting for a seat
/// (`pendingSeat`, only ever for licences inherited from groups).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LicenceRow {
    pub user_id: Uuid,
    pub product_id: Uuid,
    pub code: String,
    pub state: String,
    /// `"direct"`, `"bundle"` or a group id.
    pub sources: Json<Vec<String>>,
    pub features: Json<Vec<String>>,
    pub since: i64,
}

/// How many direct members of each kind a group has.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct DirectMembers {
    pub users: i64,
    pub groups: i64,
}

/// A soft-deleted user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeletedUser {
    pub id: Uuid,
    pub account_id: Uuid,
    pub user_name: String,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub active: bool,
    pub doc: Json<Map<String, Value>>,
    pub account_role: String,
    pub extension: Option<i64>,
    pub created_at: i64,
    pub deleted_at: i64,
    pub purge_after: i64,
}

/// The groups at and below `$2` in account `$1` (nesting is bounded on write; the depth bound
/// only guards against a corrupted graph), and the user members of those groups.
const USERS_BELOW_GROUP: &str = "WITH RECURSIVE below(id, depth) AS (
     SELECT id, 0 FROM groups WHERE account_id = $1 AND id = $2
     UNION
     SELECT m.member_id, b.depth + 1 FROM below b CROSS JOIN group_members m
     WHERE m.account_id = $1 AND m.group_id = b.id AND m.member_type = 'Group' AND b.depth < 32
 )";
const USERS_BELOW_GROUP_FROM: &str = "FROM below b CROSS JOIN group_members m
     WHERE m.account_id = $1 AND m.group_id = b.id AND m.member_type = 'User'";

const DELETED_COLUMNS: &str = "id, account_id, user_name, external_id, display_name, active, doc, account_role, extension, created_at, deleted_at, purge_after";

impl Tx {
    /// Serialises, per account, the decisions that read before they write across many rows:
    /// picking the next free extension, protecting the last super-admin, changing group nesting.
    /// A row lock on the account on PostgreSQL; SQLite's writer lock already does it.
    pub async fn lock_account(&mut self, account_id: Uuid) -> Result<(), StoreError> {
        self.lock_nesting(account_id).await
    }

    // ---- licences

    pub async fn licences_of_users(
        &mut self,
        account_id: Uuid,
        user_ids: &[Uuid],
    ) -> Result<Vec<LicenceRow>, StoreError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> =
            (0..user_ids.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT l.user_id, l.product_id, p.code, l.state, l.sources, l.features, l.since
             FROM user_licences l JOIN products p ON p.id = l.product_id
             WHERE l.account_id = $1 AND l.user_id IN ({}) ORDER BY p.code",
            placeholders.join(", ")
        ));
        Ok(on_conn!(self, |conn| {
            let mut query = sqlx::query_as::<_, LicenceRow>(sql).bind(account_id);
            for id in user_ids {
                query = query.bind(*id);
            }
            query.fetch_all(conn).await?
        }))
    }

    pub async fn put_licence(
        &mut self,
        account_id: Uuid,
        row: &LicenceRow,
    ) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query(
                "INSERT INTO user_licences (account_id, user_id, product_id, state, sources, features, since)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (user_id, product_id) DO UPDATE SET state = excluded.state, sources = excluded.sources,
                     features = excluded.features, since = excluded.since",
            )
            .bind(account_id)
            .bind(row.user_id)
            .bind(row.product_id)
            .bind(&row.state)
            .bind(&row.sources)
            .bind(&row.features)
            .bind(row.since)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    pub async fn delete_licence(
        &mut self,
        user_id: Uuid,
        product_id: Uuid,
    ) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query("DELETE FROM user_licences WHERE user_id = $1 AND product_id = $2")
                .bind(user_id)
                .bind(product_id)
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// The user who has waited longest for a seat of the product.
    pub async fn oldest_pending_licence(
        &mut self,
        product_id: Uuid,
    ) -> Result<Option<Uuid>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_scalar::<_, Uuid>(
                "SELECT user_id FROM user_licences WHERE product_id = $1 AND state = 'pendingSeat'
                 ORDER BY since, user_id LIMIT 1",
            )
            .bind(product_id)
            .fetch_optional(conn)
            .await?
        }))
    }

    pub async fn set_licence_assigned(
        &mut self,
        user_id: Uuid,
        product_id: Uuid,
    ) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query(
                "UPDATE user_licences SET state = 'assigned' WHERE user_id = $1 AND product_id = $2",
            )
            .bind(user_id)
            .bind(product_id)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// Members of the group waiting for a seat of a licence the group grants.
    pub async fn pending_licences_from_group(
        &mut self,
        account_id: Uuid,
        group_id: Uuid,
    ) -> Result<i64, StoreError> {
        let needle = format!("%\"{group_id}\"%");
        Ok(on_conn!(self, |conn| {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM user_licences WHERE account_id = $1 AND state = 'pendingSeat'
                 AND CAST(sources AS TEXT) LIKE $2",
            )
            .bind(account_id)
            .bind(&needle)
            .fetch_one(conn)
            .await?
        }))
    }

    // ---- extensions and voicemail

    /// The lowest number of `[first, last]` no user of the account holds.
    /// The highest extension of the account within `first..=last` (an index lookup).
    pub async fn highest_extension(
        &mut self,
        account_id: Uuid,
        first: i64,
        last: i64,
    ) -> Result<Option<i64>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MAX(extension) FROM users WHERE account_id = $1 AND extension >= $2 AND extension <= $3",
            )
            .bind(account_id)
            .bind(first)
            .bind(last)
            .fetch_one(conn)
            .await?
        }))
    }

    /// The extensions of the account taken in `from..to` (an index range scan).
    pub async fn extensions_taken(
        &mut self,
        account_id: Uuid,
        from: i64,
        to: i64,
    ) -> Result<Vec<i64>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_scalar::<_, i64>(
                "SELECT extension FROM users WHERE account_id = $1 AND extension >= $2 AND extension < $3 ORDER BY extension",
            )
            .bind(account_id)
            .bind(from)
            .bind(to)
            .fetch_all(conn)
            .await?
        }))
    }

    pub async fn extension_holder(
        &mut self,
        account_id: Uuid,
        extension: i64,
    ) -> Result<Option<Uuid>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_scalar::<_, Uuid>(
                "SELECT id FROM users WHERE account_id = $1 AND extension = $2",
            )
            .bind(account_id)
            .bind(extension)
            .fetch_optional(conn)
            .await?
        }))
    }

    pub async fn ensure_voicemail_box(
        &mut self,
        account_id: Uuid,
        user_id: Uuid,
        now: i64,
    ) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query(
                "INSERT INTO voicemail_boxes (user_id, account_id, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id) DO NOTHING",
            )
            .bind(user_id)
            .bind(account_id)
            .bind(now)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    pub async fn voicemail_box_created(
        &mut self,
        account_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<i64>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_scalar::<_, i64>(
                "SELECT created_at FROM voicemail_boxes WHERE account_id = $1 AND user_id = $2",
            )
            .bind(account_id)
            .bind(user_id)
            .fetch_optional(conn)
            .await?
        }))
    }

    /// Inactive users whose quarantine hold on extension and number has run out.
    pub async fn expired_holds(
        &mut self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, (Uuid, Uuid)>(
                "SELECT account_id, id FROM users WHERE held_until IS NOT NULL AND held_until <= $1 AND active = $2
                 ORDER BY held_until LIMIT $3",
            )
            .bind(now)
            .bind(false)
            .bind(limit)
            .fetch_all(conn)
            .await?
        }))
    }

    // ---- soft deletion

    /// Moves a user out of `users` into `deleted_users`.
    pub async fn archive_user(
        &mut self,
        user: &UserRecord,
        deleted_at: i64,
        purge_after: i64,
    ) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query(
                "INSERT INTO deleted_users (id, account_id, user_name, external_id, display_name, active, doc, account_role,
                                            extension, created_at, deleted_at, purge_after)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(user.id)
            .bind(user.account_id)
            .bind(&user.user_name)
            .bind(&user.external_id)
            .bind(&user.display_name)
            .bind(user.active)
            .bind(&user.doc)
            .bind(&user.account_role)
            .bind(user.extension)
            .bind(user.created_at)
            .bind(deleted_at)
            .bind(purge_after)
            .execute(conn)
            .await?;
        });
        self.delete_user(user.account_id, user.id).await?;
        Ok(())
    }

    pub async fn deleted_users(
        &mut self,
        account_id: Uuid,
        now: i64,
    ) -> Result<Vec<DeletedUser>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {DELETED_COLUMNS} FROM deleted_users WHERE account_id = $1 AND purge_after > $2 ORDER BY deleted_at DESC"
        ));
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, DeletedUser>(sql)
                .bind(account_id)
                .bind(now)
                .fetch_all(conn)
                .await?
        }))
    }

    /// Removes and returns a soft-deleted user still within its restore window.
    pub async fn take_deleted_user(
        &mut self,
        account_id: Uuid,
        id: Uuid,
        now: i64,
    ) -> Result<Option<DeletedUser>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "DELETE FROM deleted_users WHERE account_id = $1 AND id = $2 AND purge_after > $3 RETURNING {DELETED_COLUMNS}"
        ));
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, DeletedUser>(sql)
                .bind(account_id)
                .bind(id)
                .bind(now)
                .fetch_optional(conn)
                .await?
        }))
    }

    /// Purges soft-deleted users past their restore window, with their voicemail boxes; returns
    /// how many.
    pub async fn purge_deleted_users(&mut self, now: i64) -> Result<u64, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query(
                "DELETE FROM voicemail_boxes WHERE user_id IN (SELECT id FROM deleted_users WHERE purge_after <= $1)",
            )
            .bind(now)
            .execute(&mut *conn)
            .await?;
            sqlx::query("DELETE FROM deleted_users WHERE purge_after <= $1")
                .bind(now)
                .execute(conn)
                .await?
                .rows_affected()
        }))
    }

    // ---- groups, as sources of inherited licences and templates

    /// The users below a group: its direct user members and those of every nested group.
    pub async fn users_below_group(
        &mut self,
        account_id: Uuid,
        group_id: Uuid,
    ) -> Result<Vec<Uuid>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "{USERS_BELOW_GROUP} SELECT DISTINCT m.member_id {USERS_BELOW_GROUP_FROM}"
        ));
        Ok(on_conn!(self, |conn| {
            sqlx::query_scalar::<_, Uuid>(sql)
                .bind(account_id)
                .bind(group_id)
                .fetch_all(conn)
                .await?
        }))
    }

    /// How many users are below a group (direct and nested members, each once).
    pub async fn count_users_below_group(
        &mut self,
        account_id: Uuid,
        group_id: Uuid,
    ) -> Result<i64, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "{USERS_BELOW_GROUP} SELECT COUNT(DISTINCT m.member_id) {USERS_BELOW_GROUP_FROM}"
        ));
        Ok(on_conn!(self, |conn| {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(account_id)
                .bind(group_id)
                .fetch_one(conn)
                .await?
        }))
    }

    /// How many users (or groups) the account has: the count the triggers of migration 0004
    /// keep, not a scan.
    pub async fn resource_count(
        &mut self,
        account_id: Uuid,
        resource_type: &str,
    ) -> Result<i64, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_scalar::<_, i64>(
                "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM resource_counts WHERE account_id = $1 AND resource_type = $2",
            )
            .bind(account_id)
            .bind(resource_type)
            .fetch_one(conn)
            .await?
        }))
    }

    /// The direct members of a group, users and groups apart, as the triggers of migration 0004
    /// count them.
    pub async fn direct_member_counts(
        &mut self,
        group_id: Uuid,
    ) -> Result<DirectMembers, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, DirectMembers>(
                "SELECT CAST(COALESCE(SUM(users), 0) AS BIGINT) AS users, CAST(COALESCE(SUM(groups), 0) AS BIGINT) AS groups
                 FROM group_member_counts WHERE group_id = $1",
            )
            .bind(group_id)
            .fetch_one(conn)
            .await?
        }))
    }
}

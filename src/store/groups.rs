//! Groups and their membership. Members live in `group_members`, one row per member, indexed
//! both ways: adding one member to a large group is one insert, and a user's `groups` is one
//! indexed join.

use serde_json::{Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use super::filter_sql::{Compiler, SortKey, Table};
use super::list::{KeyValue, Listed};
use super::users::ListError;
use super::{StoreError, Tx, bind_all, now_micros, on_conn};
use crate::scim::filter::Filter;
use crate::scim::schema::{Registry, ResourceType};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GroupRecord {
    pub id: Uuid,
    pub account_id: Uuid,
    pub display_name: String,
    pub external_id: Option<String>,
    pub doc: Json<Map<String, Value>>,
    pub created_at: i64,
    pub last_modified: i64,
    pub version: i64,
}

/// A direct member of a group.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRef {
    pub group_id: Uuid,
    pub member_id: Uuid,
    pub member_type: String,
}

impl Listed for GroupRecord {
    const TABLE: Table = Table::Groups;
    const RESOURCE_TYPE: &'static str = "Group";
    const FROM: &'static str = "groups";
    const COLUMNS: &'static str = COLUMNS;

    fn id(&self) -> Uuid {
        self.id
    }

    fn key(&self, key: SortKey) -> KeyValue {
        match key {
            SortKey::Created => KeyValue::Int(self.created_at),
            SortKey::LastModified => KeyValue::Int(self.last_modified),
            SortKey::UserName | SortKey::GroupDisplayName => {
                KeyValue::Text(self.display_name.to_lowercase())
            }
            SortKey::Id => KeyValue::Text(self.id.to_string()),
        }
    }
}

const COLUMNS: &str = "r.id, r.account_id, r.display_name, r.external_id, r.doc, r.created_at, r.last_modified, r.version";

fn placeholders(from: usize, n: usize) -> String {
    (0..n)
        .map(|i| format!("${}", from + i))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Tx {
    pub async fn insert_group(&mut self, group: &GroupRecord) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query(
                "INSERT INTO groups (id, account_id, display_name, display_name_lower, external_id, doc, created_at, last_modified, version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(group.id)
            .bind(group.account_id)
            .bind(&group.display_name)
            .bind(group.display_name.to_lowercase())
            .bind(&group.external_id)
            .bind(&group.doc)
            .bind(group.created_at)
            .bind(group.last_modified)
            .bind(group.version)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    pub async fn group(
        &mut self,
        account_id: Uuid,
        id: Uuid,
        lock: bool,
    ) -> Result<Option<GroupRecord>, StoreError> {
        let lock = if lock { self.lock_clause() } else { "" };
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM groups r WHERE r.account_id = $1 AND r.id = $2{lock}"
        ));
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, GroupRecord>(sql)
                .bind(account_id)
                .bind(id)
                .fetch_optional(conn)
                .await?
        }))
    }

    /// The groups of the account among `ids`, in one statement.
    pub async fn groups_by_ids(
        &mut self,
        account_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<GroupRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM groups r WHERE r.account_id = $1 AND r.id IN ({})",
            placeholders.join(", ")
        ));
        Ok(on_conn!(self, |conn| {
            let mut query = sqlx::query_as::<_, GroupRecord>(sql).bind(account_id);
            for id in ids {
                query = query.bind(*id);
            }
            query.fetch_all(conn).await?
        }))
    }

    pub async fn update_group(&mut self, group: &GroupRecord) -> Result<(), StoreError> {
        let updated = on_conn!(self, |conn| {
            sqlx::query(
                "UPDATE groups SET display_name = $1, display_name_lower = $2, external_id = $3, doc = $4, last_modified = $5, version = $6
                 WHERE account_id = $7 AND id = $8",
            )
            .bind(&group.display_name)
            .bind(group.display_name.to_lowercase())
            .bind(&group.external_id)
            .bind(&group.doc)
            .bind(group.last_modified)
            .bind(group.version)
            .bind(group.account_id)
            .bind(group.id)
            .execute(conn)
            .await?
            .rows_affected()
        });
        if updated == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    pub async fn delete_group(&mut self, account_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let deleted = on_conn!(self, |conn| {
            sqlx::query("DELETE FROM group_members WHERE account_id = $1 AND (group_id = $2 OR member_id = $2)")
                .bind(account_id)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            sqlx::query("DELETE FROM groups WHERE account_id = $1 AND id = $2")
                .bind(account_id)
                .bind(id)
                .execute(conn)
                .await?
                .rows_affected()
        });
        Ok(deleted == 1)
    }

    /// The direct members of each of `group_ids`.
    pub async fn members_of_groups(
        &mut self,
        account_id: Uuid,
        group_ids: &[Uuid],
    ) -> Result<Vec<MemberRef>, StoreError> {
        if group_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT m.group_id, m.member_id, m.member_type FROM group_members m
             WHERE m.account_id = $1 AND m.group_id IN ({}) ORDER BY m.added_at, m.member_id",
            placeholders(2, group_ids.len())
        ));
        Ok(on_conn!(self, |conn| {
            let mut query = sqlx::query_as::<_, MemberRef>(sql).bind(account_id);
            for id in group_ids {
                query = query.bind(*id);
            }
            query.fetch_all(conn).await?
        }))
    }

    /// The member ids of one group (for a full replacement, which must diff against them).
    pub async fn member_ids(
        &mut self,
        account_id: Uuid,
        group_id: Uuid,
    ) -> Result<Vec<Uuid>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_scalar::<_, Uuid>(
                "SELECT member_id FROM group_members WHERE account_id = $1 AND group_id = $2",
            )
            .bind(account_id)
            .bind(group_id)
            .fetch_all(conn)
            .await?
        }))
    }

    /// Which of `ids` are groups of the account. On PostgreSQL the rows found are key-share
    /// locked, so that a concurrent delete waits for (or is waited for by) the membership
    /// about to reference them.
    pub async fn existing_group_ids(
        &mut self,
        account_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<Uuid>, StoreError> {
        self.existing_ids("groups", account_id, ids).await
    }

    /// The groups nested (transitively) inside `group_id`, each with its distance below it.
    pub async fn descendant_groups(
        &mut self,
        account_id: Uuid,
        group_id: Uuid,
    ) -> Result<Vec<(Uuid, i64)>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, (Uuid, i64)>(
                "WITH RECURSIVE below(id, depth) AS (
                     SELECT member_id, 1 FROM group_members WHERE account_id = $1 AND group_id = $2 AND member_type = 'Group'
                     UNION
                     SELECT m.member_id, b.depth + 1 FROM below b CROSS JOIN group_members m
                     WHERE m.account_id = $1 AND m.group_id = b.id AND m.member_type = 'Group' AND b.depth < 32
                 )
                 SELECT id, CAST(MAX(depth) AS BIGINT) FROM below GROUP BY id",
            )
            .bind(account_id)
            .bind(group_id)
            .fetch_all(conn)
            .await?
        }))
    }

    /// The groups `group_id` is nested in (transitively), each with its distance above it.
    pub async fn ancestor_groups(
        &mut self,
        account_id: Uuid,
        group_id: Uuid,
    ) -> Result<Vec<(Uuid, i64)>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, (Uuid, i64)>(
                "WITH RECURSIVE above(id, depth) AS (
                     SELECT group_id, 1 FROM group_members WHERE account_id = $1 AND member_id = $2
                     UNION
                     SELECT m.group_id, a.depth + 1 FROM above a CROSS JOIN group_members m
                     WHERE m.account_id = $1 AND m.member_id = a.id AND a.depth < 32
                 )
                 SELECT id, CAST(MAX(depth) AS BIGINT) FROM above GROUP BY id",
            )
            .bind(account_id)
            .bind(group_id)
            .fetch_all(conn)
            .await?
        }))
    }

    /// Serialises changes to the account's group nesting (row lock on the account), so that two
    /// concurrent requests cannot each add half of a cycle. SQLite's writer lock already does.
    pub async fn lock_nesting(&mut self, account_id: Uuid) -> Result<(), StoreError> {
        if let Tx::Postgres(tx) = self {
            sqlx::query("SELECT id FROM accounts WHERE id = $1 FOR NO KEY UPDATE")
                .bind(account_id)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Which of `ids` are users of the account, key-share locked as in
    /// [`Tx::existing_group_ids`].
    pub async fn existing_user_ids(
        &mut self,
        account_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<Uuid>, StoreError> {
        self.existing_ids("users", account_id, ids).await
    }

    /// Which of `ids` are rows of `table` (`users` or `groups`) in the account, key-share locked.
    async fn existing_ids(
        &mut self,
        table: &'static str,
        account_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<Uuid>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        // Chunked to stay far below either driver's bound-parameter limit.
        for chunk in ids.chunks(500) {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT id FROM {table} WHERE account_id = $1 AND id IN ({}){}",
                placeholders(2, chunk.len()),
                self.key_share_clause()
            ));
            let rows = on_conn!(self, |conn| {
                let mut query = sqlx::query_scalar::<_, Uuid>(sql).bind(account_id);
                for id in chunk {
                    query = query.bind(*id);
                }
                query.fetch_all(conn).await?
            });
            found.extend(rows);
        }
        Ok(found)
    }

    /// Adds members (ignoring those already present); returns the ids actually added.
    pub async fn add_members(
        &mut self,
        account_id: Uuid,
        group_id: Uuid,
        members: &[(Uuid, &str)],
    ) -> Result<Vec<Uuid>, StoreError> {
        let now = now_micros();
        let mut added = Vec::new();
        for chunk in members.chunks(200) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("($1, $2, $3, ${}, ${})", 4 + i * 2, 5 + i * 2))
                .collect();
            let sql = sqlx::AssertSqlSafe(format!(
                "INSERT INTO group_members (account_id, group_id, added_at, member_id, member_type) VALUES {}
                 ON CONFLICT (group_id, member_id) DO NOTHING RETURNING member_id",
                values.join(", ")
            ));
            let rows = on_conn!(self, |conn| {
                let mut query = sqlx::query_scalar::<_, Uuid>(sql)
                    .bind(account_id)
                    .bind(group_id)
                    .bind(now);
                for (id, kind) in chunk {
                    query = query.bind(*id).bind(kind.to_string());
                }
                query.fetch_all(conn).await?
            });
            added.extend(rows);
        }
        Ok(added)
    }

    /// Removes the listed members; returns the ids actually removed.
    pub async fn remove_members(
        &mut self,
        account_id: Uuid,
        group_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<Uuid>, StoreError> {
        let mut removed = Vec::new();
        for chunk in ids.chunks(500) {
            let sql = sqlx::AssertSqlSafe(format!(
                "DELETE FROM group_members WHERE account_id = $1 AND group_id = $2 AND member_id IN ({}) RETURNING member_id",
                placeholders(3, chunk.len())
            ));
            let rows = on_conn!(self, |conn| {
                let mut query = sqlx::query_scalar::<_, Uuid>(sql)
                    .bind(account_id)
                    .bind(group_id);
                for id in chunk {
                    query = query.bind(*id);
                }
                query.fetch_all(conn).await?
            });
            removed.extend(rows);
        }
        Ok(removed)
    }

    /// Removes the members matching a `members[…]` value filter; returns their ids.
    pub async fn remove_members_matching(
        &mut self,
        registry: &Registry,
        rt: &ResourceType,
        account_id: Uuid,
        group_id: Uuid,
        filter: &Filter,
    ) -> Result<Vec<Uuid>, ListError> {
        let mut compiler = Compiler::new(self.dialect(), registry, rt, Table::Groups, 2);
        let condition = compiler.member_filter(filter, "group_members")?;
        let binds = compiler.binds;
        let sql = sqlx::AssertSqlSafe(format!(
            "DELETE FROM group_members WHERE account_id = $1 AND group_id = $2 AND {condition} RETURNING member_id"
        ));
        Ok(on_conn!(self, |conn| {
            bind_all!(
                sqlx::query_scalar::<_, Uuid>(sql)
                    .bind(account_id)
                    .bind(group_id),
                &binds
            )
            .fetch_all(conn)
            .await
            .map_err(StoreError::from)?
        }))
    }

    /// Removes every member; returns their ids.
    pub async fn remove_all_members(
        &mut self,
        account_id: Uuid,
        group_id: Uuid,
    ) -> Result<Vec<Uuid>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_scalar::<_, Uuid>("DELETE FROM group_members WHERE account_id = $1 AND group_id = $2 RETURNING member_id")
                .bind(account_id)
                .bind(group_id)
                .fetch_all(conn)
                .await?
        }))
    }
}

//! List queries shared by users and groups: the filter and order compiled once into a count and
//! a page query, paged by offset (`startIndex`) or by key (a cursor: the sort key and id of the
//! last row seen), and their query plans for diagnostics and tests.

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::filter_sql::{Bind, Compiler, Ordering, SortKey, SortSpec, Table};
use super::users::ListError;
use super::{Dialect, StoreError, Tx, bind_all, on_conn};
use crate::scim::filter::Filter;
use crate::scim::schema::{Registry, ResourceType};

/// The sort-key value of a row, as a cursor carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeyValue {
    Int(i64),
    Text(String),
}

/// Where the next page continues: after the row with this sort key and id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorKey {
    pub key: KeyValue,
    pub id: Uuid,
}

#[derive(Debug, Clone)]
pub enum PageStart {
    /// Skip this many rows (index paging, RFC 7644 §3.4.2.4).
    Offset(u64),
    /// The first page of a cursor-paged query (RFC 9865).
    First,
    /// Continue after this row (cursor paging, RFC 9865).
    After(CursorKey),
}

#[derive(Debug, Clone)]
pub struct ListRequest<'a> {
    pub filter: Option<&'a Filter>,
    pub sort: Option<&'a SortSpec>,
    pub start: PageStart,
    pub limit: u32,
    /// The total, when the caller already knows it (a cursor carries it): the count is skipped.
    pub known_total: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct ListPage<R> {
    pub total: i64,
    pub rows: Vec<R>,
    /// Set when more rows follow and the order can be continued by key.
    pub next: Option<CursorKey>,
}

/// A record type that can be listed.
pub trait Listed:
    for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin + 'static
{
    const TABLE: Table;
    /// The resource type, as `resource_counts` keeps the account's count of it.
    const RESOURCE_TYPE: &'static str;
    const FROM: &'static str;
    const COLUMNS: &'static str;
    /// What a page selects: the row's columns, and whatever else the type reads with them.
    fn select_list(_dialect: Dialect) -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed(Self::COLUMNS)
    }
    fn id(&self) -> Uuid;
    fn key(&self, key: SortKey) -> KeyValue;
}

struct Plan {
    count_sql: String,
    page_sql: String,
    binds: Vec<Bind>,
    ordering: Ordering,
}

fn plan<R: Listed>(
    dialect: Dialect,
    registry: &Registry,
    rt: &ResourceType,
    request: &ListRequest<'_>,
) -> Result<Plan, ListError> {
    let mut compiler = Compiler::new(dialect, registry, rt, R::TABLE, 1);
    let condition = match request.filter {
        Some(f) => compiler.filter(f)?,
        None => "1 = 1".to_string(),
    };
    let ordering = compiler.order_by(request.sort)?;
    let mut binds = compiler.binds;
    let count_sql = format!(
        "SELECT COUNT(*) FROM {} r WHERE r.account_id = $1 AND {condition}",
        R::FROM
    );
    if ordering.key.is_none() && !matches!(request.start, PageStart::Offset(_)) {
        return Err(ListError::Request(
            crate::scim::error::ScimError::invalid_value(
                "this sortBy cannot be paged by cursor; page it with startIndex, or sort by id, userName (groups: displayName), meta.created or meta.lastModified",
            ),
        ));
    }
    let (after, offset) = match &request.start {
        PageStart::Offset(offset) => (String::new(), *offset),
        PageStart::First => (String::new(), 0),
        PageStart::After(cursor) => {
            let Some(key) = ordering.key else {
                return Err(ListError::Request(
                    crate::scim::error::ScimError::invalid_value(
                        "this sortBy cannot be paged by cursor",
                    ),
                ));
            };
            let op = if ordering.descending { "<" } else { ">" };
            let clause = if key == SortKey::Id {
                binds.push(Bind::Uuid(cursor.id));
                format!(" AND r.id {op} ${}", binds.len() + 1)
            } else {
                binds.push(match &cursor.key {
                    KeyValue::Int(i) => Bind::Int(*i),
                    KeyValue::Text(t) => Bind::Text(t.clone()),
                });
                binds.push(Bind::Uuid(cursor.id));
                format!(
                    " AND ({}, r.id) {op} (${}, ${})",
                    key.column(),
                    binds.len(),
                    binds.len() + 1
                )
            };
            (clause, 0)
        }
    };
    // One row more than the page, to know whether another page follows.
    let fetch = u64::from(request.limit) + 1;
    let page_sql = if offset == 0 {
        format!(
            "SELECT {} FROM {} r WHERE r.account_id = $1 AND {condition}{after} ORDER BY {} LIMIT {fetch}",
            R::select_list(dialect),
            R::FROM,
            ordering.sql
        )
    } else {
        // Skipping rows costs what each skipped row costs: skip ids on the index of the order
        // (covering, for the default order), then read the page's rows alone.
        format!(
            "SELECT {} FROM {from} r JOIN (
                 SELECT r.id AS page_id FROM {from} r WHERE r.account_id = $1 AND {condition}
                 ORDER BY {order} LIMIT {fetch} OFFSET {offset}
             ) page ON r.id = page.page_id
             WHERE r.account_id = $1 ORDER BY {order}",
            R::select_list(dialect),
            from = R::FROM,
            order = ordering.sql
        )
    };
    Ok(Plan {
        count_sql,
        page_sql,
        binds,
        ordering,
    })
}

impl Tx {
    /// One page of `R` in the account, the total number of matches, and the cursor key of the
    /// next page.
    #[tracing::instrument(name = "store.list", level = "debug", skip_all, fields(account = %account_id, resource = R::RESOURCE_TYPE))]
    pub async fn list<R: Listed>(
        &mut self,
        registry: &Registry,
        rt: &ResourceType,
        account_id: Uuid,
        request: &ListRequest<'_>,
    ) -> Result<ListPage<R>, ListError> {
        let plan = plan::<R>(self.dialect(), registry, rt, request)?;
        let mut rows: Vec<R> = Vec::new();
        let mut more = false;
        if request.limit > 0 {
            let page_sql = sqlx::AssertSqlSafe(plan.page_sql);
            rows = on_conn!(self, |conn| {
                bind_all!(
                    sqlx::query_as::<_, R>(page_sql).bind(account_id),
                    &plan.binds
                )
                .fetch_all(conn)
                .await
                .map_err(StoreError::from)?
            });
            more = rows.len() > request.limit as usize;
            rows.truncate(request.limit as usize);
        }
        // The total is counted only when the page cannot tell it: a first page (or an offset
        // page with rows) that holds every remaining match knows it already — the common case
        // of a lookup by userName or externalId, which then costs one statement.
        let skipped = match request.start {
            PageStart::Offset(offset) => Some(offset),
            PageStart::First => Some(0),
            PageStart::After(_) => None,
        };
        let total = match (request.known_total, skipped) {
            (Some(total), _) => total,
            (None, Some(skipped))
                if request.limit > 0 && !more && (skipped == 0 || !rows.is_empty()) =>
            {
                i64::try_from(skipped).unwrap_or(i64::MAX) + rows.len() as i64
            }
            // Everything of the account: the count kept by the triggers of migration 0004.
            _ if request.filter.is_none() => {
                self.resource_count(account_id, R::RESOURCE_TYPE).await?
            }
            _ => {
                // The count must not see the cursor's condition: it counts every match.
                let key_binds = match (&request.start, plan.ordering.key) {
                    (PageStart::After(_), Some(SortKey::Id)) => 1,
                    (PageStart::After(_), _) => 2,
                    _ => 0,
                };
                let count_binds = &plan.binds[..plan.binds.len() - key_binds];
                let count_sql = sqlx::AssertSqlSafe(plan.count_sql);
                on_conn!(self, |conn| {
                    bind_all!(
                        sqlx::query_scalar::<_, i64>(count_sql).bind(account_id),
                        count_binds
                    )
                    .fetch_one(conn)
                    .await
                    .map_err(StoreError::from)?
                })
            }
        };
        let next = match (more, plan.ordering.key, rows.last()) {
            (true, Some(key), Some(last)) => Some(CursorKey {
                key: last.key(key),
                id: last.id(),
            }),
            _ => None,
        };
        Ok(ListPage { total, rows, next })
    }

    /// The query plan of a list's page query, one line per plan node: `EXPLAIN QUERY PLAN` on
    /// SQLite, `EXPLAIN` on PostgreSQL. For operators and for the tests that prove index use.
    pub async fn explain_list<R: Listed>(
        &mut self,
        registry: &Registry,
        rt: &ResourceType,
        account_id: Uuid,
        request: &ListRequest<'_>,
    ) -> Result<Vec<String>, ListError> {
        let plan = plan::<R>(self.dialect(), registry, rt, request)?;
        let lines = match self {
            Tx::Sqlite(tx) => {
                let sql = sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", plan.page_sql));
                let rows: Vec<(i64, i64, i64, String)> =
                    bind_all!(sqlx::query_as(sql).bind(account_id), &plan.binds)
                        .fetch_all(&mut **tx)
                        .await
                        .map_err(StoreError::from)?;
                rows.into_iter().map(|r| r.3).collect()
            }
            Tx::Postgres(tx) => {
                let sql = sqlx::AssertSqlSafe(format!("EXPLAIN {}", plan.page_sql));
                bind_all!(
                    sqlx::query_scalar::<_, String>(sql).bind(account_id),
                    &plan.binds
                )
                .fetch_all(&mut **tx)
                .await
                .map_err(StoreError::from)?
            }
        };
        Ok(lines)
    }
}

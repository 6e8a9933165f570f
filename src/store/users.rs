//! Users: the row keeps what is filtered, sorted or unique in columns and the rest of the SCIM
//! document as JSON; e-mail values are mirrored into `user_emails` for indexed lookups. The
//! lower-cased `userName` and the e-mail rows are derived here from the record on every write;
//! the other columns come from the provisioning layer, which derives them from the document.

use serde_json::{Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use super::filter_sql::{SortKey, Table};
use super::list::{KeyValue, Listed};
use super::{Device, LicenceRow, StoreError, Tx, on_conn};
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
    const RESOURCE_TYPE: &'static str = "User";
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
    #[tracing::instrument(name = "store.insert_user", level = "debug", skip_all, fields(account = %user.account_id, user = %user.id))]
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
    #[tracing::instrument(name = "store.update_user", level = "debug", skip_all, fields(account = %user.account_id, user = %user.id))]
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
        // here only guards against a corrupted graph. Every recursive step here and in the other
        // walks of the nesting is written `FROM <walk> CROSS JOIN group_members`: SQLite takes a
        // CROSS JOIN's order as given, so each step looks the few rows walked up in the index
        // instead of scanning the memberships of a 100,000-member group for them.
        let sql = sqlx::AssertSqlSafe(format!(
            "WITH RECURSIVE memberships(user_id, group_id, direct, depth) AS (
                 SELECT m.member_id, m.group_id, 1, 0 FROM group_members m
                 WHERE m.account_id = $1 AND m.member_id IN ({})
                 UNION
                 SELECT p.user_id, m.group_id, 0, p.depth + 1 FROM memberships p
                 CROSS JOIN group_members m
                 WHERE m.account_id = $1 AND m.member_id = p.group_id AND p.depth < 32
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

/// A user with everything its SCIM representation shows besides the row: licences, devices and
/// (when the response carries them) groups.
#[derive(Debug, Clone)]
pub struct UserView {
    pub record: UserRecord,
    pub licences: Vec<LicenceRow>,
    pub devices: Vec<Device>,
    pub groups: Option<Vec<UserGroupRef>>,
}

/// A licence as the view's JSON carries it: product id, code, state, sources, features, since.
type LicenceJson = (String, String, String, Vec<String>, Vec<String>, i64);
/// A device as the view's JSON carries it: id, MAC, model, display, created.
type DeviceJson = (String, String, Option<String>, Option<String>, i64);

/// A user row with its licences, devices and groups as JSON, as the view queries read it; see
/// [`UserViewRow::into_view`].
#[derive(sqlx::FromRow)]
pub struct UserViewRow {
    #[sqlx(flatten)]
    record: UserRecord,
    licences: Json<Vec<LicenceJson>>,
    devices: Json<Vec<DeviceJson>>,
    groups: Option<Json<Vec<(String, String, i64)>>>,
}

/// Ids inside JSON: hyphenated text on PostgreSQL, 32 hex digits (`hex(blob)`) on SQLite.
fn json_id(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))
}

/// What a user's representation shows besides the row.
#[derive(sqlx::FromRow)]
struct UserExtrasRow {
    licences: Json<Vec<LicenceJson>>,
    devices: Json<Vec<DeviceJson>>,
    groups: Option<Json<Vec<(String, String, i64)>>>,
}

/// A user's licences, devices and groups, as [`Tx::user_extras`] reads them.
pub struct UserExtras {
    pub licences: Vec<LicenceRow>,
    pub devices: Vec<Device>,
    pub groups: Option<Vec<UserGroupRef>>,
}

impl UserViewRow {
    pub fn into_view(self) -> Result<UserView, StoreError> {
        let extras = UserExtrasRow {
            licences: self.licences,
            devices: self.devices,
            groups: self.groups,
        }
        .into_extras(self.record.id, self.record.account_id)?;
        Ok(UserView {
            record: self.record,
            licences: extras.licences,
            devices: extras.devices,
            groups: extras.groups,
        })
    }
}

impl UserExtrasRow {
    fn into_extras(self, user_id: Uuid, account_id: Uuid) -> Result<UserExtras, StoreError> {
        let licences = self
            .licences
            .0
            .into_iter()
            .map(|(product, code, state, sources, features, since)| {
                Ok(LicenceRow {
                    user_id,
                    product_id: json_id(&product)?,
                    code,
                    state,
                    sources: Json(sources),
                    features: Json(features),
                    since,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let devices = self
            .devices
            .0
            .into_iter()
            .map(|(id, mac, model, display, created_at)| {
                Ok(Device {
                    id: json_id(&id)?,
                    account_id,
                    mac,
                    model,
                    display,
                    user_id: Some(user_id),
                    created_at,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let groups = self
            .groups
            .map(|groups| {
                groups
                    .0
                    .into_iter()
                    .map(|(group, display_name, direct)| {
                        Ok(UserGroupRef {
                            user_id,
                            group_id: json_id(&group)?,
                            display_name,
                            direct,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .transpose()?;
        Ok(UserExtras {
            licences,
            devices,
            groups,
        })
    }
}

/// The row's columns with its licences and devices, and (optionally) its direct and inherited
/// groups, aggregated as JSON arrays; for a page, or with `$2` the one user of a GET.
fn user_view_columns(dialect: super::Dialect, groups_of: Option<&str>) -> String {
    format!("{COLUMNS}, {}", user_extras_columns(dialect, groups_of))
}

/// A user's licences, devices and (optionally) groups as JSON arrays, selected beside a row of
/// `users r`.
fn user_extras_columns(dialect: super::Dialect, groups_of: Option<&str>) -> String {
    use super::Dialect::{Postgres, Sqlite};
    let (agg, empty, id, array, raw) = match dialect {
        Sqlite => (
            "json_group_array",
            "'[]'",
            "lower(hex({}))",
            "json_array",
            "json({})",
        ),
        Postgres => (
            "json_agg",
            "'[]'::json",
            "{}::text",
            "json_build_array",
            "{}",
        ),
    };
    let id = |column: &str| id.replace("{}", column);
    let raw = |column: &str| raw.replace("{}", column);
    let licences = format!(
        "(SELECT COALESCE({agg}({array}({}, p.code, l.state, {}, {}, l.since) ORDER BY p.code), {empty})
          FROM user_licences l JOIN products p ON p.id = l.product_id
          WHERE l.account_id = r.account_id AND l.user_id = r.id)",
        id("l.product_id"),
        raw("l.sources"),
        raw("l.features"),
    );
    let devices = format!(
        "(SELECT COALESCE({agg}({array}({}, d.mac, d.model, d.display, d.created_at) ORDER BY d.mac), {empty})
          FROM devices d WHERE d.account_id = r.account_id AND d.user_id = r.id)",
        id("d.id"),
    );
    // Direct memberships, then the groups those groups belong to, transitively (RFC 7643
    // §4.1.2); as in `groups_of_users`. The user is a bound parameter, not `r.id`: a recursive
    // query cannot be correlated with the outer row.
    let groups = match groups_of {
        Some(user) => format!(
            "(WITH RECURSIVE memberships(group_id, direct, depth) AS (
                 SELECT m.group_id, 1, 0 FROM group_members m WHERE m.account_id = $1 AND m.member_id = {user}
                 UNION
                 SELECT m.group_id, 0, p.depth + 1 FROM memberships p
                 CROSS JOIN group_members m
                 WHERE m.account_id = $1 AND m.member_id = p.group_id AND p.depth < 32
             )
             SELECT COALESCE({agg}({array}({}, g.display_name, x.direct) ORDER BY g.display_name_lower, g.id), {empty})
             FROM (SELECT group_id, CAST(MAX(direct) AS BIGINT) AS direct FROM memberships GROUP BY group_id) x
             JOIN groups g ON g.id = x.group_id)",
            id("g.id"),
        ),
        None => "NULL".to_string(),
    };
    format!("{licences} AS licences, {devices} AS devices, {groups} AS groups")
}

/// One statement for a user's whole representation. `$1` account, `$2` user.
fn user_view_sql(dialect: super::Dialect, with_groups: bool) -> String {
    let columns = user_view_columns(dialect, with_groups.then_some("$2"));
    format!("SELECT {columns} FROM users r WHERE r.account_id = $1 AND r.id = $2")
}

/// A page of users reads their licences and devices with them (groups, when wanted, come from
/// one query for the whole page: [`Tx::groups_of_users`]).
impl Listed for UserViewRow {
    const TABLE: Table = Table::Users;
    const RESOURCE_TYPE: &'static str = "User";
    const FROM: &'static str = "users";
    const COLUMNS: &'static str = COLUMNS;

    fn select_list(dialect: super::Dialect) -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Owned(user_view_columns(dialect, None))
    }

    fn id(&self) -> Uuid {
        self.record.id
    }

    fn key(&self, key: SortKey) -> KeyValue {
        self.record.key(key)
    }
}

impl Tx {
    /// What user `$2`'s representation shows besides its row, in one statement.
    #[tracing::instrument(name = "store.user_extras", level = "debug", skip_all, fields(account = %account_id, user = %id))]
    pub async fn user_extras(
        &mut self,
        account_id: Uuid,
        id: Uuid,
        with_groups: bool,
    ) -> Result<UserExtras, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM users r WHERE r.account_id = $1 AND r.id = $2",
            user_extras_columns(self.dialect(), with_groups.then_some("$2"))
        ));
        let row = on_conn!(self, |conn| {
            sqlx::query_as::<_, UserExtrasRow>(sql)
                .bind(account_id)
                .bind(id)
                .fetch_optional(conn)
                .await?
        });
        match row {
            Some(row) => row.into_extras(id, account_id),
            None => Ok(UserExtras {
                licences: Vec::new(),
                devices: Vec::new(),
                groups: with_groups.then(Vec::new),
            }),
        }
    }
}

impl super::Store {
    /// A user and what its representation shows, in one statement and outside any transaction
    /// (one statement reads one snapshot).
    #[tracing::instrument(name = "store.user_view", level = "debug", skip_all, fields(account = %account_id, user = %id))]
    pub async fn user_view(
        &self,
        account_id: Uuid,
        id: Uuid,
        with_groups: bool,
    ) -> Result<Option<UserView>, StoreError> {
        let sql = sqlx::AssertSqlSafe(user_view_sql(self.dialect(), with_groups));
        let row = match self {
            super::Store::Sqlite(pools) => {
                sqlx::query_as::<_, UserViewRow>(sql)
                    .bind(account_id)
                    .bind(id)
                    .fetch_optional(pools.readers())
                    .await?
            }
            super::Store::Postgres(pool) => {
                sqlx::query_as::<_, UserViewRow>(sql)
                    .bind(account_id)
                    .bind(id)
                    .fetch_optional(pool)
                    .await?
            }
        };
        row.map(UserViewRow::into_view).transpose()
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

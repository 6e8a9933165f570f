//! Compiles the filter AST (and `sortBy`) to SQL for one dialect, with bound parameters only:
//! values never enter the SQL text, and the only identifiers written into it are column names
//! and JSON keys taken from the schema registry, never from the request.
//!
//! Where an attribute has a column (id, userName, externalId, displayName, active, meta dates)
//! the filter uses it — lower-cased shadow columns for case-insensitive ones, so equality is
//! index-backed. E-mail values and group members have their own indexed tables, reached with an
//! uncorrelated `r.id IN (SELECT … WHERE account_id = $1 AND …)` so that both planners drive the
//! lookup from their index. Everything else is read from the JSON document (`json_extract` /
//! `#>>`), and other multi-valued attributes are searched with `EXISTS` over `json_each` /
//! `jsonb_array_elements` (a scan of the account's rows: no IdP filters on them).
//!
//! An attribute the schema does not define is `400 invalidFilter` (the interop profile's choice,
//! rather than RFC 7644's "no match"): a typo should be told, not answered with an empty list.
//! Comparisons follow the schema: `caseExact: false` compares lower-cased values, booleans take
//! only `eq` / `ne`, binary values only `pr`, and `meta` dates compare as instants.

use std::fmt::Write;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::Dialect;
use crate::scim::error::ScimError;
use crate::scim::filter::{AttrPath, CompareOp, CompareValue, Filter};
use crate::scim::schema::{Attribute, AttributeType, Registry, ResourceType};

/// A bound parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Uuid(Uuid),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Users,
    Groups,
}

/// `sortBy` / `sortOrder` (RFC 7644 §3.4.2.3).
#[derive(Debug, Clone, PartialEq)]
pub struct SortSpec {
    pub path: AttrPath,
    pub descending: bool,
}

/// The column a list is ordered by, when a cursor can continue from it (keyset paging).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Created,
    LastModified,
    UserName,
    GroupDisplayName,
    Id,
}

impl SortKey {
    pub fn column(self) -> &'static str {
        match self {
            SortKey::Created => "r.created_at",
            SortKey::LastModified => "r.last_modified",
            SortKey::UserName => "r.user_name_lower",
            SortKey::GroupDisplayName => "r.display_name_lower",
            SortKey::Id => "r.id",
        }
    }
}

/// An `ORDER BY` clause and what a cursor needs to know of it.
#[derive(Debug, Clone)]
pub struct Ordering {
    pub sql: String,
    pub key: Option<SortKey>,
    pub descending: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Uuid,
    /// A shadow column lower-cased by the application: compare with values lower-cased the same
    /// way (Unicode).
    LowerText,
    /// `lower(…)` in SQL: PostgreSQL folds Unicode, SQLite only ASCII, so values are folded to
    /// match each (on SQLite, non-ASCII letters of such attributes compare as sent).
    SqlLower,
    Text,
    Bool,
    JsonBool,
    Number,
    Micros,
}

struct Operand {
    expr: String,
    kind: Kind,
}

/// Where the attribute paths of a value filter point.
enum Scope<'a> {
    Row,
    EmailRow {
        alias: String,
    },
    MemberRow {
        alias: String,
    },
    JsonElement {
        alias: String,
        attribute: &'a Attribute,
    },
}

pub struct Compiler<'a> {
    dialect: Dialect,
    registry: &'a Registry,
    rt: &'a ResourceType,
    table: Table,
    pub binds: Vec<Bind>,
    /// Number of parameters bound before this compiler's (`$1` is usually the account id).
    offset: usize,
    aliases: usize,
}

impl<'a> Compiler<'a> {
    pub fn new(
        dialect: Dialect,
        registry: &'a Registry,
        rt: &'a ResourceType,
        table: Table,
        offset: usize,
    ) -> Self {
        Compiler {
            dialect,
            registry,
            rt,
            table,
            binds: Vec::new(),
            offset,
            aliases: 0,
        }
    }

    fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.offset + self.binds.len())
    }

    fn alias(&mut self, prefix: &str) -> String {
        self.aliases += 1;
        format!("{prefix}{}", self.aliases)
    }

    /// A boolean SQL expression over the row alias `r`.
    pub fn filter(&mut self, filter: &Filter) -> Result<String, ScimError> {
        self.compile(filter, &Scope::Row)
    }

    /// A boolean SQL expression over one row `alias` of `group_members`, for the value filter of
    /// a `members[…]` PATCH path.
    pub fn member_filter(&mut self, filter: &Filter, alias: &str) -> Result<String, ScimError> {
        self.compile(
            filter,
            &Scope::MemberRow {
                alias: alias.to_string(),
            },
        )
    }

    /// The `ORDER BY` of a list, always ending with the id so that pages are stable, and — when
    /// the order is over a non-null column — the key a cursor can continue from.
    pub fn order_by(&mut self, sort: Option<&SortSpec>) -> Result<Ordering, ScimError> {
        let Some(sort) = sort else {
            return Ok(Ordering {
                sql: "r.created_at, r.id".into(),
                key: Some(SortKey::Created),
                descending: false,
            });
        };
        let unknown = || {
            ScimError::invalid_value(format!(
                "sortBy: '{}' is not an attribute of {}",
                sort.path, self.rt.name
            ))
        };
        let resolved = self
            .registry
            .resolve(self.rt, sort.path.urn.as_deref(), &sort.path.attr)
            .map_err(|_| unknown())?;
        let attribute = resolved.attribute;
        let target = match &sort.path.sub_attr {
            Some(sub) => attribute.sub_attribute(sub).ok_or_else(unknown)?,
            None => attribute,
        };
        if attribute.multi_valued || target.kind == AttributeType::Complex {
            return Err(ScimError::invalid_value(format!(
                "sortBy: '{}' is multi-valued or complex; sort by a single-valued attribute",
                sort.path
            )));
        }
        let extension = if resolved.in_extension {
            resolved.schema
        } else {
            None
        };
        let operand = self
            .row_operand(&sort.path, attribute, target, extension)
            .map_err(|e| ScimError::invalid_value(format!("sortBy: {}", e.detail)))?;
        let direction = if sort.descending { "DESC" } else { "ASC" };
        let key = match operand.expr.as_str() {
            "r.created_at" => Some(SortKey::Created),
            "r.last_modified" => Some(SortKey::LastModified),
            "r.user_name_lower" => Some(SortKey::UserName),
            "r.display_name_lower" => Some(SortKey::GroupDisplayName),
            "r.id" => Some(SortKey::Id),
            _ => None,
        };
        if key.is_some() {
            // A non-null column: its index serves the order as it is.
            return Ok(Ordering {
                sql: format!("{} {direction}, r.id {direction}", operand.expr),
                key,
                descending: sort.descending,
            });
        }
        let expr = match (self.dialect, operand.kind) {
            (Dialect::Postgres, Kind::LowerText | Kind::SqlLower | Kind::Text) => {
                format!("{} COLLATE \"C\"", operand.expr)
            }
            _ => operand.expr,
        };
        // Unassigned values sort last in either direction (RFC 7644 §3.4.2.3).
        Ok(Ordering {
            sql: format!("({expr}) IS NULL, {expr} {direction}, r.id {direction}"),
            key: None,
            descending: sort.descending,
        })
    }

    fn compile(&mut self, filter: &Filter, scope: &Scope<'_>) -> Result<String, ScimError> {
        match filter {
            Filter::And(a, b) => Ok(format!(
                "({} AND {})",
                self.compile(a, scope)?,
                self.compile(b, scope)?
            )),
            Filter::Or(a, b) => Ok(format!(
                "({} OR {})",
                self.compile(a, scope)?,
                self.compile(b, scope)?
            )),
            Filter::Not(a) => Ok(format!("(NOT {})", self.compile(a, scope)?)),
            Filter::Present(path) => self.condition(path, None, scope),
            Filter::Compare { path, op, value } => self.condition(path, Some((*op, value)), scope),
            Filter::ValuePath { path, filter } => {
                let Scope::Row = scope else {
                    return Err(ScimError::invalid_filter(
                        "a value filter cannot contain another value filter",
                    ));
                };
                let (attribute, extension) = self.resolve(path)?;
                if !attribute.multi_valued && attribute.kind != AttributeType::Complex {
                    return Err(ScimError::invalid_filter(format!(
                        "'{path}' is not multi-valued or complex: a [filter] does not apply"
                    )));
                }
                self.exists(path, attribute, extension, filter)
            }
        }
    }

    fn resolve(&self, path: &AttrPath) -> Result<(&'a Attribute, Option<&'a str>), ScimError> {
        let resolved = self
            .registry
            .resolve(self.rt, path.urn.as_deref(), &path.attr)
            .map_err(|_| {
                ScimError::invalid_filter(format!(
                    "'{path}' is not an attribute of {} (see /Schemas)",
                    self.rt.name
                ))
            })?;
        if self.table == Table::Users
            && !resolved.in_extension
            && resolved.attribute.name == "groups"
        {
            // Computed from memberships, not stored with the user.
            return Err(ScimError::invalid_filter(
                "users cannot be filtered by 'groups'; filter groups by members instead: /Groups?filter=members.value eq \"<user id>\"",
            ));
        }
        Ok((
            resolved.attribute,
            if resolved.in_extension {
                resolved.schema
            } else {
                None
            },
        ))
    }

    /// `path pr` (no comparison) or `path op value`, at row level or inside a value filter.
    fn condition(
        &mut self,
        path: &AttrPath,
        comparison: Option<(CompareOp, &CompareValue)>,
        scope: &Scope<'_>,
    ) -> Result<String, ScimError> {
        match scope {
            Scope::Row => {}
            Scope::EmailRow { alias } => {
                let alias = alias.clone();
                let operand = match path.attr.to_ascii_lowercase().as_str() {
                    "value" => Operand {
                        expr: format!("{alias}.value_lower"),
                        kind: Kind::LowerText,
                    },
                    "type" => Operand {
                        expr: format!("{alias}.type"),
                        kind: Kind::LowerText,
                    },
                    "primary" => Operand {
                        expr: format!("{alias}.is_primary"),
                        kind: Kind::Bool,
                    },
                    other => {
                        return Err(ScimError::invalid_filter(format!(
                            "'emails.{other}' cannot be filtered on"
                        )));
                    }
                };
                return self.operand_condition(path, operand, comparison);
            }
            Scope::MemberRow { alias } => {
                let alias = alias.clone();
                let operand = match path.attr.to_ascii_lowercase().as_str() {
                    "value" => Operand {
                        expr: format!("{alias}.member_id"),
                        kind: Kind::Uuid,
                    },
                    "type" => Operand {
                        expr: format!("lower({alias}.member_type)"),
                        kind: Kind::SqlLower,
                    },
                    other => {
                        return Err(ScimError::invalid_filter(format!(
                            "'members.{other}' cannot be filtered on"
                        )));
                    }
                };
                return self.operand_condition(path, operand, comparison);
            }
            Scope::JsonElement { alias, attribute } => {
                if path.sub_attr.is_some() || path.urn.is_some() {
                    return Err(ScimError::invalid_filter(format!(
                        "'{path}': inside a value filter, name a sub-attribute of '{}'",
                        attribute.name
                    )));
                }
                let sub = attribute.sub_attribute(&path.attr).ok_or_else(|| {
                    ScimError::invalid_filter(format!(
                        "'{}' is not a sub-attribute of '{}'",
                        path.attr, attribute.name
                    ))
                })?;
                if sub.kind == AttributeType::Binary && comparison.is_some() {
                    return Err(ScimError::invalid_filter(format!(
                        "'{}.{}' is binary: only 'pr' applies to it",
                        attribute.name, sub.name
                    )));
                }
                let base = format!("{alias}.value");
                let operand = self.json_operand(&base, &[sub.name.as_str()], sub);
                return self.operand_condition(path, operand, comparison);
            }
        }

        if path.urn.is_none()
            && path.attr.eq_ignore_ascii_case("schemas")
            && path.sub_attr.is_none()
        {
            return self.schemas_condition(comparison);
        }
        let (attribute, extension) = self.resolve(path)?;
        if attribute.multi_valued {
            // `emails.value eq x`, or `emails co x` (= the values' `value`): some value matches.
            let sub_name = path.sub_attr.clone().unwrap_or_else(|| "value".to_string());
            let inner_path = AttrPath::simple(sub_name);
            let inner = match comparison {
                Some((op, value)) => Filter::Compare {
                    path: inner_path,
                    op,
                    value: value.clone(),
                },
                None => Filter::Present(inner_path),
            };
            return self.exists(path, attribute, extension, &inner);
        }
        let target = match &path.sub_attr {
            Some(sub) => attribute.sub_attribute(sub).ok_or_else(|| {
                ScimError::invalid_filter(format!(
                    "'{path}' is not an attribute of {}",
                    self.rt.name
                ))
            })?,
            None => attribute,
        };
        if target.kind == AttributeType::Complex {
            return match comparison {
                None => {
                    let operand = self.row_operand(path, attribute, target, extension)?;
                    Ok(format!("({} IS NOT NULL)", operand.expr))
                }
                Some(_) => Err(ScimError::invalid_filter(format!(
                    "'{path}' is complex: compare one of its sub-attributes"
                ))),
            };
        }
        if target.kind == AttributeType::Binary && comparison.is_some() {
            return Err(ScimError::invalid_filter(format!(
                "'{path}' is binary: only 'pr' applies to it"
            )));
        }
        let operand = self.row_operand(path, attribute, target, extension)?;
        self.operand_condition(path, operand, comparison)
    }

    fn schemas_condition(
        &mut self,
        comparison: Option<(CompareOp, &CompareValue)>,
    ) -> Result<String, ScimError> {
        let Some((op, value)) = comparison else {
            return Ok("(1 = 1)".into());
        };
        let alias = self.alias("s");
        let (from, element) = match self.dialect {
            Dialect::Sqlite => (
                format!("json_each(r.doc, '$.schemas') AS {alias}"),
                format!("lower({alias}.value)"),
            ),
            Dialect::Postgres => (
                format!("jsonb_array_elements_text(r.doc -> 'schemas') AS {alias}(value)"),
                format!("lower({alias}.value)"),
            ),
        };
        let condition = self.operand_condition(
            &AttrPath::simple("schemas"),
            Operand {
                expr: element,
                kind: Kind::SqlLower,
            },
            Some((op, value)),
        )?;
        Ok(format!("EXISTS (SELECT 1 FROM {from} WHERE {condition})"))
    }

    /// `EXISTS (…)` over the values of a multi-valued attribute.
    fn exists(
        &mut self,
        path: &AttrPath,
        attribute: &'a Attribute,
        extension: Option<&'a str>,
        inner: &Filter,
    ) -> Result<String, ScimError> {
        let top = extension.is_none();
        if top
            && self.table == Table::Users
            && attribute.name == "emails"
            && Self::only_subs(inner, &["value", "type", "primary"])
        {
            let alias = self.alias("e");
            let condition = self.compile(
                inner,
                &Scope::EmailRow {
                    alias: alias.clone(),
                },
            )?;
            // An uncorrelated IN list, so that both planners drive the lookup from the
            // (account_id, value_lower) index rather than probe it once per row.
            return Ok(format!(
                "r.id IN (SELECT {alias}.user_id FROM user_emails {alias} WHERE {alias}.account_id = $1 AND {condition})"
            ));
        }
        if top && self.table == Table::Groups && attribute.name == "members" {
            let alias = self.alias("m");
            let condition = self.compile(
                inner,
                &Scope::MemberRow {
                    alias: alias.clone(),
                },
            )?;
            return Ok(format!(
                "r.id IN (SELECT {alias}.group_id FROM group_members {alias} WHERE {alias}.account_id = $1 AND {condition})"
            ));
        }
        if !attribute.multi_valued {
            // A [filter] on a single complex attribute: it applies to that one value.
            let alias = self.alias("j");
            let keys = Self::keys(extension, &attribute.name);
            let element = match self.dialect {
                Dialect::Sqlite => format!(
                    "(SELECT json_extract(r.doc, '{}') AS value) AS {alias}",
                    Self::sqlite_path(&keys)
                ),
                Dialect::Postgres => format!(
                    "(SELECT r.doc #> '{}' AS value) AS {alias}",
                    Self::pg_path(&keys)
                ),
            };
            let condition = self.compile(
                inner,
                &Scope::JsonElement {
                    alias: alias.clone(),
                    attribute,
                },
            )?;
            return Ok(format!(
                "EXISTS (SELECT 1 FROM {element} WHERE {alias}.value IS NOT NULL AND {condition})"
            ));
        }
        let alias = self.alias("j");
        let keys = Self::keys(extension, &attribute.name);
        let from = match self.dialect {
            Dialect::Sqlite => format!(
                "json_each(r.doc, '{}') AS {alias}",
                Self::sqlite_path(&keys)
            ),
            Dialect::Postgres => format!(
                "jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> '{0}') = 'array' THEN r.doc #> '{0}' ELSE '[]'::jsonb END) AS {alias}(value)",
                Self::pg_path(&keys)
            ),
        };
        let condition = if attribute.kind == AttributeType::Complex {
            self.compile(
                inner,
                &Scope::JsonElement {
                    alias: alias.clone(),
                    attribute,
                },
            )?
        } else {
            // Simple multi-valued: the element itself is the value.
            let operand = self.simple_element_operand(&alias, attribute);
            let (op_value, p) = match inner {
                Filter::Compare { op, value, .. } => (Some((*op, value)), path),
                _ => (None, path),
            };
            self.operand_condition(p, operand, op_value)?
        };
        Ok(format!("EXISTS (SELECT 1 FROM {from} WHERE {condition})"))
    }

    fn simple_element_operand(&self, alias: &str, attribute: &Attribute) -> Operand {
        let expr = match self.dialect {
            Dialect::Sqlite => format!("{alias}.value"),
            Dialect::Postgres => format!("({alias}.value #>> '{{}}')"),
        };
        Self::typed(expr, attribute, self.dialect)
    }

    fn only_subs(filter: &Filter, allowed: &[&str]) -> bool {
        match filter {
            Filter::And(a, b) | Filter::Or(a, b) => {
                Self::only_subs(a, allowed) && Self::only_subs(b, allowed)
            }
            Filter::Not(a) => Self::only_subs(a, allowed),
            Filter::Present(p) | Filter::Compare { path: p, .. } => {
                allowed.iter().any(|a| a.eq_ignore_ascii_case(&p.attr))
            }
            Filter::ValuePath { .. } => false,
        }
    }

    /// The operand of a single-valued attribute (or sub-attribute) of the row.
    fn row_operand(
        &mut self,
        path: &AttrPath,
        attribute: &Attribute,
        target: &Attribute,
        extension: Option<&str>,
    ) -> Result<Operand, ScimError> {
        if extension.is_none() {
            let sub = path.sub_attr.as_deref().map(str::to_ascii_lowercase);
            let column = match (self.table, attribute.name.as_str(), sub.as_deref()) {
                (_, "id", None) => Some(Operand {
                    expr: "r.id".into(),
                    kind: Kind::Uuid,
                }),
                (_, "externalId", None) => Some(Operand {
                    expr: "r.external_id".into(),
                    kind: Kind::Text,
                }),
                (_, "meta", Some("created")) => Some(Operand {
                    expr: "r.created_at".into(),
                    kind: Kind::Micros,
                }),
                (_, "meta", Some("lastmodified")) => Some(Operand {
                    expr: "r.last_modified".into(),
                    kind: Kind::Micros,
                }),
                (Table::Users, "userName", None) => Some(Operand {
                    expr: "r.user_name_lower".into(),
                    kind: Kind::LowerText,
                }),
                (Table::Users, "displayName", None) => Some(Operand {
                    expr: "lower(r.display_name)".into(),
                    kind: Kind::SqlLower,
                }),
                (Table::Users, "active", None) => Some(Operand {
                    expr: "r.active".into(),
                    kind: Kind::Bool,
                }),
                (Table::Groups, "displayName", None) => Some(Operand {
                    expr: "r.display_name_lower".into(),
                    kind: Kind::LowerText,
                }),
                (_, "meta", Some(other)) => {
                    return Err(ScimError::invalid_filter(format!(
                        "'meta.{other}' cannot be filtered on; use meta.created or meta.lastModified"
                    )));
                }
                _ => None,
            };
            if let Some(column) = column {
                return Ok(column);
            }
        }
        let mut keys = Self::keys(extension, &attribute.name);
        if path.sub_attr.is_some() {
            keys.push(target.name.as_str());
        }
        Ok(self.json_operand("r.doc", &keys, target))
    }

    fn keys<'k>(extension: Option<&'k str>, name: &'k str) -> Vec<&'k str> {
        match extension {
            Some(urn) => vec![urn, name],
            None => vec![name],
        }
    }

    fn sqlite_path(keys: &[&str]) -> String {
        let mut path = String::from("$");
        for key in keys {
            let _ = write!(path, ".\"{}\"", key.replace('\'', "''"));
        }
        path
    }

    fn pg_path(keys: &[&str]) -> String {
        let quoted: Vec<String> = keys
            .iter()
            .map(|k| format!("\"{}\"", k.replace('\'', "''")))
            .collect();
        format!("{{{}}}", quoted.join(","))
    }

    fn json_operand(&self, base: &str, keys: &[&str], target: &Attribute) -> Operand {
        let expr = match self.dialect {
            Dialect::Sqlite => format!("json_extract({base}, '{}')", Self::sqlite_path(keys)),
            Dialect::Postgres => format!("({base} #>> '{}')", Self::pg_path(keys)),
        };
        Self::typed(expr, target, self.dialect)
    }

    fn typed(expr: String, target: &Attribute, dialect: Dialect) -> Operand {
        match target.kind {
            AttributeType::Boolean => Operand {
                expr,
                kind: Kind::JsonBool,
            },
            AttributeType::Integer | AttributeType::Decimal => match dialect {
                Dialect::Sqlite => Operand {
                    expr,
                    kind: Kind::Number,
                },
                Dialect::Postgres => Operand {
                    expr: format!("CAST({expr} AS DOUBLE PRECISION)"),
                    kind: Kind::Number,
                },
            },
            _ if !target.case_exact => Operand {
                expr: format!("lower({expr})"),
                kind: Kind::SqlLower,
            },
            _ => Operand {
                expr,
                kind: Kind::Text,
            },
        }
    }

    fn operand_condition(
        &mut self,
        path: &AttrPath,
        operand: Operand,
        comparison: Option<(CompareOp, &CompareValue)>,
    ) -> Result<String, ScimError> {
        let expr = operand.expr.clone();
        let Some((op, value)) = comparison else {
            return Ok(match operand.kind {
                Kind::LowerText | Kind::SqlLower | Kind::Text => {
                    format!("({expr} IS NOT NULL AND {expr} <> '')")
                }
                _ => format!("({expr} IS NOT NULL)"),
            });
        };
        if let CompareValue::Null = value {
            return match op {
                CompareOp::Eq => Ok(format!("({expr} IS NULL)")),
                CompareOp::Ne => Ok(format!("({expr} IS NOT NULL)")),
                _ => Err(ScimError::invalid_filter(format!(
                    "'{path} {} null': null can only be compared with eq or ne",
                    op.as_str()
                ))),
            };
        }
        let mismatch = |expected: &str| {
            ScimError::invalid_filter(format!(
                "'{path}' is {expected}; the value {value} does not compare with it"
            ))
        };
        let placeholder_value: Bind = match (operand.kind, value) {
            (Kind::Uuid, CompareValue::Str(s)) => {
                if !matches!(op, CompareOp::Eq | CompareOp::Ne) {
                    return Err(ScimError::invalid_filter(format!(
                        "'{path}' supports only eq and ne"
                    )));
                }
                match Uuid::parse_str(s) {
                    Ok(id) => Bind::Uuid(id),
                    // No resource has an id that is not a UUID.
                    Err(_) => {
                        return Ok(if op == CompareOp::Eq {
                            "(1 = 0)".into()
                        } else {
                            "(1 = 1)".into()
                        });
                    }
                }
            }
            (Kind::LowerText, CompareValue::Str(s)) => Bind::Text(s.to_lowercase()),
            (Kind::SqlLower, CompareValue::Str(s)) => match self.dialect {
                Dialect::Sqlite => Bind::Text(s.to_ascii_lowercase()),
                Dialect::Postgres => Bind::Text(s.to_lowercase()),
            },
            (Kind::Text, CompareValue::Str(s)) => Bind::Text(s.clone()),
            (Kind::Bool, CompareValue::Bool(b)) | (Kind::JsonBool, CompareValue::Bool(b)) => {
                if !matches!(op, CompareOp::Eq | CompareOp::Ne) {
                    return Err(ScimError::invalid_filter(format!(
                        "'{path}' is a boolean: use eq or ne"
                    )));
                }
                match (operand.kind, self.dialect) {
                    (Kind::JsonBool, Dialect::Postgres) => Bind::Text(b.to_string()),
                    _ => Bind::Bool(*b),
                }
            }
            (Kind::Number, CompareValue::Number(n)) => {
                if op.is_substring() {
                    return Err(ScimError::invalid_filter(format!(
                        "'{path}' is a number: co, sw and ew do not apply"
                    )));
                }
                Bind::Float(n.as_f64().unwrap_or_default())
            }
            (Kind::Micros, CompareValue::Str(s)) => {
                if op.is_substring() {
                    return Err(ScimError::invalid_filter(format!(
                        "'{path}' is a date-time: co, sw and ew do not apply"
                    )));
                }
                let at = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
                    ScimError::invalid_filter(format!("'{path}' is a date-time: compare it with an RFC 3339 value such as \"2026-01-31T00:00:00Z\", not \"{s}\""))
                })?;
                Bind::Int((at.unix_timestamp_nanos() / 1_000) as i64)
            }
            (Kind::Uuid | Kind::LowerText | Kind::SqlLower | Kind::Text | Kind::Micros, _) => {
                return Err(mismatch("a string"));
            }
            (Kind::Bool | Kind::JsonBool, _) => return Err(mismatch("a boolean")),
            (Kind::Number, _) => return Err(mismatch("a number")),
        };
        let text_like = matches!(operand.kind, Kind::LowerText | Kind::SqlLower | Kind::Text);
        let sql = match op {
            CompareOp::Eq => {
                let p = self.bind(placeholder_value);
                format!("({expr} = {p})")
            }
            CompareOp::Ne => {
                let p = self.bind(placeholder_value);
                format!("({expr} IS NULL OR {expr} <> {p})")
            }
            CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
                let Bind::Text(s) = placeholder_value else {
                    return Err(ScimError::invalid_filter(format!(
                        "'{path}': co, sw and ew apply to strings"
                    )));
                };
                let escaped = escape_like(&s);
                let pattern = match op {
                    CompareOp::Co => format!("%{escaped}%"),
                    CompareOp::Sw => format!("{escaped}%"),
                    _ => format!("%{escaped}"),
                };
                let p = self.bind(Bind::Text(pattern));
                format!("({expr} LIKE {p} ESCAPE '\\')")
            }
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => {
                let sql_op = match op {
                    CompareOp::Gt => ">",
                    CompareOp::Ge => ">=",
                    CompareOp::Lt => "<",
                    _ => "<=",
                };
                let p = self.bind(placeholder_value);
                if text_like && self.dialect == Dialect::Postgres {
                    format!("({expr} COLLATE \"C\" {sql_op} {p})")
                } else {
                    format!("({expr} {sql_op} {p})")
                }
            }
        };
        Ok(sql)
    }
}

/// Escapes LIKE wildcards so that a filter value matches literally.
fn escape_like(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::parse;

    fn compile(dialect: Dialect, rt: &str, filter: &str) -> Result<(String, Vec<Bind>), ScimError> {
        let registry = Registry::load().unwrap();
        let rt = registry.resource_type(rt).unwrap().clone();
        let table = if rt.name == "User" {
            Table::Users
        } else {
            Table::Groups
        };
        let mut c = Compiler::new(dialect, &registry, &rt, table, 1);
        let sql = c.filter(&parse(filter)?)?;
        Ok((sql, c.binds))
    }

    #[test]
    fn values_are_bound_never_spliced() {
        let (sql, binds) = compile(
            Dialect::Postgres,
            "User",
            r#"userName eq "Robert'); DROP TABLE users;--""#,
        )
        .unwrap();
        assert_eq!(sql, "(r.user_name_lower = $2)");
        assert_eq!(
            binds,
            vec![Bind::Text("robert'); drop table users;--".into())]
        );
    }

    #[test]
    fn like_wildcards_are_escaped() {
        let (sql, binds) = compile(Dialect::Sqlite, "User", r#"userName co "50%_off""#).unwrap();
        assert!(sql.contains("LIKE $2 ESCAPE"));
        assert_eq!(binds, vec![Bind::Text("%50\\%\\_off%".into())]);
    }

    #[test]
    fn emails_use_their_table_and_members_theirs() {
        let (sql, _) = compile(
            Dialect::Sqlite,
            "User",
            r#"emails[type eq "work" and value eq "A@B.C"]"#,
        )
        .unwrap();
        assert!(sql.contains("FROM user_emails"), "{sql}");
        let (sql, _) = compile(
            Dialect::Postgres,
            "Group",
            r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
        )
        .unwrap();
        assert!(sql.contains("FROM group_members"), "{sql}");
    }

    #[test]
    fn unknown_attributes_and_type_mismatches_are_invalid_filters() {
        assert!(
            compile(Dialect::Sqlite, "User", r#"nope eq "x""#)
                .unwrap_err()
                .detail
                .contains("nope")
        );
        assert!(compile(Dialect::Sqlite, "User", r#"active gt true"#).is_err());
        assert!(
            compile(
                Dialect::Sqlite,
                "User",
                r#"meta.lastModified gt "yesterday""#
            )
            .is_err()
        );
        assert!(compile(Dialect::Sqlite, "User", r#"name eq "x""#).is_err());
    }
}

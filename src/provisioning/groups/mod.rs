//! Groups and membership. Members are rows of their own: a change of membership writes only the
//! rows that change, so adding one member to a large group costs one insert, and a full member
//! list (a PUT) is applied as a difference against the current one.

mod settle;

use std::collections::HashSet;

use serde_json::{Map, Value, json};
use sqlx::types::Json;
use uuid::Uuid;

use super::audit;
use super::render;
use super::users::Rendered;
use super::{Context, Error, MAX_INDEXED_CHARS, Precondition, Provisioner, Result, parse_id};
use crate::scim::error::ScimError;
use crate::scim::list::{ListPage, ListQuery};
use crate::scim::patch::{self, MemberChange};
use crate::scim::projection::Projection;
use crate::scim::resource::{self, Document, check_text};
use crate::scim::schema::ResourceType;
use crate::store::{GroupRecord, SortSpec, StoreError, Tx, now_micros};
use settle::GroupChange;

/// Longest accepted group `displayName`, in characters.
pub const MAX_DISPLAY_NAME: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberKind {
    User,
    Group,
}

impl MemberKind {
    fn as_str(self) -> &'static str {
        match self {
            MemberKind::User => "User",
            MemberKind::Group => "Group",
        }
    }
}

/// A resolved member: an id of the account and what it is.
#[derive(Debug, Clone, Copy)]
struct Member {
    id: Uuid,
    kind: MemberKind,
}

/// Most member values one PATCH may carry (`413` beyond): large groups are synced in batches.
pub const MAX_MEMBERS_PER_PATCH: usize = 1000;

/// What a write did to the membership, for the audit trail.
#[derive(Debug, Default)]
struct MembershipDelta {
    /// Members whose row this request inserted.
    added: Vec<Uuid>,
    /// Members whose row this request deleted.
    removed: Vec<Uuid>,
}

impl MembershipDelta {
    fn changed(&self) -> bool {
        !self.added.is_empty() || !self.removed.is_empty()
    }

    fn to_json(&self) -> Value {
        json!({
            "added": self.added.iter().map(Uuid::to_string).collect::<Vec<_>>(),
            "removed": self.removed.iter().map(Uuid::to_string).collect::<Vec<_>>(),
        })
    }
}

fn unique_violation(display_name: &str) -> impl Fn(StoreError) -> Error + '_ {
    move |e| match e {
        StoreError::Unique("groups_display_name_key") => {
            Error::Scim(ScimError::uniqueness(format!(
                "a group named '{display_name}' already exists in this account; find it with filter=displayName eq \"{display_name}\""
            )))
        }
        other => Error::Store(other),
    }
}

/// Splits the member list out of a group document and derives the columns.
fn prepare(doc: &mut Document) -> Result<(String, Option<String>, Vec<Value>)> {
    let members = match doc.remove("members") {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let display_name = doc
        .get("displayName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if display_name.trim().is_empty() {
        return Err(ScimError::invalid_value("'displayName' must not be empty").into());
    }
    if display_name.chars().count() > MAX_DISPLAY_NAME {
        return Err(ScimError::invalid_value(format!(
            "'displayName' is longer than {MAX_DISPLAY_NAME} characters"
        ))
        .into());
    }
    let external_id = doc
        .get("externalId")
        .and_then(Value::as_str)
        .map(str::to_string);
    // Indexed values must fit an index entry (PostgreSQL's B-tree takes at most 2,704 bytes).
    if let Some(external_id) = &external_id {
        check_text(external_id, "externalId", MAX_INDEXED_CHARS)?;
    }
    Ok((display_name, external_id, members))
}

impl Provisioner {
    fn wants_members(&self, rt: &ResourceType, projection: &Projection) -> bool {
        self.registry
            .core_schema(rt)
            .and_then(|s| s.attribute("members"))
            .is_some_and(|a| projection.wants(None, a))
    }

    async fn render_group(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        record: &GroupRecord,
        projection: &Projection,
        rt: &ResourceType,
    ) -> Result<Rendered> {
        let members = if self.wants_members(rt, projection) {
            Some(
                tx.members_of_groups(ctx.principal.account_id, &[record.id])
                    .await?,
            )
        } else {
            None
        };
        let mut full = render::group(&ctx.scim_base, record, members.as_deref());
        self.add_group_extras(tx, ctx, record, projection, &mut full)
            .await?;
        let location = format!("{}/Groups/{}", ctx.scim_base, record.id);
        Ok(Rendered {
            resource: projection.apply(&self.registry, rt, full),
            version: record.version,
            location,
        })
    }

    /// Resolves member values to users and groups of the account, refusing the whole request
    /// for any member that is neither, and for a group member that would make a cycle or nest
    /// deeper than the configured limit under `parent`.
    async fn resolve_members(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        parent: Uuid,
        members: &[Value],
    ) -> Result<Vec<Member>> {
        let account = ctx.principal.account_id;
        let mut wanted: Vec<(Uuid, Option<MemberKind>)> = Vec::with_capacity(members.len());
        let mut seen = HashSet::with_capacity(members.len());
        for member in members {
            let value = member
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let kind = match member.get("type").and_then(Value::as_str) {
                None => None,
                Some(k) if k.eq_ignore_ascii_case("User") => Some(MemberKind::User),
                Some(k) if k.eq_ignore_ascii_case("Group") => Some(MemberKind::Group),
                Some(k) => {
                    return Err(ScimError::invalid_value(format!(
                        "member {value} has type '{k}'; a member's type is User or Group"
                    ))
                    .into());
                }
            };
            let id = Uuid::parse_str(value).map_err(|_| {
                ScimError::invalid_value(format!(
                    "member '{value}' is not the id of a user or group of this account"
                ))
            })?;
            if seen.insert(id) {
                wanted.push((id, kind));
            }
        }
        let maybe_users: Vec<Uuid> = wanted
            .iter()
            .filter(|(_, k)| *k != Some(MemberKind::Group))
            .map(|(id, _)| *id)
            .collect();
        let users: HashSet<Uuid> = tx
            .existing_user_ids(account, &maybe_users)
            .await?
            .into_iter()
            .collect();
        let maybe_groups: Vec<Uuid> = wanted
            .iter()
            .filter(|(id, k)| *k != Some(MemberKind::User) && !users.contains(id))
            .map(|(id, _)| *id)
            .collect();
        let groups: HashSet<Uuid> = if maybe_groups.is_empty() {
            HashSet::new()
        } else {
            tx.existing_group_ids(account, &maybe_groups)
                .await?
                .into_iter()
                .collect()
        };
        let mut resolved = Vec::with_capacity(wanted.len());
        for (id, declared) in wanted {
            let kind = if users.contains(&id) {
                MemberKind::User
            } else if groups.contains(&id) {
                MemberKind::Group
            } else {
                let what = match declared {
                    Some(MemberKind::User) => "a user",
                    Some(MemberKind::Group) => "a group",
                    None => "a user or group",
                };
                return Err(ScimError::invalid_value(format!(
                    "member '{id}' is not the id of {what} of this account"
                ))
                .into());
            };
            resolved.push(Member { id, kind });
        }
        if resolved.iter().any(|m| m.kind == MemberKind::Group) {
            self.check_nesting(tx, account, parent, &resolved).await?;
        }
        Ok(resolved)
    }

    /// Refuses cycles (RFC 7644 leaves them to the server; we refuse them as `invalidValue`) and
    /// nesting deeper than `max_group_depth` levels.
    async fn check_nesting(
        &self,
        tx: &mut Tx,
        account: Uuid,
        parent: Uuid,
        members: &[Member],
    ) -> Result<()> {
        tx.lock_nesting(account).await?;
        let levels_above = tx
            .ancestor_groups(account, parent)
            .await?
            .iter()
            .map(|(_, d)| *d)
            .max()
            .unwrap_or(0);
        let max = self.settings.max_group_depth as i64;
        for child in members.iter().filter(|m| m.kind == MemberKind::Group) {
            if child.id == parent {
                return Err(
                    ScimError::invalid_value("a group cannot be a member of itself").into(),
                );
            }
            let below = tx.descendant_groups(account, child.id).await?;
            if below.iter().any(|(id, _)| *id == parent) {
                return Err(ScimError::invalid_value(format!(
                    "group {} already contains group {parent} (directly or through other groups): adding it as a member would make a cycle",
                    child.id
                ))
                .into());
            }
            let height = 1 + below.iter().map(|(_, d)| *d).max().unwrap_or(0);
            let levels = levels_above + 1 + height;
            if levels > max {
                return Err(ScimError::invalid_value(format!(
                    "nesting group {} here would make {levels} levels of groups; at most {max} are allowed",
                    child.id
                ))
                .into());
            }
        }
        Ok(())
    }

    async fn add_members(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        group_id: Uuid,
        members: &[Member],
        delta: &mut MembershipDelta,
    ) -> Result<()> {
        // In key order, so that consecutive inserts land on neighbouring index pages.
        let mut rows: Vec<(Uuid, &str)> = members.iter().map(|m| (m.id, m.kind.as_str())).collect();
        rows.sort_unstable_by_key(|(id, _)| *id);
        let added = tx
            .add_members(ctx.principal.account_id, group_id, &rows)
            .await?;
        delta.added.extend(added);
        Ok(())
    }

    async fn replace_members(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        group_id: Uuid,
        wanted: &[Member],
        delta: &mut MembershipDelta,
    ) -> Result<()> {
        let current: HashSet<Uuid> = tx
            .member_ids(ctx.principal.account_id, group_id)
            .await?
            .into_iter()
            .collect();
        let wanted_set: HashSet<Uuid> = wanted.iter().map(|m| m.id).collect();
        let to_remove: Vec<Uuid> = current.difference(&wanted_set).copied().collect();
        let to_add: Vec<Member> = wanted
            .iter()
            .filter(|m| !current.contains(&m.id))
            .copied()
            .collect();
        if !to_remove.is_empty() {
            let removed = tx
                .remove_members(ctx.principal.account_id, group_id, &to_remove)
                .await?;
            delta.removed.extend(removed);
        }
        if !to_add.is_empty() {
            self.add_members(tx, ctx, group_id, &to_add, delta).await?;
        }
        Ok(())
    }

    #[tracing::instrument(name = "create_group", level = "debug", skip_all, fields(account = %ctx.principal.account_id))]
    pub async fn create_group(
        &self,
        ctx: &Context,
        body: &Value,
        projection: &Projection,
    ) -> Result<Rendered> {
        let rt = self.resource_type("Group")?;
        let mut doc = resource::normalize(&self.registry, rt, body)?;
        let (display_name, external_id, members) = prepare(&mut doc)?;
        let mut tx = self.store.begin_write().await?;
        self.settle_group(&mut tx, ctx, None, &mut doc).await?;
        let now = now_micros();
        let record = GroupRecord {
            id: Uuid::now_v7(),
            account_id: ctx.principal.account_id,
            display_name: display_name.clone(),
            external_id,
            doc: Json(doc),
            created_at: now,
            last_modified: now,
            version: 1,
        };
        let member_ids = self
            .resolve_members(&mut tx, ctx, record.id, &members)
            .await?;
        tx.insert_group(&record)
            .await
            .map_err(unique_violation(&display_name))?;
        let mut delta = MembershipDelta::default();
        self.add_members(&mut tx, ctx, record.id, &member_ids, &mut delta)
            .await?;
        self.group_changed(
            &mut tx,
            ctx,
            GroupChange {
                group_id: record.id,
                old_doc: None,
                new_doc: Some(&record.doc.0),
                added: &delta.added,
                removed: &delta.removed,
            },
        )
        .await?;
        let after = render::group(&ctx.scim_base, &record, None);
        audit::record(
            &mut tx,
            ctx,
            "group.create",
            "Group",
            &record.id.to_string(),
            None,
            Some(with_delta(after, &delta)),
        )
        .await?;
        let rendered = self
            .render_group(&mut tx, ctx, &record, projection, rt)
            .await?;
        tx.commit().await?;
        Ok(rendered)
    }

    #[tracing::instrument(name = "get_group", level = "debug", skip_all, fields(account = %ctx.principal.account_id, group = %id))]
    pub async fn get_group(
        &self,
        ctx: &Context,
        id: &str,
        projection: &Projection,
    ) -> Result<Rendered> {
        let rt = self.resource_type("Group")?;
        let uuid = parse_id(id, "Group")?;
        let mut tx = self.store.read().await?;
        let record = tx
            .group(ctx.principal.account_id, uuid, false)
            .await?
            .ok_or_else(|| ScimError::not_found(format!("Group {id} not found")))?;
        let rendered = self
            .render_group(&mut tx, ctx, &record, projection, rt)
            .await?;
        tx.commit().await?;
        Ok(rendered)
    }

    #[tracing::instrument(name = "list_groups", level = "debug", skip_all, fields(account = %ctx.principal.account_id))]
    pub async fn list_groups(
        &self,
        ctx: &Context,
        query: &ListQuery,
        sort: Option<&SortSpec>,
        projection: &Projection,
    ) -> Result<ListPage> {
        let rt = self.resource_type("Group")?;
        let mut tx = self.store.read().await?;
        let (page, next_cursor) = self
            .page::<GroupRecord>(&mut tx, ctx, rt, query, sort)
            .await?;
        let records = page.rows;
        let wants_members = self.wants_members(rt, projection);
        let members = if wants_members && !records.is_empty() {
            let ids: Vec<Uuid> = records.iter().map(|r| r.id).collect();
            tx.members_of_groups(ctx.principal.account_id, &ids).await?
        } else {
            Vec::new()
        };
        let mut resources = Vec::with_capacity(records.len());
        for record in &records {
            let mine: Vec<_> = members
                .iter()
                .filter(|m| m.group_id == record.id)
                .cloned()
                .collect();
            let mut full = render::group(
                &ctx.scim_base,
                record,
                wants_members.then_some(mine.as_slice()),
            );
            self.add_group_extras(&mut tx, ctx, record, projection, &mut full)
                .await?;
            resources.push(Value::Object(projection.apply(&self.registry, rt, full)));
        }
        tx.commit().await?;
        Ok(ListPage {
            total_results: page.total.max(0) as u64,
            resources,
            start_index: query.start_index(),
            next_cursor,
        })
    }

    #[tracing::instrument(name = "replace_group", level = "debug", skip_all, fields(account = %ctx.principal.account_id, group = %id))]
    pub async fn replace_group(
        &self,
        ctx: &Context,
        id: &str,
        body: &Value,
        precondition: &Precondition,
        projection: &Projection,
    ) -> Result<Rendered> {
        let rt = self.resource_type("Group")?;
        let uuid = parse_id(id, "Group")?;
        let mut doc = resource::normalize(&self.registry, rt, body)?;
        let (display_name, external_id, members) = prepare(&mut doc)?;
        let mut tx = self.store.begin_write().await?;
        let existing = tx
            .group(ctx.principal.account_id, uuid, true)
            .await?
            .ok_or_else(|| ScimError::not_found(format!("Group {id} not found")))?;
        precondition.check(existing.version)?;
        self.settle_group(&mut tx, ctx, Some(&existing.doc.0), &mut doc)
            .await?;
        let wanted = self.resolve_members(&mut tx, ctx, uuid, &members).await?;
        let mut delta = MembershipDelta::default();
        self.replace_members(&mut tx, ctx, uuid, &wanted, &mut delta)
            .await?;
        let before = render::group(&ctx.scim_base, &existing, None);
        let before_version = existing.version;
        let old_doc = existing.doc.0.clone();
        let record = self
            .save_group(
                &mut tx,
                existing,
                doc,
                display_name.clone(),
                external_id,
                delta.changed(),
            )
            .await
            .map_err(|e| match e {
                Error::Store(s) => unique_violation(&display_name)(s),
                other => other,
            })?;
        self.group_changed(
            &mut tx,
            ctx,
            GroupChange {
                group_id: uuid,
                old_doc: Some(&old_doc),
                new_doc: Some(&record.doc.0),
                added: &delta.added,
                removed: &delta.removed,
            },
        )
        .await?;
        if record.version != before_version {
            let after = render::group(&ctx.scim_base, &record, None);
            audit::record(
                &mut tx,
                ctx,
                "group.replace",
                "Group",
                &uuid.to_string(),
                Some(Value::Object(before)),
                Some(with_delta(after, &delta)),
            )
            .await?;
        }
        let rendered = self
            .render_group(&mut tx, ctx, &record, projection, rt)
            .await?;
        tx.commit().await?;
        Ok(rendered)
    }

    /// Applies a PATCH. Returns the new version, and the rendered group only when the caller
    /// asked for attributes (otherwise the HTTP layer answers 204), so a membership change never
    /// reads the member list.
    #[tracing::instrument(name = "patch_group", level = "debug", skip_all, fields(account = %ctx.principal.account_id, group = %id))]
    pub async fn patch_group(
        &self,
        ctx: &Context,
        id: &str,
        body: &Value,
        precondition: &Precondition,
        projection: Option<&Projection>,
    ) -> Result<(i64, Option<Rendered>)> {
        let rt = self.resource_type("Group")?;
        let uuid = parse_id(id, "Group")?;
        let operations = patch::parse_request(body)?;
        let mut tx = self.store.begin_write().await?;
        let existing = tx
            .group(ctx.principal.account_id, uuid, true)
            .await?
            .ok_or_else(|| ScimError::not_found(format!("Group {id} not found")))?;
        precondition.check(existing.version)?;
        let mut doc = existing.doc.0.clone();
        let changes = patch::apply(&self.registry, rt, &mut doc, &operations)?;
        let member_values: usize = changes
            .iter()
            .map(|c| match c {
                MemberChange::Add(v) | MemberChange::ReplaceAll(v) => v.len(),
                MemberChange::Remove(v) => v.len(),
                // Each filtered removal is a statement of its own: it counts.
                MemberChange::RemoveMatching(_) => 1,
                MemberChange::RemoveAll => 0,
            })
            .sum();
        if member_values > MAX_MEMBERS_PER_PATCH {
            return Err(ScimError::payload_too_large(format!(
                "this PATCH names {member_values} members; send at most {MAX_MEMBERS_PER_PATCH} per request"
            ))
            .into());
        }
        let mut doc = resource::normalize(&self.registry, rt, &Value::Object(doc))?;
        let (display_name, external_id, _) = prepare(&mut doc)?;
        self.settle_group(&mut tx, ctx, Some(&existing.doc.0), &mut doc)
            .await?;

        let mut delta = MembershipDelta::default();
        let account = ctx.principal.account_id;
        for change in &changes {
            match change {
                MemberChange::Add(values) => {
                    let ids = self.resolve_members(&mut tx, ctx, uuid, values).await?;
                    self.add_members(&mut tx, ctx, uuid, &ids, &mut delta)
                        .await?;
                }
                MemberChange::Remove(values) => {
                    let ids: Vec<Uuid> = values
                        .iter()
                        .filter_map(|v| Uuid::parse_str(v).ok())
                        .collect();
                    delta
                        .removed
                        .extend(tx.remove_members(account, uuid, &ids).await?);
                }
                MemberChange::RemoveMatching(filter) => {
                    delta.removed.extend(
                        tx.remove_members_matching(&self.registry, rt, account, uuid, filter)
                            .await?,
                    );
                }
                MemberChange::RemoveAll => {
                    delta
                        .removed
                        .extend(tx.remove_all_members(account, uuid).await?);
                }
                MemberChange::ReplaceAll(values) => {
                    let ids = self.resolve_members(&mut tx, ctx, uuid, values).await?;
                    self.replace_members(&mut tx, ctx, uuid, &ids, &mut delta)
                        .await?;
                }
            }
        }
        let before = render::group(&ctx.scim_base, &existing, None);
        let before_version = existing.version;
        let old_doc = existing.doc.0.clone();
        let record = self
            .save_group(
                &mut tx,
                existing,
                doc,
                display_name.clone(),
                external_id,
                delta.changed(),
            )
            .await
            .map_err(|e| match e {
                Error::Store(s) => unique_violation(&display_name)(s),
                other => other,
            })?;
        self.group_changed(
            &mut tx,
            ctx,
            GroupChange {
                group_id: uuid,
                old_doc: Some(&old_doc),
                new_doc: Some(&record.doc.0),
                added: &delta.added,
                removed: &delta.removed,
            },
        )
        .await?;
        if record.version != before_version {
            let after = render::group(&ctx.scim_base, &record, None);
            audit::record(
                &mut tx,
                ctx,
                "group.patch",
                "Group",
                &uuid.to_string(),
                Some(Value::Object(before)),
                Some(with_delta(after, &delta)),
            )
            .await?;
        }
        let rendered = match projection {
            Some(projection) => Some(
                self.render_group(&mut tx, ctx, &record, projection, rt)
                    .await?,
            ),
            None => None,
        };
        tx.commit().await?;
        Ok((record.version, rendered))
    }

    async fn save_group(
        &self,
        tx: &mut Tx,
        existing: GroupRecord,
        doc: Document,
        display_name: String,
        external_id: Option<String>,
        members_changed: bool,
    ) -> Result<GroupRecord> {
        if existing.doc.0 == doc && !members_changed {
            return Ok(existing);
        }
        let record = GroupRecord {
            display_name,
            external_id,
            doc: Json(doc),
            last_modified: now_micros().max(existing.last_modified + 1),
            version: existing.version + 1,
            ..existing
        };
        tx.update_group(&record).await?;
        Ok(record)
    }

    #[tracing::instrument(name = "delete_group", level = "debug", skip_all, fields(account = %ctx.principal.account_id, group = %id))]
    pub async fn delete_group(
        &self,
        ctx: &Context,
        id: &str,
        precondition: &Precondition,
    ) -> Result<()> {
        let uuid = parse_id(id, "Group")?;
        let mut tx = self.store.begin_write().await?;
        let existing = tx
            .group(ctx.principal.account_id, uuid, true)
            .await?
            .ok_or_else(|| ScimError::not_found(format!("Group {id} not found")))?;
        precondition.check(existing.version)?;
        let members = tx.member_ids(ctx.principal.account_id, uuid).await?;
        let mut before = render::group(&ctx.scim_base, &existing, None);
        before.insert(
            "members".into(),
            Value::Array(
                members
                    .iter()
                    .map(|m| json!({"value": m.to_string()}))
                    .collect(),
            ),
        );
        // Members lose what the group passed down: work out who, before the rows go.
        let below = if self
            .licences_flow_through(&mut tx, ctx, uuid, &existing.doc.0)
            .await?
        {
            tx.users_below_group(ctx.principal.account_id, uuid).await?
        } else {
            Vec::new()
        };
        tx.delete_group(ctx.principal.account_id, uuid).await?;
        self.refresh_inherited(&mut tx, ctx, &below).await?;
        audit::record(
            &mut tx,
            ctx,
            "group.delete",
            "Group",
            &uuid.to_string(),
            Some(Value::Object(before)),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn with_delta(mut rendered: Map<String, Value>, delta: &MembershipDelta) -> Value {
    if delta.changed() {
        rendered.insert("membershipChange".into(), delta.to_json());
    }
    Value::Object(rendered)
}

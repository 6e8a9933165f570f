//! Users: create, read, list, replace, patch, delete.
//!
//! A user without `active` counts as active (the column says so), and a PUT that omits it keeps
//! the current value.
//!
//! `userName` is the person's business e-mail, their identity on the platform: it is unique per
//! account (case-insensitively, enforced by a unique index) and cannot change after creation
//! (`400 mutability`); re-sending it in another letter case is accepted.

mod roles;
mod settle;
mod telephony;

pub use roles::PERMISSIONS;
pub(crate) use roles::stored_role;
pub use settle::PlannedInvitation;
pub(crate) use settle::resolve_template;
pub(crate) use settle::{Preloaded, Settled, UserWrite};
pub use telephony::{NUMBER_QUARANTINE_MICROS, PHONE_PRODUCT};

use serde_json::{Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use super::audit;
use super::render;
use super::{Context, Error, MAX_INDEXED_CHARS, Precondition, Provisioner, Result, parse_id};
use crate::scim::error::ScimError;
use crate::scim::list::{ListPage, ListQuery};
use crate::scim::patch;
use crate::scim::projection::Projection;
use crate::scim::resource::{self, Document, check_text, same_value};
use crate::scim::schema::{Mutability, Registry, ResourceType};
use crate::store::{SortSpec, StoreError, Tx, UserRecord, UserViewRow, now_micros};

/// Longest accepted `userName`, in characters.
pub const MAX_USER_NAME: usize = 128;

/// A rendered resource and its version (for the `ETag` header).
#[derive(Debug, Clone)]
pub struct Rendered {
    pub resource: Map<String, Value>,
    pub version: i64,
    pub location: String,
}

fn unique_violation(user_name: &str) -> impl Fn(StoreError) -> Error + '_ {
    move |e| match e {
        StoreError::Unique("users_user_name_key") => Error::Scim(ScimError::uniqueness(format!(
            "userName '{user_name}' is already taken by another user of this account; find it with filter=userName eq \"{user_name}\""
        ))),
        StoreError::Unique("users_extension_key") => Error::Scim(ScimError::uniqueness(
            "that extension was just assigned to another user of this account; send \"auto\" (or nothing) to get the next free one",
        )),
        other => Error::Store(other),
    }
}

/// The columns of a user row derived from its document.
struct UserColumns {
    user_name: String,
    external_id: Option<String>,
    display_name: Option<String>,
    active: bool,
}

/// Validates the rules on a user document beyond its schema, and derives the columns.
fn prepare(doc: &mut Document) -> Result<UserColumns> {
    // Credentials are set by the user through the welcome e-mail; a password sent over SCIM is
    // accepted (some clients always send one) but never stored.
    doc.remove("password");
    let user_name = doc
        .get("userName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if user_name.trim().is_empty() {
        return Err(ScimError::invalid_value("'userName' must not be empty").into());
    }
    if user_name.chars().count() > MAX_USER_NAME {
        return Err(ScimError::invalid_value(format!(
            "'userName' is longer than {MAX_USER_NAME} characters"
        ))
        .into());
    }
    let active = doc.get("active").and_then(Value::as_bool).unwrap_or(true);
    let external_id = doc
        .get("externalId")
        .and_then(Value::as_str)
        .map(str::to_string);
    // Indexed values must fit an index entry (PostgreSQL's B-tree takes at most 2,704 bytes).
    if let Some(external_id) = &external_id {
        check_text(external_id, "externalId", MAX_INDEXED_CHARS)?;
    }
    if let Some(Value::Array(emails)) = doc.get("emails") {
        for email in emails
            .iter()
            .filter_map(|e| e.get("value").and_then(Value::as_str))
        {
            check_text(email, "emails.value", MAX_INDEXED_CHARS)?;
        }
    }
    let display_name = doc
        .get("displayName")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(UserColumns {
        user_name,
        external_id,
        display_name,
        active,
    })
}

/// Refuses a change of an immutable attribute (RFC 7643 §7: "immutable"); an immutable attribute
/// the new document omits keeps its value.
fn keep_immutables(
    registry: &Registry,
    rt: &ResourceType,
    old: &Document,
    new: &mut Document,
) -> Result<()> {
    let Some(core) = registry.core_schema(rt) else {
        return Ok(());
    };
    for attribute in core
        .attributes
        .iter()
        .filter(|a| a.mutability == Mutability::Immutable)
    {
        match (old.get(&attribute.name), new.get(&attribute.name)) {
            (Some(before), Some(after)) if !same_value(attribute, before, after) => {
                return Err(ScimError::mutability(format!(
                    "'{}' cannot be changed after creation (it is '{}'); to use another e-mail, delete the user and create a new one",
                    attribute.name,
                    before.as_str().unwrap_or_default()
                ))
                .into());
            }
            // Omitted, or re-sent in another letter case: the original stays.
            (Some(before), _) => {
                new.insert(attribute.name.clone(), before.clone());
            }
            _ => {}
        }
    }
    Ok(())
}

impl Provisioner {
    /// Renders a user read in `tx`, with what its representation shows besides the row read
    /// in one more statement.
    pub(crate) async fn render_user(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        record: &UserRecord,
        projection: &Projection,
        rt: &ResourceType,
    ) -> Result<Rendered> {
        let extras = tx
            .user_extras(
                ctx.principal.account_id,
                record.id,
                self.wants_groups(rt, projection),
            )
            .await?;
        let mut full = render::user(&ctx.scim_base, record, extras.groups.as_deref());
        render::add_user_extras(&mut full, &ctx.scim_base, &extras.licences, &extras.devices);
        let location = format!("{}/Users/{}", ctx.scim_base, record.id);
        Ok(Rendered {
            resource: projection.apply(&self.registry, rt, full),
            version: record.version,
            location,
        })
    }

    #[tracing::instrument(name = "create_user", level = "debug", skip_all, fields(account = %ctx.principal.account_id))]
    pub async fn create_user(
        &self,
        ctx: &Context,
        body: &Value,
        projection: &Projection,
    ) -> Result<Rendered> {
        let rt = self.resource_type("User")?;
        let mut doc = resource::normalize(&self.registry, rt, body)?;
        // A user created without `active` is active, and says so.
        doc.entry("active").or_insert(Value::Bool(true));
        let columns = prepare(&mut doc)?;
        let preloaded = self.preload(ctx, Some(&columns.user_name)).await?;
        let rendered = self
            .retrying_extension_races(ctx.principal.account_id, || {
                self.try_create_user(ctx, rt, doc.clone(), &columns, &preloaded)
            })
            .await?;
        Ok(Rendered {
            resource: projection.apply(&self.registry, rt, rendered.resource),
            ..rendered
        })
    }

    async fn try_create_user(
        &self,
        ctx: &Context,
        rt: &ResourceType,
        mut doc: Document,
        columns: &UserColumns,
        preloaded: &Preloaded,
    ) -> Result<Rendered> {
        let id = Uuid::now_v7();
        let mut tx = self.store.begin_write().await?;
        let settled = self
            .settle_user(&mut tx, ctx, id, &UserWrite::Create, &mut doc, preloaded)
            .await?;
        let now = now_micros();
        let invitation = settled.invitation.clone();
        let record = UserRecord {
            id,
            account_id: ctx.principal.account_id,
            user_name: columns.user_name.clone(),
            external_id: columns.external_id.clone(),
            display_name: columns.display_name.clone(),
            active: columns.active,
            doc: Json(doc),
            created_at: now,
            last_modified: now,
            version: 1,
            account_role: settled.account_role,
            extension: settled.extension,
            held_until: settled.held_until,
        };
        tx.insert_user(&record).await.map_err(|e| match e {
            StoreError::Unique("users_extension_key") => Error::Store(e),
            other => unique_violation(&columns.user_name)(other),
        })?;
        if let Some(plan) = &invitation {
            self.send_invitation(
                &mut tx,
                ctx,
                &record,
                plan,
                false,
                Some(&preloaded.account_name),
            )
            .await?;
        }
        // A new user belongs to no group and holds no device yet; licences only if asked for.
        let licences = if settled.holds_licences {
            tx.licences_of_users(ctx.principal.account_id, &[record.id])
                .await?
        } else {
            Vec::new()
        };
        let mut full = render::user(&ctx.scim_base, &record, Some(&[]));
        render::add_user_extras(&mut full, &ctx.scim_base, &licences, &[]);
        let rendered = Rendered {
            resource: Projection::default().apply(&self.registry, rt, full),
            version: record.version,
            location: format!("{}/Users/{}", ctx.scim_base, record.id),
        };
        audit::record(
            &mut tx,
            ctx,
            "user.create",
            "User",
            &record.id.to_string(),
            None,
            Some(Value::Object(rendered.resource.clone())),
        )
        .await?;
        tx.commit().await?;
        Ok(rendered)
    }

    /// Whether a response shaped by `projection` carries the user's `groups`.
    fn wants_groups(&self, rt: &ResourceType, projection: &Projection) -> bool {
        self.registry
            .core_schema(rt)
            .and_then(|s| s.attribute("groups"))
            .is_some_and(|a| projection.wants(None, a))
    }

    #[tracing::instrument(name = "get_user", level = "debug", skip_all, fields(account = %ctx.principal.account_id, user = %id))]
    pub async fn get_user(
        &self,
        ctx: &Context,
        id: &str,
        projection: &Projection,
    ) -> Result<Rendered> {
        let rt = self.resource_type("User")?;
        let uuid = parse_id(id, "User")?;
        let view = self
            .store
            .user_view(
                ctx.principal.account_id,
                uuid,
                self.wants_groups(rt, projection),
            )
            .await?
            .ok_or_else(|| ScimError::not_found(format!("User {id} not found")))?;
        let mut full = render::user(&ctx.scim_base, &view.record, view.groups.as_deref());
        render::add_user_extras(&mut full, &ctx.scim_base, &view.licences, &view.devices);
        Ok(Rendered {
            resource: projection.apply(&self.registry, rt, full),
            version: view.record.version,
            location: format!("{}/Users/{}", ctx.scim_base, view.record.id),
        })
    }

    #[tracing::instrument(name = "list_users", level = "debug", skip_all, fields(account = %ctx.principal.account_id))]
    pub async fn list_users(
        &self,
        ctx: &Context,
        query: &ListQuery,
        sort: Option<&SortSpec>,
        projection: &Projection,
    ) -> Result<ListPage> {
        let rt = self.resource_type("User")?;
        // The count, the page (with each user's licences and devices) and the page's groups:
        // no common snapshot needed, so no transaction.
        let mut tx = self.store.read().await?;
        let (page, next_cursor) = self
            .page::<UserViewRow>(&mut tx, ctx, rt, query, sort)
            .await?;
        let views = page
            .rows
            .into_iter()
            .map(UserViewRow::into_view)
            .collect::<Result<Vec<_>, _>>()?;
        let wants_groups = self.wants_groups(rt, projection);
        let groups = if wants_groups && !views.is_empty() {
            let ids: Vec<Uuid> = views.iter().map(|v| v.record.id).collect();
            tx.groups_of_users(ctx.principal.account_id, &ids).await?
        } else {
            Vec::new()
        };
        tx.commit().await?;
        let resources = views
            .iter()
            .map(|view| {
                let mine: Vec<_> = groups
                    .iter()
                    .filter(|g| g.user_id == view.record.id)
                    .cloned()
                    .collect();
                let mut full = render::user(
                    &ctx.scim_base,
                    &view.record,
                    wants_groups.then_some(mine.as_slice()),
                );
                render::add_user_extras(&mut full, &ctx.scim_base, &view.licences, &view.devices);
                Value::Object(projection.apply(&self.registry, rt, full))
            })
            .collect();
        Ok(ListPage {
            total_results: page.total.max(0) as u64,
            resources,
            start_index: query.start_index(),
            next_cursor,
        })
    }

    #[tracing::instrument(name = "replace_user", level = "debug", skip_all, fields(account = %ctx.principal.account_id, user = %id))]
    pub async fn replace_user(
        &self,
        ctx: &Context,
        id: &str,
        body: &Value,
        precondition: &Precondition,
        projection: &Projection,
    ) -> Result<Rendered> {
        self.retrying_extension_races(ctx.principal.account_id, || {
            self.try_replace_user(ctx, id, body, precondition, projection)
        })
        .await
    }

    #[tracing::instrument(name = "patch_user", level = "debug", skip_all, fields(account = %ctx.principal.account_id, user = %id))]
    pub async fn patch_user(
        &self,
        ctx: &Context,
        id: &str,
        body: &Value,
        precondition: &Precondition,
        projection: &Projection,
    ) -> Result<Rendered> {
        self.retrying_extension_races(ctx.principal.account_id, || {
            self.try_patch_user(ctx, id, body, precondition, projection)
        })
        .await
    }

    async fn try_replace_user(
        &self,
        ctx: &Context,
        id: &str,
        body: &Value,
        precondition: &Precondition,
        projection: &Projection,
    ) -> Result<Rendered> {
        let rt = self.resource_type("User")?;
        let uuid = parse_id(id, "User")?;
        let mut doc = resource::normalize(&self.registry, rt, body)?;
        let preloaded = self.preload(ctx, None).await?;
        let mut tx = self.store.begin_write().await?;
        let existing = tx
            .user(ctx.principal.account_id, uuid, true)
            .await?
            .ok_or_else(|| ScimError::not_found(format!("User {id} not found")))?;
        precondition.check(existing.version)?;
        keep_immutables(&self.registry, rt, &existing.doc, &mut doc)?;
        // A full replacement that leaves `active` out does not change it: neither suspends nor
        // reactivates anyone by omission (clients that PUT whole profiles do not all send it).
        if let (None, Some(active)) = (doc.get("active"), existing.doc.get("active")) {
            doc.insert("active".into(), active.clone());
        }
        let before = self
            .render_user(&mut tx, ctx, &existing, &Projection::default(), rt)
            .await?;
        let UserColumns {
            external_id,
            display_name,
            active,
            ..
        } = prepare(&mut doc)?;
        let write = UserWrite::Replace {
            existing: &existing,
            body,
        };
        let settled = self
            .settle_user(&mut tx, ctx, uuid, &write, &mut doc, &preloaded)
            .await?;
        let record = self
            .save_user(
                &mut tx,
                existing,
                doc,
                external_id,
                display_name,
                active,
                settled,
            )
            .await?;
        let after = self
            .render_user(&mut tx, ctx, &record, &Projection::default(), rt)
            .await?;
        if after.resource != before.resource {
            audit::record(
                &mut tx,
                ctx,
                "user.replace",
                "User",
                &uuid.to_string(),
                Some(Value::Object(before.resource)),
                Some(Value::Object(after.resource.clone())),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Rendered {
            resource: projection.apply(&self.registry, rt, after.resource),
            ..after
        })
    }

    async fn try_patch_user(
        &self,
        ctx: &Context,
        id: &str,
        body: &Value,
        precondition: &Precondition,
        projection: &Projection,
    ) -> Result<Rendered> {
        let rt = self.resource_type("User")?;
        let uuid = parse_id(id, "User")?;
        let operations = patch::parse_request(body)?;
        let preloaded = self.preload(ctx, None).await?;
        let mut tx = self.store.begin_write().await?;
        let existing = tx
            .user(ctx.principal.account_id, uuid, true)
            .await?
            .ok_or_else(|| ScimError::not_found(format!("User {id} not found")))?;
        precondition.check(existing.version)?;
        let mut doc = existing.doc.0.clone();
        patch::apply(&self.registry, rt, &mut doc, &operations)?;
        // The patched document must still be a valid user.
        let mut doc = resource::normalize(&self.registry, rt, &Value::Object(doc))?;
        keep_immutables(&self.registry, rt, &existing.doc, &mut doc)?;
        let before = self
            .render_user(&mut tx, ctx, &existing, &Projection::default(), rt)
            .await?;
        let UserColumns {
            external_id,
            display_name,
            active,
            ..
        } = prepare(&mut doc)?;
        let write = UserWrite::Patch {
            existing: &existing,
        };
        let settled = self
            .settle_user(&mut tx, ctx, uuid, &write, &mut doc, &preloaded)
            .await?;
        let record = self
            .save_user(
                &mut tx,
                existing,
                doc,
                external_id,
                display_name,
                active,
                settled,
            )
            .await?;
        let after = self
            .render_user(&mut tx, ctx, &record, &Projection::default(), rt)
            .await?;
        if after.resource != before.resource {
            audit::record(
                &mut tx,
                ctx,
                "user.patch",
                "User",
                &uuid.to_string(),
                Some(Value::Object(before.resource)),
                Some(Value::Object(after.resource.clone())),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Rendered {
            resource: projection.apply(&self.registry, rt, after.resource),
            ..after
        })
    }

    /// Writes the new document if it differs from the stored one; an identical re-send (IdPs
    /// repeat themselves) changes neither the version nor the audit trail.
    #[allow(clippy::too_many_arguments)]
    async fn save_user(
        &self,
        tx: &mut Tx,
        existing: UserRecord,
        doc: Document,
        external_id: Option<String>,
        display_name: Option<String>,
        active: bool,
        settled: Settled,
    ) -> Result<UserRecord> {
        if existing.doc.0 == doc
            && existing.account_role == settled.account_role
            && existing.extension == settled.extension
            && existing.held_until == settled.held_until
        {
            return Ok(existing);
        }
        let record = UserRecord {
            external_id,
            display_name,
            active,
            account_role: settled.account_role,
            extension: settled.extension,
            held_until: settled.held_until,
            doc: Json(doc),
            last_modified: now_micros().max(existing.last_modified + 1),
            version: existing.version + 1,
            ..existing
        };
        tx.update_user(&record).await?;
        Ok(record)
    }

    #[tracing::instrument(name = "delete_user", level = "debug", skip_all, fields(account = %ctx.principal.account_id, user = %id))]
    pub async fn delete_user(
        &self,
        ctx: &Context,
        id: &str,
        precondition: &Precondition,
    ) -> Result<()> {
        let rt = self.resource_type("User")?;
        let uuid = parse_id(id, "User")?;
        let mut tx = self.store.begin_write().await?;
        let existing = tx
            .user(ctx.principal.account_id, uuid, true)
            .await?
            .ok_or_else(|| ScimError::not_found(format!("User {id} not found")))?;
        precondition.check(existing.version)?;
        let before = self
            .render_user(&mut tx, ctx, &existing, &Projection::default(), rt)
            .await?;
        self.soft_delete(&mut tx, ctx, &existing).await?;
        audit::record(
            &mut tx,
            ctx,
            "user.delete",
            "User",
            &uuid.to_string(),
            Some(Value::Object(before.resource)),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

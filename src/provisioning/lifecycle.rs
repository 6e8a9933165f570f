//! The end of a user's life and its undoing: soft deletion, restore within the window, purge.
//!
//! DELETE moves the user out of `users` at once (so it is 404 to SCIM, absent from every query,
//! and its `userName` can be reused), frees its seats, extension, devices and memberships,
//! sends its number into the 72-hour quarantine, and keeps the rest restorable for 30 days.
//! A restore brings the user back inactive-or-active as it was, re-checks its seats, gives it
//! back its extension if still free (else the next free one) and no phone number.

use serde_json::{Value, json};

use super::user_doc;
use super::users::Rendered;
use super::users::{NUMBER_QUARANTINE_MICROS, Settled, UserWrite, stored_role};
use super::{Context, Error, Provisioner, Result, audit, parse_id};
use crate::domain::AccountRole;
use crate::scim::error::ScimError;
use crate::scim::projection::Projection;
use crate::store::{DeletedUser, StoreError, Tx, UserRecord, now_micros};

/// Soft-deleted users can be restored for this long.
pub const RESTORE_WINDOW_MICROS: i64 = 30 * 86_400 * 1_000_000;
/// A day, in the microseconds every stored time is counted in.
pub const DAY_MICROS: i64 = 86_400 * 1_000_000;

impl Provisioner {
    /// Soft-deletes a user whose row this transaction has locked.
    pub(crate) async fn soft_delete(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        user: &UserRecord,
    ) -> Result<()> {
        let account_id = ctx.principal.account_id;
        let role = stored_role(user)?;
        if ctx.principal.actor.is_admin_token()
            && matches!(role, AccountRole::SuperAdmin | AccountRole::Admin)
        {
            return Err(ScimError::forbidden(format!(
                "this user holds {}; only a super-admin token may delete them",
                role.scim_value()
            ))
            .into());
        }
        if role == AccountRole::SuperAdmin && user.active {
            self.protect_last_super_admin(tx, account_id, "delete")
                .await?;
        }
        let now = now_micros();
        self.release_licences(tx, account_id, user.id).await?;
        tx.release_phone_number(account_id, user.id, now + NUMBER_QUARANTINE_MICROS)
            .await?;
        tx.unassign_devices(account_id, user.id).await?;
        tx.archive_user(user, now, now + RESTORE_WINDOW_MICROS)
            .await?;
        Ok(())
    }

    /// The account's soft-deleted users still within their restore window.
    pub async fn deleted_users(&self, ctx: &Context) -> Result<Vec<Value>> {
        let mut tx = self.store.begin_read().await?;
        let users = tx
            .deleted_users(ctx.principal.account_id, now_micros())
            .await?;
        tx.commit().await?;
        Ok(users.iter().map(deleted_json).collect())
    }

    /// Brings a soft-deleted user back.
    #[tracing::instrument(name = "restore_user", level = "debug", skip_all, fields(account = %ctx.principal.account_id, user = %id))]
    pub async fn restore_user(&self, ctx: &Context, id: &str) -> Result<Rendered> {
        self.retrying_extension_races(ctx.principal.account_id, || self.try_restore_user(ctx, id))
            .await
    }

    async fn try_restore_user(&self, ctx: &Context, id: &str) -> Result<Rendered> {
        let rt = self.resource_type("User")?;
        let uuid = parse_id(id, "deleted user")?;
        let preloaded = self.preload(ctx, None).await?;
        let mut tx = self.store.begin_write().await?;
        let deleted = tx
            .take_deleted_user(ctx.principal.account_id, uuid, now_micros())
            .await?
            .ok_or_else(|| {
                ScimError::not_found(format!(
                    "no deleted user {id} within its 30-day restore window"
                ))
            })?;
        let mut doc = deleted.doc.0.clone();
        {
            // The number went back to the pool at deletion; the extension is re-checked.
            let ext = user_doc::extension_mut(&mut doc);
            ext.remove("directNumber");
            ext.remove("smsEnabled");
            if let (Some(number), Some(holder)) = (
                deleted.extension,
                match deleted.extension {
                    Some(n) => tx.extension_holder(ctx.principal.account_id, n).await?,
                    None => None,
                },
            ) && holder != uuid
            {
                tracing::info!(user = %uuid, extension = number, "restored user's extension was taken; assigning the next free one");
                ext.insert("extensionNumber".into(), json!("auto"));
            }
        }
        let placeholder = UserRecord {
            id: deleted.id,
            account_id: deleted.account_id,
            user_name: deleted.user_name.clone(),
            external_id: deleted.external_id.clone(),
            display_name: deleted.display_name.clone(),
            active: deleted.active,
            doc: deleted.doc.clone(),
            created_at: deleted.created_at,
            last_modified: deleted.deleted_at,
            version: 0,
            account_role: deleted.account_role.clone(),
            extension: None,
            held_until: None,
        };
        let settled: Settled = self
            .settle_user(
                &mut tx,
                ctx,
                uuid,
                &UserWrite::Patch {
                    existing: &placeholder,
                },
                &mut doc,
                &preloaded,
            )
            .await?;
        let now = now_micros();
        let record = UserRecord {
            doc: sqlx::types::Json(doc),
            last_modified: now,
            version: 1,
            account_role: settled.account_role,
            extension: settled.extension,
            held_until: settled.held_until,
            ..placeholder
        };
        tx.insert_user(&record).await.map_err(|e| match e {
            StoreError::Unique("users_user_name_key") => Error::Scim(ScimError::uniqueness(format!(
                "userName '{}' was given to another user since the deletion; delete or rename that user first",
                record.user_name
            ))),
            other => Error::Store(other),
        })?;
        let rendered = self
            .render_user(&mut tx, ctx, &record, &Projection::default(), rt)
            .await?;
        audit::record(
            &mut tx,
            ctx,
            "user.restore",
            "User",
            &uuid.to_string(),
            None,
            Some(Value::Object(rendered.resource.clone())),
        )
        .await?;
        tx.commit().await?;
        Ok(rendered)
    }

    /// Ends the quarantine of inactive users whose hold ran out: their extension becomes free
    /// and their number goes to the 72-hour pool, each change audited. Run periodically by the
    /// server; a user reactivated later gets the next free extension.
    #[tracing::instrument(name = "release_expired_holds", level = "debug", skip_all)]
    pub async fn release_expired_holds(&self) -> Result<usize> {
        let now = now_micros();
        let due = {
            let mut tx = self.store.begin_read().await?;
            let due = tx.expired_holds(now, 500).await?;
            tx.commit().await?;
            due
        };
        let mut released = 0;
        for (account_id, user_id) in due {
            let mut tx = self.store.begin_write().await?;
            let Some(user) = tx.user(account_id, user_id, true).await? else {
                continue;
            };
            if user.active || user.held_until.is_none_or(|h| h > now) {
                continue;
            }
            let ctx = super::invitations::tokenless_context(
                account_id,
                super::Actor::Housekeeping,
                None,
                Some("switchboard".into()),
                format!("{}/scim/v2", self.settings.public_base),
            );
            let rt = self.resource_type("User")?;
            let before = self
                .render_user(&mut tx, &ctx, &user, &Projection::default(), rt)
                .await?;
            tx.release_phone_number(account_id, user_id, now + NUMBER_QUARANTINE_MICROS)
                .await?;
            let mut doc = user.doc.0.clone();
            {
                let ext = user_doc::extension_mut(&mut doc);
                ext.remove("extensionNumber");
                ext.remove("directNumber");
                ext.remove("smsEnabled");
            }
            let record = UserRecord {
                doc: sqlx::types::Json(doc),
                extension: None,
                held_until: None,
                last_modified: now.max(user.last_modified + 1),
                version: user.version + 1,
                ..user
            };
            tx.update_user(&record).await?;
            let after = self
                .render_user(&mut tx, &ctx, &record, &Projection::default(), rt)
                .await?;
            audit::record(
                &mut tx,
                &ctx,
                "user.hold-released",
                "User",
                &user_id.to_string(),
                Some(Value::Object(before.resource)),
                Some(Value::Object(after.resource)),
            )
            .await?;
            tx.commit().await?;
            released += 1;
        }
        Ok(released)
    }

    /// Purges soft-deleted users past their window; run periodically by the server.
    #[tracing::instrument(name = "purge_deleted_users", level = "debug", skip_all)]
    pub async fn purge_deleted_users(&self) -> Result<u64> {
        if !self.store.deleted_users_to_purge(now_micros()).await? {
            return Ok(0);
        }
        let mut tx = self.store.begin_write().await?;
        let purged = tx.purge_deleted_users(now_micros()).await?;
        tx.commit().await?;
        Ok(purged)
    }
}

fn deleted_json(user: &DeletedUser) -> Value {
    json!({
        "id": user.id.to_string(),
        "userName": user.user_name,
        "externalId": user.external_id,
        "displayName": user.display_name,
        "accountRole": user.account_role,
        "deletedAt": super::render::timestamp(user.deleted_at),
        "restorableUntil": super::render::timestamp(user.purge_after),
    })
}

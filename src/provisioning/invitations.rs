//! Welcome and transfer invitations: what is sent, the one-time links, and what accepting or
//! declining does.
//!
//! - A link is a random 256-bit token; only its SHA-256 is stored. It works once, until
//!   `expires_at`; a resend supersedes it. Viewing it (`GET`) never changes anything, so mail
//!   scanners that prefetch links do no harm; only `POST …/accept` and `POST …/decline` act.
//! - The mail is rendered and written to the outbox in the transaction that creates the user (or
//!   resends), so it is sent exactly when that transaction commits — and never lost after.
//! - Welcome accept → `accountStatus: active`. Transfer accept → the profile's history records
//!   move here and the user of the other account leaves it (soft-deleted there, its seats,
//!   number and devices freed, `accountStatus: transferredOut`); `active` here. Transfer decline
//!   → `transferDeclined` (suspended), its seats reclaimed; SCIM `active` stays as the IdP set it.
//! - Every invitation sent, accepted, declined and expired is an audit event of the user.

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::types::Json;
use uuid::Uuid;

use super::lifecycle::RESTORE_WINDOW_MICROS;
use super::user_doc::{self, SYSTEM_TEMPLATE, TRANSFER_DECLINED};
use super::users::{NUMBER_QUARANTINE_MICROS, PlannedInvitation};
use super::{Actor, Context, Error, Principal, Provisioner, Result, audit, render};
use crate::mail::templates::{self, MailContext, MailTemplate};
use crate::scim::error::ScimError;
use crate::store::{InvitationRecord, OutboxRecord, ProfileRecord, Tx, UserRecord, now_micros};

/// What the public invitation page shows.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitationView {
    pub kind: String,
    pub status: String,
    pub account_name: String,
    pub user_name: String,
    pub expires_at: String,
    pub from_account_name: Option<String>,
}

/// What an accept / decline did.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitationOutcome {
    pub kind: String,
    pub status: String,
    pub account_status: String,
    pub records_moved: u64,
}

/// A link that cannot be used: unknown (404) or no longer usable (410).
fn gone(detail: impl Into<String>) -> Error {
    ScimError::new(410, None, detail).into()
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The context of a change made without a token — by someone holding an invitation link, or
/// by the housekeeping — in `account_id`.
pub fn tokenless_context(
    account_id: Uuid,
    actor: Actor,
    request_id: Option<String>,
    user_agent: Option<String>,
    scim_base: String,
) -> Context {
    Context {
        principal: Principal { account_id, actor },
        request_id,
        user_agent,
        scim_base,
    }
}

impl Provisioner {
    /// Creates the invitation and its mail for a user just written in `tx`. The link's token
    /// exists only in the mail.
    pub(crate) async fn send_invitation(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        user: &UserRecord,
        plan: &PlannedInvitation,
        resend: bool,
        account_name: Option<&str>,
    ) -> Result<()> {
        let now = now_micros();
        let account_id = ctx.principal.account_id;
        let token = new_token();
        let (kind, from_account, from_user) = match plan {
            PlannedInvitation::Welcome => ("welcome", None, None),
            PlannedInvitation::Transfer {
                from_account,
                from_user,
            } => ("transfer", Some(*from_account), Some(*from_user)),
        };
        let invitation = InvitationRecord {
            id: Uuid::now_v7(),
            account_id,
            user_id: user.id,
            kind: kind.into(),
            token_hash: hash(&token),
            status: "pending".into(),
            from_account_id: from_account,
            from_user_id: from_user,
            created_at: now,
            expires_at: now + self.settings.invitation_ttl_micros,
            acted_at: None,
        };
        tx.insert_invitation(&invitation).await?;

        let account_name = match account_name {
            Some(name) => name.to_string(),
            None => tx.account_name(account_id).await?.unwrap_or_default(),
        };
        let from_account_name = match from_account {
            Some(id) => tx.account_name(id).await?,
            None => None,
        };
        let ext = user_doc::extension(&user.doc);
        let text = |name: &str| {
            ext.and_then(|e| e.get(name))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let context = MailContext {
            user_name: user
                .display_name
                .clone()
                .unwrap_or_else(|| user.user_name.clone()),
            given_name: user
                .doc
                .get("name")
                .and_then(|n| n.get("givenName"))
                .and_then(Value::as_str)
                .map(str::to_string),
            user_email: user.user_name.clone(),
            account_name,
            extension: text("extensionNumber"),
            phone_number: text("directNumber"),
            accept_link: format!("{}/invitations/{token}", self.settings.public_base),
            expires_at: render::timestamp(invitation.expires_at),
            from_account_name,
        };
        let template = match plan {
            PlannedInvitation::Transfer { .. } => templates::transfer(),
            PlannedInvitation::Welcome => {
                self.welcome_template(tx, account_id, text("welcomeEmailTemplate"))
                    .await?
            }
        };
        // Saved templates were tried with sample values; should one still fail on this user's
        // values, the built-in one goes out rather than no mail at all.
        let mail = match templates::render(&template, &context) {
            Ok(mail) => mail,
            Err(e) => {
                tracing::warn!(user = %user.id, error = %e, "invitation template failed; sending the built-in one");
                let fallback = match plan {
                    PlannedInvitation::Transfer { .. } => templates::transfer(),
                    PlannedInvitation::Welcome => templates::welcome(),
                };
                templates::render(&fallback, &context).map_err(|e| {
                    Error::Internal(format!(
                        "rendering the built-in invitation template failed: {e}"
                    ))
                })?
            }
        };
        let outbox_id = Uuid::now_v7();
        tx.insert_outbox(&OutboxRecord {
            id: outbox_id,
            account_id,
            invitation_id: Some(invitation.id),
            message_id: format!("<{outbox_id}@switchboard>"),
            recipient: user.user_name.clone(),
            subject: mail.subject,
            text_body: mail.text,
            html_body: mail.html,
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: now,
            claimed_until: None,
            last_error: None,
            created_at: now,
            sent_at: None,
        })
        .await?;
        audit::record(
            tx,
            ctx,
            "invitation.sent",
            "User",
            &user.id.to_string(),
            None,
            Some(json!({
                "invitation": invitation.id.to_string(),
                "kind": kind,
                "resend": resend,
                "outbox": outbox_id.to_string(),
                "expiresAt": render::timestamp(invitation.expires_at),
            })),
        )
        .await?;
        Ok(())
    }

    async fn welcome_template(
        &self,
        tx: &mut Tx,
        account_id: Uuid,
        chosen: Option<String>,
    ) -> Result<MailTemplate> {
        let Some(name) = chosen.filter(|n| n != SYSTEM_TEMPLATE) else {
            return Ok(templates::welcome());
        };
        Ok(tx
            .email_templates(account_id)
            .await?
            .into_iter()
            .find(|t| t.name == name)
            .map_or_else(templates::welcome, |t| MailTemplate {
                subject: t.subject,
                text: t.text,
                html: t.html,
            }))
    }

    /// `POST /admin/v1/users/{id}/invitations`: a new link (the old one stops working), counted.
    #[tracing::instrument(name = "resend_invitation", level = "debug", skip_all, fields(account = %ctx.principal.account_id, user = %id))]
    pub async fn resend_invitation(&self, ctx: &Context, id: &str) -> Result<Value> {
        let uuid = super::parse_id(id, "User")?;
        let account_id = ctx.principal.account_id;
        let mut tx = self.store.begin_write().await?;
        let user = tx
            .user(account_id, uuid, true)
            .await?
            .ok_or_else(|| ScimError::not_found(format!("User {id} not found")))?;
        let status = user_doc::extension(&user.doc)
            .and_then(|e| e.get("accountStatus"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let plan = match status.as_str() {
            "inviteSent" => PlannedInvitation::Welcome,
            "transferPending" => {
                let last = tx
                    .invitations_of_user(account_id, uuid)
                    .await?
                    .into_iter()
                    .find(|i| i.kind == "transfer");
                match last.and_then(|i| Some((i.from_account_id?, i.from_user_id?))) {
                    Some((from_account, from_user)) => PlannedInvitation::Transfer {
                        from_account,
                        from_user,
                    },
                    None => PlannedInvitation::Welcome,
                }
            }
            other => {
                return Err(ScimError::conflict(format!(
                        "this user's account status is '{other}': there is no pending invitation to resend"
                    ))
                .into());
            }
        };
        let now = now_micros();
        tx.supersede_invitations(account_id, uuid, now).await?;
        let mut doc = user.doc.0.clone();
        {
            let ext = user_doc::extension_mut(&mut doc);
            let count = ext
                .get("invitationSentCount")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            ext.insert("invitationSentCount".into(), json!(count + 1));
            ext.insert("invitationLastSentAt".into(), json!(render::timestamp(now)));
        }
        let record = self.touch_user(&mut tx, user, doc).await?;
        self.send_invitation(&mut tx, ctx, &record, &plan, true, None)
            .await?;
        tx.commit().await?;
        let ext = user_doc::extension(&record.doc);
        Ok(json!({
            "userId": uuid.to_string(),
            "kind": match plan { PlannedInvitation::Welcome => "welcome", PlannedInvitation::Transfer { .. } => "transfer" },
            "invitationSentCount": ext.and_then(|e| e.get("invitationSentCount")),
            "invitationLastSentAt": ext.and_then(|e| e.get("invitationLastSentAt")),
        }))
    }

    /// Writes a server-side change of a user's document (new version).
    async fn touch_user(
        &self,
        tx: &mut Tx,
        user: UserRecord,
        doc: crate::scim::resource::Document,
    ) -> Result<UserRecord> {
        let record = UserRecord {
            doc: Json(doc),
            last_modified: now_micros().max(user.last_modified + 1),
            version: user.version + 1,
            ..user
        };
        tx.update_user(&record).await?;
        Ok(record)
    }

    /// The user's invitations, newest first, for the admin API.
    pub async fn invitations(&self, ctx: &Context, id: &str) -> Result<Vec<Value>> {
        let uuid = super::parse_id(id, "User")?;
        let mut tx = self.store.begin_read().await?;
        if tx
            .user(ctx.principal.account_id, uuid, false)
            .await?
            .is_none()
        {
            return Err(ScimError::not_found(format!("User {id} not found")).into());
        }
        let list = tx
            .invitations_of_user(ctx.principal.account_id, uuid)
            .await?;
        tx.commit().await?;
        Ok(list
            .iter()
            .map(|i| {
                json!({
                    "id": i.id.to_string(),
                    "kind": i.kind,
                    "status": i.status,
                    "created": render::timestamp(i.created_at),
                    "expiresAt": render::timestamp(i.expires_at),
                    "actedAt": i.acted_at.map(render::timestamp),
                })
            })
            .collect())
    }

    /// The outbox of the account, newest first: delivery state of every mail.
    pub async fn outbox(&self, ctx: &Context, count: i64) -> Result<Vec<Value>> {
        let mut tx = self.store.begin_read().await?;
        let mails = tx
            .outbox(ctx.principal.account_id, count.clamp(1, 1000))
            .await?;
        tx.commit().await?;
        Ok(mails
            .iter()
            .map(|m| {
                json!({
                    "id": m.id.to_string(),
                    "messageId": m.message_id,
                    "invitationId": m.invitation_id.map(|i| i.to_string()),
                    "recipient": m.recipient,
                    "subject": m.subject,
                    "status": m.status,
                    "attempts": m.attempts,
                    "nextAttemptAt": (m.status == "pending").then(|| render::timestamp(m.next_attempt_at)),
                    "lastError": m.last_error,
                    "created": render::timestamp(m.created_at),
                    "sentAt": m.sent_at.map(render::timestamp),
                })
            })
            .collect())
    }

    /// The public page's data; changes nothing.
    pub async fn view_invitation(&self, token: &str) -> Result<InvitationView> {
        let mut tx = self.store.begin_read().await?;
        let invitation = self.usable_invitation(&mut tx, token, false).await?;
        let account_name = tx
            .account_name(invitation.account_id)
            .await?
            .unwrap_or_default();
        let from_account_name = match invitation.from_account_id {
            Some(id) => tx.account_name(id).await?,
            None => None,
        };
        let user = tx
            .user(invitation.account_id, invitation.user_id, false)
            .await?
            .ok_or_else(|| gone("this invitation's user no longer exists"))?;
        tx.commit().await?;
        Ok(InvitationView {
            kind: invitation.kind,
            status: invitation.status,
            account_name,
            user_name: user.user_name,
            expires_at: render::timestamp(invitation.expires_at),
            from_account_name,
        })
    }

    /// A pending, unexpired invitation of `token`, else 404 (unknown) or 410 (used, replaced,
    /// expired).
    async fn usable_invitation(
        &self,
        tx: &mut Tx,
        token: &str,
        lock: bool,
    ) -> Result<InvitationRecord> {
        let invitation = tx
            .invitation_by_token(&hash(token), lock)
            .await?
            .ok_or_else(|| {
                Error::from(ScimError::not_found(
                    "this invitation link is not valid: check that it was copied whole",
                ))
            })?;
        match invitation.status.as_str() {
            "pending" if invitation.expires_at > now_micros() => Ok(invitation),
            "pending" | "expired" => Err(gone(
                "this invitation link has expired: ask your administrator to send a new one",
            )),
            "superseded" => Err(gone(
                "a newer invitation replaced this link: use the link of the latest e-mail",
            )),
            other => Err(gone(format!(
                "this invitation was already {other}: the link works once"
            ))),
        }
    }

    /// `POST /invitations/{token}/accept` or `/decline`.
    pub async fn answer_invitation(
        &self,
        token: &str,
        accept: bool,
        request_id: Option<String>,
        user_agent: Option<String>,
    ) -> Result<InvitationOutcome> {
        let mut tx = self.store.begin_write().await?;
        let invitation = self.usable_invitation(&mut tx, token, true).await?;
        let scim_base = format!("{}/scim/v2", self.settings.public_base);
        let ctx = tokenless_context(
            invitation.account_id,
            Actor::InvitationLink {
                invitation: invitation.id,
            },
            request_id,
            user_agent,
            scim_base,
        );
        let user = tx
            .user(invitation.account_id, invitation.user_id, true)
            .await?
            .ok_or_else(|| gone("this invitation's user no longer exists"))?;
        let before = self.render_plain(&mut tx, &ctx, &user).await?;
        let now = now_micros();
        let (status, account_status, mut moved) = match (invitation.kind.as_str(), accept) {
            ("welcome", false) => {
                return Err(ScimError::conflict("a welcome invitation cannot be declined; ignore the e-mail, or ask your administrator to remove the account")
                .into());
            }
            (_, true) => ("accepted", "active", 0),
            ("transfer", false) => ("declined", TRANSFER_DECLINED, 0),
            (other, _) => return Err(Error::Internal(format!("unknown invitation kind {other}"))),
        };
        let mut doc = user.doc.0.clone();
        user_doc::extension_mut(&mut doc).insert("accountStatus".into(), json!(account_status));
        let record = self.touch_user(&mut tx, user, doc).await?;
        if account_status == TRANSFER_DECLINED {
            self.release_licences(&mut tx, ctx.principal.account_id, record.id)
                .await?;
        }
        if invitation.kind == "transfer" && accept {
            moved = self
                .transfer_in(&mut tx, &ctx, &invitation, &record)
                .await?;
        }
        tx.set_invitation_status(invitation.id, status, now).await?;
        let after = self.render_plain(&mut tx, &ctx, &record).await?;
        audit::record(
            &mut tx,
            &ctx,
            &format!("invitation.{status}"),
            "User",
            &record.id.to_string(),
            Some(before),
            Some(json!({"user": after, "invitation": invitation.id.to_string(), "kind": invitation.kind, "recordsMoved": moved})),
        )
        .await?;
        tx.commit().await?;
        Ok(InvitationOutcome {
            kind: invitation.kind,
            status: status.into(),
            account_status: account_status.into(),
            records_moved: moved,
        })
    }

    async fn render_plain(&self, tx: &mut Tx, ctx: &Context, user: &UserRecord) -> Result<Value> {
        let rt = self.resource_type("User")?;
        let rendered = self
            .render_user(
                tx,
                ctx,
                user,
                &crate::scim::projection::Projection::default(),
                rt,
            )
            .await?;
        Ok(Value::Object(rendered.resource))
    }

    /// The profile of the other account moves here: its records follow, and it leaves that
    /// account (soft-deleted there, status `transferredOut`, with an audit event there).
    async fn transfer_in(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        invitation: &InvitationRecord,
        user: &UserRecord,
    ) -> Result<u64> {
        let (Some(from_account), Some(from_user)) =
            (invitation.from_account_id, invitation.from_user_id)
        else {
            return Ok(0);
        };
        let moved = tx
            .move_profile_records(from_account, from_user, user.account_id, user.id)
            .await?;
        let Some(old) = tx.user(from_account, from_user, true).await? else {
            return Ok(moved);
        };
        if old.active && old.account_role == crate::domain::AccountRole::SuperAdmin.stored() {
            tx.lock_account(from_account).await?;
            let super_admins = tx
                .count_active_with_role(from_account, &old.account_role)
                .await?;
            if super_admins <= 1 {
                return Err(ScimError::conflict("your profile is the last super-admin of its current account: make someone else super-admin there before moving")
                .into());
            }
        }
        let old_ctx = Context {
            principal: Principal {
                account_id: from_account,
                ..ctx.principal.clone()
            },
            ..ctx.clone()
        };
        let before = self.render_plain(tx, &old_ctx, &old).await?;
        let mut doc = old.doc.0.clone();
        user_doc::extension_mut(&mut doc).insert("accountStatus".into(), json!("transferredOut"));
        let old = self.touch_user(tx, old, doc).await?;
        let now = now_micros();
        self.release_licences(tx, from_account, old.id).await?;
        tx.release_phone_number(from_account, old.id, now + NUMBER_QUARANTINE_MICROS)
            .await?;
        tx.unassign_devices(from_account, old.id).await?;
        tx.archive_user(&old, now, now + RESTORE_WINDOW_MICROS)
            .await?;
        audit::record(
            tx,
            &old_ctx,
            "user.transferred-out",
            "User",
            &old.id.to_string(),
            Some(before),
            Some(json!({"toAccount": user.account_id.to_string(), "toUser": user.id.to_string(), "recordsMoved": moved})),
        )
        .await?;
        Ok(moved)
    }

    /// Marks pending invitations past their expiry as expired, each with an audit event.
    #[tracing::instrument(name = "expire_invitations", level = "debug", skip_all)]
    pub async fn expire_invitations(&self) -> Result<usize> {
        if !self.store.invitations_expired(now_micros()).await? {
            return Ok(0);
        }
        let mut tx = self.store.begin_write().await?;
        let expired = tx.expire_invitations(now_micros()).await?;
        for invitation in &expired {
            let ctx = tokenless_context(
                invitation.account_id,
                Actor::Housekeeping,
                None,
                Some("switchboard".into()),
                format!("{}/scim/v2", self.settings.public_base),
            );
            audit::record(
                &mut tx,
                &ctx,
                "invitation.expired",
                "User",
                &invitation.user_id.to_string(),
                None,
                Some(json!({"invitation": invitation.id.to_string(), "kind": invitation.kind})),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(expired.len())
    }

    /// History records of a user (admin API), and adding one (what the sessions and recordings
    /// services of the platform would write).
    pub async fn profile_records(&self, ctx: &Context, id: &str) -> Result<Vec<Value>> {
        let uuid = super::parse_id(id, "User")?;
        let mut tx = self.store.begin_read().await?;
        if tx
            .user(ctx.principal.account_id, uuid, false)
            .await?
            .is_none()
        {
            return Err(ScimError::not_found(format!("User {id} not found")).into());
        }
        let records = tx.profile_records(ctx.principal.account_id, uuid).await?;
        tx.commit().await?;
        Ok(records.iter().map(record_json).collect())
    }

    pub async fn add_profile_record(
        &self,
        ctx: &Context,
        id: &str,
        kind: &str,
        title: &str,
        occurred_at: i64,
    ) -> Result<Value> {
        if !matches!(kind, "pastSession" | "upcomingSession" | "recording") {
            return Err(ScimError::invalid_value(
                "kind must be pastSession, upcomingSession or recording",
            )
            .into());
        }
        if title.trim().is_empty() || title.chars().count() > 256 {
            return Err(ScimError::invalid_value("title must be 1 to 256 characters").into());
        }
        let uuid = super::parse_id(id, "User")?;
        let mut tx = self.store.begin_write().await?;
        if tx
            .user(ctx.principal.account_id, uuid, false)
            .await?
            .is_none()
        {
            return Err(ScimError::not_found(format!("User {id} not found")).into());
        }
        let record = ProfileRecord {
            id: Uuid::now_v7(),
            account_id: ctx.principal.account_id,
            user_id: uuid,
            kind: kind.into(),
            title: title.into(),
            occurred_at,
            created_at: now_micros(),
        };
        tx.insert_profile_record(&record).await?;
        tx.commit().await?;
        Ok(record_json(&record))
    }

    /// The account's custom welcome templates.
    pub async fn email_templates(&self, ctx: &Context) -> Result<Vec<Value>> {
        let mut tx = self.store.begin_read().await?;
        let list = tx.email_templates(ctx.principal.account_id).await?;
        tx.commit().await?;
        Ok(list
            .iter()
            .map(|t| json!({"id": t.id.to_string(), "name": t.name, "subject": t.subject, "text": t.text, "html": t.html}))
            .collect())
    }

    /// Saves a custom welcome template after rendering it with sample values: a template error
    /// is a `400` here, never a failed mail later.
    pub async fn put_email_template(
        &self,
        ctx: &Context,
        name: &str,
        template: MailTemplate,
    ) -> Result<Value> {
        let valid_name = !name.trim().is_empty()
            && name.trim() == name
            && name.chars().count() <= 128
            && !name.eq_ignore_ascii_case(SYSTEM_TEMPLATE);
        if !valid_name {
            return Err(ScimError::invalid_value(
                "a template name is 1 to 128 characters, without surrounding spaces, and not 'system'",
            )
            .into());
        }
        templates::validate(&template)
            .map_err(|e| ScimError::invalid_value(format!("the template does not render: {e}")))?;
        let mut tx = self.store.begin_write().await?;
        let saved = tx
            .upsert_email_template(
                ctx.principal.account_id,
                name,
                &template.subject,
                &template.html,
                &template.text,
            )
            .await?;
        let after = json!({"id": saved.id.to_string(), "name": saved.name, "subject": saved.subject, "text": saved.text, "html": saved.html});
        audit::record(
            &mut tx,
            ctx,
            "email-template.put",
            "EmailTemplate",
            name,
            None,
            Some(after.clone()),
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    pub async fn delete_email_template(&self, ctx: &Context, name: &str) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        if !tx
            .delete_email_template(ctx.principal.account_id, name)
            .await?
        {
            return Err(ScimError::not_found(format!("no e-mail template '{name}'")).into());
        }
        audit::record(
            &mut tx,
            ctx,
            "email-template.delete",
            "EmailTemplate",
            name,
            None,
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn record_json(r: &ProfileRecord) -> Value {
    json!({
        "id": r.id.to_string(),
        "kind": r.kind,
        "title": r.title,
        "occurredAt": render::timestamp(r.occurred_at),
    })
}

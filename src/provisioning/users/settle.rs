//! What a user write means for the phone system, in order: PUT keeps what it does not name,
//! create-only attributes, server-owned state, the invitation of a new user, then the role
//! ([`super::roles`]), the extension, location and number ([`super::telephony`]) and the
//! licences ([`crate::provisioning::licences`]), and the deactivation hold.
//!
//! [`Provisioner::settle_user`] runs inside the request's transaction, after the SCIM document
//! has been validated against the schemas and before the user row is written; every refusal
//! leaves the transaction to be rolled back, so nothing is half-applied.
//!
//! Rules taken as written in MAPPING.md, and the choices made where it is silent:
//! - **PUT and telephony** — in a PUT, a missing `extensionNumber`, `directNumber`,
//!   `emergencyLocation`, `smsEnabled` (and a missing `roles`, so that a client that does not map
//!   roles never demotes an admin by omission) means "unchanged"; `null` clears.
//! - **Every user has an extension**: clearing it assigns the next free one.
//! - **Admin tokens** may create, change, deactivate or delete only users whose role is `member`
//!   or a custom role, before and after the change; the rest needs a super-admin token.
//! - **Seats**: a licence assigned directly (entitlements or bundle) that finds no free seat
//!   refuses the request with 403; one inherited from a group waits in `pendingSeat` and is
//!   given the next seat that frees (oldest first), in the transaction that frees it.
//! - **Deactivation** releases seats unless the account retains them, and holds the extension
//!   and number for the account's quarantine; reactivation re-checks seats like a new
//!   assignment.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::provisioning::lifecycle::DAY_MICROS;
use crate::provisioning::user_doc::{
    SYSTEM_TEMPLATE, USER_EXTENSION, extension, extension_mut, list_schema,
};
use crate::provisioning::{Context, Error, Provisioner, Result};
use crate::scim::error::ScimError;
use crate::scim::resource::Document;
use crate::store::{AccountPolicy, ProfileElsewhere, Tx, UserRecord};

/// Attributes whose absence from a PUT means "unchanged".
pub(crate) const KEPT_ON_PUT: &[&str] = &[
    "extensionNumber",
    "directNumber",
    "emergencyLocation",
    "smsEnabled",
];

/// Attributes set once, at creation.
pub(crate) const CREATE_ONLY: &[&str] = &[
    "sendWelcomeEmail",
    "welcomeEmailTemplate",
    "productSettingsTemplate",
];

/// Attributes only the server writes, carried from one version of the document to the next.
pub(crate) const SERVER_OWNED: &[&str] = &[
    "accountStatus",
    "invitationSentCount",
    "invitationLastSentAt",
];

/// The kind of user write being settled.
pub enum UserWrite<'a> {
    Create,
    /// PUT, with the body as sent (to tell a missing attribute from an explicit `null`).
    Replace {
        existing: &'a UserRecord,
        body: &'a Value,
    },
    Patch {
        existing: &'a UserRecord,
    },
}

impl UserWrite<'_> {
    pub(crate) fn existing(&self) -> Option<&UserRecord> {
        match self {
            UserWrite::Create => None,
            UserWrite::Replace { existing, .. } | UserWrite::Patch { existing } => Some(existing),
        }
    }
}

/// The columns a settled user row carries besides its document.
#[derive(Debug, Clone)]
pub struct Settled {
    pub account_role: String,
    pub extension: Option<i64>,
    pub held_until: Option<i64>,
    /// Whether the user holds (or waits for) any licence after the write.
    pub holds_licences: bool,
    /// The invitation a new user gets, sent once the user row is written.
    pub invitation: Option<PlannedInvitation>,
}

/// Which invitation a new user gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedInvitation {
    Welcome,
    /// The e-mail has a profile in another account: it moves here if the person accepts.
    Transfer {
        from_account: Uuid,
        from_user: Uuid,
    },
}

/// Whether the raw body of a PUT mentions an attribute of the user extension (with any value,
/// `null` included), in either the nested or the `urn:…:attr` form, in any letter case.
pub(crate) fn body_mentions(body: &Value, name: &str) -> bool {
    let Some(object) = body.as_object() else {
        return false;
    };
    let flat = format!("{USER_EXTENSION}:{name}");
    object.iter().any(|(key, value)| {
        key.eq_ignore_ascii_case(&flat)
            || (key.eq_ignore_ascii_case(USER_EXTENSION)
                && value
                    .as_object()
                    .is_some_and(|ext| ext.keys().any(|k| k.eq_ignore_ascii_case(name))))
    })
}

pub(crate) fn body_mentions_core(body: &Value, name: &str) -> bool {
    body.as_object()
        .is_some_and(|o| o.keys().any(|k| k.eq_ignore_ascii_case(name)))
}

pub(crate) fn resolve_template(
    value: &Value,
    templates: &[(Uuid, String)],
    attribute: &str,
) -> Result<String> {
    let asked = value.as_str().map(str::trim).unwrap_or_default();
    if asked.is_empty() || asked.eq_ignore_ascii_case(SYSTEM_TEMPLATE) {
        return Ok(SYSTEM_TEMPLATE.to_string());
    }
    templates
        .iter()
        .find(|(id, _)| id.to_string() == asked.to_ascii_lowercase())
        .or_else(|| templates.iter().find(|(_, name)| name == asked))
        .map(|(_, name)| name.clone())
        .ok_or_else(|| {
            ScimError::invalid_value(format!(
                "{attribute} '{asked}' is neither \"system\" nor the id or exact name of a template of this account"
            ))
            .into()
        })
}

/// A new user whose e-mail has a profile in another account gets a transfer invitation
/// (`transferPending`); otherwise a welcome one (`inviteSent`) unless `sendWelcomeEmail` is
/// false (`active`, nothing sent). Writes the invitation state into the document.
pub(crate) fn plan_invitation(
    doc: &mut Document,
    elsewhere: Option<&ProfileElsewhere>,
    now: i64,
) -> Option<PlannedInvitation> {
    let ext = extension_mut(doc);
    let welcome = ext
        .get("sendWelcomeEmail")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let (status, plan) = match elsewhere {
        Some(profile) => (
            "transferPending",
            Some(PlannedInvitation::Transfer {
                from_account: profile.account_id,
                from_user: profile.user_id,
            }),
        ),
        None if welcome => ("inviteSent", Some(PlannedInvitation::Welcome)),
        None => ("active", None),
    };
    ext.insert("accountStatus".into(), json!(status));
    ext.insert(
        "invitationSentCount".into(),
        json!(if plan.is_some() { 1 } else { 0 }),
    );
    if plan.is_some() {
        ext.insert(
            "invitationLastSentAt".into(),
            json!(crate::provisioning::render::timestamp(now)),
        );
    }
    plan
}

/// What a user write reads before its transaction opens, on a reading connection, so that the
/// transaction (on SQLite: the one writer) is held for the writes alone: the account's policy
/// and name, and for a create the profile the e-mail has in another account. A policy changed
/// in between is seen by the next write, as if this one had arrived a moment earlier.
pub(crate) struct Preloaded {
    pub policy: AccountPolicy,
    pub account_name: String,
    pub elsewhere: Option<ProfileElsewhere>,
}

impl Provisioner {
    /// Loads [`Preloaded`]; `new_user_name` for a create (the transfer check).
    pub(crate) async fn preload(
        &self,
        ctx: &Context,
        new_user_name: Option<&str>,
    ) -> Result<Preloaded> {
        let account_id = ctx.principal.account_id;
        let mut read = self.store.read().await?;
        let policy = read
            .account_policy(account_id)
            .await?
            .ok_or_else(|| Error::Internal("the caller's account has no row".into()))?;
        let account_name = read.account_name(account_id).await?.unwrap_or_default();
        let elsewhere = match new_user_name {
            Some(name) => read
                .profiles_elsewhere(account_id, name)
                .await?
                .into_iter()
                .next(),
            None => None,
        };
        read.commit().await?;
        Ok(Preloaded {
            policy,
            account_name,
            elsewhere,
        })
    }
}

impl Provisioner {
    /// Validates and completes the domain side of a user write, takes and releases what it
    /// implies (seats, extension, number), and returns the row's derived columns.
    pub(crate) async fn settle_user(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        user_id: Uuid,
        write: &UserWrite<'_>,
        doc: &mut Document,
        preloaded: &Preloaded,
    ) -> Result<Settled> {
        let account_id = ctx.principal.account_id;
        let policy = &preloaded.policy;
        let existing = write.existing();
        let now = crate::store::now_micros();
        let active = doc.get("active").and_then(Value::as_bool).unwrap_or(true);

        if let UserWrite::Replace { existing, body } = write {
            for name in KEPT_ON_PUT {
                if !body_mentions(body, name)
                    && let Some(value) = extension(&existing.doc).and_then(|e| e.get(*name))
                {
                    extension_mut(doc).insert((*name).to_string(), value.clone());
                }
            }
            if !body_mentions_core(body, "roles")
                && let Some(roles) = existing.doc.get("roles")
            {
                doc.insert("roles".into(), roles.clone());
            }
        }
        self.settle_create_only(tx, account_id, existing, doc)
            .await?;
        {
            let ext = extension_mut(doc);
            ext.insert("accountKey".into(), Value::String(account_id.to_string()));
            match existing.and_then(|e| extension(&e.doc)) {
                Some(old) => {
                    for name in SERVER_OWNED {
                        match old.get(*name) {
                            Some(v) => ext.insert((*name).to_string(), v.clone()),
                            None => ext.remove(*name),
                        };
                    }
                }
                None => {
                    ext.entry("voicemailEnabled").or_insert(json!(true));
                }
            }
        }
        let invitation = match write {
            UserWrite::Create => plan_invitation(doc, preloaded.elsewhere.as_ref(), now),
            _ => None,
        };

        let role = self.settle_roles(tx, ctx, existing, doc, active).await?;
        let extension = self
            .settle_extension(tx, account_id, user_id, existing, doc, policy)
            .await?;
        self.settle_location(tx, account_id, existing, doc).await?;
        let licences = self
            .settle_licences(
                tx,
                ctx,
                user_id,
                existing.map(|e| &e.doc.0),
                doc,
                active,
                policy,
            )
            .await?;
        let held_number = match existing {
            None => None,
            Some(_) => tx
                .phone_numbers_of_user(account_id, user_id)
                .await?
                .map(|n| n.number),
        };
        self.settle_number(
            tx,
            account_id,
            user_id,
            doc,
            &licences,
            held_number,
            active,
            now,
        )
        .await?;
        tx.ensure_voicemail_box(account_id, user_id, now).await?;

        list_schema(doc, USER_EXTENSION);
        let held_until = match (active, existing) {
            (true, _) => None,
            (false, Some(old)) if !old.active => old.held_until,
            (false, _) => Some(now + policy.quarantine_days * DAY_MICROS),
        };
        Ok(Settled {
            account_role: role.stored(),
            extension,
            held_until,
            holds_licences: !licences.is_empty(),
            invitation,
        })
    }

    /// `sendWelcomeEmail`, `welcomeEmailTemplate`, `productSettingsTemplate`: resolved at
    /// creation; afterwards an identical (or equivalent) value is accepted, a different one is
    /// `400 mutability`, and an omitted one keeps the original.
    pub(crate) async fn settle_create_only(
        &self,
        tx: &mut Tx,
        account_id: Uuid,
        existing: Option<&UserRecord>,
        doc: &mut Document,
    ) -> Result<()> {
        for name in CREATE_ONLY {
            let asked = extension(doc).and_then(|e| e.get(*name)).cloned();
            let old = existing
                .and_then(|e| extension(&e.doc))
                .and_then(|e| e.get(*name));
            // The stored value, sent back: nothing to resolve (the template may be gone since).
            let unchanged = asked.is_some() && asked.as_ref() == old;
            let resolved = match (&asked, *name) {
                (None, _) => None,
                (Some(v), _) if unchanged => Some(v.clone()),
                (Some(v), "sendWelcomeEmail") => Some(v.clone()),
                (Some(v), "welcomeEmailTemplate") => {
                    let emails = tx.email_template_names(account_id).await?;
                    Some(json!(resolve_template(v, &emails, name)?))
                }
                (Some(v), _) => {
                    let settings: Vec<(Uuid, String)> = tx
                        .settings_templates(account_id)
                        .await?
                        .into_iter()
                        .map(|t| (t.id, t.name))
                        .collect();
                    Some(json!(resolve_template(v, &settings, name)?))
                }
            };
            let value = match (old, resolved, existing.is_some()) {
                (Some(old), Some(new), _) if *old != new => {
                    return Err(ScimError::mutability(format!(
                        "'{name}' is set once, when the user is created (it is {old}); change the user's settings in the admin API instead"
                    ))
                    .into());
                }
                (Some(old), _, _) => Some(old.clone()),
                (None, Some(new), false) => Some(new),
                (None, Some(_), true) => {
                    return Err(ScimError::mutability(format!(
                        "'{name}' can only be given when the user is created"
                    ))
                    .into());
                }
                (None, None, false) => Some(match *name {
                    "sendWelcomeEmail" => json!(true),
                    _ => json!(SYSTEM_TEMPLATE),
                }),
                (None, None, true) => None,
            };
            let ext = extension_mut(doc);
            match value {
                Some(v) => ext.insert((*name).to_string(), v),
                None => ext.remove(*name),
            };
        }
        Ok(())
    }
}

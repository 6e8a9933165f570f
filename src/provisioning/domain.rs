//! What a user write means for the phone system: the account role and who may grant it,
//! licences and seats, the extension and voicemail box, the phone number, SMS and emergency
//! location, the settings and welcome-e-mail templates, and the deactivation hold.
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

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use sqlx::types::Json;
use uuid::Uuid;

use super::{Context, Error, Result};
use crate::domain::{AccountRole, CustomRoleId, E164Number};
use crate::scim::error::ScimError;
use crate::scim::resource::Document;
use crate::store::{AccountPolicy, LicenceRow, Tx, UserRecord};

pub const USER_EXTENSION: &str = "urn:switchboard:scim:schemas:extension:uc:1.0:User";
pub const GROUP_EXTENSION: &str = "urn:switchboard:scim:schemas:extension:uc:1.0:Group";

/// The product whose licence a phone number requires.
pub const PHONE_PRODUCT: &str = "phone";
/// Released numbers wait this long before anyone else can have them.
pub const NUMBER_QUARANTINE_MICROS: i64 = 72 * 3_600 * 1_000_000;
/// Soft-deleted users can be restored for this long.
pub const RESTORE_WINDOW_MICROS: i64 = 30 * 86_400 * 1_000_000;
pub const DAY_MICROS: i64 = 86_400 * 1_000_000;

/// `accountStatus` of a user who declined a transfer: shown as suspended, holds no seat.
pub const TRANSFER_DECLINED: &str = "transferDeclined";

/// The built-in template name, for both settings and welcome e-mails.
pub const SYSTEM_TEMPLATE: &str = "system";

/// Permissions a custom role can carry.
pub const PERMISSIONS: &[&str] = &[
    "configurePbx",
    "viewInvoices",
    "payInvoices",
    "viewReports",
    "manageGroups",
];

const PBX_PERMISSIONS: &[&str] = &["configurePbx", "viewInvoices", "payInvoices", "viewReports"];

/// Attributes whose absence from a PUT means "unchanged".
const KEPT_ON_PUT: &[&str] = &[
    "extensionNumber",
    "directNumber",
    "emergencyLocation",
    "smsEnabled",
];

/// Attributes set once, at creation.
const CREATE_ONLY: &[&str] = &[
    "sendWelcomeEmail",
    "welcomeEmailTemplate",
    "productSettingsTemplate",
];

/// Attributes only the server writes, carried from one version of the document to the next.
const SERVER_OWNED: &[&str] = &[
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
    fn existing(&self) -> Option<&UserRecord> {
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

/// The account role stored on a user row; a value this server does not know is an error, never
/// a silent `member`.
pub(crate) fn stored_role(user: &UserRecord) -> Result<AccountRole> {
    AccountRole::from_stored(&user.account_role).map_err(|e| {
        Error::Internal(format!(
            "user {} has an account role this server does not know: {e}",
            user.id
        ))
    })
}

/// The user extension object of a document, created if absent.
pub fn extension_mut(doc: &mut Document) -> &mut Map<String, Value> {
    let entry = doc
        .entry(USER_EXTENSION.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(map) => map,
        _ => unreachable!("the extension entry was just made an object"),
    }
}

pub fn extension(doc: &Document) -> Option<&Map<String, Value>> {
    doc.get(USER_EXTENSION).and_then(Value::as_object)
}

fn ext_str<'d>(doc: &'d Document, name: &str) -> Option<&'d str> {
    extension(doc)?.get(name)?.as_str()
}

/// Whether the raw body of a PUT mentions an attribute of the user extension (with any value,
/// `null` included), in either the nested or the `urn:…:attr` form, in any letter case.
fn body_mentions(body: &Value, name: &str) -> bool {
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

fn body_mentions_core(body: &Value, name: &str) -> bool {
    body.as_object()
        .is_some_and(|o| o.keys().any(|k| k.eq_ignore_ascii_case(name)))
}

/// One entitlement asked for: a licence (`phone`) or a feature of one (`phone:sms`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Entitlement {
    License(String),
    Feature(String, String),
}

/// Parses SCIM entitlement objects; `type` is case-insensitive and, when absent, inferred from
/// the value (`product:feature` is a feature).
fn parse_entitlements(items: &[Value], label: &str) -> Result<Vec<Entitlement>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let value = item
            .get("value")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ScimError::invalid_value(format!("every '{label}' item needs a 'value'"))
            })?;
        let kind = item.get("type").and_then(Value::as_str).unwrap_or_default();
        let feature = value.split_once(':');
        let entitlement = if kind.eq_ignore_ascii_case("feature")
            || (kind.is_empty() && feature.is_some())
        {
            let (product, name) = feature.ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "feature entitlement '{value}' must be written 'product:feature', e.g. 'phone:sms'"
                ))
            })?;
            Entitlement::Feature(product.to_string(), name.to_string())
        } else if kind.is_empty() || kind.eq_ignore_ascii_case("license") {
            Entitlement::License(value.to_string())
        } else {
            return Err(ScimError::invalid_value(format!(
                "'{label}' type '{kind}' is not one of License, Feature"
            ))
            .into());
        };
        out.push(entitlement);
    }
    Ok(out)
}

/// Where a wanted licence comes from.
#[derive(Debug, Default)]
struct Wanted {
    sources: Vec<String>,
    features: Vec<String>,
    /// Asked for directly (entitlements or bundle): no seat means the request is refused.
    required: bool,
}

impl super::Provisioner {
    /// Validates and completes the domain side of a user write, takes and releases what it
    /// implies (seats, extension, number), and returns the row's derived columns.
    pub(crate) async fn settle_user(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        user_id: Uuid,
        write: &UserWrite<'_>,
        doc: &mut Document,
    ) -> Result<Settled> {
        let account_id = ctx.principal.account_id;
        let policy = tx
            .account_policy(account_id)
            .await?
            .ok_or_else(|| Error::Internal("the caller's account has no row".into()))?;
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
            UserWrite::Create => Some(self.plan_invitation(tx, account_id, doc, now).await?),
            _ => None,
        }
        .flatten();

        let role = self.settle_roles(tx, ctx, existing, doc, active).await?;
        let extension = self
            .settle_extension(tx, account_id, user_id, existing, doc, &policy)
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
                &policy,
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

    /// A new user whose e-mail has a profile in another account gets a transfer invitation
    /// (`transferPending`); otherwise a welcome one (`inviteSent`) unless `sendWelcomeEmail` is
    /// false (`active`, nothing sent).
    async fn plan_invitation(
        &self,
        tx: &mut Tx,
        account_id: Uuid,
        doc: &mut Document,
        now: i64,
    ) -> Result<Option<PlannedInvitation>> {
        let user_name = doc
            .get("userName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let elsewhere = tx.profiles_elsewhere(account_id, &user_name).await?;
        let ext = extension_mut(doc);
        let welcome = ext
            .get("sendWelcomeEmail")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let (status, plan) = match elsewhere.first() {
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
                json!(super::render::timestamp(now)),
            );
        }
        Ok(plan)
    }

    /// `sendWelcomeEmail`, `welcomeEmailTemplate`, `productSettingsTemplate`: resolved at
    /// creation; afterwards an identical (or equivalent) value is accepted, a different one is
    /// `400 mutability`, and an omitted one keeps the original.
    async fn settle_create_only(
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

    /// Parses `roles`, checks the caller may grant the result, protects the last super-admin,
    /// and writes the canonical list back into the document.
    async fn settle_roles(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        existing: Option<&UserRecord>,
        doc: &mut Document,
        active: bool,
    ) -> Result<AccountRole> {
        let account_id = ctx.principal.account_id;
        let mut account_roles = Vec::new();
        let mut pbx = Vec::new();
        if let Some(Value::Array(items)) = doc.get("roles") {
            for item in items {
                let value = role_value(item)?;
                if let Some(role) = value.strip_prefix("account:") {
                    account_roles.push(match role {
                        "superAdmin" => AccountRole::SuperAdmin,
                        "admin" => AccountRole::Admin,
                        "member" => AccountRole::Member,
                        custom => {
                            let id = custom
                                .strip_prefix("custom:")
                                .and_then(|id| Uuid::parse_str(id).ok())
                                .ok_or_else(|| unknown_role(&value))?;
                            if tx.custom_role(account_id, id).await?.is_none() {
                                return Err(ScimError::invalid_value(format!(
                                    "custom role {id} does not exist in this account; GET /Roles lists the assignable roles"
                                ))
                                .into());
                            }
                            AccountRole::Custom(CustomRoleId::from(id))
                        }
                    });
                } else if let Some(permission) = value.strip_prefix("pbx:") {
                    if permission != "superAdministrator" && !PBX_PERMISSIONS.contains(&permission)
                    {
                        return Err(unknown_role(&value).into());
                    }
                    if !pbx.contains(&permission.to_string()) {
                        pbx.push(permission.to_string());
                    }
                } else {
                    return Err(unknown_role(&value).into());
                }
            }
        }
        account_roles.dedup();
        if account_roles.len() > 1 {
            return Err(ScimError::invalid_value(
                "a user has exactly one account role (account:superAdmin, account:admin, account:member or account:custom:<id>); this request names several",
            )
            .into());
        }
        if pbx.len() > 1 && pbx.iter().any(|p| p == "superAdministrator") {
            return Err(ScimError::invalid_value(
                "pbx:superAdministrator already includes every phone-system permission; send it alone or send individual pbx:* permissions",
            )
            .into());
        }
        let role = account_roles.pop().unwrap_or(AccountRole::Member);
        let before = existing.map(stored_role).transpose()?;

        if ctx.principal.actor.is_admin_token() {
            if role.privileged() {
                return Err(ScimError::forbidden(format!(
                    "an admin token may only create or keep members and custom-role users; granting {} needs a super-admin token",
                    role.scim_value()
                ))
                .into());
            }
            if let Some(before) = before.as_ref().filter(|b| b.privileged()) {
                return Err(ScimError::forbidden(format!(
                    "this user holds {}; only a super-admin token may change them",
                    before.scim_value()
                ))
                .into());
            }
        }
        let was_active_super =
            existing.is_some_and(|e| e.active) && before.as_ref() == Some(&AccountRole::SuperAdmin);
        if was_active_super && !(active && role == AccountRole::SuperAdmin) {
            self.protect_last_super_admin(tx, account_id, "demote or deactivate")
                .await?;
        }

        let mut canonical = vec![json!({
            "value": role.scim_value(),
            "type": "account",
            "primary": true,
        })];
        canonical.extend(
            pbx.iter()
                .map(|p| json!({"value": format!("pbx:{p}"), "type": "pbx"})),
        );
        doc.insert("roles".into(), Value::Array(canonical));
        Ok(role)
    }

    /// Refuses a change that would leave the account without an active super-admin.
    pub(crate) async fn protect_last_super_admin(
        &self,
        tx: &mut Tx,
        account_id: Uuid,
        what: &str,
    ) -> Result<()> {
        tx.lock_account(account_id).await?;
        let count = tx
            .count_active_with_role(account_id, &AccountRole::SuperAdmin.stored())
            .await?;
        if count <= 1 {
            return Err(ScimError::new(
                409,
                None,
                format!(
                    "this user is the account's last active super-admin: cannot {what} them; make another user account:superAdmin first"
                ),
            )
            .into());
        }
        Ok(())
    }

    /// Keeps, validates or allocates the extension; writes it back as digits.
    async fn settle_extension(
        &self,
        tx: &mut Tx,
        account_id: Uuid,
        user_id: Uuid,
        existing: Option<&UserRecord>,
        doc: &mut Document,
        policy: &AccountPolicy,
    ) -> Result<Option<i64>> {
        let asked = ext_str(doc, "extensionNumber")
            .map(str::trim)
            .map(str::to_string);
        let current = existing.and_then(|e| e.extension);
        let active = doc.get("active").and_then(Value::as_bool).unwrap_or(true);
        // An inactive user whose hold ran out has no extension until they come back (asking for
        // a number explicitly is still allowed).
        let hold_released = existing.is_some_and(|e| !e.active && e.extension.is_none());
        if !active && hold_released && matches!(asked.as_deref(), None | Some("") | Some("auto")) {
            extension_mut(doc).remove("extensionNumber");
            return Ok(None);
        }
        let wanted = match asked.as_deref() {
            None | Some("") | Some("auto") => current,
            Some(digits) => {
                let number = parse_extension(digits, policy)?;
                if Some(number) != current
                    && let Some(holder) = tx.extension_holder(account_id, number).await?
                    && holder != user_id
                {
                    return Err(ScimError::uniqueness(format!(
                        "extension {number} is already assigned to another user of this account; send \"auto\" (or nothing) to get the next free one"
                    ))
                    .into());
                }
                Some(number)
            }
        };
        let number = match wanted {
            Some(n) => n,
            None => {
                self.extensions
                    .allocate(tx, account_id, policy.extension_first, policy.extension_last)
                    .await?
                    .ok_or_else(|| {
                        ScimError::new(
                            409,
                            None,
                            format!(
                                "every extension of the account's range {}–{} is taken; widen the range in the admin API",
                                policy.extension_first, policy.extension_last
                            ),
                        )
                    })?
            }
        };
        extension_mut(doc).insert("extensionNumber".into(), json!(number.to_string()));
        Ok(Some(number))
    }

    /// Resolves `emergencyLocation` (id or exact name) to the location's id, and its name.
    async fn settle_location(
        &self,
        tx: &mut Tx,
        account_id: Uuid,
        existing: Option<&UserRecord>,
        doc: &mut Document,
    ) -> Result<()> {
        let Some(asked) = ext_str(doc, "emergencyLocation").map(str::to_string) else {
            extension_mut(doc).remove("emergencyLocationName");
            return Ok(());
        };
        // The stored location sent back stays as it is, even if it was deleted since: a
        // deactivation must never fail on a reference an admin removed.
        let stored = existing.and_then(|e| extension(&e.doc));
        let stored_as = |name: &str| stored.and_then(|e| e.get(name)).and_then(Value::as_str);
        if stored_as("emergencyLocation") == Some(&asked)
            || stored_as("emergencyLocationName") == Some(&asked)
        {
            if let Some(id) = stored.and_then(|e| e.get("emergencyLocation")).cloned() {
                extension_mut(doc).insert("emergencyLocation".into(), id);
            }
            if let Some(name) = stored.and_then(|e| e.get("emergencyLocationName")).cloned() {
                extension_mut(doc).insert("emergencyLocationName".into(), name);
            }
            return Ok(());
        }
        let locations = tx.emergency_locations(account_id).await?;
        let found = locations
            .iter()
            .find(|l| l.id.to_string() == asked.to_ascii_lowercase())
            .or_else(|| locations.iter().find(|l| l.name == asked))
            .ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "emergencyLocation '{asked}' is neither the id nor the exact name of an emergency location of this account"
                ))
            })?;
        let ext = extension_mut(doc);
        ext.insert("emergencyLocation".into(), json!(found.id.to_string()));
        ext.insert("emergencyLocationName".into(), json!(found.name));
        Ok(())
    }

    /// The licences the user should hold: direct entitlements, the bundle's, and those of every
    /// group above them; then seats are taken and released to match. Returns the codes held — or,
    /// for a user who holds none by policy (inactive, transfer declined), the codes asked for.
    ///
    /// References the user already had (a bundle, a product) that were removed from the
    /// catalogue since are dropped quietly, so that an IdP can always deactivate or update the
    /// user; a new reference to something unknown is `400`.
    #[allow(clippy::too_many_arguments)]
    async fn settle_licences(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        user_id: Uuid,
        previous: Option<&Document>,
        doc: &mut Document,
        active: bool,
        policy: &AccountPolicy,
    ) -> Result<Vec<String>> {
        let account_id = ctx.principal.account_id;
        let mut known_before: BTreeSet<String> = match previous.and_then(|p| p.get("entitlements"))
        {
            Some(Value::Array(items)) => parse_entitlements(items, "entitlements")
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| match e {
                    Entitlement::License(code) => Some(code),
                    Entitlement::Feature(..) => None,
                })
                .collect(),
            _ => BTreeSet::new(),
        };
        // A user being created holds nothing and belongs to no group yet: nothing to read.
        let is_new = previous.is_none();
        let current = if is_new {
            Vec::new()
        } else {
            tx.licences_of_users(account_id, &[user_id]).await?
        };
        known_before.extend(current.iter().map(|l| l.code.clone()));
        let previous_bundle = previous
            .and_then(|p| p.get(USER_EXTENSION))
            .and_then(|e| e.get("licenseBundle"))
            .and_then(Value::as_str);
        let mut asked = match doc.get("entitlements") {
            Some(Value::Array(items)) => parse_entitlements(items, "entitlements")?,
            _ => Vec::new(),
        };
        let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
        for e in &asked {
            if let Entitlement::License(code) = e {
                let w = wanted.entry(code.clone()).or_default();
                w.required = true;
                w.sources.push("direct".into());
            }
        }
        let bundle_name = ext_str(doc, "licenseBundle").map(str::to_string);
        let bundle = match &bundle_name {
            Some(name) => match tx.bundle_by_name(account_id, name).await? {
                Some(bundle) => Some(bundle),
                None if previous_bundle == Some(name.as_str()) => None,
                None => {
                    return Err(ScimError::invalid_value(format!(
                        "licenseBundle '{name}' is not a licence bundle of this account"
                    ))
                    .into());
                }
            },
            None => None,
        };
        if let Some(bundle) = bundle {
            let items = parse_entitlements(&bundle.entitlements.0, "licenseBundle")?;
            for e in &items {
                if let Entitlement::License(code) = e {
                    let w = wanted.entry(code.clone()).or_default();
                    w.required = true;
                    w.sources.push("bundle".into());
                }
            }
            asked.extend(items);
        }
        let inherited = if is_new {
            Vec::new()
        } else {
            self.inherited_entitlements(tx, account_id, user_id).await?
        };
        for (group_id, items) in inherited {
            for e in &items {
                if let Entitlement::License(code) = e {
                    wanted
                        .entry(code.clone())
                        .or_default()
                        .sources
                        .push(group_id.to_string());
                }
            }
            asked.extend(items);
        }
        for e in &asked {
            if let Entitlement::Feature(product, feature) = e {
                let Some(w) = wanted.get_mut(product) else {
                    return Err(ScimError::invalid_value(format!(
                        "feature '{product}:{feature}' needs the '{product}' licence, which this user is not given"
                    ))
                    .into());
                };
                if !w.features.contains(feature) {
                    w.features.push(feature.clone());
                }
            }
        }
        let declined = ext_str(doc, "accountStatus") == Some(TRANSFER_DECLINED);
        if (!active && !policy.retain_licences) || declined {
            // Asked for, not held: what the user would hold, as far as the phone number's
            // licence check is concerned.
            let requested: Vec<String> = wanted.keys().cloned().collect();
            self.reconcile_licences(
                tx,
                account_id,
                user_id,
                &current,
                BTreeMap::new(),
                &known_before,
            )
            .await?;
            return Ok(requested);
        }
        self.reconcile_licences(tx, account_id, user_id, &current, wanted, &known_before)
            .await
    }

    /// Entitlements granted by the groups above the user (direct and nested memberships).
    async fn inherited_entitlements(
        &self,
        tx: &mut Tx,
        account_id: Uuid,
        user_id: Uuid,
    ) -> Result<Vec<(Uuid, Vec<Entitlement>)>> {
        let memberships = tx.groups_of_users(account_id, &[user_id]).await?;
        let mut out = Vec::new();
        for membership in memberships {
            let Some(group) = tx.group(account_id, membership.group_id, false).await? else {
                continue;
            };
            if let Some(Value::Array(items)) = group
                .doc
                .get(GROUP_EXTENSION)
                .and_then(|e| e.get("entitlements"))
            {
                out.push((group.id, parse_entitlements(items, "entitlements")?));
            }
        }
        Ok(out)
    }

    /// Brings the user's licence rows from `current` to `wanted`, taking and releasing seats. A
    /// product or feature in `tolerated` (the user had it before) that the catalogue no longer
    /// has is dropped instead of refused.
    async fn reconcile_licences(
        &self,
        tx: &mut Tx,
        account_id: Uuid,
        user_id: Uuid,
        current: &[LicenceRow],
        wanted: BTreeMap<String, Wanted>,
        tolerated: &BTreeSet<String>,
    ) -> Result<Vec<String>> {
        let now = crate::store::now_micros();
        for row in current.iter().filter(|r| !wanted.contains_key(&r.code)) {
            tx.delete_licence(user_id, row.product_id).await?;
            if row.state == "assigned" {
                self.free_seat(tx, row.product_id).await?;
            }
        }
        let mut held = Vec::new();
        for (code, mut w) in wanted {
            let Some(product) = tx.product_by_code(account_id, &code).await? else {
                if tolerated.contains(&code) {
                    continue;
                }
                return Err(ScimError::invalid_value(format!(
                    "licence '{code}' is not a product of this account; GET /Entitlements lists them"
                ))
                .into());
            };
            let previous = current.iter().find(|r| r.product_id == product.id);
            let mut features = Vec::with_capacity(w.features.len());
            for feature in w.features.drain(..) {
                if product.features.0.contains(&feature) {
                    features.push(feature);
                } else if !previous.is_some_and(|p| p.features.0.contains(&feature)) {
                    return Err(ScimError::invalid_value(format!(
                        "'{feature}' is not a feature of product '{code}' (its features: {})",
                        product.features.0.join(", ")
                    ))
                    .into());
                }
            }
            w.features = features;
            let state = match previous.map(|r| r.state.as_str()) {
                Some("assigned") => "assigned",
                _ if tx.take_seat(product.id).await? => "assigned",
                _ if w.required => {
                    return Err(ScimError::forbidden(format!(
                        "no free seat for product {code}: {} of {} used; free a seat or add seats before assigning it",
                        product.seats_used, product.seats
                    ))
                    .into());
                }
                _ => "pendingSeat",
            };
            if state == "assigned" {
                held.push(code.clone());
            }
            let row = LicenceRow {
                user_id,
                product_id: product.id,
                code,
                state: state.to_string(),
                sources: Json(w.sources),
                features: Json(w.features),
                since: previous
                    .filter(|p| p.state == state)
                    .map_or(now, |p| p.since),
            };
            tx.put_licence(account_id, &row).await?;
        }
        Ok(held)
    }

    /// Releases one seat and gives it to whoever has waited longest for one.
    pub(crate) async fn free_seat(&self, tx: &mut Tx, product_id: Uuid) -> Result<()> {
        tx.release_seat(product_id).await?;
        if let Some(waiting) = tx.oldest_pending_licence(product_id).await?
            && tx.take_seat(product_id).await?
        {
            tx.set_licence_assigned(waiting, product_id).await?;
        }
        Ok(())
    }

    /// Releases every licence of a user (deletion).
    pub(crate) async fn release_licences(
        &self,
        tx: &mut Tx,
        account_id: Uuid,
        user_id: Uuid,
    ) -> Result<()> {
        let current = tx.licences_of_users(account_id, &[user_id]).await?;
        self.reconcile_licences(
            tx,
            account_id,
            user_id,
            &current,
            BTreeMap::new(),
            &BTreeSet::new(),
        )
        .await
        .map(|_| ())
    }

    /// Re-derives the licences of users whose group memberships or groups changed. Inherited
    /// licences that find no seat wait; nothing here refuses the group write.
    pub(crate) async fn refresh_inherited(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        user_ids: &[Uuid],
    ) -> Result<()> {
        let account_id = ctx.principal.account_id;
        let policy = tx
            .account_policy(account_id)
            .await?
            .ok_or_else(|| Error::Internal("the caller's account has no row".into()))?;
        for user_id in user_ids {
            let Some(user) = tx.user(account_id, *user_id, false).await? else {
                continue;
            };
            let mut doc = user.doc.0.clone();
            // Direct licences the user already holds stay held; a direct one without a seat
            // (seats lowered since) is not this write's to refuse.
            let result = self
                .settle_licences(
                    tx,
                    ctx,
                    user.id,
                    Some(&user.doc.0),
                    &mut doc,
                    user.active,
                    &policy,
                )
                .await;
            match result {
                Ok(_) => {}
                Err(Error::Scim(e)) if e.status == 403 || e.status == 400 => {
                    tracing::warn!(user = %user.id, detail = %e.detail, "inherited licences left as they were");
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    /// `directNumber` and `smsEnabled`: claims, keeps or releases the user's number.
    #[allow(clippy::too_many_arguments)]
    async fn settle_number(
        &self,
        tx: &mut Tx,
        account_id: Uuid,
        user_id: Uuid,
        doc: &mut Document,
        licences: &[String],
        held: Option<String>,
        active: bool,
        now: i64,
    ) -> Result<()> {
        let asked = ext_str(doc, "directNumber")
            .map(str::trim)
            .map(str::to_string);
        let wanted = match asked.as_deref() {
            None | Some("") => None,
            Some("auto") => match &held {
                Some(number) => Some(number.clone()),
                None => Some(tx.free_phone_number(account_id, now).await?.ok_or_else(|| {
                    ScimError::invalid_value(
                        "directNumber 'auto': the account has no free phone number; add numbers to the inventory in the admin API",
                    )
                })?),
            },
            Some(number) => Some(E164Number::parse(number)?.into_string()),
        };
        // An inactive user keeps (holds) their number without a seat; a new assignment needs the
        // licence asked for, and an active user needs it held.
        let must_be_licensed = wanted.is_some() && (active || wanted != held);
        if must_be_licensed && !licences.iter().any(|l| l == PHONE_PRODUCT) {
            return Err(ScimError::invalid_value(format!(
                "a directNumber needs the '{PHONE_PRODUCT}' licence; add {{\"value\": \"{PHONE_PRODUCT}\", \"type\": \"License\"}} to entitlements"
            ))
            .into());
        }
        if held != wanted {
            if held.is_some() {
                tx.release_phone_number(account_id, user_id, now + NUMBER_QUARANTINE_MICROS)
                    .await?;
            }
            if let Some(number) = &wanted
                && !tx
                    .claim_phone_number(account_id, number, user_id, now)
                    .await?
            {
                let row = tx.phone_number(account_id, number).await?;
                return Err(match row {
                    None => ScimError::invalid_value(format!(
                        "directNumber {number} is not in this account's number inventory"
                    )),
                    Some(n) if n.user_id.is_some() => ScimError::uniqueness(format!(
                        "directNumber {number} is already assigned to another user"
                    )),
                    Some(n) => ScimError::invalid_value(format!(
                        "directNumber {number} was released recently and is in quarantine until {}",
                        super::render::timestamp(n.available_at.unwrap_or_default())
                    )),
                }
                .into());
            }
        }
        let sms = extension(doc)
            .and_then(|e| e.get("smsEnabled"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if sms {
            let capable = match &wanted {
                Some(number) => tx
                    .phone_number(account_id, number)
                    .await?
                    .is_some_and(|n| n.sms_capable),
                None => false,
            };
            if !capable {
                return Err(ScimError::invalid_value(match &wanted {
                    Some(number) => format!("smsEnabled: number {number} cannot send SMS"),
                    None => "smsEnabled needs a directNumber".to_string(),
                })
                .into());
            }
        }
        let ext = extension_mut(doc);
        match wanted {
            Some(number) => ext.insert("directNumber".into(), json!(number)),
            None => ext.remove("directNumber"),
        };
        Ok(())
    }
}

/// Adds `urn` to the document's `schemas` and puts the list in one order (the core schema
/// first, extensions sorted), so that equal documents compare equal whatever order a client or
/// the database's JSON type gave them.
fn list_schema(doc: &mut Document, urn: &str) {
    if let Some(Value::Array(schemas)) = doc.get_mut("schemas") {
        if !schemas.iter().any(|s| s.as_str() == Some(urn)) {
            schemas.push(json!(urn));
        }
        if let Some((_, extensions)) = schemas.split_first_mut() {
            extensions.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        }
    }
}

fn role_value(item: &Value) -> Result<String> {
    // Some clients send the role as a bare string, or as stringified JSON.
    let value = match item {
        Value::String(s) => s.clone(),
        other => other
            .get("value")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ScimError::invalid_value("every 'roles' item needs a 'value'"))?,
    };
    let value = value.trim();
    // One IdP's app-role mapping sends each role as stringified JSON:
    // `{"value": "{\"id\":\"…\",\"value\":\"account:admin\",\"displayName\":\"Admin\"}"}`.
    if value.starts_with('{')
        && let Ok(Value::Object(inner)) = serde_json::from_str::<Value>(value)
        && let Some(Value::String(inner)) = inner.get("value")
    {
        return Ok(inner.trim().to_string());
    }
    Ok(value.to_string())
}

fn unknown_role(value: &str) -> ScimError {
    ScimError::invalid_value(format!(
        "role '{value}' is not known: use account:superAdmin, account:admin, account:member, account:custom:<id>, or pbx:superAdministrator / pbx:configurePbx / pbx:viewInvoices / pbx:payInvoices / pbx:viewReports; GET /Roles lists them"
    ))
}

fn resolve_template(
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

fn parse_extension(digits: &str, policy: &AccountPolicy) -> Result<i64> {
    let number = digits
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| digits.parse::<i64>().ok())
        .flatten()
        .ok_or_else(|| {
            ScimError::invalid_value(format!(
                "extensionNumber '{digits}' must be digits (or \"auto\" for the next free one)"
            ))
        })?;
    if number < policy.extension_first || number > policy.extension_last {
        return Err(ScimError::invalid_value(format!(
            "extensionNumber {number} is outside the account's range {}–{}",
            policy.extension_first, policy.extension_last
        ))
        .into());
    }
    Ok(number)
}

/// Adds the user's `licenseStatus` and `devices` (read-only, from their tables) to a rendered
/// user.
pub fn add_user_extras(
    rendered: &mut Map<String, Value>,
    scim_base: &str,
    licences: &[LicenceRow],
    devices: &[crate::store::Device],
) {
    let status: Vec<Value> = licences
        .iter()
        .flat_map(|l| {
            l.sources
                .0
                .iter()
                .map(move |source| json!({"value": l.code, "state": l.state, "source": source}))
        })
        .collect();
    let admin_base = scim_base.trim_end_matches("/scim/v2");
    let devices: Vec<Value> = devices
        .iter()
        .map(|d| {
            let mut item = json!({
                "value": d.id.to_string(),
                "$ref": format!("{admin_base}/admin/v1/devices/{}", d.id),
                "macAddress": d.mac,
            });
            if let Some(model) = &d.model {
                item["model"] = json!(model);
            }
            if let Some(display) = &d.display {
                item["display"] = json!(display);
            }
            item
        })
        .collect();
    if status.is_empty() && devices.is_empty() {
        return;
    }
    let ext = rendered
        .entry(USER_EXTENSION.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(ext) = ext {
        if !status.is_empty() {
            ext.insert("licenseStatus".into(), Value::Array(status));
        }
        if !devices.is_empty() {
            ext.insert("devices".into(), Value::Array(devices));
        }
    }
}

/// What a group write changed that licence inheritance depends on.
pub struct GroupChange<'a> {
    pub group_id: Uuid,
    pub old_doc: Option<&'a Document>,
    pub new_doc: Option<&'a Document>,
    /// Members (users or groups) whose row the write inserted or deleted.
    pub added: &'a [Uuid],
    pub removed: &'a [Uuid],
}

fn group_entitlements(doc: Option<&Document>) -> Option<&Value> {
    doc?.get(GROUP_EXTENSION)?.get("entitlements")
}

impl super::Provisioner {
    /// Validates the group extension (licences, template, managers) and completes its
    /// server-owned attributes.
    pub(crate) async fn settle_group(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        existing: Option<&Document>,
        doc: &mut Document,
    ) -> Result<()> {
        let account_id = ctx.principal.account_id;
        let mut ext = match doc.remove(GROUP_EXTENSION) {
            Some(Value::Object(ext)) => ext,
            _ => Map::new(),
        };
        // What the group already had is not checked again (the catalogue may have changed
        // since): a membership sync must never fail on it.
        let stored = existing
            .and_then(|d| d.get(GROUP_EXTENSION))
            .and_then(Value::as_object);
        let unchanged = |name: &str, ext: &Map<String, Value>| {
            ext.get(name).is_some() && stored.and_then(|s| s.get(name)) == ext.get(name)
        };
        let manager_ids = |value: Option<&Value>| -> Vec<String> {
            let mut ids: Vec<String> = value
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|m| m.get("value").and_then(Value::as_str))
                        .map(str::to_ascii_lowercase)
                        .collect()
                })
                .unwrap_or_default();
            ids.sort();
            ids
        };
        let managers_unchanged = ext.get("managers").is_some()
            && manager_ids(ext.get("managers"))
                == manager_ids(stored.and_then(|s| s.get("managers")));
        if managers_unchanged && let Some(kept) = stored.and_then(|s| s.get("managers")) {
            ext.insert("managers".into(), kept.clone());
        }
        if let Some(Value::Array(items)) = ext
            .get("entitlements")
            .filter(|_| !unchanged("entitlements", &ext))
        {
            let parsed = parse_entitlements(items, "entitlements")?;
            for e in &parsed {
                let (code, feature) = match e {
                    Entitlement::License(code) => (code, None),
                    Entitlement::Feature(code, feature) => (code, Some(feature)),
                };
                let product = tx.product_by_code(account_id, code).await?.ok_or_else(|| {
                    ScimError::invalid_value(format!(
                        "licence '{code}' is not a product of this account; GET /Entitlements lists them"
                    ))
                })?;
                if let Some(feature) = feature
                    && !product.features.0.contains(feature)
                {
                    return Err(ScimError::invalid_value(format!(
                        "'{feature}' is not a feature of product '{code}'"
                    ))
                    .into());
                }
            }
        }
        if let Some(template) = ext
            .get("productSettingsTemplate")
            .filter(|_| !unchanged("productSettingsTemplate", &ext))
            .cloned()
        {
            let templates: Vec<(Uuid, String)> = tx
                .settings_templates(account_id)
                .await?
                .into_iter()
                .map(|t| (t.id, t.name))
                .collect();
            let name = resolve_template(&template, &templates, "productSettingsTemplate")?;
            ext.insert("productSettingsTemplate".into(), json!(name));
        }
        if let Some(Value::Array(managers)) =
            ext.get_mut("managers").filter(|_| !managers_unchanged)
        {
            for manager in managers.iter_mut() {
                let id = manager
                    .get("value")
                    .and_then(Value::as_str)
                    .and_then(|v| Uuid::parse_str(v).ok());
                let user = match id {
                    Some(id) => tx.user(account_id, id, false).await?,
                    None => None,
                };
                let Some(user) = user else {
                    return Err(ScimError::invalid_value(format!(
                        "manager {} is not a user of this account",
                        manager.get("value").unwrap_or(&Value::Null)
                    ))
                    .into());
                };
                let may_manage = match stored_role(&user)? {
                    AccountRole::Custom(role_id) => tx
                        .custom_role(account_id, role_id.into_uuid())
                        .await?
                        .is_some_and(|r| r.permissions.0.iter().any(|p| p == "manageGroups")),
                    _ => false,
                };
                if !may_manage {
                    return Err(ScimError::invalid_value(format!(
                        "user {} cannot manage groups: a group manager needs a custom role with the manageGroups permission",
                        user.user_name
                    ))
                    .into());
                }
                *manager = json!({
                    "value": user.id.to_string(),
                    "$ref": format!("{}/Users/{}", ctx.scim_base, user.id),
                    "display": user.display_name.as_deref().unwrap_or(&user.user_name),
                });
            }
        }
        let managed_by = existing
            .and_then(|d| d.get(GROUP_EXTENSION))
            .and_then(|e| e.get("managedBy"))
            .cloned()
            .unwrap_or(json!("scim"));
        ext.insert("managedBy".into(), managed_by);
        doc.insert(GROUP_EXTENSION.into(), Value::Object(ext));
        list_schema(doc, GROUP_EXTENSION);
        Ok(())
    }

    /// Re-derives inherited licences for the users a group write reaches. Nothing to do (and
    /// nothing read) when neither the group nor any group above it grants licences.
    pub(crate) async fn group_changed(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        change: GroupChange<'_>,
    ) -> Result<()> {
        let account_id = ctx.principal.account_id;
        let grants_changed =
            group_entitlements(change.old_doc) != group_entitlements(change.new_doc);
        let membership_changed = !change.added.is_empty() || !change.removed.is_empty();
        if !grants_changed && !membership_changed {
            return Ok(());
        }
        let grants = grants_changed
            || group_entitlements(change.old_doc).is_some()
            || match change.new_doc {
                Some(doc) => {
                    self.licences_flow_through(tx, ctx, change.group_id, doc)
                        .await?
                }
                None => false,
            };
        if !grants {
            return Ok(());
        }
        let mut users: Vec<Uuid> = Vec::new();
        if grants_changed {
            users.extend(tx.users_below_group(account_id, change.group_id).await?);
        }
        for id in change.added.iter().chain(change.removed) {
            if tx.group(account_id, *id, false).await?.is_some() {
                users.extend(tx.users_below_group(account_id, *id).await?);
            } else {
                users.push(*id);
            }
        }
        users.sort_unstable();
        users.dedup();
        self.refresh_inherited(tx, ctx, &users).await
    }

    /// Whether the group, or a group above it, grants licences.
    pub(crate) async fn licences_flow_through(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        group_id: Uuid,
        doc: &Document,
    ) -> Result<bool> {
        if group_entitlements(Some(doc)).is_some() {
            return Ok(true);
        }
        let account_id = ctx.principal.account_id;
        for (ancestor, _) in tx.ancestor_groups(account_id, group_id).await? {
            if let Some(group) = tx.group(account_id, ancestor, false).await?
                && group_entitlements(Some(&group.doc.0)).is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The group's computed read-only extension attributes — each only when the response
    /// carries it (`attributes` / `excludedAttributes`), since some cost a walk of the nesting.
    pub(crate) async fn add_group_extras(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        group: &crate::store::GroupRecord,
        projection: &crate::scim::projection::Projection,
        rendered: &mut Map<String, Value>,
    ) -> Result<()> {
        let account_id = ctx.principal.account_id;
        let schema = self.registry.schema(GROUP_EXTENSION);
        let wants = |name: &str| {
            schema
                .and_then(|s| s.attribute(name))
                .is_some_and(|a| projection.wants(Some(GROUP_EXTENSION), a))
        };
        let mut computed = Map::new();
        let direct = if wants("memberCount") || wants("effectiveMemberCount") {
            Some(tx.direct_member_counts(group.id).await?)
        } else {
            None
        };
        if let Some(direct) = direct.filter(|_| wants("memberCount")) {
            computed.insert("memberCount".into(), json!(direct.users + direct.groups));
        }
        if let Some(direct) = direct.filter(|_| wants("effectiveMemberCount")) {
            // Without nested groups, the effective members are the user members; with them, the
            // nesting is walked (a user in two member groups counts once).
            let count = if direct.groups == 0 {
                direct.users
            } else {
                tx.count_users_below_group(account_id, group.id).await?
            };
            computed.insert("effectiveMemberCount".into(), json!(count));
        }
        if wants("licenseErrors") {
            // Only a group that grants licences can have members waiting for a seat.
            let errors = if group_entitlements(Some(&group.doc.0)).is_some() {
                tx.pending_licences_from_group(account_id, group.id).await?
            } else {
                0
            };
            computed.insert("licenseErrors".into(), json!(errors));
        }
        if wants("parent") {
            let parent = tx
                .ancestor_groups(account_id, group.id)
                .await?
                .into_iter()
                .filter(|(_, depth)| *depth == 1)
                .map(|(id, _)| id)
                .min();
            if let Some(id) = parent
                && let Some(g) = tx.group(account_id, id, false).await?
            {
                computed.insert(
                    "parent".into(),
                    json!({
                        "value": g.id.to_string(),
                        "$ref": format!("{}/Groups/{}", ctx.scim_base, g.id),
                        "display": g.display_name,
                    }),
                );
            }
        }
        let ext = rendered
            .entry(GROUP_EXTENSION.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(ext) = ext {
            ext.extend(computed);
            ext.entry("managedBy").or_insert(json!("scim"));
        }
        list_schema(rendered, GROUP_EXTENSION);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stringified_role_values_are_unwrapped() {
        let stringified = json!({"value": "{\"id\":\"7\",\"value\":\"account:admin\",\"displayName\":\"Admin\"}"});
        assert_eq!(
            role_value(&stringified).ok().as_deref(),
            Some("account:admin")
        );
        assert_eq!(
            role_value(&json!({"value": " pbx:viewReports "}))
                .ok()
                .as_deref(),
            Some("pbx:viewReports")
        );
        assert_eq!(
            role_value(&json!("account:member")).ok().as_deref(),
            Some("account:member")
        );
        assert!(role_value(&json!({"display": "x"})).is_err());
    }

    #[test]
    fn entitlement_types_are_inferred_and_case_insensitive() {
        let parsed = parse_entitlements(
            &[
                json!({"value": "phone", "type": "license"}),
                json!({"value": "phone:sms"}),
                json!({"value": "meeting"}),
            ],
            "entitlements",
        )
        .ok();
        assert_eq!(
            parsed,
            Some(vec![
                Entitlement::License("phone".into()),
                Entitlement::Feature("phone".into(), "sms".into()),
                Entitlement::License("meeting".into()),
            ])
        );
        assert!(parse_entitlements(&[json!({"value": "x", "type": "Seat"})], "e").is_err());
    }
}

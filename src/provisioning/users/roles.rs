//! The account role and the phone-system permissions of a user: parsing `roles`, who may grant
//! what (an admin token only members and custom roles, before and after), and the account's
//! last active super-admin.
//!
//! The rules are pure functions ([`custom_role_ids`], [`parse_roles`], [`authorize_role_change`],
//! [`loses_active_super_admin`], [`canonical_roles`], [`last_super_admin_check`]): no store, no
//! I/O. The `Provisioner` methods load what they need (the custom roles named, the count of
//! active super-admins), call them, and apply the outcome.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::{AccountRole, CustomRoleId};
use crate::provisioning::{Context, Error, Provisioner, Result};
use crate::scim::error::ScimError;
use crate::scim::resource::Document;
use crate::store::{Tx, UserRecord};

/// Permissions a custom role can carry.
pub const PERMISSIONS: &[&str] = &[
    "configurePbx",
    "viewInvoices",
    "payInvoices",
    "viewReports",
    "manageGroups",
];

pub(crate) const PBX_PERMISSIONS: &[&str] =
    &["configurePbx", "viewInvoices", "payInvoices", "viewReports"];

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

pub(crate) fn role_value(item: &Value) -> Result<String, ScimError> {
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

pub(crate) fn unknown_role(value: &str) -> ScimError {
    ScimError::invalid_value(format!(
        "role '{value}' is not known: use account:superAdmin, account:admin, account:member, account:custom:<id>, or pbx:superAdministrator / pbx:configurePbx / pbx:viewInvoices / pbx:payInvoices / pbx:viewReports; GET /Roles lists them"
    ))
}

/// What a `roles` list asks for: exactly one account role (`account:member` when none is named)
/// and the phone-system permissions, deduplicated, in the order sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestedRoles {
    pub role: AccountRole,
    pub pbx: Vec<String>,
}

/// The custom roles a `roles` list names (`account:custom:<id>` with a readable id): the ones
/// whose existence in the account must be looked up before [`parse_roles`] decides. Items that
/// are not roles are skipped here; [`parse_roles`] refuses them.
pub(crate) fn custom_role_ids(roles: Option<&Value>) -> Vec<Uuid> {
    let Some(Value::Array(items)) = roles else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    for item in items {
        let Ok(value) = role_value(item) else {
            continue;
        };
        if let Some(id) = value
            .strip_prefix("account:custom:")
            .and_then(|id| Uuid::parse_str(id).ok())
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    }
    ids
}

/// Parses `roles` (`None` or a non-array: nothing named) into the account role and the `pbx:`
/// permissions. Refused, in the order the items come: an item without a value, an unknown
/// value, a custom role not in `known_custom` (the account's custom roles among
/// [`custom_role_ids`]); then several account roles, and `pbx:superAdministrator` with others.
pub(crate) fn parse_roles(
    roles: Option<&Value>,
    known_custom: &BTreeSet<Uuid>,
) -> Result<RequestedRoles, ScimError> {
    let mut account_roles = Vec::new();
    let mut pbx: Vec<String> = Vec::new();
    if let Some(Value::Array(items)) = roles {
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
                        if !known_custom.contains(&id) {
                            return Err(ScimError::invalid_value(format!(
                                "custom role {id} does not exist in this account; GET /Roles lists the assignable roles"
                            )));
                        }
                        AccountRole::Custom(CustomRoleId::from(id))
                    }
                });
            } else if let Some(permission) = value.strip_prefix("pbx:") {
                if permission != "superAdministrator" && !PBX_PERMISSIONS.contains(&permission) {
                    return Err(unknown_role(&value));
                }
                if !pbx.iter().any(|p| p == permission) {
                    pbx.push(permission.to_string());
                }
            } else {
                return Err(unknown_role(&value));
            }
        }
    }
    account_roles.dedup();
    if account_roles.len() > 1 {
        return Err(ScimError::invalid_value(
            "a user has exactly one account role (account:superAdmin, account:admin, account:member or account:custom:<id>); this request names several",
        ));
    }
    if pbx.len() > 1 && pbx.iter().any(|p| p == "superAdministrator") {
        return Err(ScimError::invalid_value(
            "pbx:superAdministrator already includes every phone-system permission; send it alone or send individual pbx:* permissions",
        ));
    }
    Ok(RequestedRoles {
        role: account_roles.pop().unwrap_or(AccountRole::Member),
        pbx,
    })
}

/// Who may grant what: an admin token may only create or keep members and custom-role users —
/// neither the role given (`after`) nor the one the user holds (`before`) may be privileged.
/// Any other actor may.
pub(crate) fn authorize_role_change(
    actor_is_admin_token: bool,
    before: Option<&AccountRole>,
    after: &AccountRole,
) -> Result<(), ScimError> {
    if !actor_is_admin_token {
        return Ok(());
    }
    if after.privileged() {
        return Err(ScimError::forbidden(format!(
            "an admin token may only create or keep members and custom-role users; granting {} needs a super-admin token",
            after.scim_value()
        )));
    }
    if let Some(before) = before.filter(|b| b.privileged()) {
        return Err(ScimError::forbidden(format!(
            "this user holds {}; only a super-admin token may change them",
            before.scim_value()
        )));
    }
    Ok(())
}

/// Whether the write takes an active super-admin away (demoted or deactivated): `before` is the
/// stored user's role and whether they were active (`None` for a new user), `after` the role
/// and `active` what the write leaves. Only then is the last-super-admin check needed.
pub(crate) fn loses_active_super_admin(
    before: Option<(&AccountRole, bool)>,
    after: &AccountRole,
    active: bool,
) -> bool {
    let was_active_super = matches!(before, Some((role, true)) if *role == AccountRole::SuperAdmin);
    was_active_super && !(active && *after == AccountRole::SuperAdmin)
}

/// Protect the last super-admin: with `active_super_admins` active super-admins in the account
/// (the user concerned among them), taking one away must leave at least one.
pub(crate) fn last_super_admin_check(
    active_super_admins: i64,
    what: &str,
) -> Result<(), ScimError> {
    if active_super_admins <= 1 {
        return Err(ScimError::new(
            409,
            None,
            format!(
                "this user is the account's last active super-admin: cannot {what} them; make another user account:superAdmin first"
            ),
        ));
    }
    Ok(())
}

/// The canonical `roles` written back: the account role (primary), then the `pbx:` permissions.
pub(crate) fn canonical_roles(roles: &RequestedRoles) -> Value {
    let mut canonical = vec![json!({
        "value": roles.role.scim_value(),
        "type": "account",
        "primary": true,
    })];
    canonical.extend(
        roles
            .pbx
            .iter()
            .map(|p| json!({"value": format!("pbx:{p}"), "type": "pbx"})),
    );
    Value::Array(canonical)
}

impl Provisioner {
    /// Parses `roles`, checks the caller may grant the result, protects the last super-admin,
    /// and writes the canonical list back into the document.
    pub(crate) async fn settle_roles(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        existing: Option<&UserRecord>,
        doc: &mut Document,
        active: bool,
    ) -> Result<AccountRole> {
        let account_id = ctx.principal.account_id;
        // Load: which of the custom roles named exist in the account.
        let mut known_custom = BTreeSet::new();
        for id in custom_role_ids(doc.get("roles")) {
            if tx.custom_role(account_id, id).await?.is_some() {
                known_custom.insert(id);
            }
        }
        // Decide.
        let requested = parse_roles(doc.get("roles"), &known_custom)?;
        let before = existing.map(stored_role).transpose()?;
        authorize_role_change(
            ctx.principal.actor.is_admin_token(),
            before.as_ref(),
            &requested.role,
        )?;
        let was = existing
            .zip(before.as_ref())
            .map(|(e, role)| (role, e.active));
        if loses_active_super_admin(was, &requested.role, active) {
            self.protect_last_super_admin(tx, account_id, "demote or deactivate")
                .await?;
        }
        // Apply.
        doc.insert("roles".into(), canonical_roles(&requested));
        Ok(requested.role)
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
        last_super_admin_check(count, what)?;
        Ok(())
    }
}

#[cfg(test)]
// The rule tables are vectors of tuples, one row per case.
#[allow(clippy::type_complexity)]
mod tests {
    use super::*;
    use serde_json::json;

    const CUSTOM: &str = "6f1c3a52-7f0e-4a4e-9b8e-2d6b0f6b1c01";
    const MISSING: &str = "0d8a3a0e-1111-4e5e-8c6a-9a3b7c2d4e5f";

    fn custom() -> AccountRole {
        AccountRole::Custom(CustomRoleId::from(Uuid::parse_str(CUSTOM).unwrap()))
    }

    fn known() -> BTreeSet<Uuid> {
        BTreeSet::from([Uuid::parse_str(CUSTOM).unwrap()])
    }

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

    /// §2.5 roles: exactly one account role (none → member), pbx:superAdministrator or a subset
    /// of the pbx permissions, unknown values refused, stringified JSON values parsed, custom
    /// roles only if they exist in the account.
    #[test]
    fn roles_parse_into_one_account_role_and_pbx_permissions() {
        enum Want {
            Parsed(AccountRole, &'static [&'static str]),
            Refused(&'static str),
        }
        use Want::{Parsed, Refused};
        let several = "a user has exactly one account role";
        let unknown = "is not known: use account:superAdmin";
        let alone = "pbx:superAdministrator already includes every phone-system permission";
        let rows: Vec<(&str, Value, Want)> = vec![
            (
                "no_roles_is_member",
                Value::Null,
                Parsed(AccountRole::Member, &[]),
            ),
            (
                "empty_list_is_member",
                json!([]),
                Parsed(AccountRole::Member, &[]),
            ),
            (
                "not_an_array_names_nothing",
                json!("account:admin"),
                Parsed(AccountRole::Member, &[]),
            ),
            (
                "super_admin",
                json!([{"value": "account:superAdmin"}]),
                Parsed(AccountRole::SuperAdmin, &[]),
            ),
            (
                "admin",
                json!([{"value": "account:admin"}]),
                Parsed(AccountRole::Admin, &[]),
            ),
            (
                "member",
                json!([{"value": "account:member"}]),
                Parsed(AccountRole::Member, &[]),
            ),
            (
                "bare_string_item",
                json!(["account:admin"]),
                Parsed(AccountRole::Admin, &[]),
            ),
            (
                "value_is_trimmed",
                json!([{"value": "  account:admin "}]),
                Parsed(AccountRole::Admin, &[]),
            ),
            (
                "type_and_primary_are_ignored",
                json!([{"value": "account:admin", "type": "pbx", "primary": false}]),
                Parsed(AccountRole::Admin, &[]),
            ),
            (
                "stringified_json_value",
                json!([{"value": "{\"id\":\"1\",\"value\":\"account:superAdmin\"}"}]),
                Parsed(AccountRole::SuperAdmin, &[]),
            ),
            (
                "existing_custom_role",
                json!([{"value": format!("account:custom:{CUSTOM}")}]),
                Parsed(custom(), &[]),
            ),
            (
                "custom_role_id_in_upper_case",
                json!([{"value": format!("account:custom:{}", CUSTOM.to_uppercase())}]),
                Parsed(custom(), &[]),
            ),
            (
                "same_account_role_twice_is_one",
                json!([{"value": "account:admin"}, {"value": "account:admin"}]),
                Parsed(AccountRole::Admin, &[]),
            ),
            (
                "pbx_alone_keeps_member",
                json!([{"value": "pbx:viewReports"}]),
                Parsed(AccountRole::Member, &["viewReports"]),
            ),
            (
                "pbx_subset_in_order_deduplicated",
                json!([{"value": "pbx:payInvoices"}, {"value": "account:admin"}, {"value": "pbx:configurePbx"}, {"value": "pbx:payInvoices"}]),
                Parsed(AccountRole::Admin, &["payInvoices", "configurePbx"]),
            ),
            (
                "pbx_super_administrator_alone",
                json!([{"value": "pbx:superAdministrator"}]),
                Parsed(AccountRole::Member, &["superAdministrator"]),
            ),
            (
                "pbx_super_administrator_twice_is_alone",
                json!(["pbx:superAdministrator", "pbx:superAdministrator"]),
                Parsed(AccountRole::Member, &["superAdministrator"]),
            ),
            (
                "two_account_roles_refused",
                json!([{"value": "account:admin"}, {"value": "account:member"}]),
                Refused(several),
            ),
            (
                "super_admin_with_admin_refused",
                json!(["account:superAdmin", "account:admin"]),
                Refused(several),
            ),
            (
                "pbx_super_administrator_with_others_refused",
                json!(["pbx:superAdministrator", "pbx:viewInvoices"]),
                Refused(alone),
            ),
            (
                "unknown_account_role_refused",
                json!([{"value": "account:owner"}]),
                Refused(unknown),
            ),
            (
                "custom_role_without_uuid_refused",
                json!([{"value": "account:custom:sales"}]),
                Refused(unknown),
            ),
            (
                "unknown_pbx_permission_refused",
                json!([{"value": "pbx:manageGroups"}]),
                Refused(unknown),
            ),
            (
                "value_without_prefix_refused",
                json!([{"value": "admin"}]),
                Refused(unknown),
            ),
            (
                "item_without_value_refused",
                json!([{"display": "Admin"}]),
                Refused("every 'roles' item needs a 'value'"),
            ),
            (
                "custom_role_not_in_account_refused",
                json!([{"value": format!("account:custom:{MISSING}")}]),
                Refused("does not exist in this account"),
            ),
            (
                "first_refusal_in_item_order_wins",
                json!([{"value": format!("account:custom:{MISSING}")}, {"value": "nope"}]),
                Refused("does not exist in this account"),
            ),
        ];
        for (name, roles, want) in rows {
            let got = parse_roles(Some(&roles), &known());
            match (want, got) {
                (Parsed(role, pbx), Ok(got)) => {
                    assert_eq!(got.role, role, "{name}");
                    assert_eq!(got.pbx, pbx, "{name}");
                }
                (Refused(detail), Err(e)) => {
                    assert_eq!(e.status, 400, "{name}");
                    assert_eq!(
                        e.scim_type.map(|t| t.as_str()),
                        Some("invalidValue"),
                        "{name}"
                    );
                    assert!(e.detail.contains(detail), "{name}: {}", e.detail);
                }
                (Parsed(..), Err(e)) => panic!("{name}: refused: {}", e.detail),
                (Refused(detail), Ok(got)) => panic!("{name}: accepted {got:?}, wanted '{detail}'"),
            }
        }
    }

    /// Custom-role existence is a lookup: the ids to look up are those `roles` names.
    #[test]
    fn custom_roles_named_are_the_ones_looked_up() {
        let rows: Vec<(&str, Value, Vec<&str>)> = vec![
            ("none_named", json!([{"value": "account:admin"}]), vec![]),
            (
                "one_named",
                json!([{"value": format!("account:custom:{CUSTOM}")}]),
                vec![CUSTOM],
            ),
            (
                "stringified_one",
                json!([{"value": format!("{{\"value\":\"account:custom:{MISSING}\"}}")}]),
                vec![MISSING],
            ),
            (
                "twice_looked_up_once",
                json!([
                    format!("account:custom:{CUSTOM}"),
                    format!("account:custom:{CUSTOM}")
                ]),
                vec![CUSTOM],
            ),
            (
                "two_named_in_order",
                json!([
                    format!("account:custom:{MISSING}"),
                    format!("account:custom:{CUSTOM}")
                ]),
                vec![MISSING, CUSTOM],
            ),
            (
                "unreadable_id_not_looked_up",
                json!(["account:custom:sales", {"display": "x"}]),
                vec![],
            ),
            ("no_roles", Value::Null, vec![]),
        ];
        for (name, roles, ids) in rows {
            let ids: Vec<Uuid> = ids.iter().map(|i| Uuid::parse_str(i).unwrap()).collect();
            assert_eq!(custom_role_ids(Some(&roles)), ids, "{name}");
        }
    }

    /// §2.5 / SPEC "Authorization": an admin token may only create or keep members and
    /// custom-role users, before and after; a super-admin token may assign anything.
    #[test]
    fn admin_token_grants_only_members_and_custom_roles() {
        use AccountRole::{Admin, Member, SuperAdmin};
        let granting = "an admin token may only create or keep members and custom-role users";
        let holds = "only a super-admin token may change them";
        let rows: Vec<(&str, bool, Option<AccountRole>, AccountRole, Option<&str>)> = vec![
            ("admin_token_creates_member", true, None, Member, None),
            ("admin_token_creates_custom", true, None, custom(), None),
            ("admin_token_keeps_member", true, Some(Member), Member, None),
            (
                "admin_token_member_to_custom",
                true,
                Some(Member),
                custom(),
                None,
            ),
            (
                "admin_token_custom_to_member",
                true,
                Some(custom()),
                Member,
                None,
            ),
            (
                "admin_token_creates_admin_refused",
                true,
                None,
                Admin,
                Some(granting),
            ),
            (
                "admin_token_creates_super_admin_refused",
                true,
                None,
                SuperAdmin,
                Some(granting),
            ),
            (
                "admin_token_promotes_member_refused",
                true,
                Some(Member),
                Admin,
                Some(granting),
            ),
            (
                "admin_token_keeps_admin_refused",
                true,
                Some(Admin),
                Admin,
                Some(granting),
            ),
            (
                "admin_token_demotes_admin_refused",
                true,
                Some(Admin),
                Member,
                Some(holds),
            ),
            (
                "admin_token_demotes_super_admin_refused",
                true,
                Some(SuperAdmin),
                custom(),
                Some(holds),
            ),
            (
                "super_admin_token_creates_super_admin",
                false,
                None,
                SuperAdmin,
                None,
            ),
            (
                "super_admin_token_demotes_admin",
                false,
                Some(Admin),
                Member,
                None,
            ),
            (
                "super_admin_token_promotes_member",
                false,
                Some(Member),
                Admin,
                None,
            ),
        ];
        for (name, admin_token, before, after, refused) in rows {
            let got = authorize_role_change(admin_token, before.as_ref(), &after);
            match (refused, got) {
                (None, Ok(())) => {}
                (Some(detail), Err(e)) => {
                    assert_eq!(e.status, 403, "{name}");
                    assert!(e.detail.contains(detail), "{name}: {}", e.detail);
                }
                (None, Err(e)) => panic!("{name}: refused: {}", e.detail),
                (Some(detail), Ok(())) => panic!("{name}: allowed, wanted '{detail}'"),
            }
        }
        let e = authorize_role_change(true, None, &SuperAdmin).unwrap_err();
        assert!(
            e.detail
                .contains("granting account:superAdmin needs a super-admin token")
        );
        let e = authorize_role_change(true, Some(&Admin), &Member).unwrap_err();
        assert_eq!(
            e.detail,
            "this user holds account:admin; only a super-admin token may change them"
        );
    }

    /// §2.5 "Protect the last super-admin": the check runs only when an active super-admin is
    /// demoted or deactivated.
    #[test]
    fn last_super_admin_check_needed_when_an_active_super_admin_goes() {
        use AccountRole::{Admin, Member, SuperAdmin};
        let rows: Vec<(&str, Option<(AccountRole, bool)>, AccountRole, bool, bool)> = vec![
            ("new_user_never", None, SuperAdmin, false, false),
            (
                "active_super_admin_kept",
                Some((SuperAdmin, true)),
                SuperAdmin,
                true,
                false,
            ),
            (
                "active_super_admin_demoted",
                Some((SuperAdmin, true)),
                Admin,
                true,
                true,
            ),
            (
                "active_super_admin_deactivated",
                Some((SuperAdmin, true)),
                SuperAdmin,
                false,
                true,
            ),
            (
                "active_super_admin_demoted_and_deactivated",
                Some((SuperAdmin, true)),
                Member,
                false,
                true,
            ),
            (
                "inactive_super_admin_not_counted",
                Some((SuperAdmin, false)),
                Member,
                false,
                false,
            ),
            (
                "inactive_super_admin_reactivated",
                Some((SuperAdmin, false)),
                SuperAdmin,
                true,
                false,
            ),
            (
                "admin_promoted",
                Some((Admin, true)),
                SuperAdmin,
                true,
                false,
            ),
            (
                "member_deactivated",
                Some((Member, true)),
                Member,
                false,
                false,
            ),
        ];
        for (name, before, after, active, needed) in rows {
            let before = before.as_ref().map(|(r, a)| (r, *a));
            assert_eq!(
                loses_active_super_admin(before, &after, active),
                needed,
                "{name}"
            );
        }
    }

    /// §2.5: refusing to leave the account without an active super-admin is a 409 naming
    /// the action.
    #[test]
    fn last_active_super_admin_is_protected() {
        let rows: Vec<(&str, i64, bool)> = vec![
            ("none_left_refused", 0, false),
            ("only_one_refused", 1, false),
            ("two_allowed", 2, true),
            ("many_allowed", 40, true),
        ];
        for (name, count, allowed) in rows {
            let got = last_super_admin_check(count, "delete");
            assert_eq!(got.is_ok(), allowed, "{name}");
            if let Err(e) = got {
                assert_eq!(e.status, 409, "{name}");
                assert!(
                    e.detail
                        .contains("last active super-admin: cannot delete them"),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn canonical_roles_put_the_account_role_first_and_primary() {
        let roles = RequestedRoles {
            role: AccountRole::Admin,
            pbx: vec!["viewReports".into(), "payInvoices".into()],
        };
        assert_eq!(
            canonical_roles(&roles),
            json!([
                {"value": "account:admin", "type": "account", "primary": true},
                {"value": "pbx:viewReports", "type": "pbx"},
                {"value": "pbx:payInvoices", "type": "pbx"},
            ])
        );
    }
}

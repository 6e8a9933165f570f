//! The account role and the phone-system permissions of a user: parsing `roles`, who may grant
//! what (an admin token only members and custom roles, before and after), and the account's
//! last active super-admin.

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

pub(crate) fn role_value(item: &Value) -> Result<String> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}

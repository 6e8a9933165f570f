//! Who may do what, as values: a user's account role, the role of a bearer token, the
//! phone-system (`pbx:`) permissions a user can be given, and the permissions a custom role can
//! carry. Who may grant which role is a rule, and stays in `provisioning`.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use super::ids::CustomRoleId;
use super::status::UnknownValue;
use super::values::ValueError;

/// A user's account role: `users.account_role` (and `deleted_users.account_role`) stores
/// `superAdmin`, `admin`, `member` or `custom:<role id>`; SCIM `roles` carries it as
/// `account:<stored>`. Serde and sqlx (TEXT) use the stored form.
///
/// Replaces `provisioning::domain::AccountRole`, with one difference: [`AccountRole::from_stored`]
/// refuses text it does not know, where today's maps it to `Member`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountRole {
    SuperAdmin,
    Admin,
    Member,
    Custom(CustomRoleId),
}

impl AccountRole {
    /// The stored form: `superAdmin`, `admin`, `member`, `custom:<id>` (the id hyphenated, in
    /// lower case).
    pub fn stored(&self) -> String {
        match self {
            AccountRole::SuperAdmin => "superAdmin".into(),
            AccountRole::Admin => "admin".into(),
            AccountRole::Member => "member".into(),
            AccountRole::Custom(id) => format!("custom:{id}"),
        }
    }

    /// Strictly the stored form, as [`AccountRole::stored`] writes it: a custom role id in
    /// another spelling (upper case, no hyphens) is refused too, since the column is compared
    /// as text (`count_active_with_role`). What sqlx `Decode` calls.
    pub fn from_stored(text: &str) -> Result<Self, UnknownValue> {
        let role = match text {
            "superAdmin" => Some(AccountRole::SuperAdmin),
            "admin" => Some(AccountRole::Admin),
            "member" => Some(AccountRole::Member),
            other => other
                .strip_prefix("custom:")
                .and_then(|id| Uuid::parse_str(id).ok())
                .map(|id| AccountRole::Custom(CustomRoleId::from(id)))
                .filter(|role| role.stored() == text),
        };
        role.ok_or_else(|| {
            UnknownValue::new(
                "stored account role",
                text,
                &["superAdmin", "admin", "member", "custom:<id>"],
            )
        })
    }

    /// The SCIM `roles` value: `account:<stored>`.
    pub fn scim_value(&self) -> String {
        format!("account:{}", self.stored())
    }

    /// A SCIM `roles` value naming an account role (`account:superAdmin`, `account:admin`,
    /// `account:member`, `account:custom:<id>` with the id in any form `Uuid` reads), already
    /// trimmed and unwrapped by the caller (`role_value`). As the `account:` branch of
    /// `Provisioner::settle_roles` (`provisioning/domain.rs`): whether the custom role exists in
    /// the account is the caller's to check.
    pub fn parse_scim(value: &str) -> Result<Self, ValueError> {
        let unknown = || ValueError::UnknownRole(value.to_string());
        match value.strip_prefix("account:").ok_or_else(unknown)? {
            "superAdmin" => Ok(AccountRole::SuperAdmin),
            "admin" => Ok(AccountRole::Admin),
            "member" => Ok(AccountRole::Member),
            custom => custom
                .strip_prefix("custom:")
                .and_then(|id| Uuid::parse_str(id).ok())
                .map(|id| AccountRole::Custom(CustomRoleId::from(id)))
                .ok_or_else(unknown),
        }
    }

    /// Super-admin or admin: the roles only a super-admin token may grant or change.
    pub const fn privileged(&self) -> bool {
        matches!(self, AccountRole::SuperAdmin | AccountRole::Admin)
    }

    /// The custom role's id, for a custom role.
    pub const fn custom_role(&self) -> Option<CustomRoleId> {
        match self {
            AccountRole::Custom(id) => Some(*id),
            _ => None,
        }
    }
}

impl fmt::Display for AccountRole {
    /// The stored form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.stored())
    }
}

impl FromStr for AccountRole {
    type Err = UnknownValue;

    /// [`AccountRole::from_stored`].
    fn from_str(text: &str) -> Result<Self, UnknownValue> {
        AccountRole::from_stored(text)
    }
}

impl serde::Serialize for AccountRole {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.stored())
    }
}

impl<'de> serde::Deserialize<'de> for AccountRole {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        AccountRole::from_stored(&text).map_err(serde::de::Error::custom)
    }
}

sqlx_text!(AccountRole, stored, AccountRole::from_stored);

text_enum! {
    /// The role a bearer token carries: `api_tokens.role` (`CHECK (role IN ('super-admin',
    /// 'admin'))`) and the `role` claim of the token.
    ///
    /// Replaces `provisioning::TokenRole` (`provisioning/mod.rs`); its `parse(s) -> Option` is
    /// `TokenRole::parse(s).ok()` here.
    pub enum TokenRole ("token role") {
        /// Everything, including granting admin roles and the account's configuration.
        SuperAdmin => "super-admin",
        /// Users and groups (members and custom roles only) and the day-to-day inventory.
        Admin => "admin",
    }
}

text_enum! {
    /// A phone-system permission given to a user in SCIM `roles` as `pbx:<permission>` (type
    /// `pbx`) and kept in the user's document. Serde and sqlx use the bare name; the SCIM value
    /// is [`PbxPermission::scim_value`].
    ///
    /// Replaces `PBX_PERMISSIONS` and the `"superAdministrator"` literal of
    /// `Provisioner::settle_roles` (`provisioning/domain.rs`), and the `pbx:` rows of
    /// `Provisioner::scim_roles` (`provisioning/catalog.rs`). That `superAdministrator` is sent
    /// alone is a rule of `settle_roles`.
    pub enum PbxPermission ("phone-system permission") {
        /// Every phone-system permission.
        SuperAdministrator => "superAdministrator",
        ConfigurePbx => "configurePbx",
        ViewInvoices => "viewInvoices",
        PayInvoices => "payInvoices",
        ViewReports => "viewReports",
    }
}

impl PbxPermission {
    /// The SCIM `roles` value: `pbx:<permission>`.
    pub fn scim_value(self) -> String {
        format!("pbx:{}", self.as_str())
    }

    /// A SCIM `roles` value `pbx:<permission>`, already trimmed by the caller.
    pub fn parse_scim(value: &str) -> Result<Self, ValueError> {
        value
            .strip_prefix("pbx:")
            .and_then(|permission| PbxPermission::parse(permission).ok())
            .ok_or_else(|| ValueError::UnknownRole(value.to_string()))
    }
}

text_enum! {
    /// A permission a custom role carries: the JSON array `custom_roles.permissions`, so
    /// `Json<Vec<CustomRolePermission>>` reads it strictly. A separate set from
    /// [`PbxPermission`]: it has `manageGroups` and no `superAdministrator`.
    ///
    /// Replaces `PERMISSIONS` (`provisioning/domain.rs`), the check of `Provisioner::check_role`
    /// (`provisioning/catalog.rs`) — whose message is this [`UnknownValue`]'s, word for word —
    /// and the `"manageGroups"` literal of the group-manager check in `settle_group`.
    pub enum CustomRolePermission ("permission") {
        ConfigurePbx => "configurePbx",
        ViewInvoices => "viewInvoices",
        PayInvoices => "payInvoices",
        ViewReports => "viewReports",
        /// May be a manager of groups (`managers` of the group extension).
        ManageGroups => "manageGroups",
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn account_role_stored_forms_round_trip() {
        let id = CustomRoleId::new();
        for (role, stored) in [
            (AccountRole::SuperAdmin, "superAdmin".to_string()),
            (AccountRole::Admin, "admin".to_string()),
            (AccountRole::Member, "member".to_string()),
            (AccountRole::Custom(id), format!("custom:{id}")),
        ] {
            assert_eq!(role.stored(), stored);
            assert_eq!(role.to_string(), stored);
            assert_eq!(AccountRole::from_stored(&stored), Ok(role));
            assert_eq!(stored.parse::<AccountRole>(), Ok(role));
            assert_eq!(role.scim_value(), format!("account:{stored}"));
            assert_eq!(AccountRole::parse_scim(&role.scim_value()), Ok(role));
            let json = serde_json::to_value(role).unwrap();
            assert_eq!(json, serde_json::json!(stored));
            assert_eq!(serde_json::from_value::<AccountRole>(json).unwrap(), role);
        }
        assert_eq!(AccountRole::Custom(id).custom_role(), Some(id));
        assert_eq!(AccountRole::Admin.custom_role(), None);
    }

    #[test]
    fn account_role_from_stored_is_strict() {
        let id = CustomRoleId::new();
        for bad in [
            "",
            "owner",
            "Admin",
            "account:admin",
            "custom:",
            "custom:not-a-uuid",
            &format!("custom:{}", id.to_string().to_uppercase()),
            &format!("custom:{}", id.as_uuid().simple()),
            &format!(" custom:{id}"),
        ] {
            assert!(AccountRole::from_stored(bad).is_err(), "{bad}");
        }
        assert_eq!(
            AccountRole::from_stored("owner").unwrap_err().to_string(),
            "'owner' is not a stored account role; use superAdmin, admin, member, custom:<id>"
        );
        assert!(serde_json::from_value::<AccountRole>(serde_json::json!("owner")).is_err());
    }

    #[test]
    fn account_role_parse_scim_like_settle_roles() {
        let id = CustomRoleId::new();
        assert_eq!(
            AccountRole::parse_scim(&format!("account:custom:{}", id.as_uuid().simple())),
            Ok(AccountRole::Custom(id))
        );
        for bad in [
            "admin",
            "account:",
            "account:owner",
            "account:custom:x",
            "pbx:viewReports",
        ] {
            assert_eq!(
                AccountRole::parse_scim(bad),
                Err(ValueError::UnknownRole(bad.into()))
            );
        }
        assert_eq!(
            AccountRole::parse_scim("account:owner")
                .unwrap_err()
                .to_string(),
            "role 'account:owner' is not known: use account:superAdmin, account:admin, account:member, account:custom:<id>, or pbx:superAdministrator / pbx:configurePbx / pbx:viewInvoices / pbx:payInvoices / pbx:viewReports; GET /Roles lists them"
        );
    }

    #[test]
    fn privileged_roles() {
        assert!(AccountRole::SuperAdmin.privileged());
        assert!(AccountRole::Admin.privileged());
        assert!(!AccountRole::Member.privileged());
        assert!(!AccountRole::Custom(CustomRoleId::new()).privileged());
    }

    #[test]
    fn token_roles_are_the_stored_strings() {
        assert_eq!(TokenRole::SuperAdmin.as_str(), "super-admin");
        assert_eq!(TokenRole::parse("admin"), Ok(TokenRole::Admin));
        assert!(TokenRole::parse("superAdmin").is_err());
        assert_eq!(
            serde_json::to_value(TokenRole::SuperAdmin).unwrap(),
            serde_json::json!("super-admin")
        );
    }

    #[test]
    fn pbx_permissions_match_the_roles_the_server_publishes() {
        let values: Vec<String> = PbxPermission::ALL.iter().map(|p| p.scim_value()).collect();
        assert_eq!(
            values,
            [
                "pbx:superAdministrator",
                "pbx:configurePbx",
                "pbx:viewInvoices",
                "pbx:payInvoices",
                "pbx:viewReports"
            ]
        );
        for permission in PbxPermission::ALL {
            assert_eq!(
                PbxPermission::parse_scim(&permission.scim_value()),
                Ok(*permission)
            );
        }
        for bad in [
            "viewReports",
            "pbx:",
            "pbx:manageGroups",
            "account:admin",
            "pbx:ViewReports",
        ] {
            assert_eq!(
                PbxPermission::parse_scim(bad),
                Err(ValueError::UnknownRole(bad.into()))
            );
        }
    }

    #[test]
    fn custom_role_permissions_like_check_role() {
        let all: Vec<&str> = CustomRolePermission::ALL
            .iter()
            .map(|p| p.as_str())
            .collect();
        assert_eq!(
            all,
            [
                "configurePbx",
                "viewInvoices",
                "payInvoices",
                "viewReports",
                "manageGroups"
            ]
        );
        assert_eq!(
            CustomRolePermission::parse("superAdministrator")
                .unwrap_err()
                .to_string(),
            "'superAdministrator' is not a permission; use configurePbx, viewInvoices, payInvoices, viewReports, manageGroups"
        );
        let stored: Vec<CustomRolePermission> =
            serde_json::from_str(r#"["manageGroups","viewReports"]"#).unwrap();
        assert_eq!(
            stored,
            [
                CustomRolePermission::ManageGroups,
                CustomRolePermission::ViewReports
            ]
        );
        assert!(serde_json::from_str::<Vec<CustomRolePermission>>(r#"["fly"]"#).is_err());
    }

    #[tokio::test]
    async fn account_role_through_sqlite() {
        let pool = crate::domain::tests::sqlite().await;
        sqlx::query("CREATE TABLE t (n INTEGER PRIMARY KEY, account_role TEXT NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        let role = AccountRole::Custom(CustomRoleId::new());
        sqlx::query("INSERT INTO t VALUES (1, $1), (2, 'owner')")
            .bind(role)
            .execute(&pool)
            .await
            .unwrap();
        let raw: String = sqlx::query_scalar("SELECT account_role FROM t WHERE n = 1")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(raw, role.stored());
        let back: AccountRole =
            sqlx::query_scalar("SELECT account_role FROM t WHERE account_role = $1")
                .bind(role)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(back, role);
        let err = sqlx::query_scalar::<_, AccountRole>("SELECT account_role FROM t WHERE n = 2")
            .fetch_one(&pool)
            .await
            .unwrap_err();
        assert!(matches!(err, sqlx::Error::ColumnDecode { .. }), "{err:?}");
    }

    proptest! {
        #[test]
        fn from_stored_accepts_only_what_stored_writes(text in any::<String>()) {
            if let Ok(role) = AccountRole::from_stored(&text) {
                prop_assert_eq!(role.stored(), text);
            }
        }

        #[test]
        fn custom_roles_round_trip(bytes in any::<[u8; 16]>()) {
            let role = AccountRole::Custom(CustomRoleId::from(Uuid::from_bytes(bytes)));
            prop_assert_eq!(AccountRole::from_stored(&role.stored()), Ok(role));
            prop_assert_eq!(AccountRole::parse_scim(&role.scim_value()), Ok(role));
        }

        #[test]
        fn parse_scim_never_panics(text in any::<String>()) {
            let _ = AccountRole::parse_scim(&text);
            let _ = PbxPermission::parse_scim(&text);
            let _ = CustomRolePermission::parse(&text);
        }
    }
}

//! One `Uuid` newtype per kind of row, so that ids of different tables cannot be mixed up.
//!
//! Every id is `#[sqlx(transparent)]` and `#[serde(transparent)]`: it is stored and serialised
//! exactly as the `Uuid` it wraps is today — a 16-byte BLOB on SQLite, `uuid` on PostgreSQL, the
//! hyphenated lower-case text in JSON — so adopting one changes no column and no document.
//! `new()` is `Uuid::now_v7()`, what the code calls at every insert today; `FromStr` is
//! `Uuid::parse_str` (today's `provisioning::parse_id` without its "not found" mapping).
//!
//! The id columns of the migrations, by type:
//! - [`AccountId`] for `accounts.id`, every `account_id`, `invitations.from_account_id`.
//! - [`UserId`] for `users.id`, `deleted_users.id`, every `user_id`, `invitations.from_user_id`,
//!   and `group_members.member_id` when `member_type` is `User`.
//! - [`GroupId`] for `groups.id`, `group_members.group_id`, and `group_members.member_id` when
//!   `member_type` is `Group`.
//! - [`TokenId`] for `api_tokens.id`, `audit_log.token_id`.
//! - [`ProductId`] for `products.id`, `user_licences.product_id`.
//! - [`BundleId`] for `licence_bundles.id`.
//! - [`CustomRoleId`] for `custom_roles.id`, and the id in `users.account_role` `custom:<id>`.
//! - [`LocationId`] for `emergency_locations.id`.
//! - [`TemplateId`] for `settings_templates.id`.
//! - [`EmailTemplateId`] for `email_templates.id`.
//! - [`DeviceId`] for `devices.id`.
//! - [`InvitationId`] for `invitations.id`, `outbox.invitation_id`.
//! - [`OutboxId`] for `outbox.id`.
//! - [`ProfileRecordId`] for `profile_records.id`.
//!
//! Not here, because they are not UUIDs: `signing_keys.id` (TEXT) and `audit_log.id` (an
//! auto-incremented integer, the audit cursor).

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! ids {
    ($( $(#[$meta:meta])* $name:ident ),+ $(,)?) => {$(
        $(#[$meta])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            serde::Serialize,
            serde::Deserialize,
            sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh id, time-ordered (UUID v7), as `Uuid::now_v7()` at the inserts today.
            // No `Default`: a default that is a different id on every call would be a trap.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                $name(Uuid::now_v7())
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                $name(uuid)
            }

            pub const fn into_uuid(self) -> Uuid {
                self.0
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                $name(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            /// The hyphenated lower-case form, as `Uuid`'s.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            /// Any form `Uuid::parse_str` accepts (hyphenated, simple, braced, URN).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map($name)
            }
        }
    )+};
}

ids! {
    /// An account (tenant): `accounts.id` and every `account_id` column.
    AccountId,
    /// A user: `users.id`, also kept by `deleted_users.id`, `voicemail_boxes.user_id` and the
    /// other `user_id` columns.
    UserId,
    /// A group: `groups.id`, `group_members.group_id`.
    GroupId,
    /// A bearer token: `api_tokens.id`, `audit_log.token_id`; `Principal::token_id` today.
    TokenId,
    /// An invitation link: `invitations.id`, `outbox.invitation_id`.
    InvitationId,
    /// A licence product: `products.id`, `user_licences.product_id`.
    ProductId,
    /// A licence bundle: `licence_bundles.id`.
    BundleId,
    /// A mail to send: `outbox.id` (its `message_id` is `<{id}@switchboard>`).
    OutboxId,
    /// A custom role: `custom_roles.id`, and the id of `AccountRole::Custom`.
    CustomRoleId,
    /// A desk phone: `devices.id`.
    DeviceId,
    /// An emergency location: `emergency_locations.id`.
    LocationId,
    /// A settings template (`productSettingsTemplate`): `settings_templates.id`.
    TemplateId,
    /// A welcome-e-mail template (`welcomeEmailTemplate`): `email_templates.id`.
    EmailTemplateId,
    /// A history record of a profile (session, recording): `profile_records.id`.
    ProfileRecordId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_from_str_round_trip() {
        let id = UserId::new();
        assert_eq!(id.to_string(), id.as_uuid().to_string());
        assert_eq!(id.to_string().parse::<UserId>().unwrap(), id);
        assert_eq!(
            id.as_uuid().simple().to_string().parse::<UserId>().unwrap(),
            id
        );
        assert!("not-a-uuid".parse::<UserId>().is_err());
    }

    #[test]
    fn conversions_keep_the_uuid() {
        let uuid = Uuid::now_v7();
        let id = GroupId::from(uuid);
        assert_eq!(id.into_uuid(), uuid);
        assert_eq!(Uuid::from(id), uuid);
        assert_eq!(GroupId::from_uuid(uuid), id);
    }

    #[test]
    fn new_ids_are_v7_and_ordered() {
        let a = AccountId::new();
        let b = AccountId::new();
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(a < b);
    }

    #[test]
    fn serde_is_the_bare_uuid() {
        let id = TokenId::new();
        let json = serde_json::to_value(id).unwrap();
        assert_eq!(json, serde_json::json!(id.as_uuid().to_string()));
        assert_eq!(serde_json::from_value::<TokenId>(json).unwrap(), id);
        assert!(serde_json::from_value::<TokenId>(serde_json::json!("nope")).is_err());
    }

    #[tokio::test]
    async fn binds_and_decodes_as_a_blob_on_sqlite() {
        let pool = crate::domain::tests::sqlite().await;
        sqlx::query("CREATE TABLE t (id BLOB PRIMARY KEY, account_id BLOB)")
            .execute(&pool)
            .await
            .unwrap();
        let id = DeviceId::new();
        let account = AccountId::new();
        sqlx::query("INSERT INTO t (id, account_id) VALUES ($1, $2)")
            .bind(id)
            .bind(account)
            .execute(&pool)
            .await
            .unwrap();

        let (kind, len): (String, i64) =
            sqlx::query_as("SELECT typeof(id), length(id) FROM t WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!((kind.as_str(), len), ("blob", 16));

        let (back, back_account): (DeviceId, AccountId) =
            sqlx::query_as("SELECT id, account_id FROM t")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!((back, back_account), (id, account));

        // The same bytes as a bare `Uuid` writes: rows written before adoption still match.
        let raw: Uuid = sqlx::query_scalar("SELECT id FROM t WHERE id = $1")
            .bind(id.into_uuid())
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(raw, id.into_uuid());

        let missing: Option<DeviceId> = sqlx::query_scalar("SELECT id FROM t WHERE id = $1")
            .bind(DeviceId::new())
            .fetch_optional(&pool)
            .await
            .unwrap();
        assert_eq!(missing, None);

        let nullable: Option<AccountId> = sqlx::query_scalar("SELECT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(nullable, None);
    }
}

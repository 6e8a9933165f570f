//! The vocabulary of the platform as types: ids, validated values, stored statuses and roles.
//!
//! This module owns types only. A value is parsed once, at the edge (the HTTP body, the SCIM
//! document, the database row), and is then valid by construction: a `MacAddress` is always 12
//! upper-case hex digits, a `LicenceState` is always one of the states the schema allows. There
//! is no I/O here and no rule beyond parsing; what the values mean for an account (who may grant
//! a role, whether an extension is free, when a seat is taken) stays in `provisioning`.
//!
//! - [`ids`]: one `Uuid` newtype per table id, so that a `UserId` cannot be passed as a
//!   `GroupId`; stored as the `Uuid` is (BLOB on SQLite, `uuid` on PostgreSQL).
//! - [`values`]: validated text and numbers (phone numbers, MAC addresses, product codes,
//!   catalogue names, extensions, timestamps) and [`ValueError`], whose messages are the
//!   sentences a client is shown with `400 invalidValue`.
//! - [`status`]: the closed sets of strings the tables' `CHECK` constraints and the documents
//!   store, decoded strictly: an unknown stored value is an [`UnknownValue`] error, never a
//!   default.
//! - [`roles`]: account roles, token roles and permissions.
//!
//! Two errors: [`ValueError`] is bad input (a client's `400 invalidValue`, with today's
//! sentences); [`UnknownValue`] is text outside a closed set — bad input too when it comes from
//! a request, a broken row or document (a `500`) when sqlx or serde meet it in stored data.

/// `sqlx::Type`, `Encode` and `Decode` as TEXT, on every database whose `str` is TEXT (SQLite
/// and PostgreSQL). Encoding writes `self.$text()` (`as_str` unless named; a `&str` or a
/// `String`); decoding hands the column's text to `$decode: fn(&str) -> Result<Self, E>`, so a
/// value the type does not accept is a decode error.
macro_rules! sqlx_text {
    ($ty:ty, $decode:expr) => {
        sqlx_text!($ty, as_str, $decode);
    };
    ($ty:ty, $text:ident, $decode:expr) => {
        impl<DB: ::sqlx::Database> ::sqlx::Type<DB> for $ty
        where
            str: ::sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as ::sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as ::sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: ::sqlx::Database> ::sqlx::Encode<'q, DB> for $ty
        where
            for<'a> &'a str: ::sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as ::sqlx::Database>::ArgumentBuffer,
            ) -> ::std::result::Result<::sqlx::encode::IsNull, ::sqlx::error::BoxDynError> {
                let text = self.$text();
                <&str as ::sqlx::Encode<'q, DB>>::encode(
                    ::std::convert::AsRef::<str>::as_ref(&text),
                    buf,
                )
            }
        }

        impl<'r, DB: ::sqlx::Database> ::sqlx::Decode<'r, DB> for $ty
        where
            &'r str: ::sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as ::sqlx::Database>::ValueRef<'r>,
            ) -> ::std::result::Result<Self, ::sqlx::error::BoxDynError> {
                let text = <&'r str as ::sqlx::Decode<'r, DB>>::decode(value)?;
                Ok($decode(text)?)
            }
        }

        impl ::sqlx::postgres::PgHasArrayType for $ty {
            fn array_type_info() -> ::sqlx::postgres::PgTypeInfo {
                <&str as ::sqlx::postgres::PgHasArrayType>::array_type_info()
            }

            fn array_compatible(ty: &::sqlx::postgres::PgTypeInfo) -> bool {
                <&str as ::sqlx::postgres::PgHasArrayType>::array_compatible(ty)
            }
        }
    };
}

/// A closed set of stored strings as a `Copy` enum: `ALL`, `as_str()`, a strict `parse` and
/// `FromStr` (an unknown string is an [`UnknownValue`] naming `$what` and the accepted
/// strings), `Display`, serde as the strings, and sqlx as TEXT (decoding through `parse`).
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database and written in documents.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Exactly one of the stored texts (case-sensitive); anything else is refused.
            pub fn parse(text: &str) -> ::std::result::Result<Self, $crate::domain::UnknownValue> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::domain::UnknownValue::new($what, text, &[$($text),+])),
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::domain::UnknownValue;

            fn from_str(text: &str) -> ::std::result::Result<Self, Self::Err> {
                $name::parse(text)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::std::result::Result<Self, D::Error> {
                let text: ::std::string::String = ::serde::Deserialize::deserialize(deserializer)?;
                $name::parse(&text).map_err(::serde::de::Error::custom)
            }
        }

        sqlx_text!($name, $name::parse);
    };
}

pub mod ids;
pub mod roles;
pub mod status;
pub mod values;

pub use ids::{
    AccountId, BundleId, CustomRoleId, DeviceId, EmailTemplateId, GroupId, InvitationId,
    LocationId, OutboxId, ProductId, ProfileRecordId, TemplateId, TokenId, UserId,
};
pub use roles::{AccountRole, CustomRolePermission, PbxPermission, TokenRole};
pub use status::{
    AccountStatus, InvitationKind, InvitationStatus, LicenceState, MemberType, OutboxStatus,
    ProfileRecordKind, UnknownValue,
};
pub use values::{
    CatalogName, E164Number, ExtensionNumber, MacAddress, Micros, ProductCode, ValueError,
};

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::*;

    /// An in-memory SQLite database of one connection (each connection of `sqlite::memory:` is a
    /// database of its own).
    pub(crate) async fn sqlite() -> sqlx::SqlitePool {
        sqlx::pool::PoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap()
    }

    /// The PostgreSQL column types of the migrations (`uuid`, `text`, `bigint`), on a temporary
    /// table of the database named by `SWITCHBOARD_TEST_POSTGRES_URL`; skipped when unset.
    #[tokio::test]
    async fn postgres_binds_and_decodes_every_kind_of_type() {
        let Ok(url) = std::env::var("SWITCHBOARD_TEST_POSTGRES_URL") else {
            return;
        };
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(
            "CREATE TEMPORARY TABLE domain_types (id UUID PRIMARY KEY, account_id UUID NOT NULL,
             state TEXT NOT NULL, account_role TEXT NOT NULL, mac TEXT NOT NULL,
             number TEXT NOT NULL, extension BIGINT NOT NULL, at BIGINT NOT NULL)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let id = UserId::new();
        let account = AccountId::new();
        let role = AccountRole::Custom(CustomRoleId::new());
        let mac = MacAddress::parse("00:1a:2b:3c:4d:5e").unwrap();
        let number = E164Number::parse("+33 1 42 86 82 00").unwrap();
        let extension = ExtensionNumber::parse("1001").unwrap();
        let at = Micros::now();
        sqlx::query("INSERT INTO domain_types VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(id)
            .bind(account)
            .bind(LicenceState::PendingSeat)
            .bind(role)
            .bind(&mac)
            .bind(&number)
            .bind(extension)
            .bind(at)
            .execute(&mut conn)
            .await
            .unwrap();

        let kind: String = sqlx::query_scalar("SELECT pg_typeof(id)::text FROM domain_types")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(kind, "uuid");
        #[allow(clippy::type_complexity)]
        let row: (
            UserId,
            AccountId,
            LicenceState,
            AccountRole,
            MacAddress,
            E164Number,
            ExtensionNumber,
            Micros,
        ) = sqlx::query_as(
            "SELECT id, account_id, state, account_role, mac, number, extension, at
             FROM domain_types WHERE id = ANY($1) AND state = ANY($2)",
        )
        .bind(vec![id])
        .bind(vec![LicenceState::PendingSeat])
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(
            row,
            (
                id,
                account,
                LicenceState::PendingSeat,
                role,
                mac,
                number,
                extension,
                at
            )
        );

        sqlx::query("UPDATE domain_types SET state = 'revoked'")
            .execute(&mut conn)
            .await
            .unwrap();
        let err = sqlx::query_scalar::<_, LicenceState>("SELECT state FROM domain_types")
            .fetch_one(&mut conn)
            .await
            .unwrap_err();
        assert!(matches!(err, sqlx::Error::ColumnDecode { .. }), "{err:?}");
        conn.close().await.unwrap();
    }
}

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

pub mod ids;

pub use ids::{
    AccountId, BundleId, CustomRoleId, DeviceId, EmailTemplateId, GroupId, InvitationId,
    LocationId, OutboxId, ProductId, ProfileRecordId, TemplateId, TokenId, UserId,
};

#[cfg(test)]
mod tests {
    /// An in-memory SQLite database of one connection (each connection of `sqlite::memory:` is a
    /// database of its own).
    pub(crate) async fn sqlite() -> sqlx::SqlitePool {
        sqlx::pool::PoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap()
    }
}

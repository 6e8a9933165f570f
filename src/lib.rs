//! Switchboard: a SCIM 2.0 service provider (RFC 7643, RFC 7644) for a cloud phone-system
//! platform. Layers, from the edge down: `http` (routing, auth, SCIM JSON) → `provisioning`
//! (the platform's rules, one transaction per request) → `scim` (the protocol, pure) and `store`
//! (all SQL, SQLite and PostgreSQL).

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo)
)]

pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod mail;
pub mod provisioning;
pub mod scim;
pub mod store;
pub mod telemetry;

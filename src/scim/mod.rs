//! The SCIM protocol, pure: schemas, resource validation, filters, PATCH, projection, list and
//! error models (RFC 7643, RFC 7644). No I/O and no async here, so everything is unit-testable
//! and fuzzable; the store compiles filters to SQL, the HTTP layer renders what this produces.

pub mod error;
pub mod filter;
pub mod list;
pub mod patch;
pub mod projection;
pub mod resource;
pub mod schema;

pub use error::{ScimError, ScimType};

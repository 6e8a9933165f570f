//! The platform's rules behind the SCIM surface: what creating, replacing, patching and deleting
//! users and groups means, who may do it, and the audit trail of it. One transaction per request:
//! every change and its audit event commit together or not at all.

pub mod accounts;
pub mod audit;
pub mod catalog;
pub mod cursor;
mod extensions;
pub mod groups;
pub mod invitations;
pub mod licences;
pub mod lifecycle;
pub mod render;
pub mod search;
pub mod tokens;
pub mod user_doc;
pub mod users;

use std::sync::Arc;

use uuid::Uuid;

use crate::scim::error::ScimError;
use crate::scim::list::{ListQuery, Paging};
use crate::scim::schema::{Registry, ResourceType};
use crate::store::{ListError, ListRequest, Listed, SortSpec, Store, StoreError, Tx};
use cursor::CursorScope;
use tokens::Keys;

pub use crate::domain::TokenRole;

/// Who makes a change. Authorization matches on it and the audit trail records it; nothing
/// borrows a super-admin's rights by pretending to be a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A bearer token of the account, with its role.
    Token { id: Uuid, role: TokenRole },
    /// Whoever holds an invitation link, accepting or declining it.
    InvitationLink { invitation: Uuid },
    /// The operator, at the command line (`switchboard …`).
    Operator,
    /// The server's own periodic housekeeping.
    Housekeeping,
}

impl Actor {
    pub fn token_id(&self) -> Option<Uuid> {
        match self {
            Actor::Token { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// Whether the actor holds the account's configuration rights: a super-admin token, or the
    /// operator.
    pub fn is_super_admin(&self) -> bool {
        matches!(
            self,
            Actor::Token {
                role: TokenRole::SuperAdmin,
                ..
            } | Actor::Operator
        )
    }

    /// Whether the actor is an admin token, which may only manage members and custom-role
    /// users. The other actors act on rules of their own (a link changes only its invitation's
    /// user; the housekeeping only what has expired).
    pub fn is_admin_token(&self) -> bool {
        matches!(
            self,
            Actor::Token {
                role: TokenRole::Admin,
                ..
            }
        )
    }

    /// How the audit trail names the actor: `token`, `invitation:<id>`, `operator`,
    /// `housekeeping` (a token's id has a column of its own).
    pub fn audit_name(&self) -> String {
        match self {
            Actor::Token { .. } => "token".into(),
            Actor::InvitationLink { invitation } => format!("invitation:{invitation}"),
            Actor::Operator => "operator".into(),
            Actor::Housekeeping => "housekeeping".into(),
        }
    }
}

/// Who is calling, in which account: every store call is scoped by `account_id` from here,
/// never from the request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub account_id: Uuid,
    pub actor: Actor,
}

/// Everything a provisioning operation needs to know about the request besides its body.
#[derive(Debug, Clone)]
pub struct Context {
    pub principal: Principal,
    pub request_id: Option<String>,
    pub user_agent: Option<String>,
    /// Absolute base of the SCIM endpoints, e.g. `https://scim.example.com/scim/v2`.
    pub scim_base: String,
}

/// `If-Match` of the request (RFC 7644 §3.14), already parsed by the HTTP layer.
#[derive(Debug, Clone, Default)]
pub struct Precondition {
    pub if_match: Option<Vec<String>>,
}

impl Precondition {
    /// Checks the current version against `If-Match`; weak comparison, since our ETags are weak.
    pub fn check(&self, version: i64) -> Result<(), ScimError> {
        let Some(tags) = &self.if_match else {
            return Ok(());
        };
        let current = render::etag(version);
        let matches = tags.iter().any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == current.trim_start_matches("W/")
        });
        if matches {
            Ok(())
        } else {
            Err(ScimError::precondition_failed(format!(
                "If-Match does not match the current version {current}: the resource changed since it was read; read it again and retry"
            )))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Scim(#[from] ScimError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// A value refused at the edge (a phone number, a MAC address, a code, a name).
impl From<crate::domain::ValueError> for Error {
    fn from(e: crate::domain::ValueError) -> Self {
        Error::Scim(ScimError::invalid_value(e.to_string()))
    }
}

impl From<ListError> for Error {
    fn from(e: ListError) -> Self {
        match e {
            ListError::Request(e) => Error::Scim(e),
            ListError::Store(e) => Error::Store(e),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Tunable rules of the platform.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Most levels of nested groups (a top group is level 1).
    pub max_group_depth: usize,
    /// Base URL of the links in mails (`--public-url`, else the listen address) — never taken
    /// from a request's `Host` header, which a caller controls.
    pub public_base: String,
    /// How long an invitation link works.
    pub invitation_ttl_micros: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_group_depth: 5,
            public_base: "http://127.0.0.1:8080".into(),
            invitation_ttl_micros: 7 * 86_400 * 1_000_000,
        }
    }
}

/// The provisioning service: the store, the schema registry, the server's signing key and the
/// platform settings.
#[derive(Debug, Clone)]
pub struct Provisioner {
    store: Store,
    registry: Arc<Registry>,
    keys: Keys,
    settings: Settings,
    tokens: tokens::TokenCache,
    extensions: extensions::ExtensionAllocator,
}

impl Provisioner {
    pub fn new(store: Store, registry: Arc<Registry>, keys: Keys, settings: Settings) -> Self {
        Provisioner {
            store,
            registry,
            keys,
            settings,
            tokens: tokens::TokenCache::default(),
            extensions: extensions::ExtensionAllocator::default(),
        }
    }

    /// The database (for the server's lifecycle: readiness, statistics, shutdown).
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The signing key (to issue tokens).
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Verifies a bearer token (see [`tokens::verify`] for how fresh the revocation check is).
    pub async fn authenticate(&self, token: &str) -> Result<Principal, tokens::AuthError> {
        tokens::verify(&self.store, &self.tokens, &self.keys, token).await
    }

    /// One page of `R` for `query`, with the `nextCursor` when paging by cursor.
    pub(crate) async fn page<R: Listed>(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        rt: &ResourceType,
        query: &ListQuery,
        sort: Option<&SortSpec>,
    ) -> Result<(crate::store::ListPage<R>, Option<String>)> {
        let scope = CursorScope {
            account_id: ctx.principal.account_id,
            resource_type: &rt.name,
            filter: query.filter.as_ref(),
            sort,
            count: query.count,
        };
        let (start, known_total) = cursor::page_start(&self.keys, &scope, &query.paging)?;
        let request = ListRequest {
            filter: query.filter.as_ref(),
            sort,
            start,
            limit: query.count,
            known_total,
        };
        let page = tx
            .list::<R>(&self.registry, rt, ctx.principal.account_id, &request)
            .await?;
        let next_cursor = match (&query.paging, &page.next) {
            (Paging::Cursor(_), Some(key)) => Some(
                cursor::issue(&self.keys, &scope, key.clone(), page.total)
                    .map_err(|e| Error::Internal(format!("signing a cursor: {e}")))?,
            ),
            _ => None,
        };
        Ok((page, next_cursor))
    }

    pub fn resource_type(&self, name: &str) -> Result<&ResourceType> {
        self.registry.resource_type(name).ok_or_else(|| {
            Error::Scim(ScimError::not_implemented(format!(
                "resource type {name} is not configured"
            )))
        })
    }
}

/// Longest value accepted in an indexed text column, in characters (4 bytes each at most, well
/// within an index entry on either database).
pub const MAX_INDEXED_CHARS: usize = 512;

/// Parses a resource id from the URL; ids that are not ours are simply not found.
pub fn parse_id(id: &str, kind: &str) -> Result<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| Error::Scim(ScimError::not_found(format!("{kind} {id} not found"))))
}

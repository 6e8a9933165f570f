//! Cursors for RFC 9865 paging: opaque, URL-safe, signed by the server's key (HS256), bound to
//! the account and the query (resource type, filter, sort, count) they were issued for, and
//! valid for [`CURSOR_TIMEOUT_SECONDS`]. A cursor carries the sort key and id of the last row of
//! its page, so the next page is an index range scan however deep the walk goes, and rows
//! inserted meanwhile neither repeat nor shift earlier rows.

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::tokens::Keys;
use crate::scim::error::{ScimError, ScimType};
use crate::scim::filter::Filter;
use crate::scim::list::Paging;
use crate::store::{CursorKey, PageStart, SortSpec};

/// How long a cursor stays valid between page requests; advertised as `cursorTimeout`.
pub const CURSOR_TIMEOUT_SECONDS: i64 = 3600;
const ISSUER: &str = "switchboard-cursor";

/// The query a cursor belongs to.
pub struct CursorScope<'a> {
    pub account_id: Uuid,
    pub resource_type: &'a str,
    pub filter: Option<&'a Filter>,
    pub sort: Option<&'a SortSpec>,
    pub count: u32,
}

impl CursorScope<'_> {
    fn fingerprint(&self) -> String {
        let filter = self.filter.map(ToString::to_string).unwrap_or_default();
        let sort = self
            .sort
            .map(|s| format!("{}:{}", s.path, s.descending))
            .unwrap_or_default();
        let digest = Sha256::digest(format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.account_id, self.resource_type, filter, sort
        ));
        digest[..12].iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    exp: i64,
    /// Fingerprint of the account and query.
    q: String,
    /// The page size of the query.
    n: u32,
    /// Where the next page starts.
    k: CursorKey,
    /// `totalResults` as counted for the first page: the walk reports the size of the result
    /// set it started on, and deeper pages skip the count, so every page costs the same.
    t: i64,
}

fn invalid() -> ScimError {
    ScimError::bad_request(
        ScimType::InvalidCursor,
        "the cursor is not one this server issued for this query; repeat the query's parameters exactly, or start again with an empty cursor",
    )
}

/// Where a page starts, from the request's paging parameters, and the total a cursor carries.
pub fn page_start(
    keys: &Keys,
    scope: &CursorScope<'_>,
    paging: &Paging,
) -> Result<(PageStart, Option<i64>), ScimError> {
    let cursor = match paging {
        Paging::Index { start_index } => {
            return Ok((PageStart::Offset(start_index.saturating_sub(1)), None));
        }
        Paging::Cursor(None) => return Ok((PageStart::First, None)),
        Paging::Cursor(Some(cursor)) => cursor,
    };
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss"]);
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<Claims>(cursor, &keys.decoding, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => ScimError::bad_request(
                ScimType::ExpiredCursor,
                format!("the cursor has expired (cursors are valid for {CURSOR_TIMEOUT_SECONDS} seconds between pages); start again with an empty cursor"),
            ),
            _ => invalid(),
        })?
        .claims;
    if claims.q != scope.fingerprint() {
        return Err(invalid());
    }
    if claims.n != scope.count {
        return Err(ScimError::bad_request(
            ScimType::InvalidCount,
            format!(
                "count must stay the same on every page of a cursor-paged query (it was {})",
                claims.n
            ),
        ));
    }
    Ok((PageStart::After(claims.k), Some(claims.t)))
}

/// The `nextCursor` for a page that ended at `key`.
pub fn issue(
    keys: &Keys,
    scope: &CursorScope<'_>,
    key: CursorKey,
    total: i64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let claims = Claims {
        iss: ISSUER.into(),
        exp: time::OffsetDateTime::now_utc().unix_timestamp() + CURSOR_TIMEOUT_SECONDS,
        q: scope.fingerprint(),
        n: scope.count,
        k: key,
        t: total,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding)
}

//! Bearer tokens: JWTs (HS256) signed with the server's key, carrying the account, the role and
//! the token id. Every token is also recorded (by id, with the SHA-256 of its text) so that it
//! can be listed and revoked; verification checks both the signature and that record.
//!
//! The record is read from the database at most once per [`RECORD_TTL`] per token and server
//! ([`TokenCache`]): every request verifies the signature and the expiry itself, but a
//! revocation — written by the CLI, possibly on another machine — takes effect on every server
//! sharing the database within `RECORD_TTL` (2 s), not at once. That bound is what lets a read
//! cost one SQL statement instead of two.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{Principal, TokenRole};
use crate::scim::error::ScimError;
use crate::store::{Store, StoreError, TokenRecord, Tx, now_micros};

const ISSUER: &str = "switchboard";
const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;

/// The signing key; its `Debug` never shows the secret.
#[derive(Clone)]
pub struct Keys {
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

impl Keys {
    pub fn from_secret(secret: &[u8]) -> Self {
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// The configured secret if given, else the one kept in the database (created on first use).
    pub async fn load(store: &Store, configured: Option<&str>) -> Result<Self, StoreError> {
        if let Some(secret) = configured {
            return Ok(Keys::from_secret(secret.as_bytes()));
        }
        let mut fresh = [0u8; 32];
        rand::rng().fill(&mut fresh);
        let mut tx = store.begin_write().await?;
        let secret = tx.signing_key_or_insert(&fresh).await?;
        tx.commit().await?;
        Ok(Keys::from_secret(&secret))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    /// The token id.
    sub: String,
    /// The account id.
    acc: String,
    role: String,
    iat: i64,
    exp: i64,
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Issues a token for an account, records it in `tx`, and returns its text and record.
pub async fn issue(
    tx: &mut Tx,
    keys: &Keys,
    account_id: Uuid,
    role: TokenRole,
    ttl_days: u32,
) -> Result<(String, TokenRecord), IssueError> {
    let now = now_micros();
    let expires_at = now + i64::from(ttl_days.max(1)) * MICROS_PER_DAY;
    let id = Uuid::now_v7();
    let claims = Claims {
        iss: ISSUER.into(),
        sub: id.to_string(),
        acc: account_id.to_string(),
        role: role.as_str().into(),
        iat: now / 1_000_000,
        exp: expires_at / 1_000_000,
    };
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding)?;
    let record = TokenRecord {
        id,
        account_id,
        role: role.as_str().into(),
        token_hash: hash(&token),
        created_at: now,
        expires_at: Some(expires_at),
        revoked_at: None,
    };
    tx.insert_token(&record).await?;
    Ok((token, record))
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("could not sign the token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a bearer token was refused (all become `401`).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Refused(ScimError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refused(detail: &str) -> AuthError {
    AuthError::Refused(ScimError::unauthorized(detail))
}

/// How long a token record read from the database is trusted before it is read again: the most
/// a revocation made elsewhere waits before this server refuses the token.
pub const RECORD_TTL: Duration = Duration::from_secs(2);

/// Most token records kept in memory; past it the cache starts afresh (tokens are few: an
/// account has a handful, one per IdP connection).
const CACHE_CAPACITY: usize = 10_000;

/// Token records by id, each with the instant it was read.
#[derive(Debug, Clone, Default)]
pub struct TokenCache {
    records: Arc<Mutex<HashMap<Uuid, (TokenRecord, Instant)>>>,
}

impl TokenCache {
    fn fresh(&self, id: Uuid) -> Option<TokenRecord> {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records
            .get(&id)
            .filter(|(_, read_at)| read_at.elapsed() < RECORD_TTL)
            .map(|(record, _)| record.clone())
    }

    fn keep(&self, record: &TokenRecord) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() >= CACHE_CAPACITY {
            records.clear();
        }
        records.insert(record.id, (record.clone(), Instant::now()));
    }

    /// The record of token `id`: from memory when read less than [`RECORD_TTL`] ago.
    async fn record(&self, store: &Store, id: Uuid) -> Result<Option<TokenRecord>, StoreError> {
        if let Some(record) = self.fresh(id) {
            return Ok(Some(record));
        }
        let record = store.token(id).await?;
        if let Some(record) = &record {
            self.keep(record);
        }
        Ok(record)
    }
}

/// Verifies a bearer token: signature (HS256 only — the token's own `alg` is never trusted),
/// expiry, and the stored record (exists, same account, not revoked, same token text), the last
/// as of at most [`RECORD_TTL`] ago.
pub async fn verify(
    store: &Store,
    cache: &TokenCache,
    keys: &Keys,
    token: &str,
) -> Result<Principal, AuthError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "sub", "iss"]);
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<Claims>(token, &keys.decoding, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::ExpiredSignature => {
                refused("the bearer token has expired; ask an administrator for a new one")
            }
            ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                refused("the bearer token was not issued by this server")
            }
            _ => refused("the bearer token is malformed or invalid"),
        }
    })?;
    let claims = data.claims;
    let (Ok(token_id), Ok(account_id)) =
        (Uuid::parse_str(&claims.sub), Uuid::parse_str(&claims.acc))
    else {
        return Err(refused("the bearer token is malformed or invalid"));
    };
    let Some(record) = cache.record(store, token_id).await? else {
        return Err(refused("the bearer token is unknown to this server"));
    };
    if record.account_id != account_id || !bool::from(record.token_hash.ct_eq(&hash(token))) {
        return Err(refused("the bearer token is unknown to this server"));
    }
    if record.revoked_at.is_some() {
        return Err(refused("the bearer token has been revoked"));
    }
    if record.expires_at.is_some_and(|at| at <= now_micros()) {
        return Err(refused(
            "the bearer token has expired; ask an administrator for a new one",
        ));
    }
    let role = TokenRole::parse(&record.role)
        .map_err(|_| refused("the bearer token has an unknown role"))?;
    Ok(Principal {
        account_id,
        actor: super::Actor::Token { id: token_id, role },
    })
}

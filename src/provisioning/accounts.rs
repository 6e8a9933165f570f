//! Accounts (tenants) and their tokens, as the operator manages them from the CLI. Each change
//! is audited under the account it concerns, with no token (the operator acted directly).

use serde_json::json;
use uuid::Uuid;

use super::TokenRole;
use super::render::timestamp;
use super::tokens::{self, IssueError, Keys};
use crate::store::{Account, AuditEvent, Store, StoreError, TokenRecord, Tx, now_micros};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("an account named {0:?} already exists")]
    Exists(String),
    #[error("no account named {0:?}")]
    NoSuchAccount(String),
    #[error("no token with id {0}, or it is already revoked")]
    NoSuchToken(Uuid),
    #[error("account names are 1 to 64 characters of letters, digits, '-', '_' or '.'")]
    BadName,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Issue(#[from] IssueError),
}

fn operator_event(
    account_id: Uuid,
    action: &str,
    resource_type: &str,
    resource_id: String,
    after: serde_json::Value,
) -> AuditEvent {
    AuditEvent {
        account_id,
        token_id: None,
        actor: super::Actor::Operator.audit_name(),
        request_id: None,
        user_agent: Some("switchboard-cli".into()),
        action: action.into(),
        resource_type: resource_type.into(),
        resource_id: Some(resource_id),
        before: None,
        after: Some(after),
    }
}

pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub async fn create_account_in(tx: &mut Tx, name: &str) -> Result<Account, AccountError> {
    if !valid_name(name) {
        return Err(AccountError::BadName);
    }
    let account = tx.insert_account(name).await.map_err(|e| match e {
        StoreError::Unique(_) => AccountError::Exists(name.to_string()),
        other => AccountError::Store(other),
    })?;
    tx.append_audit(&operator_event(
        account.id,
        "account.create",
        "Account",
        account.id.to_string(),
        json!({"name": name}),
    ))
    .await?;
    Ok(account)
}

pub async fn create_account(store: &Store, name: &str) -> Result<Account, AccountError> {
    let mut tx = store.begin_write().await?;
    let account = create_account_in(&mut tx, name).await?;
    tx.commit().await?;
    Ok(account)
}

async fn account(tx: &mut Tx, name: &str) -> Result<Account, AccountError> {
    tx.account_by_name(name)
        .await?
        .ok_or_else(|| AccountError::NoSuchAccount(name.to_string()))
}

pub async fn issue_token_in(
    tx: &mut Tx,
    keys: &Keys,
    account: &Account,
    role: TokenRole,
    ttl_days: u32,
) -> Result<(String, TokenRecord), AccountError> {
    let (token, record) = tokens::issue(tx, keys, account.id, role, ttl_days).await?;
    tx.append_audit(&operator_event(
        account.id,
        "token.create",
        "Token",
        record.id.to_string(),
        json!({"role": role.as_str(), "expiresAt": record.expires_at.map(timestamp)}),
    ))
    .await?;
    Ok((token, record))
}

pub async fn issue_token(
    store: &Store,
    keys: &Keys,
    account_name: &str,
    role: TokenRole,
    ttl_days: u32,
) -> Result<(String, TokenRecord), AccountError> {
    let mut tx = store.begin_write().await?;
    let account = account(&mut tx, account_name).await?;
    let issued = issue_token_in(&mut tx, keys, &account, role, ttl_days).await?;
    tx.commit().await?;
    Ok(issued)
}

pub async fn list_tokens(
    store: &Store,
    account_name: &str,
) -> Result<Vec<TokenRecord>, AccountError> {
    let mut tx = store.begin_read().await?;
    let account = account(&mut tx, account_name).await?;
    let tokens = tx.tokens_of_account(account.id).await?;
    tx.commit().await?;
    Ok(tokens)
}

pub async fn revoke_token(store: &Store, token_id: Uuid) -> Result<(), AccountError> {
    let mut tx = store.begin_write().await?;
    let record = tx
        .token(token_id)
        .await?
        .ok_or(AccountError::NoSuchToken(token_id))?;
    if !tx.revoke_token(token_id, now_micros()).await? {
        return Err(AccountError::NoSuchToken(token_id));
    }
    tx.append_audit(&operator_event(
        record.account_id,
        "token.revoke",
        "Token",
        token_id.to_string(),
        json!({"revoked": true}),
    ))
    .await?;
    tx.commit().await?;
    Ok(())
}

/// On an empty database: the `default` account and one super-admin token, so that a newcomer
/// can call the API straight away. Returns the token only when it created them.
pub async fn bootstrap(store: &Store, keys: &Keys) -> Result<Option<String>, AccountError> {
    let mut tx = store.begin_write().await?;
    if tx.count_accounts().await? > 0 {
        return Ok(None);
    }
    let account = create_account_in(&mut tx, "default").await?;
    let (token, _) = issue_token_in(&mut tx, keys, &account, TokenRole::SuperAdmin, 365).await?;
    tx.commit().await?;
    Ok(Some(token))
}

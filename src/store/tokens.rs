//! API tokens: the record of every bearer token issued, so that each can be listed and revoked.
//! The token itself is never stored, only its SHA-256.

use uuid::Uuid;

use super::{StoreError, Tx, on_conn};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRecord {
    pub id: Uuid,
    pub account_id: Uuid,
    pub role: String,
    pub token_hash: Vec<u8>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, account_id, role, token_hash, created_at, expires_at, revoked_at";

impl super::Store {
    /// One token record, read outside any transaction: every request does this once.
    pub async fn token(&self, id: Uuid) -> Result<Option<TokenRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1"));
        Ok(match self {
            super::Store::Sqlite(pools) => {
                sqlx::query_as::<_, TokenRecord>(sql)
                    .bind(id)
                    .fetch_optional(pools.readers())
                    .await?
            }
            super::Store::Postgres(pool) => {
                sqlx::query_as::<_, TokenRecord>(sql)
                    .bind(id)
                    .fetch_optional(pool)
                    .await?
            }
        })
    }
}

impl Tx {
    pub async fn insert_token(&mut self, token: &TokenRecord) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query(
                "INSERT INTO api_tokens (id, account_id, role, token_hash, created_at, expires_at, revoked_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(token.id)
            .bind(token.account_id)
            .bind(&token.role)
            .bind(&token.token_hash)
            .bind(token.created_at)
            .bind(token.expires_at)
            .bind(token.revoked_at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    pub async fn token(&mut self, id: Uuid) -> Result<Option<TokenRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1"));
        Ok(on_conn!(self, |conn| sqlx::query_as::<_, TokenRecord>(sql)
            .bind(id)
            .fetch_optional(conn)
            .await?))
    }

    pub async fn tokens_of_account(
        &mut self,
        account_id: Uuid,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE account_id = $1 ORDER BY created_at, id"
        ));
        Ok(on_conn!(self, |conn| sqlx::query_as::<_, TokenRecord>(sql)
            .bind(account_id)
            .fetch_all(conn)
            .await?))
    }

    /// Marks a token revoked; returns false if there is no such token or it was revoked already.
    pub async fn revoke_token(&mut self, id: Uuid, at: i64) -> Result<bool, StoreError> {
        let result = on_conn!(self, |conn| {
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(at)
            .bind(id)
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(result == 1)
    }
}
